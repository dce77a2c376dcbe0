//! [`IngestRule`]: move packets into an orb, from another orb or from the rule itself.

use std::path::PathBuf;

use formats::{SrcName, Time};
use orbclient::OrbAddr;
use serde::Serialize;

use crate::reap_rule::{ReapRule, Start};

/// One `[[ingest]]` rule, checked; see docs/RULES.md.
#[derive(Debug, Clone, Serialize)]
pub struct IngestRule {
    /// Unique name.
    pub name: String,
    /// What it does.
    pub action: IngestAction,
}

/// What an ingest rule does.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IngestAction {
    /// Forward every matching packet from one orb to another (orb2orb's link).
    Forward {
        /// Source orb as written.
        from: String,
        /// Its address.
        #[serde(skip)]
        from_addr: OrbAddr,
        /// Destination orb as written.
        to: String,
        /// Its address.
        #[serde(skip)]
        to_addr: OrbAddr,
        /// Select expression (`None`: all).
        select: Option<String>,
        /// Reject expression (`None`: none).
        reject: Option<String>,
        /// Where to start without state (`None`: newest, as orb2orb).
        start: Option<Start>,
        /// Link state file.
        state: PathBuf,
        /// Also archive what is read, as this reap rule does.
        archive: Option<Box<ReapRule>>,
    },
    /// Put the packets of a raw archive file (`orbput --from`'s replay), once.
    File {
        /// Destination orb as written.
        to: String,
        /// Its address.
        #[serde(skip)]
        to_addr: OrbAddr,
        /// The raw packet file (resolved).
        file: PathBuf,
        /// State file: packets of the file put so far.
        state: PathBuf,
    },
    /// Put one literal packet, once (remembered in the state file).
    Put {
        /// Destination orb as written.
        to: String,
        /// Its address.
        #[serde(skip)]
        to_addr: OrbAddr,
        /// The packet's srcname.
        #[serde(serialize_with = "srcname_text")]
        srcname: SrcName,
        /// The packet's time (`None`: when it is put).
        time: Option<Time>,
        /// The payload bytes (the string's UTF-8).
        payload: String,
        /// State file that records the put.
        state: PathBuf,
    },
}

fn srcname_text<S: serde::Serializer>(n: &SrcName, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(n.as_str())
}
