//! Sensor payload codecs: the bytes inside a packet, by the srcname's type suffix.
//!
//! - [`gencompress`]: Antelope's compression of first differences in groups, each
//!   group with its own bit width (used by GENC and MGENC).
//! - [`gen`], [`genc`], [`mgenc`]: Antelope's `GEN` (one channel, plain), `GENC` (one
//!   channel, gencompressed) and `MGENC` (several channels, gencompressed) packets.
//! - [`steim`]: Steim1 and Steim2 frames (SEED 2.4, appendix B).
//! - [`seed`]: a `SEED` payload, one or more whole miniSEED 2 records.
//!
//! [`decode`] picks the codec from the suffix; [`SuffixWarnings`] lets a caller report
//! an unknown suffix once per source. Every decoder checks each length before reading
//! and answers malformed input with a [`PayloadError`], never a panic. The byte layouts,
//! units and segtype codes are in `docs/FORMATS.md`, "Packet payloads".

use std::collections::HashSet;

use crate::{SrcName, Time};

pub mod gen;
pub mod genc;
pub mod gencompress;
pub mod mgenc;
pub mod seed;
pub mod steim;

pub use steim::Steim;

/// One channel of samples decoded from (or to be encoded into) a packet.
///
/// Samples are integer counts; `calib` converts a count to the physical unit that
/// `segtype` names (docs/FORMATS.md lists the codes), at the period `calper` seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// Network code, e.g. `XX`.
    pub net: String,
    /// Station code, e.g. `STA01`.
    pub sta: String,
    /// SEED-style channel code: `BHZ`, `BHN`, `BHE`, `HHZ`, `LDO`, `BDF`, ...
    pub chan: String,
    /// Location code, often empty.
    pub loc: String,
    /// Time of the first sample.
    pub start: Time,
    /// Samples per second (0 for no rate).
    pub samprate: f64,
    /// Physical units per count.
    pub calib: f64,
    /// Period in seconds at which `calib` holds.
    pub calper: f64,
    /// Antelope segment type: what the samples measure (`V` velocity, `P`, `I`, ...).
    pub segtype: char,
    /// The samples, in counts.
    pub samples: Vec<i32>,
}

impl Channel {
    /// Time just after the last sample: `start + nsamp / samprate` (rounded to the
    /// microsecond; `start` when the rate is not positive).
    pub fn end(&self) -> Time {
        self.sample_time(self.samples.len())
    }

    /// Time of sample `i` (`start` when the rate is not positive).
    pub fn sample_time(&self, i: usize) -> Time {
        if self.samprate.is_finite() && self.samprate > 0.0 {
            let us = (i as f64 * 1e6 / self.samprate).round();
            if us.abs() < 9.0e18 {
                return self
                    .start
                    .checked_add_micros(us as i64)
                    .unwrap_or(self.start);
            }
        }
        self.start
    }
}

/// Why a payload could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The srcname has no `/type` suffix to choose a codec by.
    #[error("srcname {srcname} has no /type suffix, so its payload cannot be decoded")]
    NoSuffix {
        /// The srcname.
        srcname: String,
    },
    /// No codec is registered for the suffix.
    #[error("no payload codec for type {suffix:?}: known types are {}", KNOWN_SUFFIXES.join(", "))]
    UnknownSuffix {
        /// The suffix.
        suffix: String,
    },
    /// The payload ends before a field.
    #[error("payload truncated: {what} needs {needed} bytes at offset {offset}, {available} left")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Offset of the field.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left at that offset.
        available: usize,
    },
    /// Bytes follow the last field.
    #[error("payload has {len} unexpected bytes at offset {offset}")]
    TrailingBytes {
        /// Where they start.
        offset: usize,
        /// How many.
        len: usize,
    },
    /// A header's sample count disagrees with the samples the data holds.
    #[error("{what}: header says {declared} samples, the data holds {found}")]
    CountMismatch {
        /// Which count.
        what: &'static str,
        /// The header's count.
        declared: usize,
        /// What the data gave.
        found: usize,
    },
    /// A field holds a value outside its range.
    #[error("bad {what} {value} at offset {offset}")]
    BadField {
        /// Which field.
        what: &'static str,
        /// The value read.
        value: i64,
        /// Offset of the field.
        offset: usize,
    },
    /// Too many samples or channels for the format's count field.
    #[error("{what}: {count} is more than the format holds ({max})")]
    TooMany {
        /// What is counted.
        what: &'static str,
        /// The count asked for.
        count: usize,
        /// The format's limit.
        max: usize,
    },
    /// A text field does not fit its slot or has characters the format cannot hold.
    #[error("{field} {value:?} does not fit: at most {max} printable ASCII characters")]
    BadText {
        /// Which field.
        field: &'static str,
        /// The value.
        value: String,
        /// Its slot size.
        max: usize,
    },
    /// A sample difference is too large for the compression.
    #[error("sample {index}: difference {diff} needs more than {bits} bits; use Steim1")]
    DifferenceTooLarge {
        /// Index of the sample.
        index: usize,
        /// The difference.
        diff: i32,
        /// The widest difference the compression holds.
        bits: u32,
    },
    /// A Steim record's last sample disagrees with its reverse integration constant.
    #[error("steim data decodes to a last sample of {found}, the frame says {expected}")]
    IntegrityMismatch {
        /// The reverse integration constant.
        expected: i32,
        /// The last decoded sample.
        found: i32,
    },
    /// A miniSEED record this decoder does not handle.
    #[error("miniSEED record at offset {offset}: {reason}")]
    Unsupported {
        /// Offset of the record in the payload.
        offset: usize,
        /// What is not handled.
        reason: &'static str,
    },
    /// A sample rate, calibration or time that cannot be written.
    #[error("{what} {value} cannot be encoded")]
    BadValue {
        /// Which value.
        what: &'static str,
        /// Its text.
        value: String,
    },
}

