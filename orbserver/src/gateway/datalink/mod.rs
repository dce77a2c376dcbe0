//! The DataLink listener (to be written).

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

    fn refusal(_msg: &str) -> Vec<u8> {
        Vec::new()
    }

    async fn serve(
        _stream: TcpStream,
        _peer: SocketAddr,
        _shared: Arc<Shared>,
        _reg: Registration,
        _shutdown: CancellationToken,
    ) {
    }
}
