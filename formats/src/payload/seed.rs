//! `SEED`: a payload of one or more whole miniSEED 2 records (SEED 2.4). We write
//! big-endian records; we read either byte order.
//!
//! Each record (we write 512 bytes) is a 48-byte fixed header, blockette 1000 and
//! blockette 1001 (8 bytes each), then Steim frames from offset 64:
//!
//! ```text
//! offset size field
//!      0    6 sequence number, ASCII digits ("000001")
//!      6    1 data quality 'D'           7  1 reserved ' '
//!      8    5 station, space-padded     13  2 location    15  3 channel   18  2 network
//!     20   10 start BTIME: u16 year, u16 day of year, u8 hour, u8 minute, u8 second,
//!             u8 unused, u16 ten-thousandths of a second
//!     30    2 u16 nsamp                 32  2 i16 rate factor   34  2 i16 rate multiplier
//!     36    1 activity flags            37  1 I/O flags         38  1 quality flags
//!     39    1 number of blockettes      40  4 i32 time correction (0.0001 s)
//!     44    2 u16 data offset           46  2 u16 first blockette offset
//!     48    8 blockette 1000: u16 1000, u16 next, u8 encoding (10 Steim1, 11 Steim2),
//!             u8 word order (1 = big-endian), u8 log2(record length), u8 reserved
//!     56    8 blockette 1001: u16 1001, u16 next (0), u8 timing quality,
//!             i8 microseconds (-50..=49, added to the start), u8 reserved, u8 frames
//!     64      data
//! ```
//!
//! The decoder follows the blockette chain (1000 is required, 1001 optional), applies
//! the time correction unless activity flag bit 1 says it was applied, reads encodings
//! 1 (i16), 3 (i32), 10 (Steim1) and 11 (Steim2), and joins
//! consecutive records of one channel that continue each other (start within half a
//! sample of where the previous ended) into one [`Channel`]. miniSEED carries no
//! calib, calper or segtype: decoded channels get [`CALIB`], [`CALPER`], [`SEGTYPE`].
//!
//! **Byte order.** SEED says big-endian, but some writers (simplemseed, some
//! dataloggers) write little-endian records. As libmseed does, the header's order is
//! read off the year: a big-endian year outside 1900..=2100 whose little-endian
//! reading is inside it marks a little-endian header, whose fields and blockette
//! headers are then read swapped. The data's order is blockette 1000's word order
//! (0 little, 1 big), for the integer encodings and the Steim frames' 32-bit words.

use chrono::{Datelike, NaiveDate, Timelike};

use super::steim::{self, Steim, FRAME_LEN};
use super::{Channel, PayloadError, Reader, Result};
use crate::Time;

/// Record length [`encode`] writes.
pub const RECORD_LEN: usize = 512;
/// Where the data start in records [`encode`] writes.
pub const DATA_OFFSET: usize = 64;
/// calib of decoded channels (miniSEED does not carry it).
pub const CALIB: f64 = 1.0;
/// calper of decoded channels.
pub const CALPER: f64 = 1.0;
/// segtype of decoded channels: unknown.
pub const SEGTYPE: char = '-';

