//! Encoding: frames appended to a `BytesMut`. The length is reserved, the frame
//! written, then the length back-patched, so a frame is built in one buffer and many
//! frames go out in one write.

use bytes::{BufMut, BytesMut};

use crate::Time;

use super::frame::{Body, Frame, PutPacket};
use super::{kind, FRAME_HEADER};

/// Starts a frame: reserves the length, writes kind and tag. Returns where the frame
/// starts, for [`finish`].
fn start(out: &mut BytesMut, kind: u8, tag: u32) -> usize {
    let at = out.len();
    out.put_u32_le(0);
    out.put_u8(kind);
    out.put_u32_le(tag);
    at
}

/// Back-patches the length of the frame that starts at `at`.
fn finish(out: &mut BytesMut, at: usize) {
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// The longest prefix of `s` that fits in `max` bytes and ends on a character boundary,
/// so an over-long string still goes out as valid UTF-8 (a peer would refuse a split
/// character as a malformed frame and close the connection).
fn prefix(s: &str, max: usize) -> &[u8] {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s.as_bytes()[..end]
}

fn str8(out: &mut BytesMut, s: &str) {
    debug_assert!(s.len() <= 255, "str8 longer than 255 bytes");
    let s = prefix(s, u8::MAX as usize);
    out.put_u8(s.len() as u8);
    out.put_slice(s);
}

fn str16(out: &mut BytesMut, s: &str) {
    let s = prefix(s, u16::MAX as usize);
    out.put_u16_le(s.len() as u16);
    out.put_slice(s);
}

fn put_time(out: &mut BytesMut, t: Time) {
    out.put_i64_le(t.as_micros());
}

impl Frame<'_> {
    /// Appends this frame to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        let at = start(out, self.body.kind(), self.tag);
        match &self.body {
            Body::Hello {
                version,
                access,
                pid,
                who,
                what,
                token,
            } => {
                out.put_u16_le(*version);
                out.put_u8(access.to_byte());
                out.put_u32_le(*pid);
                str8(out, who);
                str8(out, what);
                if let Some(token) = token {
                    str8(out, token);
                }
            }
            Body::Put { durable, packets } => {
                out.put_u8(u8::from(*durable));
                out.put_u32_le(packets.count());
                out.put_slice(packets.as_bytes());
            }
            Body::Select { expr } | Body::Reject { expr } => str16(out, expr),
            Body::Seek { whence, pktid } => {
                out.put_u8(whence.to_byte());
                out.put_u64_le(*pktid);
            }
            Body::After { time } => put_time(out, *time),
            Body::Tell | Body::Stop | Body::Stat | Body::Sources | Body::Clients | Body::Reload => {
            }
            Body::Kill { client_id } | Body::Killed { client_id } => out.put_u64_le(*client_id),
            Body::Reloaded { summary } => str16(out, summary),
            Body::Get { current, pktid } => {
                out.put_u8(u8::from(*current));
                out.put_u64_le(*pktid);
            }
            Body::Reap {
                max_packets,
                timeout_ms,
                credit,
            } => {
                out.put_u32_le(*max_packets);
                out.put_u32_le(*timeout_ms);
                out.put_u32_le(*credit);
            }
            Body::Credit { n } => out.put_u32_le(*n),
            Body::Ping { nonce } => out.put_u64_le(*nonce),
            Body::Welcome {
                version,
                server,
                ring_capacity,
                max_packet,
                client_id,
            } => {
                out.put_u16_le(*version);
                str8(out, server);
                out.put_u64_le(*ring_capacity);
                out.put_u32_le(*max_packet);
                out.put_u64_le(*client_id);
            }
            Body::PutOk { first_pktid, count } => {
                out.put_u64_le(*first_pktid);
                out.put_u32_le(*count);
            }
            Body::Selected { nsources } => out.put_u32_le(*nsources),
            Body::Position { pktid } => out.put_u64_le(*pktid),
            Body::Packet {
                pktid,
                time,
                srcname,
                payload,
            } => {
                out.put_u64_le(*pktid);
                put_time(out, *time);
                str8(out, srcname);
                out.put_slice(payload);
            }
            Body::Gap { first, last, bytes } => {
                out.put_u64_le(*first);
                out.put_u64_le(*last);
                out.put_u64_le(*bytes);
            }
            Body::ReapEnd { reason, pos } => {
                out.put_u8(reason.to_byte());
                out.put_u64_le(*pos);
            }
            Body::Info { json } => out.put_slice(json.as_bytes()),
            Body::Pong { nonce, server_time } => {
                out.put_u64_le(*nonce);
                put_time(out, *server_time);
            }
            Body::Error { code, message } => {
                out.put_u16_le(code.to_u16());
                str16(out, message);
            }
        }
        finish(out, at);
    }
}

/// Appends a PUT frame carrying `packets` (the client's hot path: no intermediate
/// frame value).
pub fn encode_put<'p>(
    out: &mut BytesMut,
    tag: u32,
    durable: bool,
    packets: impl IntoIterator<Item = PutPacket<'p>>,
) {
    let at = start(out, kind::PUT, tag);
    out.put_u8(u8::from(durable));
    let count_at = out.len();
    out.put_u32_le(0);
    let mut count = 0u32;
    for p in packets {
        str8(out, p.srcname);
        put_time(out, p.time);
        out.put_u32_le(p.payload.len() as u32);
        out.put_slice(p.payload);
        count += 1;
    }
    out[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
    finish(out, at);
}

/// Appends a PACKET frame (the server's hot path: straight from the ring's bytes).
pub fn encode_packet(
    out: &mut BytesMut,
    tag: u32,
    pktid: u64,
    time: Time,
    srcname: &str,
    payload: &[u8],
) {
    out.reserve(FRAME_HEADER + 17 + srcname.len() + payload.len());
    let at = start(out, kind::PACKET, tag);
    out.put_u64_le(pktid);
    put_time(out, time);
    str8(out, srcname);
    out.put_slice(payload);
    finish(out, at);
}

/// Total encoded size of a PACKET frame, for budgeting output buffers.
pub fn packet_frame_len(srcname_len: usize, payload_len: usize) -> usize {
    FRAME_HEADER + 8 + 8 + 1 + srcname_len + payload_len
}
