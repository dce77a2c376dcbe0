//! [`BandPass`]: a causal Butterworth band-pass as cascaded second-order sections,
//! designed as scipy's `iirfilter(N, [f1, f2], btype='band', ftype='butter')` (which
//! ObsPy's `bandpass(..., corners=N, zerophase=False)` calls): the analog prototype's
//! poles, pre-warped band edges, the low-pass to band-pass transform and the bilinear
//! transform, so the transfer function is scipy's. Only the grouping of poles and
//! zeros into sections differs (every section here has the zeros at +1 and -1), which
//! changes rounding, not the filter.

use serde::{Deserialize, Serialize};

use super::error::{positive, ConfigError};

/// The highest filter order accepted: beyond it the poles crowd the unit circle and
/// the sections lose precision for little gain in selectivity.
pub const MAX_CORNERS: usize = 10;

/// What a band-pass filter is asked to be.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BandPassConfig {
    /// Low corner, Hz.
    pub freqmin: f64,
    /// High corner, Hz.
    pub freqmax: f64,
    /// Order of the low-pass prototype (ObsPy's `corners`); the band-pass has twice as
    /// many poles, in this many sections.
    pub corners: usize,
    /// The channel's sample rate, samples per second.
    pub sample_rate: f64,
}

/// One second-order section, `g (1 - z^-2) / (1 + a1 z^-1 + a2 z^-2)`, run in direct
/// form I: its state is the last two inputs and outputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Section {
    g: f64,
    a1: f64,
    a2: f64,
    x1: f64,
    x2: f64,
    y1: f64,
    y2: f64,
}

/// A causal Butterworth band-pass with its state: feed it a channel's samples in any
/// chunks, and the output is the same as filtering the whole series at once from zero
/// initial conditions (as `scipy.signal.sosfilt` does).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BandPass {
    config: BandPassConfig,
    sections: Vec<Section>,
}

impl BandPassConfig {
    /// Checks the parameters: corners 1 to [`MAX_CORNERS`], a positive rate, and
    /// `0 < freqmin < freqmax < rate / 2`. ObsPy turns a band reaching Nyquist into a
    /// high-pass with a warning; here that is an error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let rate = positive("sample_rate", self.sample_rate)?;
        if self.corners == 0 || self.corners > MAX_CORNERS {
            return Err(ConfigError::Corners {
                corners: self.corners,
                max: MAX_CORNERS,
            });
        }
        let nyquist = rate / 2.0;
        for (field, value) in [("freqmin", self.freqmin), ("freqmax", self.freqmax)] {
            if !(value.is_finite() && value > 0.0 && value < nyquist) {
                return Err(ConfigError::BandEdge {
                    field,
                    value,
                    nyquist,
                    rate,
                });
            }
        }
        if self.freqmin >= self.freqmax {
            return Err(ConfigError::BandOrder {
                freqmin: self.freqmin,
                freqmax: self.freqmax,
            });
        }
        Ok(())
    }
}

impl BandPass {
    /// Designs the filter, with zero state.
    pub fn new(config: BandPassConfig) -> Result<BandPass, ConfigError> {
        config.validate()?;
        let n = config.corners;
        // scipy normalizes the edges to Nyquist and designs at fs = 2: the bilinear
        // transform's 2 fs is 4, and pre-warping maps w to 4 tan(pi w / 2).
        let nyquist = config.sample_rate / 2.0;
        let warp = |f: f64| 4.0 * (std::f64::consts::PI * (f / nyquist) / 2.0).tan();
        let (w1, w2) = (warp(config.freqmin), warp(config.freqmax));
        let bw = w2 - w1;
        let wo2 = w1 * w2;
        // Analog Butterworth prototype (scipy's buttap): -exp(i pi m / 2N) for
        // m = -N+1, -N+3, ..., N-1; then lp2bp: each pole p gives
        // p bw/2 +- sqrt((p bw/2)^2 - wo^2); then the bilinear transform.
        let mut poles = Vec::with_capacity(2 * n);
        // The gain, bw^N 4^N / prod(4 - s) over the analog poles s (bilinear_zpk's
        // k prod(2fs - z) / prod(2fs - p), with the N analog zeros at 0).
        let mut k = C::new((4.0 * bw).powi(n as i32), 0.0);
        for j in 0..n {
            let m = -(n as f64) + 1.0 + 2.0 * j as f64;
            let theta = std::f64::consts::PI * m / (2.0 * n as f64);
            let p = C::new(-theta.cos(), -theta.sin()).scale(bw / 2.0);
            let root = (p * p - C::new(wo2, 0.0)).sqrt();
            for s in [p + root, p - root] {
                k = k / (C::new(4.0, 0.0) - s);
                poles.push((C::new(4.0, 0.0) + s) / (C::new(4.0, 0.0) - s));
            }
        }
        let gain = k.re;
        // Pair poles into sections: each complex pole with its conjugate, real poles
        // two by two. Sections farther from the unit circle run first, as scipy orders
        // them.
        let scale = poles.iter().map(|p| p.abs()).fold(0.0, f64::max);
        let tiny = 1e-12 * scale.max(1.0);
        let mut pairs: Vec<(f64, f64)> = poles
            .iter()
            .filter(|p| p.im > tiny)
            .map(|p| (-2.0 * p.re, p.re * p.re + p.im * p.im))
            .collect();
        let mut real: Vec<f64> = poles
            .iter()
            .filter(|p| p.im.abs() <= tiny)
            .map(|p| p.re)
            .collect();
        real.sort_by(f64::total_cmp);
        for r in real.chunks(2) {
            let (r1, r2) = (r[0], *r.get(1).unwrap_or(&0.0));
            pairs.push((-(r1 + r2), r1 * r2));
        }
        pairs.sort_by(|a, b| a.1.total_cmp(&b.1));
        let sections = pairs
            .into_iter()
            .enumerate()
            .map(|(i, (a1, a2))| Section {
                g: if i == 0 { gain } else { 1.0 },
                a1,
                a2,
                x1: 0.0,
                x2: 0.0,
                y1: 0.0,
                y2: 0.0,
            })
            .collect();
        Ok(BandPass { config, sections })
    }

