//! The bytes everyone agrees on: the packet model shared by the orb server,
//! clients and rule engine.
//!
//! - [`srcname`]: [`SrcName`], the validated `net_sta_chan_loc/type/subcode`
//!   key of every packet, and its exact split into [`SrcNameParts`].
//! - [`time`]: [`Time`], UTC microseconds since 1970, with exact ISO 8601,
//!   epoch and relative (`-10m`) parsing and printing; [`parse_duration`].
//! - [`packet`]: [`Packet`], pktid + srcname + time + payload.
//! - [`select`]: [`SrcSelect`], Antelope's select/reject filter over srcnames, as
//!   readers send it and rules name it.
//! - [`addr`]: [`OrbAddr`], ORB addresses as Antelope writes them (`host:port`,
//!   `:port`, `host`), defaulting to [`DEFAULT_PORT`].
//! - [`proto`]: the wire protocol, sans-io: frames, encode, decode (`docs/PROTOCOL.md`).
//! - [`datalink`]: DataLink 1.0 (ringserver's protocol), sans-io: commands and
//!   replies, decode and encode (`docs/GATEWAYS.md`).
//! - [`payload`]: sensor payload codecs (GEN, GENC, MGENC, SEED with Steim1/2) and the
//!   registry that decodes a packet by its srcname suffix (`docs/FORMATS.md`).
//! - [`seedlink`]: SeedLink 3.1, sans-io: client commands, selectors, server frames.
//! - [`write`](mod@write): archive writers (netCDF, CDL, JSON Lines, raw) behind
//!   [`write::PacketWriter`].
//!
//! Nothing here opens files or depends on an async runtime (writers take any
//! `std::io::Write`), so fuzzers and other
//! readers can use it directly.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
pub mod datalink;
pub mod meta;
pub mod packet;
pub mod payload;
pub mod proto;
pub mod seedlink;
pub mod select;
pub mod srcname;
pub mod time;
pub mod write;

pub use addr::{AddrError, OrbAddr, DEFAULT_PORT};
pub use packet::Packet;
pub use select::{SelectError, SrcSelect, MAX_REGEX_LEN};
pub use srcname::{SrcName, SrcNameError, SrcNameParts, MAX_SRCNAME_LEN};
pub use time::{parse_duration, Time, TimeError};
