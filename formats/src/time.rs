//! Packet times: UTC integer microseconds since the Unix epoch.
//!
//! Antelope keeps times as `double` epoch seconds, which cannot hold every
//! microsecond of this century exactly. We keep an `i64` of microseconds and
//! parse and print decimal text digit by digit, never through `f64`, so
//! `1763805600.25` is exactly 1763805600250000 us and prints back the same.
//! Calendar arithmetic is chrono's; only the field layout is read here.
//!
//! Accepted text (see [`Time::parse`]):
//!
//! | form      | examples                                                     |
//! |-----------|--------------------------------------------------------------|
//! | ISO 8601  | `2026-11-22T10:00:00.25Z`, `2026-11-22 10:00:00+02:00`, `2026-11-22` |
//! | epoch     | `1763805600.25`, `1763805600`, `-5.5`                        |
//! | relative  | `-10m`, `+5m`, `-1h30m`, `-500ms`                            |

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Timelike};

const MICROS_PER_SEC: i64 = 1_000_000;
const FRACTION_DIGITS: usize = 6;

/// A point in time: UTC microseconds since 1970-01-01T00:00:00Z, possibly negative.
///
/// Leap seconds are not represented (as in POSIX time and Antelope).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Time(i64);

/// Why a string is not a time or a duration. Every variant quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// Not a valid ISO 8601 time.
    #[error("bad ISO 8601 time {input:?}: {reason}; write e.g. 2026-11-22T10:00:00.25Z")]
    Iso8601 {
        /// The rejected text.
        input: String,
        /// What was wrong with it.
        reason: String,
    },
    /// Not a valid decimal epoch time.
    #[error("bad epoch time {input:?}: {reason}; write seconds since 1970 like 1763805600.25")]
    Epoch {
        /// The rejected text.
        input: String,
        /// What was wrong with it.
        reason: String,
    },
    /// Not a valid signed offset from now.
    #[error("bad relative time {input:?}: {reason}; write a sign, a number and a unit like -10m or -1h30m")]
    Relative {
        /// The rejected text.
        input: String,
        /// What was wrong with it.
        reason: String,
    },
    /// Not a valid duration.
    #[error("bad duration {input:?}: {reason}; write a number and a unit like 30s, 10m or 500ms")]
    Duration {
        /// The rejected text.
        input: String,
        /// What was wrong with it.
        reason: String,
    },
    /// [`Time::parse`] could not read the text in any accepted form.
    #[error("cannot read time {input:?}: {reason}; write ISO 8601 (2026-11-22T10:00:00.25Z), epoch seconds (1763805600.25) or a time relative to now (-10m)")]
    Unrecognized {
        /// The rejected text.
        input: String,
        /// What the parser for the form it looked like objected to.
        reason: String,
    },
}

impl TimeError {
    fn reason(&self) -> &str {
        match self {
            TimeError::Iso8601 { reason, .. }
            | TimeError::Epoch { reason, .. }
            | TimeError::Relative { reason, .. }
            | TimeError::Duration { reason, .. }
            | TimeError::Unrecognized { reason, .. } => reason,
        }
    }
}

const OUT_OF_RANGE: &str =
    "out of range: orb times are i64 microseconds, about 292,000 years either side of 1970";

fn too_precise(digits: usize) -> String {
    format!("{digits} fractional digits, orb times keep at most 6 (microseconds)")
}

impl Time {
    /// The earliest representable time.
    pub const MIN: Time = Time(i64::MIN);
    /// The latest representable time.
    pub const MAX: Time = Time(i64::MAX);
    /// 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: Time = Time(0);

    /// The time `micros` microseconds after the epoch (before it when negative).
    pub const fn from_micros(micros: i64) -> Time {
        Time(micros)
    }

