//! Client command lines of SeedLink 3.1, parsed into [`Command`]s.
//!
//! A command is one line of ASCII words separated by spaces, ended by CR, LF or CRLF;
//! the keyword is case-insensitive. Clients differ in the small things and we take
//! them all: ObsPy sends `STATION  sta net` with two spaces and sequence numbers as
//! `0x1a2b` (Python's `hex()`), libslink sends plain hex (`1A2B`).

use super::selector::{Selector, StationPattern};
use super::SeedLinkError;
use crate::Time;

/// Longest command line a server accepts (without its terminator); longer lines are a
/// protocol violation and the connection is closed.
pub const MAX_LINE: usize = 256;

/// Largest SeedLink sequence number: they are 24 bits wide.
pub const MAX_SEQ: u32 = 0xFF_FFFF;

/// Where a `DATA` or `FETCH` asks to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// The next sequence number the client wants (its last one plus one).
    pub seq: u32,
    /// Optional begin time: records before it are not wanted.
    pub begin: Option<Time>,
}

/// An INFO level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoLevel {
    /// Server identification.
    Id,
    /// Capabilities list.
    Capabilities,
    /// Stations the server has data for.
    Stations,
    /// Streams (location, channel, type) per station.
    Streams,
    /// Gaps per stream (not kept by this server: answered like STREAMS without gaps).
    Gaps,
    /// Connected clients (administrators only).
    Connections,
    /// Everything.
    All,
}

impl InfoLevel {
    /// The level's name as SeedLink spells it.
    pub fn name(self) -> &'static str {
        match self {
            InfoLevel::Id => "ID",
            InfoLevel::Capabilities => "CAPABILITIES",
            InfoLevel::Stations => "STATIONS",
            InfoLevel::Streams => "STREAMS",
            InfoLevel::Gaps => "GAPS",
            InfoLevel::Connections => "CONNECTIONS",
            InfoLevel::All => "ALL",
        }
    }
}

/// One client command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `HELLO`: identify the server.
    Hello,
    /// `CAT`: list stations (a plain-text station list).
    Cat,
    /// `BYE`: close the connection.
    Bye,
    /// `BATCH`: the client will not wait for replies to STATION, SELECT, DATA, FETCH
    /// and TIME, and the server sends none.
    Batch,
    /// `CAPABILITIES cap...`: the client announces what it understands (e.g.
    /// `EXTREPLY`, which lets ERROR replies carry a reason).
    Capabilities(Vec<String>),
    /// `STATION sta [net]`: start configuring a station (multi-station mode).
    Station {
        /// Station pattern (`?` and `*` wildcards).
        sta: StationPattern,
        /// Network pattern; `None` when the client gave none (any network).
        net: Option<StationPattern>,
    },
    /// `SELECT [selector]`: add a stream selector; no selector clears the list.
    Select(Option<Selector>),
    /// `DATA [seq [begin]]`: start (or resume) real-time transfer.
    Data(Option<Resume>),
    /// `FETCH [seq [begin]]`: like DATA, but end with `END` when the buffer is sent.
    Fetch(Option<Resume>),
    /// `TIME begin [end]`: transfer data from `begin` (until `end`, then `END`).
    Time {
        /// First time wanted.
        begin: Time,
        /// Last time wanted; `None`: go on in real time.
        end: Option<Time>,
    },
    /// `END`: multi-station configuration is complete; start the transfer.
    End,
    /// `INFO level`.
    Info(InfoLevel),
    /// `USERAGENT program/version ...`: the client says what it is (SeedLink 4's
    /// command, which ringserver takes on SeedLink 3 connections too). The text is the
    /// rest of the line, words joined by single spaces.
    UserAgent(String),
    /// SeedLink 4's `SELECT selector:3`: like `Select`, and the station's records go
    /// out as miniSEED 3.
    SelectMseed3(Selector),
    /// `SLPROTO version`: the client asks for a protocol version (`4.0` switches the
    /// session to SeedLink 4).
    SlProto(String),
    /// `AUTH method ...`: the client authenticates (SeedLink 4: `AUTH USERPASS user
    /// password` or `AUTH JWT token`). The session checks the arguments, so it can answer
    /// with ringserver's messages.
    Auth(AuthRequest),
    /// `ENDFETCH` (SeedLink 4): like `END`, but the transfer ends once the data the
    /// server has are sent.
    EndFetch,
    /// SeedLink 4's `DATA [seq|ALL [start [end]]]` (see [`super::v4::parse`]).
    DataV4 {
        /// Where to start.
        start: super::v4::DataStart,
        /// Records ending before this are not wanted.
        begin: Option<Time>,
        /// Records starting after this are not wanted; the transfer of the station
        /// ends there.
        end: Option<Time>,
    },
    /// SeedLink 4's `INFO item [NET_STA [stream]]`.
    InfoV4 {
        /// What is asked for.
        item: super::v4::InfoItem,
        /// Only stations matching (network, station).
        station: Option<(StationPattern, StationPattern)>,
        /// Only streams matching.
        stream: Option<Selector>,
    },
}

