//! Path templates: `SensorData/{srcname}/{first_pktid}_{last_pktid}.nc`.
//!
//! A template is literal text with `{placeholder}`s; [`PathTemplate::parse`] checks
//! every placeholder name up front, so a typo is a rule-file error, not a file named
//! `{sation}`. Values from the data (srcname parts) go through [`safe_name`], so no
//! packet can steer a file outside the archive or make a hidden file.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};
use formats::{SrcName, Time};

/// One placeholder a path template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// The rule's `collection` (default: the rule name).
    Collection,
    /// The rule's name.
    Rule,
    /// The whole srcname, made safe.
    Srcname,
    /// Network code.
    Net,
    /// Station code.
    Sta,
    /// Channel code.
    Chan,
    /// Location code.
    Loc,
    /// The srcname's type (`MGENC`, `SEED`).
    Suffix,
    /// The format's usual extension (`nc`, `cdl`, `jsonl`, `orb`).
    Ext,
    /// Pktid of the file's first packet.
    FirstPktid,
    /// Pktid of the file's last packet.
    LastPktid,
    /// `YYYY-MM-DD` (UTC).
    Date,
    /// `YYYY`.
    Year,
    /// `MM`.
    Month,
    /// `DD`.
    Day,
    /// Day of the year, `DDD`.
    Jday,
    /// `HH`.
    Hour,
    /// `MM` (minute).
    Minute,
    /// `YYYYMMDDTHHMMSSZ`.
    Time,
}

impl Placeholder {
    /// Every placeholder with its name, in documentation order.
    pub const ALL: [(&'static str, Placeholder); 19] = [
        ("collection", Placeholder::Collection),
        ("rule", Placeholder::Rule),
        ("srcname", Placeholder::Srcname),
        ("net", Placeholder::Net),
        ("sta", Placeholder::Sta),
        ("chan", Placeholder::Chan),
        ("loc", Placeholder::Loc),
        ("suffix", Placeholder::Suffix),
        ("ext", Placeholder::Ext),
        ("first_pktid", Placeholder::FirstPktid),
        ("last_pktid", Placeholder::LastPktid),
        ("date", Placeholder::Date),
        ("year", Placeholder::Year),
        ("month", Placeholder::Month),
        ("day", Placeholder::Day),
        ("jday", Placeholder::Jday),
        ("hour", Placeholder::Hour),
        ("minute", Placeholder::Minute),
        ("time", Placeholder::Time),
    ];

    fn from_name(name: &str) -> Option<Placeholder> {
        Placeholder::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
    }

    fn name(self) -> &'static str {
        Placeholder::ALL
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("?", |(n, _)| n)
    }

    /// For time placeholders, the shortest change they show.
    fn resolution(self) -> Option<Duration> {
        const DAY: u64 = 86_400;
        match self {
            Placeholder::Year => Some(Duration::from_secs(365 * DAY)),
            Placeholder::Month => Some(Duration::from_secs(28 * DAY)),
            Placeholder::Date | Placeholder::Day | Placeholder::Jday => {
                Some(Duration::from_secs(DAY))
            }
            Placeholder::Hour => Some(Duration::from_secs(3600)),
            Placeholder::Minute => Some(Duration::from_secs(60)),
            Placeholder::Time => Some(Duration::from_secs(1)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Placeholder),
}

/// A parsed path template; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    text: String,
    pieces: Vec<Piece>,
}

/// Why a path template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A `{name}` that is not a placeholder.
    #[error("unknown placeholder {{{name}}}; use one of {known}")]
    Unknown {
        /// The name between the braces.
        name: String,
        /// Every known placeholder, for the message.
        known: String,
    },
    /// A `{` without its `}`, or a `}` alone.
    #[error("unbalanced brace at byte {at}; placeholders look like {{srcname}}")]
    Brace {
        /// Byte offset in the template.
        at: usize,
    },
    /// The template is empty.
    #[error("the path is empty; write a template like SensorData/{{srcname}}/{{first_pktid}}.nc")]
    Empty,
}

/// What a template is rendered with.
#[derive(Debug, Clone, Copy)]
pub struct Values<'a> {
    /// The rule's collection.
    pub collection: &'a str,
    /// The rule's name.
    pub rule: &'a str,
    /// The format's extension.
    pub ext: &'a str,
    /// The srcname of the file's (first) packet.
    pub srcname: &'a SrcName,
    /// The time the time placeholders show.
    pub time: Time,
    /// First pktid (`None` renders as `pending`, for a file still open).
    pub first_pktid: Option<u64>,
    /// Last pktid (`None` renders as `pending`).
    pub last_pktid: Option<u64>,
}

