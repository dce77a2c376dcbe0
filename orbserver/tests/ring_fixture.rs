//! A ring file written by format version 1, committed under `tests/fixtures/ring-v1/`,
//! must keep opening with every packet intact, and take appends after it
//! (CONTRIBUTING.md: a format change keeps a fixture of the old format).
//!
//! The fixture was made by the ignored test `write_ring_fixture` below:
//! `cargo test -p orbserver --test ring_fixture -- --ignored write_ring_fixture`.
//! Regenerate it only on purpose: a fixture that changes with the code pins nothing.

use std::fs;
use std::path::{Path, PathBuf};

use formats::{SrcName, Time};
use orbserver::ring::{FlushPolicy, RingOptions, RingStore, RING_FILE};

/// Capacity of the fixture ring: the smallest the format allows.
const CAPACITY: u64 = 1 << 20;
/// 2024-01-01T00:00:00Z in microseconds.
const T0: i64 = 1_704_067_200_000_000;
const SOURCES: [&str; 3] = [
    "AZ_PFO__BHZ/MGENC/M40",
    "TA_O20A_/MGENC/MSTV",
    "/pf/orbstat",
];

/// One packet the generator appends.
struct Sent {
    srcname: &'static str,
    time_us: i64,
    payload: Vec<u8>,
}

/// The packets appended to the fixture, in order; packet `i` gets pktid `i + 1`.
///
/// Six small packets; five of 230,000 bytes, which fill the ring and wrap it (the
/// fifth starts lap 1, overwriting the first seven packets and leaving dead space at
/// the end of lap 0); three small packets after the wrap. One time goes backwards.
fn packets() -> Vec<Sent> {
    let sizes = [1, 20, 300, 512, 1000, 4000]
        .into_iter()
        .chain([230_000; 5])
        .chain([0, 77, 2048]);
    sizes
        .enumerate()
        .map(|(i, len)| {
            let time_us = if i == 12 {
                T0 - 3_600_000_000
            } else {
                T0 + i as i64 * 1_000_000 + 250
            };
            Sent {
                srcname: SOURCES[i % SOURCES.len()],
                time_us,
                // A pattern with a period of 256 bytes: the file compresses well in git.
                payload: (0..len).map(|j| (i * 31 + j * 7) as u8).collect(),
            }
        })
        .collect()
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/ring-v1")
}

fn options() -> RingOptions {
    RingOptions {
        size: None,
        flush: FlushPolicy::None,
    }
}

/// Writes `tests/fixtures/ring-v1/orb.ring` (ignored: run it only to make a new fixture).
#[test]
#[ignore = "writes the committed fixture; run only on purpose"]
fn write_ring_fixture() {
    let dir = fixture();
    let _ = fs::remove_file(dir.join(RING_FILE));
    let ring = RingStore::open(
        &dir,
        &RingOptions {
            size: Some(CAPACITY),
            flush: FlushPolicy::None,
        },
    )
    .unwrap();
    for (i, p) in packets().iter().enumerate() {
        let pktid = ring
            .append(
                &SrcName::new(p.srcname).unwrap(),
                Time::from_micros(p.time_us),
                &p.payload,
            )
            .unwrap();
        assert_eq!(pktid, i as u64 + 1);
    }
    ring.close().unwrap();
}

#[test]
fn the_version_1_fixture_opens_with_every_packet_and_takes_appends() {
    let tmp = tempfile::tempdir().unwrap();
    fs::copy(fixture().join(RING_FILE), tmp.path().join(RING_FILE)).unwrap();
    let sent = packets();
    let ring = RingStore::open(tmp.path(), &options()).unwrap();
    let r = ring.recovery();
    assert!(r.clean && !r.created, "{r:?}");
    assert!(
        r.corrupt.is_empty() && r.dropped == 0 && r.torn_tail.is_none(),
        "{r:?}"
    );
    assert_eq!((r.packets, r.next_pktid), (7, 15), "{r:?}");
    assert_eq!(ring.capacity(), CAPACITY);

    let mut out = Vec::new();
    let o = ring.read_from(0, usize::MAX, |_| true, &mut out);
    assert_eq!(o.corrupt, 0);
    let ids: Vec<u64> = out.iter().map(|p| p.pktid).collect();
    assert_eq!(ids, (8..=14).collect::<Vec<u64>>());
    for p in &out {
        let s = &sent[p.pktid as usize - 1];
        assert_eq!(p.srcname.as_str(), s.srcname, "pktid {}", p.pktid);
        assert_eq!(p.time.as_micros(), s.time_us, "pktid {}", p.pktid);
        assert!(
            p.payload[..] == s.payload[..],
            "payload of pktid {}",
            p.pktid
        );
    }
    // The wrap: pktid 11 starts lap 1, so the head is past the capacity.
    assert!(ring.head_lpos() > CAPACITY);
    assert!(ring.lpos_of(11) == CAPACITY, "{}", ring.lpos_of(11));
    assert_eq!(ring.get(7).unwrap(), None);
    assert_eq!(ring.after(Time::from_micros(T0)).unwrap().pktid, 8);
    let sources = ring.sources();
    assert_eq!(sources.len(), 3);
    assert_eq!(sources.iter().map(|s| s.npkts).sum::<u64>(), 7);

    let extra = SrcName::new("XX_NEW/MGENC/EXTRA").unwrap();
    let pktid = ring
        .append(&extra, Time::from_micros(T0), b"appended after the fixture")
        .unwrap();
    assert_eq!(pktid, 15);
    ring.close().unwrap();

    let ring = RingStore::open(tmp.path(), &options()).unwrap();
    assert_eq!(ring.recovery().packets, 8);
    let p = ring.get(15).unwrap().unwrap();
    assert_eq!(
        (p.srcname.as_str(), &p.payload[..]),
        (extra.as_str(), &b"appended after the fixture"[..])
    );
    let p = ring.get(13).unwrap().unwrap();
    assert_eq!(p.time.as_micros(), T0 - 3_600_000_000);
}
