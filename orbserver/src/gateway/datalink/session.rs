//! One DataLink client's state, without sockets: input bytes in, reply bytes out. The
//! connection driver (`crate::conn`) feeds it input and, while it streams, asks it to
//! fill the output buffer with PACKETs; a WRITE's msync under `flush = always` comes
//! back to the driver as an action.
//!
//! Positions follow ringserver: the read position names the last packet the client
//! has, and STREAM sends the packets after it; POSITION SET EARLIEST and POSITION AFTER
//! are the exceptions docs/GATEWAYS.md describes.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use formats::datalink::{
    decode_command, Command, DecodeError, Decoded, InfoKind, Position, Reply, Write,
};
use formats::payload::seed;
use formats::{SrcName, Time, MAX_SRCNAME_LEN};
use regex::{Regex, RegexBuilder};

use super::info;
use super::streamid::{to_srcname, to_streamid, IdStyle};
use crate::access::{Grant, Identity, WriteRefusal};
use crate::conn::{self, Action, Close, Farewell, Messages, Now, Outcome, Received};
use crate::hub::clients::{AskedRights, Registration};
use crate::hub::policy::{Refusal, RefusalCounters, RefusalLog};
use crate::hub::{server_name, Credentials, Hub};
use crate::ring::{RingError, Visit};

/// Most packets one `fill` call sends, so one reader never holds the ring's read lock
/// for long.
const FILL_PACKETS: usize = 1024;
/// Bytes a WRITE may declare beyond the largest packet and still get an ERROR with the
/// connection kept: anything larger cannot be skipped cheaply and closes it.
const WRITE_SLACK: usize = 64 * 1024;
/// Most memory one MATCH or REJECT expression may compile to.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// What `fill` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Not streaming.
    Idle,
    /// Packets were written; call again soon.
    Sent,
    /// Nothing to send now: wait for packets.
    Waiting,
}

/// The state of one DataLink connection.
pub struct DlSession {
    shared: Arc<Hub>,
    reg: Registration,
    grant: Grant,
    grant_gen: u64,
    /// Who AUTH proved the client to be; `None`: its address alone decides.
    identity: Option<Identity>,
    /// Set when a reply must be the last (a failed AUTH, as ringserver closes).
    closing: Option<Close>,
    matcher: Option<Regex>,
    rejecter: Option<Regex>,
    /// How miniSEED stream ids are named to this client: DataLink 1.1's FDSN source ids
    /// (as the ID reply announces) unless the client shows it speaks 1.0
    /// (docs/GATEWAYS.md, "Which name a client sees").
    style: IdStyle,
    /// The client named its version in its ID (`DLPROTO:x.y`): the names it uses later
    /// no longer change `style`.
    announced: bool,
    /// Per ring source number: 0 not yet decided, 1 matches, 2 does not.
    verdicts: Vec<u8>,
    /// The first pktid STREAM may send; `None` until positioned (STREAM then starts
    /// with the next packet to arrive, as ringserver's does).
    next: Option<u64>,
    streaming: bool,
    appended: bool,
    logged: RefusalLog,
    /// A whole command (good or bad) has arrived: the handshake deadline is over.
    started: bool,
    /// An msync for the driver, and the pktid to acknowledge after it (if the WRITE
    /// asked for an acknowledgement).
    action: Option<Action>,
    ack_after_sync: Option<u64>,
}

/// Appends one reply as one message (over WebSocket, one binary message).
fn reply(out: &mut Messages, r: Reply<'_>) {
    // Our replies carry stream ids from valid srcnames and short headers: encoding
    // cannot fail, and if it did the client would get nothing rather than garbage.
    if let Err(e) = out.message(|b| r.encode(b)) {
        tracing::error!("DataLink reply not encodable: {e}");
    }
}

/// Appends an ERROR reply.
pub fn error(out: &mut Messages, message: &str) {
    reply(out, Reply::Error { value: 0, message });
}

fn ok(out: &mut Messages, value: i64, message: &str) {
    reply(out, Reply::Ok { value, message });
}

/// The data end time of a packet: the last sample's time for miniSEED, else its start.
pub fn data_end(srcname: &str, start: Time, payload: &[u8]) -> Time {
    if srcname.ends_with("/SEED") {
        if let Ok(Some((_, end))) = seed::time_span(payload) {
            return end;
        }
    }
    start
}

