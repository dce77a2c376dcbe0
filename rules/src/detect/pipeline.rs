//! [`ChannelDetector`]: one channel's filter, STA/LTA and trigger state together,
//! fed samples packet by packet; [`Detector`]: that or a [`WindowDetector`], whichever
//! a rule asks for.

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::filter::{BandPass, BandPassConfig};
use super::onset::{Onset, OnsetConfig, TriggerEvent};
use super::stalta::{StaLta, StaLtaConfig};
use super::window::WindowDetector;

/// Samples handled per pass: small enough that the scratch stays in the L1 cache.
const BLOCK: usize = 2048;

/// What one channel's detector is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectorConfig {
    /// Band-pass before the STA/LTA, if any.
    pub filter: Option<BandPassConfig>,
    /// The characteristic function.
    pub stalta: StaLtaConfig,
    /// Thresholds and options.
    pub onset: OnsetConfig,
}

/// A channel's detection state: filter, characteristic function and trigger state,
/// each continuing across calls. Serializable, to be saved between packets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelDetector {
    filter: Option<BandPass>,
    stalta: StaLta,
    onset: Onset,
    #[serde(skip)]
    scratch: Vec<f64>,
}

impl ChannelDetector {
    /// A fresh detector: zero filter state, STA/LTA in warm-up, no trigger.
    pub fn new(config: DetectorConfig) -> Result<ChannelDetector, ConfigError> {
        Ok(ChannelDetector {
            filter: config.filter.map(BandPass::new).transpose()?,
            stalta: StaLta::new(config.stalta)?,
            onset: Onset::new(config.onset)?,
            scratch: Vec::new(),
        })
    }

    /// The trigger state (for sample indices and [`Onset::earliest_pending_on`]).
    pub fn onset(&self) -> &Onset {
        &self.onset
    }

    /// Feeds the next samples; appends trigger events to `out`.
    pub fn push(&mut self, samples: &[f64], out: &mut Vec<TriggerEvent>) {
        self.push_with(
            samples.len(),
            |dst, from| dst.copy_from_slice(&samples[from..from + dst.len()]),
            out,
        );
    }

    /// Feeds the next samples as integer counts (as packets carry them).
    pub fn push_i32(&mut self, samples: &[i32], out: &mut Vec<TriggerEvent>) {
        self.push_with(
            samples.len(),
            |dst, from| {
                for (d, s) in dst.iter_mut().zip(&samples[from..]) {
                    *d = f64::from(*s);
                }
            },
            out,
        );
    }

    fn push_with(
        &mut self,
        n: usize,
        mut fill: impl FnMut(&mut [f64], usize),
        out: &mut Vec<TriggerEvent>,
    ) {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut from = 0;
        while from < n {
            let len = BLOCK.min(n - from);
            scratch.resize(len, 0.0);
            fill(&mut scratch, from);
            self.cf_in_place(&mut scratch);
            self.onset.push(&scratch, out);
            from += len;
        }
        self.scratch = scratch;
    }

    /// Filters and turns `buf` into the characteristic function, in place (without
    /// the trigger state): for inspection and tuning.
    pub fn cf_in_place(&mut self, buf: &mut [f64]) {
        if let Some(f) = &mut self.filter {
            f.process(buf);
        }
        self.stalta.process(buf);
    }

    /// The data has ended: closes a trigger in progress (see [`Onset::finish`]).
    pub fn finish(&mut self, out: &mut Vec<TriggerEvent>) {
        self.onset.finish(out);
    }
}

/// One channel's detector of either kind, as a rule's state keeps it.
///
/// Serialized untagged: a state file written before the windowed detector existed
/// (a bare [`ChannelDetector`]) still reads as [`Detector::StaLta`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Detector {
    /// Band-pass, STA/LTA and trigger state.
    StaLta(ChannelDetector),
    /// Windowed statistic against a baseline, and trigger state.
    Window(WindowDetector),
}

impl Detector {
    /// The trigger state (for sample indices and [`Onset::earliest_pending_on`]).
    pub fn onset(&self) -> &Onset {
        match self {
            Detector::StaLta(d) => d.onset(),
            Detector::Window(d) => d.onset(),
        }
    }

    /// Feeds the next samples as integer counts; appends trigger events to `out`.
    pub fn push_i32(&mut self, samples: &[i32], out: &mut Vec<TriggerEvent>) {
        match self {
            Detector::StaLta(d) => d.push_i32(samples, out),
            Detector::Window(d) => d.push_i32(samples, out),
        }
    }

    /// The data has ended: closes a trigger in progress.
    pub fn finish(&mut self, out: &mut Vec<TriggerEvent>) {
        match self {
            Detector::StaLta(d) => d.finish(out),
            Detector::Window(d) => d.finish(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::stalta::StaLtaKind;

    #[test]
    fn an_event_in_noise_triggers_once_in_any_chunking() {
        let rate = 40.0;
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let x: Vec<f64> = (0..8000)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let noise = (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                let t = (i as f64 - 5000.0) / rate;
                let burst = if t >= 0.0 {
                    40.0 * (-t / 2.0).exp() * (std::f64::consts::TAU * 3.0 * t).sin()
                } else {
                    0.0
                };
                noise + burst
            })
            .collect();
        let config = DetectorConfig {
            filter: Some(BandPassConfig {
                freqmin: 1.0,
                freqmax: 8.0,
                corners: 4,
                sample_rate: rate,
            }),
            stalta: StaLtaConfig::from_seconds(StaLtaKind::Recursive, 1.0, 20.0, rate).unwrap(),
            onset: OnsetConfig::obspy(4.0, 1.5),
        };
        let mut whole = ChannelDetector::new(config).unwrap();
        let mut want = vec![];
        whole.push(&x, &mut want);
        whole.finish(&mut want);
        assert_eq!(want.len(), 2, "{want:?}");
        let TriggerEvent::On { on, .. } = want[0] else {
            panic!("{want:?}")
        };
        assert!((5000..5010).contains(&on), "{on}");
        for chunk in [1, 40, 333, 5000] {
            let mut d = ChannelDetector::new(config).unwrap();
            let mut got = vec![];
            for c in x.chunks(chunk) {
                d.push(c, &mut got);
                d = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
            }
            d.finish(&mut got);
            assert_eq!(got, want, "chunk {chunk}");
        }
        let ints: Vec<i32> = x.iter().map(|v| (v * 1000.0).round() as i32).collect();
        let mut d = ChannelDetector::new(config).unwrap();
        let mut got = vec![];
        d.push_i32(&ints, &mut got);
        assert_eq!(got.len(), 2);
    }
}
