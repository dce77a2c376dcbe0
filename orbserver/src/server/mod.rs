//! The network server: a tokio listener handing each connection to a task that moves
//! bytes between its socket and a `session::Session`, which holds all the protocol
//! logic. Modules:
//!
//! - `listener`: accepts, applies client limits, spawns connections, shuts down
//! - `connection`: the per-connection task (read, decode, write; wait for packets)
//! - `session`: one client's protocol state; turns frames into replies and streams
//! - `clients`: the client table behind CLIENTS and the per-address limit
//! - `info`: the STAT, SOURCES and CLIENTS documents
//! - `policy`: the access rules in force (reloadable) and the refusal counters
//! - `reload`: re-reading the config file's access rules (SIGHUP and RELOAD)

pub mod clients;
mod connection;
mod info;
mod listener;
pub use listener::admit;
pub mod policy;
pub mod reload;
mod session;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use formats::Time;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Limits, ServerConfig};
use crate::gateway::{self, datalink::DataLink, seedlink::SeedLink};
use crate::ring::{RingError, RingStore, MAX_RECORD_SRCNAME};
use clients::ClientTable;
use policy::{Policy, RefusalCounters};
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
pub struct Shared {
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
    /// When the server started.
    pub started: Time,
    /// The config file SIGHUP and RELOAD re-read, once [`Server::set_config_file`] named it.
    config_source: OnceLock<ConfigSource>,
    samples: Mutex<VecDeque<(Instant, u64, u64)>>,
}

/// Seconds of history behind the packet and byte rates.
const RATE_WINDOW: usize = 10;

impl Shared {
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
        info::rates(oldest, now)
    }

    fn sample(&self) {
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

/// A bound, running server.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    /// `[limits]` as configured, before `max_packet` was capped by the ring.
    configured_limits: Limits,
    /// The DataLink listener, if configured.
    datalink: Option<TcpListener>,
    /// The SeedLink listener, if configured.
    seedlink: Option<TcpListener>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The ring could not be opened.
    #[error(transparent)]
    Ring(#[from] RingError),
    /// The listen address could not be bound.
    // The OS error is in the message, not a `source`, so that `{:#}` chains do not
    // print it twice.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        reason: std::io::Error,
    },
}

impl Server {
    /// Binds the listeners, then opens the ring. Nothing is served until [`Server::run`].
    pub async fn bind(cfg: ServerConfig) -> Result<Server, ServerError> {
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|reason| ServerError::Bind {
                addr: cfg.listen,
                reason,
            })?;
        let mut gateways = [None, None];
        for (slot, addr) in gateways.iter_mut().zip([cfg.datalink, cfg.seedlink]) {
            if let Some(addr) = addr {
                *slot = Some(
                    TcpListener::bind(addr)
                        .await
                        .map_err(|reason| ServerError::Bind { addr, reason })?,
                );
            }
        }
        let [datalink, seedlink] = gateways;
        // The ring is opened (or created) only once every port is ours, so a start that
        // fails with "address already in use" leaves no new ring file behind.
        let ring_dir = cfg.ring_dir.clone();
        let ring_opts = cfg.ring.clone();
        // Opening scans the ring: keep it off the runtime's worker threads.
        let ring = tokio::task::spawn_blocking(move || RingStore::open(&ring_dir, &ring_opts))
            .await
            .expect("ring open task")?;
        let configured_limits = cfg.limits.clone();
        let mut limits = cfg.limits;
        limits.max_packet = limits
            .max_packet
            .min(ring.max_payload(MAX_RECORD_SRCNAME.min(formats::MAX_SRCNAME_LEN)));
        let shared = Arc::new(Shared {
            ring: Arc::new(ring),
            notify: Notify::new(),
            clients: Arc::new(ClientTable::default()),
            totals: Totals::default(),
            limits,
            policy: Policy::new(cfg.access),
            refused: RefusalCounters::default(),
            started: Time::now(),
            config_source: OnceLock::new(),
            samples: Mutex::new(VecDeque::new()),
        });
        Ok(Server {
            listener,
            shared,
            shutdown: CancellationToken::new(),
            configured_limits,
            datalink,
            seedlink,
        })
    }

    /// Names the config file the server was configured from, so that SIGHUP and the
    /// RELOAD request can re-read its `[access]` table. Without it a reload is refused.
    /// Only the first call counts.
    pub fn set_config_file(&self, path: PathBuf) {
        let _ = self.shared.config_source.set(ConfigSource {
            path,
            limits: self.configured_limits.clone(),
        });
    }

    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address the DataLink listener is bound to, if it is on.
    pub fn datalink_addr(&self) -> Option<SocketAddr> {
        self.datalink.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The address the SeedLink listener is bound to, if it is on.
    pub fn seedlink_addr(&self) -> Option<SocketAddr> {
        self.seedlink.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The shared state (for tests and the binary's summary).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Serves until the shutdown token is cancelled, then tells every client, waits for
    /// the connections to finish (at most `grace`) and closes the ring cleanly.
    pub async fn run(mut self, grace: Duration) -> Result<(), RingError> {
        let tracker = TaskTracker::new();
        if let Some(l) = self.datalink.take() {
            tracker.spawn(gateway::accept_loop::<DataLink>(
                l,
                Arc::clone(&self.shared),
                self.shutdown.clone(),
                tracker.clone(),
            ));
        }
        if let Some(l) = self.seedlink.take() {
            tracker.spawn(gateway::accept_loop::<SeedLink>(
                l,
                Arc::clone(&self.shared),
                self.shutdown.clone(),
                tracker.clone(),
            ));
        }
        let sampler = {
            let shared = Arc::clone(&self.shared);
            let shutdown = self.shutdown.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tick.tick() => shared.sample(),
                    }
                }
            })
        };
        listener::accept_loop(&self.listener, &self.shared, &self.shutdown, &tracker).await;
        tracker.close();
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!(
                "{} connections did not finish within {grace:?}; closing the ring anyway",
                tracker.len()
            );
        }
        let _ = sampler.await;
        let Server {
            shared, listener, ..
        } = self;
        drop(listener);
        let ring = Arc::clone(&shared.ring);
        drop(shared);
        tokio::task::spawn_blocking(move || match Arc::try_unwrap(ring) {
            Ok(ring) => ring.close(),
            // A connection task is still alive: the ring flushes and closes when the last
            // reference drops.
            Err(ring) => ring.flush(),
        })
        .await
        .expect("ring close task")
    }
}

#[cfg(test)]
mod tests;
