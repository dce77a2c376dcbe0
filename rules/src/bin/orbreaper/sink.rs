//! What batch and append mode share: the rule's context, decoding, and publishing a
//! finished or grown file (sidecar JSON, catalog line, log line).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use formats::payload::Channel;
use formats::write::{FileSummary, Format};
use formats::{Packet, SrcName, Time};
use rules::catalog::{self, FileRecord};
use rules::groups::RateGroup;
use rules::state::ReapState;
use rules::template::Values;
use rules::{Mode, ReapRule};

use crate::append::AppendSink;
use crate::batch::BatchSink;

/// A running rule and where its files are cataloged.
pub struct RuleCtx {
    /// The rule.
    pub rule: ReapRule,
    /// Its rule file's catalog.
    pub catalog_file: PathBuf,
}

impl RuleCtx {
    /// The context of `rule`, cataloged in `catalog_file`.
    pub fn new(rule: ReapRule, catalog_file: PathBuf) -> RuleCtx {
        RuleCtx { rule, catalog_file }
    }

    /// `orbreaper: RULE:` for log lines.
    pub fn log(&self, msg: std::fmt::Arguments<'_>) {
        eprintln!("orbreaper: {}: {msg}", self.rule.name);
    }

    /// The path for these values, resolved against the rule file's directory.
    pub fn path(
        &self,
        srcname: &SrcName,
        time: Time,
        first: Option<u64>,
        last: Option<u64>,
    ) -> PathBuf {
        let r = &self.rule;
        let rel = r.path.render(&Values {
            collection: &r.collection,
            rule: &r.name,
            ext: r.format.extension(),
            srcname,
            time,
            first_pktid: first,
            last_pktid: last,
        });
        r.root.join(rel)
    }

    /// Writes `path`'s sidecar and catalog line and logs what the file holds.
    pub fn publish(&self, path: &Path, summary: &FileSummary, verb: &str) -> anyhow::Result<()> {
        let record = FileRecord {
            path: path.to_owned(),
            rule: self.rule.name.clone(),
            format: self.rule.format,
            summary: summary.clone(),
        };
        let mut json = serde_json::to_vec_pretty(&record)?;
        json.push(b'\n');
        let sidecar = sidecar_path(path);
        rules::atomic::write_atomic(&sidecar, &json)
            .with_context(|| format!("cannot write {}", sidecar.display()))?;
        catalog::append(&self.catalog_file, &record)?;
        let pktids = match (summary.first_pktid, summary.last_pktid) {
            (Some(a), Some(b)) => format!("pktids {a}-{b}"),
            _ => "no pktids".to_owned(),
        };
        self.log(format_args!(
            "{verb} {} (packets: {}, {pktids}, samples: {})",
            path.display(),
            summary.packets,
            summary.samples
        ));
        Ok(())
    }
}

/// `<file>.json`.
pub fn sidecar_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// Decodes a packet's samples; packets without a known payload have none (formats
/// that need samples then refuse them, and the sink skips them with one warning).
pub fn channels(p: &Packet) -> Vec<Channel> {
    formats::payload::decode(&p.srcname, p.time, &p.payload).unwrap_or_default()
}

/// A packet's channels in the groups the rule's format stores one per file: several
/// for a multi-rate packet in netCDF or CDL, else one group holding them all (see
/// [`rules::groups`]).
pub fn groups(ctx: &RuleCtx, p: &Packet) -> Vec<RateGroup> {
    rules::groups::split(ctx.rule.format, channels(p))
}

/// Remembers which sources were reported as unwritable, to say it once per source.
#[derive(Default)]
pub struct SkipWarnings(HashSet<String>);

impl SkipWarnings {
    /// Logs, once per source, that a packet is skipped and why.
    pub fn skip(&mut self, ctx: &RuleCtx, p: &Packet, format: Format, why: &str) {
        if self.0.insert(p.srcname.as_str().to_owned()) {
            ctx.log(format_args!(
                "skipping packets of {} (first: pktid {}): format {format} cannot hold them: {why}",
                p.srcname, p.pktid
            ));
        }
    }
}

/// A rule's open files, in its mode.
pub enum Sink {
    Batch(BatchSink),
    Append(AppendSink),
}

impl Sink {
    /// The sink for the rule's mode.
    pub fn new(ctx: std::sync::Arc<RuleCtx>) -> Sink {
        match ctx.rule.mode {
            Mode::Batch => Sink::Batch(BatchSink::new(ctx)),
            Mode::Append => Sink::Append(AppendSink::new(ctx)),
        }
    }

    /// Adds one packet (writing files out when a batch is full).
    pub fn add(&mut self, p: &Packet, state: &mut ReapState) -> anyhow::Result<()> {
        match self {
            Sink::Batch(s) => s.add(p, state),
            Sink::Append(s) => s.add(p, state),
        }
    }

    /// Writes out what waits: a partial batch, or appended packets; saves state.
    pub fn flush(&mut self, state: &mut ReapState) -> anyhow::Result<()> {
        match self {
            Sink::Batch(s) => s.commit(state),
            Sink::Append(s) => s.flush(state),
        }
    }
}
