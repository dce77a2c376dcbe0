//! Append mode: one growing file per rendered path (and rate group, for a multi-rate
//! packet in netCDF; see [`rules::groups`]); the file is the truth for what it holds.
//!
//! A flush writes each grown file's records, then its header ([`PacketWriter::flush`]),
//! `fsync`s it, writes its sidecar and catalog line, and only then saves the state. On
//! restart the rule reads on after the state's pktid, and each file, resumed,
//! skips the packets at or below its own last pktid: whatever reached a file before a
//! kill is not written again, and nothing after the state is missed.
//!
//! A new file is written under a temporary name (`.<name>.tmp`) and renamed into
//! place at its first flush, so a file under its final name always starts with a
//! complete header.
//!
//! SDS day files ([`formats::write::sds`]) differ: a packet goes to one file per channel
//! and UTC day, each file is created under its final name (miniSEED has no header), and
//! its sidecar, written before the first append and after each flush, records the
//! length a restart cuts it back to (miniSEED records carry no pktid).
//!
//! When a file refuses a packet ([`WriteError::DoesNotFit`]: another sample rate or
//! channel set), the packet starts `<stem>_1.<ext>`, then `_2`, and so on; after a
//! restart the highest existing number is the file appended to.
//!
//! [`PacketWriter::flush`]: formats::write::PacketWriter::flush

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use formats::payload::Channel;
use formats::write::{sds, Format, WriteError};
use formats::{Packet, Time};
use rules::atomic::{parent, rename_durable, temp_path};
use rules::output::{self, BoxWriter};
use rules::state::ReapState;

use crate::sink::{channels, groups, RuleCtx, SkipWarnings};

/// Files not written for this long are closed (they reopen if needed).
const IDLE_CLOSE: Duration = Duration::from_secs(600);

struct AppendFile {
    path: PathBuf,
    /// `_N` number of `path` (0: the template's own name).
    number: u32,
    writer: BoxWriter,
    file: File,
    dirty: bool,
    /// A new file is written under this temporary name until its first flush, so the
    /// final name never holds a file without a complete header (which `resume` could
    /// not continue).
    temp: Option<PathBuf>,
    used: Instant,
    /// Its length when last published, for the rule's summary of bytes written.
    size: u64,
}

/// Append mode's open files; see the module docs.
pub struct AppendSink {
    ctx: Arc<RuleCtx>,
    /// By the template's path with its rate group's label (before any `_N`).
    open: HashMap<PathBuf, AppendFile>,
    since_flush: u32,
    /// When the first packet since the last flush was read: the next flush is due
    /// `flush` later.
    unflushed_since: Option<Instant>,
    last: Option<(u64, Time)>,
    skips: SkipWarnings,
}

impl AppendSink {
    /// No files open yet.
    pub fn new(ctx: Arc<RuleCtx>) -> AppendSink {
        AppendSink {
            ctx,
            open: HashMap::new(),
            since_flush: 0,
            unflushed_since: None,
            last: None,
            skips: SkipWarnings::default(),
        }
    }

    /// Appends a packet to its files, one per rate group (see [`rules::groups`]),
    /// skipping a group whose file already holds the packet, and flushes every
    /// `packets_per_read` packets.
    pub fn add(&mut self, p: &Packet, state: &mut ReapState) -> anyhow::Result<()> {
        let time = match self.ctx.rule.roll {
            Some(roll) => floor(p.time, roll),
            None => p.time,
        };
        if self.ctx.rule.format == Format::Sds {
            self.add_sds(p)?;
        } else {
            let path = self.ctx.path(&p.srcname, time, None, None);
            for g in groups(&self.ctx, p) {
                // Each group's file keeps its own last pktid, so after a restart each
                // group is written exactly once however far its file had got.
                self.add_group(p, &g.path(&path), &g.channels)?;
            }
        }
        self.last = Some((p.pktid, p.time));
        self.unflushed_since.get_or_insert_with(Instant::now);
        self.since_flush += 1;
        if self.since_flush >= self.ctx.rule.packets_per_read {
            self.flush(state)?;
        }
        Ok(())
    }