    /// Whole seconds since the epoch; `None` if that many microseconds overflow `i64`.
    pub const fn from_secs(secs: i64) -> Option<Time> {
        match secs.checked_mul(MICROS_PER_SEC) {
            Some(micros) => Some(Time(micros)),
            None => None,
        }
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// The current wall-clock time.
    pub fn now() -> Time {
        Time(chrono::Utc::now().timestamp_micros())
    }

    /// `self + micros`, or `None` on overflow.
    pub const fn checked_add_micros(self, micros: i64) -> Option<Time> {
        match self.0.checked_add(micros) {
            Some(t) => Some(Time(t)),
            None => None,
        }
    }

    /// `self - micros`, or `None` on overflow.
    pub const fn checked_sub_micros(self, micros: i64) -> Option<Time> {
        match self.0.checked_sub(micros) {
            Some(t) => Some(Time(t)),
            None => None,
        }
    }

    /// Reads a time in any accepted form, resolving relative times against `now`.
    ///
    /// The form is chosen from the shape of the text, then only that parser runs:
    /// 1. relative: `+` or `-`, a digit, then only letters, digits and spaces,
    ///    ending in a unit letter (`-10m`, `+1h30m`), see [`Time::parse_relative`];
    /// 2. epoch: an optional sign, then only digits and `.`, see [`Time::parse_epoch`];
    /// 3. anything else: [`Time::parse_iso8601`].
    ///
    /// Errors are [`TimeError::Unrecognized`], listing every accepted form.
    pub fn parse(s: &str, now: Time) -> Result<Time, TimeError> {
        let body = s.strip_prefix(['+', '-']);
        let looks_relative = body.is_some_and(|b| {
            b.starts_with(|c: char| c.is_ascii_digit())
                && b.ends_with(|c: char| c.is_ascii_alphabetic())
                && b.bytes().all(|c| c.is_ascii_alphanumeric() || c == b' ')
        });
        let body = body.unwrap_or(s);
        let looks_epoch = !body.is_empty() && body.bytes().all(|c| c.is_ascii_digit() || c == b'.');
        let parsed = if looks_relative {
            Time::parse_relative(s, now)
        } else if looks_epoch {
            Time::parse_epoch(s)
        } else {
            Time::parse_iso8601(s)
        };
        parsed.map_err(|e| TimeError::Unrecognized {
            input: s.to_owned(),
            reason: e.reason().to_owned(),
        })
    }

    /// Reads `+-<duration>` relative to `now`: `-10m`, `+5m`, `-1h30m`, `-500ms`.
    ///
    /// The sign is required, so a bare `10m` is never mistaken for a time. Units
    /// are humantime's (`ms`, `s`, `m`, `h`, `d`, ...); a duration finer than a
    /// microsecond is refused rather than rounded.
    pub fn parse_relative(s: &str, now: Time) -> Result<Time, TimeError> {
        let err = |reason: String| TimeError::Relative {
            input: s.to_owned(),
            reason,
        };
        let (negative, rest) = match (s.strip_prefix('-'), s.strip_prefix('+')) {
            (Some(rest), _) => (true, rest),
            (_, Some(rest)) => (false, rest),
            _ => return Err(err("missing the leading + or - sign".into())),
        };
        let d = humantime::parse_duration(rest).map_err(|e| err(e.to_string()))?;
        if d.subsec_nanos() % 1000 != 0 {
            return Err(err("finer than a microsecond".into()));
        }
        let micros = i64::try_from(d.as_micros()).map_err(|_| err(OUT_OF_RANGE.into()))?;
        let t = if negative {
            now.checked_sub_micros(micros)
        } else {
            now.checked_add_micros(micros)
        };
        t.ok_or_else(|| err(OUT_OF_RANGE.into()))
    }

    /// Reads decimal epoch seconds exactly: `1763805600.25`, `1763805600`, `-5.5`.
    ///
    /// An optional sign, at least one digit, and optionally `.` followed by one to
    /// six digits. More than six fraction digits is an error, not a rounding.
    pub fn parse_epoch(s: &str) -> Result<Time, TimeError> {
        let err = |reason: String| TimeError::Epoch {
            input: s.to_owned(),
            reason,
        };
        let (negative, body) = match (s.strip_prefix('-'), s.strip_prefix('+')) {
            (Some(rest), _) => (true, rest),
            (_, Some(rest)) => (false, rest),
            _ => (false, s),
        };
        let (int, frac) = match body.split_once('.') {
            Some((int, frac)) => (int, Some(frac)),
            None => (body, None),
        };
        if int.is_empty() || !int.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err(
                "expected digits, an optional sign and an optional fraction".into(),
            ));
        }
        let frac_micros = match frac {
            None => 0,
            Some("") => return Err(err("no digits after the decimal point".into())),
            Some(f) if !f.bytes().all(|c| c.is_ascii_digit()) => {
                return Err(err("expected only digits after the decimal point".into()))
            }
            Some(f) => fraction_micros(f).map_err(err)?,
        };
        let int = int.trim_start_matches('0');
        // 20 digits exceed i64 microseconds anyway; the cap keeps u128 from overflowing.
        if int.len() > 20 {
            return Err(err(OUT_OF_RANGE.into()));
        }
        let secs: i128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| err(OUT_OF_RANGE.into()))?
        };
        let magnitude = secs * i128::from(MICROS_PER_SEC) + i128::from(frac_micros);
        let micros = if negative { -magnitude } else { magnitude };
        i64::try_from(micros)
            .map(Time)
            .map_err(|_| err(OUT_OF_RANGE.into()))
    }

    /// Reads an ISO 8601 time; offsets are converted to UTC, no offset means UTC.
    ///
    /// Accepted: `YYYY-MM-DD` (midnight UTC), then optionally `T`, `t` or a space,
    /// `hh:mm` or `hh:mm:ss`, a fraction of one to six digits after `.` or `,`,
    /// and a zone `Z`, `z`, or `+hh`, `+hhmm`, `+hh:mm` (or `-`). Years outside 0000..=9999
    /// are written with a sign and up to six digits (`+10000`, `-0001`), as
    /// [`Display`](fmt::Display) prints them. Seven or more fraction digits are an
    /// error rather than silently rounded.
    pub fn parse_iso8601(s: &str) -> Result<Time, TimeError> {
        parse_iso(s).map_err(|reason| TimeError::Iso8601 {
            input: s.to_owned(),
            reason,
        })
    }

    /// ISO 8601 UTC text as [`Display`](fmt::Display) prints it, or `None` for
    /// times outside the calendar range chrono supports (about +-262,000 years).
    pub fn to_iso8601(self) -> Option<String> {
        let secs = self.0.div_euclid(MICROS_PER_SEC);
        let dt = DateTime::from_timestamp(secs, 0)?;
        let year = dt.year();
        let year = if (0..=9999).contains(&year) {
            format!("{year:04}")
        } else {
            format!("{year:+05}")
        };
        Some(format!(
            "{year}-{:02}-{:02}T{:02}:{:02}:{:02}{}Z",
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            fraction_text(self.0.rem_euclid(MICROS_PER_SEC))
        ))
    }

    /// Exact decimal epoch seconds: `1763805600.25`, `1763805600`, `-0.5`.
    ///
    /// Trailing fraction zeros are trimmed and a zero fraction is omitted;
    /// [`Time::parse_epoch`] reads it back to the same microsecond.
    pub fn to_epoch_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let micros = abs % 1_000_000;
        format!("{sign}{}{}", abs / 1_000_000, fraction_text(micros as i64))
    }
}

