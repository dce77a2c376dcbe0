//! CDL writer: the dataset the netCDF writer would write, as text exactly as `ncdump`
//! prints that file, so `ncgen` turns it back into an equivalent netCDF file.
//!
//! CDL lists each variable's data in one block, so a file cannot grow by appending:
//! the writer keeps the samples in memory and writes the text at
//! [`finish`](PacketWriter::finish). The dataset model and the rules for which packets
//! fit are the netCDF writer's ([`super::netcdf::station`]).

use std::fmt::Write as _;
use std::io::Write;
use std::sync::Arc;

use super::netcdf::model::{AttrValue, Dataset};
use super::netcdf::station::{self, micros_since, StationFile};
use super::{FileSummary, PacketWriter, WriteError};
use crate::meta::Inventory;
use crate::payload::Channel;
use crate::Packet;

/// ncdump's line limit: a value that would pass it starts a new line.
const MAX_LINE: usize = 80;
/// ncdump's indentation of continued data lines.
const CONT_INDENT: &str = "    ";
/// netCDF's default fill values, which ncdump prints as `_`.
const FILL_INT: i32 = -2_147_483_647;
const FILL_DOUBLE: f64 = 9.969_209_968_386_869e36;

/// How to name the dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdlOptions {
    /// The name after `netcdf`: ncdump prints the file's name without its extension,
    /// so use the name the `.nc` file would have. It is written escaped as ncdump
    /// escapes names ([`escape_name`]), so any file stem gives valid CDL.
    pub name: String,
}