    /// Appends a packet to its SDS day files, one per channel and UTC day (see
    /// [`formats::write::sds`]); each file keeps its own last pktid, like a rate
    /// group's.
    fn add_sds(&mut self, p: &Packet) -> anyhow::Result<()> {
        let pieces = match sds::split(p, &channels(p)) {
            Ok(pieces) if pieces.is_empty() => {
                self.skips
                    .skip(&self.ctx, p, Format::Sds, "the packet holds no samples");
                return Ok(());
            }
            Ok(pieces) => pieces,
            Err(e) => {
                self.skips.skip(&self.ctx, p, Format::Sds, &e.to_string());
                return Ok(());
            }
        };
        for piece in pieces {
            let path = self.ctx.sds_path(&piece.key, piece.day);
            self.add_group(&piece.packet, &path, &piece.channels)?;
        }
        Ok(())
    }

    /// Appends `ch` of `p` to the latest file of `base`.
    fn add_group(&mut self, p: &Packet, base: &Path, ch: &[Channel]) -> anyhow::Result<()> {
        if !self.open.contains_key(base) {
            let f = self.open_latest(base)?;
            self.open.insert(base.to_owned(), f);
        }
        let mut fresh_tries = 0;
        loop {
            let f = self.open.get_mut(base).expect("opened above");
            if f.writer.summary().last_pktid.is_some_and(|l| p.pktid <= l) {
                return Ok(()); // Already in the file (written before a restart).
            }
            match f.writer.append(p, ch) {
                Ok(()) => {
                    f.dirty = true;
                    f.used = Instant::now();
                    return Ok(());
                }
                Err(WriteError::DoesNotFit { reason, .. }) => {
                    if f.writer.summary().packets == 0 || fresh_tries > 0 {
                        self.skips.skip(&self.ctx, p, self.ctx.rule.format, &reason);
                        if f.writer.summary().packets == 0 && f.temp.is_some() {
                            // Leave no empty file behind for a source this format refuses.
                            let f = self.open.remove(base).expect("open");
                            if let Some(t) = f.temp {
                                let _ = std::fs::remove_file(t);
                            }
                        }
                        return Ok(());
                    }
                    fresh_tries += 1;
                    let number = f.number + 1;
                    self.ctx.log(format_args!(
                        "pktid {} does not fit {} ({reason}); starting file number {number}",
                        p.pktid,
                        f.path.display()
                    ));
                    let old = self.open.remove(base).expect("open");
                    self.publish(old)?;
                    let next = self.create(base, number)?;
                    self.open.insert(base.to_owned(), next);
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot append to {}", f.path.display()))
                }
            }
        }
    }

