//! `MGENC`: several channels in one packet, each gencompressed, as Antelope writes it.
//!
//! ```text
//! offset size type      field
//!      0    2 u16 BE    version (we write 1; any value is read)
//!      2    2 u16 BE    nchan
//!      4      channel * nchan:
//!          40 char[10]*4  net, sta, chan, loc, NUL-padded   (only if nchan > 1)
//!           2 char[2]     segtype, NUL-padded
//!           8 f64 BE      start time, epoch seconds          (only if nchan > 1)
//!           2 u16 BE      nsamp
//!           4 f32 BE      samprate
//!           4 f32 BE      calib
//!           4 f32 BE      calper
//!                         nsamp < 5: nsamp * i32 BE samples
//!                         else: bytecount u16 BE, then bytecount bytes of gencompress
//! ```
//!
//! With one channel the names and time are omitted: they are the srcname's and the
//! packet's. Times travel as `f64` seconds, exact to the microsecond for any date
//! before 2106 (`docs/FORMATS.md`).

use super::{
    f32_field, fixed_text, gencompress, names_from_srcname, nsamp_u16, put_fixed_text,
    segtype_byte, widen_f32, Channel, PayloadError, Reader, Result,
};
use crate::{SrcName, Time};

/// The version field [`encode`] writes.
pub const VERSION: u16 = 1;

/// Bytes of each of net, sta, chan and loc.
pub const NAME_LEN: usize = 10;

/// Channels with fewer samples than this are stored uncompressed.
pub const MIN_COMPRESSED: usize = 5;

