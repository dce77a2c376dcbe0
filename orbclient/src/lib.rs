//! Client side of the orb.
//!
//! - [`addr`]: [`OrbAddr`], ORB addresses as Antelope writes them (`host:port`,
//!   `:port`, `host`), defaulting to [`DEFAULT_PORT`].
//!
//! The async client and the operator tools (orbstat, orbtail, ...) will live
//! here too.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;

pub use addr::{AddrError, OrbAddr, DEFAULT_PORT};
