//! `kill -9` of orbserver during sustained pipelined puts and reaps, [`CYCLES`] times,
//! restarting on the same ring each time with the default flush policy.
//!
//! What "acknowledged" guarantees here: the server sends PUT_OK after the ring's append
//! returned, and an append is a store to a shared file mapping, which lives in the page
//! cache and survives the death of the process under every flush policy
//! (RING-FORMAT.md section 6; the policy only matters for power loss, which this test
//! cannot cause). So after each kill and restart:
//!
//! - every packet whose PUT_OK the writer read is in the ring with that pktid and an
//!   intact payload; puts in flight at the kill may or may not be there, but whole if so;
//! - no packet is corrupt, and no payload appears twice (the writer never re-sends);
//! - pktids strictly increase across restarts: the next pktid after a restart is above
//!   every pktid handed out before it;
//! - a reader that reconnects and seeks to the pktid after the last one it got delivers
//!   every packet in the ring exactly once, in order, so each acknowledged packet once.
//!
//! The ring is sized so the run never laps it: a lapped reader is tested in
//! `gaps_and_slow_readers.rs`, and here every packet must stay checkable to the end.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use formats::proto::encode::encode_put;
use formats::proto::{decode, Body, Decoded, PutPacket, Whence};
use formats::{Packet, SrcName, Time};
use orb_tests::harness::{dump_ring, guard, hello_frame, OrbServer, RawClient, GUARD};
use orb_tests::{check_payload, make_payload, XorShift};
use orbclient::{ClientOptions, OrbAddr, OrbClient, ReapEvent, ReapOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Kill and restart cycles.
const CYCLES: usize = 24;
/// Big enough that the whole run never laps it: see [`MAX_PUTS`].
const RING_SIZE: &str = "64MiB";
/// Most puts the writer sends in the whole run (a run takes about 30,000). Payloads
/// cycle evenly through 100 to 1,100 bytes, so records average about 656 bytes and
/// even this many fill only about 39 MB of [`RING_SIZE`].
const MAX_PUTS: u64 = 60_000;
/// How far the writer may run ahead of the reader before it waits for it.
const MAX_AHEAD: u64 = 3_000;
/// PUT frames the writer keeps unacknowledged.
const WINDOW: usize = 32;
const SRCNAME: &str = "XX_SOAK/MGENC";
/// Put once at the end, after the writer stopped: the reader stops there.
const END: &str = "XX_SOAK_END";

fn t(seq: u64) -> Time {
    Time::from_micros(1_795_341_600_000_000 + seq as i64 * 1_000)
}

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

/// Where the current server listens; each restart gets a new port.
type Current = Arc<Mutex<SocketAddr>>;

/// What the writer knows: each put it saw acknowledged, as `(seq, pktid)`, and how many.
#[derive(Default)]
struct Acks {
    acked: Mutex<Vec<(u64, u64)>>,
    count: AtomicU64,
}

/// Pipelined puts over raw frames, so that every PUT_OK is accounted for exactly (the
/// library's pipelined put reports only a total). Returns when the connection is lost
/// or `stop` is set and every put in flight is answered.
async fn put_session(
    addr: SocketAddr,
    next_seq: &mut u64,
    acks: &Acks,
    read: &AtomicU64,
    stop: &AtomicBool,
) {
    let Ok(mut c) = RawClient::connect(addr).await else {
        return;
    };
    if c.send(&hello_frame(1, "e2e-soak-writer")).await.is_err() {
        return;
    }
    match c.read_frame().await {
        Ok(Some(f)) if f.get(4) == Some(&0x41) => {}
        Ok(Some(f)) => panic!("expected WELCOME, got {f:02x?}"),
        _ => return,
    }
    let mut rng = XorShift::new(*next_seq + 1);
    let src = SrcName::new(SRCNAME).unwrap();
    let mut tag = 1u32;
    // (tag, seqs) of each PUT sent and not yet answered, oldest first.
    let mut inflight: VecDeque<(u32, Vec<u64>)> = VecDeque::new();
    let mut rbuf = BytesMut::new();
    let mut wbuf = BytesMut::new();
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        while !stopping && inflight.len() < WINDOW {
            assert!(
                *next_seq < MAX_PUTS,
                "the writer reached {MAX_PUTS} puts: the ring would lap"
            );
            tag += 1;
            // One to three packets per PUT, 100 to 1,100 bytes each.
            let seqs: Vec<u64> = (0..rng.range(1, 4)).map(|i| *next_seq + i).collect();
            *next_seq += seqs.len() as u64;
            let payloads: Vec<Vec<u8>> = seqs
                .iter()
                .map(|&s| make_payload(s, 100 + (s as usize * 37) % 1000))
                .collect();
            let packets = seqs.iter().zip(&payloads).map(|(&s, p)| PutPacket {
                srcname: src.as_str(),
                time: t(s),
                payload: p,
            });
            encode_put(&mut wbuf, tag, false, packets);
            inflight.push_back((tag, seqs));
        }
        if stopping && inflight.is_empty() {
            return;
        }
        // A reader far behind would see the kill cycles run long; let it catch up.
        for _ in 0..1000 {
            if *next_seq < read.load(Ordering::SeqCst) + MAX_AHEAD {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if !wbuf.is_empty() {
            if c.0.write_all(&wbuf).await.is_err() {
                return;
            }
            wbuf.clear();
        }
        // Read at least one reply, then every whole one buffered.
        match guard("PUT_OK", c.0.read_buf(&mut rbuf)).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut used = 0;
        while let Ok(Decoded::Frame(f, n)) = decode(&rbuf[used..], u32::MAX) {
            let Body::PutOk { first_pktid, count } = f.body else {
                panic!("expected PUT_OK, got {f:?}");
            };
            let (want_tag, seqs) = inflight.pop_front().expect("a PUT_OK nobody asked for");
            assert_eq!(f.tag, want_tag, "PUT_OKs must come back in order");
            assert_eq!(count as usize, seqs.len());
            let mut acked = acks.acked.lock().unwrap();
            for (i, s) in seqs.into_iter().enumerate() {
                acked.push((s, first_pktid + i as u64));
            }
            acks.count.store(acked.len() as u64, Ordering::SeqCst);
            used += n;
        }
        let _ = rbuf.split_to(used);
    }
}

/// Puts until `stop`, reconnecting to the current server after each kill. Puts in flight
/// when a connection dies are not sent again: they are neither acknowledged nor
/// required, which is what a kill leaves unknown.
async fn writer(current: Current, acks: Arc<Acks>, read: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let mut next_seq = 0u64;
    for _ in 0..100_000 {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let addr = *current.lock().unwrap();
        put_session(addr, &mut next_seq, &acks, &read, &stop).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the writer never stopped");
}

/// Reaps until the end marker, reconnecting after each kill and resuming after the
/// last pktid it got. Returns every packet read before the marker, in order.
async fn reader(current: Current, read: Arc<AtomicU64>, read_max: Arc<AtomicU64>) -> Vec<Packet> {
    let mut got: Vec<Packet> = Vec::new();
    for _ in 0..100_000 {
        let addr = *current.lock().unwrap();
        let Ok(mut c) = OrbClient::connect(&orb_addr(addr), &opts("e2e-soak-reader")).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let seek = match got.last() {
            Some(p) => c.seek(Whence::Pktid, p.pktid + 1).await,
            None => c.seek(Whence::Oldest, 0).await,
        };
        if let Err(e) = seek {
            assert!(e.is_connection_lost(), "seek after a restart failed: {e}");
            continue;
        }
        let Ok(mut s) = c.reap(ReapOptions::default()).await else {
            continue;
        };
        loop {
            match guard("reap", s.next()).await {
                Ok(Some(ReapEvent::Packet(p))) if p.srcname.as_str() == END => return got,
                Ok(Some(ReapEvent::Packet(p))) => {
                    read_max.store(p.pktid, Ordering::SeqCst);
                    got.push(p);
                    read.fetch_add(1, Ordering::SeqCst);
                }
                Ok(Some(gap)) => panic!("the reader was lapped: {gap:?}"),
                Ok(None) => panic!("a reap without a timeout ended"),
                Err(e) => {
                    assert!(e.is_connection_lost(), "reap failed: {e}");
                    break;
                }
            }
        }
    }
    panic!("the reader never finished");
}

async fn wait_for(what: &str, counter: &AtomicU64, at_least: u64) {
    let started = std::time::Instant::now();
    while counter.load(Ordering::SeqCst) < at_least {
        assert!(started.elapsed() < GUARD, "{what} did not reach {at_least}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn start(ring: std::path::PathBuf) -> OrbServer {
    // Default flush policy: no --flush.
    tokio::task::spawn_blocking(move || OrbServer::start(&ring, &["--ring-size", RING_SIZE]))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_puts_survive_kill_9_and_readers_resume_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().to_owned();
    let mut rng = XorShift::new(0x50a6_c111);
    let mut srv = start(ring.clone()).await;
    let current: Current = Arc::new(Mutex::new(srv.addr));
    let acks = Arc::new(Acks::default());
    let read = Arc::new(AtomicU64::new(0));
    let read_max = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let w = tokio::spawn(writer(
        Arc::clone(&current),
        Arc::clone(&acks),
        Arc::clone(&read),
        Arc::clone(&stop),
    ));
    let r = tokio::spawn(reader(
        Arc::clone(&current),
        Arc::clone(&read),
        Arc::clone(&read_max),
    ));

    for cycle in 0..CYCLES {
        // Let puts and reaps run a random while, then kill mid-stream.
        let acked_now = acks.count.load(Ordering::SeqCst);
        let read_now = read.load(Ordering::SeqCst);
        wait_for("the writer", &acks.count, acked_now + rng.range(200, 1000)).await;
        wait_for("the reader", &read, read_now + 50).await;
        srv.kill9();
        drop(srv);
        // Handed out before the kill: everything acknowledged or read. The new server's
        // next pktid must be above all of it.
        let acked_max = acks.acked.lock().unwrap().last().map_or(0, |a| a.1);
        let read_max_now = read_max.load(Ordering::SeqCst);

        srv = start(ring.clone()).await;
        let mut c = guard(
            "connect",
            OrbClient::connect(&orb_addr(srv.addr), &opts("e2e-soak-stat")),
        )
        .await
        .unwrap();
        let stat = c.stat().await.unwrap().ring;
        let (next, newest) = (stat.next_pktid, stat.newest.map_or(0, |p| p.pktid));
        assert!(
            newest >= acked_max.max(read_max_now) && next > newest,
            "cycle {cycle}: next pktid {next}, newest {newest}, last acknowledged \
             {acked_max}, last read {read_max_now}"
        );
        drop(c);
        *current.lock().unwrap() = srv.addr;
        eprintln!(
            "cycle {cycle:2}: acknowledged {:6}  read {:6}  next pktid {next}",
            acks.count.load(Ordering::SeqCst),
            read.load(Ordering::SeqCst)
        );
    }

    // Let the last server run a moment, stop the writer, and mark the end for the
    // reader.
    let acked_now = acks.count.load(Ordering::SeqCst);
    wait_for("the writer", &acks.count, acked_now + 100).await;
    stop.store(true, Ordering::SeqCst);
    guard("writer", w).await.unwrap();
    let mut c = guard(
        "connect",
        OrbClient::connect(&orb_addr(srv.addr), &opts("e2e-soak-end")),
    )
    .await
    .unwrap();
    let end = c
        .put(&SrcName::new(END).unwrap(), t(0), b"end")
        .await
        .unwrap();
    let got = guard("reader", r).await.unwrap();
    let mut ring_now = dump(srv.addr).await;
    assert_eq!(
        ring_now.pop().map(|p| p.pktid),
        Some(end),
        "the end marker is newest"
    );

    let acked = acks.acked.lock().unwrap().clone();
    check(&acked, &ring_now, &got);
    assert!(srv.is_running());
    eprintln!(
        "{CYCLES} kills: {} puts acknowledged, {} packets in the ring, {} read",
        acked.len(),
        ring_now.len(),
        got.len()
    );
}

/// The checks of the module docs, on what the writer saw acknowledged, what the ring
/// holds at the end, and what the reader delivered.
fn check(acked: &[(u64, u64)], ring: &[Packet], got: &[Packet]) {
    assert!(
        ring.windows(2).all(|w| w[0].pktid < w[1].pktid),
        "ring pktids must strictly increase"
    );
    // Every packet whole; each seq at most once; and at its pktid.
    let mut by_pktid: HashMap<u64, u64> = HashMap::new();
    let mut seen_seq: HashMap<u64, u64> = HashMap::new();
    for p in ring {
        let seq =
            check_payload(&p.payload).unwrap_or_else(|| panic!("pktid {} is corrupt", p.pktid));
        assert_eq!(p.srcname.as_str(), SRCNAME);
        assert_eq!(
            p.time,
            t(seq),
            "pktid {}: time does not match its payload",
            p.pktid
        );
        if let Some(other) = seen_seq.insert(seq, p.pktid) {
            panic!("seq {seq} stored twice, at pktids {other} and {}", p.pktid);
        }
        by_pktid.insert(p.pktid, seq);
    }
    // Acknowledged: present, at the acknowledged pktid, in seq and pktid order.
    for &(seq, pktid) in acked {
        assert_eq!(
            by_pktid.get(&pktid),
            Some(&seq),
            "acknowledged put {seq} (pktid {pktid}) is lost or wrong"
        );
    }
    assert!(
        acked.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1),
        "acknowledged pktids must grow with the order of the puts, across restarts"
    );
    // The reader: exactly the ring, once each, in order, byte for byte.
    let ids = |ps: &[Packet]| ps.iter().map(|p| p.pktid).collect::<Vec<_>>();
    assert_eq!(
        ids(got),
        ids(ring),
        "the resuming reader must deliver each packet in the ring exactly once"
    );
    assert!(got == ring, "the reader's packets differ from the ring's");
}

/// Every packet in the ring, oldest first, read by a fresh session.
async fn dump(addr: SocketAddr) -> Vec<Packet> {
    let c = guard(
        "connect",
        OrbClient::connect(&orb_addr(addr), &opts("e2e-soak-dump")),
    )
    .await
    .unwrap();
    dump_ring(c).await
}
