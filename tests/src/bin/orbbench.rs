//! `orbbench`: throughput, latency and idle-cost figures for orbserver and orbclient,
//! each printed beside a baseline measured in the same run.
//!
//! The machine this runs on is shared and noisy, so absolute numbers move from run to
//! run; what to compare across runs is each figure's ratio to a bare-tokio baseline
//! measured interleaved with it (alternating rounds, or one baseline operation before
//! every measured one), so that load from other processes hits both alike. Baselines:
//!
//! - B1: loopback echo round trips of one 552-byte message (client writes, one server
//!   task reads it and writes it back), the floor for any request/reply.
//! - B2: one-way length-prefixed 550-byte frames written by the client in 256 KiB
//!   batches and split by a server task, the ceiling for any stream of packet-sized
//!   frames.
//!
//! Figures 1-5 run against an orbserver started in this process on its own tokio
//! runtime (`--server-threads` workers, default 1), with a temporary ring and flush
//! policy `none`; the client side runs on a current-thread runtime on the main thread,
//! so on a 2-core machine each side has about one core. The ring is filled once before
//! any figure is measured, as a long-running server's ring is; that first lap into the
//! fresh file is reported as figure 0, without a target. Figure 6 spawns the release
//! `orbserver` binary that sits next to this executable, so that the client's sockets
//! do not count toward the server's memory; build it first with
//! `cargo build --release --bin orbserver`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::{Buf, Bytes, BytesMut};
use clap::Parser;
use formats::proto::{decode, Access, Body, Decoded, Frame, Whence, PROTOCOL_VERSION};
use formats::{Packet, SrcName, Time};
use orbclient::{ClientOptions, OrbAddr, OrbClient, ReapEvent, ReapOptions};
use orbserver::access::{token_hash, AccessFile, AccessRules, TokenFile};
use orbserver::config::{Limits, ServerConfig};
use orbserver::ring::{FlushPolicy, RingError, RingOptions};
use orbserver::server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

// Later figures live in their own files beside this one.
#[path = "orbbench/detect.rs"]
mod detect;
#[path = "orbbench/http.rs"]
mod http;
#[path = "orbbench/seedlink.rs"]
mod seedlink;

/// Payload bytes of every packet put.
const PAYLOAD: usize = 512;
/// Sources in the ring: `XX_STA00` to `XX_STA63`.
const NSOURCES: usize = 64;
/// Size of one B1 echo message: a payload plus about a PUT frame's headers.
const ECHO_MSG: usize = PAYLOAD + 40;
/// Size of one B2 frame, length prefix included.
const STREAM_FRAME: usize = 550;
/// Bytes per write in B2 (and the client's pipelined puts aim for the same).
const STREAM_BATCH: usize = 256 * 1024;
/// Idle connections held open for figure 6.
const IDLE_CONNS: usize = 5000;

/// Benchmarks of orbserver and orbclient, each figure beside a bare-tokio baseline.
///
/// Figures: 1 `pipelined` (pipelined puts from one writer), 2 `put` (one put at a
/// time), 3 `reap` (one reaper reading a full ring from oldest), 4 `reap64` (64
/// concurrent reapers with their own select), 5 `latency` (put-to-reap latency at
/// 1000 packets/s), 6 `idle` (memory and CPU of 5000 idle connections, plaintext then
/// TLS, against a spawned release orbserver), 7 `access` (puts against a server with access rules and
/// tokens, as a ratio to the same puts against a server without, in alternating rounds),
/// 8 `datalink` (DataLink WRITE with ACK and STREAM, each as a ratio to the native PUT
/// and reap on the same server, interleaved), 9 `durable` (one reaper reading the full
/// ring beside a writer of durable puts, each waiting for its msync, as a ratio to the
/// same reap alone, in alternating passes; run it with `--server-threads 2` to see
/// whether a sync stalls readers on other workers), 10 `seedlink` (SeedLink streaming of
/// SEED and of MGENC packets, converted on the fly, to 1 and to 16 clients, each as a
/// ratio to the native reap of the same packets), 11 `http` (`GET /api/v1/stat` on a
/// keep-alive connection, as a ratio to the native STAT request), 12 `wsdatalink`
/// (DataLink STREAM over a WebSocket on the HTTP port, `/datalink`, as a ratio to the
/// native reap of the same ring on the same server, in alternating passes; target >=
/// 0.7), 13 `tls` (pipelined puts and one reaper over TLS 1.3 on the native port, as
/// ratios to a plaintext server in the same run, targets >= 0.7; and connections per
/// second, TCP + TLS handshake + HELLO, against plaintext), 14 `detect` (detection latency:
/// from the put of the packet whose samples cross an STA/LTA threshold to the trigger
/// packet's arrival, through a spawned release `orbdetect`, beside the plain reap
/// latency of the same packets, at 40 and 400 packets/s). Baselines B1 (echo round trips) and B2 (one-way framed
/// stream) run whenever a figure needs them. Packets carry 512-byte payloads.
#[derive(Debug, Parser)]
#[command(about, long_about)]
struct Args {
    /// Shrink every size tenfold (and the ring to 256 MiB) for a quick smoke run.
    #[arg(long)]
    quick: bool,

    /// Run only this figure (and its baselines): 1-14 or pipelined, put, reap, reap64,
    /// latency, idle, access, datalink, durable, seedlink, http, wsdatalink, tls, detect.
    #[arg(long, value_name = "NAME")]
    only: Option<String>,

    /// Worker threads of the in-process server's tokio runtime.
    #[arg(long, value_name = "N", default_value_t = 1)]
    server_threads: usize,

    /// PUT frames in flight for figure 1.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    window: usize,
}

/// One figure, as `--only` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Figure {
    Pipelined,
    Put,
    Reap,
    Reap64,
    Latency,
    Idle,
    Access,
    DataLink,
    Durable,
    SeedLink,
    Http,
    WsDataLink,
    Tls,
    Detect,
}

impl Figure {
    const ALL: [Figure; 14] = [
        Figure::Pipelined,
        Figure::Put,
        Figure::Reap,
        Figure::Reap64,
        Figure::Latency,
        Figure::Idle,
        Figure::Access,
        Figure::DataLink,
        Figure::Durable,
        Figure::SeedLink,
        Figure::Http,
        Figure::WsDataLink,
        Figure::Tls,
        Figure::Detect,
    ];

    fn names(self) -> [&'static str; 2] {
        match self {
            Figure::Pipelined => ["1", "pipelined"],
            Figure::Put => ["2", "put"],
            Figure::Reap => ["3", "reap"],
            Figure::Reap64 => ["4", "reap64"],
            Figure::Latency => ["5", "latency"],
            Figure::Idle => ["6", "idle"],
            Figure::Access => ["7", "access"],
            Figure::DataLink => ["8", "datalink"],
            Figure::Durable => ["9", "durable"],
            Figure::SeedLink => ["10", "seedlink"],
            Figure::Http => ["11", "http"],
            Figure::WsDataLink => ["12", "wsdatalink"],
            Figure::Tls => ["13", "tls"],
            Figure::Detect => ["14", "detect"],
        }
    }

    fn parse(s: &str) -> Result<Figure> {
        Figure::ALL
            .into_iter()
            .find(|f| f.names().contains(&s))
            .with_context(|| {
                format!(
                    "unknown figure {s:?}: use 1-14 or pipelined, put, reap, reap64, latency, idle, access, datalink, durable, seedlink, http, wsdatalink, tls, detect"
                )
            })
    }
}

/// Sizes of one run.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    ring_bytes: u64,
    /// B2 frames beside each figure (split over its rounds).
    stream_frames: usize,
    /// Round trips of figure 2, and as many B1 echoes beside them.
    single_puts: usize,
    latency_packets: usize,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        let div = if quick { 10 } else { 1 };
        Sizes {
            ring_bytes: if quick { 256 << 20 } else { 1 << 30 },
            stream_frames: 4_000_000 / div,
            single_puts: 100_000 / div,
            latency_packets: if quick { 2_000 } else { 5_000 },
        }
    }
}

/// Rounds that figure 1 and its baseline alternate in, so that a burst of load from
/// another process on the shared machine hits both alike.
const ROUNDS: usize = 10;

/// Items counted over some time, summed over rounds.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    n: u64,
    t: Duration,
}

impl Tally {
    fn add(&mut self, n: u64, t: Duration) {
        self.n += n;
        self.t += t;
    }

