//! Tests of the ring store through its public API, plus crash and model tests.

mod crash;
mod model;
mod storage_faults;

use std::path::Path;
use std::sync::Arc;

use formats::{SrcName, Time};

use super::*;

pub(super) const MIB: u64 = 1 << 20;

pub(super) fn name(s: &str) -> SrcName {
    SrcName::new(s).unwrap()
}

/// A payload that names its pktid, so a test can tell a right packet from a wrong one.
pub(super) fn payload(pktid: u64, len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len)
        .map(|i| (pktid as usize * 31 + i * 7) as u8)
        .collect();
    if len >= 8 {
        v[..8].copy_from_slice(&pktid.to_le_bytes());
    }
    v
}

pub(super) fn open(dir: &Path, size: u64) -> RingStore {
    RingStore::open(
        dir,
        &RingOptions {
            size: Some(size),
            flush: FlushPolicy::None,
        },
    )
    .unwrap()
}

impl RingStore {
    /// Drops the store the way `kill -9` would leave it: no final msync, `clean` stays 0.
    pub(super) fn drop_unclean(self) {
        self.close_unclean();
    }
}

#[test]
fn pktids_start_at_one_and_survive_a_clean_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let ring = open(dir.path(), MIB);
    assert!(ring.recovery().created);
    assert_eq!(ring.oldest(), None);
    for i in 1..=10u64 {
        assert_eq!(
            ring.append(
                &name("TA_M04C/MGENC/EP40"),
                Time::from_micros(i as i64),
                &payload(i, 100)
            )
            .unwrap(),
            i
        );
    }
    ring.close().unwrap();
    let ring = open(dir.path(), MIB);
    let r = ring.recovery();
    assert!(r.clean && !r.created);
    assert_eq!((r.packets, r.next_pktid), (10, 11));
    let p = ring.get(7).unwrap().unwrap();
    assert_eq!(
        (p.pktid, p.srcname.as_str(), p.time.as_micros()),
        (7, "TA_M04C/MGENC/EP40", 7)
    );
    assert_eq!(&p.payload[..], &payload(7, 100)[..]);
    assert_eq!(
        ring.append(&name("X/GEN"), Time::from_micros(0), b"x")
            .unwrap(),
        11
    );
}

#[test]
fn a_full_ring_overwrites_the_oldest_and_keeps_sources_exact() {
    let dir = tempfile::tempdir().unwrap();
    let ring = open(dir.path(), MIB);
    let (a, b) = (name("AZ_PFO_BHZ/MGENC/M40"), name("TA_O20A_/MGENC/MSTV"));
    for i in 1..=3000u64 {
        let src = if i % 3 == 0 { &b } else { &a };
        ring.append(src, Time::from_micros(i as i64), &payload(i, 1000))
            .unwrap();
    }
    let st = ring.stat();
    let (oldest, newest) = (st.oldest.unwrap().pktid, st.newest.unwrap().pktid);
    assert_eq!(newest, 3000);
    assert!(
        oldest > 1000,
        "ring of 1 MiB cannot hold 3000 packets of 1 KB"
    );
    assert_eq!(st.npkts, newest - oldest + 1);
    assert!(st.used_bytes <= MIB && st.used_bytes > MIB - 4 * 1048);
    assert_eq!(ring.get(oldest - 1).unwrap(), None);
    let sb = ring.source("TA_O20A_/MGENC/MSTV").unwrap();
    assert_eq!(sb.newest_pktid, 3000);
    assert_eq!(sb.oldest_pktid, oldest.div_ceil(3) * 3);
    assert_eq!(sb.npkts, (3000 - sb.oldest_pktid) / 3 + 1);
    assert_eq!(sb.nbytes, sb.npkts * 1000);
    let total: u64 = ring.sources().iter().map(|s| s.npkts).sum();
    assert_eq!(total, st.npkts);
}

#[test]
fn after_finds_the_first_packet_in_ring_order_with_out_of_order_times() {
    let dir = tempfile::tempdir().unwrap();
    let ring = open(dir.path(), 4 * MIB);
    // Two sources 1000 s apart, and a clock re-lock in the middle of one.
    let mut times = Vec::new();
    for i in 0..500i64 {
        times.push(1_000_000_000 + i * 1_000_000);
        times.push(i * 1_000_000);
    }
    times[600] = 5;
    for (i, t) in times.iter().enumerate() {
        ring.append(
            &name(if i % 2 == 0 { "A/GEN" } else { "B/GEN" }),
            Time::from_micros(*t),
            &payload(i as u64, 10),
        )
        .unwrap();
    }
    for t in [
        -1,
        0,
        5,
        6,
        1_000_000,
        250_000_000,
        499_000_000,
        499_000_001,
        1_000_000_000,
        1_499_000_000,
        i64::MAX,
    ] {
        let want = times.iter().position(|&x| x >= t).map(|i| i as u64 + 1);
        assert_eq!(
            ring.after(Time::from_micros(t)).map(|p| p.pktid),
            want,
            "after({t})"
        );
    }
}

