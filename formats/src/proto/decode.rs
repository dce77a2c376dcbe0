//! Decoding: bytes in, a frame (borrowing from the bytes) or "need more" or an error.
//! Every read is checked; no input can panic the decoder or make it allocate.

use crate::Time;

use super::error::{DecodeError, ErrorCode};
use super::frame::{kind_name, Access, Body, Frame, PutPacket, PutPackets, ReapEndReason, Whence};
use super::{kind, FRAME_HEADER, LEN_OVERHEAD};

/// The result of looking at the front of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// Not a whole frame yet; `needed` is the total bytes the frame occupies, when the
    /// length is known, so the caller can reserve once.
    NeedMore {
        /// Total bytes of the frame (length field included), if known.
        needed: Option<usize>,
    },
    /// A whole frame, which occupied the first `len` bytes of the buffer.
    Frame(Frame<'a>, usize),
}

/// Decodes the frame at the start of `buf`. The declared length is checked against
/// `max_frame` before anything else, so a hostile length costs nothing.
pub fn decode(buf: &[u8], max_frame: u32) -> Result<Decoded<'_>, DecodeError> {
    let Some(len_bytes) = buf.get(..4) else {
        return Ok(Decoded::NeedMore { needed: None });
    };
    let len = u32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
    if len > max_frame {
        return Err(DecodeError::TooLarge {
            len,
            max: max_frame,
        });
    }
    if len < LEN_OVERHEAD {
        return Err(DecodeError::TooShort { len });
    }
    let total = 4 + len as usize;
    let Some(frame) = buf.get(..total) else {
        return Ok(Decoded::NeedMore {
            needed: Some(total),
        });
    };
    let k = frame[4];
    let tag = u32::from_le_bytes([frame[5], frame[6], frame[7], frame[8]]);
    let body = decode_body(k, &frame[FRAME_HEADER..])?;
    Ok(Decoded::Frame(Frame { tag, body }, total))
}

/// The tag of the whole frame at the start of `buf`, for the ERROR that answers a frame
/// `decode` refused as [`DecodeError::UnknownKind`] or [`DecodeError::Malformed`]: its
/// header was read in full, so the reply carries its tag (PROTOCOL.md, "Tags"). `None`
/// when `buf` does not start with a whole frame whose header holds a tag (a `len`
/// below 5 or over the limit is refused before the tag counts).
pub fn frame_tag(buf: &[u8], max_frame: u32) -> Option<u32> {
    let len = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?);
    if !(LEN_OVERHEAD..=max_frame).contains(&len) || buf.len() < 4 + len as usize {
        return None;
    }
    Some(u32::from_le_bytes(buf.get(5..9)?.try_into().ok()?))
}

/// A checked reader over a frame body that remembers where it is for error messages.
struct Reader<'a> {
    kind: &'static str,
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, what: &'static str) -> DecodeError {
        DecodeError::Malformed {
            kind: self.kind,
            what,
            offset: self.at,
        }
    }

    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).ok_or_else(|| self.err(what))?;
        let b = self.buf.get(self.at..end).ok_or_else(|| self.err(what))?;
        self.at = end;
        Ok(b)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(N, what)?;
        b.try_into().map_err(|_| self.err(what))
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        self.array(what).map(u16::from_le_bytes)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        self.array(what).map(u64::from_le_bytes)
    }

    fn time(&mut self, what: &'static str) -> Result<Time, DecodeError> {
        self.array(what)
            .map(i64::from_le_bytes)
            .map(Time::from_micros)
    }

    fn utf8(&mut self, n: usize, what: &'static str) -> Result<&'a str, DecodeError> {
        let start = self.at;
        let b = self.bytes(n, what)?;
        std::str::from_utf8(b).map_err(|_| DecodeError::Malformed {
            kind: self.kind,
            what: "text is not UTF-8",
            offset: start,
        })
    }

    fn str8(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        let n = self.u8(what)?;
        self.utf8(usize::from(n), what)
    }

    fn str16(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        let n = self.u16(what)?;
        self.utf8(usize::from(n), what)
    }

    fn rest(&mut self) -> &'a [u8] {
        let b = &self.buf[self.at.min(self.buf.len())..];
        self.at = self.buf.len();
        b
    }

    fn end(self) -> Result<(), DecodeError> {
        if self.at == self.buf.len() {
            Ok(())
        } else {
            Err(self.err("bytes after the end of the body"))
        }
    }
}

/// Decodes one packet of a PUT body at `at`; returns it and the bytes it took.
pub(super) fn put_packet(buf: &[u8], at: usize) -> Result<(PutPacket<'_>, usize), DecodeError> {
    let mut r = Reader {
        kind: "PUT",
        buf,
        at,
    };
    let srcname = r.str8("truncated srcname")?;
    let time = r.time("truncated time")?;
    let n = r.u32("truncated payload length")?;
    let payload = r.bytes(n as usize, "payload runs past the end of the frame")?;
    Ok((
        PutPacket {
            srcname,
            time,
            payload,
        },
        r.at - at,
    ))
}

