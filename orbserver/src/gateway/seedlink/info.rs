//! INFO replies: the XML documents SeisComP's seedlink and ringserver send, made from
//! the ring's sources and the client table.
//!
//! Stations are the `net`/`sta` of the ring's srcnames; a station's streams are the
//! location and channel codes of the records its newest packets make (a `SEED`
//! srcname names one stream, an `MGENC` packet holds several). Sequence numbers are
//! pktids modulo 2^24, times are packet times.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use formats::seedlink::command::format_time;
use formats::seedlink::record::{self, StreamId};
use formats::seedlink::{InfoLevel, MAX_SEQ};
use formats::Time;

use super::{hello_line, ORGANIZATION};
use crate::hub::Hub;

/// What one station has in the ring.
#[derive(Default)]
struct Station {
    begin_seq: u64,
    end_seq: u64,
    /// (location, channel) -> (first, last) packet time.
    streams: BTreeMap<(String, String), (Time, Time)>,
}

/// Escapes text for an XML attribute.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn seq(pktid: u64) -> String {
    format!("{:06X}", pktid & u64::from(MAX_SEQ))
}

/// The ring's stations, by (net, sta).
fn stations(shared: &Hub, with_streams: bool) -> BTreeMap<(String, String), Station> {
    let mut out: BTreeMap<(String, String), Station> = BTreeMap::new();
    for src in shared.ring.sources() {
        let parts = src.srcname.parts();
        let Some(sta) = parts.sta else { continue };
        let key = (parts.net.to_string(), sta.to_string());
        let st = out.entry(key).or_insert_with(|| Station {
            begin_seq: src.oldest_pktid,
            end_seq: src.newest_pktid,
            streams: BTreeMap::new(),
        });
        st.begin_seq = st.begin_seq.min(src.oldest_pktid);
        st.end_seq = st.end_seq.max(src.newest_pktid);
        if !with_streams {
            continue;
        }
        // The newest packet says which streams the source carries.
        let Ok(Some(p)) = shared.ring.get(src.newest_pktid) else {
            continue;
        };
        let Ok(records) = record::records(&p.srcname, p.time, &p.payload) else {
            continue;
        };
        for rec in &records {
            let id = StreamId::of_record(rec);
            let e = st
                .streams
                .entry((id.loc, id.chan))
                .or_insert((src.oldest_time, src.newest_time));
            e.0 = e.0.min(src.oldest_time);
            e.1 = e.1.max(src.newest_time);
        }
    }
    out
}

/// The XML declaration and the `<seedlink>` root's opening tag, with what INFO ID
/// says: `software`, `organization` and `started` (slinktool prints these three).
fn root(shared: &Hub) -> String {
    let mut x = String::from("<?xml version=\"1.0\"?>\n");
    let _ = writeln!(
        x,
        "<seedlink software=\"{}\" organization=\"{}\" started=\"{}\">",
        esc(&hello_line()),
        esc(ORGANIZATION),
        format_time(shared.started)
    );
    x
}

/// The document of an INFO refusal, sent in `ERR` records: the ID document (as
/// ringserver sends), with an `<error>` element saying why for people reading the raw
/// XML (slinktool stops at the `ERR` channel and does not parse it).
pub fn error_xml(shared: &Hub, code: &str, message: &str) -> String {
    let mut x = root(shared);
    let _ = writeln!(
        x,
        "  <error code=\"{}\" message=\"{}\"/>",
        esc(code),
        esc(message)
    );
    x.push_str("</seedlink>\n");
    x
}