/// Short for results of this module.
pub type Result<T, E = PayloadError> = std::result::Result<T, E>;

/// The type suffixes [`decode`] knows, as they appear after the first `/`.
pub const KNOWN_SUFFIXES: &[&str] = &["GEN", "GENC", "MGENC", "SEED", "MSEED"];

/// Whether [`decode`] has a codec for this suffix.
pub fn is_known_suffix(suffix: &str) -> bool {
    KNOWN_SUFFIXES.contains(&suffix)
}

/// Decodes a packet's payload by its srcname's type suffix into channels.
///
/// `time` is the packet time; single-channel Antelope formats take their start time
/// and channel names from the packet (time and srcname). `SEED` and `MSEED` payloads
/// carry their own. Unknown suffixes are [`PayloadError::UnknownSuffix`].
pub fn decode(srcname: &SrcName, time: Time, payload: &[u8]) -> Result<Vec<Channel>> {
    let suffix = srcname.suffix().ok_or_else(|| PayloadError::NoSuffix {
        srcname: srcname.to_string(),
    })?;
    match suffix {
        "GEN" => Ok(vec![gen::decode(srcname, time, payload)?]),
        "GENC" => Ok(vec![genc::decode(srcname, time, payload)?]),
        "MGENC" => mgenc::decode(srcname, time, payload),
        "SEED" | "MSEED" => seed::decode(payload),
        other => Err(PayloadError::UnknownSuffix {
            suffix: other.to_owned(),
        }),
    }
}

/// Remembers which sources were already reported as having an unknown type, so a
/// tool can say so once per source instead of once per packet.
#[derive(Debug, Default)]
pub struct SuffixWarnings {
    seen: HashSet<SrcName>,
}

impl SuffixWarnings {
    /// An empty set.
    pub fn new() -> SuffixWarnings {
        SuffixWarnings::default()
    }

    /// True the first time `srcname` is offered, false after: report only when true.
    pub fn first_time(&mut self, srcname: &SrcName) -> bool {
        if self.seen.contains(srcname) {
            return false;
        }
        self.seen.insert(srcname.clone())
    }

