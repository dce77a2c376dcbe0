//! orbreaper end to end: real orbserver, orbsim and orbreaper processes.
//!
//! - a scheduled rule and a continuous rule write the expected files and sidecars,
//!   and `orbreaper find` lists the right ones;
//! - `kill -9` of orbreaper at several points, then a restart, leaves every packet in
//!   the archive exactly once, checked sample by sample against the orb's packets,
//!   for JSON Lines batches, raw append files and netCDF append files, and for
//!   multi-rate packets split into one file per rate (netCDF append and batch, CDL
//!   batch);
//! - a forwarding rule delivers every matching packet to the other orb;
//! - a bad rule file gives exit 1 and one line; `--check` warns about batches far
//!   smaller than `packets_per_read`;
//! - a CDL file's dataset name is its final file stem (`ncgen -b` recreates the name);
//! - a continuous batch rule's batches are cut by `packets_per_read`, not by a few
//!   seconds, and the log has where each rule resumes and summaries, not a line per file;
//! - `orbreaper find RULES.toml` reads the rule file's catalog, warns about a pattern
//!   matching no whole srcname, and refuses `--from` after `--to`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use formats::payload::{decode, Channel};
use formats::write::raw::RawReader;
use formats::{Packet, Time};
use orb_tests::harness::{bin, guard, OrbServer};
use orbclient::{ClientOptions, OrbClient, ReapEvent, ReapOptions};

/// Deadlock guard for children and polls; never a performance limit.
const GUARD: Duration = Duration::from_secs(60);
const START: &str = "2026-11-22T10:00:00Z";

/// An orbreaper process, killed when dropped.
struct Reaper(Child);

impl Reaper {
    /// Starts `orbreaper RULES ARGS`, its log appended to `rules`'s directory's `reaper.log`.
    fn start(rules: &Path, args: &[&str]) -> Reaper {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(rules.with_file_name("reaper.log"))
            .expect("log file");
        let child = Command::new(bin("orbreaper"))
            .arg(rules)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn orbreaper");
        Reaper(child)
    }

    fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// SIGTERM, and wait for the exit (at most [`GUARD`]).
    fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        wait(&mut self.0)
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn wait(c: &mut Child) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(st) = c.try_wait().expect("try_wait") {
            return st;
        }
        if started.elapsed() > GUARD {
            let _ = c.kill();
            panic!("child did not exit within {GUARD:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs a command to completion (at most [`GUARD`]); threads drain its pipes, so
/// a long log cannot block it.
fn run(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let out = drain(child.stdout.take().map(|s| Box::new(s) as _));
    let err = drain(child.stderr.take().map(|s| Box::new(s) as _));
    let status = wait(&mut child);
    Output {
        status,
        stdout: out.join().expect("stdout"),
        stderr: err.join().expect("stderr"),
    }
}

/// Puts `rounds` rounds of `stations` seismic stations starting `offset_s` after
/// [`START`]; orbsim's output is small, so pipes cannot fill.
/// Runs `orbreaper RULES --once` and insists that it succeeds.
fn reap_once(rules: &Path) {
    let out = run(Command::new(bin("orbreaper")).arg(rules).arg("--once"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sim(orb: &str, stations: u32, pressure: u32, rounds: u64, offset_s: i64) {
    let start = Time::parse_iso8601(START).unwrap().as_micros() + offset_s * 1_000_000;
    let out = run(Command::new(bin("orbsim")).args([
        orb,
        "--fast",
        "--seismic",
        &stations.to_string(),
        "--pressure",
        &pressure.to_string(),
        "--count",
        &rounds.to_string(),
        "--seed",
        "7",
        "--start",
        &Time::from_micros(start).to_epoch_string(),
    ]));
    assert!(
        out.status.success(),
        "orbsim: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every packet the orb holds now.
async fn orb_packets(srv: &OrbServer) -> Vec<Packet> {
    let mut c = OrbClient::connect(&srv.orb_addr(), &ClientOptions::for_program("test"))
        .await
        .expect("connect");
    c.position("oldest").await.expect("oldest");
    let mut s = c
        .reap(ReapOptions {
            timeout: Some(Duration::ZERO),
            ..ReapOptions::default()
        })
        .await
        .expect("reap");
    let mut out = Vec::new();
    while let Some(ev) = guard("reap", s.next()).await.expect("next") {
        if let ReapEvent::Packet(p) = ev {
            out.push(p);
        }
    }
    out
}

fn all_packets(srv: &OrbServer) -> Vec<Packet> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(orb_packets(srv))
}

/// Files under `dir` with this extension, not hidden (temporary files are).
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p, ext));
        } else if p.extension().is_some_and(|e| e == ext)
            && !p.file_name().unwrap().to_string_lossy().starts_with('.')
        {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Per pktid, each channel's code and samples.
type Samples = BTreeMap<u64, Vec<(String, Vec<i32>)>>;

fn decoded(p: &Packet) -> Vec<(String, Vec<i32>)> {
    decode(&p.srcname, p.time, &p.payload)
        .expect("decode")
        .into_iter()
        .map(|c: Channel| (c.chan, c.samples))
        .collect()
}

/// Samples of every JSON Lines file under `dir`; fails on a pktid seen twice.
fn json_samples(dir: &Path) -> Samples {
    let mut out = Samples::new();
    for f in files(dir, "jsonl") {
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("json line");
            let pktid = v["pktid"].as_u64().expect("pktid");
            let chans = v["channels"]
                .as_array()
                .expect("channels")
                .iter()
                .map(|c| {
                    let s = c["samples"].as_array().unwrap();
                    (
                        c["chan"].as_str().unwrap().to_owned(),
                        s.iter().map(|x| x.as_i64().unwrap() as i32).collect(),
                    )
                })
                .collect();
            assert!(
                out.insert(pktid, chans).is_none(),
                "pktid {pktid} twice (again in {})",
                f.display()
            );
        }
    }
    out
}

/// Samples of every raw file under `dir`; fails on a pktid seen twice.
fn raw_samples(dir: &Path) -> Samples {
    let mut out = Samples::new();
    for f in files(dir, "orb") {
        let bytes = std::fs::read(&f).unwrap();
        for p in RawReader::new(&bytes) {
            let p = p.expect("raw record");
            assert!(
                out.insert(p.pktid, decoded(&p)).is_none(),
                "pktid {} twice (again in {})",
                p.pktid,
                f.display()
            );
        }
    }
    out
}

fn expected(packets: &[Packet]) -> Samples {
    packets.iter().map(|p| (p.pktid, decoded(p))).collect()
}

/// For each netCDF file: each channel's samples in file order, which must equal
/// the concatenation, in pktid order, of that station's packets' samples.
fn check_netcdf(dir: &Path, packets: &[Packet]) {
    let ncs = files(dir, "nc");
    assert!(!ncs.is_empty(), "no netCDF files in {}", dir.display());
    let mut stations_seen = BTreeSet::new();
    for f in ncs {
        let sta = f
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let contents =
            formats::write::netcdf::read(&mut File::open(&f).unwrap()).expect("read netCDF");
        let mine: Vec<&Packet> = packets
            .iter()
            .filter(|p| p.srcname.as_str().starts_with(&format!("{sta}/")))
            .collect();
        assert!(!mine.is_empty(), "{sta}: no packets");
        for (name, values) in &contents.channels {
            let want: Vec<i32> = mine
                .iter()
                .flat_map(|p| decoded(p))
                .filter(|(c, _)| c == name)
                .flat_map(|(_, s)| s)
                .collect();
            assert_eq!(
                values.len(),
                want.len(),
                "{}: {name}: sample count",
                f.display()
            );
            assert!(values == &want, "{}: {name}: samples differ", f.display());
        }
        let first = decode(&mine[0].srcname, mine[0].time, &mine[0].payload).unwrap();
        assert_eq!(
            contents.time.len(),
            mine.len() * first[0].samples.len(),
            "{}: one time per sample",
            f.display()
        );
        stations_seen.insert(sta);
    }
    let all: BTreeSet<String> = packets
        .iter()
        .map(|p| p.srcname.as_str().split('/').next().unwrap().to_owned())
        .collect();
    assert_eq!(stations_seen, all, "a station has no netCDF file");
}

/// netCDF batch files: per station, the files in pktid order hold each channel's
/// samples exactly once and in order.
fn check_netcdf_batches(dir: &Path, packets: &[Packet]) {
    let mut by_station: BTreeMap<String, Vec<(u64, PathBuf)>> = BTreeMap::new();
    for f in files(dir, "nc") {
        let sta = f
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let first: u64 = f
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .split('_')
            .next()
            .unwrap()
            .parse()
            .expect("named by first pktid");
        by_station.entry(sta).or_default().push((first, f));
    }
    assert_eq!(by_station.len(), 2, "{by_station:?}");
    for (sta, mut fs) in by_station {
        fs.sort();
        let mut got: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (_, f) in &fs {
            let c = formats::write::netcdf::read(&mut File::open(f).unwrap()).expect("read netCDF");
            for (name, values) in c.channels {
                got.entry(name).or_default().extend(values);
            }
        }
        let mut want: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for p in packets
            .iter()
            .filter(|p| p.srcname.as_str().starts_with(&format!("{sta}/")))
        {
            for (chan, samples) in decoded(p) {
                want.entry(chan).or_default().extend(samples);
            }
        }
        assert_eq!(got, want, "{sta}");
    }
}

/// Polls until the state file of `rule` reports `pktid` (bounded by [`GUARD`]).
fn wait_state(dir: &Path, rule: &str, pktid: u64) {
    let path = dir.join("state").join(format!("{rule}.json"));
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            if v["pktid"].as_u64().is_some_and(|p| p >= pktid) {
                return;
            }
        }
        assert!(
            started.elapsed() < GUARD,
            "{rule} did not reach pktid {pktid} within {GUARD:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn catalog_lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("catalog/rules.jsonl")).map_or(0, |t| t.lines().count())
}

fn server(dir: &Path) -> OrbServer {
    let ring = dir.join("ring");
    std::fs::create_dir_all(&ring).unwrap();
    OrbServer::start(&ring, &["--ring-size", "16MiB", "--flush", "none"])
}

#[test]
fn scheduled_and_continuous_rules_write_files_sidecars_and_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path());
    let orb = srv.orb();
    sim(&orb, 2, 0, 10, 0);
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            r#"
[[reap]]
name = "sched"
orb = "{orb}"
delay = "100ms"
every = "300ms"
packets_per_read = 4
reads_per_run = 2
format = "json"
path = "S/{{srcname}}/{{first_pktid}}_{{last_pktid}}.jsonl"

[[reap]]
name = "ncsched"
orb = "{orb}"
delay = "0s"
every = "200ms"
packets_per_read = 4
format = "netcdf"
path = "NB/{{net}}_{{sta}}/{{first_pktid}}_{{last_pktid}}.nc"

[[reap]]
name = "cont"
orb = "{orb}"
flush = "100ms"
format = "raw"
mode = "append"
path = "C/{{net}}_{{sta}}/{{date}}.orb"
"#
        ),
    )
    .unwrap();
    let packets = all_packets(&srv);
    assert_eq!(packets.len(), 20);
    let mut reaper = Reaper::start(&rules, &[]);
    wait_state(dir.path(), "sched", 20);
    wait_state(dir.path(), "cont", 20);
    wait_state(dir.path(), "ncsched", 20);
    assert!(reaper.terminate().success());
    check_netcdf_batches(&dir.path().join("NB"), &packets);