#[test]
fn visit_back_walks_newest_first_in_bounded_steps_to_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let ring = open(dir.path(), MIB);
    for i in 1..=10u64 {
        let src = if i % 2 == 0 {
            "XX_A/MGENC"
        } else {
            "XX_B/MGENC"
        };
        ring.append(&name(src), Time::from_micros(i as i64), &payload(i, 50))
            .unwrap();
    }
    let keep_a = |_: u32, n: &SrcName| n.as_str() == "XX_A/MGENC";
    let mut seen = Vec::new();
    let next = ring.visit_back(9, 2, keep_a, |r| {
        assert_eq!(&r.payload[..8], &r.pktid.to_le_bytes());
        seen.push(r.pktid)
    });
    assert_eq!(seen, [8, 6]);
    assert_eq!(next, Some(6), "go on below the last one visited");
    let next = ring.visit_back(6, 10, keep_a, |r| seen.push(r.pktid));
    assert_eq!(seen, [8, 6, 4, 2]);
    assert_eq!(next, None, "the oldest packet was looked at");
    // A `before` past the newest starts at the newest; one at the oldest finds nothing.
    let mut all = Vec::new();
    assert_eq!(
        ring.visit_back(u64::MAX, 1, |_, _| true, |r| all.push(r.pktid)),
        Some(10)
    );
    assert_eq!(
        ring.visit_back(1, 5, |_, _| true, |r| all.push(r.pktid)),
        None
    );
    assert_eq!(all, [10]);
}

#[test]
fn next_prev_and_read_from_report_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let ring = open(dir.path(), MIB);
    for i in 1..=2000u64 {
        ring.append(
            &name(if i % 2 == 0 { "A/GEN" } else { "B/GEN" }),
            Time::from_micros(0),
            &payload(i, 2000),
        )
        .unwrap();
    }
    let oldest = ring.oldest().unwrap().pktid;
    assert_eq!(ring.next_after(0).unwrap().pktid, oldest);
    assert_eq!(ring.next_after(1500).unwrap().pktid, 1501);
    assert_eq!(ring.next_after(2000), None);
    assert_eq!(ring.prev_before(1500).unwrap().pktid, 1499);
    assert_eq!(ring.prev_before(oldest), None);
    assert_eq!(ring.prev_before(u64::MAX).unwrap().pktid, 2000);

    let mut out = Vec::new();
    let o = ring.read_from(5, 10, |s| s.as_str() == "A/GEN", &mut out);
    assert_eq!(
        o.gap,
        Some(Gap {
            first: 5,
            last: oldest - 1
        })
    );
    assert_eq!(out.len(), 10);
    assert!(out
        .iter()
        .all(|p| p.pktid % 2 == 0 && p.payload[..] == payload(p.pktid, 2000)[..]));
    assert_eq!(o.next, out.last().unwrap().pktid + 1);
    out.clear();
    let o = ring.read_from(1999, 10, |_| true, &mut out);
    assert_eq!((o.gap, o.next, out.len()), (None, 2001, 2));
    out.clear();
    let o = ring.read_from(2001, 10, |_| true, &mut out);
    assert_eq!((o.next, out.len()), (2001, 0));
}

#[test]
fn oversized_packets_are_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let ring = open(dir.path(), MIB);
    let max = ring.max_payload(5);
    ring.append(&name("A/GEN"), Time::from_micros(0), &vec![1; max])
        .unwrap();
    let e = ring
        .append(&name("A/GEN"), Time::from_micros(0), &vec![1; max + 1])
        .unwrap_err();
    assert!(matches!(e, RingError::PacketTooLarge { .. }), "{e}");
    assert!(e.to_string().contains("use a larger ring"), "{e}");
    let big = vec![0; max + 8];
    let batch = [
        ("A/GEN", Time::from_micros(0), &b"ok"[..]),
        ("A/GEN", Time::from_micros(0), &big[..]),
    ];
    assert!(ring.append_batch(batch, false).is_err());
    assert_eq!(ring.stat().npkts, 1);
}

#[test]
fn size_change_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path(), MIB)
        .append(&name("A/GEN"), Time::from_micros(0), b"keep me")
        .unwrap();
    let e = RingStore::open(
        dir.path(),
        &RingOptions {
            size: Some(2 * MIB),
            ..RingOptions::default()
        },
    )
    .err()
    .unwrap();
    assert!(
        matches!(e, RingError::SizeMismatch { existing, requested, .. } if existing == MIB && requested == 2 * MIB)
    );
    assert!(e.to_string().contains("--ring-size 1048576"), "{e}");
    // No size given: the ring opens at its own size with its packet.
    let ring = RingStore::open(dir.path(), &RingOptions::default()).unwrap();
    assert_eq!(ring.get(1).unwrap().unwrap().payload, &b"keep me"[..]);
}

