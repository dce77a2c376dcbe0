//! The DataLink listener: ringserver's protocol (DataLink 1.1, and 1.0 to 1.0 clients)
//! against the orb's ring. docs/GATEWAYS.md, "DataLink", says what it does and where it
//! differs from ringserver.
//!
//! - `session`: the protocol state, without sockets (commands in, replies out), run by
//!   the connection driver (`crate::conn`).
//! - `streamid`: DataLink stream ids and orb srcnames, one to the other.
//! - `info`: the XML documents INFO answers with.
//!
//! The codec itself is sans-io, in `formats::datalink`.

mod info;
mod session;
pub mod streamid;

use std::sync::Arc;

use crate::conn::Protocol;
use crate::hub::clients::Registration;
use crate::hub::Hub;

/// The DataLink protocol.
pub struct DataLink;

impl Protocol for DataLink {
    const NAME: &'static str = "DataLink";
    type Session = session::DlSession;

    fn refusal(msg: &str) -> Vec<u8> {
        let mut out = crate::conn::Messages::default();
        session::error(&mut out, msg);
        out.take().0
    }

    fn session(hub: Arc<Hub>, reg: Registration) -> session::DlSession {
        session::DlSession::new(hub, reg)
    }
}

#[cfg(test)]
mod tests;