    // Scheduled batches: at most 4 packets each, named by their pktids.
    let sched = dir.path().join("S");
    for f in files(&sched, "jsonl") {
        let side: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{}.json", f.display())).unwrap(),
        )
        .unwrap();
        let (first, last) = (
            side["first_pktid"].as_u64().unwrap(),
            side["last_pktid"].as_u64().unwrap(),
        );
        assert_eq!(
            f.file_name().unwrap().to_string_lossy(),
            format!("{first}_{last}.jsonl")
        );
        assert!(side["packets"].as_u64().unwrap() <= 4);
        assert_eq!(side["rule"], "sched");
        assert_eq!(side["format"], "json");
        let scan = formats::write::jsonl::scan(&std::fs::read(&f).unwrap()).unwrap();
        assert_eq!(side["packets"].as_u64(), Some(scan.summary.packets));
        assert_eq!(side["samples"].as_u64(), Some(scan.summary.samples));
    }
    assert_eq!(json_samples(&sched), expected(&packets));

    // Continuous: one raw file per station and day, with its sidecar.
    let cont = dir.path().join("C");
    let raws = files(&cont, "orb");
    let names: Vec<String> = raws
        .iter()
        .map(|p| p.strip_prefix(&cont).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        ["XX_STA01/2026-11-22.orb", "XX_STA02/2026-11-22.orb"]
    );
    for f in &raws {
        let side: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{}.json", f.display())).unwrap(),
        )
        .unwrap();
        assert_eq!(side["packets"], 10);
        assert_eq!(side["path"], f.display().to_string());
    }
    assert_eq!(raw_samples(&cont), expected(&packets));

    // find: by source, and by time window.
    let find = |args: &[&str]| -> Vec<String> {
        let out = run(Command::new(bin("orbreaper"))
            .args(["find", "--catalog"])
            .arg(dir.path().join("catalog"))
            .args(args));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let sta1 = find(&["-m", "XX_STA01/.*"]);
    let want: Vec<String> = files(&sched.join("XX_STA01_MGENC_M40"), "jsonl")
        .into_iter()
        .chain(files(&dir.path().join("NB/XX_STA01"), "nc"))
        .chain([cont.join("XX_STA01/2026-11-22.orb")])
        .map(|p| p.display().to_string())
        .collect();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(sta1, want_sorted);
    // By time: the files whose sidecars say they hold data after 10:00:08.5 (where a
    // scheduled run ends decides the batches, so the list is read from the disk).
    // JSON and netCDF files end after their last sample, raw files at their last
    // packet's time (10:00:09).
    let late = find(&[
        "--from",
        "2026-11-22T10:00:08.5Z",
        "--to",
        "2026-11-22T10:00:20Z",
    ]);
    let mut want_late: Vec<String> = [("S", "jsonl"), ("NB", "nc"), ("C", "orb")]
        .iter()
        .flat_map(|(sub, ext)| files(&dir.path().join(sub), ext))
        .filter(|p| {
            let side: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(format!("{}.json", p.display())).unwrap(),
            )
            .unwrap();
            let end = Time::parse_iso8601(side["end"].as_str().unwrap()).unwrap();
            end > Time::parse_iso8601("2026-11-22T10:00:08.5Z").unwrap()
        })
        .map(|p| p.display().to_string())
        .collect();
    want_late.sort();
    assert_eq!(late, want_late);
    // Each station has a JSON, a netCDF and a raw file holding the last round.
    assert!(late.len() >= 6, "{late:?}");
    assert!(find(&["--to", "2026-11-22T09:00:00Z"]).is_empty());
}

#[test]
fn kill_9_and_restart_archive_every_packet_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path());
    let orb = srv.orb();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            r#"
[[reap]]
name = "batches"
orb = "{orb}"
packets_per_read = 7
max_batch_age = "50ms"
format = "json"
path = "J/{{sta}}/{{first_pktid}}_{{last_pktid}}.jsonl"

[[reap]]
name = "rawappend"
orb = "{orb}"
packets_per_read = 5
flush = "50ms"
format = "raw"
mode = "append"
path = "R/{{sta}}.orb"

