//! `RingStore`: the crash-safe, memory-mapped ring of packets.
//!
//! The bytes are specified in `docs/RING-FORMAT.md`; this module is the writer, the
//! readers and the open/recover/close life cycle. Modules:
//!
//! - `layout`: offsets and pure encode/decode of headers and records
//! - `storage`: the narrow trait over the file's bytes and flushes that `RingStore` is
//!   generic over; `map`, the mapping (all of the crate's `unsafe`), is the server's
//!   implementation, `testing` (tests only) an in-memory one that simulates power
//!   failures and failing flushes
//! - `recover`: the scan that finds the live records on open
//! - `index`, `timeindex`: the in-memory pktid, time and per-source indexes
//! - `flush`: flush policies and the interval flusher thread
//!
//! Concurrency: one `RwLock` guards the mapping and the index together. The writer
//! changes both under the write lock; readers check and copy records under the read
//! lock, so no reader can observe a record being written or overwritten.

pub mod layout;

mod error;
mod flush;
mod index;
mod map;
pub mod recover;
pub mod storage;
#[cfg(test)]
pub(crate) mod testing;
mod timeindex;

#[cfg(test)]
mod tests;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use formats::{Packet, SrcName, Time};

pub use error::RingError;
pub use flush::{FlushLatency, FlushPolicy, FlushTimes, DEFAULT_FLUSH_INTERVAL, FLUSH_BUCKETS};
pub use index::SourceInfo;
pub use recover::CorruptRegion;

use flush::IntervalFlusher;
use index::RingIndex;
use layout::{HEADER_SIZE, RECORD_HEADER};
use map::{MapError, RingMap};
use storage::{RingFlusher, RingStorage};

/// Name of the ring file inside the ring directory.
pub const RING_FILE: &str = "orb.ring";
/// Ring size used when a new ring is created without one: 256 MiB.
pub const DEFAULT_RING_SIZE: u64 = 256 << 20;
/// Longest srcname a record can store; the server's own limit is lower.
pub const MAX_RECORD_SRCNAME: usize = 255;

/// Allocation unit for the payloads of one `read_from` batch.
const READ_CHUNK: usize = 64 * 1024;

/// How to open a ring.
#[derive(Debug, Clone, Default)]
pub struct RingOptions {
    /// Data capacity in bytes. `None` keeps an existing ring's size, or creates a new
    /// ring of [`DEFAULT_RING_SIZE`]. A size that differs from an existing ring's is
    /// refused.
    pub size: Option<u64>,
    /// When pages are written to the disk.
    pub flush: FlushPolicy,
}

/// A packet's pktid and time: what seeks answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PktRef {
    /// Packet id.
    pub pktid: u64,
    /// Packet time.
    pub time: Time,
}

/// What opening the ring found and did (RING-FORMAT.md section 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The ring file was created by this open.
    pub created: bool,
    /// The previous writer closed the ring cleanly.
    pub clean: bool,
    /// Live packets recovered.
    pub packets: u64,
    /// Holes in the live window that no valid record covers, skipped.
    pub corrupt: Vec<CorruptRegion>,
    /// Valid records dropped because they broke pktid order, or had a bad srcname.
    pub dropped: u64,
    /// pktid of a torn record at the head, dropped.
    pub torn_tail: Option<u64>,
    /// The pktid the next append gets.
    pub next_pktid: u64,
    /// How long open took.
    pub elapsed: Duration,
}

/// A summary of the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingStat {
    /// The ring file.
    pub path: PathBuf,
    /// Data capacity in bytes.
    pub capacity: u64,
    /// Bytes the live records span, padding and wrap space included.
    pub used_bytes: u64,
    /// Live packets.
    pub npkts: u64,
    /// Sources with live packets.
    pub nsources: u64,
    /// The oldest live packet.
    pub oldest: Option<PktRef>,
    /// The newest live packet.
    pub newest: Option<PktRef>,
    /// The pktid the next append gets.
    pub next_pktid: u64,
    /// When the ring file was created.
    pub created: Time,
    /// The flush policy in force.
    pub flush: FlushPolicy,
}

/// What a reader's `read_from` returned besides packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadOutcome {
    /// Set when the reader's position had been overwritten: the pktids it lost.
    pub gap: Option<Gap>,
    /// The pktid to ask for next.
    pub next: u64,
    /// Records skipped because they failed their checksum when read.
    pub corrupt: u64,
    /// The visit stopped at [`VISIT_SCAN_LIMIT`] records without reaching `max`: call
    /// again from `next` (after letting others have the lock).
    pub more: bool,
}

