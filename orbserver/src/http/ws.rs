//! DataLink and SeedLink over WebSocket at `/datalink` and `/seedlink` on the HTTP port
//! (docs/HTTP.md, "WebSocket"), as ringserver 4 serves them and seisplotjs speaks them.
//!
//! The protocols are the TCP gateways' own sessions on the one connection driver
//! ([`crate::conn::serve_on`]); only the transport differs. Input is a byte stream
//! whatever the messages carry (a client may put several commands, or part of one, in a
//! message). Output goes out one protocol message per binary WebSocket message: the
//! sessions write into a [`Messages`] buffer that marks where each reply, data frame or
//! packet ends, and [`WsTransport`] sends each as a message of its own. The WebSocket
//! itself (handshake key, masking, fragmentation, ping, close) is tokio-tungstenite's.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use http::header::{
    HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, Method, Response, StatusCode};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::{error, HttpBody, HttpState};
use crate::conn::{self, Close, Farewell, Messages, Transport, LAST_WORDS};
use crate::gateway::datalink::DataLink;
use crate::gateway::seedlink::SeedLink;
use crate::hub::clients::Registration;

/// DataLink's WebSocket subprotocol, as seisplotjs and ringserver name it.
pub const DATALINK_SUBPROTOCOL: &str = "DataLink1.0";
/// SeedLink's WebSocket subprotocols: 3.1 and 4.0 (`SLPROTO 4.0` switches a connection
/// to 4.0 whichever was named).
pub const SEEDLINK_SUBPROTOCOLS: [&str; 2] = ["SeedLink3.1", "SeedLink4.0"];

/// Largest SeedLink message a client may send: command lines are at most 256 bytes,
/// and a client may batch a negotiation's worth of them.
pub const SEEDLINK_MAX_MESSAGE: usize = 16 * 1024;

/// Room beyond `limits.max_packet` a DataLink message may take: the `DL`, the header
/// length byte and a header of at most 255 bytes, with slack.
const DATALINK_HEADER_ROOM: usize = 1024;

/// Which protocol a WebSocket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsProtocol {
    /// DataLink, at `/datalink`.
    DataLink,
    /// SeedLink, at `/seedlink`.
    SeedLink,
}

impl WsProtocol {
    /// The protocol at `path`, if a WebSocket is served there.
    pub fn at(path: &str) -> Option<WsProtocol> {
        match path {
            "/datalink" => Some(WsProtocol::DataLink),
            "/seedlink" => Some(WsProtocol::SeedLink),
            _ => None,
        }
    }

    /// The name in the client table and the log.
    pub fn name(self) -> &'static str {
        match self {
            WsProtocol::DataLink => "datalink-ws",
            WsProtocol::SeedLink => "seedlink-ws",
        }
    }

    /// The subprotocols served, in order of preference.
    pub fn subprotocols(self) -> &'static [&'static str] {
        match self {
            WsProtocol::DataLink => &[DATALINK_SUBPROTOCOL],
            WsProtocol::SeedLink => &SEEDLINK_SUBPROTOCOLS,
        }
    }

    /// Largest message (and frame) a client may send; a bigger one closes the
    /// connection with 1009.
    pub fn max_message(self, max_packet: usize) -> usize {
        match self {
            WsProtocol::DataLink => max_packet + DATALINK_HEADER_ROOM,
            WsProtocol::SeedLink => SEEDLINK_MAX_MESSAGE,
        }
    }
}

/// An accepted upgrade, waiting for hyper to hand over the connection.
pub struct Pending {
    /// The connection, once the 101 response is written.
    pub upgrade: OnUpgrade,
    /// What it will speak.
    pub protocol: WsProtocol,
}

/// Why an upgrade request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not a WebSocket upgrade at all (a plain GET): 426 Upgrade Required.
    NotUpgrade,
    /// A WebSocket version other than 13: 426 with the version served.
    Version,
    /// A missing or malformed `Sec-WebSocket-Key`, or a method other than GET: 400.
    Malformed(&'static str),
}

