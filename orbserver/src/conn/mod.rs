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

mod accept;
mod driver;
#[cfg(test)]
pub mod testing;

pub use accept::{accept_each, accept_loop};
pub use driver::serve;

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
