//! orbsim: simulate a network of seismic and pressure stations and put their packets
//! into an orb.

use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use formats::Time;
use orbclient::cli::{self, Stdout};
use orbclient::sim::{Format, SimConfig, Simulator};
use orbclient::{ClientOptions, OrbAddr, OrbClient};

const ABOUT: &str = "Simulate seismic and pressure stations and put their packets into an orb";

const LONG_ABOUT: &str = "\
Simulate a sensor network and put its packets into an orb. Seismic stations have three
channels (BHZ, BHN, BHE at 40 sps: band-limited noise, microseism, and earthquakes whose
waves cross the network); pressure stations have a barometer (LDO, 1 sps, Pa) and an
infrasound channel (BDF, 20 sps, mPa) with bursts. Each round puts one packet of
--packet-seconds per station (MGENC, srcname NET_STA/MGENC/M40) or, with --format seed,
one miniSEED packet per channel (NET_STA_CHAN/SEED). Packet times are the times of their
first samples. The signals are a pure function of --seed, so a run can be recomputed.

By default rounds are put in real time (each when its data would be complete); --fast
puts them as fast as the server takes them. Without --count or --duration (and without a
count in the --config file) orbsim runs until it is stopped.

Progress goes to stderr: on a terminal as one line updated in place, otherwise as a plain
line every 10 s (--progress sets the period). At the end, and also when stopped by a
signal, one summary line goes to stdout:

    orbsim: put 1200 packets (2.1 MiB, 144000 samples) from 4 stations in 5m00s, 4 packets/s; pktids 1..=1200

Ctrl-C (SIGINT) or SIGTERM stops it cleanly: the batch in flight is finished (every packet
the server took is counted), the summary is printed, ending `; stopped by SIGINT` or
`; stopped by SIGTERM`, and the exit status is 0. A second signal ends it at once with
status 130.";

const AFTER_HELP: &str = "\
Examples:
    orbsim :6510                                   3 seismic + 1 pressure station, real time,
                                                   until Ctrl-C
    orbsim :6510 --seismic 20 --pressure 5 --fast --count 600
    orbsim :6510 --format seed --duration 10m --seed 7
    orbsim :6510 --config network.toml
    orbsim :6510 --stationxml network.xml          also write the network's StationXML";

#[derive(Debug, Parser)]
#[command(name = "orbsim", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
struct Args {
    /// The orb: host:port, :port (this machine) or host (port 6510); tls://ADDR for TLS,
    /// checked against the CA file in ORB_TLS_CA (or the system roots), with a client
    /// certificate from ORB_TLS_CERT and ORB_TLS_KEY if set.
    #[arg(value_name = "ORB")]
    orb: String,

    /// Number of seismic stations (STA01, STA02, ...); not with --config.
    #[arg(long, value_name = "N", default_value_t = 3, conflicts_with = "config")]
    seismic: usize,

    /// Number of pressure stations (PRS01, ...); not with --config.
    #[arg(long, value_name = "N", default_value_t = 1, conflicts_with = "config")]
    pressure: usize,

