//! Crash and corruption tests: torn tails, bit flips, zeroed pages, truncated files and
//! bad headers must give the result RING-FORMAT.md section 7 documents, never a panic.

use std::fs;
use std::path::Path;

use super::*;
use crate::ring::layout::{self, HEADER_SIZE};

fn ring_file(dir: &Path) -> std::path::PathBuf {
    dir.join(RING_FILE)
}

/// A ring with `n` packets of varied sizes from two sources, left unclean.
fn unclean_ring(dir: &Path, n: u64, size: u64) {
    let ring = open(dir, size);
    for i in 1..=n {
        let src = if i % 2 == 0 {
            "TA_M04C/MGENC/EP40"
        } else {
            "/pf/orbstat"
        };
        ring.append(
            &name(src),
            Time::from_micros(i as i64 * 1000),
            &payload(i, 50 + (i as usize * 37) % 900),
        )
        .unwrap();
    }
    ring.drop_unclean();
}

fn assert_payloads_right(ring: &RingStore) {
    let mut out = Vec::new();
    let o = ring.read_from(0, usize::MAX, |_| true, &mut out);
    assert_eq!(o.corrupt, 0);
    for p in &out {
        assert_eq!(
            p.payload[..],
            payload(p.pktid, 50 + (p.pktid as usize * 37) % 900)[..],
            "pktid {}",
            p.pktid
        );
    }
}

fn live_pktids(ring: &RingStore) -> Vec<u64> {
    let mut out = Vec::new();
    ring.read_from(0, usize::MAX, |_| true, &mut out);
    out.iter().map(|p| p.pktid).collect()
}

/// Writes the image to a fresh directory and opens it there.
fn open_image(image: &[u8]) -> (tempfile::TempDir, Result<RingStore, RingError>) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(ring_file(dir.path()), image).unwrap();
    let r = RingStore::open(
        dir.path(),
        &RingOptions {
            size: None,
            flush: FlushPolicy::None,
        },
    );
    (dir, r)
}

fn torn_tail_case(n_before: u64) {
    let dir = tempfile::tempdir().unwrap();
    unclean_ring(dir.path(), n_before, MIB);
    let before = fs::read(ring_file(dir.path())).unwrap();
    let (oldest_before, newest_before, head_before) = {
        let ring = open(dir.path(), MIB);
        let oldest = ring.oldest().unwrap().pktid;
        let newest = ring.newest().unwrap().pktid;
        let next = ring.recovery().next_pktid;
        // Append one more packet and find where it went.
        let pktid = ring
            .append(
                &name("/pf/orbstat"),
                Time::from_micros(1),
                &payload(next, 50 + (next as usize * 37) % 900),
            )
            .unwrap();
        assert_eq!(pktid, next);
        ring.drop_unclean();
        (oldest, newest, next)
    };
    let after = fs::read(ring_file(dir.path())).unwrap();
    let changed: Vec<usize> = (HEADER_SIZE..after.len())
        .filter(|&i| before[i] != after[i])
        .collect();
    let (lo, hi) = (*changed.first().unwrap(), *changed.last().unwrap() + 1);
    assert_eq!(
        &after[lo..lo + 4],
        b"ORBR",
        "the first changed byte starts the record"
    );
    // Padding is not covered by the CRC: the record is whole once its last payload byte
    // is written.
    let whole =
        layout::RECORD_HEADER + "/pf/orbstat".len() + 50 + (head_before as usize * 37) % 900;
    let oldest_full = {
        let (_d, ring) = open_image(&after);
        let ring = ring.unwrap();
        assert_eq!(ring.newest().unwrap().pktid, head_before);
        ring.oldest().unwrap().pktid
    };
    // Crash after every prefix of the record's bytes was written.
    for k in 0..hi - lo {
        let mut image = before.clone();
        image[lo..lo + k].copy_from_slice(&after[lo..lo + k]);
        let (_d, ring) = open_image(&image);
        let ring = ring.unwrap_or_else(|e| panic!("prefix {k}: {e}"));
        let ids = live_pktids(&ring);
        if k >= whole {
            assert_eq!(
                *ids.last().unwrap(),
                head_before,
                "prefix {k}: the whole record must be kept"
            );
            assert!(ring.recovery().next_pktid > head_before);
            continue;
        }
        assert_eq!(
            *ids.last().unwrap(),
            newest_before,
            "prefix {k}: the torn record must be dropped"
        );
        if k >= layout::RECORD_HEADER {
            assert_eq!(
                ring.recovery().torn_tail,
                Some(head_before),
                "prefix {k}: reported as torn"
            );
        }
        assert!(
            ids.windows(2).all(|w| w[1] == w[0] + 1),
            "prefix {k}: no hole"
        );
        assert!(
            (oldest_before..=oldest_full).contains(&ids[0]),
            "prefix {k}"
        );
        assert!(ring.recovery().next_pktid >= head_before, "prefix {k}");
        assert!(
            ring.recovery().corrupt.is_empty(),
            "prefix {k}: {:?}",
            ring.recovery().corrupt
        );
        assert_payloads_right(&ring);
    }
}

