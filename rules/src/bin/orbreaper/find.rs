//! `orbreaper find`: the catalog's files for a source selection and a time window.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use formats::Time;
use orbclient::cli::Stdout;
use rules::{catalog, SrcSelect};

/// What `orbreaper find` takes.
#[derive(Args, Debug)]
pub struct FindArgs {
    /// The catalog directory (by default `catalog/` beside the rule file).
    #[arg(long, value_name = "DIR")]
    catalog: PathBuf,
    /// Only files holding a srcname matching this regex (whole srcname, as orbselect).
    #[arg(short = 'm', long = "match", value_name = "SELECT")]
    select: Option<String>,
    /// ... and not only srcnames matching this regex.
    #[arg(short = 'r', long = "reject", value_name = "REJECT")]
    reject: Option<String>,
    /// Only files with data at or after this time (ISO 8601, epoch seconds, or -1h).
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    from: Option<String>,
    /// Only files with data at or before this time.
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    to: Option<String>,
    /// Print each file's catalog record as a JSON line instead of its path.
    #[arg(long)]
    json: bool,
}

/// Prints the matching files, one per line.
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
    let records = catalog::read_dir(&args.catalog)?;
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
