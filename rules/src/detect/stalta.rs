//! STA/LTA characteristic functions, the ratio of a short-term to a long-term average
//! of the squared signal, as ObsPy computes them, streaming:
//!
//! - [`ClassicStaLta`]: `classic_sta_lta` (ObsPy's C `stalta`): moving sums over the
//!   last `nsta` and `nlta` squared samples, `cf[i] = (sta / nsta) / (lta / nlta)`,
//!   updated by adding the new square and subtracting the one leaving the window,
//!   in ObsPy's order of operations (so the values are ObsPy's to the last bit).
//!   Zero for the first `nlta - 1` samples.
//! - [`RecursiveStaLta`]: `recursive_sta_lta` (ObsPy's C `recstalta`): exponential
//!   averages `sta = sq / nsta + (1 - 1/nsta) sta` (and the same for `lta`), started
//!   at zero with the first sample skipped as ObsPy does; `cf = sta / lta`, zero for
//!   the first `nlta` samples.
//!
//! One deviation: where the long-term average is exactly zero (a channel of zeros)
//! ObsPy divides 0 by 0 and returns NaN; here the ratio is 0, so a dead channel never
//! triggers and never poisons a later comparison.

use serde::{Deserialize, Serialize};

use super::error::{positive, ConfigError};

/// Which characteristic function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StaLtaKind {
    /// Moving-window averages (ObsPy's `classic_sta_lta`).
    Classic,
    /// Exponential averages (ObsPy's `recursive_sta_lta`).
    Recursive,
}

/// Window lengths in samples, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaLtaConfig {
    /// Which function.
    pub kind: StaLtaKind,
    /// Short-term window, samples (at least 1).
    pub nsta: usize,
    /// Long-term window, samples (more than `nsta`).
    pub nlta: usize,
}

impl StaLtaConfig {
    /// Windows given in seconds at `rate` samples/s, converted to samples as ObsPy's
    /// `Trace.trigger` does: `int(seconds * rate)`, truncated.
    pub fn from_seconds(
        kind: StaLtaKind,
        sta: f64,
        lta: f64,
        rate: f64,
    ) -> Result<StaLtaConfig, ConfigError> {
        let rate = positive("sample_rate", rate)?;
        let mut samples = [0; 2];
        for (i, (field, seconds)) in [("sta", sta), ("lta", lta)].into_iter().enumerate() {
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
            samples[i] = n;
        }
        let config = StaLtaConfig {
            kind,
            nsta: samples[0],
            nlta: samples[1],
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks `1 <= nsta < nlta`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.nsta == 0 {
            return Err(ConfigError::NotPositive {
                field: "sta",
                value: 0.0,
            });
        }
        if self.nlta <= self.nsta {
            return Err(ConfigError::LtaNotLonger {
                sta: self.nsta,
                lta: self.nlta,
            });
        }
        Ok(())
    }
}

/// The ratio, 0 where the long-term average is 0 (see the module note).
#[inline(always)]
fn ratio(sta: f64, lta: f64) -> f64 {
    if lta == 0.0 {
        0.0
    } else {
        sta / lta
    }
}

/// Recursive STA/LTA state (ObsPy's `recursive_sta_lta`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecursiveStaLta {
    nlta: u64,
    csta: f64,
    clta: f64,
    icsta: f64,
    iclta: f64,
    sta: f64,
    lta: f64,
    /// Samples seen so far (the index of the next one).
    seen: u64,
}

impl RecursiveStaLta {
    /// A fresh state for windows `nsta` < `nlta` samples.
    pub fn new(nsta: usize, nlta: usize) -> Result<RecursiveStaLta, ConfigError> {
        StaLtaConfig {
            kind: StaLtaKind::Recursive,
            nsta,
            nlta,
        }
        .validate()?;
        let csta = 1.0 / nsta as f64;
        let clta = 1.0 / nlta as f64;
        Ok(RecursiveStaLta {
            nlta: nlta as u64,
            csta,
            clta,
            icsta: 1.0 - csta,
            iclta: 1.0 - clta,
            sta: 0.0,
            lta: 0.0,
            seen: 0,
        })
    }

    /// One sample in, its characteristic function value out.
    #[inline(always)]
    pub fn step(&mut self, x: f64) -> f64 {
        let i = self.seen;
        self.seen += 1;
        if i == 0 {
            // ObsPy's loop starts at index 1: the first sample never enters.
            return 0.0;
        }
        let sq = x * x;
        self.sta = self.csta * sq + self.icsta * self.sta;
        self.lta = self.clta * sq + self.iclta * self.lta;
        if i < self.nlta {
            0.0
        } else {
            ratio(self.sta, self.lta)
        }
    }

