//! Packets as SeedLink records: the stream identity of a 512-byte miniSEED record,
//! and a packet's payload as 512-byte records.
//!
//! SeedLink 3 carries only 512-byte records. An orb `SEED` packet made of 512-byte
//! records is passed on unchanged (byte for byte what the station wrote); any other
//! packet the payload registry decodes (`GEN`, `GENC`, `MGENC`, `SEED` with other
//! record lengths) is re-encoded, channel by channel in the packet's order, as
//! 512-byte Steim2 records (Steim1 if a first difference does not fit Steim2's 30
//! bits).

use super::frame::RECORD_LEN;
use crate::payload::{self, seed, Channel, PayloadError};
use crate::{SrcName, Time};

/// What selectors look at in a record: its stream codes and SeedLink type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamId {
    /// Network code.
    pub net: String,
    /// Station code.
    pub sta: String,
    /// Location code (may be empty).
    pub loc: String,
    /// Channel code.
    pub chan: String,
    /// SeedLink type: `D` for data records (the only kind an orb serves).
    pub kind: u8,
}

impl StreamId {
    /// The identity written in a record's fixed header (trailing spaces trimmed).
    pub fn of_record(rec: &[u8; RECORD_LEN]) -> StreamId {
        let text = |r: std::ops::Range<usize>| String::from_utf8_lossy(&rec[r]).trim().to_string();
        StreamId {
            sta: text(8..13),
            loc: text(13..15),
            chan: text(15..18),
            net: text(18..20),
            kind: b'D',
        }
    }
}

/// The time span of a record's samples: its start and the time just after its last
/// sample (as decoded, with the time correction applied); `None` if it does not
/// decode.
pub fn span(rec: &[u8; RECORD_LEN]) -> Option<(Time, Time)> {
    let ch = seed::decode(rec).ok()?.into_iter().next()?;
    Some((ch.start, ch.end()))
}

/// A packet's payload as 512-byte records (see the module docs); an error when the
/// payload cannot be decoded or a channel cannot be written as miniSEED (codes too
/// long, a rate SEED cannot express).
pub fn records(
    srcname: &SrcName,
    time: Time,
    bytes: &[u8],
) -> Result<Vec<[u8; RECORD_LEN]>, PayloadError> {
    let is_seed = matches!(srcname.suffix(), Some("SEED" | "MSEED"));
    if is_seed && all_512(bytes) {
        return Ok(bytes
            .chunks_exact(RECORD_LEN)
            .map(|c| c.try_into().expect("exact chunk"))
            .collect());
    }
    let mut out = Vec::new();
    for ch in payload::decode(srcname, time, bytes)? {
        encode(&ch, &mut out)?;
    }
    Ok(out)
}

/// Appends one channel as 512-byte records.
pub fn encode(ch: &Channel, out: &mut Vec<[u8; RECORD_LEN]>) -> Result<(), PayloadError> {
    let bytes = seed::encode_steim(ch)?;
    out.extend(
        bytes
            .chunks_exact(RECORD_LEN)
            .map(|c| <[u8; RECORD_LEN]>::try_from(c).expect("exact chunk")),
    );
    Ok(())
}

/// True if `bytes` is a whole number of records that each say (blockette 1000) they
/// are 512 bytes long.
fn all_512(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.len().is_multiple_of(RECORD_LEN)
        && bytes
            .chunks_exact(RECORD_LEN)
            .all(|r| b1000_exponent(r) == Some(9))
}

/// The record-length exponent of a record's blockette 1000, if it has one.
fn b1000_exponent(rec: &[u8]) -> Option<u8> {
    let be16 = |at: usize| {
        rec.get(at..at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let mut next = be16(46)?;
    for _ in 0..32 {
        if next < 48 || next + 8 > rec.len() {
            return None;
        }
        if be16(next)? == 1000 {
            return rec.get(next + 6).copied();
        }
        let following = be16(next + 2)?;
        if following <= next {
            return None;
        }
        next = following;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{mgenc, Steim};

    fn channel(chan: &str, n: i32) -> Channel {
        Channel {
            net: "XX".into(),
            sta: "STA01".into(),
            chan: chan.into(),
            loc: String::new(),
            start: Time::from_micros(1_795_341_600_000_000),
            samprate: 40.0,
            calib: 1.0,
            calper: 1.0,
            segtype: 'V',
            samples: (0..n).map(|i| (i * i * 37) % 2001 - 1000).collect(),
        }
    }

    #[test]
    fn seed_packets_of_512_byte_records_pass_unchanged() {
        let payload = seed::encode(&channel("BHZ", 900), Steim::Two).unwrap();
        let src = SrcName::new("XX_STA01_BHZ/SEED").unwrap();
        let recs = records(&src, Time::from_micros(0), &payload).unwrap();
        assert_eq!(recs.concat(), payload);
        assert_eq!(StreamId::of_record(&recs[0]).chan, "BHZ");
        let (start, end) = span(&recs[0]).unwrap();
        assert_eq!(start, Time::from_micros(1_795_341_600_000_000));
        assert!(end > start);
    }

    #[test]
    fn mgenc_packets_become_steim2_records_channel_by_channel() {
        let chans = [channel("BHZ", 40), channel("BHN", 40)];
        let payload = mgenc::encode(&chans).unwrap();
        let src = SrcName::new("XX_STA01/MGENC").unwrap();
        let recs = records(&src, chans[0].start, &payload).unwrap();
        assert_eq!(recs.len(), 2);
        let back = seed::decode(&recs.concat()).unwrap();
        assert_eq!(back.len(), 2);
        for (got, want) in back.iter().zip(&chans) {
            assert_eq!(got.samples, want.samples);
            assert_eq!(got.start, want.start);
            assert_eq!(got.chan, want.chan);
            assert_eq!(recs[0][52], 11, "Steim2");
        }
    }

    #[test]
    fn seed_records_of_other_lengths_are_re_encoded_as_512_bytes() {
        // A 256-byte record: few samples fit in its first frames; blockette 1000 says 2^8.
        let ch = channel("BHZ", 20);
        let mut short = seed::encode(&ch, Steim::Two).unwrap();
        short.truncate(256);
        short[54] = 8;
        let src = SrcName::new("XX_STA01_BHZ/SEED").unwrap();
        let recs = records(&src, Time::from_micros(0), &short).unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0][54], 9, "a 512-byte record");
        let back = seed::decode(&recs[0]).unwrap();
        assert_eq!(back[0].samples, ch.samples);
        assert_eq!(back[0].start, ch.start);
    }

    #[test]
    fn undecodable_packets_are_errors() {
        let src = SrcName::new("XX_STA01/MGENC").unwrap();
        assert!(records(&src, Time::from_micros(0), b"junk").is_err());
        let src = SrcName::new("XX_STA01/EXP").unwrap();
        assert!(records(&src, Time::from_micros(0), b"junk").is_err());
    }
}
