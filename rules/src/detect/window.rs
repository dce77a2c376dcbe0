//! [`WindowDetector`]: a generic windowed-statistic detector for any channel. A
//! statistic of the last `window` samples (mean, RMS, minimum, maximum or rate of
//! change) is compared with a running baseline of that statistic (an exponential mean
//! and standard deviation over `baseline` samples); the departure, in the channel's
//! units or in standard deviations, is the characteristic function that [`Onset`]
//! turns into triggers (on/off thresholds, minimum duration, hold-off).
//!
//! Pressure fronts and leaks (`LDO`: the rate of change or the mean), infrasound bursts
//! (`BDF`: the RMS against its usual level) and state-of-health channels (a voltage's
//! minimum, a temperature's maximum) are all this one detector with different
//! parameters; `docs/DETECTION.md` has the formulas and defaults.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::error::{positive, ConfigError};
use super::onset::{Onset, OnsetConfig, TriggerEvent};

/// The statistic of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Statistic {
    /// Mean of the window's samples.
    Mean,
    /// Root mean square of the window's samples.
    Rms,
    /// Smallest sample of the window.
    Min,
    /// Largest sample of the window.
    Max,
    /// Rate of change across the window, units per second: `(x[i] - x[i - n + 1]) *
    /// rate / (n - 1)`.
    Rate,
}

/// What the thresholds are measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// The channel's units: the statistic minus the baseline mean.
    Units,
    /// Standard deviations of the baseline: (statistic - mean) / max(std, `min_std`).
    Sigmas,
}

/// Which departures from the baseline count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Rises above the baseline.
    Up,
    /// Falls below the baseline.
    Down,
    /// Either.
    Both,
}

/// What one channel's windowed-statistic detector is. Windows are in samples; see
/// [`WindowConfig::from_seconds`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowConfig {
    /// The statistic.
    pub statistic: Statistic,
    /// Samples in the window (at least 1; at least 2 for [`Statistic::Rate`]).
    pub window: usize,
    /// Time constant of the exponential baseline, samples (longer than `window`). It
    /// is also the warm-up: no trigger before `window - 1 + baseline` samples.
    pub baseline: usize,
    /// Units or standard deviations.
    pub scale: Scale,
    /// Rises, falls or both.
    pub direction: Direction,
    /// Floor of the baseline's standard deviation in [`Scale::Sigmas`], in units
    /// (above zero): a channel that was perfectly steady does not turn one count of
    /// change into an infinite departure.
    pub min_std: f64,
    /// The baseline learns only from samples whose departure is below `off`, so an
    /// anomaly does not become the norm while it lasts. With `false` it always
    /// learns, and a lasting step ends its own trigger within about `baseline`.
    pub freeze: bool,
    /// The channel's sample rate (for [`Statistic::Rate`]'s units per second).
    pub sample_rate: f64,
    /// Thresholds on the departure and trigger options.
    pub onset: OnsetConfig,
}

/// Why a windowed-statistic detector's parameters cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum WindowError {
    /// A parameter shared with the other detectors (thresholds, rate, windows).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The baseline is not longer than the window.
    #[error(
        "`baseline` ({baseline} samples) must be longer than `window` ({window} samples): \
         the baseline is the norm the window is compared with"
    )]
    BaselineNotLonger {
        /// Window, samples.
        window: usize,
        /// Baseline, samples.
        baseline: usize,
    },
    /// A rate of change needs two samples.
    #[error("`window` is {window} sample(s): the rate of change needs at least 2")]
    RateWindow {
        /// Window, samples.
        window: usize,
    },
}

impl WindowError {
    /// The parameter the error is about, as named in rules files.
    pub fn field(&self) -> &'static str {
        match self {
            WindowError::Config(e) => e.field(),
            WindowError::BaselineNotLonger { .. } => "baseline",
            WindowError::RateWindow { .. } => "window",
        }
    }
}

