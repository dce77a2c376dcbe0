//! Batch mode: each read of `packets_per_read` packets becomes new files (one per
//! rendered path and rate group), named by pktids. A batch also ends when it is
//! `max_batch_age` old (from its first packet), at the end of a scheduled run, and
//! when a file refuses a packet.
//!
//! Commit order, so that a kill at any point loses nothing and duplicates nothing:
//! 1. finish each file under its temporary name and `fsync` it;
//! 2. save the state with these files as `pending` (temporary and final names);
//! 3. rename each to its final name (and `fsync` the directory);
//! 4. write each sidecar and catalog line;
//! 5. save the state advanced past the batch, with nothing pending.
//!
//! A restart after step 2 finishes steps 3 to 5 from the state ([`finish_pending`]);
//! before it, the batch is read again from the orb, and its temporary files are
//! simply rewritten.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use formats::write::WriteError;
use formats::{Packet, SrcName, Time};
use rules::atomic::{parent, rename_durable};
use rules::groups::{labeled, RateGroup};
use rules::output::{self, BoxWriter};
use rules::state::{Pending, ReapState};

use crate::sink::{groups, RuleCtx, SkipWarnings};

struct BatchFile {
    /// The path rendered without pktids and times: packets with the same key share a file.
    key: String,
    writer: BoxWriter,
    /// A handle on the same file, to `fsync` it.
    file: File,
    temp: PathBuf,
    first: (SrcName, Time),
    /// The rate group's file name label (see [`rules::groups`]).
    label: Option<String>,
}

/// Batch mode's open files; see the module docs.
pub struct BatchSink {
    ctx: Arc<RuleCtx>,
    open: Vec<BatchFile>,
    count: u32,
    /// Last packet read in this batch (written or skipped).
    last: Option<(u64, Time)>,
    /// When the batch's first packet was read: the batch is written out
    /// `max_batch_age` later if it is not full by then.
    opened: Option<Instant>,
    skips: SkipWarnings,
}

impl BatchSink {
    /// An empty batch.
    pub fn new(ctx: Arc<RuleCtx>) -> BatchSink {
        BatchSink {
            ctx,
            open: Vec::new(),
            count: 0,
            last: None,
            opened: None,
            skips: SkipWarnings::default(),
        }
    }

    /// Adds a packet to its files of the batch (one per rate group, see
    /// [`rules::groups`]); commits the batch when it is full or when a file refuses the
    /// packet (which then starts the next batch).
    pub fn add(&mut self, p: &Packet, state: &mut ReapState) -> anyhow::Result<()> {
        for (i, g) in groups(&self.ctx, p).iter().enumerate() {
            // Only a refusal of the packet's first group may end the batch: once part
            // of the packet is in it, the batch must take all of it, as the state
            // advances by whole packets.
            let part_in_batch = i > 0;
            if !self.try_add(p, g, part_in_batch)? {
                // It belongs in a new file: write out this batch and start the next with it.
                self.commit(state)?;
                // With no file open, the packet starts a new one or is skipped.
                self.try_add(p, g, part_in_batch)?;
            }
        }
        self.last = Some((p.pktid, p.time));
        self.opened.get_or_insert_with(Instant::now);
        self.count += 1;
        if self.count >= self.ctx.rule.packets_per_read {
            self.commit(state)?;
        }
        Ok(())
    }

