//! The link state file: where to resume reading IN after a restart.
//!
//! JSON, written atomically: a temporary file in the same directory is written,
//! fsynced and renamed over the old one (then the directory is fsynced), so a crash
//! leaves either the old or the new state, never a torn one. Only packets whose
//! PUT_OK came back from OUT (or that the duplicate rule suppressed) advance it.

use std::io::Write;
use std::path::{Path, PathBuf};

use formats::{Time, TimeError};
use serde::{Deserialize, Serialize};

use super::FederationError;

/// Format version written in `version`.
pub const STATE_VERSION: u32 = 1;

/// The contents of a state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// The input orb as given.
    #[serde(rename = "in")]
    pub input: String,
    /// The output orb as given.
    #[serde(rename = "out")]
    pub output: String,
    /// pktid at IN of the last packet handled (forwarded and acknowledged, or
    /// suppressed).
    pub pktid: u64,
    /// Its time, exact epoch seconds (`Time::to_epoch_string`).
    pub time: String,
    /// The same time in ISO 8601, for people.
    pub time_iso: String,
}

impl LinkState {
    /// The state after handling the IN packet `pktid` with time `time`.
    pub fn new(input: &str, output: &str, pktid: u64, time: Time) -> LinkState {
        LinkState {
            version: STATE_VERSION,
            input: input.to_owned(),
            output: output.to_owned(),
            pktid,
            time: time.to_epoch_string(),
            time_iso: time.to_iso8601().unwrap_or_default(),
        }
    }

    /// The time as a [`Time`].
    pub fn time(&self) -> Result<Time, TimeError> {
        Time::parse_epoch(&self.time)
    }

    /// Reads `path`; `None` if it does not exist.
    pub fn load(path: &Path) -> Result<Option<LinkState>, FederationError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(FederationError::StateRead {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let s: LinkState =
            serde_json::from_str(&text).map_err(|source| FederationError::StateInvalid {
                path: path.to_owned(),
                source,
            })?;
        if s.version != STATE_VERSION {
            return Err(FederationError::StateVersion {
                path: path.to_owned(),
                found: s.version,
            });
        }
        s.time().map_err(|source| FederationError::StateTime {
            path: path.to_owned(),
            time: s.time.clone(),
            source,
        })?;
        Ok(Some(s))
    }

    /// Writes `path` atomically (see the module docs).
    pub fn save(&self, path: &Path) -> Result<(), FederationError> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let write = |tmp: &Path| -> std::io::Result<()> {
            let mut json = serde_json::to_vec_pretty(self)?;
            json.push(b'\n');
            let mut f = std::fs::File::create(tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(tmp, path)?;
            // The rename itself is durable once the directory is.
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        };
        let result = match path.file_name() {
            Some(name) => {
                let tmp = dir.join(format!(
                    ".{}.tmp{}",
                    name.to_string_lossy(),
                    std::process::id()
                ));
                write(&tmp).inspect_err(|_| {
                    let _ = std::fs::remove_file(&tmp);
                })
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the path names no file",
            )),
        };
        result.map_err(|source| FederationError::StateWrite {
            path: path.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_atomically() {
        let dir = std::env::temp_dir().join(format!("orb2orb-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("link.json");
        assert_eq!(LinkState::load(&path).unwrap(), None);
        let s = LinkState::new("a:1", "b:2", 42, Time::from_micros(1_500_000));
        s.save(&path).unwrap();
        let back = LinkState::load(&path).unwrap().unwrap();
        assert_eq!(back, s);
        assert_eq!(back.time().unwrap(), Time::from_micros(1_500_000));
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left behind");
        std::fs::write(&path, "{").unwrap();
        let e = LinkState::load(&path).unwrap_err();
        assert!(matches!(e, FederationError::StateInvalid { .. }), "{e}");
        assert!(e.to_string().contains("delete it to start afresh"), "{e}");
        let other = LinkState {
            version: 9,
            ..s.clone()
        };
        std::fs::write(&path, serde_json::to_vec(&other).unwrap()).unwrap();
        let e = LinkState::load(&path).unwrap_err();
        assert!(
            matches!(e, FederationError::StateVersion { found: 9, .. }),
            "{e}"
        );
        let e = s
            .save(&dir.join("missing-dir").join("link.json"))
            .unwrap_err();
        assert!(matches!(e, FederationError::StateWrite { .. }), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
