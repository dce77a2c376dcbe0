//! The per-connection task: moves bytes between the socket and a [`DlSession`]. No
//! protocol logic lives here: decode commands, hand them over, write what comes back,
//! and wait for input, packets, the handshake deadline, a KILL or shutdown. As on the
//! native port, at most `limits.output_buffer` bytes of PACKETs are prepared before the
//! socket has taken them.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use formats::datalink::{decode_command, DecodeError, Decoded};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::session::{error, DlSession, Fill};
use crate::server::clients::Registration;
use crate::server::Shared;

/// Bytes a WRITE may declare beyond the largest packet and still get an ERROR with the
/// connection kept: anything larger cannot be skipped cheaply and closes it.
const WRITE_SLACK: usize = 64 * 1024;
/// Initial read buffer; it grows to the largest command seen.
const READ_BUF: usize = 4 * 1024;

/// How a connection ended, for the log.
#[derive(Debug, thiserror::Error)]
enum ConnEnd {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("closed after a protocol error: {0}")]
    Protocol(String),
    #[error("no DataLink command within the handshake timeout")]
    Handshake,
    #[error("closed for shutdown")]
    Shutdown,
    #[error("closed by an administrator (KILL)")]
    Killed,
}

/// Serves one DataLink connection until the client leaves, breaks the framing, is
/// killed, or the server shuts down. Errors end only this connection.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    reg: Registration,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let kill = reg.entry.kill.clone();
    let mut conn = Conn {
        rd,
        wr,
        rbuf: BytesMut::with_capacity(READ_BUF),
        wbuf: Vec::new(),
        kill,
        started: false,
    };
    let session = DlSession::new(Arc::clone(&shared), reg);
    match conn.run(session, &shared, &shutdown).await {
        Ok(()) => tracing::debug!("{peer}: DataLink closed"),
        Err(e @ (ConnEnd::Handshake | ConnEnd::Killed)) => {
            tracing::warn!("{peer}: DataLink: {e}")
        }
        Err(e) => tracing::info!("{peer}: DataLink: {e}"),
    }
}

struct Conn {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    kill: CancellationToken,
    /// A whole command (good or bad) has arrived: the handshake deadline is over.
    started: bool,
}

impl Conn {
    async fn run(
        &mut self,
        mut session: DlSession,
        shared: &Shared,
        shutdown: &CancellationToken,
    ) -> Result<(), ConnEnd> {
        let deadline = tokio::time::Instant::now() + shared.limits.handshake_timeout;
        let max_payload = session.packet_size() + WRITE_SLACK;
        loop {
            if self.kill.is_cancelled() {
                return Err(self.killed().await);
            }
            if let Err(end) = self.process_input(&mut session, shared, max_payload) {
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
            if session.streaming() {
                notified.as_mut().enable();
            }
            let fill = session.fill(&mut self.wbuf, shared.limits.output_buffer);
            self.flush(shutdown).await?;
            if fill == Fill::Sent {
                tokio::task::yield_now().await;
                // Pick up an ENDSTREAM or other command without waiting, then go on.
                self.rbuf.reserve(READ_BUF);
                match self.rd.try_read_buf(&mut self.rbuf) {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e.into()),
                }
                continue;
            }
            self.rbuf.reserve(READ_BUF);
            tokio::select! {
                _ = self.kill.cancelled() => return Err(self.killed().await),
                _ = shutdown.cancelled() => {
                    error(&mut self.wbuf, "orbserver is stopping; reconnect when it is back");
                    self.last_words().await;
                    return Err(ConnEnd::Shutdown);
                }
                r = self.rd.read_buf(&mut self.rbuf) => {
                    if r? == 0 {
                        return Ok(());
                    }
                }
                _ = &mut notified, if session.streaming() => {}
                _ = tokio::time::sleep_until(deadline), if !self.started => {
                    shared.refused.handshake_timeouts.fetch_add(1, Relaxed);
                    error(&mut self.wbuf, "no DataLink command within the handshake timeout; send ID as soon as you connect");
                    self.last_words().await;
                    return Err(ConnEnd::Handshake);
                }
            }
        }
    }

    /// Decodes and handles every whole command in the read buffer.
    fn process_input(
        &mut self,
        session: &mut DlSession,
        shared: &Shared,
        max_payload: usize,
    ) -> Result<(), ConnEnd> {
        loop {
            match decode_command(&self.rbuf, max_payload) {
                Ok(Decoded::NeedMore) => return Ok(()),
                Ok(Decoded::Done(cmd, len)) => {
                    self.started = true;
                    session.handle(cmd, &mut self.wbuf);
                    self.rbuf.advance(len);
                }
                Err(e) => {
                    self.started = true;
                    if let DecodeError::TooLarge { .. } = e {
                        shared.refused.writes_too_large.fetch_add(1, Relaxed);
                    }
                    match e.skip() {
                        // The framing holds: say what was wrong and go on.
                        Some(len) => {
                            error(&mut self.wbuf, &e.to_string());
                            self.rbuf.advance(len);
                        }
                        None => {
                            let msg = format!("{e}; closing the connection");
                            error(&mut self.wbuf, &msg);
                            return Err(ConnEnd::Protocol(e.to_string()));
                        }
                    }
                }
            }
        }
    }

    /// Sends what is buffered if the socket takes it within a second.
    async fn last_words(&mut self) {
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            self.wr.write_all(&self.wbuf),
        )
        .await;
    }

    async fn killed(&mut self) -> ConnEnd {
        error(&mut self.wbuf, "closed by an administrator");
        self.last_words().await;
        ConnEnd::Killed
    }

    async fn flush(&mut self, shutdown: &CancellationToken) -> Result<(), ConnEnd> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        tokio::select! {
            r = self.wr.write_all(&self.wbuf) => r?,
            _ = shutdown.cancelled() => return Err(ConnEnd::Shutdown),
            _ = self.kill.cancelled() => return Err(ConnEnd::Killed),
        }
        self.wbuf.clear();
        Ok(())
    }
}
