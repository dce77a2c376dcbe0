//! `GEN`: one channel of plain 32-bit samples, as Antelope writes it.
//!
//! ```text
//! offset size type      field
//!      0    4 f32 BE    samprate (samples/s)
//!      4    4 f32 BE    calib (units per count)
//!      8    4 f32 BE    calper (s)
//!     12    2 u16 BE    nsamp
//!     14    2 char[2]   segtype, NUL-padded
//!     16  4*n i32 BE    samples
//! ```
//!
//! The start time is the packet time; net, sta, chan and loc come from the srcname.

use super::{
    f32_field, names_from_srcname, nsamp_u16, segtype_byte, widen_f32, Channel, Reader, Result,
};
use crate::{SrcName, Time};

/// Bytes before the samples in GEN and GENC.
pub const HEADER_LEN: usize = 16;

/// The GEN/GENC header fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Header {
    pub samprate: f32,
    pub calib: f32,
    pub calper: f32,
    pub nsamp: u16,
    pub segtype: char,
}

pub(crate) fn read_header(r: &mut Reader<'_>) -> Result<Header> {
    let samprate = r.f32("samprate")?;
    let calib = r.f32("calib")?;
    let calper = r.f32("calper")?;
    let nsamp = r.u16("nsamp")?;
    let seg = r.bytes(2, "segtype")?;
    Ok(Header {
        samprate,
        calib,
        calper,
        nsamp,
        segtype: char::from(seg.first().copied().unwrap_or(0)),
    })
}

pub(crate) fn write_header(ch: &Channel, out: &mut Vec<u8>) -> Result<()> {
    let nsamp = nsamp_u16(ch.samples.len())?;
    out.extend_from_slice(&f32_field(ch.samprate, "samprate")?.to_be_bytes());
    out.extend_from_slice(&f32_field(ch.calib, "calib")?.to_be_bytes());
    out.extend_from_slice(&f32_field(ch.calper, "calper")?.to_be_bytes());
    out.extend_from_slice(&nsamp.to_be_bytes());
    out.extend_from_slice(&[segtype_byte(ch.segtype)?, 0]);
    Ok(())
}

pub(crate) fn channel(srcname: &SrcName, time: Time, h: Header, samples: Vec<i32>) -> Channel {
    let [net, sta, chan, loc] = names_from_srcname(srcname);
    Channel {
        net,
        sta,
        chan,
        loc,
        start: time,
        samprate: widen_f32(h.samprate),
        calib: widen_f32(h.calib),
        calper: widen_f32(h.calper),
        segtype: h.segtype,
        samples,
    }
}

/// Encodes one channel; its names and start time travel in the srcname and packet time.
pub fn encode(ch: &Channel) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(HEADER_LEN + 4 * ch.samples.len());
    write_header(ch, &mut out)?;
    for s in &ch.samples {
        out.extend_from_slice(&s.to_be_bytes());
    }
    Ok(out)
}

/// Decodes a GEN payload.
pub fn decode(srcname: &SrcName, time: Time, payload: &[u8]) -> Result<Channel> {
    let mut r = Reader::new(payload);
    let h = read_header(&mut r)?;
    let n = usize::from(h.nsamp);
    let data = r.bytes(4 * n, "GEN samples")?;
    r.finish()?;
    let samples = data
        .chunks_exact(4)
        .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
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
            0x42, 0x20, 0, 0, // 40.0 sps
            0x3f, 0x80, 0, 0, // calib 1.0
            0x40, 0, 0, 0, // calper 2.0
            0, 2, // 2 samples
            b'V', 0, // velocity
            0xff, 0xff, 0xff, 0xfe, // -2
            0, 0, 0x01, 0x00, // 256
        ];
        let sn = SrcName::new("XX_STA01_BHZ/GEN").unwrap();
        let t = Time::from_micros(5);
        let ch = decode(&sn, t, &bytes).unwrap();
        assert_eq!(
            (ch.net.as_str(), ch.sta.as_str(), ch.chan.as_str()),
            ("XX", "STA01", "BHZ")
        );
        assert_eq!(
            (ch.samprate, ch.calib, ch.calper, ch.segtype),
            (40.0, 1.0, 2.0, 'V')
        );
        assert_eq!(ch.samples, vec![-2, 256]);
        assert_eq!(ch.start, t);
        assert_eq!(encode(&ch).unwrap(), bytes);
        assert!(matches!(
            decode(&sn, t, &bytes[..20]),
            Err(PayloadError::Truncated { .. })
        ));
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(matches!(
            decode(&sn, t, &long),
            Err(PayloadError::TrailingBytes { offset: 24, len: 1 })
        ));
    }

    proptest! {
        #[test]
        fn round_trip(samples in testutil::samples(300), rate in testutil::samprate(), seg in testutil::segtype()) {
            let sn = SrcName::new("XX_STA01_BHZ/GEN").unwrap();
            let t = Time::from_micros(1_700_000_000_000_000);
            let ch = Channel { net: "XX".into(), sta: "STA01".into(), chan: "BHZ".into(), loc: String::new(),
                start: t, samprate: rate, calib: 0.5, calper: 1.0, segtype: seg, samples };
            prop_assert_eq!(decode(&sn, t, &encode(&ch).unwrap()).unwrap(), ch);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let sn = SrcName::new("XX_STA01_BHZ/GEN").unwrap();
            let _ = decode(&sn, Time::from_micros(0), &bytes);
        }
    }
}
