//! gencompress: Antelope's compression of first differences in groups, each group
//! with its own bit width.
//!
//! ```text
//! stream  := section*                       (empty for no samples)
//! section := gcnsamp:i32 BE  gclen:u8  group*   groups hold gcnsamp values in all
//! group   := width-1:u8  value{min(gclen, left)}  (padding to a byte)
//! value   := `width` bits, two's complement, most significant bit first
//! ```
//!
//! The values are the first differences of the samples (`d[0] = x[0]`,
//! `d[i] = x[i] - x[i-1]`, both wrapping in 32 bits), so a decoder adds them up. The
//! encoder writes one section with groups of [`GROUP_LEN`] values (Antelope's callers
//! pass 25) and the narrowest width that holds each group (1 to 32 bits); the decoder
//! accepts any number of sections and any group length from 1 to 255.

use super::{PayloadError, Reader, Result};

/// Values per group written by [`encode`]; the length Antelope's own callers use.
pub const GROUP_LEN: u8 = 25;

/// Bits needed to hold `v` in two's complement (1..=32).
pub(crate) fn width(v: i32) -> u32 {
    let magnitude = if v < 0 { !v } else { v };
    33 - magnitude.leading_zeros()
}

/// Appends the gencompressed `samples` to `out` (nothing for no samples).
pub fn encode(samples: &[i32], out: &mut Vec<u8>) -> Result<()> {
    if samples.is_empty() {
        return Ok(());
    }
    let n = i32::try_from(samples.len()).map_err(|_| PayloadError::TooMany {
        what: "gencompress samples",
        count: samples.len(),
        max: i32::MAX as usize,
    })?;
    out.reserve(5 + samples.len() * 2);
    out.extend_from_slice(&n.to_be_bytes());
    out.push(GROUP_LEN);
    let mut prev = 0i32;
    let mut diffs = [0i32; GROUP_LEN as usize];
    for group in samples.chunks(usize::from(GROUP_LEN)) {
        let mut bits = 1;
        for (d, &x) in diffs.iter_mut().zip(group) {
            *d = x.wrapping_sub(prev);
            prev = x;
            bits = bits.max(width(*d));
        }
        out.push((bits - 1) as u8);
        let mask = (1u64 << bits) - 1;
        let (mut acc, mut nbits) = (0u64, 0u32);
        for &d in &diffs[..group.len()] {
            // acc keeps fewer than 8 pending bits before this shift, so none are lost.
            acc = (acc << bits) | (u64::from(d as u32) & mask);
            nbits += bits;
            while nbits >= 8 {
                nbits -= 8;
                out.push((acc >> nbits) as u8);
            }
        }
        if nbits > 0 {
            out.push((acc << (8 - nbits)) as u8);
        }
    }
    Ok(())
}

/// Decodes a whole gencompress stream that must hold exactly `nsamp` samples.
pub fn decode(data: &[u8], nsamp: usize) -> Result<Vec<i32>> {
    let mut out = Vec::with_capacity(nsamp);
    decode_into(data, nsamp, &mut out)?;
    Ok(out)
}

/// As [`decode`], appending to `out`.
pub fn decode_into(data: &[u8], nsamp: usize, out: &mut Vec<i32>) -> Result<()> {
    let base = out.len();
    let mut r = Reader::new(data);
    let mut sum = 0i32;
    while r.remaining() > 0 {
        let at = r.pos();
        let count = r.i32("gencompress section count")?;
        let done = out.len() - base;
        let count = usize::try_from(count)
            .ok()
            .filter(|&c| c <= nsamp - done)
            .ok_or(PayloadError::BadField {
                what: "gencompress section count",
                value: i64::from(count),
                offset: at,
            })?;
        let at = r.pos();
        let glen = usize::from(r.u8("gencompress group length")?);
        if glen == 0 && count > 0 {
            return Err(PayloadError::BadField {
                what: "gencompress group length",
                value: 0,
                offset: at,
            });
        }
        out.reserve(count);
        let mut left = count;
        while left > 0 {
            let at = r.pos();
            let bits = u32::from(r.u8("gencompress group width")?) + 1;
            if bits > 32 {
                return Err(PayloadError::BadField {
                    what: "gencompress bit width",
                    value: i64::from(bits),
                    offset: at,
                });
            }
            let k = glen.min(left);
            let nbytes = (k * bits as usize).div_ceil(8);
            let bytes = r.bytes(nbytes, "gencompress group")?;
            sum = unpack_group(bytes, bits, k, sum, out);
            left -= k;
        }
    }
    let found = out.len() - base;
    if found != nsamp {
        return Err(PayloadError::CountMismatch {
            what: "gencompress",
            declared: nsamp,
            found,
        });
    }
    Ok(())
}

