//! One SeedLink connection's state, without sockets: command lines in, replies out,
//! and once the transfer starts, data frames as packets arrive. The connection driver
//! (`crate::conn`) moves the bytes; protocol decisions live in `request` (negotiation)
//! and `feed` (the transfer).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use formats::seedlink::frame::{self, InfoKind};
use formats::seedlink::v4::{self, InfoItem};
use formats::seedlink::{
    self, AuthRequest, Command, InfoLevel, SeedLinkError, Selector, StationPattern,
};

use super::feed::{Feed, Fill};
use super::request::{Negotiation, StationReq, Step};
use super::{hello_line, info, info_json, ORGANIZATION};
use crate::access::{Grant, Identity};
use crate::conn::{self, Action, Close, Farewell, Messages, Now, OutBuf as _, Outcome, Received};
use crate::hub::clients::{AskedRights, Registration};
use crate::hub::policy::{Refusal, RefusalCounters, RefusalLog};
use crate::hub::{Credentials, Hub};

/// The state of one SeedLink connection.
pub struct SlSession {
    shared: Arc<Hub>,
    reg: Registration,
    grant: Grant,
    grant_gen: u64,
    /// Who AUTH proved the client to be; `None`: its address alone decides.
    identity: Option<Identity>,
    /// Refusals logged already (later ones are only counted).
    logged: RefusalLog,
    neg: Negotiation,
    /// Command lines received (the handshake deadline ends with the first).
    commands: u64,
    /// The transfer, once negotiation ended with END or FETCH.
    feed: Option<Feed>,
    /// The time of the last call, to turn a window's wall-clock end into a deadline.
    now: Option<Now>,
}

impl SlSession {
    /// A session for a registered connection.
    pub fn new(shared: Arc<Hub>, reg: Registration) -> SlSession {
        let identity = {
            let mut ident = reg.entry.ident();
            ident.what = "SeedLink client".into();
            ident.proven.clone()
        };
        let (generation, rules) = shared.policy.current();
        let grant = rules.grant(reg.entry.addr.ip(), identity.as_ref());
        SlSession {
            shared,
            reg,
            grant,
            grant_gen: generation,
            identity,
            logged: RefusalLog::default(),
            neg: Negotiation::default(),
            commands: 0,
            feed: None,
            now: None,
        }
    }

    /// Re-decides the read and admin rights if the rules were reloaded.
    fn refresh_grant(&mut self) {
        if self.shared.policy.generation() != self.grant_gen {
            let (generation, rules) = self.shared.policy.current();
            self.grant = rules.grant(self.reg.entry.addr.ip(), self.identity.as_ref());
            self.grant_gen = generation;
        }
    }

    /// Answers a request that needs read access with ERROR if the address may not read.
    fn may_read(&mut self, out: &mut Messages) -> bool {
        match self.read_refusal() {
            None => true,
            Some(msg) => {
                out.push(&self.neg.error("UNAUTHORIZED", &msg));
                false
            }
        }
    }

    /// `None` if the address may read; otherwise the refusal, logged and counted.
    fn read_refusal(&mut self) -> Option<String> {
        self.refresh_grant();
        if self.grant.read {
            return None;
        }
        let peer = self.reg.entry.addr;
        self.logged.refuse(
            &self.shared.refused,
            Refusal::ReadNotAllowed,
            peer,
            "SeedLink: ",
            "a read: address not in access.read",
        );
        Some(format!("address {} may not read this orb", peer.ip()))
    }

    /// Refuses an INFO request the SeedLink 3 way: INFO frames of channel `ERR`
    /// (see `frame::InfoKind::Error`), never a text reply.
    fn info_refusal(&self, code: &str, msg: &str, out: &mut Messages) {
        frame::each_info_frame(
            &info::error_xml(&self.shared, code, msg),
            InfoKind::Error,
            |f| out.push(f),
        );
    }

    /// Refuses a SeedLink 4 INFO request: a JSON frame of subformat `E`.
    fn info_v4_refusal(&self, code: &str, msg: &str, out: &mut Messages) {
        let doc = info_json::error(code, msg);
        out.message(|b| v4::frame(b, v4::FORMAT_JSON, v4::SUB_ERROR, 0, "", doc.as_bytes()));
    }

    /// Parses a command line in the session's protocol version.
    fn parse(&self, line: &[u8]) -> Result<Option<Command>, SeedLinkError> {
        if self.neg.v4 {
            v4::parse(line)
        } else {
            seedlink::parse(line)
        }
    }

