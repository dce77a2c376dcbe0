//! The catalogue of what the simulation holds (`orbsim --events`): every earthquake
//! and infrasound burst, with its origin and, per station, when its waves arrive and
//! how strong they are. It is computed from the same parameters as the samples
//! ([`signal::quake`], [`signal::burst`]), so it is the ground truth detectors are
//! scored against.

use formats::Time;
use serde::{Deserialize, Serialize};

use super::signal::{
    self, Burst, Front, Model, Quake, BURST_WINDOW, EVENT_WINDOW, FRONT_WINDOW, PHASES,
};
use super::{longitude, Simulator};

/// What made an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// An earthquake: P and S waves on the seismic channels.
    Earthquake,
    /// An infrasound burst: a wavetrain on the `BDF` channels.
    Infrasound,
    /// A pressure front: a jump of the `LDO` channels (only with fronts switched on).
    Front,
}

/// One arrival of an event's waves at a station.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arrival {
    /// Station code.
    pub station: String,
    /// The channel the wave is strongest on (`BHZ` for P, `BHN` for S, `BDF`).
    pub chan: String,
    /// `P`, `S`, `I` (infrasound) or `F` (pressure front).
    pub phase: String,
    /// Arrival time, ISO 8601 to the microsecond.
    pub time: String,
    /// Arrival time, microseconds since the epoch.
    pub time_us: i64,
    /// Source to station, km.
    pub distance_km: f64,
    /// Envelope amplitude at the arrival on `chan` (the wavetrain's largest), in the
    /// channel's counts: nm/s for seismic channels, mPa for `BDF`; for a front, the
    /// pressure jump in Pa (the `LDO` counts).
    pub amplitude: f64,
}

/// An earthquake or burst, one JSON line of the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `eq-<window>`, `ib-<window>` or `pf-<window>`: unique within a seed.
    pub id: String,
    /// Earthquake or infrasound.
    pub kind: EventKind,
    /// Origin time, ISO 8601.
    pub origin: String,
    /// Origin time, microseconds since the epoch.
    pub origin_us: i64,
    /// Source position along the line of stations, km east of 45 N 10 E.
    pub x_km: f64,
    /// Source latitude (the line runs along 45 N).
    pub latitude: f64,
    /// Source longitude.
    pub longitude: f64,
    /// Source amplitude (counts for earthquakes, mPa for bursts; at a station it is
    /// reduced by distance as the arrivals' amplitudes say; Pa for fronts, the same
    /// at every station).
    pub amplitude: f64,
    /// Arrivals at every station that records this kind, in time order.
    pub arrivals: Vec<Arrival>,
}

impl Event {
    /// The first arrival, if any.
    pub fn first_arrival_us(&self) -> Option<i64> {
        self.arrivals.iter().map(|a| a.time_us).min()
    }
}

