//! orbstat: what an orb server holds and who is connected to it.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use formats::proto::info::{ClientsInfo, PktAt, ServerStat, SourcesInfo};
use orbclient::cli::{self, human_bytes, human_secs, OutputError, Stdout, Table};
use orbclient::{ClientOptions, InfoKind, OrbAddr, OrbClient};

const ABOUT: &str = "Show what an orb server holds: ring, rates, sources and clients";

const LONG_ABOUT: &str = "\
Show what an orb server holds: its ring (size, use, oldest and newest packet),
packet and byte rates, connected clients, gap totals and what its access rules
refused. -s adds a table of sources, -c a table of clients (needs admin access:
an address in the server's access.admin list, or an admin token in ORB_TOKEN).
--json prints the server's JSON documents unchanged, one per line, for scripts
and jq.

Administrators (the same admin access as -c) can also act on the server:
--kill ID closes the connection of the client with that id (the ID column of
-c); --reload makes the server re-read the [access] rules of its config file,
as SIGHUP does, and prints what it loaded. A refusal (no admin access, no such
client, a bad config file) is one line on stderr and a non-zero exit.";

const AFTER_HELP: &str = "\
Examples:
    orbstat :6510                 summary of this machine's orb
    orbstat orb.example.org -s    ... plus one line per srcname
    orbstat :6510 -c --json | jq '.clients[]?.who'
    orbstat :6510 --kill 7        close client 7 (see its id with -c)
    orbstat :6510 --reload        re-read the server's [access] rules";

#[derive(Debug, Parser)]
#[command(name = "orbstat", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
struct Args {
    /// The orb: host:port, :port (this machine) or host (port 6510); tls://ADDR for TLS,
    /// checked against the CA file in ORB_TLS_CA (or the system roots), with a client
    /// certificate from ORB_TLS_CERT and ORB_TLS_KEY if set.
    #[arg(value_name = "ORB")]
    // Parsed after clap, so that a bad address gets the tool's one-line error.
    orb: String,

    /// Also list sources: srcname, packets, bytes, oldest/newest pktid, newest time,
    /// latency.
    #[arg(short = 's', long = "sources")]
    sources: bool,

    /// Also list clients: id, who, what, address, access, position, select/reject,
    /// traffic, lag.
    #[arg(short = 'c', long = "clients")]
    clients: bool,

    /// Print the server's JSON documents as they came, one per line (STAT, then
    /// SOURCES with -s, then CLIENTS with -c).
    #[arg(long)]
    json: bool,

    /// Close the connection of the client with this id (the ID column of -c) and
    /// exit; needs admin access.
    #[arg(long, value_name = "ID", conflicts_with_all = ["sources", "clients", "json", "reload"])]
    kill: Option<u64>,

    /// Make the server re-read the access rules of its config file (as SIGHUP does),
    /// print what it loaded and exit; needs admin access.
    #[arg(long, conflicts_with_all = ["sources", "clients", "json"])]
    reload: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run("orbstat", run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let orb: OrbAddr = args.orb.parse()?;
    let opts = ClientOptions::for_program("orbstat").with_access(false, false);
    let mut c = OrbClient::connect(&orb, &opts).await?;
    let mut out = Stdout::new();
    if let Some(id) = args.kill {
        c.kill_client(id)
            .await
            .with_context(|| format!("asking orb {orb} to close client {id}"))?;
        writeln!(out, "client {id} closed")?;
        out.flush()?;
        return Ok(());
    }
    if args.reload {
        let summary = c
            .reload()
            .await
            .with_context(|| format!("asking orb {orb} to reload its access rules"))?;
        writeln!(out, "{summary}")?;
        out.flush()?;
        return Ok(());
    }
    let ctx = || format!("asking orb {} for its state", orb);
    let mut kinds = vec![InfoKind::Stat];
    if args.sources {
        kinds.push(InfoKind::Sources);
    }
    if args.clients {
        kinds.push(InfoKind::Clients);
    }
    for kind in kinds {
        let json = c.info_json(kind).await.with_context(ctx)?;
        if args.json {
            print_json_line(&mut out, &json)?;
            continue;
        }
        let what = format!("{kind:?}");
        let bad = || format!("the orb's {what} document does not parse");
        match kind {
            InfoKind::Stat => {
                print_stat(&mut out, &serde_json::from_str(&json).with_context(bad)?)?
            }
            InfoKind::Sources => {
                writeln!(out)?;
                print_sources(&mut out, &serde_json::from_str(&json).with_context(bad)?)?
            }
            InfoKind::Clients => {
                writeln!(out)?;
                print_clients(&mut out, &serde_json::from_str(&json).with_context(bad)?)?
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// The document on one line: as it came if it is one line already, else compacted.
fn print_json_line(out: &mut Stdout, json: &str) -> anyhow::Result<()> {
    if json.contains('\n') {
        let v: serde_json::Value =
            serde_json::from_str(json).context("the orb sent a document that is not JSON")?;
        writeln!(out, "{v}")?;
    } else {
        writeln!(out, "{json}")?;
    }
    Ok(())
}

fn pkt_at(p: &Option<PktAt>) -> String {
    match p {
        Some(p) => format!("#{} {}", p.pktid, p.time),
        None => "-".into(),
    }
}

fn print_stat(out: &mut Stdout, s: &ServerStat) -> Result<(), OutputError> {
    let r = &s.ring;
    let pct = if r.capacity > 0 {
        100.0 * r.used_bytes as f64 / r.capacity as f64
    } else {
        0.0
    };
    let t = &s.totals;
    writeln!(out, "server    {} (protocol {})", s.server, s.protocol)?;
    writeln!(out, "started   {}  (now {})", s.started, s.now)?;
    writeln!(
        out,
        "ring      {}: {} of {} used ({pct:.1}%), {} packets, {} sources, flush {}",
        r.path,
        human_bytes(r.used_bytes),
        human_bytes(r.capacity),
        r.npkts,
        r.nsources,
        r.flush
    )?;
    writeln!(out, "oldest    {}", pkt_at(&r.oldest))?;
    writeln!(out, "newest    {}", pkt_at(&r.newest))?;
    writeln!(out, "next      #{}", r.next_pktid)?;
    writeln!(
        out,
        "rate      {:.1} packets/s, {}/s",
        s.packet_rate,
        human_bytes(s.byte_rate.max(0.0) as u64)
    )?;
    writeln!(out, "clients   {}", s.clients)?;
    writeln!(
        out,
        "totals    in {} packets ({}), out {} packets ({})",
        t.packets_in,
        human_bytes(t.bytes_in),
        t.packets_out,
        human_bytes(t.bytes_out)
    )?;
    writeln!(
        out,
        "gaps      {} ({} packets, {} lost by lapped readers)",
        t.gaps,
        t.gap_packets,
        human_bytes(t.gap_bytes)
    )?;
    let f = &s.refused;
    writeln!(
        out,
        "refused   connects {} denied, {} over limits, {} without HELLO, {} failed TLS handshakes; {} bad tokens",
        f.connects_denied, f.connects_limit, f.handshake_timeouts, f.tls_handshakes, f.auth_failures
    )?;
    writeln!(
        out,
        "          writes {} not allowed, {} foreign srcname, {} too large; reads {}, admin {}",
        f.writes_not_allowed,
        f.writes_foreign_srcname,
        f.writes_too_large,
        f.reads_not_allowed,
        f.admin_not_allowed
    )
}

fn print_sources(out: &mut Stdout, s: &SourcesInfo) -> Result<(), OutputError> {
    let mut t = Table::new(&[
        ("SRCNAME", false),
        ("NPKTS", true),
        ("NBYTES", true),
        ("OLDEST", true),
        ("NEWEST", true),
        ("NEWEST TIME", false),
        ("LATENCY", true),
    ]);
    for r in &s.sources {
        t.row(vec![
            r.srcname.clone(),
            r.npkts.to_string(),
            r.nbytes.to_string(),
            r.oldest.pktid.to_string(),
            r.newest.pktid.to_string(),
            r.newest.time.clone(),
            human_secs(r.latency),
        ]);
    }
    t.write(out)
}

fn print_clients(out: &mut Stdout, s: &ClientsInfo) -> Result<(), OutputError> {
    let mut t = Table::new(&[
        ("ID", true),
        ("WHO", false),
        ("WHAT", false),
        ("ADDRESS", false),
        ("ACCESS", false),
        ("POS", true),
        ("SELECT", false),
        ("REJECT", false),
        ("PKTS IN", true),
        ("BYTES IN", true),
        ("PKTS OUT", true),
        ("BYTES OUT", true),
        ("LAG", true),
    ]);
    let or_dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    for c in &s.clients {
        t.row(vec![
            c.id.to_string(),
            c.who.clone(),
            c.what.clone(),
            c.address.clone(),
            if c.access.is_empty() {
                "-".to_string()
            } else {
                c.access.clone()
            },
            c.pos.to_string(),
            or_dash(&c.select),
            or_dash(&c.reject),
            c.packets_in.to_string(),
            human_bytes(c.bytes_in),
            c.packets_out.to_string(),
            human_bytes(c.bytes_out),
            c.lag
                .map(|l| format!("{:.1}%", 100.0 * l))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    t.write(out)
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
    fn flags_combine() {
        let a = Args::try_parse_from(["orbstat", "orb.example.org:6580", "-sc", "--json"]).unwrap();
        assert!(a.sources && a.clients && a.json);
        assert_eq!(a.kill, None);
        assert!(!a.reload);
        assert_eq!(
            a.orb.parse::<OrbAddr>().unwrap(),
            OrbAddr::new("orb.example.org", 6580)
        );
    }

    #[test]
    fn admin_actions_stand_alone() {
        let a = Args::try_parse_from(["orbstat", ":6510", "--kill", "7"]).unwrap();
        assert_eq!(a.kill, Some(7));
        let a = Args::try_parse_from(["orbstat", ":6510", "--reload"]).unwrap();
        assert!(a.reload);
        for bad in [
            &["orbstat", ":6510", "--kill", "7", "--reload"][..],
            &["orbstat", ":6510", "--kill", "7", "-c"],
            &["orbstat", ":6510", "--reload", "--json"],
            &["orbstat", ":6510", "--kill", "seven"],
        ] {
            assert!(Args::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
