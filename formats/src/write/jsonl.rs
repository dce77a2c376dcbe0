//! JSON Lines (`.jsonl`): one packet per line, for `jq`, `pandas.read_json(path,
//! lines=True)` and any language with a JSON parser.
//!
//! This is the one JSON form of a packet: orbreaper's `format = "jsonl"` archives and
//! `orbtail --json` both write their lines with [`encode_line`], so a script reads
//! either the same way.
//!
//! Each line is one JSON object with these fields, in this order
//! (`docs/FORMATS.md`, "Archive files", has an example):
//!
//! | field | value |
//! |---|---|
//! | `pktid` | integer |
//! | `srcname` | string |
//! | `time` | packet time, ISO 8601 UTC with 6 fraction digits and `Z` |
//! | `nbytes` | payload length in bytes, integer |
//! | `start_time` | earliest channel start (same form), `null` without channels |
//! | `samprate`, `calib`, `calper` | numbers, of the first channel; `null` without channels |
//! | `segtype` | one-letter string, of the first channel; `null` without channels |
//! | `channels` | array of objects: `net`, `sta`, `chan`, `loc`, `start_time`, `samprate`, `calib`, `calper`, `segtype`, `nsamp`, `samples` (integers) |
//! | `payload_base64` | only on packets without channels: the payload, standard base64 with padding |
//! | `payload_json` | only on `DET` and `EVENT` packets (detections, docs/DETECTION.md) whose payload is a JSON object: that object |
//!
//! A packet whose payload could not be decoded (unknown type, damaged) is still
//! written, with `channels: []` and its bytes under `payload_base64`, so a JSON Lines
//! archive never silently loses a packet. Non-finite rates or calibrations are
//! `null` (JSON has no NaN). Times outside the calendar range chrono supports
//! (about 262,000 years either side of 1970) are written as epoch-seconds text.
//!
//! With station metadata ([`JsonLinesWriter::with_metadata`]), the first packet line
//! of each station found in it is preceded by one header line, `{"header": {...}}`:
//! the station's `net`, `sta`, `latitude`, `longitude`, `elevation`, `site` and
//! `channels` (each `loc`, `chan`, `azimuth`, `dip`, `sensitivity`,
//! `sensitivity_frequency`, `units`; `null` where unknown), as in force at that
//! packet's first sample. A reader tells the two kinds of line apart by the `header`
//! key. Without metadata, or for a station it does not list, no header line is
//! written.
//!
//! Every line ends with `\n`, written last, so a crash leaves at most one line
//! without it: [`JsonLinesWriter::resume`] cuts that line and rebuilds the summary
//! from the others.

use std::collections::BTreeSet;
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use base64::Engine;
use chrono::{DateTime, Datelike, Timelike};
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::ser::{CompactFormatter, Formatter};

use super::resume::{Resumed, Truncate};
use super::{FileSummary, PacketWriter, WriteError};
use crate::meta::{Inventory, StationMeta};
use crate::payload::Channel;
use crate::{Packet, Time};

/// Write the buffer out once it holds this much, so memory stays bounded between flushes.
const FLUSH_AT: usize = 1 << 20;

/// Writes JSON Lines, one packet per line; see the module docs for the fields.
///
/// Takes every packet: with channels, their samples; without, its payload in base64.
#[derive(Debug)]
pub struct JsonLinesWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    summary: FileSummary,
    finished: bool,
    metadata: Option<Arc<Inventory>>,
    /// `NET_STA` of every station whose header line the file holds.
    headed: BTreeSet<String>,
}

/// A header line: `{"header": {...}}`.
#[derive(Serialize, Deserialize)]
struct HeaderLine {
    header: Header,
}

/// One station's metadata, as a header line carries it.
#[derive(Serialize, Deserialize)]
struct Header {
    net: String,
    sta: String,
    latitude: f64,
    longitude: f64,
    elevation: f64,
    site: Option<String>,
    channels: Vec<HeaderChannel>,
}

