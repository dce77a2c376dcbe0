//! One native client's protocol state, without sockets or clocks: input bytes and the
//! time in, reply bytes out. The connection driver (`crate::conn`) feeds it input and
//! asks it to fill the output buffer with reap stream frames when packets and credit are
//! there; an msync for a durable put and a RELOAD's file reading come back to the
//! driver as actions. The rules implemented here are PROTOCOL.md's "Session rules".

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use formats::proto::encode::encode_packet;
use formats::proto::{
    decode, frame_tag, Access, Body, DecodeError, Decoded, ErrorCode, Frame, ReapEndReason, Whence,
    FRAME_HEADER, NO_TIMEOUT, PROTOCOL_VERSION,
};
use formats::SrcSelect;
use formats::{SrcName, Time};

use super::info;
use crate::access::Identity;
use crate::access::{Grant, WriteGrant, WriteRefusal};
use crate::conn::{self, Action, Close, Farewell, Now, Outcome, Received};
use crate::hub::clients::{access_text, AskedRights, Registration};
use crate::hub::policy::{Refusal, RefusalCounters, RefusalLog};
use crate::hub::reload::ReloadError;
use crate::hub::{server_name, Hub};
use crate::ring::{Gap, RingError, Visit};

/// Most packets one `fill_reap` call sends, so one reader never holds the ring's read
/// lock for long.
const FILL_PACKETS: usize = 1024;

/// Most lost ranges a session keeps for its next reap; further ones are merged into the
/// last, so a client cannot grow the list without bound.
const PENDING_GAPS_MAX: usize = 16;

/// Packets a reader lost while a SEEK moved it off an overwritten position: reported
/// as GAP at the start of its next reap, so that no move is silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LostRange {
    first: u64,
    last: u64,
    bytes: u64,
}

/// What the connection should do after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// Send what is in the output buffer, then close.
    Close,
}

/// What `fill_reap` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// No reap is active.
    Idle,
    /// Frames were written; call again soon.
    Sent,
    /// Nothing to send now: wait for packets (or credit) or the timeout.
    Waiting,
}

struct Reap {
    tag: u32,
    /// Packets still allowed by max_packets (`None`: no limit).
    left: Option<u32>,
    /// `None`: never time out; `Some(ZERO)`: poll.
    timeout: Option<Duration>,
    credit: u32,
    /// When the stream last sent a packet (or started).
    last_sent: Instant,
}

/// A reply that waits for the driver to run an [`Action`].
#[derive(Debug, Clone, Copy)]
enum Waiting {
    /// PUT_OK for an append being made durable.
    Put {
        tag: u32,
        first_pktid: u64,
        count: u32,
    },
    /// RELOADED (or an error) for a RELOAD.
    Reload { tag: u32 },
}

/// The state of one connection's session.
pub struct Session {
    shared: Arc<Hub>,
    /// The time the driver passed in with the current call.
    now: Now,
    /// The largest frame accepted (PROTOCOL.md, "Framing").
    max_frame: u32,
    /// Blocking work for the driver, and the reply waiting for it.
    action: Option<Action>,
    waiting: Option<Waiting>,
    reg: Registration,
    hello: bool,
    access: Access,
    select: SrcSelect,
    /// Per ring source number: 0 not yet decided, 1 matches, 2 does not.
    verdicts: Vec<u8>,
    pos: u64,
    /// Logical ring position of `pos`, for the bytes a gap lost.
    reader_lpos: u64,
    reap: Option<Reap>,
    /// Losses found by SEEK CURRENT/NEXT from an overwritten position, not yet reported.
    pending_gaps: Vec<LostRange>,
    appended: bool,
    /// Hash of the token HELLO carried, if it carried a known one.
    token: Option<Identity>,
    /// What the access rules of generation `grant_gen` allow this session.
    grant: Grant,
    grant_gen: u64,
    /// Srcnames the token's expression already allowed, so the expression runs once
    /// per srcname rather than once per packet (a station puts a few srcnames over and
    /// over). Cleared when the rules change.
    write_ok: ahash::AHashSet<Box<str>>,
    /// Refusals already logged for this session: one line per reason, then only the
    /// counters, so a misconfigured station cannot flood the log.
    logged: RefusalLog,
}

/// Most srcnames `Session::write_ok` remembers; past it, it starts over.
const WRITE_OK_MAX: usize = 4096;

fn error(out: &mut BytesMut, tag: u32, code: ErrorCode, message: &str) {
    Frame {
        tag,
        body: Body::Error { code, message },
    }
    .encode(out);
}

