//! JSON Lines files from `formats::write::jsonl` (the one JSON form of a packet, which
//! orbreaper archives and `orbtail --json` prints) read by Python, the way researchers
//! read them: a plain `json.loads` loop and `pandas.read_json(path, lines=True)`.
//! Packets are MGENC payloads encoded by our codec from random multi-channel samples
//! and decoded again (as orbreaper does), plus single-channel packets with extreme
//! samples and a packet with no decodable channels. Python prints what it read as
//! JSON, and every sample, time and name is compared here, in Rust.
//!
//! Without a Python that can `import pandas` the tests print a note and pass locally,
//! but fail under CI ([`orb_tests::oracle`]).

use std::path::Path;

use formats::payload::{self, mgenc, Channel};
use formats::write::jsonl::JsonLinesWriter;
use formats::write::PacketWriter;
use formats::{Packet, SrcName, Time};
use orb_tests::{oracle, XorShift};
use serde_json::Value;

/// What every reader must see for each packet.
struct Expected {
    pktid: u64,
    srcname: String,
    time: Time,
    channels: Vec<Channel>,
    payload: Vec<u8>,
}

fn random_walk(rng: &mut XorShift, n: usize) -> Vec<i32> {
    let mut x = rng.range(0, 1 << 20) as i32 - (1 << 19);
    (0..n)
        .map(|_| {
            let bits = rng.range(0, 16) as u32;
            x += rng.range(0, 1 << bits) as i32 - (1 << bits) / 2;
            x
        })
        .collect()
}

fn channel(chan: &str, start: Time, samples: Vec<i32>) -> Channel {
    Channel {
        net: "XX".into(),
        sta: "STA01".into(),
        chan: chan.into(),
        loc: String::new(),
        start,
        samprate: 40.0,
        calib: 0.25,
        calper: 1.0,
        segtype: 'V',
        samples,
    }
}

/// Writes the dataset to `path` and returns what it holds.
fn write_dataset(path: &Path) -> Vec<Expected> {
    let mut rng = XorShift::new(0x5eed_7001);
    let mgenc_name = SrcName::new("XX_STA01/MGENC").unwrap();
    let mut expected = Vec::new();
    let t0 = Time::parse_iso8601("2026-11-22T10:00:00.125Z").unwrap();
    for i in 0..20u64 {
        let time = t0.checked_add_micros(i as i64 * 1_000_000).unwrap();
        let chans: Vec<Channel> = ["BHZ", "BHN", "BHE"]
            .iter()
            .map(|c| channel(c, time, random_walk(&mut rng, 40)))
            .collect();
        let bytes = mgenc::encode(&chans).unwrap();
        let decoded = payload::decode(&mgenc_name, time, &bytes).unwrap();
        expected.push(Expected {
            pktid: 1000 + i,
            srcname: mgenc_name.to_string(),
            time,
            channels: decoded,
            payload: bytes,
        });
    }
    // Extremes, built directly: every i32 edge, a rate JSON must write as a fraction.
    let mut edge = channel(
        "LDO",
        Time::parse_iso8601("1969-12-31T23:59:59.999999Z").unwrap(),
        vec![i32::MIN, -1, 0, 1, i32::MAX, i32::MIN + 1, i32::MAX - 1],
    );
    edge.samprate = 1.0 / 3.0;
    edge.loc = "00".into();
    expected.push(Expected {
        pktid: 2000,
        srcname: "XX_STA01_LDO_00/GEN".into(),
        time: edge.start,
        channels: vec![edge],
        payload: b"not stored".to_vec(),
    });
    expected.push(Expected {
        pktid: 2001,
        srcname: "XX_STA01/UNKNOWN".into(),
        time: t0,
        channels: Vec::new(),
        payload: (0..=255u8).collect(),
    });

    let file = std::fs::File::create(path).unwrap();
    let mut w = JsonLinesWriter::new(std::io::BufWriter::new(file));
    for e in &expected {
        let mut p = Packet::new(SrcName::new(&e.srcname).unwrap(), e.time, e.payload.clone());
        p.pktid = e.pktid;
        w.append(&p, &e.channels).unwrap();
    }
    w.finish().unwrap();
    expected
}

