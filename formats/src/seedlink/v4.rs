//! SeedLink 4.0 (the FDSN specification), the parts that differ from 3.1: command
//! lines after `SLPROTO 4.0`, the `SE` frame, error replies and the mapping of a
//! record to its 64-bit sequence number.
//!
//! A v4 frame is the 2-byte signature `SE`, one byte of payload format (`2` miniSEED 2,
//! `3` miniSEED 3, `J` JSON, ...), one byte of subformat (`D` data, `I` INFO, `E` error,
//! ...), the payload length (u32, little-endian), the sequence number (u64,
//! little-endian), the station id's length (u8) and the station id (`NET_STA`, ASCII),
//! then the payload: [`HEADER_LEN`] + station id + payload bytes.

use super::command::{self, parse_time, Command};
use super::selector::{Selector, StationPattern};
use super::SeedLinkError;
use crate::Time;

/// The signature a v4 frame starts with.
pub const SIGNATURE: &[u8; 2] = b"SE";
/// Bytes of a v4 frame header before the station id.
pub const HEADER_LEN: usize = 17;
/// Payload format: miniSEED 2.
pub const FORMAT_MSEED2: u8 = b'2';
/// Payload format: miniSEED 3.
pub const FORMAT_MSEED3: u8 = b'3';
/// Payload format: JSON (INFO replies).
pub const FORMAT_JSON: u8 = b'J';
/// Subformat: data records.
pub const SUB_DATA: u8 = b'D';
/// Subformat: an INFO document.
pub const SUB_INFO: u8 = b'I';
/// Subformat: an INFO error document.
pub const SUB_ERROR: u8 = b'E';

/// Bits of a sequence number that number a record inside its packet: a packet's
/// records are numbered 0 to 2^RECORD_BITS - 1, so the orb serves at most
/// [`MAX_RECORDS`] records of one packet, and pktids up to 2^(64 - RECORD_BITS) - 1.
pub const RECORD_BITS: u32 = 12;
/// Most records of one packet that get a sequence number (4096: 2 MiB of 512-byte
/// records, far more than one orb packet makes).
pub const MAX_RECORDS: u32 = 1 << RECORD_BITS;
/// Largest pktid whose records have sequence numbers.
pub const MAX_PKTID: u64 = u64::MAX >> RECORD_BITS;

/// The sequence number of record `index` (0-based, in the order the packet's records
/// are made) of packet `pktid`: `pktid * 2^RECORD_BITS + index`. `None` if the
/// pktid or the index is past the limits. The numbers increase with every record, so
/// a client's last number plus one names the next record exactly.
pub fn seq_of(pktid: u64, index: u32) -> Option<u64> {
    (pktid <= MAX_PKTID && index < MAX_RECORDS).then(|| (pktid << RECORD_BITS) | u64::from(index))
}

/// The (pktid, record index) a sequence number stands for ([`seq_of`]'s inverse).
pub fn record_of(seq: u64) -> (u64, u32) {
    (
        seq >> RECORD_BITS,
        (seq & u64::from(MAX_RECORDS - 1)) as u32,
    )
}

/// Where a v4 `DATA` asks to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataStart {
    /// No sequence number: the next data (or the time window, if one is given).
    Next,
    /// `ALL`: everything the server still has.
    All,
    /// The first sequence number wanted (the client's last plus one).
    Seq(u64),
}

/// A v4 INFO item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoItem {
    /// Server identification.
    Id,
    /// Formats the server sends.
    Formats,
    /// Capabilities.
    Capabilities,
    /// Stations.
    Stations,
    /// Stations and their streams.
    Streams,
    /// Connected clients (administrators only).
    Connections,
}

impl InfoItem {
    /// The item's name as the specification spells it.
    pub fn name(self) -> &'static str {
        match self {
            InfoItem::Id => "ID",
            InfoItem::Formats => "FORMATS",
            InfoItem::Capabilities => "CAPABILITIES",
            InfoItem::Stations => "STATIONS",
            InfoItem::Streams => "STREAMS",
            InfoItem::Connections => "CONNECTIONS",
        }
    }
}

/// Splits a v4 station id `NET_STA` (wildcards allowed) into network and station
/// patterns.
pub fn station_id(text: &str) -> Result<(StationPattern, StationPattern), SeedLinkError> {
    let bad = || SeedLinkError::Pattern(text.to_string());
    let (net, sta) = text.split_once('_').ok_or_else(bad)?;
    if sta.contains('_') {
        return Err(bad());
    }
    Ok((StationPattern::new(net, 8)?, StationPattern::new(sta, 8)?))
}

