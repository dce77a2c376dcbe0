//! Pipelined puts: the one state machine behind [`OrbClient::put_pipelined`],
//! [`OrbClient::put_acked`] and the federation's links.
//!
//! [`PutPipeline`] pulls packets from an iterator and packs them into multi-packet PUT
//! frames, each bounded by the server's frame limit ([`FrameLimits::max_frame`]), a
//! packet count and a payload budget; it keeps at most `window` frames unacknowledged.
//! It never waits to fill a frame: when the iterator ends, what was pulled goes out.
//! Each PUT_OK is matched to the oldest frame in flight by tag and must count that
//! frame's packets; the PUT_OKs add up to a [`PutAck`].
//!
//! Exact accounting. The server checks every packet of a PUT before storing any
//! (PROTOCOL.md, "PUT"): a refused frame (`NotAllowed`, `BadSrcname`,
//! `PacketTooLarge`) stored nothing, even when only one of its packets was bad. A
//! `RingError` may come after part of the frame was written (the ring failed in the
//! middle of the batch, or its msync failed), so how many of that frame's packets are
//! in the ring is unknown. Either way only PUT_OKs count as stored, and the error is
//! returned: no packet is counted stored that the server did not acknowledge, and no
//! refused packet goes unreported. After an error no more frames are made, but the
//! replies owed for frames already sent are still read, and those acknowledged count.
//!
//! It does no I/O; [`Connection::run_pipeline`] drives it, so the tests below feed it
//! frames directly.
//!
//! [`OrbClient::put_pipelined`]: crate::OrbClient::put_pipelined
//! [`OrbClient::put_acked`]: crate::OrbClient::put_acked
//! [`Connection::run_pipeline`]: crate::Connection::run_pipeline

use std::borrow::Borrow;
use std::collections::VecDeque;

use bytes::BytesMut;
use formats::proto::encode::encode_put;
use formats::proto::{Body, Frame, LEN_OVERHEAD};
use formats::Packet;

use crate::client::put_packet;
use crate::connection::Pipeline;
use crate::error::{ClientError, Result};

/// Packets at most per PUT frame: more would only delay the frame's PUT_OK.
pub const FRAME_PACKETS: usize = 256;
/// Payload bytes per PUT frame before a new one is started (a larger packet gets a
/// frame of its own): large enough that the per-frame cost is small, small enough
/// that a frame's PUT_OK is not held up behind a long write.
pub const FRAME_BYTES: usize = 128 * 1024;
/// Stop encoding once this many bytes wait to be written: one large write's worth.
/// (The window still bounds the frames in flight.)
const FILL_BUDGET: usize = 256 * 1024;
/// `len` of a PUT frame without packets: kind and tag, then flags and count.
const PUT_LEN_BASE: usize = LEN_OVERHEAD as usize + 5;

/// What a pipelined put stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PutSummary {
    /// pktid of the first packet stored (0 if none was).
    pub first: u64,
    /// pktid of the last packet stored (0 if none was).
    pub last: u64,
    /// Packets stored.
    pub count: u64,
}

/// What the server acknowledged for a pipelined put: the sum of its PUT_OKs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutAck {
    /// Packets acknowledged (stored).
    pub acked: u64,
    /// The pktids of the first and the last packet acknowledged.
    pub pktids: Option<(u64, u64)>,
    /// Every PUT_OK's pktids followed the previous one's: no other packet got a pktid
    /// between the first and the last of ours (the federation relies on it).
    pub contiguous: bool,
}

impl Default for PutAck {
    /// Nothing acknowledged (trivially contiguous).
    fn default() -> PutAck {
        PutAck {
            acked: 0,
            pktids: None,
            contiguous: true,
        }
    }
}

impl PutAck {
    /// The same as a [`PutSummary`].
    pub fn summary(&self) -> PutSummary {
        let (first, last) = self.pktids.unwrap_or((0, 0));
        PutSummary {
            first,
            last,
            count: self.acked,
        }
    }
}