/// Splits the first command line off `buf`: `Ok(Some((line, consumed)))` when a
/// terminator is there, `Ok(None)` when more bytes are needed, an error when the line
/// is longer than [`MAX_LINE`]. Empty lines (the LF of a CRLF after a lone CR is taken
/// as one) come back as empty strings, which callers ignore.
pub fn split_line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, SeedLinkError> {
    match buf.iter().position(|&b| b == b'\r' || b == b'\n') {
        Some(i) if i > MAX_LINE => Err(SeedLinkError::LineTooLong { max: MAX_LINE }),
        Some(i) => {
            let crlf = buf[i] == b'\r' && buf.get(i + 1) == Some(&b'\n');
            Ok(Some((&buf[..i], i + 1 + usize::from(crlf))))
        }
        None if buf.len() > MAX_LINE => Err(SeedLinkError::LineTooLong { max: MAX_LINE }),
        None => Ok(None),
    }
}

/// An AUTH line's method (upper-cased; empty if none was given) and arguments. Its
/// `Debug` shows the method and the number of arguments only: they are credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// `USERPASS`, `JWT`, or what the client sent.
    pub method: String,
    /// The words after the method.
    pub args: Vec<String>,
}

impl std::fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AuthRequest({} with {} arguments, not shown)",
            self.method,
            self.args.len()
        )
    }
}

/// Parses one command line (without its terminator). Returns `Ok(None)` for a blank
/// line.
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
        "HELLO" => arity(0, 0).map(|_| Command::Hello)?,
        "CAT" => arity(0, 0).map(|_| Command::Cat)?,
        "BYE" => arity(0, 0).map(|_| Command::Bye)?,
        "BATCH" => arity(0, 0).map(|_| Command::Batch)?,
        "END" => arity(0, 0).map(|_| Command::End)?,
        "CAPABILITIES" => {
            Command::Capabilities(args.iter().map(|a| a.to_ascii_uppercase()).collect())
        }
        "STATION" => {
            arity(1, 2)?;
            Command::Station {
                sta: StationPattern::new(args[0], 5)?,
                net: args.get(1).map(|n| StationPattern::new(n, 2)).transpose()?,
            }
        }
        "SELECT" => {
            arity(0, 1)?;
            Command::Select(args.first().map(|s| Selector::parse(s)).transpose()?)
        }
        "DATA" => {
            arity(0, 2)?;
            Command::Data(resume(&args)?)
        }
        "FETCH" => {
            arity(0, 2)?;
            Command::Fetch(resume(&args)?)
        }
        "TIME" => {
            arity(1, 2)?;
            let begin = parse_time(args[0])?;
            let end = args.get(1).map(|t| parse_time(t)).transpose()?;
            if end.is_some_and(|e| e < begin) {
                return Err(SeedLinkError::EndBeforeBegin);
            }
            Command::Time { begin, end }
        }
        "SLPROTO" => {
            arity(1, 1)?;
            Command::SlProto(args[0].to_string())
        }
        "AUTH" => Command::Auth(AuthRequest {
            method: args
                .first()
                .map(|m| m.to_ascii_uppercase())
                .unwrap_or_default(),
            args: args.iter().skip(1).map(|a| a.to_string()).collect(),
        }),
        "USERAGENT" => {
            arity(1, MAX_LINE)?;
            Command::UserAgent(args.join(" "))
        }
        "INFO" => {
            arity(1, 1)?;
            let level = match args[0].to_ascii_uppercase().as_str() {
                "ID" => InfoLevel::Id,
                "CAPABILITIES" => InfoLevel::Capabilities,
                "STATIONS" => InfoLevel::Stations,
                "STREAMS" => InfoLevel::Streams,
                "GAPS" => InfoLevel::Gaps,
                "CONNECTIONS" => InfoLevel::Connections,
                "ALL" => InfoLevel::All,
                other => return Err(SeedLinkError::InfoLevel(other.to_string())),
            };
            Command::Info(level)
        }
        _ => return Err(SeedLinkError::UnknownCommand(keyword)),
    };
    Ok(Some(cmd))
}

