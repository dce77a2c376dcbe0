//! [`ReapState`]: how far a reap rule has archived, kept in its state file.
//!
//! The file is JSON, replaced atomically ([`crate::atomic`]). Besides the last pktid
//! and time, it lists the batch files that were complete and synced under temporary
//! names but perhaps not yet renamed ([`Pending`]): a restart finishes those instead
//! of reading their packets again, which is what makes batch files exactly-once even
//! when a read's batch boundaries depend on timing.

use std::path::{Path, PathBuf};

use formats::write::{FileSummary, Format};
use formats::Time;
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;

/// Reads a rule's versioned JSON state file: `None` if there is none; an error if it
/// cannot be read, does not parse, has another `version` than `want`, or belongs to
/// another rule (`id` gives a state's version and rule name).
pub(crate) fn load_rule_state<T: serde::de::DeserializeOwned>(
    path: &Path,
    rule: &str,
    want: u32,
    id: impl Fn(&T) -> (u32, &str),
) -> Result<Option<T>, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(reason) => {
            return Err(StateError::Io {
                path: path.to_owned(),
                reason,
            })
        }
    };
    let invalid = |reason: String| StateError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let s: T = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    let (version, owner) = id(&s);
    if version != want {
        return Err(invalid(format!("version {version}, expected {want}")));
    }
    if owner != rule {
        return Err(invalid(format!(
            "it belongs to rule {owner:?}, not {rule:?}"
        )));
    }
    Ok(Some(s))
}

/// Replaces a rule's JSON state file atomically (`pretty`: indented, for files people
/// read; compact for large detector states).
pub(crate) fn save_rule_state<T: Serialize>(
    path: &Path,
    state: &T,
    pretty: bool,
) -> Result<(), StateError> {
    let encoded = if pretty {
        serde_json::to_vec_pretty(state)
    } else {
        serde_json::to_vec(state)
    };
    let mut text = encoded.map_err(|e| StateError::Invalid {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    text.push(b'\n');
    write_atomic(path, &text).map_err(|reason| StateError::Io {
        path: path.to_owned(),
        reason,
    })
}

/// Version of the state file layout.
pub const STATE_VERSION: u32 = 1;

/// A reap rule's progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReapState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// The rule's name, to catch a state file shared by mistake.
    pub rule: String,
    /// Every packet up to this pktid is archived (or was not selected).
    pub pktid: Option<u64>,
    /// Time of that packet.
    pub time: Option<Time>,
    /// Batch files complete under a temporary name; see the module docs.
    #[serde(default)]
    pub pending: Vec<Pending>,
    /// The pktid the state advances to once `pending` is finished.
    #[serde(default)]
    pub pending_through: Option<(u64, Time)>,
}

/// A complete, synced batch file waiting for its rename, sidecar and catalog line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// Its temporary name.
    pub temp: PathBuf,
    /// Its final name.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// What it holds.
    pub summary: FileSummary,
}

/// The state file cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Reading or writing failed.
    // The system's reason is in the message, not a `source`, so that `{:#}` chains
    // do not print it twice.
    #[error("state file {}: {reason}", path.display())]
    Io {
        /// The state file.
        path: PathBuf,
        /// What the system said.
        reason: std::io::Error,
    },
    /// The content is not a state file of this version.
    #[error("state file {} is not valid ({reason}); move it away to start from the rule's start position", path.display())]
    Invalid {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl ReapState {
    /// A fresh state for `rule`.
    pub fn new(rule: &str) -> ReapState {
        ReapState {
            version: STATE_VERSION,
            rule: rule.to_owned(),
            ..ReapState::default()
        }
    }

    /// Reads the state at `path`; a missing file is a fresh state.
    pub fn load(path: &Path, rule: &str) -> Result<ReapState, StateError> {
        Ok(load_rule_state(path, rule, STATE_VERSION, |s: &ReapState| {
            (s.version, s.rule.as_str())
        })?
        .unwrap_or_else(|| ReapState::new(rule)))
    }

    /// Replaces the state file atomically.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        save_rule_state(path, self, true)
    }

    /// Records that everything through `pktid` is archived.
    pub fn advance(&mut self, pktid: u64, time: Time) {
        if self.pktid.is_none_or(|p| pktid > p) {
            self.pktid = Some(pktid);
            self.time = Some(time);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rule_check() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        assert_eq!(ReapState::load(&p, "r").unwrap(), ReapState::new("r"));
        let mut s = ReapState::new("r");
        s.advance(5, Time::from_micros(1));
        s.advance(4, Time::from_micros(0));
        s.save(&p).unwrap();
        let back = ReapState::load(&p, "r").unwrap();
        assert_eq!(back.pktid, Some(5));
        assert_eq!(back, s);
        let err = ReapState::load(&p, "other").unwrap_err();
        assert!(err.to_string().contains("belongs to rule \"r\""), "{err}");
    }
}