    fn merge(&mut self, other: Tally) {
        self.add(other.n, other.t);
    }

    fn per_sec(&self) -> f64 {
        if self.t.is_zero() {
            f64::NAN
        } else {
            self.n as f64 / self.t.as_secs_f64()
        }
    }
}

/// An orbserver running on the server runtime in this process.
struct InProcServer {
    addr: OrbAddr,
    /// Its DataLink listener, if it has one.
    datalink: Option<SocketAddr>,
    /// Its SeedLink listener, if it has one.
    seedlink: Option<SocketAddr>,
    /// Its HTTP listener, if it has one.
    http: Option<SocketAddr>,
    token: CancellationToken,
    run: tokio::task::JoinHandle<Result<(), RingError>>,
    _dir: tempfile::TempDir,
}

/// The client end of a B1 echo connection; its server task ends when this is dropped.
struct EchoPeer {
    stream: TcpStream,
    msg: Vec<u8>,
}

impl EchoPeer {
    /// One round trip: write the message, read it back.
    async fn round_trip(&mut self) -> std::io::Result<Duration> {
        let t = Instant::now();
        self.stream.write_all(&self.msg).await?;
        self.stream.read_exact(&mut self.msg).await?;
        Ok(t.elapsed())
    }
}

/// What the summary line reports about one figure.
struct Verdict {
    name: &'static str,
    /// `Some(met)` for a figure with a target; `None` for one without.
    met: Option<bool>,
    /// The figure could not be measured here (and says why on its line).
    skipped: bool,
}

struct Bench {
    args: Args,
    sizes: Sizes,
    /// The client side: a current-thread runtime on the main thread.
    client_rt: Runtime,
    /// The server side: baselines' server tasks and the in-process orbserver.
    server_rt: Runtime,
    server: Option<InProcServer>,
    /// Every B1 and B2 round of the run, for the baseline lines at the end.
    echo_all: Tally,
    echo_rtts: Vec<Duration>,
    stream_all: Tally,
    /// The ring has been filled once (every page touched), by figure 1 or on demand.
    filled: bool,
    names: Vec<SrcName>,
    payload: Bytes,
    verdicts: Vec<Verdict>,
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orbbench: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let only = args.only.as_deref().map(Figure::parse).transpose()?;
    let figures: Vec<Figure> = match only {
        Some(f) => vec![f],
        None => Figure::ALL.to_vec(),
    };
    let mut b = Bench::new(args)?;
    b.header(&figures);
    for f in figures {
        match f {
            Figure::Pipelined => b.pipelined()?,
            Figure::Put => b.single_puts()?,
            Figure::Reap => b.reap_one()?,
            Figure::Reap64 => b.reap_many()?,
            Figure::Latency => b.latency()?,
            Figure::Idle => b.idle()?,
            Figure::Access => b.access()?,
            Figure::DataLink => b.datalink()?,
            Figure::Durable => b.durable_beside()?,
            Figure::SeedLink => b.seedlink()?,
            Figure::Http => b.http()?,
            Figure::WsDataLink => b.ws_datalink()?,
            Figure::Tls => b.tls()?,
            Figure::Detect => b.detection()?,
        }
    }
    b.stop_server()?;
    b.baselines();
    b.summary();
    Ok(())
}

