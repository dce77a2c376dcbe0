//! `orbserver`: serves the ring to orb clients over TCP (docs/PROTOCOL.md), or, with
//! `--check`, checks the config, opens and verifies the ring, reports it and exits; or,
//! with `--hash-token` or `--hash-password`, prints the config line for a token or a
//! password read from stdin.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use std::fmt::Write as _;
use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::Arc;

use orbserver::access::{token_hash_line, MAX_TOKEN_LEN, MIN_TOKEN_LEN};
use orbserver::config::{parse_size, ConfigFile, ServerConfig};
use orbserver::ring::{FlushPolicy, RingStore};
use orbserver::server::{reload, Hub, Server};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// The orb server: a crash-safe ring of packets served over TCP.
///
/// Sensors put packets; readers select, seek and reap them. The ring is one preallocated
/// file, RING/orb.ring: opening it checks every record, drops a torn record left by a
/// crash, skips (and reports) corrupt regions and continues pktids above every pktid ever
/// handed out. SIGINT or SIGTERM stop the server cleanly: clients are told, the ring is
/// flushed. SIGHUP (or an admin's `orbstat ORB --reload`) reloads the [access] rules of the
/// --config file without dropping anyone. The protocol is docs/PROTOCOL.md, the file format docs/RING-FORMAT.md, access
/// control docs/SECURITY.md.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// Address to listen on (host:port). Default 127.0.0.1:6510, loopback only.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// Also serve DataLink (ringserver's protocol: libdali, dalitool, simpledali) on this
    /// address, e.g. 127.0.0.1:16000. Off by default. See docs/GATEWAYS.md.
    #[arg(long, value_name = "ADDR")]
    datalink: Option<SocketAddr>,

    /// Also serve SeedLink 3.1, read-only (slinktool, ObsPy, SeisComP), on this address,
    /// e.g. 127.0.0.1:18000. Off by default. See docs/GATEWAYS.md.
    #[arg(long, value_name = "ADDR")]
    seedlink: Option<SocketAddr>,

    /// Also serve HTTP on this address, e.g. 127.0.0.1:8080: ringserver's status
    /// resources (/id, /streams, /status, ...), orbstat's documents under /api/v1/,
    /// packets as JSON Lines and Prometheus metrics at /metrics. Off by default. See
    /// docs/HTTP.md.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,

    /// Directory holding the ring file (created if missing). Default ./orb-data.
    #[arg(long, value_name = "DIR")]
    ring: Option<PathBuf>,

    /// Ring size for a new ring: bytes or a number with K, M, G or T (also written KB/KiB,
    /// MB/MiB, ...; every unit is a power of 1024, so 8M = 8MiB = 8388608 bytes), e.g. 256M
    /// or 4GiB; a multiple of 4 KiB from 1 MiB to 1 TiB. An existing ring keeps its size;
    /// giving a different one is an error.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    ring_size: Option<u64>,

    /// When ring pages reach the disk: none, interval (every second, the default),
    /// interval:DURATION (e.g. interval:200ms) or always (before each put is acknowledged).
    #[arg(long, value_name = "POLICY")]
    flush: Option<FlushPolicy>,

    /// TOML file with any of: listen, datalink, seedlink, http, http_headers (a table),
    /// web_root, ring, ring_size, flush, a [limits] table
    /// (max_packet, max_clients, max_clients_per_address, max_regex, handshake_timeout,
    /// output_buffer, writers_exempt) and an [access] table (connect_allow, connect_deny,
    /// write, read, admin, [[access.token]]; see docs/SECURITY.md) and [tls.native],
    /// [tls.datalink], [tls.seedlink], [tls.http] tables (cert, key, client_ca) that put
    /// a listener on TLS. Flags override it.
    /// SIGHUP, or `orbstat ORB --reload` from an admin, re-reads its [access] table.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Check the config, open and verify the ring, print what it holds, and exit
    /// without serving.
    #[arg(long, conflicts_with = "hash_token")]
    check: bool,

    /// Read a token from stdin (one line) and print the `sha256 = "..."` line to paste
    /// into an [[access.token]] entry; then exit. Make tokens long and random, e.g.
    /// `head -c 24 /dev/urandom | base64`.
    #[arg(long)]
    hash_token: bool,

    /// Read a password from stdin (one line) and print the `argon2 = "..."` line (an
    /// argon2id PHC string with a fresh salt) to paste into an [[access.user]] entry;
    /// then exit.
    #[arg(long, conflicts_with_all = ["hash_token", "check"])]
    hash_password: bool,

    /// With --check, print the per-source table as well.
    #[arg(short = 's', long, requires = "check")]
    sources: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

