//! Pipelined puts: the state machine behind [`OrbClient::put_pipelined`].
//!
//! [`PutPipeline`] turns packets into PUT frames (one packet each) while fewer than
//! `window` are unacknowledged, and matches each PUT_OK to the oldest frame in flight
//! by tag. It does no I/O; [`Connection::run_pipeline`] drives it, so the tests below
//! feed it frames directly.
//!
//! [`OrbClient::put_pipelined`]: crate::OrbClient::put_pipelined
//! [`Connection::run_pipeline`]: crate::Connection::run_pipeline

use std::collections::VecDeque;

use bytes::BytesMut;
use formats::proto::encode::encode_put;
use formats::proto::{Body, Frame};
use formats::Packet;

use crate::client::put_packet;
use crate::connection::Pipeline;
use crate::error::{ClientError, Result};

/// Stop encoding once this many bytes wait to be written: one large write's worth.
/// (The window still bounds the frames in flight.)
const FILL_BUDGET: usize = 256 * 1024;

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

/// Packets to PUT frames and PUT_OKs to a [`PutSummary`]; see the module docs.
#[derive(Debug)]
pub struct PutPipeline<I> {
    packets: I,
    /// No more frames are made: the packets ran out or an error was seen.
    stopped: bool,
    window: usize,
    /// Tags of the frames sent and not yet answered, oldest first.
    in_flight: VecDeque<u32>,
    next_tag: u32,
    max_packet: u32,
    summary: PutSummary,
    error: Option<ClientError>,
}

impl<I: Iterator<Item = Packet>> PutPipeline<I> {
    /// A pipeline over `packets` with at most `window` frames in flight, tags from
    /// `next_tag` on, refusing payloads over `max_packet` bytes before sending them.
    pub fn new(packets: I, window: usize, next_tag: u32, max_packet: u32) -> Self {
        PutPipeline {
            packets,
            stopped: false,
            window: window.max(1),
            in_flight: VecDeque::new(),
            next_tag: next_tag.max(1),
            max_packet,
            summary: PutSummary::default(),
            error: None,
        }
    }

    /// The next unused tag (to hand back to the client) and the outcome: the summary,
    /// or the first error seen.
    pub fn finish(self) -> (u32, Result<PutSummary>) {
        let outcome = match self.error {
            Some(e) => Err(e),
            None => Ok(self.summary),
        };
        (self.next_tag, outcome)
    }

    fn fail(&mut self, e: ClientError) {
        self.stopped = true;
        self.error.get_or_insert(e);
    }
}

