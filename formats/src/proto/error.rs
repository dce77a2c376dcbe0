//! Decode errors, and the error codes an ERROR frame carries.

use std::fmt;

/// Why bytes are not a valid frame. Every variant is fatal for the connection: after
/// it the byte stream cannot be trusted to be at a frame boundary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The declared length exceeds the peer's maximum; nothing was allocated.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Declared length.
        len: u32,
        /// The limit in force.
        max: u32,
    },
    /// The declared length is too short to hold kind and tag.
    #[error("frame length {len} is below the minimum of 5")]
    TooShort {
        /// Declared length.
        len: u32,
    },
    /// A kind number this version does not know.
    #[error("unknown frame kind 0x{kind:02x}")]
    UnknownKind {
        /// The kind byte.
        kind: u8,
    },
    /// The body does not match the kind's layout.
    #[error("malformed {kind} frame: {what} at body offset {offset}")]
    Malformed {
        /// The kind's name.
        kind: &'static str,
        /// What was wrong.
        what: &'static str,
        /// Offset in the body where decoding stopped.
        offset: usize,
    },
}

/// The error codes an ERROR frame carries (PROTOCOL.md, "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame could not be decoded; the server closes the connection after this.
    Malformed,
    /// The frame exceeded the size limit; the server closes the connection after this.
    TooLarge,
    /// The session lacks the access this request needs.
    NotAllowed,
    /// A select or reject expression was refused.
    BadRegex,
    /// A srcname was refused.
    BadSrcname,
    /// A packet was larger than the server accepts.
    PacketTooLarge,
    /// A seek named a pktid outside the ring.
    OutOfRange,
    /// GET found no such packet.
    NotFound,
    /// The request is not valid in the session's state (no HELLO, reap active ...).
    BadState,
    /// The server is shutting down; the connection closes after this.
    ShuttingDown,
    /// The ring failed to store or read.
    RingError,
    /// The HELLO asked for a protocol version the server does not speak.
    BadVersion,
    /// The server refused the connection (client limits); it closes after this.
    Refused,
    /// An administrator closed this connection (KILL); it closes after this.
    Killed,
    /// RELOAD found the server's config file unreadable or invalid; the old access
    /// rules stay in force.
    BadConfig,
    /// A code this version does not know (from a newer peer).
    Other(u16),
}

impl ErrorCode {
    /// The number on the wire.
    pub fn to_u16(self) -> u16 {
        match self {
            ErrorCode::Malformed => 1,
            ErrorCode::TooLarge => 2,
            ErrorCode::NotAllowed => 3,
            ErrorCode::BadRegex => 4,
            ErrorCode::BadSrcname => 5,
            ErrorCode::PacketTooLarge => 6,
            ErrorCode::OutOfRange => 7,
            ErrorCode::NotFound => 8,
            ErrorCode::BadState => 9,
            ErrorCode::ShuttingDown => 10,
            ErrorCode::RingError => 11,
            ErrorCode::BadVersion => 12,
            ErrorCode::Refused => 13,
            ErrorCode::Killed => 14,
            ErrorCode::BadConfig => 15,
            ErrorCode::Other(n) => n,
        }
    }

    /// The code for a number on the wire.
    pub fn from_u16(n: u16) -> ErrorCode {
        match n {
            1 => ErrorCode::Malformed,
            2 => ErrorCode::TooLarge,
            3 => ErrorCode::NotAllowed,
            4 => ErrorCode::BadRegex,
            5 => ErrorCode::BadSrcname,
            6 => ErrorCode::PacketTooLarge,
            7 => ErrorCode::OutOfRange,
            8 => ErrorCode::NotFound,
            9 => ErrorCode::BadState,
            10 => ErrorCode::ShuttingDown,
            11 => ErrorCode::RingError,
            12 => ErrorCode::BadVersion,
            13 => ErrorCode::Refused,
            14 => ErrorCode::Killed,
            15 => ErrorCode::BadConfig,
            n => ErrorCode::Other(n),
        }
    }

    /// True for codes after which the server closes the connection.
    pub fn is_fatal(self) -> bool {
        let fatal = matches!(
            self,
            ErrorCode::Malformed
                | ErrorCode::TooLarge
                | ErrorCode::ShuttingDown
                | ErrorCode::BadVersion
                | ErrorCode::Refused
                | ErrorCode::Killed
        );
        fatal
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorCode::Malformed => "malformed frame",
            ErrorCode::TooLarge => "frame too large",
            ErrorCode::NotAllowed => "not allowed",
            ErrorCode::BadRegex => "bad regular expression",
            ErrorCode::BadSrcname => "bad srcname",
            ErrorCode::PacketTooLarge => "packet too large",
            ErrorCode::OutOfRange => "out of range",
            ErrorCode::NotFound => "not found",
            ErrorCode::BadState => "bad state",
            ErrorCode::ShuttingDown => "server shutting down",
            ErrorCode::RingError => "ring error",
            ErrorCode::BadVersion => "unsupported protocol version",
            ErrorCode::Refused => "connection refused",
            ErrorCode::Killed => "closed by an administrator",
            ErrorCode::BadConfig => "bad server config",
            ErrorCode::Other(n) => return write!(f, "error code {n}"),
        };
        f.write_str(s)
    }
}
