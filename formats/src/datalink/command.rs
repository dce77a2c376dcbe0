//! Client commands: what a DataLink client sends, decoded by the server
//! ([`decode_command`]) and encoded by clients ([`Command::encode`]).
//!
//! | header                                   | payload          |
//! |------------------------------------------|------------------|
//! | `ID program:user:pid:arch`               | none             |
//! | `POSITION SET pktid [time]`              | none             |
//! | `POSITION SET EARLIEST` / `LATEST`       | none             |
//! | `POSITION AFTER time`                    | none             |
//! | `MATCH size` / `REJECT size`             | a regex, `size` bytes |
//! | `READ pktid`                             | none             |
//! | `STREAM` / `ENDSTREAM`                   | none             |
//! | `WRITE streamid start end flags size`    | the data, `size` bytes |
//! | `INFO STATUS\|STREAMS\|CONNECTIONS [match]` | none          |
//!
//! Times are integer microseconds since 1970 (DataLink 1.0). WRITE's flags hold `A`
//! when the client wants an acknowledgement (`N` or no `A`: none).

use super::error::{DecodeError, EncodeError};
use super::{parse_size, split_header, Decoded, MAGIC, MAX_HEADER, PREAMBLE};
use crate::Time;

/// Where POSITION SET puts the read position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// At a packet id; `time` is the packet time the client expects there, if it gave
    /// one.
    Pktid {
        /// The packet id.
        pktid: u64,
        /// The expected packet time.
        time: Option<Time>,
    },
    /// At the oldest packet in the ring.
    Earliest,
    /// At the newest packet in the ring.
    Latest,
}

/// What INFO asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoKind {
    /// The server and ring.
    Status,
    /// The streams (sources) in the ring.
    Streams,
    /// The connected clients.
    Connections,
}

impl InfoKind {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            InfoKind::Status => "STATUS",
            InfoKind::Streams => "STREAMS",
            InfoKind::Connections => "CONNECTIONS",
        }
    }
}

/// A WRITE: one packet for the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write<'a> {
    /// The stream id, e.g. `IU_ANMO_00_BHZ/MSEED`.
    pub streamid: &'a str,
    /// Start time of the data.
    pub start: Time,
    /// End time of the data.
    pub end: Time,
    /// The client wants an OK (or ERROR) reply.
    pub ack: bool,
    /// The data.
    pub payload: &'a [u8],
}

/// Longest AUTH credential, as ringserver 4 takes (its buffer holds 4095 bytes).
pub const MAX_AUTH_LEN: usize = 4095;

/// An AUTH credential's bytes. Its `Debug` shows only the length, so a command logged
/// with `{:?}` cannot leak a password or token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Credential<'a>(pub &'a [u8]);

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({} bytes, not shown)", self.0.len())
    }
}

