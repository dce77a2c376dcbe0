//! The one place that knows each format's writer: create a new archive file or
//! resume an existing one, as a boxed [`PacketWriter`].

use std::fs::File;

use formats::write::{Format, PacketWriter, WriteError};

/// A writer for any format, movable between tasks.
pub type BoxWriter = Box<dyn PacketWriter + Send>;

/// A writer reopened on an existing file.
pub struct Resumed {
    /// The writer, positioned to append.
    pub writer: BoxWriter,
    /// Bytes cut from a torn end (0 for a clean file).
    pub cut: u64,
}

/// Starts a new, empty file of `format` in `file`.
pub fn create(format: Format, file: File) -> Result<BoxWriter, WriteError> {
    let _ = file;
    Err(unavailable(format))
}

/// Reopens `file` (read and write) to append to it.
pub fn resume(format: Format, file: File) -> Result<Resumed, WriteError> {
    let _ = file;
    Err(unavailable(format))
}

fn unavailable(format: Format) -> WriteError {
    WriteError::Corrupt(format!("the {format} writer is not built into this orbreaper"))
}
