//! orb2orb: forward packets from one orb to another, surviving restarts and outages.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use formats::Time;
use orbclient::cli;
use orbclient::federation::{run_link, EndSpec, LinkConfig};
use orbclient::{OrbAddr, Position};
use serde::Deserialize;
use tokio::sync::watch;

const ABOUT: &str = "Forward packets from one orb (IN) to another (OUT)";

const LONG_ABOUT: &str = "\
Forward packets from one orb (IN) to another (OUT), unchanged (srcname, time, payload),
many in flight at once.

orb2orb reconnects to either orb when it goes away (backoff 100 ms to 5 s) and resumes
where it was. With a state file (-S) it also survives its own restart: the file holds the
last input packet OUT acknowledged, and orb2orb reads on after it. Packets IN overwrote
while the link was down are reported as gaps (`orb2orb: IN->OUT: gap: ...`).

No duplicates, no loops: per srcname, orb2orb forwards a packet only if its time is newer
than the newest packet OUT already holds for that srcname. So retransmissions after a
restart are dropped, and in a two-way pair (A->B and B->A) nothing is echoed back. The
price: packets of a srcname that arrive at IN with times older than what OUT already has
(backfill) are not forwarded; they are counted as `suppressed`. See docs/FEDERATION.md.

Each link appears in `orbstat -c` on both orbs as program orb2orb, who IN->OUT.

START is where to begin when there is no state file: oldest, newest, a pktid, or a time
(ISO 8601, epoch seconds with a '.', or relative like -10m) [default: new packets only].
END stops the link: a time, a period after the start time (10m, 2h), or `last` (the
newest packet present in IN at start).

When a link ends, one summary line per link goes to stderr
(`orb2orb: IN->OUT: forwarded N, suppressed N, ...`); -v adds a plain progress line per
link every 10 s, terminal or not.

Ctrl-C (SIGINT) or SIGTERM stops it cleanly: a batch still on its way to OUT is
abandoned (after a restart it is sent again, and the duplicate rule drops what OUT
already has), the state files are written, the summaries are printed and the exit status
is 0. A second signal ends it at once with status 130.";

const AFTER_HELP: &str = "\
Examples:
    orb2orb field:6510 hub:6510                      forward new packets, forever
    orb2orb -S fld.state field:6510 hub:6510 oldest  from the oldest; resume after restarts
    orb2orb -m 'TA_.*' :6510 export:6510 -1h last    last hour of TA up to now, then exit
    orb2orb -p links.toml -v                         several links, with progress

A link file (-p) has one [[link]] table per link:

    [[link]]
    in = \"field:6510\"
    out = \"hub:6510\"
    select = \"TA_.*\"         # optional
    reject = \".*/LOG\"        # optional
    state = \"/var/orb/field-hub.state\"   # optional
    start = \"oldest\"         # optional
    end = \"last\"             # optional";

#[derive(Debug, Parser)]
#[command(name = "orb2orb", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
struct Args {
    /// Input orb: host:port, :port (this machine) or host (port 6510); tls://ADDR for
    /// TLS (ORB_TLS_CA, ORB_TLS_CERT, ORB_TLS_KEY; per side ORB_TLS_CA_IN, ..._OUT).
    #[arg(value_name = "IN", required_unless_present = "links")]
    input: Option<String>,

    /// Output orb, same forms as IN.
    #[arg(value_name = "OUT", required_unless_present = "links")]
    output: Option<String>,

    /// Where to start without a state file: oldest, newest, a pktid or a time.
    #[arg(value_name = "START", allow_hyphen_values = true, value_parser = check_start)]
    start: Option<String>,

    /// When to stop: a time, a period after the start (10m), or `last`.
    #[arg(value_name = "END|PERIOD", allow_hyphen_values = true, value_parser = check_end)]
    end: Option<String>,

    /// Forward only packets whose srcname matches this regular expression.
    #[arg(short = 'm', long = "select", value_name = "REGEX")]
    select: Option<String>,

    /// Do not forward packets whose srcname matches this regular expression.
    #[arg(short = 'r', long = "reject", value_name = "REGEX")]
    reject: Option<String>,

    /// Remember progress in this JSON file and resume from it.
    #[arg(short = 'S', long = "state", value_name = "STATEFILE")]
    state: Option<PathBuf>,