#[test]
fn torn_tail_at_every_byte_offset() {
    // Mid-lap, with no wrap yet.
    torn_tail_case(40);
}

#[test]
fn torn_tail_at_every_byte_offset_after_wraps() {
    // Enough packets to wrap a 1 MiB ring a few times, so the torn record overwrites the
    // oldest live records.
    torn_tail_case(6000);
}

#[test]
fn bit_flip_in_the_middle_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    unclean_ring(dir.path(), 200, MIB);
    let path = ring_file(dir.path());
    let mut image = fs::read(&path).unwrap();
    // Find pktid 100's record by its payload prefix and flip a bit in its payload.
    let needle = 100u64.to_le_bytes();
    let at = image.windows(8).rposition(|w| w == needle).unwrap();
    image[at + 20] ^= 0x10;
    let (_d, ring) = open_image(&image);
    let ring = ring.unwrap();
    let ids = live_pktids(&ring);
    assert_eq!(ids.len(), 199);
    assert!(!ids.contains(&100));
    let r = ring.recovery();
    assert_eq!(r.corrupt.len(), 1);
    assert_eq!(
        (r.corrupt[0].after_pktid, r.corrupt[0].before_pktid),
        (99, 101)
    );
    assert_payloads_right(&ring);
    assert!(ring.recovery().next_pktid > 200);
}

#[test]
fn bit_flip_in_a_length_field_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    unclean_ring(dir.path(), 200, MIB);
    let mut image = fs::read(ring_file(dir.path())).unwrap();
    let at = image
        .windows(8)
        .rposition(|w| w == 50u64.to_le_bytes())
        .unwrap();
    // The payload starts after the 40-byte header and a 18-byte srcname (pktid 50 is even).
    let record = at - 40 - "TA_M04C/MGENC/EP40".len();
    image[record + layout::R_PAYLOAD_LEN + 2] ^= 0x01;
    let (_d, ring) = open_image(&image);
    let ring = ring.unwrap();
    let ids = live_pktids(&ring);
    assert_eq!(ids.len(), 199);
    assert!(!ids.contains(&50));
    assert_payloads_right(&ring);
}

#[test]
fn zeroed_page_in_the_middle_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    unclean_ring(dir.path(), 1000, MIB);
    let mut image = fs::read(ring_file(dir.path())).unwrap();
    let page = HEADER_SIZE + 64 * 4096;
    image[page..page + 4096].fill(0);
    let (_d, ring) = open_image(&image);
    let ring = ring.unwrap();
    let ids = live_pktids(&ring);
    let missing = 1000 - ids.len();
    assert!(
        (4..=12).contains(&missing),
        "a 4 KiB page holds 4 to 12 of these records; {missing} missing"
    );
    assert_eq!(ring.recovery().corrupt.len(), 1);
    let c = &ring.recovery().corrupt[0];
    assert_eq!(c.before_pktid - c.after_pktid - 1, missing as u64);
    assert_payloads_right(&ring);
}

#[test]
fn truncated_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    unclean_ring(dir.path(), 10, MIB);
    let image = fs::read(ring_file(dir.path())).unwrap();
    for len in [
        0,
        100,
        HEADER_SIZE,
        HEADER_SIZE + (MIB / 2) as usize,
        image.len() - 1,
    ] {
        let (d, ring) = open_image(&image[..len]);
        let e = ring
            .err()
            .unwrap_or_else(|| panic!("a file of {len} bytes must be refused"));
        assert!(
            matches!(e, RingError::BadLength { .. } | RingError::BadHeader { .. }),
            "{len}: {e}"
        );
        assert!(e.to_string().contains("move it away"), "{e}");
        assert_eq!(
            fs::read(ring_file(d.path())).unwrap(),
            &image[..len],
            "a refused file is left as it was"
        );
    }
}