    /// Appends `g` of `p` to its file; `false` if that file (not new) refuses it and
    /// `part_in_batch` is false. With `part_in_batch`, a refused group starts a second
    /// file of its key in this batch instead.
    fn try_add(&mut self, p: &Packet, g: &RateGroup, part_in_batch: bool) -> anyhow::Result<bool> {
        let key = g.path(&self.ctx.path(&p.srcname, Time::UNIX_EPOCH, None, None));
        let key = key.to_string_lossy().into_owned();
        let mut fresh = None;
        // Bounded: the second round writes to a fresh file, which the third arm below
        // cannot reach.
        loop {
            // The newest file of the key: a batch may hold two (see above).
            let i = match fresh.or_else(|| self.open.iter().rposition(|f| f.key == key)) {
                Some(i) => i,
                None => {
                    self.open.push(self.create(p, g, key.clone())?);
                    self.open.len() - 1
                }
            };
            let f = &mut self.open[i];
            match f.writer.append(p, &g.channels) {
                Ok(()) => return Ok(true),
                Err(WriteError::DoesNotFit { reason, .. }) if f.writer.summary().packets == 0 => {
                    // Not even an empty file takes it: this format cannot hold it.
                    self.skips.skip(&self.ctx, p, self.ctx.rule.format, &reason);
                    let f = self.open.remove(i);
                    let _ = std::fs::remove_file(&f.temp);
                    return Ok(true);
                }
                Err(WriteError::DoesNotFit { .. }) if part_in_batch && fresh.is_none() => {
                    self.open.push(self.create(p, g, key.clone())?);
                    fresh = Some(self.open.len() - 1);
                }
                Err(WriteError::DoesNotFit { .. }) => return Ok(false),
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot write {}", f.temp.display()))
                }
            }
        }
    }

    fn create(&self, p: &Packet, g: &RateGroup, key: String) -> anyhow::Result<BatchFile> {
        let provisional = g.path(&self.ctx.path(&p.srcname, p.time, Some(p.pktid), None));
        let dir = parent(&provisional);
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
        // The group's label keeps the groups of one packet apart.
        let label = g
            .label
            .as_ref()
            .map_or_else(String::new, |l| format!("-{l}"));
        let temp = dir.join(format!(
            ".orbreaper-{}-{}{label}.tmp",
            self.ctx.rule.name, p.pktid
        ));
        let file =
            File::create(&temp).with_context(|| format!("cannot create {}", temp.display()))?;
        let handle = file.try_clone()?;
        let stem = provisional.file_stem().map_or_else(
            || self.ctx.rule.name.clone(),
            |s| s.to_string_lossy().into_owned(),
        );
        let writer = output::create(
            self.ctx.rule.format,
            file,
            &stem,
            self.ctx.rule.netcdf_version.into(),
            self.ctx.rule.metadata.as_ref(),
        );
        Ok(BatchFile {
            key,
            writer,
            file: handle,
            temp,
            first: (p.srcname.clone(), p.time),
            label: g.label.clone(),
        })
    }

    /// When the open batch reaches `max_batch_age` (`None`: no batch is open).
    pub fn deadline(&self) -> Option<Instant> {
        let age = self
            .ctx
            .rule
            .max_batch_age
            .unwrap_or(rules::file::DEFAULT_MAX_BATCH_AGE);
        self.opened.map(|o| o + age)
    }

    /// Writes out the batch so far (see the module docs) and saves the state.
    pub fn commit(&mut self, state: &mut ReapState) -> anyhow::Result<()> {
        self.opened = None;
        let Some(through) = self.last.take() else {
            return Ok(());
        };
        let mut pending = Vec::new();
        for mut f in self.open.drain(..) {
            let s = f.writer.summary().clone();
            let path = labeled(
                &self
                    .ctx
                    .path(&f.first.0, f.first.1, s.first_pktid, s.last_pktid),
                f.label.as_deref(),
            );
            // The final name is known only now that the last pktid is: CDL's dataset
            // name is the file's stem (docs/FORMATS.md), so it is set before the text
            // is written.
            if let Some(stem) = path.file_stem() {
                f.writer.set_dataset_name(&stem.to_string_lossy());
            }
            f.writer
                .finish()
                .with_context(|| format!("cannot finish {}", f.temp.display()))?;
            f.file
                .sync_all()
                .with_context(|| format!("cannot sync {}", f.temp.display()))?;
            pending.push(Pending {
                temp: f.temp,
                path,
                format: self.ctx.rule.format,
                summary: s,
            });
        }
        self.count = 0;
        state.pending = pending;
        state.pending_through = Some(through);
        if !state.pending.is_empty() {
            state.save(&self.ctx.rule.state)?;
        }
        finish_pending(&self.ctx, state)
    }
}

/// Steps 3 to 5 of the module docs for the state's pending files; also what a
/// restart does first.
pub fn finish_pending(ctx: &RuleCtx, state: &mut ReapState) -> anyhow::Result<()> {
    for p in &state.pending {
        if p.temp.exists() {
            rename_durable(&p.temp, &p.path).with_context(|| {
                format!("cannot rename {} to {}", p.temp.display(), p.path.display())
            })?;
        } else if !p.path.exists() {
            anyhow::bail!(
                "{} and its temporary file {} are both missing; the state file {} lists it as written: restore the file or remove its entry from the state",
                p.path.display(),
                p.temp.display(),
                ctx.rule.state.display()
            );
        }
        ctx.publish(&p.path, &p.summary)?;
        let bytes = std::fs::metadata(&p.path).map_or(0, |m| m.len());
        ctx.count_file(true, bytes);
    }
    state.pending.clear();
    if let Some((pktid, time)) = state.pending_through.take() {
        state.advance(pktid, time);
    }
    state.save(&ctx.rule.state)?;
    Ok(())
}