impl Session {
    /// A session for a registered connection.
    pub fn new(shared: Arc<Hub>, reg: Registration) -> Session {
        let max_frame = formats::proto::server_max_frame(
            u32::try_from(shared.limits.max_packet).unwrap_or(u32::MAX),
        );
        Session {
            shared,
            now: Now::read(),
            max_frame,
            action: None,
            waiting: None,
            reg,
            hello: false,
            access: Access::default(),
            select: SrcSelect::all(),
            verdicts: Vec::new(),
            pos: 0,
            reader_lpos: 0,
            reap: None,
            pending_gaps: Vec::new(),
            appended: false,
            token: None,
            grant: Grant::default(),
            grant_gen: 0,
            write_ok: ahash::AHashSet::new(),
            logged: RefusalLog::default(),
        }
    }

    /// Re-decides the session's rights if the rules were reloaded since it last looked:
    /// one relaxed load otherwise.
    fn refresh_grant(&mut self) {
        if self.shared.policy.generation() != self.grant_gen {
            let (generation, rules) = self.shared.policy.current();
            self.grant = rules.grant(self.reg.entry.addr.ip(), self.token.as_ref());
            self.grant_gen = generation;
            self.write_ok.clear();
        }
    }

    /// Counts a refusal, and logs it with the peer's address the first time this
    /// session meets it.
    fn refused(&mut self, kind: Refusal, what: &str) {
        let peer = self.reg.entry.addr;
        self.logged
            .refuse(&self.shared.refused, kind, peer, "", what);
    }

    /// True once HELLO was accepted.
    pub fn hello_done(&self) -> bool {
        self.hello
    }

    /// True (once) if packets were appended since the last call: the connection then
    /// wakes waiting readers, once per batch of frames rather than per packet.
    pub fn take_appended(&mut self) -> bool {
        std::mem::take(&mut self.appended)
    }

    /// True when a reap could send packets as soon as they arrive.
    pub fn wants_packets(&self) -> bool {
        self.reap.as_ref().is_some_and(|r| r.credit > 0)
    }

    /// When the active reap times out, if it can (not while it has no credit).
    pub fn reap_deadline(&self) -> Option<Instant> {
        let r = self.reap.as_ref()?;
        (r.credit > 0).then_some(())?;
        // A poll (timeout 0) ends when `fill_reap` finds nothing, not by the clock.
        r.timeout.filter(|t| !t.is_zero()).map(|t| r.last_sent + t)
    }

    fn set_pos(&mut self, pos: u64) {
        self.pos = pos;
        self.reader_lpos = self.shared.ring.lpos_of(pos);
        self.reg.entry.pos.store(pos, Relaxed);
    }