    /// Run the links of this TOML file (one [[link]] table each) instead of IN OUT.
    #[arg(short = 'p', long = "links", value_name = "FILE", conflicts_with_all = ["input", "output", "start", "end", "select", "reject", "state"])]
    links: Option<PathBuf>,

    /// Log counts (forwarded, suppressed, gaps, lag) every 10 s.
    #[arg(short = 'v', long)]
    verbose: bool,
}

/// One [[link]] of a -p file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkEntry {
    #[serde(rename = "in")]
    input: String,
    out: String,
    #[serde(default)]
    select: String,
    #[serde(default)]
    reject: String,
    state: Option<PathBuf>,
    start: Option<String>,
    end: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkFile {
    link: Vec<LinkEntry>,
}

fn check_start(s: &str) -> Result<String, String> {
    Position::parse(s, Time::now())
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
}

fn check_end(s: &str) -> Result<String, String> {
    EndSpec::parse(s, Time::now()).map(|_| s.to_owned())
}

fn link(entry: LinkEntry, verbose: bool) -> anyhow::Result<LinkConfig> {
    let input: OrbAddr = entry
        .input
        .parse()
        .with_context(|| format!("input orb {:?}", entry.input))?;
    let output: OrbAddr = entry
        .out
        .parse()
        .with_context(|| format!("output orb {:?}", entry.out))?;
    if let Some(s) = &entry.start {
        check_start(s).map_err(anyhow::Error::msg)?;
    }
    let end = entry
        .end
        .as_deref()
        .map(|e| EndSpec::parse(e, Time::now()))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    Ok(LinkConfig {
        program: "orb2orb".to_owned(),
        name: format!("{}->{}", entry.input, entry.out),
        input_name: entry.input,
        output_name: entry.out,
        input,
        output,
        select: entry.select,
        reject: entry.reject,
        state: entry.state,
        start: entry.start,
        end,
        verbose,
        report_every: Duration::from_secs(10),
    })
}

fn links(args: Args) -> anyhow::Result<Vec<LinkConfig>> {
    let entries = match &args.links {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read link file {}", path.display()))?;
            let file: LinkFile = toml::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}", e.message()))
                .with_context(|| format!("link file {}", path.display()))?;
            if file.link.is_empty() {
                anyhow::bail!("link file {} has no [[link]] table", path.display());
            }
            file.link
        }
        None => vec![LinkEntry {
            input: args.input.unwrap_or_default(),
            out: args.output.unwrap_or_default(),
            select: args.select.unwrap_or_default(),
            reject: args.reject.unwrap_or_default(),
            state: args.state,
            start: args.start,
            end: args.end,
        }],
    };
    let mut states = std::collections::HashSet::new();
    let mut out = Vec::new();
    for e in entries {
        if let Some(s) = &e.state {
            if !states.insert(s.clone()) {
                anyhow::bail!("two links share the state file {}", s.display());
            }
        }
        out.push(link(e, args.verbose)?);
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_tracing("orb2orb");
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("orb2orb: error: cannot start the async runtime: {e}");
            return cli::Exit::Failure.into();
        }
    };
    // Links run on this thread (a LocalSet); their readers on the runtime's workers.
    let local = tokio::task::LocalSet::new();
    cli::exit_for("orb2orb", local.block_on(&rt, run(args))).into()
}

async fn run(args: Args) -> anyhow::Result<()> {
    let links = links(args)?;
    let mut signal = cli::StopSignal::listen("orb2orb").context("cannot catch signals")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        signal.wait().await;
        let _ = stop_tx.send(true);
    });
    let mut tasks = tokio::task::JoinSet::new();
    for cfg in links {
        let label = cfg.label();
        let rx = stop_rx.clone();
        tasks.spawn_local(async move { (label, run_link(cfg, rx).await) });
    }
    let mut first_err = None;
    while let Some(done) = tasks.join_next().await {
        let (label, r) = done.context("a link task panicked")?;
        match r {
            Ok(s) => eprintln!("orb2orb: {label}: {s}"),
            Err(e) => {
                let e = anyhow::Error::new(e);
                eprintln!("orb2orb: {label}: stopped: {e:#}");
                first_err.get_or_insert(e.context(format!("link {label}")));
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
