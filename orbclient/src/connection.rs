//! A framed connection: bytes from a TCP or TLS stream in, owned server frames out; frames
//! queued into one buffer out, written with one `write_all` per batch.
//!
//! No protocol logic lives here beyond turning borrowed frames into owned ones: the
//! codec is `formats::proto` (sans-io), the session rules live in [`crate::client`]
//! and [`crate::reap`]. [`Connection::run_pipeline`] is the one place that reads and
//! writes at the same time, for callers that keep many requests in flight.
//!
//! Zero copy: a PACKET's payload is not copied out of the read buffer. The frame's
//! bytes are split off the buffer and frozen, and the payload is a [`Bytes`](bytes::Bytes) slice of
//! them. The price: a payload keeps its read buffer chunk (up to [`READ_CHUNK`]) alive;
//! copy payloads you keep for a long time.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use bytes::{Buf, BytesMut};
use formats::proto::{decode, Body, Decoded, ErrorCode, Frame, PutPacket, ReapEndReason};
use formats::{Packet, SrcName, Time};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{ClientError, Result};
use crate::tls::ClientStream;

/// Bytes reserved for a read when the read buffer runs short of room (under 4 KiB).
pub const READ_CHUNK: usize = 64 * 1024;

/// Below this much spare room, the read buffer grows by [`READ_CHUNK`] before a read,
/// so a read never asks the kernel for only a few bytes.
const MIN_READ_ROOM: usize = 4 * 1024;

/// [`Connection::run_pipeline`] stops asking for more frames while this much is
/// queued: enough for one large write, small enough to keep acks flowing.
const WRITE_HIGH_WATER: usize = 256 * 1024;

/// Distinct srcnames remembered for interning; past this the set is cleared. A ring
/// rarely has more sources, and clearing only costs allocations, never correctness.
const SRCNAME_CACHE: usize = 8192;

/// The server's WELCOME: what it is and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// Protocol version the server speaks.
    pub version: u16,
    /// Server software and version.
    pub server: String,
    /// Ring data capacity in bytes.
    pub ring_capacity: u64,
    /// Largest payload the server accepts.
    pub max_packet: u32,
    /// This session's client id (as in CLIENTS).
    pub client_id: u64,
}

/// How a reap stream ended (the REAP_END frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReapEnd {
    /// Why it ended.
    pub reason: ReapEndReason,
    /// The session's read position afterwards.
    pub pos: u64,
}

/// A frame from the server, owned: its tag and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// The tag of the request it answers (for stream frames: of the REAP).
    pub tag: u32,
    /// The body.
    pub msg: ServerMsg,
}

/// The bodies a server sends, owned (see `formats::proto::Body` for each field).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerMsg {
    /// Session accepted.
    Welcome(Welcome),
    /// Packets stored with pktids `first_pktid .. first_pktid + count`.
    PutOk {
        /// pktid of the first packet.
        first_pktid: u64,
        /// Packets stored.
        count: u32,
    },
    /// Select/reject accepted.
    Selected {
        /// Sources in the ring that match now.
        nsources: u32,
    },
    /// The read position.
    Position {
        /// The pktid.
        pktid: u64,
    },
    /// A packet (payload shared with the read buffer, see the module docs).
    Packet(Packet),
    /// Packets lost to a lapped reader.
    Gap {
        /// First pktid lost.
        first: u64,
        /// Last pktid lost.
        last: u64,
        /// Ring bytes lost.
        bytes: u64,
    },
    /// End of a reap stream.
    ReapEnd(ReapEnd),
    /// A JSON document (STAT, SOURCES, CLIENTS).
    Info(String),
    /// Answer to PING.
    Pong {
        /// The PING's nonce.
        nonce: u64,
        /// The server's clock.
        server_time: Time,
    },
    /// The client a KILL named is being closed.
    Killed {
        /// Its id.
        client_id: u64,
    },
    /// The access rules were reloaded; the server's summary.
    Reloaded(String),
    /// A request failed.
    Error {
        /// What kind of failure.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
}

