//! orbput: put one packet into an orb, or replay raw packet files (`--from`).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use formats::{payload, Packet, SrcName, Time};
use orbclient::cli::{self, Stdout, StopSignal};
use orbclient::replay::{Merge, Pacer, Progress};
use orbclient::{ClientOptions, OrbAddr, OrbClient, PutSummary};

const ABOUT: &str = "Put one packet into an orb and print its pktid, or replay raw packet files";

const LONG_ABOUT: &str = "\
Put one packet into an orb and print the pktid the server gave it. The payload
is the content of FILE, or of standard input when FILE is absent or '-'; it is
stored as it is, byte for byte.

With --from, replay raw packet files (.orb, as orbreaper's raw format writes
them) instead: every packet keeps its srcname, time and payload, and gets a new
pktid from the server. Several files are merged into packet-time order (ties go
to the file named first). By default packets go as fast as the server takes
them; --realtime keeps the recorded gaps between packet times. A progress line
goes to stderr every second (plain lines, terminal or not), and a summary line to
stdout at the end:

    orbput: put 5000 packets from 2 files into 127.0.0.1:6510, pktids 1..5000

Ctrl-C (SIGINT) or SIGTERM stops a replay cleanly: no further packet is sent, the ones
in flight are acknowledged, the summary is printed (ending `; stopped by SIGINT` or
`; stopped by SIGTERM`) and the exit status is 0. A second signal ends it at once with
status 130.

A file that ends inside a record (its writer crashed) is replayed up to that
record, with a warning. A corrupt record stops the replay: the packets merged
before it are in the orb, nothing after is, and orbput exits with status 1 and
one line naming the file and the byte offset of the bad record.";

const AFTER_HELP: &str = "\
Examples:
    echo hello | orbput :6510 --srcname TEST_STA/EXP     (any bytes: EXP is not decoded)
    orbput orb.example.org --srcname AK_ANM/MGENC/M40 --time 2026-11-22T10:00:00Z data.bin
    orbput :6510 --from day1.orb day2.orb           (replay two files, merged by time)
    orbput :6510 --from quake.orb --realtime        (at the recorded pace)
    orbput :6510 --from quake.orb --realtime --speed 10   (ten times faster)";

/// Frames kept unacknowledged when replaying as fast as possible.
const WINDOW: usize = 256;
/// At most this many due packets go in one pipelined put of a real-time replay.
const REALTIME_BATCH: usize = 4096;
/// How often a long replay reports progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Parser)]
#[command(name = "orbput", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
struct Args {
    /// The orb: host:port, :port (this machine) or host (port 6510); tls://ADDR for TLS,
    /// checked against the CA file in ORB_TLS_CA (or the system roots), with a client
    /// certificate from ORB_TLS_CERT and ORB_TLS_KEY if set.
    #[arg(value_name = "ORB")]
    // Parsed after clap, so that a bad address gets the tool's one-line error.
    orb: String,

    /// Source name of the packet, e.g. TA_M04C/MGENC/EP40 (1 to 63 printable ASCII
    /// characters, no spaces). Required unless --from is given.
    #[arg(long, value_name = "NAME", required_unless_present = "from")]
    srcname: Option<SrcName>,

    /// Packet time: ISO 8601, epoch seconds, or relative like -10m [default: now].
    #[arg(
        long,
        value_name = "T",
        allow_hyphen_values = true,
        conflicts_with = "from"
    )]
    time: Option<String>,

    /// Answer only once the packet is on the server's disk.
    #[arg(long, conflicts_with = "from")]
    durable: bool,

    /// Put the payload even when the srcname's type is one orb decodes (GEN, GENC,
    /// MGENC, SEED, MSEED) and the payload is not of that type. Without it orbput
    /// refuses such a packet, which every reader would fail to decode.
    #[arg(long, conflicts_with = "from")]
    no_check: bool,

    /// File holding the payload [default: standard input].
    #[arg(value_name = "FILE", conflicts_with = "from")]
    file: Option<PathBuf>,

    /// Replay these raw packet files (merged by packet time) instead of putting one
    /// packet.
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with = "srcname")]
    from: Vec<PathBuf>,

    /// With --from: keep the recorded gaps between packet times as wall-clock waits.
    // clap counts a requirement as met when it conflicts with a present argument,
    // so `requires = "from"` alone would let `--srcname X --realtime` through.
    #[arg(long, requires = "from", conflicts_with = "srcname")]
    realtime: bool,

    /// With --realtime: play this many times faster than recorded (0.5: half as fast).
    #[arg(long, value_name = "X", requires = "realtime", conflicts_with = "srcname", default_value = "1", value_parser = parse_speed)]
    speed: f64,
}

