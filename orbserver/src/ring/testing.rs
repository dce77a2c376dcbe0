//! An in-memory [`RingStorage`] for the ring's tests: it keeps what the process sees
//! apart from what a power failure would leave, and can fail chosen flushes.
//!
//! Two images of the ring file:
//!
//! - **written**: every store the ring made, as the page cache holds them. A process kill
//!   leaves exactly this (RING-FORMAT.md section 6): reopen it with
//!   [`RingStore::open_image`] to simulate `kill -9`.
//! - **durable**: what reached the disk, that is what flushes (and simulated kernel
//!   write-backs) copied from the written image. A power failure leaves exactly this.
//!
//! Faults ([`Fault`]) make a flush fail with `EIO` without copying anything: one chosen
//! call, every call touching a chosen range, or every call from one on (the power is
//! gone: write-backs stop too). A hook can run code just before a chosen flush call, to
//! interleave another append with a sync exactly where the ring lets go of its lock.
//!
//! A flush does not copy at once: it records the range, and the copy is made before the
//! next store into the written image (every store goes through `bytes_mut`) or when the
//! images are taken. Nothing can change the written image in between, so the durable
//! image ends up as if the copy had been made at the flush, without the flusher (which
//! runs without the ring's lock) ever touching the written image.

use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::layout::HEADER_SIZE;
use super::storage::{RingFlusher, RingStorage};
use super::{init_header, RingError, RingOptions, RingStore};

/// A flush the ring asked for, in call order from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FlushCall {
    /// Its number: the ring's first flush is 0.
    pub n: u64,
    /// The bytes it covers.
    pub range: Range<usize>,
    /// It returned an error.
    pub failed: bool,
}

/// A way for flushes to fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Flush call `n` fails; the disk keeps working after it.
    Call(u64),
    /// Every flush that covers a byte of this range fails.
    Overlapping(Range<usize>),
    /// Flush call `n` and every later one fail, and write-backs stop: the power went
    /// just before call `n` reached the disk.
    PowerCutAt(u64),
}

type Hook = Box<dyn FnOnce() + Send>;

struct Disk {
    durable: Vec<u8>,
    /// Ranges flushed or written back, not yet copied from the written image.
    pending: Vec<Range<usize>>,
    calls: Vec<FlushCall>,
    faults: Vec<Fault>,
    power_lost: bool,
    before: Option<(u64, Hook)>,
}

impl Disk {
    fn settle(&mut self, written: &[u8]) {
        for r in self.pending.drain(..) {
            self.durable[r.clone()].copy_from_slice(&written[r]);
        }
    }
}

/// The test's handle on a [`MemStorage`]'s disk: faults, hooks and the flush log.
#[derive(Clone)]
pub(crate) struct SimDisk(Arc<Mutex<Disk>>);

