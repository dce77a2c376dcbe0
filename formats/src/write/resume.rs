//! Reopening an archive file to append: [`Truncate`], what resuming needs beyond
//! `Read + Write + Seek`, and [`Resumed`], what a writer's `resume` returns.
//!
//! A crash can leave half a record or half a line at the end of an archive file. The
//! writers find where the intact part ends and must cut the rest before appending, or
//! a shorter new record would leave garbage after it. `std::io` has no trait for that,
//! so this one is implemented for files and for the in-memory cursors tests use.

use std::io::{self, Cursor};

/// Something whose length can be set, like [`std::fs::File::set_len`].
pub trait Truncate {
    /// Cuts (or extends with zeros) to exactly `len` bytes. The position is unchanged.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

impl Truncate for std::fs::File {
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        std::fs::File::set_len(self, len)
    }
}

impl Truncate for &std::fs::File {
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        std::fs::File::set_len(self, len)
    }
}

impl Truncate for Cursor<Vec<u8>> {
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length beyond memory"))?;
        self.get_mut().resize(len, 0);
        Ok(())
    }
}

impl<T: Truncate + ?Sized> Truncate for &mut T {
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        (**self).set_len(len)
    }
}

/// A writer reopened on an existing file, and what had to be cut from its end.
#[derive(Debug)]
pub struct Resumed<W> {
    /// The writer, positioned after the last intact record, its summary rebuilt.
    pub writer: W,
    /// Bytes cut from the end: an incomplete last record or line left by a crash
    /// (0 for a clean file). Worth a log line when not 0.
    pub cut: u64,
}