/// How packets are packed into PUT frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Largest payload the server accepts (WELCOME's `max_packet`); a larger packet is
    /// refused before sending ([`ClientError::PacketTooLarge`]).
    pub max_packet: u32,
    /// Largest frame `len` the server accepts ([`formats::proto::server_max_frame`]).
    pub max_frame: u32,
    /// Packets at most per frame.
    pub packets: usize,
    /// Payload bytes per frame before a new one is started (one larger packet goes
    /// alone).
    pub payload_bytes: usize,
}

impl FrameLimits {
    /// The limits for a server that said `max_packet` in WELCOME: its frame limit,
    /// [`FRAME_PACKETS`] and [`FRAME_BYTES`].
    pub fn for_server(max_packet: u32) -> FrameLimits {
        FrameLimits {
            max_packet,
            max_frame: formats::proto::server_max_frame(max_packet),
            packets: FRAME_PACKETS,
            payload_bytes: FRAME_BYTES,
        }
    }
}

/// What `p` adds to a PUT frame's `len`: srcname (str8), time, payload length, payload.
fn packet_len(p: &Packet) -> usize {
    1 + p.srcname.as_str().len() + 8 + 4 + p.payload.len()
}

/// The PUTs in flight and what their replies said; see the module docs.
#[derive(Debug, Default)]
struct Acks {
    /// (tag, packets) of the frames sent and not yet answered, oldest first.
    in_flight: VecDeque<(u32, u32)>,
    ack: PutAck,
    /// The first failure of a request (not of the session), if any.
    error: Option<ClientError>,
}

impl Acks {
    fn handle(&mut self, frame: Frame<'_>) -> Result<()> {
        if frame.tag == 0 {
            if let Body::Error { code, message } = frame.body {
                // An unsolicited error (shutdown): nothing more will be answered.
                return Err(ClientError::Server {
                    code,
                    message: message.to_owned(),
                });
            }
        }
        let Some(&(tag, count)) = self.in_flight.front() else {
            return Err(ClientError::Protocol(format!(
                "a {} frame (tag {}) with no PUT in flight",
                formats::proto::kind_name(frame.body.kind()),
                frame.tag
            )));
        };
        if frame.tag != tag {
            return Err(ClientError::Protocol(format!(
                "PUT replies out of order: got tag {}, expected {tag}",
                frame.tag
            )));
        }
        self.in_flight.pop_front();
        match frame.body {
            Body::PutOk {
                first_pktid,
                count: n,
            } if n == count => self.stored(first_pktid, n, tag),
            Body::PutOk { count: n, .. } => Err(ClientError::Protocol(format!(
                "PUT_OK for {n} packets to a PUT of {count} (tag {tag})"
            ))),
            Body::Error { code, message } => {
                let e = ClientError::Server {
                    code,
                    message: message.to_owned(),
                };
                if code.is_fatal() {
                    return Err(e);
                }
                self.error.get_or_insert(e);
                Ok(())
            }
            other => Err(ClientError::Protocol(format!(
                "expected PUT_OK for {count} packets, got {} (tag {tag})",
                formats::proto::kind_name(other.kind()),
            ))),
        }
    }

    /// Counts a PUT_OK for `n` packets from `first`.
    fn stored(&mut self, first: u64, n: u32, tag: u32) -> Result<()> {
        // A PUT carries at least one packet, so n > 0 here.
        let last = first
            .checked_add(u64::from(n) - 1)
            .ok_or_else(|| ClientError::Protocol(format!("PUT_OK pktids past 2^64 (tag {tag})")))?;
        self.ack.acked += u64::from(n);
        self.ack.pktids = match self.ack.pktids {
            None => Some((first, last)),
            Some((start, prev)) => {
                if prev.checked_add(1) != Some(first) {
                    self.ack.contiguous = false;
                }
                Some((start, last))
            }
        };
        Ok(())
    }
}