    /// How many sources were reported.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True if none was.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// Big-endian reads that check every length; errors name the field and offset.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let rest = &self.buf[self.pos..];
        match rest.get(..n) {
            Some(b) => {
                self.pos += n;
                Ok(b)
            }
            None => Err(PayloadError::Truncated {
                what,
                offset: self.pos,
                needed: n,
                available: rest.len(),
            }),
        }
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let b = self.bytes(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn f32(&mut self, what: &'static str) -> Result<f32> {
        Ok(f32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn f64(&mut self, what: &'static str) -> Result<f64> {
        Ok(f64::from_be_bytes(self.array(what)?))
    }

    /// Fails with [`PayloadError::TrailingBytes`] unless everything was read.
    pub(crate) fn finish(&self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            len => Err(PayloadError::TrailingBytes {
                offset: self.pos,
                len,
            }),
        }
    }
}

/// Text of a NUL-padded fixed field: up to the first NUL, bytes as Latin-1.
pub(crate) fn fixed_text(b: &[u8]) -> String {
    b.iter()
        .take_while(|&&c| c != 0)
        .map(|&c| char::from(c))
        .collect()
}

/// Appends `s` NUL-padded to `len` bytes; `s` must be printable ASCII of at most `len`.
pub(crate) fn put_fixed_text(
    out: &mut Vec<u8>,
    s: &str,
    len: usize,
    field: &'static str,
) -> Result<()> {
    if s.len() > len || !s.bytes().all(|c| (0x20..=0x7e).contains(&c)) {
        return Err(PayloadError::BadText {
            field,
            value: s.to_owned(),
            max: len,
        });
    }
    out.extend_from_slice(s.as_bytes());
    out.resize(out.len() + (len - s.len()), 0);
    Ok(())
}

/// The segtype as one ASCII byte.
pub(crate) fn segtype_byte(c: char) -> Result<u8> {
    u8::try_from(c)
        .ok()
        .filter(|b| (0x20..=0x7e).contains(b))
        .ok_or_else(|| PayloadError::BadText {
            field: "segtype",
            value: c.to_string(),
            max: 1,
        })
}

/// Samples as a `u16` count, as GEN/GENC/MGENC headers hold them.
pub(crate) fn nsamp_u16(n: usize) -> Result<u16> {
    u16::try_from(n).map_err(|_| PayloadError::TooMany {
        what: "samples in one channel",
        count: n,
        max: usize::from(u16::MAX),
    })
}

/// The `f64` a rate, calib or calper read as `f32` from an Antelope header stands for:
/// the double with the same shortest decimal form, so `0.01f32` (whose exact value is
/// 0.00999999977648258...) gives `0.01`, not that value widened. The sender wrote a
/// decimal into a float; CF readers multiply counts by `calib` in doubles, and
/// 101297 x 0.01 is 1012.97 where 101297 x the widened float is 1012.9699773...
///
/// Narrowing the result back with `as f32` gives `v` again (checked, falling back to the
/// plain widening if it ever did not), so channels still re-encode to the same bytes.
pub fn widen_f32(v: f32) -> f64 {
    // Whole numbers below 2^24 (40 sps, calper 1) are their own shortest decimal, as
    // every integer there is an f32: skip the formatting. (Above, f32 steps exceed 1 and
    // the shortest decimal may differ: 69812304f32 prints as 69812300.)
    if v.fract() == 0.0 && v.abs() < 16_777_216.0 {
        return f64::from(v);
    }
    // `Display` prints the shortest decimal that reads back as `v`.
    match v.to_string().parse::<f64>() {
        Ok(w) if w as f32 == v => w,
        _ => f64::from(v),
    }
}

/// A rate, calib or calper as the `f32` the Antelope headers hold; must be finite.
pub(crate) fn f32_field(v: f64, what: &'static str) -> Result<f32> {
    let f = v as f32;
    if f.is_finite() {
        Ok(f)
    } else {
        Err(PayloadError::BadValue {
            what,
            value: v.to_string(),
        })
    }
}

/// net/sta/chan/loc of a single-channel packet, from its srcname.
pub(crate) fn names_from_srcname(srcname: &SrcName) -> [String; 4] {
    let p = srcname.parts();
    [
        p.net.to_owned(),
        p.sta.unwrap_or("").to_owned(),
        p.chan.unwrap_or("").to_owned(),
        p.loc.unwrap_or("").to_owned(),
    ]
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Strategies shared by the codec tests.
    use proptest::prelude::*;

    /// Samples with the awkward cases weighted in: extremes alternating, long runs,
    /// short packets.
    pub fn samples(max: usize) -> impl Strategy<Value = Vec<i32>> {
        prop_oneof![
            proptest::collection::vec(any::<i32>(), 0..5),
            proptest::collection::vec(any::<i32>(), 0..max),
            proptest::collection::vec(-300i32..300, 0..max),
            proptest::collection::vec(prop_oneof![Just(i32::MIN), Just(i32::MAX), Just(0)], 0..64),
            (any::<i32>(), 0..max).prop_map(|(v, n)| vec![v; n]),
        ]
    }

    /// Sample rates as decoding gives them: `f32` values, widened by
    /// [`widen_f32`](super::widen_f32).
    pub fn samprate() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(40.0),
            Just(100.0),
            Just(1.0),
            Just(20.0),
            Just(0.1),
            any::<f32>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(super::widen_f32),
        ]
    }

    /// Segtype codes.
    pub fn segtype() -> impl Strategy<Value = char> {
        (0x21u8..0x7f).prop_map(char::from)
    }

    /// A station-like code of `1..=max` letters and digits.
    pub fn code(max: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("[A-Z0-9]{{1,{max}}}")).expect("regex")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sn(s: &str) -> SrcName {
        SrcName::new(s).unwrap()
    }

    #[test]
    fn unknown_and_missing_suffixes_are_typed_errors() {
        let t = Time::from_micros(0);
        assert!(matches!(
            decode(&sn("XX_STA/EXP"), t, b"x"),
            Err(PayloadError::UnknownSuffix { suffix }) if suffix == "EXP"
        ));
        assert!(matches!(
            decode(&sn("XX_STA"), t, b"x"),
            Err(PayloadError::NoSuffix { .. })
        ));
        assert!(is_known_suffix("MGENC"));
        assert!(!is_known_suffix("pf"));
    }

