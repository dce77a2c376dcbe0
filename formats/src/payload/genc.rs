//! `GENC`: one channel, gencompressed, as Antelope writes it.
//!
//! The 16-byte header of [`gen`](super::gen) (samprate, calib, calper, nsamp,
//! segtype), then a [`gencompress`] stream to the end of the
//! payload. The start time is the packet time; names come from the srcname.

use super::gen::{channel, read_header, write_header, HEADER_LEN};
use super::{gencompress, Channel, Reader, Result};
use crate::{SrcName, Time};

/// Encodes one channel; its names and start time travel in the srcname and packet time.
pub fn encode(ch: &Channel) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(HEADER_LEN + 5 + ch.samples.len() * 2);
    write_header(ch, &mut out)?;
    gencompress::encode(&ch.samples, &mut out)?;
    Ok(out)
}

/// Decodes a GENC payload.
pub fn decode(srcname: &SrcName, time: Time, payload: &[u8]) -> Result<Channel> {
    let mut r = Reader::new(payload);
    let h = read_header(&mut r)?;
    let rest = r.bytes(r.remaining(), "GENC data")?;
    let samples = gencompress::decode(rest, usize::from(h.nsamp))?;
    Ok(channel(srcname, time, h, samples))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{testutil, PayloadError};
    use proptest::prelude::*;

    #[test]
    fn hand_built_vector() {
        let bytes = [
            0x41, 0xa0, 0, 0, // 20.0 sps
            0x3a, 0x83, 0x12, 0x6f, // calib 0.001
            0x3f, 0x80, 0, 0, // calper 1.0
            0, 3, // 3 samples
            b'I', 0, // infrasound
            0, 0, 0, 3, 25,   // one section: 3 values, groups of 25
            0x03, // 4-bit values: 5, -1, -1 (samples 5, 4, 3)
            0x5f, 0xf0,
        ];
        let sn = SrcName::new("XX_PRS01_BDF/GENC").unwrap();
        let ch = decode(&sn, Time::from_micros(0), &bytes).unwrap();
        assert_eq!(ch.samples, vec![5, 4, 3]);
        assert_eq!(ch.calib, 0.001);
        assert_eq!(ch.segtype, 'I');
        assert_eq!(encode(&ch).unwrap(), bytes);
        let mut short = bytes.to_vec();
        short[13] = 4;
        assert!(matches!(
            decode(&sn, Time::from_micros(0), &short),
            Err(PayloadError::CountMismatch { .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trip(samples in testutil::samples(300), rate in testutil::samprate()) {
            let sn = SrcName::new("XX_STA01_BHZ_00/GENC").unwrap();
            let t = Time::from_micros(-5);
            let ch = Channel { net: "XX".into(), sta: "STA01".into(), chan: "BHZ".into(), loc: "00".into(),
                start: t, samprate: rate, calib: 1.0, calper: 1.0, segtype: 'V', samples };
            prop_assert_eq!(decode(&sn, t, &encode(&ch).unwrap()).unwrap(), ch);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let sn = SrcName::new("XX_STA01_BHZ/GENC").unwrap();
            let _ = decode(&sn, Time::from_micros(0), &bytes);
        }
    }
}