impl PathTemplate {
    /// Parses `text`, checking every placeholder name.
    pub fn parse(text: &str) -> Result<PathTemplate, TemplateError> {
        if text.is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(i) = rest.find(['{', '}']) {
            if rest.as_bytes()[i] == b'}' {
                return Err(TemplateError::Brace { at: offset + i });
            }
            lit.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let close = after
                .find('}')
                .ok_or(TemplateError::Brace { at: offset + i })?;
            let name = &after[..close];
            let var = Placeholder::from_name(name).ok_or_else(|| TemplateError::Unknown {
                name: name.to_owned(),
                known: known_list(),
            })?;
            if !lit.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut lit)));
            }
            pieces.push(Piece::Var(var));
            offset += i + 1 + close + 1;
            rest = &after[close + 1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit));
        }
        Ok(PathTemplate {
            text: text.to_owned(),
            pieces,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the template uses this placeholder.
    pub fn uses(&self, p: Placeholder) -> bool {
        self.pieces.contains(&Piece::Var(p))
    }

    /// Whether the template is plain text, without placeholders.
    pub fn is_literal(&self) -> bool {
        self.pieces.iter().all(|p| matches!(p, Piece::Text(_)))
    }

    /// Whether the template names files by pktid (`{first_pktid}` or `{last_pktid}`).
    pub fn has_pktid(&self) -> bool {
        self.uses(Placeholder::FirstPktid) || self.uses(Placeholder::LastPktid)
    }

    /// The finest time placeholder's resolution, if the template has one.
    pub fn time_resolution(&self) -> Option<Duration> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Var(v) => v.resolution(),
                Piece::Text(_) => None,
            })
            .min()
    }

    /// The relative path for these values. Data values are made safe with
    /// [`safe_name`]; absent srcname parts render as `-`.
    pub fn render(&self, v: &Values<'_>) -> String {
        let parts = v.srcname.parts();
        let dt = DateTime::<Utc>::from_timestamp_micros(v.time.as_micros())
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let mut out = String::new();
        for p in &self.pieces {
            let var = match p {
                Piece::Text(t) => {
                    out.push_str(t);
                    continue;
                }
                Piece::Var(var) => *var,
            };
            let opt = |s: Option<&str>| safe_name(s.unwrap_or("-"));
            let pktid = |p: Option<u64>| p.map_or_else(|| "pending".to_owned(), |p| p.to_string());
            let text = match var {
                Placeholder::Collection => safe_name(v.collection),
                Placeholder::Rule => safe_name(v.rule),
                Placeholder::Srcname => safe_name(v.srcname.as_str()),
                Placeholder::Net => opt(Some(parts.net).filter(|n| !n.is_empty())),
                Placeholder::Sta => opt(parts.sta),
                Placeholder::Chan => opt(parts.chan),
                Placeholder::Loc => opt(parts.loc),
                Placeholder::Suffix => opt(parts.suffix),
                Placeholder::Ext => v.ext.to_owned(),
                Placeholder::FirstPktid => pktid(v.first_pktid),
                Placeholder::LastPktid => pktid(v.last_pktid),
                Placeholder::Date => dt.format("%Y-%m-%d").to_string(),
                Placeholder::Year => format!("{:04}", dt.year()),
                Placeholder::Month => format!("{:02}", dt.month()),
                Placeholder::Day => format!("{:02}", dt.day()),
                Placeholder::Jday => format!("{:03}", dt.ordinal()),
                Placeholder::Hour => format!("{:02}", dt.hour()),
                Placeholder::Minute => format!("{:02}", dt.minute()),
                Placeholder::Time => dt.format("%Y%m%dT%H%M%SZ").to_string(),
            };
            out.push_str(&text);
        }
        out
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The SDS layout below an archive root, as an [`SdsTemplate`]:
/// `YEAR/NET/STA/CHAN.D/NET.STA.LOC.CHAN.D.YEAR.DAY`.
pub const SDS_LAYOUT: &str = "%Y/%n/%s/%c.D/%n.%s.%l.%c.D.%Y.%j";

/// A code of an [`SdsTemplate`] (ringserver's `MSeedWrite` vocabulary, the part of it
/// that fits day files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SdsCode {
    Net,
    Sta,
    Loc,
    Chan,
    Year,
    Year2,
    Jday,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SdsPiece {
    Text(String),
    Code(SdsCode),
}

/// The path of an SDS rule's day files: text with `%` codes as ringserver's
/// `MSeedWrite` writes them: `%n` network, `%s` station, `%l` location (empty when
/// the location is), `%c` channel, `%Y` year, `%y` two-digit year, `%j` day of the
/// year (3 digits), `%%` a `%`. A template must name the stream (`%n`, `%s`, `%l`,
/// `%c`) and the day (`%j` with `%Y` or `%y`), since each file holds one channel and
/// one UTC day; finer time codes (`%H`, `%M`, `%S`) are refused for the same reason.
/// A rule `path` without any `%` is an archive root, and gets [`SDS_LAYOUT`] below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdsTemplate {
    text: String,
    pieces: Vec<SdsPiece>,
}