fn resume(args: &[&str]) -> Result<Option<Resume>, SeedLinkError> {
    let Some(seq) = args.first() else {
        return Ok(None);
    };
    let digits = seq
        .strip_prefix("0x")
        .or_else(|| seq.strip_prefix("0X"))
        .unwrap_or(seq);
    let bad = || SeedLinkError::Sequence(seq.to_string());
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let n = u32::from_str_radix(digits, 16).map_err(|_| bad())?;
    // libslink asks for last + 1, which wraps past 0xFFFFFF.
    let seq = n & MAX_SEQ;
    let begin = args.get(1).map(|t| parse_time(t)).transpose()?;
    Ok(Some(Resume { seq, begin }))
}

/// Parses a SeedLink time, `YYYY,MM,DD,hh,mm,ss` (fields need not be zero-padded;
/// seconds may carry a fraction), as UTC.
pub fn parse_time(s: &str) -> Result<Time, SeedLinkError> {
    let bad = || SeedLinkError::Time(s.to_string());
    let fields: Vec<&str> = s.split(',').collect();
    if fields.len() != 6 {
        return Err(bad());
    }
    let int = |f: &str, max: u32| -> Result<u32, SeedLinkError> {
        if f.is_empty() || f.len() > 4 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        f.parse::<u32>().ok().filter(|&v| v <= max).ok_or_else(bad)
    };
    let (sec, frac) = fields[5].split_once('.').unwrap_or((fields[5], ""));
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let micros = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse::<u32>().map_err(|_| bad())?
    };
    let date = chrono::NaiveDate::from_ymd_opt(
        int(fields[0], 9999)? as i32,
        int(fields[1], 12)?,
        int(fields[2], 31)?,
    )
    .ok_or_else(bad)?;
    let dt = date
        .and_hms_micro_opt(
            int(fields[3], 23)?,
            int(fields[4], 59)?,
            int(sec, 59)?,
            micros,
        )
        .ok_or_else(bad)?;
    Ok(Time::from_micros(dt.and_utc().timestamp_micros()))
}

