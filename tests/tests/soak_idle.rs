//! [`IDLE`] idle sessions (HELLO done, then nothing) held open while a writer and a
//! reader keep working: the server must accept them all, keep the traffic exact, list
//! them, and after they close go back to listing only the working clients.
//!
//! Each connection costs a descriptor in this process and one in the server, which
//! inherits this process's limit. The test raises the soft `RLIMIT_NOFILE` (rustix) if
//! it must; if the hard limit is too low it skips with a note, and fails under `CI`.

use orb_tests::harness::{
    client_count, connect, guard, start_with_config, wait_until, RawClient, Steady,
};
use tokio::task::JoinSet;

/// Idle sessions held at once.
const IDLE: usize = 5_000;
/// Descriptors each process needs beyond the connections (ring, listener, runtime,
/// test harness), with room to spare.
const SPARE_FDS: u64 = 512;
/// Opened at once, at most.
const BATCH: usize = 100;

const CONFIG: &str = "\
[limits]
max_clients = 6000
max_clients_per_address = 6000
";

/// Whether the suite runs under CI, where a skip must fail instead.
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_idle_sessions_leave_the_traffic_exact() {
    let need = IDLE as u64 + SPARE_FDS;
    let have = orb_tests::harness::raise_nofile_limit(need);
    if have < need {
        let why = format!(
            "{IDLE} idle connections need an open-file limit of {need}, but the hard limit \
             is {have}; raise it (`ulimit -Hn`, or LimitNOFILE= for a service)"
        );
        assert!(!under_ci(), "CI is set: {why}");
        eprintln!("note: skipping: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Started after the limit was raised, so the server inherits it.
    let mut srv = start_with_config(
        dir.path(),
        CONFIG,
        &["--ring-size", "4MiB", "--flush", "none"],
    );
    let steady = Steady::start(&srv).await;
    steady
        .advance(20, "steady traffic before the idle sessions")
        .await;
    let normal = client_count(&srv).await;

    let addr = srv.addr;
    let mut idle = Vec::with_capacity(IDLE);
    for batch in 0..IDLE.div_ceil(BATCH) {
        let mut opened = JoinSet::new();
        for i in 0..BATCH.min(IDLE - batch * BATCH) {
            let what = format!("e2e-idle-{}", batch * BATCH + i);
            opened.spawn(async move { RawClient::welcomed(addr, &what).await });
        }
        while let Some(r) = opened.join_next().await {
            idle.push(r.unwrap().expect("an idle session was refused"));
        }
    }
    assert_eq!(idle.len(), IDLE);
    // With all of them open, the writer and reader go on, and the server counts them.
    steady
        .advance(50, "steady traffic among the idle sessions")
        .await;
    // Waited for, not asserted at once: the server may not yet have seen the earlier
    // counting connection close.
    wait_until("the server to count every idle session", || async {
        client_count(&srv).await == normal + IDLE as u64
    })
    .await;

    drop(idle);
    // The list, not only the count, must come back to the working clients (and this
    // connection, which asks).
    let c = tokio::sync::Mutex::new(connect(&srv, "e2e-list").await);
    wait_until("the idle sessions to leave the client list", || async {
        let list = guard("CLIENTS", c.lock().await.clients()).await.unwrap();
        let mut whats: Vec<String> = list.clients.into_iter().map(|c| c.what).collect();
        whats.sort();
        whats == ["e2e-list", "e2e-steady-reader", "e2e-steady-writer"]
    })
    .await;
    steady
        .advance(20, "steady traffic after the idle sessions")
        .await;
    let put = steady.finish().await;
    assert!(srv.is_running());
    eprintln!(
        "{IDLE} idle sessions; {} steady packets put and read",
        put.len()
    );
}
