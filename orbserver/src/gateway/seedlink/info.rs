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
use formats::{payload, SrcName, Time};

use super::{hello_line, ORGANIZATION};
use crate::hub::Hub;
use crate::ring::Visit;

/// What one station has in the ring.
#[derive(Default)]
pub(super) struct Station {
    /// Its oldest pktid.
    pub begin_seq: u64,
    /// Its newest pktid.
    pub end_seq: u64,
    /// (location, channel) -> (first, last) packet time.
    pub streams: BTreeMap<(String, String), (Time, Time)>,
}

/// Packets one step of the INFO GAPS walk copies out of the ring, so the walk never
/// holds the ring's lock long.
const GAP_WALK_PACKETS: usize = 256;

/// One stream's data spans and gaps: (net, sta, loc, chan).
type StreamKey = (String, String, String, String);

/// What INFO GAPS says of one stream.
#[derive(Debug, Default, PartialEq)]
pub(super) struct StreamGaps {
    /// The tolerance used, microseconds: half the stream's sample period.
    pub tolerance_us: i64,
    /// The gaps, as (end of the data before, start of the data after).
    pub gaps: Vec<(Time, Time)>,
}

/// The gaps of one stream from its data spans `(start, end, rate)` in any order: a
/// gap is where the next data start later than the data before them end by more
/// than half a sample period (libmseed's default tolerance when it joins records
/// into traces; a smaller difference is the rounding of sample times). Overlaps are
/// not gaps.
pub(super) fn stream_gaps(spans: &mut [(Time, Time, f64)]) -> StreamGaps {
    spans.sort_by_key(|s| (s.0, s.1));
    let rate = spans
        .iter()
        .map(|s| s.2)
        .find(|r| r.is_finite() && *r > 0.0);
    let tolerance_us = rate.map_or(0, |r| (0.5e6 / r).round() as i64);
    let mut gaps = Vec::new();
    let mut reach: Option<Time> = None;
    for &(start, end, _) in spans.iter() {
        if let Some(r) = reach {
            if start.as_micros() - r.as_micros() > tolerance_us {
                gaps.push((r, start));
            }
        }
        reach = Some(reach.map_or(end, |r| r.max(end)));
    }
    StreamGaps { tolerance_us, gaps }
}

