//! Source names: the `net_sta_chan_loc/type/subcode` key every orb packet carries.
//!
//! Antelope stores a srcname in a fixed `ORBSRCNAME_SIZE` (64 byte) buffer that
//! includes the terminating NUL, so a name has at most [`MAX_SRCNAME_LEN`] bytes.
//! Readers select packets with regular expressions over the whole name, so the
//! name must survive a round trip through any tool unchanged: we accept only
//! printable ASCII without spaces, and [`SrcName::parts`] / [`SrcNameParts::join`]
//! are exact inverses.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Longest srcname in bytes: Antelope's `ORBSRCNAME_SIZE` is 64 including the
/// terminating NUL of the C string, which leaves 63 bytes of name.
pub const MAX_SRCNAME_LEN: usize = 63;

/// A validated srcname such as `TA_M04C/MGENC/EP40`.
///
/// The text is held in an `Arc<str>`, so cloning is a reference count bump: a
/// ring hands out the same name for many packets. Ordering, equality and
/// hashing are those of the underlying string, which lets a `SrcName` be looked
/// up by `&str` in maps (see the [`Borrow`] impl).
///
/// Invariant: 1..=limit bytes, every byte printable ASCII `0x21..=0x7E`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SrcName(Arc<str>);

/// Why a string is not a valid srcname.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SrcNameError {
    /// The string was empty.
    #[error("srcname is empty: write a name like TA_M04C/MGENC/EP40")]
    Empty,
    /// The string was longer than the limit.
    #[error("srcname is {len} bytes, the limit is {max}: shorten it")]
    TooLong {
        /// Length of the rejected string in bytes.
        len: usize,
        /// The limit in force, usually [`MAX_SRCNAME_LEN`].
        max: usize,
    },
    /// A byte outside printable ASCII (space, control, or part of a non-ASCII character).
    #[error(
        "srcname has byte 0x{byte:02x} at offset {offset}: srcnames are printable ASCII without spaces"
    )]
    BadByte {
        /// Byte offset of the first bad byte.
        offset: usize,
        /// The bad byte itself.
        byte: u8,
    },
}

impl SrcName {
    /// Validates `name` against [`MAX_SRCNAME_LEN`].
    pub fn new(name: &str) -> Result<SrcName, SrcNameError> {
        SrcName::with_limit(name, MAX_SRCNAME_LEN)
    }

    /// Validates `name` against a caller-chosen byte limit, for peers whose
    /// buffers differ from Antelope's.
    pub fn with_limit(name: &str, max_len: usize) -> Result<SrcName, SrcNameError> {
        validate(name, max_len)?;
        Ok(SrcName(Arc::from(name)))
    }

    /// Checks `name` as [`SrcName::new`] would, without building a `SrcName`: for hot
    /// paths that validate many names and keep few of them.
    pub fn check(name: &str) -> Result<(), SrcNameError> {
        validate(name, MAX_SRCNAME_LEN)
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Length in bytes (equal to characters, since srcnames are ASCII).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always `false`: a srcname has at least one byte. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Splits the name into its components; see [`SrcNameParts`] for the rule.
    pub fn parts(&self) -> SrcNameParts<'_> {
        SrcNameParts::split(&self.0)
    }

    /// The type field after the first `/` (`MGENC`, `SEED`, `pf`, `db`, ...), on
    /// which payload codecs dispatch. `None` when the name has no `/`.
    pub fn suffix(&self) -> Option<&str> {
        self.parts().suffix
    }
}

fn validate(name: &str, max_len: usize) -> Result<(), SrcNameError> {
    if name.is_empty() {
        return Err(SrcNameError::Empty);
    }
    if name.len() > max_len {
        return Err(SrcNameError::TooLong {
            len: name.len(),
            max: max_len,
        });
    }
    match name.bytes().position(|b| !(0x21..=0x7e).contains(&b)) {
        Some(offset) => Err(SrcNameError::BadByte {
            offset,
            byte: name.as_bytes()[offset],
        }),
        None => Ok(()),
    }
}

impl FromStr for SrcName {
    type Err = SrcNameError;

    fn from_str(s: &str) -> Result<SrcName, SrcNameError> {
        SrcName::new(s)
    }
}

impl TryFrom<&str> for SrcName {
    type Error = SrcNameError;

    fn try_from(s: &str) -> Result<SrcName, SrcNameError> {
        SrcName::new(s)
    }
}

impl TryFrom<String> for SrcName {
    type Error = SrcNameError;

    fn try_from(s: String) -> Result<SrcName, SrcNameError> {
        validate(&s, MAX_SRCNAME_LEN)?;
        Ok(SrcName(Arc::from(s)))
    }
}

impl fmt::Display for SrcName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SrcName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SrcName({:?})", &*self.0)
    }
}

