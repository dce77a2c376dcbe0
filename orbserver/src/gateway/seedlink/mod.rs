//! The SeedLink 3.1 and 4.0 listener, read-only: SeisComP's, ringserver's and ObsPy's
//! clients read the ring as SeedLink stations and streams. docs/GATEWAYS.md,
//! "SeedLink", says what maps to what.
//!
//! - `request`: the command state machine (uni- and multi-station negotiation).
//! - `resume`: SeedLink sequence numbers and pktids.
//! - `feed`: the transfer, ring packets to data frames.
//! - `info`: INFO XML and CAT; `info_json`: SeedLink 4's INFO JSON.
//! - `session`: the connection's state, run by the connection driver (`crate::conn`).
//!
//! The protocol's bytes (commands, selectors, frames, records) are sans-io in
//! `formats::seedlink`.

mod feed;
mod info;
mod info_json;
mod request;
mod resume;
mod session;

use std::sync::Arc;

use crate::conn::Protocol;
use crate::hub::clients::Registration;
use crate::hub::Hub;

/// The organisation line of the HELLO reply and INFO documents.
pub const ORGANIZATION: &str = "orb ring server";

/// The first HELLO line: the server's SeedLink version and what it can do. `v3.1`
/// comes right after `SeedLink` because ObsPy and libslink read the version there (a
/// 3.1 client must not be told of a version it does not speak); `SLPROTO:4.0` in the
/// capability list is how a SeedLink 4 client learns it may send `SLPROTO 4.0`.
pub fn hello_line() -> String {
    format!(
        "SeedLink v3.1 (orb {}) :: SLPROTO:4.0 SLPROTO:3.1 CAP EXTREPLY NSWILDCARD BATCH",
        env!("CARGO_PKG_VERSION")
    )
}

/// The SeedLink protocol.
pub struct SeedLink;

impl Protocol for SeedLink {
    const NAME: &'static str = "SeedLink";
    type Session = session::SlSession;

    fn refusal(_msg: &str) -> Vec<u8> {
        // Nothing was asked yet, and a reason would not be read as one (no EXTREPLY):
        // SeedLink clients take a bare ERROR and a closed connection as a refusal.
        formats::seedlink::frame::ERROR.to_vec()
    }

    fn session(hub: Arc<Hub>, reg: Registration) -> session::SlSession {
        session::SlSession::new(hub, reg)
    }
}

#[cfg(test)]
mod tests;
