//! The orb server.
//!
//! - [`ring`]: `RingStore`, the crash-safe memory-mapped ring of packets, with its
//!   recovery scan, pktid/time/source indexes and flush policies. The file format is in
//!   `docs/RING-FORMAT.md`.
//!
//! - [`server`]: the running server: binds the listeners, opens the ring, shuts down.
//! - [`hub`]: what every connection shares: client table, access policy, admission,
//!   refusal counters, totals, config reload.
//! - [`conn`]: the connection layer: one accept loop and one connection driver for
//!   every protocol; a protocol is a socket-free session.
//! - [`native`]: the native protocol's session (`docs/PROTOCOL.md`).
//! - [`access`]: who may connect, read, write and administer (docs/SECURITY.md).
//! - [`gateway`]: DataLink and SeedLink listeners on the same ring (docs/GATEWAYS.md).
//! - [`http`]: the HTTP port: status resources, JSON APIs, metrics (docs/HTTP.md).
//! - [`config`]: [`config::ServerConfig`], from a TOML file and flags.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod access;
pub mod config;
pub mod conn;
pub mod gateway;
pub mod gencert;
pub mod http;
pub mod hub;
pub mod native;
pub mod ring;
pub mod server;