impl WindowConfig {
    /// A config from seconds: `window` and `baseline` become `int(seconds * rate)`
    /// samples (as STA/LTA windows do); `freeze` on, `min_std` 1e-6 units, the
    /// trigger options of [`OnsetConfig::obspy`].
    pub fn from_seconds(
        statistic: Statistic,
        window: f64,
        baseline: f64,
        rate: f64,
        scale: Scale,
        on: f64,
        off: f64,
    ) -> Result<WindowConfig, WindowError> {
        let rate = positive("sample_rate", rate)?;
        let samples = |field: &'static str, seconds: f64| -> Result<usize, ConfigError> {
            let seconds = positive(field, seconds)?;
            let n = (seconds * rate) as usize;
            if n == 0 {
                return Err(ConfigError::WindowTooShort {
                    field,
                    seconds,
                    rate,
                    min: 1.0 / rate,
                });
            }
            Ok(n)
        };
        let config = WindowConfig {
            statistic,
            window: samples("window", window)?,
            baseline: samples("baseline", baseline)?,
            scale,
            direction: Direction::Up,
            min_std: 1e-6,
            freeze: true,
            sample_rate: rate,
            onset: OnsetConfig::obspy(on, off),
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks every parameter.
    pub fn validate(&self) -> Result<(), WindowError> {
        positive("sample_rate", self.sample_rate)?;
        positive("min_std", self.min_std)?;
        self.onset.validate()?;
        if self.window == 0 {
            return Err(ConfigError::WindowTooShort {
                field: "window",
                seconds: 0.0,
                rate: self.sample_rate,
                min: 1.0 / self.sample_rate,
            }
            .into());
        }
        if self.statistic == Statistic::Rate && self.window < 2 {
            return Err(WindowError::RateWindow {
                window: self.window,
            });
        }
        if self.baseline <= self.window {
            return Err(WindowError::BaselineNotLonger {
                window: self.window,
                baseline: self.baseline,
            });
        }
        Ok(())
    }
}

/// The last `window` samples and what is needed to give their statistic in O(1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Window {
    statistic: Statistic,
    /// The last samples, oldest at `pos` once full.
    ring: Vec<f64>,
    n: usize,
    pos: usize,
    /// Samples seen so far, up to `n`.
    filled: usize,
    /// Sum of the samples (mean) or of their squares (RMS) in the ring.
    sum: f64,
    /// For min/max: (index, value) candidates, monotonic, the extreme at the front.
    extreme: VecDeque<(u64, f64)>,
    next: u64,
}

impl Window {
    fn new(statistic: Statistic, n: usize) -> Window {
        Window {
            statistic,
            ring: vec![0.0; n],
            n,
            pos: 0,
            filled: 0,
            sum: 0.0,
            extreme: VecDeque::new(),
            next: 0,
        }
    }

    /// Takes sample `x`; the window's statistic once it holds `n` samples.
    fn push(&mut self, x: f64) -> Option<f64> {
        let i = self.next;
        self.next += 1;
        let old = self.ring[self.pos];
        self.ring[self.pos] = x;
        self.pos += 1;
        let full_before = self.filled == self.n;
        if !full_before {
            self.filled += 1;
        }
        match self.statistic {
            Statistic::Mean | Statistic::Rms => {
                let sq = |v: f64| {
                    if self.statistic == Statistic::Rms {
                        v * v
                    } else {
                        v
                    }
                };
                self.sum += sq(x);
                if full_before {
                    self.sum -= sq(old);
                }
                if self.pos == self.n {
                    // Once per window, the sum is recomputed from the ring, so the
                    // rounding of the running additions and subtractions never builds
                    // up over months.
                    self.sum = self.ring.iter().map(|&v| sq(v)).sum();
                }
            }
            Statistic::Min | Statistic::Max => {
                let beats = |a: f64, b: f64| {
                    if self.statistic == Statistic::Min {
                        a <= b
                    } else {
                        a >= b
                    }
                };
                while self.extreme.back().is_some_and(|&(_, v)| beats(x, v)) {
                    self.extreme.pop_back();
                }
                self.extreme.push_back((i, x));
                while self
                    .extreme
                    .front()
                    .is_some_and(|&(j, _)| j + self.n as u64 <= i)
                {
                    self.extreme.pop_front();
                }
            }
            Statistic::Rate => {}
        }
        if self.pos == self.n {
            self.pos = 0;
        }
        if self.filled < self.n {
            return None;
        }
        let n = self.n as f64;
        Some(match self.statistic {
            Statistic::Mean => self.sum / n,
            Statistic::Rms => (self.sum.max(0.0) / n).sqrt(),
            Statistic::Min | Statistic::Max => self.extreme.front().map_or(x, |&(_, v)| v),
            // The oldest sample of the window is now at `pos`.
            Statistic::Rate => (x - self.ring[self.pos]) / (n - 1.0),
        })
    }
}

/// An exponential mean and variance (West 1979's weighted update).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Baseline {
    mean: f64,
    var: f64,
    /// Values learned so far (saturating; only compared with the warm-up).
    learned: u64,
}