/// True if the comma-separated header `name` holds `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Checks a WebSocket upgrade request (RFC 6455, 4.2.1); the `Sec-WebSocket-Accept`
/// value and the subprotocol chosen (the first the client offers that `protocol`
/// serves; none if it offers none of them, and then the client decides).
pub fn check(
    method: &Method,
    headers: &HeaderMap,
    protocol: WsProtocol,
) -> Result<(String, Option<&'static str>), Refused> {
    if !has_token(headers, UPGRADE, "websocket") || !has_token(headers, CONNECTION, "upgrade") {
        return Err(Refused::NotUpgrade);
    }
    if method != Method::GET {
        return Err(Refused::Malformed("a WebSocket upgrade must be a GET"));
    }
    if headers.get(SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        return Err(Refused::Version);
    }
    let key = headers
        .get(SEC_WEBSOCKET_KEY)
        .map(|v| v.as_bytes().trim_ascii())
        .filter(|k| k.len() == 24 && k.ends_with(b"=="))
        .ok_or(Refused::Malformed(
            "Sec-WebSocket-Key is missing or not 16 bytes in base64",
        ))?;
    let offered: Vec<&str> = headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let chosen = offered
        .iter()
        .find_map(|o| protocol.subprotocols().iter().find(|s| *s == o).copied());
    Ok((derive_accept_key(key), chosen))
}

/// Answers a request for `/datalink` or `/seedlink`: 101 Switching Protocols (and the
/// upgrade left in `pending` for [`serve`]), or the refusal, counted.
pub fn respond(
    state: &HttpState,
    protocol: WsProtocol,
    req: &mut http::Request<hyper::body::Incoming>,
    pending: &std::sync::Mutex<Option<Pending>>,
) -> Response<HttpBody> {
    match check(req.method(), req.headers(), protocol) {
        Ok((accept, chosen)) => {
            let mut r = Response::new(HttpBody::Full(Default::default()));
            *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let h = r.headers_mut();
            h.insert(UPGRADE, HeaderValue::from_static("websocket"));
            h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
            if let Ok(v) = HeaderValue::from_str(&accept) {
                h.insert(SEC_WEBSOCKET_ACCEPT, v);
            }
            if let Some(p) = chosen {
                h.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
            }
            *pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(Pending {
                upgrade: hyper::upgrade::on(req),
                protocol,
            });
            r
        }
        Err(refused) => {
            state.counters.ws_bad_upgrade.fetch_add(1, Relaxed);
            let path = req.uri().path();
            let upgrade_headers = !matches!(refused, Refused::Malformed(_));
            let mut r = match refused {
                Refused::NotUpgrade => error(
                    StatusCode::UPGRADE_REQUIRED,
                    &format!("{path} speaks {} over WebSocket only: connect with a WebSocket client (subprotocol {})", protocol.name(), protocol.subprotocols().join(" or ")),
                ),
                Refused::Version => error(
                    StatusCode::UPGRADE_REQUIRED,
                    "this server speaks WebSocket version 13",
                ),
                Refused::Malformed(why) => error(StatusCode::BAD_REQUEST, why),
            };
            if upgrade_headers {
                let h = r.headers_mut();
                h.insert(UPGRADE, HeaderValue::from_static("websocket"));
                h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
                h.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            }
            r
        }
    }
}

/// Serves an upgraded connection with its protocol's session until it ends. The
/// registration (the client table row, now showing the WebSocket protocol) lives as
/// long.
pub async fn serve(
    pending: Pending,
    peer: SocketAddr,
    reg: Registration,
    state: Arc<HttpState>,
    shutdown: CancellationToken,
) {
    let Pending { upgrade, protocol } = pending;
    let upgraded = tokio::select! {
        u = upgrade => match u {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!("{peer}: {}: the upgrade failed: {e}", protocol.name());
                return;
            }
        },
        _ = shutdown.cancelled() => return,
    };
    reg.entry.switch_protocol(protocol.name());
    reg.entry.ident().what = "WebSocket client".into();
    let max = protocol.max_message(state.hub.limits.max_packet);
    let config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
        // Output waits for the socket at this much (the driver's own batch is bounded
        // by limits.output_buffer), so a client that does not read holds no more.
        .write_buffer_size(64 * 1024)
        .max_write_buffer_size(state.hub.limits.output_buffer.max(64 * 1024) * 2 + max);
    let ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    let transport = WsTransport {
        ws,
        state: Arc::clone(&state),
        failed: None,
    };
    tracing::debug!("{peer}: {} connection", protocol.name());
    let hub = Arc::clone(&state.hub);
    let name = protocol.name();
    match protocol {
        WsProtocol::DataLink => {
            conn::serve_on::<DataLink, _>(transport, peer, hub, reg, shutdown, name).await
        }
        WsProtocol::SeedLink => {
            conn::serve_on::<SeedLink, _>(transport, peer, hub, reg, shutdown, name).await
        }
    }
}

