//! The hub: what every connection shares, whatever protocol it speaks. The ring, the
//! client table, the access policy in force, admission (connect rules and client
//! limits), refusal counters and their log lines, the totals and the config reload. No
//! protocol owns it: the native port, the gateways and any later listener see the same
//! hub, so their rules, limits and counters cannot drift apart.
//!
//! - `admission`: the connect rules and client limits for a new connection
//! - `clients`: the client table behind CLIENTS and the per-address limit
//! - `policy`: the access rules in force (reloadable) and the refusal counters
//! - `reload`: re-reading the config file's access rules (SIGHUP and RELOAD)

mod admission;
pub mod clients;
pub mod policy;
pub mod reload;

pub use admission::admit;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use formats::Time;
use tokio::sync::Notify;

use crate::access::{AccessRules, Identity};
use crate::config::Limits;
use crate::ring::{RingStore, MAX_RECORD_SRCNAME};
use clients::ClientTable;
use policy::{AuthFailures, Policy, RefusalCounters};
use reload::ConfigSource;

/// Counters since the server started.
#[derive(Debug, Default)]
pub struct Totals {
    /// Packets put.
    pub packets_in: AtomicU64,
    /// Payload bytes put.
    pub bytes_in: AtomicU64,
    /// Packets sent to readers.
    pub packets_out: AtomicU64,
    /// Payload bytes sent to readers.
    pub bytes_out: AtomicU64,
    /// Gap events.
    pub gaps: AtomicU64,
    /// Packets lost to lapped readers.
    pub gap_packets: AtomicU64,
    /// Ring bytes lost to lapped readers.
    pub gap_bytes: AtomicU64,
}

/// State every connection shares.
pub struct Hub {
    /// The ring.
    pub ring: Arc<RingStore>,
    /// Woken after every append, so waiting readers never poll.
    pub notify: Notify,
    /// Connected clients.
    pub clients: Arc<ClientTable>,
    /// Counters.
    pub totals: Totals,
    /// Limits, with `max_packet` already capped by the ring.
    pub limits: Limits,
    /// Access rules in force.
    pub policy: Policy,
    /// Refusals by reason.
    pub refused: RefusalCounters,
    /// Failed authentications per address, for the rate limit.
    pub auth_failures: AuthFailures,
    /// When the server started.
    pub started: Time,
    /// The config file SIGHUP and RELOAD re-read, once [`Server::set_config_file`] named it.
    pub(crate) config_source: OnceLock<ConfigSource>,
    /// The TLS listeners, whose certificates a reload re-reads.
    pub(crate) tls: OnceLock<Vec<Arc<crate::conn::TlsListener>>>,
    /// Which addresses' failed TLS handshakes were logged lately.
    pub(crate) tls_log: crate::conn::HandshakeLog,
    pub(crate) samples: Mutex<VecDeque<(Instant, u64, u64)>>,
}

/// Credentials a client sent, for [`Hub::authenticate`].
#[derive(Clone, Copy)]
pub enum Credentials<'a> {
    /// A user name and password (`AUTH USERPASS`).
    UserPass {
        /// The user name.
        user: &'a str,
        /// The password.
        password: &'a str,
    },
    /// A JWT (`AUTH JWT`).
    Jwt(&'a str),
    /// An HTTP bearer credential: a configured token or a JWT.
    Bearer(&'a str),
}

/// Why [`Hub::authenticate`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRefused {
    /// The credentials are wrong (or name nobody the rules know).
    Failed,
    /// The address used up its failures; this attempt was not checked. Carries the
    /// time until the window ends.
    Limited(std::time::Duration),
}

impl AuthRefused {
    /// The reply text: ringserver's, and for a limited address, when to try again.
    pub fn message(&self) -> String {
        match self {
            AuthRefused::Failed => "Authentication failed, not allowed to connect".into(),
            AuthRefused::Limited(left) => format!(
                "Authentication failed, not allowed to connect: too many failed attempts from this address; try again in {} s",
                left.as_secs().max(1)
            ),
        }
    }
}

/// Seconds of history behind the packet and byte rates.
const RATE_WINDOW: usize = 10;