/// Encodes one channel as 512-byte records (as many as the samples need; one record
/// with no samples for an empty channel).
pub fn encode(ch: &Channel, steim: Steim) -> Result<Vec<u8>> {
    let names = [
        (&ch.sta, 5, "station"),
        (&ch.loc, 2, "location"),
        (&ch.chan, 3, "channel"),
        (&ch.net, 2, "network"),
    ];
    for (v, max, field) in names {
        if v.len() > max || !v.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(PayloadError::BadText {
                field,
                value: v.clone(),
                max,
            });
        }
    }
    let (factor, mult) = rate_factors(ch.samprate)?;
    let max_frames = (RECORD_LEN - DATA_OFFSET) / FRAME_LEN;
    let mut out = Vec::with_capacity(RECORD_LEN * (1 + ch.samples.len() / 300));
    let mut done = 0usize;
    let mut seq = 1u32;
    loop {
        let start = ch.sample_time(done);
        let rec = out.len();
        out.resize(rec + DATA_OFFSET, 0);
        let e = steim::encode(
            &ch.samples[done..],
            done.checked_sub(1).map(|i| ch.samples[i]),
            steim,
            max_frames,
            &mut out,
        )
        .map_err(|e| match e {
            PayloadError::DifferenceTooLarge { index, diff, bits } => {
                PayloadError::DifferenceTooLarge {
                    index: index + done,
                    diff,
                    bits,
                }
            }
            e => e,
        })?;
        out.resize(rec + RECORD_LEN, 0);
        let h = &mut out[rec..rec + DATA_OFFSET];
        h[..6].copy_from_slice(format!("{:06}", seq % 1_000_000).as_bytes());
        h[6] = b'D';
        h[7] = b' ';
        for (v, off, len) in [
            (&ch.sta, 8, 5),
            (&ch.loc, 13, 2),
            (&ch.chan, 15, 3),
            (&ch.net, 18, 2),
        ] {
            let field = &mut h[off..off + len];
            field.fill(b' ');
            field[..v.len()].copy_from_slice(v.as_bytes());
        }
        let (btime, usec) = btime(start)?;
        h[20..30].copy_from_slice(&btime);
        let nsamp = u16::try_from(e.samples).unwrap_or(u16::MAX);
        h[30..32].copy_from_slice(&nsamp.to_be_bytes());
        h[32..34].copy_from_slice(&factor.to_be_bytes());
        h[34..36].copy_from_slice(&mult.to_be_bytes());
        h[39] = 2;
        h[44..46].copy_from_slice(&(DATA_OFFSET as u16).to_be_bytes());
        h[46..48].copy_from_slice(&48u16.to_be_bytes());
        h[48..50].copy_from_slice(&1000u16.to_be_bytes());
        h[50..52].copy_from_slice(&56u16.to_be_bytes());
        h[52] = match steim {
            Steim::One => 10,
            Steim::Two => 11,
        };
        h[53] = 1;
        h[54] = RECORD_LEN.trailing_zeros() as u8;
        h[56..58].copy_from_slice(&1001u16.to_be_bytes());
        h[61] = usec as u8;
        h[63] = e.frames as u8;
        done += e.samples;
        seq += 1;
        if done >= ch.samples.len() {
            return Ok(out);
        }
    }
}

/// Encodes one channel as 512-byte Steim2 records, or Steim1 records when a first
/// difference does not fit Steim2's 30 bits: what SeedLink and SDS archives get for
/// packets that are not already miniSEED.
pub fn encode_steim(ch: &Channel) -> Result<Vec<u8>> {
    match encode(ch, Steim::Two) {
        Err(PayloadError::DifferenceTooLarge { .. }) => encode(ch, Steim::One),
        r => r,
    }
}

/// One record of a payload, read from its header alone: where it is and what it
/// holds.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordHeader {
    /// Its bytes in the payload.
    pub range: std::ops::Range<usize>,
    /// Its stream codes, start time (corrections applied) and rate; no samples.
    pub channel: Channel,
    /// The header's sample count.
    pub nsamp: usize,
}

/// The header of a payload's first record alone: a cheap check that a payload is
/// miniSEED, for writers given records made by [`encode`] or already read.
pub fn first_record_header(payload: &[u8]) -> Result<RecordHeader> {
    let (channel, len, nsamp) = decode_record(payload, 0, Samples::Skip)?;
    Ok(RecordHeader {
        range: 0..len,
        channel,
        nsamp,
    })
}

/// The records of a payload, headers only (samples are not decoded): for writers
/// that copy records byte for byte but must know where each starts and belongs.
pub fn record_headers(payload: &[u8]) -> Result<Vec<RecordHeader>> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < payload.len() {
        let (channel, len, nsamp) = decode_record(&payload[offset..], offset, Samples::Skip)?;
        out.push(RecordHeader {
            range: offset..offset + len,
            channel,
            nsamp,
        });
        offset += len;
    }
    Ok(out)
}

/// Sample rate as SEED's factor and multiplier: integer rates as (rate, 1), integer
/// periods as (-period, 1), anything else as the nearest n/d with d < 32768.
pub fn rate_factors(rate: f64) -> Result<(i16, i16)> {
    let bad = || PayloadError::BadValue {
        what: "sample rate",
        value: rate.to_string(),
    };
    if !rate.is_finite() || rate < 0.0 {
        return Err(bad());
    }
    if rate == 0.0 {
        return Ok((0, 0));
    }
    if rate.fract() == 0.0 && rate <= 32767.0 {
        return Ok((rate as i16, 1));
    }
    let period = 1.0 / rate;
    if period.fract() == 0.0 && period <= 32767.0 {
        return Ok((-(period as i16), 1));
    }
    let mut best: Option<(f64, i16, i16)> = None;
    for d in 1..=32767i32 {
        let n = (rate * f64::from(d)).round();
        if !(1.0..=32767.0).contains(&n) {
            continue;
        }
        let err = (n / f64::from(d) - rate).abs();
        if best.is_none_or(|b| err < b.0) {
            best = Some((err, n as i16, -(d as i16)));
        }
        if err == 0.0 {
            break;
        }
    }
    best.map(|(_, n, d)| (n, d)).ok_or_else(bad)
}

