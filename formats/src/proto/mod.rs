//! The orb wire protocol, sans-io: frames as Rust values, and pure functions that
//! encode them into a `BytesMut` and decode them from a byte slice. No sockets, no
//! runtime: the server and the client move bytes, this module gives them meaning.
//! `docs/PROTOCOL.md` specifies every byte; its example frames are test vectors.
//!
//! - [`frame`]: [`Frame`], one variant per frame kind, borrowing from the input.
//! - [`decode`](mod@decode): [`decode`](fn@decode::decode) -> need more / a frame of N
//!   bytes / an error.
//! - [`encode`]: [`Frame::encode`] and fast paths for the hot frames.
//! - [`info`]: the JSON documents of INFO frames (STAT, SOURCES, CLIENTS).
//! - [`error`]: [`DecodeError`] and the [`ErrorCode`]s an ERROR frame carries.

pub mod decode;
pub mod encode;
pub mod error;
pub mod frame;
pub mod info;

#[cfg(test)]
mod tests;

pub use decode::{decode, frame_tag, Decoded};
pub use error::{DecodeError, ErrorCode};
pub use frame::{
    kind_name, Access, Body, Frame, PutIter, PutPacket, PutPackets, ReapEndReason, Whence,
};

/// Protocol version spoken by this crate; HELLO carries it.
pub const PROTOCOL_VERSION: u16 = 1;

/// Bytes before the body: `u32 len`, `u8 kind`, `u32 tag`.
pub const FRAME_HEADER: usize = 9;

/// What `len` counts besides the body: kind and tag.
pub const LEN_OVERHEAD: u32 = 5;

/// Default largest frame (`len` value) a peer accepts: a 1 MiB packet plus room for
/// its srcname and headers.
pub const DEFAULT_MAX_FRAME: u32 = (1 << 20) + 4096;

/// How much larger than WELCOME's `max_packet` a frame (`len` value) the server
/// accepts: room for a PUT's srcnames and headers, and for a packet only somewhat too
/// large to get the non-fatal `PacketTooLarge` (PROTOCOL.md, "Frame size limits").
pub const SERVER_FRAME_SLACK: u32 = 64 * 1024;

/// The largest frame (`len` value) a server that said `max_packet` in WELCOME accepts:
/// `max_packet + SERVER_FRAME_SLACK`. WELCOME does not carry it (a field added to
/// WELCOME would make every existing reader refuse the frame), so both sides derive it.
pub fn server_max_frame(max_packet: u32) -> u32 {
    max_packet.saturating_add(SERVER_FRAME_SLACK)
}

/// `timeout_ms` of REAP meaning "no timeout".
pub const NO_TIMEOUT: u32 = u32::MAX;

/// Frame kind numbers (see PROTOCOL.md, "Frame kinds").
pub mod kind {
    /// Client: open the session.
    pub const HELLO: u8 = 0x01;
    /// Client: put packets.
    pub const PUT: u8 = 0x02;
    /// Client: set the select expression.
    pub const SELECT: u8 = 0x03;
    /// Client: set the reject expression.
    pub const REJECT: u8 = 0x04;
    /// Client: move the read position.
    pub const SEEK: u8 = 0x05;
    /// Client: move the read position to a time.
    pub const AFTER: u8 = 0x06;
    /// Client: ask for the read position.
    pub const TELL: u8 = 0x07;
    /// Client: get one packet without moving the position.
    pub const GET: u8 = 0x08;
    /// Client: start a reap stream.
    pub const REAP: u8 = 0x09;
    /// Client: grant the reap stream more packets.
    pub const CREDIT: u8 = 0x0A;
    /// Client: stop the reap stream.
    pub const STOP: u8 = 0x0B;
    /// Client: server summary.
    pub const STAT: u8 = 0x0C;
    /// Client: per-source table.
    pub const SOURCES: u8 = 0x0D;
    /// Client: per-client table.
    pub const CLIENTS: u8 = 0x0E;
    /// Client: liveness check.
    pub const PING: u8 = 0x0F;
    /// Client (admin): close another client's connection.
    pub const KILL: u8 = 0x10;
    /// Client (admin): re-read the server's access rules.
    pub const RELOAD: u8 = 0x11;
    /// Server: session accepted.
    pub const WELCOME: u8 = 0x41;
    /// Server: packets stored.
    pub const PUT_OK: u8 = 0x42;
    /// Server: select/reject accepted.
    pub const SELECTED: u8 = 0x43;
    /// Server: the read position.
    pub const POSITION: u8 = 0x45;
    /// Server: one packet.
    pub const PACKET: u8 = 0x48;
    /// Server: packets lost to a lapped reader.
    pub const GAP: u8 = 0x49;
    /// Server: end of a reap stream.
    pub const REAP_END: u8 = 0x4A;
    /// Server: JSON answer to STAT, SOURCES or CLIENTS.
    pub const INFO: u8 = 0x4C;
    /// Server: answer to PING.
    pub const PONG: u8 = 0x4F;
    /// Server: the client named by KILL is being closed.
    pub const KILLED: u8 = 0x50;
    /// Server: the access rules were reloaded.
    pub const RELOADED: u8 = 0x51;
    /// Server: a request failed.
    pub const ERROR: u8 = 0x7F;
}