/// Helpers that do not serve.
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Make a self-signed CA and a server certificate for a test network: writes
    /// ca.pem, ca.key, server.pem (the chain), server.key and, with --client,
    /// client.pem and client.key into --out, never overwriting a file. Point a
    /// [tls.native] (or datalink, seedlink, http) table at server.pem and server.key,
    /// and clients at ca.pem (ORB_TLS_CA). See docs/SECURITY.md, "TLS".
    Gencert {
        /// Folder to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// A DNS name or IP address the server certificate is valid for; repeat for
        /// more. Default: localhost and 127.0.0.1.
        #[arg(long = "host", value_name = "NAME")]
        hosts: Vec<String>,
        /// Also make a client certificate with this common name.
        #[arg(long, value_name = "CN")]
        client: Option<String>,
        /// Days the certificates are valid.
        #[arg(long, default_value_t = 365, value_name = "N")]
        days: u32,
    },
}

fn config(args: &Args) -> Result<ServerConfig> {
    let mut cfg = ServerConfig::default();
    if let Some(path) = &args.config {
        ConfigFile::load(path)?.apply(&mut cfg)?;
    }
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if args.datalink.is_some() {
        cfg.datalink = args.datalink;
    }
    if args.seedlink.is_some() {
        cfg.seedlink = args.seedlink;
    }
    if args.http.is_some() {
        cfg.http = args.http;
    }
    if let Some(r) = &args.ring {
        cfg.ring_dir = r.clone();
    }
    if args.ring_size.is_some() {
        cfg.ring.size = args.ring_size;
    }
    if let Some(f) = args.flush {
        cfg.ring.flush = f;
    }
    Ok(cfg)
}

async fn serve(cfg: ServerConfig, config_file: Option<PathBuf>) -> Result<()> {
    let listen = cfg.listen;
    // Install the SIGHUP handler before announcing the port: SIGHUP's default action
    // would end the process.
    let hangups = signal(SignalKind::hangup()).context("cannot install the SIGHUP handler")?;
    let terms = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let server = Server::bind(cfg).await?;
    let addr = server
        .local_addr()
        .with_context(|| format!("cannot read the address bound for {listen}"))?;
    let st = server.shared().ring.stat();
    // Tests and scripts read these lines to learn the ports when listening on port 0;
    // "listening on" comes last.
    // A closed stdout loses these lines but must not stop the server.
    let mut ports = String::new();
    if let Some(a) = server.datalink_addr() {
        writeln!(ports, "orbserver: datalink on {a}")?;
    }
    if let Some(a) = server.seedlink_addr() {
        writeln!(ports, "orbserver: seedlink on {a}")?;
    }
    if let Some(a) = server.http_addr() {
        writeln!(ports, "orbserver: http on {a}")?;
    }
    writeln!(ports, "orbserver: listening on {addr}")?;
    let _ = print_stdout(&ports);
    tracing::info!(
        "serving {} ({} packets, next pktid {}) on {addr}",
        st.path.display(),
        st.npkts,
        st.next_pktid
    );
    if let Some(path) = config_file {
        server.set_config_file(path);
    }
    tokio::spawn(reload_on_hangup(hangups, Arc::clone(server.shared())));
    let token = server.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal(terms).await;
        tracing::info!("shutting down");
        token.cancel();
    });
    server
        .run(Duration::from_secs(5))
        .await
        .context("cannot close the ring cleanly")?;
    tracing::info!("ring closed cleanly");
    Ok(())
}

/// Re-reads the config file's [access] table on every SIGHUP, by the same code path as
/// the RELOAD request. New rules apply to new connections and to every later request of
/// existing ones; a bad file keeps the old rules (the reload logs either way).
async fn reload_on_hangup(mut hangups: Signal, shared: Arc<Hub>) {
    while hangups.recv().await.is_some() {
        let _ = reload::reload(&shared, "SIGHUP");
    }
}

async fn wait_for_signal(mut term: Signal) {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Reads one line from stdin and returns the config line for it.
fn hash_token() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the token from stdin")?;
    let token = line.trim_end_matches(['\r', '\n']);
    if token.len() < MIN_TOKEN_LEN || token.len() > MAX_TOKEN_LEN {
        anyhow::bail!(
            "the token has {} bytes; use {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} bytes of random text, e.g. from `head -c 24 /dev/urandom | base64`",
            token.len()
        );
    }
    Ok(token_hash_line(token))
}

/// Shortest password `--hash-password` accepts.
const MIN_PASSWORD_LEN: usize = 8;

/// Reads one line from stdin and returns the `[[access.user]]` line for it.
fn hash_password() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.len() < MIN_PASSWORD_LEN || password.contains(char::is_whitespace) {
        // SeedLink's AUTH USERPASS separates words by spaces: a password with one
        // could never be sent there.
        anyhow::bail!(
            "use a password of at least {MIN_PASSWORD_LEN} bytes without spaces (SeedLink AUTH separates words by spaces)"
        );
    }
    orbserver::access::password_hash_line(password).map_err(anyhow::Error::msg)
}

