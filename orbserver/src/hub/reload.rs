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
    let n = rules.ntokens();
    shared.policy.replace(rules);
    let mut summary = format!(
        "access rules reloaded from {} ({n} tokens)",
        source.path.display()
    );
    if cfg.limits != source.limits {
        summary.push_str("; [limits] changed too, but limits apply only after a restart");
    }
    Ok(summary)
}