/// One variable's data, for [`render`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VarData<'a> {
    /// A `char` variable's text.
    Text(&'a str),
    /// A `double` variable's values.
    Double(&'a [f64]),
    /// An `int` variable's values.
    Int(&'a [i32]),
}

/// Writes packets of one station as a CDL file at `finish`.
#[derive(Debug)]
pub struct CdlWriter<W> {
    w: W,
    name: String,
    file: Option<StationFile>,
    time: Vec<f64>,
    columns: Vec<Vec<i32>>,
    summary: FileSummary,
    order: Vec<usize>,
    finished: bool,
    metadata: Option<Arc<Inventory>>,
}

impl<W: Write> CdlWriter<W> {
    /// A writer that will write the CDL text into `w` at `finish`.
    pub fn create(w: W, options: CdlOptions) -> CdlWriter<W> {
        CdlWriter {
            w,
            name: options.name,
            file: None,
            time: Vec::new(),
            columns: Vec::new(),
            summary: FileSummary::default(),
            order: Vec::new(),
            finished: false,
            metadata: None,
        }
    }

    /// Looks the first packet's station up in `metadata`, as
    /// [`NetcdfWriter::with_metadata`](super::netcdf::NetcdfWriter::with_metadata) does.
    pub fn with_metadata(mut self, metadata: Option<Arc<Inventory>>) -> CdlWriter<W> {
        self.metadata = metadata;
        self
    }

    /// Renames the dataset: for a caller that learns the file's final name (say, from
    /// its last pktid) only when the file is complete. Takes effect at
    /// [`finish`](PacketWriter::finish), which writes the whole text.
    pub fn set_name(&mut self, name: &str) {
        name.clone_into(&mut self.name);
    }

    /// Gives back the underlying writer.
    pub fn into_inner(self) -> W {
        self.w
    }

    /// The CDL text of what was appended so far.
    pub fn text(&self) -> String {
        match &self.file {
            None => render(
                &self.name,
                &station::empty_dataset(),
                0,
                &[VarData::Double(&[])],
            ),
            Some(file) => {
                let ds = file.dataset(&self.summary);
                let id = file.station_id();
                let position = file.position_values();
                let mut data = vec![VarData::Text(&id), VarData::Double(&self.time)];
                data.extend(self.columns.iter().map(|c| VarData::Int(c)));
                if let Some(p) = &position {
                    data.extend(p.iter().map(std::slice::from_ref).map(VarData::Double));
                }
                render(&self.name, &ds, self.time.len(), &data)
            }
        }
    }
}

impl<W: Write> PacketWriter for CdlWriter<W> {
    fn append(&mut self, packet: &Packet, channels: &[Channel]) -> Result<(), WriteError> {
        if self.finished {
            return Err(WriteError::Finished);
        }
        let mut order = std::mem::take(&mut self.order);
        let fits = match &self.file {
            Some(f) => f
                .check(packet, channels, self.summary.end, &mut order)
                .map(|()| None),
            None => StationFile::first(packet, channels, self.metadata.as_deref()).map(|s| {
                order.clear();
                order.extend(0..channels.len());
                Some(s)
            }),
        };
        let new = match fits {
            Ok(new) => new,
            Err(reason) => {
                self.order = order;
                return Err(WriteError::DoesNotFit {
                    pktid: packet.pktid,
                    reason,
                });
            }
        };
        if let Some(f) = new {
            self.columns = vec![Vec::new(); f.channels.len()];
            self.file = Some(f);
        }
        let base = self
            .file
            .as_ref()
            .map_or(crate::Time::UNIX_EPOCH, |f| f.base);
        let lead = &channels[order[0]];
        self.time
            .extend((0..lead.samples.len()).map(|i| micros_since(base, lead.sample_time(i))));
        for (col, &c) in self.columns.iter_mut().zip(&order) {
            col.extend_from_slice(&channels[c].samples);
        }
        self.summary.add(packet, channels);
        self.order = order;
        Ok(())
    }

    /// CDL is written whole at [`finish`](PacketWriter::finish); flushing writes
    /// nothing.
    fn flush(&mut self) -> Result<(), WriteError> {
        Ok(())
    }

    fn finish(&mut self) -> Result<(), WriteError> {
        if self.finished {
            return Err(WriteError::Finished);
        }
        let text = self.text();
        self.w.write_all(text.as_bytes())?;
        self.w.flush()?;
        self.finished = true;
        Ok(())
    }

    fn summary(&self) -> &FileSummary {
        &self.summary
    }
}

/// The CDL text ncdump prints for a classic file named `name` holding `ds` with
/// `numrecs` records and `data` for its variables (in order; missing or empty entries
/// print no data).
pub fn render(name: &str, ds: &Dataset, numrecs: usize, data: &[VarData<'_>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "netcdf {} {{", escape_name(name));
    if !ds.dims.is_empty() {
        out.push_str("dimensions:\n");
        for d in &ds.dims {
            if d.len == 0 {
                let _ = writeln!(out, "\t{} = UNLIMITED ; // ({numrecs} currently)", d.name);
            } else {
                let _ = writeln!(out, "\t{} = {} ;", d.name, d.len);
            }
        }
    }
    if !ds.vars.is_empty() {
        out.push_str("variables:\n");
        for v in &ds.vars {
            let dims: Vec<&str> = v.dims.iter().map(|&d| ds.dims[d].name.as_str()).collect();
            let _ = write!(out, "\t{} {}", v.ty.cdl_name(), v.name);
            if !dims.is_empty() {
                let _ = write!(out, "({})", dims.join(", "));
            }
            out.push_str(" ;\n");
            for a in &v.attrs {
                let _ = write!(out, "\t\t{}:{} = ", v.name, a.name);
                attr_value(&mut out, &a.value);
                out.push_str(" ;\n");
            }
        }
    }
    if !ds.attrs.is_empty() {
        out.push_str("\n// global attributes:\n");
        for a in &ds.attrs {
            let _ = write!(out, "\t\t:{} = ", a.name);
            attr_value(&mut out, &a.value);
            out.push_str(" ;\n");
        }
    }
    if !ds.vars.is_empty() {
        out.push_str("data:\n");
        for (v, d) in ds.vars.iter().zip(data) {
            let empty = match d {
                VarData::Text(_) => false,
                VarData::Double(x) => x.is_empty(),
                VarData::Int(x) => x.is_empty(),
            };
            if empty || (ds.is_record(v) && numrecs == 0) {
                continue;
            }
            let _ = write!(out, "\n {} = ", v.name);
            let mut line = Line {
                out: &mut out,
                col: v.name.len() + 4,
            };
            match *d {
                VarData::Text(s) => {
                    let mut t = String::from("\"");
                    escape_into(&mut t, s);
                    t.push_str("\" ;");
                    line.put(&t, 0);
                }
                VarData::Double(x) => values(&mut line, x, |s, v| {
                    if v == FILL_DOUBLE {
                        s.push('_');
                    } else {
                        format_g(s, v, 15, false);
                    }
                }),
                VarData::Int(x) => values(&mut line, x, |s, v| {
                    if v == FILL_INT {
                        s.push('_');
                    } else {
                        let _ = write!(s, "{v}");
                    }
                }),
            }
            out.push('\n');
        }
    }
    out.push_str("}\n");
    out
}

/// A name as ncdump prints it (its `escaped_name`): a leading digit and the characters
/// special to CDL get a backslash, control characters become `\%xx`. `ncgen` reads
/// the name back unescaped (`ncgen -b` names its output by it), so a file stem like
/// `1015_1028` prints as `\1015_1028`, exactly as `ncdump 1015_1028.nc` does.
pub fn escape_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('\\');
    }
    for c in name.chars() {
        match c {
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\%{:02x}", c as u32);
            }
            ' ' | '!' | '"' | '#' | '$' | '&' | '\'' | '(' | ')' | '*' | ',' | ':' | ';' | '<'
            | '=' | '>' | '?' | '[' | ']' | '\\' | '^' | '`' | '{' | '|' | '}' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// ncdump's `lput`: text that would pass the line limit starts a continuation line.
struct Line<'a> {
    out: &'a mut String,
    col: usize,
}

impl Line<'_> {
    /// Puts `s`, first breaking the line if `s` and `reserve` more columns would pass
    /// the limit. ncdump reserves 2 columns after every value but the last (measured
    /// against ncdump 4.9 output, see the tests).
    fn put(&mut self, s: &str, reserve: usize) {
        if s.len() + self.col + reserve > MAX_LINE && s.len() > 2 {
            self.out.push('\n');
            self.out.push_str(CONT_INDENT);
            self.col = CONT_INDENT.len();
        }
        self.out.push_str(s);
        self.col += s.len();
    }
}

fn values<T: Copy>(line: &mut Line<'_>, xs: &[T], fmt: impl Fn(&mut String, T)) {
    let mut s = String::with_capacity(32);
    for (i, &x) in xs.iter().enumerate() {
        s.clear();
        fmt(&mut s, x);
        let last = i + 1 == xs.len();
        s.push_str(if last { " ;" } else { ", " });
        line.put(&s, if last { 0 } else { 2 });
    }
}

fn attr_value(out: &mut String, v: &AttrValue) {
    match v {
        AttrValue::Text(s) => {
            out.push('"');
            escape_into(out, s);
            out.push('"');
        }
        AttrValue::Int(xs) => {
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{x}");
            }
        }
        AttrValue::Double(xs) => {
            for (i, &x) in xs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                format_g(out, x, 15, true);
            }
        }
    }
}

