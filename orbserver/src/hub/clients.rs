//! The table of connected clients, for CLIENTS and for the per-address limit. Each
//! session owns an entry and updates its counters with relaxed atomics: the numbers are
//! for people, not for synchronisation.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use formats::proto::info::ClientStat;

use crate::access::Identity;
use formats::Time;
use tokio_util::sync::CancellationToken;

/// What HELLO said, and the session's filters.
#[derive(Debug, Clone, Default)]
pub struct ClientIdent {
    /// From HELLO.
    pub who: String,
    /// From HELLO.
    pub what: String,
    /// From HELLO.
    pub pid: u32,
    /// `r`, `w`, `rw` or empty before HELLO. CLIENTS shows empty as `-`; for a session
    /// with `rights`, CLIENTS recomputes it under the rules in force.
    pub access: String,
    /// What the session asked for (a native HELLO's access bits; read and write for a
    /// DataLink client; read for a SeedLink transfer), and its token: CLIENTS decides
    /// the rights it shows under the rules in force when it is asked, so that a RELOAD
    /// that takes rights away shows at once, on every port. `None` before the session
    /// asked for anything.
    pub rights: Option<AskedRights>,
    /// The client's identification exactly as its protocol carried it, when that is
    /// more than who/what/pid say (a DataLink ID `program:user:pid:arch`); empty
    /// otherwise.
    pub client_id: String,
    /// Who the client proved to be (a token's, user's or certificate's name, or a JWT's
    /// subject, with its kind: `user:alice`); empty for a client admitted by address.
    pub identity: String,
    /// An identity the transport proved before the session began (an HTTP bearer token
    /// on a WebSocket upgrade, a verified client certificate): the gateway sessions
    /// start from it, and AUTH may replace it.
    pub proven: Option<Identity>,
    /// Select expression.
    pub select: String,
    /// Reject expression.
    pub reject: String,
}

/// The rights a session asked for, and the hash of its token.
#[derive(Debug, Clone, Default)]
pub struct AskedRights {
    /// HELLO asked for read access.
    pub read: bool,
    /// HELLO asked for write access.
    pub write: bool,
    /// Who the session proved to be (a token, user, certificate or JWT), if anyone.
    pub identity: Option<Identity>,
}

/// CLIENTS' `access` text for a client that may read and/or write: `r`, `w`, `rw`,
/// or `-` for neither.
pub fn access_text(read: bool, write: bool) -> String {
    match (read, write) {
        (true, true) => "rw",
        (true, false) => "r",
        (false, true) => "w",
        (false, false) => "-",
    }
    .to_string()
}

/// One connected client.
#[derive(Debug)]
pub struct ClientEntry {
    /// Client id.
    pub id: u64,
    /// The port's protocol ("orb", "DataLink", "SeedLink", "http"), set by the accept
    /// loop that admitted it; an HTTP connection upgraded to a WebSocket switches it to
    /// the protocol it then speaks ("datalink-ws", "seedlink-ws").
    protocol: Mutex<Option<&'static str>>,
    /// Peer address.
    pub addr: SocketAddr,
    /// When it connected.
    pub connected: Time,
    /// Identity and filters.
    pub ident: Mutex<ClientIdent>,
    /// Read position.
    pub pos: AtomicU64,
    /// A reap is active.
    pub reaping: AtomicBool,
    /// The client reads (has read access).
    pub reads: AtomicBool,
    /// Packets put.
    pub packets_in: AtomicU64,
    /// Payload bytes put.
    pub bytes_in: AtomicU64,
    /// Packets sent.
    pub packets_out: AtomicU64,
    /// Payload bytes sent.
    pub bytes_out: AtomicU64,
    /// Gaps reported.
    pub gaps: AtomicU64,
    /// Cancelled by an administrator's KILL: the connection task then tells the client
    /// and closes.
    pub kill: CancellationToken,
}

impl ClientEntry {
    /// The protocol of the port the client connected to; `orb` until set.
    pub fn protocol(&self) -> &'static str {
        self.protocol
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or("orb")
    }

    /// Records the port's protocol; only the first call counts.
    pub fn set_protocol(&self, name: &'static str) {
        self.protocol
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(name);
    }

    /// Switches the protocol of a connection that changed what it speaks (an HTTP
    /// connection upgraded to a WebSocket).
    pub fn switch_protocol(&self, name: &'static str) {
        *self.protocol.lock().unwrap_or_else(|p| p.into_inner()) = Some(name);
    }

    /// The identity and filters, locked for an update.
    pub fn ident(&self) -> std::sync::MutexGuard<'_, ClientIdent> {
        // Only plain field stores happen under this lock: a panic cannot leave it torn.
        self.ident.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A row for CLIENTS; `lag` is computed by the caller from the ring.
    pub fn stat(&self, lag: Option<f64>) -> ClientStat {
        let ident = self.ident().clone();
        ClientStat {
            id: self.id,
            who: ident.who,
            what: ident.what,
            pid: ident.pid,
            client_id: ident.client_id,
            identity: ident.identity,
            address: self.addr.to_string(),
            // Before HELLO, or a HELLO that asked for nothing: the documented `-`.
            access: if ident.access.is_empty() {
                "-".into()
            } else {
                ident.access
            },
            connected: self.connected.to_string(),
            select: ident.select,
            reject: ident.reject,
            pos: self.pos.load(Relaxed),
            reaping: self.reaping.load(Relaxed),
            packets_in: self.packets_in.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            packets_out: self.packets_out.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            gaps: self.gaps.load(Relaxed),
            lag,
        }
    }
}