impl Bench {
    fn new(args: Args) -> Result<Bench> {
        let client_rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the client runtime")?;
        let server_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.server_threads.max(1))
            .thread_name("server")
            .enable_all()
            .build()
            .context("cannot start the server runtime")?;
        let names = (0..NSOURCES)
            .map(|i| SrcName::new(&format!("XX_STA{i:02}")))
            .collect::<Result<Vec<_>, _>>()?;
        let payload = Bytes::from((0..PAYLOAD).map(|i| i as u8).collect::<Vec<u8>>());
        Ok(Bench {
            sizes: Sizes::new(args.quick),
            args,
            client_rt,
            server_rt,
            server: None,
            echo_all: Tally::default(),
            echo_rtts: Vec::new(),
            stream_all: Tally::default(),
            filled: false,
            names,
            payload,
            verdicts: Vec::new(),
        })
    }

    fn header(&self, figures: &[Figure]) {
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!(
            "orbbench: {cpus} CPUs, load average {} at start, {PAYLOAD}-byte payloads, {} sizes; \
             each figure's baseline is measured interleaved with it and shown on its line",
            loadavg(),
            if self.args.quick { "--quick" } else { "full" }
        );
        if figures.iter().any(|f| *f != Figure::Idle) {
            println!(
                "figures 1-5 and 7-12: in-process orbserver(s) on a tokio multi-thread runtime with {} worker(s), \
                 ring {} MiB in a temp dir, flush none, filled once before measuring; \
                 client on a current-thread runtime on the main thread",
                self.args.server_threads,
                self.sizes.ring_bytes >> 20
            );
        }
        if figures.contains(&Figure::Idle) {
            println!(
                "figure 6: spawned release binary {}",
                orbserver_path().display()
            );
        }
        println!();
    }

    /// Starts the in-process orbserver if it is not running; returns its address.
    fn server(&mut self) -> Result<OrbAddr> {
        if let Some(s) = &self.server {
            return Ok(s.addr.clone());
        }
        let s = self.bind_inproc(self.sizes.ring_bytes, AccessRules::default())?;
        let addr = s.addr.clone();
        self.server = Some(s);
        Ok(addr)
    }

    /// Starts an orbserver on the server runtime with a fresh ring of `ring_bytes` and
    /// these access rules.
    fn bind_inproc(&self, ring_bytes: u64, access: AccessRules) -> Result<InProcServer> {
        self.bind_inproc_with(ring_bytes, access, None)
    }

    /// As [`Bench::bind_inproc`], with a DataLink listener on `datalink` if given.
    fn bind_inproc_with(
        &self,
        ring_bytes: u64,
        access: AccessRules,
        datalink: Option<SocketAddr>,
    ) -> Result<InProcServer> {
        self.bind_inproc_config(ring_bytes, |cfg| {
            cfg.access = access;
            cfg.datalink = datalink;
        })
    }

    /// Starts an orbserver on the server runtime with a fresh ring of `ring_bytes`,
    /// flush policy `none`, and whatever else `edit` sets in its configuration.
    fn bind_inproc_config(
        &self,
        ring_bytes: u64,
        edit: impl FnOnce(&mut ServerConfig),
    ) -> Result<InProcServer> {
        let dir = tempfile::Builder::new()
            .prefix("orbbench-")
            .tempdir()
            .context("cannot make a temporary ring directory")?;
        let mut cfg = ServerConfig {
            listen: "127.0.0.1:0".parse().expect("valid address"),
            ring_dir: dir.path().join("ring"),
            ring: RingOptions {
                size: Some(ring_bytes),
                flush: FlushPolicy::None,
            },
            limits: Limits {
                max_clients_per_address: 10_000,
                ..Limits::default()
            },
            ..ServerConfig::default()
        };
        edit(&mut cfg);
        let server = self
            .server_rt
            .block_on(Server::bind(cfg))
            .context("cannot start the in-process orbserver")?;
        let local = server.local_addr()?;
        let token = server.shutdown_token();
        let (datalink, seedlink, http) = (
            server.datalink_addr(),
            server.seedlink_addr(),
            server.http_addr(),
        );
        let run = self.server_rt.spawn(server.run(Duration::from_secs(5)));
        let addr = OrbAddr::new(local.ip().to_string(), local.port());
        Ok(InProcServer {
            addr,
            datalink,
            seedlink,
            http,
            token,
            run,
            _dir: dir,
        })
    }

    fn stop_inproc(&self, s: InProcServer) -> Result<()> {
        s.token.cancel();
        self.server_rt
            .block_on(s.run)
            .context("server task")?
            .context("the in-process server did not close its ring cleanly")
    }

    fn stop_server(&mut self) -> Result<()> {
        if let Some(s) = self.server.take() {
            self.stop_inproc(s)?;
        }
        Ok(())
    }

    fn connect(&mut self, what: &str) -> Result<OrbClient> {
        let addr = self.server()?;
        let opts = client_opts(what);
        Ok(self.client_rt.block_on(OrbClient::connect(&addr, &opts))?)
    }

    fn record(&mut self, name: &'static str, met: Option<bool>) {
        self.verdicts.push(Verdict {
            name,
            met,
            skipped: false,
        });
    }

    fn record_skipped(&mut self, name: &'static str) {
        self.verdicts.push(Verdict {
            name,
            met: None,
            skipped: true,
        });
    }

    /// The packets of the fill pattern: 64 sources in turn, one shared payload.
    fn fill_packets(&self, n: usize) -> impl Iterator<Item = Packet> {
        let names = self.names.clone();
        let payload = self.payload.clone();
        let t0 = Time::now().as_micros();
        (0..n).map(move |i| {
            Packet::new(
                names[i % NSOURCES].clone(),
                Time::from_micros(t0 + i as i64),
                payload.clone(),
            )
        })
    }

    /// Packets that fill the ring: its bytes over each payload (records are a bit
    /// larger, so the ring wraps and every page has been written).
    fn fill_count(&self) -> usize {
        (self.sizes.ring_bytes / PAYLOAD as u64) as usize
    }

    /// Puts `n` fill packets pipelined on `c`; returns the time taken.
    fn put_pipelined(&mut self, c: &mut OrbClient, n: usize) -> Result<Duration> {
        let packets = self.fill_packets(n);
        let window = self.args.window;
        let (elapsed, summary) = self.client_rt.block_on(async move {
            let t = Instant::now();
            let s = c.put_pipelined(packets, window).await?;
            anyhow::Ok((t.elapsed(), s))
        })?;
        if summary.count != n as u64 {
            bail!("pipelined put stored {} of {n} packets", summary.count);
        }
        Ok(elapsed)
    }

    /// Fills a fresh ring once, so that every figure sees a warm, full ring as a
    /// long-running server has; reports the first lap's rate on the way.
    fn ensure_filled(&mut self) -> Result<()> {
        if self.filled {
            return Ok(());
        }
        let mut c = self.connect("orbbench-fill")?;
        let n = self.fill_count();
        let t = self.put_pipelined(&mut c, n)?;
        self.filled = true;
        println!(
            "{:<36}{:>12}   (first lap into the fresh {} MiB ring file: no target, \
             every put also faults a new page in)",
            "0 fill, pipelined, fresh ring",
            rate(n as f64 / t.as_secs_f64()),
            self.sizes.ring_bytes >> 20
        );
        Ok(())
    }

    // ---- baselines ----

    /// Opens a B1 echo connection: one server task echoes `ECHO_MSG`-byte messages.
    fn echo_peer(&mut self) -> Result<EchoPeer> {
        let listener = self.server_rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        self.server_rt.spawn(async move {
            let (mut s, _) = listener.accept().await?;
            s.set_nodelay(true)?;
            let mut buf = vec![0u8; ECHO_MSG];
            // Ends when the client drops its end.
            while s.read_exact(&mut buf).await.is_ok() {
                s.write_all(&buf).await?;
            }
            std::io::Result::Ok(())
        });
        let stream = self.client_rt.block_on(TcpStream::connect(addr))?;
        stream.set_nodelay(true)?;
        Ok(EchoPeer {
            stream,
            msg: vec![0x5a; ECHO_MSG],
        })
    }

    /// B2: `frames` length-prefixed frames written in 256 KiB batches, split by a
    /// reader task on the server runtime; adds the round to the run's tally.
    fn stream_round(&mut self, frames: usize) -> Result<Tally> {
        let per_batch = STREAM_BATCH / STREAM_FRAME;
        let batches = frames.div_ceil(per_batch).max(1);
        let total = (batches * per_batch) as u64;
        let listener = self.server_rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let reader = self.server_rt.spawn(async move {
            let (mut s, _) = listener.accept().await?;
            s.set_nodelay(true)?;
            let mut buf = BytesMut::with_capacity(2 * STREAM_BATCH);
            let mut frames = 0u64;
            let mut bytes = 0u64;
            loop {
                if buf.capacity() - buf.len() < STREAM_BATCH / 4 {
                    buf.reserve(STREAM_BATCH);
                }
                if s.read_buf(&mut buf).await? == 0 {
                    break;
                }
                while buf.len() >= 4 {
                    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                    if buf.len() < 4 + len {
                        break;
                    }
                    let frame = buf.split_to(4 + len).freeze();
                    bytes += frame.len() as u64;
                    frames += 1;
                }
            }
            s.write_all(&frames.to_le_bytes()).await?;
            std::io::Result::Ok(bytes)
        });
        let mut batch = BytesMut::with_capacity(STREAM_BATCH);
        for i in 0..per_batch {
            batch.extend_from_slice(&((STREAM_FRAME - 4) as u32).to_le_bytes());
            batch.extend(std::iter::repeat_n(i as u8, STREAM_FRAME - 4));
        }
        let batch = batch.freeze();
        let (elapsed, got) = self.client_rt.block_on(async move {
            let mut s = TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            let start = Instant::now();
            for _ in 0..batches {
                s.write_all(&batch).await?;
            }
            s.shutdown().await?;
            let got = s.read_u64_le().await?;
            anyhow::Ok((start.elapsed(), got))
        })?;
        self.server_rt
            .block_on(reader)
            .context("stream reader task")?
            .context("stream reader")?;
        if got != total {
            bail!("stream baseline: the reader split {got} frames of {total}");
        }
        let mut t = Tally::default();
        t.add(total, elapsed);
        self.stream_all.merge(t);
        Ok(t)
    }

    // ---- figures ----

    /// Figure 1: pipelined puts from one writer into the warm ring, alternating with B2.
    fn pipelined(&mut self) -> Result<()> {
        self.ensure_filled()?;
        let mut c = self.connect("orbbench-put")?;
        // Two laps of the ring.
        let per_round = 2 * self.fill_count() / ROUNDS;
        let (mut fig, mut base) = (Tally::default(), Tally::default());
        for _ in 0..ROUNDS {
            base.merge(self.stream_round(self.sizes.stream_frames / ROUNDS)?);
            let t = self.put_pipelined(&mut c, per_round)?;
            fig.add(per_round as u64, t);
        }
        self.throughput_line("1 pipelined puts, 1 writer", fig, base, "")
    }

    /// Figure 13: the cost of TLS 1.3. Two fresh servers with equal rings, one plaintext,
    /// one with TLS on its native port (certificates from `orbserver gencert`'s code);
    /// pipelined puts alternate between them in paired rounds, then one reaper reads
    /// each whole ring, then as many connections as possible are opened (TCP, TLS
    /// handshake, HELLO/WELCOME) one after another for a second on each. The figures
    /// are the ratios TLS / plaintext and the TLS handshakes per second.
    fn tls(&mut self) -> Result<()> {
        let certs = tempfile::Builder::new()
            .prefix("orbbench-tls-")
            .tempdir()
            .context("cannot make a temporary certificate directory")?;
        let hosts = vec!["localhost".to_string()];
        orbserver::gencert::gencert(
            certs.path(),
            &orbserver::gencert::GencertRequest {
                hosts: &hosts,
                client: None,
                days: 1,
            },
        )?;
        let ring = self.sizes.ring_bytes.min(256 << 20);
        let plain = self.bind_inproc(ring, AccessRules::default())?;
        let files = orbserver::config::TlsFiles {
            cert: certs.path().join("server.pem"),
            key: certs.path().join("server.key"),
            client_ca: None,
        };
        let tls = self.bind_inproc_config(ring, |cfg| cfg.tls.native = Some(files))?;
        let tls_addr = OrbAddr::new("localhost", tls.addr.port).with_tls();
        let opts_tls = ClientOptions {
            tls: orbclient::TlsOptions {
                ca: Some(certs.path().join("ca.pem")),
                ..Default::default()
            },
            ..client_opts("orbbench-tls")
        };
        let opts_plain = client_opts("orbbench-plain");
        let mut cp = self
            .client_rt
            .block_on(OrbClient::connect(&plain.addr, &opts_plain))?;
        let mut ct = self
            .client_rt
            .block_on(OrbClient::connect(&tls_addr, &opts_tls))?;
        let lap = (ring / PAYLOAD as u64) as usize;
        self.put_pipelined(&mut cp, lap)?;
        self.put_pipelined(&mut ct, lap)?;
        const PAIRS: usize = 2 * ROUNDS;
        let per_round = 2 * lap / PAIRS;
        let (mut fp, mut ft) = (Tally::default(), Tally::default());
        let mut ratios = Vec::with_capacity(PAIRS);
        for round in 0..PAIRS {
            let (mut tp, mut tt) = (Duration::ZERO, Duration::ZERO);
            for tls_turn in [round % 2 == 1, round % 2 == 0] {
                let c = if tls_turn { &mut ct } else { &mut cp };
                let t = self.put_pipelined(c, per_round)?;
                *if tls_turn { &mut tt } else { &mut tp } = t;
            }
            fp.add(per_round as u64, tp);
            ft.add(per_round as u64, tt);
            ratios.push(tp.as_secs_f64() / tt.as_secs_f64());
        }
        drop((cp, ct));
        ratios.sort_by(f64::total_cmp);
        let put_median = ratios[PAIRS / 2];
        // One reaper over each whole ring, twice, alternating.
        let (mut rp, mut rt) = (Tally::default(), Tally::default());
        for pass in 0..4 {
            let tls_turn = pass % 2 == 1;
            let (addr, opts) = if tls_turn {
                (&tls_addr, &opts_tls)
            } else {
                (&plain.addr, &opts_plain)
            };
            let (got, t) = self.client_rt.block_on(async {
                let mut c = OrbClient::connect(addr, opts).await?;
                c.seek(Whence::Oldest, 0).await?;
                let start = Instant::now();
                let got = reap_all(c).await?;
                anyhow::Ok((got, start.elapsed()))
            })?;
            if tls_turn { &mut rt } else { &mut rp }.add(got, t);
        }
        let reap_ratio = rt.per_sec() / rp.per_sec();
        // Connections per second, one at a time, for a second each.
        let mut per_sec = [0.0f64; 2];
        for (i, (addr, opts)) in [(&plain.addr, &opts_plain), (&tls_addr, &opts_tls)]
            .into_iter()
            .enumerate()
        {
            per_sec[i] = self.client_rt.block_on(async {
                let start = Instant::now();
                let mut n = 0u64;
                while start.elapsed() < Duration::from_secs(1) {
                    let c = OrbClient::connect(addr, opts).await?;
                    drop(c);
                    n += 1;
                }
                anyhow::Ok(n as f64 / start.elapsed().as_secs_f64())
            })?;
        }
        self.stop_inproc(plain)?;
        self.stop_inproc(tls)?;
        let met = put_median >= 0.7 && reap_ratio >= 0.7;
        println!(
            "{:<36}{:>12}   (plaintext {}; median of {PAIRS} paired rounds {put_median:.3}; one reaper {} vs {}, ratio {reap_ratio:.3}; connections/s {:.0} TLS vs {:.0} plaintext)   target ratios >= 0.70   {}",
            "13 pipelined puts over TLS 1.3",
            rate(ft.per_sec()),
            rate(fp.per_sec()),
            rate(rt.per_sec()),
            rate(rp.per_sec()),
            per_sec[1],
            per_sec[0],
            mark(met)
        );
        self.record("13 puts and reap over TLS 1.3", Some(met));
        Ok(())
    }

    /// Figure 7: the cost of access control. Two fresh servers with equal rings, one
    /// with default rules, one with connect allow/deny lists, `write = []` and 100
    /// tokens, the writer holding one bound to `XX_STA[0-9]{2}` (so every packet's
    /// srcname is checked). Pipelined puts, then one-at-a-time puts, alternate between
    /// the two in rounds (order swapped each round); the figure is the ratio.
    fn access(&mut self) -> Result<()> {
        const TOKEN: &str = "orbbench-station-token-0123456789";
        let ring = self.sizes.ring_bytes.min(256 << 20);
        let mut tokens: Vec<TokenFile> = (0..99)
            .map(|i| TokenFile {
                name: format!("other{i}"),
                sha256: hex_string(&token_hash(&format!("orbbench-other-token-{i:04}"))),
                write: Some(format!("YY_S{i:02}_.*")),
                read: false,
                admin: false,
            })
            .collect();
        tokens.push(TokenFile {
            name: "bench".into(),
            sha256: hex_string(&token_hash(TOKEN)),
            write: Some("XX_STA[0-9]{2}".into()),
            read: true,
            admin: false,
        });
        let guarded_rules = AccessRules::from_file(&AccessFile {
            connect_allow: Some(vec!["127.0.0.0/8".into(), "::1/128".into()]),
            connect_deny: vec!["10.0.0.0/8".into(), "192.168.0.0/16".into()],
            write: Some(vec![]),
            read: Some(vec!["127.0.0.0/8".into()]),
            admin: None,
            tokens,
        })?;
        let plain = self.bind_inproc(ring, AccessRules::default())?;
        let guarded = self.bind_inproc(ring, guarded_rules)?;
        let opts_plain = ClientOptions {
            token: None,
            ..client_opts("orbbench-plain")
        };
        let opts_guarded = ClientOptions {
            token: Some(TOKEN.into()),
            ..client_opts("orbbench-token")
        };
        let mut cp = self
            .client_rt
            .block_on(OrbClient::connect(&plain.addr, &opts_plain))?;
        let mut cg = self
            .client_rt
            .block_on(OrbClient::connect(&guarded.addr, &opts_guarded))?;
        // Warm both rings with one lap each, as figure 0 does for the main server.
        let lap = (ring / PAYLOAD as u64) as usize;
        self.put_pipelined(&mut cp, lap)?;
        self.put_pipelined(&mut cg, lap)?;
        // Short rounds in adjacent pairs: a burst of load from the shared machine hits
        // one pair, and the median of the pairs' ratios ignores it.
        const PAIRS: usize = 2 * ROUNDS;
        let per_round = 2 * lap / PAIRS;
        let (mut fp, mut fg) = (Tally::default(), Tally::default());
        let mut ratios = Vec::with_capacity(PAIRS);
        for round in 0..PAIRS {
            let (mut tp, mut tg) = (Duration::ZERO, Duration::ZERO);
            for guarded_turn in [round % 2 == 1, round % 2 == 0] {
                let c = if guarded_turn { &mut cg } else { &mut cp };
                let t = self.put_pipelined(c, per_round)?;
                *if guarded_turn { &mut tg } else { &mut tp } = t;
            }
            fp.add(per_round as u64, tp);
            fg.add(per_round as u64, tg);
            ratios.push(tp.as_secs_f64() / tg.as_secs_f64());
        }
        ratios.sort_by(f64::total_cmp);
        let median = ratios[PAIRS / 2];
        let n = self.sizes.single_puts;
        let name = self.names[0].clone();
        let payload = self.payload.clone();
        let (sp, sg) = self.client_rt.block_on(async {
            let (mut sp, mut sg) = (Tally::default(), Tally::default());
            for i in 0..n {
                for guarded_turn in [i % 2 == 1, i % 2 == 0] {
                    let c = if guarded_turn { &mut cg } else { &mut cp };
                    let t = Instant::now();
                    c.put(&name, Time::now(), &payload).await?;
                    let tally = if guarded_turn { &mut sg } else { &mut sp };
                    tally.add(1, t.elapsed());
                }
            }
            anyhow::Ok((sp, sg))
        })?;
        drop((cp, cg));
        self.stop_inproc(plain)?;
        self.stop_inproc(guarded)?;
        let ratio = fg.per_sec() / fp.per_sec();
        let ratio1 = sg.per_sec() / sp.per_sec();
        let met = median >= 0.95;
        println!(
            "{:<36}{:>12}   (no access rules {}; median of {PAIRS} paired rounds {median:.3}, overall {ratio:.3}; one at a time {} vs {}, ratio {:.3})   target median ratio >= 0.95   {}",
            "7 puts with access rules + token",
            rate(fg.per_sec()),
            rate(fp.per_sec()),
            rate(sg.per_sec()),
            rate(sp.per_sec()),
            ratio1,
            mark(met)
        );
        self.record("7 puts with access rules + token", Some(met));
        Ok(())
    }

    /// Figure 8: the DataLink gateway against the native protocol on one fresh server
    /// with a warm ring. (a) WRITE with ACK round trips against one-at-a-time PUTs,
    /// one of each in turn (order swapped each time); (b) STREAM of the whole ring from
    /// the earliest packet against a native reap of it from the oldest, in alternating
    /// passes. Each part is reported as DataLink's rate over the native rate.
    fn datalink(&mut self) -> Result<()> {
        use formats::datalink::{Command, Position, Write};
        use orb_tests::dlclient::{DlClient, DlReply};
        let ring = self.sizes.ring_bytes.min(256 << 20);
        let srv = self.bind_inproc_with(
            ring,
            AccessRules::default(),
            Some("127.0.0.1:0".parse().expect("valid address")),
        )?;
        let dl_addr = srv
            .datalink
            .context("the server has no DataLink listener")?;
        let opts = client_opts("orbbench-native");
        let mut native = self
            .client_rt
            .block_on(OrbClient::connect(&srv.addr, &opts))?;
        let lap = (ring / PAYLOAD as u64) as usize;
        self.put_pipelined(&mut native, lap)?;
        let n = self.sizes.single_puts;
        let name = self.names[0].clone();
        let payload = self.payload.clone();
        let (wd, wn) = self.client_rt.block_on(async {
            let mut dl = DlClient::connect(dl_addr).await;
            let (mut wd, mut wn) = (Tally::default(), Tally::default());
            for i in 0..n {
                for dl_turn in [i % 2 == 0, i % 2 == 1] {
                    let t = Instant::now();
                    if dl_turn {
                        let w = Write {
                            streamid: name.as_str(),
                            start: Time::now(),
                            end: Time::now(),
                            ack: true,
                            payload: &payload,
                        };
                        match dl.request(Command::Write(w)).await {
                            DlReply::Ok(..) => {}
                            other => bail!("DataLink WRITE: {other:?}"),
                        }
                        wd.add(1, t.elapsed());
                    } else {
                        native.put(&name, Time::now(), &payload).await?;
                        wn.add(1, t.elapsed());
                    }
                }
            }
            anyhow::Ok((wd, wn))
        })?;
        drop(native);
        const PASSES: usize = 3;
        let (mut sd, mut sn) = (Tally::default(), Tally::default());
        for pass in 0..PASSES {
            for dl_turn in [pass % 2 == 0, pass % 2 == 1] {
                if dl_turn {
                    let (got, t) = self.client_rt.block_on(async {
                        let mut dl = DlClient::connect(dl_addr).await;
                        let latest = match dl.request(Command::PositionSet(Position::Latest)).await
                        {
                            DlReply::Ok(id, _) => u64::try_from(id)?,
                            other => bail!("POSITION SET LATEST: {other:?}"),
                        };
                        match dl.request(Command::PositionSet(Position::Earliest)).await {
                            DlReply::Ok(..) => {}
                            other => bail!("POSITION SET EARLIEST: {other:?}"),
                        }
                        let start = Instant::now();
                        dl.send(Command::Stream).await;
                        let mut got = 0u64;
                        loop {
                            let (pktid, len) = dl.recv_packet().await;
                            got += 1;
                            std::hint::black_box(len);
                            if pktid >= latest {
                                break;
                            }
                        }
                        anyhow::Ok((got, start.elapsed()))
                    })?;
                    sd.add(got, t);
                } else {
                    let c = self
                        .client_rt
                        .block_on(OrbClient::connect(&srv.addr, &opts))?;
                    let (got, t) = self.client_rt.block_on(async move {
                        let mut c = c;
                        c.seek(Whence::Oldest, 0).await?;
                        let start = Instant::now();
                        let got = reap_all(c).await?;
                        anyhow::Ok((got, start.elapsed()))
                    })?;
                    sn.add(got, t);
                }
            }
        }
        self.stop_inproc(srv)?;
        let wr = wd.per_sec() / wn.per_sec();
        let sr = sd.per_sec() / sn.per_sec();
        println!(
            "{:<36}{:>12}   (native one-at-a-time PUT {}, ratio {wr:.2}; {n} of each, interleaved)",
            "8a DataLink WRITE with ACK",
            rate(wd.per_sec()),
            rate(wn.per_sec()),
        );
        println!(
            "{:<36}{:>12}   (native reap {}, ratio {sr:.2}; {PASSES} passes of the ring each, alternating)",
            "8b DataLink STREAM, ring from oldest",
            rate(sd.per_sec()),
            rate(sn.per_sec()),
        );
        Ok(())
    }

    /// Figure 12: DataLink STREAM over a WebSocket (`/datalink` on the HTTP port, one
    /// binary message per DataLink message) against a native reap, on one fresh server
    /// with a warm ring: each reads the whole ring from the oldest packet, in
    /// alternating passes; reported as the WebSocket's rate over the native rate.
    fn ws_datalink(&mut self) -> Result<()> {
        use formats::datalink::{decode_reply, Command, Decoded, Position, Reply};
        use futures_util::SinkExt as _;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        use tokio_tungstenite::tungstenite::Message;
        const NAME: &str = "12 WebSocket DataLink STREAM";
        let ring = self.sizes.ring_bytes.min(256 << 20);
        let srv = self.bind_inproc_config(ring, |cfg| {
            cfg.http = Some("127.0.0.1:0".parse().expect("valid address"));
        })?;
        let http = srv.http.context("the server has no HTTP port")?;
        let opts = client_opts("orbbench-native");
        let mut native = self
            .client_rt
            .block_on(OrbClient::connect(&srv.addr, &opts))?;
        let lap = (ring / PAYLOAD as u64) as usize;
        self.put_pipelined(&mut native, lap)?;
        drop(native);
        let encode = |c: Command<'_>| {
            let mut b = Vec::new();
            c.encode(&mut b).expect("encodable command");
            b
        };
        const PASSES: usize = 3;
        let (mut ws, mut nat) = (Tally::default(), Tally::default());
        for pass in 0..PASSES {
            for ws_turn in [pass % 2 == 0, pass % 2 == 1] {
                if ws_turn {
                    let (got, t) = self.client_rt.block_on(async {
                        let mut req = format!("ws://{http}/datalink").into_client_request()?;
                        req.headers_mut()
                            .insert("sec-websocket-protocol", "DataLink1.0".parse()?);
                        let (mut c, _) = tokio_tungstenite::connect_async(req).await?;
                        let mut ask = encode(Command::PositionSet(Position::Latest));
                        ask.extend(encode(Command::PositionSet(Position::Earliest)));
                        c.send(Message::binary(ask)).await?;
                        let m = ws_message(&mut c).await?;
                        let latest = match decode_reply(&m, 1 << 20) {
                            Ok(Decoded::Done(Reply::Ok { value, .. }, _)) => u64::try_from(value)?,
                            other => bail!("POSITION SET LATEST: {other:?}"),
                        };
                        let m = ws_message(&mut c).await?;
                        if !matches!(
                            decode_reply(&m, 1 << 20),
                            Ok(Decoded::Done(Reply::Ok { .. }, _))
                        ) {
                            bail!("POSITION SET EARLIEST failed");
                        }
                        let start = Instant::now();
                        c.send(Message::binary(encode(Command::Stream))).await?;
                        let mut got = 0u64;
                        loop {
                            let m = ws_message(&mut c).await?;
                            let pktid = match decode_reply(&m, 1 << 20) {
                                Ok(Decoded::Done(Reply::Packet { pktid, data, .. }, len))
                                    if len == m.len() =>
                                {
                                    std::hint::black_box(data);
                                    pktid
                                }
                                other => bail!("not one PACKET per message: {other:?}"),
                            };
                            got += 1;
                            if pktid >= latest {
                                break;
                            }
                        }
                        anyhow::Ok((got, start.elapsed()))
                    })?;
                    ws.add(got, t);
                } else {
                    let c = self
                        .client_rt
                        .block_on(OrbClient::connect(&srv.addr, &opts))?;
                    nat.merge(self.client_rt.block_on(timed_reap(c))?);
                }
            }
        }
        self.stop_inproc(srv)?;
        let ratio = ws.per_sec() / nat.per_sec();
        let met = ratio >= 0.7;
        println!(
            "{:<36}{:>12}   (native reap {}, ratio {ratio:.2}; {PASSES} passes of the ring each, alternating)   target ratio >= 0.70   {}",
            NAME,
            rate(ws.per_sec()),
            rate(nat.per_sec()),
            mark(met)
        );
        self.record(NAME, Some(met));
        Ok(())
    }

    /// Prints a throughput figure against the stream baseline and the 2 M/s target.
    fn throughput_line(
        &mut self,
        name: &'static str,
        fig: Tally,
        base: Tally,
        note: &str,
    ) -> Result<()> {
        let per_sec = fig.per_sec();
        let met = per_sec >= 2e6;
        println!(
            "{:<36}{:>12}   (stream baseline {}, ratio {:.2})   target >= 2.00 M/s   {}{note}",
            name,
            rate(per_sec),
            rate(base.per_sec()),
            per_sec / base.per_sec(),
            mark(met)
        );
        self.record(name, Some(met));
        Ok(())
    }

    /// Figure 2: one put at a time, each waiting for its PUT_OK; every put follows one
    /// B1 round trip, so both see the same moment of the shared machine.
    fn single_puts(&mut self) -> Result<()> {
        self.ensure_filled()?;
        let mut c = self.connect("orbbench-put1")?;
        let mut peer = self.echo_peer()?;
        let n = self.sizes.single_puts;
        let name = self.names[0].clone();
        let payload = self.payload.clone();
        let (mut echo, mut puts) = self.client_rt.block_on(async {
            let (mut echo, mut puts) = (Vec::with_capacity(n), Vec::with_capacity(n));
            for _ in 0..n {
                echo.push(peer.round_trip().await?);
                let t = Instant::now();
                c.put(&name, Time::now(), &payload).await?;
                puts.push(t.elapsed());
            }
            anyhow::Ok((echo, puts))
        })?;
        let (mut fig, mut base) = (Tally::default(), Tally::default());
        fig.add(n as u64, puts.iter().sum());
        base.add(n as u64, echo.iter().sum());
        self.echo_all.merge(base);
        self.echo_rtts.extend_from_slice(&echo);
        echo.sort_unstable();
        puts.sort_unstable();
        let ratio = fig.per_sec() / base.per_sec();
        let met = ratio >= 0.9;
        println!(
            "{:<36}{:>12}   (echo baseline {}, ratio {:.2}; p50 put {} vs echo {})   target ratio >= 0.90   {}",
            "2 one put at a time",
            rate(fig.per_sec()),
            rate(base.per_sec()),
            ratio,
            micros(pct(&puts, 0.5)),
            micros(pct(&echo, 0.5)),
            mark(met)
        );
        self.record("2 one put at a time", Some(met));
        Ok(())
    }

    /// Figure 3: one reaper reads the whole ring from the oldest packet, in passes
    /// alternating with B2.
    fn reap_one(&mut self) -> Result<()> {
        self.ensure_filled()?;
        const PASSES: usize = 3;
        let (mut fig, mut base) = (Tally::default(), Tally::default());
        for _ in 0..PASSES {
            base.merge(self.stream_round(self.sizes.stream_frames / PASSES)?);
            let c = self.connect("orbbench-reap")?;
            let (got, t) = self.client_rt.block_on(async move {
                let mut c = c;
                c.seek(Whence::Oldest, 0).await?;
                let start = Instant::now();
                let got = reap_all(c).await?;
                anyhow::Ok((got, start.elapsed()))
            })?;
            if got == 0 {
                bail!("the reaper got no packets from a full ring");
            }
            fig.add(got, t);
        }
        let note = format!("   [{} packets per pass]", fig.n / PASSES as u64);
        self.throughput_line("3 one reaper, full ring from oldest", fig, base, &note)
    }

    /// Figure 9: one reaper reads the full ring from the oldest packet, in passes
    /// alternating between alone and beside a writer that puts one packet at a time with
    /// `durable`, each answered only after its msync. The ratio says how much a writer
    /// waiting for the disk slows readers.
    fn durable_beside(&mut self) -> Result<()> {
        self.ensure_filled()?;
        const PASSES: usize = 3;
        let (mut alone, mut beside) = (Tally::default(), Tally::default());
        let mut synced = Tally::default();
        for _ in 0..PASSES {
            let c = self.connect("orbbench-reap")?;
            alone.merge(self.client_rt.block_on(timed_reap(c))?);
            let c = self.connect("orbbench-reap")?;
            let mut w = self.connect("orbbench-durable")?;
            let packet = self.fill_packets(1).next().expect("one packet");
            let (reap, puts) = self.client_rt.block_on(async move {
                let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let writer_stop = Arc::clone(&stop);
                let writer = tokio::spawn(async move {
                    let start = Instant::now();
                    let mut n = 0u64;
                    while !writer_stop.load(Relaxed) {
                        w.put_batch(std::slice::from_ref(&packet), true).await?;
                        n += 1;
                    }
                    anyhow::Ok(Tally {
                        n,
                        t: start.elapsed(),
                    })
                });
                let reap = timed_reap(c).await;
                stop.store(true, Relaxed);
                let puts = writer.await.context("durable writer task")??;
                anyhow::Ok((reap?, puts))
            })?;
            beside.merge(reap);
            synced.merge(puts);
        }
        let ratio = beside.per_sec() / alone.per_sec();
        println!(
            "{:<36}{:>12}   (same reap alone {}, ratio {ratio:.2})   beside {} durable puts   [{} server worker(s)]",
            "9 one reaper beside durable puts",
            rate(beside.per_sec()),
            rate(alone.per_sec()),
            rate(synced.per_sec()),
            self.args.server_threads
        );
        self.record("9 one reaper beside durable puts", None);
        Ok(())
    }

    /// Figure 4: 64 reapers at once, reaper `i` selecting sources `i` and `i + 1`, in
    /// passes alternating with B2.
    fn reap_many(&mut self) -> Result<()> {
        self.ensure_filled()?;
        const PASSES: usize = 2;
        let addr = self.server()?;
        let (mut fig, mut base) = (Tally::default(), Tally::default());
        for _ in 0..PASSES {
            base.merge(self.stream_round(self.sizes.stream_frames / PASSES)?);
            let (got, t) = self.client_rt.block_on(async {
                let opts = client_opts("orbbench-reap64");
                let mut ready = Vec::with_capacity(NSOURCES);
                for i in 0..NSOURCES {
                    let mut c = OrbClient::connect(&addr, &opts).await?;
                    let expr = format!("XX_STA{i:02}.*|XX_STA{:02}.*", (i + 1) % NSOURCES);
                    c.select(&expr).await?;
                    c.seek(Whence::Oldest, 0).await?;
                    ready.push(c);
                }
                let total = Arc::new(AtomicU64::new(0));
                let start = Instant::now();
                let mut tasks = tokio::task::JoinSet::new();
                for c in ready {
                    let total = Arc::clone(&total);
                    tasks.spawn(async move {
                        total.fetch_add(reap_all(c).await?, Relaxed);
                        anyhow::Ok(())
                    });
                }
                while let Some(r) = tasks.join_next().await {
                    r.context("reaper task")??;
                }
                anyhow::Ok((total.load(Relaxed), start.elapsed()))
            })?;
            fig.add(got, t);
        }
        let note = format!(
            "   [{} packets per pass, each reaper 1/32 of the ring]",
            fig.n / PASSES as u64
        );
        self.throughput_line("4 64 reapers, own select each", fig, base, &note)
    }

    /// Figure 5: put-to-reap latency with one writer at 1000 packets/s; each tick
    /// also makes one B1 round trip (before the put), the baseline at the same load.
    fn latency(&mut self) -> Result<()> {
        self.ensure_filled()?;
        let n = self.sizes.latency_packets;
        let mut reader = self.connect("orbbench-lat-reap")?;
        let mut writer = self.connect("orbbench-lat-put")?;
        let mut peer = self.echo_peer()?;
        let origin = Instant::now();
        let name = SrcName::new("XX_LATENCY")?;
        let (mut lat, mut rtts) = self.client_rt.block_on(async move {
            reader.select("XX_LATENCY").await?;
            let mut stream = reader.reap(ReapOptions::default()).await?;
            let put = tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(1));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut payload = vec![0u8; PAYLOAD];
                let mut rtts = Vec::with_capacity(n);
                for _ in 0..n {
                    tick.tick().await;
                    rtts.push(peer.round_trip().await?);
                    let sent = origin.elapsed().as_nanos() as u64;
                    payload[..8].copy_from_slice(&sent.to_le_bytes());
                    writer.put(&name, Time::now(), &payload).await?;
                }
                anyhow::Ok(rtts)
            });
            let mut lat = Vec::with_capacity(n);
            while lat.len() < n {
                match stream.next().await? {
                    Some(ReapEvent::Packet(p)) => {
                        let now = origin.elapsed().as_nanos() as u64;
                        let sent = p
                            .payload
                            .get(..8)
                            .map_or(now, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
                        lat.push(Duration::from_nanos(now.saturating_sub(sent)));
                    }
                    Some(ReapEvent::Gap { .. }) => {}
                    None => bail!("the latency reap ended early"),
                }
            }
            let rtts = put.await.context("writer task")??;
            anyhow::Ok((lat, rtts))
        })?;
        lat.sort_unstable();
        rtts.sort_unstable();
        let half = |q: f64| micros(pct(&rtts, q) / 2);
        let (p50, p99, max) = (pct(&lat, 0.50), pct(&lat, 0.99), pct(&lat, 1.0));
        let met = p50 < Duration::from_micros(200) && p99 < Duration::from_millis(2);
        println!(
            "{:<36}{:>12}   (p99 {}, max {}; echo rtt/2 at the same pace p50 {}, p99 {}, max {})   \
             target p50 < 200 us, p99 < 2 ms   {}",
            "5 put-to-reap latency, 1000/s",
            format!("p50 {}", micros(p50)),
            micros(p99),
            micros(max),
            half(0.50),
            half(0.99),
            half(1.0),
            mark(met)
        );
        self.record("5 put-to-reap latency", Some(met));
        Ok(())
    }

    /// Figure 6: server memory per idle connection and server CPU while they idle.
    fn idle(&mut self) -> Result<()> {
        const NAME: &str = "6 idle connections";
        let exe = orbserver_path();
        if !exe.exists() {
            println!(
                "{NAME:<36}skipped: {} is missing; build it with \
                 `cargo build --release --bin orbserver` (same target dir)",
                exe.display()
            );
            self.record_skipped(NAME);
            return Ok(());
        }
        let need = (IDLE_CONNS + 256) as u64;
        let have = raise_nofile(need);
        if have < need {
            println!(
                "{NAME:<36}skipped: the open-file limit is {have}, {need} are needed; \
                 raise it (ulimit -n {need}) and run again"
            );
            self.record_skipped(NAME);
            return Ok(());
        }
        let dir = tempfile::Builder::new()
            .prefix("orbbench-idle-")
            .tempdir()?;
        let plain = Spawned::start(&exe, dir.path(), "")?;
        let addr = plain.addr;
        let m = self.idle_memory(plain, |rt| {
            let conns = rt.block_on(open_idle(addr, IDLE_CONNS))?;
            Ok(Box::new(conns))
        })?;
        let met = m.per_conn < 32.0;
        println!(
            "{NAME:<36}{:>8.1} KiB/conn   (RssAnon {:.1} KiB/conn; VmRSS {} -> {} MiB; \
             idle CPU {} ms over {:.1} s = {:.1}% of a core)   target < 32 KiB/conn   {}",
            m.per_conn,
            m.per_conn_anon,
            m.before_kib >> 10,
            m.after_kib >> 10,
            m.cpu.as_millis(),
            m.wall.as_secs_f64(),
            m.cpu_pct,
            mark(met)
        );
        self.record(NAME, Some(met));

        // The same over TLS 1.3: a server with TLS on its orb port, 5000 clients that
        // completed the handshake and HELLO and then say nothing.
        const TLS_NAME: &str = "6 idle TLS connections";
        let tls_dir = tempfile::Builder::new()
            .prefix("orbbench-idle-tls-")
            .tempdir()?;
        let hosts = vec!["localhost".to_string()];
        orbserver::gencert::gencert(
            tls_dir.path(),
            &orbserver::gencert::GencertRequest {
                hosts: &hosts,
                client: None,
                days: 1,
            },
        )?;
        let tls_table = format!(
            "[tls.native]\ncert = {:?}\nkey = {:?}\n",
            tls_dir.path().join("server.pem"),
            tls_dir.path().join("server.key")
        );
        let server = Spawned::start(&exe, tls_dir.path(), &tls_table)?;
        let tls_addr = OrbAddr::new("localhost", server.addr.port()).with_tls();
        let opts = ClientOptions {
            tls: orbclient::TlsOptions {
                ca: Some(tls_dir.path().join("ca.pem")),
                ..Default::default()
            },
            ..client_opts("orbbench-idle-tls")
        };
        let m = self.idle_memory(server, |rt| {
            let conns = rt.block_on(open_idle_clients(&tls_addr, &opts, IDLE_CONNS))?;
            Ok(Box::new(conns))
        })?;
        let met = m.per_conn < 64.0;
        println!(
            "{TLS_NAME:<36}{:>8.1} KiB/conn   (RssAnon {:.1} KiB/conn; VmRSS {} -> {} MiB; \
             idle CPU {:.1}% of a core)   target < 64 KiB/conn   {}",
            m.per_conn,
            m.per_conn_anon,
            m.before_kib >> 10,
            m.after_kib >> 10,
            m.cpu_pct,
            mark(met)
        );
        self.record(TLS_NAME, Some(met));
        Ok(())
    }

    /// Opens `IDLE_CONNS` connections to `server` with `open`, and measures the server's
    /// resident memory per connection and its CPU while they sit idle; stops the server.
    fn idle_memory(
        &self,
        server: Spawned,
        open: impl FnOnce(&tokio::runtime::Runtime) -> Result<Box<dyn std::any::Any>>,
    ) -> Result<IdleMemory> {
        std::thread::sleep(Duration::from_millis(300));
        let before = server.rss_kib()?;
        let conns = open(&self.client_rt).context("opening idle connections")?;
        // Let the server finish its side of every handshake before measuring.
        std::thread::sleep(Duration::from_millis(500));
        let after = server.rss_kib()?;
        let cpu0 = server.cpu_ticks()?;
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs(2));
        let cpu1 = server.cpu_ticks()?;
        let wall = t0.elapsed();
        drop(conns);
        server.stop();
        let tick = rustix::param::clock_ticks_per_second().max(1);
        let cpu = Duration::from_millis((cpu1 - cpu0) * 1000 / tick);
        Ok(IdleMemory {
            per_conn: (after.0 as f64 - before.0 as f64) / IDLE_CONNS as f64,
            per_conn_anon: (after.1 as f64 - before.1 as f64) / IDLE_CONNS as f64,
            before_kib: before.0,
            after_kib: after.0,
            cpu,
            wall,
            cpu_pct: 100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        })
    }

    /// The baselines over every round of the run.
    fn baselines(&mut self) {
        if self.echo_all.n > 0 || self.stream_all.n > 0 {
            println!();
        }
        if self.echo_all.n > 0 {
            self.echo_rtts.sort_unstable();
            println!(
                "{:<36}{:>12}   (round trip p50 {}, p99 {}; all rounds of this run)",
                "B1 echo round trips, 552 B",
                rate(self.echo_all.per_sec()),
                micros(pct(&self.echo_rtts, 0.50)),
                micros(pct(&self.echo_rtts, 0.99)),
            );
        }
        if self.stream_all.n > 0 {
            let per_sec = self.stream_all.per_sec();
            println!(
                "{:<36}{:>12}   ({:.0} MB/s of 550-byte frames; all rounds of this run)",
                "B2 one-way framed stream",
                rate(per_sec),
                per_sec * STREAM_FRAME as f64 / 1e6
            );
        }
    }

    fn summary(&self) {
        let met: Vec<&str> = self
            .verdicts
            .iter()
            .filter(|v| v.met == Some(true))
            .map(|v| v.name)
            .collect();
        let missed: Vec<&str> = self
            .verdicts
            .iter()
            .filter(|v| v.met == Some(false))
            .map(|v| v.name)
            .collect();
        let skipped: Vec<&str> = self
            .verdicts
            .iter()
            .filter(|v| v.skipped)
            .map(|v| v.name)
            .collect();
        let untargeted: Vec<&str> = self
            .verdicts
            .iter()
            .filter(|v| v.met.is_none() && !v.skipped)
            .map(|v| v.name)
            .collect();
        println!();
        println!("load average {} at the end", loadavg());
        println!(
            "targets met: {} of {}{}",
            met.len(),
            met.len() + missed.len(),
            if met.is_empty() {
                String::new()
            } else {
                format!(" ({})", met.join("; "))
            }
        );
        if !missed.is_empty() {
            println!("targets missed: {}", missed.join("; "));
        }
        if !untargeted.is_empty() {
            println!("measured without a target: {}", untargeted.join("; "));
        }
        if !skipped.is_empty() {
            println!("skipped: {}", skipped.join("; "));
        }
    }
}

