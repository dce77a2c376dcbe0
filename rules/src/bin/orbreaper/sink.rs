//! What batch and append mode share: the rule's context, decoding, publishing a
//! finished or grown file (sidecar JSON, catalog line), and the rule's log: one
//! summary line per [`SUMMARY_EVERY`] instead of a line per file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// How often a busy rule logs what it did (an idle one logs nothing).
pub const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// What a rule did since its last summary line.
#[derive(Default)]
struct Tally {
    /// New files (batch files written, append files started).
    written: u64,
    /// Flushes that grew an existing append-mode file.
    appended: u64,
    /// Packets read from the orb.
    packets: u64,
    /// Bytes the files grew by.
    bytes: u64,
    /// Where the archive is: the state's pktid and time.
    position: Option<(u64, Time)>,
    /// When the last summary was logged (or the rule started).
    since: Option<Instant>,
}

/// A running rule and where its files are cataloged.
pub struct RuleCtx {
    /// The rule.
    pub rule: ReapRule,
    /// Its rule file's catalog.
    pub catalog_file: PathBuf,
    tally: Mutex<Tally>,
    /// Whether the rule said where it resumes (once per process).
    announced: AtomicBool,
}

impl RuleCtx {
    /// The context of `rule`, cataloged in `catalog_file`.
    pub fn new(rule: ReapRule, catalog_file: PathBuf) -> RuleCtx {
        RuleCtx {
            rule,
            catalog_file,
            tally: Mutex::new(Tally {
                since: Some(Instant::now()),
                ..Tally::default()
            }),
            announced: AtomicBool::new(false),
        }
    }

    /// `orbreaper: RULE:` for log lines.
    pub fn log(&self, msg: std::fmt::Arguments<'_>) {
        eprintln!("orbreaper: {}: {msg}", self.rule.name);
    }

    /// Logs, the first time it is called in this process, where the rule resumes:
    /// after the state file's pktid, or at its start position without one.
    pub fn announce(&self, state: &ReapState) {
        if self.announced.swap(true, Ordering::Relaxed) {
            return;
        }
        let file = self.rule.state.display();
        match (state.pktid, state.time) {
            (Some(p), Some(t)) => self.log(format_args!(
                "resuming after pktid {p} ({t}), from state file {file}"
            )),
            (Some(p), None) => self.log(format_args!(
                "resuming after pktid {p}, from state file {file}"
            )),
            (None, _) => self.log(format_args!(
                "no state file {file} yet: starting at {}",
                self.rule.start.position_spec()
            )),
        }
    }

    fn with_tally(&self, f: impl FnOnce(&mut Tally)) {
        // A panic elsewhere cannot leave the counters unusable.
        let mut t = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut t);
    }

    /// Counts a packet read from the orb.
    pub fn count_packet(&self) {
        self.with_tally(|t| t.packets += 1);
    }

    /// Counts a file written (`new`) or grown, by `bytes`.
    pub fn count_file(&self, new: bool, bytes: u64) {
        self.with_tally(|t| {
            if new {
                t.written += 1;
            } else {
                t.appended += 1;
            }
            t.bytes += bytes;
        });
    }

    /// Remembers where the archive is, for the next summary.
    pub fn note_position(&self, state: &ReapState) {
        if let (Some(p), Some(t)) = (state.pktid, state.time) {
            self.with_tally(|tally| tally.position = Some((p, t)));
        }
    }

    /// Logs one line of what the rule did since the last one, if anything, when
    /// [`SUMMARY_EVERY`] has passed (or always, with `now`: at the end of a run).
    pub fn summary(&self, now: bool) {
        let mut line = None;
        self.with_tally(|t| {
            let since = t.since.map_or(Duration::ZERO, |s| s.elapsed());
            let idle = t.written == 0 && t.appended == 0 && t.packets == 0;
            if idle || (!now && since < SUMMARY_EVERY) {
                return;
            }
            let position = match t.position {
                Some((p, time)) => format!("archived through pktid {p} ({time})"),
                None => "nothing archived yet".to_owned(),
            };
            line = Some(format!(
                "last {}: {} packets, {} files written, {} appended to, {}; {position}",
                orbclient::cli::human_secs(since.as_secs_f64()),
                t.packets,
                t.written,
                t.appended,
                orbclient::cli::human_bytes(t.bytes),
            ));
            *t = Tally {
                position: t.position,
                since: Some(Instant::now()),
                ..Tally::default()
            };
        });
        if let Some(l) = line {
            self.log(format_args!("{l}"));
        }
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

    /// The day file of an SDS rule for `key` and `day`, resolved against the rule
    /// file's directory.
    pub fn sds_path(&self, key: &formats::write::sds::StreamKey, day: Time) -> PathBuf {
        let r = &self.rule;
        let rel = match &r.sds_path {
            Some(t) => t.render(key, day),
            // Rule files always give an SDS rule its template; keep the layout anyway.
            None => rules::template::SdsTemplate::from_rule_path(".")
                .map(|t| t.render(key, day))
                .unwrap_or_default(),
        };
        r.root.join(rel)
    }

    /// Writes `path`'s sidecar and catalog line.
    pub fn publish(&self, path: &Path, summary: &FileSummary) -> anyhow::Result<()> {
        let record = self.write_sidecar(path, summary)?;
        catalog::append(&self.catalog_file, &record)?;
        Ok(())
    }

    /// Writes `path`'s sidecar alone (atomically and durably), returning its record.
    pub fn write_sidecar(&self, path: &Path, summary: &FileSummary) -> anyhow::Result<FileRecord> {
        let record = FileRecord {
            path: path.to_owned(),
            rule: self.rule.name.clone(),
            format: self.rule.format,
            summary: summary.clone(),
        };
        let mut json = serde_json::to_vec_pretty(&record)?;
        json.push(b'\n');
        let sidecar = sidecar_path(path, self.rule.format);
        rules::atomic::write_atomic(&sidecar, &json)
            .with_context(|| format!("cannot write {}", sidecar.display()))?;
        Ok(record)
    }

    /// The summary in `path`'s sidecar, if it has a readable one.
    pub fn read_sidecar(&self, path: &Path) -> Option<FileSummary> {
        let bytes = std::fs::read(sidecar_path(path, self.rule.format)).ok()?;
        serde_json::from_slice::<FileRecord>(&bytes)
            .ok()
            .map(|r| r.summary)
    }
}

/// `<file>.json`; for an SDS day file the hidden `.<file>.json`, since SDS readers
/// find day files by globs like ObsPy's `*.*.*.*.D.*.*`, which would match
/// `<file>.json` too and fail on it.
pub fn sidecar_path(path: &Path, format: Format) -> PathBuf {
    if format == Format::Sds {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        return path.with_file_name(format!(".{name}.json"));
    }
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

    /// When what waits must be written out, if anything waits: the open batch's
    /// `max_batch_age` after its first packet, or `flush` after the first packet
    /// appended since the last flush.
    pub fn deadline(&self) -> Option<Instant> {
        match self {
            Sink::Batch(s) => s.deadline(),
            Sink::Append(s) => s.deadline(),
        }
    }
}
