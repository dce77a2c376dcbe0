//! SeedLink 3.1 (SeisComP's protocol, as SeisComP's seedlink, ringserver and libslink
//! speak it), sans-io: client command lines in, server replies and frames out.
//!
//! - [`command`]: [`split_line`] and [`parse`] turn command lines into [`Command`]s;
//!   SeedLink's `YYYY,MM,DD,hh,mm,ss` times.
//! - [`selector`]: station patterns and `SELECT` stream selectors, and their matching.
//! - [`frame`]: `OK`, `ERROR`, `END`, data frames (`SL` + sequence + 512-byte record)
//!   and INFO frames (XML in miniSEED log records).
//! - [`v4`]: SeedLink 4.0's command forms, `SE` frames, errors and 64-bit sequence
//!   numbers.
//! - [`mseed3`]: a 512-byte miniSEED 2 record as a miniSEED 3 record (SeedLink 4's
//!   format `3`).
//! - [`record`]: the stream identity of a miniSEED record, and packets' channels as
//!   512-byte Steim2 records.
//!
//! docs/GATEWAYS.md, "SeedLink", says how the orb server uses it.

pub mod command;
pub mod frame;
pub mod mseed3;
pub mod record;
pub mod selector;
pub mod v4;

pub use command::{parse, split_line, AuthRequest, Command, InfoLevel, Resume, MAX_LINE, MAX_SEQ};
pub use selector::{selected, Selector, StationPattern};

/// Why a command line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeedLinkError {
    /// The line is longer than [`MAX_LINE`] bytes: the connection is closed.
    #[error("command line longer than {max} bytes")]
    LineTooLong {
        /// The limit.
        max: usize,
    },
    /// The line has bytes outside printable ASCII.
    #[error("command line is not ASCII")]
    NotAscii,
    /// The keyword is not a SeedLink 3.1 command.
    #[error("unknown command {0}")]
    UnknownCommand(String),
    /// Too few or too many arguments.
    #[error("{command} takes {min} to {max} arguments, got {got}")]
    Arguments {
        /// The command.
        command: String,
        /// Fewest arguments.
        min: usize,
        /// Most arguments.
        max: usize,
        /// Arguments given.
        got: usize,
    },
    /// A sequence number that is not 1 to 6 hex digits.
    #[error("bad sequence number {0:?}: want hex digits")]
    Sequence(String),
    /// A SeedLink 4 sequence number that is not a decimal u64 or `ALL`.
    #[error("bad sequence number {0:?}: want a decimal number or ALL")]
    SequenceV4(String),
    /// A time that is not `YYYY,MM,DD,hh,mm,ss`.
    #[error("bad time {0:?}: want YYYY,MM,DD,hh,mm,ss")]
    Time(String),
    /// TIME's end is before its begin.
    #[error("end time before begin time")]
    EndBeforeBegin,
    /// A bad station or network pattern.
    #[error("bad station or network pattern {0:?}")]
    Pattern(String),
    /// A bad stream selector.
    #[error("bad selector {0:?}: want [!][LL]CCC[.T] or [!][LL_]B_S_S[.T]")]
    Selector(String),
    /// A SeedLink 4 selector filter other than `native`.
    #[error("unsupported filter {0:?}: want native (miniSEED 2) or 3 (miniSEED 3)")]
    Filter(String),
    /// An unknown INFO level.
    #[error("unknown INFO level {0}")]
    InfoLevel(String),
}
