//! The per-connection task, the same for every protocol: moves bytes between a
//! [`Transport`] and a [`Session`], and waits for input, packets, a deadline, a KILL or
//! shutdown. Output is batched: all replies to one read and up to
//! `limits.output_buffer` bytes of stream output go out in one write, and the task waits
//! for the transport before it prepares more, so that is the most output one client
//! holds (plus, over a WebSocket, the library's bounded write buffer).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::tls::{Stream, Tls};
use super::{Close, Farewell, Fill, Now, OutBuf, Protocol, Session};
use crate::hub::clients::Registration;
use crate::hub::Hub;

/// Initial read buffer room; it grows while reads fill it.
const READ_BUF: usize = 4 * 1024;
/// Largest read a busy connection grows to.
const READ_BUF_MAX: usize = 256 * 1024;
/// How long last words (a farewell, a refusal) may take to reach a client.
pub const LAST_WORDS: Duration = Duration::from_secs(1);

/// How the driver moves a session's bytes: a TCP socket ([`Tcp`]) or a WebSocket
/// (`conn::ws`). Input is a byte stream whatever the transport; output is written as
/// the session's buffer `O`, which a message transport splits at its messages.
pub trait Transport<O: OutBuf>: Send + 'static {
    /// Waits for input and appends it to `buf`; `Ok(0)` once the client has closed.
    /// Cancel safe: the driver drops it when something else happens first.
    fn read(&mut self, buf: &mut BytesMut) -> impl Future<Output = std::io::Result<usize>> + Send;

    /// Appends input that is ready now without waiting; `Ok(None)` if there is none,
    /// `Ok(Some(0))` if the client has closed.
    fn try_read(&mut self, buf: &mut BytesMut) -> std::io::Result<Option<usize>>;

    /// Writes everything in `out` (which it may leave empty or not: the driver clears
    /// it after).
    fn write(&mut self, out: &mut O) -> impl Future<Output = std::io::Result<()>> + Send;

    /// Ends the connection for `why`, after the session's last output was written:
    /// a graceful close for [`Close::Done`]; for an error, whatever the transport can
    /// tell the client.
    fn close(&mut self, why: &Close) -> impl Future<Output = ()> + Send;

    /// Ends the connection after the session's farewell for `why` was written (or
    /// could not be within [`LAST_WORDS`]).
    fn farewell(&mut self, why: Farewell) -> impl Future<Output = ()> + Send;
}

/// A TCP connection, the transport of the protocols' own ports.
pub struct Tcp {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
}

impl Tcp {
    /// The transport over `stream`.
    pub fn new(stream: TcpStream) -> Tcp {
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        Tcp { rd, wr }
    }
}

impl<O: OutBuf> Transport<O> for Tcp {
    async fn read(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        self.rd.read_buf(buf).await
    }

