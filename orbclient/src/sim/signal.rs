//! Signal models. Each sample is computed from its index alone (no state), from
//! parameters drawn from the seed:
//!
//! - seismic (counts, velocity): band-limited noise (eight sinusoids of 0.5-8 Hz with
//!   random phases, plus a little white noise), the microseism (0.12-0.22 Hz, slowly
//!   modulated), and earthquakes: in each 60 s window an event happens with
//!   probability 0.7 at a random time and place on a 200 km line; its P wave (6 km/s,
//!   strongest on Z) and S wave (3.5 km/s, strongest on N/E) reach each station at
//!   the time its distance says, decaying with time and distance;
//! - `LDO` (Pa): 101325 Pa, a semi-diurnal tide of ~150 Pa, slow weather drift, noise;
//! - `BDF` (mPa): background noise and, in each 20 s window with probability 0.5, an
//!   infrasound burst of 0.3-3 Pa at 1-4 Hz decaying over seconds.

use std::f64::consts::TAU;

use super::rng::{hash, signed_unit, unit, SplitMix};
use super::{ChannelConfig, Station};

const EVENT_WINDOW: f64 = 60.0;
const BURST_WINDOW: f64 = 20.0;

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
                101_325.0 + 150.0 * (TAU * t / 43_200.0 + self.phase).sin() + tones + 2.0 * white
            }
            What::Infrasound => tones + 30.0 * white + self.bursts(t),
        };
        v.round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
    }

    /// Earthquake waves at station position `x_km`, time `t`, component `comp`.
    fn quakes(&self, t: f64, comp: u8) -> f64 {
        let w = (t / EVENT_WINDOW).floor() as i64;
        let mut v = 0.0;
        // Waves from a window's event can arrive up to ~60 s later and ring for ~20 s.
        for e in (w - 2)..=w {
            let key = [self.seed, 0xea27, e as u64];
            if unit(&[key[0], key[1], key[2], 0]) > 0.7 {
                continue;
            }
            let origin = e as f64 * EVENT_WINDOW + unit(&[key[0], key[1], key[2], 1]) * 40.0;
            let x = unit(&[key[0], key[1], key[2], 2]) * 200.0;
            let amp = 2_000.0 + unit(&[key[0], key[1], key[2], 3]) * 18_000.0;
            let dist = (self.x_km - x).abs() + 10.0;
            let atten = 1.0 / (1.0 + dist / 50.0);
            for (speed, z, h, freq, decay) in [(6.0, 0.6, 0.2, 4.0, 2.0), (3.5, 0.3, 1.0, 1.5, 5.0)]
            {
                let dt = t - (origin + dist / speed);
                if !(0.0..4.0 * decay).contains(&dt) {
                    continue;
                }
                let share = if comp == 0 { z } else { h };
                let sign = if comp == 2 { -1.0 } else { 1.0 };
                v += sign * share * amp * atten * (-dt / decay).exp() * (TAU * freq * dt).sin();
            }
        }
        v
    }

    /// Infrasound bursts (mPa) at time `t`.
    fn bursts(&self, t: f64) -> f64 {
        let w = (t / BURST_WINDOW).floor() as i64;
        let mut v = 0.0;
        for b in (w - 1)..=w {
            let key = [self.seed, 0xb125, b as u64];
            if unit(&[key[0], key[1], key[2], 0]) > 0.5 {
                continue;
            }
            let onset = b as f64 * BURST_WINDOW
                + unit(&[key[0], key[1], key[2], 1]) * 15.0
                + self.x_km / 0.34 / 1000.0;
            let dt = t - onset;
            if !(0.0..15.0).contains(&dt) {
                continue;
            }
            let amp = 300.0 + unit(&[key[0], key[1], key[2], 2]) * 2_700.0;
            let freq = 1.0 + unit(&[key[0], key[1], key[2], 3]) * 3.0;
            v += amp * (-dt / 2.5).exp() * (TAU * freq * dt).sin();
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
        let bdf: Vec<i32> = (0..20 * 200).map(|i| model("BDF", 20).sample(i)).collect();
        assert!(bdf.iter().any(|v| v.abs() > 250));
    }
}
