//! [`ClientError`]: everything that can go wrong talking to an orb server.
//!
//! Messages are one lowercase line; the cause (an `io::Error`, a [`DecodeError`]) is
//! the error's `source`, so `{:#}` through anyhow prints the whole chain once.

use std::time::Duration;

use formats::proto::{DecodeError, ErrorCode};

use crate::OrbAddr;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The TCP connection (or the HELLO/WELCOME handshake) could not be made.
    #[error("cannot connect to orb {addr} (is orbserver running there, and is the port right?)")]
    Connect {
        /// The address tried.
        addr: OrbAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The TLS handshake with a `tls://` address failed, or its options are unusable.
    #[error("cannot connect to orb {addr} over TLS: {why}")]
    Tls {
        /// The address tried.
        addr: OrbAddr,
        /// Why, in one line.
        why: String,
    },
    /// Reading from or writing to an established connection failed.
    #[error("connection to the orb server failed")]
    Io(#[from] std::io::Error),
    /// The server sent bytes that are not a valid frame; the connection is unusable.
    #[error("the orb server sent a bad frame; reconnect, and report it if it repeats")]
    Decode(#[from] DecodeError),
    /// The server answered a request with ERROR.
    #[error("orb server: {code}: {message}")]
    Server {
        /// The error code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// The server sent a valid frame that makes no sense here (wrong kind or tag).
    #[error("protocol violation: {0}; client and server disagree, report this")]
    Protocol(String),
    /// The server closed the connection, or an earlier error left it unusable.
    #[error("the orb server closed the connection; reconnect to go on")]
    Closed,
    /// A packet is larger than the server accepts (WELCOME's `max_packet`); nothing was sent.
    #[error(
        "packet of {len} bytes exceeds the server's limit of {max} bytes; send smaller packets"
    )]
    PacketTooLarge {
        /// Payload length.
        len: usize,
        /// The server's limit.
        max: u32,
    },
    /// The request cannot be sent as asked (empty batch, batch over the frame limit ...).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The server did not answer in time.
    #[error("the orb server did not answer {what} within {after:?}; check that it is alive")]
    Timeout {
        /// What was waited for.
        what: &'static str,
        /// How long.
        after: Duration,
    },
}

impl ClientError {
    /// The server's error code, for [`ClientError::Server`].
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when the connection is gone (closed, broken, refused, or the server said it
    /// is shutting down): reconnecting may help. False for errors a reconnect would
    /// only repeat (bad regex, access, protocol violations).
    pub fn is_connection_lost(&self) -> bool {
        match self {
            ClientError::Connect { .. }
            | ClientError::Io(_)
            | ClientError::Decode(_)
            | ClientError::Closed
            | ClientError::Timeout { .. } => true,
            // The fatal codes a new connection may not repeat: the server restarted,
            // or a client limit that may have freed up.
            ClientError::Server { code, .. } => {
                let retry = matches!(code, ErrorCode::ShuttingDown | ErrorCode::Refused);
                retry
            }
            _ => false,
        }
    }

    /// True for an I/O error of kind broken pipe (the server went away mid-write).
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, ClientError::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// Short for `Result<T, ClientError>`.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_lowercase() {
        let errs = [
            ClientError::Connect {
                addr: OrbAddr::new("h", 1),
                source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            },
            ClientError::Io(std::io::ErrorKind::UnexpectedEof.into()),
            ClientError::Decode(DecodeError::TooShort { len: 1 }),
            ClientError::Server {
                code: ErrorCode::BadRegex,
                message: "unclosed group".into(),
            },
            ClientError::Protocol("x".into()),
            ClientError::Tls {
                addr: OrbAddr::new("h", 1),
                why: "the server's certificate has expired".into(),
            },
            ClientError::Closed,
            ClientError::PacketTooLarge { len: 9, max: 8 },
            ClientError::BadRequest("x".into()),
            ClientError::Timeout {
                what: "STAT",
                after: Duration::from_secs(1),
            },
        ];
        for e in errs {
            let s = e.to_string();
            assert!(!s.contains('\n'), "{s}");
            assert!(s.starts_with(|c: char| !c.is_uppercase()), "{s}");
        }
    }

    #[test]
    fn server_error_prints_its_message() {
        let e = ClientError::Server {
            code: ErrorCode::OutOfRange,
            message: "pktid 5 is not in 10..=20".into(),
        };
        assert_eq!(
            e.to_string(),
            "orb server: out of range: pktid 5 is not in 10..=20"
        );
        assert_eq!(e.code(), Some(ErrorCode::OutOfRange));
        assert!(!e.is_connection_lost());
    }
}
