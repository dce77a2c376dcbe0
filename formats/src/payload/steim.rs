//! Steim1 and Steim2 compression (SEED 2.4, appendix B), big-endian.
//!
//! Data come in 64-byte frames of sixteen 32-bit words. Word 0 of each frame holds
//! sixteen 2-bit codes, one per word (word 0's code in bits 31-30). In the first frame
//! word 1 is the forward integration constant X0 (the first sample) and word 2 the
//! reverse integration constant Xn (the last sample); the other words hold first
//! differences, the first of which (from the previous record's last sample) readers
//! ignore because X0 gives the first sample.
//!
//! ```text
//! code  Steim1             Steim2 (dnib = bits 31-30 of the word)
//!  00   no data            no data
//!  01   4 x 8 bits         4 x 8 bits
//!  10   2 x 16 bits        dnib 01: 1 x 30, 10: 2 x 15, 11: 3 x 10 bits
//!  11   1 x 32 bits        dnib 00: 5 x 6,  01: 6 x 5,  10: 7 x 4 bits
//! ```
//!
//! Values are right-aligned in the word, the earliest difference most significant.
//! Differences wrap in 32 bits. Steim2 holds differences of at most 30 bits; larger
//! ones are [`PayloadError::DifferenceTooLarge`] (use Steim1). Our encoder writes the
//! first difference of a series as 0, and packs greedily, densest fit first.

use super::gencompress::width;
use super::{PayloadError, Result};

/// Bytes per frame.
pub const FRAME_LEN: usize = 64;
const WORDS: usize = 16;

/// Which Steim compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Steim {
    /// Steim1: 8, 16 or 32-bit differences; never fails.
    One,
    /// Steim2: 4 to 30-bit differences; denser, the SEED default.
    #[default]
    Two,
}

/// (count, bits, code, dnib) per Steim2 word form, densest first.
const STEIM2: [(usize, u32, u32, u32); 7] = [
    (7, 4, 3, 2),
    (6, 5, 3, 1),
    (5, 6, 3, 0),
    (4, 8, 1, 0),
    (3, 10, 2, 3),
    (2, 15, 2, 2),
    (1, 30, 2, 1),
];
const STEIM1: [(usize, u32, u32, u32); 3] = [(4, 8, 1, 0), (2, 16, 2, 0), (1, 32, 3, 0)];

/// Packs `k` differences of `bits` bits right-aligned, earliest most significant.
fn pack(ds: &[i32], bits: u32) -> u32 {
    let mask = if bits == 32 {
        u32::MAX
    } else {
        (1u32 << bits) - 1
    };
    ds.iter().fold(0u32, |w, &d| {
        (w.checked_shl(bits).unwrap_or(0)) | (d as u32 & mask)
    })
}

/// What [`encode`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoded {
    /// Samples encoded (from the start of the input).
    pub samples: usize,
    /// Frames appended.
    pub frames: usize,
}

/// Encodes as many leading `samples` as fit in `max_frames` frames, appending the
/// frames (only those used) to `out`. `prev` is the sample before `samples[0]`, for
/// the first difference; `None` writes 0 there.
pub fn encode(
    samples: &[i32],
    prev: Option<i32>,
    steim: Steim,
    max_frames: usize,
    out: &mut Vec<u8>,
) -> Result<Encoded> {
    let capacity = (max_frames * (WORDS - 1)).saturating_sub(2);
    if samples.is_empty() || capacity == 0 {
        return Ok(Encoded {
            samples: 0,
            frames: 0,
        });
    }
    let forms: &[(usize, u32, u32, u32)] = match steim {
        Steim::One => &STEIM1,
        Steim::Two => &STEIM2,
    };
    let limit = capacity * 7;
    let n = samples.len().min(limit);
    let mut diffs = Vec::with_capacity(n);
    diffs.push(prev.map_or(0, |p| samples[0].wrapping_sub(p)));
    diffs.extend(samples[..n].windows(2).map(|w| w[1].wrapping_sub(w[0])));
    let widths: Vec<u8> = diffs.iter().map(|&d| width(d) as u8).collect();
    let mut words: Vec<(u32, u32)> = Vec::with_capacity(capacity);
    let mut i = 0;
    while i < n && words.len() < capacity {
        let left = n - i;
        let form = forms.iter().find(|&&(k, bits, _, _)| {
            k <= left && widths[i..i + k].iter().all(|&w| u32::from(w) <= bits)
        });
        let Some(&(k, bits, code, dnib)) = form else {
            return Err(PayloadError::DifferenceTooLarge {
                index: i,
                diff: diffs[i],
                bits: 30,
            });
        };
        let mut word = pack(&diffs[i..i + k], bits);
        if code != 1 && steim == Steim::Two {
            word |= dnib << 30;
        }
        words.push((code, word));
        i += k;
    }
    let frames = (words.len() + 2).div_ceil(WORDS - 1);
    let mut slots = words.iter();
    for f in 0..frames {
        let mut frame = [0u32; WORDS];
        let first = if f == 0 { 3 } else { 1 };
        if f == 0 {
            frame[1] = samples[0] as u32;
            frame[2] = samples[i - 1] as u32;
        }
        let mut ctrl = 0u32;
        for (j, slot) in frame.iter_mut().enumerate().skip(first) {
            let Some(&(code, word)) = slots.next() else {
                break;
            };
            *slot = word;
            ctrl |= code << (30 - 2 * j);
        }
        frame[0] = ctrl;
        for w in frame {
            out.extend_from_slice(&w.to_be_bytes());
        }
    }
    Ok(Encoded { samples: i, frames })
}