impl Hub {
    /// The hub of a server serving `ring` under `limits` and `access`; `max_packet` is
    /// capped to what the ring can hold.
    pub fn new(ring: RingStore, mut limits: Limits, access: AccessRules) -> Hub {
        limits.max_packet = limits
            .max_packet
            .min(ring.max_payload(MAX_RECORD_SRCNAME.min(formats::MAX_SRCNAME_LEN)));
        Hub {
            ring: Arc::new(ring),
            notify: Notify::new(),
            clients: Arc::new(ClientTable::default()),
            totals: Totals::default(),
            limits,
            policy: Policy::new(access),
            refused: RefusalCounters::default(),
            auth_failures: AuthFailures::default(),
            started: Time::now(),
            config_source: OnceLock::new(),
            tls: OnceLock::new(),
            tls_log: Default::default(),
            samples: Mutex::new(VecDeque::new()),
        }
    }

    /// Checks credentials a client sent (DataLink or SeedLink AUTH, an HTTP bearer
    /// token) under the rules in force, with the per-address limit on failures. Every
    /// outcome is logged with the peer and `protocol` ("DataLink: "), never with the
    /// secret; failures and limited attempts count as `auth_failures`.
    pub fn authenticate(
        &self,
        peer: std::net::SocketAddr,
        protocol: &str,
        cred: Credentials<'_>,
    ) -> Result<(Identity, String), AuthRefused> {
        let (_, rules) = self.policy.current();
        let limit = rules.auth_limit();
        let now = std::time::Instant::now();
        let ip = peer.ip();
        if let Some(left) = self.auth_failures.blocked(ip, limit, now) {
            policy::RefusalCounters::bump(&self.refused.auth_failures);
            tracing::debug!("{peer}: {protocol}refused an authentication unchecked: too many failures from this address");
            return Err(AuthRefused::Limited(left));
        }
        let checked = match cred {
            Credentials::UserPass { user, password } => rules.check_password(user, password),
            Credentials::Jwt(token) => rules.check_jwt(token),
            Credentials::Bearer(token) => rules.check_bearer(token),
        };
        match checked {
            Ok(id) => {
                self.auth_failures.succeeded(ip);
                let label = rules.label(&id);
                tracing::info!("{peer}: {protocol}authenticated as {label}");
                Ok((id, label))
            }
            Err(why) => {
                policy::RefusalCounters::bump(&self.refused.auth_failures);
                self.auth_failures.failed(ip, limit, now);
                tracing::warn!("{peer}: {protocol}authentication failed: {why}");
                Err(AuthRefused::Failed)
            }
        }
    }

    /// The config file reloads read, if the server has one.
    pub fn config_source(&self) -> Option<&ConfigSource> {
        self.config_source.get()
    }

    /// Packet and byte rates over the last ten seconds.
    pub fn rates(&self) -> (f64, f64) {
        let now = (
            Instant::now(),
            self.totals.packets_in.load(Relaxed),
            self.totals.bytes_in.load(Relaxed),
        );
        let oldest = self
            .samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .front()
            .copied();
        rates(oldest, now)
    }

    pub(crate) fn sample(&self) {
        let mut s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        s.push_back((
            Instant::now(),
            self.totals.packets_in.load(Relaxed),
            self.totals.bytes_in.load(Relaxed),
        ));
        while s.len() > RATE_WINDOW {
            s.pop_front();
        }
    }
}

/// Software name and version, as WELCOME and STAT report it.
pub fn server_name() -> String {
    format!("orbserver {}", env!("CARGO_PKG_VERSION"))
}

/// Packet and byte rates over the sampling window.
pub fn rates(oldest: Option<(Instant, u64, u64)>, now: (Instant, u64, u64)) -> (f64, f64) {
    let Some((t0, p0, b0)) = oldest else {
        return (0.0, 0.0);
    };
    let dt = now.0.duration_since(t0).as_secs_f64();
    if dt <= 0.0 {
        return (0.0, 0.0);
    }
    ((now.1 - p0) as f64 / dt, (now.2 - b0) as f64 / dt)
}
