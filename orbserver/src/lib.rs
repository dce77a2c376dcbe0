//! The orb server.
//!
//! - [`ring`]: `RingStore`, the crash-safe memory-mapped ring of packets, with its
//!   recovery scan, pktid/time/source indexes and flush policies. The file format is in
//!   `docs/RING-FORMAT.md`.
//!
//! - [`server`]: the tokio server: listener, connections, sessions (protocol in
//!   `docs/PROTOCOL.md`).
//! - [`access`]: who may connect, read, write and administer (docs/SECURITY.md).
//! - [`gateway`]: DataLink and SeedLink listeners on the same ring (docs/GATEWAYS.md).
//! - [`config`]: [`config::ServerConfig`], from a TOML file and flags.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod access;
pub mod config;
pub mod gateway;
pub mod ring;
pub mod server;
