//! `orbserver gencert`: a self-signed CA and a server certificate (and, if asked, a
//! client certificate) for a test network, in one command (docs/SECURITY.md, "TLS").
//! Production networks should use certificates from their institution's CA.

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Why certificates could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GencertError {
    /// rcgen refused a name or failed to sign.
    #[error("cannot make the certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("cannot write {}: {reason}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        reason: std::io::Error,
    },
    /// A file to be made exists already.
    #[error("{} exists already; remove it or choose another --out folder", .0.display())]
    Exists(PathBuf),
}

/// What [`gencert`] makes.
#[derive(Debug, Clone)]
pub struct GencertRequest<'a> {
    /// Names (DNS names or IP addresses) the server certificate is valid for.
    pub hosts: &'a [String],
    /// The client certificate's common name, if one is wanted.
    pub client: Option<&'a str>,
    /// Days the certificates are valid from now.
    pub days: u32,
}

/// Writes `ca.pem`, `ca.key`, `server.pem`, `server.key` (and `client.pem`,
/// `client.key`) into `out`, creating it; refuses to overwrite any file. Keys are
/// written readable by their owner only. Returns the files written.
pub fn gencert(out: &Path, req: &GencertRequest<'_>) -> Result<Vec<PathBuf>, GencertError> {
    let mut names = vec!["ca.pem", "ca.key", "server.pem", "server.key"];
    if req.client.is_some() {
        names.extend(["client.pem", "client.key"]);
    }
    for n in &names {
        let p = out.join(n);
        if p.exists() {
            return Err(GencertError::Exists(p));
        }
    }
    std::fs::create_dir_all(out).map_err(|reason| GencertError::Write {
        path: out.to_owned(),
        reason,
    })?;
    let now = time_now();
    let until = now + std::time::Duration::from_secs(u64::from(req.days) * 86_400);

    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "orb test network CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now.into();
    ca.not_after = until.into();
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, &ca_key);

    let mut server = CertificateParams::new(req.hosts.to_vec())?;
    server.distinguished_name.push(
        DnType::CommonName,
        req.hosts.first().map(String::as_str).unwrap_or("orbserver"),
    );
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.not_before = now.into();
    server.not_after = until.into();
    let server_key = KeyPair::generate()?;
    let server_cert = server.signed_by(&server_key, &issuer)?;

    let mut files = vec![
        (out.join("ca.pem"), ca_cert.pem(), false),
        (out.join("ca.key"), ca_key.serialize_pem(), true),
        // The chain a server presents: its own certificate, then the CA's.
        (
            out.join("server.pem"),
            format!("{}{}", server_cert.pem(), ca_cert.pem()),
            false,
        ),
        (out.join("server.key"), server_key.serialize_pem(), true),
    ];
    if let Some(cn) = req.client {
        let mut client = CertificateParams::new(Vec::<String>::new())?;
        client.distinguished_name.push(DnType::CommonName, cn);
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client.not_before = now.into();
        client.not_after = until.into();
        let client_key = KeyPair::generate()?;
        let client_cert = client.signed_by(&client_key, &issuer)?;
        files.push((out.join("client.pem"), client_cert.pem(), false));
        files.push((out.join("client.key"), client_key.serialize_pem(), true));
    }
    let mut written = Vec::new();
    for (path, text, secret) in files {
        write_new(&path, text.as_bytes(), secret).map_err(|reason| GencertError::Write {
            path: path.clone(),
            reason,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Now, a minute early, so a peer whose clock is a little behind accepts it.
fn time_now() -> std::time::SystemTime {
    std::time::SystemTime::now() - std::time::Duration::from_secs(60)
}

fn write_new(path: &Path, bytes: &[u8], secret: bool) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsFiles;

    #[test]
    fn makes_a_ca_and_a_server_certificate_rustls_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let req = GencertRequest {
            hosts: &hosts,
            client: Some("station-1"),
            days: 30,
        };
        let files = gencert(dir.path(), &req).unwrap();
        assert_eq!(files.len(), 6);
        let tls = TlsFiles {
            cert: dir.path().join("server.pem"),
            key: dir.path().join("server.key"),
            client_ca: Some(dir.path().join("ca.pem")),
        };
        crate::conn::server_config(&tls).unwrap();
        assert_eq!(crate::conn::load_certs(&tls.cert).unwrap().len(), 2);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("server.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key is private");
        // A second run overwrites nothing.
        assert!(matches!(
            gencert(dir.path(), &req),
            Err(GencertError::Exists(_))
        ));
    }
}
