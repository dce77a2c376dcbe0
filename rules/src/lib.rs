//! Reaping and ingest rules.
//!
//! - [`select`]: [`SrcSelect`], Antelope's select/reject pair of regular
//!   expressions, each matched against the whole srcname.
//!
//! Rule files and the orbreaper engine will live here too.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod select;

pub use select::{SelectError, SrcSelect, MAX_REGEX_LEN};
