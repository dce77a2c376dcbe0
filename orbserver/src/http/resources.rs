//! ringserver 4's status resources, in its JSON field names where the orb's model has
//! the value (docs/HTTP.md lists every field and what it means here), and a plain-text
//! form of each for people with curl.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use formats::Time;
use regex::Regex;
use serde::Serialize;

use super::{HttpState, Query, NAME};
use crate::gateway::datalink::streamid::{to_streamid, IdStyle};
use crate::hub::Hub;

/// Longest `match` expression accepted, as for DataLink's MATCH.
const MAX_MATCH: usize = formats::MAX_REGEX_LEN;

/// The `match` parameter of `/streams`, `/streamids` and `/connections`: an unanchored
/// regular expression, as ringserver applies it.
pub(super) fn matching(q: &Query) -> Result<Option<Regex>, String> {
    let Some(m) = q.get("match").filter(|m| !m.is_empty()) else {
        return Ok(None);
    };
    if m.len() > MAX_MATCH {
        return Err(format!("match is longer than {MAX_MATCH} bytes"));
    }
    Regex::new(m)
        .map(Some)
        .map_err(|e| format!("match {m:?} is not a regular expression: {e}"))
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, as ringserver writes times in JSON.
fn iso(t: Time) -> String {
    t.to_string()
}

/// `YYYY-MM-DDTHH:MM:SSZ`, seconds only, as ringserver writes its start time.
fn iso_secs(t: Time) -> String {
    Time::from_micros(t.as_micros().div_euclid(1_000_000) * 1_000_000)
        .to_iso8601()
        .unwrap_or_else(|| t.to_string())
}

#[derive(Serialize)]
struct IdDoc {
    software: String,
    organization: String,
    server_start: String,
    datalink_protocol: Vec<&'static str>,
    seedlink_protocol: Vec<&'static str>,
}

fn id_doc(state: &HttpState) -> IdDoc {
    IdDoc {
        software: crate::hub::server_name(),
        organization: String::new(),
        server_start: iso_secs(state.hub.started),
        datalink_protocol: state
            .ports
            .datalink
            .map(|_| vec!["DLPROTO:1.0"])
            .unwrap_or_default(),
        seedlink_protocol: state
            .ports
            .seedlink
            .map(|_| vec!["SLPROTO:3.1"])
            .unwrap_or_default(),
    }
}

/// `/id/json`.
pub(super) fn id_json(state: &HttpState) -> String {
    to_json(&id_doc(state))
}

/// `/id`.
pub(super) fn id_text(state: &HttpState) -> String {
    let d = id_doc(state);
    let mut s = format!("{}\nServer start: {}\n", d.software, d.server_start);
    if !d.datalink_protocol.is_empty() {
        let _ = writeln!(s, "DataLink: {}", d.datalink_protocol.join(" "));
    }
    if !d.seedlink_protocol.is_empty() {
        let _ = writeln!(s, "SeedLink: {}", d.seedlink_protocol.join(" "));
    }
    s
}

#[derive(Serialize)]
struct Stream {
    id: String,
    srcname: String,
    start_time: String,
    end_time: String,
    earliest_packet_id: u64,
    latest_packet_id: u64,
    packets: u64,
    bytes: u64,
    data_latency: f64,
}

fn streams(hub: &Hub, matching: Option<&Regex>) -> Vec<Stream> {
    let now = Time::now().as_micros();
    let mut v: Vec<Stream> = hub
        .ring
        .sources()
        .into_iter()
        .filter_map(|s| {
            let id = to_streamid(s.srcname.as_str(), IdStyle::Fdsn).into_owned();
            if !matching.is_none_or(|r| r.is_match(&id)) {
                return None;
            }
            Some(Stream {
                id,
                srcname: s.srcname.to_string(),
                start_time: iso(s.oldest_time),
                end_time: iso(s.newest_time),
                earliest_packet_id: s.oldest_pktid,
                latest_packet_id: s.newest_pktid,
                packets: s.npkts,
                bytes: s.nbytes,
                data_latency: now.saturating_sub(s.newest_time.as_micros()) as f64 / 1e6,
            })
        })
        .collect();
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

#[derive(Serialize)]
struct StreamsDoc<T> {
    software: String,
    organization: String,
    stream: Vec<T>,
    stream_count: usize,
}

fn streams_doc<T>(stream: Vec<T>) -> StreamsDoc<T> {
    StreamsDoc {
        software: crate::hub::server_name(),
        organization: String::new(),
        stream_count: stream.len(),
        stream,
    }
}

/// `/streams/json`.
pub(super) fn streams_json(state: &HttpState, matching: Option<&Regex>) -> String {
    to_json(&streams_doc(streams(&state.hub, matching)))
}

/// `/streams`: one line per stream: id, start time, end time, latency.
pub(super) fn streams_text(hub: &Hub, matching: Option<&Regex>) -> String {
    let mut s = String::new();
    for st in streams(hub, matching) {
        let _ = writeln!(
            s,
            "{}  {}  {}  {:.1}",
            st.id, st.start_time, st.end_time, st.data_latency
        );
    }
    s
}

#[derive(Serialize)]
struct StreamId {
    id: String,
}

/// `/streamids/json`.
pub(super) fn streamids_json(state: &HttpState, matching: Option<&Regex>) -> String {
    let ids = streams(&state.hub, matching)
        .into_iter()
        .map(|s| StreamId { id: s.id })
        .collect();
    to_json(&streams_doc::<StreamId>(ids))
}

/// `/streamids`: one stream id per line.
pub(super) fn streamids_text(hub: &Hub, matching: Option<&Regex>) -> String {
    streams(hub, matching)
        .into_iter()
        .map(|s| s.id + "\n")
        .collect()
}

#[derive(Serialize)]
struct StatusDoc {
    software: String,
    organization: String,
    server: Status,
}

#[derive(Serialize)]
struct Status {
    ring_version: u32,
    ring_size: u64,
    packet_size: usize,
    memory_mapped: bool,
    volatile_ring: bool,
    connection_count: usize,
    stream_count: u64,
    packets: u64,
    receive_packet_rate: f64,
    receive_byte_rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    earliest_packet_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    earliest_data_start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latest_packet_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latest_data_start: Option<String>,
    thread: Vec<Thread>,
}

#[derive(Serialize)]
struct Thread {
    state: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    protocol: &'static str,
    port: String,
}

fn status(state: &HttpState) -> StatusDoc {
    let hub = &state.hub;
    let st = hub.ring.stat();
    let (rx_packets, rx_bytes) = hub.rates();
    let p = &state.ports;
    let thread = [
        ("orb", p.orb),
        ("DataLink", p.datalink),
        ("SeedLink", p.seedlink),
        (NAME, p.http),
    ]
    .into_iter()
    .filter_map(|(protocol, a)| {
        a.map(|a| Thread {
            state: "ACTIVE",
            kind: "Listener",
            protocol,
            port: a.port().to_string(),
        })
    })
    .collect();
    StatusDoc {
        software: crate::hub::server_name(),
        organization: String::new(),
        server: Status {
            ring_version: 1,
            ring_size: st.capacity,
            packet_size: hub.limits.max_packet,
            memory_mapped: true,
            volatile_ring: false,
            connection_count: hub.clients.len(),
            stream_count: st.nsources,
            packets: st.npkts,
            receive_packet_rate: rx_packets,
            receive_byte_rate: rx_bytes,
            earliest_packet_id: st.oldest.map(|p| p.pktid),
            earliest_data_start: st.oldest.map(|p| iso(p.time)),
            latest_packet_id: st.newest.map(|p| p.pktid),
            latest_data_start: st.newest.map(|p| iso(p.time)),
            thread,
        },
    }
}

/// `/status/json` (admin).
pub(super) fn status_json(state: &HttpState) -> String {
    to_json(&status(state))
}

/// `/status` (admin): `key: value` lines.
pub(super) fn status_text(state: &HttpState) -> String {
    let d = status(state);
    let s = &d.server;
    let mut out = format!("{}\n", d.software);
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let idopt = |v: Option<u64>| v.map_or_else(|| "-".into(), |v| v.to_string());
    for (k, v) in [
        ("Ring size", s.ring_size.to_string()),
        ("Packet size", s.packet_size.to_string()),
        ("Packets", s.packets.to_string()),
        ("Connections", s.connection_count.to_string()),
        ("Streams", s.stream_count.to_string()),
        (
            "Receive packet rate",
            format!("{:.1}", s.receive_packet_rate),
        ),
        ("Receive byte rate", format!("{:.1}", s.receive_byte_rate)),
        ("Earliest packet id", idopt(s.earliest_packet_id)),
        ("Earliest data start", opt(&s.earliest_data_start)),
        ("Latest packet id", idopt(s.latest_packet_id)),
        ("Latest data start", opt(&s.latest_data_start)),
    ] {
        let _ = writeln!(out, "{k}: {v}");
    }
    for t in &s.thread {
        let _ = writeln!(out, "Listener: {} port {}", t.protocol, t.port);
    }
    out
}

#[derive(Serialize)]
struct ConnectionsDoc {
    software: String,
    organization: String,
    connections: Connections,
}

#[derive(Serialize)]
struct Connections {
    client: Vec<Client>,
    client_count: usize,
}

#[derive(Serialize)]
struct Client {
    id: u64,
    host: String,
    ip_address: String,
    client_port: String,
    server_port: String,
    #[serde(rename = "type")]
    kind: &'static str,
    client_id: String,
    authenticated: bool,
    /// Who the client proved to be (`user:alice`); absent for a client admitted by
    /// address alone (an orb addition to ringserver's document).
    #[serde(skip_serializing_if = "String::is_empty")]
    identity: String,
    write_permission: bool,
    connect_time: String,
    packet_id: u64,
    lag_percent: i64,
    transmit_packets: u64,
    transmit_bytes: u64,
    receive_packets: u64,
    receive_bytes: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    r#match: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    reject: String,
}

fn connections(state: &HttpState, matching: Option<&Regex>) -> ConnectionsDoc {
    let hub = &state.hub;
    let (_, rules) = hub.policy.current();
    let entries = hub.clients.entries();
    let client = entries
        .iter()
        .filter_map(|c| {
            let ident = c.ident().clone();
            let ip = c.addr.ip().to_string();
            let client_id = if !ident.client_id.is_empty() {
                ident.client_id.clone()
            } else if ident.what.is_empty() {
                String::new()
            } else {
                format!("{}:{}:{}", ident.what, ident.who, ident.pid)
            };
            if !matching.is_none_or(|r| r.is_match(&ip) || r.is_match(&client_id)) {
                return None;
            }
            let grant = ident.rights.clone().map(|a| {
                let g = rules.grant(c.addr.ip(), a.identity.as_ref());
                (a, g)
            });
            let pos = c.pos.load(Relaxed);
            let lag = if c.reads.load(Relaxed) {
                hub.ring.lag(pos)
            } else {
                0.0
            };
            Some(Client {
                id: c.id,
                host: ip.clone(),
                ip_address: ip,
                client_port: c.addr.port().to_string(),
                server_port: state
                    .ports
                    .port_of(c.protocol())
                    .map_or_else(String::new, |p| p.to_string()),
                kind: c.protocol(),
                client_id,
                authenticated: ident.rights.as_ref().is_some_and(|a| a.identity.is_some())
                    || ident.proven.is_some(),
                identity: ident.identity.clone(),
                write_permission: grant.is_some_and(|(a, g)| a.write && g.write.any()),
                connect_time: iso_secs(c.connected),
                packet_id: pos,
                lag_percent: (lag * 100.0).round() as i64,
                transmit_packets: c.packets_out.load(Relaxed),
                transmit_bytes: c.bytes_out.load(Relaxed),
                receive_packets: c.packets_in.load(Relaxed),
                receive_bytes: c.bytes_in.load(Relaxed),
                r#match: ident.select,
                reject: ident.reject,
            })
        })
        .collect();
    ConnectionsDoc {
        software: crate::hub::server_name(),
        organization: String::new(),
        connections: Connections {
            client,
            client_count: entries.len(),
        },
    }
}

/// `/connections/json` (admin).
pub(super) fn connections_json(state: &HttpState, matching: Option<&Regex>) -> String {
    to_json(&connections(state, matching))
}

/// `/connections` (admin): one line per connection.
pub(super) fn connections_text(state: &HttpState, matching: Option<&Regex>) -> String {
    let d = connections(state, matching);
    let mut s = String::new();
    for c in &d.connections.client {
        let _ = writeln!(
            s,
            "{}:{} [{}] {} connected {} packet {} lag {}% tx {} rx {}",
            c.ip_address,
            c.client_port,
            c.kind,
            if c.client_id.is_empty() {
                "-"
            } else {
                &c.client_id
            },
            c.connect_time,
            c.packet_id,
            c.lag_percent,
            c.transmit_packets,
            c.receive_packets
        );
    }
    let _ = writeln!(s, "{} connections", d.connections.client_count);
    s
}

fn to_json<T: Serialize>(doc: &T) -> String {
    serde_json::to_string(doc).expect("documents serialize")
}