/// Parses one command line of a SeedLink 4 session. The commands v4 spells as 3.1
/// does (`HELLO`, `BYE`, `END`, `USERAGENT`, `SLPROTO`, `AUTH`, `BATCH`,
/// `CAPABILITIES`) go to [`command::parse`]; v4's own forms are:
///
/// - `STATION NET_STA` (one argument, `?` and `*` wildcards);
/// - `SELECT [!]pattern[.subformat][:filter]`, pattern `[LOC_]B_S_SS` (or a 3.1
///   `LLCCC`); the filter `native` (miniSEED 2) is the default, `3` asks for miniSEED
///   3 ([`Command::SelectMseed3`]), any other is refused;
/// - `DATA [seq|ALL [start [end]]]`, `seq` in decimal, times ISO 8601
///   (`2026-11-22T10:00:00Z`) or 3.1's `YYYY,MM,DD,hh,mm,ss`;
/// - `ENDFETCH`;
/// - `INFO item [NET_STA [pattern]]`.
///
/// `FETCH`, `TIME` and `CAT` are 3.1 only and unknown here.
pub fn parse(line: &[u8]) -> Result<Option<Command>, SeedLinkError> {
    let text = std::str::from_utf8(line).map_err(|_| SeedLinkError::NotAscii)?;
    if !text.is_ascii() {
        return Err(SeedLinkError::NotAscii);
    }
    let mut words = text.split_ascii_whitespace();
    let Some(keyword) = words.next() else {
        return Ok(None);
    };
    let args: Vec<&str> = words.collect();
    let keyword = keyword.to_ascii_uppercase();
    let arity = |min: usize, max: usize| {
        if args.len() < min || args.len() > max {
            Err(SeedLinkError::Arguments {
                command: keyword.clone(),
                min,
                max,
                got: args.len(),
            })
        } else {
            Ok(())
        }
    };
    let cmd = match keyword.as_str() {
        "FETCH" | "TIME" | "CAT" => return Err(SeedLinkError::UnknownCommand(keyword)),
        "STATION" => {
            arity(1, 1)?;
            let (net, sta) = station_id(args[0])?;
            Command::Station {
                sta,
                net: Some(net),
            }
        }
        "SELECT" => {
            arity(0, 1)?;
            match args.first() {
                None => Command::Select(None),
                Some(s) => match select(s)? {
                    (sel, false) => Command::Select(Some(sel)),
                    (sel, true) => Command::SelectMseed3(sel),
                },
            }
        }
        "DATA" => {
            arity(0, 3)?;
            let start = match args.first() {
                None => DataStart::Next,
                Some(s) if s.eq_ignore_ascii_case("ALL") => DataStart::All,
                Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                    DataStart::Seq(
                        s.parse()
                            .map_err(|_| SeedLinkError::SequenceV4(s.to_string()))?,
                    )
                }
                Some(s) => return Err(SeedLinkError::SequenceV4(s.to_string())),
            };
            let begin = args.get(1).map(|t| time(t)).transpose()?;
            let end = args.get(2).map(|t| time(t)).transpose()?;
            if let (Some(b), Some(e)) = (begin, end) {
                if e < b {
                    return Err(SeedLinkError::EndBeforeBegin);
                }
            }
            Command::DataV4 { start, begin, end }
        }
        "ENDFETCH" => arity(0, 0).map(|_| Command::EndFetch)?,
        "INFO" => {
            arity(1, 3)?;
            let item = match args[0].to_ascii_uppercase().as_str() {
                "ID" => InfoItem::Id,
                "FORMATS" => InfoItem::Formats,
                "CAPABILITIES" => InfoItem::Capabilities,
                "STATIONS" => InfoItem::Stations,
                "STREAMS" => InfoItem::Streams,
                "CONNECTIONS" => InfoItem::Connections,
                other => return Err(SeedLinkError::InfoLevel(other.to_string())),
            };
            let station = args.get(1).map(|s| station_id(s)).transpose()?;
            let stream = args
                .get(2)
                .map(|s| select(s))
                .transpose()?
                .map(|(sel, _)| sel);
            Command::InfoV4 {
                item,
                station,
                stream,
            }
        }
        _ => return command::parse(line),
    };
    Ok(Some(cmd))
}

/// A v4 selector and whether its filter (after `:`) asks for miniSEED 3 (`3`);
/// `native` is the default, any other filter is refused.
fn select(text: &str) -> Result<(Selector, bool), SeedLinkError> {
    let (pattern, filter) = match text.rsplit_once(':') {
        Some((p, f)) => (p, Some(f)),
        None => (text, None),
    };
    let mseed3 = match filter {
        None | Some("native") => false,
        Some("3") => true,
        Some(f) => return Err(SeedLinkError::Filter(f.to_string())),
    };
    // v4 lets the part after `.` list several subformats (`.DE`, any of `DECOTL`); an
    // orb serves data records only, so a list with `D` is the same as `.D`, and one
    // without it keeps its first letter (and matches no record of ours).
    let pattern = match pattern.split_once('.') {
        Some((p, types)) if types.len() > 1 && types.bytes().all(|b| b.is_ascii_alphabetic()) => {
            let t = if types.contains(['D', 'd']) {
                "D"
            } else {
                &types[..1]
            };
            format!("{p}.{t}")
        }
        _ => pattern.to_string(),
    };
    Ok((Selector::parse(&pattern)?, mseed3))
}