/// Packets to multi-packet PUT frames and PUT_OKs to a [`PutAck`]; see the module docs.
/// `I` yields owned packets or references (anything that borrows as a [`Packet`]).
#[derive(Debug)]
pub struct PutPipeline<I: Iterator> {
    packets: I,
    /// A packet pulled that did not fit in the frame it was pulled for: the next
    /// frame starts with it.
    held: Option<I::Item>,
    /// The frame being packed (kept to reuse its allocation).
    frame: Vec<I::Item>,
    /// No more frames are made: the packets ran out or an error was seen.
    stopped: bool,
    window: usize,
    next_tag: u32,
    limits: FrameLimits,
    acks: Acks,
}

impl<I> PutPipeline<I>
where
    I: Iterator,
    I::Item: Borrow<Packet>,
{
    /// A pipeline over `packets` with at most `window` frames in flight, tags from
    /// `next_tag` on, frames packed within `limits`.
    pub fn new(packets: I, window: usize, next_tag: u32, limits: FrameLimits) -> Self {
        PutPipeline {
            packets,
            held: None,
            frame: Vec::new(),
            stopped: false,
            window: window.max(1),
            next_tag: next_tag.max(1),
            limits: FrameLimits {
                packets: limits.packets.clamp(1, u32::MAX as usize),
                ..limits
            },
            acks: Acks::default(),
        }
    }

    /// The next unused tag (to hand back to the client), what was acknowledged, and
    /// the first failed request if any (the acknowledgement counts exactly what was
    /// stored even then; see the module docs).
    pub fn finish(self) -> (u32, PutAck, Option<ClientError>) {
        (self.next_tag, self.acks.ack, self.acks.error)
    }

    fn fail(&mut self, e: ClientError) {
        self.stopped = true;
        self.acks.error.get_or_insert(e);
    }

    /// Pulls packets into `self.frame` up to the limits; stops early when the
    /// iterator ends (what was pulled is sent, not held back) or a packet is too large.
    fn pack(&mut self) {
        let mut len = PUT_LEN_BASE;
        let mut payload = 0usize;
        while self.frame.len() < self.limits.packets {
            let next = match self.held.take() {
                Some(p) => Some(p),
                None => self.packets.next(),
            };
            let Some(item) = next else {
                self.stopped = true;
                return;
            };
            let p: &Packet = item.borrow();
            if p.payload.len() > self.limits.max_packet as usize {
                self.fail(ClientError::PacketTooLarge {
                    len: p.payload.len(),
                    max: self.limits.max_packet,
                });
                return;
            }
            let plen = packet_len(p);
            let bytes = p.payload.len();
            // A packet within max_packet always fits in a frame alone, so the first
            // one is always taken.
            if !self.frame.is_empty()
                && (len + plen > self.limits.max_frame as usize
                    || payload + bytes > self.limits.payload_bytes)
            {
                self.held = Some(item);
                return;
            }
            len += plen;
            payload += bytes;
            self.frame.push(item);
        }
    }
}