    /// Replaces each sample of `buf` by its characteristic function value.
    pub fn process(&mut self, buf: &mut [f64]) {
        // The warm-up (and the skipped first sample) sample by sample, the rest in a
        // loop without the index test.
        let warm = (self.nlta.saturating_sub(self.seen) as usize).min(buf.len());
        let (head, tail) = buf.split_at_mut(warm);
        for x in head {
            *x = self.step(*x);
        }
        let (csta, clta, icsta, iclta) = (self.csta, self.clta, self.icsta, self.iclta);
        let (mut sta, mut lta) = (self.sta, self.lta);
        for x in tail.iter_mut() {
            let sq = *x * *x;
            sta = csta * sq + icsta * sta;
            lta = clta * sq + iclta * lta;
            *x = ratio(sta, lta);
        }
        self.sta = sta;
        self.lta = lta;
        self.seen += tail.len() as u64;
    }

    /// Samples seen so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }
}

/// Classic STA/LTA state (ObsPy's `classic_sta_lta`): the running sums and the last
/// `nlta` squared samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassicStaLta {
    nsta: usize,
    nlta: usize,
    frac: f64,
    sta: f64,
    lta: f64,
    /// The last `nlta` squares; the square of sample `i` is at `i % nlta`.
    squares: Vec<f64>,
    seen: u64,
}

impl ClassicStaLta {
    /// A fresh state for windows `nsta` < `nlta` samples.
    pub fn new(nsta: usize, nlta: usize) -> Result<ClassicStaLta, ConfigError> {
        StaLtaConfig {
            kind: StaLtaKind::Classic,
            nsta,
            nlta,
        }
        .validate()?;
        Ok(ClassicStaLta {
            nsta,
            nlta,
            frac: nlta as f64 / nsta as f64,
            sta: 0.0,
            lta: 0.0,
            squares: vec![0.0; nlta],
            seen: 0,
        })
    }

    /// One sample in, its characteristic function value out.
    #[inline]
    pub fn step(&mut self, x: f64) -> f64 {
        let i = self.seen;
        self.seen += 1;
        let (nsta, nlta) = (self.nsta as u64, self.nlta as u64);
        let sq = x * x;
        let slot = (i % nlta) as usize;
        let out = if i < nsta {
            self.sta += sq;
            0.0
        } else {
            if i == nsta {
                self.lta = self.sta;
            }
            let leaving_sta = self.squares[((i - nsta) % nlta) as usize];
            if i < nlta {
                self.lta += sq;
                self.sta += sq - leaving_sta;
            } else {
                self.sta += sq - leaving_sta;
                self.lta += sq - self.squares[slot];
            }
            if i + 1 < nlta {
                0.0
            } else {
                ratio(self.sta, self.lta) * self.frac
            }
        };
        self.squares[slot] = sq;
        out
    }

    /// Replaces each sample of `buf` by its characteristic function value.
    pub fn process(&mut self, buf: &mut [f64]) {
        // The warm-up sample by sample, the rest with ring positions that wrap
        // instead of a division per sample.
        let warm = ((self.nlta as u64).saturating_sub(self.seen) as usize).min(buf.len());
        let (head, tail) = buf.split_at_mut(warm);
        for x in head {
            *x = self.step(*x);
        }
        if tail.is_empty() {
            return;
        }
        let nlta = self.nlta;
        let mut slot = (self.seen % nlta as u64) as usize;
        let mut sta_slot = ((self.seen - self.nsta as u64) % nlta as u64) as usize;
        let (mut sta, mut lta, frac) = (self.sta, self.lta, self.frac);
        let squares = &mut self.squares[..];
        for x in tail.iter_mut() {
            let sq = *x * *x;
            sta += sq - squares[sta_slot];
            lta += sq - squares[slot];
            squares[slot] = sq;
            *x = ratio(sta, lta) * frac;
            slot += 1;
            if slot == nlta {
                slot = 0;
            }
            sta_slot += 1;
            if sta_slot == nlta {
                sta_slot = 0;
            }
        }
        self.sta = sta;
        self.lta = lta;
        self.seen += tail.len() as u64;
    }

    /// Samples seen so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }
}

/// Either characteristic function, chosen by [`StaLtaConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StaLta {
    /// See [`ClassicStaLta`].
    Classic(ClassicStaLta),
    /// See [`RecursiveStaLta`].
    Recursive(RecursiveStaLta),
}

impl StaLta {
    /// A fresh state.
    pub fn new(config: StaLtaConfig) -> Result<StaLta, ConfigError> {
        Ok(match config.kind {
            StaLtaKind::Classic => StaLta::Classic(ClassicStaLta::new(config.nsta, config.nlta)?),
            StaLtaKind::Recursive => {
                StaLta::Recursive(RecursiveStaLta::new(config.nsta, config.nlta)?)
            }
        })
    }

    /// Replaces each sample of `buf` by its characteristic function value.
    pub fn process(&mut self, buf: &mut [f64]) {
        match self {
            StaLta::Classic(s) => s.process(buf),
            StaLta::Recursive(s) => s.process(buf),
        }
    }

    /// Samples seen so far.
    pub fn seen(&self) -> u64 {
        match self {
            StaLta::Classic(s) => s.seen(),
            StaLta::Recursive(s) => s.seen(),
        }
    }
}

/// ObsPy's `classic_sta_lta(a, nsta, nlta)` on a whole series.
pub fn classic_sta_lta(a: &[f64], nsta: usize, nlta: usize) -> Result<Vec<f64>, ConfigError> {
    let mut s = ClassicStaLta::new(nsta, nlta)?;
    let mut out = a.to_vec();
    s.process(&mut out);
    Ok(out)
}

