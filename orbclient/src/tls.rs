//! TLS for `tls://` addresses: rustls (ring provider, TLS 1.2 and 1.3), the server's
//! certificate checked against a CA file ([`TlsOptions::ca`]) or, without one, the
//! operating system's trusted roots (rustls-native-certs), and its name against the
//! address's host. A client certificate is presented when [`TlsOptions::cert`] and
//! [`TlsOptions::key`] are set.
//!
//! Every tool reads the same options from the environment ([`TlsOptions::from_env`]):
//! `ORB_TLS_CA`, `ORB_TLS_CERT`, `ORB_TLS_KEY`, so `orbstat`, `orbtail`, `orbput`,
//! `orbsim` and `orb2orb` take `tls://host:port` with no flag of their own.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::SystemTime;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, CertificateError, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::error::{ClientError, Result};
use crate::OrbAddr;

/// The CA file variable.
pub const CA_ENV: &str = "ORB_TLS_CA";
/// The client certificate variable.
pub const CERT_ENV: &str = "ORB_TLS_CERT";
/// The client key variable.
pub const KEY_ENV: &str = "ORB_TLS_KEY";

/// How to check the server and what to present, for `tls://` addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of the CA certificates the server's must chain to; `None`: the system's
    /// trusted roots.
    pub ca: Option<PathBuf>,
    /// PEM file of a client certificate chain to present; needs [`TlsOptions::key`].
    pub cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    pub key: Option<PathBuf>,
}

impl TlsOptions {
    /// The options in `ORB_TLS_CA`, `ORB_TLS_CERT` and `ORB_TLS_KEY` (unset or empty:
    /// none).
    pub fn from_env() -> TlsOptions {
        TlsOptions::from_env_side(None)
    }

    /// The options for one side of a link (`"IN"` or `"OUT"`): each of
    /// `ORB_TLS_CA_<SIDE>`, `ORB_TLS_CERT_<SIDE>` and `ORB_TLS_KEY_<SIDE>` if set, else
    /// the variable without the suffix, so orb2orb can show one client certificate to
    /// the orb it reads and another to the orb it writes.
    pub fn from_env_side(side: Option<&str>) -> TlsOptions {
        let var = |v: &str| {
            let get = |name: &str| std::env::var_os(name).filter(|s| !s.is_empty());
            side.and_then(|side| get(&format!("{v}_{side}")))
                .or_else(|| get(v))
                .map(PathBuf::from)
        };
        TlsOptions {
            ca: var(CA_ENV),
            cert: var(CERT_ENV),
            key: var(KEY_ENV),
        }
    }

    /// The rustls configuration these options describe, shared by every connection made
    /// with the same options while their files are unchanged: building one reads the
    /// files (or the system's whole root store), and a shared one keeps the session
    /// tickets that let a reconnecting client resume instead of a full handshake. A file
    /// whose modification time changed (a rotated CA or client certificate) gives a new
    /// configuration at the next connect.
    pub fn shared_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        static CONFIGS: Mutex<Vec<(TlsOptions, FileStamps, Arc<rustls::ClientConfig>)>> =
            Mutex::new(Vec::new());
        let stamps = FileStamps::of(self);
        let cached = CONFIGS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(o, s, _)| o == self && *s == stamps)
            .map(|(_, _, c)| Arc::clone(c));
        if let Some(c) = cached {
            return Ok(c);
        }
        let config = Arc::new(self.client_config()?);
        let mut configs = CONFIGS.lock().unwrap_or_else(|e| e.into_inner());
        configs.retain(|(o, _, _)| o != self);
        configs.push((self.clone(), stamps, Arc::clone(&config)));
        Ok(config)
    }

    /// The rustls configuration these options describe, built afresh.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        let mut roots = RootCertStore::empty();
        match &self.ca {
            Some(ca) => {
                for c in read_certs(ca)? {
                    roots
                        .add(c)
                        .map_err(|e| format!("CA file {}: {e}", ca.display()))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for c in found.certs {
                    let _ = roots.add(c);
                }
                if roots.is_empty() {
                    return Err(format!(
                        "no trusted CA certificates found on this system; name the server's CA with ${CA_ENV}"
                    ));
                }
            }
        }
        let provider = Arc::new(ring_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        match (&self.cert, &self.key) {
            (None, None) => Ok(builder.with_no_client_auth()),
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert)?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    format!("key file {}: no usable private key: {e}", key.display())
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("client certificate {}: {e}", cert.display()))
            }
            _ => Err(format!(
                "a client certificate needs both ${CERT_ENV} and ${KEY_ENV}"
            )),
        }
    }
}

/// The modification times of the files a [`TlsOptions`] names (`None` where a file is
/// not named or cannot be read): what tells a cached configuration from a stale one.
#[derive(Debug, PartialEq, Eq)]
struct FileStamps([Option<SystemTime>; 3]);

