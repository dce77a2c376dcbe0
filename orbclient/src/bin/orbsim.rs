//! orbsim: simulate a network of seismic and pressure stations and put their packets
//! into an orb.

use std::io::IsTerminal;
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
puts them as fast as the server takes them. Progress goes to stderr when it is a
terminal; a summary is printed at the end.";

const AFTER_HELP: &str = "\
Examples:
    orbsim :6510                                   3 seismic + 1 pressure station, real time
    orbsim :6510 --seismic 20 --pressure 5 --fast --count 600
    orbsim :6510 --format seed --duration 10m --seed 7
    orbsim :6510 --config network.toml";

#[derive(Debug, Parser)]
#[command(name = "orbsim", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
struct Args {
    /// The orb: host:port, :port (this machine) or host (port 6510).
    #[arg(value_name = "ORB")]
    orb: String,

    /// Number of seismic stations (STA01, STA02, ...).
    #[arg(long, value_name = "N", default_value_t = 3)]
    seismic: usize,

    /// Number of pressure stations (PRS01, ...).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pressure: usize,

    /// Network code.
    #[arg(long, value_name = "NET", default_value = "XX")]
    network: String,

    /// Seconds of data per packet.
    #[arg(long, value_name = "S")]
    packet_seconds: Option<f64>,

    /// Rounds to put (one packet per station, or per channel for SEED).
    #[arg(short = 'n', long, value_name = "N", conflicts_with = "duration")]
    count: Option<u64>,

    /// Seconds of data to put (30s, 10m, ...), instead of --count.
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
}

/// Validated settings.
struct Settings {
    sim: Simulator,
    rounds: Option<u64>,
    realtime: bool,
    interval: Duration,
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
    let opts = ClientOptions::for_program("orbsim").with_access(false, true);
    let mut c = OrbClient::connect(&orb, &opts).await?;
    let progress = std::io::stderr().is_terminal();
    let began = Instant::now();
    let mut last_progress = began;
    let mut totals = Totals::default();
    // In --fast mode several rounds go in one pipelined batch.
    let batch = if s.realtime { 1 } else { 64 };
    let mut k = 0u64;
    loop {
        if s.rounds.is_some_and(|n| k >= n) {
            break;
        }
        let end = s.rounds.map_or(k + batch, |n| n.min(k + batch));
        if s.realtime {
            // Round k's data are complete at start + k * interval + packet length.
            let due = began + s.interval * (k as u32) + s.interval;
            tokio::time::sleep_until(due.into()).await;
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
        k = end;
        if progress && last_progress.elapsed() >= Duration::from_millis(250) {
            last_progress = Instant::now();
            let secs = began.elapsed().as_secs_f64();
            let lag = (Time::now().as_micros() - s.sim.packet_time(k).as_micros()) as f64 / 1e6;
            eprint!(
                "\rorbsim: {} packets, {:.0} packets/s, data lag {}   ",
                totals.packets,
                totals.packets as f64 / secs.max(1e-9),
                cli::human_secs(lag)
            );
        }
    }
    if progress {
        eprintln!();
    }
    let secs = began.elapsed().as_secs_f64();
    let mut out = Stdout::new();
    writeln!(
        out,
        "orbsim: put {} packets ({}, {} samples) from {} stations in {}, {:.0} packets/s; pktids {}..={}",
        totals.packets,
        cli::human_bytes(totals.bytes),
        totals.samples,
        s.sim.stations().len(),
        cli::human_secs(secs),
        totals.packets as f64 / secs.max(1e-9),
        totals.first,
        totals.last
    )?;
    out.flush()?;
    Ok(())
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
}