impl AsRef<str> for SrcName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for SrcName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The components of a srcname, borrowed from it.
///
/// Split rule: the name is split at its first two `/` (`splitn(3, '/')`). Part 0
/// is the `net_sta_chan_loc` field, part 1 the type ([`suffix`](Self::suffix):
/// `MGENC`, `SEED`, `pf`, `db`, ...), part 2 the [`subcode`](Self::subcode),
/// which keeps any further `/`. Part 0 is split with `splitn(4, '_')` into
/// `net`, `sta`, `chan` and `loc`; `loc` keeps any further `_`.
///
/// A component that is absent is `None`; one that is present but empty is
/// `Some("")`. `TA_O20A_/MGENC/MSTV` has `chan == Some("")`, while
/// `TA_M04C/MGENC/EP40` has `chan == None`. This is what makes
/// [`join`](Self::join) the exact inverse of [`SrcName::parts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SrcNameParts<'a> {
    /// Network code; always present, possibly empty (`/pf/orbstat`).
    pub net: &'a str,
    /// Station code, after the first `_`.
    pub sta: Option<&'a str>,
    /// Channel code, after the second `_`.
    pub chan: Option<&'a str>,
    /// Location code, after the third `_`, including any later `_`.
    pub loc: Option<&'a str>,
    /// The type after the first `/`.
    pub suffix: Option<&'a str>,
    /// The subcode after the second `/`, including any later `/`.
    pub subcode: Option<&'a str>,
}

impl<'a> SrcNameParts<'a> {
    fn split(name: &'a str) -> SrcNameParts<'a> {
        let mut slash = name.splitn(3, '/');
        // splitn always yields at least one item, even for "".
        let field = slash.next().unwrap_or("");
        let suffix = slash.next();
        let subcode = slash.next();
        let mut under = field.splitn(4, '_');
        SrcNameParts {
            net: under.next().unwrap_or(""),
            sta: under.next(),
            chan: under.next(),
            loc: under.next(),
            suffix,
            subcode,
        }
    }

    /// Reassembles the name: `net`, then each present `_sta`, `_chan`, `_loc`,
    /// then each present `/suffix`, `/subcode`.
    ///
    /// For parts produced by [`SrcName::parts`] the result equals the original
    /// name exactly. Parts built by hand with gaps (a `chan` without a `sta`)
    /// are joined in order without placeholders, so they do not round trip.
    pub fn join(&self) -> String {
        let mut out = String::with_capacity(MAX_SRCNAME_LEN);
        out.push_str(self.net);
        for part in [self.sta, self.chan, self.loc].into_iter().flatten() {
            out.push('_');
            out.push_str(part);
        }
        for part in [self.suffix, self.subcode].into_iter().flatten() {
            out.push('/');
            out.push_str(part);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn parts(s: &str) -> SrcNameParts<'_> {
        SrcNameParts::split(s)
    }

    fn expect<'a>(
        net: &'a str,
        sta: Option<&'a str>,
        chan: Option<&'a str>,
        loc: Option<&'a str>,
        suffix: Option<&'a str>,
        subcode: Option<&'a str>,
    ) -> SrcNameParts<'a> {
        SrcNameParts {
            net,
            sta,
            chan,
            loc,
            suffix,
            subcode,
        }
    }

    fn check(name: &str, want: SrcNameParts<'_>) {
        let sn = SrcName::new(name).unwrap();
        assert_eq!(sn.parts(), want, "{name}");
        assert_eq!(sn.parts().join(), name);
        assert_eq!(sn.suffix(), want.suffix);
    }

    #[test]
    fn parts_mgenc() {
        check(
            "TA_M04C/MGENC/EP40",
            expect("TA", Some("M04C"), None, None, Some("MGENC"), Some("EP40")),
        );
    }

    #[test]
    fn parts_with_channel() {
        check(
            "AZ_PFO_BHZ/MGENC/M40",
            expect(
                "AZ",
                Some("PFO"),
                Some("BHZ"),
                None,
                Some("MGENC"),
                Some("M40"),
            ),
        );
    }

    #[test]
    fn parts_present_but_empty_channel() {
        check(
            "TA_O20A_/MGENC/MSTV",
            expect(
                "TA",
                Some("O20A"),
                Some(""),
                None,
                Some("MGENC"),
                Some("MSTV"),
            ),
        );
    }

    #[test]
    fn parts_parameter_file() {
        check(
            "/pf/orbstat",
            expect("", None, None, None, Some("pf"), Some("orbstat")),
        );
    }

    #[test]
    fn parts_database_row() {
        check(
            "/db/detection",
            expect("", None, None, None, Some("db"), Some("detection")),
        );
    }

