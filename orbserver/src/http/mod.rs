//! The HTTP port (docs/HTTP.md): ringserver 4's status resources (`/id`, `/streams`,
//! `/streamids`, `/status`, `/connections`, each also as `/json`), the orbstat documents
//! under `/api/v1/`, decoded packets as JSON Lines, Prometheus metrics at `/metrics`
//! and optional static files from a `web_root`.
//!
//! HTTP is not a [`Session`](crate::conn::Session) on the connection driver: hyper
//! parses requests, keeps connections alive and frames bodies, and a hand-written HTTP
//! parser would be the kind of code that breaks. What HTTP shares with the other ports
//! is everything around the bytes: the accept loop's admission
//! ([`crate::conn::accept_each`]: connect rules, client limits, refusal
//! counters, the client table row with protocol `http` while the connection is open),
//! the access rules (admin-only resources answer 403), KILL and shutdown.
//!
//! - `resources`: the documents, text and JSON
//! - `metrics`: the `/metrics` exposition
//! - `packets`: `/api/v1/packets`, streamed with bounded memory
//! - `envelope`: `/api/v1/envelope`, one channel's min/max per time bin (helicorders)
//! - `files`: static files from `web_root`, with safe path handling
//! - `ui`: the live view at `/` and `/ui/`, embedded in the binary
//! - `ws`: DataLink and SeedLink over WebSocket at `/datalink` and `/seedlink`, the
//!   gateways' own sessions on the connection driver; the upgraded connection keeps
//!   its registration (the client table row switches to `datalink-ws` or
//!   `seedlink-ws`)

mod envelope;
mod files;
mod metrics;
mod packets;
mod resources;
mod ui;
pub mod ws;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, ALLOW, CONTENT_TYPE, USER_AGENT};
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::HttpOptions;
use crate::conn::accept_each;
use crate::hub::clients::Registration;
use crate::hub::policy::{Refusal, RefusalLog};
use crate::hub::{Credentials, Hub};

/// The protocol name of the HTTP port, in the client table and the log.
pub const NAME: &str = "http";

/// Largest request head (request line and headers) accepted; a bigger one is answered
/// 431 and the connection closed. Browsers send well under 8 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Most header lines in one request; more is answered 431.
pub const MAX_HEADERS: usize = 64;

/// How long last words (a graceful close) may take on KILL or shutdown.
const LAST_WORDS: Duration = Duration::from_secs(1);

/// Bad requests on the HTTP port, by kind (`orb_refusals_total{kind="http_..."}`).
#[derive(Debug, Default)]
pub struct HttpCounters {
    /// Requests hyper could not parse (answered 400).
    pub bad_request: AtomicU64,
    /// Request heads over [`MAX_HEADER_BYTES`] or [`MAX_HEADERS`] (answered 431).
    pub headers_too_large: AtomicU64,
    /// Connections closed because a request head did not arrive within the handshake
    /// timeout (slow or idle clients).
    pub header_timeout: AtomicU64,
    /// Paths no resource or file answers (404).
    pub not_found: AtomicU64,
    /// Methods other than GET and HEAD (405).
    pub method_not_allowed: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
    /// Requests for `/datalink` or `/seedlink` that were no valid WebSocket upgrade
    /// (answered 426 or 400).
    pub ws_bad_upgrade: AtomicU64,
    /// WebSocket messages or frames over the size limit (closed with 1009).
    pub ws_too_large: AtomicU64,
    /// Broken WebSocket frames: protocol errors, text that is not UTF-8 (closed with
    /// 1002 or 1007).
    pub ws_bad_frame: AtomicU64,
}

/// Which ports the server listens on, for `/id` and `/status`.
#[derive(Debug, Clone, Default)]
pub struct Ports {
    /// The native port.
    pub orb: Option<SocketAddr>,
    /// The DataLink port.
    pub datalink: Option<SocketAddr>,
    /// The SeedLink port.
    pub seedlink: Option<SocketAddr>,
    /// The HTTP port.
    pub http: Option<SocketAddr>,
}