    fn try_read(&mut self, buf: &mut BytesMut) -> std::io::Result<Option<usize>> {
        match self.rd.try_read_buf(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn write(&mut self, out: &mut O) -> std::io::Result<()> {
        self.wr.write_all(out.bytes()).await
    }

    async fn close(&mut self, why: &Close) {
        if *why == Close::Done {
            let _ = tokio::time::timeout(LAST_WORDS, self.wr.shutdown()).await;
        }
    }

    async fn farewell(&mut self, _why: Farewell) {}
}

/// How a connection ended, for the log.
#[derive(Debug, thiserror::Error)]
enum End {
    #[error("closed")]
    Left,
    #[error("closed after a complete exchange")]
    Done,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("closed: {0}")]
    Protocol(String),
    #[error("refused: no request within the handshake timeout")]
    Handshake,
    #[error("closed for shutdown")]
    Shutdown,
    #[error("closed by an administrator (KILL)")]
    Killed,
}

impl From<Close> for End {
    fn from(c: Close) -> End {
        match c {
            Close::Done => End::Done,
            Close::Error(why) => End::Protocol(why),
        }
    }
}

/// Serves one admitted connection (TCP, or TLS over it) with protocol `P` until the
/// client leaves, breaks the protocol, is killed, or the server shuts down. Errors end
/// only this connection.
pub async fn serve<P: Protocol>(
    stream: Stream,
    peer: SocketAddr,
    hub: Arc<Hub>,
    reg: Registration,
    shutdown: CancellationToken,
) {
    match stream {
        Stream::Plain(s) => serve_on::<P, _>(Tcp::new(s), peer, hub, reg, shutdown, P::NAME).await,
        Stream::Tls(s) => {
            let name = format!("{} over TLS", P::NAME);
            serve_on::<P, _>(Tls::new(s), peer, hub, reg, shutdown, &name).await
        }
    }
}

/// Serves one admitted connection with protocol `P` over `transport`; `name` names the
/// protocol and transport in the log.
pub async fn serve_on<P: Protocol, T: Transport<<P::Session as Session>::Out>>(
    transport: T,
    peer: SocketAddr,
    hub: Arc<Hub>,
    reg: Registration,
    shutdown: CancellationToken,
    name: &str,
) {
    let handshake_deadline = tokio::time::Instant::now() + hub.limits.handshake_timeout;
    let kill = reg.entry.kill.clone();
    let mut conn = Driver {
        io: transport,
        rbuf: BytesMut::new(),
        read_hint: READ_BUF,
        wbuf: <P::Session as Session>::Out::default(),
        hub: Arc::clone(&hub),
        kill,
        shutdown,
    };
    let mut session = P::session(hub, reg);
    let end = conn.run(&mut session, handshake_deadline).await;
    session.finish();
    match end {
        End::Left | End::Done => tracing::debug!("{peer}: {name}: {end}"),
        End::Handshake | End::Killed => tracing::warn!("{peer}: {name}: {end}"),
        _ => tracing::info!("{peer}: {name}: {end}"),
    }
}

struct Driver<T, O> {
    io: T,
    rbuf: BytesMut,
    /// How much room to offer the next read: small for idle connections (memory), grown
    /// while reads fill it (one syscall per many requests).
    read_hint: usize,
    wbuf: O,
    hub: Arc<Hub>,
    /// Cancelled by an administrator's KILL (from another session).
    kill: CancellationToken,
    shutdown: CancellationToken,
}

impl<O: OutBuf, T: Transport<O>> Driver<T, O> {
    async fn run<S: Session<Out = O>>(
        &mut self,
        session: &mut S,
        handshake_deadline: tokio::time::Instant,
    ) -> End {
        match self.serve(session, handshake_deadline).await {
            Ok(end) | Err(end) => end,
        }
    }

    /// The loop; `Err` carries ends that skip the common tail.
    async fn serve<S: Session<Out = O>>(
        &mut self,
        session: &mut S,
        handshake_deadline: tokio::time::Instant,
    ) -> Result<End, End> {
        loop {
            // Checked here as well as in the wait below: a busy stream or a client that
            // keeps sending may not reach the wait for a long time.
            if self.kill.is_cancelled() {
                return Ok(self.farewell(session, Farewell::Killed).await);
            }
            if let Some(close) = self.process_input(session).await? {
                let _ = self.flush().await;
                return Ok(self.close(close).await);
            }
            if session.take_appended() {
                self.hub.notify.notify_waiters();
            }
            // Register interest before looking at the ring, so a packet appended between
            // the look and the wait still wakes us.
            let hub = Arc::clone(&self.hub);
            let notified = hub.notify.notified();
            tokio::pin!(notified);
            // Only readers wait for packets; enabling takes the Notify's lock, which a
            // writer's every round trip should not pay.
            if session.wants_packets() {
                notified.as_mut().enable();
            }
            let fill = session.fill(Now::read(), &mut self.wbuf, self.hub.limits.output_buffer);
            self.flush().await?;
            match fill {
                Fill::Close(close) => return Ok(self.close(close).await),
                Fill::Sent => {
                    // Let other connections on this worker run between batches.
                    tokio::task::yield_now().await;
                    // More may be ready: pick up any request (CREDIT, STOP) without
                    // waiting, then go on.
                    self.make_room();
                    match self.io.try_read(&mut self.rbuf)? {
                        Some(0) => return Ok(End::Left),
                        Some(n) => self.grow_if_filled(n),
                        None => {}
                    }
                    continue;
                }
                Fill::Waiting => {}
            }
            let deadline = session.deadline().map(tokio::time::Instant::from_std);
            self.make_room();
            tokio::select! {
                _ = self.kill.cancelled() => return Ok(self.farewell(session, Farewell::Killed).await),
                _ = self.shutdown.cancelled() => return Ok(self.farewell(session, Farewell::Shutdown).await),
                r = self.io.read(&mut self.rbuf) => {
                    match r? {
                        0 => return Ok(End::Left),
                        n => self.grow_if_filled(n),
                    }
                }
                _ = &mut notified, if session.wants_packets() => {}
                // The next turn's `fill` sees the deadline passed.
                _ = tokio::time::sleep_until(deadline.unwrap_or(handshake_deadline)), if deadline.is_some() => {}
                _ = tokio::time::sleep_until(handshake_deadline), if !session.handshake_done() => {
                    self.hub.refused.handshake_timeouts.fetch_add(1, Relaxed);
                    return Ok(self.farewell(session, Farewell::HandshakeTimeout).await);
                }
            }
        }
    }

