//! A small DataLink client over `formats::datalink`, for the DataLink tests and the
//! benchmark: send commands, receive owned replies, every read bounded.

use std::net::SocketAddr;
use std::time::Duration;

use formats::datalink::{decode_reply, Command, Decoded, Reply};
use formats::Time;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one reply may take before the test fails.
pub const REPLY_LIMIT: Duration = Duration::from_secs(10);
/// Largest reply payload accepted.
const MAX_REPLY: usize = 16 << 20;

/// A server reply, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DlReply {
    /// ID.
    Id(String),
    /// OK value message.
    Ok(i64, String),
    /// ERROR value message.
    Error(i64, String),
    /// PACKET.
    Packet {
        /// Stream id.
        streamid: String,
        /// Packet id.
        pktid: u64,
        /// Packet time.
        pkttime: Time,
        /// Data start.
        start: Time,
        /// Data end.
        end: Time,
        /// Data.
        data: Vec<u8>,
    },
    /// INFO kind xml.
    Info(String, String),
    /// ENDSTREAM.
    EndStream,
}

impl From<Reply<'_>> for DlReply {
    fn from(r: Reply<'_>) -> DlReply {
        match r {
            Reply::Id(s) => DlReply::Id(s.into()),
            Reply::Ok { value, message } => DlReply::Ok(value, message.into()),
            Reply::Error { value, message } => DlReply::Error(value, message.into()),
            Reply::Packet {
                streamid,
                pktid,
                pkttime,
                start,
                end,
                data,
            } => DlReply::Packet {
                streamid: streamid.into(),
                pktid,
                pkttime,
                start,
                end,
                data: data.to_vec(),
            },
            Reply::Info { kind, xml } => DlReply::Info(kind.into(), xml.into()),
            Reply::EndStream => DlReply::EndStream,
        }
    }
}

/// One DataLink connection.
pub struct DlClient {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Where the next reply starts in `buf`: consumed bytes are dropped only when more
    /// must be read, not once per reply, so a fast stream is not quadratic.
    pos: usize,
}

impl DlClient {
    /// Connects (bounded by [`REPLY_LIMIT`]).
    pub async fn connect(addr: SocketAddr) -> DlClient {
        let stream = tokio::time::timeout(REPLY_LIMIT, TcpStream::connect(addr))
            .await
            .expect("DataLink connect timed out")
            .expect("DataLink connect");
        let _ = stream.set_nodelay(true);
        DlClient {
            stream,
            buf: Vec::new(),
            pos: 0,
        }
    }

    /// Sends one command.
    pub async fn send(&mut self, cmd: Command<'_>) {
        let mut out = Vec::new();
        cmd.encode(&mut out).expect("encodable command");
        self.send_raw(&out).await;
    }

    /// Sends bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("DataLink send");
    }

    /// The next reply, or `None` if the server closed the connection.
    pub async fn try_recv(&mut self) -> Option<DlReply> {
        loop {
            match decode_reply(&self.buf[self.pos..], MAX_REPLY).expect("a well-formed reply") {
                Decoded::Done(r, n) => {
                    let owned = DlReply::from(r);
                    self.pos += n;
                    return Some(owned);
                }
                Decoded::NeedMore => {
                    self.buf.drain(..self.pos);
                    self.pos = 0;
                    let mut chunk = [0u8; 64 * 1024];
                    let n = tokio::time::timeout(REPLY_LIMIT, self.stream.read(&mut chunk))
                        .await
                        .expect("no DataLink reply in time")
                        .unwrap_or(0);
                    if n == 0 {
                        assert!(self.buf.is_empty(), "the server closed mid-reply");
                        return None;
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }

    /// The next reply, which must be a PACKET: its pktid and data length, read in place
    /// without copying (for the benchmark, so it measures the server, not this client).
    pub async fn recv_packet(&mut self) -> (u64, usize) {
        loop {
            match decode_reply(&self.buf[self.pos..], MAX_REPLY).expect("a well-formed reply") {
                Decoded::Done(Reply::Packet { pktid, data, .. }, n) => {
                    let len = data.len();
                    self.pos += n;
                    return (pktid, len);
                }
                Decoded::Done(other, _) => panic!("expected a PACKET, got {other:?}"),
                Decoded::NeedMore => {
                    self.buf.drain(..self.pos);
                    self.pos = 0;
                    let mut chunk = [0u8; 64 * 1024];
                    let n = tokio::time::timeout(REPLY_LIMIT, self.stream.read(&mut chunk))
                        .await
                        .expect("no DataLink reply in time")
                        .unwrap_or(0);
                    assert!(n > 0, "the server closed the connection");
                    self.buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }

    /// The next reply; panics if the server closed the connection.
    pub async fn recv(&mut self) -> DlReply {
        self.try_recv()
            .await
            .expect("the server closed the connection")
    }

    /// Sends raw bytes and returns the reply.
    pub async fn request_raw(&mut self, bytes: &[u8]) -> DlReply {
        self.send_raw(bytes).await;
        self.recv().await
    }

    /// Sends a command and returns the reply.
    pub async fn request(&mut self, cmd: Command<'_>) -> DlReply {
        self.send(cmd).await;
        self.recv().await
    }
}
