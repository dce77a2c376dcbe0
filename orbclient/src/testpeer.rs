//! A fake orb server for unit tests of the client's framing and session logic: it
//! speaks frames, not the protocol; each test scripts the replies. Not the real
//! server: end-to-end tests live in the `tests` crate.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use formats::proto::encode::encode_packet;
use formats::proto::{decode, Body, Decoded, Frame};
use formats::Time;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::OrbAddr;

/// Every wait in a test is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(10);

/// A listener on 127.0.0.1:0 and its address.
pub async fn listen() -> (TcpListener, OrbAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    (l, OrbAddr::new("127.0.0.1", port))
}

/// One accepted connection, seen from the server side.
pub struct Peer {
    pub stream: TcpStream,
    rbuf: BytesMut,
}

/// A client frame, reduced to what tests check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    Hello {
        what: String,
    },
    Put {
        count: u32,
        durable: bool,
    },
    Select(String),
    Reject(String),
    Seek {
        whence: formats::proto::Whence,
        pktid: u64,
    },
    After(Time),
    Tell,
    Reap {
        max_packets: u32,
        timeout_ms: u32,
        credit: u32,
    },
    Credit(u32),
    Stop,
    Stat,
    Ping(u64),
    Other(u8),
}

impl Peer {
    /// Accepts the next connection.
    pub async fn accept(l: &TcpListener) -> Peer {
        let (stream, _) = tokio::time::timeout(LIMIT, l.accept())
            .await
            .unwrap()
            .unwrap();
        Peer {
            stream,
            rbuf: BytesMut::new(),
        }
    }

    /// The next client frame: its tag and what it was; `None` at end of stream.
    pub async fn recv(&mut self) -> Option<(u32, Got)> {
        tokio::time::timeout(LIMIT, self.recv_untimed())
            .await
            .unwrap()
    }

    async fn recv_untimed(&mut self) -> Option<(u32, Got)> {
        loop {
            // The real server's limit for the max_packet of `welcome`: a client frame
            // over it fails the test here, as the server would refuse it.
            let limit = formats::proto::server_max_frame(MAX_PACKET);
            if let Decoded::Frame(f, len) = decode(&self.rbuf, limit).unwrap() {
                let got = match f.body {
                    Body::Hello { what, .. } => Got::Hello { what: what.into() },
                    Body::Put { durable, packets } => Got::Put {
                        count: packets.count(),
                        durable,
                    },
                    Body::Select { expr } => Got::Select(expr.into()),
                    Body::Reject { expr } => Got::Reject(expr.into()),
                    Body::Seek { whence, pktid } => Got::Seek { whence, pktid },
                    Body::After { time } => Got::After(time),
                    Body::Tell => Got::Tell,
                    Body::Reap {
                        max_packets,
                        timeout_ms,
                        credit,
                    } => Got::Reap {
                        max_packets,
                        timeout_ms,
                        credit,
                    },
                    Body::Credit { n } => Got::Credit(n),
                    Body::Stop => Got::Stop,
                    Body::Stat => Got::Stat,
                    Body::Ping { nonce } => Got::Ping(nonce),
                    other => Got::Other(other.kind()),
                };
                let tag = f.tag;
                self.rbuf.advance(len);
                return Some((tag, got));
            }
            if self.stream.read_buf(&mut self.rbuf).await.unwrap() == 0 {
                return None;
            }
        }
    }

    /// Writes frames in one write.
    pub async fn send(&mut self, frames: &[Frame<'_>]) {
        let mut out = BytesMut::new();
        for f in frames {
            f.encode(&mut out);
        }
        self.send_raw(&out).await;
    }

    /// Writes bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Expects HELLO, answers WELCOME (max_packet 1000).
    pub async fn handshake(&mut self) {
        let (tag, got) = self.recv().await.unwrap();
        assert!(matches!(got, Got::Hello { .. }), "{got:?}");
        self.send(&[welcome(tag)]).await;
    }

    /// Sends PACKET frames for `pktids` (srcname `AA_BBB`, payload = pktid as text).
    pub async fn packets(&mut self, tag: u32, pktids: impl IntoIterator<Item = u64>) {
        let mut out = BytesMut::new();
        for p in pktids {
            let payload = p.to_string();
            encode_packet(
                &mut out,
                tag,
                p,
                Time::from_micros(p as i64),
                "AA_BBB",
                payload.as_bytes(),
            );
        }
        self.send_raw(&out).await;
    }
}

/// The `max_packet` of [`welcome`].
pub const MAX_PACKET: u32 = 1000;

/// A WELCOME with max_packet [`MAX_PACKET`].
pub fn welcome(tag: u32) -> Frame<'static> {
    Frame {
        tag,
        body: Body::Welcome {
            version: 1,
            server: "fake",
            ring_capacity: 1 << 20,
            max_packet: MAX_PACKET,
            client_id: 7,
        },
    }
}