/// The XML answer to INFO `level` (the caller checks who may see CONNECTIONS), shaped
/// as SeisComP's seedlink and ringserver shape it and as slinktool reads it: every
/// attribute slinktool looks up is there (it does not check for missing ones).
pub fn xml(shared: &Hub, level: InfoLevel) -> String {
    let mut x = root(shared);
    if matches!(level, InfoLevel::Capabilities | InfoLevel::All) {
        for cap in CAPABILITIES {
            let _ = writeln!(x, "  <capability name=\"{cap}\"/>");
        }
    }
    let streams = matches!(level, InfoLevel::Streams | InfoLevel::Gaps | InfoLevel::All);
    if matches!(
        level,
        InfoLevel::Stations | InfoLevel::Streams | InfoLevel::Gaps | InfoLevel::All
    ) {
        for ((net, sta), st) in stations(shared, streams) {
            let _ = write!(
                x,
                "  <station name=\"{}\" network=\"{}\" description=\"\" begin_seq=\"{}\" end_seq=\"{}\" stream_check=\"enabled\"",
                esc(&sta),
                esc(&net),
                seq(st.begin_seq),
                seq(st.end_seq + 1)
            );
            if !streams {
                x.push_str("/>\n");
                continue;
            }
            x.push_str(">\n");
            for ((loc, chan), (begin, end)) in &st.streams {
                // No gaps are kept: a GAPS stream has no <gap> children.
                let _ = writeln!(
                    x,
                    "    <stream location=\"{}\" seedname=\"{}\" type=\"D\" begin_time=\"{}\" end_time=\"{}\" begin_recno=\"0\" end_recno=\"0\" gap_check=\"disabled\" gap_treshold=\"0\"/>",
                    esc(loc),
                    esc(chan),
                    format_time(*begin),
                    format_time(*end)
                );
            }
            x.push_str("  </station>\n");
        }
    }
    if matches!(level, InfoLevel::Connections | InfoLevel::All) {
        connections(shared, &mut x);
    }
    x.push_str("</seedlink>\n");
    x
}

/// The INFO CONNECTIONS elements. slinktool (and SeisComP's seedlink) list the
/// `<connection>` elements of each `<station>`, never ones directly under the root; as
/// ringserver does, each connection gets a `<station name="CLIENT">` of its own, of
/// network `SL` for a SeedLink client and `OR` for the others (native and DataLink),
/// described by what the client said it is. The station's `end_seq` is the ring's
/// next sequence number, so that slinktool's queue length (`end_seq` minus the
/// connection's `current_seq`) is how far a reader is behind; `current_seq` is
/// `unset` for a connection that does not read, which slinktool shows as opened but
/// not configured.
fn connections(shared: &Hub, x: &mut String) {
    let next = shared.ring.stat().newest.map_or(0, |n| n.pktid + 1);
    for c in shared.clients.entries() {
        let ident = c.ident().clone();
        let network = if ident.what == "SeedLink client" {
            "SL"
        } else {
            "OR"
        };
        let mut description = ident.what.clone();
        for part in [ident.who.clone(), ident.pid.to_string()] {
            if !part.is_empty() && part != "0" {
                description.push(' ');
                description.push_str(&part);
            }
        }
        let current = if c.reads.load(Relaxed) {
            seq(c.pos.load(Relaxed))
        } else {
            "unset".to_string()
        };
        let _ = writeln!(
            x,
            "  <station name=\"CLIENT\" network=\"{network}\" description=\"{}\" begin_seq=\"{}\" end_seq=\"{}\" stream_check=\"enabled\">",
            esc(&description),
            seq(0),
            seq(next)
        );
        let _ = writeln!(
            x,
            "    <connection host=\"{}\" port=\"{}\" ctime=\"{}\" begin_seq=\"{}\" current_seq=\"{current}\" sequence_gaps=\"{}\" txcount=\"{}\" totBytes=\"{}\" begin_seq_valid=\"yes\" realtime=\"yes\" end_of_data=\"no\"/>",
            c.addr.ip(),
            c.addr.port(),
            format_time(c.connected),
            seq(0),
            c.gaps.load(Relaxed),
            c.packets_out.load(Relaxed),
            c.bytes_out.load(Relaxed)
        );
        x.push_str("  </station>\n");
    }
}

/// What the server can do, for HELLO and INFO CAPABILITIES. `dialup` is FETCH,
/// `multistation` STATION ... END, `window-extraction` TIME with an end,
/// `info:*` the INFO levels.
pub const CAPABILITIES: &[&str] = &[
    "dialup",
    "multistation",
    "window-extraction",
    "info:id",
    "info:capabilities",
    "info:stations",
    "info:streams",
    "info:gaps",
    "info:connections",
    "info:all",
];

/// The `CAT` reply: one line per station, `NET STA  description`, then `END`.
pub fn cat(shared: &Hub) -> Vec<u8> {
    let mut s = String::new();
    for (net, sta) in stations(shared, false).into_keys() {
        let _ = write!(s, "{net:<2} {sta:<5}\r\n");
    }
    s.push_str("END");
    s.into_bytes()
}