impl FileStamps {
    fn of(opts: &TlsOptions) -> FileStamps {
        let stamp = |p: &Option<PathBuf>| {
            p.as_ref()
                .and_then(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        };
        FileStamps([stamp(&opts.ca), stamp(&opts.cert), stamp(&opts.key)])
    }
}

/// ring, as the server uses: rustls deprecates it since 0.23.48 for its lack of
/// post-quantum key exchange, a known limit (docs/SECURITY.md, "TLS").
///
/// AES-128-GCM is offered first (rustls offers AES-256 first), as Go's TLS does: the
/// server follows the client's order, both are beyond brute force, and on CPUs with AES
/// instructions 128-bit keys take ten rounds where 256-bit ones take fourteen, which a
/// stream of small packets feels.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    use rustls::CipherSuite as S;
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites.sort_by_key(|s| {
        !matches!(
            s.suite(),
            S::TLS13_AES_128_GCM_SHA256
                | S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    p
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("certificate file {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "certificate file {}: no CERTIFICATE in it",
            path.display()
        ));
    }
    Ok(certs)
}

/// Runs the client side of the handshake with `addr`'s host as the name to verify.
pub async fn connect(
    tcp: TcpStream,
    addr: &OrbAddr,
    opts: &TlsOptions,
) -> Result<TlsStream<BufReader<TcpStream>>> {
    let fail = |why: String| ClientError::Tls {
        addr: addr.clone(),
        why,
    };
    let config = opts.shared_config().map_err(fail)?;
    let name = ServerName::try_from(addr.host.clone())
        .map_err(|e| fail(format!("{:?} is not a host name to verify: {e}", addr.host)))?;
    // rustls reads the socket 4 KiB at a time; a stream of packets arrives faster than
    // that many system calls go, so TLS reads from a buffer filled 64 KiB at a time.
    TlsConnector::from(config)
        .connect(name, BufReader::with_capacity(64 << 10, tcp))
        .await
        .map_err(|e| fail(explain(&e, addr)))
}

/// `e` as a [`ClientError::Tls`] if TLS caused it (an alert from the server, a bad
/// record), else unchanged.
pub(crate) fn tls_failure(e: ClientError, addr: &OrbAddr) -> ClientError {
    match e {
        ClientError::Io(io)
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>()) =>
        {
            ClientError::Tls {
                addr: addr.clone(),
                why: explain(&io, addr),
            }
        }
        e => e,
    }
}

/// One line saying why a handshake failed, in the operator's terms.
fn explain(e: &io::Error, addr: &OrbAddr) -> String {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                "the server's certificate is not signed by a trusted CA ({c:?}); give the CA that signed it with ${CA_ENV}"
            ),
            CertificateError::NotValidForName
            | CertificateError::NotValidForNameContext { .. } => format!(
                "the server's certificate is not valid for the name {:?}; connect by a name the certificate lists",
                addr.host
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired".to_string()
            }
            other => format!("the server's certificate was refused: {other:?}"),
        },
        Some(rustls::Error::AlertReceived(alert)) => format!(
            "the server refused the handshake ({alert:?}); if it asks for a client certificate, give one with ${CERT_ENV} and ${KEY_ENV}"
        ),
        Some(rustls::Error::InvalidMessage(_)) => {
            "the server did not answer in TLS: is it a plaintext port? (write host:port without tls://)".to_string()
        }
        Some(other) => other.to_string(),
        None if e.kind() == io::ErrorKind::UnexpectedEof => {
            "the server closed the connection during the TLS handshake: is it a plaintext port? (write host:port without tls://)".to_string()
        }
        None => e.to_string(),
    }
}

/// A connection to an orb server: plaintext TCP, or TLS over it.
#[derive(Debug)]
pub enum ClientStream {
    /// Plaintext.
    Plain(TcpStream),
    /// TLS.
    Tls(Box<TlsStream<BufReader<TcpStream>>>),
}

impl From<TcpStream> for ClientStream {
    fn from(s: TcpStream) -> ClientStream {
        ClientStream::Plain(s)
    }
}

impl ClientStream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            ClientStream::Plain(s) => s,
            ClientStream::Tls(s) => s.get_ref().0.get_ref(),
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_half_client_certificate_is_refused() {
        let opts = TlsOptions {
            ca: None,
            cert: Some("c.pem".into()),
            key: None,
        };
        // Without system roots the first complaint is about those; either way it is
        // refused with a one-line reason.
        let e = opts.client_config().unwrap_err();
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn connections_share_a_configuration_until_a_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let write_ca = || {
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = rcgen::CertificateParams::new(vec!["orb-test".to_string()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
            std::fs::write(&ca, cert.pem()).unwrap();
        };
        write_ca();
        let opts = TlsOptions {
            ca: Some(ca.clone()),
            ..TlsOptions::default()
        };
        let a = opts.shared_config().unwrap();
        let b = opts.shared_config().unwrap();
        assert!(
            Arc::ptr_eq(&a, &b),
            "the same options share one configuration"
        );
        // A rotated CA file: a later modification time, a new configuration.
        write_ca();
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&ca)
            .unwrap()
            .set_modified(later)
            .unwrap();
        let c = opts.shared_config().unwrap();
        assert!(!Arc::ptr_eq(&a, &c), "a changed CA file is read again");
        assert!(Arc::ptr_eq(&c, &opts.shared_config().unwrap()));
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let opts = TlsOptions {
            ca: Some("/nonexistent/ca.pem".into()),
            ..TlsOptions::default()
        };
        let e = opts.client_config().unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