    /// Network code; not with --config.
    #[arg(
        long,
        value_name = "NET",
        default_value = "XX",
        conflicts_with = "config"
    )]
    network: String,

    /// Seconds of data per packet [default: 1, or the config's packet_seconds].
    #[arg(long, value_name = "S")]
    packet_seconds: Option<f64>,

    /// Rounds to put (one packet per station, or per channel for SEED) [default: the
    /// config's count; without one, until stopped by Ctrl-C or SIGTERM].
    #[arg(short = 'n', long, value_name = "N", conflicts_with = "duration")]
    count: Option<u64>,

    /// Seconds of data to put (30s, 10m, ...), rounded up to whole packets, instead of
    /// --count [default: until stopped, as for --count].
    #[arg(long, value_name = "D", value_parser = cli::parse_seconds)]
    duration: Option<Duration>,

    /// Put each round when its data would be complete (the default).
    #[arg(long, conflicts_with = "fast")]
    realtime: bool,

    /// Put rounds as fast as the server takes them.
    #[arg(long)]
    fast: bool,

    /// Seed of the signals.
    #[arg(long, value_name = "X", default_value_t = 1)]
    seed: u64,

    /// Payload format [default: mgenc, or the config's].
    #[arg(long, value_enum)]
    format: Option<Format>,

    /// Time of the first sample: ISO 8601, epoch seconds, or relative like -1h
    /// [default: now, rounded down to the packet length].
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    start: Option<String>,

    /// A TOML file describing the network (stations, channels, rates, packet length,
    /// interval, count) instead of --seismic/--pressure/--network.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Write the StationXML (FDSN 1.2) of the simulated network to FILE before putting
    /// packets: positions, orientations and sensitivities matching the signals.
    #[arg(long, value_name = "FILE")]
    stationxml: Option<PathBuf>,

    /// Write the catalogue of the simulated earthquakes, infrasound bursts and pressure
    /// fronts to FILE,
    /// one JSON object a line, as the packets holding their first arrivals are put:
    /// origin time, source position, and per station each arrival's time and amplitude
    /// (seismic channels in counts, nm/s; BDF in mPa). Ground truth for detectors;
    /// the format is in docs/DETECTION.md.
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,

    /// No background earthquakes (they are on by default, about 42 an hour on the
    /// seismic channels): noise only, for false-alarm tests.
    #[arg(long)]
    no_quakes: bool,

    /// Multiply the earthquakes' source amplitudes (2000-20000 counts) by X, e.g. 0.02
    /// for weak quakes only [default: 1, or the config's quake_scale].
    #[arg(long, value_name = "X", conflicts_with = "no_quakes")]
    quake_scale: Option<f64>,

    /// Simulate pressure fronts on the LDO channels (200-600 Pa jumps, 0.6 per half
    /// hour, crossing the line eastwards at 15-30 m/s); listed in --events.
    #[arg(long)]
    fronts: bool,

    /// Print a plain progress line to stderr every D (10s, 1m, ...); 0 for none
    /// [default: 10s, or a line updated in place when stderr is a terminal].
    #[arg(long, value_name = "D", value_parser = cli::parse_seconds)]
    progress: Option<Duration>,
}

/// How progress is shown on stderr.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ProgressMode {
    /// One line, rewritten in place (a terminal).
    InPlace(Duration),
    /// A line at a time (a log file, a pipe, journald).
    Lines(Duration),
    /// Nothing.
    Off,
}

/// How often a terminal's in-place progress line is redrawn.
const IN_PLACE_EVERY: Duration = Duration::from_millis(250);
/// How often a plain progress line is printed by default.
const LINES_EVERY: Duration = Duration::from_secs(10);

impl ProgressMode {
    fn new(flag: Option<Duration>, terminal: bool) -> ProgressMode {
        match flag {
            Some(d) if d.is_zero() => ProgressMode::Off,
            Some(d) => ProgressMode::Lines(d),
            None if terminal => ProgressMode::InPlace(IN_PLACE_EVERY),
            None => ProgressMode::Lines(LINES_EVERY),
        }
    }

    fn every(self) -> Option<Duration> {
        match self {
            ProgressMode::InPlace(d) | ProgressMode::Lines(d) => Some(d),
            ProgressMode::Off => None,
        }
    }
}

/// Validated settings.
struct Settings {
    sim: Simulator,
    rounds: Option<u64>,
    realtime: bool,
    interval: Duration,
    progress: ProgressMode,
}