    /// Handles one frame, appending any reply to `out`.
    pub fn handle(&mut self, frame: Frame<'_>, out: &mut BytesMut) -> Flow {
        let tag = frame.tag;
        if !self.hello {
            return self.handle_hello(frame, out);
        }
        let needs_read = matches!(
            frame.body,
            Body::Select { .. }
                | Body::Reject { .. }
                | Body::Seek { .. }
                | Body::After { .. }
                | Body::Tell
                | Body::Get { .. }
                | Body::Reap { .. }
        );
        if needs_read && !self.access.read {
            self.refused(
                Refusal::ReadNotAllowed,
                "a read: the session did not ask for read access",
            );
            error(
                out,
                tag,
                ErrorCode::NotAllowed,
                "this session did not ask for read access; reconnect with read access",
            );
            return Flow::Continue;
        }
        let admin_request = match frame.body {
            Body::Clients => Some("CLIENTS"),
            Body::Kill { .. } => Some("KILL"),
            Body::Reload => Some("RELOAD"),
            _ => None,
        };
        if needs_read || admin_request.is_some() {
            self.refresh_grant();
        }
        if needs_read && !self.grant.read {
            self.refused(
                Refusal::ReadNotAllowed,
                "a read: address not in access.read and no read token",
            );
            let msg = format!(
                "address {} may not read this orb without a read token; set ORB_TOKEN to one, or ask the operator to add your address to access.read",
                self.reg.entry.addr.ip()
            );
            error(out, tag, ErrorCode::NotAllowed, &msg);
            return Flow::Continue;
        }
        if let Some(name) = admin_request.filter(|_| !self.grant.admin) {
            self.refused(
                Refusal::AdminNotAllowed,
                &format!("{name}: no admin access"),
            );
            let msg = format!(
                "{name} needs admin access: address {} is not in access.admin and the session has no admin token",
                self.reg.entry.addr.ip()
            );
            error(out, tag, ErrorCode::NotAllowed, &msg);
            return Flow::Continue;
        }
        let moves = matches!(
            frame.body,
            Body::Select { .. } | Body::Reject { .. } | Body::Seek { .. } | Body::After { .. }
        );
        if moves && self.reap.is_some() {
            error(
                out,
                tag,
                ErrorCode::BadState,
                "a reap is active: STOP it before changing select, reject or position",
            );
            return Flow::Continue;
        }
        match frame.body {
            Body::Hello { .. } => {
                error(out, tag, ErrorCode::BadState, "HELLO was already accepted")
            }
            Body::Put { durable, packets } => self.put(tag, durable, packets, out),
            Body::Select { expr } => self.set_filter(tag, Some(expr), None, out),
            Body::Reject { expr } => self.set_filter(tag, None, Some(expr), out),
            Body::Seek { whence, pktid } => self.seek(tag, whence, pktid, out),
            Body::After { time } => {
                let pos = self
                    .shared
                    .ring
                    .after(time)
                    .map_or_else(|| self.shared.ring.stat().next_pktid, |p| p.pktid);
                // An absolute move, as SEEK PKTID: losses behind the old position are moot.
                self.pending_gaps.clear();
                self.answer_position(tag, pos, out);
            }
            Body::Tell => Frame {
                tag,
                body: Body::Position { pktid: self.pos },
            }
            .encode(out),
            Body::Get { current, pktid } => self.get(tag, current, pktid, out),
            Body::Reap {
                max_packets,
                timeout_ms,
                credit,
            } => self.start_reap(tag, max_packets, timeout_ms, credit, out),
            Body::Credit { n } => {
                if let Some(r) = &mut self.reap {
                    if r.credit == 0 {
                        // The idle timeout does not run without credit: restart it.
                        r.last_sent = self.now.mono;
                    }
                    r.credit = r.credit.saturating_add(n);
                }
            }
            Body::Stop => self.end_reap(ReapEndReason::Stopped, out),
            Body::Stat => self.info(tag, &info::server_stat(&self.shared), out),
            Body::Sources => self.info(tag, &info::sources(&self.shared), out),
            Body::Clients => self.info(tag, &info::clients(&self.shared), out),
            Body::Kill { client_id } => self.kill(tag, client_id, out),
            Body::Reload => {
                // Reading the file may block: the driver does it, then `complete`.
                let trigger = format!("RELOAD from {}", self.reg.entry.addr);
                self.action = Some(Action::Reload { trigger });
                self.waiting = Some(Waiting::Reload { tag });
            }
            Body::Ping { nonce } => Frame {
                tag,
                body: Body::Pong {
                    nonce,
                    server_time: self.now.wall,
                },
            }
            .encode(out),
            _ => {
                error(
                    out,
                    tag,
                    ErrorCode::Malformed,
                    "that frame kind is sent by servers, not clients",
                );
                return Flow::Close;
            }
        }
        Flow::Continue
    }

    fn handle_hello(&mut self, frame: Frame<'_>, out: &mut BytesMut) -> Flow {
        let Body::Hello {
            version,
            access,
            pid,
            who,
            what,
            token,
        } = frame.body
        else {
            error(
                out,
                frame.tag,
                ErrorCode::BadState,
                "the first frame must be HELLO",
            );
            return Flow::Close;
        };
        if version != PROTOCOL_VERSION {
            let msg = format!("protocol version {version} is not spoken here; this server speaks {PROTOCOL_VERSION}");
            error(out, frame.tag, ErrorCode::BadVersion, &msg);
            return Flow::Close;
        }
        let (generation, rules) = self.shared.policy.current();
        let peer = self.reg.entry.addr;
        match rules.authenticate(token) {
            // A token names who the client is; without one, a verified client
            // certificate's identity does, if it has one.
            Ok(hash) => {
                self.token = hash
                    .map(Identity::Token)
                    .or_else(|| self.reg.entry.ident().proven.clone())
            }
            Err(msg) => {
                RefusalCounters::bump(&self.shared.refused.auth_failures);
                tracing::warn!("{peer}: refused HELLO from {what:?}: unknown token");
                error(out, frame.tag, ErrorCode::NotAllowed, &msg);
                return Flow::Close;
            }
        }
        self.grant = rules.grant(peer.ip(), self.token.as_ref());
        self.grant_gen = generation;
        let label = self
            .token
            .as_ref()
            .map(|id| rules.label(id))
            .unwrap_or_default();
        if !label.is_empty() {
            tracing::info!("{peer}: {what:?} authenticated with {label}");
        }
        self.hello = true;
        self.access = access;
        {
            let mut ident = self.reg.entry.ident();
            ident.who = who.to_string();
            ident.what = what.to_string();
            ident.pid = pid;
            // What the session asked for and the rules granted at HELLO; CLIENTS
            // re-decides it from `rights` under the rules in force when asked.
            ident.access = access_text(
                access.read && self.grant.read,
                access.write && self.grant.write.any(),
            );
            ident.rights = Some(AskedRights {
                read: access.read,
                write: access.write,
                identity: self.token.clone(),
            });
            ident.identity = label;
        }
        self.reg.entry.reads.store(access.read, Relaxed);
        let next = self.shared.ring.stat().next_pktid;
        self.set_pos(next);
        let server = server_name();
        Frame {
            tag: frame.tag,
            body: Body::Welcome {
                version: PROTOCOL_VERSION,
                server: &server,
                ring_capacity: self.shared.ring.capacity(),
                max_packet: self.shared.limits.max_packet as u32,
                client_id: self.reg.entry.id,
            },
        }
        .encode(out);
        Flow::Continue
    }