fn run(args: Args) -> Result<()> {
    if let Some(Command::Gencert {
        out,
        hosts,
        client,
        days,
    }) = &args.command
    {
        let hosts = if hosts.is_empty() {
            vec!["localhost".to_string(), "127.0.0.1".to_string()]
        } else {
            hosts.clone()
        };
        let req = orbserver::gencert::GencertRequest {
            hosts: &hosts,
            client: client.as_deref(),
            days: *days,
        };
        let files = orbserver::gencert::gencert(out, &req)?;
        let mut text = String::new();
        for f in files {
            writeln!(text, "wrote {}", f.display())?;
        }
        return print_stdout(&text);
    }
    if args.hash_token {
        return print_stdout(&format!("{}\n", hash_token()?));
    }
    if args.hash_password {
        return print_stdout(&format!("{}\n", hash_password()?));
    }
    let cfg = config(&args)?;
    if !args.check {
        let rt = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
        return rt.block_on(serve(cfg, args.config.clone()));
    }
    // The report is gathered first and printed after the ring is closed, so a reader
    // that stops early (`orbserver --check | head -3`) cannot leave the ring unclosed.
    let mut out = String::new();
    writeln!(
        out,
        "config      {}",
        match &args.config {
            Some(p) => format!(
                "{} is valid ({} access tokens)",
                p.display(),
                cfg.access.ntokens()
            ),
            None => "defaults (no --config)".to_string(),
        }
    )?;
    // Certificates are checked as the server would load them at start.
    let t = &cfg.tls;
    let mut tls = Vec::new();
    for (name, files) in [
        ("native", &t.native),
        ("datalink", &t.datalink),
        ("seedlink", &t.seedlink),
        ("http", &t.http),
    ] {
        if let Some(files) = files {
            orbserver::conn::server_config(files)?;
            tls.push(name);
        }
    }
    if !tls.is_empty() {
        writeln!(out, "tls         {} (certificates valid)", tls.join(", "))?;
    }
    let ring = RingStore::open(&cfg.ring_dir, &cfg.ring)
        .with_context(|| format!("cannot open the ring in {}", cfg.ring_dir.display()))?;
    let r = ring.recovery();
    let st = ring.stat();
    writeln!(out, "ring        {}", st.path.display())?;
    writeln!(
        out,
        "capacity    {} bytes ({})",
        st.capacity,
        bytesize::ByteSize(st.capacity)
    )?;
    writeln!(out, "created     {}", st.created)?;
    writeln!(out, "flush       {}", st.flush)?;
    let how = match (r.created, r.clean) {
        (true, _) => "created now".to_string(),
        (false, true) => "previous close was clean".to_string(),
        (false, false) => "previous close was unclean: recovered by scan".to_string(),
    };
    writeln!(
        out,
        "opened      in {:.3} s, {how}",
        r.elapsed.as_secs_f64()
    )?;
    writeln!(
        out,
        "packets     {} from {} sources, {} bytes used",
        st.npkts, st.nsources, st.used_bytes
    )?;
    if let (Some(o), Some(n)) = (st.oldest, st.newest) {
        writeln!(out, "oldest      pktid {} at {}", o.pktid, o.time)?;
        writeln!(out, "newest      pktid {} at {}", n.pktid, n.time)?;
    }
    writeln!(out, "next pktid  {}", st.next_pktid)?;
    if let Some(p) = r.torn_tail {
        writeln!(
            out,
            "torn tail   pktid {p} dropped (its append never returned)"
        )?;
    }
    for c in &r.corrupt {
        writeln!(
            out,
            "corrupt     {} bytes skipped between pktids {} and {}",
            c.end - c.start,
            c.after_pktid,
            c.before_pktid
        )?;
    }
    if r.dropped > 0 {
        writeln!(
            out,
            "dropped     {} unreadable or out-of-order records",
            r.dropped
        )?;
    }
    if args.sources {
        writeln!(
            out,
            "\n{:<32} {:>10} {:>10} {:>8} {:>12}  newest time",
            "srcname", "oldest", "newest", "npkts", "nbytes"
        )?;
        for s in ring.sources() {
            writeln!(
                out,
                "{:<32} {:>10} {:>10} {:>8} {:>12}  {}",
                s.srcname.as_str(),
                s.oldest_pktid,
                s.newest_pktid,
                s.npkts,
                s.nbytes,
                s.newest_time
            )?;
        }
    }
    ring.close().context("cannot close the ring cleanly")?;
    print_stdout(&out)
}

/// Writes `text` to stdout. A reader that went away (`orbserver --check | head -3`) is
/// not an error: the tool ends quietly, as the other orb tools do.
fn print_stdout(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to standard output")
        }
        _ => Ok(()),
    }
}

/// Stderr that drops what it cannot write. A server whose stderr went away (`orbserver
/// 2>&1 | tee log` after `tee` died) must keep serving and still close its ring cleanly
/// on SIGTERM; `eprintln!` and tracing's own error report would panic instead.
struct StderrLossy;

impl Write for StderrLossy {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

/// Log lines carry colour only on a terminal, and never when `NO_COLOR` is set and not
/// empty (no-color.org), so a log written to a file or journal is plain text.
fn colour_on_stderr() -> bool {
    io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(|| StderrLossy)
        .log_internal_errors(false)
        .with_ansi(colour_on_stderr())
        .init();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(StderrLossy, "orbserver: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("lots").unwrap_err().contains("256MiB"));
    }
}
