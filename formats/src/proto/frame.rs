//! Frames as values. A decoded frame borrows its strings and payloads from the input
//! buffer, so decoding never allocates; the caller copies what it keeps.

use crate::Time;

use super::error::ErrorCode;

/// One frame: the request tag and the body. The client picks tags; the server echoes
/// a request's tag in its reply, and stream frames carry the tag of the REAP that
/// started the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Request tag.
    pub tag: u32,
    /// What the frame says.
    pub body: Body<'a>,
}

/// Access a client asks for in HELLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Access {
    /// May reap, get, seek.
    pub read: bool,
    /// May put.
    pub write: bool,
}

impl Access {
    /// The byte on the wire: bit 0 read, bit 1 write.
    pub fn to_byte(self) -> u8 {
        u8::from(self.read) | u8::from(self.write) << 1
    }

    /// From the byte on the wire; `None` if reserved bits are set.
    pub fn from_byte(b: u8) -> Option<Access> {
        (b & !3 == 0).then_some(Access {
            read: b & 1 != 0,
            write: b & 2 != 0,
        })
    }
}

/// Where SEEK moves the read position (PROTOCOL.md, "The read position").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whence {
    /// To the given pktid.
    Pktid,
    /// To the oldest packet in the ring.
    Oldest,
    /// To the newest packet in the ring.
    Newest,
    /// Past the current packet.
    Next,
    /// To the last matching packet before the position.
    Prev,
    /// Nowhere: report the current packet.
    Current,
}

impl Whence {
    /// The byte on the wire.
    pub fn to_byte(self) -> u8 {
        match self {
            Whence::Pktid => 0,
            Whence::Oldest => 1,
            Whence::Newest => 2,
            Whence::Next => 3,
            Whence::Prev => 4,
            Whence::Current => 5,
        }
    }

    /// From the byte on the wire.
    pub fn from_byte(b: u8) -> Option<Whence> {
        Some(match b {
            0 => Whence::Pktid,
            1 => Whence::Oldest,
            2 => Whence::Newest,
            3 => Whence::Next,
            4 => Whence::Prev,
            5 => Whence::Current,
            _ => return None,
        })
    }
}

/// Why a reap stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReapEndReason {
    /// `max_packets` were sent.
    Budget,
    /// The timeout passed (or, with timeout 0, nothing more was there).
    Timeout,
    /// The client sent STOP.
    Stopped,
}

impl ReapEndReason {
    /// The byte on the wire.
    pub fn to_byte(self) -> u8 {
        match self {
            ReapEndReason::Budget => 0,
            ReapEndReason::Timeout => 1,
            ReapEndReason::Stopped => 2,
        }
    }

    /// From the byte on the wire.
    pub fn from_byte(b: u8) -> Option<ReapEndReason> {
        Some(match b {
            0 => ReapEndReason::Budget,
            1 => ReapEndReason::Timeout,
            2 => ReapEndReason::Stopped,
            _ => return None,
        })
    }
}

/// One packet inside a PUT frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutPacket<'a> {
    /// Srcname as sent (the server validates it).
    pub srcname: &'a str,
    /// Packet time.
    pub time: Time,
    /// Payload.
    pub payload: &'a [u8],
}

/// The packets of a PUT frame: `count` packets laid out in `bytes`, already checked by
/// the decoder, so iterating cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutPackets<'a> {
    pub(super) count: u32,
    pub(super) bytes: &'a [u8],
}

impl<'a> PutPackets<'a> {
    /// Number of packets.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The encoded packets (the PUT body after flags and count).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Iterates over the packets.
    pub fn iter(&self) -> PutIter<'a> {
        PutIter {
            rest: self.bytes,
            left: self.count,
        }
    }
}

impl<'a> IntoIterator for PutPackets<'a> {
    type Item = PutPacket<'a>;
    type IntoIter = PutIter<'a>;

    fn into_iter(self) -> PutIter<'a> {
        self.iter()
    }
}

