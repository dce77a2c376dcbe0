//! orbsim through a real server: `orbsim --fast` puts a few rounds of a small network
//! with a fixed seed and start, `orbtail --start oldest --json` reads them back, and
//! every decoded sample must equal what `orbclient::sim::Simulator` recomputes for that
//! seed, in both the MGENC and the SEED format. And an unbounded real-time run with
//! stderr on a pipe prints plain progress lines and, on SIGTERM, stops cleanly with a
//! summary that counts exactly the packets the server holds.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use formats::Time;
use orb_tests::harness::{bin, connect, guard, OrbServer};
use orbclient::sim::{Format, SimConfig, Simulator};

/// Deadlock guard for children; never a performance limit.
const GUARD: Duration = Duration::from_secs(30);
const START: &str = "2026-11-22T10:00:00Z";
const SEED: u64 = 7;

/// Kills the child when dropped, so a failing assertion leaves no process behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a command to completion (at most [`GUARD`]) and returns its output.
fn run(cmd: &mut Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut k = Killed(child);
    let mut stdout = k.0.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        if let Some(st) = k.0.try_wait().expect("wait") {
            break st;
        }
        assert!(
            started.elapsed() < GUARD,
            "child did not exit within {GUARD:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = Vec::new();
    if let Some(mut e) = k.0.stderr.take() {
        let _ = e.read_to_end(&mut stderr);
    }
    Output {
        status,
        stdout: reader.join().expect("reader"),
        stderr,
    }
}

fn check(format: Format, flag: &str, rounds: u64, per_round: usize) {
    let dir = tempfile::tempdir().unwrap();
    let srv = OrbServer::start(dir.path(), &["--ring-size", "4MiB", "--flush", "none"]);
    let orb = srv.orb();
    let rounds_text = rounds.to_string();
    let seed_text = SEED.to_string();
    let sim_out = run(Command::new(bin("orbsim")).args([
        orb.as_str(),
        "--fast",
        "--seismic",
        "2",
        "--pressure",
        "1",
        "--count",
        &rounds_text,
        "--seed",
        &seed_text,
        "--start",
        START,
        "--format",
        flag,
    ]));
    assert!(
        sim_out.status.success(),
        "orbsim failed: {}",
        String::from_utf8_lossy(&sim_out.stderr)
    );
    let summary = String::from_utf8_lossy(&sim_out.stdout);
    let total = rounds as usize * per_round;
    assert!(
        summary.contains(&format!("put {total} packets")),
        "{summary}"
    );

    let n = total.to_string();
    let tail = run(Command::new(bin("orbtail")).args([
        orb.as_str(),
        "--start",
        "oldest",
        "-n",
        &n,
        "--json",
        "--timeout",
        "10",
    ]));
    assert!(
        tail.status.success(),
        "{}",
        String::from_utf8_lossy(&tail.stderr)
    );

    let mut config = SimConfig::network("XX", 2, 1, 1.0);
    config.format = format;
    let start = Time::parse_iso8601(START).unwrap();
    let sim = Simulator::new(config, SEED, start).unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(tail.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), total);
    let mut channels_seen = 0;
    for line in &lines {
        let time = Time::parse_iso8601(line["time"].as_str().unwrap()).unwrap();
        let k = ((time.as_micros() - start.as_micros()) / 1_000_000) as u64;
        assert!(k < rounds);
        for ch in line["channels"].as_array().expect("channels decoded") {
            let sta = ch["sta"].as_str().unwrap();
            let si = sim.stations().iter().position(|s| s.name == sta).unwrap();
            let want = sim
                .channels(si, k)
                .into_iter()
                .find(|c| c.chan == ch["chan"].as_str().unwrap())
                .unwrap();
            let got: Vec<i32> = ch["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap() as i32)
                .collect();
            assert_eq!(got, want.samples, "{sta} {} round {k}", want.chan);
            let start = Time::parse_iso8601(ch["start_time"].as_str().unwrap()).unwrap();
            assert_eq!(start, want.start);
            assert_eq!(ch["samprate"].as_f64().unwrap(), want.samprate);
            assert_eq!(ch["net"].as_str().unwrap(), "XX");
            channels_seen += 1;
        }
    }
    // 2 seismic stations x 3 channels + 1 pressure station x 2 channels per round.
    assert_eq!(channels_seen, 8 * rounds as usize);
}

#[test]
fn mgenc_samples_survive_the_server() {
    check(Format::Mgenc, "mgenc", 4, 3);
}

#[test]
fn seed_samples_survive_the_server() {
    check(Format::Seed, "seed", 2, 8);
}

#[tokio::test]
async fn sigterm_stops_cleanly_with_a_summary_of_what_the_server_holds() {
    let dir = tempfile::tempdir().unwrap();
    let srv = OrbServer::start(dir.path(), &["--ring-size", "4MiB", "--flush", "none"]);
    // Real time, no count: runs until stopped. 0.25 s packets of one seismic station,
    // so packets come quickly; stderr is a pipe, so progress must come as plain lines.
    let mut child = Killed(
        Command::new(bin("orbsim"))
            .args([
                srv.orb().as_str(),
                "--seismic",
                "1",
                "--pressure",
                "0",
                "--packet-seconds",
                "0.25",
                "--progress",
                "0.5",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn orbsim"),
    );
    let mut stdout = child.0.stdout.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut buf = String::new();
        let _ = stdout.read_to_string(&mut buf);
        buf
    });
    let (tx, rx) = mpsc::channel();
    let stderr = BufReader::new(child.0.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.split(b'\n') {
            let Ok(line) = line else { break };
            let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
        }
    });

    // Wait (deadlock guard only) for a progress line and a few packets in the orb.
    let mut c = connect(&srv, "e2e-check").await;
    let mut err_lines = Vec::new();
    let started = Instant::now();
    loop {
        err_lines.extend(rx.try_iter());
        let held: u64 = guard("sources", c.sources())
            .await
            .unwrap()
            .sources
            .iter()
            .map(|s| s.npkts)
            .sum();
        let progress = err_lines.iter().any(|l| l.contains("packets/s"));
        if progress && held >= 3 {
            break;
        }
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "orbsim ended by itself: {err_lines:?}"
        );
        assert!(
            started.elapsed() < GUARD,
            "no progress line and 3 packets within {GUARD:?}: held {held}, stderr {err_lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let progress = err_lines.iter().find(|l| l.contains("packets/s")).unwrap();
    assert!(
        progress.starts_with("orbsim: ") && !progress.contains('\r'),
        "a plain line: {progress:?}"
    );

    let pid = child.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            started.elapsed() < GUARD,
            "orbsim did not exit within {GUARD:?} of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    err_lines.extend(rx.iter());
    assert_eq!(status.code(), Some(0), "{status}: {err_lines:?}");
    let out = stdout.join().unwrap();
    let summary = out.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("orbsim: put ") && summary.ends_with("; stopped by SIGTERM"),
        "{out}"
    );
    let put: u64 = summary["orbsim: put ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let sources = guard("sources", c.sources()).await.unwrap().sources;
    assert_eq!(sources.len(), 1, "{sources:?}");
    let s = &sources[0];
    assert_eq!(s.srcname, "XX_STA01/MGENC/M40");
    assert_eq!(s.npkts, put, "summary {summary:?} vs the server");
    assert!(
        summary.contains(&format!("pktids {}..={};", s.oldest.pktid, s.newest.pktid)),
        "{summary} vs {s:?}"
    );
}
