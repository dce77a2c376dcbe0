//! The native orb protocol (docs/PROTOCOL.md) as a [`Protocol`] for the connection
//! driver. The codec is sans-io in `formats::proto`.
//!
//! - `session`: one client's protocol state; turns frames into replies and streams
//! - `info`: the STAT, SOURCES and CLIENTS documents

pub(crate) mod info;
mod session;

use std::sync::Arc;

use bytes::BytesMut;
use formats::proto::{Body, ErrorCode, Frame};

use crate::conn::Protocol;
use crate::hub::clients::Registration;
use crate::hub::Hub;

pub use session::Session;

/// The native protocol.
pub struct Native;

impl Protocol for Native {
    const NAME: &'static str = "orb";
    type Session = Session;

    fn refusal(msg: &str) -> Vec<u8> {
        let mut out = BytesMut::new();
        Frame {
            tag: 0,
            body: Body::Error {
                code: ErrorCode::Refused,
                message: msg,
            },
        }
        .encode(&mut out);
        out.to_vec()
    }

    fn session(hub: Arc<Hub>, reg: Registration) -> Session {
        Session::new(hub, reg)
    }
}

#[cfg(test)]
mod tests;