    fn put(
        &mut self,
        tag: u32,
        durable: bool,
        packets: formats::proto::PutPackets<'_>,
        out: &mut BytesMut,
    ) {
        if !self.access.write {
            self.refused(
                Refusal::WriteNotAllowed,
                "a PUT: the session did not ask for write access",
            );
            error(
                out,
                tag,
                ErrorCode::NotAllowed,
                "this session did not ask for write access; reconnect with write access",
            );
            return;
        }
        let max = self.shared.limits.max_packet;
        // Decode the PUT body once: the checks below and the ring's append both walk
        // the packets. A one-packet PUT (the pipelined case) needs no allocation.
        let one;
        let many: Vec<(&str, Time, &[u8])>;
        let items: &[(&str, Time, &[u8])] = if packets.count() == 1 {
            one = packets
                .iter()
                .map(|p| (p.srcname, p.time, p.payload))
                .next();
            one.as_slice()
        } else {
            many = packets
                .iter()
                .map(|p| (p.srcname, p.time, p.payload))
                .collect();
            &many
        };
        self.refresh_grant();
        let mut bytes = 0u64;
        for (i, &(srcname, _, payload)) in items.iter().enumerate() {
            let known =
                matches!(self.grant.write, WriteGrant::Any) || self.write_ok.contains(srcname);
            match if known {
                Ok(())
            } else {
                self.grant.write.check(srcname)
            } {
                Ok(()) if known => {}
                Ok(()) => {
                    if self.write_ok.len() >= WRITE_OK_MAX {
                        self.write_ok.clear();
                    }
                    self.write_ok.insert(srcname.into());
                }
                Err(WriteRefusal::NotAllowed) => {
                    self.refused(
                        Refusal::WriteNotAllowed,
                        "a PUT: address not in access.write and no write token",
                    );
                    let msg = format!(
                        "address {} may not write to this orb without a write token; set ORB_TOKEN to your station's token, or ask the operator to add your address to access.write; nothing was stored",
                        self.reg.entry.addr.ip()
                    );
                    error(out, tag, ErrorCode::NotAllowed, &msg);
                    return;
                }
                Err(WriteRefusal::ForeignSrcname(why)) => {
                    self.refused(Refusal::ForeignSrcname, &format!("a PUT: {why}"));
                    let msg = format!("packet {i} of the PUT: {why}; nothing was stored");
                    error(out, tag, ErrorCode::NotAllowed, &msg);
                    return;
                }
            }
            if let Err(e) = SrcName::check(srcname) {
                error(
                    out,
                    tag,
                    ErrorCode::BadSrcname,
                    &format!("packet {i} of the PUT: {e}; nothing was stored"),
                );
                return;
            }
            if payload.len() > max {
                self.refused(
                    Refusal::TooLarge,
                    &format!(
                        "a PUT: a packet of {} bytes is over max_packet",
                        payload.len()
                    ),
                );
                let msg = format!(
                    "packet {i} of the PUT ({srcname}) has {} bytes, the limit is {max}; nothing was stored",
                    payload.len()
                );
                error(out, tag, ErrorCode::PacketTooLarge, &msg);
                return;
            }
            bytes += payload.len() as u64;
        }
        match self
            .shared
            .ring
            .append_batch_deferred(items.iter().copied(), durable)
        {
            Ok(crate::ring::Appended {
                first_pktid,
                count,
                pending,
            }) => {
                self.appended = true;
                let (e, t) = (&self.reg.entry, &self.shared.totals);
                e.packets_in.fetch_add(u64::from(count), Relaxed);
                e.bytes_in.fetch_add(bytes, Relaxed);
                t.packets_in.fetch_add(u64::from(count), Relaxed);
                t.bytes_in.fetch_add(bytes, Relaxed);
                match pending {
                    // PUT_OK promises durability: it waits for the driver's msync.
                    Some(p) => {
                        self.action = Some(Action::Sync(p));
                        self.waiting = Some(Waiting::Put {
                            tag,
                            first_pktid,
                            count,
                        });
                    }
                    None => Frame {
                        tag,
                        body: Body::PutOk { first_pktid, count },
                    }
                    .encode(out),
                }
            }
            Err(e @ RingError::PacketTooLarge { .. }) => {
                RefusalCounters::bump(&self.shared.refused.writes_too_large);
                error(out, tag, ErrorCode::PacketTooLarge, &e.to_string())
            }
            Err(e) => {
                tracing::error!("put failed: {e}");
                error(out, tag, ErrorCode::RingError, &e.to_string());
            }
        }
    }

