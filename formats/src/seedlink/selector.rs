//! Station patterns (`STATION sta net`) and SeedLink 3 stream selectors (`SELECT`).
//!
//! A selector is `[!][LL]CCC[.T]`: an optional `!` (exclude instead of include), an
//! optional two-character location, a channel of up to three characters and an
//! optional one-character type (`D` data, `E` event, `C` calibration, `T` timing, `L`
//! log, `O` opaque). `?` matches any one character. As in SeisComP's server, a selector
//! of three characters or fewer names only the channel (any location) and a channel
//! shorter than three characters is padded with `?` (`BH` is `BH?`); `--` stands for
//! the empty location, as in FDSN web services.
//!
//! SeedLink 4's selectors, `[LOC_]B_S_SS[.T]` (the FDSN source identifier's location,
//! band, source and subsource), are taken too, as ringserver takes them on a SeedLink 3
//! connection: libslink 4 passes a user's selectors through unchanged, so a user who
//! writes `B_H_Z` or `00_B_H_Z` gets what a SeedLink 4 server would give. Each of band,
//! source and subsource is one character, `?` or `*` (any); the location may be empty
//! or `--` (the empty location) or `*` (any).
//!
//! A set of selectors keeps a record when no negative selector matches it and either
//! there is no positive selector or one of them matches.

use super::SeedLinkError;

/// Matches `text` against `pattern` with `?` (any one character) and `*` (any run),
/// ASCII case-insensitively.
pub fn glob(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative with one backtrack point: linear enough for short codes, no recursion.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p].eq_ignore_ascii_case(&text[t])) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// A station or network code pattern with `?` and `*` wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationPattern(String);

impl StationPattern {
    /// Checks a pattern of at most `max` code characters (wildcards do not count
    /// against a `*`'s worth); letters, digits, `?`, `*` only.
    pub fn new(text: &str, max: usize) -> Result<StationPattern, SeedLinkError> {
        let ok = !text.is_empty()
            && text.len() <= max.max(8)
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'?' || b == b'*');
        if ok {
            Ok(StationPattern(text.to_ascii_uppercase()))
        } else {
            Err(SeedLinkError::Pattern(text.to_string()))
        }
    }

    /// True if `code` matches.
    pub fn matches(&self, code: &str) -> bool {
        glob(self.0.as_bytes(), code.as_bytes())
    }

    /// True if the pattern has a wildcard.
    pub fn is_wildcard(&self) -> bool {
        self.0.contains(['?', '*'])
    }

    /// The pattern text, upper case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One stream selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// True for `!` selectors, which exclude what they match.
    pub negate: bool,
    /// Location pattern (two characters, `??` style); `None` matches any location.
    pub loc: Option<String>,
    /// Channel pattern, three characters.
    pub chan: String,
    /// Type pattern, one character; `None` matches any type.
    pub kind: Option<u8>,
}