/// A client command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// AUTH (DataLink 1.1, ringserver 4): `AUTH USERPASS size` with `user\rpassword`, or
    /// `AUTH JWT size` with the token. The kind is as sent (upper-cased); the session
    /// refuses kinds it does not know after the payload is read, as ringserver does.
    Auth {
        /// `USERPASS`, `JWT` or what the client sent.
        kind: &'a str,
        /// The payload.
        credential: Credential<'a>,
    },
    /// ID: who the client is, `program:user:pid:arch` by convention.
    Id(&'a str),
    /// POSITION SET.
    PositionSet(Position),
    /// POSITION AFTER: the first packet whose time is at or after this time.
    PositionAfter(Time),
    /// MATCH: a regular expression stream ids must match; empty clears it.
    Match(&'a str),
    /// REJECT: a regular expression stream ids must not match; empty clears it.
    Reject(&'a str),
    /// READ: one packet by id.
    Read(u64),
    /// STREAM: send packets from the read position on as they arrive.
    Stream,
    /// ENDSTREAM: stop streaming.
    EndStream,
    /// WRITE.
    Write(Write<'a>),
    /// INFO, with an optional match expression for STREAMS and CONNECTIONS.
    Info {
        /// What is asked for.
        kind: InfoKind,
        /// Only entries matching this regular expression.
        matching: Option<&'a str>,
    },
}

fn bad(command: &'static str, why: impl Into<String>, skip: usize) -> DecodeError {
    DecodeError::BadHeader {
        command,
        why: why.into(),
        skip: Some(skip),
    }
}

fn parse_time(s: &str, command: &'static str, skip: usize) -> Result<Time, DecodeError> {
    s.parse::<i64>().map(Time::from_micros).map_err(|_| {
        bad(
            command,
            format!("time {s:?} is not integer microseconds since 1970"),
            skip,
        )
    })
}

fn parse_pktid(s: &str, command: &'static str, skip: usize) -> Result<u64, DecodeError> {
    s.parse::<u64>().map_err(|_| {
        bad(
            command,
            format!("packet id {s:?} is not a non-negative integer"),
            skip,
        )
    })
}

/// Decodes the client command at the start of `buf`. Payloads larger than
/// `max_payload` are refused before they are buffered.
pub fn decode_command(buf: &[u8], max_payload: usize) -> Result<Decoded<Command<'_>>, DecodeError> {
    let Some((header, hend)) = split_header(buf)? else {
        return Ok(Decoded::NeedMore);
    };
    let mut fields = header.split_ascii_whitespace();
    let word = fields.next().unwrap_or("");
    let rest: Vec<&str> = fields.collect();
    // Commands without a payload: the whole packet is the header.
    let no_payload = |cmd: Command<'static>| Ok(Decoded::Done(cmd, hend));
    let cmd = match word {
        "ID" => {
            let id = header.trim_start().strip_prefix("ID").unwrap_or("").trim();
            if id.is_empty() {
                return Err(bad("ID", "say who you are: ID program:user:pid:arch", hend));
            }
            Command::Id(id)
        }
        "POSITION" => match rest.as_slice() {
            ["SET", "EARLIEST"] => return no_payload(Command::PositionSet(Position::Earliest)),
            ["SET", "LATEST"] => return no_payload(Command::PositionSet(Position::Latest)),
            ["SET", id] => Command::PositionSet(Position::Pktid {
                pktid: parse_pktid(id, "POSITION", hend)?,
                time: None,
            }),
            ["SET", id, t] => Command::PositionSet(Position::Pktid {
                pktid: parse_pktid(id, "POSITION", hend)?,
                time: Some(parse_time(t, "POSITION", hend)?),
            }),
            ["AFTER", t] => Command::PositionAfter(parse_time(t, "POSITION", hend)?),
            _ => {
                return Err(bad(
                    "POSITION",
                    "write POSITION SET pktid [time], POSITION SET EARLIEST|LATEST or POSITION AFTER time",
                    hend,
                ))
            }
        },
        "READ" => match rest.as_slice() {
            [id] => Command::Read(parse_pktid(id, "READ", hend)?),
            _ => return Err(bad("READ", "write READ pktid", hend)),
        },
        "STREAM" if rest.is_empty() => Command::Stream,
        "ENDSTREAM" if rest.is_empty() => Command::EndStream,
        "STREAM" | "ENDSTREAM" => {
            return Err(bad("STREAM", "STREAM and ENDSTREAM take no fields", hend))
        }
        "INFO" => {
            let kind = match rest.first().copied() {
                Some("STATUS") => InfoKind::Status,
                Some("STREAMS") => InfoKind::Streams,
                Some("CONNECTIONS") => InfoKind::Connections,
                _ => {
                    return Err(bad(
                        "INFO",
                        "write INFO STATUS, INFO STREAMS [match] or INFO CONNECTIONS [match]",
                        hend,
                    ))
                }
            };
            if rest.len() > 2 {
                return Err(bad("INFO", "at most one match expression", hend));
            }
            Command::Info {
                kind,
                matching: rest.get(1).copied(),
            }
        }
        "MATCH" | "REJECT" => {
            let name = if word == "MATCH" { "MATCH" } else { "REJECT" };
            // Some clients (simpledali) send a bare MATCH to clear the expression.
            if rest.is_empty() {
                let expr = "";
                let cmd = if name == "MATCH" {
                    Command::Match(expr)
                } else {
                    Command::Reject(expr)
                };
                return Ok(Decoded::Done(cmd, hend));
            }
            if rest.len() != 1 {
                return Err(DecodeError::BadHeader {
                    command: name,
                    why: format!("write {name} size, then the expression's bytes"),
                    skip: None,
                });
            }
            let size = parse_size(rest.first().copied(), name, hend, max_payload)?;
            let Some(payload) = buf.get(hend..hend + size) else {
                return Ok(Decoded::NeedMore);
            };
            let total = hend + size;
            let expr = std::str::from_utf8(payload)
                .map_err(|_| bad(name, "the expression is not UTF-8 text", total))?;
            let cmd = if name == "MATCH" {
                Command::Match(expr)
            } else {
                Command::Reject(expr)
            };
            return Ok(Decoded::Done(cmd, total));
        }
        "WRITE" => return decode_write(buf, &rest, hend, max_payload),
        "AUTH" => return decode_auth(buf, &rest, hend),
        _ => {
            return Err(DecodeError::UnknownCommand {
                word: word.chars().take(32).collect(),
                len: hend,
            })
        }
    };
    Ok(Decoded::Done(cmd, hend))
}

/// AUTH, with ringserver 4's replies for its argument errors: the header alone is
/// skipped (a client that sent a bad header sent no payload it could size).
fn decode_auth<'a>(
    buf: &'a [u8],
    fields: &[&'a str],
    hend: usize,
) -> Result<Decoded<Command<'a>>, DecodeError> {
    let [kind, size] = fields else {
        return Err(bad(
            "AUTH",
            "AUTH requires 2 arguments: AUTH USERPASS|JWT size",
            hend,
        ));
    };
    let size: usize = size
        .parse()
        .map_err(|_| bad("AUTH", "AUTH size argument is invalid", hend))?;
    if size > MAX_AUTH_LEN {
        return Err(bad(
            "AUTH",
            format!("AUTH credentials are too large: {size} bytes, at most {MAX_AUTH_LEN}"),
            hend,
        ));
    }
    let total = hend + size;
    let Some(credential) = buf.get(hend..total) else {
        return Ok(Decoded::NeedMore);
    };
    Ok(Decoded::Done(
        Command::Auth {
            kind,
            credential: Credential(credential),
        },
        total,
    ))
}

fn decode_write<'a>(
    buf: &'a [u8],
    fields: &[&'a str],
    hend: usize,
    max_payload: usize,
) -> Result<Decoded<Command<'a>>, DecodeError> {
    // Without five fields the size is unknown: the stream cannot go on.
    if fields.len() < 5 {
        return Err(DecodeError::BadHeader {
            command: "WRITE",
            why: "write WRITE streamid start end flags size, then the data".into(),
            skip: None,
        });
    }
    let size = parse_size(fields.get(4).copied(), "WRITE", hend, max_payload)?;
    let total = hend + size;
    let Some(payload) = buf.get(hend..total) else {
        return Ok(Decoded::NeedMore);
    };
    if fields.len() > 5 {
        return Err(bad(
            "WRITE",
            "the orb assigns packet ids; send WRITE streamid start end flags size",
            total,
        ));
    }
    let flags = fields[3];
    if !flags.bytes().all(|b| b == b'A' || b == b'N') {
        return Err(bad(
            "WRITE",
            format!("flags {flags:?}: use A (acknowledge) or N (do not)"),
            total,
        ));
    }
    Ok(Decoded::Done(
        Command::Write(Write {
            streamid: fields[0],
            start: parse_time(fields[1], "WRITE", total)?,
            end: parse_time(fields[2], "WRITE", total)?,
            ack: flags.contains('A'),
            payload,
        }),
        total,
    ))
}

