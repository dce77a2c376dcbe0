//! The access rules in force, replaceable while the server runs (SIGHUP), and the
//! refusal counters STAT reports. Sessions cache the rules and look at the generation
//! number, one relaxed load, before each request that needs a right; only after a
//! reload do they take the lock and re-decide (docs/SECURITY.md, "Reloading").

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use formats::proto::info::Refusals;

use crate::access::{AccessRules, AuthLimit};

/// Most addresses the failure table remembers; past it, windows that have ended are
/// dropped, and if none has, the oldest, so a flood of addresses cannot grow it.
const MAX_TRACKED: usize = 4096;

/// Failed authentications per address, for the limit `access.auth_fail_limit` sets
/// (docs/SECURITY.md, "Failed attempts"). It outlives reloads: a reload must not give a
/// guesser a fresh allowance.
#[derive(Debug, Default)]
pub struct AuthFailures {
    by_addr: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl AuthFailures {
    /// `Some(time left)` if `ip` used up its failures in the current window: the attempt
    /// must be refused without checking its credentials.
    pub fn blocked(&self, ip: IpAddr, limit: AuthLimit, now: Instant) -> Option<Duration> {
        if limit.failures == 0 {
            return None;
        }
        let map = self.by_addr.lock().unwrap_or_else(|p| p.into_inner());
        let (n, since) = *map.get(&ip.to_canonical())?;
        let end = since + limit.window;
        (n >= limit.failures && now < end).then(|| end - now)
    }

    /// Counts a failed attempt from `ip`.
    pub fn failed(&self, ip: IpAddr, limit: AuthLimit, now: Instant) {
        let mut map = self.by_addr.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (_, since)| now < *since + limit.window);
            if map.len() >= MAX_TRACKED {
                if let Some(oldest) = map.iter().min_by_key(|(_, (_, s))| *s).map(|(a, _)| *a) {
                    map.remove(&oldest);
                }
            }
        }
        let e = map.entry(ip.to_canonical()).or_insert((0, now));
        if now >= e.1 + limit.window {
            *e = (0, now);
        }
        e.0 += 1;
    }

    /// Forgets `ip`'s failures after it authenticated.
    pub fn succeeded(&self, ip: IpAddr) {
        let mut map = self.by_addr.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&ip.to_canonical());
    }
}

/// The rules in force and their generation.
#[derive(Debug)]
pub struct Policy {
    rules: RwLock<Arc<AccessRules>>,
    generation: AtomicU64,
}

impl Policy {
    /// Rules to start with.
    pub fn new(rules: AccessRules) -> Policy {
        Policy {
            rules: RwLock::new(Arc::new(rules)),
            generation: AtomicU64::new(0),
        }
    }

    /// The rules in force and their generation.
    pub fn current(&self) -> (u64, Arc<AccessRules>) {
        // Read the generation under the lock so that the pair is consistent.
        let r = self.rules.read().unwrap_or_else(|p| p.into_inner());
        (self.generation.load(Relaxed), Arc::clone(&r))
    }

    /// The generation number; it changes with every [`Policy::replace`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }

    /// Puts new rules in force for new connections and for later requests of existing
    /// ones.
    pub fn replace(&self, rules: AccessRules) {
        let mut r = self.rules.write().unwrap_or_else(|p| p.into_inner());
        *r = Arc::new(rules);
        self.generation.fetch_add(1, Relaxed);
    }
}

/// Refusals since start, by reason; [`Refusals`] is their STAT form.
#[derive(Debug, Default)]
pub struct RefusalCounters {
    /// Connections the `connect` rules refused.
    pub connects_denied: AtomicU64,
    /// Connections over the client limits.
    pub connects_limit: AtomicU64,
    /// No HELLO in time.
    pub handshake_timeouts: AtomicU64,
    /// Failed authentications: unknown tokens, wrong passwords, bad JWTs, and attempts
    /// refused by the per-address limit.
    pub auth_failures: AtomicU64,
    /// PUTs from sessions that may not write.
    pub writes_not_allowed: AtomicU64,
    /// PUTs outside the token's srcnames.
    pub writes_foreign_srcname: AtomicU64,
    /// Oversized packets and frames.
    pub writes_too_large: AtomicU64,
    /// Read requests from sessions that may not read.
    pub reads_not_allowed: AtomicU64,
    /// Admin requests (CLIENTS, KILL, RELOAD) from sessions without admin access.
    pub admin_not_allowed: AtomicU64,
    /// Failed TLS handshakes.
    pub tls_handshakes: AtomicU64,
}