/// `.25` for 250000 us, empty for 0; `micros` is in `0..1_000_000`.
fn fraction_text(micros: i64) -> String {
    if micros == 0 {
        return String::new();
    }
    let digits = format!(".{micros:06}");
    digits.trim_end_matches('0').to_owned()
}

/// Microseconds from 1..=6 fraction digits (`25` -> 250000); more digits are refused.
fn fraction_micros(digits: &str) -> Result<i64, String> {
    if digits.len() > FRACTION_DIGITS {
        return Err(too_precise(digits.len()));
    }
    let mut micros = 0i64;
    for (i, c) in digits.bytes().enumerate() {
        let place = 10i64.pow((FRACTION_DIGITS - 1 - i) as u32);
        micros += i64::from(c - b'0') * place;
    }
    Ok(micros)
}

/// Reads ASCII fields left to right; positions are byte offsets for messages.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// The run of ASCII digits at the cursor (possibly empty).
    fn digits(&mut self) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        &self.bytes[start..self.pos]
    }

    /// Exactly `n` digits as a number, naming `what` on failure. Stops after `n`
    /// so that run-together fields (`+0130`) split correctly.
    fn fixed(&mut self, n: usize, what: &str) -> Result<u32, String> {
        let at = self.pos;
        while self.pos - at < n && self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.pos - at != n {
            return Err(format!("expected a {n}-digit {what} at offset {at}"));
        }
        Ok(decimal(&self.bytes[at..self.pos]))
    }

    fn expect(&mut self, c: u8, after: &str) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "expected '{}' after the {after} at offset {}",
                c as char, self.pos
            ))
        }
    }
}

/// Value of a short run of ASCII digits (at most 6 here, so no overflow).
fn decimal(digits: &[u8]) -> u32 {
    digits.iter().fold(0, |n, &c| n * 10 + u32::from(c - b'0'))
}

