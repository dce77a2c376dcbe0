//! Our miniSEED 2 / Steim1 / Steim2 codec (`formats::payload::seed` and `steim`) checked
//! against libmseed, the reference implementation, through its official Python binding
//! `pymseed`. The unit tests in `formats` use hand-checked vectors and round trips, which
//! cannot catch a misreading of SEED 2.4 that the encoder and decoder share; libmseed is
//! the oracle that can. Both directions are checked: records we encode are read by
//! libmseed (every sample, start time to the microsecond, sample rate, codes, encoding),
//! and records libmseed packs are decoded by us and compared with the samples it was
//! given.
//!
//! The interpreter is found by [`orb_tests::oracle::python`]: without one that can
//! `import pymseed` the tests print a note and pass locally, but fail under CI.

use formats::payload::{self, seed, Channel, Steim};
use formats::{SrcName, Time};
use orb_tests::{oracle, XorShift};
use serde_json::Value;

/// Steim2 differences are 30-bit two's complement.
const S2_MIN: i32 = -(1 << 29);
const S2_MAX: i32 = (1 << 29) - 1;
fn channel(net: &str, sta: &str, loc: &str, chan: &str, start: Time, rate: f64) -> Channel {
    Channel {
        net: net.into(),
        sta: sta.into(),
        chan: chan.into(),
        loc: loc.into(),
        start,
        samprate: rate,
        calib: seed::CALIB,
        calper: seed::CALPER,
        segtype: seed::SEGTYPE,
        samples: Vec::new(),
    }
}

fn iso(s: &str) -> Time {
    Time::parse_iso8601(s).unwrap()
}

/// A random walk whose step widths vary from 1 to 20 bits, so every Steim word form is
/// used.
fn random_walk(rng: &mut XorShift, n: usize, start: i32) -> Vec<i32> {
    let mut x = start;
    (0..n)
        .map(|_| {
            let bits = rng.range(0, 21) as u32;
            let step = rng.range(0, 1 << bits) as i64 - (1i64 << bits) / 2;
            x = x.saturating_add(step as i32);
            x
        })
        .collect()
}

/// Differences at each Steim width's boundaries (and just past them), alternating large
/// swings, all within Steim2's 30-bit limit.
fn extremes(rng: &mut XorShift) -> Vec<i32> {
    let mut diffs = Vec::new();
    for bits in [4u32, 5, 6, 8, 10, 15, 16, 30] {
        let lo = -(1i64 << (bits - 1));
        let hi = (1i64 << (bits - 1)) - 1;
        for d in [lo, hi, lo - 1, hi + 1, lo + 1, hi - 1, 0, -1, 1] {
            diffs.push(d.clamp(S2_MIN.into(), S2_MAX.into()) as i32);
        }
    }
    for i in 0..400 {
        diffs.push(if i % 2 == 0 { S2_MAX } else { -S2_MAX });
    }
    for i in 0..200 {
        diffs.push(if i % 2 == 0 { S2_MIN } else { S2_MAX });
    }
    for _ in 0..300 {
        let d = rng.range(0, 1 << 30) as i64 + i64::from(S2_MIN);
        diffs.push(d as i32);
    }
    let mut x = 0i32;
    diffs
        .into_iter()
        .map(|d| {
            x = x.wrapping_add(d);
            x
        })
        .collect()
}

/// Constant runs of random length at large values, with jumps between them (within
/// Steim2's limit).
fn constant_runs(rng: &mut XorShift) -> Vec<i32> {
    let mut v = Vec::new();
    for _ in 0..40 {
        let value = 1_500_000_000 + rng.range(0, 1 << 29) as i32;
        let len = rng.range(1, 120) as usize;
        v.extend(std::iter::repeat_n(value, len));
    }
    v
}

