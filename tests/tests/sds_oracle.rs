//! SDS archives (`format = "sds"`) end to end, checked with the tools seismologists
//! read them with: orbsim puts an hour crossing midnight UTC into an orb (one network
//! as MGENC packets, converted to Steim2, one as SEED packets, copied byte for byte);
//! orbreaper, killed with SIGKILL several times while it runs, then finishing with
//! `--once`, reaps it into an SDS tree; ObsPy's `obspy.clients.filesystem.sds.Client`
//! and libmseed (through `pymseed`) must read back every sample the orb holds (decoded
//! by our payload decoders), at its time, no record twice, each day file holding only
//! records of its day. A day file written beforehand by another program must be kept
//! whole and appended to.
//!
//! Without a Python that has `obspy` and `pymseed` the test prints a note and passes
//! locally, but fails under CI ([`orb_tests::oracle`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use formats::payload::{decode, Channel};
use formats::{Packet, Time};
use orb_tests::harness::{bin, guard, OrbServer};
use orb_tests::oracle;
use orbclient::{ClientOptions, OrbClient, ReapEvent, ReapOptions};
use serde_json::Value;

/// Deadlock guard for children and polls; never a performance limit.
const GUARD: Duration = Duration::from_secs(120);
/// Half an hour before midnight UTC: the hour reaped crosses into the next day.
const START: &str = "2026-12-05T23:30:00Z";

/// An orbreaper process, killed when dropped.
struct Reaper(Child);

impl Reaper {
    fn start(rules: &Path) -> Reaper {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(rules.with_file_name("reaper.log"))
            .expect("log file");
        let child = Command::new(bin("orbreaper"))
            .arg(rules)
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
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs a command to completion (at most [`GUARD`]); its output goes to files, so a
/// long log cannot block it.
fn run(cmd: &mut Command) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (o, e) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if started.elapsed() > GUARD {
            let _ = child.kill();
            panic!("child did not exit within {GUARD:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: std::fs::read(o).unwrap(),
        stderr: std::fs::read(e).unwrap(),
    }
}

/// An hour of one seismic and one pressure station of `network` as `format` packets.
fn sim(orb: &str, network: &str, format: &str) {
    let out = run(Command::new(bin("orbsim")).args([
        orb,
        "--fast",
        "--seismic",
        "1",
        "--pressure",
        "1",
        "--network",
        network,
        "--format",
        format,
        "--packet-seconds",
        "10",
        "--duration",
        "1h",
        "--seed",
        "5",
        "--start",
        START,
        "--progress",
        "0",
    ]));
    assert!(
        out.status.success(),
        "orbsim: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every packet the orb holds.
fn all_packets(srv: &OrbServer) -> Vec<Packet> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
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
    })
}

/// Per stream `NET.STA.LOC.CHAN`, each sample's time (microseconds) and value.
type Streams = BTreeMap<String, Vec<(i64, i64)>>;

/// What the orb holds, decoded by our payload decoders, in time order.
fn expected(packets: &[Packet]) -> Streams {
    let mut out = Streams::new();
    for p in packets {
        for ch in decode(&p.srcname, p.time, &p.payload).expect("decode") {
            let key = format!("{}.{}.{}.{}", ch.net, ch.sta, ch.loc, ch.chan);
            let v = out.entry(key).or_default();
            for (i, &s) in ch.samples.iter().enumerate() {
                v.push((ch.sample_time(i).as_micros(), i64::from(s)));
            }
        }
    }
    for v in out.values_mut() {
        v.sort_unstable();
    }
    out
}

/// Reads every day file under sys.argv[1] with libmseed (pymseed) and the SDS tree
/// with ObsPy's SDS client; prints, per stream, each reader's samples with their
/// times, and per file what its records say.
const READ_BACK: &str = r#"
import json, os, re, sys
import pymseed
from pymseed import MS3Record
from obspy import UTCDateTime
from obspy.clients.filesystem.sds import Client
pymseed.configure_logging(max_messages=100)
root = sys.argv[1]
name = re.compile(r"^([A-Z0-9]+)\.([A-Z0-9]+)\.([A-Z0-9]*)\.([A-Z0-9]+)\.D\.(\d{4})\.(\d{3})$")
files, lib, seen = [], {}, set()
for d, _, names in os.walk(root):
    for n in sorted(names):
        m = name.match(n)
        if not m:
            continue
        net, sta, loc, chan, year, doy = m.groups()
        day = UTCDateTime(year=int(year), julday=int(doy))
        day_ns, next_ns = day.ns, (day + 86400).ns
        recs = []
        for msr in MS3Record.from_file(os.path.join(d, n), unpack_data=True):
            key = ".".join(pymseed.sourceid2nslc(msr.sourceid))
            assert key == "%s.%s.%s.%s" % (net, sta, loc, chan), (key, n)
            ident = (key, msr.starttime)
            assert ident not in seen, ("record twice", ident)
            seen.add(ident)
            period_ns = 1e9 / msr.samprate
            last_ns = msr.starttime + round((msr.numsamples - 1) * period_ns)
            recs.append({"start": msr.starttime, "last": last_ns, "encoding": msr.encoding})
            assert day_ns <= msr.starttime < next_ns, ("record outside its day", n, msr.starttime)
            v = lib.setdefault(key, [])
            for i, x in enumerate(msr.datasamples):
                v.append([(msr.starttime + round(i * period_ns)) // 1000, int(x)])
        files.append({"name": n, "day_ns": day_ns, "next_ns": next_ns, "records": recs})
assert not pymseed.get_error_messages(), pymseed.get_error_messages()
client = Client(root)
obs = {}
t0, t1 = UTCDateTime(sys.argv[2]) - 86400, UTCDateTime(sys.argv[2]) + 2 * 86400
for net, sta, loc, chan in client.get_all_nslc():
    st = client.get_waveforms(net, sta, loc, chan, t0, t1, merge=-1)
    v = obs.setdefault("%s.%s.%s.%s" % (net, sta, loc, chan), [])
    for tr in st:
        start_ns = tr.stats.starttime.ns
        for i, x in enumerate(tr.data):
            v.append([(start_ns + round(i * 1e9 / tr.stats.sampling_rate)) // 1000, int(x)])
for v in list(lib.values()) + list(obs.values()):
    v.sort()
print(json.dumps({"files": files, "pymseed": lib, "obspy": obs}))
"#;

fn as_streams(v: &Value) -> Streams {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, s)| {
            let pairs = s
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_i64().unwrap(), p[1].as_i64().unwrap()))
                .collect();
            (k.clone(), pairs)
        })
        .collect()
}

fn state_pktid(dir: &Path, rule: &str) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("state").join(format!("{rule}.json"))).ok()?;
    serde_json::from_str::<Value>(&text).ok()?["pktid"].as_u64()
}