/// Most index entries one `visit_from` call looks at, matching or not, so that a reader
/// whose filter matches little never holds the read lock (and the writer) for long.
pub const VISIT_SCAN_LIMIT: usize = 65_536;

/// What [`RingStore::visit_from`] shows its visitor.
#[derive(Debug)]
pub enum Visit<'a> {
    /// The reader was lapped: these pktids were overwritten.
    Gap(Gap),
    /// A checked record.
    Record(RecordRef<'a>),
}

/// A checked record, borrowed from the ring for the duration of a visit.
#[derive(Debug)]
pub struct RecordRef<'a> {
    /// Packet id.
    pub pktid: u64,
    /// Packet time.
    pub time: Time,
    /// Srcname.
    pub srcname: &'a SrcName,
    /// Payload.
    pub payload: &'a [u8],
    /// Logical position of the record (for lag and gap accounting).
    pub lpos: u64,
}

/// Packets a lapped reader lost: pktids `first..=last` were overwritten before it read
/// them (pktids in that range that never existed are included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// First pktid lost.
    pub first: u64,
    /// Last pktid lost.
    pub last: u64,
}

struct Inner<S> {
    map: S,
    path: PathBuf,
    index: RingIndex,
    capacity: u64,
    /// Logical end of the newest record: where the next one goes.
    head_end: u64,
    next_pktid: u64,
    pktid_hwm: u64,
    /// No record was ever written at or beyond this data offset (`>= capacity`: the
    /// ring has wrapped, every byte may hold records).
    scan_limit: u64,
    poisoned: Option<String>,
}

/// What [`RingStore::append_batch_deferred`] appended, and the sync still owed.
#[derive(Debug)]
pub struct Appended<F = map::Flusher> {
    /// The first packet's pktid; the others follow it.
    pub first_pktid: u64,
    /// Packets appended.
    pub count: u32,
    /// The msync to run before the packets may be called durable, if they must be.
    pub pending: Option<PendingSync<F>>,
}

/// An append's msync still to do; see [`RingStore::append_batch_deferred`].
pub struct PendingSync<F = map::Flusher> {
    spans: [(usize, usize); 2],
    flusher: F,
}

impl<F> std::fmt::Debug for PendingSync<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSync")
            .field("spans", &self.spans)
            .finish_non_exhaustive()
    }
}

/// The ring store. Share it between tasks with `Arc`; every method takes `&self`.
///
/// `S` is where the bytes live: the memory-mapped file (the default, and the only
/// storage outside the ring's own tests).
pub struct RingStore<S: RingStorage = RingMap> {
    inner: RwLock<Inner<S>>,
    path: PathBuf,
    capacity: u64,
    created: Time,
    flush: FlushPolicy,
    recovery: RecoveryReport,
    flusher: Option<IntervalFlusher>,
    /// How long msyncs took (interval flushes and durable puts' syncs).
    flush_times: Arc<FlushTimes>,
    /// Cleared by tests that simulate a crash, so drop leaves the ring unclean.
    close_on_drop: bool,
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> RingError + 'a {
    move |source| RingError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

fn map_err(path: &Path, e: MapError) -> RingError {
    match e {
        MapError::Locked => RingError::Locked {
            path: path.to_owned(),
        },
        MapError::Io(source) => RingError::Io {
            action: "map",
            path: path.to_owned(),
            source,
        },
        MapError::TooShort { actual } => RingError::BadLength {
            path: path.to_owned(),
            actual,
            expected: HEADER_SIZE as u64 + layout::MIN_CAPACITY,
        },
    }
}

impl RingStore {
    /// Opens the ring in directory `dir`, creating the directory and the ring if they do
    /// not exist, recovering it by scan if it does (RING-FORMAT.md section 7).
    pub fn open(dir: &Path, opts: &RingOptions) -> Result<RingStore, RingError> {
        let started = Instant::now();
        fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        let path = dir.join(RING_FILE);
        let created = !path.exists();
        let map = if created {
            Self::create(dir, &path, opts.size)?
        } else {
            Self::open_existing(&path)?
        };
        RingStore::from_storage(map, path, created, opts, started)
    }

