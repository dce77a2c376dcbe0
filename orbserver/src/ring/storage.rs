//! What the ring needs from its storage, and nothing more: the file's bytes to read and
//! write, its length, and flushes (msync) of a range or of the whole file.
//!
//! The server uses one implementation, the memory mapping of `map.rs`; the ring's tests
//! use a second, in memory, that keeps what a power failure would leave apart from what
//! the process sees and can fail a chosen flush (`testing.rs`). `RingStore` is generic
//! over the storage, with the mapping as default, so the server's code is monomorphised
//! to the same direct calls it made before this trait existed: no dynamic dispatch in the
//! append and read paths.

use std::io;

use super::map::{Flusher, RingMap};

/// The byte image of a ring file and the way to make parts of it durable.
///
/// The image has a fixed length for the life of the storage (the header page plus the
/// data area). Writes through [`bytes_mut`](RingStorage::bytes_mut) are visible at once
/// to [`bytes`](RingStorage::bytes) and survive the death of the process; they survive
/// a power failure only once a flush that covers them has returned `Ok`.
pub trait RingStorage: Send + Sync + 'static {
    /// A handle that can flush this storage without borrowing it, for the interval
    /// flusher thread and for syncs made after the ring's write lock is let go.
    type Flusher: RingFlusher;

    /// The whole image.
    fn bytes(&self) -> &[u8];

    /// The whole image, to write.
    fn bytes_mut(&mut self) -> &mut [u8];

    /// The image's length in bytes.
    fn image_len(&self) -> usize {
        self.bytes().len()
    }

    /// Makes bytes `offset..offset + len` durable and waits for the device.
    fn flush_range(&self, offset: usize, len: usize) -> io::Result<()>;

    /// A flush handle sharing this storage.
    fn flusher(&self) -> Self::Flusher;
}

/// Can make a storage's bytes durable, and nothing else.
pub trait RingFlusher: Send + 'static {
    /// Makes the whole image durable and waits for the device.
    fn flush(&self) -> io::Result<()>;

    /// Makes bytes `offset..offset + len` durable and waits for the device.
    fn flush_range(&self, offset: usize, len: usize) -> io::Result<()>;
}

impl RingStorage for RingMap {
    type Flusher = Flusher;

    #[inline]
    fn bytes(&self) -> &[u8] {
        RingMap::bytes(self)
    }

    #[inline]
    fn bytes_mut(&mut self) -> &mut [u8] {
        RingMap::bytes_mut(self)
    }

    #[inline]
    fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        RingMap::flush_range(self, offset, len)
    }

    #[inline]
    fn flusher(&self) -> Flusher {
        RingMap::flusher(self)
    }
}

impl RingFlusher for Flusher {
    #[inline]
    fn flush(&self) -> io::Result<()> {
        Flusher::flush(self)
    }

    #[inline]
    fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        Flusher::flush_range(self, offset, len)
    }
}