fn client_opts(what: &str) -> ClientOptions {
    ClientOptions {
        request_timeout: Some(Duration::from_secs(120)),
        ..ClientOptions::for_program(what)
    }
}

/// Lower-case hex, as the config takes token hashes.
fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reaps (poll mode) until the ring has nothing more; returns the packets received.
async fn reap_all(c: OrbClient) -> Result<u64> {
    let opts = ReapOptions {
        timeout: Some(Duration::ZERO),
        ..ReapOptions::default()
    };
    let mut stream = c.reap(opts).await?;
    let mut n = 0u64;
    while let Some(ev) = stream.next().await? {
        if let ReapEvent::Packet(p) = ev {
            n += 1;
            std::hint::black_box(&p.payload);
        }
    }
    Ok(n)
}

/// The next binary message of a WebSocket client (other messages skipped).
async fn ws_message(
    c: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Result<Bytes> {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match c.next().await {
            Some(Ok(Message::Binary(b))) => return Ok(b),
            Some(Ok(_)) => continue,
            other => bail!("the WebSocket ended: {other:?}"),
        }
    }
}

/// Reaps the whole ring from the oldest packet on `c`; the packets and the time taken.
async fn timed_reap(mut c: OrbClient) -> Result<Tally> {
    c.seek(Whence::Oldest, 0).await?;
    let start = Instant::now();
    let n = reap_all(c).await?;
    if n == 0 {
        bail!("the reaper got no packets from a full ring");
    }
    Ok(Tally {
        n,
        t: start.elapsed(),
    })
}

