//! Server replies: encoded by the server ([`Reply::encode`]) and decoded by clients
//! ([`decode_reply`]).
//!
//! | header                                           | payload        |
//! |--------------------------------------------------|----------------|
//! | `ID text`                                        | none           |
//! | `OK value size` / `ERROR value size`             | a message      |
//! | `PACKET streamid pktid pkttime start end size`   | the data       |
//! | `INFO type size`                                 | an XML document |
//! | `ENDSTREAM`                                      | none           |

use super::command::{field, put_packet};
use super::error::{DecodeError, EncodeError};
use super::{parse_size, split_header, Decoded, DLPROTO};
use super::{MAGIC, MAX_HEADER, PREAMBLE};
use crate::Time;

/// A server reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// The answer to ID: the server's name and capabilities (see [`capabilities`]).
    Id(&'a str),
    /// Success; `value` is a packet id or a count, depending on the command.
    Ok {
        /// The value.
        value: i64,
        /// A message for people.
        message: &'a str,
    },
    /// Failure.
    Error {
        /// The value (0 unless a command says otherwise).
        value: i64,
        /// What went wrong, for people.
        message: &'a str,
    },
    /// One packet.
    Packet {
        /// The stream id.
        streamid: &'a str,
        /// The packet id.
        pktid: u64,
        /// The packet's time in the ring.
        pkttime: Time,
        /// Start time of the data.
        start: Time,
        /// End time of the data.
        end: Time,
        /// The data.
        data: &'a [u8],
    },
    /// The answer to INFO.
    Info {
        /// `STATUS`, `STREAMS` or `CONNECTIONS`.
        kind: &'a str,
        /// The XML document.
        xml: &'a str,
    },
    /// The end of a stream, after ENDSTREAM.
    EndStream,
}

/// The text of an ID reply: `DataLink <server> :: DLPROTO:1.1 PACKETSIZE:<n>` and
/// `WRITE` if the client may write, `AUTH` if the server takes AUTH. Clients read the capabilities after `::`.
pub fn capabilities(server: &str, packet_size: usize, write: bool, auth: bool) -> String {
    let server: String = server
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    let mut s = format!("DataLink {server} :: DLPROTO:{DLPROTO} PACKETSIZE:{packet_size}");
    if write {
        s.push_str(" WRITE");
    }
    // ringserver 4 names AUTH when the server can check credentials.
    if auth {
        s.push_str(" AUTH");
    }
    s
}

impl Reply<'_> {
    /// Appends the reply to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match *self {
            Reply::Id(text) => {
                if text.trim() != text || !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
                    return Err(EncodeError::BadField { field: text.into() });
                }
                put_packet(out, format_args!("ID {text}"), &[])
            }
            Reply::Ok { value, message } => put_packet(
                out,
                format_args!("OK {value} {}", message.len()),
                message.as_bytes(),
            ),
            Reply::Error { value, message } => put_packet(
                out,
                format_args!("ERROR {value} {}", message.len()),
                message.as_bytes(),
            ),
            Reply::Packet {
                streamid,
                pktid,
                pkttime,
                start,
                end,
                data,
            } => {
                // The reply a stream sends per packet: its header is written digit by
                // digit rather than through `fmt`, which costs a streaming reader a
                // good part of its time.
                let streamid = field(streamid)?;
                let at = out.len();
                out.extend_from_slice(&MAGIC);
                out.push(0);
                out.extend_from_slice(b"PACKET ");
                out.extend_from_slice(streamid.as_bytes());
                out.push(b' ');
                push_u64(out, pktid);
                for t in [pkttime, start, end] {
                    out.push(b' ');
                    push_i64(out, t.as_micros());
                }
                out.push(b' ');
                push_u64(out, data.len() as u64);
                let len = out.len() - at - PREAMBLE;
                if len > MAX_HEADER {
                    out.truncate(at);
                    return Err(EncodeError::HeaderTooLong { len });
                }
                out[at + 2] = len as u8;
                out.extend_from_slice(data);
                Ok(())
            }
            Reply::Info { kind, xml } => put_packet(
                out,
                format_args!("INFO {} {}", field(kind)?, xml.len()),
                xml.as_bytes(),
            ),
            Reply::EndStream => put_packet(out, format_args!("ENDSTREAM"), &[]),
        }
    }
}

/// Appends `v` in decimal.
fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends `v` in decimal, with a `-` if negative.
fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