/// Encodes the channels into one MGENC payload. With exactly one channel, its names
/// and start are not stored (the srcname and packet time carry them).
pub fn encode(channels: &[Channel]) -> Result<Vec<u8>> {
    let nchan = u16::try_from(channels.len()).map_err(|_| PayloadError::TooMany {
        what: "MGENC channels",
        count: channels.len(),
        max: usize::from(u16::MAX),
    })?;
    let multi = nchan > 1;
    let mut out = Vec::with_capacity(
        4 + channels
            .iter()
            .map(|c| 80 + 2 * c.samples.len())
            .sum::<usize>(),
    );
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&nchan.to_be_bytes());
    let mut data = Vec::new();
    for ch in channels {
        if multi {
            put_fixed_text(&mut out, &ch.net, NAME_LEN, "net")?;
            put_fixed_text(&mut out, &ch.sta, NAME_LEN, "sta")?;
            put_fixed_text(&mut out, &ch.chan, NAME_LEN, "chan")?;
            put_fixed_text(&mut out, &ch.loc, NAME_LEN, "loc")?;
        }
        out.extend_from_slice(&[segtype_byte(ch.segtype)?, 0]);
        if multi {
            out.extend_from_slice(&time_to_secs(ch.start).to_be_bytes());
        }
        out.extend_from_slice(&nsamp_u16(ch.samples.len())?.to_be_bytes());
        out.extend_from_slice(&f32_field(ch.samprate, "samprate")?.to_be_bytes());
        out.extend_from_slice(&f32_field(ch.calib, "calib")?.to_be_bytes());
        out.extend_from_slice(&f32_field(ch.calper, "calper")?.to_be_bytes());
        if ch.samples.len() < MIN_COMPRESSED {
            for s in &ch.samples {
                out.extend_from_slice(&s.to_be_bytes());
            }
        } else {
            data.clear();
            gencompress::encode(&ch.samples, &mut data)?;
            let n = u16::try_from(data.len()).map_err(|_| PayloadError::TooMany {
                what: "MGENC compressed bytes of one channel",
                count: data.len(),
                max: usize::from(u16::MAX),
            })?;
            out.extend_from_slice(&n.to_be_bytes());
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// Decodes an MGENC payload.
pub fn decode(srcname: &SrcName, time: Time, payload: &[u8]) -> Result<Vec<Channel>> {
    let mut r = Reader::new(payload);
    let _version = r.u16("MGENC version")?;
    let nchan = r.u16("MGENC channel count")?;
    let multi = nchan > 1;
    // Each channel takes at least 16 bytes, so a lying count cannot make us allocate.
    let mut channels = Vec::with_capacity(usize::from(nchan).min(r.remaining() / 16));
    for _ in 0..nchan {
        let [mut net, mut sta, mut chan, mut loc] = if multi {
            Default::default()
        } else {
            names_from_srcname(srcname)
        };
        if multi {
            net = fixed_text(r.bytes(NAME_LEN, "net")?);
            sta = fixed_text(r.bytes(NAME_LEN, "sta")?);
            chan = fixed_text(r.bytes(NAME_LEN, "chan")?);
            loc = fixed_text(r.bytes(NAME_LEN, "loc")?);
        }
        let segtype = char::from(r.bytes(2, "segtype")?.first().copied().unwrap_or(0));
        let start = if multi {
            let at = r.pos();
            secs_to_time(r.f64("channel time")?).ok_or(PayloadError::BadField {
                what: "channel time",
                value: 0,
                offset: at,
            })?
        } else {
            time
        };
        let nsamp = usize::from(r.u16("nsamp")?);
        let samprate = widen_f32(r.f32("samprate")?);
        let calib = widen_f32(r.f32("calib")?);
        let calper = widen_f32(r.f32("calper")?);
        let samples = if nsamp < MIN_COMPRESSED {
            let raw = r.bytes(4 * nsamp, "samples")?;
            raw.chunks_exact(4)
                .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        } else {
            let n = usize::from(r.u16("MGENC byte count")?);
            gencompress::decode(r.bytes(n, "MGENC channel data")?, nsamp)?
        };
        channels.push(Channel {
            net,
            sta,
            chan,
            loc,
            start,
            samprate,
            calib,
            calper,
            segtype,
            samples,
        });
    }
    r.finish()?;
    Ok(channels)
}

/// Epoch seconds as Antelope's `double` time.
pub fn time_to_secs(t: Time) -> f64 {
    t.as_micros() as f64 / 1e6
}

/// Epoch seconds to the nearest microsecond; `None` if not finite or out of range.
pub fn secs_to_time(secs: f64) -> Option<Time> {
    let us = (secs * 1e6).round();
    (us.is_finite() && us.abs() < 9.2e18).then(|| Time::from_micros(us as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::testutil;
    use proptest::prelude::*;

    fn sn() -> SrcName {
        SrcName::new("XX_STA01/MGENC/M40").unwrap()
    }

    /// Two channels, one of 2 raw samples and one of 5 gencompressed samples.
    #[test]
    fn hand_built_vector() {
        #[rustfmt::skip]
        let bytes: Vec<u8> = [
            &[0, 1, 0, 2][..],                       // version 1, 2 channels
            b"XX\0\0\0\0\0\0\0\0", b"STA01\0\0\0\0\0", b"LDO\0\0\0\0\0\0\0", &[0; 10],
            b"P\0",
            &[0x41, 0xd9, 0x54, 0xfc, 0x40, 0x20, 0, 0], // 1700000000.5
            &[0, 2],                                  // 2 samples
            &[0x3f, 0x80, 0, 0],                      // 1 sps
            &[0x3c, 0x23, 0xd7, 0x0a],                // calib 0.01
            &[0x3f, 0x80, 0, 0],                      // calper 1
            &[0, 1, 0x8b, 0x0d, 0, 1, 0x8b, 0x0e],    // 101133, 101134 raw
            b"XX\0\0\0\0\0\0\0\0", b"STA01\0\0\0\0\0", b"BDF\0\0\0\0\0\0\0", &[0; 10],
            b"I\0",
            &[0x41, 0xd9, 0x54, 0xfc, 0x40, 0x20, 0, 0],
            &[0, 5],
            &[0x41, 0xa0, 0, 0],                      // 20 sps
            &[0x3a, 0x83, 0x12, 0x6f],                // calib 0.001
            &[0x3f, 0x80, 0, 0],
            &[0, 8],                                  // 8 bytes of gencompress
            &[0, 0, 0, 5, 25, 1, 0b0100_0011, 0b0100_0000], // 2-bit: 1,0,0,-1,1
        ].concat();
        let ch = decode(&sn(), Time::from_micros(0), &bytes).unwrap();
        assert_eq!(ch.len(), 2);
        assert_eq!(
            (ch[0].chan.as_str(), ch[0].segtype, ch[0].samprate),
            ("LDO", 'P', 1.0)
        );
        assert_eq!(ch[0].samples, vec![101_133, 101_134]);
        // The f32 calibrations read as the decimals written, not the floats widened.
        assert_eq!((ch[0].calib, ch[1].calib), (0.01, 0.001));
        assert_eq!(ch[0].start, Time::from_micros(1_700_000_000_500_000));
        assert_eq!(ch[1].samples, vec![1, 1, 1, 0, 1]);
        assert_eq!(ch[1].loc, "");
        assert_eq!(encode(&ch).unwrap(), bytes);
        for cut in 0..bytes.len() {
            assert!(
                decode(&sn(), Time::from_micros(0), &bytes[..cut]).is_err(),
                "{cut}"
            );
        }
    }

    #[test]
    fn bad_names_are_refused() {
        let ch = Channel {
            net: "TOO_LONG_NET".into(),
            sta: "A".into(),
            chan: "B".into(),
            loc: String::new(),
            start: Time::from_micros(0),
            samprate: 1.0,
            calib: 1.0,
            calper: 1.0,
            segtype: 'V',
            samples: vec![],
        };
        let err = encode(&[ch.clone(), ch]).unwrap_err();
        assert!(matches!(err, PayloadError::BadText { field: "net", .. }));
    }

    fn channel() -> impl Strategy<Value = Channel> {
        (
            testutil::code(5),
            testutil::code(3),
            -2_000_000_000_000_000i64..4_000_000_000_000_000,
            testutil::samprate(),
            testutil::segtype(),
            testutil::samples(200),
        )
            .prop_map(|(sta, chan, t, samprate, segtype, samples)| Channel {
                net: "XX".into(),
                sta,
                chan,
                loc: String::new(),
                start: Time::from_micros(t),
                samprate,
                calib: 0.25,
                calper: 1.0,
                segtype,
                samples,
            })
    }

    proptest! {
        #[test]
        fn round_trip(channels in proptest::collection::vec(channel(), 2..5)) {
            let enc = encode(&channels).unwrap();
            prop_assert_eq!(decode(&sn(), Time::from_micros(0), &enc).unwrap(), channels);
        }

        #[test]
        fn one_channel_takes_names_and_time_from_the_packet(mut ch in channel()) {
            ch.net = "XX".into();
            ch.sta = "STA01".into();
            ch.chan = String::new();
            let enc = encode(std::slice::from_ref(&ch)).unwrap();
            prop_assert_eq!(decode(&sn(), ch.start, &enc).unwrap(), vec![ch]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&sn(), Time::from_micros(0), &bytes);
        }
    }
}