impl Selector {
    /// Parses one selector (see the module docs).
    pub fn parse(text: &str) -> Result<Selector, SeedLinkError> {
        let bad = || SeedLinkError::Selector(text.to_string());
        // Byte positions below are character positions only for ASCII.
        if !text.is_ascii() {
            return Err(bad());
        }
        let (negate, rest) = match text.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, text),
        };
        let (codes, kind) = match rest.split_once('.') {
            Some((c, t)) if t.len() == 1 => (c, Some(t.as_bytes()[0].to_ascii_uppercase())),
            Some(_) => return Err(bad()),
            None => (rest, None),
        };
        let code_ok = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'?');
        if kind.is_some_and(|k| !(k.is_ascii_alphabetic() || k == b'?')) {
            return Err(bad());
        }
        if codes.contains('_') {
            let (loc, chan) = v4_codes(codes).ok_or_else(bad)?;
            return Ok(Selector {
                negate,
                loc,
                chan,
                kind,
            });
        }
        let (loc, chan) = match codes.len() {
            0..=3 => (None, codes),
            5 => {
                let (l, c) = codes.split_at(2);
                let loc = if l == "--" { "  " } else { l };
                if !loc
                    .bytes()
                    .all(|b| b == b' ' || b.is_ascii_alphanumeric() || b == b'?')
                {
                    return Err(bad());
                }
                (Some(loc.to_ascii_uppercase()), c)
            }
            _ => return Err(bad()),
        };
        if !code_ok(chan) || (chan.is_empty() && kind.is_none()) {
            return Err(bad());
        }
        Ok(Selector {
            negate,
            loc,
            chan: format!("{:?<3}", chan.to_ascii_uppercase()),
            kind,
        })
    }

    /// True if a record of location `loc` (empty or two characters), channel `chan` and
    /// type `kind` matches, ignoring `negate`.
    pub fn matches(&self, loc: &str, chan: &str, kind: u8) -> bool {
        let loc_ok = match &self.loc {
            None => true,
            Some(p) => {
                let padded = format!("{loc:<2}");
                glob(p.as_bytes(), padded.as_bytes())
            }
        };
        loc_ok
            && glob(self.chan.as_bytes(), chan.as_bytes())
            && self
                .kind
                .is_none_or(|k| k == b'?' || k.eq_ignore_ascii_case(&kind))
    }
}

/// The location pattern (`None`: any) and the three-character channel pattern of a
/// SeedLink 4 selector's codes, `[LOC_]B_S_SS` (see the module docs); `None` if they
/// are not that.
fn v4_codes(codes: &str) -> Option<(Option<String>, String)> {
    let parts: Vec<&str> = codes.split('_').collect();
    let (loc, bss) = match parts.as_slice() {
        [b, s, ss] => (None, [*b, *s, *ss]),
        [l, b, s, ss] => {
            let loc = match *l {
                "*" => None,
                "" | "--" => Some("  ".to_string()),
                l if l.len() <= 2
                    && l.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'?' || c == b'*') =>
                {
                    Some(l.to_ascii_uppercase())
                }
                _ => return None,
            };
            (loc, [*b, *s, *ss])
        }
        _ => return None,
    };
    let mut chan = String::with_capacity(3);
    for code in bss {
        match code.as_bytes() {
            [b'*'] | [b'?'] => chan.push('?'),
            [c] if c.is_ascii_alphanumeric() => chan.push(char::from(c.to_ascii_uppercase())),
            _ => return None,
        }
    }
    Some((loc, chan))
}

