//! Server restarts on the same ring and port. A reconnecting reader
//! (`OrbClient::reap_reconnecting`) reads while a writer puts numbered packets; the
//! server is stopped with SIGTERM (clean) or SIGKILL (crash) mid-stream and restarted,
//! the writer reconnects and goes on. The reader must deliver every packet in the ring
//! exactly once, in pktid order, and every acknowledged put must be in the ring with
//! its pktid and payload. Also: packets put before a clean restart keep their pktids,
//! times and payloads, and new pktids are above them (RING-FORMAT.md sections 6 and 7;
//! orbclient `reap` module docs on reconnection).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use formats::{Packet, SrcName, Time};
use orb_tests::harness::{dump_ring, guard, OrbServer};
use orb_tests::{check_payload, make_payload};
use orbclient::{ClientOptions, OrbAddr, OrbClient, ReapEvent, ReapOptions, ReconnectPolicy};

const ARGS: &[&str] = &["--ring-size", "4MiB", "--flush", "none"];
const PAYLOAD: usize = 512;
/// Acknowledged puts to wait for before the restart, and again after it.
const PHASE: u64 = 100;

fn orb_addr(addr: SocketAddr) -> OrbAddr {
    OrbAddr::new("127.0.0.1", addr.port())
}

fn opts(what: &str) -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Some(Duration::from_secs(20)),
        ..ClientOptions::for_program(what)
    }
}

fn t(seq: u64) -> Time {
    Time::from_micros(1_795_341_600_000_000 + seq as i64 * 1_000)
}

/// Every packet in the ring, oldest first, read by a fresh session.
async fn ring_contents(addr: SocketAddr) -> Vec<Packet> {
    let c = guard(
        "connect",
        OrbClient::connect(&orb_addr(addr), &opts("e2e-dump")),
    )
    .await
    .unwrap();
    dump_ring(c).await
}