/// ObsPy's `recursive_sta_lta(a, nsta, nlta)` on a whole series.
pub fn recursive_sta_lta(a: &[f64], nsta: usize, nlta: usize) -> Result<Vec<f64>, ConfigError> {
    let mut s = RecursiveStaLta::new(nsta, nlta)?;
    let mut out = a.to_vec();
    s.process(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// ObsPy 1.5's outputs for this series, printed by
    /// `classic_sta_lta(a, 2, 4)` and `recursive_sta_lta(a, 2, 4)`.
    const A: [f64; 12] = [3., 1., 2., 5., 4., 2., 1., 7., 3., 2., 8., 1.];

    #[test]
    fn small_series_equal_obspy() {
        let classic = [
            0.0, 0.0, 0.0, 1.48717949, 1.7826087, 0.81632653, 0.2173913, 1.42857143, 1.84126984,
            0.41269841, 1.07936508, 1.66666667,
        ];
        let recursive = [
            0.0, 0.0, 0.0, 0.0, 1.58329854, 1.17334633, 0.8308448, 1.59921054, 1.20659264,
            0.90223433, 1.4906651, 1.0069308,
        ];
        for (got, want) in [
            (classic_sta_lta(&A, 2, 4).unwrap(), classic),
            (recursive_sta_lta(&A, 2, 4).unwrap(), recursive),
        ] {
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-8, "{got:?}");
            }
        }
    }

    #[test]
    fn zeros_give_zero_not_nan() {
        let z = [0.0; 50];
        assert!(classic_sta_lta(&z, 2, 4).unwrap().iter().all(|v| *v == 0.0));
        assert!(recursive_sta_lta(&z, 2, 4)
            .unwrap()
            .iter()
            .all(|v| *v == 0.0));
    }

    #[test]
    fn windows_are_checked() {
        assert_eq!(
            RecursiveStaLta::new(4, 4).unwrap_err(),
            ConfigError::LtaNotLonger { sta: 4, lta: 4 }
        );
        assert_eq!(ClassicStaLta::new(0, 4).unwrap_err().field(), "sta");
        let e = StaLtaConfig::from_seconds(StaLtaKind::Classic, 10.0, 1.0, 40.0).unwrap_err();
        assert_eq!(e.field(), "lta");
        assert!(e.to_string().contains("longer"), "{e}");
        let e = StaLtaConfig::from_seconds(StaLtaKind::Classic, 0.01, 1.0, 40.0).unwrap_err();
        assert_eq!(e.field(), "sta");
        let c = StaLtaConfig::from_seconds(StaLtaKind::Recursive, 0.5, 10.0, 40.0).unwrap();
        assert_eq!((c.nsta, c.nlta), (20, 400));
        // int(), as ObsPy: 0.99 s at 40 sps is 39 samples.
        let c = StaLtaConfig::from_seconds(StaLtaKind::Recursive, 0.99, 10.0, 40.0).unwrap();
        assert_eq!(c.nsta, 39);
    }

    proptest! {
        #[test]
        fn streaming_equals_one_shot(
            a in proptest::collection::vec(-1e4f64..1e4, 0..400),
            nsta in 1usize..20,
            extra in 1usize..40,
            chunks in proptest::collection::vec(1usize..50, 1..20),
            classic in any::<bool>(),
        ) {
            let nlta = nsta + extra;
            let kind = if classic { StaLtaKind::Classic } else { StaLtaKind::Recursive };
            let config = StaLtaConfig { kind, nsta, nlta };
            let mut whole = a.clone();
            StaLta::new(config).unwrap().process(&mut whole);
            let mut s = StaLta::new(config).unwrap();
            let mut got = a.clone();
            let mut rest = &mut got[..];
            let mut k = 0;
            while !rest.is_empty() {
                let n = chunks[k % chunks.len()].min(rest.len());
                let (now, later) = rest.split_at_mut(n);
                s.process(now);
                // Save and restore the state between chunks, as a restart would.
                s = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
                rest = later;
                k += 1;
            }
            prop_assert_eq!(s.seen(), a.len() as u64);
            prop_assert_eq!(got, whole);
        }

        #[test]
        fn classic_is_the_ratio_of_window_means(
            a in proptest::collection::vec(-100f64..100.0, 60..120),
            nsta in 1usize..10,
            extra in 1usize..30,
        ) {
            let nlta = nsta + extra;
            let cf = classic_sta_lta(&a, nsta, nlta).unwrap();
            for i in 0..a.len() {
                if i + 1 < nlta {
                    prop_assert_eq!(cf[i], 0.0);
                    continue;
                }
                let mean = |n: usize| a[i + 1 - n..=i].iter().map(|x| x * x).sum::<f64>() / n as f64;
                let want = mean(nsta) / mean(nlta);
                prop_assert!((cf[i] - want).abs() <= 1e-9 * want.abs().max(1.0), "{} {} {}", i, cf[i], want);
            }
        }
    }
}
