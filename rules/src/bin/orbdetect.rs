//! `orbdetect`: runs only the `[[detect]]` rules of a rule file (the name Antelope users
//! look for). The same code as `orbreaper`'s detect rules; see docs/DETECTION.md.

#[path = "orbreaper/detect.rs"]
mod detect;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use orbclient::cli;
use rules::RuleFile;
use tokio::sync::watch;

const ABOUT: &str = "Run the STA/LTA and windowed-statistic detect rules of a TOML rule file on orb packets, putting triggers and network events back into the orb";

const AFTER_HELP: &str = "\
Examples:
  orbdetect rules.toml            run the file's [[detect]] rules until SIGINT/SIGTERM
  orbdetect rules.toml --check    check the rule file and exit
  orbdetect rules.toml --once     run what the orbs hold now, then exit
  orbdetect rules.toml --replay --from 2026-11-22T10:00:00Z --to 2026-11-22T11:00:00Z
                                  detect over an hour already in the orb with fresh
                                  detectors, printing the detections (JSON lines);
                                  the live state is left alone

Reap and ingest rules in the file are checked but not run (orbreaper runs every
rule, these included). Progress is kept in each rule's state file: after a crash
or kill, a restart puts no trigger twice and loses none. Rules and packets:
docs/RULES.md and docs/DETECTION.md.";

#[derive(Parser, Debug)]
#[command(name = "orbdetect", version, about = ABOUT, after_help = AFTER_HELP)]
struct Args {
    /// The rule file (TOML); relative paths in it are relative to its directory.
    #[arg(value_name = "RULES.toml")]
    rules: PathBuf,
    /// Check the rule file and exit: 0 when valid, else one error line and 1.
    #[arg(long)]
    check: bool,
    /// Run the packets the orbs hold now through the detectors and exit.
    #[arg(long, conflicts_with = "check")]
    once: bool,
    #[command(flatten)]
    replay: detect::ReplayArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.check {
        return cli::exit_for("orbdetect", check(&args.rules)).into();
    }
    if args.replay.replay {
        return cli::run("orbdetect", async move {
            let file = load(&args.rules)?;
            detect::replay(&file.detect, &args.replay).await
        });
    }
    cli::run("orbdetect", run(args.rules, args.once))
}

fn load(path: &std::path::Path) -> anyhow::Result<RuleFile> {
    let file = RuleFile::load(path)?;
    for w in &file.warnings {
        eprintln!("orbdetect: warning: {w}");
    }
    if file.detect.is_empty() {
        anyhow::bail!(
            "{}: no [[detect]] rules to run (see docs/RULES.md)",
            path.display()
        );
    }
    Ok(file)
}

fn check(path: &std::path::Path) -> anyhow::Result<()> {
    let file = load(path)?;
    println!(
        "{}: {} detect rules are valid",
        path.display(),
        file.detect.len()
    );
    for rule in &file.detect {
        println!("{}", rule.explain());
    }
    Ok(())
}

async fn run(path: PathBuf, once: bool) -> anyhow::Result<()> {
    let file = load(&path)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        eprintln!("orbdetect: stopping: saving the detector states");
        let _ = stop_tx.send(true);
    });
    let mut tasks = tokio::task::JoinSet::new();
    for rule in file.detect {
        tasks.spawn(detect::run_detect(rule, once, stop_rx.clone()));
    }
    let mut failed = None;
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r.context("a rule task panicked")? {
            eprintln!("orbdetect: error: {e:#}");
            failed.get_or_insert(e);
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