fn day_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(day_files(&p));
        } else if !p.to_string_lossy().ends_with(".json") {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn sds_archive_survives_kill_9_and_reads_back_in_obspy_and_libmseed() {
    let Some(py) = oracle::python(&["obspy", "pymseed"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    std::fs::create_dir_all(&ring).unwrap();
    let srv = OrbServer::start(&ring, &["--ring-size", "64MiB", "--flush", "none"]);
    let orb = srv.orb();
    sim(&orb, "XX", "mgenc");
    sim(&orb, "YY", "seed");
    let packets = all_packets(&srv);
    let last = packets.last().expect("packets").pktid;
    // A day file another program wrote before (samples half an hour before orbsim's):
    // it must be kept whole, and appended to.
    let foreign_ch = Channel {
        net: "XX".into(),
        sta: "STA01".into(),
        chan: "BHZ".into(),
        loc: String::new(),
        start: Time::parse_iso8601("2026-12-05T23:00:00Z").unwrap(),
        samprate: 40.0,
        calib: 1.0,
        calper: 1.0,
        segtype: 'V',
        samples: (0..1000).map(|i| (i * 7919) % 4001 - 2000).collect(),
    };
    let foreign = formats::payload::seed::encode_steim(&foreign_ch).unwrap();
    let foreign_path = dir
        .path()
        .join("sds/2026/XX/STA01/BHZ.D/XX.STA01..BHZ.D.2026.339");
    std::fs::create_dir_all(foreign_path.parent().unwrap()).unwrap();
    std::fs::write(&foreign_path, &foreign).unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            r#"
[[reap]]
name = "sds"
orb = "{orb}"
packets_per_read = 7
flush = "20ms"
format = "sds"
path = "sds"

[[reap]]
name = "custom"
orb = "{orb}"
packets_per_read = 11
flush = "20ms"
format = "sds"
path = "custom/%n/%y%j/%n.%s.%l.%c.D.%Y.%j"
"#
        ),
    )
    .unwrap();
    // Kill at points that vary: after each rule has visibly saved some progress.
    for round in 1..=4u64 {
        let mut reaper = Reaper::start(&rules);
        let started = Instant::now();
        let target = last.min(packets[0].pktid + round * packets.len() as u64 / 6);
        while state_pktid(dir.path(), "sds").is_none_or(|p| p < target) {
            assert!(started.elapsed() < GUARD, "no progress within {GUARD:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(round * 3));
        reaper.kill9();
    }
    let out = run(Command::new(bin("orbreaper")).arg(&rules).arg("--once"));
    assert!(
        out.status.success(),
        "orbreaper --once: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Which kill points were hit varies from run to run; say which, for the record.
    let log = std::fs::read_to_string(dir.path().join("reaper.log")).unwrap_or_default();
    eprintln!(
        "restarts cut records written after a commit {} times",
        log.matches("written after its last commit").count()
    );
    let want = expected(&packets);
    assert_eq!(
        want.len(),
        2 * 5,
        "3 seismic and 2 pressure channels per network"
    );
    let head = std::fs::read(&foreign_path).unwrap();
    assert_eq!(
        head[..foreign.len()],
        foreign[..],
        "the foreign records are kept"
    );
    for tree in ["sds", "custom"] {
        let mut want = want.clone();
        if tree == "sds" {
            let z = want.get_mut("XX.STA01..BHZ").unwrap();
            for (i, &s) in foreign_ch.samples.iter().enumerate() {
                z.push((foreign_ch.sample_time(i).as_micros(), i64::from(s)));
            }
            z.sort_unstable();
        }
        let root = dir.path().join(tree);
        let day = Time::parse_iso8601(START).unwrap().to_string();
        let text = oracle::run_python(&py, READ_BACK, &[root.as_os_str(), day.as_ref()], &root);
        let got: Value = serde_json::from_str(&text).expect("reader output");
        // Compared stream by stream, so a failure names the stream.
        let lib = as_streams(&got["pymseed"]);
        let obs = as_streams(&got["obspy"]);
        assert_eq!(
            lib.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>()
        );
        for (key, samples) in &want {
            assert_eq!(&lib[key], samples, "{tree}: libmseed, {key}");
            if tree == "sds" {
                assert_eq!(&obs[key], samples, "{tree}: ObsPy, {key}");
            }
        }
        // Every stream has a file on each side of midnight; converted streams' records
        // end in their day too (SEED records are whole: they may run past midnight).
        let files = got["files"].as_array().unwrap();
        assert_eq!(
            files.len(),
            2 * want.len(),
            "{tree}: one file per stream and day"
        );
        for f in files {
            let name = f["name"].as_str().unwrap();
            for r in f["records"].as_array().unwrap() {
                if name.starts_with("XX.") {
                    assert!(r["last"].as_i64() < f["next_ns"].as_i64(), "{name}: {r}");
                    assert_eq!(r["encoding"], 11, "{name}: Steim2");
                }
            }
        }
    }
    // The default layout, exactly.
    let layout: Vec<String> = day_files(&dir.path().join("sds"))
        .iter()
        .map(|p| {
            p.strip_prefix(dir.path())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(
        layout.contains(&"sds/2026/XX/STA01/BHZ.D/XX.STA01..BHZ.D.2026.339".to_owned()),
        "{layout:?}"
    );
    assert!(
        layout.contains(&"sds/2026/YY/STA01/BHZ.D/YY.STA01..BHZ.D.2026.340".to_owned()),
        "{layout:?}"
    );
    // The SEED network's records are the orb's, byte for byte.
    let seed_bytes: usize = packets
        .iter()
        .filter(|p| p.srcname.as_str().starts_with("YY_"))
        .map(|p| p.payload.len())
        .sum();
    let written: u64 = day_files(&dir.path().join("sds"))
        .iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("YY."))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(written, seed_bytes as u64);
}