/// The channels both directions use, with the encodings each can take (full-range
/// samples have differences too wide for Steim2).
fn test_channels() -> Vec<(Channel, Vec<Steim>)> {
    let mut rng = XorShift::new(0x5EED_0AC1E);
    let both = vec![Steim::One, Steim::Two];
    let mut out = Vec::new();

    let mut c = channel("XX", "STA01", "", "BHZ", iso("2026-11-22T10:00:00Z"), 40.0);
    c.samples = random_walk(&mut rng, 5000, 0);
    out.push((c, both.clone()));

    let mut c = channel(
        "IU",
        "ANMO",
        "00",
        "HHE",
        iso("2024-12-31T23:59:58.123456Z"),
        100.0,
    );
    c.samples = extremes(&mut rng);
    out.push((c, both.clone()));

    let mut c = channel(
        "GE",
        "WLF",
        "10",
        "LDO",
        iso("1999-03-01T00:00:00.999950Z"),
        1.0,
    );
    c.samples = constant_runs(&mut rng);
    out.push((c, both.clone()));

    let mut c = channel(
        "XX",
        "B",
        "",
        "VHZ",
        iso("2020-02-29T12:34:56.000049Z"),
        0.1,
    );
    c.samples = random_walk(&mut rng, 700, -1_000_000);
    out.push((c, both.clone()));

    let mut c = channel("AB", "S2", "", "BDF", iso("2026-01-01T00:00:00.5Z"), 2.5);
    c.samples = random_walk(&mut rng, 1500, 123_456);
    out.push((c, both.clone()));

    let mut c = channel("XX", "FULL", "", "BHN", iso("2026-06-30T23:59:59Z"), 20.0);
    c.samples = (0..900).map(|_| rng.next_u64() as i32).collect();
    c.samples[..6].copy_from_slice(&[i32::MIN, i32::MAX, i32::MIN, 0, i32::MAX, -1]);
    out.push((c, vec![Steim::One]));

    for n in 1..=5usize {
        let start = iso("2026-11-22T10:00:00Z")
            .checked_add_micros(n as i64 * 1_234_567)
            .unwrap();
        let mut c = channel("XX", &format!("SH{n}"), "00", "BHZ", start, 40.0);
        c.samples = (0..n)
            .map(|_| rng.range(0, 1 << 29) as i32 - (1 << 28))
            .collect();
        out.push((c, both.clone()));
    }
    out
}

fn steim_code(s: Steim) -> i64 {
    match s {
        Steim::One => 10,
        Steim::Two => 11,
    }
}