    /// Answers a refused INFO line: `ERR` INFO frames in 3.1, a JSON error frame in 4.
    fn refuse_info(&self, code: &str, msg: &str, out: &mut Messages) {
        if self.neg.v4 {
            self.info_v4_refusal(code, msg, out);
        } else {
            self.info_refusal(code, msg, out);
        }
    }

    /// SeedLink 4's `AUTH USERPASS user password` or `AUTH JWT token`, with ringserver
    /// 4's replies; a failure is ERROR AUTH and the connection closed, as ringserver
    /// does. SeedLink 3 has no AUTH (the negotiation answers it as unsupported).
    fn auth(&mut self, req: &AuthRequest, out: &mut Messages) -> Option<Close> {
        let args: Vec<&str> = req.args.iter().map(String::as_str).collect();
        let cred = match (req.method.as_str(), args.as_slice()) {
            ("", _) => {
                out.push(
                    &self
                        .neg
                        .error("ARGUMENTS", "AUTH requires a sub-command (USERPASS or JWT)"),
                );
                return None;
            }
            ("USERPASS", [user, password]) => Credentials::UserPass { user, password },
            ("USERPASS", _) => {
                out.push(
                    &self
                        .neg
                        .error("ARGUMENTS", "AUTH USERPASS requires 2 arguments"),
                );
                return None;
            }
            ("JWT", [token]) => Credentials::Jwt(token),
            ("JWT", _) => {
                out.push(&self.neg.error("ARGUMENTS", "AUTH JWT requires 1 argument"));
                return None;
            }
            _ => {
                out.push(&self.neg.error(
                    "UNSUPPORTED",
                    "Unrecognized AUTH sub-command; use USERPASS or JWT",
                ));
                return None;
            }
        };
        match self
            .shared
            .authenticate(self.reg.entry.addr, "SeedLink: ", cred)
        {
            Ok((id, label)) => {
                self.reg.entry.ident().identity = label;
                self.identity = Some(id);
                self.grant_gen = u64::MAX;
                self.refresh_grant();
                out.push(&self.neg.ok_bytes());
                None
            }
            Err(refused) => {
                out.push(&self.neg.error("AUTH", &refused.message()));
                Some(Close::Error("authentication failed".into()))
            }
        }
    }

    /// Handles one command line of the negotiation.
    fn command(&mut self, line: &[u8], out: &mut Messages) -> Option<Close> {
        let cmd = match self.parse(line) {
            Ok(Some(cmd)) => cmd,
            Ok(None) => return None,
            Err(e) => {
                self.commands += 1;
                tracing::debug!("{}: SeedLink: {e}", self.reg.entry.addr);
                let code = if matches!(e, SeedLinkError::UnknownCommand(_)) {
                    "UNSUPPORTED"
                } else {
                    "ARGUMENTS"
                };
                if is_info(line) {
                    self.refuse_info(code, &e.to_string(), out);
                } else {
                    out.push(&self.neg.error(code, &e.to_string()));
                }
                return None;
            }
        };
        self.commands += 1;
        let needs_read = matches!(
            cmd,
            Command::Data(_)
                | Command::DataV4 { .. }
                | Command::EndFetch
                | Command::Fetch(_)
                | Command::Time { .. }
                | Command::End
                | Command::Cat
        );
        if needs_read && !self.may_read(out) {
            return None;
        }
        if let Command::Station { sta, net } = &cmd {
            // SeedLink 3 takes any station, as ringserver does: a client that connects
            // before a station's first packet must get it when it comes. SeedLink 4
            // refuses one the ring has no packet of (docs/GATEWAYS.md, "Commands").
            // A client that may not read gets OK, and its DATA or END is refused: it
            // cannot learn from STATION which stations the ring has.
            self.refresh_grant();
            if self.neg.v4 && self.grant.read && !station_in_ring(&self.shared, sta, net.as_ref()) {
                out.push(&self.neg.refuse_station(sta, net.as_ref()));
                return None;
            }
        }
        if let Command::Auth(req) = &cmd {
            if self.neg.v4 && self.shared.policy.current().1.takes_auth() {
                return self.auth(req, out);
            }
        }
        match self.neg.handle(cmd) {
            Step::Reply(bytes) => out.push(&bytes),
            Step::Hello => {
                let text = format!("{}\r\n{ORGANIZATION}\r\n", hello_line());
                out.push(text.as_bytes());
            }
            Step::Cat => out.push(&info::cat(&self.shared)),
            Step::Info(level) => self.info(level, out),
            Step::InfoV4 {
                item,
                station,
                stream,
            } => self.info_v4(item, station.as_ref(), stream.as_ref(), out),
            Step::UserAgent { agent, reply } => {
                // Kept whole (the line is at most MAX_LINE bytes): CLIENTS and INFO
                // CONNECTIONS show it.
                self.reg.entry.ident().who = agent;
                out.push(&reply);
            }
            Step::Close => return Some(Close::Done),
            Step::Start(reqs) => self.start_transfer(reqs),
        }
        None
    }