/// Iterator over the packets of a PUT frame.
#[derive(Debug, Clone)]
pub struct PutIter<'a> {
    rest: &'a [u8],
    left: u32,
}

impl<'a> Iterator for PutIter<'a> {
    type Item = PutPacket<'a>;

    fn next(&mut self) -> Option<PutPacket<'a>> {
        if self.left == 0 {
            return None;
        }
        let (p, used) = super::decode::put_packet(self.rest, 0).ok()?;
        self.rest = &self.rest[used..];
        self.left -= 1;
        Some(p)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for PutIter<'_> {}

/// The body of each frame kind (PROTOCOL.md lists the byte layout of each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    /// Client: first frame of a session.
    Hello {
        /// Protocol version the client speaks.
        version: u16,
        /// Access asked for.
        access: Access,
        /// Client process id.
        pid: u32,
        /// Who runs it (user@host).
        who: &'a str,
        /// What program it is.
        what: &'a str,
        /// Access token, present only when the client has one (an optional trailing
        /// str8, so a HELLO without it is byte for byte the version-1 HELLO).
        token: Option<&'a str>,
    },
    /// Client: store packets.
    Put {
        /// Acknowledge only once the packets are on disk.
        durable: bool,
        /// The packets.
        packets: PutPackets<'a>,
    },
    /// Client: replace the select expression (empty: everything).
    Select {
        /// Regular expression over the whole srcname.
        expr: &'a str,
    },
    /// Client: replace the reject expression (empty: nothing).
    Reject {
        /// Regular expression over the whole srcname.
        expr: &'a str,
    },
    /// Client: move the read position.
    Seek {
        /// Where to.
        whence: Whence,
        /// The pktid, for [`Whence::Pktid`]; otherwise 0.
        pktid: u64,
    },
    /// Client: move the read position to the first packet at or after a time.
    After {
        /// The time.
        time: Time,
    },
    /// Client: ask for the read position.
    Tell,
    /// Client: one packet, without moving the read position.
    Get {
        /// Get the current packet instead of `pktid`.
        current: bool,
        /// The pktid, unless `current`.
        pktid: u64,
    },
    /// Client: start streaming packets.
    Reap {
        /// Stop after this many packets (0: no limit).
        max_packets: u32,
        /// Stop after this many milliseconds without a packet (0: poll; `NO_TIMEOUT`: never).
        timeout_ms: u32,
        /// Packets the server may send before it needs more credit.
        credit: u32,
    },
    /// Client: allow `n` more packets.
    Credit {
        /// Packets.
        n: u32,
    },
    /// Client: end the reap stream.
    Stop,
    /// Client: server summary.
    Stat,
    /// Client: per-source table.
    Sources,
    /// Client: per-client table.
    Clients,
    /// Client: liveness check.
    Ping {
        /// Echoed in PONG.
        nonce: u64,
    },
    /// Client (admin): close the connection of another client.
    Kill {
        /// The client's id, as CLIENTS lists it (WELCOME's `client_id`).
        client_id: u64,
    },
    /// Client (admin): re-read the `[access]` rules of the server's config file.
    Reload,
    /// Server: session accepted.
    Welcome {
        /// Protocol version the server speaks.
        version: u16,
        /// Server software and version.
        server: &'a str,
        /// Ring data capacity in bytes.
        ring_capacity: u64,
        /// Largest payload the server accepts.
        max_packet: u32,
        /// This session's client id (as in CLIENTS).
        client_id: u64,
    },
    /// Server: packets stored with pktids `first_pktid .. first_pktid + count`.
    PutOk {
        /// pktid of the first packet of the PUT.
        first_pktid: u64,
        /// Number of packets stored.
        count: u32,
    },
    /// Server: the new select/reject is in force.
    Selected {
        /// Sources in the ring that pass it now.
        nsources: u32,
    },
    /// Server: the read position.
    Position {
        /// The next reap starts at the first matching packet with a pktid at or above this.
        pktid: u64,
    },
    /// Server: a packet.
    Packet {
        /// Its pktid.
        pktid: u64,
        /// Its time.
        time: Time,
        /// Its srcname.
        srcname: &'a str,
        /// Its payload.
        payload: &'a [u8],
    },
    /// Server: the reader was lapped; these pktids were overwritten before it read them.
    Gap {
        /// First pktid lost.
        first: u64,
        /// Last pktid lost.
        last: u64,
        /// Ring bytes lost.
        bytes: u64,
    },
    /// Server: the reap stream ended.
    ReapEnd {
        /// Why.
        reason: ReapEndReason,
        /// The read position now.
        pos: u64,
    },
    /// Server: JSON answer to STAT, SOURCES or CLIENTS.
    Info {
        /// A UTF-8 JSON document.
        json: &'a str,
    },
    /// Server: answer to PING.
    Pong {
        /// The PING's nonce.
        nonce: u64,
        /// The server's clock.
        server_time: Time,
    },
    /// Server: the client KILL named was told and its connection is closing.
    Killed {
        /// The KILL's client id.
        client_id: u64,
    },
    /// Server: the access rules RELOAD asked for are in force.
    Reloaded {
        /// One line for a human: what was loaded, from where.
        summary: &'a str,
    },
    /// Server: the request with this tag failed.
    Error {
        /// What kind of failure.
        code: ErrorCode,
        /// A message for a human.
        message: &'a str,
    },
}