    /// Opens the highest-numbered existing file for `base` (resuming it), or creates it.
    fn open_latest(&self, base: &Path) -> anyhow::Result<AppendFile> {
        let mut number = 0;
        // Bounded: each step needs an existing file.
        while numbered(base, number + 1).exists() {
            number += 1;
        }
        let path = numbered(base, number);
        if !path.exists() {
            return self.create(base, number);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let handle = file.try_clone()?;
        let size = handle.metadata().map_or(0, |m| m.len());
        let sds = self.ctx.rule.format == Format::Sds;
        let committed = if sds {
            self.ctx.read_sidecar(&path)
        } else {
            None
        };
        let r = output::resume(
            self.ctx.rule.format,
            file,
            committed.as_ref(),
            self.ctx.rule.metadata.as_ref(),
        )
        .with_context(|| format!("cannot resume {}", path.display()))?;
        if sds && committed.is_none() {
            // A day file without a sidecar was started by another program (or by us,
            // killed before its first record): record its length as committed before
            // appending, so a crash can never cut what was there.
            self.ctx.write_sidecar(&path, r.writer.summary())?;
        }
        if r.cut > 0 && sds {
            self.ctx.log(format_args!(
                "{}: cut {} bytes written after its last commit (their packets are read again)",
                path.display(),
                r.cut
            ));
        } else if r.cut > 0 {
            self.ctx.log(format_args!(
                "{}: cut {} bytes of an incomplete record left by a crash",
                path.display(),
                r.cut
            ));
        }
        Ok(AppendFile {
            path,
            number,
            writer: r.writer,
            file: handle,
            dirty: false,
            temp: None,
            used: Instant::now(),
            size,
        })
    }

    fn create(&self, base: &Path, number: u32) -> anyhow::Result<AppendFile> {
        let path = numbered(base, number);
        let dir = parent(&path);
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
        if path.exists() {
            anyhow::bail!(
                "{} exists but was not the latest file of its series; move it away",
                path.display()
            );
        }
        if self.ctx.rule.format == Format::Sds {
            return self.create_sds(path, number);
        }
        let temp = temp_path(&path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .with_context(|| format!("cannot create {}", temp.display()))?;
        let handle = file.try_clone()?;
        let stem = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let writer = output::create(
            self.ctx.rule.format,
            file,
            &stem,
            self.ctx.rule.netcdf_version.into(),
            self.ctx.rule.metadata.as_ref(),
        );
        Ok(AppendFile {
            path,
            number,
            writer,
            file: handle,
            dirty: false,
            temp: Some(temp),
            used: Instant::now(),
            size: 0,
        })
    }

    /// Starts an SDS day file under its final name (miniSEED has no header to wait
    /// for) and commits its empty length in its sidecar before anything is appended,
    /// so its sidecar always tells how much of it a restart keeps.
    fn create_sds(&self, path: PathBuf, number: u32) -> anyhow::Result<AppendFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let handle = file.try_clone()?;
        let writer = output::create(
            Format::Sds,
            file,
            "",
            self.ctx.rule.netcdf_version.into(),
            None,
        );
        self.ctx.write_sidecar(&path, writer.summary())?;
        Ok(AppendFile {
            path,
            number,
            writer,
            file: handle,
            dirty: false,
            temp: None,
            used: Instant::now(),
            size: 0,
        })
    }

    /// Makes a file's content durable and visible, then publishes it.
    fn publish(&self, mut f: AppendFile) -> anyhow::Result<AppendFile> {
        if f.dirty {
            f.writer
                .flush()
                .with_context(|| format!("cannot write {}", f.path.display()))?;
            f.file
                .sync_data()
                .with_context(|| format!("cannot sync {}", f.path.display()))?;
            let new = f.temp.is_some();
            if let Some(t) = f.temp.take() {
                rename_durable(&t, &f.path).with_context(|| {
                    format!("cannot rename {} to {}", t.display(), f.path.display())
                })?;
            }
            self.ctx.publish(&f.path, f.writer.summary())?;
            let size = f.file.metadata().map_or(f.size, |m| m.len());
            self.ctx.count_file(new, size.saturating_sub(f.size));
            f.size = size;
            f.dirty = false;
        }
        Ok(f)
    }

    /// When the packets appended since the last flush must be written out (`None`:
    /// nothing waits).
    pub fn deadline(&self) -> Option<Instant> {
        let flush = self.ctx.rule.flush.unwrap_or(rules::file::DEFAULT_FLUSH);
        self.unflushed_since.map(|t| t + flush)
    }

    /// Writes out every grown file, then saves the state past the last packet read.
    pub fn flush(&mut self, state: &mut ReapState) -> anyhow::Result<()> {
        let open = std::mem::take(&mut self.open);
        for (base, f) in open {
            let f = self.publish(f)?;
            if f.used.elapsed() < IDLE_CLOSE {
                self.open.insert(base, f);
            }
        }
        self.since_flush = 0;
        self.unflushed_since = None;
        if let Some((pktid, time)) = self.last.take() {
            state.advance(pktid, time);
            state.save(&self.ctx.rule.state)?;
        }
        Ok(())
    }
}

/// `base` for 0, else `<stem>_N.<ext>` beside it.
fn numbered(base: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return base.to_owned();
    }
    let stem = base
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let name = match base.extension() {
        Some(e) => format!("{stem}_{n}.{}", e.to_string_lossy()),
        None => format!("{stem}_{n}"),
    };
    base.with_file_name(name)
}

/// The start of the `roll` period holding `t` (periods start at the epoch).
fn floor(t: Time, roll: Duration) -> Time {
    let period = i64::try_from(roll.as_micros()).unwrap_or(i64::MAX).max(1);
    Time::from_micros(t.as_micros().div_euclid(period) * period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names() {
        let b = Path::new("a/waveform.nc");
        assert_eq!(numbered(b, 0), PathBuf::from("a/waveform.nc"));
        assert_eq!(numbered(b, 2), PathBuf::from("a/waveform_2.nc"));
        assert_eq!(numbered(Path::new("x"), 1), PathBuf::from("x_1"));
    }

    #[test]
    fn floors_to_period() {
        let day = Duration::from_secs(86_400);
        let t = Time::parse_iso8601("2026-11-22T10:05:00Z").unwrap();
        assert_eq!(
            floor(t, day),
            Time::parse_iso8601("2026-11-22T00:00:00Z").unwrap()
        );
    }
}