impl RefusalCounters {
    /// Adds one.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// The STAT form.
    pub fn snapshot(&self) -> Refusals {
        Refusals {
            connects_denied: self.connects_denied.load(Relaxed),
            connects_limit: self.connects_limit.load(Relaxed),
            handshake_timeouts: self.handshake_timeouts.load(Relaxed),
            auth_failures: self.auth_failures.load(Relaxed),
            writes_not_allowed: self.writes_not_allowed.load(Relaxed),
            writes_foreign_srcname: self.writes_foreign_srcname.load(Relaxed),
            writes_too_large: self.writes_too_large.load(Relaxed),
            reads_not_allowed: self.reads_not_allowed.load(Relaxed),
            admin_not_allowed: self.admin_not_allowed.load(Relaxed),
            tls_handshakes: self.tls_handshakes.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_bumps_the_generation_and_swaps_the_rules() {
        let p = Policy::new(AccessRules::default());
        let (g0, r0) = p.current();
        let ip = "127.0.0.1".parse().unwrap();
        assert!(r0.grant(ip, None).write.any());
        let f: crate::access::AccessFile = toml::from_str("write = []").unwrap();
        p.replace(AccessRules::from_file(&f).unwrap());
        let (g1, r1) = p.current();
        assert_ne!(g0, g1);
        assert_eq!(p.generation(), g1);
        assert!(!r1.grant(ip, None).write.any());
        // A session holding the old rules keeps them until it looks again.
        assert!(r0.grant(ip, None).write.any());
    }
}

/// Why a request was refused, as far as counting and logging go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A write from a client that may not write.
    WriteNotAllowed,
    /// A write outside the token's srcnames.
    ForeignSrcname,
    /// An oversized packet or frame.
    TooLarge,
    /// A read from a client that may not read.
    ReadNotAllowed,
    /// An admin request from a client without admin access.
    AdminNotAllowed,
}

impl Refusal {
    fn counter(self, counters: &RefusalCounters) -> &AtomicU64 {
        match self {
            Refusal::WriteNotAllowed => &counters.writes_not_allowed,
            Refusal::ForeignSrcname => &counters.writes_foreign_srcname,
            Refusal::TooLarge => &counters.writes_too_large,
            Refusal::ReadNotAllowed => &counters.reads_not_allowed,
            Refusal::AdminNotAllowed => &counters.admin_not_allowed,
        }
    }
}

/// The refusals one connection has logged. Every refusal is counted, but only the
/// first of each kind is logged, so a misconfigured station retrying all day cannot
/// flood the log.
#[derive(Debug, Default)]
pub struct RefusalLog {
    logged: u8,
}

impl RefusalLog {
    /// Counts a refusal of `kind` and logs it, with the peer's address and `what` was
    /// refused, if it is the first of its kind on this connection. `protocol` names the
    /// port's protocol in the log line ("" for the native one).
    pub fn refuse(
        &mut self,
        counters: &RefusalCounters,
        kind: Refusal,
        peer: SocketAddr,
        protocol: &str,
        what: &str,
    ) {
        RefusalCounters::bump(kind.counter(counters));
        let bit = 1u8 << (kind as u8);
        if self.logged & bit == 0 {
            self.logged |= bit;
            tracing::warn!(
                "{peer}: {protocol}refused {what} (further refusals of this kind for this client are only counted)"
            );
        }
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_failures_until_the_window_ends() {
        let f = AuthFailures::default();
        let limit = AuthLimit {
            failures: 3,
            window: Duration::from_secs(60),
        };
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(f.blocked(a, limit, t0), None, "{i}");
            f.failed(a, limit, t0);
        }
        let left = f.blocked(a, limit, t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(left, Duration::from_secs(50));
        assert_eq!(
            f.blocked(b, limit, t0),
            None,
            "another address is not affected"
        );
        assert_eq!(f.blocked(a, limit, t0 + Duration::from_secs(60)), None);
        // A new window starts from the next failure.
        f.failed(a, limit, t0 + Duration::from_secs(61));
        assert_eq!(f.blocked(a, limit, t0 + Duration::from_secs(61)), None);
        // Success forgets; limit 0 turns it off.
        f.succeeded(a);
        assert!(f.by_addr.lock().unwrap().is_empty());
        let off = AuthLimit {
            failures: 0,
            ..limit
        };
        for _ in 0..10 {
            f.failed(b, off, t0);
        }
        assert_eq!(f.blocked(b, off, t0), None);
    }

    #[test]
    fn every_refusal_is_counted_under_its_own_kind_and_logged_once() {
        let counters = RefusalCounters::default();
        let mut log = RefusalLog::default();
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for _ in 0..3 {
            log.refuse(&counters, Refusal::ReadNotAllowed, peer, "", "a read");
        }
        log.refuse(&counters, Refusal::TooLarge, peer, "", "a big packet");
        let s = counters.snapshot();
        assert_eq!((s.reads_not_allowed, s.writes_too_large), (3, 1));
        assert_eq!(s.writes_not_allowed + s.admin_not_allowed, 0);
        let read = 1u8 << (Refusal::ReadNotAllowed as u8);
        let large = 1u8 << (Refusal::TooLarge as u8);
        assert_eq!(log.logged, read | large);
    }
}
