//! [`ReapRule`]: read packets from an orb and archive them as files.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use formats::meta::Inventory;

use formats::write::Format;
use formats::Time;
use orbclient::OrbAddr;
use serde::{Serialize, Serializer};

use crate::template::{PathTemplate, SdsTemplate};
use crate::SrcSelect;

/// Where a rule starts reading when it has no state yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// The oldest packet the orb holds (the default).
    Oldest,
    /// Only packets that arrive from now on.
    Newest,
    /// This pktid.
    Pktid(u64),
    /// The first packet after this time.
    Time(Time),
}

impl Start {
    /// The position as [`orbclient::OrbClient::position`] reads it. A time is written
    /// as epoch seconds with a `.`, so it is never read as a pktid.
    pub fn position_spec(&self) -> String {
        match self {
            Start::Oldest => "oldest".to_owned(),
            Start::Newest => "newest".to_owned(),
            Start::Pktid(p) => p.to_string(),
            Start::Time(t) => {
                let s = t.to_epoch_string();
                if s.contains('.') {
                    s
                } else {
                    format!("{s}.0")
                }
            }
        }
    }
}

/// When a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Read as packets arrive (no `every`).
    Continuous,
    /// Wait `delay`, run, then run again every `every` (measured from run start).
    Every {
        /// Wait before the first run.
        delay: Duration,
        /// Period between run starts.
        every: Duration,
    },
}

/// How packets are laid out in files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A new file per batch (per read of `packets_per_read` packets), named by pktids.
    Batch,
    /// A rolling file per rendered path, appended to and resumed after a restart.
    Append,
}

/// One `[[reap]]` rule, checked; see docs/RULES.md for each field.
#[derive(Debug, Clone, Serialize)]
pub struct ReapRule {
    /// Unique name: logs, catalog, default state file.
    pub name: String,
    /// Value of `{collection}` (default: the name).
    pub collection: String,
    /// The orb as written.
    pub orb: String,
    /// The orb's address.
    #[serde(skip)]
    pub addr: OrbAddr,
    /// Select expression (`None`: every srcname).
    pub select: Option<String>,
    /// Reject expression (`None`: none).
    pub reject: Option<String>,
    /// The compiled select/reject pair.
    #[serde(skip)]
    pub filter: SrcSelect,
    /// Where to start without state.
    pub start: Start,
    /// When to read.
    pub schedule: Schedule,
    /// Packets per read: at most this many per batch in batch mode; packets between
    /// flushes in append mode.
    pub packets_per_read: u32,
    /// Reads per scheduled run (`None`: until the orb has nothing more).
    pub reads_per_run: Option<u32>,
    /// Append mode (`None` in batch mode): the longest appended packets wait before
    /// they are written out and the state saved.
    pub flush: Option<Duration>,
    /// Batch mode (`None` in append mode): the longest a batch stays open (from its
    /// first packet) before it is written out, however few packets it has.
    pub max_batch_age: Option<Duration>,
    /// File format.
    pub format: Format,
    /// Which netCDF classic variant a `netcdf` rule writes (`cdf2` unless the rule
    /// asks for `cdf1`, for readers older than netCDF 3.6).
    pub netcdf_version: NetcdfVersion,
    /// The station metadata file (StationXML or TOML table, resolved) of a netcdf,
    /// cdl or json rule: its own `stations`, else the rule file's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stations: Option<PathBuf>,
    /// What `stations` holds, loaded when the rule file was.
    #[serde(skip)]
    pub metadata: Option<Arc<Inventory>>,
    /// Path template, relative to `root` unless absolute.
    #[serde(serialize_with = "as_text")]
    pub path: PathTemplate,
    /// For format `sds`, the day files' path (`path` with the SDS layout below it, or
    /// `path` itself when it has `%` codes); `None` for the other formats.
    #[serde(
        serialize_with = "sds_as_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub sds_path: Option<SdsTemplate>,
    /// Directory of the rule file: relative paths start here.
    pub root: PathBuf,
    /// Batch or append.
    pub mode: Mode,
    /// In append mode, the period after which a new file starts (`None`: files change
    /// only when the rendered path does).
    pub roll: Option<Duration>,
    /// State file (resolved).
    pub state: PathBuf,
}

/// The netCDF classic variant of a `netcdf` rule's files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetcdfVersion {
    /// CDF-1, the classic format (32-bit offsets; files up to about 2 GiB).
    Cdf1,
    /// CDF-2, the 64-bit offset format: the default.
    #[default]
    Cdf2,
}

impl From<NetcdfVersion> for formats::write::netcdf::CdfVersion {
    fn from(v: NetcdfVersion) -> Self {
        match v {
            NetcdfVersion::Cdf1 => formats::write::netcdf::CdfVersion::Classic,
            NetcdfVersion::Cdf2 => formats::write::netcdf::CdfVersion::Offset64,
        }
    }
}

fn as_text<S: Serializer>(t: &PathTemplate, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.as_str())
}

fn sds_as_text<S: Serializer>(t: &Option<SdsTemplate>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(t.as_str()),
        None => s.serialize_none(),
    }
}