/// The rate SEED's factor and multiplier stand for.
pub fn rate_from_factors(factor: i16, mult: i16) -> f64 {
    let (f, m) = (f64::from(factor), f64::from(mult));
    match (factor, mult) {
        (0, _) | (_, 0) => 0.0,
        (1.., 1..) => f * m,
        (1.., _) => -f / m,
        (_, 1..) => -m / f,
        _ => 1.0 / (f * m),
    }
}

/// A time as BTIME (to 100 us) and the -50..=49 microseconds blockette 1001 adds.
fn btime(t: Time) -> Result<([u8; 10], i8)> {
    let us = t.as_micros();
    let mut ticks = us.div_euclid(100);
    let mut rem = us.rem_euclid(100);
    if rem >= 50 {
        ticks += 1;
        rem -= 100;
    }
    let secs = ticks.div_euclid(10_000);
    let frac = ticks.rem_euclid(10_000) as u16;
    let bad = || PayloadError::BadValue {
        what: "record start time",
        value: t.to_string(),
    };
    let dt = chrono::DateTime::from_timestamp(secs, 0).ok_or_else(bad)?;
    let year = u16::try_from(dt.year()).map_err(|_| bad())?;
    let mut b = [0u8; 10];
    b[..2].copy_from_slice(&year.to_be_bytes());
    b[2..4].copy_from_slice(&(dt.ordinal() as u16).to_be_bytes());
    b[4] = dt.hour() as u8;
    b[5] = dt.minute() as u8;
    b[6] = dt.second() as u8;
    b[8..10].copy_from_slice(&frac.to_be_bytes());
    Ok((b, rem as i8))
}

/// Decodes every record of the payload, joining records that continue each other.
pub fn decode(payload: &[u8]) -> Result<Vec<Channel>> {
    let mut channels: Vec<Channel> = Vec::new();
    let mut offset = 0;
    while offset < payload.len() {
        let (ch, len, _) = decode_record(&payload[offset..], offset, Samples::Decode)?;
        offset += len;
        if let Some(prev) = channels.last_mut() {
            if continues(prev, &ch) {
                prev.samples.extend_from_slice(&ch.samples);
                continue;
            }
        }
        channels.push(ch);
    }
    Ok(channels)
}

/// The time of the payload's first sample and of its last record's last sample (`None`
/// for an empty payload), read from the record headers alone: the samples are not
/// decoded, so this is what a gateway can afford per packet streamed.
pub fn time_span(payload: &[u8]) -> Result<Option<(Time, Time)>> {
    let mut offset = 0;
    let mut span = None;
    while offset < payload.len() {
        let (ch, len, nsamp) = decode_record(&payload[offset..], offset, Samples::Skip)?;
        offset += len;
        let end = ch.sample_time(nsamp.saturating_sub(1));
        span = Some(span.map_or((ch.start, end), |(first, _)| (first, end)));
    }
    Ok(span)
}

/// Whether [`decode_record`] decodes the samples or reads the header alone.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Samples {
    Decode,
    Skip,
}

fn continues(prev: &Channel, next: &Channel) -> bool {
    let same = prev.net == next.net
        && prev.sta == next.sta
        && prev.loc == next.loc
        && prev.chan == next.chan
        && prev.samprate == next.samprate
        && prev.samprate > 0.0;
    if !same {
        return false;
    }
    let gap = next
        .start
        .as_micros()
        .saturating_sub(prev.end().as_micros());
    (gap as f64).abs() <= 0.5e6 / prev.samprate
}

fn text(b: &[u8]) -> String {
    b.iter()
        .map(|&c| char::from(c))
        .collect::<String>()
        .trim()
        .to_owned()
}

fn field<T>(what: &'static str, value: i64, offset: usize) -> Result<T> {
    Err(PayloadError::BadField {
        what,
        value,
        offset,
    })
}