    fn set_filter(
        &mut self,
        tag: u32,
        select: Option<&str>,
        reject: Option<&str>,
        out: &mut BytesMut,
    ) {
        let expr = select.or(reject).unwrap_or_default();
        let max = self.shared.limits.max_regex;
        if expr.len() > max {
            let msg = format!(
                "expression of {} bytes is longer than the limit of {max}",
                expr.len()
            );
            error(out, tag, ErrorCode::BadRegex, &msg);
            return;
        }
        let empty_to_none = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
        let new_select = if select.is_some() {
            empty_to_none(select)
        } else {
            self.select.select().map(str::to_owned)
        };
        let new_reject = if reject.is_some() {
            empty_to_none(reject)
        } else {
            self.select.reject().map(str::to_owned)
        };
        match SrcSelect::new(new_select.as_deref(), new_reject.as_deref()) {
            Ok(sel) => {
                self.select = sel;
                self.verdicts.clear();
                {
                    let mut ident = self.reg.entry.ident();
                    ident.select = new_select.unwrap_or_default();
                    ident.reject = new_reject.unwrap_or_default();
                }
                let n = self
                    .shared
                    .ring
                    .sources()
                    .iter()
                    .filter(|s| self.select.matches(s.srcname.as_str()))
                    .count();
                Frame {
                    tag,
                    body: Body::Selected { nsources: n as u32 },
                }
                .encode(out);
            }
            Err(e) => error(out, tag, ErrorCode::BadRegex, &e.to_string()),
        }
    }

    /// The first matching live pktid `>= from`, scanning with the session's filter, and
    /// the pktids below the oldest packet that `from` lost if the ring overwrote it.
    fn first_matching(&mut self, from: u64) -> (Option<u64>, Option<Gap>) {
        let mut found = None;
        let mut lost = None;
        let (select, verdicts) = (&self.select, &mut self.verdicts);
        let mut from = from;
        // Bounded batches so the read lock is released between them.
        for _ in 0..1_000_000 {
            let o = self.shared.ring.visit_from(
                from,
                1,
                usize::MAX,
                |src, name| keep(select, verdicts, src, name),
                |v| {
                    if let Visit::Record(r) = v {
                        found = Some(r.pktid);
                    }
                },
            );
            lost = lost.or(o.gap);
            if found.is_some() || o.next == from {
                return (found, lost);
            }
            from = o.next;
        }
        (None, lost)
    }

    /// Ring bytes between the reader's position and the first pktid after `gap`: what
    /// a GAP reports as lost.
    fn gap_bytes(&self, gap: Gap) -> u64 {
        self.shared
            .ring
            .lpos_of(gap.last + 1)
            .saturating_sub(self.reader_lpos)
    }

    /// Counts a GAP sent to this reader in STAT's totals and its CLIENTS row.
    fn count_gap(&self, packets: u64, bytes: u64) {
        let t = &self.shared.totals;
        t.gaps.fetch_add(1, Relaxed);
        t.gap_packets.fetch_add(packets, Relaxed);
        t.gap_bytes.fetch_add(bytes, Relaxed);
        self.reg.entry.gaps.fetch_add(1, Relaxed);
    }

    /// Remembers a loss a relative SEEK stepped over, for the next reap's GAP.
    fn remember_gap(&mut self, gap: Gap) {
        let lost = LostRange {
            first: gap.first,
            last: gap.last,
            bytes: self.gap_bytes(gap),
        };
        let full = self.pending_gaps.len() >= PENDING_GAPS_MAX;
        match self.pending_gaps.last_mut() {
            Some(prev) if full => {
                prev.last = lost.last;
                prev.bytes += lost.bytes;
            }
            _ => self.pending_gaps.push(lost),
        }
    }