/// A party to [`Connection::run_pipeline`]: produces request frames, consumes replies.
/// It is a plain state machine (no I/O), so it can be tested without sockets.
pub trait Pipeline {
    /// Appends the frames that may be sent now to `out` (none if the window is full).
    fn fill(&mut self, out: &mut BytesMut);
    /// Takes one frame from the server.
    fn handle(&mut self, frame: Frame<'_>) -> Result<()>;
    /// True while replies are still owed for frames that were produced.
    fn awaiting_replies(&self) -> bool;
}

/// A framed connection to an orb server. See the module docs.
#[derive(Debug)]
pub struct Connection {
    stream: ClientStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    max_frame: u32,
    srcnames: HashSet<SrcName>,
    /// Set after an I/O or decode error or end of stream: the byte stream can no
    /// longer be trusted to be at a frame boundary, so every later call fails.
    dead: bool,
}

impl Connection {
    /// Wraps a connected stream; frames longer than `max_frame` (the `len` field) are
    /// refused before they are buffered.
    pub fn new(stream: impl Into<ClientStream>, max_frame: u32) -> Connection {
        let stream = stream.into();
        // Frames are batched by hand; Nagle would only add latency to the last one.
        let _ = stream.tcp().set_nodelay(true);
        Connection {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: BytesMut::with_capacity(READ_CHUNK),
            max_frame,
            srcnames: HashSet::new(),
            dead: false,
        }
    }

    /// True if what the server sent first looks like a TLS record header (an alert or a
    /// handshake, TLS 1.x): a plaintext client reached a TLS port.
    pub fn received_tls_record(&self) -> bool {
        matches!(self.rbuf.get(..3), Some([0x15 | 0x16, 0x03, 0x01..=0x04]))
    }

    /// Changes the largest frame accepted from now on.
    pub fn set_max_frame(&mut self, max_frame: u32) {
        self.max_frame = max_frame;
    }

    /// The largest frame accepted.
    pub fn max_frame(&self) -> u32 {
        self.max_frame
    }

    /// False once an error or end of stream made the connection unusable.
    pub fn is_usable(&self) -> bool {
        !self.dead
    }

    /// Marks the connection unusable, e.g. after a reply timed out and a late reply
    /// would be taken for the answer to the next request.
    pub fn poison(&mut self) {
        self.dead = true;
    }

    /// Appends `frame` to the write buffer; nothing is sent until [`flush`](Self::flush).
    pub fn queue(&mut self, frame: &Frame<'_>) {
        frame.encode(&mut self.wbuf);
    }

    /// Appends a PUT frame carrying `packets` to the write buffer.
    pub fn queue_put<'p>(
        &mut self,
        tag: u32,
        durable: bool,
        packets: impl IntoIterator<Item = PutPacket<'p>>,
    ) {
        formats::proto::encode::encode_put(&mut self.wbuf, tag, durable, packets);
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.wbuf.len()
    }

    /// Drops queued bytes past `len`, to take back a frame that must not be sent.
    pub fn unqueue_to(&mut self, len: usize) {
        self.wbuf.truncate(len);
    }

    /// Writes everything queued in one `write_all`.
    pub async fn flush(&mut self) -> Result<()> {
        if self.dead {
            return Err(ClientError::Closed);
        }
        if self.wbuf.is_empty() {
            return Ok(());
        }
        // TLS may hold the last records until flushed.
        let written = async {
            self.stream.write_all(&self.wbuf).await?;
            self.stream.flush().await
        };
        if let Err(e) = written.await {
            self.dead = true;
            return Err(e.into());
        }
        self.wbuf.clear();
        Ok(())
    }

    /// True if a whole frame is already buffered, so [`read_frame`](Self::read_frame)
    /// will not wait for the network.
    pub fn has_frame(&self) -> bool {
        match self.rbuf.get(..4) {
            Some(h) => {
                let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
                self.rbuf.len() >= 4 + len
            }
            None => false,
        }
    }