fn compile(expr: &str, max: usize) -> Result<Option<Regex>, String> {
    if expr.is_empty() {
        return Ok(None);
    }
    if expr.len() > max {
        return Err(format!(
            "expression of {} bytes is longer than the limit of {max}",
            expr.len()
        ));
    }
    RegexBuilder::new(expr)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map(Some)
        .map_err(|e| format!("bad regular expression: {e}"))
}

impl DlSession {
    /// A session for a registered connection.
    pub fn new(shared: Arc<Hub>, reg: Registration) -> DlSession {
        let mut s = DlSession {
            shared,
            reg,
            grant: Grant::default(),
            grant_gen: u64::MAX,
            identity: None,
            closing: None,
            matcher: None,
            rejecter: None,
            style: IdStyle::default(),
            announced: false,
            verdicts: Vec::new(),
            next: None,
            streaming: false,
            appended: false,
            logged: RefusalLog::default(),
            started: false,
            action: None,
            ack_after_sync: None,
        };
        // A DataLink client may read and write without asking: CLIENTS shows what the
        // rules in force allow its address (and the identity the transport proved).
        {
            let mut ident = s.reg.entry.ident();
            s.identity = ident.proven.clone();
            ident.rights = Some(AskedRights {
                read: true,
                write: true,
                identity: s.identity.clone(),
            });
        }
        s.refresh_grant();
        s
    }

    /// Re-decides the session's rights if the rules were reloaded since it last looked.
    fn refresh_grant(&mut self) {
        if self.shared.policy.generation() != self.grant_gen {
            let (generation, rules) = self.shared.policy.current();
            // The address decides, and what AUTH proved the client to be.
            self.grant = rules.grant(self.reg.entry.addr.ip(), self.identity.as_ref());
            self.grant_gen = generation;
            let access = format!(
                "{}{}",
                if self.grant.read { "r" } else { "" },
                if self.grant.write.any() { "w" } else { "" }
            );
            self.reg.entry.ident().access = access;
            self.reg.entry.reads.store(self.grant.read, Relaxed);
        }
    }

    fn refused(&mut self, kind: Refusal, what: &str) {
        let peer = self.reg.entry.addr;
        self.logged
            .refuse(&self.shared.refused, kind, peer, "DataLink: ", what);
    }

    /// True (once) if packets were appended since the last call.
    pub fn take_appended(&mut self) -> bool {
        std::mem::take(&mut self.appended)
    }

    /// True while STREAM is on.
    pub fn streaming(&self) -> bool {
        self.streaming
    }

    /// The largest payload a WRITE may carry, as the ID reply announces it.
    pub fn packet_size(&self) -> usize {
        self.shared
            .limits
            .max_packet
            .min(self.shared.ring.max_payload(MAX_SRCNAME_LEN))
    }

    fn capabilities(&self) -> String {
        formats::datalink::reply::capabilities(
            &server_name(),
            self.packet_size(),
            self.grant.write.any(),
            self.shared.policy.current().1.takes_auth(),
        )
    }

    /// AUTH USERPASS (`user\rpassword`) or AUTH JWT, with ringserver 4's replies: OK
    /// "Authentication successful", or ERROR "Authentication failed, not allowed to
    /// connect" and the connection closed. The credential is never logged.
    fn auth(&mut self, kind: &str, credential: &[u8], out: &mut Messages) {
        let text = std::str::from_utf8(credential).ok();
        let cred = match kind.to_ascii_uppercase().as_str() {
            "USERPASS" => match text.and_then(|t| t.split_once('\r')) {
                Some((user, password)) => Credentials::UserPass { user, password },
                None => return error(out, "AUTH USERPASS requires payload of USER\\rPASS"),
            },
            "JWT" => match text {
                Some(t) if !t.trim().is_empty() => Credentials::Jwt(t.trim()),
                _ => return error(out, "AUTH JWT requires a token as its payload"),
            },
            _ => return error(out, "Unsupported AUTH type; use USERPASS or JWT"),
        };
        match self
            .shared
            .authenticate(self.reg.entry.addr, "DataLink: ", cred)
        {
            Ok((id, label)) => {
                {
                    let mut ident = self.reg.entry.ident();
                    ident.identity = label;
                    if let Some(r) = ident.rights.as_mut() {
                        r.identity = Some(id.clone());
                    }
                }
                self.identity = Some(id);
                self.grant_gen = u64::MAX;
                self.refresh_grant();
                ok(out, 0, "Authentication successful");
            }
            Err(refused) => {
                error(out, &refused.message());
                self.closing = Some(Close::Error("authentication failed".into()));
            }
        }
    }

