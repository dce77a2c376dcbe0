//! TLS on any listener (docs/SECURITY.md, "TLS"): rustls with the ring provider, TLS 1.2
//! and 1.3 only. A listener with a `[tls.LISTENER]` table wraps every admitted TCP
//! connection in a server-side TLS session before its protocol starts, so the session
//! code and the driver see a [`Stream`] whatever the port speaks.
//!
//! The certificate is held behind a lock in [`TlsListener`] and read once per accepted
//! connection: a reload (SIGHUP, RELOAD) swaps it for new connections while those
//! already open keep the session they negotiated.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::FutureExt;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore};
use tokio_rustls::server::TlsStream;

use super::readahead::ReadAhead;
use tokio_rustls::TlsAcceptor;

use super::driver::{Transport, LAST_WORDS};
use super::{Close, Farewell, OutBuf};
use crate::config::TlsFiles;
use crate::hub::Hub;

/// Why a listener's TLS files could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM item.
    #[error("TLS file {path}: {why}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// rustls refused the certificate, key or CA.
    #[error("TLS certificate {cert} with key {key}: {why}")]
    Config {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// What rustls said.
        why: String,
    },
}

/// The crypto provider every TLS endpoint uses: ring (small, builds without cmake).
/// rustls deprecates it since 0.23.48 because it has no post-quantum key exchange;
/// that is a known limit (docs/SECURITY.md, "TLS"), switching to aws-lc-rs lifts it.
#[allow(deprecated)]
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS 1.3 and 1.2, nothing older.
pub const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Reads every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_err = |why: String| TlsError::File {
        path: path.display().to_string(),
        why,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(file_err("no CERTIFICATE in it".into()));
    }
    Ok(certs)
}

/// Builds the rustls configuration for one listener's files.
pub fn server_config(files: &TlsFiles) -> Result<rustls::ServerConfig, TlsError> {
    let certs = load_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::File {
        path: files.key.display().to_string(),
        why: format!("no usable private key: {e}"),
    })?;
    let config_err = |why: String| TlsError::Config {
        cert: files.cert.display().to_string(),
        key: files.key.display().to_string(),
        why,
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| config_err(e.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in load_certs(ca)? {
                roots.add(c).map_err(|e| TlsError::File {
                    path: ca.display().to_string(),
                    why: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| config_err(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| config_err(e.to_string()))?;
    // HTTP/1.1 only; the orb protocols negotiate nothing.
    config.alpn_protocols = Vec::new();
    Ok(config)
}

/// A listener's TLS state: its files and the configuration built from them, replaced
/// on reload by [`TlsListener::prepare`] and [`TlsListener::install`].
#[derive(Debug)]
pub struct TlsListener {
    /// Which listener, for log lines.
    pub name: &'static str,
    files: TlsFiles,
    config: RwLock<Arc<rustls::ServerConfig>>,
}

impl TlsListener {
    /// Loads `files` for listener `name`.
    pub fn load(name: &'static str, files: TlsFiles) -> Result<TlsListener, TlsError> {
        let config = server_config(&files)?;
        Ok(TlsListener {
            name,
            files,
            config: RwLock::new(Arc::new(config)),
        })
    }

    /// The files it was loaded from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Builds the configuration from the same files again, without putting it in force.
    pub fn prepare(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        server_config(&self.files).map(Arc::new)
    }

    /// Puts a configuration from [`TlsListener::prepare`] in force for new connections.
    pub fn install(&self, config: Arc<rustls::ServerConfig>) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
    }

    /// An acceptor with the configuration in force.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(
            &self.config.read().unwrap_or_else(|p| p.into_inner()),
        ))
    }
}

/// Failed handshakes are logged at most once per address in this long, so a scanner
/// or a misconfigured client cannot fill the log.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// Addresses remembered for that; past it the memory is cleared.
const LOG_MEMORY: usize = 4096;

/// The once-per-address memory of failed handshakes' log lines.
#[derive(Debug, Default)]
pub struct HandshakeLog {
    last: Mutex<HashMap<IpAddr, Instant>>,
}

impl HandshakeLog {
    /// True if a failure from `ip` should be logged now.
    pub fn should_log(&self, ip: IpAddr, now: Instant) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.len() >= LOG_MEMORY {
            last.retain(|_, t| now.duration_since(*t) < LOG_EVERY);
            if last.len() >= LOG_MEMORY {
                last.clear();
            }
        }
        match last.get(&ip) {
            Some(t) if now.duration_since(*t) < LOG_EVERY => false,
            _ => {
                last.insert(ip, now);
                true
            }
        }
    }
}

