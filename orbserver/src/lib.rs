//! The orb server.
//!
//! - [`ring`]: `RingStore`, the crash-safe memory-mapped ring of packets, with its
//!   recovery scan, pktid/time/source indexes and flush policies. The file format is in
//!   `docs/RING-FORMAT.md`.
//!
//! The network server (protocol, sessions, listener) builds on the ring and is not part
//! of this crate yet.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod ring;
