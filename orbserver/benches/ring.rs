//! Ring store benchmark (`cargo bench -p orbserver`): 512-byte payloads, every figure
//! printed beside a baseline measured in the same run (so the ratio, not the absolute
//! number, is what carries between machines) and the target from the issue.
//!
//! - `append ... 1st lap`: single appends into a fresh 1 GiB ring, flush `none`. Every
//!   page of the mapping is touched for the first time, so page faults are included.
//! - `append`: the same once the ring has wrapped (steady state). Baseline: copying the
//!   same bytes (40-byte header, srcname, payload) into a ring-sized `Vec<u8>`,
//!   sequentially and wrapping; the gap is the CRC, the lock and the index. Target
//!   >= 5 M/s.
//! - `append_batch`: the same in batches of 64, one lock per batch.
//! - `after(t)`: seeks by time at random `t` on a ring of 2 million packets whose times
//!   are out of order (8 interleaved sources with different clock offsets, and clocks
//!   that now and then jump back). Baseline: `get(pktid)` at random pktids on the same
//!   ring, which also checks a CRC and copies a payload. Target >= 1 M/s. Answers are
//!   checked against a linear scan before timing, so a wrong index cannot look fast.
//! - `reopen after crash`: `RingStore::open` of the wrapped 1 GiB ring left by
//!   `close_unclean`; it scans and checksums the whole file (in page cache). Baseline:
//!   reading the file in 1 MiB chunks through `crc32fast`. Target < 1 s.
//!
//! `ORB_BENCH_QUICK=1` divides sizes and counts by 10 for smoke runs (figures are then
//! only indicative). Rings live in a temporary directory that is removed at the end.

use std::fs::File;
use std::hint::black_box;
use std::io::Read;
use std::time::{Duration, Instant};

use formats::{SrcName, Time};
use orbserver::ring::layout::{stored_size, RECORD_HEADER};
use orbserver::ring::{FlushPolicy, RingOptions, RingStore, RING_FILE};

const PAYLOAD: usize = 512;
const SOURCES: usize = 8;
const BATCH: usize = 64;
/// 2024-01-01T00:00:00Z in microseconds: packet times start here.
const T0: i64 = 1_704_067_200_000_000;

/// xorshift64: deterministic, no dependency, good enough to scatter queries.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Packets from 8 sources, interleaved, 2000 packets/s in all. Each source's clock has
/// its own offset (-28 s .. +21 s) and jitter, and about once per 100 000 packets one
/// re-locks and jumps back by up to a minute, so times are far from monotonic.
struct Feed {
    names: Vec<SrcName>,
    offsets: [i64; SOURCES],
    rng: XorShift,
    i: i64,
}

impl Feed {
    fn new() -> Feed {
        Feed {
            names: (0..SOURCES)
                .map(|k| SrcName::new(&format!("XX/ST{k}/BHZ")).expect("valid srcname"))
                .collect(),
            offsets: std::array::from_fn(|k| (k as i64 - 4) * 7_000_000),
            rng: XorShift(0x9E37_79B9_7F4A_7C15),
            i: 0,
        }
    }

    fn next(&mut self) -> (usize, Time) {
        let src = (self.i % SOURCES as i64) as usize;
        if self.rng.below(100_000) == 0 {
            self.offsets[src] -= self.rng.below(60_000_000) as i64;
        }
        let t = T0 + self.i * 500 + self.offsets[src] + self.rng.below(1000) as i64;
        self.i += 1;
        (src, Time::from_micros(t))
    }
}

fn mps(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64() / 1e6
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "BELOW TARGET"
    }
}

fn append_n(ring: &RingStore, feed: &mut Feed, n: u64, payload: &[u8]) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        let (s, t) = feed.next();
        black_box(ring.append(&feed.names[s], t, payload).expect("append"));
    }
    start.elapsed()
}

fn append_batches(ring: &RingStore, feed: &mut Feed, n: u64, payload: &[u8]) -> Duration {
    let mut batch: Vec<(SrcName, Time, &[u8])> = Vec::with_capacity(BATCH);
    let start = Instant::now();
    for _ in 0..n / BATCH as u64 {
        batch.clear();
        for _ in 0..BATCH {
            let (s, t) = feed.next();
            batch.push((feed.names[s].clone(), t, payload));
        }
        black_box(ring.append_batch(&batch).expect("append_batch"));
    }
    start.elapsed()
}