    /// The next frame, reading from the network as needed. End of stream is
    /// [`ClientError::Closed`] (or an unexpected-EOF I/O error inside a frame).
    pub async fn read_frame(&mut self) -> Result<Incoming> {
        // Each turn either returns or reads at least one byte, and a frame is bounded
        // by `max_frame`, so this ends.
        loop {
            if let Some(f) = self.try_read_frame()? {
                return Ok(f);
            }
            self.fill().await?;
        }
    }

    /// The next frame if one is wholly buffered; never touches the network.
    pub fn try_read_frame(&mut self) -> Result<Option<Incoming>> {
        if self.dead {
            return Err(ClientError::Closed);
        }
        let decoded = match decode(&self.rbuf, self.max_frame) {
            Ok(d) => d,
            Err(e) => {
                self.dead = true;
                return Err(e.into());
            }
        };
        let (frame, len) = match decoded {
            Decoded::NeedMore { needed } => {
                if let Some(n) = needed {
                    self.rbuf.reserve(n.saturating_sub(self.rbuf.len()));
                }
                return Ok(None);
            }
            Decoded::Frame(frame, len) => (frame, len),
        };
        let tag = frame.tag;
        let Body::Packet {
            pktid,
            time,
            srcname,
            payload,
        } = frame.body
        else {
            let msg = owned_reply(frame.body);
            self.rbuf.advance(len);
            return msg.map(|msg| Some(Incoming { tag, msg }));
        };
        // Where the payload lies in the frame, so it can be shared after the split.
        let start = (payload.as_ptr() as usize).checked_sub(self.rbuf.as_ptr() as usize);
        let range = start
            .map(|s| s..s + payload.len())
            .filter(|r| r.end <= len)
            .ok_or_else(|| ClientError::Protocol("PACKET payload outside its frame".into()))?;
        let srcname = intern(&mut self.srcnames, srcname)?;
        let bytes = self.rbuf.split_to(len).freeze();
        Ok(Some(Incoming {
            tag,
            msg: ServerMsg::Packet(Packet {
                pktid,
                srcname,
                time,
                payload: bytes.slice(range),
            }),
        }))
    }

    /// Reads more bytes into the buffer.
    async fn fill(&mut self) -> Result<()> {
        if self.dead {
            return Err(ClientError::Closed);
        }
        if self.rbuf.capacity() - self.rbuf.len() < MIN_READ_ROOM {
            self.rbuf.reserve(READ_CHUNK);
        }
        let n = match self.stream.read_buf(&mut self.rbuf).await {
            Ok(n) => n,
            Err(e) => {
                self.dead = true;
                return Err(e.into());
            }
        };
        if n == 0 {
            self.dead = true;
            return Err(eof_error(self.rbuf.is_empty()));
        }
        Ok(())
    }

    /// Runs `p` to completion: writes what it produces while reading and handing it
    /// the replies, until it owes nothing and has nothing more to send. Reading and
    /// writing overlap (a `select!` on the split stream), so neither side of the TCP
    /// connection stalls on a full buffer. Many frames go out per write and many
    /// replies are handled per read.
    pub async fn run_pipeline<P: Pipeline>(&mut self, p: &mut P) -> Result<()> {
        if self.dead {
            return Err(ClientError::Closed);
        }
        let r = self.pipeline_loop(p).await;
        // Pipelines return errors only when the stream is broken or out of step
        // (failed requests they report themselves), so nothing after can be trusted.
        if r.is_err() {
            self.dead = true;
        }
        r
    }

