//! Antelope's select/reject filter over srcnames.
//!
//! A reader names the packets it wants with two regular expressions: `select`
//! (what to keep; none means everything) and `reject` (what to drop afterwards;
//! none means nothing). As in Antelope's `orbselect`/`orbreject`, each
//! expression must match the WHOLE srcname: `BHZ` matches only the srcname
//! `BHZ`, while `.*BHZ.*` matches any srcname containing it.
//!
//! Expressions come from clients over the network, so their length and
//! compiled size are capped and a hostile one fails with an error instead of
//! costing the server memory or time. Matching is linear time (Rust `regex`).

use regex::{Regex, RegexBuilder};

/// Longest select or reject expression in bytes.
pub const MAX_REGEX_LEN: usize = 1024;

/// Cap on a compiled expression (and its lazy DFA cache), so that short but
/// explosive expressions like `\w{1000}{1000}` fail cleanly at compile time.
const SIZE_LIMIT: usize = 1 << 20;

/// A select/reject pair, compiled; see the [module docs](self) for the rules.
#[derive(Debug, Clone, Default)]
pub struct SrcSelect {
    select: Option<Filter>,
    reject: Option<Filter>,
}

/// One expression: the text the user wrote and its anchored compilation.
#[derive(Debug, Clone)]
struct Filter {
    expr: String,
    anchored: Regex,
}

/// Why a select or reject expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    /// The expression exceeds [`MAX_REGEX_LEN`].
    #[error("srcname expression is {len} bytes, the limit is {max}: shorten it")]
    TooLong {
        /// Length of the expression in bytes.
        len: usize,
        /// The limit, [`MAX_REGEX_LEN`].
        max: usize,
    },
    /// The expression is not a valid regular expression or compiles too large.
    #[error("bad srcname expression {expr:?}: {reason}; write a regex matching whole srcnames, like TA_.*/MGENC/.*")]
    Invalid {
        /// The expression as given.
        expr: String,
        /// The regex library's complaint, on one line.
        reason: String,
    },
}

impl SrcSelect {
    /// Compiles a select/reject pair. `None` or `""` select means every srcname;
    /// `None` or `""` reject means none is rejected.
    pub fn new(select: Option<&str>, reject: Option<&str>) -> Result<SrcSelect, SelectError> {
        Ok(SrcSelect {
            select: Filter::compile(select)?,
            reject: Filter::compile(reject)?,
        })
    }

    /// The filter that passes every srcname.
    pub fn all() -> SrcSelect {
        SrcSelect::default()
    }

    /// Whether `srcname` matches select (in full) and does not match reject (in full).
    pub fn matches(&self, srcname: &str) -> bool {
        let selected = self
            .select
            .as_ref()
            .is_none_or(|f| f.anchored.is_match(srcname));
        let rejected = self
            .reject
            .as_ref()
            .is_some_and(|f| f.anchored.is_match(srcname));
        selected && !rejected
    }

    /// The select expression as given, or `None` when everything is selected.
    pub fn select(&self) -> Option<&str> {
        self.select.as_ref().map(|f| f.expr.as_str())
    }

    /// The reject expression as given, or `None` when nothing is rejected.
    pub fn reject(&self) -> Option<&str> {
        self.reject.as_ref().map(|f| f.expr.as_str())
    }
}

impl Filter {
    fn compile(expr: Option<&str>) -> Result<Option<Filter>, SelectError> {
        let expr = match expr {
            None | Some("") => return Ok(None),
            Some(e) => e,
        };
        if expr.len() > MAX_REGEX_LEN {
            return Err(SelectError::TooLong {
                len: expr.len(),
                max: MAX_REGEX_LEN,
            });
        }
        // Compiling the bare expression first does two jobs: error offsets refer
        // to what the user wrote, and a valid expression has balanced groups, so
        // wrapping it cannot be subverted (`a)|(b` would otherwise unanchor).
        build(expr).map_err(|e| invalid(expr, &e))?;
        let anchored = build(&format!("^(?:{expr})$")).map_err(|e| invalid(expr, &e))?;
        Ok(Some(Filter {
            expr: expr.to_owned(),
            anchored,
        }))
    }
}

fn build(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(SIZE_LIMIT)
        .build()
}

/// Regex syntax errors span several lines (pattern, caret, message); keep the
/// message and the offset so the error fits one log line.
fn invalid(expr: &str, err: &regex::Error) -> SelectError {
    let text = err.to_string();
    let message = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_owned);
    let reason = match (message, err) {
        (Some(m), regex::Error::Syntax(_)) => match caret_offset(&text) {
            Some(at) => format!("{m} at offset {at}"),
            None => m,
        },
        _ => {
            // "Compiled regex exceeds size limit of N bytes." -> house style.
            let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let flat = flat.trim_end_matches('.');
            let mut chars = flat.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => String::from("invalid expression"),
            }
        }
    };
    SelectError::Invalid {
        expr: expr.to_owned(),
        reason,
    }
}

