//! A hub on a small temporary ring and a clock the test moves by hand, for unit tests
//! of sessions: timing rules are driven with [`Clock::advance`], never with sleeps.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use formats::Time;

use super::{Now, Protocol};
use crate::access::AccessRules;
use crate::config::Limits;
use crate::hub::Hub;
use crate::ring::{FlushPolicy, RingOptions, RingStore};

/// A hub serving a 1 MiB ring in a temporary directory.
pub struct TestHub {
    /// The hub.
    pub hub: Arc<Hub>,
    _dir: tempfile::TempDir,
}

impl TestHub {
    /// A hub whose ring flushes by `flush`.
    pub fn new(flush: FlushPolicy) -> TestHub {
        let dir = tempfile::tempdir().expect("temp dir");
        let ring = RingStore::open(
            dir.path(),
            &RingOptions {
                size: Some(1 << 20),
                flush,
            },
        )
        .expect("ring");
        let hub = Arc::new(Hub::new(ring, Limits::default(), AccessRules::default()));
        TestHub { hub, _dir: dir }
    }

    /// A session of protocol `P` for a client on the loopback address.
    pub fn session<P: Protocol>(&self) -> P::Session {
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("address");
        let reg = self
            .hub
            .clients
            .register(peer, 100, 100)
            .expect("registration");
        P::session(Arc::clone(&self.hub), reg)
    }
}

/// A clock that moves only when told.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    now: Now,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}

impl Clock {
    /// A clock at an arbitrary fixed point (wall time 2026-01-01T00:00:00Z).
    pub fn new() -> Clock {
        Clock {
            now: Now {
                mono: Instant::now(),
                wall: Time::from_micros(1_767_225_600_000_000),
            },
        }
    }

    /// The time now.
    pub fn now(&self) -> Now {
        self.now
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&mut self, d: Duration) {
        self.now.mono += d;
        self.now.wall = Time::from_micros(self.now.wall.as_micros() + d.as_micros() as i64);
    }
}