/// Refuses a payload that does not decode as the type its srcname names: stored, it
/// would be a packet that orbtail, orbreaper and the gateways all fail on. Types orb
/// has no codec for carry any bytes.
fn check_payload(srcname: &SrcName, time: Time, payload: &[u8]) -> anyhow::Result<()> {
    let Some(suffix) = srcname.suffix().filter(|s| payload::is_known_suffix(s)) else {
        return Ok(());
    };
    match payload::decode(srcname, time, payload) {
        Ok(_) => Ok(()),
        Err(e) => anyhow::bail!(
            "the payload is not {suffix} data ({e}), which {srcname} names: \
             readers would fail to decode it; for other bytes use a type orb does not \
             decode, such as {}/EXP, or give --no-check to put it anyway",
            srcname.as_str().split('/').next().unwrap_or_default()
        ),
    }
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "{s:?} is not a speed: give a number above 0, like 2 or 0.5"
        )),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run("orbput", run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let orb: OrbAddr = args.orb.parse()?;
    if !args.from.is_empty() {
        return replay(&orb, &args).await;
    }
    let srcname = args
        .srcname
        .clone()
        .context("give --srcname NAME for the packet, or --from FILE... to replay files")?;
    let now = Time::now();
    let time = match &args.time {
        Some(t) => Time::parse(t, now)?,
        None => now,
    };
    let payload = match &args.file {
        Some(path) if path.as_os_str() != "-" => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        _ => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("cannot read the payload from standard input")?;
            buf
        }
    };
    if !args.no_check {
        check_payload(&srcname, time, &payload)?;
    }
    let opts = ClientOptions::for_program("orbput").with_access(false, true);
    let mut c = OrbClient::connect(&orb, &opts).await?;
    let put = || format!("putting {} into orb {}", srcname, orb);
    let pktid = if args.durable {
        let p = Packet::new(srcname.clone(), time, payload);
        c.put_batch(std::slice::from_ref(&p), true)
            .await
            .with_context(put)?
    } else {
        c.put(&srcname, time, &payload).await.with_context(put)?
    };
    let mut out = Stdout::new();
    writeln!(out, "{pktid}")?;
    out.flush()?;
    Ok(())
}

/// `orbput --from`: merge the files, put their packets, report.
async fn replay(orb: &OrbAddr, args: &Args) -> anyhow::Result<()> {
    let mut files = Vec::with_capacity(args.from.len());
    for path in &args.from {
        let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        files.push((
            path.display().to_string(),
            BufReader::with_capacity(256 * 1024, f),
        ));
    }
    let mut merge = Merge::new(files)?;
    let mut stop = StopSignal::listen("orbput").context("cannot catch signals")?;
    let opts = ClientOptions::for_program("orbput").with_access(false, true);
    let mut c = OrbClient::connect(orb, &opts).await?;
    let mut progress = Progress::new(std::time::Instant::now(), PROGRESS_EVERY);
    let put = if args.realtime {
        put_paced(&mut c, &mut merge, args.speed, &mut progress, &mut stop).await
    } else {
        let mut sent = Reporting {
            merge: &mut merge,
            progress: &mut progress,
            stop: &stop,
        };
        c.put_pipelined(&mut sent, WINDOW).await
    };
    let summary = put.with_context(|| format!("replaying into orb {orb}"))?;
    for t in merge.torn_tails() {
        eprintln!(
            "orbput: warning: {} ends inside a record at byte offset {} ({} bytes not replayed; its writer was probably cut off)",
            t.file, t.offset, t.len
        );
    }
    let mut out = Stdout::new();
    let ids = if summary.count == 0 {
        "no pktids".to_owned()
    } else {
        format!("pktids {}..{}", summary.first, summary.last)
    };
    let files = match merge.files() {
        1 => "1 file".to_owned(),
        n => format!("{n} files"),
    };
    let stopped = stop
        .requested()
        .map(|s| format!("; stopped by {s}"))
        .unwrap_or_default();
    writeln!(
        out,
        "orbput: put {} packets from {files} into {orb}, {ids}{stopped}",
        summary.count
    )?;
    out.flush()?;
    if let Some(e) = merge.take_error() {
        anyhow::bail!(
            "{e}; the {} packets merged before it were put",
            summary.count
        );
    }
    Ok(())
}

/// The merge as the pipelined put pulls it, printing progress as it goes; it ends
/// early once a signal asks to stop, so the put only waits for the packets in flight.
struct Reporting<'a, R: Read> {
    merge: &'a mut Merge<R>,
    progress: &'a mut Progress,
    stop: &'a StopSignal,
}

impl<R: Read> Iterator for Reporting<'_, R> {
    type Item = Packet;

    fn next(&mut self) -> Option<Packet> {
        if self.stop.requested().is_some() {
            return None;
        }
        let p = self.merge.next()?;
        if let Some(line) = self
            .progress
            .tick(std::time::Instant::now(), self.merge.handed_out())
        {
            eprintln!("orbput: {line}");
        }
        Some(p)
    }
}