/// Column of the first `^` marker under the echoed pattern in a regex syntax error.
fn caret_offset(text: &str) -> Option<usize> {
    let mut lines = text.lines().skip(1);
    let pattern = lines.next()?;
    let marker = lines.next()?;
    let indent = pattern.len() - pattern.trim_start().len();
    let caret = marker.find('^')?;
    caret.checked_sub(indent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(select: Option<&str>, reject: Option<&str>) -> SrcSelect {
        SrcSelect::new(select, reject).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn matches_whole_srcname_only() {
        let s = sel(Some("BHZ"), None);
        assert!(!s.matches("TA_X_BHZ/GENC"));
        assert!(s.matches("BHZ"));
        let s = sel(Some(".*BHZ.*"), None);
        assert!(s.matches("TA_X_BHZ/GENC"));
        // Alternation binds inside the anchors, not around them.
        let s = sel(Some("AZ_.*|TA_.*"), None);
        assert!(s.matches("TA_X_BHZ/GENC"));
        assert!(!s.matches("XTA_X"));
        assert!(!sel(Some("TA"), None).matches("TA_X"));
    }

    #[test]
    fn empty_select_is_everything() {
        for s in [SrcSelect::all(), sel(None, None), sel(Some(""), Some(""))] {
            assert!(s.matches("TA_M04C/MGENC/EP40"));
            assert!(s.matches("/pf/orbstat"));
            assert_eq!(s.select(), None);
            assert_eq!(s.reject(), None);
        }
    }

    #[test]
    fn reject_wins_over_select() {
        let s = sel(Some("TA_.*"), Some(".*/pf/.*|.*_BHN/.*"));
        assert!(s.matches("TA_M04C_BHZ/GENC"));
        assert!(!s.matches("TA_M04C_BHN/GENC"));
        assert!(!s.matches("AZ_PFO_BHZ/GENC"));
        let s = sel(None, Some("/pf/.*"));
        assert!(!s.matches("/pf/orbstat"));
        assert!(s.matches("TA_M04C/MGENC/EP40"));
        assert_eq!(s.reject(), Some("/pf/.*"));
        assert_eq!(s.select(), None);
    }

    #[test]
    fn accessors_return_expressions_as_given() {
        let s = sel(Some("TA_.*"), Some(".*BHN.*"));
        assert_eq!(s.select(), Some("TA_.*"));
        assert_eq!(s.reject(), Some(".*BHN.*"));
    }

    #[test]
    fn invalid_regex_is_one_line() {
        let err = SrcSelect::new(Some("TA_(.*"), None).unwrap_err();
        assert!(matches!(err, SelectError::Invalid { ref expr, .. } if expr == "TA_(.*"));
        assert_eq!(
            err.to_string(),
            "bad srcname expression \"TA_(.*\": unclosed group at offset 3; \
             write a regex matching whole srcnames, like TA_.*/MGENC/.*"
        );
        let err = SrcSelect::new(None, Some("[z-a]")).unwrap_err();
        assert!(matches!(err, SelectError::Invalid { .. }));
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    #[test]
    fn unbalanced_expression_cannot_escape_anchors() {
        assert!(matches!(
            SrcSelect::new(Some("a)|(b"), None),
            Err(SelectError::Invalid { .. })
        ));
    }

    #[test]
    fn too_long() {
        let long = "a".repeat(MAX_REGEX_LEN + 1);
        let err = SrcSelect::new(Some(&long), None).unwrap_err();
        assert_eq!(
            err,
            SelectError::TooLong {
                len: 1025,
                max: 1024
            }
        );
        assert_eq!(
            err.to_string(),
            "srcname expression is 1025 bytes, the limit is 1024: shorten it"
        );
        assert!(SrcSelect::new(None, Some(&"a".repeat(MAX_REGEX_LEN))).is_ok());
    }

    #[test]
    fn explosive_expression_fails_cleanly() {
        let err = SrcSelect::new(Some(r"\w{1000}{1000}"), None).unwrap_err();
        match err {
            SelectError::Invalid { reason, .. } => {
                assert!(
                    reason.starts_with("compiled regex exceeds size limit"),
                    "{reason}"
                );
                assert!(!reason.ends_with('.'), "{reason}");
                assert!(!reason.contains('\n'), "{reason}");
            }
            other => panic!("{other}"),
        }
    }
}
