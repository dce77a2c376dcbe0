//! Client side of the orb: the async client library and the operator tools.
//!
//! - [`OrbAddr`] (from `formats::addr`, shared with the server and the rules):
//!   ORB addresses as Antelope writes them, defaulting to [`DEFAULT_PORT`].
//! - [`connection`]: [`Connection`], frames over a `TcpStream` (read buffer in, owned
//!   frames out; writes batched), and [`Pipeline`] for many requests in flight.
//! - [`client`]: [`OrbClient`], one session: put, select/reject, seek/after/tell,
//!   get, stat/sources/clients, ping.
//! - [`put`]: [`PutSummary`], [`PutAck`] and the one state machine of pipelined puts
//!   (multi-packet PUT frames), used by [`OrbClient::put_pipelined`] and the federation.
//! - [`reap`]: [`ReapStream`], a REAP's packets with credit flow control and optional
//!   reconnection.
//! - [`error`]: [`ClientError`], what can go wrong, and [`error::Result`].
//! - [`replay`]: raw packet files merged by time and paced, behind `orbput --from`.
//! - [`sim`]: the sensor network simulator behind `orbsim`, deterministic from a seed.
//! - [`cli`]: what the binaries in `src/bin/` share (logging, exit codes, broken pipes).
//!
//! The protocol itself (frames, encoding, decoding) is `formats::proto`, sans-io; this
//! crate only moves its bytes. Session rules: `docs/PROTOCOL.md`.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod client;
pub mod connection;
pub mod error;
pub mod federation;
pub mod put;
pub mod reap;
pub mod replay;
pub mod sim;
pub mod tls;

#[cfg(test)]
mod testpeer;
#[cfg(test)]
mod tests;

pub use client::{ClientOptions, InfoKind, OrbClient, Position};
pub use connection::{Connection, Incoming, Pipeline, ReapEnd, ServerMsg, Welcome};
pub use error::ClientError;
pub use formats::addr::{self, AddrError, OrbAddr, DEFAULT_PORT};
pub use put::{PutAck, PutSummary};
pub use reap::{ReapEvent, ReapOptions, ReapStream, ReconnectPolicy, DEFAULT_CREDIT_WINDOW};
pub use tls::TlsOptions;
