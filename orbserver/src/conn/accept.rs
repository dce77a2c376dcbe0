//! The accept loop every listener runs: admission through the hub (connect rules,
//! client limits, counters, log lines), a polite refusal in the protocol's own terms,
//! and a task per accepted connection. An accept error never stops the loop; only
//! shutdown does.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::tls::{handshake, Stream, TlsListener};
use super::{serve, Protocol};
use crate::hub::clients::Registration;
use crate::hub::{admit, Hub};

/// Accepts connections for protocol `P` until `shutdown` is cancelled; over TLS when
/// `tls` is given.
pub async fn accept_loop<P: Protocol>(
    listener: TcpListener,
    tls: Option<Arc<TlsListener>>,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let conn_hub = Arc::clone(&hub);
    let conn_shutdown = shutdown.clone();
    accept_each(
        listener,
        tls,
        hub,
        shutdown,
        tracker,
        P::NAME,
        P::refusal,
        move |stream, peer, reg| {
            serve::<P>(
                stream,
                peer,
                Arc::clone(&conn_hub),
                reg,
                conn_shutdown.clone(),
            )
        },
    )
    .await
}

/// The accept loop itself, for any way of serving an admitted connection: admission
/// through the hub, the client's protocol recorded in the client table, `refusal`'s
/// words to a refused client, and `serve` spawned on `tracker` for an admitted one (it
/// must hold the [`Registration`] while the connection is open). The sans-io protocols
/// come through [`accept_loop`]; HTTP, whose bytes hyper drives, calls this directly.
///
/// With `tls`, an admitted connection first completes a TLS handshake (within the
/// handshake timeout) in its own task, so a slow or broken handshake holds up no
/// other client; a refused one is told why over TLS too, if its handshake succeeds.
#[allow(clippy::too_many_arguments)]
pub async fn accept_each<F, Fut>(
    listener: TcpListener,
    tls: Option<Arc<TlsListener>>,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    name: &'static str,
    refusal: fn(&str) -> Vec<u8>,
    serve: F,
) where
    F: Fn(Stream, SocketAddr, Registration) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let serve = Arc::new(serve);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!("{name} accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let admitted = admit(&hub, peer);
        let Some(tls) = &tls else {
            match admitted {
                Ok(reg) => {
                    tracing::debug!("{peer}: {name} connection");
                    reg.entry.set_protocol(name);
                    tracker.spawn(serve(Stream::Plain(stream), peer, reg));
                }
                Err(msg) => {
                    tracker.spawn(refuse(Stream::Plain(stream), refusal(&msg)));
                }
            }
            continue;
        };
        let (tls, hub, serve) = (Arc::clone(tls), Arc::clone(&hub), Arc::clone(&serve));
        tracker.spawn(async move {
            if let Ok(reg) = &admitted {
                reg.entry.set_protocol(name);
            }
            let Some(stream) = handshake(&tls, stream, peer, &hub).await else {
                return;
            };
            match admitted {
                Ok(reg) => {
                    match stream.peer_common_name() {
                        Some(cn) => {
                            // A certificate the listener's client_ca verified: its CN
                            // names an [[access.cert]] identity, if the rules have one.
                            let rules = hub.policy.current().1;
                            let id = rules.cert_identity(&cn);
                            tracing::info!(
                                "{peer}: {name} connection over TLS, client certificate CN={cn:?}{}",
                                if id.is_some() { "" } else { " (no [[access.cert]] names it)" }
                            );
                            if let Some(id) = id {
                                let mut ident = reg.entry.ident();
                                ident.identity = rules.label(&id);
                                ident.proven = Some(id);
                            }
                        }
                        None => tracing::debug!("{peer}: {name} connection over TLS"),
                    }
                    serve(stream, peer, reg).await
                }
                Err(msg) => refuse(stream, refusal(&msg)).await,
            }
        });
    }
}

/// Sends `words` and closes, giving the client a second at most.
async fn refuse(mut stream: Stream, words: Vec<u8>) {
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
