//! Readers that fall behind. In a tiny (1 MiB) ring a reader that stops reading while a
//! writer laps it gets one explicit GAP (first and last lost pktid, ring bytes lost) and
//! then continues at the oldest packet, never moved silently; STAT totals and its
//! CLIENTS row count the gap. A reader that never reads at all (a raw connection with a
//! REAP of huge credit) does not stop a writer from putting 20 MiB, nor a second reader
//! from receiving all of it, and dropping it leaves the server answering
//! (PROTOCOL.md, "The read position", "REAP" and the GAP frame).

use std::io::Write;
use std::time::Duration;

use formats::proto::{Access, Body, Whence, NO_TIMEOUT};
use formats::{Packet, SrcName, Time};
use orb_tests::harness::{connect, encode_frame, guard, start_with, GUARD};
use orb_tests::{check_payload, make_payload};
use orbclient::{ReapEvent, ReapOptions, ReapStream};

fn t(secs: u64) -> Time {
    Time::from_micros(1_795_341_600_000_000 + secs as i64 * 1_000)
}

/// The next event of a stream that must not end yet.
async fn next(s: &mut ReapStream) -> ReapEvent {
    guard("reap", s.next())
        .await
        .unwrap()
        .expect("the reap ended early")
}

/// A lost range as a reader saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Gap {
    first: u64,
    last: u64,
    bytes: u64,
}

/// Checks a lapped reader's events: packets from `start` on, exactly one gap that
/// begins right after the last packet read before it and ends right before `oldest`,
/// then every packet from `oldest` to `newest`; every payload whole and right.
fn check_lapped(evs: &[ReapEvent], start: u64, oldest: u64, newest: u64, payload: usize) -> Gap {
    let mut expect = start;
    let mut gap = None;
    for ev in evs {
        match ev {
            ReapEvent::Packet(p) => {
                assert_eq!(p.pktid, expect, "packets must be contiguous around the gap");
                assert_eq!(check_payload(&p.payload), Some(p.pktid - 1), "payload");
                expect += 1;
            }
            ReapEvent::Gap { first, last, bytes } => {
                assert!(gap.is_none(), "more than one gap: {evs:?}");
                assert_eq!(*first, expect, "the gap starts at the reader's position");
                assert_eq!(*last + 1, oldest, "the gap ends before the oldest packet");
                let bytes = bytes.expect("the server reports the bytes lost");
                let lost = last - first + 1;
                assert!(
                    bytes >= lost * payload as u64,
                    "{bytes} ring bytes for {lost} packets of {payload} bytes"
                );
                gap = Some(Gap {
                    first: *first,
                    last: *last,
                    bytes,
                });
                expect = last + 1;
            }
        }
    }
    assert_eq!(expect, newest + 1, "the reader reached the newest packet");
    gap.expect("a lapped reader must be told of its gap")
}

