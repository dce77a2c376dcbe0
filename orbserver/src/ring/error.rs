//! Errors of the ring store. Each message names the file and says what to do.

use std::io;
use std::path::PathBuf;

/// Why a ring operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// An operating-system call on the ring file or directory failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done ("create", "open", "msync" ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Another process has the ring open.
    #[error("ring {path} is locked by another process: stop the other orbserver or use another ring directory")]
    Locked {
        /// The ring file.
        path: PathBuf,
    },
    /// The header is not one this server can trust; nothing was changed.
    #[error("refusing to open ring {path}: {problem}; restore it from a backup or move it away to start a new ring")]
    BadHeader {
        /// The ring file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The file length does not match the header's geometry (truncated or extended).
    #[error("refusing to open ring {path}: the file is {actual} bytes but its header says {expected}; it was truncated or extended, restore it or move it away to start a new ring")]
    BadLength {
        /// The ring file.
        path: PathBuf,
        /// Its length.
        actual: u64,
        /// The length its header implies.
        expected: u64,
    },
    /// The configured ring size differs from the existing ring's.
    #[error("ring {path} holds {existing} bytes of packets but a size of {requested} was asked for: start with --ring-size {existing} to keep its packets, or move the ring away to create one of the new size")]
    SizeMismatch {
        /// The ring file.
        path: PathBuf,
        /// The ring's capacity.
        existing: u64,
        /// The configured capacity.
        requested: u64,
    },
    /// A ring size the format does not allow.
    #[error("ring size {size} bytes is not allowed: use a multiple of 4 KiB from 1 MiB to 1 TiB")]
    BadSize {
        /// The size asked for.
        size: u64,
    },
    /// A packet too large for this ring.
    #[error("packet of {len} bytes with srcname {srcname} is too large for this ring: the limit is {max} bytes (a record may take a quarter of the ring); use a larger ring")]
    PacketTooLarge {
        /// Payload length.
        len: usize,
        /// Largest payload this srcname may carry in this ring.
        max: usize,
        /// The packet's srcname.
        srcname: String,
    },
    /// An earlier write failed; the writer refuses further appends until reopened.
    #[error("ring writer stopped after an earlier write error ({0}); restart orbserver to reopen the ring")]
    Poisoned(String),
    /// A live record failed its checksum when read.
    #[error(
        "record of pktid {pktid} at position {lpos} failed its checksum; the packet is skipped"
    )]
    Corrupt {
        /// Its pktid.
        pktid: u64,
        /// Its logical position.
        lpos: u64,
    },
}