#[test]
fn bad_header_magic_version_and_geometry_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    unclean_ring(dir.path(), 10, MIB);
    let image = fs::read(ring_file(dir.path())).unwrap();
    let mut cases: Vec<(Vec<u8>, &str)> = Vec::new();
    let mut bad = image.clone();
    bad[0] = b'X';
    cases.push((bad, "magic"));
    let mut bad = image.clone();
    layout::put_u64(&mut bad, layout::H_CAPACITY, 2 * MIB);
    cases.push((bad, "checksum"));
    // Wrong geometry with a matching checksum: the file length gives it away.
    let mut bad = image.clone();
    layout::encode_header(
        &mut bad[..HEADER_SIZE],
        layout::Geometry {
            capacity: 2 * MIB,
            created_us: 0,
        },
    );
    cases.push((bad, "truncated"));
    let mut bad = image.clone();
    layout::put_u32(&mut bad, layout::H_VERSION, 2);
    cases.push((bad, "version 2"));
    for (bad, what) in cases {
        let (d, ring) = open_image(&bad);
        let e = ring.err().unwrap();
        assert!(e.to_string().contains(what), "{what}: {e}");
        assert_eq!(
            fs::read(ring_file(d.path())).unwrap(),
            bad,
            "a refused file is left as it was"
        );
    }
}

#[test]
fn random_bytes_under_a_valid_header_never_panic() {
    let mut image = vec![0u8; HEADER_SIZE + MIB as usize];
    layout::encode_header(
        &mut image[..HEADER_SIZE],
        layout::Geometry {
            capacity: MIB,
            created_us: 0,
        },
    );
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in &mut image[HEADER_SIZE..] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let (_d, ring) = open_image(&image);
    let ring = ring.unwrap();
    assert_eq!(ring.stat().npkts, 0);
    assert_eq!(
        ring.append(&name("A/GEN"), Time::from_micros(0), b"fine")
            .unwrap(),
        1
    );
}

#[test]
fn pktids_never_reused_after_unclean_stop() {
    let dir = tempfile::tempdir().unwrap();
    unclean_ring(dir.path(), 10, MIB);
    let ring = open(dir.path(), MIB);
    assert!(!ring.recovery().clean);
    let next = ring
        .append(&name("A/GEN"), Time::from_micros(0), b"x")
        .unwrap();
    assert!(next > 10);
    // The header hint and the high-water mark, not just the records, decide: drop the
    // newest records and the pktids still do not come back.
    ring.drop_unclean();
    let mut image = fs::read(ring_file(dir.path())).unwrap();
    image[HEADER_SIZE..].fill(0);
    let (_d, ring) = open_image(&image);
    let ring = ring.unwrap();
    assert_eq!(ring.stat().npkts, 0);
    assert!(
        ring.append(&name("A/GEN"), Time::from_micros(0), b"y")
            .unwrap()
            > next
    );
    // A clean close continues exactly.
    let dir = tempfile::tempdir().unwrap();
    open(dir.path(), MIB)
        .append(&name("A/GEN"), Time::from_micros(0), b"x")
        .unwrap();
    assert_eq!(
        open(dir.path(), MIB)
            .append(&name("A/GEN"), Time::from_micros(0), b"x")
            .unwrap(),
        2
    );
}

#[test]
fn reopen_scans_only_below_the_scan_limit() {
    let dir = tempfile::tempdir().unwrap();
    let size = 128 * MIB;
    let ring = open(dir.path(), size);
    for i in 1..=10u64 {
        ring.append(&name("A/GEN"), Time::from_micros(0), &payload(i, 1000))
            .unwrap();
    }
    ring.drop_unclean();
    let path = ring_file(dir.path());
    let mut image = fs::read(&path).unwrap();
    let limit = layout::u64_at(&image, layout::H_SCAN_LIMIT).unwrap();
    assert!(
        limit > 10 * 1000 && limit < size,
        "a fresh ring's limit follows its writer: {limit}"
    );
    // A record planted beyond the limit, as no writer of this ring could have put it.
    let at = 100 * MIB as usize;
    let rec = layout::stored_size(5, 3) as usize;
    let off = HEADER_SIZE + at;
    layout::encode_record(
        &mut image[off..off + rec],
        at as u64,
        999_999,
        0,
        b"B/GEN",
        b"far",
    );
    let (_d, ring) = open_image(&image);
    assert_eq!(
        ring.unwrap().stat().npkts,
        10,
        "the scan must stop at the limit"
    );
    // With the limit unknown (a ring written before it existed), everything is scanned.
    layout::put_u64(&mut image, layout::H_SCAN_LIMIT, 0);
    let (_d, ring) = open_image(&image);
    assert_eq!(ring.unwrap().newest().unwrap().pktid, 999_999);
}
