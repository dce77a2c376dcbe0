//! Detect rules end to end: real orbserver and orbreaper processes, synthetic
//! waveform packets with known bursts.
//!
//! - a detect rule puts one `NET_STA_CHAN/DET` on and off packet per burst and
//!   channel, with the onset to the sample, and a `NET/EVENT` for bursts seen by at
//!   least two stations; `orbtail --json` prints their payload as `payload_json`;
//! - a detector killed (`kill -9`, and aborted right after its puts were
//!   acknowledged but before its state was saved) and restarted many times while
//!   packets arrive puts exactly the detections of an uninterrupted reference run:
//!   none missing, none twice;
//! - a station that stops sending does not hold network events back beyond the
//!   coincidence timeout;
//! - `orbreaper --check` and `orbdetect --check` refuse a bad detect rule with file,
//!   line and field; `orbdetect` runs the same detect code as `orbreaper`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use formats::payload::{genc, Channel};
use formats::{Packet, SrcName, Time};
use orb_tests::harness::{bin, dump_ring, guard, OrbServer};
use orbclient::{ClientOptions, OrbClient};

/// Deadlock guard for children and polls; never a performance limit.
const GUARD: Duration = Duration::from_secs(60);
const RATE: f64 = 40.0;
const STATIONS: [&str; 4] = ["S1", "S2", "S3", "S4"];
/// Seconds of data per station.
const SECONDS: usize = 600;
/// Bursts: start second and the stations (indices) that see them, each a second
/// later than the previous one.
const BURSTS: [(usize, &[usize]); 6] = [
    (60, &[0, 1, 2, 3]),
    (150, &[1]),
    (240, &[0, 2]),
    (330, &[0, 1, 2, 3]),
    (420, &[3, 2]),
    (510, &[0, 1, 2]),
];

/// An orbreaper process, killed when dropped.
struct Reaper(Child);

impl Reaper {
    fn start(rules: &Path, abort_after_puts: Option<u32>) -> Reaper {
        Reaper::start_program("orbreaper", rules, abort_after_puts)
    }

    /// `program` is `orbreaper` or `orbdetect` (the same detect code).
    fn start_program(program: &str, rules: &Path, abort_after_puts: Option<u32>) -> Reaper {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(rules.with_file_name("reaper.log"))
            .expect("log file");
        let mut cmd = Command::new(bin(program));
        cmd.arg(rules)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(n) = abort_after_puts {
            cmd.env("ORBREAPER_DETECT_ABORT_AFTER_PUTS", n.to_string());
        }
        Reaper(cmd.spawn().expect("spawn orbreaper"))
    }

    fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Waits (at most [`GUARD`]) for the process to end by itself.
    fn wait(&mut self) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(st) = self.0.try_wait().expect("try_wait") {
                return st;
            }
            assert!(started.elapsed() < GUARD, "orbreaper did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        self.wait();
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn start_time() -> Time {
    Time::parse_iso8601("2026-11-22T10:00:00Z").unwrap()
}

/// The samples of station `s`: noise, and a 3 Hz burst of decaying amplitude where
/// [`BURSTS`] says; returns them and the bursts' onset times.
fn samples(s: usize) -> (Vec<i32>, Vec<Time>) {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (s as u64 + 1).wrapping_mul(0x1234_5678_9abc);
    let mut out = Vec::with_capacity(SECONDS * RATE as usize);
    let mut onsets = Vec::new();
    let starts: Vec<f64> = BURSTS
        .iter()
        .filter_map(|(t, st)| {
            let k = st.iter().position(|&i| i == s)?;
            Some(*t as f64 + k as f64)
        })
        .collect();
    for t in &starts {
        onsets.push(start_time().checked_add_micros((t * 1e6) as i64).unwrap());
    }
    for i in 0..SECONDS * RATE as usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let noise = ((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 200.0;
        let t = i as f64 / RATE;
        let burst: f64 = starts
            .iter()
            .filter(|b| t >= **b)
            .map(|b| {
                let dt = t - b;
                8000.0 * (-dt / 2.0).exp() * (std::f64::consts::TAU * 3.0 * dt).sin()
            })
            .sum();
        out.push((noise + burst).round() as i32);
    }
    (out, onsets)
}

/// One-second GENC packets of every station, in time order.
fn packets() -> (Vec<Packet>, BTreeMap<String, Vec<Time>>) {
    let per = RATE as usize;
    let mut onsets = BTreeMap::new();
    let all: Vec<Vec<i32>> = (0..STATIONS.len())
        .map(|s| {
            let (x, on) = samples(s);
            onsets.insert(format!("XX_{}_BHZ", STATIONS[s]), on);
            x
        })
        .collect();
    let mut out = Vec::new();
    for sec in 0..SECONDS {
        for (s, x) in all.iter().enumerate() {
            let start = start_time()
                .checked_add_micros(sec as i64 * 1_000_000)
                .unwrap();
            let ch = Channel {
                net: "XX".into(),
                sta: STATIONS[s].into(),
                chan: "BHZ".into(),
                loc: String::new(),
                start,
                samprate: RATE,
                calib: 1.0,
                calper: 1.0,
                segtype: 'V',
                samples: x[sec * per..(sec + 1) * per].to_vec(),
            };
            let name = SrcName::new(&format!("XX_{}_BHZ/GENC", STATIONS[s])).unwrap();
            out.push(Packet::new(name, start, genc::encode(&ch).unwrap()));
        }
    }
    (out, onsets)
}

fn rules(dir: &Path, name: &str, orb: &str) -> std::path::PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("rules.toml");
    std::fs::write(
        &p,
        format!(
            r#"
[[detect]]
name = "{name}"
orb = "{orb}"
select = "XX_.*"
channels = "BHZ"
method = "recursive"
sta = 0.5
lta = 10.0
on = 4.0
off = 1.5
bandpass = [1.0, 8.0]
holdoff = 1.0

[detect.coincidence]
threshold = 2.0
window = 1.0
"#
        ),
    )
    .unwrap();
    p
}

/// The last pktid the state file of `rules` records (0 without one).
fn state_pktid(rules: &Path, name: &str) -> u64 {
    let p = rules.with_file_name("state").join(format!("{name}.json"));
    std::fs::read_to_string(p)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["pktid"].as_u64())
        .unwrap_or(0)
}

fn wait_state(rules: &Path, name: &str, pktid: u64) {
    let started = Instant::now();
    while state_pktid(rules, name) < pktid {
        assert!(
            started.elapsed() < GUARD,
            "{name} did not reach pktid {pktid}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Detection payloads in the orb by rule, in orb order, without the rule name.
fn detections(
    rt: &tokio::runtime::Runtime,
    srv: &OrbServer,
) -> BTreeMap<String, Vec<(String, serde_json::Value)>> {
    let ring = rt.block_on(async {
        let c = OrbClient::connect(&srv.orb_addr(), &ClientOptions::for_program("test"))
            .await
            .unwrap();
        dump_ring(c).await
    });
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for p in ring {
        if matches!(p.srcname.suffix(), Some("DET" | "EVENT")) {
            let mut v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
            let rule = v["rule"].as_str().unwrap().to_owned();
            v["rule"] = serde_json::Value::Null;
            out.entry(rule)
                .or_default()
                .push((p.srcname.as_str().to_owned(), v));
        }
    }
    out
}

#[test]
fn kill_9_under_load_neither_loses_nor_repeats_a_detection() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    std::fs::create_dir_all(&ring).unwrap();
    let srv = OrbServer::start(&ring, &["--ring-size", "16MiB", "--flush", "none"]);
    let orb = srv.orb();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reference = rules(dir.path(), "reference", &orb);
    let killed = rules(dir.path(), "killed", &orb);
    // The reference runs in orbdetect, the killed rule in orbreaper: the same code.
    let mut reference_run = Reaper::start_program("orbdetect", &reference, None);
    let (all, onsets) = packets();
    let mut put = rt.block_on(async {
        OrbClient::connect(&srv.orb_addr(), &ClientOptions::for_program("test"))
            .await
            .unwrap()
    });
    let chunks: Vec<&[Packet]> = all.chunks(all.len() / 12).collect();
    let mut last = 0;
    let mut aborts = 0;
    let mut kills = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        let ack = rt
            .block_on(guard("put", put.put_acked(chunk.iter(), 8)))
            .unwrap();
        last = ack.pktids.unwrap().1;
        if i % 3 == 1 {
            // Aborted right after a put was acknowledged, before the state saving it
            // (or, when there is nothing more to detect, killed once caught up).
            let mut r = Reaper::start(&killed, Some(1 + (i as u32 % 2)));
            let started = Instant::now();
            loop {
                if let Some(st) = r.0.try_wait().unwrap() {
                    assert!(!st.success(), "orbreaper stopped: {st:?}");
                    aborts += 1;
                    break;
                }
                if state_pktid(&killed, "killed") >= last {
                    r.kill9();
                    kills += 1;
                    break;
                }
                assert!(started.elapsed() < GUARD, "no progress");
                std::thread::sleep(Duration::from_millis(5));
            }
        } else {
            // kill -9 at a point that varies, while the packets are being read.
            let before = state_pktid(&killed, "killed");
            let mut r = Reaper::start(&killed, None);
            let started = Instant::now();
            while state_pktid(&killed, "killed") == before {
                assert!(started.elapsed() < GUARD, "no progress");
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(i as u64 * 7));
            r.kill9();
            kills += 1;
        }
    }
    let mut final_run = Reaper::start(&killed, None);
    wait_state(&killed, "killed", last);
    wait_state(&reference, "reference", last);
    final_run.terminate();
    reference_run.terminate();
    let log = std::fs::read_to_string(killed.with_file_name("reaper.log")).unwrap();
    let refound: usize = log
        .lines()
        .filter_map(|l| l.split(" detections put before a stop found again").next())
        .filter_map(|l| l.rsplit(' ').next()?.parse::<usize>().ok())
        .sum();
    eprintln!("{aborts} aborts after a put, {kills} kills -9; {refound} detections found again at restarts instead of being put twice");
    assert!(
        refound >= aborts,
        "each abort left a put the restart had to find"
    );

    let det = detections(&rt, &srv);
    let want = &det["reference"];
    let got = &det["killed"];
    // The reference saw each burst on each channel once: an on and an off packet,
    // onset within half a second after the burst's start.
    for (channel, times) in &onsets {
        let ons: Vec<&serde_json::Value> = want
            .iter()
            .filter(|(n, v)| n == &format!("{channel}/DET") && v["kind"] == "on")
            .map(|(_, v)| v)
            .collect();
        assert_eq!(ons.len(), times.len(), "{channel}: {ons:?}");
        for (v, t) in ons.iter().zip(times) {
            let d = v["onset_us"].as_i64().unwrap() - t.as_micros();
            assert!(
                (0..500_000).contains(&d),
                "{channel}: onset {d} us after the burst"
            );
        }
    }
    let events: Vec<_> = want.iter().filter(|(n, _)| n == "XX/EVENT").collect();
    let multi = BURSTS.iter().filter(|(_, s)| s.len() >= 2).count();
    assert_eq!(events.len(), multi, "{events:?}");
    assert_eq!(
        want.len(),
        2 * onsets.values().map(Vec::len).sum::<usize>() + multi
    );
    // The killed rule put the same detections, each once.
    let sorted = |v: &Vec<(String, serde_json::Value)>| {
        let mut s: Vec<String> = v.iter().map(|(n, p)| format!("{n} {p}")).collect();
        s.sort();
        s
    };
    let (g, w) = (sorted(got), sorted(want));
    let mut dedup = g.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), g.len(), "a detection was put twice");
    assert_eq!(
        g, w,
        "the killed rule's detections differ from the reference"
    );
}