impl<I: Iterator<Item = Packet>> Pipeline for PutPipeline<I> {
    fn fill(&mut self, out: &mut BytesMut) {
        while !self.stopped && self.in_flight.len() < self.window && out.len() < FILL_BUDGET {
            let Some(p) = self.packets.next() else {
                self.stopped = true;
                break;
            };
            if p.payload.len() > self.max_packet as usize {
                self.fail(ClientError::PacketTooLarge {
                    len: p.payload.len(),
                    max: self.max_packet,
                });
                break;
            }
            let tag = self.next_tag;
            self.next_tag = self.next_tag.wrapping_add(1).max(1);
            encode_put(out, tag, false, [put_packet(&p)]);
            self.in_flight.push_back(tag);
        }
    }

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
        let Some(&expected) = self.in_flight.front() else {
            return Err(ClientError::Protocol(format!(
                "a {} frame (tag {}) with no PUT in flight",
                formats::proto::kind_name(frame.body.kind()),
                frame.tag
            )));
        };
        if frame.tag != expected {
            return Err(ClientError::Protocol(format!(
                "PUT replies out of order: got tag {}, expected {expected}",
                frame.tag
            )));
        }
        self.in_flight.pop_front();
        match frame.body {
            Body::PutOk {
                first_pktid,
                count: 1,
            } => {
                if self.summary.count == 0 {
                    self.summary.first = first_pktid;
                }
                self.summary.last = first_pktid;
                self.summary.count += 1;
                Ok(())
            }
            Body::Error { code, message } => {
                let e = ClientError::Server {
                    code,
                    message: message.to_owned(),
                };
                if code.is_fatal() {
                    return Err(e);
                }
                self.fail(e);
                Ok(())
            }
            other => Err(ClientError::Protocol(format!(
                "expected PUT_OK for one packet, got {} (tag {})",
                formats::proto::kind_name(other.kind()),
                frame.tag
            ))),
        }
    }

    fn awaiting_replies(&self) -> bool {
        !self.in_flight.is_empty()
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

    /// The tags of the PUT frames in `out`.
    fn tags(out: &BytesMut) -> Vec<u32> {
        let mut at = 0;
        let mut tags = Vec::new();
        while let Ok(Decoded::Frame(f, len)) = decode(&out[at..], u32::MAX) {
            assert!(matches!(f.body, Body::Put { .. }));
            tags.push(f.tag);
            at += len;
        }
        assert_eq!(at, out.len());
        tags
    }

    fn ok(tag: u32, pktid: u64) -> Frame<'static> {
        Frame {
            tag,
            body: Body::PutOk {
                first_pktid: pktid,
                count: 1,
            },
        }
    }

    #[test]
    fn window_bounds_frames_in_flight() {
        let mut p = PutPipeline::new(packets(10), 4, 7, 100);
        let mut out = BytesMut::new();
        p.fill(&mut out);
        assert_eq!(tags(&out), [7, 8, 9, 10]);
        out.clear();
        p.fill(&mut out);
        assert!(out.is_empty(), "window full");
        p.handle(ok(7, 100)).unwrap();
        p.handle(ok(8, 101)).unwrap();
        p.fill(&mut out);
        assert_eq!(tags(&out), [11, 12]);
        for (i, tag) in (9..=16).enumerate() {
            out.clear();
            p.fill(&mut out);
            p.handle(ok(tag, 102 + i as u64)).unwrap();
        }
        assert!(!p.awaiting_replies());
        let (next, summary) = p.finish();
        assert_eq!(next, 17);
        assert_eq!(
            summary.unwrap(),
            PutSummary {
                first: 100,
                last: 109,
                count: 10
            }
        );
    }

    #[test]
    fn error_stops_sending_but_collects_owed_replies() {
        let mut p = PutPipeline::new(packets(10), 3, 1, 100);
        let mut out = BytesMut::new();
        p.fill(&mut out);
        p.handle(ok(1, 5)).unwrap();
        let err = Frame {
            tag: 2,
            body: Body::Error {
                code: ErrorCode::RingError,
                message: "disk full",
            },
        };
        p.handle(err).unwrap();
        out.clear();
        p.fill(&mut out);
        assert!(out.is_empty(), "nothing sent after an error");
        assert!(p.awaiting_replies());
        p.handle(ok(3, 6)).unwrap();
        assert!(!p.awaiting_replies());
        let (_, r) = p.finish();
        assert!(matches!(
            r,
            Err(ClientError::Server {
                code: ErrorCode::RingError,
                ..
            })
        ));
    }

    #[test]
    fn out_of_order_and_unsolicited_replies_are_refused() {
        let mut p = PutPipeline::new(packets(2), 2, 1, 100);
        let mut out = BytesMut::new();
        p.fill(&mut out);
        assert!(matches!(p.handle(ok(2, 1)), Err(ClientError::Protocol(_))));
        let mut p = PutPipeline::new(packets(0), 2, 1, 100);
        p.fill(&mut out);
        assert!(matches!(p.handle(ok(1, 1)), Err(ClientError::Protocol(_))));
        let shutdown = Frame {
            tag: 0,
            body: Body::Error {
                code: ErrorCode::ShuttingDown,
                message: "bye",
            },
        };
        assert!(matches!(
            p.handle(shutdown),
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
        let mut p = PutPipeline::new(packets(1).chain([big]), 8, 1, 100);
        let mut out = BytesMut::new();
        p.fill(&mut out);
        assert_eq!(tags(&out), [1]);
        p.handle(ok(1, 1)).unwrap();
        let (_, r) = p.finish();
        assert!(matches!(
            r,
            Err(ClientError::PacketTooLarge { len: 101, max: 100 })
        ));
    }
}
