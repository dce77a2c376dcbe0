//! Pipelined multi-packet PUTs for a batch: the packets are grouped into PUT frames of
//! up to [`FRAME_PACKETS`] packets and [`FRAME_BYTES`] payload bytes, and up to a window
//! of frames is kept in flight. Fewer, larger frames cost the output orb less than one
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

/// Packets at most per PUT frame.
pub const FRAME_PACKETS: usize = 64;
/// Payload bytes per PUT frame before a new frame is started (a single larger packet
/// gets a frame of its own; the server's limit is `max_packet` + 64 KiB).
pub const FRAME_BYTES: usize = 48 * 1024;
/// Stop encoding once this many bytes wait to be written.
const FILL_BUDGET: usize = 1 << 20;

/// Splits `packets` into frame ranges (see the module docs).
pub fn frames(packets: &[&Packet]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, p) in packets.iter().enumerate() {
        let len = p.payload.len();
        if i > start && (i - start >= FRAME_PACKETS || bytes + len > FRAME_BYTES) {
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
    acked: u64,
    error: Option<ClientError>,
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
            Body::PutOk { count: n, .. } if n == count => {
                self.acked += u64::from(n);
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
pub async fn put_all(c: &mut OrbClient, packets: &[&Packet], window: usize) -> Result<u64> {
    let max = c.welcome().max_packet as usize;
    if let Some(p) = packets.iter().find(|p| p.payload.len() > max) {
        return Err(ClientError::PacketTooLarge {
            len: p.payload.len(),
            max: c.welcome().max_packet,
        });
    }
    let frames = frames(packets).into_iter().map(|r| (c.tag(), r)).collect();
    let mut p = BatchPut {
        packets,
        frames,
        next: 0,
        window: window.max(1),
        in_flight: VecDeque::new(),
        acked: 0,
        error: None,
    };
    c.conn.run_pipeline(&mut p).await?;
    match p.error {
        Some(e) => Err(e),
        None => Ok(p.acked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::{SrcName, Time};

    #[test]
    fn frames_respect_count_and_bytes() {
        let name = SrcName::new("AA_X").unwrap();
        let small: Vec<Packet> = (0..130)
            .map(|i| Packet::new(name.clone(), Time::from_micros(i), vec![0u8; 10]))
            .collect();
        let refs: Vec<&Packet> = small.iter().collect();
        assert_eq!(frames(&refs), vec![0..64, 64..128, 128..130]);
        let big: Vec<Packet> = (0..3)
            .map(|i| Packet::new(name.clone(), Time::from_micros(i), vec![0u8; 40_000]))
            .collect();
        let refs: Vec<&Packet> = big.iter().collect();
        assert_eq!(frames(&refs), vec![0..1, 1..2, 2..3]);
        assert!(frames(&[]).is_empty());
    }
}