#[derive(Serialize, Deserialize)]
struct HeaderChannel {
    loc: String,
    chan: String,
    azimuth: Option<f64>,
    dip: Option<f64>,
    sensitivity: Option<f64>,
    sensitivity_frequency: Option<f64>,
    units: Option<String>,
}

impl From<&StationMeta> for Header {
    fn from(m: &StationMeta) -> Header {
        Header {
            net: m.net.clone(),
            sta: m.sta.clone(),
            latitude: m.latitude,
            longitude: m.longitude,
            elevation: m.elevation,
            site: m.site.clone(),
            channels: m
                .channels
                .iter()
                .map(|c| HeaderChannel {
                    loc: c.loc.clone(),
                    chan: c.chan.clone(),
                    azimuth: c.azimuth,
                    dip: c.dip,
                    sensitivity: c.sensitivity.as_ref().map(|s| s.value),
                    sensitivity_frequency: c.sensitivity.as_ref().and_then(|s| s.frequency),
                    units: c.sensitivity.as_ref().map(|s| s.units.clone()),
                })
                .collect(),
        }
    }
}

impl<W: Write> JsonLinesWriter<W> {
    /// A writer starting a new file (or appending) at the current position of `out`.
    pub fn new(out: W) -> JsonLinesWriter<W> {
        JsonLinesWriter {
            out,
            buf: Vec::with_capacity(64 * 1024),
            summary: FileSummary::default(),
            finished: false,
            metadata: None,
            headed: BTreeSet::new(),
        }
    }

    /// Writes a header line with a station's metadata before its first packet line
    /// (see the module docs).
    pub fn with_metadata(mut self, metadata: Option<Arc<Inventory>>) -> JsonLinesWriter<W> {
        self.metadata = metadata;
        self
    }

    /// Appends the header line for the station of `channels`, if the metadata lists
    /// it and the file has none for it yet.
    fn header_for(&mut self, channels: &[Channel]) -> io::Result<()> {
        let (Some(inv), Some(first)) = (&self.metadata, channels.first()) else {
            return Ok(());
        };
        let key = format!("{}_{}", first.net, first.sta);
        if self.headed.contains(&key) {
            return Ok(());
        }
        let Some(meta) = inv.station(&first.net, &first.sta, first.start) else {
            return Ok(());
        };
        let line = HeaderLine {
            header: Header::from(&meta),
        };
        serde_json::to_writer(&mut self.buf, &line).map_err(io::Error::from)?;
        self.buf.push(b'\n');
        self.headed.insert(key);
        Ok(())
    }

    /// The underlying writer (after [`flush`](PacketWriter::flush) it holds everything).
    pub fn into_inner(self) -> W {
        self.out
    }