[[reap]]
name = "ncappend"
orb = "{orb}"
packets_per_read = 9
flush = "50ms"
format = "netcdf"
mode = "append"
path = "N/{{net}}_{{sta}}/waveform.nc"
"#
        ),
    )
    .unwrap();
    let mut kills = 0;
    for round in 0..5i64 {
        sim(&orb, 3, 0, 60, round * 60);
        let before = catalog_lines(dir.path());
        let mut reaper = Reaper::start(&rules, &[]);
        // Kill once the reaper has visibly made progress, at a point that varies.
        let started = Instant::now();
        while catalog_lines(dir.path()) < before + 3 + round as usize * 7 {
            assert!(started.elapsed() < GUARD, "no progress within {GUARD:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(round as u64 * 3));
        reaper.kill9();
        kills += 1;
    }
    assert_eq!(kills, 5);
    let out = run(Command::new(bin("orbreaper")).arg(&rules).arg("--once"));
    assert!(
        out.status.success(),
        "orbreaper --once: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Which kill points were hit varies from run to run; say which, for the record.
    let log = std::fs::read_to_string(dir.path().join("reaper.log")).unwrap()
        + &String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "restarts finished pending batches {} times, cut torn tails {} times",
        log.matches("written before a stop").count(),
        log.matches("of an incomplete record").count()
    );
    let packets = all_packets(&srv);
    assert_eq!(packets.len(), 5 * 60 * 3);
    let want = expected(&packets);
    assert_eq!(
        json_samples(&dir.path().join("J")),
        want,
        "JSON Lines batches"
    );
    assert_eq!(raw_samples(&dir.path().join("R")), want, "raw append");
    check_netcdf(&dir.path().join("N"), &packets);
    // No temporary file is left once the run ended cleanly.
    assert!(files(&dir.path().join("J"), "tmp").is_empty());
}

#[test]
fn forwarding_rule_delivers_every_matching_packet() {
    let dir = tempfile::tempdir().unwrap();
    let a = server(&dir.path().join("a"));
    let b = server(&dir.path().join("b"));
    sim(&a.orb(), 3, 1, 8, 0);
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            r#"
[[ingest]]
name = "a-to-b"
from = "{}"
to = "{}"
select = "XX_STA0[12]/.*"
start = "oldest"
format = "json"
path = "F/{{sta}}/{{first_pktid}}_{{last_pktid}}.jsonl"
"#,
            a.orb(),
            b.orb()
        ),
    )
    .unwrap();
    reap_once(&rules);
    let sent: Vec<(String, Time, Vec<u8>)> = all_packets(&a)
        .into_iter()
        .filter(|p| {
            p.srcname.as_str().starts_with("XX_STA01/")
                || p.srcname.as_str().starts_with("XX_STA02/")
        })
        .map(|p| (p.srcname.to_string(), p.time, p.payload.to_vec()))
        .collect();
    let got: Vec<(String, Time, Vec<u8>)> = all_packets(&b)
        .into_iter()
        .map(|p| (p.srcname.to_string(), p.time, p.payload.to_vec()))
        .collect();
    assert_eq!(sent.len(), 16);
    assert_eq!(got, sent);
    // The rule also archived what it forwarded.
    let forwarded: Vec<Packet> = all_packets(&a)
        .into_iter()
        .filter(|p| {
            p.srcname.as_str().starts_with("XX_STA01/")
                || p.srcname.as_str().starts_with("XX_STA02/")
        })
        .collect();
    assert_eq!(json_samples(&dir.path().join("F")), expected(&forwarded));
}

#[test]
fn append_roll_starts_a_file_per_period() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path());
    // One station, 150 one-second packets: 10:00:00 to 10:02:29.
    sim(&srv.orb(), 1, 0, 150, 0);
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            "[[reap]]\nname = \"roll\"\norb = \"{}\"\nformat = \"json\"\nmode = \"append\"\nroll = \"1m\"\npath = \"M/{{sta}}_{{hour}}{{minute}}.jsonl\"\n",
            srv.orb()
        ),
    )
    .unwrap();
    reap_once(&rules);
    let names: Vec<String> = files(&dir.path().join("M"), "jsonl")
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["STA01_1000.jsonl", "STA01_1001.jsonl", "STA01_1002.jsonl"]
    );
    let count = |n: &str| {
        std::fs::read_to_string(dir.path().join("M").join(n))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(
        [count(&names[0]), count(&names[1]), count(&names[2])],
        [60, 60, 30]
    );
    assert_eq!(
        json_samples(&dir.path().join("M")),
        expected(&all_packets(&srv))
    );
}

#[test]
fn bad_rule_file_exits_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("bad.toml");
    std::fs::write(
        &rules,
        "[[reap]]\nname = \"x\"\norb = \":6510\"\nformat = \"cdl\"\nmode = \"append\"\npath = \"a.cdl\"\n",
    )
    .unwrap();
    for args in [&["--check"][..], &[][..], &["--once"][..]] {
        let out = run(Command::new(bin("orbreaper")).arg(&rules).args(args));
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("orbreaper: error: "), "{err}");
        assert!(err.contains("bad.toml:5:8: field `mode`"), "{err}");
    }
    let out = run(Command::new(bin("orbreaper")).arg(dir.path().join("missing.toml")));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    // The system's reason once, not repeated by the error chain.
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
}

#[test]
fn put_and_file_rules_put_once_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let a = server(&dir.path().join("a"));
    let b = server(&dir.path().join("b"));
    sim(&a.orb(), 2, 0, 6, 0);
    // Archive A as raw files, then replay one of them into B with a file rule, next
    // to a literal put; a second run must put nothing again.
    let reap = dir.path().join("reap.toml");
    std::fs::write(
        &reap,
        format!(
            "[[reap]]\nname = \"raw\"\norb = \"{}\"\nformat = \"raw\"\nmode = \"append\"\npath = \"R/{{sta}}.orb\"\n",
            a.orb()
        ),
    )
    .unwrap();
    reap_once(&reap);
    let ingest = dir.path().join("ingest.toml");
    std::fs::write(
        &ingest,
        format!(
            r#"
[[ingest]]
name = "replay"
to = "{b}"
file = "R/STA01.orb"

[[ingest]]
name = "note"
to = "{b}"
srcname = "XX_STA01/EXP/LOG"
time = "2026-11-22T11:00:00Z"
payload = "archive replayed"
"#,
            b = b.orb()
        ),
    )
    .unwrap();
    for _ in 0..2 {
        reap_once(&ingest);
    }
    let want: Vec<(String, Time, Vec<u8>)> = all_packets(&a)
        .into_iter()
        .filter(|p| p.srcname.as_str().starts_with("XX_STA01/"))
        .map(|p| (p.srcname.to_string(), p.time, p.payload.to_vec()))
        .collect();
    assert_eq!(want.len(), 6);
    let mut got: Vec<(String, Time, Vec<u8>)> = all_packets(&b)
        .into_iter()
        .map(|p| (p.srcname.to_string(), p.time, p.payload.to_vec()))
        .collect();
    let note = got
        .iter()
        .position(|(s, _, _)| s == "XX_STA01/EXP/LOG")
        .expect("the literal packet");
    let (_, t, payload) = got.remove(note);
    assert_eq!(payload, b"archive replayed");
    assert_eq!(t, Time::parse_iso8601("2026-11-22T11:00:00Z").unwrap());
    assert_eq!(got, want);
}