impl Baseline {
    fn learn(&mut self, s: f64, alpha: f64) {
        if self.learned == 0 {
            self.mean = s;
            self.var = 0.0;
        } else {
            let d = s - self.mean;
            self.mean += alpha * d;
            self.var = (1.0 - alpha) * (self.var + alpha * d * d);
        }
        self.learned = self.learned.saturating_add(1);
    }
}

/// A channel's windowed-statistic detection state: the window, the baseline and the
/// trigger state, each continuing across calls, so any chunking of the samples gives
/// the same triggers. Serializable, to be saved between packets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowDetector {
    config: WindowConfig,
    window: Window,
    baseline: Baseline,
    onset: Onset,
    #[serde(skip)]
    scratch: Vec<f64>,
}

impl WindowDetector {
    /// A fresh detector (the next sample is sample 0).
    pub fn new(config: WindowConfig) -> Result<WindowDetector, WindowError> {
        config.validate()?;
        Ok(WindowDetector {
            window: Window::new(config.statistic, config.window),
            baseline: Baseline {
                mean: 0.0,
                var: 0.0,
                learned: 0,
            },
            onset: Onset::new(config.onset)?,
            config,
            scratch: Vec::new(),
        })
    }

    /// The parameters.
    pub fn config(&self) -> &WindowConfig {
        &self.config
    }

    /// The trigger state (sample indices, [`Onset::earliest_pending_on`]).
    pub fn onset(&self) -> &Onset {
        &self.onset
    }

    /// The baseline's mean and standard deviation now (in the statistic's units).
    pub fn baseline(&self) -> (f64, f64) {
        (self.baseline.mean, self.baseline.var.max(0.0).sqrt())
    }

    /// The departure of one sample's statistic: 0 during the warm-up.
    fn score(&mut self, x: f64) -> f64 {
        let c = &self.config;
        let Some(mut s) = self.window.push(x) else {
            return 0.0;
        };
        if c.statistic == Statistic::Rate {
            s *= c.sample_rate;
        }
        let alpha = 1.0 / c.baseline as f64;
        if self.baseline.learned < c.baseline as u64 {
            self.baseline.learn(s, alpha);
            return 0.0;
        }
        let d = s - self.baseline.mean;
        let d = match c.direction {
            Direction::Up => d,
            Direction::Down => -d,
            Direction::Both => d.abs(),
        };
        let score = match c.scale {
            Scale::Units => d,
            Scale::Sigmas => d / self.baseline.var.max(0.0).sqrt().max(c.min_std),
        };
        if !c.freeze || score < c.onset.off {
            self.baseline.learn(s, alpha);
        }
        score
    }

    /// Turns `buf` into the characteristic function (each sample's departure from
    /// the baseline, 0 in the warm-up) in place, without the trigger state: for
    /// inspection and tuning.
    pub fn cf_in_place(&mut self, buf: &mut [f64]) {
        for v in buf {
            *v = self.score(*v);
        }
    }

    /// Feeds the next samples; appends trigger events to `out`.
    pub fn push(&mut self, samples: &[f64], out: &mut Vec<TriggerEvent>) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend_from_slice(samples);
        self.cf_in_place(&mut scratch);
        self.onset.push(&scratch, out);
        self.scratch = scratch;
    }

    /// Feeds the next samples as integer counts (as packets carry them).
    pub fn push_i32(&mut self, samples: &[i32], out: &mut Vec<TriggerEvent>) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend(samples.iter().map(|&s| f64::from(s)));
        self.cf_in_place(&mut scratch);
        self.onset.push(&scratch, out);
        self.scratch = scratch;
    }

    /// The data has ended: closes a trigger in progress (see [`Onset::finish`]).
    pub fn finish(&mut self, out: &mut Vec<TriggerEvent>) {
        self.onset.finish(out);
    }
}

