//! orbsim through a real server: `orbsim --fast` puts a few rounds of a small network
//! with a fixed seed and start, `orbtail --start oldest --json` reads them back, and
//! every decoded sample must equal what `orbclient::sim::Simulator` recomputes for that
//! seed, in both the MGENC and the SEED format.

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use formats::Time;
use orb_tests::harness::{bin, OrbServer};
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
            assert_eq!(ch["start_time"].as_str().unwrap(), want.start.to_string());
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
