//! Why a link stopped.

use std::path::PathBuf;

use crate::ClientError;

use super::state::STATE_VERSION;

/// Why a link stopped for good. Connection losses are not among them: a link retries
/// those (with backoff) and only logs them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FederationError {
    /// The state file exists but cannot be read.
    #[error("cannot read state file {}", path.display())]
    StateRead {
        /// The state file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The state file is not a link state.
    #[error("state file {} is not valid (delete it to start afresh)", path.display())]
    StateInvalid {
        /// The state file.
        path: PathBuf,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// The state file was written by a version of the format this one does not read.
    #[error("state file {} has version {found}; this program reads version {STATE_VERSION}", path.display())]
    StateVersion {
        /// The state file.
        path: PathBuf,
        /// The version it holds.
        found: u32,
    },
    /// The state file's time does not parse.
    #[error("state file {} has a bad time {time:?} (delete it to start afresh)", path.display())]
    StateTime {
        /// The state file.
        path: PathBuf,
        /// The time as written.
        time: String,
        /// Why it does not parse.
        #[source]
        source: formats::TimeError,
    },
    /// The state file cannot be written.
    #[error("cannot write state file {}", path.display())]
    StateWrite {
        /// The state file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// IN refused or failed in a way a retry cannot mend (access, bad select, ...).
    #[error("cannot read {orb}")]
    Input {
        /// IN as the user wrote it.
        orb: String,
        /// The client's error.
        #[source]
        source: ClientError,
    },
    /// OUT refused the link in a way a retry cannot mend.
    #[error("cannot use {orb}")]
    Output {
        /// OUT as the user wrote it.
        orb: String,
        /// The client's error.
        #[source]
        source: ClientError,
    },
    /// OUT refused a put (access, foreign srcname, packet too large, ...).
    #[error("cannot put into {orb}")]
    Put {
        /// OUT as the user wrote it.
        orb: String,
        /// The client's error.
        #[source]
        source: ClientError,
    },
}