#[inline]
fn sext(v: u32, bits: u32) -> i32 {
    ((v << (32 - bits)) as i32) >> (32 - bits)
}

/// Decodes `nsamp` samples from whole frames in `data`, appending them to `out`.
pub fn decode(data: &[u8], nsamp: usize, steim: Steim, out: &mut Vec<i32>) -> Result<()> {
    if nsamp == 0 {
        return Ok(());
    }
    let frames = data.len() / FRAME_LEN;
    // Seven differences per word at most: refuse counts the frames cannot hold before
    // reserving room for them.
    if nsamp > frames * WORDS * 7 {
        return Err(PayloadError::CountMismatch {
            what: "steim frames",
            declared: nsamp,
            found: frames * WORDS * 7,
        });
    }
    out.reserve(nsamp);
    let base = out.len();
    let mut x0 = 0i32;
    let mut xn = 0i32;
    let mut last = 0i32;
    let mut count = 0usize;
    let mut buf = [0i32; 7];
    'frames: for (f, frame) in data.chunks_exact(FRAME_LEN).enumerate() {
        let mut w = [0u32; WORDS];
        for (slot, b) in w.iter_mut().zip(frame.chunks_exact(4)) {
            *slot = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        }
        let first = if f == 0 {
            x0 = w[1] as i32;
            xn = w[2] as i32;
            3
        } else {
            1
        };
        for (j, &word) in w.iter().enumerate().skip(first) {
            let code = (w[0] >> (30 - 2 * j)) & 3;
            let dnib = word >> 30;
            let (k, bits) = match (steim, code, dnib) {
                (_, 0, _) => continue,
                (_, 1, _) => (4, 8),
                (Steim::One, 2, _) => (2, 16),
                (Steim::One, _, _) => (1, 32),
                (Steim::Two, 2, 1) => (1, 30),
                (Steim::Two, 2, 2) => (2, 15),
                (Steim::Two, 2, 3) => (3, 10),
                (Steim::Two, 3, 0) => (5, 6),
                (Steim::Two, 3, 1) => (6, 5),
                (Steim::Two, 3, 2) => (7, 4),
                (Steim::Two, _, _) => {
                    return Err(PayloadError::BadField {
                        what: "steim2 dnib",
                        value: i64::from(dnib),
                        offset: f * FRAME_LEN + 4 * j,
                    })
                }
            };
            for (m, d) in buf[..k].iter_mut().enumerate() {
                let shift = bits * (k - 1 - m) as u32;
                *d = sext(word >> shift, bits);
            }
            for &d in &buf[..k] {
                last = if count == 0 { x0 } else { last.wrapping_add(d) };
                out.push(last);
                count += 1;
                if count == nsamp {
                    break 'frames;
                }
            }
        }
    }
    if count != nsamp {
        out.truncate(base);
        return Err(PayloadError::CountMismatch {
            what: "steim frames",
            declared: nsamp,
            found: count,
        });
    }
    if last != xn {
        out.truncate(base);
        return Err(PayloadError::IntegrityMismatch {
            expected: xn,
            found: last,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::testutil;
    use proptest::prelude::*;

    fn frame(words: &[u32]) -> Vec<u8> {
        let mut f = vec![0u8; FRAME_LEN];
        for (i, w) in words.iter().enumerate() {
            f[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
        }
        f
    }

    fn enc(samples: &[i32], steim: Steim) -> Vec<u8> {
        let mut out = Vec::new();
        let e = encode(samples, None, steim, 7, &mut out).unwrap();
        assert_eq!(e.samples, samples.len());
        out
    }

    fn dec(data: &[u8], n: usize, steim: Steim) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        decode(data, n, steim, &mut out).map(|()| out)
    }

    /// Samples 10, 12, 9, 9, 300: differences (0), 2, -3, 0, 291.
    /// Steim1: word 3 = four 8-bit differences 00 02 FD 00 (code 01), word 4 = one
    /// 32-bit difference 0x123 (code 11). Control: 01 at word 3 (bits 25-24) and 11 at
    /// word 4 (bits 23-22) = 0x01C00000. X0 = 10, Xn = 300 = 0x12C.
    #[test]
    fn steim1_hand_vector() {
        let want = frame(&[0x01C0_0000, 10, 0x12C, 0x0002_FD00, 0x0000_0123]);
        let samples = [10, 12, 9, 9, 300];
        assert_eq!(enc(&samples, Steim::One), want);
        assert_eq!(dec(&want, 5, Steim::One).unwrap(), samples);
    }

    /// The same samples in Steim2: 0, 2, -3, 0 as four bytes (code 01), then 291 does
    /// not fit five 6-bit values, so 1 x 30 bits (code 10, dnib 01: 0x40000123).
    /// Control 0x01000000 | 10 << 22 = 0x01800000.
    #[test]
    fn steim2_hand_vector() {
        let want = frame(&[0x0180_0000, 10, 0x12C, 0x0002_FD00, 0x4000_0123]);
        let samples = [10, 12, 9, 9, 300];
        assert_eq!(enc(&samples, Steim::Two), want);
        assert_eq!(dec(&want, 5, Steim::Two).unwrap(), samples);
    }

    /// Samples 1..=8: differences (0), 1 x 7 fill one 7 x 4-bit word (code 11, dnib 10:
    /// 0x8_0111111), the last 1 goes in 1 x 30 (0x40000001). Control 0x03800000.
    #[test]
    fn steim2_seven_nibbles() {
        let want = frame(&[0x0380_0000, 1, 8, 0x8011_1111, 0x4000_0001]);
        let samples: Vec<i32> = (1..=8).collect();
        assert_eq!(enc(&samples, Steim::Two), want);
        assert_eq!(dec(&want, 8, Steim::Two).unwrap(), samples);
        // Negative values: 5 x 6 bits of -32 (0b100000) each, code 11 dnib 00.
        let f = frame(&[0x0300_0000, 0, -128i32 as u32, 0x2082_0820]);
        assert_eq!(
            dec(&f, 5, Steim::Two).unwrap(),
            vec![0, -32, -64, -96, -128]
        );
    }

    #[test]
    fn malformed_frames_are_errors() {
        let good = frame(&[0x0180_0000, 10, 0x12C, 0x0002_FD00, 0x4000_0123]);
        let mut bad_xn = good.clone();
        bad_xn[11] = 0x2D;
        assert!(matches!(
            dec(&bad_xn, 5, Steim::Two),
            Err(PayloadError::IntegrityMismatch {
                expected: 0x12D,
                found: 300
            })
        ));
        assert!(matches!(
            dec(&good, 6, Steim::Two),
            Err(PayloadError::CountMismatch {
                declared: 6,
                found: 5,
                ..
            })
        ));
        assert!(matches!(
            dec(&good[..63], 1, Steim::Two),
            Err(PayloadError::CountMismatch { .. })
        ));
        let bad_dnib = frame(&[0x0200_0000, 0, 0, 0x0000_0001]);
        assert!(matches!(
            dec(&bad_dnib, 2, Steim::Two),
            Err(PayloadError::BadField {
                what: "steim2 dnib",
                ..
            })
        ));
        assert!(matches!(
            dec(&good, 1_000_000, Steim::Two),
            Err(PayloadError::CountMismatch { .. })
        ));
    }

    #[test]
    fn steim2_refuses_wide_differences() {
        let mut out = Vec::new();
        let e = encode(&[0, 1 << 29], None, Steim::Two, 7, &mut out);
        assert!(matches!(
            e,
            Err(PayloadError::DifferenceTooLarge {
                index: 1,
                diff: 536_870_912,
                bits: 30
            })
        ));
        // i32::MIN / i32::MAX alternate with wrapping differences of -1 and 1.
        let alt = [i32::MIN, i32::MAX, i32::MIN, i32::MAX];
        assert_eq!(dec(&enc(&alt, Steim::Two), 4, Steim::Two).unwrap(), alt);
    }

    #[test]
    fn long_series_fill_frames_and_stop() {
        let samples: Vec<i32> = (0..5000).map(|i| (i * 7919) % 100_003).collect();
        let mut out = Vec::new();
        let e = encode(&samples, None, Steim::One, 7, &mut out).unwrap();
        assert_eq!(e.frames, 7);
        assert_eq!(out.len(), 7 * FRAME_LEN);
        assert!(e.samples > 0 && e.samples < samples.len());
        assert_eq!(
            dec(&out, e.samples, Steim::One).unwrap(),
            samples[..e.samples]
        );
    }

    fn fits30(s: &[i32]) -> bool {
        s.windows(2).all(|w| width(w[1].wrapping_sub(w[0])) <= 30)
    }

    proptest! {
        #[test]
        fn round_trip_steim1(samples in testutil::samples(90)) {
            let out = enc(&samples, Steim::One);
            prop_assert_eq!(dec(&out, samples.len(), Steim::One).unwrap(), samples);
        }

        #[test]
        fn round_trip_steim2(samples in testutil::samples(300)) {
            let mut out = Vec::new();
            match encode(&samples, None, Steim::Two, 7, &mut out) {
                Ok(e) => {
                    prop_assert!(fits30(&samples[..e.samples]));
                    prop_assert_eq!(dec(&out, e.samples, Steim::Two).unwrap(), &samples[..e.samples]);
                }
                Err(PayloadError::DifferenceTooLarge { .. }) => prop_assert!(!fits30(&samples)),
                Err(e) => prop_assert!(false, "{e}"),
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), n in 0usize..200) {
            let _ = dec(&bytes, n, Steim::One);
            let _ = dec(&bytes, n, Steim::Two);
        }
    }
}