    /// The parameters it was designed from.
    pub fn config(&self) -> &BandPassConfig {
        &self.config
    }

    /// Filters one sample.
    #[inline]
    pub fn step(&mut self, x: f64) -> f64 {
        let mut v = x;
        for s in &mut self.sections {
            // y[n] = g (x[n] - x[n-2]) - a2 y[n-2] - a1 y[n-1]: only the last product
            // depends on the previous output, which keeps the recurrence short.
            let y = (s.g * (v - s.x2) - s.a2 * s.y2) - s.a1 * s.y1;
            s.x2 = s.x1;
            s.x1 = v;
            s.y2 = s.y1;
            s.y1 = y;
            v = y;
        }
        v
    }

    /// Filters `samples` in place, continuing from the previous call.
    pub fn process(&mut self, samples: &mut [f64]) {
        // With the number of sections known at compile time the sections' state lives
        // in registers for the whole block instead of going through memory at every
        // sample; that is most of the filter's speed.
        match self.sections.len() {
            1 => run::<1>(&mut self.sections, samples),
            2 => run::<2>(&mut self.sections, samples),
            3 => run::<3>(&mut self.sections, samples),
            4 => run::<4>(&mut self.sections, samples),
            5 => run::<5>(&mut self.sections, samples),
            6 => run::<6>(&mut self.sections, samples),
            _ => {
                for x in samples {
                    *x = self.step(*x);
                }
            }
        }
    }

    /// Forgets the past: zero state, as before the first sample.
    pub fn reset(&mut self) {
        for s in &mut self.sections {
            s.x1 = 0.0;
            s.x2 = 0.0;
            s.y1 = 0.0;
            s.y2 = 0.0;
        }
    }

    /// The complex frequency response at `freq` Hz, as (magnitude, phase in radians).
    pub fn response(&self, freq: f64) -> (f64, f64) {
        let w = std::f64::consts::TAU * freq / self.config.sample_rate;
        let z1 = C::new(w.cos(), -w.sin()); // z^-1
        let z2 = z1 * z1;
        let mut h = C::new(1.0, 0.0);
        for s in &self.sections {
            let num = (C::new(1.0, 0.0) - z2).scale(s.g);
            let den = C::new(1.0, 0.0) + z1.scale(s.a1) + z2.scale(s.a2);
            h = h * num / den;
        }
        (h.abs(), h.im.atan2(h.re))
    }
}

/// [`BandPass::process`] for exactly `N` sections.
fn run<const N: usize>(sections: &mut [Section], samples: &mut [f64]) {
    let mut s: [Section; N] = sections.try_into().expect("N sections");
    for x in samples {
        let mut v = *x;
        for s in &mut s {
            let y = (s.g * (v - s.x2) - s.a2 * s.y2) - s.a1 * s.y1;
            s.x2 = s.x1;
            s.x1 = v;
            s.y2 = s.y1;
            s.y1 = y;
            v = y;
        }
        *x = v;
    }
    sections.copy_from_slice(&s);
}

/// Just enough complex arithmetic for the design.
#[derive(Debug, Clone, Copy)]
struct C {
    re: f64,
    im: f64,
}