/// A station that stops sending does not hold network events back: after the
/// coincidence `timeout` (wall clock) the event is decided without it. S4 sends
/// nothing from second 300 on, the others up to second 400; the burst at 330 (seen by
/// all four, S4 included, in the data it never sent) becomes an event of S1, S2 and
/// S3 while S4 is still silent.
#[test]
fn a_silent_station_does_not_hold_network_events_back() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    std::fs::create_dir_all(&ring).unwrap();
    let srv = OrbServer::start(&ring, &["--ring-size", "16MiB", "--flush", "none"]);
    let rules = rules(dir.path(), "silent", &srv.orb());
    let text = std::fs::read_to_string(&rules).unwrap();
    std::fs::write(
        &rules,
        text.replace("window = 1.0\n", "window = 1.0\ntimeout = 1.0\n"),
    )
    .unwrap();
    let _run = Reaper::start_program("orbdetect", &rules, None);
    let (all, _) = packets();
    let stop_s4 = start_time().checked_add_micros(300_000_000).unwrap();
    let end = start_time().checked_add_micros(400_000_000).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = srv.orb_addr();
    let event = rt.block_on(async {
        let mut put = OrbClient::connect(&addr, &ClientOptions::for_program("test"))
            .await
            .unwrap();
        for p in &all {
            let s4 = p.srcname.as_str().starts_with("XX_S4_");
            if p.time >= end || (s4 && p.time >= stop_s4) {
                continue;
            }
            put.put(&p.srcname, p.time, &p.payload).await.unwrap();
        }
        let mut reader = OrbClient::connect(&addr, &ClientOptions::for_program("test"))
            .await
            .unwrap();
        reader.select("XX/EVENT").await.unwrap();
        let mut stream = reader
            .reap(orbclient::ReapOptions::default())
            .await
            .unwrap();
        // Bounded by the guard: without the timeout the event never comes.
        loop {
            let Some(orbclient::ReapEvent::Packet(p)) =
                guard("EVENT", stream.next()).await.unwrap()
            else {
                continue;
            };
            let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
            let t = v["time_us"].as_i64().unwrap() - start_time().as_micros();
            if (329_000_000..335_000_000).contains(&t) {
                break v;
            }
        }
    });
    assert_eq!(
        event["stations"],
        serde_json::json!(["XX_S1", "XX_S2", "XX_S3"]),
        "{event}"
    );
    let log = std::fs::read_to_string(rules.with_file_name("reaper.log")).unwrap();
    assert!(log.contains("XX_S4_BHZ has sent nothing"), "{log}");
}