fn same_rate(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

/// Reads every record of `argv[1]` with libmseed and prints them as JSON. libmseed only
/// logs some problems (a Steim integrity check that fails, for one) instead of failing,
/// so each record carries the warnings logged while it was read.
const READ_SCRIPT: &str = r#"
import json, sys
import pymseed
from pymseed import MS3Record
pymseed.configure_logging(max_messages=100)
records = []
for msr in MS3Record.from_file(sys.argv[1], unpack_data=True):
    warnings = pymseed.get_error_messages()
    net, sta, loc, chan = pymseed.sourceid2nslc(msr.sourceid)
    records.append({
        "sourceid": msr.sourceid,
        "network": net, "station": sta, "location": loc, "channel": chan,
        "formatversion": msr.formatversion,
        "reclen": msr.reclen,
        "starttime": msr.starttime,
        "samprate": msr.samprate,
        "encoding": msr.encoding,
        "numsamples": msr.numsamples,
        "samples": [int(x) for x in msr.datasamples] if msr.numsamples else [],
        "warnings": warnings,
    })
assert not pymseed.get_error_messages()
print(json.dumps(records))
"#;

/// Rust -> libmseed: libmseed reads what we encode, record by record.
#[test]
fn libmseed_reads_our_records() {
    let Some(py) = oracle::python(&["pymseed"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ours.mseed");
    let mut file = Vec::new();
    // What each record should say: channel, encoding, index of its first sample.
    let mut expect: Vec<(usize, Steim)> = Vec::new();
    let channels = test_channels();
    for (i, (ch, encodings)) in channels.iter().enumerate() {
        for &steim in encodings {
            let bytes = seed::encode(ch, steim).unwrap();
            assert_eq!(bytes.len() % seed::RECORD_LEN, 0);
            for _ in 0..bytes.len() / seed::RECORD_LEN {
                expect.push((i, steim));
            }
            file.extend_from_slice(&bytes);
        }
    }
    std::fs::write(&path, &file).unwrap();
    let out = oracle::run_python(&py, READ_SCRIPT, &[&path], dir.path());
    let records: Vec<Value> = serde_json::from_str(&out).expect("python output is JSON");
    assert_eq!(
        records.len(),
        expect.len(),
        "libmseed read a different record count"
    );

    let mut next = 0usize; // sample index within the current channel and encoding
    let mut prev: Option<(usize, Steim)> = None;
    let mut checked = 0usize;
    for (n, (rec, &(i, steim))) in records.iter().zip(&expect).enumerate() {
        if prev != Some((i, steim)) {
            if let Some((pi, _)) = prev {
                assert_eq!(
                    next,
                    channels[pi].0.samples.len(),
                    "channel {pi} incomplete"
                );
            }
            next = 0;
            prev = Some((i, steim));
        }
        let ch = &channels[i].0;
        let what = format!("record {n} ({}.{} {steim:?})", ch.sta, ch.chan);
        assert_eq!(
            rec["warnings"],
            serde_json::json!([]),
            "{what}: libmseed warned"
        );
        assert_eq!(rec["formatversion"], 2, "{what}");
        assert_eq!(rec["reclen"], seed::RECORD_LEN as i64, "{what}");
        assert_eq!(rec["network"], ch.net.as_str(), "{what}");
        assert_eq!(rec["station"], ch.sta.as_str(), "{what}");
        assert_eq!(rec["location"], ch.loc.as_str(), "{what}");
        assert_eq!(rec["channel"], ch.chan.as_str(), "{what}");
        let sourceid = format!(
            "FDSN:{}_{}_{}_{}",
            ch.net,
            ch.sta,
            ch.loc,
            ch.chan
                .chars()
                .map(String::from)
                .collect::<Vec<_>>()
                .join("_")
        );
        assert_eq!(rec["sourceid"], sourceid.as_str(), "{what}");
        assert_eq!(rec["encoding"], steim_code(steim), "{what}");
        let rate = rec["samprate"].as_f64().unwrap();
        assert!(same_rate(rate, ch.samprate), "{what}: rate {rate}");
        let start_ns = rec["starttime"].as_i64().unwrap();
        assert_eq!(start_ns % 1000, 0, "{what}: sub-microsecond start");
        assert_eq!(
            start_ns / 1000,
            ch.sample_time(next).as_micros(),
            "{what}: start time"
        );
        let samples: Vec<i32> = rec["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| i32::try_from(v.as_i64().unwrap()).unwrap())
            .collect();
        assert_eq!(rec["numsamples"].as_u64(), Some(samples.len() as u64));
        assert!(!samples.is_empty(), "{what}: no samples");
        let want = &ch.samples[next..next + samples.len()];
        if let Some(k) = (0..samples.len()).find(|&k| samples[k] != want[k]) {
            panic!(
                "{what}: sample {} is {} in libmseed, {} in ours",
                next + k,
                samples[k],
                want[k]
            );
        }
        next += samples.len();
        checked += samples.len();
    }
    if let Some((pi, _)) = prev {
        assert_eq!(
            next,
            channels[pi].0.samples.len(),
            "channel {pi} incomplete"
        );
    }
    eprintln!("libmseed read {} records, {checked} samples", records.len());
}

/// Packs each channel of the JSON spec in `argv[1]` with libmseed as miniSEED 2, 512-byte
/// records, writing `chanN.mseed` next to it; prints per channel the records and samples
/// packed.
const PACK_SCRIPT: &str = r#"
import json, os, sys
import pymseed
from pymseed import MS3Record
pymseed.configure_logging(max_messages=100)
spec = json.load(open(sys.argv[1]))
out = []
for n, c in enumerate(spec):
    msr = MS3Record()
    msr.sourceid = pymseed.nslc2sourceid(c["net"], c["sta"], c["loc"], c["chan"])
    msr.formatversion = 2
    msr.reclen = 512
    msr.encoding = c["encoding"]
    msr.starttime = c["start_us"] * 1000
    msr.samprate = c["samprate"]
    path = os.path.join(os.path.dirname(sys.argv[1]), "chan%d.mseed" % n)
    records = 0
    with open(path, "wb") as f:
        for rec in msr.generate(data_samples=c["samples"], sample_type="i"):
            assert len(rec) == 512, len(rec)
            f.write(rec)
            records += 1
    warnings = pymseed.get_error_messages()
    assert not warnings, warnings
    out.append({"path": path, "records": records, "samples": len(c["samples"])})
print(json.dumps(out))
"#;

/// libmseed -> Rust: we decode what libmseed packs.
#[test]
fn we_read_libmseed_records() {
    let Some(py) = oracle::python(&["pymseed"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<(Channel, Steim)> = Vec::new();
    for (ch, encodings) in test_channels() {
        for steim in encodings {
            cases.push((ch.clone(), steim));
        }
    }
    let spec: Vec<Value> = cases
        .iter()
        .map(|(ch, steim)| {
            serde_json::json!({
                "net": ch.net, "sta": ch.sta, "loc": ch.loc, "chan": ch.chan,
                "start_us": ch.start.as_micros(),
                "samprate": ch.samprate,
                "encoding": steim_code(*steim),
                "samples": ch.samples,
            })
        })
        .collect();
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let out = oracle::run_python(&py, PACK_SCRIPT, &[&spec_path], dir.path());
    let packed: Vec<Value> = serde_json::from_str(&out).expect("python output is JSON");
    assert_eq!(packed.len(), cases.len());

    let mut records = 0;
    for ((ch, steim), p) in cases.iter().zip(&packed) {
        let what = format!("{}.{} {steim:?}", ch.sta, ch.chan);
        assert_eq!(
            p["samples"].as_u64(),
            Some(ch.samples.len() as u64),
            "{what}"
        );
        let bytes = std::fs::read(p["path"].as_str().unwrap()).unwrap();
        let n = p["records"].as_u64().unwrap() as usize;
        assert!(n >= 1, "{what}: no records");
        assert_eq!(bytes.len(), n * seed::RECORD_LEN, "{what}");
        records += n;
        // The encoding libmseed wrote (blockette 1000 at its usual offset 48).
        assert_eq!(&bytes[48..50], &1000u16.to_be_bytes(), "{what}");
        assert_eq!(i64::from(bytes[52]), steim_code(*steim), "{what}");

        let loc = if ch.loc.is_empty() {
            String::new()
        } else {
            format!("_{}", ch.loc)
        };
        let srcname =
            SrcName::new(&format!("{}_{}_{}{loc}/SEED", ch.net, ch.sta, ch.chan)).expect("srcname");
        let got = payload::decode(&srcname, ch.start, &bytes)
            .unwrap_or_else(|e| panic!("{what}: our decoder refused libmseed's records: {e}"));
        assert_eq!(got.len(), 1, "{what}: records not joined into one channel");
        let g = &got[0];
        assert_eq!(
            (&g.net, &g.sta, &g.loc, &g.chan),
            (&ch.net, &ch.sta, &ch.loc, &ch.chan),
            "{what}"
        );
        assert_eq!(g.start, ch.start, "{what}: start time");
        assert!(
            same_rate(g.samprate, ch.samprate),
            "{what}: rate {} for {}",
            g.samprate,
            ch.samprate
        );
        assert_eq!(g.samples.len(), ch.samples.len(), "{what}: sample count");
        if let Some(k) = (0..g.samples.len()).find(|&k| g.samples[k] != ch.samples[k]) {
            panic!(
                "{what}: sample {k} decodes to {}, libmseed packed {}",
                g.samples[k], ch.samples[k]
            );
        }

        // Record by record, too: each record's start is where its first sample falls.
        let mut done = 0;
        for (r, rec) in bytes.chunks_exact(seed::RECORD_LEN).enumerate() {
            let one = seed::decode(rec).unwrap();
            assert_eq!(one.len(), 1);
            assert_eq!(
                one[0].start,
                ch.sample_time(done),
                "{what}: record {r} start time"
            );
            done += one[0].samples.len();
        }
        assert_eq!(done, ch.samples.len(), "{what}");
    }
    eprintln!("decoded {records} libmseed records");
}