#[test]
fn unreachable_orb_is_retried_then_reported() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!("[[reap]]\nname = \"gone\"\norb = \"127.0.0.1:{port}\"\nformat = \"json\"\npath = \"J/{{first_pktid}}.jsonl\"\n"),
    )
    .unwrap();
    let out = run(Command::new(bin("orbreaper")).arg(&rules).arg("--once"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.matches("retrying in").count(), 4, "{err}");
    let last = err.lines().last().unwrap();
    assert!(last.starts_with("orbreaper: error: "), "{err}");
    assert!(last.contains("gave up after 5 attempts"), "{err}");
    assert!(!dir.path().join("J").exists());
}

#[test]
fn write_errors_are_reported_and_retried_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path());
    sim(&srv.orb(), 2, 0, 5, 0);
    // A plain file where the archive directory should be: every write fails until it
    // is removed (as a full disk would, without needing one).
    let blocker = dir.path().join("W");
    std::fs::write(&blocker, b"in the way").unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            "[[reap]]\nname = \"w\"\norb = \"{}\"\nmax_batch_age = \"100ms\"\nformat = \"json\"\npath = \"W/{{sta}}/{{first_pktid}}_{{last_pktid}}.jsonl\"\n",
            srv.orb()
        ),
    )
    .unwrap();
    let mut reaper = Reaper::start(&rules, &[]);
    let log = dir.path().join("reaper.log");
    let started = Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("retrying in")) {
        assert!(
            started.elapsed() < GUARD,
            "no retry reported within {GUARD:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_file(&blocker).unwrap();
    wait_state(dir.path(), "w", 10);
    assert!(reaper.terminate().success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("cannot create directory"), "{text}");
    assert_eq!(json_samples(&blocker), expected(&all_packets(&srv)));
}

/// Per station and rate-group label (`1sps`), each channel's samples of the
/// station's packets in pktid order, and the number of times (one per sample).
type Groups = BTreeMap<(String, String), (BTreeMap<String, Vec<i32>>, usize)>;

/// What a reaper splitting multi-rate packets by rate must write: per station and
/// rate, that rate's channels.
fn expected_groups(packets: &[Packet]) -> Groups {
    let mut out = Groups::new();
    for p in packets {
        let sta = p.srcname.as_str().split('/').next().unwrap().to_owned();
        let mut times_added = BTreeSet::new();
        for c in decode(&p.srcname, p.time, &p.payload).expect("decode") {
            let label = rules::groups::rate_label(c.samprate);
            let e = out.entry((sta.clone(), label.clone())).or_default();
            if times_added.insert(label) {
                e.1 += c.samples.len();
            }
            e.0.entry(c.chan).or_default().extend(c.samples);
        }
    }
    out
}

/// Reads netCDF files into [`Groups`], concatenated in the order given; the label
/// is the file name's `_<rate>sps` part.
fn read_groups(files: &[PathBuf]) -> Groups {
    let mut out = Groups::new();
    for f in files {
        let sta = f
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
        let label = stem.rsplit('_').next().unwrap().to_owned();
        assert!(label.ends_with("sps"), "{}: no rate label", f.display());
        let c = formats::write::netcdf::read(&mut File::open(f).unwrap()).expect("read netCDF");
        let e = out.entry((sta, label)).or_default();
        e.1 += c.time.len();
        for (name, values) in c.channels {
            e.0.entry(name).or_default().extend(values);
        }
    }
    out
}

#[test]
fn multi_rate_packets_reap_to_one_netcdf_file_per_rate_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path());
    let orb = srv.orb();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            r#"
[[reap]]
name = "ncappend"
orb = "{orb}"
packets_per_read = 5
flush = "50ms"
format = "netcdf"
mode = "append"
path = "A/{{net}}_{{sta}}/pressure.nc"

[[reap]]
name = "ncbatch"
orb = "{orb}"
packets_per_read = 3
max_batch_age = "50ms"
format = "netcdf"
path = "B/{{net}}_{{sta}}/{{first_pktid}}_{{last_pktid}}.nc"