    #[test]
    fn parts_seed_with_location() {
        check(
            "IU_ANMO_BHZ_00/SEED",
            expect(
                "IU",
                Some("ANMO"),
                Some("BHZ"),
                Some("00"),
                Some("SEED"),
                None,
            ),
        );
    }

    #[test]
    fn parts_extra_separators_stay_in_last_component() {
        check(
            "A_B_C_D_E/T/x/y",
            expect(
                "A",
                Some("B"),
                Some("C"),
                Some("D_E"),
                Some("T"),
                Some("x/y"),
            ),
        );
        check("NET", expect("NET", None, None, None, None, None));
        check("a/", expect("a", None, None, None, Some(""), None));
        check("_", expect("", Some(""), None, None, None, None));
    }

    #[test]
    fn rejects_empty() {
        assert_eq!(SrcName::new(""), Err(SrcNameError::Empty));
    }

    #[test]
    fn length_limit() {
        let ok = "x".repeat(MAX_SRCNAME_LEN);
        assert_eq!(SrcName::new(&ok).unwrap().len(), 63);
        let long = "x".repeat(70);
        let err = SrcName::new(&long).unwrap_err();
        assert_eq!(err, SrcNameError::TooLong { len: 70, max: 63 });
        assert_eq!(
            err.to_string(),
            "srcname is 70 bytes, the limit is 63: shorten it"
        );
        assert!(SrcName::with_limit(&long, 70).is_ok());
        assert!(matches!(
            SrcName::with_limit("abc", 2),
            Err(SrcNameError::TooLong { len: 3, max: 2 })
        ));
    }

    #[test]
    fn rejects_bad_bytes() {
        let err = SrcName::new("TA_X BHZ").unwrap_err();
        assert_eq!(
            err,
            SrcNameError::BadByte {
                offset: 4,
                byte: 0x20
            }
        );
        assert_eq!(
            err.to_string(),
            "srcname has byte 0x20 at offset 4: srcnames are printable ASCII without spaces"
        );
        for bad in ["a\tb", "a\nb", "\u{7f}", "caf\u{e9}", "a\0"] {
            let refused = matches!(SrcName::new(bad), Err(SrcNameError::BadByte { .. }));
            assert!(refused, "{bad:?}");
        }
        assert!(matches!(
            SrcName::new("caf\u{e9}"),
            Err(SrcNameError::BadByte {
                offset: 3,
                byte: 0xc3
            })
        ));
    }

    #[test]
    fn conversions_and_formatting() {
        let sn: SrcName = "TA_M04C/MGENC/EP40".parse().unwrap();
        assert_eq!(sn.to_string(), "TA_M04C/MGENC/EP40");
        assert_eq!(format!("{sn:?}"), "SrcName(\"TA_M04C/MGENC/EP40\")");
        assert_eq!(sn.as_ref() as &str, sn.as_str());
        assert!(!sn.is_empty());
        assert_eq!(SrcName::try_from("TA_M04C/MGENC/EP40").unwrap(), sn);
        assert_eq!(
            SrcName::try_from(String::from("TA_M04C/MGENC/EP40")).unwrap(),
            sn
        );
        assert!(SrcName::try_from(String::new()).is_err());

        // Borrow<str> lets maps keyed by SrcName be queried with &str.
        let mut map = HashMap::new();
        map.insert(sn.clone(), 1);
        assert_eq!(map.get("TA_M04C/MGENC/EP40"), Some(&1));

        let a = SrcName::new("A").unwrap();
        let b = SrcName::new("B").unwrap();
        assert!(a < b);
    }

    #[test]
    fn hand_built_parts_join_in_order() {
        let p = SrcNameParts {
            net: "TA",
            sta: Some("X"),
            chan: None,
            loc: None,
            suffix: Some("SEED"),
            subcode: None,
        };
        assert_eq!(p.join(), "TA_X/SEED");
        assert_eq!(parts("TA_X/SEED"), p);
    }

    fn srcname_strategy() -> impl Strategy<Value = String> {
        let byte = prop_oneof![
            3 => Just(b'_'),
            3 => Just(b'/'),
            10 => 0x21u8..=0x7e,
        ];
        proptest::collection::vec(byte, 1..=MAX_SRCNAME_LEN)
            .prop_map(|v| String::from_utf8(v).expect("ascii"))
    }

    proptest! {
        #[test]
        fn join_inverts_parts(s in srcname_strategy()) {
            let sn = SrcName::new(&s).unwrap();
            prop_assert_eq!(sn.parts().join(), s);
        }

        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,80}") {
            if let Ok(sn) = SrcName::new(&s) {
                prop_assert_eq!(sn.as_str(), s.as_str());
                prop_assert_eq!(sn.parts().join(), s);
            }
        }
    }
}