/// Unpacks `k` values of `bits` bits from `bytes` (which holds at least `k * bits`
/// bits), adding each to the running sum and pushing the sums. Returns the sum.
#[inline]
fn unpack_group(bytes: &[u8], bits: u32, k: usize, mut sum: i32, out: &mut Vec<i32>) -> i32 {
    let shift = 32 - bits;
    let mut acc = 0u64;
    let mut nbits = 0u32;
    let mut src = bytes.chunks(4);
    for _ in 0..k {
        if nbits < bits {
            // Refill up to 4 bytes at once; acc then holds at most 7 + 32 bits.
            let chunk = src.next().unwrap_or(&[]);
            let n = chunk.len() as u32;
            let mut tail = [0u8; 4];
            tail[..chunk.len()].copy_from_slice(chunk);
            acc = (acc << 32) | u64::from(u32::from_be_bytes(tail));
            nbits += 32;
            // Bits beyond the real bytes are zero and never counted as data.
            nbits -= 8 * (4 - n);
            acc >>= 8 * (4 - n);
        }
        // The caller sized `bytes` to hold every value, so this never saturates.
        nbits = nbits.saturating_sub(bits);
        let v = ((acc >> nbits) as u32) << shift;
        sum = sum.wrapping_add((v as i32) >> shift);
        out.push(sum);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::testutil;
    use proptest::prelude::*;

    #[test]
    fn widths() {
        assert_eq!(width(0), 1);
        assert_eq!(width(-1), 1);
        assert_eq!(width(1), 2);
        assert_eq!(width(-2), 2);
        assert_eq!(width(127), 8);
        assert_eq!(width(-128), 8);
        assert_eq!(width(128), 9);
        assert_eq!(width(i32::MAX), 32);
        assert_eq!(width(i32::MIN), 32);
    }

    /// Hand-built: samples 1, 2, 4, 3 have differences 1, 1, 2, -1, which all fit in
    /// 3 bits: 001 001 010 111, padded with four zero bits to 0x25 0x70.
    #[test]
    fn hand_built_vector() {
        let bytes = [
            0x00,
            0x00,
            0x00,
            0x04, // 4 samples in this section
            0x19, // groups of 25
            0x02, // width 3 bits
            0b0010_0101,
            0b0111_0000,
        ];
        assert_eq!(decode(&bytes, 4).unwrap(), vec![1, 2, 4, 3]);
        let mut enc = Vec::new();
        encode(&[1, 2, 4, 3], &mut enc).unwrap();
        assert_eq!(enc, bytes);
    }

    /// Two sections of one sample each, with 32-bit and 1-bit groups: the decoder
    /// takes what Antelope's writers may produce, not only what ours writes.
    #[test]
    fn hand_built_two_sections() {
        let bytes = [
            0, 0, 0, 1, 1, 31, 0x80, 0, 0, 0, // i32::MIN
            0, 0, 0, 1, 7, 0, 0x80, // -1 in 1 bit
        ];
        assert_eq!(decode(&bytes, 2).unwrap(), vec![i32::MIN, i32::MAX]);
    }

    #[test]
    fn malformed_streams_are_errors() {
        assert!(matches!(
            decode(&[0, 0, 0], 1),
            Err(PayloadError::Truncated { .. })
        ));
        assert!(matches!(
            decode(&[0, 0, 0, 2, 25, 40, 0], 2),
            Err(PayloadError::BadField {
                what: "gencompress bit width",
                ..
            })
        ));
        assert!(matches!(
            decode(&[0, 0, 0, 9, 25, 0, 0], 2),
            Err(PayloadError::BadField {
                what: "gencompress section count",
                ..
            })
        ));
        assert!(matches!(
            decode(&[0, 0, 0, 1, 0, 0, 0], 1),
            Err(PayloadError::BadField {
                what: "gencompress group length",
                ..
            })
        ));
        assert!(matches!(
            decode(&[0, 0, 0, 1, 25, 0, 0x80], 2),
            Err(PayloadError::CountMismatch {
                declared: 2,
                found: 1,
                ..
            })
        ));
        assert!(matches!(
            decode(&[0, 0, 0, 2, 25, 31, 0], 2),
            Err(PayloadError::Truncated { .. })
        ));
        assert_eq!(decode(&[], 0).unwrap(), Vec::<i32>::new());
    }

    proptest! {
        #[test]
        fn round_trip(samples in testutil::samples(300)) {
            let mut enc = Vec::new();
            encode(&samples, &mut enc).unwrap();
            prop_assert_eq!(decode(&enc, samples.len()).unwrap(), samples);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), n in 0usize..100) {
            let _ = decode(&bytes, n);
        }
    }
}