#[test]
fn bad_sizes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for size in [0, MIB - 4096, MIB + 1, 1 << 41] {
        let e = RingStore::open(
            dir.path(),
            &RingOptions {
                size: Some(size),
                ..RingOptions::default()
            },
        )
        .err()
        .unwrap();
        assert!(matches!(e, RingError::BadSize { .. }), "{e}");
    }
}

#[test]
fn second_open_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _ring = open(dir.path(), MIB);
    let e = RingStore::open(dir.path(), &RingOptions::default())
        .err()
        .unwrap();
    assert!(matches!(e, RingError::Locked { .. }), "{e}");
}

#[test]
fn every_flush_policy_appends_and_reopens() {
    for flush in [
        FlushPolicy::None,
        FlushPolicy::Always,
        FlushPolicy::Interval(std::time::Duration::from_millis(5)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let ring = RingStore::open(
            dir.path(),
            &RingOptions {
                size: Some(MIB),
                flush,
            },
        )
        .unwrap();
        for i in 1..=300u64 {
            ring.append(&name("A/GEN"), Time::from_micros(0), &payload(i, 5000))
                .unwrap();
        }
        let batch: Vec<_> = (0..50)
            .map(|_| ("B/GEN", Time::from_micros(1), &b"batch"[..]))
            .collect();
        assert_eq!(
            ring.append_batch(batch.iter().copied(), false).unwrap(),
            (301, 50)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        ring.drop_unclean();
        let ring = open(dir.path(), MIB);
        assert_eq!(ring.newest().unwrap().pktid, 350, "{flush}");
        assert!(ring.recovery().next_pktid > 350);
    }
}

#[test]
fn readers_in_other_threads_never_see_a_wrong_packet() {
    let dir = tempfile::tempdir().unwrap();
    let ring = Arc::new(open(dir.path(), MIB));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let ring = Arc::clone(&ring);
            std::thread::spawn(move || {
                let mut checked = 0u64;
                let mut next = 1;
                let mut out = Vec::new();
                // Bounded: stop once the last packet was seen, or after a generous count.
                for _ in 0..2_000_000 {
                    if next > 20_000 {
                        break;
                    }
                    out.clear();
                    let o = ring.read_from(next, 64, |_| true, &mut out);
                    assert_eq!(o.corrupt, 0);
                    for p in &out {
                        assert_eq!(
                            p.payload[..],
                            payload(p.pktid, 100 + (p.pktid as usize * 13) % 3000)[..]
                        );
                        checked += 1;
                    }
                    next = o.next;
                    if out.is_empty() {
                        std::thread::yield_now();
                    }
                    if let Some(n) = ring.newest() {
                        let probe = n.pktid.saturating_sub((n.pktid * 7 + r) % 50);
                        if let Some(p) = ring.get(probe).unwrap() {
                            assert_eq!(
                                p.payload[..],
                                payload(probe, 100 + (probe as usize * 13) % 3000)[..]
                            );
                        }
                    }
                }
                checked
            })
        })
        .collect();
    for i in 1..=20_000u64 {
        ring.append(
            &name("A/GEN"),
            Time::from_micros(0),
            &payload(i, 100 + (i as usize * 13) % 3000),
        )
        .unwrap();
    }
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}

#[test]
fn a_visit_looks_at_a_bounded_number_of_records() {
    let dir = tempfile::tempdir().unwrap();
    let ring = open(dir.path(), 8 * MIB);
    let n = VISIT_SCAN_LIMIT as u64 + 10;
    let a = name("A/GEN");
    for _ in 0..n {
        ring.append(&a, Time::from_micros(0), b"").unwrap();
    }
    ring.append(&name("B/GEN"), Time::from_micros(0), b"b")
        .unwrap();
    let mut seen = 0;
    let o = ring.visit_from(
        1,
        1,
        usize::MAX,
        |_, s| s.as_str() == "B/GEN",
        |_| seen += 1,
    );
    assert!(o.more && seen == 0);
    assert_eq!(o.next, VISIT_SCAN_LIMIT as u64 + 1);
    let o = ring.visit_from(
        o.next,
        1,
        usize::MAX,
        |_, s| s.as_str() == "B/GEN",
        |_| seen += 1,
    );
    assert!(!o.more && seen == 1);
    let mut out = Vec::new();
    ring.read_from(1, 5, |s| s.as_str() == "B/GEN", &mut out);
    assert_eq!(out.iter().map(|p| p.pktid).collect::<Vec<_>>(), vec![n + 1]);
}
