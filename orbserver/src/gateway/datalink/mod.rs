//! The DataLink listener: ringserver's protocol (DataLink 1.0) against the orb's ring.
//! docs/GATEWAYS.md, "DataLink", says what it does and where it differs from ringserver.
//!
//! - `conn`: the socket task (bytes in and out, waiting).
//! - `session`: the protocol state, without sockets (commands in, replies out).
//! - `streamid`: DataLink stream ids and orb srcnames, one to the other.
//! - `info`: the XML documents INFO answers with.
//!
//! The codec itself is sans-io, in `formats::datalink`.

mod conn;
mod info;
mod session;
pub mod streamid;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::Gateway;
use crate::server::clients::Registration;
use crate::server::Shared;

/// The DataLink protocol.
pub struct DataLink;

impl Gateway for DataLink {
    const NAME: &'static str = "DataLink";

    fn refusal(msg: &str) -> Vec<u8> {
        let mut out = Vec::new();
        session::error(&mut out, msg);
        out
    }

    fn serve(
        stream: TcpStream,
        peer: SocketAddr,
        shared: Arc<Shared>,
        reg: Registration,
        shutdown: CancellationToken,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        conn::serve(stream, peer, shared, reg, shutdown)
    }
}