    #[test]
    fn suffix_warnings_fire_once_per_source() {
        let mut w = SuffixWarnings::new();
        assert!(w.is_empty());
        assert!(w.first_time(&sn("A_B/EXP")));
        assert!(!w.first_time(&sn("A_B/EXP")));
        assert!(w.first_time(&sn("A_C/EXP")));
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn registry_dispatches_every_known_suffix() {
        let t = Time::from_micros(1_700_000_000_000_000);
        let ch = Channel {
            net: "XX".into(),
            sta: "STA01".into(),
            chan: "BHZ".into(),
            loc: String::new(),
            start: t,
            samprate: 40.0,
            calib: 1.0,
            calper: 1.0,
            segtype: 'V',
            samples: vec![1, -2, 3, 400, 5, 6],
        };
        let gen = gen::encode(&ch).unwrap();
        let got = decode(&sn("XX_STA01_BHZ/GEN"), t, &gen).unwrap();
        assert_eq!(got, vec![ch.clone()]);
        let genc = genc::encode(&ch).unwrap();
        assert_eq!(
            decode(&sn("XX_STA01_BHZ/GENC"), t, &genc).unwrap(),
            vec![ch.clone()]
        );
        let two = [
            ch.clone(),
            Channel {
                chan: "BHN".into(),
                ..ch.clone()
            },
        ];
        let m = mgenc::encode(&two).unwrap();
        assert_eq!(
            decode(&sn("XX_STA01/MGENC/M40"), t, &m).unwrap(),
            two.to_vec()
        );
        let s = seed::encode(&ch, Steim::Two).unwrap();
        let got = decode(&sn("XX_STA01_BHZ/SEED"), t, &s).unwrap();
        assert_eq!(got[0].samples, ch.samples);
        assert_eq!(got[0].start, t);
    }

    #[test]
    fn channel_end_time() {
        let ch = Channel {
            net: String::new(),
            sta: String::new(),
            chan: String::new(),
            loc: String::new(),
            start: Time::from_micros(1_000_000),
            samprate: 40.0,
            calib: 0.0,
            calper: 0.0,
            segtype: '-',
            samples: vec![0; 40],
        };
        assert_eq!(ch.end(), Time::from_micros(2_000_000));
        assert_eq!(ch.sample_time(1), Time::from_micros(1_025_000));
    }

    #[test]
    fn f32_fields_widen_to_the_decimal_they_print_as() {
        for (f, want) in [
            (0.01f32, 0.01f64),
            (0.001, 0.001),
            (0.1, 0.1),
            (40.0, 40.0),
            (-2.5, -2.5),
            (1e-30, 1e-30),
            (3.4028235e38, 3.4028235e38),
            (0.0, 0.0),
            (16_777_215.0, 16_777_215.0),
            (69_812_304.0, 69_812_300.0),
        ] {
            assert_eq!(widen_f32(f).to_bits(), want.to_bits(), "{f}");
        }
        assert!(widen_f32(-0.0).is_sign_negative());
        // The double nearest 7.038531e-26 narrows to the next f32 (rounding twice):
        // such a value keeps its plain widening, to re-encode to the same bytes.
        let f = f32::from_bits(0x15ae_43fd);
        assert_eq!(f.to_string(), "0.00000000000000000000000007038531");
        assert_ne!("7.038531e-26".parse::<f64>().unwrap() as f32, f);
        assert_eq!(widen_f32(f), f64::from(f));
        assert_eq!(widen_f32(f32::INFINITY), f64::INFINITY);
        assert!(widen_f32(f32::NAN).is_nan());
        // A calibrated count reads as the decimal a person expects.
        assert_eq!(101_297.0 * widen_f32(0.01), 1012.97);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 100_000, ..Default::default() })]

        /// Every finite f32: the widened double prints as the f32 does and narrows back
        /// to it, so re-encoding a decoded channel gives the same bytes.
        #[test]
        fn widening_keeps_the_decimal_and_narrows_back(bits in proptest::prelude::any::<u32>()) {
            let f = f32::from_bits(bits);
            let w = widen_f32(f);
            if f.is_nan() {
                proptest::prop_assert!(w.is_nan());
            } else {
                proptest::prop_assert_eq!((w as f32).to_bits(), bits);
                // Or the rare fallback: the double nearest the decimal narrows elsewhere.
                let nearest: f64 = f.to_string().parse().unwrap();
                proptest::prop_assert!(
                    w.to_string() == f.to_string()
                        || (w == f64::from(f) && nearest as f32 != f),
                    "{} widened to {}", f, w
                );
            }
        }
    }
}