/// Why an SDS path template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdsTemplateError {
    /// A `%` code this writer does not know.
    #[error("unknown code %{0}; an SDS path uses %n %s %l %c %Y %y %j and %% (files hold one UTC day, so there is no %H, %M or %S)")]
    Unknown(String),
    /// A code every SDS path needs is missing.
    #[error("the path lacks {0}: each file holds one channel of one UTC day, so the path must contain %n, %s, %l, %c, %j and %Y (or %y); the default is {SDS_LAYOUT}")]
    Missing(&'static str),
    /// The template is empty.
    #[error("the path is empty; give the archive root, such as \"sds\"")]
    Empty,
}

impl SdsTemplate {
    /// The template of a rule's `path`: a root directory (no `%`) with
    /// [`SDS_LAYOUT`] below it, or a whole template.
    pub fn from_rule_path(path: &str) -> Result<SdsTemplate, SdsTemplateError> {
        if path.is_empty() {
            return Err(SdsTemplateError::Empty);
        }
        if path.contains('%') {
            SdsTemplate::parse(path)
        } else {
            SdsTemplate::parse(&format!("{}/{SDS_LAYOUT}", path.trim_end_matches('/')))
        }
    }

    /// Parses a template with `%` codes (see the type docs).
    pub fn parse(text: &str) -> Result<SdsTemplate, SdsTemplateError> {
        if text.is_empty() {
            return Err(SdsTemplateError::Empty);
        }
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                lit.push(c);
                continue;
            }
            let code = match chars.next() {
                Some('%') => {
                    lit.push('%');
                    continue;
                }
                Some('n') => SdsCode::Net,
                Some('s') => SdsCode::Sta,
                Some('l') => SdsCode::Loc,
                Some('c') => SdsCode::Chan,
                Some('Y') => SdsCode::Year,
                Some('y') => SdsCode::Year2,
                Some('j') => SdsCode::Jday,
                Some(other) => return Err(SdsTemplateError::Unknown(other.to_string())),
                None => return Err(SdsTemplateError::Unknown(String::new())),
            };
            if !lit.is_empty() {
                pieces.push(SdsPiece::Text(std::mem::take(&mut lit)));
            }
            pieces.push(SdsPiece::Code(code));
        }
        if !lit.is_empty() {
            pieces.push(SdsPiece::Text(lit));
        }
        let has = |c: SdsCode| pieces.contains(&SdsPiece::Code(c));
        for (code, name) in [
            (SdsCode::Net, "%n"),
            (SdsCode::Sta, "%s"),
            (SdsCode::Loc, "%l"),
            (SdsCode::Chan, "%c"),
            (SdsCode::Jday, "%j"),
        ] {
            if !has(code) {
                return Err(SdsTemplateError::Missing(name));
            }
        }
        if !has(SdsCode::Year) && !has(SdsCode::Year2) {
            return Err(SdsTemplateError::Missing("%Y"));
        }
        Ok(SdsTemplate {
            text: text.to_owned(),
            pieces,
        })
    }

    /// The template as parsed (a rule's root with the layout added).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The relative (or absolute) path of the day file of `key` holding `day`. Codes
    /// are made safe with [`safe_name`]; an empty location renders empty, as SDS
    /// writes it (`XX.STA01..BHZ.D.2026.339`).
    pub fn render(&self, key: &formats::write::sds::StreamKey, day: Time) -> String {
        let dt = DateTime::<Utc>::from_timestamp_micros(day.as_micros())
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                SdsPiece::Text(t) => out.push_str(t),
                SdsPiece::Code(c) => out.push_str(&match c {
                    SdsCode::Net => safe_name(&key.net),
                    SdsCode::Sta => safe_name(&key.sta),
                    SdsCode::Loc if key.loc.is_empty() => String::new(),
                    SdsCode::Loc => safe_name(&key.loc),
                    SdsCode::Chan => safe_name(&key.chan),
                    SdsCode::Year => format!("{:04}", dt.year()),
                    SdsCode::Year2 => format!("{:02}", dt.year().rem_euclid(100)),
                    SdsCode::Jday => format!("{:03}", dt.ordinal()),
                }),
            }
        }
        out
    }
}

