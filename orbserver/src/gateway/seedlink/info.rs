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

/// The XML answer to INFO `level` (the caller checks who may see CONNECTIONS).
pub fn xml(shared: &Hub, level: InfoLevel) -> String {
    let mut x = String::from("<?xml version=\"1.0\"?>\n");
    let _ = writeln!(
        x,
        "<seedlink software=\"{}\" organization=\"{}\" started=\"{}\">",
        esc(&hello_line()),
        esc(ORGANIZATION),
        format_time(shared.started)
    );
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
        for c in shared.clients.entries() {
            let ident = c.ident().clone();
            let _ = writeln!(
                x,
                "  <connection host=\"{}\" port=\"{}\" ctime=\"{}\" what=\"{}\" current_seq=\"{}\" txcount=\"{}\" totBytes=\"{}\"/>",
                c.addr.ip(),
                c.addr.port(),
                format_time(c.connected),
                esc(&ident.what),
                seq(c.pos.load(Relaxed)),
                c.packets_out.load(Relaxed),
                c.bytes_out.load(Relaxed)
            );
        }
    }
    x.push_str("</seedlink>\n");
    x
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
