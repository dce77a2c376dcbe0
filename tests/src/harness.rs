//! Real processes for end-to-end tests: an `orbserver` on 127.0.0.1 port 0 in a temporary
//! ring directory, killed when dropped, and paths to the workspace's binaries.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The path of a workspace binary. Cargo sets `CARGO_BIN_EXE_*` only for a package's
/// own binaries, so look next to the running test executable (`target/<profile>/deps/..`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test --workspace` builds every binary before the tests run, \
         but a narrower run (`cargo test -p tests`) does not: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A running orbserver, killed (SIGKILL) when dropped.
pub struct OrbServer {
    child: Option<Child>,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its ring directory.
    pub ring: PathBuf,
    /// Its DataLink listener, if started with `--datalink`.
    pub datalink: Option<SocketAddr>,
    /// Its SeedLink listener, if started with `--seedlink`.
    pub seedlink: Option<SocketAddr>,
    /// Its HTTP listener, if started with `--http`.
    pub http: Option<SocketAddr>,
    /// Lines it wrote to stdout after the listening line, collected by a thread.
    stdout: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl OrbServer {
    /// Starts `orbserver --listen 127.0.0.1:0 --ring RING` plus `args`, and waits (at most
    /// 30 s) for the line that says where it listens.
    pub fn start(ring: &Path, args: &[&str]) -> OrbServer {
        Self::start_on(ring, "127.0.0.1:0", args)
    }

    /// As [`OrbServer::start`], on a given address (to restart on the same port).
    pub fn start_on(ring: &Path, listen: &str, args: &[&str]) -> OrbServer {
        let mut child = Command::new(bin("orbserver"))
            .args(["--listen", listen, "--ring"])
            .arg(ring)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn orbserver");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let (addr, datalink, seedlink, http) = match read_addresses(&mut lines) {
            Ok(a) => a,
            Err(why) => {
                let status = child.wait().expect("wait");
                panic!("orbserver exited before listening ({why}): {status}");
            }
        };
        let stdout = std::thread::spawn(move || lines.map_while(Result::ok).collect());
        OrbServer {
            child: Some(child),
            addr,
            ring: ring.to_owned(),
            datalink,
            seedlink,
            http,
            stdout: Some(stdout),
        }
    }

