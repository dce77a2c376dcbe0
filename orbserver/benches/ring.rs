//! Ring store benchmark (`cargo bench -p orbserver`): 512-byte payloads, every figure
//! printed beside a baseline measured in the same run (the ratio, not the absolute
//! number, is what carries between machines) and the target from the issue.
//!
//! - `append ... 1st lap`: single appends into a fresh 1 GiB ring, flush `none`. Every
//!   page of the mapping is touched for the first time, so page faults are included.
//! - `append`: the same once the ring has wrapped (steady state). Baseline: copying the
//!   same bytes (40-byte header, srcname, payload) into a ring-sized `Vec<u8>`,
//!   sequentially and wrapping; the gap is the CRC, the lock and the index. Target:
//!   at least 5 M/s.
//! - `append_batch`: the same in batches of 64, one lock per batch.
//! - `reopen after crash`: `RingStore::open` of the wrapped 1 GiB ring left by
//!   `close_unclean`; it scans and checksums the whole file (in page cache). Baseline:
//!   reading the file in 1 MiB chunks through `crc32fast`. Target < 1 s.
//! - `after(t)`: seeks by time at random `t` on a ring of 2 million packets whose times
//!   are out of order (8 interleaved sources with different clock offsets, and clocks
//!   that now and then jump back). Baseline: `get(pktid)` at random pktids on the same
//!   ring, which also checks a CRC and copies a payload. Target >= 1 M/s. Answers are
//!   checked against a linear scan first, so a wrong index cannot look fast.
//!
//! `ORB_BENCH_QUICK=1` divides sizes and counts by 10 for smoke runs (figures are then
//! only indicative). Rings live in a temporary directory that is removed at the end.

use std::fs::File;
use std::hint::black_box;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use formats::{SrcName, Time};
use orbserver::ring::layout::{stored_size, RECORD_HEADER};
use orbserver::ring::{FlushPolicy, RingOptions, RingStore, RING_FILE};

const PAYLOAD: [u8; 512] = [0x5A; 512];
const SOURCES: usize = 8;
const BATCH: usize = 64;
/// 2024-01-01T00:00:00Z in microseconds: packet times start here.
const T0: i64 = 1_704_067_200_000_000;

/// xorshift64: deterministic, no dependency, good enough to scatter queries.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Packets from 8 sources, interleaved, 2000 packets/s in all. Each source's clock has
/// its own offset (-28 s .. +21 s) and jitter, and about once per 100 000 packets one
/// re-locks and jumps back by up to a minute, so times are far from monotonic. The feed
/// is deterministic: a fresh one replays the same times, which the seek checks rely on.
struct Feed {
    names: Vec<SrcName>,
    offsets: [i64; SOURCES],
    rng: XorShift,
    i: i64,
}

