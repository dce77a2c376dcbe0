//! [`OrbClient`]: one session with an orb server, request by request.
//!
//! Each request gets a fresh tag and waits for the reply with that tag; requests are
//! answered in order (PROTOCOL.md, "Tags"), so one outstanding request at a time needs
//! no reordering. The exceptions are [`OrbClient::put_pipelined`] (and
//! [`OrbClient::put_acked`]), which keep many PUTs in flight, and [`OrbClient::reap`], which hands the session to a
//! [`ReapStream`](crate::ReapStream).

use std::borrow::Borrow;
use std::time::{Duration, Instant};

use formats::proto::info::{ClientsInfo, ServerStat, SourcesInfo};
use formats::proto::{Access, Body, ErrorCode, Frame, PutPacket, Whence, PROTOCOL_VERSION};
use formats::{Packet, SrcName, Time};
use tokio::net::TcpStream;

use crate::connection::{Connection, ServerMsg, Welcome};
use crate::error::{ClientError, Result};
use crate::put::{FrameLimits, PutAck, PutPipeline, PutSummary};
use crate::tls::{ClientStream, TlsOptions};
use crate::OrbAddr;

/// Largest frame a client accepts by default. Larger than the server's 1 MiB packet
/// limit because INFO documents (SOURCES of a big network) can be several MiB; the
/// server is trusted more than the server trusts its clients.
pub const DEFAULT_CLIENT_MAX_FRAME: u32 = 64 << 20;

/// How to open a session.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Who runs the client, `user@host`; `None`: from `$USER` and `$HOSTNAME`.
    pub who: Option<String>,
    /// What program it is; `None`: this executable's name.
    pub what: Option<String>,
    /// Access to ask for.
    pub access: Access,
    /// Limit for the TCP connect plus HELLO/WELCOME.
    pub connect_timeout: Duration,
    /// Limit for each request's reply (`None`: wait forever). Pipelined puts and reap
    /// streams are not limited by it.
    pub request_timeout: Option<Duration>,
    /// Largest frame accepted from the server.
    pub max_frame: u32,
    /// Access token sent in HELLO (docs/SECURITY.md); `None`: send none.
    /// [`ClientOptions::for_program`] takes it from `$ORB_TOKEN`.
    pub token: Option<String>,
    /// How to check a `tls://` server and what to present to it;
    /// [`ClientOptions::for_program`] takes it from `$ORB_TLS_CA`, `$ORB_TLS_CERT` and
    /// `$ORB_TLS_KEY`. Unused for plaintext addresses.
    pub tls: TlsOptions,
}

/// The environment variable every tool takes its access token from.
pub const TOKEN_ENV: &str = "ORB_TOKEN";

/// The token in the environment variable `var`, if set and not empty.
pub fn token_from_env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|t| !t.is_empty())
}

impl Default for ClientOptions {
    /// Read and write access, 10 s to connect, 60 s per reply.
    fn default() -> ClientOptions {
        ClientOptions {
            who: None,
            what: None,
            access: Access {
                read: true,
                write: true,
            },
            connect_timeout: Duration::from_secs(10),
            request_timeout: Some(Duration::from_secs(60)),
            max_frame: DEFAULT_CLIENT_MAX_FRAME,
            token: None,
            tls: TlsOptions::default(),
        }
    }
}

impl ClientOptions {
    /// Defaults with the given program name as `what` and the token from `$ORB_TOKEN`,
    /// so that every tool authenticates without a flag of its own.
    pub fn for_program(what: &str) -> ClientOptions {
        ClientOptions {
            what: Some(what.to_owned()),
            token: token_from_env(TOKEN_ENV),
            tls: TlsOptions::from_env(),
            ..ClientOptions::default()
        }
    }

    /// The same options with the given access.
    pub fn with_access(self, read: bool, write: bool) -> ClientOptions {
        ClientOptions {
            access: Access { read, write },
            ..self
        }
    }
}

/// Which INFO document to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoKind {
    /// STAT: server summary ([`ServerStat`]).
    Stat,
    /// SOURCES: per-source table ([`SourcesInfo`]).
    Sources,
    /// CLIENTS: per-client table ([`ClientsInfo`]).
    Clients,
}