/// A WebSocket as the connection driver's transport.
pub struct WsTransport {
    ws: WebSocketStream<TokioIo<Upgraded>>,
    state: Arc<HttpState>,
    /// A read error met by `try_read`, answered by the next `read`.
    failed: Option<WsError>,
}

/// What an incoming message is to the driver.
enum Incoming {
    /// Input bytes (possibly none: an empty message).
    Data(usize),
    /// The client closed.
    Closed,
    /// A ping or pong, answered by the library.
    Control,
}

impl WsTransport {
    /// Appends a data message's bytes to `buf`.
    fn take(msg: Message, buf: &mut BytesMut) -> Incoming {
        match msg {
            Message::Binary(b) => {
                buf.extend_from_slice(&b);
                Incoming::Data(b.len())
            }
            // seisplotjs sends SeedLink commands as text: bytes like any others.
            Message::Text(t) => {
                buf.extend_from_slice(t.as_bytes());
                Incoming::Data(t.len())
            }
            Message::Close(_) => Incoming::Closed,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Incoming::Control,
        }
    }

    /// Answers a broken message: closes with the code RFC 6455 gives its kind, counts
    /// it, and returns the error for the log.
    async fn refuse(&mut self, e: WsError) -> std::io::Error {
        let c = &self.state.counters;
        let (code, why) = match &e {
            WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
                c.ws_too_large.fetch_add(1, Relaxed);
                (
                    CloseCode::Size,
                    format!("message of {size} bytes over the limit of {max_size}"),
                )
            }
            WsError::Capacity(_) => {
                c.ws_too_large.fetch_add(1, Relaxed);
                (CloseCode::Size, format!("over a limit: {e}"))
            }
            WsError::Utf8(_) => {
                c.ws_bad_frame.fetch_add(1, Relaxed);
                (
                    CloseCode::Invalid,
                    "a text message that is not UTF-8".into(),
                )
            }
            WsError::Protocol(p) => {
                c.ws_bad_frame.fetch_add(1, Relaxed);
                (
                    CloseCode::Protocol,
                    format!("WebSocket protocol error: {p}"),
                )
            }
            WsError::Io(io) => return std::io::Error::new(io.kind(), io.to_string()),
            _ => return std::io::Error::other(format!("WebSocket: {e}")),
        };
        self.close_with(code, &why).await;
        std::io::Error::other(format!("WebSocket closed with {}: {why}", u16::from(code)))
    }

    /// Sends a close frame and waits a moment for it to go out.
    async fn close_with(&mut self, code: CloseCode, why: &str) {
        // A close frame's reason is at most 123 bytes.
        let mut end = why.len().min(123);
        while !why.is_char_boundary(end) {
            end -= 1;
        }
        let frame = CloseFrame {
            code,
            reason: why[..end].into(),
        };
        let _ = tokio::time::timeout(LAST_WORDS, self.ws.close(Some(frame))).await;
    }
}

impl Transport<Messages> for WsTransport {
    async fn read(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        if let Some(e) = self.failed.take() {
            return Err(self.refuse(e).await);
        }
        loop {
            let msg = match self.ws.next().await {
                None => return Ok(0),
                Some(Ok(m)) => m,
                Some(Err(e)) => return Err(self.refuse(e).await),
            };
            match Self::take(msg, buf) {
                // An empty message is no input, not the end of the connection.
                Incoming::Data(0) | Incoming::Control => continue,
                Incoming::Data(n) => return Ok(n),
                Incoming::Closed => {
                    // Send the library's reply to the client's close.
                    let _ = tokio::time::timeout(LAST_WORDS, self.ws.flush()).await;
                    return Ok(0);
                }
            }
        }
    }

    fn try_read(&mut self, buf: &mut BytesMut) -> std::io::Result<Option<usize>> {
        if self.failed.is_some() {
            return Ok(None);
        }
        loop {
            match self.ws.next().now_or_never() {
                None => return Ok(None),
                Some(None) => return Ok(Some(0)),
                Some(Some(Err(e))) => {
                    // Closing needs a wait: the next `read` does it.
                    self.failed = Some(e);
                    return Ok(None);
                }
                Some(Some(Ok(m))) => match Self::take(m, buf) {
                    Incoming::Data(0) | Incoming::Control => continue,
                    Incoming::Data(n) => return Ok(Some(n)),
                    Incoming::Closed => return Ok(Some(0)),
                },
            }
        }
    }