#[test]
fn check_refuses_bad_detect_rules_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let good = rules(dir.path(), "r", "localhost:6510");
    let text = std::fs::read_to_string(&good).unwrap();
    let out = Command::new(bin("orbreaper"))
        .arg(&good)
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 detect rules are valid"));
    let out = Command::new(bin("orbdetect"))
        .arg(&good)
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (from, to, line, field) in [
        ("lta = 10.0", "lta = 0.5", 9, "lta"),
        ("off = 1.5", "off = 6.0", 11, "off"),
        ("channels = \"BHZ\"", "channels = \"B H Z\"", 6, "channels"),
        ("[1.0, 8.0]", "[8.0, 1.0]", 12, "bandpass"),
        ("threshold = 2.0", "threshold = -1.0", 16, "threshold"),
    ] {
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, text.replace(from, to)).unwrap();
        let program = if line % 2 == 0 {
            "orbdetect"
        } else {
            "orbreaper"
        };
        let out = Command::new(bin(program))
            .arg(&bad)
            .arg("--check")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{to}");
        let err = String::from_utf8_lossy(&out.stderr);
        let want = format!("{}:{line}:", bad.display());
        assert!(err.contains(&want), "{to}: {err}");
        assert!(err.contains(&format!("field `{field}`")), "{to}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

/// Latency figure (printed, never asserted): packets put live, a round of one-second
/// packets every 20 ms; for each trigger-on packet, the time from the acknowledgement
/// of the packet holding its onset to the trigger packet's arrival at a reading client.
#[test]
fn detection_latency_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    std::fs::create_dir_all(&ring).unwrap();
    let srv = OrbServer::start(&ring, &["--ring-size", "16MiB", "--flush", "none"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rules = rules(dir.path(), "live", &srv.orb());
    let _run = Reaper::start(&rules, None);
    let (all, onsets) = packets();
    // The first 340 s: four bursts, 11 arrivals.
    let rounds = 340;
    let want: usize = onsets
        .values()
        .map(|t| {
            t.iter()
                .filter(|t| t.as_micros() < start_time().as_micros() + rounds * 1_000_000)
                .count()
        })
        .sum();
    let addr = srv.orb_addr();
    let (acks, arrivals) = rt.block_on(async {
        let mut reader = OrbClient::connect(&addr, &ClientOptions::for_program("test"))
            .await
            .unwrap();
        reader.select(".*/DET").await.unwrap();
        let mut stream = reader
            .reap(orbclient::ReapOptions::default())
            .await
            .unwrap();
        let mut put = OrbClient::connect(&addr, &ClientOptions::for_program("test"))
            .await
            .unwrap();
        let putter = async {
            let mut acks = BTreeMap::new();
            for p in &all[..rounds as usize * STATIONS.len()] {
                put.put(&p.srcname, p.time, &p.payload).await.unwrap();
                let chan = p.srcname.as_str().trim_end_matches("/GENC").to_owned();
                acks.insert((chan, p.time.as_micros() / 1_000_000), Instant::now());
                if p.srcname.as_str().starts_with("XX_S4") {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            acks
        };
        let reading = async {
            let mut arrivals = Vec::new();
            while arrivals.len() < want {
                let Some(orbclient::ReapEvent::Packet(p)) =
                    guard("DET", stream.next()).await.unwrap()
                else {
                    continue;
                };
                let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
                if v["kind"] == "on" {
                    let chan = v["channel"].as_str().unwrap().to_owned();
                    let sec = v["onset_us"].as_i64().unwrap() / 1_000_000;
                    arrivals.push(((chan, sec), Instant::now()));
                }
            }
            arrivals
        };
        tokio::join!(putter, reading)
    });
    assert_eq!(arrivals.len(), want);
    let mut ms: Vec<f64> = arrivals
        .iter()
        .map(|(k, at)| at.duration_since(acks[k]).as_secs_f64() * 1e3)
        .collect();
    ms.sort_by(f64::total_cmp);
    eprintln!(
        "detection latency (onset packet acknowledged -> trigger packet read), {} triggers: p50 {:.2} ms, max {:.2} ms",
        ms.len(),
        ms[ms.len() / 2],
        ms[ms.len() - 1]
    );
}
