//! The accept loop: applies the client limits, refuses politely (an ERROR frame, then
//! close) and hands every accepted connection to its own task. An accept error never
//! stops the loop; only shutdown does.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use formats::proto::{Body, ErrorCode, Frame};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{connection, Shared};

/// Accepts connections until `shutdown` is cancelled.
pub async fn accept_loop(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
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
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let limits = &shared.limits;
        match shared
            .clients
            .register(peer, limits.max_clients, limits.max_clients_per_address)
        {
            Ok(reg) => {
                tracker.spawn(connection::serve(
                    stream,
                    peer,
                    Arc::clone(shared),
                    reg,
                    shutdown.clone(),
                ));
            }
            Err(refusal) => {
                shared.totals.refused.fetch_add(1, Relaxed);
                tracing::warn!("{peer}: refused: {refusal}");
                tracker.spawn(async move {
                    let mut out = BytesMut::new();
                    let msg = refusal.to_string();
                    Frame {
                        tag: 0,
                        body: Body::Error {
                            code: ErrorCode::Refused,
                            message: &msg,
                        },
                    }
                    .encode(&mut out);
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), stream.write_all(&out)).await;
                });
            }
        }
    }
}