/// Opens `n` connections that each say HELLO and get WELCOME, then stay idle.
async fn open_idle(addr: SocketAddr, n: usize) -> Result<Vec<TcpStream>> {
    let mut conns = Vec::with_capacity(n);
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0usize;
    // At most this many handshakes at once, well inside the listener's backlog.
    const PARALLEL: usize = 128;
    while conns.len() < n {
        while next < n && tasks.len() < PARALLEL {
            tasks.spawn(hello(addr));
            next += 1;
        }
        match tasks.join_next().await {
            Some(r) => conns.push(r.context("handshake task")??),
            None => break,
        }
    }
    Ok(conns)
}

/// Opens `n` client connections (TCP, TLS if the address says so, HELLO/WELCOME) with
/// at most 128 handshakes in flight, and keeps them open.
async fn open_idle_clients(
    addr: &OrbAddr,
    opts: &ClientOptions,
    n: usize,
) -> Result<Vec<OrbClient>> {
    let mut conns = Vec::with_capacity(n);
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0usize;
    const PARALLEL: usize = 128;
    while conns.len() < n {
        while next < n && tasks.len() < PARALLEL {
            let (addr, opts) = (addr.clone(), opts.clone());
            tasks.spawn(async move { OrbClient::connect(&addr, &opts).await });
            next += 1;
        }
        match tasks.join_next().await {
            Some(r) => conns.push(r.context("handshake task")??),
            None => break,
        }
    }
    Ok(conns)
}