/// The characteristic function of a whole series at once (what the streaming
/// detector computes, for tests and tuning).
pub fn window_cf(x: &[f64], config: WindowConfig) -> Result<Vec<f64>, WindowError> {
    let mut d = WindowDetector::new(config)?;
    let mut cf = x.to_vec();
    d.cf_in_place(&mut cf);
    Ok(cf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::onset::Trigger;

    /// Uniform noise in [-0.5, 0.5), xorshift.
    fn noise(n: usize, mut s: u64) -> Vec<f64> {
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect()
    }

    fn config(
        statistic: Statistic,
        window: usize,
        scale: Scale,
        on: f64,
        off: f64,
    ) -> WindowConfig {
        WindowConfig {
            statistic,
            window,
            baseline: 400,
            scale,
            direction: Direction::Up,
            min_std: 1e-6,
            freeze: true,
            sample_rate: 20.0,
            onset: OnsetConfig::obspy(on, off),
        }
    }

    fn run(x: &[f64], c: WindowConfig, chunk: usize) -> Vec<TriggerEvent> {
        let mut d = WindowDetector::new(c).unwrap();
        let mut out = vec![];
        for part in x.chunks(chunk) {
            d.push(part, &mut out);
            d = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        }
        d.finish(&mut out);
        out
    }

    fn offs(ev: &[TriggerEvent]) -> Vec<Trigger> {
        ev.iter()
            .filter_map(|e| match e {
                TriggerEvent::Off(t) => Some(*t),
                TriggerEvent::On { .. } => None,
            })
            .collect()
    }

    /// Each statistic equals its definition computed naively on the window.
    #[test]
    fn statistics_match_their_definitions() {
        let x: Vec<f64> = noise(3000, 7).iter().map(|v| 1000.0 + 50.0 * v).collect();
        for (stat, n) in [
            (Statistic::Mean, 7),
            (Statistic::Rms, 20),
            (Statistic::Min, 13),
            (Statistic::Max, 1),
            (Statistic::Max, 33),
            (Statistic::Rate, 2),
            (Statistic::Rate, 40),
        ] {
            let mut w = Window::new(stat, n);
            for (i, &v) in x.iter().enumerate() {
                let got = w.push(v);
                if i + 1 < n {
                    assert_eq!(got, None);
                    continue;
                }
                let win = &x[i + 1 - n..=i];
                let want = match stat {
                    Statistic::Mean => win.iter().sum::<f64>() / n as f64,
                    Statistic::Rms => (win.iter().map(|v| v * v).sum::<f64>() / n as f64).sqrt(),
                    Statistic::Min => win.iter().copied().fold(f64::INFINITY, f64::min),
                    Statistic::Max => win.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    Statistic::Rate => (win[n - 1] - win[0]) / (n - 1) as f64,
                };
                let got = got.unwrap();
                assert!(
                    (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                    "{stat:?} n={n} i={i}: {got} vs {want}"
                );
            }
        }
    }

    /// Streaming in any chunking, with the state saved and restored between chunks,
    /// gives the one-shot characteristic function and the same triggers.
    #[test]
    fn streaming_equals_one_shot() {
        let mut x = noise(6000, 3);
        for v in &mut x[3000..3100] {
            *v += 5.0;
        }
        for stat in [
            Statistic::Mean,
            Statistic::Rms,
            Statistic::Min,
            Statistic::Max,
            Statistic::Rate,
        ] {
            let c = config(stat, 20, Scale::Sigmas, 6.0, 2.0);
            let cf = window_cf(&x, c).unwrap();
            let mut want = vec![];
            let mut o = Onset::new(c.onset).unwrap();
            o.push(&cf, &mut want);
            o.finish(&mut want);
            assert!(!want.is_empty(), "{stat:?}");
            for chunk in [1, 19, 256, 6000] {
                assert_eq!(run(&x, c, chunk), want, "{stat:?} chunk {chunk}");
                let mut d = WindowDetector::new(c).unwrap();
                let mut got = x.clone();
                for part in got.chunks_mut(chunk) {
                    d.cf_in_place(part);
                }
                assert_eq!(got, cf);
            }
        }
    }

    /// A burst in noise: the RMS in sigmas triggers at the burst's first samples, once,
    /// and ends soon after it; no trigger in the noise before.
    #[test]
    fn a_burst_is_detected_at_the_right_sample() {
        let rate = 20.0;
        let mut x: Vec<f64> = noise(8000, 11).iter().map(|v| 30.0 * v).collect();
        let at = 5000;
        for (k, v) in x[at..at + 200].iter_mut().enumerate() {
            let t = k as f64 / rate;
            *v += 300.0 * (-t / 2.5).exp() * (std::f64::consts::TAU * 2.0 * t + 1.0).sin();
        }
        let c =
            WindowConfig::from_seconds(Statistic::Rms, 1.0, 60.0, rate, Scale::Sigmas, 5.0, 2.0)
                .unwrap();
        let t = offs(&run(&x, c, 37));
        assert_eq!(t.len(), 1, "{t:?}");
        assert!((at as u64..at as u64 + 4).contains(&t[0].on), "{t:?}");
        assert!(
            t[0].off > at as u64 + 20 && t[0].off < at as u64 + 300,
            "{t:?}"
        );
        // The baseline was frozen during the burst: still the noise's RMS (30/sqrt(12)).
        let mut d = WindowDetector::new(c).unwrap();
        d.push(&x[..at + 100], &mut vec![]);
        let (mean, _) = d.baseline();
        assert!((mean - 8.66).abs() < 1.0, "{mean}");
    }

    /// A pressure step of 5 units: the mean in units triggers when the window's mean
    /// has moved by `on`, going up and (with `Down`) going back down; a rate of change
    /// detects the slope of a ramp.
    #[test]
    fn steps_and_ramps_are_detected_where_they_cross_the_threshold() {
        let mut x: Vec<f64> = noise(4000, 5).iter().map(|v| 1000.0 + 0.1 * v).collect();
        for v in &mut x[2000..2500] {
            *v += 5.0;
        }
        // Window 10: the mean moves by 0.5 per sample of the step; 2 units after 4
        // samples (sample 2003), with noise of 0.1 at most a sample off.
        let mut c = config(Statistic::Mean, 10, Scale::Units, 2.0, 1.0);
        let t = offs(&run(&x, c, 100));
        assert_eq!(t.len(), 1, "{t:?}");
        assert!((2002..=2004).contains(&t[0].on), "{t:?}");
        // With the baseline frozen the trigger lasts the step: it ends as the window
        // leaves it (the mean is back under 1 unit 9 samples after it ends).
        assert!((2505..=2509).contains(&t[0].off), "{t:?}");
        // Falls only: the rise is no anomaly, so the baseline learns it (to about
        // 1000 + 5 (1 - exp(-500/400)) = 1003.6), and the end of the step is a fall
        // of 3.6 that triggers once the window's mean is 2 below, 4 samples on.
        c.direction = Direction::Down;
        let t = offs(&run(&x, c, 100));
        assert_eq!(t.len(), 1, "{t:?}");
        assert!((2503..=2507).contains(&t[0].on), "{t:?}");
        // Without freezing, the baseline absorbs the step and the trigger ends early.
        c.direction = Direction::Up;
        c.freeze = false;
        c.baseline = 40;
        let t = offs(&run(&x, c, 100));
        assert!(t[0].off < 2100, "{t:?}");

        // A ramp of 0.5 units/s (20 sps: 0.025 a sample) from sample 1000.
        let mut r: Vec<f64> = noise(3000, 9).iter().map(|v| 0.01 * v).collect();
        for (k, v) in r[1000..].iter_mut().enumerate() {
            *v += 0.025 * k as f64;
        }
        let c = config(Statistic::Rate, 40, Scale::Units, 0.25, 0.1);
        let t = offs(&run(&r, c, 7));
        assert_eq!(t.len(), 1, "{t:?}");
        // Half the slope once half the window is on the ramp: sample 1000 + 20.
        assert!((1018..=1022).contains(&t[0].on), "{t:?}");
    }

    /// No trigger during the warm-up, even on a wild start.
    #[test]
    fn warm_up_is_silent() {
        let mut x = noise(1000, 1);
        x[5] = 1e6;
        let c = config(Statistic::Max, 10, Scale::Sigmas, 5.0, 2.0);
        let cf = window_cf(&x, c).unwrap();
        assert!(cf[..409].iter().all(|&v| v == 0.0));
        assert!(offs(&run(&x, c, 50)).is_empty());
    }

    #[test]
    fn bad_configs_name_their_field() {
        let e = |r: Result<WindowConfig, WindowError>| r.unwrap_err().field();
        let f = WindowConfig::from_seconds;
        assert_eq!(
            e(f(Statistic::Rms, 1.0, 1.0, 20.0, Scale::Sigmas, 5.0, 2.0)),
            "baseline"
        );
        assert_eq!(
            e(f(Statistic::Rms, 0.01, 60.0, 20.0, Scale::Sigmas, 5.0, 2.0)),
            "window"
        );
        assert_eq!(
            e(f(Statistic::Rate, 1.0, 60.0, 1.0, Scale::Units, 5.0, 2.0)),
            "window"
        );
        assert_eq!(
            e(f(Statistic::Mean, 1.0, 60.0, 20.0, Scale::Units, 2.0, 5.0)),
            "off"
        );
        assert_eq!(
            e(f(Statistic::Mean, 1.0, 60.0, 0.0, Scale::Units, 5.0, 2.0)),
            "sample_rate"
        );
        let mut c = config(Statistic::Mean, 10, Scale::Sigmas, 5.0, 2.0);
        c.min_std = 0.0;
        assert_eq!(WindowDetector::new(c).unwrap_err().field(), "min_std");
        let msg = e(f(Statistic::Rms, 1.0, 1.0, 20.0, Scale::Sigmas, 5.0, 2.0));
        assert_eq!(msg, "baseline");
    }
}
