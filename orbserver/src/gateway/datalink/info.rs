//! INFO documents: XML shaped like ringserver's, so clients that parse its replies
//! (simpledali, dalitool) read ours. Attributes a ring server has and an orb has not
//! (packet insertion times) are given as ringserver gives unknowns: `-`. The ring's own
//! creation time, which the orb has and ringserver does not show, is an extra
//! `RingCreationTime` attribute of `Status` (parsers read attributes by name).

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use formats::datalink::InfoKind;
use formats::Time;
use regex::Regex;

use super::streamid::{to_streamid, IdStyle};
use crate::hub::Hub;

/// ringserver's time format: `YYYY-MM-DD HH:MM:SS.ffffff` (UTC), or `-`.
pub fn time_text(t: Time) -> String {
    let us = t.as_micros();
    let whole = Time::from_micros(us.div_euclid(1_000_000) * 1_000_000);
    match whole.to_iso8601() {
        Some(s) if s.len() == 20 => {
            format!(
                "{} {}.{:06}",
                &s[..10],
                &s[11..19],
                us.rem_euclid(1_000_000)
            )
        }
        _ => "-".into(),
    }
}

/// Escapes text for an XML attribute value.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// Appends `name="value"` pairs.
fn attrs(out: &mut String, pairs: &[(&str, String)]) {
    for (k, v) in pairs {
        let _ = write!(out, " {k}=\"{}\"", esc(v));
    }
}