/// ncdump's escapes for text in double quotes.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\{:03o}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// C's `%.{prec}g` (`alt`: `%#.{prec}g` followed by ncdump's `tztrim`, which keeps the
/// decimal point but drops trailing zeros: `1.`, `0.01`, `1.e+20`).
pub fn format_g(out: &mut String, x: f64, prec: usize, alt: bool) {
    if !x.is_finite() {
        out.push_str(if x.is_nan() {
            "NaN"
        } else if x > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        });
        return;
    }
    if prec == 15 && !alt && whole_decimal(out, x) {
        return;
    }
    general_g(out, x, prec, alt);
}

/// [`format_g`] for every finite value.
fn general_g(out: &mut String, x: f64, prec: usize, alt: bool) {
    let prec = prec.max(1);
    let e_form = format!("{:.*e}", prec - 1, x);
    let (mantissa, exp) = e_form.split_once('e').unwrap_or((&e_form, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let body = if exp < -4 || exp >= prec as i32 {
        let m = trim_fraction(mantissa, alt);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.unsigned_abs())
    } else {
        let digits = (prec as i32 - 1 - exp).max(0) as usize;
        trim_fraction(&format!("{x:.digits$}"), alt)
    };
    out.push_str(&body);
}

/// `%.15g` of a whole number below 10^15 (every `time` value orb writes: whole
/// microseconds), without formatting through the general path; `false` for other values.
///
/// Exact because such a number has at most 15 digits, which `%.15g` prints in full,
/// without a point or an exponent.
fn whole_decimal(out: &mut String, x: f64) -> bool {
    if !(x.abs() < 1e15 && x.fract() == 0.0) {
        return false;
    }
    if x.is_sign_negative() {
        out.push('-');
    }
    let _ = write!(out, "{}", x.abs() as u64);
    true
}

/// Drops trailing fraction zeros; the point too unless `keep_point` (then a number
/// without one gets one, as `%#g` always prints it).
fn trim_fraction(s: &str, keep_point: bool) -> String {
    let mut t = s.to_owned();
    if t.contains('.') {
        while t.ends_with('0') {
            t.pop();
        }
        if !keep_point && t.ends_with('.') {
            t.pop();
        }
    } else if keep_point {
        t.push('.');
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(x: f64, alt: bool) -> String {
        let mut s = String::new();
        format_g(&mut s, x, 15, alt);
        s
    }

    #[test]
    fn doubles_print_as_c_does() {
        assert_eq!(g(1.0, true), "1.");
        assert_eq!(g(1.0, false), "1");
        assert_eq!(g(0.01, true), "0.01");
        assert_eq!(g(0.025, false), "0.025");
        assert_eq!(g(-1.0, true), "-1.");
        assert_eq!(g(1e20, true), "1.e+20");
        assert_eq!(g(1.5e-7, false), "1.5e-07");
        assert_eq!(g(123456789012345678.0, false), "1.23456789012346e+17");
        assert_eq!(g(0.0001, false), "0.0001");
        assert_eq!(g(40.0, true), "40.");
        assert_eq!(g(0.1 + 0.2, false), "0.3");
    }

    #[test]
    fn the_whole_number_fast_path_agrees_with_the_general_one() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut checked = 0;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = (x % 4_000_000_000_000_000) as i64 - 2_000_000_000_000_000;
            let v = match i % 4 {
                0 => (n / 1_000_000_000) as f64,
                1 => (n / 1000) as f64,
                2 => n as f64 / 1e6,
                _ => n as f64,
            };
            let mut fast = String::new();
            if whole_decimal(&mut fast, v) {
                let mut general = String::new();
                general_g(&mut general, v, 15, false);
                assert_eq!(fast, general, "{v}");
                checked += 1;
            }
        }
        assert!(checked > 100_000);
        for v in [0.0, -0.0, 999_999_999_999_999.0, 72_057_594_037_927.0] {
            let (mut fast, mut general) = (String::new(), String::new());
            assert!(whole_decimal(&mut fast, v));
            general_g(&mut general, v, 15, false);
            assert_eq!(fast, general, "{v}");
        }
        assert!(!whole_decimal(&mut String::new(), 1e15));
        assert!(!whole_decimal(&mut String::new(), 0.5));
    }

    /// Names as `ncdump` 4.9 prints them for files of these names.
    #[test]
    fn names_are_escaped_like_ncdump() {
        assert_eq!(escape_name("f2"), "f2");
        assert_eq!(escape_name("1015_1028"), "\\1015_1028");
        assert_eq!(escape_name("12_17_1sps"), "\\12_17_1sps");
        assert_eq!(escape_name("a b"), "a\\ b");
        assert_eq!(escape_name("q(1)-2:3"), "q\\(1\\)-2\\:3");
        assert_eq!(escape_name("x.y%20z"), "x.y%20z");
    }

    #[test]
    fn set_name_renames_the_dataset_at_finish() {
        let mut w = CdlWriter::create(Vec::new(), CdlOptions { name: "x".into() });
        w.set_name("7_9");
        w.finish().unwrap();
        let text = String::from_utf8(w.into_inner()).unwrap();
        assert_eq!(text.lines().next(), Some("netcdf \\7_9 {"));
    }

    #[test]
    fn text_is_escaped_like_ncdump() {
        let mut s = String::new();
        escape_into(&mut s, "a\"b\\c\nd\u{1}");
        assert_eq!(s, "a\\\"b\\\\c\\nd\\001");
    }
}