/// Puts the merge's packets at the recorded pace: waits until the next packet is
/// due, then puts every packet due by then in one pipelined batch. A signal ends the
/// wait; a batch already handed to the server is finished first.
async fn put_paced<R: Read>(
    c: &mut OrbClient,
    merge: &mut Merge<R>,
    speed: f64,
    progress: &mut Progress,
    stop: &mut StopSignal,
) -> orbclient::error::Result<PutSummary> {
    let mut total = PutSummary::default();
    let Some(origin) = merge.peek_time() else {
        return Ok(total);
    };
    let pacer = Pacer::new(origin, speed);
    let start = tokio::time::Instant::now();
    while let Some(t) = merge.peek_time() {
        if stop.requested().is_some() {
            break;
        }
        let due = start
            .checked_add(pacer.offset(t))
            .unwrap_or_else(far_future);
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = stop.wait() => break,
        }
        let now = tokio::time::Instant::now();
        let mut batch = Vec::new();
        while batch.len() < REALTIME_BATCH {
            match merge.peek_time() {
                Some(t) if start.checked_add(pacer.offset(t)).is_some_and(|d| d <= now) => {}
                _ => break,
            }
            match merge.next() {
                Some(p) => batch.push(p),
                None => break,
            }
        }
        let s = c.put_pipelined(batch, WINDOW).await?;
        if s.count > 0 {
            if total.count == 0 {
                total.first = s.first;
            }
            total.last = s.last;
            total.count += s.count;
        }
        if let Some(line) = progress.tick(std::time::Instant::now(), total.count) {
            eprintln!("orbput: {line}");
        }
    }
    Ok(total)
}

/// A wait that never ends in practice, for a packet due beyond `Instant`'s range.
fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(100 * 365 * 86400)
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
    fn srcname_is_checked_by_the_parser() {
        assert!(Args::try_parse_from(["orbput", ":1", "--srcname", "bad name"]).is_err());
        let a = Args::try_parse_from(["orbput", ":1", "--srcname", "A_B/C", "--time", "-1m", "f"])
            .unwrap();
        assert_eq!(a.time.as_deref(), Some("-1m"));
        assert_eq!(a.file, Some(PathBuf::from("f")));
    }

    #[test]
    fn payloads_of_a_decoded_type_are_checked() {
        let t = Time::from_micros(0);
        let mgenc: SrcName = "TA_M04C/MGENC/EP40".parse().unwrap();
        let e = check_payload(&mgenc, t, b"hello\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not MGENC data"), "{e}");
        assert!(e.contains("TA_M04C/EXP") && e.contains("--no-check"), "{e}");
        for other in ["TA_M04C/EXP", "TA_M04C", "AK_ANM/pf/st"] {
            let name: SrcName = other.parse().unwrap();
            check_payload(&name, t, b"hello\n").unwrap();
        }
        let ch = payload::Channel {
            net: "TA".into(),
            sta: "M04C".into(),
            chan: "EP".into(),
            loc: String::new(),
            start: t,
            samprate: 40.0,
            calib: 1.0,
            calper: 1.0,
            segtype: 'P',
            samples: vec![1, -2, 3],
        };
        let good = payload::mgenc::encode(std::slice::from_ref(&ch)).unwrap();
        check_payload(&mgenc, t, &good).unwrap();
        let seed: SrcName = "XX_STA_BHZ/SEED".parse().unwrap();
        assert!(check_payload(&seed, t, &[0u8; 512]).is_err());
    }

    #[test]
    fn from_replaces_srcname_and_takes_several_files() {
        let a = Args::try_parse_from(["orbput", ":1", "--from", "a.orb", "b.orb"]).unwrap();
        assert_eq!(a.from, [PathBuf::from("a.orb"), PathBuf::from("b.orb")]);
        assert!(a.srcname.is_none());
        assert!(
            Args::try_parse_from(["orbput", ":1"]).is_err(),
            "srcname or from"
        );
        assert!(Args::try_parse_from(["orbput", ":1", "--from", "a", "--srcname", "A_B"]).is_err());
        assert!(Args::try_parse_from(["orbput", ":1", "--srcname", "A_B", "--realtime"]).is_err());
        assert!(
            Args::try_parse_from(["orbput", ":1", "--srcname", "A_B", "--speed", "2"]).is_err()
        );
        assert!(Args::try_parse_from(["orbput", ":1", "--from", "a", "--speed", "2"]).is_err());
        let a = Args::try_parse_from(["orbput", ":1", "--from", "a", "--realtime", "--speed", "8"])
            .unwrap();
        assert!(a.realtime);
        assert_eq!(a.speed, 8.0);
        assert!(Args::try_parse_from(["orbput", ":1", "--from", "a", "--no-check"]).is_err());
        for bad in ["0", "-1", "inf", "fast"] {
            assert!(
                Args::try_parse_from(["orbput", ":1", "--from", "a", "--realtime", "--speed", bad])
                    .is_err(),
                "{bad}"
            );
        }
    }
}