    /// `host:port` as the tools take it.
    pub fn orb(&self) -> String {
        self.addr.to_string()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and wait (at most 30 s) for a clean exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let started = Instant::now();
        loop {
            if let Some(st) = c.try_wait().expect("try_wait") {
                return st;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = c.kill();
                panic!("orbserver did not exit within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The stdout lines after the listening line (after the process ended).
    pub fn take_stdout(&mut self) -> Vec<String> {
        self.stdout
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for OrbServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Reads orbserver's first stdout lines (at most 30 s): the gateway addresses, if any,
/// then the native listen address.
#[allow(clippy::type_complexity)]
fn read_addresses(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
) -> Result<
    (
        SocketAddr,
        Option<SocketAddr>,
        Option<SocketAddr>,
        Option<SocketAddr>,
    ),
    String,
> {
    let started = Instant::now();
    let (mut datalink, mut seedlink, mut http) = (None, None, None);
    while started.elapsed() < Duration::from_secs(30) {
        let line = match lines.next() {
            Some(Ok(line)) => line,
            _ => return Err("its stdout ended".into()),
        };
        if let Some(a) = line.strip_prefix("orbserver: listening on ") {
            let addr = a.trim().parse().expect("listen address");
            return Ok((addr, datalink, seedlink, http));
        } else if let Some(a) = line.strip_prefix("orbserver: datalink on ") {
            datalink = Some(a.trim().parse().expect("datalink address"));
        } else if let Some(a) = line.strip_prefix("orbserver: seedlink on ") {
            seedlink = Some(a.trim().parse().expect("seedlink address"));
        } else if let Some(a) = line.strip_prefix("orbserver: http on ") {
            http = Some(a.trim().parse().expect("http address"));
        } else {
            return Err(format!("it printed {line:?} instead of its address"));
        }
    }
    Err("no address within 30 s".into())
}

/// Deadlock guard for anything a test waits on; never a performance limit.
pub const GUARD: Duration = Duration::from_secs(60);

/// Awaits `f`, failing the test with `what` if it takes longer than [`GUARD`].
pub async fn guard<F: std::future::Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(GUARD, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: nothing within {GUARD:?}"),
    }
}

/// A server on a 1 MiB ring (`--flush none`) in a temporary directory; keep the
/// directory alive as long as the server.
pub fn start() -> (tempfile::TempDir, OrbServer) {
    start_with(&["--ring-size", "1MiB", "--flush", "none"])
}

/// A server with these extra arguments, in a temporary ring directory.
pub fn start_with(args: &[&str]) -> (tempfile::TempDir, OrbServer) {
    let dir = tempfile::tempdir().expect("temp dir");
    let srv = OrbServer::start(dir.path(), args);
    (dir, srv)
}

impl OrbServer {
    /// The server's address as the client library takes it.
    pub fn orb_addr(&self) -> orbclient::OrbAddr {
        orbclient::OrbAddr::new("127.0.0.1", self.addr.port())
    }
}

/// A client connected to `srv` as program `what`, with read and write access.
pub async fn connect(srv: &OrbServer, what: &str) -> orbclient::OrbClient {
    connect_with(srv, orbclient::ClientOptions::for_program(what)).await
}

/// A client connected to `srv` with these options.
pub async fn connect_with(srv: &OrbServer, opts: orbclient::ClientOptions) -> orbclient::OrbClient {
    guard(
        "connect",
        orbclient::OrbClient::connect(&srv.orb_addr(), &opts),
    )
    .await
    .expect("connect")
}

/// One frame's bytes, for tests that speak raw protocol.
pub fn encode_frame(tag: u32, body: formats::proto::Body<'_>) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    formats::proto::Frame { tag, body }.encode(&mut out);
    out.to_vec()
}

// ---- Soak and fault tests (tests/tests/soak_*.rs) ----

/// A server started with `--config` (TOML, e.g. a `[limits]` table) and these extra
/// arguments, its ring in `dir/ring`, the file written to `dir/orb.toml`.
pub fn start_with_config(dir: &Path, toml: &str, args: &[&str]) -> OrbServer {
    let config = dir.join("orb.toml");
    std::fs::write(&config, toml).expect("write the config file");
    let mut all = vec!["--config", config.to_str().expect("UTF-8 temp path")];
    all.extend_from_slice(args);
    OrbServer::start(&dir.join("ring"), &all)
}

impl OrbServer {
    /// True while the process runs (it has neither exited nor been killed).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }
}

/// Polls `check` every 20 ms until it is true, failing the test with `what` after
/// [`GUARD`]. For states a server reaches on its own (a timeout firing, a closed socket
/// noticed); never a performance limit.
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < GUARD, "{what}: not within {GUARD:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The server's count of connected clients (STAT `clients`), asked on a connection of
/// its own, which is counted too.
pub async fn client_count(srv: &OrbServer) -> u64 {
    let mut c = connect(srv, "e2e-count").await;
    guard("STAT", c.stat()).await.expect("STAT").clients
}

/// A raw TCP connection that speaks frames by hand, for clients the library would never
/// be: silent, half-finished or garbage-sending ones.
pub struct RawClient(pub tokio::net::TcpStream);

impl RawClient {
    /// Connects (bounded by [`GUARD`]).
    pub async fn connect(addr: SocketAddr) -> std::io::Result<RawClient> {
        guard("connect", tokio::net::TcpStream::connect(addr))
            .await
            .map(RawClient)
    }

    /// Connects and completes HELLO/WELCOME with read and write access.
    pub async fn welcomed(addr: SocketAddr, what: &str) -> std::io::Result<RawClient> {
        let mut c = RawClient::connect(addr).await?;
        c.send(&hello_frame(1, what)).await?;
        match c.read_frame().await? {
            Some(f) if frame_kind(&f) == Some(0x41) => Ok(c),
            other => Err(std::io::Error::other(format!(
                "expected WELCOME, got {other:02x?}"
            ))),
        }
    }

    /// Writes all of `bytes`.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        guard("send", self.0.write_all(bytes)).await
    }

    /// The next whole frame (length prefix included), or `None` once the server has
    /// closed the connection (also by reset).
    pub async fn read_frame(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, UnexpectedEof};
        use tokio::io::AsyncReadExt;
        let mut len = [0u8; 4];
        match guard("read", self.0.read_exact(&mut len)).await {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    UnexpectedEof | ConnectionReset | ConnectionAborted
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        }
        let n = u32::from_le_bytes(len) as usize;
        assert!(n <= 16 << 20, "the server sent a {n} byte frame");
        let mut buf = len.to_vec();
        buf.resize(4 + n, 0);
        guard("read", self.0.read_exact(&mut buf[4..])).await?;
        Ok(Some(buf))
    }
}

/// A HELLO frame asking for read and write access, as program `what`.
pub fn hello_frame(tag: u32, what: &str) -> Vec<u8> {
    encode_frame(
        tag,
        formats::proto::Body::Hello {
            version: formats::proto::PROTOCOL_VERSION,
            access: formats::proto::Access {
                read: true,
                write: true,
            },
            pid: std::process::id(),
            who: "soak@e2e",
            what,
            token: None,
        },
    )
}

/// The kind byte of a whole frame (`len`, then kind), if it has one.
pub fn frame_kind(frame: &[u8]) -> Option<u8> {
    frame.get(4).copied()
}

/// A well-behaved writer and reader working in the background while a test does
/// something rude to the server: the writer puts one small numbered packet at a time
/// (sleeping 2 ms between puts), the reader reaps them. [`Steady::finish`] checks that
/// the reader got exactly what the writer put, in order.
pub struct Steady {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    put: std::sync::Arc<std::sync::atomic::AtomicU64>,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
    writer: tokio::task::JoinHandle<Vec<u64>>,
    reader: tokio::task::JoinHandle<Vec<u64>>,
}

/// The srcname the [`Steady`] writer puts under.
pub const STEADY_SRCNAME: &str = "XX_STEADY/MGENC";
const STEADY_END: &str = "XX_STEADY_END";

impl Steady {
    /// Connects both clients and starts them.
    pub async fn start(srv: &OrbServer) -> Steady {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let mut w = connect(srv, "e2e-steady-writer").await;
        let r = connect(srv, "e2e-steady-reader").await;
        let mut reap = guard("REAP", r.reap(orbclient::ReapOptions::default()))
            .await
            .expect("REAP");
        let (stop, put, read) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let read2 = Arc::clone(&read);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..10_000_000 {
                match guard("steady reader", reap.next())
                    .await
                    .expect("steady reap")
                {
                    Some(orbclient::ReapEvent::Packet(p)) if p.srcname.as_str() == STEADY_END => {
                        return got
                    }
                    Some(orbclient::ReapEvent::Packet(p))
                        if p.srcname.as_str() == STEADY_SRCNAME =>
                    {
                        assert_eq!(
                            crate::check_payload(&p.payload),
                            Some(got.len() as u64),
                            "the steady reader got a wrong payload at pktid {}",
                            p.pktid
                        );
                        got.push(p.pktid);
                        read2.fetch_add(1, Ordering::SeqCst);
                    }
                    // Other clients' packets (a test's own puts) are not ours to check.
                    Some(orbclient::ReapEvent::Packet(_)) => {}
                    other => panic!("the steady reader got {other:?}"),
                }
            }
            panic!("the steady reader saw no end marker");
        });
        let (stop2, put2) = (Arc::clone(&stop), Arc::clone(&put));
        let writer = tokio::spawn(async move {
            let src = formats::SrcName::new(STEADY_SRCNAME).expect("srcname");
            let t = formats::Time::from_micros(1_795_341_600_000_000);
            let mut acked = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                assert!(
                    acked.len() < 1_000_000,
                    "the test never stopped the steady writer"
                );
                let payload = crate::make_payload(acked.len() as u64, 64);
                let pktid = guard("steady put", w.put(&src, t, &payload))
                    .await
                    .expect("the steady writer's put failed");
                acked.push(pktid);
                put2.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let end = formats::SrcName::new(STEADY_END).expect("srcname");
            guard("steady end", w.put(&end, t, b"end"))
                .await
                .expect("the steady writer's end marker");
            acked
        });
        Steady {
            stop,
            put,
            read,
            writer,
            reader,
        }
    }

    /// Packets put and packets read so far.
    pub fn progress(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        (
            self.put.load(Ordering::SeqCst),
            self.read.load(Ordering::SeqCst),
        )
    }

    /// Waits (bounded by [`GUARD`]) until both the writer and the reader have moved at
    /// least `n` packets past where they are now.
    pub async fn advance(&self, n: u64, what: &str) {
        let (p0, r0) = self.progress();
        wait_until(what, || {
            let (p, r) = self.progress();
            async move { p >= p0 + n && r >= r0 + n }
        })
        .await;
    }

    /// Stops the writer; the reader must have got exactly what it put, in order.
    /// Returns the pktids put.
    pub async fn finish(self) -> Vec<u64> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let put = guard("steady writer", self.writer)
            .await
            .expect("steady writer");
        let read = guard("steady reader", self.reader)
            .await
            .expect("steady reader");
        assert!(!put.is_empty(), "the steady writer put nothing");
        assert_eq!(read, put, "the steady reader missed or repeated packets");
        put
    }
}