[[reap]]
name = "cdlbatch"
orb = "{orb}"
packets_per_read = 4
max_batch_age = "50ms"
format = "cdl"
path = "C/{{net}}_{{sta}}/{{first_pktid}}_{{last_pktid}}.cdl"
"#
        ),
    )
    .unwrap();
    // Kill -9 at varying points after visible progress, then restart on more data.
    for round in 0..3i64 {
        sim(&orb, 0, 2, 30, round * 30);
        let before = catalog_lines(dir.path());
        let mut reaper = Reaper::start(&rules, &[]);
        let started = Instant::now();
        while catalog_lines(dir.path()) < before + 4 + round as usize * 5 {
            assert!(started.elapsed() < GUARD, "no progress within {GUARD:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(round as u64 * 3));
        reaper.kill9();
    }
    let out = run(Command::new(bin("orbreaper")).arg(&rules).arg("--once"));
    assert!(
        out.status.success(),
        "orbreaper --once: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(dir.path().join("reaper.log")).unwrap()
        + &String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("skipping packets"), "{log}");

    let packets = all_packets(&srv);
    assert_eq!(packets.len(), 3 * 30 * 2);
    let want = expected_groups(&packets);
    // Two stations, each with a slow and a fast group, one channel each.
    assert_eq!(want.len(), 4, "{:?}", want.keys());
    assert!(want.values().all(|(chans, _)| chans.len() == 1));

    // Append: exactly one file per station and rate, named by the rate.
    let a = dir.path().join("A");
    let ncs = files(&a, "nc");
    let names: BTreeSet<String> = ncs
        .iter()
        .map(|p| p.strip_prefix(&a).unwrap().display().to_string())
        .collect();
    let want_names: BTreeSet<String> = want
        .keys()
        .map(|(sta, label)| format!("{sta}/pressure_{label}.nc"))
        .collect();
    assert_eq!(names, want_names);
    assert_eq!(read_groups(&ncs), want, "netCDF append");

    // Batch: per station and rate, the files in pktid order hold each sample once.
    let mut batches = files(&dir.path().join("B"), "nc");
    let first_pktid = |f: &PathBuf| -> u64 {
        let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
        stem.split('_')
            .next()
            .unwrap()
            .parse()
            .expect("named by pktids")
    };
    batches.sort_by_key(|f| (f.parent().unwrap().to_owned(), first_pktid(f)));
    let got = read_groups(&batches);
    assert_eq!(got, want, "netCDF batches");
    assert!(files(&dir.path().join("B"), "tmp").is_empty());

    // CDL batches, split the same way; ncgen turns each into netCDF to read back.
    let mut cdls = files(&dir.path().join("C"), "cdl");
    assert!(cdls
        .iter()
        .any(|f| f.to_string_lossy().ends_with("_1sps.cdl")));
    let Some(ncgen) = orb_tests::oracle::tool("ncgen", "netcdf-bin") else {
        return;
    };
    cdls.sort_by_key(|f| (f.parent().unwrap().to_owned(), first_pktid(f)));
    let mut generated = Vec::new();
    for f in &cdls {
        let sta = f.parent().unwrap().file_name().unwrap();
        let out_dir = dir.path().join("Cnc").join(sta);
        std::fs::create_dir_all(&out_dir).unwrap();
        let nc = out_dir.join(f.with_extension("nc").file_name().unwrap());
        orb_tests::oracle::run(
            &ncgen,
            &["-o".as_ref(), nc.as_os_str(), f.as_os_str()],
            dir.path(),
        );
        generated.push(nc);
    }
    assert_eq!(read_groups(&generated), want, "CDL batches");
}

/// A pressure channel of `XX_PRS01` starting `start_ms` after [`START`].
fn pressure_channel(chan: &str, rate: f64, start_ms: i64, samples: Vec<i32>) -> Channel {
    Channel {
        net: "XX".into(),
        sta: "PRS01".into(),
        chan: chan.into(),
        loc: String::new(),
        start: Time::from_micros(Time::parse_iso8601(START).unwrap().as_micros() + start_ms * 1000),
        samprate: rate,
        calib: 1.0,
        calper: 1.0,
        segtype: 'P',
        samples,
    }
}

#[test]
fn batch_takes_a_multi_rate_packet_whole_when_a_later_group_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path());
    // The second packet's 20 sps group overlaps the first's, so its file refuses it
    // after the 1 sps group of the same packet went into the batch.
    let bdf = |base: i32| (base..base + 20).collect::<Vec<i32>>();
    let shapes = [
        (
            0,
            vec![
                pressure_channel("LDO", 1.0, 0, vec![1]),
                pressure_channel("BDF", 20.0, 0, bdf(100)),
            ],
        ),
        (
            1000,
            vec![
                pressure_channel("LDO", 1.0, 1000, vec![2]),
                pressure_channel("BDF", 20.0, 500, bdf(200)),
            ],
        ),
        (
            2000,
            vec![
                pressure_channel("LDO", 1.0, 2000, vec![3]),
                pressure_channel("BDF", 20.0, 1500, bdf(300)),
            ],
        ),
    ];
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut c = OrbClient::connect(&srv.orb_addr(), &ClientOptions::for_program("test"))
                .await
                .expect("connect");
            let sn = formats::SrcName::new("XX_PRS01/MGENC/M20").unwrap();
            let t0 = Time::parse_iso8601(START).unwrap().as_micros();
            for (ms, chans) in &shapes {
                let payload = formats::payload::mgenc::encode(chans).expect("encode");
                let t = Time::from_micros(t0 + ms * 1000);
                guard("put", c.put(&sn, t, &payload)).await.expect("put");
            }
        });
    let orb = srv.orb();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            r#"
[[reap]]
name = "ncbatch"
orb = "{orb}"
packets_per_read = 10
format = "netcdf"
path = "B/{{net}}_{{sta}}/{{first_pktid}}_{{last_pktid}}.nc"
"#
        ),
    )
    .unwrap();
    let out = run(Command::new(bin("orbreaper")).arg(&rules).arg("--once"));
    assert!(
        out.status.success(),
        "orbreaper --once: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let packets = all_packets(&srv);
    assert_eq!(packets.len(), 3);
    let ids: Vec<u64> = packets.iter().map(|p| p.pktid).collect();
    // One batch: the 1 sps file holds all three packets, the 20 sps group is in two
    // files of that batch, split where the second packet was refused.
    let b = dir.path().join("B");
    let names: BTreeSet<String> = files(&b, "nc")
        .iter()
        .map(|p| p.strip_prefix(&b).unwrap().display().to_string())
        .collect();
    let want_names: BTreeSet<String> = [
        format!("XX_PRS01/{}_{}_1sps.nc", ids[0], ids[2]),
        format!("XX_PRS01/{}_{}_20sps.nc", ids[0], ids[0]),
        format!("XX_PRS01/{}_{}_20sps.nc", ids[1], ids[2]),
    ]
    .into();
    assert_eq!(names, want_names);
    let mut batches = files(&b, "nc");
    batches.sort_by_key(|f| {
        let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
        stem.split('_').next().unwrap().parse::<u64>().unwrap()
    });
    assert_eq!(read_groups(&batches), expected_groups(&packets));
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("state/ncbatch.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["pktid"].as_u64(), Some(ids[2]));
}

/// A file's sidecar JSON.
fn sidecar(f: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{}.json", f.display())).unwrap())
        .unwrap()
}

/// A file stem as `ncdump` prints a dataset name: these stems hold only letters,
/// digits, `_` and `-`, of which a leading digit is the one ncdump escapes.
fn ncdump_name(stem: &str) -> String {
    assert!(
        stem.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "{stem}"
    );
    if stem.starts_with(|c: char| c.is_ascii_digit()) {
        format!("\\{stem}")
    } else {
        stem.to_owned()
    }
}

#[test]
fn cdl_dataset_name_is_the_final_file_stem() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path());
    let orb = srv.orb();
    // Seismic stations (one rate) and a pressure station (two rates: `_<rate>sps`).
    sim(&orb, 2, 1, 5, 0);
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            r#"
[[reap]]
name = "bypktid"
orb = "{orb}"
packets_per_read = 4
format = "cdl"
path = "P/{{net}}_{{sta}}/{{first_pktid}}_{{last_pktid}}.cdl"