    /// Hands the buffered input to the session, running the actions it returns (each
    /// before the session reads on, so replies keep their order).
    async fn process_input<S: Session<Out = O>>(
        &mut self,
        session: &mut S,
    ) -> Result<Option<Close>, End> {
        loop {
            let got = session.receive(&self.rbuf, Now::read(), &mut self.wbuf);
            self.rbuf.advance(got.consumed);
            if got.close.is_some() {
                return Ok(got.close);
            }
            let Some(action) = session.take_action() else {
                return Ok(None);
            };
            // Replies already made need not wait for the disk.
            self.flush().await?;
            let hub = Arc::clone(&self.hub);
            let outcome = tokio::task::spawn_blocking(move || action.run(&hub))
                .await
                .map_err(|e| End::Protocol(format!("a blocking task failed: {e}")))?;
            session.complete(outcome, Now::read(), &mut self.wbuf);
        }
    }

    /// Ends a connection whose session asked to close (its output already written).
    async fn close(&mut self, close: Close) -> End {
        self.io.close(&close).await;
        close.into()
    }

    /// Writes the session's farewell if the socket takes it within a second (a stalled
    /// client is not waited for), and returns how the connection ended.
    async fn farewell<S: Session<Out = O>>(&mut self, session: &mut S, why: Farewell) -> End {
        session.farewell(why, &mut self.wbuf);
        let written = if self.wbuf.is_empty() {
            true
        } else {
            tokio::time::timeout(LAST_WORDS, self.io.write(&mut self.wbuf))
                .await
                .is_ok_and(|r| r.is_ok())
        };
        if written {
            let _ = tokio::time::timeout(LAST_WORDS, self.io.farewell(why)).await;
        }
        match why {
            Farewell::Shutdown => End::Shutdown,
            Farewell::Killed => End::Killed,
            Farewell::HandshakeTimeout => End::Handshake,
        }
    }

    fn make_room(&mut self) {
        self.rbuf.reserve(self.read_hint);
    }

    fn grow_if_filled(&mut self, n: usize) {
        if n >= self.read_hint {
            self.read_hint = (self.read_hint * 2).min(READ_BUF_MAX);
        }
    }

    /// Writes the output buffer; gives up if the server shuts down or the connection is
    /// killed meanwhile (the client is not taking its output, so no farewell can reach
    /// it).
    async fn flush(&mut self) -> Result<(), End> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        tokio::select! {
            r = self.io.write(&mut self.wbuf) => r?,
            _ = self.shutdown.cancelled() => return Err(End::Shutdown),
            _ = self.kill.cancelled() => return Err(End::Killed),
        }
        self.wbuf.clear();
        Ok(())
    }
}