/// A session with an orb server. Not `Clone`: one session, one TCP connection.
#[derive(Debug)]
pub struct OrbClient {
    pub(crate) conn: Connection,
    addr: OrbAddr,
    welcome: Welcome,
    next_tag: u32,
    pub(crate) request_timeout: Option<Duration>,
}

impl OrbClient {
    /// Connects and says HELLO; fails unless the server answers WELCOME.
    pub async fn connect(addr: &OrbAddr, opts: &ClientOptions) -> Result<OrbClient> {
        match tokio::time::timeout(opts.connect_timeout, OrbClient::open(addr, opts)).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Connect {
                addr: addr.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no WELCOME within {:?}", opts.connect_timeout),
                ),
            }),
        }
    }

    async fn open(addr: &OrbAddr, opts: &ClientOptions) -> Result<OrbClient> {
        let stream = TcpStream::connect((addr.host.as_str(), addr.port))
            .await
            .map_err(|source| ClientError::Connect {
                addr: addr.clone(),
                source,
            })?;
        let stream: ClientStream = if addr.tls {
            ClientStream::Tls(Box::new(
                crate::tls::connect(stream, addr, &opts.tls).await?,
            ))
        } else {
            stream.into()
        };
        let mut conn = Connection::new(stream, opts.max_frame);
        let who = opts.who.clone().unwrap_or_else(default_who);
        let what = opts.what.clone().unwrap_or_else(default_what);
        let tag = 1;
        conn.queue(&Frame {
            tag,
            body: Body::Hello {
                version: PROTOCOL_VERSION,
                access: opts.access,
                pid: std::process::id(),
                who: truncate(&who, 255),
                what: truncate(&what, 255),
                // Not truncated: a cut token would only fail as an unknown one.
                token: opts.token.as_deref(),
            },
        });
        // Over TLS 1.3 the server checks a client certificate after the client's side
        // of the handshake is done: its refusal arrives as the answer to HELLO.
        // A plaintext client of a TLS port gets a TLS alert back: say so, not "bad frame".
        let tls_err = |e: ClientError, conn: &Connection| {
            if !addr.tls && conn.received_tls_record() {
                return ClientError::Tls {
                    addr: addr.clone(),
                    why: format!(
                        "the server answered in TLS: write tls://{addr} (and set $ORB_TLS_CA to its CA)"
                    ),
                };
            }
            crate::tls::tls_failure(e, addr)
        };
        if let Err(e) = conn.flush().await {
            return Err(tls_err(e, &conn));
        }
        let reply = match conn.read_frame().await {
            Ok(r) => r,
            Err(e) => return Err(tls_err(e, &conn)),
        };
        let welcome = match reply.msg {
            ServerMsg::Welcome(w) if reply.tag == tag => w,
            ServerMsg::Error { code, message } => {
                return Err(ClientError::Server { code, message })
            }
            other => return Err(unexpected("WELCOME", reply.tag, &other)),
        };
        // The server may send packets as large as it accepts them.
        let need = welcome.max_packet.saturating_add(4096);
        conn.set_max_frame(conn.max_frame().max(need));
        Ok(OrbClient {
            conn,
            addr: addr.clone(),
            welcome,
            next_tag: tag + 1,
            request_timeout: opts.request_timeout,
        })
    }

    /// What the server said in WELCOME.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// The largest frame (`len` value, so the whole frame is 4 bytes more) the server
    /// accepts: WELCOME's `max_packet` + 64 KiB (PROTOCOL.md, "Frame size limits").
    /// A PUT frame of several packets must stay within it.
    pub fn max_frame(&self) -> u32 {
        formats::proto::server_max_frame(self.welcome.max_packet)
    }

    /// The address this client connected to.
    pub fn addr(&self) -> &OrbAddr {
        &self.addr
    }

    /// A fresh tag; 0 is skipped because the server uses it for unsolicited errors.
    pub(crate) fn tag(&mut self) -> u32 {
        let t = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1).max(1);
        t
    }

    /// Sends one request frame and returns its tag.
    pub(crate) async fn send(&mut self, body: Body<'_>) -> Result<u32> {
        let tag = self.tag();
        self.conn.queue(&Frame { tag, body });
        self.conn.flush().await?;
        Ok(tag)
    }

    /// Waits for the reply to `tag`; ERROR becomes [`ClientError::Server`].
    pub(crate) async fn reply(&mut self, tag: u32, what: &'static str) -> Result<ServerMsg> {
        let Some(limit) = self.request_timeout else {
            return self.reply_untimed(tag).await;
        };
        match tokio::time::timeout(limit, self.reply_untimed(tag)).await {
            Ok(r) => r,
            Err(_) => {
                // A late reply would arrive out of step with the next request.
                self.conn.poison();
                Err(ClientError::Timeout { what, after: limit })
            }
        }
    }

    async fn reply_untimed(&mut self, tag: u32) -> Result<ServerMsg> {
        let f = self.conn.read_frame().await?;
        match f.msg {
            ServerMsg::Error { code, message } if f.tag == tag || f.tag == 0 => {
                if code.is_fatal() {
                    self.conn.poison();
                }
                Err(ClientError::Server { code, message })
            }
            msg if f.tag == tag => Ok(msg),
            msg => {
                // Replies and requests are out of step; later replies cannot be trusted.
                self.conn.poison();
                Err(unexpected("a reply", f.tag, &msg))
            }
        }
    }

    async fn request(&mut self, body: Body<'_>, what: &'static str) -> Result<ServerMsg> {
        let tag = self.send(body).await?;
        self.reply(tag, what).await
    }

    fn check_payload(&self, len: usize) -> Result<()> {
        if len > self.welcome.max_packet as usize {
            return Err(ClientError::PacketTooLarge {
                len,
                max: self.welcome.max_packet,
            });
        }
        Ok(())
    }

    /// Puts one packet; returns its pktid.
    pub async fn put(&mut self, srcname: &SrcName, time: Time, payload: &[u8]) -> Result<u64> {
        self.check_payload(payload.len())?;
        let p = PutPacket {
            srcname: srcname.as_str(),
            time,
            payload,
        };
        let tag = self.tag();
        self.conn.queue_put(tag, false, [p]);
        self.conn.flush().await?;
        put_ok(self.reply(tag, "PUT").await?, 1)
    }

    /// Puts `packets` in one PUT frame (their `pktid` fields are ignored); returns the
    /// first pktid: they get consecutive pktids. With `durable`, returns only once the
    /// server has them on disk. The whole batch must fit in one frame of the server's
    /// size limit, `max_packet` + 64 KiB; a larger batch is refused before sending.
    pub async fn put_batch(&mut self, packets: &[Packet], durable: bool) -> Result<u64> {
        if packets.is_empty() {
            return Err(ClientError::BadRequest(
                "a put needs at least one packet".into(),
            ));
        }
        for p in packets {
            self.check_payload(p.payload.len())?;
        }
        let count = u32::try_from(packets.len())
            .map_err(|_| ClientError::BadRequest("more than 2^32 packets in one put".into()))?;
        let before = self.conn.queued();
        let tag = self.tag();
        self.conn
            .queue_put(tag, durable, packets.iter().map(put_packet));
        let len = self.conn.queued() - before - 4;
        let limit = self.max_frame();
        if len > limit as usize {
            self.conn.unqueue_to(before);
            return Err(ClientError::BadRequest(format!(
                "a batch of {count} packets is a {len} byte frame, over the server's limit of \
                 {limit}; put fewer packets per batch"
            )));
        }
        self.conn.flush().await?;
        put_ok(self.reply(tag, "PUT").await?, count)
    }

    /// Puts every packet of `packets`, pipelined: consecutive packets share PUT frames
    /// (up to [`FRAME_PACKETS`](crate::put::FRAME_PACKETS) packets and
    /// [`FRAME_BYTES`](crate::put::FRAME_BYTES) of payload, within the server's frame
    /// limit [`max_frame`](Self::max_frame)), and up to `window` frames are kept
    /// unacknowledged: frames are written in large batches while PUT_OKs are read, so
    /// throughput is bounded by bandwidth, not round trips. A frame goes out as soon as
    /// the iterator has no more packets for it; nothing waits for a frame to fill.
    /// Returns the first and last pktid stored and the count (other writers may
    /// interleave, so pktids need not be consecutive).
    ///
    /// On an error it stops sending, collects the replies still owed, then returns the
    /// first error. Packets acknowledged before the error (and in frames answered
    /// after it) are stored; the packets of a refused frame are not, even those that
    /// alone would have been accepted (the server stores all of a PUT or none of it);
    /// a payload over `max_packet` is refused here, before it is sent. See
    /// [`put`](crate::put) for the exact accounting, and [`put_acked`](Self::put_acked)
    /// for the pktids' contiguity.
    pub async fn put_pipelined<I>(&mut self, packets: I, window: usize) -> Result<PutSummary>
    where
        I: IntoIterator,
        I::Item: Borrow<Packet>,
    {
        self.put_acked(packets, window).await.map(|a| a.summary())
    }

    /// [`put_pipelined`](Self::put_pipelined), returning what the server acknowledged
    /// as a [`PutAck`], which also says whether the pktids were contiguous (no other
    /// writer's packet between the first and the last of ours).
    pub async fn put_acked<I>(&mut self, packets: I, window: usize) -> Result<PutAck>
    where
        I: IntoIterator,
        I::Item: Borrow<Packet>,
    {
        let mut p = PutPipeline::new(
            packets.into_iter(),
            window,
            self.next_tag,
            FrameLimits::for_server(self.welcome.max_packet),
        );
        let r = self.conn.run_pipeline(&mut p).await;
        let (next_tag, ack, error) = p.finish();
        self.next_tag = next_tag;
        r?;
        match error {
            Some(e) => Err(e),
            None => Ok(ack),
        }
    }

    /// Replaces the select expression (empty: all); returns the matching sources.
    pub async fn select(&mut self, expr: &str) -> Result<u32> {
        check_expr(expr)?;
        match self.request(Body::Select { expr }, "SELECT").await? {
            ServerMsg::Selected { nsources } => Ok(nsources),
            other => Err(unexpected("SELECTED", 0, &other)),
        }
    }

    /// Replaces the reject expression (empty: none); returns the matching sources.
    pub async fn reject(&mut self, expr: &str) -> Result<u32> {
        check_expr(expr)?;
        match self.request(Body::Reject { expr }, "REJECT").await? {
            ServerMsg::Selected { nsources } => Ok(nsources),
            other => Err(unexpected("SELECTED", 0, &other)),
        }
    }

    /// Moves the read position (`pktid` is used only with [`Whence::Pktid`]); returns
    /// the new position.
    pub async fn seek(&mut self, whence: Whence, pktid: u64) -> Result<u64> {
        let pktid = if whence == Whence::Pktid { pktid } else { 0 };
        position(self.request(Body::Seek { whence, pktid }, "SEEK").await?)
    }

    /// Moves the read position to the first packet (in ring order) whose time is at
    /// or after `time`; returns the new position.
    pub async fn after(&mut self, time: Time) -> Result<u64> {
        position(self.request(Body::After { time }, "AFTER").await?)
    }

    /// The read position.
    pub async fn tell(&mut self) -> Result<u64> {
        position(self.request(Body::Tell, "TELL").await?)
    }

    /// Antelope's `orbposition`: `oldest`, `newest`, a pktid (digits only), or a time
    /// (ISO 8601, epoch seconds with a `.`, or relative like `-10m`) for AFTER.
    /// Returns the new position. A bare integer is a pktid, never epoch seconds:
    /// write `1763805600.0` for a time.
    pub async fn position(&mut self, spec: &str) -> Result<u64> {
        match parse_position(spec)? {
            Position::Seek(w, p) => self.seek(w, p).await,
            Position::After(t) => self.after(t).await,
        }
    }

    /// The packet with this pktid (select/reject do not apply), or `None` if it is not
    /// in the ring. The read position does not move.
    pub async fn get(&mut self, pktid: u64) -> Result<Option<Packet>> {
        let body = Body::Get {
            current: false,
            pktid,
        };
        get_reply(self.request(body, "GET").await)
    }

    /// The current packet (the first matching one at or after the read position), or
    /// `None` if there is none yet. The read position does not move.
    pub async fn get_current(&mut self) -> Result<Option<Packet>> {
        let body = Body::Get {
            current: true,
            pktid: 0,
        };
        get_reply(self.request(body, "GET").await)
    }

    /// The INFO document `which`, as the server sent it.
    pub async fn info_json(&mut self, which: InfoKind) -> Result<String> {
        let (body, what) = match which {
            InfoKind::Stat => (Body::Stat, "STAT"),
            InfoKind::Sources => (Body::Sources, "SOURCES"),
            InfoKind::Clients => (Body::Clients, "CLIENTS"),
        };
        match self.request(body, what).await? {
            ServerMsg::Info(json) => Ok(json),
            other => Err(unexpected("INFO", 0, &other)),
        }
    }

    /// Server summary.
    pub async fn stat(&mut self) -> Result<ServerStat> {
        parse_info(&self.info_json(InfoKind::Stat).await?, "STAT")
    }

    /// Per-source table.
    pub async fn sources(&mut self) -> Result<SourcesInfo> {
        parse_info(&self.info_json(InfoKind::Sources).await?, "SOURCES")
    }

    /// Per-client table.
    pub async fn clients(&mut self) -> Result<ClientsInfo> {
        parse_info(&self.info_json(InfoKind::Clients).await?, "CLIENTS")
    }

    /// Closes the connection of the client with this id (as [`OrbClient::clients`]
    /// lists it); the server tells that client an administrator closed it. Needs admin
    /// access (docs/SECURITY.md): otherwise [`ClientError::Server`] with
    /// [`ErrorCode::NotAllowed`]; [`ErrorCode::NotFound`] if no such client is
    /// connected, [`ErrorCode::BadState`] for this session's own id.
    pub async fn kill_client(&mut self, client_id: u64) -> Result<()> {
        match self.request(Body::Kill { client_id }, "KILL").await? {
            ServerMsg::Killed { client_id: id } if id == client_id => Ok(()),
            other => Err(unexpected("KILLED with our client id", 0, &other)),
        }
    }

    /// Makes the server re-read its config file's `[access]` rules, as SIGHUP does;
    /// returns the server's one-line summary of what it loaded. Needs admin access. A
    /// bad file gives [`ErrorCode::BadConfig`] with the reason, and the old rules stay.
    pub async fn reload(&mut self) -> Result<String> {
        match self.request(Body::Reload, "RELOAD").await? {
            ServerMsg::Reloaded(summary) => Ok(summary),
            other => Err(unexpected("RELOADED", 0, &other)),
        }
    }

    /// Round-trip time of a PING.
    pub async fn ping(&mut self) -> Result<Duration> {
        let nonce = u64::from(self.next_tag) << 32 | u64::from(std::process::id());
        let start = Instant::now();
        match self.request(Body::Ping { nonce }, "PING").await? {
            ServerMsg::Pong { nonce: n, .. } if n == nonce => Ok(start.elapsed()),
            other => Err(unexpected("PONG with our nonce", 0, &other)),
        }
    }
}