    async fn write(&mut self, out: &mut Messages) -> std::io::Result<()> {
        // The bytes are handed on without copying: each message is a slice of them.
        let (bytes, ends) = out.take();
        let all = Bytes::from(bytes);
        let mut start = 0;
        for end in ends {
            self.ws
                .feed(Message::Binary(all.slice(start..end)))
                .await
                .map_err(to_io)?;
            start = end;
        }
        self.ws.flush().await.map_err(to_io)
    }

    async fn close(&mut self, why: &Close) {
        match why {
            Close::Done => self.close_with(CloseCode::Normal, "").await,
            Close::Error(why) => self.close_with(CloseCode::Policy, why).await,
        }
    }

    async fn farewell(&mut self, why: Farewell) {
        match why {
            Farewell::Shutdown => {
                self.close_with(CloseCode::Away, "orbserver is stopping")
                    .await
            }
            Farewell::Killed => {
                self.close_with(CloseCode::Policy, "closed by an administrator")
                    .await
            }
            Farewell::HandshakeTimeout => {
                self.close_with(CloseCode::Policy, "no command within the handshake timeout")
                    .await
            }
        }
    }
}

fn to_io(e: WsError) -> std::io::Error {
    match e {
        WsError::Io(io) => io,
        e => std::io::Error::other(format!("WebSocket: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                http::header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn upgrade(extra: &[(&str, &str)]) -> HeaderMap {
        let mut pairs = vec![
            ("upgrade", "websocket"),
            ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", KEY),
        ];
        pairs.extend_from_slice(extra);
        headers(&pairs)
    }

    #[test]
    fn the_accept_key_is_rfc_6455s_and_the_offered_subprotocol_is_echoed() {
        let h = upgrade(&[("sec-websocket-protocol", "DataLink1.0")]);
        let (accept, chosen) = check(&Method::GET, &h, WsProtocol::DataLink).unwrap();
        // The example of RFC 6455, section 1.3.
        assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(chosen, Some("DataLink1.0"));
        let h = upgrade(&[("sec-websocket-protocol", "chat, SeedLink4.0, SeedLink3.1")]);
        let (_, chosen) = check(&Method::GET, &h, WsProtocol::SeedLink).unwrap();
        assert_eq!(
            chosen,
            Some("SeedLink4.0"),
            "the client's first that we serve"
        );
        let (_, chosen) = check(&Method::GET, &h, WsProtocol::DataLink).unwrap();
        assert_eq!(chosen, None, "nothing we serve was offered");
        let (_, chosen) = check(&Method::GET, &upgrade(&[]), WsProtocol::DataLink).unwrap();
        assert_eq!(chosen, None);
    }

    #[test]
    fn requests_that_are_not_websocket_upgrades_are_refused() {
        let plain = headers(&[("host", "x")]);
        assert_eq!(
            check(&Method::GET, &plain, WsProtocol::DataLink),
            Err(Refused::NotUpgrade)
        );
        let no_conn = headers(&[
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", KEY),
        ]);
        assert_eq!(
            check(&Method::GET, &no_conn, WsProtocol::DataLink),
            Err(Refused::NotUpgrade)
        );
        let v8 = headers(&[
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
            ("sec-websocket-version", "8"),
            ("sec-websocket-key", KEY),
        ]);
        assert_eq!(
            check(&Method::GET, &v8, WsProtocol::SeedLink),
            Err(Refused::Version)
        );
        let no_key = headers(&[
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
            ("sec-websocket-version", "13"),
        ]);
        assert!(matches!(
            check(&Method::GET, &no_key, WsProtocol::SeedLink),
            Err(Refused::Malformed(_))
        ));
        assert!(matches!(
            check(&Method::HEAD, &upgrade(&[]), WsProtocol::SeedLink),
            Err(Refused::Malformed(_))
        ));
    }

    #[test]
    fn paths_and_limits() {
        assert_eq!(WsProtocol::at("/datalink"), Some(WsProtocol::DataLink));
        assert_eq!(WsProtocol::at("/seedlink"), Some(WsProtocol::SeedLink));
        assert_eq!(WsProtocol::at("/datalink/"), None);
        assert_eq!(WsProtocol::DataLink.max_message(1000), 2024);
        assert_eq!(
            WsProtocol::SeedLink.max_message(1 << 20),
            SEEDLINK_MAX_MESSAGE
        );
    }
}