fn bad(command: &'static str, why: impl Into<String>) -> DecodeError {
    // A client cannot resynchronise with a server that sends bad replies.
    DecodeError::BadHeader {
        command,
        why: why.into(),
        skip: None,
    }
}

fn num<T: std::str::FromStr>(s: &str, command: &'static str) -> Result<T, DecodeError> {
    s.parse()
        .map_err(|_| bad(command, format!("{s:?} is not a number")))
}

/// The magnitude of a decimal integer as `str::parse` reads it (an optional sign, then
/// one or more digits): whether it was negative, and its digits' value. A streaming
/// client parses four numbers per packet; this is several times cheaper than the
/// generic `parse`.
fn magnitude(s: &str) -> Option<(bool, u64)> {
    let b = s.as_bytes();
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v = 0u64;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some((neg, v))
}

/// A PACKET's pktid (as `num::<u64>`).
fn num_u64(s: &str, command: &'static str) -> Result<u64, DecodeError> {
    match magnitude(s) {
        Some((false, v)) => Ok(v),
        // A sign is refused, "-0" too, as `parse::<u64>` refuses it.
        _ => num(s, command),
    }
}

/// A PACKET's time (as `num::<i64>`).
fn num_i64(s: &str, command: &'static str) -> Result<i64, DecodeError> {
    match magnitude(s) {
        Some((false, v)) if v <= i64::MAX as u64 => Ok(v as i64),
        Some((true, v)) if v <= i64::MAX as u64 + 1 => Ok(0i64.wrapping_sub_unsigned(v)),
        _ => num(s, command),
    }
}

/// Decodes the server reply at the start of `buf`; payloads larger than `max_payload`
/// are refused before they are buffered.
pub fn decode_reply(buf: &[u8], max_payload: usize) -> Result<Decoded<Reply<'_>>, DecodeError> {
    let Some((header, hend)) = split_header(buf)? else {
        return Ok(Decoded::NeedMore);
    };
    // At most the 7 fields of PACKET, on the stack: a streaming client decodes one
    // reply per packet.
    let mut fields = [""; 7];
    let mut count = 0;
    // The header holds only graphic characters and spaces (`split_header` checked):
    // its whitespace is spaces, split here in one pass over the bytes.
    let hb = header.as_bytes();
    let mut i = 0;
    while i < hb.len() {
        while i < hb.len() && hb[i] == b' ' {
            i += 1;
        }
        if i == hb.len() {
            break;
        }
        let from = i;
        while i < hb.len() && hb[i] != b' ' {
            i += 1;
        }
        if count == fields.len() {
            count += 1;
            break;
        }
        fields[count] = &header[from..i];
        count += 1;
    }
    let word = fields[0];
    let (name, nfields): (&'static str, usize) = match word {
        "ID" => {
            let text = header.strip_prefix("ID").unwrap_or("").trim();
            return Ok(Decoded::Done(Reply::Id(text), hend));
        }
        "ENDSTREAM" => return Ok(Decoded::Done(Reply::EndStream, hend)),
        "OK" => ("OK", 3),
        "ERROR" => ("ERROR", 3),
        "INFO" => ("INFO", 3),
        "PACKET" => ("PACKET", 7),
        _ => {
            let word: String = word.chars().take(32).collect();
            return Err(bad(
                "reply",
                format!(
                    "unknown reply {word:?}; expected ID, OK, ERROR, PACKET, INFO or ENDSTREAM"
                ),
            ));
        }
    };
    if count != nfields {
        return Err(bad(name, format!("expected {nfields} fields")));
    }
    let size = parse_size(Some(fields[nfields - 1]), name, hend, max_payload)?;
    let Some(payload) = buf.get(hend..hend + size) else {
        return Ok(Decoded::NeedMore);
    };
    let text = || std::str::from_utf8(payload).map_err(|_| bad(name, "the message is not UTF-8"));
    let reply = match name {
        "OK" => Reply::Ok {
            value: num(fields[1], name)?,
            message: text()?,
        },
        "ERROR" => Reply::Error {
            value: num(fields[1], name)?,
            message: text()?,
        },
        "INFO" => Reply::Info {
            kind: fields[1],
            xml: text()?,
        },
        _ => Reply::Packet {
            streamid: fields[1],
            pktid: num_u64(fields[2], name)?,
            pkttime: Time::from_micros(num_i64(fields[3], name)?),
            start: Time::from_micros(num_i64(fields[4], name)?),
            end: Time::from_micros(num_i64(fields[5], name)?),
            data: payload,
        },
    };
    Ok(Decoded::Done(reply, hend + size))
}