/// A v4 time: ISO 8601, or 3.1's comma form.
fn time(text: &str) -> Result<Time, SeedLinkError> {
    if text.contains(',') {
        return parse_time(text);
    }
    let iso = if text.ends_with('Z') || text.ends_with('z') {
        text.to_string()
    } else {
        format!("{text}Z")
    };
    Time::parse_iso8601(&iso).map_err(|_| SeedLinkError::Time(text.to_string()))
}

/// A v4 error reply, `ERROR CODE description\r\n`, on one line of printable ASCII.
pub fn error(code: &str, description: &str) -> Vec<u8> {
    let line: String = format!("ERROR {code} {description}")
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                ' '
            }
        })
        .collect();
    let mut out = line.into_bytes();
    out.extend_from_slice(b"\r\n");
    out
}

/// Appends one v4 frame. The station id is cut to 255 bytes (its length is one byte).
pub fn frame(
    out: &mut Vec<u8>,
    format: u8,
    subformat: u8,
    seq: u64,
    station: &str,
    payload: &[u8],
) {
    let station = &station.as_bytes()[..station.len().min(255)];
    out.extend_from_slice(SIGNATURE);
    out.push(format);
    out.push(subformat);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.push(station.len() as u8);
    out.extend_from_slice(station);
    out.extend_from_slice(payload);
}

/// One v4 frame read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Payload format.
    pub format: u8,
    /// Payload subformat.
    pub subformat: u8,
    /// Sequence number.
    pub seq: u64,
    /// Station id (`NET_STA`, empty for INFO).
    pub station: &'a str,
    /// The payload.
    pub payload: &'a [u8],
}

/// Why bytes are not a v4 frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The bytes do not start with `SE`.
    #[error("not a SeedLink 4 frame: signature {0:?}")]
    Signature([u8; 2]),
    /// The station id is not ASCII.
    #[error("station id is not ASCII")]
    Station,
}

