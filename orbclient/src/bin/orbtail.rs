//! orbtail: print packets from an orb as they arrive, one line each.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use formats::payload::{self, Channel, PayloadError, SuffixWarnings};
use formats::write::jsonl;
use formats::Time;
use orbclient::cli::{self, Stdout};
use orbclient::{
    ClientOptions, OrbAddr, OrbClient, Position, ReapEvent, ReapOptions, ReconnectPolicy,
};
use serde::Serialize;

const ABOUT: &str = "Print packets from an orb as they arrive, one line each";

const LONG_ABOUT: &str = "\
Print packets from an orb as they arrive, one line each:

    #PKTID SRCNAME TIME NBYTES

with TIME in ISO 8601 UTC, followed by one line per channel when the payload type is
known (GEN, GENC, MGENC, SEED):

      NET STA CHAN LOC RATE NSAMP START..END

(LOC `-` when empty; END is just after the last sample). Unknown payload types are
reported once per source on stderr. By default only packets put after orbtail connects are
shown; --start reads from an earlier point. If the connection is lost, orbtail
reconnects and goes on after the last packet it printed, so no packet is printed
twice. Packets the orb overwrote before orbtail could read them are reported on
stderr as `orbtail: gap: pktids A..=B lost (N bytes)`.";

const AFTER_HELP: &str = "\
Examples:
    orbtail :6510                            new packets on this machine's orb
    orbtail orb.example.org -m 'TA_.*' -n 10 ten new TA packets
    orbtail :6510 --start -10m --timeout 5   the last ten minutes, then wait 5 s for more
    orbtail :6510 --start oldest --json | jq .srcname";

#[derive(Debug, Parser)]
#[command(name = "orbtail", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
struct Args {
    /// The orb: host:port, :port (this machine) or host (port 6510); tls://ADDR for TLS,
    /// checked against the CA file in ORB_TLS_CA (or the system roots), with a client
    /// certificate from ORB_TLS_CERT and ORB_TLS_KEY if set.
    #[arg(value_name = "ORB")]
    // Parsed after clap, so that a bad address gets the tool's one-line error.
    orb: String,

    /// Show only packets whose srcname matches this regular expression (whole name).
    #[arg(short = 'm', long = "select", value_name = "REGEX")]
    select: Option<String>,

    /// Hide packets whose srcname matches this regular expression (whole name).
    #[arg(short = 'r', long = "reject", value_name = "REGEX")]
    reject: Option<String>,

    /// Where to start: oldest, newest, a pktid, or a time (ISO 8601, epoch seconds
    /// with a '.', or relative like -10m) [default: new packets only].
    #[arg(long, value_name = "WHERE", allow_hyphen_values = true, value_parser = check_start)]
    start: Option<String>,

    /// Stop after this many packets.
    #[arg(short = 'n', long = "count", value_name = "COUNT")]
    count: Option<u32>,

    /// Stop (successfully) after this long without a packet: seconds, or with a unit
    /// (500ms, 2m).
    #[arg(long, value_name = "SECS", value_parser = cli::parse_seconds)]
    timeout: Option<Duration>,

    /// Print one JSON object per line, exactly as orbreaper's JSON Lines archives hold
    /// packets (docs/FORMATS.md): pktid, srcname, time (ISO 8601 UTC, 6 fraction
    /// digits), nbytes, channels with their samples (for known payload types; else [] and
    /// payload_base64). Gaps go to stdout too, as {"gap":{"first","last","bytes"}}.
    #[arg(long)]
    json: bool,

    /// Exit with an error when the connection is lost instead of reconnecting.
    #[arg(long)]
    no_reconnect: bool,
}

/// Decodes a packet's payload; problems go to stderr once per source.
fn decode_channels(
    p: &formats::Packet,
    unknown: &mut SuffixWarnings,
    broken: &mut SuffixWarnings,
) -> Option<Vec<Channel>> {
    match payload::decode(&p.srcname, p.time, &p.payload) {
        Ok(ch) => Some(ch),
        Err(PayloadError::UnknownSuffix { .. } | PayloadError::NoSuffix { .. }) => {
            if unknown.first_time(&p.srcname) {
                eprintln!(
                    "orbtail: {}: payload type not decoded (known: {})",
                    p.srcname,
                    payload::KNOWN_SUFFIXES.join(", ")
                );
            }
            None
        }
        Err(e) => {
            if broken.first_time(&p.srcname) {
                eprintln!(
                    "orbtail: {}: cannot decode pktid {} (reported once per source): {e}",
                    p.srcname, p.pktid
                );
            }
            None
        }
    }
}

/// A gap in --json output: `{"gap":{...}}`, so it cannot be mistaken for a packet.
#[derive(Serialize)]
struct GapLine {
    gap: Gap,
}

