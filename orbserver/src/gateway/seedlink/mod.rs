//! The SeedLink 3.1 listener, read-only: SeisComP's, ringserver's and ObsPy's
//! clients read the ring as SeedLink stations and streams. docs/GATEWAYS.md,
//! "SeedLink", says what maps to what.
//!
//! - `request`: the command state machine (uni- and multi-station negotiation).
//! - `resume`: SeedLink sequence numbers and pktids.
//! - `feed`: the transfer, ring packets to data frames.
//! - `info`: INFO XML and CAT.
//! - `conn`: the socket loop.
//!
//! The protocol's bytes (commands, selectors, frames, records) are sans-io in
//! `formats::seedlink`.

mod conn;
mod feed;
mod info;
mod request;
mod resume;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::Gateway;
use crate::server::clients::Registration;
use crate::server::Shared;

/// The organisation line of the HELLO reply and INFO documents.
pub const ORGANIZATION: &str = "orb ring server";

/// The first HELLO line: the server's SeedLink version and what it can do. `v3.1`
/// comes right after `SeedLink` because ObsPy and libslink read the version there.
pub fn hello_line() -> String {
    format!(
        "SeedLink v3.1 (orb {}) :: SLPROTO:3.1 CAP EXTREPLY NSWILDCARD BATCH",
        env!("CARGO_PKG_VERSION")
    )
}

/// The SeedLink protocol.
pub struct SeedLink;

impl Gateway for SeedLink {
    const NAME: &'static str = "SeedLink";

    fn refusal(_msg: &str) -> Vec<u8> {
        // Nothing was asked yet, and a reason would not be read as one (no EXTREPLY):
        // SeedLink clients take a bare ERROR and a closed connection as a refusal.
        formats::seedlink::frame::ERROR.to_vec()
    }

    async fn serve(
        stream: TcpStream,
        peer: SocketAddr,
        shared: Arc<Shared>,
        reg: Registration,
        shutdown: CancellationToken,
    ) {
        conn::serve(stream, peer, shared, reg, shutdown).await;
    }
}