    fn write_buffer(&mut self) -> Result<(), WriteError> {
        if !self.buf.is_empty() {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

impl<F: Read + Write + Seek + Truncate> JsonLinesWriter<F> {
    /// Reopens an existing JSON Lines file to append: reads every line, rebuilds the
    /// summary, cuts a last line that has no `\n` (a crash in mid-write) and positions
    /// at the end. A complete line that is not a packet line is
    /// [`WriteError::Corrupt`] naming the line; nothing is cut then.
    pub fn resume(mut file: F) -> Result<Resumed<JsonLinesWriter<F>>, WriteError> {
        file.seek(SeekFrom::Start(0))?;
        let mut summary = FileSummary::default();
        let mut headed = BTreeSet::new();
        let mut valid = 0u64;
        let mut cut = 0u64;
        let mut line = Vec::new();
        let mut reader = io::BufReader::new(&mut file);
        for number in 1.. {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            if line.last() != Some(&b'\n') {
                cut = n as u64;
                break;
            }
            add_line(&mut summary, &mut headed, &line).map_err(|e| {
                WriteError::Corrupt(format!("line {number} (byte offset {valid}): {e}"))
            })?;
            valid += n as u64;
        }
        drop(reader);
        if cut > 0 {
            file.set_len(valid)?;
        }
        file.seek(SeekFrom::Start(valid))?;
        let mut writer = JsonLinesWriter::new(file);
        writer.summary = summary;
        writer.headed = headed;
        Ok(Resumed { writer, cut })
    }
}

impl<W: Write> PacketWriter for JsonLinesWriter<W> {
    fn append(&mut self, packet: &Packet, channels: &[Channel]) -> Result<(), WriteError> {
        if self.finished {
            return Err(WriteError::Finished);
        }
        let start = self.buf.len();
        let headed = self.headed.len();
        if let Err(e) = self
            .header_for(channels)
            .and_then(|()| encode_line(&mut self.buf, packet, channels))
        {
            self.buf.truncate(start);
            if self.headed.len() > headed {
                // The header went with the packet line that failed.
                let key = channels
                    .first()
                    .map(|c| format!("{}_{}", c.net, c.sta))
                    .unwrap_or_default();
                self.headed.remove(&key);
            }
            return Err(e.into());
        }
        self.summary.add(packet, channels);
        if self.buf.len() >= FLUSH_AT {
            self.write_buffer()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        if self.finished {
            return Err(WriteError::Finished);
        }
        self.write_buffer()?;
        self.out.flush()?;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), WriteError> {
        self.flush()?;
        self.finished = true;
        Ok(())
    }

    fn summary(&self) -> &FileSummary {
        &self.summary
    }
}

/// Appends the line for one packet, `\n` included, to `out`.
///
/// Formatting goes straight into `out` (integers with itoa, floats with serde_json's
/// shortest round-trip form), so a line costs no allocation beyond `out` growing.
pub fn encode_line(out: &mut Vec<u8>, packet: &Packet, channels: &[Channel]) -> io::Result<()> {
    let mut f = CompactFormatter;
    out.extend_from_slice(b"{\"pktid\":");
    f.write_u64(out, packet.pktid)?;
    out.extend_from_slice(b",\"srcname\":");
    push_str(out, packet.srcname.as_str())?;
    out.extend_from_slice(b",\"time\":");
    push_time(out, packet.time);
    out.extend_from_slice(b",\"nbytes\":");
    f.write_u64(out, packet.payload.len() as u64)?;
    out.extend_from_slice(b",\"start_time\":");
    match channels.iter().map(|c| c.start).min() {
        Some(t) => push_time(out, t),
        None => out.extend_from_slice(b"null"),
    }
    let first = channels.first();
    out.extend_from_slice(b",\"samprate\":");
    push_opt_f64(out, first.map(|c| c.samprate))?;
    out.extend_from_slice(b",\"calib\":");
    push_opt_f64(out, first.map(|c| c.calib))?;
    out.extend_from_slice(b",\"calper\":");
    push_opt_f64(out, first.map(|c| c.calper))?;
    out.extend_from_slice(b",\"segtype\":");
    match first {
        Some(c) => push_char(out, c.segtype)?,
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"channels\":[");
    for (i, c) in channels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_channel(out, c)?;
    }
    out.push(b']');
    if channels.is_empty() {
        out.extend_from_slice(b",\"payload_base64\":\"");
        let engine = &base64::engine::general_purpose::STANDARD;
        let at = out.len();
        let len = base64::encoded_len(packet.payload.len(), true).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "payload too large for base64")
        })?;
        out.resize(at + len, 0);
        let written = engine
            .encode_slice(&packet.payload, &mut out[at..])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        out.truncate(at + written);
        out.push(b'"');
        if let Some(json) = detection_json(packet) {
            out.extend_from_slice(b",\"payload_json\":");
            out.extend_from_slice(&json);
        }
    }
    out.extend_from_slice(b"}\n");
    Ok(())
}

/// Srcname types whose payload is one JSON object (detector triggers and network
/// events, docs/DETECTION.md): their lines also carry it as `payload_json`.
pub const JSON_PAYLOAD_SUFFIXES: &[&str] = &["DET", "EVENT"];