impl Feed {
    fn new() -> Feed {
        let name = |k| SrcName::new(&format!("XX/ST{k}/BHZ")).expect("valid srcname");
        Feed {
            names: (0..SOURCES).map(name).collect(),
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

/// What a line says after its target, indexed by whether the target is met.
const VERDICT: [&str; 2] = ["BELOW TARGET", "ok"];

/// One output line: a rate in M/s, its baseline, the ratio and the target minimum.
fn rate_line(what: &str, rate: f64, base: &str, base_rate: f64, min: f64) {
    let (ratio, ok) = (rate / base_rate, VERDICT[usize::from(rate >= min)]);
    let base = format!("{base} {base_rate:.2} M/s");
    println!("{what:<40}{rate:6.2} M/s   {base:<22} ratio {ratio:4.2}   target >= {min} M/s  {ok}");
}

/// Appends `n` packets, one by one (`batch == 1`) or with `append_batch`.
fn append(ring: &RingStore, feed: &mut Feed, n: u64, batch: usize) -> Duration {
    let mut packets = Vec::with_capacity(batch);
    let start = Instant::now();
    for _ in 0..n / batch as u64 {
        if batch == 1 {
            let (s, t) = feed.next();
            black_box(ring.append(&feed.names[s], t, &PAYLOAD).expect("append"));
            continue;
        }
        packets.clear();
        packets.extend((0..batch).map(|_| feed.next()));
        let names = &feed.names;
        let items = packets
            .iter()
            .map(|&(s, t)| (names[s].as_str(), t, &PAYLOAD[..]));
        black_box(ring.append_batch(items, false).expect("append_batch"));
    }
    start.elapsed()
}

/// The baseline for appends: the bytes an append must write, copied the same way
/// (sequential, 8-byte aligned, wrapping), with the same feed; no CRC, lock or index.
fn memcpy(buf: &mut [u8], pos: &mut usize, feed: &mut Feed, n: u64) -> Duration {
    let mut header = [0u8; RECORD_HEADER];
    let start = Instant::now();
    for i in 0..n {
        let (s, t) = feed.next();
        let name = feed.names[s].as_str().as_bytes();
        let size = stored_size(name.len(), PAYLOAD.len()) as usize;
        if *pos + size > buf.len() {
            *pos = 0;
        }
        header[16..24].copy_from_slice(&i.to_le_bytes());
        header[24..32].copy_from_slice(&t.as_micros().to_le_bytes());
        let (h, rest) = buf[*pos..*pos + size].split_at_mut(RECORD_HEADER);
        h.copy_from_slice(&header);
        rest[..name.len()].copy_from_slice(name);
        rest[name.len()..name.len() + PAYLOAD.len()].copy_from_slice(&PAYLOAD);
        *pos += size;
    }
    black_box(&mut *buf);
    start.elapsed()
}

/// Figures 1 and 3: appends into a `cap`-byte ring until it has wrapped, then a crash
/// and a timed reopen, against memcpy and read+crc32 of the file.
fn append_and_reopen(dir: &Path, cap: u64, steady: u64) {
    let opts = RingOptions {
        size: Some(cap),
        flush: FlushPolicy::None,
    };
    let ring = RingStore::open(dir, &opts).expect("create append ring");
    let mut feed = Feed::new();
    let lap = cap / stored_size(feed.names[0].len(), PAYLOAD.len());
    let cold = mps(lap, append(&ring, &mut feed, lap, 1));
    let one = mps(steady, append(&ring, &mut feed, steady, 1));
    let batched = mps(steady, append(&ring, &mut feed, steady, BATCH));
    // Write every page of the baseline buffer once, so both sides copy into warm pages.
    let (mut buf, mut pos, mut mfeed) = (vec![0xA5u8; cap as usize], 0, Feed::new());
    memcpy(&mut buf, &mut pos, &mut mfeed, lap);
    let copy = mps(steady, memcpy(&mut buf, &mut pos, &mut mfeed, steady));
    drop(buf);
    for (what, rate) in [
        ("append 512 B (flush none), 1st lap (*)", cold),
        ("append 512 B (flush none)", one),
        ("append_batch 64 x 512 B (flush none)", batched),
    ] {
        rate_line(what, rate, "memcpy", copy, 5.0);
    }

    let live = ring.stat().npkts;
    assert!(ring.oldest().expect("not empty").pktid > 1, "wrapped");
    ring.close_unclean();
    let start = Instant::now();
    let ring = RingStore::open(dir, &opts).expect("reopen after crash");
    let reopen = start.elapsed().as_secs_f64();
    let r = ring.recovery().clone();
    assert!(!r.clean && r.corrupt.is_empty() && r.dropped == 0 && r.torn_tail.is_none());
    assert_eq!(r.packets, live, "every live packet recovered");
    // Unclean again: a clean close would msync 1 GiB to disk, which is not measured here.
    ring.close_unclean();
    let start = Instant::now();
    let mut file = File::open(dir.join(RING_FILE)).expect("open ring file");
    let (mut chunk, mut crc) = (vec![0u8; 1 << 20], crc32fast::Hasher::new());
    loop {
        match file.read(&mut chunk).expect("read ring file") {
            0 => break,
            n => crc.update(&chunk[..n]),
        }
    }
    black_box(crc.finalize());
    let read = start.elapsed().as_secs_f64();
    let what = format!("reopen {} MiB after crash", cap >> 20);
    let (ratio, ok) = (reopen / read, VERDICT[usize::from(reopen < 1.0)]);
    let base = format!("read+crc32 {read:.3} s");
    println!("{what:<40}{reopen:6.3} s     {base:<22} ratio {ratio:4.2}   target < 1 s      {ok}");
    println!("{:<40}({} packets recovered)", "", r.packets);
    std::fs::remove_dir_all(dir).expect("remove append ring");
}

/// Figure 2: `after(t)` against `get(pktid)` on a ring of `pkts` packets, slightly
/// wrapped so the oldest block of the time index is partly evicted, as in a server.
fn seek(dir: &Path, pkts: u64) {
    let stored = stored_size(Feed::new().names[0].len(), PAYLOAD.len());
    let opts = RingOptions {
        size: Some(((pkts + 1) * stored).next_multiple_of(4096)),
        flush: FlushPolicy::None,
    };
    let ring = RingStore::open(dir, &opts).expect("create seek ring");
    let total = (pkts + pkts / 20).next_multiple_of(BATCH as u64);
    append(&ring, &mut Feed::new(), total, BATCH);
    let mut replay = Feed::new();
    let times: Vec<i64> = (0..total).map(|_| replay.next().1.as_micros()).collect();
    let oldest = ring.oldest().expect("ring not empty").pktid;
    let live = &times[(oldest - 1) as usize..]; // pktids start at 1 in a new ring
    assert!(live.len() as u64 >= pkts && oldest > 1, "full and wrapped");
    let (min, max) = (*live.iter().min().unwrap(), *live.iter().max().unwrap());
    let (lo, hi) = (min - 1_000_000, max + 1_000_000);
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let n = 2 * pkts;
    let mut ts = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..n {
        ts.push(Time::from_micros(lo + rng.below((hi - lo) as u64) as i64));
        ids.push(oldest + rng.below(live.len() as u64));
    }
    // A seek that returned nonsense fast would be worthless: check some against a scan.
    let edges = [lo, min, max, max + 1].map(Time::from_micros);
    for &t in ts.iter().take(200).chain(&edges) {
        let want = live.iter().position(|&x| x >= t.as_micros());
        let got = ring.after(t).map(|p| (p.pktid, p.time.as_micros()));
        assert_eq!(got, want.map(|i| (oldest + i as u64, live[i])), "{t:?}");
    }
    for &id in ids.iter().take(200) {
        let p = ring.get(id).expect("get").expect("live pktid");
        let want = (times[id as usize - 1], &PAYLOAD[..]);
        assert_eq!((p.time.as_micros(), &p.payload[..]), want);
    }
    let (start, mut sum) = (Instant::now(), 0u64);
    for &t in &ts {
        sum = sum.wrapping_add(ring.after(t).map_or(0, |p| p.pktid));
    }
    let after = mps(n, start.elapsed());
    let start = Instant::now();
    for &id in &ids {
        let p = ring.get(id).expect("get");
        sum = sum.wrapping_add(p.map_or(0, |p| p.payload.len() as u64));
    }
    let get = mps(n, start.elapsed());
    black_box(sum);
    ring.close_unclean();
    let what = format!("after(t), {} pkts out of order", live.len());
    rate_line(&what, after, "get(pktid)", get, 1.0);
}

fn main() {
    let quick = std::env::var("ORB_BENCH_QUICK").is_ok_and(|v| v == "1");
    let scale = if quick { 10 } else { 1 };
    let dir = tempfile::tempdir().expect("create temporary directory");
    // Ring sizes must be multiples of 4096.
    let cap = ((1u64 << 30) / scale) & !4095;
    let size = if quick { "quick" } else { "full size" };
    let mib = cap >> 20;
    println!("orb ring bench ({size}): 512-byte payloads, append ring {mib} MiB");
    let started = Instant::now();
    append_and_reopen(&dir.path().join("append"), cap, 1_000_000 / scale);
    seek(&dir.path().join("seek"), 2_000_000 / scale);
    dir.close().expect("remove temporary directory");
    println!("(*) first lap: every page of the fresh file is faulted in by the appends");
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
}