    fn seek(&mut self, tag: u32, whence: Whence, pktid: u64, out: &mut BytesMut) {
        let ring = Arc::clone(&self.shared.ring);
        let st = ring.stat();
        let next = st.next_pktid;
        let pos = match whence {
            Whence::Pktid => {
                let oldest = st.oldest.map_or(next, |o| o.pktid);
                if pktid < oldest || pktid > next {
                    // The valid range ends at `next` (the pktid the next put gets), one
                    // past the newest packet; an empty ring holds no packet at all.
                    let msg = match st.newest {
                        Some(newest) => format!(
                            "pktid {pktid} is out of range: the ring holds {oldest} to {}, and {next} is the next to be put",
                            newest.pktid
                        ),
                        None => format!(
                            "pktid {pktid} is out of range: the ring is empty, and {next} is the next to be put"
                        ),
                    };
                    error(out, tag, ErrorCode::OutOfRange, &msg);
                    return;
                }
                pktid
            }
            Whence::Oldest => st.oldest.map_or(next, |o| o.pktid),
            Whence::Newest => st.newest.map_or(next, |n| n.pktid),
            Whence::Current | Whence::Next => {
                let (current, lost) = self.first_matching(self.pos);
                let Some(c) = current else {
                    // Not moved: a lost position is reported by the next reap itself.
                    return self.answer_position(tag, self.pos, out);
                };
                // Moving off an overwritten position must not be silent: the next reap
                // starts with a GAP for what lay between it and the packet found.
                if let Some(g) = lost {
                    self.remember_gap(g);
                }
                if whence == Whence::Current {
                    c
                } else {
                    c + 1
                }
            }
            Whence::Prev => {
                let mut p = self.pos;
                let mut found = None;
                // Walk back over non-matching packets, bounded by the ring's size.
                for _ in 0..st.npkts {
                    match ring.prev_before(p) {
                        Some(prev) => {
                            let name = ring.get(prev.pktid).ok().flatten().map(|pk| pk.srcname);
                            if name.is_some_and(|n| self.select.matches(n.as_str())) {
                                found = Some(prev.pktid);
                                break;
                            }
                            p = prev.pktid;
                        }
                        None => break,
                    }
                }
                match found {
                    Some(f) => f,
                    None => {
                        error(
                            out,
                            tag,
                            ErrorCode::OutOfRange,
                            "no matching packet before the current position",
                        );
                        return;
                    }
                }
            }
        };
        if matches!(whence, Whence::Pktid | Whence::Oldest | Whence::Newest) {
            // The client named its new position: losses behind the old one are moot.
            self.pending_gaps.clear();
        }
        self.answer_position(tag, pos, out);
    }

    /// Sets `pos` and answers POSITION.
    fn answer_position(&mut self, tag: u32, pos: u64, out: &mut BytesMut) {
        self.set_pos(pos);
        Frame {
            tag,
            body: Body::Position { pktid: pos },
        }
        .encode(out);
    }

    fn get(&mut self, tag: u32, current: bool, pktid: u64, out: &mut BytesMut) {
        let pktid = if current {
            match self.first_matching(self.pos).0 {
                Some(p) => p,
                None => {
                    error(
                        out,
                        tag,
                        ErrorCode::NotFound,
                        "there is no current packet yet",
                    );
                    return;
                }
            }
        } else {
            pktid
        };
        match self.shared.ring.get(pktid) {
            Ok(Some(p)) => {
                encode_packet(out, tag, p.pktid, p.time, p.srcname.as_str(), &p.payload);
                self.count_out(1, p.payload.len() as u64);
            }
            Ok(None) => error(
                out,
                tag,
                ErrorCode::NotFound,
                &format!("pktid {pktid} is not in the ring"),
            ),
            Err(e) => error(out, tag, ErrorCode::RingError, &e.to_string()),
        }
    }

    /// KILL: asks the other session's connection task to tell its client and close.
    fn kill(&mut self, tag: u32, client_id: u64, out: &mut BytesMut) {
        if client_id == self.reg.entry.id {
            let msg =
                format!("client {client_id} is this session; to end it, close the connection");
            error(out, tag, ErrorCode::BadState, &msg);
            return;
        }
        let Some(victim) = self.shared.clients.get(client_id) else {
            let msg = format!("no client {client_id} is connected; see CLIENTS for the ids");
            error(out, tag, ErrorCode::NotFound, &msg);
            return;
        };
        let what = victim.ident().what.clone();
        tracing::warn!(
            "{}: KILL of client {client_id} ({what:?} at {})",
            self.reg.entry.addr,
            victim.addr
        );
        victim.kill.cancel();
        Frame {
            tag,
            body: Body::Killed { client_id },
        }
        .encode(out);
    }

    fn count_out(&self, packets: u64, bytes: u64) {
        self.reg.entry.packets_out.fetch_add(packets, Relaxed);
        self.reg.entry.bytes_out.fetch_add(bytes, Relaxed);
        self.shared.totals.packets_out.fetch_add(packets, Relaxed);
        self.shared.totals.bytes_out.fetch_add(bytes, Relaxed);
    }

    fn info<T: serde::Serialize>(&self, tag: u32, doc: &T, out: &mut BytesMut) {
        let json = serde_json::to_string(doc).expect("info documents serialize");
        Frame {
            tag,
            body: Body::Info { json: &json },
        }
        .encode(out);
    }

