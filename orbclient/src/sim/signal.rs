//! Signal models. Each sample is computed from its index alone (no state), from
//! parameters drawn from the seed:
//!
//! - seismic (counts, velocity): band-limited noise (eight sinusoids of 0.5-8 Hz with
//!   random phases, plus a little white noise), the microseism (0.12-0.22 Hz, slowly
//!   modulated), and earthquakes: in each 60 s window an event happens with
//!   probability 0.7 at a random time and place on a 200 km line; its P wave (6 km/s,
//!   strongest on Z) and S wave (3.5 km/s, strongest on N/E) reach each station at
//!   the time its distance says, decaying with time and distance ([`quake`]);
//! - `LDO` (Pa): 101325 Pa, a semi-diurnal tide of ~150 Pa, slow weather drift, noise,
//!   and (only when switched on) pressure fronts: in each 1800 s window with
//!   probability 0.6, a front moving east at 15-30 m/s crosses the line, raising the
//!   pressure by 200-600 Pa over 60-180 s, then relaxing over hours ([`front`]);
//! - `BDF` (mPa): background noise and, in each 120 s window with probability 0.5, an
//!   infrasound burst of 0.2-3 Pa at the source, somewhere on a 250 km line, at 1-4 Hz
//!   decaying over seconds; it reaches each station at the speed of sound (0.34 km/s),
//!   weaker with distance ([`burst`]).
//!
//! Earthquakes can be switched off or scaled ([`Model::events`]).
//!
//! [`quake`], [`burst`] and [`front`] are the events' parameters, shared by the signals and by
//! the catalogue (`super::events`), so the catalogue says exactly what the samples hold.

use std::f64::consts::TAU;

use super::rng::{hash, signed_unit, unit, SplitMix};
use super::{ChannelConfig, Station};

/// Seconds per earthquake window: at most one earthquake starts in each.
pub const EVENT_WINDOW: f64 = 60.0;
/// Seconds per infrasound window: at most one burst starts in each.
pub const BURST_WINDOW: f64 = 120.0;
/// Speed of sound, km/s: the moveout of infrasound between stations.
pub const SOUND_KM_S: f64 = 0.34;
/// Seconds a burst lasts at a station.
pub const BURST_SECONDS: f64 = 15.0;
/// The earthquake waves: (speed km/s, share on Z, share on N/E, frequency Hz, decay s),
/// P then S. Each lasts `4 decay` seconds from its arrival.
pub const PHASES: [(f64, f64, f64, f64, f64); 2] =
    [(6.0, 0.6, 0.2, 4.0, 2.0), (3.5, 0.3, 1.0, 1.5, 5.0)];

/// An earthquake: window `index` holds one with probability 0.7.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quake {
    /// Its window (starting at `index * EVENT_WINDOW` s after the simulation start).
    pub index: i64,
    /// Origin time, seconds after the simulation start.
    pub origin: f64,
    /// Epicentre along the line of stations, km (0 to 200).
    pub x_km: f64,
    /// Source amplitude, counts (2000 to 20000): a wave's envelope at a station is
    /// `amp * share / (1 + distance / 50 km)`.
    pub amp: f64,
}

impl Quake {
    /// Distance to a station at `x_km`, km: along the line, plus 10 km (the depth and
    /// the offset from the line, lumped).
    pub fn distance(&self, x_km: f64) -> f64 {
        (x_km - self.x_km).abs() + 10.0
    }

    /// Amplitude factor at distance `dist` km.
    pub fn attenuation(dist: f64) -> f64 {
        1.0 / (1.0 + dist / 50.0)
    }
}

/// The earthquake of window `index`, if it has one.
pub fn quake(seed: u64, index: i64) -> Option<Quake> {
    let key = [seed, 0xea27, index as u64];
    if unit(&[key[0], key[1], key[2], 0]) > 0.7 {
        return None;
    }
    Some(Quake {
        index,
        origin: index as f64 * EVENT_WINDOW + unit(&[key[0], key[1], key[2], 1]) * 40.0,
        x_km: unit(&[key[0], key[1], key[2], 2]) * 200.0,
        amp: 2_000.0 + unit(&[key[0], key[1], key[2], 3]) * 18_000.0,
    })
}