    fn set_next(&mut self, next: u64) {
        self.next = Some(next);
        self.reg.entry.pos.store(next, Relaxed);
    }

    /// Handles one command, appending any reply to `out`.
    pub fn handle(&mut self, cmd: Command<'_>, out: &mut Messages) {
        self.refresh_grant();
        let reads = matches!(
            cmd,
            Command::PositionSet(_)
                | Command::PositionAfter(_)
                | Command::Read(_)
                | Command::Stream
        );
        if reads && !self.grant.read {
            self.refused(
                Refusal::ReadNotAllowed,
                "a read: address not in access.read",
            );
            let msg = format!(
                "address {} may not read this orb; ask the operator to add it to access.read",
                self.reg.entry.addr.ip()
            );
            return error(out, &msg);
        }
        match cmd {
            Command::Auth { kind, credential } => self.auth(kind, credential.0, out),
            Command::Id(id) => self.id(id, out),
            Command::PositionSet(p) => self.position(p, out),
            Command::PositionAfter(t) => match self.shared.ring.after(t) {
                Some(p) => {
                    self.set_next(p.pktid);
                    ok(
                        out,
                        p.pktid as i64,
                        &format!("Positioned to packet ID {}", p.pktid),
                    );
                }
                None => error(out, "Packet not found: no packet at or after that time"),
            },
            Command::Match(e) => self.filter(e, true, out),
            Command::Reject(e) => self.filter(e, false, out),
            Command::Read(pktid) => match self.shared.ring.get(pktid) {
                Ok(Some(p)) => {
                    self.packet(pktid, p.time, p.srcname.as_str(), &p.payload, out);
                }
                Ok(None) => error(out, &format!("Packet {pktid} not found in ring")),
                Err(e) => error(out, &format!("reading packet {pktid}: {e}")),
            },
            Command::Stream => {
                if self.next.is_none() {
                    let next = self.shared.ring.stat().next_pktid;
                    self.set_next(next);
                }
                self.streaming = true;
                self.reg.entry.reaping.store(true, Relaxed);
            }
            Command::EndStream => {
                self.streaming = false;
                self.reg.entry.reaping.store(false, Relaxed);
                reply(out, Reply::EndStream);
            }
            Command::Write(w) => self.write(w, out),
            Command::Info { kind, matching } => self.info(kind, matching, out),
        }
    }

    fn id(&mut self, id: &str, out: &mut Messages) {
        // By convention "program:user:pid:arch"; anything else is kept as the program.
        // The whole ID (with the architecture) is kept for CLIENTS' `client_id` and
        // INFO CONNECTIONS.
        let mut parts = id.splitn(4, ':');
        {
            let mut ident = self.reg.entry.ident();
            ident.what = parts.next().unwrap_or_default().chars().take(64).collect();
            ident.who = parts.next().unwrap_or_default().chars().take(64).collect();
            ident.pid = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            ident.client_id = id.chars().take(256).collect();
        }
        if let Some(style) = IdStyle::announced_in(id) {
            self.set_style(style);
            self.announced = true;
        }
        reply(out, Reply::Id(&self.capabilities()));
    }

    fn position(&mut self, p: Position, out: &mut Messages) {
        let st = self.shared.ring.stat();
        let found = match p {
            Position::Earliest => st.oldest.map(|o| (o.pktid, o.pktid)),
            Position::Latest => st.newest.map(|n| (n.pktid, n.pktid + 1)),
            Position::Pktid { pktid, time } => match self.shared.ring.get(pktid) {
                Ok(Some(pk)) if time.is_none_or(|t| t == pk.time) => Some((pktid, pktid + 1)),
                _ => None,
            },
        };
        match found {
            Some((at, next)) => {
                self.set_next(next);
                ok(out, at as i64, &format!("Positioned to packet ID {at}"));
            }
            None => error(out, "Packet not found"),
        }
    }