impl C {
    fn new(re: f64, im: f64) -> C {
        C { re, im }
    }
    fn scale(self, f: f64) -> C {
        C::new(self.re * f, self.im * f)
    }
    fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }
    /// The principal square root (as numpy's).
    fn sqrt(self) -> C {
        let r = self.abs();
        let re = ((r + self.re) / 2.0).sqrt();
        let im = ((r - self.re) / 2.0).sqrt();
        C::new(re, if self.im < 0.0 { -im } else { im })
    }
}

impl std::ops::Add for C {
    type Output = C;
    fn add(self, o: C) -> C {
        C::new(self.re + o.re, self.im + o.im)
    }
}
impl std::ops::Sub for C {
    type Output = C;
    fn sub(self, o: C) -> C {
        C::new(self.re - o.re, self.im - o.im)
    }
}
impl std::ops::Mul for C {
    type Output = C;
    fn mul(self, o: C) -> C {
        C::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
}
impl std::ops::Div for C {
    type Output = C;
    fn div(self, o: C) -> C {
        let d = o.re * o.re + o.im * o.im;
        C::new(
            (self.re * o.re + self.im * o.im) / d,
            (self.im * o.re - self.re * o.im) / d,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(freqmin: f64, freqmax: f64, corners: usize, rate: f64) -> BandPassConfig {
        BandPassConfig {
            freqmin,
            freqmax,
            corners,
            sample_rate: rate,
        }
    }

    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed.max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect()
    }

    #[test]
    fn butterworth_response_half_power_at_the_corners_and_flat_inside() {
        for corners in 1..=MAX_CORNERS {
            let f = BandPass::new(config(1.0, 8.0, corners, 40.0)).unwrap();
            assert_eq!(f.sections.len(), corners);
            // The bilinear transform with pre-warping keeps the corners exact: -3 dB.
            for edge in [1.0, 8.0] {
                let (mag, _) = f.response(edge);
                assert!((mag - 0.5f64.sqrt()).abs() < 1e-9, "{corners}: {mag}");
            }
            // Unit gain at the centre: the geometric mean of the pre-warped edges.
            let t = |f: f64| (std::f64::consts::PI * f / 40.0).tan();
            let fc = (t(1.0) * t(8.0)).sqrt().atan() * 40.0 / std::f64::consts::PI;
            let (centre, _) = f.response(fc);
            assert!((centre - 1.0).abs() < 1e-9, "{corners}: {centre}");
            assert!(f.response(0.0).0 < 1e-12);
            assert!(f.response(20.0).0 < 1e-12);
        }
    }

    #[test]
    fn streaming_in_any_chunks_equals_one_shot() {
        let x = noise(5000, 7);
        let mut whole = BandPass::new(config(0.5, 5.0, 4, 40.0)).unwrap();
        let mut expect = x.clone();
        whole.process(&mut expect);
        for chunk in [1, 2, 3, 7, 40, 999, 5000] {
            let mut f = BandPass::new(config(0.5, 5.0, 4, 40.0)).unwrap();
            let mut got = x.clone();
            for c in got.chunks_mut(chunk) {
                f.process(c);
            }
            assert_eq!(got, expect, "chunk {chunk}");
        }
    }

    #[test]
    fn state_survives_serde_mid_stream() {
        let x = noise(1000, 3);
        let mut f = BandPass::new(config(0.5, 5.0, 4, 40.0)).unwrap();
        let mut expect = x.clone();
        f.clone().process(&mut expect);
        let mut got = x.clone();
        f.process(&mut got[..400]);
        let mut g: BandPass = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        g.process(&mut got[400..]);
        assert_eq!(got, expect);
    }

    #[test]
    fn bad_bands_are_refused_with_the_field() {
        let cases = [
            (config(0.0, 5.0, 4, 40.0), "freqmin"),
            (config(1.0, 20.0, 4, 40.0), "freqmax"),
            (config(1.0, 25.0, 4, 40.0), "freqmax"),
            (config(5.0, 1.0, 4, 40.0), "freqmin"),
            (config(1.0, 5.0, 0, 40.0), "corners"),
            (config(1.0, 5.0, 4, 0.0), "sample_rate"),
            (config(f64::NAN, 5.0, 4, 40.0), "freqmin"),
        ];
        for (c, field) in cases {
            let e = BandPass::new(c).unwrap_err();
            assert_eq!(e.field(), field, "{e}");
        }
        let e = BandPass::new(config(1.0, 20.0, 4, 40.0)).unwrap_err();
        assert!(e.to_string().contains("(0, 20)"), "{e}");
    }
}