#[tokio::test]
async fn a_lapped_reader_gets_an_explicit_gap_then_continues_at_the_oldest_packet() {
    const PAYLOAD: usize = 4000;
    let (_dir, srv) = start_with(&["--ring-size", "1MiB", "--flush", "none"]);
    let mut w = connect(&srv, "e2e-writer").await;
    let src = SrcName::new("XX_GAP/MGENC").unwrap();
    let first = w.put(&src, t(0), &make_payload(0, PAYLOAD)).await.unwrap();
    assert_eq!(first, 1);

    // An idle reader: positioned at pktid 1, not reaping while the ring laps it.
    let mut idle = connect(&srv, "e2e-idle-reader").await;
    assert_eq!(idle.seek(Whence::Oldest, 0).await.unwrap(), 1);
    // A live reader with a two-packet credit window that stops reading after one.
    let mut live = connect(&srv, "e2e-live-reader").await;
    let live_id = live.welcome().client_id;
    let idle_id = idle.welcome().client_id;
    assert_eq!(live.seek(Whence::Oldest, 0).await.unwrap(), 1);
    let opts = ReapOptions {
        credit_window: 2,
        ..ReapOptions::default()
    };
    let mut stream = live.reap(opts).await.unwrap();
    let mut live_evs = vec![next(&mut stream).await];
    assert!(matches!(&live_evs[0], ReapEvent::Packet(p) if p.pktid == 1));

    // About 3 MiB through the 1 MiB ring.
    let n = 3 * (1u64 << 20) / PAYLOAD as u64;
    let packets = (1..=n).map(|seq| Packet::new(src.clone(), t(seq), make_payload(seq, PAYLOAD)));
    let put = guard("put", w.put_pipelined(packets, 32)).await.unwrap();
    assert_eq!((put.first, put.last, put.count), (2, n + 1, n));
    let newest = n + 1;
    let stat = w.stat().await.unwrap();
    let oldest = stat.ring.oldest.expect("ring not empty").pktid;
    assert!(
        oldest > 4,
        "the ring should have been lapped (oldest {oldest})"
    );
    // The idle reader has not looked yet; the live one still had one credit and, on a
    // loaded machine, may have woken only after its next packet was overwritten.
    assert!(
        stat.totals.gaps <= 1,
        "only the live reader may have met the lap yet ({} gaps)",
        stat.totals.gaps
    );

    // The live reader goes on: packets already sent, one GAP, then oldest..=newest.
    for _ in 0..=newest {
        let ev = next(&mut stream).await;
        let done = matches!(&ev, ReapEvent::Packet(p) if p.pktid == newest);
        live_evs.push(ev);
        if done {
            break;
        }
    }
    let live_gap = check_lapped(&live_evs, 1, oldest, newest, PAYLOAD);
    assert!(live_gap.first >= 2);

    // The idle reader's first reap starts with its gap.
    let mut s = idle
        .reap(ReapOptions {
            timeout: Some(Duration::ZERO),
            ..ReapOptions::default()
        })
        .await
        .unwrap();
    let mut idle_evs = Vec::new();
    while let Some(ev) = guard("poll", s.next()).await.unwrap() {
        idle_evs.push(ev);
        assert!(idle_evs.len() as u64 <= newest + 1, "too many events");
    }
    assert!(matches!(idle_evs[0], ReapEvent::Gap { first: 1, .. }));
    let idle_gap = check_lapped(&idle_evs, 1, oldest, newest, PAYLOAD);

    // Totals and the per-client rows count both gaps.
    let stat = w.stat().await.unwrap();
    let tot = &stat.totals;
    assert_eq!(tot.gaps, 2);
    let lost = |g: Gap| g.last - g.first + 1;
    assert_eq!(tot.gap_packets, lost(live_gap) + lost(idle_gap));
    assert_eq!(tot.gap_bytes, live_gap.bytes + idle_gap.bytes);
    let clients = w.clients().await.unwrap().clients;
    for id in [live_id, idle_id] {
        let row = clients.iter().find(|c| c.id == id).expect("reader row");
        assert_eq!(row.gaps, 1, "{}", row.what);
        assert_eq!(row.pos, newest + 1, "{}", row.what);
    }
    let end = stream.stop().await.unwrap();
    assert_eq!(end.pos, newest + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_never_reads_stalls_neither_writers_nor_other_readers() {
    const PAYLOAD: usize = 64 * 1024;
    const TOTAL: u64 = 20 << 20;
    let n = TOTAL / PAYLOAD as u64;
    // The ring holds everything, so the normal reader can be checked for every packet.
    let (_dir, srv) = start_with(&["--ring-size", "32MiB", "--flush", "none"]);
    let mut w = connect(&srv, "e2e-writer").await;

    // HELLO, SEEK OLDEST and a REAP with a huge credit, then never a read.
    let mut slow = std::net::TcpStream::connect(srv.addr).unwrap();
    slow.set_write_timeout(Some(GUARD)).unwrap();
    let mut req = encode_frame(
        1,
        Body::Hello {
            version: 1,
            access: Access {
                read: true,
                write: false,
            },
            pid: std::process::id(),
            who: "slow@e2e",
            what: "e2e-slow-reader",
            token: None,
        },
    );
    req.extend(encode_frame(
        2,
        Body::Seek {
            whence: Whence::Oldest,
            pktid: 0,
        },
    ));
    req.extend(encode_frame(
        3,
        Body::Reap {
            max_packets: 0,
            timeout_ms: NO_TIMEOUT,
            credit: 1_000_000,
        },
    ));
    slow.write_all(&req).unwrap();
    let mut slow_id = None;
    for _ in 0..3000 {
        let clients = w.clients().await.unwrap().clients;
        if let Some(c) = clients
            .iter()
            .find(|c| c.what == "e2e-slow-reader" && c.reaping)
        {
            slow_id = Some(c.id);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let slow_id = slow_id.expect("the slow reader's reap never started");

    // A normal reader from the oldest packet, concurrently with the writer.
    let mut r = connect(&srv, "e2e-normal-reader").await;
    assert_eq!(r.seek(Whence::Oldest, 0).await.unwrap(), 1);
    let reader = tokio::spawn(async move {
        let mut s = r.reap(ReapOptions::default()).await.unwrap();
        let mut expect = 1;
        while expect <= n {
            match next(&mut s).await {
                ReapEvent::Packet(p) => {
                    assert_eq!(p.pktid, expect);
                    assert_eq!(check_payload(&p.payload), Some(expect));
                    expect += 1;
                }
                gap => panic!("the normal reader lost packets: {gap:?}"),
            }
        }
        s.stop().await.unwrap();
        expect - 1
    });

    let src = SrcName::new("XX_SLOW/MGENC").unwrap();
    let packets = (1..=n).map(|seq| Packet::new(src.clone(), t(seq), make_payload(seq, PAYLOAD)));
    let put = guard(
        "putting 20 MiB past a stuck reader",
        w.put_pipelined(packets, 16),
    )
    .await
    .unwrap();
    assert_eq!((put.first, put.last, put.count), (1, n, n));
    let read = guard("the normal reader", reader).await.unwrap();
    assert_eq!(read, n);

    // The stuck reader is still there, still reaping; then it goes away.
    let clients = w.clients().await.unwrap().clients;
    let row = clients.iter().find(|c| c.id == slow_id).expect("slow row");
    assert!(row.reaping);
    // Socket buffers hold a few MiB at most: the rest never left the ring for it.
    assert!(
        row.packets_out < n,
        "the slow reader was sent everything ({} packets): it was not stuck",
        row.packets_out
    );
    drop(slow);
    let mut gone = false;
    for _ in 0..3000 {
        let clients = w.clients().await.unwrap().clients;
        if clients.iter().all(|c| c.id != slow_id) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        gone,
        "the dropped slow reader's connection was never closed"
    );
    let stat = w.stat().await.unwrap();
    assert_eq!(stat.ring.npkts, n);
    assert_eq!(stat.totals.packets_in, n);
    let pktid = w.put(&src, t(0), b"after").await.unwrap();
    assert_eq!(pktid, n + 1);
    assert_eq!(
        w.get(pktid).await.unwrap().unwrap().payload.as_ref(),
        b"after"
    );
}
