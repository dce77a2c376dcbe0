//! Why bytes are not a DataLink packet, and why a value cannot be encoded as one.

/// Why a buffer does not start with a valid DataLink packet. [`DecodeError::skip`] says
/// whether the stream is still at a packet boundary after it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The first two bytes are not "DL": this is not DataLink, or the stream lost its
    /// place.
    #[error("not a DataLink packet: it must start with \"DL\", not {got:02x?}")]
    BadMagic {
        /// The bytes found (the second is 0 if only one was there).
        got: [u8; 2],
    },
    /// The header length byte is 0.
    #[error("header length is 0; a DataLink header has 1 to 255 bytes")]
    EmptyHeader,
    /// The header holds bytes other than printable ASCII and spaces.
    #[error("the header is not printable ASCII text")]
    NotText {
        /// Bytes of the packet (preamble and header).
        len: usize,
    },
    /// The header's first word is no command (or reply) this side knows.
    #[error("unknown command {word:?}; known: ID, AUTH, POSITION, MATCH, REJECT, READ, STREAM, ENDSTREAM, WRITE, INFO")]
    UnknownCommand {
        /// The first word of the header.
        word: String,
        /// Bytes of the packet (preamble and header; a payload, if any, is unknown).
        len: usize,
    },
    /// A known command with fields that do not fit it.
    #[error("bad {command} header: {why}")]
    BadHeader {
        /// The command (or reply) word.
        command: &'static str,
        /// What is wrong and how it should look.
        why: String,
        /// Bytes of the whole packet, if the stream can go on after it.
        skip: Option<usize>,
    },
    /// The declared payload size exceeds the limit; nothing was allocated.
    #[error("payload of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Declared size.
        size: usize,
        /// The limit in force.
        max: usize,
    },
}

impl DecodeError {
    /// How many bytes to drop to reach the next packet, if the framing is still intact
    /// (the header was read and any payload's size is known and in the buffer); `None`
    /// when the stream cannot be trusted any more.
    pub fn skip(&self) -> Option<usize> {
        match self {
            DecodeError::UnknownCommand { len, .. } => Some(*len),
            DecodeError::BadHeader { skip, .. } => *skip,
            _ => None,
        }
    }
}

/// Why a value cannot be encoded as a DataLink packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The header would exceed 255 bytes.
    #[error("header of {len} bytes exceeds DataLink's limit of 255")]
    HeaderTooLong {
        /// The header's length.
        len: usize,
    },
    /// A header field is empty or holds a space or a non-printable byte.
    #[error("header field {field:?} is empty or not printable ASCII without spaces")]
    BadField {
        /// The field.
        field: String,
    },
}