    fn filter(&mut self, expr: &str, is_match: bool, out: &mut Messages) {
        let re = match compile(expr, self.shared.limits.max_regex) {
            Ok(re) => re,
            Err(msg) => return error(out, &msg),
        };
        {
            let mut ident = self.reg.entry.ident();
            if is_match {
                ident.select = expr.into();
            } else {
                ident.reject = expr.into();
            }
        }
        if is_match {
            self.matcher = re;
        } else {
            self.rejecter = re;
        }
        if !self.announced {
            if let Some(style) =
                self.style_of_expression(expr, re_ref(is_match, &self.matcher, &self.rejecter))
            {
                self.set_style(style);
            }
        }
        self.verdicts.clear();
        let n = self
            .shared
            .ring
            .sources()
            .iter()
            .filter(|s| {
                selected(
                    &self.matcher,
                    &self.rejecter,
                    self.style,
                    s.srcname.as_str(),
                )
            })
            .count();
        let what = if is_match { "match" } else { "reject" };
        ok(out, n as i64, &format!("{n} streams selected after {what}"));
    }

    fn packet(
        &mut self,
        pktid: u64,
        time: Time,
        srcname: &str,
        payload: &[u8],
        out: &mut Messages,
    ) {
        reply(
            out,
            Reply::Packet {
                streamid: &to_streamid(srcname, self.style),
                pktid,
                pkttime: time,
                start: time,
                end: data_end(srcname, time, payload),
                data: payload,
            },
        );
        self.count_out(1, payload.len() as u64);
    }

    fn count_out(&self, packets: u64, bytes: u64) {
        let (e, t) = (&self.reg.entry, &self.shared.totals);
        e.packets_out.fetch_add(packets, Relaxed);
        e.bytes_out.fetch_add(bytes, Relaxed);
        t.packets_out.fetch_add(packets, Relaxed);
        t.bytes_out.fetch_add(bytes, Relaxed);
    }

    /// Names miniSEED streams in `style` from now on.
    fn set_style(&mut self, style: IdStyle) {
        if style != self.style {
            self.style = style;
            self.verdicts.clear();
        }
    }

    /// The style a MATCH or REJECT expression shows the client speaks, if any: FDSN if
    /// it names an FDSN id; 1.0 if it selects miniSEED streams in the ring only by their
    /// 1.0 names (a 1.0 client's `XX_STA_00_HH./MSEED`, which matches no FDSN id: the
    /// case that leaves a 1.0 client with nothing from ringserver 4). An expression that
    /// matches both names, or no miniSEED stream yet, says nothing.
    fn style_of_expression(&self, expr: &str, re: Option<&Regex>) -> Option<IdStyle> {
        if let Some(style) = IdStyle::used_in(expr) {
            return Some(style);
        }
        let re = re?;
        let (mut nslc, mut fdsn) = (0usize, 0usize);
        for s in self.shared.ring.sources() {
            let name = s.srcname.as_str();
            if !name.ends_with("/SEED") {
                continue;
            }
            nslc += usize::from(re.is_match(&to_streamid(name, IdStyle::Nslc)));
            fdsn += usize::from(re.is_match(&to_streamid(name, IdStyle::Fdsn)));
        }
        (nslc > 0 && fdsn == 0).then_some(IdStyle::Nslc)
    }