    /// A line sent during the transfer: INFO is answered in the stream (a bad one with
    /// `ERR` frames, which a client waiting for the INFO's last frame needs), BYE
    /// closes, anything else is ignored (a reply would land among the data frames).
    fn command_in_transfer(&mut self, line: &[u8], out: &mut Messages) -> Option<Close> {
        match self.parse(line) {
            Ok(Some(Command::Info(level))) => self.info(level, out),
            Ok(Some(Command::InfoV4 {
                item,
                station,
                stream,
            })) => self.info_v4(item, station.as_ref(), stream.as_ref(), out),
            Ok(Some(Command::Bye)) => return Some(Close::Done),
            Err(e) if is_info(line) => self.refuse_info("ARGUMENTS", &e.to_string(), out),
            Ok(_) | Err(_) => {
                tracing::debug!(
                    "{}: SeedLink: ignored a command during the transfer",
                    self.reg.entry.addr
                );
            }
        }
        None
    }

    /// Answers INFO: ID and CAPABILITIES to anyone, data names to readers,
    /// CONNECTIONS to administrators; refusals are `ERR` INFO frames.
    fn info(&mut self, level: InfoLevel, out: &mut Messages) {
        let data = !matches!(level, InfoLevel::Id | InfoLevel::Capabilities);
        if data {
            if let Some(msg) = self.read_refusal() {
                self.info_refusal("UNAUTHORIZED", &msg, out);
                return;
            }
        }
        if matches!(level, InfoLevel::Connections | InfoLevel::All) && !self.grant.admin {
            RefusalCounters::bump(&self.shared.refused.admin_not_allowed);
            let msg = format!(
                "INFO {} needs admin access: address {} is not in access.admin",
                level.name(),
                self.reg.entry.addr.ip()
            );
            self.info_refusal("UNAUTHORIZED", &msg, out);
            return;
        }
        frame::each_info_frame(&info::xml(&self.shared, level), InfoKind::Info, |f| {
            out.push(f)
        });
    }

    /// Answers SeedLink 4's INFO: ID, FORMATS and CAPABILITIES to anyone, data names
    /// to readers, CONNECTIONS to administrators; refusals are JSON error frames.
    fn info_v4(
        &mut self,
        item: InfoItem,
        station: Option<&(StationPattern, StationPattern)>,
        stream: Option<&Selector>,
        out: &mut Messages,
    ) {
        let data = !matches!(
            item,
            InfoItem::Id | InfoItem::Formats | InfoItem::Capabilities
        );
        if data {
            if let Some(msg) = self.read_refusal() {
                self.info_v4_refusal("UNAUTHORIZED", &msg, out);
                return;
            }
        }
        if item == InfoItem::Connections && !self.grant.admin {
            RefusalCounters::bump(&self.shared.refused.admin_not_allowed);
            let msg = format!(
                "INFO CONNECTIONS needs admin access: address {} is not in access.admin",
                self.reg.entry.addr.ip()
            );
            self.info_v4_refusal("UNAUTHORIZED", &msg, out);
            return;
        }
        let doc = info_json::document(&self.shared, item, station, stream);
        out.message(|b| v4::frame(b, v4::FORMAT_JSON, v4::SUB_INFO, 0, "", doc.as_bytes()));
    }

    fn start_transfer(&mut self, reqs: Vec<StationReq>) {
        {
            let mut ident = self.reg.entry.ident();
            ident.access = "r".into();
            // A reader from now on: CLIENTS shows whether the rules in force still let
            // its address read.
            ident.rights = Some(AskedRights {
                read: true,
                write: false,
                identity: self.identity.clone(),
            });
            ident.select = describe(&reqs);
        }
        self.reg.entry.reads.store(true, Relaxed);
        let feed = Feed::new(
            &self.shared,
            reqs,
            self.reg.entry.addr.to_string(),
            self.neg.v4,
        );
        self.reg.entry.pos.store(feed.pos(), Relaxed);
        self.feed = Some(feed);
    }
}

impl conn::Session for SlSession {
    type Out = Messages;

    fn receive(&mut self, input: &[u8], _now: Now, out: &mut Messages) -> Received {
        let mut used = 0;
        loop {
            let line = match seedlink::split_line(&input[used..]) {
                Ok(Some((line, len))) => {
                    used += len;
                    line
                }
                Ok(None) => {
                    return Received {
                        consumed: used,
                        close: None,
                    }
                }
                Err(e) => {
                    return Received {
                        consumed: used,
                        close: Some(Close::Error(e.to_string())),
                    }
                }
            };
            let close = if self.feed.is_some() {
                self.command_in_transfer(line, out)
            } else {
                self.command(line, out)
            };
            if close.is_some() {
                return Received {
                    consumed: used,
                    close,
                };
            }
        }
    }

