//! Re-reading the `[access]` rules of the config file: the one code path behind SIGHUP
//! and the RELOAD request (docs/SECURITY.md, "Reloading"). A bad file changes nothing.

use std::path::PathBuf;

use crate::config::{ConfigError, ConfigFile, Limits, ServerConfig};

use super::Hub;

/// Where a reload reads from: the `--config` file the server started with, and the
/// limits it started with (which a reload cannot change, but can warn about).
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// The config file.
    pub path: PathBuf,
    /// `[limits]` as the server started with them.
    pub limits: Limits,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The server was started without a config file.
    #[error("the server was started without --config, so there is no file to reload; restart it with --config FILE")]
    NoConfigFile,
    /// The file could not be read or is invalid.
    #[error("{0}; the previous access rules stay in force")]
    Config(#[from] ConfigError),
    /// A certificate or key could not be read again.
    #[error("{0}; the previous access rules and certificates stay in force")]
    Tls(#[from] crate::conn::TlsError),
}

/// Re-reads the config file's `[access]` table and puts it in force. Returns a one-line
/// summary of what was loaded. `trigger` (`SIGHUP`, `RELOAD from ADDR`) starts the log
/// line, so the log says who changed the rules.
pub fn reload(shared: &Hub, trigger: &str) -> Result<String, ReloadError> {
    let result = load(shared);
    match &result {
        Ok(summary) => tracing::info!("{trigger}: {summary}"),
        Err(e) => tracing::error!("{trigger}: reload failed: {e}"),
    }
    result
}

fn load(shared: &Hub) -> Result<String, ReloadError> {
    let source = shared.config_source().ok_or(ReloadError::NoConfigFile)?;
    let file = ConfigFile::load(&source.path)?;
    let rules = file.access_rules()?;
    // The whole file must still be valid, or the next restart would fail on it.
    let mut cfg = ServerConfig::default();
    file.apply(&mut cfg)?;
    // Every certificate is read and checked before anything is put in force, so a
    // bad file changes nothing. Connections already open keep their TLS sessions.
    let listeners = shared.tls.get().map(Vec::as_slice).unwrap_or_default();
    let fresh = listeners
        .iter()
        .map(|l| l.prepare())
        .collect::<Result<Vec<_>, _>>()?;
    let n = rules.ntokens();
    shared.policy.replace(rules);
    for (l, config) in listeners.iter().zip(fresh) {
        l.install(config);
    }
    let mut summary = format!(
        "access rules reloaded from {} ({n} tokens)",
        source.path.display()
    );
    if !listeners.is_empty() {
        summary.push_str(&format!("; {} TLS certificates reloaded", listeners.len()));
    }
    let t = &cfg.tls;
    let named: Vec<_> = [&t.native, &t.datalink, &t.seedlink, &t.http]
        .into_iter()
        .flatten()
        .collect();
    let started: Vec<_> = listeners.iter().map(|l| l.files()).collect();
    if named != started {
        summary.push_str("; [tls] file names changed, but they apply only after a restart (a reload re-reads the files named at start)");
    }
    if cfg.limits != source.limits {
        summary.push_str("; [limits] changed too, but limits apply only after a restart");
    }
    Ok(summary)
}