/// True if a record passes a list of selectors (see the module docs).
pub fn selected(selectors: &[Selector], loc: &str, chan: &str, kind: u8) -> bool {
    let mut any_positive = false;
    let mut positive_hit = false;
    for s in selectors {
        let hit = s.matches(loc, chan, kind);
        if s.negate {
            if hit {
                return false;
            }
        } else {
            any_positive = true;
            positive_hit |= hit;
        }
    }
    !any_positive || positive_hit
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap()
    }

    #[test]
    fn selectors_parse_location_channel_and_type() {
        assert_eq!(
            sel("00BHZ.D"),
            Selector {
                negate: false,
                loc: Some("00".into()),
                chan: "BHZ".into(),
                kind: Some(b'D')
            }
        );
        assert_eq!(sel("BH").chan, "BH?");
        assert_eq!(sel("BHZ").loc, None);
        assert_eq!(sel("--BHZ").loc.as_deref(), Some("  "));
        assert!(sel("!HH?").negate);
        for bad in ["", "00BH", "00BHZZ", "BHZ.DD", "B*Z", "!", "BHZ.", "0/BHZ"] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seedlink_4_selectors_are_taken_as_ringserver_takes_them_in_v3() {
        let any_loc_bhz = Selector {
            negate: false,
            loc: None,
            chan: "BHZ".into(),
            kind: None,
        };
        assert_eq!(sel("B_H_Z"), any_loc_bhz);
        assert_eq!(sel("*_B_H_Z"), any_loc_bhz);
        assert_eq!(sel("b_h_z"), any_loc_bhz);
        let s = sel("!00_B_H_*.D");
        assert!(s.negate && s.kind == Some(b'D'));
        assert_eq!((s.loc.as_deref(), s.chan.as_str()), (Some("00"), "BH?"));
        assert_eq!(sel("_B_H_Z").loc.as_deref(), Some("  "));
        assert_eq!(sel("--_B_H_Z").loc.as_deref(), Some("  "));
        assert!(sel("B_H_Z").matches("00", "BHZ", b'D'));
        assert!(!sel("B_H_Z").matches("00", "BHN", b'D'));
        assert!(!sel("_B_H_Z").matches("00", "BHZ", b'D'));
        for bad in [
            "B_H",
            "B_HH_Z",
            "X_Y_B_H_Z",
            "B__Z",
            "000_B_H_Z",
            "B_H_Z.DD",
            "B#_H_Z",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selectors_match_records() {
        assert!(sel("BHZ").matches("00", "BHZ", b'D'));
        assert!(sel("BH?.D").matches("", "BHN", b'D'));
        assert!(!sel("BH?.D").matches("", "BHN", b'L'));
        assert!(sel("??BHZ").matches("", "BHZ", b'D'));
        assert!(!sel("00BHZ").matches("", "BHZ", b'D'));
        assert!(sel("--BHZ").matches("", "BHZ", b'D'));
        assert!(!sel("--BHZ").matches("00", "BHZ", b'D'));
    }

    #[test]
    fn a_set_of_selectors_includes_then_excludes() {
        let set = [sel("BH?"), sel("!BHE")];
        assert!(selected(&set, "", "BHZ", b'D'));
        assert!(!selected(&set, "", "BHE", b'D'));
        assert!(!selected(&set, "", "LDO", b'D'));
        assert!(selected(&[sel("!BHE")], "", "LDO", b'D'));
        assert!(selected(&[], "", "LDO", b'D'));
    }

    #[test]
    fn station_patterns_take_wildcards() {
        let p = StationPattern::new("ST*1", 5).unwrap();
        assert!(p.matches("STA01") && p.matches("st1") && !p.matches("STA02"));
        assert!(StationPattern::new("S?A01", 5).unwrap().matches("STA01"));
        assert!(StationPattern::new("", 5).is_err());
        assert!(StationPattern::new("A/B", 5).is_err());
    }

    proptest! {
        #[test]
        fn glob_without_wildcards_is_case_insensitive_equality(
            a in "[A-Z0-9]{0,5}", b in "[A-Za-z0-9]{0,5}"
        ) {
            prop_assert_eq!(glob(a.as_bytes(), b.as_bytes()), a.eq_ignore_ascii_case(&b));
        }

        #[test]
        fn star_matches_everything_and_question_marks_match_by_length(s in "[A-Z0-9]{0,8}") {
            prop_assert!(glob(b"*", s.as_bytes()));
            let qs = "?".repeat(s.len());
            prop_assert!(glob(qs.as_bytes(), s.as_bytes()));
            let longer = "?".repeat(s.len() + 1);
            prop_assert!(!glob(longer.as_bytes(), s.as_bytes()));
        }

        #[test]
        fn selector_parse_never_panics(s in "\\PC{0,12}") {
            let _ = Selector::parse(&s);
        }

        #[test]
        fn an_exact_selector_matches_only_its_stream(
            loc in "[A-Z0-9]{2}", chan in "[A-Z0-9]{3}", other in "[A-Z0-9]{3}"
        ) {
            let s = sel(&format!("{loc}{chan}.D"));
            prop_assert!(s.matches(&loc, &chan, b'D'));
            prop_assert_eq!(s.matches(&loc, &other, b'D'), other == chan);
            let negated = sel(&format!("!{loc}{chan}"));
            prop_assert!(!selected(&[negated], &loc, &chan, b'D'));
        }
    }
}