fn known_list() -> String {
    Placeholder::ALL
        .iter()
        .map(|(n, _)| format!("{{{n}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.name())
    }
}

/// A value made safe as one file name component: `/` becomes `_`; ASCII letters,
/// digits, `_`, `.` and `-` stay; every other byte becomes `%XX` (upper-case hex);
/// a leading `.` becomes `%2E`, so no value is hidden, `.` or `..`; an empty value
/// becomes `-`.
pub fn safe_name(value: &str) -> String {
    if value.is_empty() {
        return "-".to_owned();
    }
    let mut out = String::with_capacity(value.len());
    for (i, b) in value.bytes().enumerate() {
        match b {
            b'/' => out.push('_'),
            b'.' if i == 0 => out.push_str("%2E"),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(name: &SrcName) -> Values<'_> {
        Values {
            collection: "coll",
            rule: "r1",
            ext: "nc",
            srcname: name,
            time: Time::parse_iso8601("2026-11-22T10:05:00Z").unwrap(),
            first_pktid: Some(3),
            last_pktid: Some(9),
        }
    }

    #[test]
    fn renders_every_placeholder() {
        let name = SrcName::new("TA_M04C/MGENC/EP40").unwrap();
        let t = PathTemplate::parse(
            "{collection}/{rule}/{srcname}/{net}_{sta}_{chan}_{loc}.{suffix}/{date}/{year}{month}{day}.{jday}.{hour}{minute}/{time}_{first_pktid}_{last_pktid}.{ext}",
        )
        .unwrap();
        assert_eq!(
            t.render(&values(&name)),
            "coll/r1/TA_M04C_MGENC_EP40/TA_M04C_-_-.MGENC/2026-11-22/20261122.326.1005/20261122T100500Z_3_9.nc"
        );
    }

    #[test]
    fn safe_names() {
        assert_eq!(safe_name("TA_M04C/MGENC/EP40"), "TA_M04C_MGENC_EP40");
        assert_eq!(safe_name("/pf/orbstat"), "_pf_orbstat");
        assert_eq!(safe_name(".."), "%2E.");
        assert_eq!(safe_name("a b%c*"), "a%20b%25c%2A");
        assert_eq!(safe_name(""), "-");
    }

    #[test]
    fn bad_templates() {
        assert!(matches!(
            PathTemplate::parse("a/{sation}.nc"),
            Err(TemplateError::Unknown { ref name, .. }) if name == "sation"
        ));
        assert_eq!(
            PathTemplate::parse("a/{srcname.nc"),
            Err(TemplateError::Brace { at: 2 })
        );
        assert_eq!(
            PathTemplate::parse("a}"),
            Err(TemplateError::Brace { at: 1 })
        );
        assert_eq!(PathTemplate::parse(""), Err(TemplateError::Empty));
    }

    #[test]
    fn sds_default_layout_and_templates() {
        let key = formats::write::sds::StreamKey {
            net: "XX".into(),
            sta: "STA01".into(),
            loc: String::new(),
            chan: "BHZ".into(),
        };
        let day = Time::parse_iso8601("2026-12-05T00:00:00Z").unwrap();
        let t = SdsTemplate::from_rule_path("archive/").unwrap();
        assert_eq!(
            t.render(&key, day),
            "archive/2026/XX/STA01/BHZ.D/XX.STA01..BHZ.D.2026.339"
        );
        let t = SdsTemplate::from_rule_path("a/%n/%y%j/%s.%l.%c.100%%").unwrap();
        let key = formats::write::sds::StreamKey {
            loc: "00".into(),
            sta: "../x".into(),
            ..key
        };
        assert_eq!(t.render(&key, day), "a/XX/26339/%2E._x.00.BHZ.100%");
    }

    #[test]
    fn bad_sds_templates() {
        assert_eq!(
            SdsTemplate::parse("%Y/%n.%s.%l.%c.%H"),
            Err(SdsTemplateError::Unknown("H".into()))
        );
        assert_eq!(
            SdsTemplate::parse("%Y/%n.%s.%c.%j"),
            Err(SdsTemplateError::Missing("%l"))
        );
        assert_eq!(
            SdsTemplate::parse("%n.%s.%l.%c.%j"),
            Err(SdsTemplateError::Missing("%Y"))
        );
        assert_eq!(
            SdsTemplate::from_rule_path(""),
            Err(SdsTemplateError::Empty)
        );
        assert!(SdsTemplate::parse("%n.%s.%l.%c.%Y.%j%").is_err());
    }

    #[test]
    fn template_facts() {
        let t = PathTemplate::parse("{net}/{date}/{hour}.nc").unwrap();
        assert!(!t.has_pktid());
        assert_eq!(t.time_resolution(), Some(Duration::from_secs(3600)));
        let t = PathTemplate::parse("x/{last_pktid}.nc").unwrap();
        assert!(t.has_pktid());
        assert_eq!(t.time_resolution(), None);
    }
}