/// The payload of a [`JSON_PAYLOAD_SUFFIXES`] packet as compact JSON on one line, if it
/// is a JSON object; `None` for any other packet.
fn detection_json(packet: &Packet) -> Option<Vec<u8>> {
    if !JSON_PAYLOAD_SUFFIXES.contains(&packet.srcname.suffix()?) {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&packet.payload).ok()?;
    // Re-serialized: compact, so the line stays one line whatever the payload's layout.
    v.is_object().then(|| serde_json::to_vec(&v).ok()).flatten()
}

fn push_channel(out: &mut Vec<u8>, c: &Channel) -> io::Result<()> {
    let mut f = CompactFormatter;
    out.extend_from_slice(b"{\"net\":");
    push_str(out, &c.net)?;
    out.extend_from_slice(b",\"sta\":");
    push_str(out, &c.sta)?;
    out.extend_from_slice(b",\"chan\":");
    push_str(out, &c.chan)?;
    out.extend_from_slice(b",\"loc\":");
    push_str(out, &c.loc)?;
    out.extend_from_slice(b",\"start_time\":");
    push_time(out, c.start);
    out.extend_from_slice(b",\"samprate\":");
    push_opt_f64(out, Some(c.samprate))?;
    out.extend_from_slice(b",\"calib\":");
    push_opt_f64(out, Some(c.calib))?;
    out.extend_from_slice(b",\"calper\":");
    push_opt_f64(out, Some(c.calper))?;
    out.extend_from_slice(b",\"segtype\":");
    push_char(out, c.segtype)?;
    out.extend_from_slice(b",\"nsamp\":");
    f.write_u64(out, c.samples.len() as u64)?;
    out.extend_from_slice(b",\"samples\":[");
    // About 6 bytes a sample for seismic counts; one reserve instead of many regrowths.
    out.reserve(c.samples.len() * 7);
    for (i, &s) in c.samples.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        f.write_i32(out, s)?;
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

fn push_str(out: &mut Vec<u8>, s: &str) -> io::Result<()> {
    serde_json::to_writer(out, s).map_err(io::Error::from)
}

fn push_char(out: &mut Vec<u8>, c: char) -> io::Result<()> {
    push_str(out, c.encode_utf8(&mut [0u8; 4]))
}

fn push_opt_f64(out: &mut Vec<u8>, v: Option<f64>) -> io::Result<()> {
    match v {
        Some(v) if v.is_finite() => CompactFormatter.write_f64(out, v),
        _ => {
            out.extend_from_slice(b"null");
            Ok(())
        }
    }
}

/// `"2026-11-22T10:00:00.250000Z"`: always six fraction digits, so the column has one
/// width and every parser reads it the same.
fn push_time(out: &mut Vec<u8>, t: Time) {
    let us = t.as_micros();
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    let Some(dt) = DateTime::from_timestamp(secs, 0) else {
        out.push(b'"');
        out.extend_from_slice(t.to_epoch_string().as_bytes());
        out.push(b'"');
        return;
    };
    let year = dt.year();
    // Writing into a Vec cannot fail.
    let _ = if (0..=9999).contains(&year) {
        write!(out, "\"{year:04}")
    } else {
        write!(out, "\"{year:+05}")
    };
    let _ = write!(
        out,
        "-{:02}-{:02}T{:02}:{:02}:{:02}.{frac:06}Z\"",
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
}

/// What resuming needs from a line: enough to rebuild the [`FileSummary`].
#[derive(Deserialize)]
struct LineInfo {
    pktid: u64,
    srcname: String,
    time: Time,
    channels: Vec<ChannelInfo>,
}

#[derive(Deserialize)]
struct ChannelInfo {
    start_time: Time,
    samprate: Option<f64>,
    nsamp: u64,
    samples: SampleCount,
}

/// The length of a `samples` array, read without keeping the samples.
struct SampleCount(u64);

impl<'de> Deserialize<'de> for SampleCount {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<SampleCount, D::Error> {
        struct Count;
        impl<'de> Visitor<'de> for Count {
            type Value = SampleCount;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of integer samples")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SampleCount, A::Error> {
                let mut n = 0;
                while seq.next_element::<i32>()?.is_some() {
                    n += 1;
                }
                Ok(SampleCount(n))
            }
        }
        d.deserialize_seq(Count)
    }
}

/// Counts one line (with or without its `\n`) into `summary` exactly as
/// [`FileSummary::add`] counted the packet it came from.
/// A header line adds its station to `headed` instead.
fn add_line(
    summary: &mut FileSummary,
    headed: &mut BTreeSet<String>,
    line: &[u8],
) -> Result<(), String> {
    if line.starts_with(b"{\"header\":") {
        let h: HeaderLine = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        headed.insert(format!("{}_{}", h.header.net, h.header.sta));
        return Ok(());
    }
    let info: LineInfo = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let mut samples = 0u64;
    let mut span: Option<(Time, Time)> = None;
    for c in &info.channels {
        if c.nsamp != c.samples.0 {
            return Err(format!(
                "nsamp is {} but samples holds {}",
                c.nsamp, c.samples.0
            ));
        }
        samples += c.nsamp;
        // Channel::end does the rounding the writer's summary did.
        let ch = Channel {
            net: String::new(),
            sta: String::new(),
            chan: String::new(),
            loc: String::new(),
            start: c.start_time,
            samprate: c.samprate.unwrap_or(f64::NAN),
            calib: 0.0,
            calper: 0.0,
            segtype: ' ',
            samples: Vec::new(),
        };
        let end = ch.sample_time(c.nsamp as usize);
        span = Some(match span {
            None => (c.start_time, end),
            Some((s, e)) => (s.min(c.start_time), e.max(end)),
        });
    }
    let (start, end) = span.unwrap_or((info.time, info.time));
    if summary.first_pktid.is_none() {
        summary.first_pktid = Some(info.pktid);
    }
    summary.last_pktid = Some(info.pktid);
    summary.packets += 1;
    summary.srcnames.insert(info.srcname);
    summary.start = Some(summary.start.map_or(start, |s| s.min(start)));
    summary.end = Some(summary.end.map_or(end, |e| e.max(end)));
    summary.samples += samples;
    Ok(())
}

/// Where the intact part of a JSON Lines file ends, and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    /// Bytes of complete packet lines from the start.
    pub valid_len: usize,
    /// The summary of those lines.
    pub summary: FileSummary,
}