/// The fixed header's multi-byte fields, as (offset, length): year, day, ticks, nsamp,
/// rate factor, rate multiplier (16 bits), time correction (32), data offset and first
/// blockette (16). A little-endian header has each of them reversed.
const HEADER_FIELDS: [(usize, usize); 9] = [
    (20, 2),
    (22, 2),
    (28, 2),
    (30, 2),
    (32, 2),
    (34, 2),
    (40, 4),
    (44, 2),
    (46, 2),
];

/// The longest record blockette 1000 can declare (2^16 bytes).
const MAX_RECORD_LEN: usize = 1 << 16;

/// True if the record at the start of `buf` has a little-endian header (see the
/// module docs): its year reads plausibly only when swapped.
fn little_endian_header(buf: &[u8]) -> bool {
    let Some(&[a, b]) = buf.get(20..22) else {
        return false;
    };
    let plausible = |y: u16| (1900..=2100).contains(&y);
    !plausible(u16::from_be_bytes([a, b])) && plausible(u16::from_le_bytes([a, b]))
}

/// A copy of the record at the start of `buf` (up to the longest record length) with
/// its fixed header's and blockette headers' multi-byte fields turned big-endian, so
/// one reader serves both orders. The data are left as they are: blockette 1000's word
/// order tells how to read them. Bad blockette offsets stop the swapping; the reader
/// then reports them.
fn swap_header(buf: &[u8]) -> Vec<u8> {
    let mut rec = buf[..buf.len().min(MAX_RECORD_LEN)].to_vec();
    let swap = |rec: &mut Vec<u8>, at: usize, len: usize| {
        if let Some(field) = rec.get_mut(at..at + len) {
            field.reverse();
        }
    };
    for &(at, len) in &HEADER_FIELDS {
        swap(&mut rec, at, len);
    }
    let mut next = rec
        .get(46..48)
        .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    let mut last = 0;
    for _ in 0..32 {
        if next < 48 || next <= last || next + 4 > rec.len() {
            break;
        }
        swap(&mut rec, next, 2);
        swap(&mut rec, next + 2, 2);
        last = next;
        next = usize::from(u16::from_be_bytes([rec[next + 2], rec[next + 3]]));
    }
    rec
}

/// One record at the start of `buf` (`at` is its offset in the payload, for errors):
/// the channel (without samples if `samples` is [`Samples::Skip`]), the record length
/// and the header's sample count.
fn decode_record(buf: &[u8], at: usize, samples: Samples) -> Result<(Channel, usize, usize)> {
    if little_endian_header(buf) {
        return decode_big_endian_header(&swap_header(buf), at, samples);
    }
    decode_big_endian_header(buf, at, samples)
}

