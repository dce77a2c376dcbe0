//! The memory mapping of a ring file: the only module of this crate allowed `unsafe`.
//!
//! Why this is sound, in one place:
//!
//! * The file is created or opened by [`RingMap::open`], which takes an exclusive lock on
//!   it first, so no second orbserver maps it. Other programs writing the file behind our
//!   back are outside the contract (RING-FORMAT.md section 9), as for every mmap user.
//! * Rust references into the mapping are only made by [`RingMap::bytes`] (`&self`) and
//!   [`RingMap::bytes_mut`] (`&mut self`), so the borrow checker gives exactly the
//!   aliasing rules the references need: many readers or one writer. The ring keeps its
//!   `RingMap` inside an `RwLock`, which extends that to threads.
//! * The flusher thread holds a [`Flusher`], which can only ask the kernel to write dirty
//!   pages back (`msync`). The kernel reading pages while we store to them is not a data
//!   race in Rust's sense: no Rust reference or access is involved on that side.
//! * The mapping is never resized or remapped while references exist: its length is fixed
//!   at open, and `RingMap` owns it until drop.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;

use memmap2::{MmapOptions, MmapRaw};

use super::layout::HEADER_SIZE;

/// A locked, mapped ring file.
pub struct RingMap {
    raw: Arc<MmapRaw>,
    len: usize,
    _file: File,
}

/// Why the file could not be mapped.
#[derive(Debug)]
pub enum MapError {
    /// Another process holds the lock.
    Locked,
    /// An I/O error.
    Io(io::Error),
    /// The existing file is too short to hold a header.
    TooShort {
        /// The file's actual length.
        actual: u64,
    },
}

impl From<io::Error> for MapError {
    fn from(e: io::Error) -> Self {
        MapError::Io(e)
    }
}

fn lock(file: &File) -> Result<(), MapError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(MapError::Locked),
        Err(std::fs::TryLockError::Error(e)) => Err(MapError::Io(e)),
    }
}

impl RingMap {
    /// Opens, locks and maps an existing ring file at its actual length; the caller
    /// checks that length against the header before trusting anything else.
    pub fn open_existing(path: &Path) -> Result<RingMap, MapError> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        lock(&file)?;
        let actual = file.metadata()?.len();
        if actual < HEADER_SIZE as u64 {
            return Err(MapError::TooShort { actual });
        }
        Self::map(file, actual)
    }

    /// Creates (replacing any leftover of an interrupted creation), locks, allocates and
    /// maps a zero-filled file of `len` bytes. The caller writes the header and renames
    /// the file into place, so a crash during creation never leaves a headerless ring.
    pub fn create(path: &Path, len: u64) -> Result<RingMap, MapError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        lock(&file)?;
        // Allocate every block now: a full disk must fail here, not as SIGBUS on a store
        // into the mapping later.
        rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, len)
            .map_err(io::Error::from)?;
        Self::map(file, len)
    }

    fn map(file: File, len: u64) -> Result<RingMap, MapError> {
        let len_usize = usize::try_from(len).map_err(|_| MapError::TooShort { actual: len })?;
        // Mapping raw is safe by itself; what makes later access sound is that the file
        // is locked, `len` is its current length, it is never truncated while mapped,
        // and all access goes through `bytes`/`bytes_mut` (module doc).
        let raw = MmapOptions::new().len(len_usize).map_raw(&file)?;
        Ok(RingMap {
            raw: Arc::new(raw),
            len: len_usize,
            _file: file,
        })
    }

    /// The whole file as bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the pointer is valid for `len` bytes for as long as `self.raw` lives,
        // which outlives the returned borrow of `self`; no `&mut` to these bytes can exist
        // while `&self` is borrowed (only `bytes_mut(&mut self)` makes one).
        unsafe { std::slice::from_raw_parts(self.raw.as_ptr(), self.len) }
    }

    /// The whole file as mutable bytes.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` guarantees no other reference made by
        // this map is alive. The flusher's msync creates no Rust references.
        unsafe { std::slice::from_raw_parts_mut(self.raw.as_mut_ptr(), self.len) }
    }

    /// Writes back dirty pages in `offset..offset + len` and waits for the device.
    pub fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        self.raw.flush_range(offset, len)
    }

    /// A handle that can only msync the mapping, for the interval flusher thread.
    pub fn flusher(&self) -> Flusher {
        Flusher(Arc::clone(&self.raw))
    }
}

/// Can msync the mapping, and nothing else.
pub struct Flusher(Arc<MmapRaw>);

impl Flusher {
    /// Writes back every dirty page of the mapping and waits for the device.
    pub fn flush(&self) -> io::Result<()> {
        self.0.flush()
    }

    /// Writes back dirty pages in `offset..offset + len` and waits for the device.
    pub fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        self.0.flush_range(offset, len)
    }
}
