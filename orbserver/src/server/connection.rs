//! The per-connection task: moves bytes between the socket and the session. It holds
//! no protocol logic: decode frames, hand them to the session, write what the session
//! produced, and wait for input, packets, a timeout or shutdown. Output is batched: all
//! replies to one read and up to `limits.output_buffer` bytes of stream frames go out in
//! one write; the task waits for the socket before it prepares more, so that is the most
//! output one client holds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use formats::proto::{
    decode, frame_tag, Body, DecodeError, Decoded, ErrorCode, Frame, ReapEndReason,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::clients::Registration;
use super::session::{Fill, Flow, Session};
use super::Shared;

/// Initial read buffer; it grows to the largest frame seen.
const READ_BUF: usize = 4 * 1024;
/// Largest read buffer a busy connection grows to.
const READ_BUF_MAX: usize = 256 * 1024;

/// Serves one connection until the client leaves, breaks the protocol, or the server
/// shuts down. Errors end only this connection.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    reg: Registration,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let max_frame = max_frame(&shared);
    let handshake_deadline = tokio::time::Instant::now() + shared.limits.handshake_timeout;
    let kill = reg.entry.kill.clone();
    let conn = Conn {
        rd,
        wr,
        rbuf: BytesMut::new(),
        read_hint: READ_BUF,
        wbuf: BytesMut::new(),
        max_frame,
        kill,
    };
    match conn
        .run(
            Session::new(Arc::clone(&shared), reg),
            &shared,
            handshake_deadline,
            &shutdown,
        )
        .await
    {
        Ok(()) => tracing::debug!("{peer}: closed"),
        Err(e @ ConnEnd::Handshake) => tracing::warn!("{peer}: refused: {e}"),
        Err(e @ ConnEnd::Killed) => tracing::warn!("{peer}: {e}"),
        Err(e) => tracing::info!("{peer}: {e}"),
    }
}

/// The largest frame accepted: a largest packet plus `SERVER_FRAME_SLACK`, so that a PUT whose
/// packet is somewhat too large gets a PacketTooLarge reply and the connection stays
/// usable; only frames beyond this are fatal (PROTOCOL.md, "Framing").
fn max_frame(shared: &Shared) -> u32 {
    formats::proto::server_max_frame(u32::try_from(shared.limits.max_packet).unwrap_or(u32::MAX))
}

struct Conn {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    rbuf: BytesMut,
    /// How much room to offer the next read: small for idle connections (memory), grown
    /// while reads fill it (one syscall per many frames).
    read_hint: usize,
    wbuf: BytesMut,
    max_frame: u32,
    /// Cancelled by an administrator's KILL (from another session).
    kill: CancellationToken,
}

/// How a connection ended, for the log.
#[derive(Debug, thiserror::Error)]
enum ConnEnd {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("closed after a protocol error: {0}")]
    Protocol(String),
    #[error("no HELLO within the handshake timeout")]
    Handshake,
    #[error("closed for shutdown")]
    Shutdown,
    #[error("closed by an administrator (KILL)")]
    Killed,
}

/// What a killed client is told (PROTOCOL.md, "Administration").
const KILLED_MESSAGE: &str = "closed by an administrator";

