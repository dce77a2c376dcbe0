//! A 512-byte miniSEED 2 record as a miniSEED 3 record, for SeedLink 4 clients that
//! select format 3 (`SELECT ...:3`).
//!
//! The samples are not re-encoded: a Steim1 or Steim2 record's frames (big-endian in
//! both versions) are carried over as they are, so the samples are bit for bit the
//! record's; 32-bit integer samples are rewritten little-endian, as miniSEED 3 wants.
//! The header (FDSN source id, start time with the microseconds of blockette 1001
//! and the time correction applied, rate, sample count, encoding, publication version
//! from the quality letter) comes from the miniSEED 2 header; the CRC is CRC-32C.
//! Other encodings are refused.

use super::frame::RECORD_LEN;
use crate::payload::seed;
use crate::Time;

/// Length of a miniSEED 3 fixed header.
pub const FIXED_HEADER: usize = 40;

/// Why a record cannot be written as miniSEED 3.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mseed3Error {
    /// The miniSEED 2 record does not decode.
    #[error("not a miniSEED 2 record: {0}")]
    Record(String),
    /// An encoding this conversion does not carry over.
    #[error("encoding {0} is not converted to miniSEED 3")]
    Encoding(u8),
}

/// CRC-32C (Castagnoli, reflected, as miniSEED 3 uses).
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0x82F6_3B78 & mask);
        }
    }
    !crc
}

fn be16(rec: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([rec[at], rec[at + 1]])
}

/// The encoding and word order of the record's blockette 1000.
fn b1000(rec: &[u8; RECORD_LEN]) -> Option<(u8, u8)> {
    let mut next = usize::from(be16(rec, 46));
    for _ in 0..32 {
        if next < 48 || next + 8 > RECORD_LEN {
            return None;
        }
        if be16(rec, next) == 1000 {
            return Some((rec[next + 4], rec[next + 5]));
        }
        let following = usize::from(be16(rec, next + 2));
        if following <= next {
            return None;
        }
        next = following;
    }
    None
}

/// The FDSN source id of SEED codes: `FDSN:NET_STA_LOC_B_S_SS`.
pub fn source_id(net: &str, sta: &str, loc: &str, chan: &str) -> String {
    let c: Vec<char> = chan.chars().collect();
    match c.as_slice() {
        [b, s, ss] => format!("FDSN:{net}_{sta}_{loc}_{b}_{s}_{ss}"),
        _ => format!("FDSN:{net}_{sta}_{loc}_{chan}"),
    }
}

/// The miniSEED 3 record holding the samples of `rec`.
pub fn from_mseed2(rec: &[u8; RECORD_LEN]) -> Result<Vec<u8>, Mseed3Error> {
    let ch = seed::decode(rec)
        .map_err(|e| Mseed3Error::Record(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| Mseed3Error::Record("no samples".into()))?;
    let (encoding, word_order) =
        b1000(rec).ok_or_else(|| Mseed3Error::Record("no blockette 1000".into()))?;
    let nsamp = u32::from(be16(rec, 30));
    let offset = usize::from(be16(rec, 44)).min(RECORD_LEN);
    let data: Vec<u8> = match encoding {
        10 | 11 if word_order == 1 => {
            let frames = (RECORD_LEN - offset) / 64;
            rec[offset..offset + frames * 64].to_vec()
        }
        3 => ch.samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
        other => return Err(Mseed3Error::Encoding(other)),
    };
    let sid = source_id(&ch.net, &ch.sta, &ch.loc, &ch.chan);
    let (year, day, hour, min, sec, nanos) = split_time(ch.start)?;
    let pubversion = match rec[6] {
        b'R' => 1,
        b'D' => 2,
        b'Q' => 3,
        b'M' => 4,
        _ => 0,
    };
    let mut out = Vec::with_capacity(FIXED_HEADER + sid.len() + data.len());
    out.extend_from_slice(b"MS");
    out.push(3);
    out.push(0); // flags
    out.extend_from_slice(&nanos.to_le_bytes());
    out.extend_from_slice(&year.to_le_bytes());
    out.extend_from_slice(&day.to_le_bytes());
    out.extend_from_slice(&[hour, min, sec, encoding]);
    out.extend_from_slice(&ch.samprate.to_le_bytes());
    out.extend_from_slice(&nsamp.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // CRC, filled in below
    out.push(pubversion);
    out.push(sid.len() as u8);
    out.extend_from_slice(&0u16.to_le_bytes()); // no extra headers
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(sid.as_bytes());
    out.extend_from_slice(&data);
    let crc = crc32c(&out);
    out[28..32].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// A time as miniSEED 3 fields: year, day of year, hour, minute, second, nanosecond.
fn split_time(t: Time) -> Result<(u16, u16, u8, u8, u8, u32), Mseed3Error> {
    use chrono::{Datelike, Timelike};
    let us = t.as_micros();
    let bad = || Mseed3Error::Record(format!("time {us} µs out of range"));
    let dt = chrono::DateTime::from_timestamp(us.div_euclid(1_000_000), 0).ok_or_else(bad)?;
    let year = u16::try_from(dt.year()).map_err(|_| bad())?;
    Ok((
        year,
        dt.ordinal() as u16,
        dt.hour() as u8,
        dt.minute() as u8,
        dt.second() as u8,
        (us.rem_euclid(1_000_000) * 1000) as u32,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{steim, Channel, Steim};
    use crate::seedlink::record;

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn a_steim_record_keeps_its_frames_and_samples() {
        let ch = Channel {
            net: "XX".into(),
            sta: "STA01".into(),
            chan: "BHZ".into(),
            loc: "00".into(),
            start: Time::parse_iso8601("2026-11-22T10:00:00.123456Z").unwrap(),
            samprate: 40.0,
            calib: 1.0,
            calper: 1.0,
            segtype: 'V',
            samples: (0..300).map(|i| (i * 7919) % 20_011 - 10_000).collect(),
        };
        let mut recs = Vec::new();
        record::encode(&ch, &mut recs).unwrap();
        let first = seed::decode(&recs[0]).unwrap().remove(0);
        let m3 = from_mseed2(&recs[0]).unwrap();
        assert_eq!(&m3[..3], b"MS\x03");
        let u32le = |at: usize| u32::from_le_bytes(m3[at..at + 4].try_into().unwrap());
        assert_eq!(u32le(4), 123_456_000, "nanoseconds");
        assert_eq!(u16::from_le_bytes([m3[8], m3[9]]), 2026);
        assert_eq!(u16::from_le_bytes([m3[10], m3[11]]), 326);
        assert_eq!((m3[12], m3[13], m3[14], m3[15]), (10, 0, 0, 11));
        assert_eq!(f64::from_le_bytes(m3[16..24].try_into().unwrap()), 40.0);
        let nsamp = u32le(24) as usize;
        assert_eq!(nsamp, first.samples.len());
        let mut zeroed = m3.clone();
        zeroed[28..32].fill(0);
        assert_eq!(u32le(28), crc32c(&zeroed));
        assert_eq!(m3[32], 2, "quality D");
        let sid_len = usize::from(m3[33]);
        let sid = &m3[40..40 + sid_len];
        assert_eq!(sid, b"FDSN:XX_STA01_00_B_H_Z");
        let data_len = u32le(36) as usize;
        assert_eq!(m3.len(), 40 + sid_len + data_len);
        let mut samples = Vec::new();
        steim::decode(&m3[40 + sid_len..], nsamp, Steim::Two, &mut samples).unwrap();
        assert_eq!(samples, first.samples);
    }
}