    async fn pipeline_loop<P: Pipeline>(&mut self, p: &mut P) -> Result<()> {
        // Each turn reads or writes at least one byte, or returns.
        loop {
            // Replies already buffered first: each may open the window for more frames.
            loop {
                match decode(&self.rbuf, self.max_frame)? {
                    Decoded::Frame(frame, len) => {
                        p.handle(frame)?;
                        self.rbuf.advance(len);
                    }
                    Decoded::NeedMore { needed } => {
                        if let Some(n) = needed {
                            self.rbuf.reserve(n.saturating_sub(self.rbuf.len()));
                        }
                        break;
                    }
                }
            }
            if self.wbuf.len() < WRITE_HIGH_WATER {
                p.fill(&mut self.wbuf);
            }
            let write = !self.wbuf.is_empty();
            let read = p.awaiting_replies();
            if !write && !read {
                return Ok(());
            }
            if self.rbuf.capacity() - self.rbuf.len() < MIN_READ_ROOM {
                self.rbuf.reserve(READ_CHUNK);
            }
            // Read first, then write, each polled once per wake-up on the one stream
            // (a TLS session cannot be split): a poll that is not ready has moved no
            // bytes. With nothing left to write, records TLS still holds are flushed.
            let (stream, rbuf, wbuf) = (&mut self.stream, &mut self.rbuf, &mut self.wbuf);
            let step = std::future::poll_fn(|cx| {
                if read {
                    let r = std::pin::pin!(stream.read_buf(rbuf)).poll(cx);
                    if let Poll::Ready(r) = r {
                        return Poll::Ready(Step::Read(r));
                    }
                }
                if write {
                    let w = std::pin::pin!(stream.write_buf(wbuf)).poll(cx);
                    if let Poll::Ready(w) = w {
                        return Poll::Ready(Step::Wrote(w));
                    }
                } else if let Poll::Ready(Err(e)) = Pin::new(&mut *stream).poll_flush(cx) {
                    return Poll::Ready(Step::Wrote(Err(e)));
                }
                Poll::Pending
            })
            .await;
            match step {
                Step::Read(n) => {
                    if n? == 0 {
                        return Err(eof_error(self.rbuf.is_empty()));
                    }
                }
                Step::Wrote(n) => {
                    if n? == 0 {
                        return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
                    }
                }
            }
        }
    }
}

/// What one turn of the pipeline loop did.
enum Step {
    Read(std::io::Result<usize>),
    Wrote(std::io::Result<usize>),
}

fn eof_error(at_boundary: bool) -> ClientError {
    if at_boundary {
        ClientError::Closed
    } else {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the server closed the connection in the middle of a frame",
        )
        .into()
    }
}

/// The shared `SrcName` for `s`, validating it the first time it is seen.
fn intern(cache: &mut HashSet<SrcName>, s: &str) -> Result<SrcName> {
    if let Some(name) = cache.get(s) {
        return Ok(name.clone());
    }
    let name = SrcName::new(s)
        .map_err(|e| ClientError::Protocol(format!("server sent a bad srcname: {e}")))?;
    if cache.len() >= SRCNAME_CACHE {
        cache.clear();
    }
    cache.insert(name.clone());
    Ok(name)
}

/// An owned copy of a server body other than PACKET; client kinds are protocol errors.
fn owned_reply(body: Body<'_>) -> Result<ServerMsg> {
    Ok(match body {
        Body::Welcome {
            version,
            server,
            ring_capacity,
            max_packet,
            client_id,
        } => ServerMsg::Welcome(Welcome {
            version,
            server: server.to_owned(),
            ring_capacity,
            max_packet,
            client_id,
        }),
        Body::PutOk { first_pktid, count } => ServerMsg::PutOk { first_pktid, count },
        Body::Selected { nsources } => ServerMsg::Selected { nsources },
        Body::Position { pktid } => ServerMsg::Position { pktid },
        Body::Gap { first, last, bytes } => ServerMsg::Gap { first, last, bytes },
        Body::ReapEnd { reason, pos } => ServerMsg::ReapEnd(ReapEnd { reason, pos }),
        Body::Info { json } => ServerMsg::Info(json.to_owned()),
        Body::Pong { nonce, server_time } => ServerMsg::Pong { nonce, server_time },
        Body::Killed { client_id } => ServerMsg::Killed { client_id },
        Body::Reloaded { summary } => ServerMsg::Reloaded(summary.to_owned()),
        Body::Error { code, message } => ServerMsg::Error {
            code,
            message: message.to_owned(),
        },
        other => {
            return Err(ClientError::Protocol(format!(
                "server sent a client frame ({})",
                formats::proto::kind_name(other.kind())
            )))
        }
    })
}

#[cfg(test)]
mod tests;