fn settings(args: &Args) -> anyhow::Result<Settings> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            SimConfig::from_toml(&text)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("in {}", path.display()))?
        }
        None => SimConfig::network(&args.network, args.seismic, args.pressure, 1.0),
    };
    if let Some(s) = args.packet_seconds {
        config.packet_seconds = s;
    }
    if let Some(f) = args.format {
        config.format = f;
    }
    if args.no_quakes {
        config.quakes = false;
    }
    if let Some(x) = args.quake_scale {
        config.quake_scale = x;
    }
    if args.fronts {
        config.fronts = true;
    }
    let ps = config.packet_seconds;
    let rounds = match (args.count, args.duration) {
        (Some(n), _) => Some(n),
        (None, Some(d)) => Some((d.as_secs_f64() / ps).ceil() as u64),
        (None, None) => config.count,
    };
    let interval = config.interval.unwrap_or(ps);
    if !(interval > 0.0 && interval.is_finite()) {
        bail!("interval {interval} must be a positive number of seconds");
    }
    let now = Time::now();
    let start = match &args.start {
        Some(s) => Time::parse(s, now)?,
        None => {
            let step = (ps * 1e6).round().max(1.0) as i64;
            Time::from_micros(now.as_micros().div_euclid(step) * step)
        }
    };
    let sim = Simulator::new(config, args.seed, start)?;
    Ok(Settings {
        sim,
        rounds,
        realtime: !args.fast,
        interval: Duration::from_secs_f64(interval),
        progress: ProgressMode::new(args.progress, std::io::stderr().is_terminal()),
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run("orbsim", run(args))
}

/// Totals for the summary.
#[derive(Default)]
struct Totals {
    packets: u64,
    bytes: u64,
    samples: u64,
    first: u64,
    last: u64,
}

async fn run(args: Args) -> anyhow::Result<()> {
    let orb: OrbAddr = args.orb.parse()?;
    let s = settings(&args)?;
    if let Some(path) = &args.stationxml {
        let xml = formats::meta::stationxml::write(&s.sim.inventory(), "orbsim", Time::now());
        std::fs::write(path, xml).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut events = match &args.events {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => None,
    };
    let mut stop = cli::StopSignal::listen("orbsim").context("cannot catch signals")?;
    let opts = ClientOptions::for_program("orbsim").with_access(false, true);
    let mut c = OrbClient::connect(&orb, &opts).await?;
    let began = Instant::now();
    let mut last_progress = began;
    let mut totals = Totals::default();
    // In --fast mode several rounds go in one pipelined batch.
    let batch = if s.realtime { 1 } else { 64 };
    let mut k = 0u64;
    // A signal is only looked at between batches (and while waiting for the next
    // round), never in the middle of a put: every packet handed to the server is
    // acknowledged and counted, so the summary says exactly what the orb got.
    while stop.requested().is_none() {
        if s.rounds.is_some_and(|n| k >= n) {
            break;
        }
        let end = s.rounds.map_or(k + batch, |n| n.min(k + batch));
        if s.realtime {
            // Round k's data are complete at start + k * interval + packet length.
            let due = began + s.interval * (k as u32) + s.interval;
            tokio::select! {
                _ = tokio::time::sleep_until(due.into()) => {}
                _ = stop.wait() => break,
            }
        }
        let mut packets = Vec::new();
        for r in k..end {
            packets.extend(s.sim.round(r)?);
        }
        let samples: u64 = (k..end)
            .map(|r| {
                (0..s.sim.stations().len())
                    .map(|st| {
                        s.sim
                            .channels(st, r)
                            .iter()
                            .map(|c| c.samples.len() as u64)
                            .sum::<u64>()
                    })
                    .sum::<u64>()
            })
            .sum();
        totals.bytes += packets.iter().map(|p| p.payload.len() as u64).sum::<u64>();
        totals.samples += samples;
        let sum = c
            .put_pipelined(packets, 256)
            .await
            .with_context(|| format!("putting packets into orb {orb}"))?;
        if totals.first == 0 {
            totals.first = sum.first;
        }
        totals.last = sum.last;
        totals.packets += sum.count;
        if let (Some(w), Some(path)) = (&mut events, &args.events) {
            // The events whose first arrival is in the data just put: the file only
            // ever describes packets the server holds.
            let ps = s.sim.config().packet_seconds;
            let write = |w: &mut std::io::BufWriter<std::fs::File>| -> std::io::Result<()> {
                for e in s.sim.events(k as f64 * ps, end as f64 * ps) {
                    serde_json::to_writer(&mut *w, &e)?;
                    w.write_all(b"\n")?;
                }
                w.flush()
            };
            write(w).with_context(|| format!("cannot write {}", path.display()))?;
        }
        k = end;
        if s.progress
            .every()
            .is_some_and(|every| last_progress.elapsed() >= every)
        {
            last_progress = Instant::now();
            let lag = (Time::now().as_micros() - s.sim.packet_time(k).as_micros()) as f64 / 1e6;
            let line = progress_line(&totals, began.elapsed().as_secs_f64(), lag);
            if let ProgressMode::InPlace(_) = s.progress {
                eprint!("\r{line}   ");
            } else {
                eprintln!("{line}");
            }
        }
    }
    if let ProgressMode::InPlace(_) = s.progress {
        if last_progress > began {
            eprintln!();
        }
    }
    let secs = began.elapsed().as_secs_f64();
    let mut out = Stdout::new();
    writeln!(
        out,
        "{}",
        summary_line(&totals, s.sim.stations().len(), secs, stop.requested())
    )?;
    out.flush()?;
    Ok(())
}

/// `orbsim: 1200 packets (144000 samples) in 5m00s, 4 packets/s, data lag 1.0s`.
fn progress_line(t: &Totals, secs: f64, lag: f64) -> String {
    format!(
        "orbsim: {} packets ({} samples) in {}, {:.0} packets/s, data lag {}",
        t.packets,
        t.samples,
        cli::human_secs(secs),
        t.packets as f64 / secs.max(1e-9),
        cli::human_secs(lag)
    )
}

/// The last line, on stdout; names the signal if one stopped the run.
fn summary_line(t: &Totals, stations: usize, secs: f64, signal: Option<&str>) -> String {
    let ids = if t.packets == 0 {
        "no pktids".to_owned()
    } else {
        format!("pktids {}..={}", t.first, t.last)
    };
    let stopped = signal
        .map(|s| format!("; stopped by {s}"))
        .unwrap_or_default();
    format!(
        "orbsim: put {} packets ({}, {} samples) from {stations} stations in {}, {:.0} packets/s; {ids}{stopped}",
        t.packets,
        cli::human_bytes(t.bytes),
        t.samples,
        cli::human_secs(secs),
        t.packets as f64 / secs.max(1e-9),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn flags_become_settings() {
        let a = Args::try_parse_from([
            "orbsim",
            ":1",
            "--fast",
            "--duration",
            "10s",
            "--packet-seconds",
            "2",
            "--start",
            "2026-11-22T10:00:00Z",
            "--format",
            "seed",
        ])
        .unwrap();
        let s = settings(&a).unwrap();
        assert_eq!(s.rounds, Some(5));
        assert!(!s.realtime);
        assert_eq!(s.sim.config().format, Format::Seed);
        assert_eq!(s.sim.stations().len(), 4);
        assert!(
            Args::try_parse_from(["orbsim", ":1", "--count", "1", "--duration", "1s"]).is_err()
        );
        assert!(Args::try_parse_from(["orbsim", ":1", "--fast", "--realtime"]).is_err());
    }

    #[test]
    fn help_shows_every_default_and_what_runs_without_a_count() {
        let mut cmd = Args::command();
        // Options without a default worth naming: --config, --stationxml, --events are a file
        // or nothing.
        let exempt = ["config", "stationxml", "events"];
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if arg.is_positional() || !arg.get_action().takes_values() || exempt.contains(&id) {
                continue;
            }
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                !arg.get_default_values().is_empty() || help.contains("[default:"),
                "--{id} does not show its default: {help}"
            );
        }
        let help = cmd.render_long_help().to_string();
        for want in [
            "runs until it is stopped",
            "until stopped by Ctrl-C or SIGTERM",
            "[default: 1, or the config's packet_seconds]",
            "every 10 s",
            "the exit status is 0",
            "status 130",
        ] {
            assert!(help.contains(want), "--help lacks {want:?}:\n{help}");
        }
    }

    #[test]
    fn without_count_or_duration_it_runs_until_stopped() {
        let a = Args::try_parse_from(["orbsim", ":1", "--start", "0.0"]).unwrap();
        let s = settings(&a).unwrap();
        assert_eq!(s.rounds, None);
        assert!(s.realtime);
        assert_eq!(s.sim.config().packet_seconds, 1.0);
        assert!(
            Args::try_parse_from(["orbsim", ":1", "--config", "n.toml", "--seismic", "2"]).is_err()
        );
    }

    #[test]
    fn progress_is_in_place_on_a_terminal_and_plain_lines_elsewhere() {
        assert_eq!(
            ProgressMode::new(None, true),
            ProgressMode::InPlace(IN_PLACE_EVERY)
        );
        assert_eq!(
            ProgressMode::new(None, false),
            ProgressMode::Lines(Duration::from_secs(10))
        );
        let two = Duration::from_secs(2);
        assert_eq!(ProgressMode::new(Some(two), true), ProgressMode::Lines(two));
        assert_eq!(
            ProgressMode::new(Some(Duration::ZERO), false),
            ProgressMode::Off
        );
    }

    #[test]
    fn summary_names_the_stopping_signal() {
        let t = Totals {
            packets: 12,
            bytes: 2048,
            samples: 480,
            first: 5,
            last: 16,
        };
        assert_eq!(
            summary_line(&t, 3, 4.0, Some("SIGTERM")),
            "orbsim: put 12 packets (2.0 KiB, 480 samples) from 3 stations in 4.0s, 3 packets/s; pktids 5..=16; stopped by SIGTERM"
        );
        let none = summary_line(&Totals::default(), 3, 0.5, None);
        assert!(
            none.starts_with("orbsim: put 0 packets (0 B, 0 samples)")
                && none.ends_with("; no pktids"),
            "{none}"
        );
    }
}
