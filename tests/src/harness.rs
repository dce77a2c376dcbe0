//! Real processes for end-to-end tests: an `orbserver` on 127.0.0.1 port 0 in a temporary
//! ring directory, killed when dropped, and paths to the workspace's binaries.

use std::io::{BufRead, BufReader};
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
        "{} is missing: run `cargo build --workspace --bins` (or `cargo test --workspace`) first",
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
        let started = Instant::now();
        let addr = loop {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "orbserver did not start within 30 s"
            );
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(a) = line.strip_prefix("orbserver: listening on ") {
                        break a.trim().parse().expect("listen address");
                    }
                }
                _ => {
                    let status = child.wait().expect("wait");
                    panic!("orbserver exited before listening: {status}");
                }
            }
        };
        let stdout = std::thread::spawn(move || lines.map_while(Result::ok).collect());
        OrbServer {
            child: Some(child),
            addr,
            ring: ring.to_owned(),
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

/// Starts `orbserver --config DIR/orbserver.toml --listen 127.0.0.1:0 --ring DIR/ring`
/// with `config` as the file's text and its log (stderr, at level info) going to
/// DIR/orbserver.log, for tests of access rules, reloads and log lines.
pub fn start_with_config(dir: &Path, config: &str) -> OrbServer {
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
    let addr = match lines.next() {
        Some(Ok(line)) => match line.strip_prefix("orbserver: listening on ") {
            Some(a) => a.trim().parse().expect("listen address"),
            None => panic!("orbserver printed {line:?} instead of its address"),
        },
        _ => {
            let status = child.wait().expect("wait");
            let log = std::fs::read_to_string(dir.join("orbserver.log")).unwrap_or_default();
            panic!("orbserver exited before listening: {status}; log:\n{log}");
        }
    };
    let stdout = std::thread::spawn(move || lines.map_while(Result::ok).collect());
    OrbServer {
        child: Some(child),
        addr,
        ring,
        stdout: Some(stdout),
    }
}

/// The log of a server from [`start_with_config`] in `dir`.
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