/// Where [`OrbClient::position`] moves the read position, read from Antelope-style
/// text by [`Position::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// SEEK with this whence (and pktid, for [`Whence::Pktid`]).
    Seek(Whence, u64),
    /// AFTER this time.
    After(Time),
}

impl Position {
    /// `oldest`, `newest`, a pktid (digits only), or a time for [`Time::parse`]
    /// (relative times are resolved against `now`).
    pub fn parse(spec: &str, now: Time) -> Result<Position> {
        let s = spec.trim();
        Ok(match s {
            "oldest" => Position::Seek(Whence::Oldest, 0),
            "newest" => Position::Seek(Whence::Newest, 0),
            _ if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                let p = s
                    .parse()
                    .map_err(|_| ClientError::BadRequest(format!("pktid {s} is out of range")))?;
                Position::Seek(Whence::Pktid, p)
            }
            _ => match Time::parse(s, now) {
                Ok(t) => Position::After(t),
                Err(e) => {
                    return Err(ClientError::BadRequest(format!(
                        "position {spec:?} is not oldest, newest, a pktid or a time: {e}"
                    )))
                }
            },
        })
    }
}

fn parse_position(spec: &str) -> Result<Position> {
    Position::parse(spec, Time::now())
}

pub(crate) fn put_packet(p: &Packet) -> PutPacket<'_> {
    PutPacket {
        srcname: p.srcname.as_str(),
        time: p.time,
        payload: &p.payload,
    }
}