/// Appends a packet with `header` and `payload` to `out`. The header is formatted in
/// place and its length patched in after, so encoding allocates nothing; on an error
/// `out` is left as it was.
pub(crate) fn put_packet(
    out: &mut Vec<u8>,
    header: std::fmt::Arguments<'_>,
    payload: &[u8],
) -> Result<(), EncodeError> {
    use std::io::Write as _;
    let at = out.len();
    out.extend_from_slice(&MAGIC);
    out.push(0);
    out.write_fmt(header)
        .expect("formatting into a Vec cannot fail");
    let len = out.len() - at - PREAMBLE;
    if len > MAX_HEADER || len == 0 {
        out.truncate(at);
        return Err(EncodeError::HeaderTooLong { len });
    }
    out[at + 2] = len as u8;
    out.extend_from_slice(payload);
    Ok(())
}

/// Checks that `s` can be one header field.
pub(crate) fn field(s: &str) -> Result<&str, EncodeError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(EncodeError::BadField { field: s.into() });
    }
    Ok(s)
}

impl Command<'_> {
    /// Appends the command, as a client sends it, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let (header, payload): (String, &[u8]) = match *self {
            Command::Auth { kind, credential } => (
                format!("AUTH {} {}", field(kind)?, credential.0.len()),
                credential.0,
            ),
            Command::Id(id) => {
                // The ID string may hold spaces, but must not start or end with one.
                if id.trim() != id
                    || id.is_empty()
                    || !id.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
                {
                    return Err(EncodeError::BadField { field: id.into() });
                }
                (format!("ID {id}"), &[])
            }
            Command::PositionSet(Position::Earliest) => ("POSITION SET EARLIEST".into(), &[]),
            Command::PositionSet(Position::Latest) => ("POSITION SET LATEST".into(), &[]),
            Command::PositionSet(Position::Pktid { pktid, time: None }) => {
                (format!("POSITION SET {pktid}"), &[])
            }
            Command::PositionSet(Position::Pktid {
                pktid,
                time: Some(t),
            }) => (format!("POSITION SET {pktid} {}", t.as_micros()), &[]),
            Command::PositionAfter(t) => (format!("POSITION AFTER {}", t.as_micros()), &[]),
            Command::Match(e) => (format!("MATCH {}", e.len()), e.as_bytes()),
            Command::Reject(e) => (format!("REJECT {}", e.len()), e.as_bytes()),
            Command::Read(id) => (format!("READ {id}"), &[]),
            Command::Stream => ("STREAM".into(), &[]),
            Command::EndStream => ("ENDSTREAM".into(), &[]),
            Command::Write(w) => (
                format!(
                    "WRITE {} {} {} {} {}",
                    field(w.streamid)?,
                    w.start.as_micros(),
                    w.end.as_micros(),
                    if w.ack { "A" } else { "N" },
                    w.payload.len()
                ),
                w.payload,
            ),
            Command::Info { kind, matching } => match matching {
                Some(m) => (format!("INFO {} {}", kind.as_str(), field(m)?), &[]),
                None => (format!("INFO {}", kind.as_str()), &[]),
            },
        };
        put_packet(out, format_args!("{header}"), payload)
    }
}