[[reap]]
name = "bytime"
orb = "{orb}"
packets_per_read = 6
format = "cdl"
path = "T/{{sta}}-{{time}}-{{last_pktid}}.cdl"

"#
        ),
    )
    .unwrap();
    reap_once(&rules);
    let cdls: Vec<PathBuf> = ["P", "T"]
        .iter()
        .flat_map(|d| files(&dir.path().join(d), "cdl"))
        .collect();
    assert!(
        cdls.iter()
            .any(|f| f.to_string_lossy().ends_with("sps.cdl")),
        "{cdls:?}"
    );
    assert!(cdls.len() >= 6, "{cdls:?}");
    for f in &cdls {
        let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(f).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            format!("netcdf {} {{", ncdump_name(&stem)),
            "{}",
            f.display()
        );
    }
    // ncgen -b names its output by the dataset name: each must give `<stem>.nc`.
    let Some(ncgen) = orb_tests::oracle::tool("ncgen", "netcdf-bin") else {
        return;
    };
    for f in &cdls {
        let scratch = tempfile::tempdir().unwrap();
        orb_tests::oracle::run(&ncgen, &["-b".as_ref(), f.as_os_str()], scratch.path());
        let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            scratch.path().join(format!("{stem}.nc")).exists(),
            "ncgen -b {} did not write {stem}.nc",
            f.display()
        );
    }
}

/// Lines `orbreaper: RULE: ...` of a log.
fn rule_lines<'a>(log: &'a str, rule: &str) -> Vec<&'a str> {
    let prefix = format!("orbreaper: {rule}: ");
    log.lines().filter(|l| l.starts_with(&prefix)).collect()
}

/// The number before `what` in each summary line (`60 packets`), summed.
fn summed(lines: &[&str], what: &str) -> u64 {
    lines
        .iter()
        .filter(|l| l.contains(": last "))
        .map(|l| {
            let before = &l[..l.find(what).unwrap_or_else(|| panic!("no {what:?} in {l}"))];
            let n = before.trim_end().rsplit([' ', ',', ':']).next().unwrap();
            n.parse::<u64>().unwrap_or_else(|_| panic!("{l}"))
        })
        .sum()
}