/// Formats a time as SeedLink does in replies: `YYYY/MM/DD hh:mm:ss.ffff`.
pub fn format_time(t: Time) -> String {
    let secs = t.as_micros().div_euclid(1_000_000);
    let us = t.as_micros().rem_euclid(1_000_000);
    match chrono::DateTime::from_timestamp(secs, 0) {
        Some(dt) => format!("{}.{:04}", dt.format("%Y/%m/%d %H:%M:%S"), us / 100),
        None => String::from("1970/01/01 00:00:00.0000"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cmd(s: &str) -> Command {
        parse(s.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn keywords_are_case_insensitive_and_spacing_is_free() {
        assert_eq!(cmd("hello"), Command::Hello);
        assert_eq!(cmd("  End "), Command::End);
        let Command::Station { sta, net } = cmd("STATION  STA01 XX") else {
            panic!()
        };
        assert!(sta.matches("STA01") && net.unwrap().matches("XX"));
        assert_eq!(parse(b"   ").unwrap(), None);
    }

    #[test]
    fn data_and_fetch_take_hex_sequence_numbers_with_or_without_0x() {
        let r = |seq| Some(Resume { seq, begin: None });
        assert_eq!(cmd("DATA"), Command::Data(None));
        assert_eq!(cmd("DATA 1A"), Command::Data(r(0x1a)));
        assert_eq!(cmd("data 0x1a"), Command::Data(r(0x1a)));
        assert_eq!(cmd("FETCH 1000000"), Command::Fetch(r(0)));
        let Command::Data(Some(Resume { begin: Some(t), .. })) = cmd("DATA 5 2026,11,22,10,0,1")
        else {
            panic!()
        };
        assert_eq!(t, Time::parse_iso8601("2026-11-22T10:00:01Z").unwrap());
        assert!(parse(b"DATA xyz").is_err());
        assert!(parse(b"DATA 123456789").is_err());
    }

    #[test]
    fn time_takes_begin_and_end_in_seedlink_form() {
        let t = |s| Time::parse_iso8601(s).unwrap();
        assert_eq!(
            cmd("TIME 2026,11,22,10,0,0 2026,11,22,10,0,5.5"),
            Command::Time {
                begin: t("2026-11-22T10:00:00Z"),
                end: Some(t("2026-11-22T10:00:05.5Z"))
            }
        );
        assert!(parse(b"TIME 2026,13,22,10,0,0").is_err());
        assert!(parse(b"TIME 2026,11,22,10,0").is_err());
        assert!(matches!(
            parse(b"TIME 2026,11,22,10,0,5 2026,11,22,10,0,0"),
            Err(SeedLinkError::EndBeforeBegin)
        ));
        assert!(parse(b"TIME").is_err());
    }

    #[test]
    fn info_levels_and_unknown_commands() {
        assert_eq!(cmd("INFO streams"), Command::Info(InfoLevel::Streams));
        assert_eq!(cmd("INFO ID"), Command::Info(InfoLevel::Id));
        assert!(matches!(
            parse(b"INFO FOO"),
            Err(SeedLinkError::InfoLevel(_))
        ));
        assert!(matches!(
            parse(b"FROB"),
            Err(SeedLinkError::UnknownCommand(_))
        ));
        assert!(matches!(
            parse(b"HELLO there"),
            Err(SeedLinkError::Arguments { .. })
        ));
        assert!(matches!(parse(b"HELLO\xff"), Err(SeedLinkError::NotAscii)));
    }

    #[test]
    fn useragent_keeps_the_whole_text() {
        assert_eq!(
            cmd("USERAGENT slinktool/5.0  libslink/4.3"),
            Command::UserAgent("slinktool/5.0 libslink/4.3".into())
        );
        assert!(matches!(
            parse(b"USERAGENT"),
            Err(SeedLinkError::Arguments { .. })
        ));
    }

    #[test]
    fn lines_end_at_cr_lf_or_crlf_and_overlong_lines_are_errors() {
        assert_eq!(split_line(b"HELLO\r\nX").unwrap(), Some((&b"HELLO"[..], 7)));
        assert_eq!(split_line(b"HELLO\rX").unwrap(), Some((&b"HELLO"[..], 6)));
        assert_eq!(split_line(b"HELLO\nX").unwrap(), Some((&b"HELLO"[..], 6)));
        assert_eq!(split_line(b"HEL").unwrap(), None);
        assert!(split_line(&[b'A'; MAX_LINE + 1]).is_err());
        assert!(split_line(&[b'A'; MAX_LINE]).unwrap().is_none());
    }

    #[test]
    fn reply_times_are_formatted_like_seedlink() {
        let t = Time::parse_iso8601("2026-11-22T10:00:01.25Z").unwrap();
        assert_eq!(format_time(t), "2026/11/22 10:00:01.2500");
    }

    proptest! {
        #[test]
        fn parse_never_panics(line in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&line);
            let _ = split_line(&line);
        }

        #[test]
        fn seedlink_times_round_trip(secs in 0i64..4_000_000_000, frac in 0u32..1_000_000) {
            let dt = chrono::DateTime::from_timestamp(secs, 0).unwrap();
            let text = format!("{},{},{},{},{},{}.{:06}", dt.format("%Y"), dt.format("%m"),
                dt.format("%d"), dt.format("%H"), dt.format("%M"), dt.format("%S"), frac);
            let t = parse_time(&text).unwrap();
            prop_assert_eq!(t.as_micros(), secs * 1_000_000 + i64::from(frac));
        }

        #[test]
        fn sequence_numbers_round_trip(seq in 0u32..=MAX_SEQ) {
            let line = format!("DATA {seq:06X}");
            prop_assert_eq!(cmd(&line), Command::Data(Some(Resume { seq, begin: None })));
        }
    }
}