/// The gaps of every stream of the ring's packets. Every live packet of a station is
/// decoded (not re-encoded), in steps that let the writer in between, so INFO GAPS
/// costs a pass over the ring; packets that do not decode are left out.
pub(super) fn ring_gaps(shared: &Hub) -> BTreeMap<StreamKey, StreamGaps> {
    let mut spans: BTreeMap<StreamKey, Vec<(Time, Time, f64)>> = BTreeMap::new();
    let mut pos = shared.ring.oldest().map_or(u64::MAX, |p| p.pktid);
    loop {
        let mut copied: Vec<(SrcName, Time, Vec<u8>)> = Vec::new();
        let outcome = shared.ring.visit_from(
            pos,
            GAP_WALK_PACKETS,
            usize::MAX,
            |_, name| name.parts().sta.is_some(),
            |v| {
                if let Visit::Record(r) = v {
                    copied.push((r.srcname.clone(), r.time, r.payload.to_vec()));
                }
            },
        );
        for (name, time, bytes) in &copied {
            let Ok(channels) = payload::decode(name, *time, bytes) else {
                continue;
            };
            let parts = name.parts();
            let (net, sta) = (parts.net.to_string(), parts.sta.unwrap_or("").to_string());
            for ch in channels {
                let key = (net.clone(), sta.clone(), ch.loc.clone(), ch.chan.clone());
                spans
                    .entry(key)
                    .or_default()
                    .push((ch.start, ch.end(), ch.samprate));
            }
        }
        // Done once nothing was left to look at, or what was left held nothing wanted.
        if outcome.next <= pos || (copied.is_empty() && !outcome.more) {
            break;
        }
        pos = outcome.next;
    }
    spans
        .into_iter()
        .map(|(k, mut v)| (k, stream_gaps(&mut v)))
        .collect()
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
pub(super) fn stations(shared: &Hub, with_streams: bool) -> BTreeMap<(String, String), Station> {
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
        // INFO GAPS (and ALL) look for gaps in every stream; STREAMS does not.
        let gaps = matches!(level, InfoLevel::Gaps | InfoLevel::All).then(|| ring_gaps(shared));
        let none = StreamGaps::default();
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
                let head = format!(
                    "    <stream location=\"{}\" seedname=\"{}\" type=\"D\" begin_time=\"{}\" end_time=\"{}\" begin_recno=\"0\" end_recno=\"0\"",
                    esc(loc),
                    esc(chan),
                    format_time(*begin),
                    format_time(*end)
                );
                let key = (net.clone(), sta.clone(), loc.clone(), chan.clone());
                let Some(g) = gaps.as_ref().map(|all| all.get(&key)) else {
                    // STREAMS: gaps are not looked for.
                    let _ = writeln!(x, "{head} gap_check=\"disabled\" gap_treshold=\"0\"/>");
                    continue;
                };
                let g = g.unwrap_or(&none);
                let _ = write!(
                    x,
                    "{head} gap_check=\"enabled\" gap_treshold=\"{}\"",
                    g.tolerance_us
                );
                if g.gaps.is_empty() {
                    x.push_str("/>\n");
                    continue;
                }
                x.push_str(">\n");
                for (b, e) in &g.gaps {
                    let _ = writeln!(
                        x,
                        "      <gap begin_time=\"{}\" end_time=\"{}\"/>",
                        format_time(*b),
                        format_time(*e)
                    );
                }
                x.push_str("    </stream>\n");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::testing::TestHub;
    use crate::ring::FlushPolicy;
    use formats::payload::Channel;

    const S: i64 = 1_000_000;

    fn t(us: i64) -> Time {
        Time::from_micros(us)
    }

    #[test]
    fn a_gap_is_a_later_start_by_more_than_half_a_sample_period() {
        // 1 Hz: tolerance 0.5 s. Given out of order, with an overlap.
        let mut spans = vec![
            (t(30 * S), t(40 * S), 1.0),
            (t(0), t(10 * S), 1.0),
            (t(10 * S + S / 2), t(20 * S), 1.0), // 0.5 s late: within tolerance
            (t(5 * S), t(12 * S), 1.0),          // overlaps: not a gap
            (t(40 * S + S / 2 + 1), t(50 * S), 1.0), // 1 us beyond tolerance
        ];
        let g = stream_gaps(&mut spans);
        assert_eq!(g.tolerance_us, S / 2);
        assert_eq!(
            g.gaps,
            [(t(20 * S), t(30 * S)), (t(40 * S), t(40 * S + S / 2 + 1))]
        );
        // No rate: any later start is a gap.
        let mut spans = vec![(t(0), t(0), 0.0), (t(1), t(1), 0.0)];
        assert_eq!(stream_gaps(&mut spans).gaps, [(t(0), t(1))]);
        assert!(stream_gaps(&mut []).gaps.is_empty());
    }

    fn put(hub: &TestHub, sta: &str, chan: &str, start_s: f64, n: usize) {
        let ch = Channel {
            net: "XX".into(),
            sta: sta.into(),
            chan: chan.into(),
            loc: String::new(),
            start: t((start_s * 1e6) as i64),
            samprate: 1.0,
            calib: 1.0,
            calper: 1.0,
            segtype: 'V',
            samples: vec![7; n],
        };
        let mut recs = Vec::new();
        record::encode(&ch, &mut recs).unwrap();
        let name = SrcName::new(&format!("XX_{sta}_{chan}/SEED")).unwrap();
        hub.hub
            .ring
            .append(&name, ch.start, &recs.concat())
            .unwrap();
    }

    #[test]
    fn info_gaps_lists_each_streams_gaps_and_streams_does_not_look() {
        let hub = TestHub::new(FlushPolicy::None);
        put(&hub, "STA01", "BHZ", 0.0, 10);
        put(&hub, "STA02", "BHZ", 0.0, 100); // another station, no gap
        put(&hub, "STA01", "BHZ", 10.0, 10);
        put(&hub, "STA01", "BHZ", 30.0, 10); // gap 20 s .. 30 s
        put(&hub, "STA01", "BHZ", 40.4, 10); // 0.4 s late at 1 Hz: no gap
        put(&hub, "STA01", "BHN", 0.0, 40);
        let xml = xml(&hub.hub, InfoLevel::Gaps);
        let gap =
            "<gap begin_time=\"1970/01/01 00:00:20.0000\" end_time=\"1970/01/01 00:00:30.0000\"/>";
        assert_eq!(xml.matches("<gap ").count(), 1, "{xml}");
        let bhz = xml.find("seedname=\"BHZ\"").unwrap();
        let bhn = xml.find("seedname=\"BHN\"").unwrap();
        let at = xml.find(gap).unwrap_or_else(|| panic!("{xml}"));
        assert!(bhn < bhz && bhz < at, "the gap is BHZ's: {xml}");
        assert!(
            xml.contains("gap_check=\"enabled\" gap_treshold=\"500000\">"),
            "{xml}"
        );
        assert!(xml.contains("</stream>"), "{xml}");
        let streams = super::xml(&hub.hub, InfoLevel::Streams);
        assert!(!streams.contains("<gap "), "{streams}");
        assert!(streams.contains("gap_check=\"disabled\""), "{streams}");
    }
}