/// `x` to three decimals: metres, thousandths of a count or mPa are plenty.
fn milli(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

impl Simulator {
    /// Seconds after the start as a time.
    fn at(&self, seconds: f64) -> Time {
        Time::from_micros(self.start().as_micros() + (seconds * 1e6).round() as i64)
    }

    fn iso(t: Time) -> String {
        t.to_iso8601().unwrap_or_else(|| t.to_epoch_string())
    }

    fn arrival(&self, station: &str, chan: &str, phase: &str, t: f64, d: f64, a: f64) -> Arrival {
        let time = self.at(t);
        Arrival {
            station: station.to_owned(),
            chan: chan.to_owned(),
            phase: phase.to_owned(),
            time: Simulator::iso(time),
            time_us: time.as_micros(),
            distance_km: milli(d),
            amplitude: milli(a),
        }
    }

    fn quake_event(&self, q: &Quake) -> Event {
        let mut arrivals = Vec::new();
        for st in self.stations() {
            // The channel each phase is strongest on: Z for P, N for S.
            let comp = |want: u8| {
                st.channels
                    .iter()
                    .enumerate()
                    .find(|(ci, c)| Model::component_of(&c.chan, *ci as u64) == Some(want))
                    .map(|(_, c)| c.chan.clone())
            };
            let dist = q.distance(st.x_km);
            let atten = Quake::attenuation(dist);
            for ((speed, z, h, _, _), (phase, want)) in PHASES.iter().zip([("P", 0), ("S", 1)]) {
                let share = if want == 0 { z } else { h };
                if let Some(chan) = comp(want).or_else(|| comp(0)) {
                    let t = q.origin + dist / speed;
                    arrivals.push(self.arrival(
                        &st.name,
                        &chan,
                        phase,
                        t,
                        dist,
                        share * q.amp * atten,
                    ));
                }
            }
        }
        arrivals.sort_by_key(|a| a.time_us);
        let origin = self.at(q.origin);
        Event {
            id: format!("eq-{}", q.index),
            kind: EventKind::Earthquake,
            origin: Simulator::iso(origin),
            origin_us: origin.as_micros(),
            x_km: milli(q.x_km),
            latitude: 45.0,
            longitude: longitude(q.x_km),
            amplitude: milli(q.amp),
            arrivals,
        }
    }

    fn burst_event(&self, b: &Burst) -> Event {
        let mut arrivals = Vec::new();
        for st in self.stations() {
            if st.channels.iter().any(|c| c.chan == "BDF") {
                let t = b.arrival(st.x_km);
                let (d, a) = (b.distance(st.x_km), b.amplitude(st.x_km));
                arrivals.push(self.arrival(&st.name, "BDF", "I", t, d, a));
            }
        }
        arrivals.sort_by_key(|a| a.time_us);
        let origin = self.at(b.origin);
        Event {
            id: format!("ib-{}", b.index),
            kind: EventKind::Infrasound,
            origin: Simulator::iso(origin),
            origin_us: origin.as_micros(),
            x_km: milli(b.x_km),
            latitude: 45.0,
            longitude: longitude(b.x_km),
            amplitude: milli(b.amp),
            arrivals,
        }
    }

    fn front_event(&self, f: &Front) -> Event {
        let mut arrivals = Vec::new();
        for st in self.stations() {
            if st.channels.iter().any(|c| c.chan == "LDO") {
                let t = f.arrival(st.x_km);
                arrivals.push(self.arrival(&st.name, "LDO", "F", t, st.x_km, f.amp));
            }
        }
        arrivals.sort_by_key(|a| a.time_us);
        let origin = self.at(f.origin);
        Event {
            id: format!("pf-{}", f.index),
            kind: EventKind::Front,
            origin: Simulator::iso(origin),
            origin_us: origin.as_micros(),
            x_km: 0.0,
            latitude: 45.0,
            longitude: longitude(0.0),
            amplitude: milli(f.amp),
            arrivals,
        }
    }

    /// The events whose first arrival inside the data (at or after the start) is in
    /// `[from, to)` seconds after the start, by origin time. Calling it for
    /// consecutive spans lists each event once, in the span where the data first
    /// shows it; events recorded by no station are left out.
    pub fn events(&self, from: f64, to: f64) -> Vec<Event> {
        let xs: Vec<f64> = self.stations().iter().map(|s| s.x_km).collect();
        let back = |f: fn(f64) -> i64| xs.iter().map(|&x| f(x)).max().unwrap_or(0) + 1;
        let in_span = |e: &Event| {
            let start = self.start().as_micros();
            let first = e
                .arrivals
                .iter()
                .map(|a| a.time_us)
                .filter(|&t| t >= start)
                .min();
            first.is_some_and(|t| {
                let s = (t - start) as f64 / 1e6;
                s >= from && s < to
            })
        };
        let mut out = Vec::new();
        let window = |span: f64, w: f64| (span / w).floor() as i64;
        let scale = self.quake_scale();
        let first = window(from, EVENT_WINDOW) - back(signal::quake_lookback);
        for e in first..=window(to, EVENT_WINDOW) {
            if scale == 0.0 {
                break;
            }
            if let Some(mut q) = signal::quake(self.seed(), e) {
                q.amp *= scale;
                out.push(self.quake_event(&q));
            }
        }
        if self.config().fronts {
            let first = window(from, FRONT_WINDOW) - back(signal::front_lookback);
            for f in first..=window(to, FRONT_WINDOW) {
                if let Some(f) = signal::front(self.seed(), f) {
                    out.push(self.front_event(&f));
                }
            }
        }
        let first = window(from, BURST_WINDOW) - back(signal::burst_lookback);
        for b in first..=window(to, BURST_WINDOW) {
            if let Some(b) = signal::burst(self.seed(), b) {
                out.push(self.burst_event(&b));
            }
        }
        out.retain(in_span);
        out.sort_by(|a, b| (a.origin_us, &a.id).cmp(&(b.origin_us, &b.id)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::SimConfig;
    use super::*;

    fn sim() -> Simulator {
        let start = Time::from_micros(1_795_341_600_000_000);
        Simulator::new(SimConfig::network("XX", 4, 2, 1.0), 5, start).unwrap()
    }

    /// Samples of station `st`'s channel `ci` from `t0` for `n` samples.
    fn samples(s: &Simulator, st: usize, ci: usize, t0: f64) -> (f64, Vec<i32>) {
        let rate = f64::from(s.stations()[st].channels[ci].rate);
        let k = t0.floor() as u64;
        let mut v = Vec::new();
        for r in k..k + 3 {
            v.extend(s.channels(st, r)[ci].samples.iter().copied());
        }
        (rate, v)
    }

    /// Each arrival is where the samples say: quiet just before it (within the noise)
    /// and, for a strong one, far above the noise just after it.
    #[test]
    fn arrivals_are_where_the_waves_are() {
        let s = sim();
        let events = s.events(0.0, 1800.0);
        let quakes = events
            .iter()
            .filter(|e| e.kind == EventKind::Earthquake)
            .count();
        let bursts = events.len() - quakes;
        // 30 windows at 0.7 and 15 at 0.5, give or take.
        assert!((12..=30).contains(&quakes), "{quakes}");
        assert!((3..=15).contains(&bursts), "{bursts}");
        let start = s.start().as_micros();
        let mut strong = 0;
        for e in &events {
            for a in &e.arrivals {
                let t = (a.time_us - start) as f64 / 1e6;
                if !(1.0..1790.0).contains(&t) {
                    continue;
                }
                let st = s
                    .stations()
                    .iter()
                    .position(|x| x.name == a.station)
                    .unwrap();
                let ci = s.stations()[st]
                    .channels
                    .iter()
                    .position(|c| c.chan == a.chan)
                    .unwrap();
                let (rate, v) = samples(&s, st, ci, t - 1.0);
                let base = (t - 1.0).floor();
                let idx = ((t - base) * rate).ceil() as usize;
                let peak = |r: std::ops::Range<usize>| {
                    v[r].iter().map(|x| f64::from(*x).abs()).fold(0.0, f64::max)
                };
                // The noise at most about 400 counts (seismic, microseism included) or
                // 250 mPa; a wave of 3000 is far above it within a second.
                if a.amplitude > 3000.0 && a.phase != "S" {
                    strong += 1;
                    assert!(peak(idx..idx + rate as usize) > 1500.0, "{a:?}");
                }
            }
        }
        assert!(strong > 10, "{strong}");
    }

    /// An infrasound arrival with no other burst at that station in the 20 s before:
    /// the second before it holds only noise (under 200 mPa: tones of at most 120
    /// and white noise of 30), and the first second after it, with the burst's
    /// amplitude over 600 mPa, exceeds half that amplitude.
    #[test]
    fn bursts_start_at_their_arrivals() {
        let s = sim();
        let start = s.start().as_micros();
        let events = s.events(0.0, 3600.0);
        let arrivals: Vec<_> = events
            .iter()
            .filter(|e| e.kind == EventKind::Infrasound)
            .flat_map(|e| e.arrivals.iter())
            .collect();
        let mut checked = 0;
        for a in &arrivals {
            let t = (a.time_us - start) as f64 / 1e6;
            let alone = !arrivals.iter().any(|b| {
                let dt = (a.time_us - b.time_us) as f64 / 1e6;
                b.station == a.station && dt > 0.0 && dt < 20.0
            });
            if !alone || !(2.0..3590.0).contains(&t) || a.amplitude < 600.0 {
                continue;
            }
            let st = s
                .stations()
                .iter()
                .position(|x| x.name == a.station)
                .unwrap();
            let (rate, v) = samples(&s, st, 1, t - 1.0);
            let base = (t - 1.0).floor();
            let idx = ((t - base) * rate).ceil() as usize;
            let peak = |r: std::ops::Range<usize>| {
                v[r].iter().map(|x| f64::from(*x).abs()).fold(0.0, f64::max)
            };
            assert!(peak(idx - 20..idx) < 200.0, "{a:?}");
            assert!(peak(idx..idx + 20) > a.amplitude / 2.0, "{a:?}");
            checked += 1;
        }
        assert!(checked >= 5, "{checked}");
    }

    /// Consecutive spans list each event once; everything is a function of the seed.
    #[test]
    fn spans_partition_the_catalogue() {
        let s = sim();
        let whole = s.events(0.0, 3600.0);
        let mut parts = Vec::new();
        for k in 0..36 {
            parts.extend(s.events(k as f64 * 100.0, (k + 1) as f64 * 100.0));
        }
        parts.sort_by(|a, b| (a.origin_us, &a.id).cmp(&(b.origin_us, &b.id)));
        assert_eq!(parts, whole);
        assert_eq!(whole, sim().events(0.0, 3600.0));
        for e in &whole {
            assert!(e.arrivals.windows(2).all(|w| w[0].time_us <= w[1].time_us));
            let n = if e.kind == EventKind::Earthquake {
                8
            } else {
                2
            };
            assert_eq!(e.arrivals.len(), n, "{e:?}");
            let line = serde_json::to_string(e).unwrap();
            let back: Event = serde_json::from_str(&line).unwrap();
            assert_eq!(
                (&back.id, back.origin_us, back.arrivals.len()),
                (&e.id, e.origin_us, n)
            );
            assert!((back.amplitude - e.amplitude).abs() < 1e-9);
        }
    }

    /// Infrasound moves out at the speed of sound: 25 km between stations is 73.5 s.
    #[test]
    fn infrasound_moveout_is_the_speed_of_sound() {
        let s = sim();
        let e = s
            .events(0.0, 3600.0)
            .into_iter()
            .find(|e| e.kind == EventKind::Infrasound && e.x_km < 100.0)
            .unwrap();
        let (a, b) = (&e.arrivals[0], &e.arrivals[1]);
        assert_eq!((a.station.as_str(), b.station.as_str()), ("PRS01", "PRS02"));
        let dt = (b.time_us - a.time_us) as f64 / 1e6;
        assert!((dt - 25.0 / 0.34).abs() < 1e-3, "{dt}");
        assert!(a.amplitude > b.amplitude);
    }

    /// With quakes off the catalogue has none and the seismic channels hold only
    /// noise (under 700 counts: microseism, tones and white noise); scaled, the same
    /// quakes at a fraction of the amplitude; the other channels are unchanged.
    #[test]
    fn quakes_can_be_switched_off_or_scaled() {
        let start = Time::from_micros(1_795_341_600_000_000);
        let with = |quakes: bool, scale: f64| {
            let mut c = SimConfig::network("XX", 2, 1, 10.0);
            c.quakes = quakes;
            c.quake_scale = scale;
            Simulator::new(c, 5, start).unwrap()
        };
        let (on, off, weak) = (with(true, 1.0), with(false, 1.0), with(true, 0.01));
        let quakes = |s: &Simulator| -> Vec<Event> {
            s.events(0.0, 600.0)
                .into_iter()
                .filter(|e| e.kind == EventKind::Earthquake)
                .collect()
        };
        assert!(quakes(&on).len() > 5);
        assert!(quakes(&off).is_empty());
        let (a, b) = (quakes(&on), quakes(&weak));
        assert_eq!(a.len(), b.len());
        for (a, b) in a.iter().zip(&b) {
            assert_eq!(a.origin_us, b.origin_us);
            assert!(
                (b.amplitude - a.amplitude / 100.0).abs() < 1e-3,
                "{a:?} {b:?}"
            );
        }
        let peak = |s: &Simulator, st: usize, ci: usize| {
            (0..60)
                .flat_map(|k| s.channels(st, k)[ci].samples.clone())
                .map(|x| x.abs())
                .max()
                .unwrap()
        };
        assert!(peak(&on, 0, 0) > 2000, "{}", peak(&on, 0, 0));
        assert!(peak(&off, 0, 0) < 700, "{}", peak(&off, 0, 0));
        assert!(peak(&weak, 0, 0) < 900, "{}", peak(&weak, 0, 0));
        // The pressure station is the same with or without quakes.
        assert_eq!(on.channels(2, 3), off.channels(2, 3));
    }

    /// Fronts are off by default; on, each LDO arrival is a rise of the listed jump
    /// within the next 180 s, and the catalogue lists one arrival per pressure
    /// station.
    #[test]
    fn fronts_raise_the_pressure_at_their_arrivals() {
        let start = Time::from_micros(1_795_341_600_000_000);
        let mut c = SimConfig::network("XX", 0, 3, 60.0);
        let off = Simulator::new(c.clone(), 3, start).unwrap();
        assert!(off
            .events(0.0, 4.0 * 3600.0)
            .iter()
            .all(|e| e.kind != EventKind::Front));
        c.fronts = true;
        let s = Simulator::new(c, 3, start).unwrap();
        let events: Vec<Event> = s
            .events(0.0, 4.0 * 3600.0)
            .into_iter()
            .filter(|e| e.kind == EventKind::Front)
            .collect();
        assert!(events.len() >= 3, "{events:?}");
        let mut checked = 0;
        for e in &events {
            assert_eq!(e.arrivals.len(), 3, "{e:?}");
            for a in &e.arrivals {
                let t = (a.time_us - s.start().as_micros()) as f64 / 1e6;
                if !(60.0..4.0 * 3600.0 - 300.0).contains(&t) {
                    continue;
                }
                let st = s
                    .stations()
                    .iter()
                    .position(|x| x.name == a.station)
                    .unwrap();
                let k = (t / 60.0).floor() as u64 - 1;
                let v: Vec<i32> = (k..k + 6)
                    .flat_map(|r| s.channels(st, r)[0].samples.clone())
                    .collect();
                let i = (t - k as f64 * 60.0).ceil() as usize;
                let o: Vec<i32> = (k..k + 6)
                    .flat_map(|r| off.channels(st, r)[0].samples.clone())
                    .collect();
                // What the fronts add: this one's jump (at least 94% of it 180 s on,
                // after its rise), less up to 10% of what earlier ones still add.
                let added = |j: usize| f64::from(v[j] - o[j]);
                let jump = added(i + 180) - added(i - 1);
                assert!(
                    jump < a.amplitude + 3.0 && jump > 0.9 * a.amplitude - 65.0,
                    "{a:?}: {jump}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 3, "{checked}");
    }
}