    fn write(&mut self, w: Write<'_>, out: &mut Messages) {
        if !self.announced {
            if let Some(style) = IdStyle::written_in(w.streamid) {
                self.set_style(style);
            }
        }
        let srcname = match to_srcname(w.streamid) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!(
                    "stream id {:?} makes no orb srcname: {e}; nothing was stored",
                    w.streamid
                );
                return error(out, &msg);
            }
        };
        match self.grant.write.check(srcname.as_str()) {
            Ok(()) => {}
            Err(WriteRefusal::NotAllowed) => {
                self.refused(
                    Refusal::WriteNotAllowed,
                    "a WRITE: address not in access.write",
                );
                let msg = format!(
                    "Write permission not granted: address {} is not in access.write; nothing was stored",
                    self.reg.entry.addr.ip()
                );
                return error(out, &msg);
            }
            Err(WriteRefusal::ForeignSrcname(why)) => {
                self.refused(Refusal::ForeignSrcname, &format!("a WRITE: {why}"));
                return error(out, &format!("{why}; nothing was stored"));
            }
        }
        let max = self.packet_size();
        if w.payload.len() > max {
            self.refused(
                Refusal::TooLarge,
                &format!("a WRITE of {} bytes: over max_packet", w.payload.len()),
            );
            let msg = format!(
                "Packet size ({}) is too large for this orb, maximum is {max} bytes; nothing was stored",
                w.payload.len()
            );
            return error(out, &msg);
        }
        self.append(&srcname, w, out);
    }

    fn append(&mut self, srcname: &SrcName, w: Write<'_>, out: &mut Messages) {
        let item = (srcname.as_str(), w.start, w.payload);
        match self
            .shared
            .ring
            .append_batch_deferred(std::iter::once(item), false)
        {
            Ok(crate::ring::Appended {
                first_pktid: pktid,
                pending,
                ..
            }) => {
                self.appended = true;
                let bytes = w.payload.len() as u64;
                let (e, t) = (&self.reg.entry, &self.shared.totals);
                e.packets_in.fetch_add(1, Relaxed);
                e.bytes_in.fetch_add(bytes, Relaxed);
                t.packets_in.fetch_add(1, Relaxed);
                t.bytes_in.fetch_add(bytes, Relaxed);
                if let Some(p) = pending {
                    // `flush = always`: the acknowledgement waits for the driver's msync.
                    self.action = Some(Action::Sync(p));
                    self.ack_after_sync = w.ack.then_some(pktid);
                } else if w.ack {
                    reply(
                        out,
                        Reply::Ok {
                            value: pktid as i64,
                            message: "",
                        },
                    );
                }
            }
            Err(e @ RingError::PacketTooLarge { .. }) => {
                RefusalCounters::bump(&self.shared.refused.writes_too_large);
                error(out, &format!("{e}; nothing was stored"));
            }
            Err(e) => {
                tracing::error!("DataLink WRITE failed: {e}");
                error(out, &format!("Error adding packet to ring: {e}"));
            }
        }
    }

    fn info(&mut self, kind: InfoKind, matching: Option<&str>, out: &mut Messages) {
        // CONNECTIONS shows every client's address: as the native CLIENTS, admin only.
        if kind == InfoKind::Connections && !self.grant.admin {
            self.refused(
                Refusal::AdminNotAllowed,
                "INFO CONNECTIONS: no admin access",
            );
            let msg = format!(
                "INFO CONNECTIONS needs admin access: address {} is not in access.admin",
                self.reg.entry.addr.ip()
            );
            return error(out, &msg);
        }
        let re = match compile(matching.unwrap_or(""), self.shared.limits.max_regex) {
            Ok(re) => re,
            Err(msg) => return error(out, &msg),
        };
        let xml = info::document(
            &self.shared,
            kind,
            &self.capabilities(),
            re.as_ref(),
            self.style,
        );
        reply(
            out,
            Reply::Info {
                kind: kind.as_str(),
                xml: &xml,
            },
        );
    }

    /// Writes PACKETs for the stream into `out`, up to about `max_bytes`.
    fn fill_stream(&mut self, out: &mut Messages, max_bytes: usize) -> Fill {
        if !self.streaming {
            return Fill::Idle;
        }
        self.refresh_grant();
        if !self.grant.read {
            // The rules were reloaded and took this address's read access away.
            self.streaming = false;
            self.reg.entry.reaping.store(false, Relaxed);
            error(out, "read access was withdrawn; the stream has ended");
            return Fill::Sent;
        }
        let from = self.next.unwrap_or(0);
        let (matcher, rejecter, verdicts) = (&self.matcher, &self.rejecter, &mut self.verdicts);
        let style = self.style;
        let (mut sent, mut bytes, mut gap) = (0u64, 0u64, None);
        let outcome = self.shared.ring.visit_from(
            from,
            FILL_PACKETS,
            max_bytes,
            |src, name| keep(matcher, rejecter, style, verdicts, src, name),
            |v| match v {
                Visit::Gap(g) => gap = Some(g),
                Visit::Record(r) => {
                    let name = r.srcname.as_str();
                    reply(
                        out,
                        Reply::Packet {
                            streamid: &to_streamid(name, style),
                            pktid: r.pktid,
                            pkttime: r.time,
                            start: r.time,
                            end: data_end(name, r.time, r.payload),
                            data: r.payload,
                        },
                    );
                    sent += 1;
                    bytes += r.payload.len() as u64;
                }
            },
        );
        if let Some(g) = gap {
            // DataLink has no way to say packets were lost; they are counted here.
            let t = &self.shared.totals;
            t.gaps.fetch_add(1, Relaxed);
            t.gap_packets.fetch_add(g.last - g.first + 1, Relaxed);
            self.reg.entry.gaps.fetch_add(1, Relaxed);
        }
        self.set_next(outcome.next.max(from));
        self.count_out(sent, bytes);
        if sent == 0 && gap.is_none() && !outcome.more {
            return Fill::Waiting;
        }
        Fill::Sent
    }
}