/// Raises this process's soft limit on open files to `want` (children such as an
/// orbserver started afterwards inherit it). Returns the limit now in force, which is
/// lower than `want` only if the hard limit is.
pub fn raise_nofile_limit(want: u64) -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    let current = lim.current.unwrap_or(u64::MAX);
    if current >= want {
        return current;
    }
    let target = lim.maximum.map_or(want, |hard| hard.min(want));
    lim.current = Some(target);
    setrlimit(Resource::Nofile, lim).expect("raise the soft open-file limit");
    target
}

// ---- Access-control tests (tests/tests/access.rs) ----

/// Starts `orbserver --config DIR/orbserver.toml --listen 127.0.0.1:0 --ring DIR/ring`
/// with `config` as the file's text and its log (stderr, at level info) going to
/// DIR/orbserver.log, for tests of access rules, reloads and log lines.
pub fn start_logged(dir: &Path, config: &str) -> OrbServer {
    let config_path = dir.join("orbserver.toml");
    std::fs::write(&config_path, config).expect("write the config file");
    let log = std::fs::File::create(dir.join("orbserver.log")).expect("create the log file");
    let ring = dir.join("ring");
    let mut child = Command::new(bin("orbserver"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--ring-size",
            "1MiB",
            "--flush",
            "none",
        ])
        .arg("--ring")
        .arg(&ring)
        .arg("--config")
        .arg(&config_path)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn orbserver");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (addr, datalink, seedlink, http) = match read_addresses(&mut lines) {
        Ok(a) => a,
        Err(why) => {
            let status = child.wait().expect("wait");
            let log = std::fs::read_to_string(dir.join("orbserver.log")).unwrap_or_default();
            panic!("orbserver exited before listening ({why}): {status}; log:\n{log}");
        }
    };
    let stdout = std::thread::spawn(move || lines.map_while(Result::ok).collect());
    OrbServer {
        child: Some(child),
        addr,
        ring,
        datalink,
        seedlink,
        http,
        stdout: Some(stdout),
    }
}

