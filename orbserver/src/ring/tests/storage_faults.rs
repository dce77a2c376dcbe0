//! The durability rules of RING-FORMAT.md sections 6 and 7, pinned with the in-memory
//! storage of `ring::testing`: failing flushes, power failures at every flush, and a
//! header page that reached the disk before the data it announces.
//!
//! A power failure is simulated by reopening the durable image (what flushes and kernel
//! write-backs copied to the disk), a process kill by reopening the written image.

use std::collections::BTreeMap;

use super::*;
use crate::ring::layout::HEADER_SIZE;
use crate::ring::testing::{Fault, MemStorage, SimDisk};

type MemRing = RingStore<MemStorage>;

/// What was appended, by pktid: srcname, time and payload.
type Sent = BTreeMap<u64, (String, i64, Vec<u8>)>;

const SOURCES: [&str; 3] = ["AZ_PFO_BHZ/MGENC/M40", "TA_O20A_/MGENC/MSTV", "/pf/orbstat"];

fn options(flush: FlushPolicy) -> RingOptions {
    RingOptions {
        size: Some(MIB),
        flush,
    }
}

fn mem_ring(flush: FlushPolicy) -> (MemRing, SimDisk) {
    MemRing::create_in_memory(&options(flush)).unwrap()
}

fn reopen(image: Vec<u8>) -> MemRing {
    MemRing::open_image(image, &options(FlushPolicy::None))
        .unwrap()
        .0
}

/// The `i`-th packet of a workload: sizes from 100 bytes to about 36 KiB, so records
/// cross page boundaries and a few dozen wrap a 1 MiB ring.
fn packet(i: u64) -> (&'static str, Time, Vec<u8>) {
    let len = 100 + (i as usize * 7919) % 36_000;
    (
        SOURCES[i as usize % SOURCES.len()],
        Time::from_micros(1_000_000 * i as i64),
        payload(i, len),
    )
}

/// Appends packet `i`, plainly or as a durable put (a batch of one with `durable`).
/// It is recorded in `sent` under the pktid it gets before the append is tried: an
/// append that fails may still have written its record, which readers then see.
fn put(ring: &MemRing, i: u64, durable: bool, sent: &mut Sent) -> Result<u64, RingError> {
    let (src, time, data) = packet(i);
    let pktid = ring.stat().next_pktid;
    sent.entry(pktid)
        .or_insert_with(|| (src.to_string(), time.as_micros(), data.clone()));
    let got = if durable {
        ring.append_batch([(src, time, &data[..])], true)?.0
    } else {
        ring.append(&name(src), time, &data)?
    };
    assert_eq!(got, pktid);
    Ok(pktid)
}

/// Every packet the ring serves, checked against what was sent with its pktid: a
/// corrupt packet (wrong bytes, wrong source, wrong time, unknown pktid) fails here.
/// Returns the pktids served, in order.
fn served(ring: &MemRing, sent: &Sent, what: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let o = ring.read_from(0, usize::MAX, |_| true, &mut out);
    assert_eq!(
        o.corrupt, 0,
        "{what}: records failing their check when read"
    );
    for p in &out {
        let (src, time, data) = sent
            .get(&p.pktid)
            .unwrap_or_else(|| panic!("{what}: pktid {} was never sent", p.pktid));
        assert_eq!(
            (p.srcname.as_str(), p.time.as_micros()),
            (src.as_str(), *time),
            "{what}: pktid {}",
            p.pktid
        );
        assert!(p.payload[..] == data[..], "{what}: payload of {}", p.pktid);
    }
    let ids: Vec<u64> = out.iter().map(|p| p.pktid).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{what}: ring order");
    ids
}