impl conn::Session for DlSession {
    type Out = Messages;

    fn receive(&mut self, input: &[u8], _now: Now, out: &mut Messages) -> Received {
        let max_payload = self.packet_size() + WRITE_SLACK;
        let mut used = 0;
        loop {
            match decode_command(&input[used..], max_payload) {
                Ok(Decoded::NeedMore) => {
                    return Received {
                        consumed: used,
                        close: None,
                    }
                }
                Ok(Decoded::Done(cmd, len)) => {
                    self.started = true;
                    self.handle(cmd, out);
                    used += len;
                    if let Some(close) = self.closing.take() {
                        return Received {
                            consumed: used,
                            close: Some(close),
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
                    self.started = true;
                    if let DecodeError::TooLarge { .. } = e {
                        RefusalCounters::bump(&self.shared.refused.writes_too_large);
                    }
                    match e.skip() {
                        // The framing holds: say what was wrong and go on.
                        Some(len) => {
                            error(out, &e.to_string());
                            used += len;
                        }
                        None => {
                            error(out, &format!("{e}; closing the connection"));
                            return Received {
                                consumed: used,
                                close: Some(Close::Error(e.to_string())),
                            };
                        }
                    }
                }
            }
        }
    }

    fn fill(&mut self, _now: Now, out: &mut Messages, budget: usize) -> conn::Fill {
        match self.fill_stream(out, budget) {
            Fill::Sent => conn::Fill::Sent,
            Fill::Idle | Fill::Waiting => conn::Fill::Waiting,
        }
    }

    fn wants_packets(&self) -> bool {
        self.streaming
    }

    fn deadline(&self) -> Option<std::time::Instant> {
        None
    }

    fn take_appended(&mut self) -> bool {
        DlSession::take_appended(self)
    }

    fn handshake_done(&self) -> bool {
        self.started
    }

    fn take_action(&mut self) -> Option<Action> {
        self.action.take()
    }

    fn complete(&mut self, outcome: Outcome, _now: Now, out: &mut Messages) {
        let ack = self.ack_after_sync.take();
        match outcome {
            Outcome::Synced(Ok(())) => {
                if let Some(pktid) = ack {
                    ok(out, pktid as i64, "");
                }
            }
            Outcome::Synced(Err(e)) => {
                tracing::error!("DataLink WRITE failed: {e}");
                error(out, &format!("Error adding packet to ring: {e}"));
            }
            Outcome::Reloaded(_) => debug_assert!(false, "DataLink does not reload"),
        }
    }

    fn farewell(&mut self, why: Farewell, out: &mut Messages) {
        error(
            out,
            match why {
                Farewell::Shutdown => "orbserver is stopping; reconnect when it is back",
                Farewell::Killed => "closed by an administrator",
                Farewell::HandshakeTimeout => {
                    "no DataLink command within the handshake timeout; send ID as soon as you connect"
                }
            },
        );
    }
}

/// The verdict on a source, cached per ring source number so the expressions run once
/// per source, not once per packet.
fn keep(
    matcher: &Option<Regex>,
    rejecter: &Option<Regex>,
    style: IdStyle,
    verdicts: &mut Vec<u8>,
    src: u32,
    name: &SrcName,
) -> bool {
    let i = src as usize;
    if verdicts.len() <= i {
        verdicts.resize(i + 1, 0);
    }
    if verdicts[i] == 0 {
        verdicts[i] = if selected(matcher, rejecter, style, name.as_str()) {
            1
        } else {
            2
        };
    }
    verdicts[i] == 1
}

/// The expression just set by a MATCH (`is_match`) or a REJECT.
fn re_ref<'a>(
    is_match: bool,
    matcher: &'a Option<Regex>,
    rejecter: &'a Option<Regex>,
) -> Option<&'a Regex> {
    if is_match {
        matcher.as_ref()
    } else {
        rejecter.as_ref()
    }
}

/// ringserver's semantics: the expressions search the stream id (unanchored), which
/// for miniSEED differs from the srcname.
fn selected(
    matcher: &Option<Regex>,
    rejecter: &Option<Regex>,
    style: IdStyle,
    srcname: &str,
) -> bool {
    let id = to_streamid(srcname, style);
    matcher.as_ref().is_none_or(|m| m.is_match(&id))
        && !rejecter.as_ref().is_some_and(|r| r.is_match(&id))
}
