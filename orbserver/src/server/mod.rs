//! The running server: binds every configured listener (native, DataLink, SeedLink, HTTP),
//! opens the ring, builds the [hub](crate::hub), runs one accept loop per listener on
//! the [connection layer](crate::conn), and on shutdown tells every client, waits for
//! the connections and closes the ring cleanly.

pub use crate::hub::{clients, policy, reload, server_name, Hub, Totals};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{HttpOptions, Limits, ServerConfig};
use crate::conn::{accept_loop, TlsError, TlsListener};
use crate::gateway::{datalink::DataLink, seedlink::SeedLink};
use crate::http::{HttpState, Ports};
use crate::native::Native;
use crate::ring::{RingError, RingStore};
use reload::ConfigSource;

/// A bound, running server.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Hub>,
    shutdown: CancellationToken,
    /// `[limits]` as configured, before `max_packet` was capped by the ring.
    configured_limits: Limits,
    /// The DataLink listener, if configured.
    datalink: Option<TcpListener>,
    /// The SeedLink listener, if configured.
    seedlink: Option<TcpListener>,
    /// The HTTP listener, if configured.
    http: Option<TcpListener>,
    /// The HTTP port's headers and web root.
    http_options: HttpOptions,
    /// TLS for the native, DataLink, SeedLink and HTTP listeners, where configured.
    tls: [Option<Arc<TlsListener>>; 4],
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
    /// A listener's TLS certificate or key could not be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl Server {
    /// Binds the listeners, then opens the ring. Nothing is served until [`Server::run`].
    pub async fn bind(cfg: ServerConfig) -> Result<Server, ServerError> {
        // Certificates first: a bad file is refused before any port or ring is touched.
        let mut tls = [None, None, None, None];
        for (slot, (name, files)) in tls.iter_mut().zip([
            ("orb", &cfg.tls.native),
            ("DataLink", &cfg.tls.datalink),
            ("SeedLink", &cfg.tls.seedlink),
            ("HTTP", &cfg.tls.http),
        ]) {
            if let Some(files) = files {
                *slot = Some(Arc::new(TlsListener::load(name, files.clone())?));
            }
        }
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|reason| ServerError::Bind {
                addr: cfg.listen,
                reason,
            })?;
        let mut gateways = [None, None, None];
        for (slot, addr) in gateways
            .iter_mut()
            .zip([cfg.datalink, cfg.seedlink, cfg.http])
        {
            if let Some(addr) = addr {
                *slot = Some(
                    TcpListener::bind(addr)
                        .await
                        .map_err(|reason| ServerError::Bind { addr, reason })?,
                );
            }
        }
        let [datalink, seedlink, http] = gateways;
        // The ring is opened (or created) only once every port is ours, so a start that
        // fails with "address already in use" leaves no new ring file behind.
        let ring_dir = cfg.ring_dir.clone();
        let ring_opts = cfg.ring.clone();
        // Opening scans the ring: keep it off the runtime's worker threads.
        let ring = tokio::task::spawn_blocking(move || RingStore::open(&ring_dir, &ring_opts))
            .await
            .expect("ring open task")?;
        let configured_limits = cfg.limits.clone();
        let shared = Arc::new(Hub::new(ring, cfg.limits, cfg.access));
        let _ = shared.tls.set(tls.iter().flatten().cloned().collect());
        Ok(Server {
            listener,
            shared,
            shutdown: CancellationToken::new(),
            configured_limits,
            datalink,
            seedlink,
            http,
            http_options: cfg.http_options,
            tls,
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

    /// The address the HTTP listener is bound to, if it is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The shared state (for tests and the binary's summary).
    pub fn shared(&self) -> &Arc<Hub> {
        &self.shared
    }

    /// Serves until the shutdown token is cancelled, then tells every client, waits for
    /// the connections to finish (at most `grace`) and closes the ring cleanly.
    pub async fn run(mut self, grace: Duration) -> Result<(), RingError> {
        let tracker = TaskTracker::new();
        let ports = Ports {
            orb: self.local_addr().ok(),
            datalink: self.datalink_addr(),
            seedlink: self.seedlink_addr(),
            http: self.http_addr(),
        };
        if let Some(l) = self.http.take() {
            let state = HttpState::new(
                Arc::clone(&self.shared),
                std::mem::take(&mut self.http_options),
                ports,
            );
            tracker.spawn(crate::http::accept_loop(
                l,
                self.tls[3].clone(),
                Arc::new(state),
                self.shutdown.clone(),
                tracker.clone(),
            ));
        }
        if let Some(l) = self.datalink.take() {
            tracker.spawn(accept_loop::<DataLink>(
                l,
                self.tls[1].clone(),
                Arc::clone(&self.shared),
                self.shutdown.clone(),
                tracker.clone(),
            ));
        }
        if let Some(l) = self.seedlink.take() {
            tracker.spawn(accept_loop::<SeedLink>(
                l,
                self.tls[2].clone(),
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
        let Server {
            shared,
            listener,
            shutdown,
            tls,
            ..
        } = self;
        let [native_tls, ..] = tls;
        accept_loop::<Native>(
            listener,
            native_tls,
            Arc::clone(&shared),
            shutdown.clone(),
            tracker.clone(),
        )
        .await;
        tracker.close();
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!(
                "{} connections did not finish within {grace:?}; closing the ring anyway",
                tracker.len()
            );
        }
        let _ = sampler.await;
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
