//! `orbreaper`: archives orbs into files by the rules of a TOML rule file, and finds
//! the files again. See docs/RULES.md.

#[path = "orbreaper/append.rs"]
mod append;
#[path = "orbreaper/batch.rs"]
mod batch;
#[path = "orbreaper/detect.rs"]
mod detect;
#[path = "orbreaper/find.rs"]
mod find;
#[path = "orbreaper/ingest.rs"]
mod ingest;
#[path = "orbreaper/reap.rs"]
mod reap;
#[path = "orbreaper/sink.rs"]
mod sink;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use orbclient::cli;
use rules::RuleFile;
use tokio::sync::watch;

const ABOUT: &str = "Archive orb packets into files (netCDF, CDL, JSON Lines, raw) and forward them between orbs, by the rules of a TOML file";

const AFTER_HELP: &str = "\
Examples:
  orbreaper rules.toml            run every rule until SIGINT/SIGTERM
  orbreaper rules.toml --check    check the rule file and exit
  orbreaper rules.toml --once     archive what the orbs hold now, then exit
  orbreaper rules.toml --replay --from -2h
                                  run the detect rules over the last two hours
                                  already in the orb, printing the detections
  orbreaper find rules.toml -m 'TA_.*' --from 2026-11-22T10:00:00Z
                                  files of the rule file's catalog (-m and -r
                                  match whole srcnames, as in the rules)

Progress is kept in each rule's state file: after a crash or kill, a restart
continues where the archive ends, with no packet missing and none written twice.
The rule file format is in docs/RULES.md.";

#[derive(Parser, Debug)]
#[command(name = "orbreaper", version, about = ABOUT, after_help = AFTER_HELP, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(flatten)]
    run: RunArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The rule file (TOML); relative paths in it are relative to its directory.
    #[arg(value_name = "RULES.toml")]
    rules: Option<PathBuf>,
    /// Check the rule file and exit: 0 when valid, else one error line and 1.
    /// Warnings (settings that make files far smaller than packets_per_read, old
    /// field names) go to stderr, one line each, and do not change the exit status.
    #[arg(long)]
    check: bool,
    /// Archive what the orbs hold now and exit (schedules and delays are ignored).
    #[arg(long, conflicts_with = "check")]
    once: bool,
    /// Only the file's detect rules, over a time range (below).
    #[command(flatten)]
    replay: detect::ReplayArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the archived files holding data of the selected sources in a time window.
    Find(find::FindArgs),
}

fn main() -> ExitCode {
    let args = Cli::parse();
    match args.command {
        Some(Command::Find(f)) => cli::exit_for("orbreaper", find::run(&f)).into(),
        None => match args.run.rules.clone() {
            Some(path) if args.run.check => cli::exit_for("orbreaper", check(&path)).into(),
            Some(path) if args.run.replay.replay => cli::run("orbreaper", async move {
                let file = RuleFile::load(&path)?;
                warn(&file);
                detect::replay(&file.detect, &args.run.replay).await
            }),
            Some(path) => cli::run("orbreaper", run(path, args.run.once)),
            None => {
                eprintln!("orbreaper: error: give a rule file (orbreaper RULES.toml) or a command (orbreaper find); see --help");
                cli::Exit::Usage.into()
            }
        },
    }
}

fn check(path: &std::path::Path) -> anyhow::Result<()> {
    let file = RuleFile::load(path)?;
    warn(&file);
    println!(
        "{}: {} reap, {} ingest and {} detect rules are valid",
        path.display(),
        file.reap.len(),
        file.ingest.len(),
        file.detect.len()
    );
    for rule in &file.detect {
        println!("{}", rule.explain());
    }
    Ok(())
}

/// Prints the rule file's warnings, one line each, on stderr.
fn warn(file: &RuleFile) {
    for w in &file.warnings {
        eprintln!("orbreaper: warning: {w}");
    }
}

async fn run(path: PathBuf, once: bool) -> anyhow::Result<()> {
    let file = Arc::new(RuleFile::load(&path)?);
    warn(&file);
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        eprintln!("orbreaper: stopping: writing out open files and state");
        let _ = stop_tx.send(true);
    });
    let mut tasks = tokio::task::JoinSet::new();
    let catalog = file.catalog_file();
    for rule in &file.reap {
        let ctx = Arc::new(sink::RuleCtx::new(rule.clone(), catalog.clone()));
        tasks.spawn(reap::run_rule(ctx, once, stop_rx.clone()));
    }
    for rule in &file.ingest {
        let archive = match &rule.action {
            rules::IngestAction::Forward {
                archive: Some(a), ..
            } => Some(a.as_ref().clone()),
            _ => None,
        };
        if let Some(a) = archive {
            let ctx = Arc::new(sink::RuleCtx::new(a, catalog.clone()));
            tasks.spawn(reap::run_rule(ctx, once, stop_rx.clone()));
        }
        tasks.spawn(ingest::run_ingest(rule.clone(), once, stop_rx.clone()));
    }
    for rule in &file.detect {
        tasks.spawn(detect::run_detect(rule.clone(), once, stop_rx.clone()));
    }
    let mut failed = None;
    while let Some(r) = tasks.join_next().await {
        match r.context("a rule task panicked")? {
            Ok(()) => {}
            Err(e) => {
                eprintln!("orbreaper: error: {e:#}");
                failed.get_or_insert(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e.context("a rule stopped with an error")),
        None => Ok(()),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
