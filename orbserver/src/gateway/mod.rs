//! Gateways: listeners that speak the seismology world's protocols, DataLink
//! (ringserver's, read and write) and SeedLink (read-only), against the same ring,
//! access rules and limits as the native port. docs/GATEWAYS.md describes what each
//! protocol can do against an orb and how their stream ids map to srcnames.
//!
//! - `datalink`: the DataLink 1.0 listener (1.1 is not spoken; docs/GATEWAYS.md)
//! - `seedlink`: the SeedLink 3.1 listener

pub mod datalink;
pub mod seedlink;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::server::clients::Registration;
use crate::server::{admit, Shared};

/// A gateway protocol: how to serve an admitted connection, and how to tell a refused
/// one why.
pub trait Gateway: Send + Sync + 'static {
    /// The protocol's name, for logs.
    const NAME: &'static str;

    /// Bytes that tell a client its connection was refused (`msg` says why), in the
    /// protocol's own terms; empty if the protocol has no way to say it unasked.
    fn refusal(msg: &str) -> Vec<u8>;

    /// Serves one admitted connection until the client leaves, breaks the protocol,
    /// is killed, or `shutdown` is cancelled.
    fn serve(
        stream: TcpStream,
        peer: SocketAddr,
        shared: Arc<Shared>,
        reg: Registration,
        shutdown: CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static;
}

/// Accepts connections for gateway `G` until `shutdown` is cancelled; admission (the
/// connect rules, the client limits, counters and log lines) is the native port's.
pub async fn accept_loop<G: Gateway>(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (mut stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!("{} accept failed: {e}", G::NAME);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match admit(&shared, peer) {
            Ok(reg) => {
                tracing::debug!("{peer}: {} connection", G::NAME);
                tracker.spawn(G::serve(
                    stream,
                    peer,
                    Arc::clone(&shared),
                    reg,
                    shutdown.clone(),
                ));
            }
            Err(msg) => {
                let bytes = G::refusal(&msg);
                tracker.spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(1), async {
                        stream.write_all(&bytes).await?;
                        stream.shutdown().await
                    })
                    .await;
                });
            }
        }
    }
}