/// The baseline for appends: the bytes an append must write, copied the same way
/// (sequential, 8-byte aligned, wrapping), with the same feed; no CRC, lock or index.
fn memcpy_n(buf: &mut [u8], pos: &mut usize, feed: &mut Feed, n: u64, payload: &[u8]) -> Duration {
    let mut header = [0u8; RECORD_HEADER];
    let start = Instant::now();
    for i in 0..n {
        let (s, t) = feed.next();
        let name = feed.names[s].as_str().as_bytes();
        let size = stored_size(name.len(), payload.len()) as usize;
        if *pos + size > buf.len() {
            *pos = 0;
        }
        header[16..24].copy_from_slice(&i.to_le_bytes());
        header[24..32].copy_from_slice(&t.as_micros().to_le_bytes());
        let dst = &mut buf[*pos..*pos + size];
        let (h, rest) = dst.split_at_mut(RECORD_HEADER);
        h.copy_from_slice(&header);
        rest[..name.len()].copy_from_slice(name);
        rest[name.len()..name.len() + payload.len()].copy_from_slice(payload);
        *pos += size;
    }
    black_box(&mut *buf);
    start.elapsed()
}

fn main() {
    let quick = std::env::var("ORB_BENCH_QUICK").is_ok_and(|v| v == "1");
    let scale: u64 = if quick { 10 } else { 1 };
    let dir = tempfile::Builder::new()
        .prefix("orb-bench-")
        .tempdir()
        .expect("create temporary directory");
    let payload: Vec<u8> = (0..PAYLOAD).map(|i| i as u8).collect();
    let stored = stored_size("XX/ST0/BHZ".len(), PAYLOAD);
    // Capacities must be multiples of 4096.
    let cap = ((1u64 << 30) / scale) & !4095;
    let seek_pkts = 2_000_000 / scale;
    let steady = 1_000_000 / scale;
    println!(
        "orb ring bench ({}): {PAYLOAD}-byte payloads ({stored} B stored), append ring {} MiB, seek ring {seek_pkts} packets",
        if quick { "ORB_BENCH_QUICK: sizes / 10" } else { "full size" },
        cap >> 20
    );

    // 1. Appends. The first lap fills the fresh file; the timed steady state follows.
    let ring_dir = dir.path().join("append");
    let opts = RingOptions {
        size: Some(cap),
        flush: FlushPolicy::None,
    };
    let ring = RingStore::open(&ring_dir, &opts).expect("create append ring");
    let mut feed = Feed::new();
    let lap = cap / stored;
    let d = append_n(&ring, &mut feed, lap, &payload);
    println!(
        "{:<40}{:>6.2} M/s   (first touch of every page: page faults included)",
        "append 512 B (flush none), 1st lap",
        mps(lap, d)
    );
    let one = mps(steady, append_n(&ring, &mut feed, steady, &payload));
    let batched = mps(steady, append_batches(&ring, &mut feed, steady, &payload));
    // Prefault the baseline buffer (a write per page) so both sides copy into warm pages.
    let mut buf = vec![0xA5u8; cap as usize];
    let mut pos = 0;
    let mut mfeed = Feed::new();
    memcpy_n(&mut buf, &mut pos, &mut mfeed, lap, &payload);
    let copy = mps(
        steady,
        memcpy_n(&mut buf, &mut pos, &mut mfeed, steady, &payload),
    );
    drop(buf);
    for (what, rate) in [
        ("append 512 B (flush none)", one),
        ("append_batch 64 x 512 B (flush none)", batched),
    ] {
        println!(
            "{what:<40}{rate:>6.2} M/s   memcpy {copy:6.2} M/s   ratio {:.2}   target >= 5 M/s  {}",
            rate / copy,
            verdict(rate >= 5.0)
        );
    }

    // 3 (measured now, on the ring just filled). Crash, then reopen: scan + CRC of it all.
    let live = ring.stat().npkts;
    assert!(
        ring.recovery().created && feed.i as u64 > lap + steady,
        "ring has wrapped"
    );
    ring.close_unclean();
    let start = Instant::now();
    let ring = RingStore::open(&ring_dir, &opts).expect("reopen after crash");
    let reopen = start.elapsed();
    let r = ring.recovery();
    assert!(!r.clean && r.corrupt.is_empty() && r.dropped == 0 && r.torn_tail.is_none());
    assert_eq!(r.packets, live, "every live packet recovered");
    let recovered = r.packets;
    // Unclean again: a clean close would msync 1 GiB to disk, which is not measured here.
    ring.close_unclean();
    let start = Instant::now();
    let mut file = File::open(ring_dir.join(RING_FILE)).expect("open ring file");
    let mut chunk = vec![0u8; 1 << 20];
    let mut crc = crc32fast::Hasher::new();
    loop {
        let n = file.read(&mut chunk).expect("read ring file");
        if n == 0 {
            break;
        }
        crc.update(&chunk[..n]);
    }
    black_box(crc.finalize());
    let read_crc = start.elapsed();
    std::fs::remove_dir_all(&ring_dir).expect("remove append ring");

    // 2. Seeks by time. The ring holds `seek_pkts` packets after a partial wrap, so the
    // oldest block of the time index is partly evicted, as in a running server.
    let seek_cap = ((seek_pkts + 1) * stored).next_multiple_of(4096);
    let ring = RingStore::open(
        &dir.path().join("seek"),
        &RingOptions {
            size: Some(seek_cap),
            flush: FlushPolicy::None,
        },
    )
    .expect("create seek ring");
    let mut feed = Feed::new();
    let mut times = Vec::new(); // times[pktid - 1]
    let mut batch = Vec::with_capacity(BATCH);
    while times.len() < (seek_pkts + seek_pkts / 20) as usize {
        batch.clear();
        for _ in 0..BATCH {
            let (s, t) = feed.next();
            times.push(t.as_micros());
            batch.push((feed.names[s].clone(), t, &payload[..]));
        }
        ring.append_batch(&batch).expect("fill seek ring");
    }
    let oldest = ring.oldest().expect("ring not empty").pktid;
    let live = &times[(oldest - 1) as usize..];
    assert!(
        live.len() as u64 >= seek_pkts && oldest > 1,
        "ring full and wrapped"
    );
    let (tmin, tmax) = (live.iter().min().unwrap(), live.iter().max().unwrap());
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let n = 2 * seek_pkts;
    let ts: Vec<Time> = (0..n)
        .map(|_| {
            Time::from_micros(tmin - 1_000_000 + rng.below((tmax - tmin + 2_000_000) as u64) as i64)
        })
        .collect();
    let ids: Vec<u64> = (0..n)
        .map(|_| oldest + rng.below(live.len() as u64))
        .collect();
    // A seek that returned nonsense fast would be worthless: check some against a scan.
    let edges = [*tmin, *tmax, tmax + 1].map(Time::from_micros);
    for &t in ts.iter().take(200).chain(&edges) {
        let want = live.iter().position(|&x| x >= t.as_micros());
        let got = ring.after(t).map(|p| (p.pktid, p.time.as_micros()));
        assert_eq!(
            got,
            want.map(|i| (oldest + i as u64, live[i])),
            "after({t:?})"
        );
    }
    for &id in ids.iter().take(200) {
        let p = ring.get(id).expect("get").expect("live pktid");
        assert_eq!(
            (p.time.as_micros(), &p.payload[..]),
            (times[id as usize - 1], &payload[..])
        );
    }
    let start = Instant::now();
    let mut sum = 0u64;
    for &t in &ts {
        sum = sum.wrapping_add(ring.after(t).map_or(0, |p| p.pktid));
    }
    let seek = mps(n, start.elapsed());
    let start = Instant::now();
    for &id in &ids {
        sum = sum.wrapping_add(
            ring.get(id)
                .expect("get")
                .map_or(0, |p| p.payload.len() as u64),
        );
    }
    let get = mps(n, start.elapsed());
    black_box(sum);
    ring.close_unclean();
    println!(
        "{:<40}{seek:>6.2} M/s   get(pktid) {get:6.2} M/s   ratio {:.2}   target >= 1 M/s  {}",
        format!("after(t), {} pkts out of order", live.len()),
        seek / get,
        verdict(seek >= 1.0)
    );
    println!(
        "{:<40}{:>6.3} s     read+crc32 {:6.3} s     ratio {:.2}   target < 1 s     {}   ({recovered} packets recovered)",
        format!("reopen {} MiB after crash", cap >> 20),
        reopen.as_secs_f64(),
        read_crc.as_secs_f64(),
        reopen.as_secs_f64() / read_crc.as_secs_f64(),
        verdict(reopen < Duration::from_secs(1)),
    );
    dir.close().expect("remove temporary directory");
}