/// What `idle_memory` measured.
struct IdleMemory {
    per_conn: f64,
    per_conn_anon: f64,
    before_kib: u64,
    after_kib: u64,
    cpu: Duration,
    wall: Duration,
    cpu_pct: f64,
}

/// Connects and completes HELLO/WELCOME with the bare protocol codec.
async fn hello(addr: SocketAddr) -> Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    let mut out = BytesMut::new();
    Frame {
        tag: 1,
        body: Body::Hello {
            version: PROTOCOL_VERSION,
            access: Access {
                read: true,
                write: true,
            },
            pid: std::process::id(),
            who: "bench@localhost",
            what: "orbbench-idle",
            token: None,
        },
    }
    .encode(&mut out);
    s.write_all(&out).await?;
    let mut buf = BytesMut::with_capacity(256);
    loop {
        if let Decoded::Frame(f, len) = decode(&buf, 1 << 20)? {
            if !matches!(f.body, Body::Welcome { .. }) {
                bail!(
                    "expected WELCOME, got {}",
                    formats::proto::kind_name(f.body.kind())
                );
            }
            buf.advance(len);
            return Ok(s);
        }
        if s.read_buf(&mut buf).await? == 0 {
            bail!("the server closed the connection before WELCOME");
        }
    }
}

/// The release orbserver next to this executable.
fn orbserver_path() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("orbserver")))
        .unwrap_or_else(|| PathBuf::from("orbserver"))
}

