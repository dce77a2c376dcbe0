//! Reaping and ingest rules, and the orbreaper engine that runs them.
//!
//! - [`select`]: [`SrcSelect`], Antelope's select/reject pair of regular
//!   expressions, each matched against the whole srcname (defined in `formats`, which
//!   the server shares, and re-exported here).
//! - [`file`](mod@file): [`RuleFile`], a TOML rule file parsed and checked; errors are
//!   [`RuleError`]s ([`error`]) naming file, line and field.
//! - [`reap_rule`], [`ingest_rule`], [`detect_rule`]: the checked rules (detect rules
//!   also define the trigger and event packets and their state file).
//! - [`template`]: path templates and the safe-name rule for srcnames in paths.
//! - [`groups`]: splitting multi-rate packets into one file per sample-rate
//!   group for netCDF and CDL.
//! - [`detect`]: the detection core (band-pass, STA/LTA, trigger onset, network
//!   coincidence) as streaming state, exact against ObsPy.
//! - [`state`], [`catalog`], [`atomic`]: what orbreaper keeps on disk to resume
//!   exactly once and to find files again.
//!
//! The rules and their guarantees are documented in `docs/RULES.md`.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod atomic;
pub mod catalog;
pub mod detect;
pub mod detect_rule;
pub mod error;
pub mod file;
pub mod groups;
pub mod ingest_rule;
pub mod output;
pub mod reap_rule;
pub mod state;
pub mod template;

pub use detect_rule::DetectRule;
pub use error::{RuleError, RuleWarning};
pub use file::RuleFile;
pub use formats::select::{self, SelectError, SrcSelect, MAX_REGEX_LEN};
pub use ingest_rule::{IngestAction, IngestRule};
pub use reap_rule::{Mode, NetcdfVersion, ReapRule, Schedule, Start};
pub use template::{safe_name, PathTemplate, TemplateError};