/// All connected clients, and connection counts per IP address.
#[derive(Debug, Default)]
pub struct ClientTable {
    next_id: AtomicU64,
    inner: Mutex<TableInner>,
}

#[derive(Debug, Default)]
struct TableInner {
    clients: BTreeMap<u64, Arc<ClientEntry>>,
    per_addr: HashMap<IpAddr, usize>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The server has `max` clients.
    TooManyClients {
        /// The limit.
        max: usize,
    },
    /// This address has `max` clients.
    TooManyFromAddress {
        /// The limit.
        max: usize,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooManyClients { max } => write!(
                f,
                "the server has its maximum of {max} clients; try again later"
            ),
            Refusal::TooManyFromAddress { max } => {
                write!(
                    f,
                    "your address has the maximum of {max} connections; close some and try again"
                )
            }
        }
    }
}

/// Removes its client from the table when dropped, however the session ends.
#[derive(Debug)]
pub struct Registration {
    table: Arc<ClientTable>,
    /// The entry.
    pub entry: Arc<ClientEntry>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut t = self.table.inner.lock().unwrap_or_else(|p| p.into_inner());
        t.clients.remove(&self.entry.id);
        let ip = self.entry.addr.ip();
        if let Some(n) = t.per_addr.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                t.per_addr.remove(&ip);
            }
        }
    }
}

impl ClientTable {
    /// Registers a new connection, or refuses it by the limits.
    pub fn register(
        self: &Arc<Self>,
        addr: SocketAddr,
        max_clients: usize,
        max_per_addr: usize,
    ) -> Result<Registration, Refusal> {
        let mut t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if t.clients.len() >= max_clients {
            return Err(Refusal::TooManyClients { max: max_clients });
        }
        let n = t.per_addr.entry(addr.ip()).or_insert(0);
        if *n >= max_per_addr {
            return Err(Refusal::TooManyFromAddress { max: max_per_addr });
        }
        *n += 1;
        let id = self.next_id.fetch_add(1, Relaxed) + 1;
        let entry = Arc::new(ClientEntry {
            id,
            protocol: Mutex::new(None),
            addr,
            connected: Time::now(),
            ident: Mutex::new(ClientIdent::default()),
            pos: AtomicU64::new(0),
            reaping: AtomicBool::new(false),
            reads: AtomicBool::new(false),
            packets_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            packets_out: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            kill: CancellationToken::new(),
        });
        t.clients.insert(id, Arc::clone(&entry));
        Ok(Registration {
            table: Arc::clone(self),
            entry,
        })
    }

    /// The connected clients, by id.
    pub fn entries(&self) -> Vec<Arc<ClientEntry>> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clients
            .values()
            .cloned()
            .collect()
    }

    /// The connected client with this id.
    pub fn get(&self, id: u64) -> Option<Arc<ClientEntry>> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clients
            .get(&id)
            .cloned()
    }

    /// Number of connected clients.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clients
            .len()
    }

    /// True when no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_deregistration() {
        let t = Arc::new(ClientTable::default());
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "127.0.0.2:1000".parse().unwrap();
        let r1 = t.register(a, 3, 2).unwrap();
        let _r2 = t.register(a, 3, 2).unwrap();
        assert_eq!(
            t.register(a, 3, 2).unwrap_err(),
            Refusal::TooManyFromAddress { max: 2 }
        );
        let _r3 = t.register(b, 3, 2).unwrap();
        assert_eq!(
            t.register(b, 3, 2).unwrap_err(),
            Refusal::TooManyClients { max: 3 }
        );
        drop(r1);
        assert_eq!(t.len(), 2);
        assert!(t.register(a, 3, 2).is_ok());
        assert!(t.entries().windows(2).all(|w| w[0].id < w[1].id));
    }

    #[test]
    fn get_finds_connected_clients_only() {
        let t = Arc::new(ClientTable::default());
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let r = t.register(a, 3, 3).unwrap();
        let id = r.entry.id;
        let found = t.get(id).expect("registered");
        assert!(Arc::ptr_eq(&found, &r.entry));
        assert!(t.get(id + 1).is_none());
        drop(r);
        assert!(t.get(id).is_none());
    }

    #[test]
    fn the_protocol_is_set_once() {
        let t = Arc::new(ClientTable::default());
        let r = t.register("127.0.0.1:1".parse().unwrap(), 3, 3).unwrap();
        assert_eq!(r.entry.protocol(), "orb");
        r.entry.set_protocol("http");
        r.entry.set_protocol("DataLink");
        assert_eq!(r.entry.protocol(), "http");
        r.entry.switch_protocol("datalink-ws");
        assert_eq!(r.entry.protocol(), "datalink-ws");
    }
}