/// The log of a server from [`start_logged`] in `dir`.
pub fn server_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("orbserver.log")).unwrap_or_default()
}

/// Waits (at most [`GUARD`]) until the log of the server in `dir` has at least `n` lines
/// containing `needle`; returns the log.
pub fn wait_for_log(dir: &Path, needle: &str, n: usize) -> String {
    let started = Instant::now();
    loop {
        let log = server_log(dir);
        if log.lines().filter(|l| l.contains(needle)).count() >= n {
            return log;
        }
        assert!(
            started.elapsed() < GUARD,
            "no {n} log lines with {needle:?} within {GUARD:?}; log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGHUP to `srv` (reload its config's access rules).
pub fn hangup(srv: &OrbServer) {
    let status = Command::new("kill")
        .args(["-HUP", &srv.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -HUP failed");
}

/// Every packet in the ring, oldest first, read with `c` (a session of its own) until
/// the server has nothing more; panics on a gap, since a dump must see the whole ring.
pub async fn dump_ring(mut c: orbclient::OrbClient) -> Vec<formats::Packet> {
    use formats::proto::Whence;
    use orbclient::{ReapEvent, ReapOptions};
    c.seek(Whence::Oldest, 0)
        .await
        .expect("seek to the oldest packet");
    let mut s = c
        .reap(ReapOptions {
            timeout: Some(Duration::ZERO),
            ..ReapOptions::default()
        })
        .await
        .expect("start the dump");
    let mut out = Vec::new();
    // Bounded: far more than any test ring holds.
    for _ in 0..10_000_000 {
        match guard("dump", s.next()).await.expect("dump") {
            Some(ReapEvent::Packet(p)) => out.push(p),
            Some(gap) => panic!("the ring dump saw a gap: {gap:?}"),
            None => return out,
        }
    }
    panic!("the ring dump did not end");
}

/// Kills the child when dropped, so a failing assertion leaves no process behind.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Killed {
    /// Waits for the exit, at most [`GUARD`].
    pub fn wait(&mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(st) = self.0.try_wait().unwrap() {
                return st;
            }
            assert!(
                started.elapsed() < GUARD,
                "the tool did not exit within {GUARD:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Runs a workspace tool to its end (at most [`GUARD`]) with `stdin` as input; returns
/// its status, stdout and stderr.
pub fn run_tool(args: &[&str], tool: &str, stdin: &[u8]) -> (ExitStatus, String, String) {
    run_command(Command::new(bin(tool)).args(args), stdin)
}

/// Runs any command to its end (at most [`GUARD`], then killed) with `stdin` as input;
/// returns its status, stdout and stderr.
pub fn run_command(cmd: &mut Command, stdin: &[u8]) -> (ExitStatus, String, String) {
    let mut child = Killed(
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    let mut input = child.0.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let in_t = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let mut out = child.0.stdout.take().unwrap();
    let mut err = child.0.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let st = child.wait();
    in_t.join().unwrap();
    (st, out_t.join().unwrap(), err_t.join().unwrap())
}