fn decode_body(k: u8, body: &[u8]) -> Result<Body<'_>, DecodeError> {
    let mut r = Reader {
        kind: kind_name(k),
        buf: body,
        at: 0,
    };
    let b = match k {
        kind::HELLO => Body::Hello {
            version: r.u16("truncated version")?,
            access: Access::from_byte(r.u8("truncated access")?)
                .ok_or_else(|| r.err("reserved access bits set"))?,
            pid: r.u32("truncated pid")?,
            who: r.str8("truncated who")?,
            what: r.str8("truncated what")?,
            // The token is optional: present exactly when bytes follow `what`.
            token: if r.at < r.buf.len() {
                Some(r.str8("truncated token")?)
            } else {
                None
            },
        },
        kind::PUT => {
            let flags = r.u8("truncated flags")?;
            if flags & !1 != 0 {
                return Err(r.err("reserved flag bits set"));
            }
            let count = r.u32("truncated count")?;
            if count == 0 {
                return Err(r.err("a PUT needs at least one packet"));
            }
            let start = r.at;
            let mut at = start;
            for _ in 0..count {
                at += put_packet(body, at)?.1;
            }
            r.at = at;
            Body::Put {
                durable: flags & 1 != 0,
                packets: PutPackets {
                    count,
                    bytes: &body[start..at],
                },
            }
        }
        kind::SELECT => Body::Select {
            expr: r.str16("truncated expression")?,
        },
        kind::REJECT => Body::Reject {
            expr: r.str16("truncated expression")?,
        },
        kind::SEEK => {
            let w = r.u8("truncated whence")?;
            let whence = Whence::from_byte(w).ok_or_else(|| r.err("unknown whence"))?;
            Body::Seek {
                whence,
                pktid: r.u64("truncated pktid")?,
            }
        }
        kind::AFTER => Body::After {
            time: r.time("truncated time")?,
        },
        kind::TELL => Body::Tell,
        kind::GET => {
            let which = r.u8("truncated which")?;
            if which > 1 {
                return Err(r.err("unknown which"));
            }
            Body::Get {
                current: which == 1,
                pktid: r.u64("truncated pktid")?,
            }
        }
        kind::REAP => Body::Reap {
            max_packets: r.u32("truncated max_packets")?,
            timeout_ms: r.u32("truncated timeout")?,
            credit: r.u32("truncated credit")?,
        },
        kind::CREDIT => Body::Credit {
            n: r.u32("truncated credit")?,
        },
        kind::STOP => Body::Stop,
        kind::STAT => Body::Stat,
        kind::SOURCES => Body::Sources,
        kind::CLIENTS => Body::Clients,
        kind::PING => Body::Ping {
            nonce: r.u64("truncated nonce")?,
        },
        kind::KILL => Body::Kill {
            client_id: r.u64("truncated client id")?,
        },
        kind::RELOAD => Body::Reload,
        kind::WELCOME => Body::Welcome {
            version: r.u16("truncated version")?,
            server: r.str8("truncated server")?,
            ring_capacity: r.u64("truncated ring capacity")?,
            max_packet: r.u32("truncated max packet")?,
            client_id: r.u64("truncated client id")?,
        },
        kind::PUT_OK => Body::PutOk {
            first_pktid: r.u64("truncated pktid")?,
            count: r.u32("truncated count")?,
        },
        kind::SELECTED => Body::Selected {
            nsources: r.u32("truncated count")?,
        },
        kind::POSITION => Body::Position {
            pktid: r.u64("truncated pktid")?,
        },
        kind::PACKET => Body::Packet {
            pktid: r.u64("truncated pktid")?,
            time: r.time("truncated time")?,
            srcname: r.str8("truncated srcname")?,
            payload: r.rest(),
        },
        kind::GAP => Body::Gap {
            first: r.u64("truncated first")?,
            last: r.u64("truncated last")?,
            bytes: r.u64("truncated bytes")?,
        },
        kind::REAP_END => {
            let reason = r.u8("truncated reason")?;
            Body::ReapEnd {
                reason: ReapEndReason::from_byte(reason).ok_or_else(|| r.err("unknown reason"))?,
                pos: r.u64("truncated position")?,
            }
        }
        kind::INFO => {
            let n = body.len();
            Body::Info {
                json: r.utf8(n, "truncated json")?,
            }
        }
        kind::PONG => Body::Pong {
            nonce: r.u64("truncated nonce")?,
            server_time: r.time("truncated time")?,
        },
        kind::KILLED => Body::Killed {
            client_id: r.u64("truncated client id")?,
        },
        kind::RELOADED => Body::Reloaded {
            summary: r.str16("truncated summary")?,
        },
        kind::ERROR => Body::Error {
            code: ErrorCode::from_u16(r.u16("truncated code")?),
            message: r.str16("truncated message")?,
        },
        _ => return Err(DecodeError::UnknownKind { kind: k }),
    };
    r.end()?;
    Ok(b)
}