/// [`decode_record`] for a record whose header is big-endian.
fn decode_big_endian_header(
    buf: &[u8],
    at: usize,
    want: Samples,
) -> Result<(Channel, usize, usize)> {
    let mut r = Reader::new(buf);
    let fixed = r.bytes(48, "miniSEED fixed header")?;
    let mut h = Reader::new(fixed);
    let _seq = h.bytes(8, "sequence")?;
    let sta = text(h.bytes(5, "station")?);
    let loc = text(h.bytes(2, "location")?);
    let chan = text(h.bytes(3, "channel")?);
    let net = text(h.bytes(2, "network")?);
    let year = h.u16("year")?;
    let doy = h.u16("day of year")?;
    let hour = h.u8("hour")?;
    let minute = h.u8("minute")?;
    let second = h.u8("second")?;
    let _ = h.u8("unused")?;
    let ticks = h.u16("ticks")?;
    let nsamp = usize::from(h.u16("nsamp")?);
    let factor = h.u16("rate factor")? as i16;
    let mult = h.u16("rate multiplier")? as i16;
    let activity = h.u8("activity flags")?;
    let _io = h.u8("io flags")?;
    let _quality = h.u8("quality flags")?;
    let _nblk = h.u8("blockette count")?;
    let correction = h.i32("time correction")?;
    let data_offset = usize::from(h.u16("data offset")?);
    let mut next = usize::from(h.u16("first blockette")?);

    let date = match NaiveDate::from_yo_opt(i32::from(year), u32::from(doy)) {
        Some(d) => d,
        None => return field("record day of year", i64::from(doy), at + 22),
    };
    if hour > 23 || minute > 59 || second > 60 || ticks > 9999 {
        return field("record time of day", i64::from(hour), at + 24);
    }
    let secs = date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp()
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second);
    let mut us = secs * 1_000_000 + i64::from(ticks) * 100;
    if activity & 0x02 == 0 {
        us += i64::from(correction) * 100;
    }

    let mut encoding = None;
    let mut reclen = None;
    let mut little_data = false;
    let mut hops = 0;
    let mut last = 0;
    while next != 0 {
        hops += 1;
        if hops > 32 || next < 48 || next <= last {
            return field("blockette offset", next as i64, at + last);
        }
        last = next;
        let mut b = Reader::new(buf.get(next..).unwrap_or(&[]));
        let kind = b.u16("blockette type")?;
        let following = usize::from(b.u16("next blockette")?);
        match kind {
            1000 => {
                let enc = b.u8("encoding")?;
                let order = b.u8("word order")?;
                let exp = b.u8("record length")?;
                if order > 1 {
                    return field("word order", i64::from(order), at + next + 5);
                }
                little_data = order == 0;
                if !(7..=16).contains(&exp) {
                    return field("record length exponent", i64::from(exp), at + next + 6);
                }
                encoding = Some(enc);
                reclen = Some(1usize << exp);
            }
            1001 => {
                let _quality = b.u8("timing quality")?;
                us += i64::from(b.u8("microseconds")? as i8);
            }
            _ => {}
        }
        next = following;
    }
    let (Some(encoding), Some(reclen)) = (encoding, reclen) else {
        return Err(PayloadError::Unsupported {
            offset: at,
            reason: "no blockette 1000 (encoding and record length)",
        });
    };
    let record = match buf.get(..reclen) {
        Some(rec) => rec,
        None => {
            return Err(PayloadError::Truncated {
                what: "miniSEED record",
                offset: at,
                needed: reclen,
                available: buf.len(),
            })
        }
    };
    if nsamp > 0 && (data_offset < 48 || data_offset >= reclen) {
        return field("data offset", data_offset as i64, at + 44);
    }
    let data = record.get(data_offset..).unwrap_or(&[]);
    let mut samples = Vec::new();
    if nsamp > 0 && want == Samples::Decode {
        let swapped: Vec<u8>;
        let steim_data = if little_data && matches!(encoding, 10 | 11) {
            // Steim frames are 32-bit words; little-endian writers swap each word.
            swapped = data
                .chunks_exact(4)
                .flat_map(|w| [w[3], w[2], w[1], w[0]])
                .collect();
            &swapped[..]
        } else {
            data
        };
        match encoding {
            10 => steim::decode(steim_data, nsamp, Steim::One, &mut samples)?,
            11 => steim::decode(steim_data, nsamp, Steim::Two, &mut samples)?,
            1 | 3 => {
                let size = if encoding == 1 { 2 } else { 4 };
                let mut d = Reader::new(data);
                let raw = d.bytes(nsamp * size, "miniSEED samples")?;
                samples = match (size, little_data) {
                    (2, false) => raw
                        .chunks_exact(2)
                        .map(|c| i32::from(i16::from_be_bytes([c[0], c[1]])))
                        .collect(),
                    (2, true) => raw
                        .chunks_exact(2)
                        .map(|c| i32::from(i16::from_le_bytes([c[0], c[1]])))
                        .collect(),
                    (_, false) => raw
                        .chunks_exact(4)
                        .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                    (_, true) => raw
                        .chunks_exact(4)
                        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                };
            }
            _ => {
                return Err(PayloadError::Unsupported {
                    offset: at,
                    reason: "encoding other than 1, 3, 10 or 11",
                })
            }
        }
    }
    let ch = Channel {
        net,
        sta,
        chan,
        loc,
        start: Time::from_micros(us),
        samprate: rate_from_factors(factor, mult),
        calib: CALIB,
        calper: CALPER,
        segtype: SEGTYPE,
        samples,
    };
    Ok((ch, reclen, nsamp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::testutil;
    use proptest::prelude::*;

    fn channel(samples: Vec<i32>, start: i64, samprate: f64) -> Channel {
        Channel {
            net: "XX".into(),
            sta: "STA01".into(),
            chan: "BHZ".into(),
            loc: "00".into(),
            start: Time::from_micros(start),
            samprate,
            calib: CALIB,
            calper: CALPER,
            segtype: SEGTYPE,
            samples,
        }
    }

    /// One record, byte for byte: 2026-11-22 (day 326) 10:00:00.123456 is BTIME
    /// ticks 1235 (0.1235 s) with -44 us in blockette 1001.
    #[test]
    fn hand_built_record() {
        let t = Time::parse_iso8601("2026-11-22T10:00:00.123456Z").unwrap();
        let ch = channel(vec![10, 12, 9, 9, 300], t.as_micros(), 40.0);
        let rec = encode(&ch, Steim::Two).unwrap();
        assert_eq!(rec.len(), 512);
        #[rustfmt::skip]
        let header: [u8; 64] = [
            b'0', b'0', b'0', b'0', b'0', b'1', b'D', b' ',
            b'S', b'T', b'A', b'0', b'1', b'0', b'0', b'B', b'H', b'Z', b'X', b'X',
            0x07, 0xea, 0x01, 0x46, 10, 0, 0, 0, 0x04, 0xd3, // 2026, day 326, 10:00:00.1235
            0, 5, 0, 40, 0, 1,                               // 5 samples, 40 x 1 sps
            0, 0, 0, 2, 0, 0, 0, 0, 0, 64, 0, 48,
            0x03, 0xe8, 0, 56, 11, 1, 9, 0,                  // B1000: Steim2, BE, 2^9
            0x03, 0xe9, 0, 0, 0, 0xd4, 0, 1,                 // B1001: -44 us, 1 frame
        ];
        assert_eq!(rec[..64], header);
        assert_eq!(
            rec[64..84],
            [1, 0x80, 0, 0, 0, 0, 0, 10, 0, 0, 1, 0x2c, 0, 2, 0xfd, 0, 0x40, 0, 1, 0x23][..]
        );
        assert!(rec[128..].iter().all(|&b| b == 0));
        assert_eq!(decode(&rec).unwrap(), vec![ch]);
    }

    #[test]
    fn rates_round_trip() {
        for rate in [40.0, 100.0, 1.0, 20.0, 0.1, 0.0, 1.0 / 3.0, 2.5] {
            let (f, m) = rate_factors(rate).unwrap();
            assert!(
                (rate_from_factors(f, m) - rate).abs() < 1e-12,
                "{rate} {f} {m}"
            );
        }
        assert_eq!(rate_factors(40.0).unwrap(), (40, 1));
        assert_eq!(rate_factors(0.1).unwrap(), (-10, 1));
        assert!(rate_factors(f64::NAN).is_err());
    }

    #[test]
    fn long_channels_span_records_and_join_again() {
        let samples: Vec<i32> = (0..6000)
            .map(|i| ((i as f64 * 0.05).sin() * 50_000.0) as i32)
            .collect();
        let ch = channel(samples, 1_795_341_600_000_007, 100.0);
        let enc = encode(&ch, Steim::Two).unwrap();
        assert!(enc.len() > 512 && enc.len().is_multiple_of(512));
        assert_eq!(decode(&enc).unwrap(), vec![ch.clone()]);
        let enc1 = encode(&ch, Steim::One).unwrap();
        assert_eq!(decode(&enc1).unwrap(), vec![ch]);
    }

    #[test]
    fn malformed_records_are_errors() {
        let ch = channel(vec![1, 2, 3], 0, 1.0);
        let rec = encode(&ch, Steim::Two).unwrap();
        assert!(matches!(
            decode(&rec[..40]),
            Err(PayloadError::Truncated { .. })
        ));
        assert!(matches!(
            decode(&rec[..300]),
            Err(PayloadError::Truncated {
                what: "miniSEED record",
                ..
            })
        ));
        let mut no_b1000 = rec.clone();
        no_b1000[46..48].copy_from_slice(&[0, 0]);
        assert!(matches!(
            decode(&no_b1000),
            Err(PayloadError::Unsupported { .. })
        ));
        let mut looped = rec.clone();
        looped[50..52].copy_from_slice(&[0, 48]);
        assert!(matches!(
            decode(&looped),
            Err(PayloadError::BadField {
                what: "blockette offset",
                ..
            })
        ));
        let mut bad_order = rec.clone();
        bad_order[53] = 7;
        assert!(matches!(
            decode(&bad_order),
            Err(PayloadError::BadField {
                what: "word order",
                ..
            })
        ));
        let mut bad_day = rec;
        bad_day[22..24].copy_from_slice(&[1, 0x70]);
        assert!(matches!(
            decode(&bad_day),
            Err(PayloadError::BadField { .. })
        ));
        let bad_name = Channel {
            sta: "TOOLONG".into(),
            ..ch
        };
        assert!(matches!(
            encode(&bad_name, Steim::Two),
            Err(PayloadError::BadText {
                field: "station",
                ..
            })
        ));
    }

    /// Our big-endian record as a little-endian writer writes it.
    fn to_little_endian(be: &[u8]) -> Vec<u8> {
        let mut le = be.to_vec();
        // The fixed header, then blockettes 1000 and 1001's type and next fields.
        let blockettes = [(48, 2), (50, 2), (56, 2), (58, 2)];
        let fields = HEADER_FIELDS.iter().chain(&blockettes);
        for &(at, len) in fields {
            le[at..at + len].reverse();
        }
        le[53] = 0;
        for w in le[DATA_OFFSET..].chunks_exact_mut(4) {
            w.reverse();
        }
        le
    }

    #[test]
    fn little_endian_records_decode_to_the_same_channel() {
        let samples = (0..300).map(|i| (i * 37 % 1000) - 500).collect();
        let ch = channel(samples, 1_700_000_000_123_400, 40.0);
        for steim in [Steim::One, Steim::Two] {
            let be = encode(&ch, steim).unwrap();
            let le: Vec<u8> = be.chunks(RECORD_LEN).flat_map(to_little_endian).collect();
            assert_ne!(le, be);
            assert!(little_endian_header(&le) && !little_endian_header(&be));
            assert_eq!(decode(&le).unwrap(), vec![ch.clone()]);
        }
        // Integer encodings: a 4-sample int32 record, and the same as int16.
        let be = encode(&channel(vec![1, -2, 3, -4], 0, 1.0), Steim::Two).unwrap();
        for (encoding, size) in [(3u8, 4usize), (1, 2)] {
            let mut le = to_little_endian(&be);
            le[52] = encoding;
            for (i, v) in [1i32, -2, 3, -4].into_iter().enumerate() {
                let at = DATA_OFFSET + i * size;
                if size == 4 {
                    le[at..at + 4].copy_from_slice(&v.to_le_bytes());
                } else {
                    le[at..at + 2].copy_from_slice(&(v as i16).to_le_bytes());
                }
            }
            assert_eq!(
                decode(&le).unwrap()[0].samples,
                [1, -2, 3, -4],
                "encoding {encoding}"
            );
        }
    }

    #[test]
    fn time_span_reads_the_headers_alone() {
        let ch = channel((0..1000).collect(), 1_000_000, 40.0);
        let payload = encode(&ch, Steim::Two).unwrap();
        assert!(payload.len() > RECORD_LEN, "several records");
        let (first, last) = time_span(&payload).unwrap().unwrap();
        assert_eq!(first, ch.start);
        assert_eq!(last, ch.sample_time(999));
        assert_eq!(time_span(&[]).unwrap(), None);
        // Corrupt samples do not matter to it; a corrupt header does.
        let mut bad_data = payload.clone();
        bad_data[DATA_OFFSET + 8..DATA_OFFSET + 16].fill(0xff);
        assert!(decode(&bad_data).is_err());
        assert_eq!(time_span(&bad_data).unwrap(), Some((first, last)));
        assert!(time_span(&payload[..40]).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(samples in testutil::samples(1500), t in 0i64..4_000_000_000_000_000,
                      rate in prop_oneof![Just(40.0), Just(1.0), Just(20.0), Just(100.0), Just(0.1)]) {
            let ch = channel(samples, t, rate);
            let one = encode(&ch, Steim::One).unwrap();
            prop_assert_eq!(decode(&one).unwrap(), vec![ch.clone()]);
            match encode(&ch, Steim::Two) {
                Ok(two) => prop_assert_eq!(decode(&two).unwrap(), vec![ch]),
                Err(e) => {
                    let wide = matches!(e, PayloadError::DifferenceTooLarge { .. });
                    prop_assert!(wide, "{}", e);
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1100)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn mangled_records_never_panic(i in 0usize..512, b in any::<u8>()) {
            let ch = channel((0..100).collect(), 1_000_000, 40.0);
            let mut rec = encode(&ch, Steim::Two).unwrap();
            rec[i] = b;
            let _ = decode(&rec);
        }
    }
}