    fn create(dir: &Path, path: &Path, size: Option<u64>) -> Result<RingMap, RingError> {
        let capacity = size.unwrap_or(DEFAULT_RING_SIZE);
        if !layout::capacity_ok(capacity) {
            return Err(RingError::BadSize { size: capacity });
        }
        // Build the ring under a temporary name and rename it into place, so that a
        // crash during creation never leaves a ring file without a header.
        let tmp = dir.join(format!("{RING_FILE}.new"));
        let mut map =
            RingMap::create(&tmp, HEADER_SIZE as u64 + capacity).map_err(|e| map_err(&tmp, e))?;
        init_header(&mut map, capacity).map_err(io_err("msync header of", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("rename into place", &tmp))?;
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync directory", dir))?;
        Ok(map)
    }

    fn open_existing(path: &Path) -> Result<RingMap, RingError> {
        RingMap::open_existing(path).map_err(|e| map_err(path, e))
    }
}

/// Writes a new ring's header into zeroed `storage` and makes it durable.
fn init_header<S: RingStorage>(storage: &mut S, capacity: u64) -> std::io::Result<()> {
    let geometry = layout::Geometry {
        capacity,
        created_us: Time::now().as_micros(),
    };
    let header = &mut storage.bytes_mut()[..HEADER_SIZE];
    layout::encode_header(header, geometry);
    // Nothing is written yet: a reopen scans only the first step until records go
    // further (RING-FORMAT.md section 4).
    let limit = layout::SCAN_LIMIT_STEP.min(capacity);
    layout::put_u64(header, layout::H_SCAN_LIMIT, limit);
    storage.flush_range(0, HEADER_SIZE)
}

impl<S: RingStorage> RingStore<S> {
    /// Recovers the ring held by `map` (RING-FORMAT.md section 7), whose header is
    /// already written; `created` when this open made it.
    fn from_storage(
        map: S,
        path: PathBuf,
        created: bool,
        opts: &RingOptions,
        started: Instant,
    ) -> Result<RingStore<S>, RingError> {
        let bytes = map.bytes();
        let geometry = layout::decode_header(bytes).map_err(|p| RingError::BadHeader {
            path: path.clone(),
            problem: p.to_string(),
        })?;
        let capacity = geometry.capacity;
        let expected = HEADER_SIZE as u64 + capacity;
        if bytes.len() as u64 != expected {
            return Err(RingError::BadLength {
                path,
                actual: bytes.len() as u64,
                expected,
            });
        }
        if let Some(requested) = opts.size.filter(|&s| s != capacity) {
            return Err(RingError::SizeMismatch {
                path,
                existing: capacity,
                requested,
            });
        }
        let hint_next = layout::u64_at(bytes, layout::H_NEXT_PKTID).unwrap_or(1);
        let hwm = layout::u64_at(bytes, layout::H_PKTID_HWM).unwrap_or(1);
        let clean = layout::u64_at(bytes, layout::H_CLEAN) == Some(1);

        let data = &bytes[HEADER_SIZE..];
        let scan_limit = layout::u64_at(bytes, layout::H_SCAN_LIMIT).unwrap_or(0);
        let scan = if created {
            recover::Scan::default()
        } else if scan_limit == 0 || scan_limit >= capacity {
            recover::scan(data)
        } else {
            recover::scan_to(data, scan_limit as usize)
        };
        let mut index = RingIndex::default();
        let mut dropped = scan.out_of_order;
        for h in &scan.live {
            let off = (h.lpos % capacity) as usize + RECORD_HEADER;
            let name = &data[off..off + usize::from(h.srcname_len)];
            // Validate without allocating: recovery visits every record of the ring.
            match std::str::from_utf8(name) {
                Ok(name) if name.bytes().all(|b| (0x21..=0x7e).contains(&b)) => {
                    index.push(h.pktid, h.lpos, h.time_us, h.payload_len, name)
                }
                _ => dropped += 1,
            }
        }
        let max_seen = index.back().map_or(0, |e| e.pktid);
        let mut next_pktid = hint_next.max(max_seen + 1);
        if !clean {
            // An unclean stop may have acknowledged pktids whose records power loss took
            // away: continue above everything that may have been handed out.
            next_pktid = next_pktid.max(hwm);
        }
        let mut inner = Inner {
            map,
            path: path.clone(),
            index,
            capacity,
            head_end: scan.head_end,
            next_pktid,
            pktid_hwm: hwm,
            // A ring from before the scan limit existed (0) has no limit to keep.
            scan_limit: if scan_limit == 0 {
                capacity
            } else {
                scan_limit
            },
            poisoned: None,
        };
        inner.set_hint(layout::H_CLEAN, 0);
        inner.set_hint(layout::H_NEXT_PKTID, next_pktid);
        inner
            .map
            .flush_range(0, HEADER_SIZE)
            .map_err(io_err("msync header of", &path))?;

        let recovery = RecoveryReport {
            created,
            clean,
            packets: inner.index.len() as u64,
            corrupt: scan.corrupt,
            dropped,
            torn_tail: scan.torn_tail,
            next_pktid,
            elapsed: started.elapsed(),
        };
        log_recovery(&path, &recovery);
        let flush_times = Arc::new(FlushTimes::default());
        let flusher = match opts.flush {
            FlushPolicy::Interval(every) => Some(
                IntervalFlusher::start(
                    inner.map.flusher(),
                    every,
                    path.display().to_string(),
                    Arc::clone(&flush_times),
                )
                .map_err(io_err("start flusher thread for", &path))?,
            ),
            _ => None,
        };
        Ok(RingStore {
            inner: RwLock::new(inner),
            path,
            capacity,
            created: Time::from_micros(geometry.created_us),
            flush: opts.flush,
            recovery,
            flusher,
            flush_times,
            close_on_drop: true,
        })
    }

