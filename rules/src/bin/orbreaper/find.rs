//! `orbreaper find`: the catalog's files for a source selection and a time window.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use formats::Time;
use orbclient::cli::Stdout;
use rules::catalog::{self, FileRecord};
use rules::{RuleFile, SrcSelect};

/// What `orbreaper find` takes.
#[derive(Args, Debug)]
pub struct FindArgs {
    /// The rule file whose catalog to search: the directory its `catalog` field names,
    /// by default `catalog/` beside the rule file.
    #[arg(
        value_name = "RULES.toml",
        required_unless_present = "catalog",
        conflicts_with = "catalog"
    )]
    rules: Option<PathBuf>,
    /// Search this catalog directory (every `*.jsonl` in it) instead of a rule file's.
    #[arg(long, value_name = "DIR")]
    catalog: Option<PathBuf>,
    /// Only files holding a srcname this regex matches as a WHOLE (as orbselect and
    /// the rules' select): XX_STA02 matches only the srcname "XX_STA02"; write
    /// 'XX_STA02/.*' for every source of that station.
    // `--match` was this option's name before it was aligned with orbtail and orb2orb.
    #[arg(short = 'm', long = "select", alias = "match", value_name = "REGEX")]
    select: Option<String>,
    /// Ignore srcnames this regex matches as a whole: a file holding no other
    /// selected srcname is left out.
    #[arg(short = 'r', long = "reject", value_name = "REGEX")]
    reject: Option<String>,
    /// Only files with data at or after this time (ISO 8601, epoch seconds, or -1h).
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    from: Option<String>,
    /// Only files with data at or before this time (not earlier than --from).
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    to: Option<String>,
    /// Print each file's catalog record as a JSON line instead of its path.
    #[arg(long)]
    json: bool,
}

/// Prints the matching files, one per line, and warns on stderr about a pattern
/// that matches no catalogued srcname.
pub fn run(args: &FindArgs) -> anyhow::Result<()> {
    let select = SrcSelect::new(args.select.as_deref(), args.reject.as_deref())?;
    let now = Time::now();
    let time = |s: &Option<String>, what: &str| -> anyhow::Result<Option<Time>> {
        s.as_deref()
            .map(|t| Time::parse(t, now).with_context(|| format!("--{what}")))
            .transpose()
    };
    let from = time(&args.from, "from")?;
    let to = time(&args.to, "to")?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            anyhow::bail!("--from {f} is later than --to {t}, so no file can match; swap them");
        }
    }
    let dir = match (&args.catalog, &args.rules) {
        (Some(dir), _) => dir.clone(),
        (None, Some(rules)) => RuleFile::load(rules)?.catalog,
        (None, None) => {
            anyhow::bail!("give a rule file (orbreaper find RULES.toml) or --catalog DIR")
        }
    };
    let records = catalog::read_dir(&dir)?;
    if records.is_empty() {
        eprintln!(
            "orbreaper: warning: the catalog {} lists no files",
            dir.display()
        );
    }
    for w in pattern_warnings(&records, args.select.as_deref(), args.reject.as_deref()) {
        eprintln!("orbreaper: warning: {w}");
    }
    let mut out = Stdout::new();
    for r in catalog::find(&records, &select, from, to) {
        if args.json {
            writeln!(out, "{}", serde_json::to_string(r)?)?;
        } else {
            writeln!(out, "{}", r.path.display())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// A line for each pattern (`-m`, `-r`) that matches no srcname of `records`: a
/// whole-srcname match is easy to mistake for a search, and then finds nothing
/// without a word. An empty catalog gets no such lines (it is reported on its own).
fn pattern_warnings(
    records: &[FileRecord],
    select: Option<&str>,
    reject: Option<&str>,
) -> Vec<String> {
    let names: BTreeSet<&str> = records
        .iter()
        .flat_map(|r| r.summary.srcnames.iter().map(String::as_str))
        .collect();
    let Some(example) = names.first() else {
        return Vec::new();
    };
    let matches_any =
        |p: &str| SrcSelect::new(Some(p), None).is_ok_and(|s| names.iter().any(|n| s.matches(n)));
    let mut out = Vec::new();
    if let Some(p) = select.filter(|p| !p.is_empty() && !matches_any(p)) {
        // The pattern as a prefix, else anywhere in the name, if either finds files.
        let hint = [
            (format!("(?:{p}).*"), format!("{p}.*")),
            (format!(".*(?:{p}).*"), format!(".*{p}.*")),
        ]
        .into_iter()
        .find(|(re, _)| matches_any(re))
        .map_or_else(String::new, |(_, shown)| {
            format!("; did you mean '{shown}'?")
        });
        out.push(format!(
            "-m/--select '{p}' matches no catalogued srcname, so nothing is found: it must match a whole srcname, like {example}{hint}"
        ));
    }
    if let Some(p) = reject.filter(|p| !p.is_empty() && !matches_any(p)) {
        out.push(format!(
            "-r/--reject '{p}' matches no catalogued srcname, so it leaves nothing out: it must match a whole srcname, like {example}"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use formats::write::{FileSummary, Format};

    use super::*;

    fn record(srcnames: &[&str]) -> FileRecord {
        FileRecord {
            path: "a.jsonl".into(),
            rule: "r".into(),
            format: Format::Json,
            summary: FileSummary {
                srcnames: srcnames.iter().map(|s| (*s).to_owned()).collect(),
                ..FileSummary::default()
            },
        }
    }

    #[test]
    fn a_pattern_matching_no_whole_srcname_is_reported() {
        let recs = [record(&["XX_STA01/MGENC/M40", "XX_STA02/MGENC/M40"])];
        assert!(pattern_warnings(&recs, Some("XX_STA02/.*"), Some(".*/M40")).is_empty());
        assert!(pattern_warnings(&recs, None, None).is_empty());
        let w = pattern_warnings(&recs, Some("XX_STA02"), None);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("-m/--select 'XX_STA02' matches no catalogued srcname"));
        assert!(w[0].ends_with("did you mean 'XX_STA02.*'?"), "{}", w[0]);
        let w = pattern_warnings(&recs, Some("STA01"), None);
        assert!(w[0].ends_with("did you mean '.*STA01.*'?"), "{}", w[0]);
        let w = pattern_warnings(&recs, Some("YY_.*"), Some("M40"));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(!w[0].contains("did you mean"), "{}", w[0]);
        assert!(w[1].starts_with("-r/--reject 'M40'"), "{}", w[1]);
        // An empty catalog is reported once, elsewhere.
        assert!(pattern_warnings(&[], Some("XX_STA02"), None).is_empty());
    }
}
