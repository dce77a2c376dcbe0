//! A flood of connections that never become sessions, while a writer and a reader keep
//! working: connect-and-close at once, connect and say nothing, connect and send half a
//! HELLO. The writer and reader must go on with every packet delivered exactly once;
//! the silent and half-HELLO connections must get ERROR `BadState` and be closed when
//! the handshake timeout passes (short here, through `--config`); and the server's
//! client count must come back to what it was (PROTOCOL.md, "Opening"; config.rs
//! `handshake_timeout`).

use formats::proto::{decode, Body, Decoded, ErrorCode};
use orb_tests::harness::{
    client_count, guard, hello_frame, start_with_config, wait_until, RawClient, Steady,
};
use orb_tests::XorShift;
use tokio::task::JoinSet;

/// Connections opened and closed at once.
const CONNECT_CLOSE: usize = 3_000;
/// Connections that say nothing, and connections that send half a HELLO.
const SILENT: usize = 300;
const HALF_HELLO: usize = 300;
/// Opened at once, at most.
const BATCH: usize = 50;

const CONFIG: &str = "\
[limits]
handshake_timeout = \"500ms\"
max_clients = 5000
max_clients_per_address = 5000
";

/// An unfinished connection must end with ERROR `BadState`, then be closed.
async fn expect_timeout_close(mut c: RawClient, what: &str) {
    let f = c
        .read_frame()
        .await
        .expect("read")
        .unwrap_or_else(|| panic!("{what}: closed without an ERROR"));
    match decode(&f, u32::MAX) {
        Ok(Decoded::Frame(frame, _)) => assert!(
            matches!(
                frame.body,
                Body::Error {
                    code: ErrorCode::BadState,
                    ..
                }
            ),
            "{what}: expected ERROR BadState, got {frame:?}"
        ),
        other => panic!("{what}: the server sent a bad frame: {other:?}"),
    }
    assert!(
        c.read_frame().await.expect("read").is_none(),
        "{what}: expected the server to close after the ERROR"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_floods_leave_sessions_working_and_the_client_count_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start_with_config(
        dir.path(),
        CONFIG,
        &["--ring-size", "4MiB", "--flush", "none"],
    );
    let steady = Steady::start(&srv).await;
    steady.advance(20, "steady traffic before the flood").await;
    let normal = client_count(&srv).await;
    assert_eq!(normal, 3, "writer, reader and the counting connection");

    let addr = srv.addr;
    let mut rng = XorShift::new(0x000f_100d);
    let mut kinds: Vec<u8> = std::iter::repeat_n(0u8, CONNECT_CLOSE)
        .chain(std::iter::repeat_n(1, SILENT))
        .chain(std::iter::repeat_n(2, HALF_HELLO))
        .collect();
    // Interleave the kinds so the server sees them mixed.
    for i in (1..kinds.len()).rev() {
        kinds.swap(i, rng.range(0, i as u64 + 1) as usize);
    }
    let hello = hello_frame(1, "e2e-half-hello");
    let mut waiting = JoinSet::new();
    for batch in kinds.chunks(BATCH) {
        let mut opened = JoinSet::new();
        for &kind in batch {
            let cut = rng.range(1, hello.len() as u64) as usize;
            let half = hello[..cut].to_vec();
            opened.spawn(async move {
                let mut c = RawClient::connect(addr).await.expect("connect");
                match kind {
                    0 => None,
                    1 => Some((c, "silent connection")),
                    _ => {
                        c.send(&half).await.expect("send half a HELLO");
                        Some((c, "half a HELLO"))
                    }
                }
            });
        }
        while let Some(r) = opened.join_next().await {
            // Connect-and-close connections are dropped here; the others wait for the
            // server's timeout.
            if let Some((c, what)) = r.unwrap() {
                waiting.spawn(expect_timeout_close(c, what));
            }
        }
    }
    // The writer and reader kept going (and keep going) through it.
    steady.advance(50, "steady traffic after the flood").await;
    let mut closed = 0;
    while let Some(r) = guard("timeouts", waiting.join_next()).await {
        r.unwrap();
        closed += 1;
    }
    assert_eq!(closed, SILENT + HALF_HELLO);
    wait_until("the client count to come back", || async {
        client_count(&srv).await == normal
    })
    .await;
    // The server still accepts new sessions, and the traffic ends exactly.
    RawClient::welcomed(addr, "e2e-after-flood")
        .await
        .expect("a new session after the flood");
    steady.advance(20, "steady traffic at the end").await;
    let put = steady.finish().await;
    eprintln!(
        "{CONNECT_CLOSE} connect/close, {SILENT} silent, {HALF_HELLO} half-HELLO connections; \
         {} steady packets put and read",
        put.len()
    );
}