/// An infrasound burst: window `index` holds one with probability 0.5.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// Its window (starting at `index * BURST_WINDOW` s after the simulation start).
    pub index: i64,
    /// Origin time, seconds after the simulation start.
    pub origin: f64,
    /// Source along the line of stations, km (0 to 250).
    pub x_km: f64,
    /// Source amplitude, mPa (200 to 3000): the envelope at a station is
    /// `amp / (1 + distance / 30 km)`.
    pub amp: f64,
    /// Frequency, Hz (1 to 4).
    pub freq: f64,
}

impl Burst {
    /// Distance to a station at `x_km`, km: along the line plus 2 km off it.
    pub fn distance(&self, x_km: f64) -> f64 {
        (x_km - self.x_km).abs() + 2.0
    }

    /// Arrival at a station at `x_km`, seconds after the simulation start.
    pub fn arrival(&self, x_km: f64) -> f64 {
        self.origin + self.distance(x_km) / SOUND_KM_S
    }

    /// Envelope amplitude at a station at `x_km`, mPa.
    pub fn amplitude(&self, x_km: f64) -> f64 {
        self.amp / (1.0 + self.distance(x_km) / 30.0)
    }
}

/// The infrasound burst of window `index`, if it has one.
pub fn burst(seed: u64, index: i64) -> Option<Burst> {
    let key = [seed, 0xb125, index as u64];
    if unit(&[key[0], key[1], key[2], 0]) > 0.5 {
        return None;
    }
    Some(Burst {
        index,
        origin: index as f64 * BURST_WINDOW + unit(&[key[0], key[1], key[2], 1]) * 100.0,
        x_km: unit(&[key[0], key[1], key[2], 4]) * 250.0,
        amp: 200.0 + unit(&[key[0], key[1], key[2], 2]) * 2_800.0,
        freq: 1.0 + unit(&[key[0], key[1], key[2], 3]) * 3.0,
    })
}

/// Seconds per pressure-front window: at most one front starts in each.
pub const FRONT_WINDOW: f64 = 1800.0;
/// Seconds a front's pressure takes to relax back (exponential time constant).
pub const FRONT_RELAX: f64 = 1800.0;

/// A pressure front: window `index` holds one with probability 0.6.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Front {
    /// Its window (starting at `index * FRONT_WINDOW` s after the simulation start).
    pub index: i64,
    /// When it crosses `x_km = 0`, seconds after the simulation start.
    pub origin: f64,
    /// Speed eastwards, km/s (0.015 to 0.03).
    pub speed: f64,
    /// Pressure jump, Pa (200 to 600).
    pub amp: f64,
    /// Seconds the jump takes (60 to 180).
    pub rise: f64,
}

impl Front {
    /// Arrival at a station at `x_km`, seconds after the simulation start.
    pub fn arrival(&self, x_km: f64) -> f64 {
        self.origin + x_km / self.speed
    }

    /// The pressure it adds (Pa) `dt` seconds after its arrival.
    pub fn pressure(&self, dt: f64) -> f64 {
        if dt <= 0.0 {
            0.0
        } else if dt < self.rise {
            // A smooth step: half a cosine.
            self.amp * 0.5 * (1.0 - (std::f64::consts::PI * dt / self.rise).cos())
        } else {
            self.amp * (-(dt - self.rise) / FRONT_RELAX).exp()
        }
    }
}

/// The pressure front of window `index`, if it has one.
pub fn front(seed: u64, index: i64) -> Option<Front> {
    let key = [seed, 0xf207, index as u64];
    if unit(&[key[0], key[1], key[2], 0]) > 0.6 {
        return None;
    }
    Some(Front {
        index,
        origin: index as f64 * FRONT_WINDOW + unit(&[key[0], key[1], key[2], 1]) * FRONT_WINDOW,
        speed: 0.015 + unit(&[key[0], key[1], key[2], 2]) * 0.015,
        amp: 200.0 + unit(&[key[0], key[1], key[2], 3]) * 400.0,
        rise: 60.0 + unit(&[key[0], key[1], key[2], 4]) * 120.0,
    })
}

