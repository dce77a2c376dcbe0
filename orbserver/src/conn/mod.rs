//! The connection layer: one accept loop and one connection driver for every protocol.
//!
//! A protocol is a codec in `formats` plus a [`Session`]: a socket-free state machine
//! that takes input bytes and the time, and writes its replies and stream output into a
//! buffer. The driver ([`serve`]) owns the socket and does everything else, the same way
//! for every protocol: admission and the polite refusal ([`accept_loop`]), the handshake
//! deadline, reading, handing input to the session, writing at most one output buffer's
//! worth before waiting for the socket, waking streaming readers when packets arrive,
//! timers, KILL, and shutdown. Work that would block a runtime worker (an msync for a
//! durable put, reading the config file on RELOAD) is returned by the session as an
//! [`Action`] and run by the driver off the runtime's workers.
//!
//! Adding a protocol adds a session and a [`Protocol`] impl, never a loop.
//!
//! The driver moves bytes over a [`Transport`]: a TCP socket, or a WebSocket on the
//! HTTP port (`crate::http::ws`), where each of a session's messages (whole replies and packets,
//! marked in a [`Messages`] buffer by the session that wrote them) travels as one
//! binary WebSocket message.

mod accept;
mod driver;
mod readahead;
#[cfg(test)]
pub mod testing;
mod tls;

pub use accept::{accept_each, accept_loop};
pub use driver::{serve, serve_on, Tcp, Transport, LAST_WORDS};
pub use tls::{
    handshake, load_certs, provider, server_config, HandshakeLog, Stream, Tls, TlsError,
    TlsListener, VERSIONS,
};

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use formats::Time;

use crate::hub::clients::Registration;
use crate::hub::reload::{self, ReloadError};
use crate::hub::Hub;
use crate::ring::{PendingSync, RingError};

/// A listener's protocol: how to start a session for an admitted connection and how to
/// tell a refused one why.
pub trait Protocol: Send + Sync + 'static {
    /// The protocol's name, for log lines.
    const NAME: &'static str;
    /// The session type serving one connection.
    type Session: Session;

    /// Bytes that tell a client its connection was refused (`msg` says why), in the
    /// protocol's own terms; empty if the protocol cannot say it unasked.
    fn refusal(msg: &str) -> Vec<u8>;

    /// A session for a newly admitted connection.
    fn session(hub: Arc<Hub>, reg: Registration) -> Self::Session;
}

/// One connection's protocol state, without sockets or clocks of its own.
pub trait Session: Send + 'static {
    /// The buffer replies are written into.
    type Out: OutBuf;

    /// Handles every whole request at the start of `input`, writing replies to `out`.
    /// Stops early after a request that returned an [`Action`] (so replies stay in
    /// order) or that ends the connection.
    fn receive(&mut self, input: &[u8], now: Now, out: &mut Self::Out) -> Received;

    /// Runs the session's timers and writes stream output (packets for a reader) into
    /// `out`, up to about `budget` bytes.
    fn fill(&mut self, now: Now, out: &mut Self::Out, budget: usize) -> Fill;

    /// True while a stream would send packets as soon as they are appended: the driver
    /// then wakes the session on every append.
    fn wants_packets(&self) -> bool;

    /// When [`Session::fill`] should run again even if nothing else happens.
    fn deadline(&self) -> Option<Instant>;

    /// True (once) if the session appended packets since the last call.
    fn take_appended(&mut self) -> bool;

    /// True once the client made its first request: the handshake deadline is over.
    fn handshake_done(&self) -> bool;

    /// Blocking work the last request needs before its reply, if any.
    fn take_action(&mut self) -> Option<Action>;

    /// The result of the session's last [`Action`]: writes the reply it was waiting for.
    fn complete(&mut self, outcome: Outcome, now: Now, out: &mut Self::Out);

    /// The last words before the driver closes the connection for `why`.
    fn farewell(&mut self, why: Farewell, out: &mut Self::Out);

    /// Called once when the connection has ended, whatever ended it.
    fn finish(&mut self) {}
}

/// What [`Session::receive`] did with its input.
#[derive(Debug, Default)]
pub struct Received {
    /// Bytes of input used; the rest is offered again with more input.
    pub consumed: usize,
    /// Set when the connection must end once `out` is written.
    pub close: Option<Close>,
}

/// Why a session ends its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Close {
    /// The exchange is complete (a goodbye, a finished transfer): the server closes its
    /// side after writing what is buffered.
    Done,
    /// The client broke the protocol, or lost its rights; the reason is logged.
    Error(String),
}

/// What [`Session::fill`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fill {
    /// Output was written and more may be ready: call again soon.
    Sent,
    /// Nothing to send now: wait for input, packets or the deadline.
    Waiting,
    /// End the connection once `out` is written.
    Close(Close),
}

/// Why the driver is closing a connection, for [`Session::farewell`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Farewell {
    /// The server is stopping.
    Shutdown,
    /// An administrator closed the connection (KILL).
    Killed,
    /// The client sent nothing usable within the handshake timeout.
    HandshakeTimeout,
}

