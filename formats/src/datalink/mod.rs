//! DataLink 1.0 and 1.1, ringserver's protocol, sans-io: client commands in, server replies
//! out (the two versions frame and name commands alike; 1.1 names miniSEED streams by
//! FDSN source id, which is the gateway's business, not the codec's).
//!
//! Every DataLink packet, in either direction, is
//!
//! ```text
//! "DL"  u8 header length  ASCII header (1..=255 bytes)  payload (0 or more bytes)
//! ```
//!
//! The header is space-separated fields; for the commands and replies that carry a
//! payload its size is a header field (the last one, except that PACKET also has it
//! last). Times are DataLink 1.0 "high precision" times: integer microseconds since
//! 1970, which is exactly [`Time`](crate::Time). docs/GATEWAYS.md lists the commands
//! and replies the orb's gateway speaks.
//!
//! - [`command`]: [`Command`], [`decode_command`] (server side) and [`Command::encode`]
//!   (client side).
//! - [`reply`]: [`Reply`], [`Reply::encode`] (server side) and [`decode_reply`] (client
//!   side).
//! - [`error`]: [`DecodeError`], [`EncodeError`].
//!
//! Decoders take a byte slice and answer [`Decoded::NeedMore`] (not an error), a value
//! and the number of bytes it used, or a typed error that says whether the stream is
//! still at a packet boundary ([`DecodeError::skip`]). Encoders append to a `Vec<u8>`.

pub mod command;
pub mod error;
pub mod reply;
#[cfg(test)]
mod tests;

pub use command::{decode_command, Command, Credential, InfoKind, Position, Write, MAX_AUTH_LEN};
pub use error::{DecodeError, EncodeError};
pub use reply::{decode_reply, Reply};

/// The two bytes every DataLink packet starts with.
pub const MAGIC: [u8; 2] = *b"DL";
/// Bytes before the header: the magic and the header length.
pub const PREAMBLE: usize = 3;
/// The longest header a packet can have (its length is one byte).
pub const MAX_HEADER: usize = 255;
/// The protocol version the orb's gateway announces in its ID reply: DataLink 1.1,
/// ringserver 4's, whose miniSEED stream ids are FDSN source ids. 1.0 clients are
/// still served (the framing and commands are the same; only the names differ).
pub const DLPROTO: &str = "1.1";

/// The result of a decode that did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<T> {
    /// The buffer holds only the start of a packet: read more and call again.
    NeedMore,
    /// A whole packet, and how many bytes of the buffer it used.
    Done(T, usize),
}

/// Splits a buffer into the header text and the offset where the payload starts, or
/// says that more bytes are needed.
fn split_header(buf: &[u8]) -> Result<Option<(&str, usize)>, DecodeError> {
    if buf.len() >= 2 && buf[..2] != MAGIC {
        return Err(DecodeError::BadMagic {
            got: [buf[0], buf[1]],
        });
    }
    if buf.len() == 1 && buf[0] != MAGIC[0] {
        return Err(DecodeError::BadMagic { got: [buf[0], 0] });
    }
    let Some(&hlen) = buf.get(2) else {
        return Ok(None);
    };
    if hlen == 0 {
        return Err(DecodeError::EmptyHeader);
    }
    let end = PREAMBLE + usize::from(hlen);
    let Some(raw) = buf.get(PREAMBLE..end) else {
        return Ok(None);
    };
    // Headers are ASCII by the protocol; anything else means the stream is garbage.
    if !raw.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return Err(DecodeError::NotText { len: end });
    }
    let text = std::str::from_utf8(raw).map_err(|_| DecodeError::NotText { len: end })?;
    Ok(Some((text, end)))
}

/// Parses a size field, checked against `max` before anything is allocated.
fn parse_size(
    field: Option<&str>,
    what: &'static str,
    header_len: usize,
    max: usize,
) -> Result<usize, DecodeError> {
    let f = field.ok_or(DecodeError::BadHeader {
        command: what,
        why: "the payload size field is missing".into(),
        skip: Some(header_len),
    })?;
    let size: usize = f.parse().map_err(|_| DecodeError::BadHeader {
        command: what,
        why: format!("payload size {f:?} is not a number"),
        // Without a size the payload cannot be skipped.
        skip: None,
    })?;
    if size > max {
        return Err(DecodeError::TooLarge { size, max });
    }
    Ok(size)
}