impl Body<'_> {
    /// The kind byte of this body.
    pub fn kind(&self) -> u8 {
        use super::kind::*;
        match self {
            Body::Hello { .. } => HELLO,
            Body::Put { .. } => PUT,
            Body::Select { .. } => SELECT,
            Body::Reject { .. } => REJECT,
            Body::Seek { .. } => SEEK,
            Body::After { .. } => AFTER,
            Body::Tell => TELL,
            Body::Get { .. } => GET,
            Body::Reap { .. } => REAP,
            Body::Credit { .. } => CREDIT,
            Body::Stop => STOP,
            Body::Stat => STAT,
            Body::Sources => SOURCES,
            Body::Clients => CLIENTS,
            Body::Ping { .. } => PING,
            Body::Kill { .. } => KILL,
            Body::Reload => RELOAD,
            Body::Welcome { .. } => WELCOME,
            Body::PutOk { .. } => PUT_OK,
            Body::Selected { .. } => SELECTED,
            Body::Position { .. } => POSITION,
            Body::Packet { .. } => PACKET,
            Body::Gap { .. } => GAP,
            Body::ReapEnd { .. } => REAP_END,
            Body::Info { .. } => INFO,
            Body::Pong { .. } => PONG,
            Body::Killed { .. } => KILLED,
            Body::Reloaded { .. } => RELOADED,
            Body::Error { .. } => ERROR,
        }
    }
}

/// The name of a kind, for messages.
pub fn kind_name(kind: u8) -> &'static str {
    use super::kind::*;
    match kind {
        HELLO => "HELLO",
        PUT => "PUT",
        SELECT => "SELECT",
        REJECT => "REJECT",
        SEEK => "SEEK",
        AFTER => "AFTER",
        TELL => "TELL",
        GET => "GET",
        REAP => "REAP",
        CREDIT => "CREDIT",
        STOP => "STOP",
        STAT => "STAT",
        SOURCES => "SOURCES",
        CLIENTS => "CLIENTS",
        PING => "PING",
        KILL => "KILL",
        RELOAD => "RELOAD",
        WELCOME => "WELCOME",
        PUT_OK => "PUT_OK",
        SELECTED => "SELECTED",
        POSITION => "POSITION",
        PACKET => "PACKET",
        GAP => "GAP",
        REAP_END => "REAP_END",
        INFO => "INFO",
        PONG => "PONG",
        KILLED => "KILLED",
        RELOADED => "RELOADED",
        ERROR => "ERROR",
        _ => "unknown",
    }
}