    fn fill(&mut self, now: Now, out: &mut Messages, budget: usize) -> conn::Fill {
        self.now = Some(now);
        if self.feed.is_none() {
            return conn::Fill::Waiting;
        }
        self.refresh_grant();
        if !self.grant.read {
            return conn::Fill::Close(Close::Error(
                "read access was withdrawn by a rules reload".into(),
            ));
        }
        let cap = budget.max(4096);
        let feed = self.feed.as_mut().expect("transfer is on");
        let mut fill = Fill::More;
        while fill == Fill::More && out.len() < cap {
            let room = cap - out.len();
            fill = feed.fill(&self.shared, &self.reg, now.wall, out, room);
        }
        match fill {
            Fill::Finished => conn::Fill::Close(Close::Done),
            Fill::More => conn::Fill::Sent,
            Fill::Waiting => conn::Fill::Waiting,
        }
    }

    fn wants_packets(&self) -> bool {
        self.feed.is_some()
    }

    fn deadline(&self) -> Option<std::time::Instant> {
        // A window's end passes without a packet: wake then to end the transfer.
        let (end, now) = (self.feed.as_ref()?.next_window_end()?, self.now?);
        let ahead = end.as_micros().saturating_sub(now.wall.as_micros()).max(0);
        // Just past the end: the window is over when its end is in the past.
        Some(now.mono + std::time::Duration::from_micros(ahead as u64 + 1))
    }

    fn take_appended(&mut self) -> bool {
        false
    }

    fn handshake_done(&self) -> bool {
        self.commands > 0
    }

    fn take_action(&mut self) -> Option<Action> {
        None
    }

    fn complete(&mut self, _outcome: Outcome, _now: Now, _out: &mut Messages) {
        debug_assert!(false, "SeedLink sessions ask for no actions");
    }

    fn farewell(&mut self, _why: Farewell, _out: &mut Messages) {
        // SeedLink has no way to say why unasked; the closed connection says it.
    }

    fn finish(&mut self) {
        if let Some(feed) = self.feed.as_ref().filter(|f| f.skipped() > 0) {
            tracing::info!(
                "{}: SeedLink transfer skipped {} packets that could not be served as miniSEED",
                self.reg.entry.addr,
                feed.skipped()
            );
        }
    }
}

/// True if the ring has a packet of a station `net`/`sta` match (a `STATION` for
/// anything else is refused, docs/GATEWAYS.md "Commands").
fn station_in_ring(shared: &Hub, sta: &StationPattern, net: Option<&StationPattern>) -> bool {
    shared.ring.sources().iter().any(|src| {
        let parts = src.srcname.parts();
        parts.sta.is_some_and(|s| sta.matches(s)) && net.is_none_or(|n| n.matches(parts.net))
    })
}

/// True if a refused line was an INFO request (an unknown level, a bad station or
/// stream pattern in v4, or none): it is answered with INFO frames (`ERR` in 3.1, a
/// JSON error in 4), not a text reply, which a client waiting for INFO would not read.
fn is_info(line: &[u8]) -> bool {
    let word = line
        .split(|b| b.is_ascii_whitespace())
        .find(|w| !w.is_empty())
        .unwrap_or_default();
    word.eq_ignore_ascii_case(b"INFO")
}

/// The requests in one line for CLIENTS' select column: `NET_STA:selectors` per
/// station, `*` for any.
fn describe(reqs: &[StationReq]) -> String {
    reqs.iter()
        .map(|r| {
            let pat = |p: &Option<formats::seedlink::StationPattern>| {
                p.as_ref()
                    .map_or("*".to_string(), |p| p.as_str().to_string())
            };
            let mut s = format!("{}_{}", pat(&r.net), pat(&r.sta));
            if !r.selectors.is_empty() {
                let sels: Vec<String> = r
                    .selectors
                    .iter()
                    .map(|x| {
                        format!(
                            "{}{}{}{}",
                            if x.negate { "!" } else { "" },
                            x.loc.as_deref().unwrap_or(""),
                            x.chan,
                            x.kind
                                .map(|k| format!(".{}", char::from(k)))
                                .unwrap_or_default()
                        )
                    })
                    .collect();
                s.push(':');
                s.push_str(&sels.join(" "));
            }
            s
        })
        .collect::<Vec<_>>()
        .join(",")
}