/// Rule (a) for a flush failing at call `k` counted from the first flush of the
/// append of packet `fail_at` (its step-2 header msync if it raises `pktid_hwm`, then
/// the step-6 msync of its data, then of its header page).
fn poison_case(fail_at: u64, k: u64) {
    let what = format!("flush {k} of append {fail_at}");
    let (ring, disk) = mem_ring(FlushPolicy::Always);
    let mut sent = Sent::new();
    for i in 1..fail_at {
        put(&ring, i, false, &mut sent).unwrap();
    }
    let before = ring.stat().next_pktid;
    let first = disk.calls().len() as u64;
    disk.fail(Fault::Call(first + k));
    let err = put(&ring, fail_at, false, &mut sent).unwrap_err();
    assert!(matches!(err, RingError::Io { .. }), "{what}: {err}");
    let calls = disk.calls();
    assert!(
        calls.last().is_some_and(|c| c.failed && c.n == first + k),
        "{what}: the failing flush is the last one made: {calls:?}"
    );
    // Later appends are refused, however they come; nothing more is flushed.
    let e = put(&ring, fail_at + 1, false, &mut sent).unwrap_err();
    assert!(matches!(e, RingError::Poisoned(_)), "{what}: {e}");
    let e = put(&ring, fail_at + 1, true, &mut sent).unwrap_err();
    assert!(matches!(e, RingError::Poisoned(_)), "{what}: {e}");
    assert_eq!(disk.calls().len(), calls.len(), "{what}");
    // Readers still read everything written before. The packet whose flush failed is
    // served too if its record was written (a step-6 failure): it is in the process's
    // pages, only its durability is unknown.
    let seen = served(&ring, &sent, &what);
    // The acknowledged packets the ring still holds (a full ring dropped older ones).
    let oldest = seen.first().copied().unwrap_or(1);
    let acked: Vec<u64> = (oldest..before).collect();
    assert!(seen.starts_with(&acked), "{what}: {seen:?}");
    assert!(seen.len() <= acked.len() + 1, "{what}: {seen:?}");
    let images = ring.images();
    ring.close_unclean();
    // Power failure: every acknowledged packet is back, nothing corrupt, and no pktid
    // that may have been seen is handed out again.
    let ring = reopen(images.durable);
    let ids = served(&ring, &sent, &format!("{what}, power failure"));
    // The failed append's record may be on disk too (only its header sync failed), and
    // without it the window may reach further back.
    assert!(
        acked.iter().all(|p| ids.binary_search(p).is_ok())
            && ids.last() >= acked.last()
            && ids.last() <= seen.last(),
        "{what}, power failure: acknowledged {acked:?}, recovered {ids:?}"
    );
    assert!(ring.recovery().next_pktid >= before, "{what}");
    let seen_max = seen.last().copied().unwrap_or(0);
    assert!(ring.recovery().next_pktid > seen_max, "{what}");
    drop(ring);
    // Process kill (or a restart after the error): what was written comes back.
    let ring = reopen(images.written);
    let ids_kill = served(&ring, &sent, &format!("{what}, kill"));
    assert!(ids_kill.starts_with(&acked), "{what}, kill");
    assert!(ring.recovery().next_pktid > *ids_kill.last().unwrap_or(&0));
    ring.append(&name("X/GEN"), Time::from_micros(0), b"after the restart")
        .unwrap();
}

#[test]
fn a_failed_flush_poisons_the_ring_and_reopening_recovers_the_durable_state() {
    // The first append raises pktid_hwm (step 2): its header msync may fail too.
    for k in 0..3 {
        poison_case(1, k);
    }
    // A later append, after a wrap, syncs its data and then its header page.
    for k in 0..2 {
        poison_case(70, k);
    }
}

#[test]
fn a_failed_flush_of_a_chosen_range_poisons_the_ring() {
    let (ring, disk) = mem_ring(FlushPolicy::Always);
    let mut sent = Sent::new();
    put(&ring, 1, false, &mut sent).unwrap();
    // Every flush touching the data area's second page fails from now on.
    let page = HEADER_SIZE + 4096;
    disk.fail(Fault::Overlapping(page..page + 4096));
    let mut i = 2;
    let err = loop {
        match put(&ring, i, false, &mut sent) {
            Ok(_) => i += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, RingError::Io { .. }), "{err}");
    let failed = disk.calls().into_iter().find(|c| c.failed).unwrap();
    assert!(failed.range.start < page + 4096 && page < failed.range.end);
    let e = put(&ring, i + 1, false, &mut sent).unwrap_err();
    assert!(matches!(e, RingError::Poisoned(_)), "{e}");
    let durable = ring.images().durable;
    ring.close_unclean();
    let ring = reopen(durable);
    assert_eq!(served(&ring, &sent, "range"), (1..i).collect::<Vec<_>>());
}

/// A workload of `n` appends, each acknowledged only once durable: plain appends under
/// `flush = always`, or durable puts under `flush = none`. The power fails at flush
/// call `cut` (that call and all later ones reach nothing), or never.
fn durable_workload(flush: FlushPolicy, n: u64, cut: Option<u64>) -> (usize, String) {
    let what = format!("{flush}, power cut at flush {cut:?}");
    let (ring, disk) = mem_ring(flush);
    if let Some(c) = cut {
        disk.fail(Fault::PowerCutAt(c));
    }
    let mut sent = Sent::new();
    let mut acked = Vec::new();
    for i in 1..=n {
        match put(&ring, i, flush != FlushPolicy::Always, &mut sent) {
            Ok(pktid) => acked.push(pktid),
            Err(_) => break,
        }
    }
    let handed_out = ring.stat().next_pktid;
    let calls = disk.calls().len();
    let durable = ring.images().durable;
    ring.close_unclean();
    let ring = reopen(durable);
    let ids = served(&ring, &sent, &what);
    // Every acknowledged packet still in the live window of the ring is back.
    let oldest = ids.first().copied().unwrap_or(u64::MAX);
    let live: Vec<u64> = acked.iter().copied().filter(|&p| p >= oldest).collect();
    assert!(
        live.iter().all(|p| ids.binary_search(p).is_ok()),
        "{what}: acknowledged {acked:?}, recovered {ids:?}"
    );
    if let Some(&newest) = acked.last() {
        assert!(
            ids.contains(&newest),
            "{what}: newest acknowledged {newest}"
        );
    }
    assert!(ring.recovery().next_pktid >= handed_out, "{what}");
    assert!(ring.recovery().corrupt.is_empty(), "{what}");
    (calls, what)
}