/// Puts packets numbered 0, 1, 2 ... until `stop`, reconnecting (bounded) whenever
/// the connection is lost and putting the unacknowledged packet again. Returns
/// `(seq, pktid)` of every acknowledged put.
async fn writer(addr: SocketAddr, acked: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> Vec<(u64, u64)> {
    let src = SrcName::new("XX_RESTART/MGENC").unwrap();
    let mut client: Option<OrbClient> = None;
    let mut done = Vec::new();
    let mut seq = 0u64;
    let mut failures = 0u32;
    // Bounded: each turn acknowledges a put or counts a failure.
    while !stop.load(Ordering::SeqCst) {
        assert!(failures < 2000, "the writer could not reconnect");
        let Some(c) = client.as_mut() else {
            match OrbClient::connect(&orb_addr(addr), &opts("e2e-writer")).await {
                Ok(c) => client = Some(c),
                Err(e) => {
                    assert!(e.is_connection_lost(), "{e}");
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            continue;
        };
        match c.put(&src, t(seq), &make_payload(seq, PAYLOAD)).await {
            Ok(pktid) => {
                done.push((seq, pktid));
                seq += 1;
                acked.store(seq, Ordering::SeqCst);
                assert!(seq < 1_000_000, "the test never stopped the writer");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(e) if e.is_connection_lost() => {
                client = None;
                failures += 1;
            }
            Err(e) => panic!("put failed: {e}"),
        }
    }
    done
}

async fn wait_for(acked: &AtomicU64, at_least: u64) {
    for _ in 0..6000 {
        if acked.load(Ordering::SeqCst) >= at_least {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the writer did not reach {at_least} acknowledged puts");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Term,
    Kill9,
}

async fn reader_and_writer_survive_a_restart(stop_how: Stop) {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = OrbServer::start(dir.path(), ARGS);
    let addr = srv.addr;

    let reap = ReapOptions {
        reconnect: ReconnectPolicy {
            min_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            max_attempts: Some(300),
        },
        ..ReapOptions::default()
    };
    let mut stream = OrbClient::reap_reconnecting(
        &orb_addr(addr),
        &opts("e2e-reconnecting-reader"),
        "",
        "",
        Some("oldest"),
        reap,
    )
    .await
    .unwrap();
    // Reads until the end marker, which is put after the writer has stopped.
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..1_000_000 {
            match guard("reconnecting reap", stream.next()).await.unwrap() {
                Some(ReapEvent::Packet(p)) => {
                    let end = p.srcname.as_str() == "XX_END";
                    got.push(p);
                    if end {
                        return got;
                    }
                }
                Some(gap) => panic!("the reader lost packets: {gap:?}"),
                None => panic!("the reconnecting reap ended"),
            }
        }
        panic!("no end marker");
    });

    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let w = tokio::spawn(writer(addr, Arc::clone(&acked), Arc::clone(&stop)));

    wait_for(&acked, PHASE).await;
    let at_stop = acked.load(Ordering::SeqCst);
    match stop_how {
        Stop::Term => assert!(srv.terminate().success(), "orbserver failed on SIGTERM"),
        Stop::Kill9 => srv.kill9(),
    }
    drop(srv);
    let srv = OrbServer::start_on(dir.path(), &addr.to_string(), ARGS);
    assert_eq!(srv.addr, addr);
    wait_for(&acked, at_stop + PHASE).await;
    stop.store(true, Ordering::SeqCst);
    let acked_puts = guard("writer", w).await.unwrap();

    let mut c = guard(
        "connect",
        OrbClient::connect(&orb_addr(addr), &opts("e2e-end")),
    )
    .await
    .unwrap();
    let end_src = SrcName::new("XX_END").unwrap();
    let end_pktid = c.put(&end_src, t(0), b"end").await.unwrap();
    let read = guard("reader", reader).await.unwrap();
    let ring = ring_contents(addr).await;

    // The reader delivered exactly what the ring holds: each packet once, in order.
    let read_ids: Vec<u64> = read.iter().map(|p| p.pktid).collect();
    let ring_ids: Vec<u64> = ring.iter().map(|p| p.pktid).collect();
    assert!(
        read_ids.windows(2).all(|w| w[0] < w[1]),
        "pktids out of order or repeated: {read_ids:?}"
    );
    assert_eq!(read_ids, ring_ids, "reader vs ring");
    assert_eq!(*ring_ids.last().unwrap(), end_pktid);
    for (r, g) in read.iter().zip(&ring) {
        assert_eq!(
            r, g,
            "pktid {}: what the reader got differs from the ring",
            r.pktid
        );
    }
    // Every acknowledged put is there with its pktid and payload.
    assert!(acked_puts.len() as u64 >= at_stop + PHASE);
    for &(seq, pktid) in &acked_puts {
        let i = ring_ids
            .binary_search(&pktid)
            .unwrap_or_else(|_| panic!("acknowledged pktid {pktid} (seq {seq}) is lost"));
        assert_eq!(check_payload(&ring[i].payload), Some(seq), "pktid {pktid}");
        assert_eq!(ring[i].time, t(seq));
    }
    // A put may be stored without its acknowledgement reaching the writer, which
    // then puts it again: at-least-once, never a stray payload.
    for p in &ring[..ring.len() - 1] {
        let seq = check_payload(&p.payload).expect("whole payload");
        assert!(seq <= acked_puts.last().unwrap().0 + 1);
    }
    drop(srv);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_reader_loses_and_repeats_nothing_across_a_clean_restart() {
    reader_and_writer_survive_a_restart(Stop::Term).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_reader_loses_and_repeats_nothing_across_kill_9() {
    reader_and_writer_survive_a_restart(Stop::Kill9).await;
}

async fn put_some(addr: SocketAddr, n: u64) -> Vec<Packet> {
    let mut c = guard(
        "connect",
        OrbClient::connect(&orb_addr(addr), &opts("e2e-writer")),
    )
    .await
    .unwrap();
    let names = ["TA_AAA/MGENC", "AZ_PFO/MGENC", "/pf/orbstat"];
    let mut put = Vec::new();
    for seq in 0..n {
        let src = SrcName::new(names[seq as usize % names.len()]).unwrap();
        let payload = make_payload(seq, 100 + seq as usize);
        let pktid = c.put(&src, t(seq), &payload).await.unwrap();
        put.push(Packet {
            pktid,
            ..Packet::new(src, t(seq), payload)
        });
    }
    put
}

fn restart(dir: &Path, srv: &mut OrbServer) -> OrbServer {
    let st = srv.terminate();
    assert!(st.success(), "orbserver exited with {st} on SIGTERM");
    OrbServer::start(dir, ARGS)
}

#[tokio::test]
async fn packets_keep_their_pktids_across_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = OrbServer::start(dir.path(), ARGS);
    let before = put_some(srv.addr, 50).await;
    let ids: Vec<u64> = before.iter().map(|p| p.pktid).collect();
    assert_eq!(ids, (1..=50).collect::<Vec<_>>());

    let srv = restart(dir.path(), &mut srv);
    let mut c = guard(
        "connect",
        OrbClient::connect(&orb_addr(srv.addr), &opts("e2e-check")),
    )
    .await
    .unwrap();
    let stat = c.stat().await.unwrap();
    assert_eq!(stat.ring.npkts, 50);
    assert_eq!(stat.ring.nsources, 3);
    assert_eq!(stat.ring.oldest.unwrap().pktid, 1);
    assert_eq!(stat.ring.newest.unwrap().pktid, 50);
    assert!(stat.ring.next_pktid > 50);
    for p in &before {
        let got = c.get(p.pktid).await.unwrap().expect("packet survived");
        assert_eq!(&got, p);
    }
    assert_eq!(ring_contents(srv.addr).await, before);
    // New pktids are above every old one.
    let after = put_some(srv.addr, 5).await;
    assert!(
        after[0].pktid > 50,
        "new pktid {} reuses an old one",
        after[0].pktid
    );
    assert!(after.windows(2).all(|w| w[1].pktid == w[0].pktid + 1));
    drop(c);

    // And a second restart keeps both generations.
    let mut srv = srv;
    let srv = restart(dir.path(), &mut srv);
    let all = ring_contents(srv.addr).await;
    let want: Vec<Packet> = before.into_iter().chain(after).collect();
    assert_eq!(all, want);
}

#[tokio::test]
async fn clients_are_told_when_the_server_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = OrbServer::start(dir.path(), ARGS);
    let addr = orb_addr(srv.addr);
    let mut idle = guard("connect", OrbClient::connect(&addr, &opts("e2e-idle")))
        .await
        .unwrap();
    let r = guard("connect", OrbClient::connect(&addr, &opts("e2e-reader")))
        .await
        .unwrap();
    let mut stream = r.reap(ReapOptions::default()).await.unwrap();
    idle.ping().await.unwrap();
    let st = srv.terminate();
    assert!(st.success(), "orbserver exited with {st} on SIGTERM");
    // The reaping client hears ShuttingDown (or, at worst, the close).
    let err = guard("reap", stream.next()).await.unwrap_err();
    assert!(err.is_connection_lost(), "{err}");
    assert!(
        matches!(err.code(), Some(formats::proto::ErrorCode::ShuttingDown)),
        "the reader was not told: {err}"
    );
    // The idle client finds the connection gone on its next request.
    let err = guard("ping", idle.ping()).await.unwrap_err();
    assert!(err.is_connection_lost(), "{err}");
}

/// A reconnecting stream that reads `pktids` 1..=n from `addr` (all there already).
async fn reader_at(addr: SocketAddr, n: u64) -> orbclient::ReapStream {
    let reap = ReapOptions {
        reconnect: ReconnectPolicy {
            min_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            max_attempts: Some(300),
        },
        ..ReapOptions::default()
    };
    let mut s = OrbClient::reap_reconnecting(
        &orb_addr(addr),
        &opts("e2e-reconnecting-reader"),
        "",
        "",
        Some("oldest"),
        reap,
    )
    .await
    .unwrap();
    for want in 1..=n {
        match guard("reap", s.next()).await.unwrap() {
            Some(ReapEvent::Packet(p)) => assert_eq!(p.pktid, want),
            other => panic!("expected pktid {want}, got {other:?}"),
        }
    }
    s
}

async fn put_n(addr: SocketAddr, from_seq: u64, n: u64, len: usize) {
    let mut c = guard(
        "connect",
        OrbClient::connect(&orb_addr(addr), &opts("e2e-writer")),
    )
    .await
    .unwrap();
    let src = SrcName::new("XX_RESTART/MGENC").unwrap();
    let packets = (from_seq..from_seq + n)
        .map(|seq| Packet::new(src.clone(), t(seq), make_payload(seq, len)));
    let put = guard("put", c.put_pipelined(packets, 32)).await.unwrap();
    assert_eq!(put.count, n);
}

#[tokio::test]
async fn a_reconnecting_reader_reports_what_was_overwritten_while_it_was_away() {
    let dir = tempfile::tempdir().unwrap();
    let args = &["--ring-size", "1MiB", "--flush", "none"];
    let mut srv = OrbServer::start(dir.path(), args);
    let addr = srv.addr;
    put_n(addr, 0, 10, 2000).await;
    let mut s = reader_at(addr, 10).await;
    assert!(srv.terminate().success());
    let srv = OrbServer::start_on(dir.path(), &addr.to_string(), args);
    // While the reader is away the ring laps its position.
    put_n(addr, 10, 1500, 2000).await;
    let mut c = guard(
        "connect",
        OrbClient::connect(&orb_addr(addr), &opts("e2e-stat")),
    )
    .await
    .unwrap();
    let ring = c.stat().await.unwrap().ring;
    let (oldest, newest) = (ring.oldest.unwrap().pktid, ring.newest.unwrap().pktid);
    assert!(oldest > 11);
    match guard("reap", s.next()).await.unwrap() {
        Some(ReapEvent::Gap { first, last, bytes }) => {
            assert_eq!((first, last, bytes), (11, oldest - 1, None));
        }
        other => panic!("expected the gap found on reconnecting, got {other:?}"),
    }
    for want in oldest..=newest {
        match guard("reap", s.next()).await.unwrap() {
            Some(ReapEvent::Packet(p)) => {
                assert_eq!(p.pktid, want);
                assert!(check_payload(&p.payload).is_some());
            }
            other => panic!("expected pktid {want}, got {other:?}"),
        }
    }
    drop(srv);
}

#[tokio::test]
async fn a_reconnecting_reader_follows_a_replaced_ring_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = OrbServer::start(&dir.path().join("a"), ARGS);
    let addr = srv.addr;
    put_n(addr, 0, 10, 100).await;
    let mut s = reader_at(addr, 10).await;
    srv.kill9();
    // A new, empty ring behind the same address: pktids start again at 1.
    let srv = OrbServer::start_on(&dir.path().join("b"), &addr.to_string(), ARGS);
    put_n(addr, 100, 5, 100).await;
    for want in 1..=5 {
        match guard("reap", s.next()).await.unwrap() {
            Some(ReapEvent::Packet(p)) => {
                assert_eq!(p.pktid, want);
                assert_eq!(check_payload(&p.payload), Some(99 + want));
            }
            other => panic!("expected pktid {want} of the new ring, got {other:?}"),
        }
    }
    drop(srv);
}
