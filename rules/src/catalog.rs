//! The catalog: what a reaper wrote, one JSON line per file written or grown, and
//! [`find`] over it.
//!
//! Each rule file has its catalog file, `<catalog dir>/<rule file stem>.jsonl`. A
//! batch file gets one line; an append-mode file gets a line each time it is flushed,
//! and the latest line for a path wins. Lines are appended with one `write` and
//! synced; a torn last line (a crash mid-write) is skipped when reading.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use formats::write::{FileSummary, Format};
use formats::Time;
use serde::{Deserialize, Serialize};

use crate::SrcSelect;

/// One archive file: its sidecar JSON and its catalog line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    /// The file, as the reaper named it.
    pub path: PathBuf,
    /// The rule that wrote it.
    pub rule: String,
    /// Its format.
    pub format: Format,
    /// What it holds.
    #[serde(flatten)]
    pub summary: FileSummary,
}

/// The catalog could not be read or written.
#[derive(Debug, thiserror::Error)]
// The system's reason is in the message, not a `source`, so that `{:#}` chains do
// not print it twice.
#[error("catalog {}: {reason}", path.display())]
pub struct CatalogError {
    /// The catalog file or directory.
    pub path: PathBuf,
    /// What the system said.
    pub reason: std::io::Error,
}

/// Appends one record to the catalog file, creating it (and its directory).
pub fn append(catalog_file: &Path, record: &FileRecord) -> Result<(), CatalogError> {
    let err = |reason| CatalogError {
        path: catalog_file.to_owned(),
        reason,
    };
    let mut line = serde_json::to_vec(record).map_err(|e| err(std::io::Error::other(e)))?;
    line.push(b'\n');
    std::fs::create_dir_all(crate::atomic::parent(catalog_file)).map_err(err)?;
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(catalog_file)
        .map_err(err)?;
    f.write_all(&line).map_err(err)?;
    f.sync_data().map_err(err)
}

/// Every file the catalogs in `dir` list, the latest record per path, sorted by path.
pub fn read_dir(dir: &Path) -> Result<Vec<FileRecord>, CatalogError> {
    let err = |reason| CatalogError {
        path: dir.to_owned(),
        reason,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let mut latest = BTreeMap::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|reason| CatalogError {
            path: f.clone(),
            reason,
        })?;
        // A line that does not parse is a torn last write; later lines still count.
        for r in text
            .lines()
            .filter_map(|l| serde_json::from_str::<FileRecord>(l).ok())
        {
            latest.insert(r.path.clone(), r);
        }
    }
    Ok(latest.into_values().collect())
}

/// The records holding data of a selected srcname that overlaps `[from, to]`
/// (either bound open when `None`).
pub fn find<'a>(
    records: &'a [FileRecord],
    select: &SrcSelect,
    from: Option<Time>,
    to: Option<Time>,
) -> Vec<&'a FileRecord> {
    records
        .iter()
        .filter(|r| r.summary.srcnames.iter().any(|s| select.matches(s)))
        .filter(|r| {
            let s = &r.summary;
            // `end` is just after the last sample: a file ending at `from` holds none of it.
            let ends_before = matches!((s.end, from), (Some(e), Some(f)) if e <= f);
            let starts_after = matches!((s.start, to), (Some(b), Some(t)) if b > t);
            !ends_before && !starts_after
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str, src: &str, start: i64, end: i64, packets: u64) -> FileRecord {
        FileRecord {
            path: path.into(),
            rule: "r".into(),
            format: Format::Json,
            summary: FileSummary {
                first_pktid: Some(1),
                last_pktid: Some(packets),
                packets,
                srcnames: [src.to_owned()].into(),
                start: Some(Time::from_micros(start)),
                end: Some(Time::from_micros(end)),
                samples: 0,
                bytes: None,
            },
        }
    }

    #[test]
    fn latest_line_wins_and_find_filters() {
        let dir = tempfile::tempdir().unwrap();
        let cat = dir.path().join("rules.jsonl");
        append(&cat, &record("a.jsonl", "TA_A/MGENC/X", 0, 10, 1)).unwrap();
        append(&cat, &record("b.jsonl", "TA_B/MGENC/X", 20, 30, 1)).unwrap();
        append(&cat, &record("a.jsonl", "TA_A/MGENC/X", 0, 15, 2)).unwrap();
        // A torn line at the end is skipped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&cat)
            .unwrap()
            .write_all(b"{\"path\":")
            .unwrap();
        let all = read_dir(dir.path()).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].summary.packets, 2);
        let sel = SrcSelect::new(Some("TA_A/.*"), None).unwrap();
        assert_eq!(find(&all, &sel, None, None).len(), 1);
        let every = SrcSelect::all();
        let t = Time::from_micros;
        assert_eq!(find(&all, &every, Some(t(16)), Some(t(19))).len(), 0);
        assert_eq!(find(&all, &every, Some(t(15)), None).len(), 1);
        assert_eq!(find(&all, &every, None, Some(t(20))).len(), 2);
    }
}
