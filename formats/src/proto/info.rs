//! The JSON documents INFO frames carry, as typed values both ends share
//! (PROTOCOL.md, "INFO documents"). Times are ISO 8601 strings so that people and
//! `jq` can read them; numbers are plain JSON numbers.

use serde::{Deserialize, Serialize};

/// A packet's pktid and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PktAt {
    /// Packet id.
    pub pktid: u64,
    /// Packet time, ISO 8601.
    pub time: String,
}

/// The ring part of STAT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RingInfo {
    /// Ring file path on the server.
    pub path: String,
    /// Data capacity in bytes.
    pub capacity: u64,
    /// Bytes the live packets span.
    pub used_bytes: u64,
    /// Live packets.
    pub npkts: u64,
    /// Sources with live packets.
    pub nsources: u64,
    /// Oldest live packet.
    pub oldest: Option<PktAt>,
    /// Newest live packet.
    pub newest: Option<PktAt>,
    /// pktid the next packet put will get.
    pub next_pktid: u64,
    /// Flush policy (`none`, `interval:1s`, `always`).
    pub flush: String,
}

/// Counters since the server started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Packets put.
    pub packets_in: u64,
    /// Payload bytes put.
    pub bytes_in: u64,
    /// Packets sent to readers.
    pub packets_out: u64,
    /// Payload bytes sent to readers.
    pub bytes_out: u64,
    /// GAP events sent to lapped readers.
    pub gaps: u64,
    /// Packets those readers lost.
    pub gap_packets: u64,
    /// Ring bytes those readers lost.
    pub gap_bytes: u64,
}

/// What the server refused since it started, by reason (docs/SECURITY.md, "Counters").
/// Every refusal also gets an ERROR reply and a log line naming the address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Refusals {
    /// Connections from addresses the `connect` rules do not admit.
    pub connects_denied: u64,
    /// Connections over `max_clients` or `max_clients_per_address`.
    pub connects_limit: u64,
    /// Connections that sent no HELLO within the handshake timeout.
    pub handshake_timeouts: u64,
    /// HELLOs with a token the server does not know.
    pub auth_failures: u64,
    /// PUTs from a session that may not write (its address is not in `write` and it
    /// has no write token).
    pub writes_not_allowed: u64,
    /// PUTs carrying a srcname the session's token does not cover.
    pub writes_foreign_srcname: u64,
    /// PUTs with a packet over `max_packet`, and frames over the frame limit.
    pub writes_too_large: u64,
    /// Read requests (SELECT, SEEK, REAP ...) from a session that may not read.
    pub reads_not_allowed: u64,
    /// CLIENTS, KILL and RELOAD requests from a session without admin access.
    pub admin_not_allowed: u64,
    /// Connections to a TLS listener whose handshake failed or timed out (a plaintext
    /// client, an untrusted or missing client certificate, a client that distrusts
    /// the server's). Absent in the answers of servers older than TLS.
    #[serde(default)]
    pub tls_handshakes: u64,
}

/// Answer to STAT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStat {
    /// Server software and version, e.g. `orbserver 0.1.0`.
    pub server: String,
    /// Protocol version.
    pub protocol: u16,
    /// When the server started, ISO 8601.
    pub started: String,
    /// The server's clock now, ISO 8601.
    pub now: String,
    /// The ring.
    pub ring: RingInfo,
    /// Packets put per second, averaged over the last 10 seconds.
    pub packet_rate: f64,
    /// Payload bytes put per second, same window.
    pub byte_rate: f64,
    /// Connected clients.
    pub clients: u64,
    /// Counters since start.
    pub totals: Totals,
    /// Refusals since start. Absent from servers that predate access control; then
    /// all zero.
    #[serde(default)]
    pub refused: Refusals,
}

/// One row of SOURCES.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStat {
    /// The srcname.
    pub srcname: String,
    /// Oldest live packet of the source.
    pub oldest: PktAt,
    /// Newest live packet of the source.
    pub newest: PktAt,
    /// Live packets.
    pub npkts: u64,
    /// Live payload bytes.
    pub nbytes: u64,
    /// Seconds between the newest packet's time and the server's clock.
    pub latency: f64,
}

/// Answer to SOURCES.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourcesInfo {
    /// One row per source with live packets, in srcname order.
    pub sources: Vec<SourceStat>,
}

/// One row of CLIENTS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientStat {
    /// Client id (WELCOME's `client_id`).
    pub id: u64,
    /// Who (from HELLO).
    pub who: String,
    /// What program (from HELLO).
    pub what: String,
    /// Client pid (from HELLO).
    pub pid: u32,
    /// The identification a gateway client sent, whole (a DataLink ID
    /// `program:user:pid:arch`); empty, and absent from the JSON, otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_id: String,
    /// Who the client proved to be: `token:NAME`, `user:NAME`, `jwt:SUBJECT` or
    /// `cert:CN` (docs/SECURITY.md); empty, and absent from the JSON, for a client
    /// admitted by its address alone.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identity: String,
    /// Peer address.
    pub address: String,
    /// `r`, `w` or `rw`.
    pub access: String,
    /// When it connected, ISO 8601.
    pub connected: String,
    /// Select expression, empty for all.
    pub select: String,
    /// Reject expression, empty for none.
    pub reject: String,
    /// Read position.
    pub pos: u64,
    /// A reap stream is active.
    pub reaping: bool,
    /// Packets it put.
    pub packets_in: u64,
    /// Payload bytes it put.
    pub bytes_in: u64,
    /// Packets it was sent.
    pub packets_out: u64,
    /// Payload bytes it was sent.
    pub bytes_out: u64,
    /// Gaps it was told of.
    pub gaps: u64,
    /// How far behind the newest packet its position is, as a fraction of the ring
    /// (0 = caught up, 1 = about to be lapped); absent for clients that do not read.
    pub lag: Option<f64>,
}

/// Answer to CLIENTS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientsInfo {
    /// One row per connected client, by id.
    pub clients: Vec<ClientStat>,
}