/// Reads a whole JSON Lines file held in memory (sans-io), as
/// [`resume`](JsonLinesWriter::resume) does: a last line without `\n` is left out of
/// `valid_len`; a complete line that is not a packet line is an error naming it.
pub fn scan(bytes: &[u8]) -> Result<Scan, WriteError> {
    let mut summary = FileSummary::default();
    let mut headed = BTreeSet::new();
    let mut at = 0;
    let mut number = 1;
    while let Some(n) = bytes[at..].iter().position(|&b| b == b'\n') {
        add_line(&mut summary, &mut headed, &bytes[at..at + n + 1])
            .map_err(|e| WriteError::Corrupt(format!("line {number} (byte offset {at}): {e}")))?;
        at += n + 1;
        number += 1;
    }
    Ok(Scan {
        valid_len: at,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SrcName;
    use proptest::prelude::*;
    use std::io::Cursor;

    fn channel(chan: &str, start: i64, samples: Vec<i32>) -> Channel {
        Channel {
            net: "XX".into(),
            sta: "STA01".into(),
            chan: chan.into(),
            loc: String::new(),
            start: Time::from_micros(start),
            samprate: 40.0,
            calib: 0.5,
            calper: 1.0,
            segtype: 'V',
            samples,
        }
    }

    fn packet(pktid: u64, name: &str, us: i64, payload: &[u8]) -> Packet {
        let mut p = Packet::new(
            SrcName::new(name).unwrap(),
            Time::from_micros(us),
            payload.to_vec(),
        );
        p.pktid = pktid;
        p
    }

    fn line(p: &Packet, chans: &[Channel]) -> String {
        let mut out = Vec::new();
        encode_line(&mut out, p, chans).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn golden_line_of_a_fixed_packet() {
        let p = packet(42, "XX_STA01/MGENC", 1_763_805_600_250_000, b"ignored");
        let chans = [
            channel("BHZ", 1_763_805_600_250_000, vec![1, -2, 2147483647]),
            channel("BHN", 1_763_805_600_250_001, vec![-2147483648]),
        ];
        assert_eq!(
            line(&p, &chans),
            concat!(
                r#"{"pktid":42,"srcname":"XX_STA01/MGENC","time":"2025-11-22T10:00:00.250000Z","nbytes":7,"#,
                r#""start_time":"2025-11-22T10:00:00.250000Z","samprate":40.0,"calib":0.5,"calper":1.0,"segtype":"V","#,
                r#""channels":[{"net":"XX","sta":"STA01","chan":"BHZ","loc":"","start_time":"2025-11-22T10:00:00.250000Z","#,
                r#""samprate":40.0,"calib":0.5,"calper":1.0,"segtype":"V","nsamp":3,"samples":[1,-2,2147483647]},"#,
                r#"{"net":"XX","sta":"STA01","chan":"BHN","loc":"","start_time":"2025-11-22T10:00:00.250001Z","#,
                r#""samprate":40.0,"calib":0.5,"calper":1.0,"segtype":"V","nsamp":1,"samples":[-2147483648]}]}"#,
                "\n"
            )
        );
    }

    /// The example line in docs/FORMATS.md is what the writer produces.
    #[test]
    fn docs_example_line_is_exact() {
        let mut ch = channel("BHZ", 1_795_341_600_250_000, vec![12, -3, 7, 0, -15]);
        ch.calib = 0.25;
        let payload = crate::payload::genc::encode(&ch).unwrap();
        let p = packet(42, "XX_STA01/GENC", 1_795_341_600_250_000, &payload);
        let got = line(&p, &[ch]);
        let docs = include_str!("../../../docs/FORMATS.md");
        assert!(
            docs.lines().any(|l| l == got.trim_end()),
            "docs/FORMATS.md lacks the example line {got}"
        );
    }

    /// Detection packets (DET, EVENT) carry their JSON object as `payload_json` beside
    /// the base64; a DET packet whose payload is not a JSON object, and any other type,
    /// only the base64.
    #[test]
    fn detection_packets_carry_their_json() {
        let body = b"{\"rule\": \"r\",\n \"kind\": \"on\", \"ratio\": 4.5}";
        for (name, payload, json) in [
            (
                "XX_S1_BHZ/DET",
                &body[..],
                Some(r#"{"kind":"on","ratio":4.5,"rule":"r"}"#),
            ),
            (
                "XX/EVENT",
                &body[..],
                Some(r#"{"kind":"on","ratio":4.5,"rule":"r"}"#),
            ),
            ("XX_S1_BHZ/DET", &b"[1,2]"[..], None),
            ("XX_S1_BHZ/DET", &b"not json"[..], None),
            ("XX_S1_BHZ/LOG", &body[..], None),
        ] {
            let got = line(&packet(1, name, 0, payload), &[]);
            assert!(
                got.ends_with("}\n") && got.matches('\n').count() == 1,
                "{got}"
            );
            let v: serde_json::Value = serde_json::from_str(&got).unwrap();
            assert!(v["payload_base64"].is_string(), "{got}");
            match json {
                Some(j) => assert_eq!(v["payload_json"].to_string(), j, "{name}"),
                None => assert!(v.get("payload_json").is_none(), "{name}: {got}"),
            }
        }
    }

    #[test]
    fn golden_line_of_a_packet_without_channels() {
        let p = packet(7, "XX_ODD/\"Q\"", -1, b"\x00\xffhi");
        assert_eq!(
            line(&p, &[]),
            concat!(
                r#"{"pktid":7,"srcname":"XX_ODD/\"Q\"","time":"1969-12-31T23:59:59.999999Z","nbytes":4,"start_time":null,"#,
                r#""samprate":null,"calib":null,"calper":null,"segtype":null,"channels":[],"payload_base64":"AP9oaQ=="}"#,
                "\n"
            )
        );
    }

    #[test]
    fn every_line_is_json_with_the_samples() {
        let p = packet(1, "XX_STA01/GENC", 0, b"");
        let mut ch = channel("BHZ", 0, vec![5, 6]);
        ch.samprate = f64::NAN;
        let v: serde_json::Value = serde_json::from_str(&line(&p, &[ch])).unwrap();
        assert_eq!(v["channels"][0]["samples"], serde_json::json!([5, 6]));
        assert_eq!(v["channels"][0]["samprate"], serde_json::Value::Null);
        let far = packet(2, "XX_A", i64::MAX, b"");
        let v: serde_json::Value = serde_json::from_str(&line(&far, &[])).unwrap();
        assert_eq!(v["time"], "9223372036854.775807");
    }

    fn sample_file() -> (Vec<u8>, Vec<usize>, FileSummary) {
        let mut w = JsonLinesWriter::new(Cursor::new(Vec::new()));
        let mut ends = Vec::new();
        for i in 0..4u64 {
            let p = packet(10 + i, "XX_STA01/GENC", i as i64 * 1_000_000, b"zz");
            let chans = if i == 2 {
                vec![]
            } else {
                vec![channel("BHZ", i as i64 * 1_000_000, vec![i as i32; 40])]
            };
            w.append(&p, &chans).unwrap();
            w.flush().unwrap();
            ends.push(w.out.get_ref().len());
        }
        let summary = w.summary().clone();
        (w.into_inner().into_inner(), ends, summary)
    }

    #[test]
    fn resume_rebuilds_the_summary_and_cuts_a_torn_line_at_every_offset() {
        let (bytes, ends, summary) = sample_file();
        let resumed = JsonLinesWriter::resume(Cursor::new(bytes.clone())).unwrap();
        assert_eq!(resumed.cut, 0);
        assert_eq!(resumed.writer.summary(), &summary);
        assert_eq!(scan(&bytes).unwrap().summary, summary);

        let last_start = ends[2];
        for cut in last_start..bytes.len() {
            let torn = bytes[..cut].to_vec();
            let s = scan(&torn).unwrap();
            assert_eq!(s.valid_len, last_start, "cut at {cut}");
            assert_eq!(s.summary.packets, 3);
            let resumed = JsonLinesWriter::resume(Cursor::new(torn)).unwrap();
            assert_eq!(resumed.cut, (cut - last_start) as u64);
            let mut w = resumed.writer;
            assert_eq!(w.summary().last_pktid, Some(12));
            let p = packet(13, "XX_STA01/GENC", 3_000_000, b"zz");
            w.append(&p, &[channel("BHZ", 3_000_000, vec![3; 40])])
                .unwrap();
            w.finish().unwrap();
            assert_eq!(w.summary(), &summary);
            assert_eq!(w.into_inner().into_inner(), bytes, "cut at {cut}");
        }
    }

    /// With metadata, the first line of each listed station is its header; a station
    /// not listed gets none; a resumed file does not repeat a header it holds.
    #[test]
    fn header_lines_carry_station_metadata_once_per_station() {
        let inv = crate::meta::table::parse(
            "[[station]]\nnet = \"XX\"\nsta = \"STA01\"\nlatitude = 45.5\n\
             longitude = -10.25\nelevation = 120.0\n\
             [[station.channel]]\nchan = \"BHZ\"\nazimuth = 90.0\ndip = 0.0\n\
             sensitivity = 1e9\nunits = \"m/s\"\n",
        )
        .unwrap();
        let inv = Some(Arc::new(inv));
        let mut w = JsonLinesWriter::new(Cursor::new(Vec::new())).with_metadata(inv.clone());
        let mut other = channel("BHZ", 0, vec![1]);
        other.sta = "STA02".into();
        w.append(
            &packet(1, "XX_STA01/GENC", 0, b""),
            &[channel("BHZ", 0, vec![1])],
        )
        .unwrap();
        w.append(&packet(2, "XX_STA02/GENC", 0, b""), &[other])
            .unwrap();
        w.append(
            &packet(3, "XX_STA01/GENC", 25_000, b""),
            &[channel("BHZ", 25_000, vec![2])],
        )
        .unwrap();
        w.flush().unwrap();
        let bytes = w.into_inner().into_inner();
        let lines: Vec<serde_json::Value> = bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        let h = &lines[0]["header"];
        assert_eq!(
            (h["net"].as_str(), h["sta"].as_str(), h["latitude"].as_f64()),
            (Some("XX"), Some("STA01"), Some(45.5))
        );
        let c = &h["channels"][0];
        assert_eq!(
            (c["chan"].as_str(), c["azimuth"].as_f64()),
            (Some("BHZ"), Some(90.0))
        );
        assert_eq!(
            (c["sensitivity"].as_f64(), c["units"].as_str()),
            (Some(1e9), Some("m/s"))
        );
        assert!(c["sensitivity_frequency"].is_null());
        assert_eq!(
            lines[1..]
                .iter()
                .map(|l| l["pktid"].as_u64())
                .collect::<Vec<_>>(),
            [Some(1), Some(2), Some(3)]
        );
        // Headers are not packets: the summary counts three.
        let scanned = scan(&bytes).unwrap();
        assert_eq!(scanned.summary.packets, 3);
        let mut w = JsonLinesWriter::resume(Cursor::new(bytes.clone()))
            .unwrap()
            .writer
            .with_metadata(inv);
        w.append(
            &packet(4, "XX_STA01/GENC", 50_000, b""),
            &[channel("BHZ", 50_000, vec![3])],
        )
        .unwrap();
        w.finish().unwrap();
        let after = w.into_inner().into_inner();
        assert_eq!(
            after
                .split(|&b| b == b'\n')
                .filter(|l| l.starts_with(b"{\"header\""))
                .count(),
            1
        );
        assert_eq!(scan(&after).unwrap().summary.packets, 4);
    }

    #[test]
    fn a_damaged_complete_line_is_refused() {
        let (mut bytes, ends, _) = sample_file();
        bytes[ends[0] + 3] = b'#';
        let err = JsonLinesWriter::resume(Cursor::new(bytes.clone())).unwrap_err();
        assert!(
            matches!(&err, WriteError::Corrupt(m) if m.contains("line 2")),
            "{err}"
        );
        assert!(scan(&bytes).is_err());
    }

    #[test]
    fn finished_writer_refuses_more() {
        let mut w = JsonLinesWriter::new(Vec::new());
        w.finish().unwrap();
        let p = packet(1, "XX_A", 0, b"");
        assert!(matches!(w.append(&p, &[]), Err(WriteError::Finished)));
    }

    proptest! {
        #[test]
        fn resume_summary_equals_the_writers(
            packets in proptest::collection::vec(
                (any::<u32>(), -4_000_000_000_000_000i64..4_000_000_000_000_000,
                 proptest::collection::vec(proptest::collection::vec(any::<i32>(), 0..20), 0..3),
                 prop_oneof![Just(40.0), Just(0.0), Just(1.0 / 3.0), Just(f64::NAN)]),
                0..8),
        ) {
            let mut w = JsonLinesWriter::new(Cursor::new(Vec::new()));
            for (i, (id, t, chans, rate)) in packets.iter().enumerate() {
                let p = packet(u64::from(*id), "XX_STA01/MGENC", *t, b"p");
                let chans: Vec<Channel> = chans
                    .iter()
                    .enumerate()
                    .map(|(k, s)| {
                        let mut c = channel("BHZ", t + (i * k) as i64, s.clone());
                        c.samprate = *rate;
                        c
                    })
                    .collect();
                w.append(&p, &chans).unwrap();
            }
            w.finish().unwrap();
            let summary = w.summary().clone();
            let bytes = w.into_inner().into_inner();
            let resumed = JsonLinesWriter::resume(Cursor::new(bytes)).unwrap();
            prop_assert_eq!(resumed.writer.summary(), &summary);
        }
    }
}