/// Reads each line with `json.loads` and prints, per packet: pktid, srcname, time,
/// nbytes, the payload in hex (from `payload_base64`, if any) and per channel its names,
/// start, rate, nsamp and samples.
const JSON_SCRIPT: &str = r#"
import base64, json, sys
out = []
with open(sys.argv[1]) as f:
    for line in f:
        d = json.loads(line)
        payload = d.get("payload_base64")
        out.append({
            "pktid": d["pktid"], "srcname": d["srcname"], "time": d["time"],
            "nbytes": d["nbytes"],
            "payload_hex": base64.b64decode(payload).hex() if payload is not None else None,
            "channels": [
                [c["net"], c["sta"], c["chan"], c["loc"], c["start_time"], c["samprate"],
                 c["nsamp"], c["samples"]]
                for c in d["channels"]
            ],
        })
print(json.dumps(out))
"#;

/// Reads the file with pandas and prints, per row: pktid, srcname, the packet time as
/// nanoseconds since 1970 (parsed by pandas), nbytes, and per channel its start (parsed by
/// pandas) and samples.
const PANDAS_SCRIPT: &str = r#"
import json, sys
import pandas as pd
df = pd.read_json(sys.argv[1], lines=True)
times = pd.to_datetime(df["time"], utc=True, format="ISO8601")
out = []
for i, row in df.iterrows():
    chans = []
    for c in row["channels"]:
        start = pd.Timestamp(c["start_time"])
        chans.append([c["chan"], int(start.value), [int(s) for s in c["samples"]]])
    out.append({
        "pktid": int(row["pktid"]), "srcname": row["srcname"],
        "time_ns": int(times.iloc[i].value), "nbytes": int(row["nbytes"]),
        "channels": chans,
    })
print(json.dumps(out))
"#;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn python_json_loop_reads_every_sample() {
    let Some(py) = oracle::python(&["json"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("packets.jsonl");
    let expected = write_dataset(&path);
    let out = oracle::run_python(&py, JSON_SCRIPT, &[&path], dir.path());
    let got: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g["pktid"], e.pktid);
        assert_eq!(g["srcname"], e.srcname.as_str());
        let t = Time::parse_iso8601(g["time"].as_str().unwrap()).unwrap();
        assert_eq!(t, e.time, "packet {}", e.pktid);
        assert_eq!(g["nbytes"], e.payload.len(), "packet {}", e.pktid);
        if e.channels.is_empty() {
            assert_eq!(g["payload_hex"], hex(&e.payload));
        } else {
            assert_eq!(g["payload_hex"], Value::Null);
        }
        let chans = g["channels"].as_array().unwrap();
        assert_eq!(chans.len(), e.channels.len());
        for (gc, ec) in chans.iter().zip(&e.channels) {
            assert_eq!(gc[0], ec.net.as_str());
            assert_eq!(gc[1], ec.sta.as_str());
            assert_eq!(gc[2], ec.chan.as_str());
            assert_eq!(gc[3], ec.loc.as_str());
            let start = Time::parse_iso8601(gc[4].as_str().unwrap()).unwrap();
            assert_eq!(start, ec.start);
            assert_eq!(gc[5].as_f64().unwrap(), ec.samprate, "rate exact");
            assert_eq!(gc[6], ec.samples.len());
            let samples: Vec<i32> = serde_json::from_value(gc[7].clone()).unwrap();
            assert_eq!(samples, ec.samples, "packet {} {}", e.pktid, ec.chan);
        }
    }
}

#[test]
fn pandas_read_json_lines_reads_every_sample() {
    let Some(py) = oracle::python(&["pandas"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("packets.jsonl");
    let expected = write_dataset(&path);
    let out = oracle::run_python(&py, PANDAS_SCRIPT, &[&path], dir.path());
    let got: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(got.len(), expected.len());
    let mut samples_seen = 0;
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g["pktid"], e.pktid);
        assert_eq!(g["srcname"], e.srcname.as_str());
        assert_eq!(
            g["time_ns"].as_i64().unwrap(),
            e.time.as_micros() * 1000,
            "packet {}",
            e.pktid
        );
        assert_eq!(g["nbytes"], e.payload.len(), "packet {}", e.pktid);
        let chans = g["channels"].as_array().unwrap();
        assert_eq!(chans.len(), e.channels.len());
        for (gc, ec) in chans.iter().zip(&e.channels) {
            assert_eq!(gc[0], ec.chan.as_str());
            assert_eq!(gc[1].as_i64().unwrap(), ec.start.as_micros() * 1000);
            let samples: Vec<i32> = serde_json::from_value(gc[2].clone()).unwrap();
            assert_eq!(samples, ec.samples, "packet {} {}", e.pktid, ec.chan);
            samples_seen += samples.len();
        }
    }
    assert_eq!(samples_seen, 20 * 3 * 40 + 7);
}