    fn start_reap(
        &mut self,
        tag: u32,
        max_packets: u32,
        timeout_ms: u32,
        credit: u32,
        out: &mut BytesMut,
    ) {
        if self.reap.is_some() {
            error(
                out,
                tag,
                ErrorCode::BadState,
                "a reap is already active; STOP it first",
            );
            return;
        }
        let timeout =
            (timeout_ms != NO_TIMEOUT).then(|| Duration::from_millis(u64::from(timeout_ms)));
        self.reap = Some(Reap {
            tag,
            left: (max_packets != 0).then_some(max_packets),
            timeout,
            credit,
            last_sent: self.now.mono,
        });
        self.reg.entry.reaping.store(true, Relaxed);
    }

    /// Ends the active reap (if any) with REAP_END.
    pub fn end_reap(&mut self, reason: ReapEndReason, out: &mut BytesMut) {
        if let Some(r) = self.reap.take() {
            Frame {
                tag: r.tag,
                body: Body::ReapEnd {
                    reason,
                    pos: self.pos,
                },
            }
            .encode(out);
            self.reg.entry.reaping.store(false, Relaxed);
        }
    }

    /// Ends the reap if its timeout has passed.
    pub fn check_timeout(&mut self, now: Instant, out: &mut BytesMut) {
        if self.reap_deadline().is_some_and(|d| now >= d) {
            self.end_reap(ReapEndReason::Timeout, out);
        }
    }

    /// Writes reap stream frames (packets, gaps) into `out`, up to about `max_bytes`.
    pub fn fill_reap(&mut self, out: &mut BytesMut, max_bytes: usize) -> Fill {
        let Some(tag) = self.reap.as_ref().map(|r| r.tag) else {
            return Fill::Idle;
        };
        // Losses a SEEK stepped over come first; a GAP needs no credit.
        let pending = std::mem::take(&mut self.pending_gaps);
        for g in &pending {
            Frame {
                tag,
                body: Body::Gap {
                    first: g.first,
                    last: g.last,
                    bytes: g.bytes,
                },
            }
            .encode(out);
            self.count_gap(g.last - g.first + 1, g.bytes);
        }
        let r = self.reap.as_ref().expect("reap is active");
        if r.credit == 0 {
            return Fill::Waiting;
        }
        let want = (r.credit as usize)
            .min(r.left.map_or(usize::MAX, |l| l as usize))
            .min(FILL_PACKETS);
        let (select, verdicts) = (&self.select, &mut self.verdicts);
        let (mut sent, mut bytes) = (0u32, 0u64);
        let mut gap_at = None;
        let outcome = self.shared.ring.visit_from(
            self.pos,
            want,
            max_bytes,
            |src, name| keep(select, verdicts, src, name),
            |v| match v {
                Visit::Gap(g) => {
                    // The lost byte count is known only after the visit; patched below.
                    gap_at = Some(out.len());
                    Frame {
                        tag,
                        body: Body::Gap {
                            first: g.first,
                            last: g.last,
                            bytes: 0,
                        },
                    }
                    .encode(out);
                }
                Visit::Record(rec) => {
                    encode_packet(
                        out,
                        tag,
                        rec.pktid,
                        rec.time,
                        rec.srcname.as_str(),
                        rec.payload,
                    );
                    sent += 1;
                    bytes += rec.payload.len() as u64;
                }
            },
        );
        if let (Some(at), Some(g)) = (gap_at, outcome.gap) {
            let lost = self.gap_bytes(g);
            let field = at + FRAME_HEADER + 16;
            out[field..field + 8].copy_from_slice(&lost.to_le_bytes());
            self.count_gap(g.last - g.first + 1, lost);
        }
        self.set_pos(outcome.next.max(self.pos));
        self.count_out(u64::from(sent), bytes);
        let r = self.reap.as_mut().expect("reap is active");
        r.credit -= sent;
        if sent > 0 {
            r.last_sent = self.now.mono;
        }
        if let Some(left) = &mut r.left {
            *left -= sent;
            if *left == 0 {
                self.end_reap(ReapEndReason::Budget, out);
                return Fill::Sent;
            }
        }
        if sent == 0 && outcome.gap.is_none() && pending.is_empty() && !outcome.more {
            if r.timeout == Some(Duration::ZERO) {
                self.end_reap(ReapEndReason::Timeout, out);
                return Fill::Sent;
            }
            return Fill::Waiting;
        }
        Fill::Sent
    }
}

impl conn::Session for Session {
    type Out = BytesMut;