impl Ports {
    /// The port a protocol's listener is bound to.
    pub fn port_of(&self, protocol: &str) -> Option<u16> {
        match protocol {
            "orb" => self.orb,
            "DataLink" => self.datalink,
            "SeedLink" => self.seedlink,
            NAME | "datalink-ws" | "seedlink-ws" => self.http,
            _ => None,
        }
        .map(|a| a.port())
    }
}

/// What every HTTP connection shares.
pub struct HttpState {
    /// The hub.
    pub hub: Arc<Hub>,
    /// Response headers and the web root.
    pub options: HttpOptions,
    /// The configured headers, parsed once.
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The server's ports.
    pub ports: Ports,
    /// Bad requests by kind.
    pub counters: HttpCounters,
}

impl HttpState {
    /// The state for a server's HTTP port. Header names and values were checked when
    /// the config was read; any that still do not parse are skipped.
    pub fn new(hub: Arc<Hub>, options: HttpOptions, ports: Ports) -> HttpState {
        let headers = options
            .headers
            .iter()
            .filter_map(|(n, v)| {
                Some((
                    HeaderName::from_bytes(n.as_bytes()).ok()?,
                    HeaderValue::from_str(v).ok()?,
                ))
            })
            .collect();
        HttpState {
            hub,
            options,
            headers,
            ports,
            counters: HttpCounters::default(),
        }
    }
}

/// A response body: a whole document, or a stream of chunks from a producer task
/// through a small bounded channel, so a slow client holds the producer back instead of
/// making the server buffer for it.
pub enum HttpBody {
    /// A whole document.
    Full(Full<Bytes>),
    /// Chunks as they are produced.
    Stream(mpsc::Receiver<Bytes>),
}

impl Body for HttpBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            HttpBody::Full(f) => Pin::new(f).poll_frame(cx),
            HttpBody::Stream(rx) => rx.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            HttpBody::Full(f) => f.is_end_stream(),
            HttpBody::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            HttpBody::Full(f) => f.size_hint(),
            HttpBody::Stream(_) => SizeHint::default(),
        }
    }
}