    /// How long msyncs have taken since the ring was opened.
    pub fn flush_latency(&self) -> FlushLatency {
        self.flush_times.snapshot()
    }

    /// What opening the ring found.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The ring file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Data capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The largest payload a packet with a srcname of `srcname_len` bytes may carry.
    pub fn max_payload(&self, srcname_len: usize) -> usize {
        let max = layout::max_record(self.capacity) as usize;
        (max - RECORD_HEADER - srcname_len) & !(layout::RECORD_ALIGN - 1)
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner<S>> {
        // A panic while holding the lock cannot leave the file half-updated in a way
        // readers could see as valid (every record is checked), so poisoning is ignored.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner<S>> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one packet and returns its pktid. When the ring is full the oldest
    /// packets are overwritten. Under `flush = always` the packet is on disk on return.
    pub fn append(&self, srcname: &SrcName, time: Time, payload: &[u8]) -> Result<u64, RingError> {
        self.check_size(srcname.as_str(), payload)?;
        let mut inner = self.write();
        inner.check_poison()?;
        let (pktid, range) = inner.append_one(srcname.as_str(), time, payload)?;
        if self.flush == FlushPolicy::Always {
            let pending = self.pending_sync(&inner, range);
            drop(inner);
            self.complete_sync(pending)?;
        }
        Ok(pktid)
    }

    /// Appends packets in order, with consecutive pktids, and returns the first pktid and
    /// the count. Srcnames must be valid (`SrcName::check`); sizes are checked before
    /// anything is written, so an oversized packet leaves the ring unchanged. One lock
    /// and, under `flush = always` or with `durable`, one msync cover the whole batch.
    pub fn append_batch<'a, I>(&self, packets: I, durable: bool) -> Result<(u64, u32), RingError>
    where
        I: IntoIterator<Item = (&'a str, Time, &'a [u8])> + Clone,
    {
        let a = self.append_batch_deferred(packets, durable)?;
        if let Some(p) = a.pending {
            self.complete_sync(p)?;
        }
        Ok((a.first_pktid, a.count))
    }

    /// [`RingStore::append_batch`] without the wait for the disk: when the batch must be
    /// made durable (`durable`, or `flush = always`), returns the sync still to do. The
    /// packets are readable at once; they are durable once [`RingStore::complete_sync`]
    /// returns `Ok`, and only then may the writer be told so. This lets a server run the
    /// msync off its async workers.
    pub fn append_batch_deferred<'a, I>(
        &self,
        packets: I,
        durable: bool,
    ) -> Result<Appended<S::Flusher>, RingError>
    where
        I: IntoIterator<Item = (&'a str, Time, &'a [u8])> + Clone,
    {
        for (s, _, p) in packets.clone() {
            self.check_size(s, p)?;
        }
        let mut inner = self.write();
        inner.check_poison()?;
        let first = inner.next_pktid;
        let mut count = 0u32;
        let mut dirty: Option<(u64, u64)> = None;
        for (s, t, p) in packets {
            let (_, (lo, hi)) = inner.append_one(s, t, p)?;
            count += 1;
            dirty = Some(dirty.map_or((lo, hi), |(a, _)| (a, hi)));
        }
        let pending = dirty
            .filter(|_| durable || self.flush == FlushPolicy::Always)
            .map(|range| self.pending_sync(&inner, range));
        Ok(Appended {
            first_pktid: first,
            count,
            pending,
        })
    }

    fn check_size(&self, srcname: &str, payload: &[u8]) -> Result<(), RingError> {
        let max = self.max_payload(srcname.len().min(MAX_RECORD_SRCNAME));
        if payload.len() > max || srcname.len() > MAX_RECORD_SRCNAME {
            return Err(RingError::PacketTooLarge {
                len: payload.len(),
                max,
                srcname: srcname.to_string(),
            });
        }
        Ok(())
    }

    /// What must be msynced for an append that dirtied `range`: its records, then the
    /// header page (RING-FORMAT.md section 6, step 6).
    fn pending_sync(&self, inner: &Inner<S>, range: (u64, u64)) -> PendingSync<S::Flusher> {
        PendingSync {
            spans: inner.sync_spans(range),
            flusher: inner.map.flusher(),
        }
    }

    /// Makes an append durable: msyncs what it dirtied and then the header page. Runs
    /// without the write lock, so readers and other writers go on while the disk works.
    /// The mapping stays valid without the lock (the flusher shares it), and bytes
    /// written meanwhile by later appends are only synced early. A failure poisons the
    /// ring: later appends are refused, since the promise could not be kept.
    pub fn complete_sync(&self, pending: PendingSync<S::Flusher>) -> Result<(), RingError> {
        let started = Instant::now();
        let synced = pending
            .spans
            .iter()
            .try_for_each(|&(offset, len)| pending.flusher.flush_range(offset, len));
        self.flush_times.record(started.elapsed());
        synced.map_err(|source| {
            self.write().poison(RingError::Io {
                action: "msync",
                path: self.path.clone(),
                source,
            })
        })
    }

    /// Writes all dirty pages to the disk now, whatever the policy.
    pub fn flush(&self) -> Result<(), RingError> {
        let inner = self.read();
        inner
            .map
            .flush_range(0, inner.map.image_len())
            .map_err(io_err("msync", &self.path))
    }

    /// The packet `pktid`, if it is live.
    pub fn get(&self, pktid: u64) -> Result<Option<Packet>, RingError> {
        let inner = self.read();
        let Ok(pos) = inner.index.find(pktid) else {
            return Ok(None);
        };
        let e = *inner.index.get(pos).expect("found position");
        let payload = Bytes::copy_from_slice(inner.record(pos)?);
        let srcname = inner.index.srcname(e.src).clone();
        Ok(Some(Packet {
            pktid,
            srcname,
            time: Time::from_micros(e.time),
            payload,
        }))
    }

    fn at(&self, pos: impl FnOnce(&RingIndex) -> Option<usize>) -> Option<PktRef> {
        let inner = self.read();
        let e = inner.index.get(pos(&inner.index)?)?;
        Some(PktRef {
            pktid: e.pktid,
            time: Time::from_micros(e.time),
        })
    }

    /// The oldest live packet.
    pub fn oldest(&self) -> Option<PktRef> {
        self.at(|_| Some(0))
    }

    /// The newest live packet.
    pub fn newest(&self) -> Option<PktRef> {
        self.at(|ix| ix.len().checked_sub(1))
    }

    /// The first live packet whose pktid is greater than `pktid` (which need not be live).
    pub fn next_after(&self, pktid: u64) -> Option<PktRef> {
        self.at(|ix| Some(ix.first_after(pktid)))
    }

    /// The last live packet whose pktid is less than `pktid` (which need not be live).
    pub fn prev_before(&self, pktid: u64) -> Option<PktRef> {
        self.at(|ix| {
            let (Ok(p) | Err(p)) = ix.find(pktid);
            p.checked_sub(1)
        })
    }

    /// The first packet in ring order whose time is `>= t`.
    pub fn after(&self, t: Time) -> Option<PktRef> {
        self.at(|ix| ix.first_at_or_after_time(t.as_micros()))
    }

    /// Reads up to `max` packets with pktid `>= from` that `keep` accepts, in ring order,
    /// appending them to `out`. If `from` is below the oldest live pktid (the reader was
    /// lapped), the outcome carries the gap and reading continues at the oldest packet.
    /// `keep` runs under the read lock: keep it cheap.
    pub fn read_from(
        &self,
        from: u64,
        max: usize,
        mut keep: impl FnMut(&SrcName) -> bool,
        out: &mut Vec<Packet>,
    ) -> ReadOutcome {
        let mut buf = BytesMut::new();
        let mut total = ReadOutcome {
            next: from,
            ..ReadOutcome::default()
        };
        loop {
            let left = max - out.len().min(max);
            let o = self.visit_from(
                total.next,
                left,
                usize::MAX,
                |_, name| keep(name),
                |v| {
                    if let Visit::Record(r) = v {
                        if buf.capacity() < r.payload.len() {
                            buf.reserve(READ_CHUNK.max(r.payload.len()));
                        }
                        buf.extend_from_slice(r.payload);
                        let payload = buf.split().freeze();
                        out.push(Packet {
                            pktid: r.pktid,
                            srcname: r.srcname.clone(),
                            time: r.time,
                            payload,
                        });
                    }
                },
            );
            total.gap = total.gap.or(o.gap);
            total.corrupt += o.corrupt;
            total.next = o.next;
            if !o.more {
                return total;
            }
        }
    }

    /// The reader's primitive: visits, in ring order and under one read lock, up to `max`
    /// checked records with pktid `>= from` that `keep` accepts, stopping early once
    /// their payloads exceed `max_bytes`. A lapped reader is first shown a
    /// [`Visit::Gap`]. `keep` gets the source number (stable for the life of the store,
    /// so callers can cache their decision per source) and the srcname.
    pub fn visit_from(
        &self,
        from: u64,
        max: usize,
        max_bytes: usize,
        mut keep: impl FnMut(u32, &SrcName) -> bool,
        mut visit: impl FnMut(Visit<'_>),
    ) -> ReadOutcome {
        let inner = self.read();
        let ix = &inner.index;
        let mut outcome = ReadOutcome {
            next: from,
            ..ReadOutcome::default()
        };
        let Some(front) = ix.front() else {
            return outcome;
        };
        if from < front.pktid {
            let gap = Gap {
                first: from,
                last: front.pktid - 1,
            };
            outcome.gap = Some(gap);
            visit(Visit::Gap(gap));
        }
        let (Ok(mut pos) | Err(mut pos)) = ix.find(from);
        let (mut taken, mut bytes, mut scanned) = (0, 0, 0);
        while let Some(e) = ix.get(pos) {
            if taken == max || bytes >= max_bytes {
                break;
            }
            if scanned == VISIT_SCAN_LIMIT {
                outcome.more = true;
                break;
            }
            scanned += 1;
            outcome.next = e.pktid + 1;
            let name = ix.srcname(e.src);
            if keep(e.src, name) {
                match inner.record(pos) {
                    Ok(payload) => {
                        visit(Visit::Record(RecordRef {
                            pktid: e.pktid,
                            time: Time::from_micros(e.time),
                            srcname: name,
                            payload,
                            lpos: e.lpos,
                        }));
                        taken += 1;
                        bytes += payload.len();
                    }
                    Err(err) => {
                        tracing::warn!("{err}");
                        outcome.corrupt += 1;
                    }
                }
            }
            pos += 1;
        }
        outcome
    }

    /// Visits, newest first and under one read lock, up to `max` checked records with
    /// pktid `< before` that `keep` accepts, looking at no more than
    /// [`VISIT_SCAN_LIMIT`] index entries. Returns the pktid to pass as `before` to go
    /// on further back, or `None` once the oldest live packet was looked at. For
    /// searches that walk back from a point in the ring (a time window's first packet);
    /// `keep` gets the source number and srcname as in [`RingStore::visit_from`].
    pub fn visit_back(
        &self,
        before: u64,
        max: usize,
        mut keep: impl FnMut(u32, &SrcName) -> bool,
        mut visit: impl FnMut(RecordRef<'_>),
    ) -> Option<u64> {
        let inner = self.read();
        let ix = &inner.index;
        let (Ok(mut pos) | Err(mut pos)) = ix.find(before);
        let (mut taken, mut scanned) = (0, 0);
        while pos > 0 {
            if taken == max || scanned == VISIT_SCAN_LIMIT {
                return ix.get(pos).map(|e| e.pktid);
            }
            pos -= 1;
            scanned += 1;
            let e = ix.get(pos).expect("position below a live one");
            let name = ix.srcname(e.src);
            if !keep(e.src, name) {
                continue;
            }
            match inner.record(pos) {
                Ok(payload) => {
                    visit(RecordRef {
                        pktid: e.pktid,
                        time: Time::from_micros(e.time),
                        srcname: name,
                        payload,
                        lpos: e.lpos,
                    });
                    taken += 1;
                }
                Err(err) => tracing::warn!("{err}"),
            }
        }
        None
    }

    /// Logical position of the first live record with pktid `>= pktid` (or the head, if
    /// there is none): how far a reader at `pktid` is from the writer.
    pub fn lpos_of(&self, pktid: u64) -> u64 {
        let inner = self.read();
        let (Ok(p) | Err(p)) = inner.index.find(pktid);
        inner.index.get(p).map_or(inner.head_end, |e| e.lpos)
    }

    /// How far behind the newest packet a reader at `pktid` is, as a fraction of the
    /// ring: 0 is caught up, 1 is about to be overwritten.
    pub fn lag(&self, pktid: u64) -> f64 {
        let inner = self.read();
        let (Ok(p) | Err(p)) = inner.index.find(pktid);
        let lpos = inner.index.get(p).map_or(inner.head_end, |e| e.lpos);
        (inner.head_end - lpos) as f64 / self.capacity as f64
    }

    /// Logical end of the newest record.
    pub fn head_lpos(&self) -> u64 {
        self.read().head_end
    }

    /// Summaries of every source with live packets, in srcname order.
    pub fn sources(&self) -> Vec<SourceInfo> {
        self.read().index.sources()
    }

    /// The summary of one source, if it has live packets.
    pub fn source(&self, srcname: &str) -> Option<SourceInfo> {
        self.read().index.source(srcname)
    }

    /// A summary of the ring.
    pub fn stat(&self) -> RingStat {
        let inner = self.read();
        let ix = &inner.index;
        let pref = |e: Option<&index::Entry>| {
            e.map(|e| PktRef {
                pktid: e.pktid,
                time: Time::from_micros(e.time),
            })
        };
        RingStat {
            path: self.path.clone(),
            capacity: self.capacity,
            used_bytes: ix.front().map_or(0, |f| inner.head_end - f.lpos),
            npkts: ix.len() as u64,
            nsources: ix.sources().len() as u64,
            oldest: pref(ix.front()),
            newest: pref(ix.back()),
            next_pktid: inner.next_pktid,
            created: self.created,
            flush: self.flush,
        }
    }

    /// Flushes everything, marks the ring clean and closes it. Dropping the store does
    /// the same but can only log a failure.
    pub fn close(mut self) -> Result<(), RingError> {
        self.close_on_drop = false;
        self.close_inner()
    }

    /// Releases the ring without the clean-close steps (no final msync, `clean` stays 0),
    /// leaving the file as a crash would: for crash tests and benchmarks.
    pub fn close_unclean(mut self) {
        self.close_on_drop = false;
    }

    fn close_inner(&mut self) -> Result<(), RingError> {
        self.flusher.take();
        let inner = self.inner.get_mut().unwrap_or_else(|p| p.into_inner());
        let len = inner.map.image_len();
        inner
            .map
            .flush_range(0, len)
            .map_err(io_err("msync", &self.path))?;
        let next = inner.next_pktid;
        inner.set_hint(layout::H_NEXT_PKTID, next);
        inner.set_hint(layout::H_CLEAN, 1);
        inner
            .map
            .flush_range(0, HEADER_SIZE)
            .map_err(io_err("msync header of", &self.path))
    }
}

impl<S: RingStorage> Drop for RingStore<S> {
    fn drop(&mut self) {
        if self.close_on_drop {
            if let Err(e) = self.close_inner() {
                tracing::error!("closing ring: {e}");
            }
        }
    }
}

impl<S: RingStorage> Inner<S> {
    fn set_hint(&mut self, at: usize, v: u64) {
        layout::put_u64(&mut self.map.bytes_mut()[..HEADER_SIZE], at, v);
    }

    /// Stores a header hint and msyncs the header page before returning; a failure
    /// poisons the writer, since the promise the hint makes could not be kept.
    fn set_hint_durably(&mut self, at: usize, v: u64) -> Result<(), RingError> {
        self.set_hint(at, v);
        self.map.flush_range(0, HEADER_SIZE).map_err(|source| {
            let path = self.path.clone();
            self.poison(RingError::Io {
                action: "msync header of",
                path,
                source,
            })
        })
    }

    fn check_poison(&self) -> Result<(), RingError> {
        match &self.poisoned {
            Some(why) => Err(RingError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    fn poison(&mut self, e: RingError) -> RingError {
        self.poisoned = Some(e.to_string());
        e
    }

    /// Appends one record (RING-FORMAT.md section 6, steps 1 to 5) and returns its
    /// pktid and the logical range it dirtied. Sizes were checked by the caller.
    fn append_one(
        &mut self,
        srcname: &str,
        time: Time,
        payload: &[u8],
    ) -> Result<(u64, (u64, u64)), RingError> {
        let cap = self.capacity;
        let size = layout::stored_size(srcname.len(), payload.len());
        let mut lpos = self.head_end;
        if lpos % cap + size > cap {
            lpos = (lpos / cap + 1) * cap;
        }
        let end = lpos + size;
        while self
            .index
            .front()
            .is_some_and(|f| f.lpos < end.saturating_sub(cap))
        {
            self.index.pop_front();
        }
        let pktid = self.next_pktid;
        if pktid >= self.pktid_hwm {
            let hwm = pktid + layout::PKTID_HWM_STEP;
            self.set_hint_durably(layout::H_PKTID_HWM, hwm)?;
            self.pktid_hwm = hwm;
        }
        if end > self.scan_limit && self.scan_limit < cap {
            // Raise the scan limit (durably) before any record goes beyond it, so a scan
            // on reopen that stops at the limit misses nothing.
            let limit = (end + layout::SCAN_LIMIT_STEP).min(cap);
            self.set_hint_durably(layout::H_SCAN_LIMIT, limit)?;
            self.scan_limit = limit;
        }
        let off = HEADER_SIZE + (lpos % cap) as usize;
        let dst = &mut self.map.bytes_mut()[off..off + size as usize];
        layout::encode_record(
            dst,
            lpos,
            pktid,
            time.as_micros(),
            srcname.as_bytes(),
            payload,
        );
        self.next_pktid = pktid + 1;
        self.set_hint(layout::H_NEXT_PKTID, pktid + 1);
        self.head_end = end;
        self.index
            .push(pktid, lpos, time.as_micros(), payload.len() as u32, srcname);
        Ok((pktid, (lpos, end)))
    }

    /// The byte spans of the file to msync so that the logical range `lo..hi` is on
    /// disk: its data pages (the whole data area if it wraps), then the header page.
    fn sync_spans(&self, (lo, hi): (u64, u64)) -> [(usize, usize); 2] {
        let cap = self.capacity;
        let data = if hi - lo >= cap || lo / cap != (hi - 1) / cap {
            (HEADER_SIZE, cap as usize)
        } else {
            (HEADER_SIZE + (lo % cap) as usize, (hi - lo) as usize)
        };
        [data, (0, HEADER_SIZE)]
    }

    /// Checks the record at ring position `pos` and returns its payload.
    fn record(&self, pos: usize) -> Result<&[u8], RingError> {
        let e = *self.index.get(pos).expect("position inside the index");
        let data = &self.map.bytes()[HEADER_SIZE..];
        let off = (e.lpos % self.capacity) as usize;
        let corrupt = RingError::Corrupt {
            pktid: e.pktid,
            lpos: e.lpos,
        };
        let h = layout::check_record(data, off).ok_or(corrupt)?;
        if h.pktid != e.pktid || h.lpos != e.lpos {
            return Err(RingError::Corrupt {
                pktid: e.pktid,
                lpos: e.lpos,
            });
        }
        let start = off + RECORD_HEADER + usize::from(h.srcname_len);
        Ok(&data[start..start + h.payload_len as usize])
    }
}

fn log_recovery(path: &Path, r: &RecoveryReport) {
    let p = path.display();
    if r.created {
        tracing::info!("created ring {p}");
        return;
    }
    tracing::info!(
        "opened ring {p}: {} packets recovered in {:.3}s, next pktid {}, previous close {}",
        r.packets,
        r.elapsed.as_secs_f64(),
        r.next_pktid,
        if r.clean {
            "clean"
        } else {
            "unclean (recovered by scan)"
        }
    );
    if let Some(pktid) = r.torn_tail {
        tracing::warn!("ring {p}: dropped the torn record of pktid {pktid} at the head (its append never returned)");
    }
    for c in &r.corrupt {
        tracing::warn!(
            "ring {p}: skipped a corrupt region of {} bytes at positions {}..{} between pktids {} and {}",
            c.end - c.start,
            c.start,
            c.end,
            c.after_pktid,
            c.before_pktid
        );
    }
    if r.dropped > 0 {
        tracing::warn!(
            "ring {p}: dropped {} records that checked but were out of order or unreadable",
            r.dropped
        );
    }
}