/// Reads the frame at the start of `buf`: `Ok(None)` if more bytes are needed,
/// otherwise the frame and the bytes it takes.
pub fn parse_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    if buf.len() >= 2 && &buf[..2] != SIGNATURE {
        return Err(FrameError::Signature([buf[0], buf[1]]));
    }
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes")) as usize;
    let seq = u64::from_le_bytes(buf[8..16].try_into().expect("8 bytes"));
    let sta_len = usize::from(buf[16]);
    let total = HEADER_LEN + sta_len + len;
    if buf.len() < total {
        return Ok(None);
    }
    let station = std::str::from_utf8(&buf[HEADER_LEN..HEADER_LEN + sta_len])
        .ok()
        .filter(|s| s.is_ascii())
        .ok_or(FrameError::Station)?;
    let frame = Frame {
        format: buf[2],
        subformat: buf[3],
        seq,
        station,
        payload: &buf[HEADER_LEN + sta_len..total],
    };
    Ok(Some((frame, total)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cmd(s: &str) -> Command {
        parse(s.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn a_frame_is_byte_exact() {
        let mut out = Vec::new();
        frame(
            &mut out,
            b'2',
            b'D',
            0x0102_0304_0506_0708,
            "XX_STA01",
            b"abc",
        );
        let mut want = b"SE2D".to_vec();
        want.extend([3, 0, 0, 0]);
        want.extend([8, 7, 6, 5, 4, 3, 2, 1]);
        want.push(8);
        want.extend(b"XX_STA01abc");
        assert_eq!(out, want);
        let (f, n) = parse_frame(&out).unwrap().unwrap();
        assert_eq!(n, out.len());
        assert_eq!(
            f,
            Frame {
                format: b'2',
                subformat: b'D',
                seq: 0x0102_0304_0506_0708,
                station: "XX_STA01",
                payload: b"abc"
            }
        );
        assert_eq!(parse_frame(&out[..out.len() - 1]), Ok(None));
        assert!(parse_frame(b"SL000001").is_err());
    }

    #[test]
    fn v4_commands() {
        let Command::Station { sta, net } = cmd("STATION XX_ST*") else {
            panic!()
        };
        assert!(sta.matches("STA01") && net.unwrap().matches("XX"));
        assert!(parse(b"STATION STA01 XX").is_err());
        assert!(parse(b"STATION STA01").is_err());
        assert_eq!(
            cmd("DATA"),
            Command::DataV4 {
                start: DataStart::Next,
                begin: None,
                end: None
            }
        );
        assert_eq!(
            cmd("data 18446744073709551615"),
            Command::DataV4 {
                start: DataStart::Seq(u64::MAX),
                begin: None,
                end: None
            }
        );
        let t = |s| Time::parse_iso8601(s).unwrap();
        assert_eq!(
            cmd("DATA ALL 2026-11-22T10:00:00Z 2026-11-22T10:00:05"),
            Command::DataV4 {
                start: DataStart::All,
                begin: Some(t("2026-11-22T10:00:00Z")),
                end: Some(t("2026-11-22T10:00:05Z"))
            }
        );
        assert!(parse(b"DATA 1A").is_err());
        assert!(parse(b"DATA 18446744073709551616").is_err());
        assert_eq!(cmd("ENDFETCH"), Command::EndFetch);
        assert!(matches!(cmd("SELECT 00_B_H_Z.D"), Command::Select(Some(_))));
        assert!(matches!(
            cmd("SELECT *_B_H_?:native"),
            Command::Select(Some(_))
        ));
        assert!(matches!(cmd("SELECT *_B_H_?:3"), Command::SelectMseed3(_)));
        let Command::Select(Some(de)) = cmd("SELECT *_B_H_Z.DE") else {
            panic!()
        };
        assert!(de.matches("", "BHZ", b'D'));
        let Command::Select(Some(e)) = cmd("SELECT *_B_H_Z.EL") else {
            panic!()
        };
        assert!(!e.matches("", "BHZ", b'D'));
        assert_eq!(
            parse(b"SELECT *_B_H_?:4"),
            Err(SeedLinkError::Filter("4".into()))
        );
        assert!(matches!(
            cmd("INFO STREAMS XX_* *_B_H_Z"),
            Command::InfoV4 {
                item: InfoItem::Streams,
                station: Some(_),
                stream: Some(_)
            }
        ));
        assert!(matches!(
            parse(b"INFO GAPS"),
            Err(SeedLinkError::InfoLevel(_))
        ));
        assert!(matches!(
            parse(b"FETCH"),
            Err(SeedLinkError::UnknownCommand(_))
        ));
        assert_eq!(cmd("HELLO"), Command::Hello);
        assert_eq!(cmd("SLPROTO 4.0"), Command::SlProto("4.0".into()));
    }

    #[test]
    fn errors_are_one_line() {
        assert_eq!(
            error("ARGUMENTS", "bad\r\nthing"),
            b"ERROR ARGUMENTS bad  thing\r\n"
        );
    }

    #[test]
    fn sequence_numbers_at_the_limits() {
        assert_eq!(seq_of(0, 0), Some(0));
        assert_eq!(seq_of(1, 0), Some(MAX_RECORDS as u64));
        assert_eq!(seq_of(MAX_PKTID, MAX_RECORDS - 1), Some(u64::MAX));
        assert_eq!(seq_of(MAX_PKTID + 1, 0), None);
        assert_eq!(seq_of(5, MAX_RECORDS), None);
        // After a packet's last possible record, plus one is the next packet's first.
        assert_eq!(record_of(seq_of(7, MAX_RECORDS - 1).unwrap() + 1), (8, 0));
    }

    proptest! {
        #[test]
        fn parse_never_panics(line in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&line);
            let _ = parse_frame(&line);
        }

        #[test]
        fn frames_round_trip(format in any::<u8>(), sub in any::<u8>(), seq in any::<u64>(),
                             station in "[A-Z0-9_]{0,20}",
                             payload in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut out = Vec::new();
            frame(&mut out, format, sub, seq, &station, &payload);
            let (f, n) = parse_frame(&out).unwrap().unwrap();
            prop_assert_eq!(n, out.len());
            prop_assert_eq!((f.format, f.subformat, f.seq, f.station, f.payload),
                            (format, sub, seq, station.as_str(), &payload[..]));
        }

        #[test]
        fn seq_round_trips_and_orders_like_pktid_then_index(
            a in 0..=MAX_PKTID, i in 0..MAX_RECORDS, b in 0..=MAX_PKTID, j in 0..MAX_RECORDS) {
            let (s, t) = (seq_of(a, i).unwrap(), seq_of(b, j).unwrap());
            prop_assert_eq!(record_of(s), (a, i));
            prop_assert_eq!(s.cmp(&t), (a, i).cmp(&(b, j)));
        }

        #[test]
        fn data_seq_parses_in_decimal(seq in any::<u64>()) {
            prop_assert_eq!(cmd(&format!("DATA {seq}")),
                Command::DataV4 { start: DataStart::Seq(seq), begin: None, end: None });
        }
    }
}