/// Raises the soft open-file limit towards `want` (up to the hard limit); returns the
/// soft limit now in force. Children inherit it.
fn raise_nofile(want: u64) -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    let soft = lim.current.unwrap_or(u64::MAX);
    if soft >= want {
        return soft;
    }
    let target = lim.maximum.map_or(want, |m| m.min(want));
    let new = Rlimit {
        current: Some(target),
        maximum: lim.maximum,
    };
    match setrlimit(Resource::Nofile, new) {
        Ok(()) => target,
        Err(_) => soft,
    }
}

/// A spawned orbserver, stopped with SIGTERM (then killed) when dropped.
struct Spawned {
    child: std::process::Child,
    addr: SocketAddr,
}

impl Spawned {
    /// Starts `exe` on a ring in `dir`, with `extra` appended to its config file.
    fn start(exe: &Path, dir: &Path, extra: &str) -> Result<Spawned> {
        use std::io::BufRead;
        let config = dir.join("orbserver.toml");
        std::fs::write(
            &config,
            format!("[limits]\nmax_clients = 20000\nmax_clients_per_address = 20000\n{extra}"),
        )
        .with_context(|| format!("cannot write {}", config.display()))?;
        let mut child = std::process::Command::new(exe)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--ring-size",
                "64MiB",
                "--flush",
                "none",
            ])
            .arg("--ring")
            .arg(dir.join("ring"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(a) = line.strip_prefix("orbserver: listening on ") {
                        break a.trim().parse::<SocketAddr>()?;
                    }
                }
                _ => {
                    let _ = child.kill();
                    let status = child.wait()?;
                    bail!("orbserver exited before listening: {status}");
                }
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        Ok(Spawned { child, addr })
    }

    fn status_path(&self, file: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/{file}", self.child.id()))
    }

    /// (VmRSS, RssAnon) in KiB.
    fn rss_kib(&self) -> Result<(u64, u64)> {
        let path = self.status_path("status");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        };
        Ok((
            field("VmRSS:").context("no VmRSS")?,
            field("RssAnon:").unwrap_or(0),
        ))
    }

    /// utime + stime in clock ticks.
    fn cpu_ticks(&self) -> Result<u64> {
        let path = self.status_path("stat");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
        let rest = text
            .rsplit_once(')')
            .map(|(_, r)| r)
            .context("bad /proc stat")?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        Ok(num(11).context("no utime")? + num(12).context("no stime")?)
    }

    fn stop(mut self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The 1-minute load average, to show how busy the shared machine was.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn pct(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() {
        "?".into()
    } else if per_sec >= 1e6 {
        format!("{:.2} M/s", per_sec / 1e6)
    } else if per_sec >= 1e3 {
        format!("{:.1} k/s", per_sec / 1e3)
    } else {
        format!("{per_sec:.0} /s")
    }
}

fn micros(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1e3)
    } else {
        format!("{us:.0} us")
    }
}

fn mark(met: bool) -> &'static str {
    if met {
        "[met]"
    } else {
        "[MISSED]"
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
    fn figures_parse_by_number_and_name() {
        assert_eq!(Figure::parse("3").unwrap(), Figure::Reap);
        assert_eq!(Figure::parse("latency").unwrap(), Figure::Latency);
        assert_eq!(Figure::parse("7").unwrap(), Figure::Access);
        assert_eq!(Figure::parse("datalink").unwrap(), Figure::DataLink);
        assert_eq!(Figure::parse("9").unwrap(), Figure::Durable);
        assert_eq!(Figure::parse("14").unwrap(), Figure::Detect);
        assert_eq!(Figure::parse("detect").unwrap(), Figure::Detect);
        assert!(Figure::parse("nope").is_err());
    }

    #[test]
    fn percentiles_and_rates() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(pct(&v, 0.5), Duration::from_micros(51));
        assert_eq!(pct(&v, 1.0), Duration::from_micros(100));
        assert_eq!(rate(1_840_000.0), "1.84 M/s");
        assert_eq!(rate(523_100.0), "523.1 k/s");
    }
}