/// A whole response with this status, content type and body.
pub(crate) fn respond(
    status: StatusCode,
    ctype: &str,
    body: impl Into<Bytes>,
) -> Response<HttpBody> {
    let mut r = Response::new(HttpBody::Full(Full::new(body.into())));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(ctype) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

/// A plain-text error answer: the status line's words and why.
pub(crate) fn error(status: StatusCode, why: &str) -> Response<HttpBody> {
    respond(
        status,
        "text/plain; charset=utf-8",
        format!(
            "{} {}: {why}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
    )
}

/// Words for a refused connection: a 503 with the reason, then the close.
fn refusal(msg: &str) -> Vec<u8> {
    let body = format!("503 Service Unavailable: {msg}\n");
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Accepts HTTP connections until `shutdown` is cancelled, through the same admission
/// as every other port.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Option<Arc<crate::conn::TlsListener>>,
    state: Arc<HttpState>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let hub = Arc::clone(&state.hub);
    let conn_shutdown = shutdown.clone();
    let conn_tracker = tracker.clone();
    accept_each(
        listener,
        tls,
        hub,
        shutdown,
        tracker,
        NAME,
        refusal,
        move |stream, peer, reg| {
            serve(
                stream,
                peer,
                reg,
                Arc::clone(&state),
                conn_shutdown.clone(),
                conn_tracker.clone(),
            )
        },
    )
    .await
}

/// Serves one admitted connection (keep-alive: any number of requests) until the client
/// closes it, breaks HTTP, is too slow, is killed or the server shuts down. The
/// registration, and so the client table row, lives exactly as long.
async fn serve(
    stream: crate::conn::Stream,
    peer: SocketAddr,
    reg: Registration,
    state: Arc<HttpState>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    if let crate::conn::Stream::Plain(s) = &stream {
        let _ = s.set_nodelay(true);
    }
    reg.entry.ident().what = "HTTP client".into();
    let reg = Arc::new(Conn {
        reg,
        refusals: Mutex::new(RefusalLog::default()),
        upgrade: Mutex::new(None),
    });
    let kill = reg.entry.kill.clone();
    let service = {
        let reg = Arc::clone(&reg);
        let state = Arc::clone(&state);
        let tracker = tracker.clone();
        let stop = shutdown.child_token();
        let kill = kill.clone();
        service_fn(move |req| {
            let reg = Arc::clone(&reg);
            let state = Arc::clone(&state);
            let tracker = tracker.clone();
            let stop = stop.clone();
            let kill = kill.clone();
            async move {
                let r = handle(&state, &reg, peer, req, &tracker, stop, kill);
                Ok::<_, Infallible>(r)
            }
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.hub.limits.handshake_timeout)
        .max_headers(MAX_HEADERS)
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(MAX_HEADER_BYTES.max(8192));
    // Boxed, not pinned on the stack: an upgraded connection drops it (and the service
    // holding the registration) before the WebSocket takes over.
    let mut conn = Box::pin(
        builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades(),
    );
    let ended = tokio::select! {
        r = conn.as_mut() => Some(r),
        _ = kill.cancelled() => None,
        _ = shutdown.cancelled() => None,
    };
    let result = match ended {
        Some(r) => r,
        None => {
            // Finish the request in flight, if any, then close.
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(LAST_WORDS, conn.as_mut()).await {
                Ok(r) => r,
                Err(_) => Ok(()),
            }
        }
    };
    let c = &state.counters;
    match result {
        Ok(()) => tracing::debug!("{peer}: {NAME}: closed"),
        Err(e) if e.is_parse_too_large() => {
            c.headers_too_large.fetch_add(1, Relaxed);
            tracing::info!("{peer}: {NAME}: request head too large (431): {e}");
        }
        Err(e) if e.is_parse() => {
            c.bad_request.fetch_add(1, Relaxed);
            tracing::info!("{peer}: {NAME}: malformed request (400): {e}");
        }
        Err(e) if e.is_timeout() => {
            c.header_timeout.fetch_add(1, Relaxed);
            tracing::warn!("{peer}: {NAME}: no complete request head within the handshake timeout");
        }
        Err(e) => tracing::debug!("{peer}: {NAME}: {e}"),
    }
    let upgrade = reg.upgrade.lock().unwrap_or_else(|p| p.into_inner()).take();
    let Some(upgrade) = upgrade else {
        return;
    };
    // The connection was handed over to the WebSocket: the service and with it every
    // other holder of the registration are gone once hyper's connection is.
    drop(conn);
    match Arc::try_unwrap(reg) {
        Ok(c) => ws::serve(upgrade, peer, c.reg, state, shutdown).await,
        Err(_) => tracing::error!(
            "{peer}: {NAME}: the upgraded connection's registration is still shared; closing it"
        ),
    }
}

/// One connection's registration and refusal log: every refusal is counted, the first
/// of each kind per connection logged, so a page polling a forbidden resource over
/// keep-alive writes one log line, not one per poll.
struct Conn {
    reg: Registration,
    refusals: Mutex<RefusalLog>,
    /// A WebSocket upgrade answered 101, for `serve` to run once hyper lets go.
    upgrade: Mutex<Option<ws::Pending>>,
}

impl std::ops::Deref for Conn {
    type Target = Registration;
    fn deref(&self) -> &Registration {
        &self.reg
    }
}

/// What a request may see, from the rules in force now (a RELOAD applies at once):
/// the address's rights, and those of an `Authorization: Bearer` credential.
struct Rights {
    read: bool,
    admin: bool,
}

/// Answers one request.
fn handle(
    state: &Arc<HttpState>,
    reg: &Arc<Conn>,
    peer: SocketAddr,
    mut req: Request<Incoming>,
    tracker: &TaskTracker,
    stop: CancellationToken,
    kill: CancellationToken,
) -> Response<HttpBody> {
    let c = &state.counters;
    c.requests.fetch_add(1, Relaxed);
    if let Some(agent) = req.headers().get(USER_AGENT).and_then(|v| v.to_str().ok()) {
        let mut ident = reg.entry.ident();
        if ident.who != agent {
            ident.who = agent.chars().take(64).collect();
        }
    }
    let mut resp = if req.method() != Method::GET && req.method() != Method::HEAD {
        c.method_not_allowed.fetch_add(1, Relaxed);
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "this server answers GET and HEAD only",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        r
    } else if let Err(r) = bearer(state, reg, peer, &req) {
        r
    } else if let Some(p) = ws::WsProtocol::at(req.uri().path()) {
        // Rights are the session's to check, command by command, as on its TCP port;
        // it starts from the bearer credential's identity, if one was sent.
        ws::respond(state, p, &mut req, &reg.upgrade)
    } else {
        let (_, rules) = state.hub.policy.current();
        let proven = reg.entry.ident().proven.clone();
        let g = rules.grant(peer.ip(), proven.as_ref());
        let rights = Rights {
            read: g.read,
            admin: g.admin,
        };
        route(state, reg, peer, &req, &rights, tracker, stop, kill)
    };
    for (n, v) in &state.headers {
        resp.headers_mut().insert(n.clone(), v.clone());
    }
    resp
}

/// Checks an `Authorization: Bearer` header, if the request has one: a configured
/// token or a JWT (docs/HTTP.md, "Bearer tokens"). The identity is kept on the
/// connection (a WebSocket session starts from it); a credential that fails is 401, as
/// RFC 6750 says, and counts as a failed authentication.
fn bearer(
    state: &HttpState,
    reg: &Conn,
    peer: SocketAddr,
    req: &Request<Incoming>,
) -> Result<(), Response<HttpBody>> {
    let Some(value) = req.headers().get(http::header::AUTHORIZATION) else {
        return Ok(());
    };
    let unauthorized = |msg: &str, challenge: &'static str| {
        let mut r = error(StatusCode::UNAUTHORIZED, msg);
        r.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
        r
    };
    let credential = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, c)| c.trim());
    let Some(credential) = credential.filter(|c| !c.is_empty()) else {
        return Err(unauthorized(
            "send Authorization: Bearer TOKEN (a token or a JWT); other schemes are not taken",
            "Bearer realm=\"orb\"",
        ));
    };
    match state
        .hub
        .authenticate(peer, "http: ", Credentials::Bearer(credential))
    {
        Ok((id, label)) => {
            let mut ident = reg.entry.ident();
            ident.identity = label;
            ident.proven = Some(id);
            Ok(())
        }
        Err(refused) => Err(unauthorized(
            &refused.message(),
            "Bearer realm=\"orb\", error=\"invalid_token\"",
        )),
    }
}

/// Counts a refusal of `kind`, logs it if it is the connection's first of its kind, and
/// answers 403.
fn forbidden(
    state: &HttpState,
    conn: &Conn,
    peer: SocketAddr,
    kind: Refusal,
    what: &str,
) -> Response<HttpBody> {
    conn.refusals
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .refuse(&state.hub.refused, kind, peer, "http: ", what);
    let why = match kind {
        Refusal::AdminNotAllowed => {
            "this resource needs admin rights; ask the operator to add your address to access.admin"
        }
        _ => "your address may not read from this orb; ask the operator to add it to access.read",
    };
    error(StatusCode::FORBIDDEN, why)
}

#[allow(clippy::too_many_arguments)]
fn route(
    state: &Arc<HttpState>,
    reg: &Arc<Conn>,
    peer: SocketAddr,
    req: &Request<Incoming>,
    rights: &Rights,
    tracker: &TaskTracker,
    stop: CancellationToken,
    kill: CancellationToken,
) -> Response<HttpBody> {
    let path = req.uri().path();
    let query = Query::parse(req.uri().query().unwrap_or(""));
    let json = "application/json";
    let text = "text/plain; charset=utf-8";
    let hub = &state.hub;
    let matching = match resources::matching(&query) {
        Ok(m) => m,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why),
    };
    match path {
        "/id" => respond(StatusCode::OK, text, resources::id_text(state)),
        "/id/json" => respond(StatusCode::OK, json, resources::id_json(state)),
        "/streams" | "/streams/json" | "/streamids" | "/streamids/json" if !rights.read => {
            forbidden(
                state,
                reg,
                peer,
                Refusal::ReadNotAllowed,
                "a stream list over HTTP",
            )
        }
        "/streams" => respond(
            StatusCode::OK,
            text,
            resources::streams_text(hub, matching.as_ref()),
        ),
        "/streams/json" => respond(
            StatusCode::OK,
            json,
            resources::streams_json(state, matching.as_ref()),
        ),
        "/streamids" => respond(
            StatusCode::OK,
            text,
            resources::streamids_text(hub, matching.as_ref()),
        ),
        "/streamids/json" => respond(
            StatusCode::OK,
            json,
            resources::streamids_json(state, matching.as_ref()),
        ),
        "/status" | "/status/json" | "/connections" | "/connections/json" | "/api/v1/clients"
            if !rights.admin =>
        {
            forbidden(
                state,
                reg,
                peer,
                Refusal::AdminNotAllowed,
                &format!("{path} (admin only)"),
            )
        }
        "/status" => respond(StatusCode::OK, text, resources::status_text(state)),
        "/status/json" => respond(StatusCode::OK, json, resources::status_json(state)),
        "/connections" => respond(
            StatusCode::OK,
            text,
            resources::connections_text(state, matching.as_ref()),
        ),
        "/connections/json" => respond(
            StatusCode::OK,
            json,
            resources::connections_json(state, matching.as_ref()),
        ),
        "/api/v1/stat" => respond(
            StatusCode::OK,
            json,
            to_json(&crate::native::info::server_stat(hub)),
        ),
        "/api/v1/sources" => respond(
            StatusCode::OK,
            json,
            to_json(&crate::native::info::sources(hub)),
        ),
        "/api/v1/clients" => respond(
            StatusCode::OK,
            json,
            to_json(&crate::native::info::clients(hub)),
        ),
        "/api/v1/packets" if !rights.read => forbidden(
            state,
            reg,
            peer,
            Refusal::ReadNotAllowed,
            "a packet read over HTTP",
        ),
        "/api/v1/packets" => match packets::Request::from_query(&query) {
            Ok(r) => packets::respond(state, &reg.entry, r, tracker, stop, kill),
            Err(why) => error(StatusCode::BAD_REQUEST, &why),
        },
        "/api/v1/envelope" if !rights.read => forbidden(
            state,
            reg,
            peer,
            Refusal::ReadNotAllowed,
            "an envelope read over HTTP",
        ),
        "/api/v1/envelope" => match envelope::Request::from_query(&query) {
            Ok(r) => envelope::respond(state, &reg.entry, r, tracker),
            Err(why) => error(StatusCode::BAD_REQUEST, &why),
        },
        "/metrics" => metrics::respond(state),
        _ if ui::serves(path) => ui::serve(path).unwrap_or_else(|| {
            state.counters.not_found.fetch_add(1, Relaxed);
            error(
                StatusCode::NOT_FOUND,
                &format!("no live-view asset at {path}; see docs/HTTP.md"),
            )
        }),
        _ => match files::serve(state.options.web_root.as_deref(), path)
            .or_else(|| (path == "/").then(|| ui::serve("/ui/")).flatten())
        {
            Some(r) => r,
            None => {
                state.counters.not_found.fetch_add(1, Relaxed);
                error(
                    StatusCode::NOT_FOUND,
                    &format!("no resource at {path}; see docs/HTTP.md"),
                )
            }
        },
    }
}

fn to_json<T: serde::Serialize>(doc: &T) -> String {
    serde_json::to_string(doc).expect("info documents serialize")
}

/// A request's query parameters, percent-decoded (`+` is a space).
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    /// Parses `a=1&b=x%20y`.
    pub(crate) fn parse(q: &str) -> Query {
        Query(
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    /// The last value given for `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Percent-decodes a query component; a bad escape is kept as written.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