/// Lost pktids `first..=last`; `bytes` is null when the size is unknown.
#[derive(Serialize)]
struct Gap {
    first: u64,
    last: u64,
    bytes: Option<u64>,
}

/// Refuses a bad --start before connecting; the text is kept, so a relative time is
/// resolved when the reap starts (and again if a reconnect has to fall back to it).
fn check_start(s: &str) -> Result<String, String> {
    Position::parse(s, Time::now())
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run("orbtail", run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let orb: OrbAddr = args.orb.parse()?;
    let opts = ClientOptions::for_program("orbtail").with_access(true, false);
    let mut reap = ReapOptions {
        max_packets: args.count.unwrap_or(0),
        timeout: args.timeout,
        ..ReapOptions::default()
    };
    if args.no_reconnect {
        reap.reconnect = ReconnectPolicy {
            max_attempts: Some(0),
            ..ReconnectPolicy::default()
        };
    }
    if args.count == Some(0) {
        return Ok(());
    }
    let mut stream = OrbClient::reap_reconnecting(
        &orb,
        &opts,
        args.select.as_deref().unwrap_or(""),
        args.reject.as_deref().unwrap_or(""),
        args.start.as_deref(),
        reap,
    )
    .await?;
    let mut out = Stdout::new();
    let mut printed = 0u32;
    let mut unknown = SuffixWarnings::new();
    let mut broken = SuffixWarnings::new();
    let mut line = Vec::new();
    // Ends at the count, the timeout, or REAP_END; each turn takes one event.
    loop {
        if !stream.is_ready() {
            out.flush()?;
        }
        let next = match args.timeout {
            // The server ends the reap on the same timeout; this one also covers
            // time spent reconnecting.
            Some(t) => match tokio::time::timeout(t, stream.next()).await {
                Ok(r) => r,
                Err(_) => break,
            },
            None => stream.next().await,
        };
        let Some(ev) = next.with_context(|| format!("reading from orb {}", orb))? else {
            break;
        };
        match ev {
            ReapEvent::Packet(p) => {
                let channels = decode_channels(&p, &mut unknown, &mut broken);
                if args.json {
                    line.clear();
                    jsonl::encode_line(&mut line, &p, channels.as_deref().unwrap_or_default())
                        .context("cannot write a packet as JSON")?;
                    out.write_all(&line)?;
                } else {
                    writeln!(
                        out,
                        "#{} {} {} {}",
                        p.pktid,
                        p.srcname,
                        p.time,
                        p.payload.len()
                    )?;
                    for c in channels.iter().flatten() {
                        writeln!(out, "  {}", channel_line(c))?;
                    }
                }
                printed += 1;
                if args.count.is_some_and(|n| printed >= n) {
                    break;
                }
            }
            ReapEvent::Gap { first, last, bytes } => {
                if args.json {
                    let line = GapLine {
                        gap: Gap { first, last, bytes },
                    };
                    writeln!(out, "{}", serde_json::to_string(&line)?)?;
                } else {
                    out.flush()?;
                    let size = match bytes {
                        Some(b) => format!("{b} bytes"),
                        None => "size unknown".to_owned(),
                    };
                    eprintln!("orbtail: gap: pktids {first}..={last} lost ({size})");
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// `NET STA CHAN LOC RATE NSAMP START..END`, with `-` for empty names.
fn channel_line(c: &Channel) -> String {
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    format!(
        "{} {} {} {} {} {} {}..{}",
        dash(&c.net),
        dash(&c.sta),
        dash(&c.chan),
        dash(&c.loc),
        c.samprate,
        c.samples.len(),
        c.start,
        c.end()
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
    fn channel_lines() {
        let c = Channel {
            net: "XX".into(),
            sta: "STA01".into(),
            chan: "BHZ".into(),
            loc: String::new(),
            start: Time::from_micros(1_795_341_600_000_000),
            samprate: 40.0,
            calib: 1.0,
            calper: 1.0,
            segtype: 'V',
            samples: vec![0; 40],
        };
        assert_eq!(
            channel_line(&c),
            "XX STA01 BHZ - 40 40 2026-11-22T10:00:00Z..2026-11-22T10:00:01Z"
        );
    }

    #[test]
    fn relative_start_is_not_taken_for_a_flag() {
        let a = Args::try_parse_from(["orbtail", ":6510", "--start", "-10m", "-n", "3"]).unwrap();
        assert_eq!(a.start.as_deref(), Some("-10m"));
        assert_eq!(a.count, Some(3));
        assert_eq!(
            a.orb.parse::<OrbAddr>().unwrap(),
            OrbAddr::new("127.0.0.1", 6510)
        );
        assert!(Args::try_parse_from(["orbtail", ":6510", "--start", "yesterday"]).is_err());
    }
}