impl<I> Pipeline for PutPipeline<I>
where
    I: Iterator,
    I::Item: Borrow<Packet>,
{
    fn fill(&mut self, out: &mut BytesMut) {
        while !self.stopped
            && self.acks.error.is_none()
            && self.acks.in_flight.len() < self.window
            && out.len() < FILL_BUDGET
        {
            self.pack();
            if self.frame.is_empty() {
                break;
            }
            let tag = self.next_tag;
            self.next_tag = self.next_tag.wrapping_add(1).max(1);
            encode_put(
                out,
                tag,
                false,
                self.frame.iter().map(|p| put_packet(p.borrow())),
            );
            // At most `limits.packets`, which is clamped to u32.
            self.acks
                .in_flight
                .push_back((tag, self.frame.len() as u32));
            self.frame.clear();
        }
    }

    fn handle(&mut self, frame: Frame<'_>) -> Result<()> {
        self.acks.handle(frame)
    }

    fn awaiting_replies(&self) -> bool {
        !self.acks.in_flight.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::proto::{decode, Decoded, ErrorCode};
    use formats::{SrcName, Time};

    fn packets(n: usize) -> impl Iterator<Item = Packet> {
        let name = SrcName::new("AA_BBB/MGENC").unwrap();
        (0..n).map(move |i| Packet::new(name.clone(), Time::from_micros(i as i64), vec![7u8; 3]))
    }

    /// Limits that put `per_frame` packets in a frame, with a large max_packet.
    fn per_frame(per_frame: usize) -> FrameLimits {
        FrameLimits {
            packets: per_frame,
            ..FrameLimits::for_server(100)
        }
    }

    /// (tag, packets, frame len) of each PUT frame in `out`; every frame decodes
    /// within `max_frame` and they fill `out` exactly.
    fn frames(out: &BytesMut, max_frame: u32) -> Vec<(u32, usize, usize)> {
        let mut at = 0;
        let mut frames = Vec::new();
        while at < out.len() {
            let Ok(Decoded::Frame(f, len)) = decode(&out[at..], max_frame) else {
                panic!("a frame over {max_frame} or undecodable at byte {at}");
            };
            let Body::Put { packets, .. } = f.body else {
                panic!("not a PUT");
            };
            frames.push((f.tag, packets.count() as usize, len - 4));
            at += len;
        }
        frames
    }

    fn tags(out: &BytesMut) -> Vec<u32> {
        frames(out, u32::MAX).iter().map(|f| f.0).collect()
    }

    fn ok(tag: u32, pktid: u64, count: u32) -> Frame<'static> {
        Frame {
            tag,
            body: Body::PutOk {
                first_pktid: pktid,
                count,
            },
        }
    }

    fn error(tag: u32, code: ErrorCode) -> Frame<'static> {
        Frame {
            tag,
            body: Body::Error {
                code,
                message: "refused",
            },
        }
    }

    #[test]
    fn window_bounds_frames_in_flight() {
        let mut p = PutPipeline::new(packets(10), 4, 7, per_frame(1));
        let mut out = BytesMut::new();
        p.fill(&mut out);
        assert_eq!(tags(&out), [7, 8, 9, 10]);
        out.clear();
        p.fill(&mut out);
        assert!(out.is_empty(), "window full");
        p.handle(ok(7, 100, 1)).unwrap();
        p.handle(ok(8, 101, 1)).unwrap();
        p.fill(&mut out);
        assert_eq!(tags(&out), [11, 12]);
        for (i, tag) in (9..=16).enumerate() {
            out.clear();
            p.fill(&mut out);
            p.handle(ok(tag, 102 + i as u64, 1)).unwrap();
        }
        assert!(!p.awaiting_replies());
        let (next, ack, err) = p.finish();
        assert_eq!(next, 17);
        assert!(err.is_none());
        assert_eq!(
            ack.summary(),
            PutSummary {
                first: 100,
                last: 109,
                count: 10
            }
        );
        assert!(ack.contiguous);
    }

    #[test]
    fn packets_share_frames_up_to_the_count() {
        let mut p = PutPipeline::new(
            packets(2 * FRAME_PACKETS + 8),
            64,
            1,
            FrameLimits::for_server(100),
        );
        let mut out = BytesMut::new();
        p.fill(&mut out);
        let counts: Vec<usize> = frames(&out, u32::MAX).iter().map(|f| f.1).collect();
        assert_eq!(counts, [FRAME_PACKETS, FRAME_PACKETS, 8]);
        // Owned and borrowed packets make the same frames.
        let owned: Vec<Packet> = packets(2 * FRAME_PACKETS + 8).collect();
        let mut q = PutPipeline::new(owned.iter(), 64, 1, FrameLimits::for_server(100));
        let mut same = BytesMut::new();
        q.fill(&mut same);
        assert_eq!(out, same);
    }

    #[test]
    fn payload_budget_starts_a_new_frame_and_a_big_packet_goes_alone() {
        let name = SrcName::new("AA_X").unwrap();
        let sizes = [100_000, 100_000, 10, 200_000, 5];
        let ps = sizes
            .iter()
            .map(|&n| Packet::new(name.clone(), Time::UNIX_EPOCH, vec![0u8; n]));
        let mut p = PutPipeline::new(ps, 64, 1, FrameLimits::for_server(1 << 20));
        let mut out = BytesMut::new();
        let mut counts = Vec::new();
        // Bounded: each turn sends at least one packet or ends.
        loop {
            out.clear();
            p.fill(&mut out);
            if out.is_empty() {
                break;
            }
            counts.extend(frames(&out, u32::MAX).iter().map(|f| f.1));
        }
        assert_eq!(counts, [1, 2, 1, 1]);
    }

    #[test]
    fn what_is_available_is_sent_without_waiting_to_fill_a_frame() {
        let mut p = PutPipeline::new(packets(3), 8, 1, FrameLimits::for_server(100));
        let mut out = BytesMut::new();
        p.fill(&mut out);
        let sent = frames(&out, u32::MAX);
        assert_eq!((sent.len(), sent[0].0, sent[0].1), (1, 1, 3));
        assert!(p.awaiting_replies());
    }

    /// Frames stay within the server's frame limit whatever the mix of payload and
    /// srcname sizes, including payloads of exactly max_packet and limits where the
    /// frame limit, not the count or the payload budget, is what binds.
    #[test]
    fn frames_never_exceed_max_frame() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move |n: u64| {
            // xorshift64*: deterministic, so a failure repeats.
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            seed.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        };
        let names: Vec<SrcName> = (0..63)
            .map(|n| SrcName::new(&"S".repeat(n + 1)).unwrap())
            .collect();
        for round in 0..200 {
            let max_packet = [1, 100, 1000, 4096, 65_536, 1 << 20][round % 6] as u32;
            let limits = FrameLimits {
                packets: [1, 7, 256, 100_000][rand(4) as usize],
                payload_bytes: [0, 1000, FRAME_BYTES, usize::MAX][rand(4) as usize],
                ..FrameLimits::for_server(max_packet)
            };
            let n = 1 + rand(600) as usize;
            let ps: Vec<Packet> = (0..n)
                .map(|_| {
                    let len = match rand(4) {
                        0 => max_packet as u64,
                        1 => 0,
                        _ => rand(u64::from(max_packet) + 1),
                    };
                    let name = names[rand(63) as usize].clone();
                    Packet::new(name, Time::UNIX_EPOCH, vec![1u8; len as usize])
                })
                .collect();
            let mut p = PutPipeline::new(ps.iter(), usize::MAX, 1, limits);
            let mut out = BytesMut::new();
            let mut sent = 0;
            loop {
                out.clear();
                p.fill(&mut out);
                if out.is_empty() {
                    break;
                }
                for (tag, count, len) in frames(&out, limits.max_frame) {
                    assert!(len <= limits.max_frame as usize, "round {round}");
                    assert!(count <= limits.packets, "round {round}");
                    p.handle(ok(tag, 1 + sent as u64, count as u32)).unwrap();
                    sent += count;
                }
            }
            assert_eq!(sent, n, "round {round}: every packet sent once");
            let (_, ack, err) = p.finish();
            assert!(err.is_none());
            assert_eq!(ack.acked, n as u64);
        }
    }

    #[test]
    fn put_ok_with_the_wrong_count_is_a_protocol_error() {
        let mut p = PutPipeline::new(packets(5), 8, 1, FrameLimits::for_server(100));
        let mut out = BytesMut::new();
        p.fill(&mut out);
        assert_eq!(frames(&out, u32::MAX)[0].1, 5);
        assert!(matches!(
            p.handle(ok(1, 1, 4)),
            Err(ClientError::Protocol(_))
        ));
        let mut p = PutPipeline::new(packets(5), 8, 1, FrameLimits::for_server(100));
        p.fill(&mut out);
        assert!(matches!(
            p.handle(ok(1, 1, 6)),
            Err(ClientError::Protocol(_))
        ));
    }

    #[test]
    fn contiguity_follows_the_pktids() {
        let mut p = PutPipeline::new(packets(9), 8, 1, per_frame(3));
        let mut out = BytesMut::new();
        p.fill(&mut out);
        p.handle(ok(1, 10, 3)).unwrap();
        p.handle(ok(2, 13, 3)).unwrap();
        p.handle(ok(3, 16, 3)).unwrap();
        let (_, ack, _) = p.finish();
        assert_eq!(
            ack,
            PutAck {
                acked: 9,
                pktids: Some((10, 18)),
                contiguous: true
            }
        );
        // Another writer's packet (pktid 13) between two of our frames.
        let mut p = PutPipeline::new(packets(6), 8, 1, per_frame(3));
        p.fill(&mut out);
        p.handle(ok(1, 10, 3)).unwrap();
        p.handle(ok(2, 14, 3)).unwrap();
        let (_, ack, _) = p.finish();
        assert_eq!(
            ack,
            PutAck {
                acked: 6,
                pktids: Some((10, 16)),
                contiguous: false
            }
        );
    }

    #[test]
    fn error_stops_sending_but_collects_owed_replies() {
        let mut p = PutPipeline::new(packets(10), 3, 1, per_frame(2));
        let mut out = BytesMut::new();
        p.fill(&mut out);
        assert_eq!(tags(&out), [1, 2, 3]);
        p.handle(ok(1, 5, 2)).unwrap();
        p.handle(error(2, ErrorCode::RingError)).unwrap();
        out.clear();
        p.fill(&mut out);
        assert!(out.is_empty(), "nothing sent after an error");
        assert!(p.awaiting_replies());
        p.handle(ok(3, 7, 2)).unwrap();
        assert!(!p.awaiting_replies());
        let (_, ack, err) = p.finish();
        // Exactly the acknowledged frames count; the refused frame's two do not.
        assert_eq!(
            ack,
            PutAck {
                acked: 4,
                pktids: Some((5, 8)),
                contiguous: true
            }
        );
        assert!(matches!(
            err,
            Some(ClientError::Server {
                code: ErrorCode::RingError,
                ..
            })
        ));
    }

    #[test]
    fn a_fatal_error_ends_the_pipeline() {
        let mut p = PutPipeline::new(packets(4), 3, 1, per_frame(2));
        let mut out = BytesMut::new();
        p.fill(&mut out);
        assert!(matches!(
            p.handle(error(1, ErrorCode::TooLarge)),
            Err(ClientError::Server {
                code: ErrorCode::TooLarge,
                ..
            })
        ));
    }

    #[test]
    fn out_of_order_and_unsolicited_replies_are_refused() {
        let mut p = PutPipeline::new(packets(2), 2, 1, per_frame(1));
        let mut out = BytesMut::new();
        p.fill(&mut out);
        assert!(matches!(
            p.handle(ok(2, 1, 1)),
            Err(ClientError::Protocol(_))
        ));
        let mut p = PutPipeline::new(packets(1), 2, 1, per_frame(1));
        p.fill(&mut out);
        let select = Frame {
            tag: 1,
            body: Body::Selected { nsources: 1 },
        };
        assert!(matches!(p.handle(select), Err(ClientError::Protocol(_))));
        let mut p = PutPipeline::new(packets(0), 2, 1, per_frame(1));
        p.fill(&mut out);
        assert!(matches!(
            p.handle(ok(1, 1, 1)),
            Err(ClientError::Protocol(_))
        ));
        assert!(matches!(
            p.handle(error(0, ErrorCode::ShuttingDown)),
            Err(ClientError::Server {
                code: ErrorCode::ShuttingDown,
                ..
            })
        ));
    }

    #[test]
    fn oversized_packet_is_refused_before_sending() {
        let name = SrcName::new("AA_BBB").unwrap();
        let big = Packet::new(name, Time::UNIX_EPOCH, vec![0u8; 101]);
        let mut p = PutPipeline::new(
            packets(2).chain([big]).chain(packets(2)),
            8,
            1,
            FrameLimits::for_server(100),
        );
        let mut out = BytesMut::new();
        p.fill(&mut out);
        // The packets before it go out; it and those after do not.
        assert_eq!(
            frames(&out, u32::MAX)
                .iter()
                .map(|f| f.1)
                .collect::<Vec<_>>(),
            [2]
        );
        p.handle(ok(1, 1, 2)).unwrap();
        let (_, ack, err) = p.finish();
        assert_eq!(ack.acked, 2);
        assert!(matches!(
            err,
            Some(ClientError::PacketTooLarge { len: 101, max: 100 })
        ));
    }
}