#[test]
fn continuous_batches_are_cut_by_packets_per_read_and_logged_in_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path());
    let orb = srv.orb();
    let rules = dir.path().join("rules.toml");
    // Defaults apart from the batch size: no flush, no max_batch_age.
    std::fs::write(
        &rules,
        format!(
            r#"
[[reap]]
name = "batches"
orb = "{orb}"
packets_per_read = 30
format = "json"
path = "B/{{sta}}/{{first_pktid}}_{{last_pktid}}.jsonl"

[[reap]]
name = "grow"
orb = "{orb}"
format = "raw"
mode = "append"
path = "A/{{sta}}.orb"
"#
        ),
    )
    .unwrap();
    let mut reaper = Reaper::start(&rules, &[]);
    // 45 packets (3 stations, 15 rounds): one full batch and 15 packets waiting.
    sim(&orb, 3, 0, 15, 0);
    wait_state(dir.path(), "batches", 30);
    // Longer than the old 2 s flush, which wrote waiting packets as a short batch
    // whatever packets_per_read said; now they wait for the batch to fill.
    std::thread::sleep(Duration::from_secs(3));
    sim(&orb, 3, 0, 5, 15);
    wait_state(dir.path(), "batches", 60);
    wait_state(dir.path(), "grow", 60);
    assert!(reaper.terminate().success());

    // Two batches of 30 packets, each one file per station of 10 packets.
    let batch_files = files(&dir.path().join("B"), "jsonl");
    let sizes: Vec<u64> = batch_files
        .iter()
        .map(|f| sidecar(f)["packets"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [10; 6], "{batch_files:?}");
    let packets = all_packets(&srv);
    assert_eq!(packets.len(), 60);
    assert_eq!(json_samples(&dir.path().join("B")), expected(&packets));
    // A line per batch file, and per flush of an append file.
    assert!(catalog_lines(dir.path()) >= 6 + 3);

    // The log: where each rule starts, then summaries, not a line per file.
    let log = std::fs::read_to_string(dir.path().join("reaper.log")).unwrap();
    assert!(!log.contains(".jsonl") && !log.contains(".orb"), "{log}");
    let b = rule_lines(&log, "batches");
    assert!(
        b[0].contains("no state file") && b[0].ends_with("starting at oldest"),
        "{log}"
    );
    assert!(b.len() >= 2, "{log}");
    assert_eq!(
        b.len(),
        1 + b.iter().filter(|l| l.contains(": last ")).count(),
        "{log}"
    );
    assert_eq!(summed(&b, "packets"), 60, "{log}");
    assert_eq!(summed(&b, "files written"), 6, "{log}");
    assert!(
        b.last().unwrap().contains("archived through pktid 60 "),
        "{log}"
    );
    let g = rule_lines(&log, "grow");
    assert_eq!(summed(&g, "packets"), 60, "{log}");
    assert_eq!(summed(&g, "files written"), 3, "{log}");
    let archived: u64 = files(&dir.path().join("A"), "orb")
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert!(archived > 0);

    // A restart says where each rule resumes.
    let mut reaper = Reaper::start(&rules, &[]);
    let started = Instant::now();
    let resumed = |log: &str| log.matches("resuming after pktid 60 (").count() == 2;
    while !std::fs::read_to_string(dir.path().join("reaper.log")).is_ok_and(|l| resumed(&l)) {
        assert!(
            started.elapsed() < GUARD,
            "no resume lines within {GUARD:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(reaper.terminate().success());
    let log = std::fs::read_to_string(dir.path().join("reaper.log")).unwrap();
    let state = dir.path().join("state/batches.json");
    assert!(
        log.contains(&format!(
            "orbreaper: batches: resuming after pktid 60 (2026-11-22T10:00:19Z), from state file {}",
            state.display()
        )),
        "{log}"
    );
}

#[test]
fn check_warns_when_batches_stay_far_below_packets_per_read() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("old.toml");
    // A rule file from before max_batch_age: flush still cuts batches, with warnings.
    std::fs::write(
        &rules,
        "[[reap]]\nname = \"x\"\norb = \":6510\"\nflush = \"2s\"\nformat = \"json\"\npath = \"x/{first_pktid}.jsonl\"\n",
    )
    .unwrap();
    let out = run(Command::new(bin("orbreaper")).arg(&rules).arg("--check"));
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("orbreaper: warning: ")
                && l.contains("old.toml:4:9: field `flush`")),
        "{err}"
    );
    assert!(lines[0].contains("max_batch_age"), "{err}");
    assert!(
        lines[1].contains("far smaller than packets_per_read = 1000"),
        "{err}"
    );
    // The defaults warn about nothing.
    std::fs::write(
        &rules,
        "[[reap]]\nname = \"x\"\norb = \":6510\"\nformat = \"json\"\npath = \"x/{first_pktid}.jsonl\"\n",
    )
    .unwrap();
    let out = run(Command::new(bin("orbreaper")).arg(&rules).arg("--check"));
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn find_reads_the_rule_files_catalog_and_explains_empty_results() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path());
    let orb = srv.orb();
    sim(&orb, 2, 0, 4, 0);
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            "[[reap]]\nname = \"j\"\norb = \"{orb}\"\nformat = \"json\"\npath = \"J/{{sta}}/{{first_pktid}}_{{last_pktid}}.jsonl\"\n"
        ),
    )
    .unwrap();
    reap_once(&rules);
    let find = |args: &[&str]| run(Command::new(bin("orbreaper")).arg("find").args(args));
    let lines = |o: &Output| -> Vec<String> {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let rules_arg = rules.to_str().unwrap();
    let catalog = dir.path().join("catalog");
    let sta1: Vec<String> = files(&dir.path().join("J/STA01"), "jsonl")
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert!(!sta1.is_empty());

    // The rule file's catalog, as --help says, with -m/--select and the old --match.
    for args in [
        &[rules_arg, "-m", "XX_STA01/.*"][..],
        &[rules_arg, "--select", "XX_STA01/.*"][..],
        &[rules_arg, "--match", "XX_STA01/.*"][..],
        &["--catalog", catalog.to_str().unwrap(), "-m", "XX_STA01/.*"][..],
    ] {
        let out = find(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(lines(&out), sta1, "{args:?}");
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // A station name alone matches no whole srcname: nothing found, and a warning.
    let out = find(&[rules_arg, "-m", "XX_STA02"]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("orbreaper: warning: -m/--select 'XX_STA02' matches no catalogued srcname"),
        "{err}"
    );
    assert!(err.contains("did you mean 'XX_STA02.*'?"), "{err}");

    // A window that ends before it starts is an error, on one line.
    let out = find(&[
        rules_arg,
        "--from",
        "2026-11-22T11:00:00Z",
        "--to",
        "2026-11-22T10:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("orbreaper: error: --from 2026-11-22T11:00:00Z is later than --to"),
        "{err}"
    );

    // Help and behaviour agree: the rule file gives the catalog; -m is --select and
    // matches whole srcnames; --match is not advertised.
    let help = String::from_utf8(find(&["--help"]).stdout).unwrap();
    assert!(
        help.contains("[RULES.toml]") && help.contains("catalog/` beside the rule file"),
        "{help}"
    );
    assert!(
        help.contains("-m, --select <REGEX>") && help.contains("WHOLE"),
        "{help}"
    );
    assert!(!help.contains("--match"), "{help}");
    // Neither a rule file nor --catalog: a usage error.
    let out = find(&["-m", "XX_STA01/.*"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn ingest_links_log_under_orbreaper_and_their_rule() {
    let dir = tempfile::tempdir().unwrap();
    let a = server(&dir.path().join("a"));
    sim(&a.orb(), 1, 0, 2, 0);
    // OUT: a port nothing listens on, so the link logs that it retries.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            "[[ingest]]\nname = \"a-to-gone\"\nfrom = \"{}\"\nto = \"127.0.0.1:{port}\"\nstart = \"oldest\"\n",
            a.orb()
        ),
    )
    .unwrap();
    let log = dir.path().join("orbreaper.stderr");
    let mut child = Command::new(bin("orbreaper"))
        .arg(&rules)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("is unavailable") || started.elapsed() > Duration::from_secs(30) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let line = text
        .lines()
        .find(|l| l.contains("is unavailable"))
        .unwrap_or_else(|| panic!("no retry line within 30 s: {text}"));
    assert!(
        line.starts_with(&format!(
            "orbreaper: rule a-to-gone: 127.0.0.1:{port} is unavailable ("
        )),
        "{text}"
    );
    assert!(!text.contains("orb2orb"), "{text}");
}