impl SimDisk {
    fn new(durable: Vec<u8>) -> SimDisk {
        SimDisk(Arc::new(Mutex::new(Disk {
            durable,
            pending: Vec::new(),
            calls: Vec::new(),
            faults: Vec::new(),
            power_lost: false,
            before: None,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Disk> {
        // A test that panicked while holding the lock fails anyway; go on for its report.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a fault.
    pub fn fail(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Runs `hook` just before flush call `n` does anything (without the disk's lock,
    /// so the hook may use the ring).
    pub fn before_flush(&self, n: u64, hook: impl FnOnce() + Send + 'static) {
        self.lock().before = Some((n, Box::new(hook)));
    }

    /// The flushes made so far.
    pub fn calls(&self) -> Vec<FlushCall> {
        self.lock().calls.clone()
    }

    /// The kernel writing back `range` on its own, as it may at any time: the bytes
    /// become durable without any flush. Ignored once the power is gone.
    pub fn write_back(&self, range: Range<usize>) {
        let mut d = self.lock();
        if !d.power_lost {
            d.pending.push(range);
        }
    }

    fn flush(&self, range: Range<usize>) -> io::Result<()> {
        let hook = {
            let mut d = self.lock();
            let n = d.calls.len() as u64;
            match d.before.take() {
                Some((at, hook)) if at == n => Some(hook),
                other => {
                    d.before = other;
                    None
                }
            }
        };
        if let Some(hook) = hook {
            hook();
        }
        let mut d = self.lock();
        let n = d.calls.len() as u64;
        let mut failed = d.power_lost;
        for f in &d.faults {
            match f {
                Fault::Call(k) => failed |= *k == n,
                Fault::Overlapping(r) => failed |= r.start < range.end && range.start < r.end,
                Fault::PowerCutAt(k) => failed |= *k <= n,
            }
        }
        if d.faults.contains(&Fault::PowerCutAt(n)) {
            d.power_lost = true;
        }
        d.calls.push(FlushCall {
            n,
            range: range.clone(),
            failed,
        });
        if failed {
            return Err(io::Error::other(format!(
                "simulated I/O error on flush {n} of {range:?}"
            )));
        }
        d.pending.push(range);
        Ok(())
    }
}

/// A ring file held in memory: the written image, and a [`SimDisk`] behind it.
pub(crate) struct MemStorage {
    written: Vec<u8>,
    disk: SimDisk,
}

impl MemStorage {
    /// The written and the durable image, as a process kill and a power failure would
    /// leave them now.
    pub fn images(&self) -> Images {
        let mut d = self.disk.lock();
        d.settle(&self.written);
        Images {
            written: self.written.clone(),
            durable: d.durable.clone(),
        }
    }
}

/// The two images of a [`MemStorage`].
pub(crate) struct Images {
    /// What the process sees (survives a process kill).
    pub written: Vec<u8>,
    /// What reached the disk (survives a power failure).
    pub durable: Vec<u8>,
}

impl RingStorage for MemStorage {
    type Flusher = MemFlusher;

    fn bytes(&self) -> &[u8] {
        &self.written
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // Copy what earlier flushes covered before anything changes (module doc).
        self.disk.lock().settle(&self.written);
        &mut self.written
    }

    fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        self.disk.flush(offset..offset + len)
    }

    fn flusher(&self) -> MemFlusher {
        MemFlusher {
            disk: self.disk.clone(),
            len: self.written.len(),
        }
    }
}

/// Flushes a [`MemStorage`].
pub(crate) struct MemFlusher {
    disk: SimDisk,
    len: usize,
}

impl RingFlusher for MemFlusher {
    fn flush(&self) -> io::Result<()> {
        self.disk.flush(0..self.len)
    }

    fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        self.disk.flush(offset..offset + len)
    }
}

/// The name the in-memory ring gives itself in errors and logs.
fn mem_path() -> PathBuf {
    PathBuf::from("memory/orb.ring")
}

impl RingStore<MemStorage> {
    /// Creates a new ring of `opts.size` (required) in memory, its header durable, as
    /// `RingStore::open` creates one in a file.
    pub(crate) fn create_in_memory(opts: &RingOptions) -> Result<(Self, SimDisk), RingError> {
        let capacity = opts.size.expect("an in-memory ring needs a size");
        if !super::layout::capacity_ok(capacity) {
            return Err(RingError::BadSize { size: capacity });
        }
        let len = HEADER_SIZE + capacity as usize;
        let disk = SimDisk::new(vec![0; len]);
        let mut storage = MemStorage {
            written: vec![0; len],
            disk: disk.clone(),
        };
        init_header(&mut storage, capacity).map_err(|source| RingError::Io {
            action: "msync header of",
            path: mem_path(),
            source,
        })?;
        let ring = RingStore::from_storage(storage, mem_path(), true, opts, Instant::now())?;
        Ok((ring, disk))
    }

    /// Opens a ring file image left by a crash (or anything else), recovering it as
    /// `RingStore::open` recovers a file; the disk starts out holding the same image.
    pub(crate) fn open_image(
        image: Vec<u8>,
        opts: &RingOptions,
    ) -> Result<(Self, SimDisk), RingError> {
        let disk = SimDisk::new(image.clone());
        let storage = MemStorage {
            written: image,
            disk: disk.clone(),
        };
        let ring = RingStore::from_storage(storage, mem_path(), false, opts, Instant::now())?;
        Ok((ring, disk))
    }

    /// The written and the durable image now (see [`MemStorage::images`]).
    pub(crate) fn images(&self) -> Images {
        self.read().map.images()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(len: usize) -> (MemStorage, SimDisk) {
        let disk = SimDisk::new(vec![0; len]);
        let s = MemStorage {
            written: vec![0; len],
            disk: disk.clone(),
        };
        (s, disk)
    }

    #[test]
    fn a_flush_makes_durable_the_bytes_as_they_were_when_it_was_made() {
        let (mut s, disk) = storage(16);
        s.bytes_mut()[..8].fill(1);
        s.flusher().flush_range(0, 4).unwrap();
        // Stored after the flush: the process sees them, the disk does not.
        s.bytes_mut()[..8].fill(2);
        let i = s.images();
        assert_eq!(i.written[..8], [2; 8]);
        assert_eq!(i.durable[..8], [1, 1, 1, 1, 0, 0, 0, 0]);
        disk.write_back(4..6);
        assert_eq!(s.images().durable[..8], [1, 1, 1, 1, 2, 2, 0, 0]);
        assert_eq!(disk.calls().len(), 1, "a write-back is not a flush");
    }

    #[test]
    fn faults_fail_their_flushes_and_a_power_cut_stops_the_disk() {
        let (mut s, disk) = storage(16);
        disk.fail(Fault::Call(1));
        disk.fail(Fault::Overlapping(8..10));
        disk.fail(Fault::PowerCutAt(4));
        s.bytes_mut().fill(7);
        assert!(s.flush_range(0, 2).is_ok());
        assert!(s.flush_range(2, 2).is_err());
        assert!(s.flush_range(4, 4).is_ok());
        assert!(s.flush_range(6, 4).is_err());
        assert!(s.flusher().flush().is_err());
        disk.write_back(0..16);
        assert!(s.flush_range(12, 2).is_err());
        assert_eq!(
            s.images().durable,
            [7, 7, 0, 0, 7, 7, 7, 7, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        let failed: Vec<bool> = disk.calls().iter().map(|c| c.failed).collect();
        assert_eq!(failed, [false, true, false, true, true, true]);
    }
}