fn parse_iso(s: &str) -> Result<Time, String> {
    let mut c = Cursor {
        bytes: s.as_bytes(),
        pos: 0,
    };
    let signed = match c.peek() {
        Some(b'-') => Some(-1),
        Some(b'+') => Some(1),
        _ => None,
    };
    if signed.is_some() {
        c.pos += 1;
    }
    let year_digits = c.digits();
    let year_ok = match signed {
        Some(_) => (4..=6).contains(&year_digits.len()),
        None => year_digits.len() == 4,
    };
    if !year_ok {
        return Err(
            "expected a 4-digit year (or a signed year of up to 6 digits) at offset 0".into(),
        );
    }
    let year = signed.unwrap_or(1) * decimal(year_digits) as i32;
    c.expect(b'-', "year")?;
    let month = c.fixed(2, "month")?;
    c.expect(b'-', "month")?;
    let day = c.fixed(2, "day")?;
    let date = NaiveDate::from_ymd_opt(year, month, day)
        .ok_or_else(|| format!("no such calendar date {year:04}-{month:02}-{day:02}"))?;
    if c.peek().is_none() {
        return finish(
            date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp(),
            0,
            0,
        );
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return Err(format!(
            "expected 'T' or a space after the date at offset {}",
            c.pos
        ));
    }
    let hour = c.fixed(2, "hour")?;
    c.expect(b':', "hour")?;
    let minute = c.fixed(2, "minute")?;
    let second = if c.eat(b':') {
        c.fixed(2, "second")?
    } else {
        0
    };
    let mut micros = 0;
    if c.eat(b'.') || c.eat(b',') {
        let digits = c.digits();
        if digits.is_empty() {
            return Err(format!(
                "expected digits after the decimal point at offset {}",
                c.pos
            ));
        }
        // Digits are ASCII, so this is valid UTF-8.
        micros = fraction_micros(std::str::from_utf8(digits).unwrap_or(""))?;
    }
    let offset_secs = match c.peek() {
        None => 0,
        Some(b'Z' | b'z') => {
            c.pos += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            c.pos += 1;
            let hh = c.fixed(2, "zone hour")?;
            let mm = match c.peek() {
                None => 0,
                Some(b':') => {
                    c.pos += 1;
                    c.fixed(2, "zone minute")?
                }
                Some(_) => c.fixed(2, "zone minute")?,
            };
            if hh > 23 || mm > 59 {
                return Err(format!("zone offset {hh:02}:{mm:02} is out of range"));
            }
            let secs = i64::from(hh * 3600 + mm * 60);
            if sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        Some(_) => {
            return Err(format!(
                "expected a fraction, 'Z' or a zone offset like +02:00 at offset {}",
                c.pos
            ))
        }
    };
    if c.pos != s.len() {
        return Err(format!("unexpected text at offset {}", c.pos));
    }
    let naive = date.and_hms_opt(hour, minute, second).ok_or_else(|| {
        format!("no such time of day {hour:02}:{minute:02}:{second:02} (leap seconds are not represented)")
    })?;
    finish(naive.and_utc().timestamp(), offset_secs, micros)
}

/// Combines local seconds, the zone offset and the fraction, checking for overflow.
fn finish(local_secs: i64, offset_secs: i64, micros: i64) -> Result<Time, String> {
    local_secs
        .checked_sub(offset_secs)
        .and_then(|s| s.checked_mul(MICROS_PER_SEC))
        .and_then(|m| m.checked_add(micros))
        .map(Time)
        .ok_or_else(|| OUT_OF_RANGE.to_owned())
}

impl fmt::Display for Time {
    /// ISO 8601 UTC with `Z` (`2026-11-22T10:00:00.25Z`); epoch seconds for
    /// times outside chrono's calendar, so printing never panics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_iso8601() {
            Some(text) => f.write_str(&text),
            None => f.write_str(&self.to_epoch_string()),
        }
    }
}

impl FromStr for Time {
    type Err = TimeError;

    /// [`Time::parse`] with relative times taken from [`Time::now`].
    fn from_str(s: &str) -> Result<Time, TimeError> {
        Time::parse(s, Time::now())
    }
}

/// Written as its ISO 8601 text (`Display`), so sidecars and catalogs read well and
/// other languages parse them without knowing our epoch.
impl serde::Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Read from ISO 8601 or epoch seconds, never relative (a stored time must not depend
/// on when it is read).
impl<'de> serde::Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Time::parse_iso8601(&text)
            .or_else(|_| Time::parse_epoch(&text))
            .map_err(serde::de::Error::custom)
    }
}

/// Reads a command-line duration such as `30s`, `10m`, `500ms` or `1h 30m`
/// (humantime syntax, no sign).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, TimeError> {
    humantime::parse_duration(s).map_err(|e| TimeError::Duration {
        input: s.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
