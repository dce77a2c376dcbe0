//! Pipelined multi-packet PUTs for a batch: the packets are grouped into PUT frames of
//! up to [`FRAME_PACKETS`] packets and [`FRAME_BYTES`] payload bytes (at most the output's
//! `max_packet`), and up to a window of frames is kept in flight. Fewer, larger frames cost the output orb less than one
//! frame per packet. The state machine does no I/O; `Connection::run_pipeline` drives it.

use std::collections::VecDeque;
use std::ops::Range;

use bytes::BytesMut;
use formats::proto::encode::encode_put;
use formats::proto::{Body, Frame};
use formats::Packet;

use crate::client::put_packet;
use crate::connection::Pipeline;
use crate::error::{ClientError, Result};
use crate::OrbClient;

/// Packets at most per PUT frame. Each costs at most ~80 bytes besides its payload
/// (srcname up to 63 bytes, time, length), so their headers stay well under 64 KiB.
pub const FRAME_PACKETS: usize = 256;
/// Payload bytes per PUT frame before a new frame is started, and at most the
/// output's `max_packet` (a single larger packet gets a frame of its own). With the
/// headers, a frame stays under the server's limit of `max_packet` + 64 KiB.
pub const FRAME_BYTES: usize = 128 * 1024;
/// Stop encoding once this many bytes wait to be written.
const FILL_BUDGET: usize = 1 << 20;

/// Splits `packets` into frame ranges of at most [`FRAME_PACKETS`] packets and
/// `max_bytes` payload bytes (a larger packet alone).
pub fn frames(packets: &[&Packet], max_bytes: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, p) in packets.iter().enumerate() {
        let len = p.payload.len();
        if i > start && (i - start >= FRAME_PACKETS || bytes + len > max_bytes) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += len;
    }
    if start < packets.len() {
        out.push(start..packets.len());
    }
    out
}

/// The frames of one batch and the PUT_OKs owed for them.
struct BatchPut<'a> {
    packets: &'a [&'a Packet],
    /// (tag, packets) of each frame, in sending order.
    frames: Vec<(u32, Range<usize>)>,
    next: usize,
    window: usize,
    /// (tag, count) of frames sent and not yet answered, oldest first.
    in_flight: VecDeque<(u32, u32)>,
    ack: PutAck,
    error: Option<ClientError>,
}

/// What OUT acknowledged for a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutAck {
    /// Packets acknowledged.
    pub acked: u64,
    /// OUT's pktids of the first and the last packet acknowledged.
    pub pktids: Option<(u64, u64)>,
    /// Every PUT_OK's pktids followed the previous one's: no other packet got a pktid
    /// at OUT between the first and the last of ours.
    pub contiguous: bool,
}

impl Pipeline for BatchPut<'_> {
    fn fill(&mut self, out: &mut BytesMut) {
        while self.error.is_none()
            && self.next < self.frames.len()
            && self.in_flight.len() < self.window
            && out.len() < FILL_BUDGET
        {
            let (tag, r) = self.frames[self.next].clone();
            self.next += 1;
            let ps = &self.packets[r];
            encode_put(out, tag, false, ps.iter().map(|p| put_packet(p)));
            self.in_flight.push_back((tag, ps.len() as u32));
        }
    }

    fn handle(&mut self, frame: Frame<'_>) -> Result<()> {
        if frame.tag == 0 {
            if let Body::Error { code, message } = frame.body {
                return Err(ClientError::Server {
                    code,
                    message: message.to_owned(),
                });
            }
        }
        let Some((tag, count)) = self.in_flight.pop_front() else {
            return Err(ClientError::Protocol(format!(
                "a reply (tag {}) with no PUT in flight",
                frame.tag
            )));
        };
        if frame.tag != tag {
            return Err(ClientError::Protocol(format!(
                "PUT replies out of order: got tag {}, expected {tag}",
                frame.tag
            )));
        }
        match frame.body {
            Body::PutOk {
                count: n,
                first_pktid,
            } if n == count => {
                self.ack.acked += u64::from(n);
                if n > 0 {
                    let last = first_pktid + u64::from(n) - 1;
                    self.ack.pktids = match self.ack.pktids {
                        None => Some((first_pktid, last)),
                        Some((first, prev)) => {
                            if first_pktid != prev + 1 {
                                self.ack.contiguous = false;
                            }
                            Some((first, last))
                        }
                    };
                }
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
                self.error.get_or_insert(e);
                Ok(())
            }
            other => Err(ClientError::Protocol(format!(
                "expected PUT_OK for {count} packets, got {} (tag {})",
                formats::proto::kind_name(other.kind()),
                frame.tag
            ))),
        }
    }

    fn awaiting_replies(&self) -> bool {
        !self.in_flight.is_empty()
    }
}

/// Puts `packets` into `c`, pipelined, `window` frames in flight; returns once every
/// frame is acknowledged, or the first error.
pub async fn put_all(c: &mut OrbClient, packets: &[&Packet], window: usize) -> Result<PutAck> {
    let max = c.welcome().max_packet as usize;
    if let Some(p) = packets.iter().find(|p| p.payload.len() > max) {
        return Err(ClientError::PacketTooLarge {
            len: p.payload.len(),
            max: c.welcome().max_packet,
        });
    }
    let frames = frames(packets, FRAME_BYTES.min(max).max(1))
        .into_iter()
        .map(|r| (c.tag(), r))
        .collect();
    let mut p = BatchPut {
        packets,
        frames,
        next: 0,
        window: window.max(1),
        in_flight: VecDeque::new(),
        ack: PutAck {
            acked: 0,
            pktids: None,
            contiguous: true,
        },
        error: None,
    };
    c.conn.run_pipeline(&mut p).await?;
    match p.error {
        Some(e) => Err(e),
        None => Ok(p.ack),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::{SrcName, Time};

    #[test]
    fn frames_respect_count_and_bytes() {
        let name = SrcName::new("AA_X").unwrap();
        let small: Vec<Packet> = (0..520)
            .map(|i| Packet::new(name.clone(), Time::from_micros(i), vec![0u8; 10]))
            .collect();
        let refs: Vec<&Packet> = small.iter().collect();
        assert_eq!(frames(&refs, FRAME_BYTES), vec![0..256, 256..512, 512..520]);
        let big: Vec<Packet> = (0..3)
            .map(|i| Packet::new(name.clone(), Time::from_micros(i), vec![0u8; 100_000]))
            .collect();
        let refs: Vec<&Packet> = big.iter().collect();
        assert_eq!(frames(&refs, FRAME_BYTES), vec![0..1, 1..2, 2..3]);
        assert_eq!(frames(&refs, 250_000), vec![0..2, 2..3]);
        assert!(frames(&[], FRAME_BYTES).is_empty());
    }
}
