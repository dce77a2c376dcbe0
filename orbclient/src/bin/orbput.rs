//! orbput: put one packet into an orb.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use formats::{Packet, SrcName, Time};
use orbclient::cli::{self, Stdout};
use orbclient::{ClientOptions, OrbAddr, OrbClient};

const ABOUT: &str = "Put one packet into an orb; print its pktid";

const LONG_ABOUT: &str = "\
Put one packet into an orb and print the pktid the server gave it. The payload
is the content of FILE, or of standard input when FILE is absent or '-'; it is
stored as it is, byte for byte.";

const AFTER_HELP: &str = "\
Examples:
    echo hello | orbput :6510 --srcname TEST_STA/EXP
    orbput orb.example.org --srcname AK_ANM/MGENC/M40 --time 2026-11-22T10:00:00Z data.bin";

#[derive(Debug, Parser)]
#[command(name = "orbput", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
struct Args {
    /// The orb: host:port, :port (this machine) or host (port 6510).
    #[arg(value_name = "ORB")]
    // Parsed after clap, so that a bad address gets the tool's one-line error.
    orb: String,

    /// Source name of the packet, e.g. TA_M04C/MGENC/EP40 (1 to 63 printable ASCII
    /// characters, no spaces).
    #[arg(long, value_name = "NAME")]
    srcname: SrcName,

    /// Packet time: ISO 8601, epoch seconds, or relative like -10m [default: now].
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    time: Option<String>,

    /// Answer only once the packet is on the server's disk.
    #[arg(long)]
    durable: bool,

    /// File holding the payload [default: standard input].
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run("orbput", run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let orb: OrbAddr = args.orb.parse()?;
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
    let opts = ClientOptions::for_program("orbput").with_access(false, true);
    let mut c = OrbClient::connect(&orb, &opts).await?;
    let put = || format!("putting {} into orb {}", args.srcname, orb);
    let pktid = if args.durable {
        let p = Packet::new(args.srcname.clone(), time, payload);
        c.put_batch(std::slice::from_ref(&p), true)
            .await
            .with_context(put)?
    } else {
        c.put(&args.srcname, time, &payload)
            .await
            .with_context(put)?
    };
    let mut out = Stdout::new();
    writeln!(out, "{pktid}")?;
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
    fn srcname_is_checked_by_the_parser() {
        assert!(Args::try_parse_from(["orbput", ":1", "--srcname", "bad name"]).is_err());
        let a = Args::try_parse_from(["orbput", ":1", "--srcname", "A_B/C", "--time", "-1m", "f"])
            .unwrap();
        assert_eq!(a.time.as_deref(), Some("-1m"));
        assert_eq!(a.file, Some(PathBuf::from("f")));
    }
}
