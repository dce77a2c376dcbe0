//! The accept loop every listener runs: admission through the hub (connect rules,
//! client limits, counters, log lines), a polite refusal in the protocol's own terms,
//! and a task per accepted connection. An accept error never stops the loop; only
//! shutdown does.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{serve, Protocol};
use crate::hub::{admit, Hub};

/// Accepts connections for protocol `P` until `shutdown` is cancelled.
pub async fn accept_loop<P: Protocol>(
    listener: TcpListener,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
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
                tracing::warn!("{} accept failed: {e}", P::NAME);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match admit(&hub, peer) {
            Ok(reg) => {
                tracing::debug!("{peer}: {} connection", P::NAME);
                tracker.spawn(serve::<P>(
                    stream,
                    peer,
                    Arc::clone(&hub),
                    reg,
                    shutdown.clone(),
                ));
            }
            Err(msg) => {
                tracker.spawn(refuse(stream, P::refusal(&msg)));
            }
        }
    }
}

/// Sends `words` and closes, giving the client a second at most.
async fn refuse(mut stream: TcpStream, words: Vec<u8>) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&words).await?;
        stream.shutdown().await?;
        // Read what the client already sent (its first request) before closing:
        // closing with unread input makes the kernel send a reset, which can destroy
        // the refusal before the client reads it.
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}