impl Conn {
    async fn run(
        mut self,
        mut session: Session,
        shared: &Shared,
        handshake_deadline: tokio::time::Instant,
        shutdown: &CancellationToken,
    ) -> Result<(), ConnEnd> {
        loop {
            // Checked here as well as in the wait below: a busy reap or a client that
            // keeps sending may not reach the wait for a long time.
            if self.kill.is_cancelled() {
                return Err(self.killed().await);
            }
            if let Err(end) = self.process_input(&mut session, shared) {
                let _ = self.flush(shutdown).await;
                return Err(end);
            }
            if session.take_appended() {
                shared.notify.notify_waiters();
            }
            // Register interest before looking at the ring, so a packet appended between
            // the look and the wait still wakes us.
            let notified = shared.notify.notified();
            tokio::pin!(notified);
            // Only readers wait for packets; enabling takes the Notify's lock, which a
            // writer's every round trip should not pay.
            if session.wants_packets() {
                notified.as_mut().enable();
            }
            session.check_timeout(Instant::now(), &mut self.wbuf);
            let fill = session.fill_reap(&mut self.wbuf, shared.limits.output_buffer);
            self.flush(shutdown).await?;
            if fill == Fill::Sent {
                // Let other connections on this worker run between batches.
                tokio::task::yield_now().await;
                // More may be ready: pick up any CREDIT or STOP without waiting, then go on.
                self.make_room();
                match self.rd.try_read_buf(&mut self.rbuf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => self.grow_if_filled(n),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e.into()),
                }
                continue;
            }
            let deadline = session.reap_deadline().map(tokio::time::Instant::from_std);
            self.make_room();
            tokio::select! {
                _ = self.kill.cancelled() => return Err(self.killed().await),
                _ = shutdown.cancelled() => {
                    let msg = "orbserver is stopping; reconnect when it is back";
                    Frame { tag: 0, body: Body::Error { code: ErrorCode::ShuttingDown, message: msg } }.encode(&mut self.wbuf);
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.wr.write_all(&self.wbuf)).await;
                    return Err(ConnEnd::Shutdown);
                }
                r = self.rd.read_buf(&mut self.rbuf) => {
                    match r? {
                        0 => return Ok(()),
                        n => self.grow_if_filled(n),
                    }
                }
                _ = &mut notified, if session.wants_packets() => {}
                _ = tokio::time::sleep_until(deadline.unwrap_or(handshake_deadline)), if deadline.is_some() => {
                    session.end_reap(ReapEndReason::Timeout, &mut self.wbuf);
                }
                _ = tokio::time::sleep_until(handshake_deadline), if !session.hello_done() => {
                    shared.refused.handshake_timeouts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let msg = "no HELLO within the handshake timeout; a client must send HELLO as soon as it connects";
                    Frame { tag: 0, body: Body::Error { code: ErrorCode::BadState, message: msg } }.encode(&mut self.wbuf);
                    let _ = self.flush(shutdown).await;
                    return Err(ConnEnd::Handshake);
                }
            }
        }
    }

    /// Tells the client an administrator closed it, if the socket takes the frame within
    /// a second (a stalled client is not waited for), then ends the connection.
    async fn killed(&mut self) -> ConnEnd {
        Frame {
            tag: 0,
            body: Body::Error {
                code: ErrorCode::Killed,
                message: KILLED_MESSAGE,
            },
        }
        .encode(&mut self.wbuf);
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            self.wr.write_all(&self.wbuf),
        )
        .await;
        ConnEnd::Killed
    }

    fn make_room(&mut self) {
        self.rbuf.reserve(self.read_hint);
    }

    fn grow_if_filled(&mut self, n: usize) {
        if n >= self.read_hint {
            self.read_hint = (self.read_hint * 2).min(READ_BUF_MAX);
        }
    }

    /// Decodes and handles every whole frame in the read buffer.
    fn process_input(&mut self, session: &mut Session, shared: &Shared) -> Result<(), ConnEnd> {
        loop {
            match decode(&self.rbuf, self.max_frame) {
                Ok(Decoded::NeedMore { needed }) => {
                    if let Some(n) = needed {
                        self.rbuf.reserve(n.saturating_sub(self.rbuf.len()));
                    }
                    return Ok(());
                }
                Ok(Decoded::Frame(frame, len)) => {
                    let flow = session.handle(frame, &mut self.wbuf);
                    self.rbuf.advance(len);
                    if flow == Flow::Close {
                        return Err(ConnEnd::Protocol(
                            "the client broke the session rules".into(),
                        ));
                    }
                }
                Err(e) => {
                    let (code, msg) = if matches!(e, DecodeError::TooLarge { .. }) {
                        shared
                            .refused
                            .writes_too_large
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let msg = format!(
                            "{e}; keep each frame within max_packet ({} bytes) plus 64 KiB",
                            shared.limits.max_packet
                        );
                        (ErrorCode::TooLarge, msg)
                    } else {
                        (ErrorCode::Malformed, e.to_string())
                    };
                    // A frame read whole (unknown kind, bad body) is answered with its
                    // own tag; one refused by its length alone with tag 0.
                    let tag = frame_tag(&self.rbuf, self.max_frame).unwrap_or(0);
                    Frame {
                        tag,
                        body: Body::Error {
                            code,
                            message: &msg,
                        },
                    }
                    .encode(&mut self.wbuf);
                    return Err(ConnEnd::Protocol(msg));
                }
            }
        }
    }

    /// Writes the output buffer; gives up if the server shuts down meanwhile.
    async fn flush(&mut self, shutdown: &CancellationToken) -> Result<(), ConnEnd> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        tokio::select! {
            r = self.wr.write_all(&self.wbuf) => r?,
            _ = shutdown.cancelled() => return Err(ConnEnd::Shutdown),
            // The client is not taking its output: no ERROR can reach it; just close.
            _ = self.kill.cancelled() => return Err(ConnEnd::Killed),
        }
        self.wbuf.clear();
        Ok(())
    }
}