/// How many windows before the current one can still hold a front felt at a station
/// at `x_km` (its pressure is negligible 12 relaxation times after the rise).
pub fn front_lookback(x_km: f64) -> i64 {
    let latest = FRONT_WINDOW + x_km.abs() / 0.015 + 180.0 + 12.0 * FRONT_RELAX;
    (latest / FRONT_WINDOW).ceil() as i64
}

/// How many windows before the current one can still hold an earthquake whose waves
/// are at a station at `x_km` (at least 2, as the model always looked).
pub fn quake_lookback(x_km: f64) -> i64 {
    let far = x_km.abs().max((x_km - 200.0).abs()) + 10.0;
    let latest = 40.0 + far / 3.5 + 4.0 * 5.0;
    ((latest / EVENT_WINDOW).ceil() as i64).max(2)
}

/// How many windows before the current one can still hold a burst heard at a station
/// at `x_km`.
pub fn burst_lookback(x_km: f64) -> i64 {
    let far = x_km.abs().max((x_km - 250.0).abs()) + 2.0;
    let latest = 100.0 + far / SOUND_KM_S + BURST_SECONDS;
    (latest / BURST_WINDOW).ceil() as i64
}

/// segtype and calib for a channel code (docs/FORMATS.md, "Channels, units").
pub fn units(chan: &str) -> (char, f64) {
    match chan {
        "LDO" => ('P', f64::from(0.01f32)),
        "BDF" => ('I', f64::from(0.001f32)),
        _ => ('V', 1.0),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    /// Seismic, component 0 (Z), 1 (N) or 2 (E).
    Seismic(u8),
    Barometer,
    Infrasound,
}

/// One channel's model: everything drawn from the seed up front.
#[derive(Debug, Clone)]
pub struct Model {
    seed: u64,
    key: [u64; 3],
    rate: f64,
    what: What,
    x_km: f64,
    tones: [(f64, f64, f64); 8],
    phase: f64,
    /// Earthquake amplitudes times this (0: none).
    quake_scale: f64,
    /// Whether pressure fronts are simulated.
    fronts: bool,
}

impl Model {
    /// The model of channel `ci` of station `si`.
    pub fn new(seed: u64, si: u64, ci: u64, st: &Station, c: &ChannelConfig) -> Model {
        let what = match c.chan.as_str() {
            "LDO" => What::Barometer,
            "BDF" => What::Infrasound,
            chan => Model::component(chan, ci),
        };
        let mut r = SplitMix::new(hash(&[seed, si, ci, 0x51a7]));
        let rate = f64::from(c.rate);
        let nyquist = rate / 2.0;
        let (lo, hi, amp) = match what {
            What::Seismic(_) => (0.5, 8.0, 30.0),
            What::Barometer => (1.0 / 3600.0, 1.0 / 600.0, 20.0),
            What::Infrasound => (0.2, 5.0, 15.0),
        };
        let mut tones = [(0.0, 0.0, 0.0); 8];
        for t in &mut tones {
            let f = r.range(lo, hi).min(nyquist * 0.9);
            *t = (f, r.range(0.0, TAU), amp * r.range(0.5, 1.0));
        }
        Model {
            seed,
            key: [si, ci, hash(&[seed, si, ci])],
            rate,
            what,
            x_km: st.x_km,
            tones,
            phase: r.range(0.0, TAU),
            quake_scale: 1.0,
            fronts: false,
        }
    }

    /// Which events the model holds: earthquakes with amplitudes times `quake_scale`
    /// (0: none; 1, the default, as always), pressure fronts or not (off by default).
    pub fn events(mut self, quake_scale: f64, fronts: bool) -> Model {
        self.quake_scale = quake_scale;
        self.fronts = fronts;
        self
    }

    /// The seismic component (0 Z, 1 N, 2 E) a channel is simulated as, or `None` for
    /// the pressure channels.
    pub fn component_of(chan: &str, ci: u64) -> Option<u8> {
        match chan {
            "LDO" | "BDF" => None,
            _ => match Model::component(chan, ci) {
                What::Seismic(c) => Some(c),
                _ => None,
            },
        }
    }

    fn component(chan: &str, ci: u64) -> What {
        match chan.as_bytes().last() {
            Some(b'Z') => What::Seismic(0),
            Some(b'N' | b'1') => What::Seismic(1),
            Some(b'E' | b'2') => What::Seismic(2),
            _ => What::Seismic((ci % 3) as u8),
        }
    }

    /// Sample `i` (counts), at `i / rate` seconds after the simulation start.
    pub fn sample(&self, i: u64) -> i32 {
        let t = i as f64 / self.rate;
        let tones: f64 = self
            .tones
            .iter()
            .map(|&(f, ph, a)| a * (TAU * f * t + ph).sin())
            .sum();
        let white = signed_unit(&[self.key[2], i]);
        let v = match self.what {
            What::Seismic(comp) => {
                let micro = 300.0
                    * (TAU * (0.12 + 0.1 * unit(&[self.seed, 0x3c])) * t + self.phase).sin()
                    * (1.0 + 0.3 * (TAU * t / 90.0).sin());
                tones + 20.0 * white + micro + self.quakes(t, comp)
            }
            What::Barometer => {
                101_325.0
                    + 150.0 * (TAU * t / 43_200.0 + self.phase).sin()
                    + tones
                    + 2.0 * white
                    + self.fronts(t)
            }
            What::Infrasound => tones + 30.0 * white + self.bursts(t),
        };
        v.round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
    }

    /// Pressure fronts (Pa) at time `t`.
    fn fronts(&self, t: f64) -> f64 {
        if !self.fronts {
            return 0.0;
        }
        let w = (t / FRONT_WINDOW).floor() as i64;
        let mut v = 0.0;
        for f in (w - front_lookback(self.x_km))..=w {
            if let Some(f) = front(self.seed, f) {
                v += f.pressure(t - f.arrival(self.x_km));
            }
        }
        v
    }

    /// Earthquake waves at station position `x_km`, time `t`, component `comp`.
    fn quakes(&self, t: f64, comp: u8) -> f64 {
        if self.quake_scale == 0.0 {
            return 0.0;
        }
        let w = (t / EVENT_WINDOW).floor() as i64;
        let mut v = 0.0;
        // Waves from a window's event arrive up to `lookback` windows later.
        for e in (w - quake_lookback(self.x_km))..=w {
            let Some(mut q) = quake(self.seed, e) else {
                continue;
            };
            q.amp *= self.quake_scale;
            let dist = q.distance(self.x_km);
            let atten = Quake::attenuation(dist);
            for (speed, z, h, freq, decay) in PHASES {
                let dt = t - (q.origin + dist / speed);
                if !(0.0..4.0 * decay).contains(&dt) {
                    continue;
                }
                let share = if comp == 0 { z } else { h };
                let sign = if comp == 2 { -1.0 } else { 1.0 };
                v += sign * share * q.amp * atten * (-dt / decay).exp() * (TAU * freq * dt).sin();
            }
        }
        v
    }

    /// Infrasound bursts (mPa) at time `t`.
    fn bursts(&self, t: f64) -> f64 {
        let w = (t / BURST_WINDOW).floor() as i64;
        let mut v = 0.0;
        for b in (w - burst_lookback(self.x_km))..=w {
            let Some(burst) = burst(self.seed, b) else {
                continue;
            };
            let dt = t - burst.arrival(self.x_km);
            if !(0.0..BURST_SECONDS).contains(&dt) {
                continue;
            }
            v += burst.amplitude(self.x_km) * (-dt / 2.5).exp() * (TAU * burst.freq * dt).sin();
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::super::Kind;
    use super::*;

    fn model(chan: &str, rate: u32) -> Model {
        let st = Station {
            name: "STA01".into(),
            kind: Kind::Seismic,
            channels: vec![],
            x_km: 0.0,
        };
        let c = ChannelConfig {
            chan: chan.into(),
            rate,
        };
        Model::new(9, 0, 0, &st, &c)
    }

    #[test]
    fn signals_are_plausible() {
        let baro: Vec<i32> = (0..600).map(|i| model("LDO", 1).sample(i)).collect();
        assert!(
            baro.iter().all(|&p| (100_900..101_800).contains(&p)),
            "{baro:?}"
        );
        let z: Vec<i32> = (0..40 * 600).map(|i| model("BHZ", 40).sample(i)).collect();
        let max = z.iter().map(|v| v.abs()).max().unwrap();
        assert!(max > 300 && max < 100_000, "{max}");
        // Ten minutes hold earthquakes: some samples far above the noise.
        assert!(z.iter().filter(|v| v.abs() > 1_000).count() > 10);
        // Twenty minutes of infrasound hold bursts far above the noise (about 30 mPa).
        let bdf: Vec<i32> = (0..20 * 1200).map(|i| model("BDF", 20).sample(i)).collect();
        assert!(bdf.iter().any(|v| v.abs() > 250));
    }
}

#[cfg(test)]
mod pinned {
    use super::super::{SimConfig, Simulator};
    use formats::Time;

    /// FNV-1a of every sample of the first `rounds` 10 s rounds of each channel of a
    /// 10-seismic, 3-pressure network.
    fn digest(rounds: u64) -> Vec<(String, u64)> {
        let sim = Simulator::new(
            SimConfig::network("XX", 10, 3, 10.0),
            3,
            Time::from_micros(0),
        )
        .unwrap();
        let mut out = Vec::new();
        for st in 0..sim.stations().len() {
            let mut hs = Vec::new();
            for k in 0..rounds {
                for (ci, c) in sim.channels(st, k).into_iter().enumerate() {
                    if k == 0 {
                        hs.push((format!("{}_{}", c.sta, c.chan), 0xcbf2_9ce4_8422_2325u64));
                    }
                    let h = &mut hs[ci].1;
                    for s in &c.samples {
                        for b in s.to_le_bytes() {
                            *h = (*h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
                        }
                    }
                }
            }
            out.extend(hs);
        }
        out
    }

    /// The seismic and barometer samples are those orbsim made before the events
    /// were parameterized for the catalogue (only BDF changed: its bursts now have a
    /// source position and the speed of sound's moveout).
    #[test]
    fn seismic_and_barometer_samples_are_unchanged() {
        let want: &[(&str, u64)] = &[
            ("STA01_BHZ", 18350168794056110606),
            ("STA01_BHN", 6664907550788411206),
            ("STA01_BHE", 8213559534681780033),
            ("STA02_BHZ", 2862885645066236336),
            ("STA02_BHN", 7172231805076536738),
            ("STA02_BHE", 11749539823622044512),
            ("STA03_BHZ", 2270855535843815070),
            ("STA03_BHN", 4691539520625501924),
            ("STA03_BHE", 1669482745989350700),
            ("STA04_BHZ", 10006150391042802981),
            ("STA04_BHN", 18329544535607839530),
            ("STA04_BHE", 12955741160085059941),
            ("STA05_BHZ", 6012829297359147630),
            ("STA05_BHN", 15382706696551823108),
            ("STA05_BHE", 14328937093768413012),
            ("STA06_BHZ", 2508118049101574590),
            ("STA06_BHN", 18233428707321186535),
            ("STA06_BHE", 2843105104304868430),
            ("STA07_BHZ", 9489457064546965914),
            ("STA07_BHN", 12900239047746944853),
            ("STA07_BHE", 17200119517725981743),
            ("STA08_BHZ", 693420539658789861),
            ("STA08_BHN", 13058467813751039243),
            ("STA08_BHE", 2127678352401142088),
            ("STA09_BHZ", 13669010191898518224),
            ("STA09_BHN", 13191034579122764831),
            ("STA09_BHE", 12120273265099341442),
            ("STA10_BHZ", 3651766950396176930),
            ("STA10_BHN", 6133611639731509150),
            ("STA10_BHE", 2198696702174441550),
            ("PRS01_LDO", 5719400117585865014),
            ("PRS02_LDO", 15961291644729292118),
            ("PRS03_LDO", 7607529124006910407),
        ];
        let got = digest(60);
        for (name, h) in want {
            let g = got.iter().find(|(n, _)| n == name).unwrap();
            assert_eq!(g.1, *h, "{name}");
        }
    }
}