fn put_ok(msg: ServerMsg, count: u32) -> Result<u64> {
    match msg {
        ServerMsg::PutOk {
            first_pktid,
            count: n,
        } if n == count => Ok(first_pktid),
        other => Err(unexpected("PUT_OK", 0, &other)),
    }
}

fn position(msg: ServerMsg) -> Result<u64> {
    match msg {
        ServerMsg::Position { pktid } => Ok(pktid),
        other => Err(unexpected("POSITION", 0, &other)),
    }
}

fn get_reply(r: Result<ServerMsg>) -> Result<Option<Packet>> {
    match r {
        Ok(ServerMsg::Packet(p)) => Ok(Some(p)),
        Ok(other) => Err(unexpected("PACKET", 0, &other)),
        Err(ClientError::Server {
            code: ErrorCode::NotFound,
            ..
        }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn parse_info<T: serde::de::DeserializeOwned>(json: &str, what: &str) -> Result<T> {
    serde_json::from_str(json)
        .map_err(|e| ClientError::Protocol(format!("the {what} document does not parse: {e}")))
}

fn check_expr(expr: &str) -> Result<()> {
    if expr.len() > usize::from(u16::MAX) {
        return Err(ClientError::BadRequest(format!(
            "expression of {} bytes is too long for a frame",
            expr.len()
        )));
    }
    Ok(())
}

/// A protocol error naming what was expected and what came.
pub(crate) fn unexpected(expected: &str, tag: u32, got: &ServerMsg) -> ClientError {
    let got = match got {
        ServerMsg::Welcome(_) => "WELCOME",
        ServerMsg::PutOk { .. } => "PUT_OK",
        ServerMsg::Selected { .. } => "SELECTED",
        ServerMsg::Position { .. } => "POSITION",
        ServerMsg::Packet(_) => "PACKET",
        ServerMsg::Gap { .. } => "GAP",
        ServerMsg::ReapEnd(_) => "REAP_END",
        ServerMsg::Info(_) => "INFO",
        ServerMsg::Pong { .. } => "PONG",
        ServerMsg::Killed { .. } => "KILLED",
        ServerMsg::Reloaded(_) => "RELOADED",
        ServerMsg::Error { .. } => "ERROR",
    };
    ClientError::Protocol(format!("expected {expected}, got {got} (tag {tag})"))
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `user@host` from `$USER` (or `$LOGNAME`) and `$HOSTNAME` (or `/etc/hostname`).
pub fn default_who() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{user}@{host}")
}

/// This executable's file name, for HELLO's `what`.
pub fn default_what() -> String {
    std::env::args_os()
        .next()
        .as_ref()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "orbclient".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_like_orbposition() {
        assert_eq!(
            parse_position("oldest").unwrap(),
            Position::Seek(Whence::Oldest, 0)
        );
        assert_eq!(
            parse_position("newest").unwrap(),
            Position::Seek(Whence::Newest, 0)
        );
        assert_eq!(
            parse_position("42").unwrap(),
            Position::Seek(Whence::Pktid, 42)
        );
        assert_eq!(
            parse_position("1763805600.5").unwrap(),
            Position::After(Time::from_micros(1_763_805_600_500_000))
        );
        assert_eq!(
            parse_position("2026-11-22T10:00:00Z").unwrap(),
            Position::After(Time::parse_iso8601("2026-11-22T10:00:00Z").unwrap())
        );
        let before = Time::now();
        let Position::After(t) = parse_position("-10m").unwrap() else {
            panic!("relative time is not AFTER");
        };
        assert!(t < before);
        assert!(matches!(
            parse_position("yesterday"),
            Err(ClientError::BadRequest(_))
        ));
        assert!(matches!(
            parse_position("99999999999999999999999"),
            Err(ClientError::BadRequest(_))
        ));
    }

    #[test]
    fn truncate_keeps_char_boundaries() {
        assert_eq!(truncate("abc", 2), "ab");
        assert_eq!(truncate("a\u{e9}", 2), "a");
        assert_eq!(truncate("", 5), "");
    }

    #[test]
    fn who_has_user_and_host() {
        let who = default_who();
        let (u, h) = who.split_once('@').unwrap();
        assert!(!u.is_empty() && !h.is_empty());
    }
}
