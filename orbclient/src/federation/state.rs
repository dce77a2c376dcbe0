//! The link state file: where to resume reading IN after a restart.
//!
//! JSON, written atomically: a temporary file in the same directory is written,
//! fsynced and renamed over the old one (then the directory is fsynced), so a crash
//! leaves either the old or the new state, never a torn one. Only packets whose
//! PUT_OK came back from OUT (or that the duplicate rule suppressed) advance it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use formats::Time;
use serde::{Deserialize, Serialize};

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
    pub fn time(&self) -> anyhow::Result<Time> {
        Time::parse_epoch(&self.time).map_err(|e| anyhow::anyhow!("bad time {:?}: {e}", self.time))
    }

    /// Reads `path`; `None` if it does not exist.
    pub fn load(path: &Path) -> anyhow::Result<Option<LinkState>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read state file {}", path.display()))
            }
        };
        let s: LinkState = serde_json::from_str(&text).with_context(|| {
            format!(
                "state file {} is not valid (delete it to start afresh)",
                path.display()
            )
        })?;
        if s.version != STATE_VERSION {
            anyhow::bail!(
                "state file {} has version {}, this orb2orb reads {STATE_VERSION}",
                path.display(),
                s.version
            );
        }
        s.time()
            .with_context(|| format!("state file {}", path.display()))?;
        Ok(Some(s))
    }

    /// Writes `path` atomically (see the module docs).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let ctx = || format!("cannot write state file {}", path.display());
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = path.file_name().with_context(ctx)?.to_string_lossy();
        let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
        let mut json = serde_json::to_vec_pretty(self).with_context(ctx)?;
        json.push(b'\n');
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            // The rename itself is durable once the directory is.
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        };
        write()
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })
            .with_context(ctx)
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
        assert!(LinkState::load(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