/// The document INFO `kind` answers with. `capabilities` is the ID reply's text after
/// `DataLink`; `matching` filters STREAMS and CONNECTIONS (already compiled).
pub fn document(
    shared: &Hub,
    kind: InfoKind,
    capabilities: &str,
    matching: Option<&Regex>,
    style: IdStyle,
) -> String {
    let st = shared.ring.stat();
    let (rx_packets, rx_bytes) = shared.rates();
    let mut x = String::from("<?xml version=\"1.0\"?>\n<DataLink");
    attrs(
        &mut x,
        &[
            ("Version", env!("CARGO_PKG_VERSION").into()),
            ("ServerID", crate::hub::server_name()),
            ("Capabilities", capabilities.into()),
        ],
    );
    x.push_str(">\n<Status");
    let nsources = st.nsources;
    let when = |p: Option<crate::ring::PktRef>| p.map_or("-".into(), |p| time_text(p.time));
    attrs(
        &mut x,
        &[
            ("StartTime", time_text(shared.started)),
            // Not one of ringserver's: the orb's ring keeps the time it was created (in
            // its header, across restarts), and no packet's insertion time, so this is
            // the one creation time it can give (docs/GATEWAYS.md, "Times").
            ("RingCreationTime", time_text(st.created)),
            ("RingVersion", "1".into()),
            ("RingSize", st.capacity.to_string()),
            ("PacketSize", shared.limits.max_packet.to_string()),
            ("MaximumPacketID", u64::MAX.to_string()),
            ("MaximumPackets", st.npkts.to_string()),
            ("MemoryMappedRing", "TRUE".into()),
            ("VolatileRing", "FALSE".into()),
            ("TotalConnections", shared.clients.len().to_string()),
            ("TotalStreams", nsources.to_string()),
            ("TXPacketRate", "0.0".into()),
            ("TXByteRate", "0.0".into()),
            ("RXPacketRate", format!("{rx_packets:.1}")),
            ("RXByteRate", format!("{rx_bytes:.1}")),
            (
                "EarliestPacketID",
                st.oldest.map_or(0, |p| p.pktid).to_string(),
            ),
            ("EarliestPacketCreationTime", "-".into()),
            ("EarliestPacketDataStartTime", when(st.oldest)),
            ("EarliestPacketDataEndTime", "-".into()),
            (
                "LatestPacketID",
                st.newest.map_or(0, |p| p.pktid).to_string(),
            ),
            ("LatestPacketCreationTime", "-".into()),
            ("LatestPacketDataStartTime", when(st.newest)),
            ("LatestPacketDataEndTime", "-".into()),
        ],
    );
    x.push_str("/>\n");
    let keep = |name: &str| matching.is_none_or(|r| r.is_match(name));
    match kind {
        InfoKind::Status => {}
        InfoKind::Streams => {
            let now = Time::now().as_micros();
            let mut rows = String::new();
            let mut selected = 0;
            for s in shared.ring.sources() {
                let name = to_streamid(s.srcname.as_str(), style);
                if !keep(&name) {
                    continue;
                }
                selected += 1;
                rows.push_str("<Stream");
                let latency = now.saturating_sub(s.newest_time.as_micros()) as f64 / 1e6;
                attrs(
                    &mut rows,
                    &[
                        ("Name", name.into_owned()),
                        ("EarliestPacketID", s.oldest_pktid.to_string()),
                        ("EarliestPacketDataStartTime", time_text(s.oldest_time)),
                        ("EarliestPacketDataEndTime", time_text(s.oldest_time)),
                        ("LatestPacketID", s.newest_pktid.to_string()),
                        ("LatestPacketDataStartTime", time_text(s.newest_time)),
                        ("LatestPacketDataEndTime", time_text(s.newest_time)),
                        ("DataLatency", format!("{latency:.1}")),
                    ],
                );
                rows.push_str("/>\n");
            }
            x.push_str("<StreamList");
            attrs(
                &mut x,
                &[
                    ("TotalStreams", nsources.to_string()),
                    ("SelectedStreams", selected.to_string()),
                ],
            );
            x.push_str(">\n");
            x.push_str(&rows);
            x.push_str("</StreamList>\n");
        }
        InfoKind::Connections => {
            let mut rows = String::new();
            let entries = shared.clients.entries();
            let mut selected = 0;
            for c in &entries {
                let ident = c.ident().clone();
                let host = c.addr.ip().to_string();
                let client_id = if !ident.client_id.is_empty() {
                    ident.client_id.clone()
                } else if ident.what.is_empty() {
                    String::new()
                } else {
                    format!("{}:{}:{}", ident.what, ident.who, ident.pid)
                };
                if !(keep(&host) || keep(&client_id)) {
                    continue;
                }
                selected += 1;
                let pos = c.pos.load(Relaxed);
                let lag = if c.reads.load(Relaxed) {
                    shared.ring.lag(pos)
                } else {
                    0.0
                };
                rows.push_str("<Connection");
                attrs(
                    &mut rows,
                    &[
                        ("Type", "orb".into()),
                        ("Host", host.clone()),
                        ("IP", host),
                        ("Port", c.addr.port().to_string()),
                        ("ClientID", client_id),
                        ("ConnectionTime", time_text(c.connected)),
                        ("Match", ident.select),
                        ("Reject", ident.reject),
                        ("StreamCount", "0".into()),
                        ("PacketID", pos.to_string()),
                        ("PacketCreationTime", "-".into()),
                        ("PacketDataStartTime", "-".into()),
                        ("PacketDataEndTime", "-".into()),
                        ("TXPacketCount", c.packets_out.load(Relaxed).to_string()),
                        ("TXPacketRate", "0.0".into()),
                        ("TXByteCount", c.bytes_out.load(Relaxed).to_string()),
                        ("TXByteRate", "0.0".into()),
                        ("RXPacketCount", c.packets_in.load(Relaxed).to_string()),
                        ("RXPacketRate", "0.0".into()),
                        ("RXByteCount", c.bytes_in.load(Relaxed).to_string()),
                        ("RXByteRate", "0.0".into()),
                        ("Latency", "0.0".into()),
                        ("PercentLag", format!("{:.0}", lag * 100.0)),
                    ],
                );
                rows.push_str("/>\n");
            }
            x.push_str("<ConnectionList");
            attrs(
                &mut x,
                &[
                    ("TotalConnections", entries.len().to_string()),
                    ("SelectedConnections", selected.to_string()),
                ],
            );
            x.push_str(">\n");
            x.push_str(&rows);
            x.push_str("</ConnectionList>\n");
        }
    }
    x.push_str("</DataLink>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_escapes() {
        assert_eq!(
            time_text(Time::from_micros(1_700_000_000_250_000)),
            "2023-11-14 22:13:20.250000"
        );
        assert_eq!(time_text(Time::MAX), "-");
        assert_eq!(esc("a<\"&'>\u{1}"), "a&lt;&quot;&amp;&apos;&gt;&#1;");
    }
}