    fn receive(&mut self, input: &[u8], now: Now, out: &mut BytesMut) -> Received {
        self.now = now;
        let mut used = 0;
        loop {
            let rest = &input[used..];
            match decode(rest, self.max_frame) {
                Ok(Decoded::NeedMore { .. }) => {
                    return Received {
                        consumed: used,
                        close: None,
                    }
                }
                Ok(Decoded::Frame(frame, len)) => {
                    let flow = self.handle(frame, out);
                    used += len;
                    if flow == Flow::Close {
                        return Received {
                            consumed: used,
                            close: Some(Close::Error("the client broke the session rules".into())),
                        };
                    }
                    if self.action.is_some() {
                        return Received {
                            consumed: used,
                            close: None,
                        };
                    }
                }
                Err(e) => {
                    let (code, msg) = if matches!(e, DecodeError::TooLarge { .. }) {
                        RefusalCounters::bump(&self.shared.refused.writes_too_large);
                        let msg = format!(
                            "{e}; keep each frame within max_packet ({} bytes) plus 64 KiB",
                            self.shared.limits.max_packet
                        );
                        (ErrorCode::TooLarge, msg)
                    } else {
                        (ErrorCode::Malformed, e.to_string())
                    };
                    // A frame read whole (unknown kind, bad body) is answered with its
                    // own tag; one refused by its length alone with tag 0.
                    let tag = frame_tag(rest, self.max_frame).unwrap_or(0);
                    error(out, tag, code, &msg);
                    return Received {
                        consumed: used,
                        close: Some(Close::Error(msg)),
                    };
                }
            }
        }
    }

    fn fill(&mut self, now: Now, out: &mut BytesMut, budget: usize) -> conn::Fill {
        self.now = now;
        self.check_timeout(now.mono, out);
        match self.fill_reap(out, budget) {
            Fill::Sent => conn::Fill::Sent,
            Fill::Idle | Fill::Waiting => conn::Fill::Waiting,
        }
    }

    fn wants_packets(&self) -> bool {
        Session::wants_packets(self)
    }

    fn deadline(&self) -> Option<Instant> {
        self.reap_deadline()
    }

    fn take_appended(&mut self) -> bool {
        Session::take_appended(self)
    }

    fn handshake_done(&self) -> bool {
        self.hello
    }

    fn take_action(&mut self) -> Option<Action> {
        self.action.take()
    }

    fn complete(&mut self, outcome: Outcome, now: Now, out: &mut BytesMut) {
        self.now = now;
        match (self.waiting.take(), outcome) {
            (
                Some(Waiting::Put {
                    tag,
                    first_pktid,
                    count,
                }),
                Outcome::Synced(Ok(())),
            ) => Frame {
                tag,
                body: Body::PutOk { first_pktid, count },
            }
            .encode(out),
            (Some(Waiting::Put { tag, .. }), Outcome::Synced(Err(e))) => {
                tracing::error!("durable put failed: {e}");
                let msg =
                    format!("{e}; the packets are in the ring but may not survive a power failure");
                error(out, tag, ErrorCode::RingError, &msg);
            }
            (Some(Waiting::Reload { tag }), Outcome::Reloaded(r)) => match r {
                Ok(summary) => Frame {
                    tag,
                    body: Body::Reloaded { summary: &summary },
                }
                .encode(out),
                Err(e @ ReloadError::NoConfigFile) => {
                    error(out, tag, ErrorCode::BadState, &e.to_string())
                }
                Err(e) => error(out, tag, ErrorCode::BadConfig, &e.to_string()),
            },
            (waiting, outcome) => {
                debug_assert!(false, "{outcome:?} does not answer {waiting:?}");
            }
        }
    }

    fn farewell(&mut self, why: Farewell, out: &mut BytesMut) {
        let (code, message) = match why {
            Farewell::Shutdown => (
                ErrorCode::ShuttingDown,
                "orbserver is stopping; reconnect when it is back",
            ),
            Farewell::Killed => (ErrorCode::Killed, KILLED_MESSAGE),
            Farewell::HandshakeTimeout => (
                ErrorCode::BadState,
                "no HELLO within the handshake timeout; a client must send HELLO as soon as it connects",
            ),
        };
        error(out, 0, code, message);
    }
}

/// What a killed client is told (PROTOCOL.md, "Administration").
const KILLED_MESSAGE: &str = "closed by an administrator";

/// The session's verdict on a source, cached per ring source number so the regular
/// expressions run once per source, not once per packet.
fn keep(select: &SrcSelect, verdicts: &mut Vec<u8>, src: u32, name: &SrcName) -> bool {
    let i = src as usize;
    if verdicts.len() <= i {
        verdicts.resize(i + 1, 0);
    }
    if verdicts[i] == 0 {
        verdicts[i] = if select.matches(name.as_str()) { 1 } else { 2 };
    }
    verdicts[i] == 1
}