#[test]
fn under_flush_always_every_acknowledged_append_survives_a_power_failure_at_any_flush() {
    let n = 70;
    let (total, _) = durable_workload(FlushPolicy::Always, n, None);
    assert!(total > 2 * n as usize, "{total} flushes");
    // Calls 0 and 1 are the creation's and the open's header msyncs.
    for cut in 2..total as u64 {
        durable_workload(FlushPolicy::Always, n, Some(cut));
    }
}

#[test]
fn durable_puts_under_flush_none_survive_a_power_failure_at_any_flush() {
    let n = 70;
    let (total, _) = durable_workload(FlushPolicy::None, n, None);
    for cut in 2..total as u64 {
        durable_workload(FlushPolicy::None, n, Some(cut));
    }
}

/// xorshift64: deterministic page choices without a dependency.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn under_flush_none_a_power_failure_loses_packets_but_never_yields_a_corrupt_one() {
    let n = 80;
    for seed in 1..=6u64 {
        for cut in (0..=n).step_by(4) {
            let what = format!("seed {seed}, power cut after append {cut}");
            let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let (ring, disk) = mem_ring(FlushPolicy::None);
            let mut sent = Sent::new();
            for i in 1..=cut {
                put(&ring, i, false, &mut sent).unwrap();
                // The kernel writes back a few pages of its choice, now and then the
                // header page, in no particular order.
                for _ in 0..rng.below(4) {
                    let page = rng.below((HEADER_SIZE as u64 + MIB) / 4096) as usize;
                    disk.write_back(page * 4096..(page + 1) * 4096);
                }
            }
            let handed_out = ring.stat().next_pktid;
            let durable = ring.images().durable;
            ring.close_unclean();
            let ring = reopen(durable);
            served(&ring, &sent, &what);
            assert!(ring.recovery().next_pktid >= handed_out, "{what}");
        }
    }
}

/// Rule (b): the header page reaches the disk while the data it announces does not.
/// Section 6 step 6 syncs an append's data and then the header page, without the write
/// lock; a later append that runs in between has its `next_pktid` in that header page
/// but its record only in memory. `partial` also lets the kernel write back the first
/// page of that later record (a torn record on disk).
///
/// Under `flush = none` packets 1 to 6 are durable puts and 7 a plain append, never
/// synced. Under `always` every append syncs, so 7's own data msync is made to fail
/// (its append errs and poisons the ring) before 6's header msync goes through.
fn header_durable_data_not(flush: FlushPolicy, partial: bool) {
    let (ring, disk) = mem_ring(flush);
    let ring = Arc::new(ring);
    let durable_put = flush != FlushPolicy::Always;
    let mut sent = Sent::new();
    for i in 1..=5 {
        put(&ring, i, durable_put, &mut sent).unwrap();
    }
    // The append of packet 6 makes two flushes: its data, then the header page.
    // Packet 7 is written between them.
    let header_call = disk.calls().len() as u64 + 1;
    let (src7, time7, data7) = packet(7);
    let (r, d) = (Arc::clone(&ring), disk.clone());
    disk.before_flush(header_call, move || {
        if durable_put {
            let pktid = r.append(&name(src7), time7, &data7).unwrap();
            assert_eq!(pktid, 7);
        } else {
            // 7's data msync is the next flush call; 6's header msync comes after it.
            d.fail(Fault::Call(d.calls().len() as u64));
            let e = r.append(&name(src7), time7, &data7).unwrap_err();
            assert!(matches!(e, RingError::Io { .. }), "{e}");
        }
        if partial {
            let start = HEADER_SIZE + (r.lpos_of(7) % MIB) as usize;
            let page_end = (start / 4096 + 1) * 4096;
            d.write_back(start..page_end);
        }
    });
    let six = put(&ring, 6, durable_put, &mut sent).unwrap();
    assert_eq!(six, 6);
    let calls = disk.calls();
    assert_eq!(calls.last().unwrap().range, 0..HEADER_SIZE, "{calls:?}");
    let (src, time, data) = packet(7);
    sent.insert(7, (src.into(), time.as_micros(), data));
    let images = ring.images();
    // The header page on disk announces packet 7; its record is not there whole.
    let durable_next = layout::u64_at(&images.durable, layout::H_NEXT_PKTID);
    assert_eq!(durable_next, Some(8));
    let ring = Arc::try_unwrap(ring)
        .ok()
        .expect("the hook let go of the ring");
    ring.close_unclean();

    let ring = reopen(images.durable);
    let what = format!("header durable, data not ({flush}, partial {partial})");
    let ids = served(&ring, &sent, &what);
    assert_eq!(ids, (1..=6).collect::<Vec<_>>(), "{what}");
    let r = ring.recovery();
    assert!(r.next_pktid > 7, "{what}: pktid 7 was handed out");
    assert!(r.corrupt.is_empty(), "{what}: {:?}", r.corrupt);
    assert_eq!(r.torn_tail, partial.then_some(7), "{what}");
}

#[test]
fn header_durable_before_a_later_records_data_recovers_without_it() {
    for flush in [FlushPolicy::None, FlushPolicy::Always] {
        header_durable_data_not(flush, false);
        header_durable_data_not(flush, true);
    }
}