/// Runs the server side of a TLS handshake on an admitted connection, within the
/// handshake timeout. A failure (a plaintext client, an unknown CA, a timeout) is
/// counted in `tls_handshakes`, logged at most once a minute per address, and ends
/// only this connection.
pub async fn handshake(
    tls: &TlsListener,
    tcp: TcpStream,
    peer: SocketAddr,
    hub: &Hub,
) -> Option<Stream> {
    let _ = tcp.set_nodelay(true);
    let accept = tls.acceptor().accept(ReadAhead::new(tcp));
    let why = match tokio::time::timeout(hub.limits.handshake_timeout, accept).await {
        Ok(Ok(s)) => return Some(Stream::Tls(Box::new(s))),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no handshake within the handshake timeout".to_string(),
    };
    hub.refused.tls_handshakes.fetch_add(1, Relaxed);
    if hub.tls_log.should_log(peer.ip(), Instant::now()) {
        tracing::warn!(
            "{peer}: {}: TLS handshake failed: {why} (logged once a minute per address)",
            tls.name
        );
    }
    None
}

/// An accepted connection: plaintext TCP, or TLS over it.
#[derive(Debug)]
pub enum Stream {
    /// Plaintext.
    Plain(TcpStream),
    /// TLS, after a completed handshake.
    Tls(Box<TlsStream<ReadAhead<TcpStream>>>),
}

impl Stream {
    /// The subject common name of the client's certificate, if it presented one.
    pub fn peer_common_name(&self) -> Option<String> {
        let Stream::Tls(s) = self else { return None };
        let cert = s.get_ref().1.peer_certificates()?.first()?;
        common_name(cert.as_ref())
    }
}

/// The first subject CN of a DER certificate; a small walk of the DER rather than a
/// parser dependency, since nothing else of the certificate is needed.
fn common_name(der: &[u8]) -> Option<String> {
    // id-at-commonName, 2.5.4.3, then a string type and its length.
    const CN: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
    // The issuer comes before the subject: take the last CN, which is the subject's
    // (extensions hold no attribute type-and-value pairs of this OID).
    let at = der.windows(CN.len()).rposition(|w| w == CN)? + CN.len();
    let (&tag, rest) = der[at..].split_first()?;
    if !matches!(tag, 0x0c | 0x13 | 0x16) {
        return None;
    }
    let (&len, rest) = rest.split_first()?;
    let len = len as usize;
    if len >= 0x80 || rest.len() < len {
        return None;
    }
    String::from_utf8(rest[..len].to_vec()).ok()
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// The driver's transport over a TLS connection. Unlike [`super::Tcp`] it is not split:
/// the driver never reads and writes at once, and rustls keeps one state for both.
pub struct Tls {
    stream: Box<TlsStream<ReadAhead<TcpStream>>>,
}

impl Tls {
    /// The transport over an established TLS session.
    pub fn new(stream: Box<TlsStream<ReadAhead<TcpStream>>>) -> Tls {
        Tls { stream }
    }
}

impl<O: OutBuf> Transport<O> for Tls {
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        self.stream.read_buf(buf).await
    }

    fn try_read(&mut self, buf: &mut BytesMut) -> io::Result<Option<usize>> {
        // One poll: records rustls already decrypted, or bytes the socket has.
        match self.stream.read_buf(buf).now_or_never() {
            Some(r) => r.map(Some),
            None => Ok(None),
        }
    }

    async fn write(&mut self, out: &mut O) -> io::Result<()> {
        self.stream.write_all(out.bytes()).await?;
        // rustls may hold the last records until flushed.
        self.stream.flush().await
    }

    async fn close(&mut self, why: &Close) {
        if *why == Close::Done {
            // close_notify, then the TCP FIN.
            let _ = tokio::time::timeout(LAST_WORDS, self.stream.shutdown()).await;
        }
    }

    async fn farewell(&mut self, _why: Farewell) {
        let _ = tokio::time::timeout(LAST_WORDS, self.stream.shutdown()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_address_is_logged_once_a_minute() {
        let log = HandshakeLog::default();
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(log.should_log(a, t0));
        assert!(!log.should_log(a, t0 + Duration::from_secs(59)));
        assert!(log.should_log(b, t0 + Duration::from_secs(1)));
        assert!(log.should_log(a, t0 + Duration::from_secs(61)));
    }

    #[test]
    fn the_common_name_is_the_subjects() {
        let mut params = rcgen::CertificateParams::new(vec!["orb.example".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "station-ak01");
        let key = rcgen::KeyPair::generate().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(vec![]).unwrap();
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "the ca");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        assert_eq!(common_name(cert.der()).as_deref(), Some("station-ak01"));
    }
}