/// Work a request needs that may block: the driver runs it on tokio's blocking pool,
/// so no runtime worker (and no other connection on it) waits for a disk.
#[derive(Debug)]
pub enum Action {
    /// Make appended packets durable (a durable PUT, or `flush = always`).
    Sync(PendingSync),
    /// Re-read the config file's access rules; `trigger` names who asked, for the log.
    Reload {
        /// `RELOAD from ADDR`.
        trigger: String,
    },
}

/// The result of an [`Action`].
#[derive(Debug)]
pub enum Outcome {
    /// The sync's result.
    Synced(Result<(), RingError>),
    /// The reload's one-line summary, or why it changed nothing.
    Reloaded(Result<String, ReloadError>),
}

impl Action {
    /// Does the work. Blocks: call it off the runtime's worker threads.
    pub fn run(self, hub: &Hub) -> Outcome {
        match self {
            Action::Sync(pending) => Outcome::Synced(hub.ring.complete_sync(pending)),
            Action::Reload { trigger } => Outcome::Reloaded(reload::reload(hub, &trigger)),
        }
    }
}

/// The time, read by the driver and passed to sessions, so that their timing rules can
/// be tested with any clock.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Monotonic time, for timeouts.
    pub mono: Instant,
    /// Wall-clock time, for what is reported to clients.
    pub wall: Time,
}

impl Now {
    /// The current time.
    pub fn read() -> Now {
        Now {
            mono: Instant::now(),
            wall: Time::now(),
        }
    }
}

/// An output buffer the driver can write out and reuse.
pub trait OutBuf: Default + Send + 'static {
    /// The bytes waiting to be written.
    fn bytes(&self) -> &[u8];
    /// Empties the buffer, keeping its allocation.
    fn clear(&mut self);
    /// Bytes waiting.
    fn len(&self) -> usize {
        self.bytes().len()
    }
    /// True when nothing waits.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl OutBuf for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn clear(&mut self) {
        Vec::clear(self)
    }
}

impl OutBuf for BytesMut {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn clear(&mut self) {
        BytesMut::clear(self)
    }
}

/// An output buffer that knows where each protocol message ends: sessions whose
/// messages must stay whole on a message transport (DataLink and SeedLink over
/// WebSocket, one protocol message per WebSocket message) write into it. Bytes go in
/// only as whole messages ([`Messages::push`], [`Messages::message`]), so no message
/// can be left open or split; over TCP the boundaries are simply ignored.
#[derive(Debug, Default)]
pub struct Messages {
    buf: Vec<u8>,
    /// The end offset in `buf` of every message, ascending.
    ends: Vec<usize>,
}

impl Messages {
    /// Appends one message.
    pub fn push(&mut self, message: &[u8]) {
        self.message(|b| b.extend_from_slice(message));
    }

    /// Appends one message written by `write` into the buffer's tail; writes nothing if
    /// `write` appends nothing.
    pub fn message<R>(&mut self, write: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let r = write(&mut self.buf);
        if self.ends.last().copied().unwrap_or(0) < self.buf.len() {
            self.ends.push(self.buf.len());
        }
        r
    }

    /// The messages waiting, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(s, e)| &self.buf[s..e])
    }

    /// Number of messages waiting.
    pub fn count(&self) -> usize {
        self.ends.len()
    }

    /// Takes the waiting bytes and the end offsets of their messages, leaving the
    /// buffer empty, for a transport that hands the bytes on without copying them.
    /// The buffer gets a fresh allocation of the same capacity, so the next batch does
    /// not grow it again step by step.
    pub fn take(&mut self) -> (Vec<u8>, Vec<usize>) {
        let (cap, ends_cap) = (self.buf.capacity(), self.ends.capacity());
        (
            std::mem::replace(&mut self.buf, Vec::with_capacity(cap)),
            std::mem::replace(&mut self.ends, Vec::with_capacity(ends_cap)),
        )
    }
}

impl OutBuf for Messages {
    fn bytes(&self) -> &[u8] {
        &self.buf
    }
    fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }
}

#[cfg(test)]
mod messages_tests {
    use super::{Messages, OutBuf};

    #[test]
    fn messages_keep_their_boundaries() {
        let mut m = Messages::default();
        m.push(b"DL\x02OK");
        m.message(|b| {
            b.extend_from_slice(b"SL000001");
            b.extend_from_slice(&[7u8; 512]);
        });
        m.push(b"END");
        let got: Vec<&[u8]> = m.iter().collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], b"DL\x02OK");
        assert_eq!(got[1].len(), 520);
        assert_eq!(got[2], b"END");
        assert_eq!(m.bytes().len(), 5 + 520 + 3);
    }

    #[test]
    fn an_empty_write_makes_no_message() {
        let mut m = Messages::default();
        m.message(|_| ());
        m.push(b"");
        assert_eq!(m.count(), 0);
        m.push(b"x");
        m.message(|_| ());
        assert_eq!(m.count(), 1);
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![&b"x"[..]]);
    }

    #[test]
    fn clear_and_take_empty_the_buffer() {
        let mut m = Messages::default();
        m.push(b"ab");
        m.push(b"cde");
        let (bytes, ends) = m.take();
        assert_eq!(bytes, b"abcde");
        assert_eq!(ends, vec![2, 5]);
        assert!(m.is_empty());
        assert_eq!(m.count(), 0);
        m.push(b"f");
        m.clear();
        assert!(m.is_empty() && m.count() == 0);
    }
}
