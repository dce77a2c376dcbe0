//! The accept loop: applies the `connect` access rules and the client limits, refuses
//! politely (an ERROR frame, then close; a counter; a log line with the address) and
//! hands every accepted connection to its own task. An accept error never
//! stops the loop; only shutdown does.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use formats::proto::{Body, ErrorCode, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use std::net::SocketAddr;

use super::clients::Registration;
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
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match admit(shared, peer) {
            Ok(reg) => {
                tracker.spawn(connection::serve(
                    stream,
                    peer,
                    Arc::clone(shared),
                    reg,
                    shutdown.clone(),
                ));
            }
            Err(msg) => {
                tracker.spawn(refuse(stream, msg));
            }
        }
    }
}

/// Applies the `connect` access rules and the client limits to a new connection from
/// `peer`: registers it, or counts and logs the refusal and returns the message to tell
/// the client. Every listener (native and gateways) admits through here, so the rules
/// and limits are the same on every port.
pub fn admit(shared: &Arc<Shared>, peer: SocketAddr) -> Result<Registration, String> {
    let limits = &shared.limits;
    let (_, rules) = shared.policy.current();
    if let Err(msg) = rules.admits(peer.ip()) {
        shared.refused.connects_denied.fetch_add(1, Relaxed);
        tracing::warn!(
            "{peer}: refused connection: address not admitted by access.connect_allow/connect_deny"
        );
        return Err(msg);
    }
    let per_address = if limits.writers_exempt && rules.writes_by_address(peer.ip()) {
        usize::MAX
    } else {
        limits.max_clients_per_address
    };
    shared
        .clients
        .register(peer, limits.max_clients, per_address)
        .map_err(|refusal| {
            shared.refused.connects_limit.fetch_add(1, Relaxed);
            tracing::warn!("{peer}: refused connection: {refusal}");
            refusal.to_string()
        })
}

/// Sends ERROR `Refused` with `msg` and closes, giving the client a second at most.
async fn refuse(mut stream: tokio::net::TcpStream, msg: String) {
    let mut out = BytesMut::new();
    Frame {
        tag: 0,
        body: Body::Error {
            code: ErrorCode::Refused,
            message: &msg,
        },
    }
    .encode(&mut out);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&out).await?;
        stream.shutdown().await?;
        // Read what the client already sent (its HELLO) before closing: closing with
        // unread input makes the kernel send a reset, which can destroy the ERROR
        // frame before the client reads it.
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}
