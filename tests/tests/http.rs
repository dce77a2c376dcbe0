//! The HTTP port end to end (docs/HTTP.md): a real `orbserver --http`, fed by orbsim,
//! read with plain HTTP/1.1 over TCP. `/api/v1/packets` must give exactly what
//! `orbtail --json` prints for the same packets, the `/api/v1` documents what
//! `orbstat --json` prints, `/metrics` must parse with Prometheus' own Python parser,
//! and bad HTTP must be answered without disturbing the native port.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;

use orb_tests::harness::{bin, run_tool, start_with, OrbServer, GUARD};
use orb_tests::oracle;

/// Puts `rounds` rounds of two seismic and one pressure station (GENC, decodable).
fn simulate(srv: &OrbServer, rounds: u64) {
    let out = Command::new(bin("orbsim"))
        .args([
            srv.orb().as_str(),
            "--fast",
            "--seismic",
            "2",
            "--pressure",
            "1",
            "--count",
            &rounds.to_string(),
            "--seed",
            "7",
        ])
        .output()
        .expect("run orbsim");
    assert!(
        out.status.success(),
        "orbsim: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn server() -> (tempfile::TempDir, OrbServer) {
    start_with(&[
        "--ring-size",
        "4MiB",
        "--flush",
        "none",
        "--http",
        "127.0.0.1:0",
    ])
}

/// A response: status, head, body (de-chunked).
struct Resp {
    status: u16,
    head: String,
    body: String,
}

/// Sends `raw` on a new connection and reads to the close (at most [`GUARD`]).
fn exchange(addr: SocketAddr, raw: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect to the HTTP port");
    s.set_read_timeout(Some(GUARD)).unwrap();
    s.write_all(raw).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("read to the close");
    let text = String::from_utf8(got).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Resp {
        status,
        head: head.to_owned(),
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").expect("chunk size line");
        let n = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
}

fn get(addr: SocketAddr, path: &str) -> Resp {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

fn json(r: &Resp) -> serde_json::Value {
    assert_eq!(r.status, 200, "{}\n{}", r.head, r.body);
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

#[test]
fn packets_match_orbtail_json_and_documents_match_orbstat() {
    let (_dir, srv) = server();
    let http = srv.http.expect("the server printed its http address");
    simulate(&srv, 4);
    let (st, tail, err) = run_tool(
        &[&srv.orb(), "--start", "oldest", "--json", "--timeout", "2"],
        "orbtail",
        b"",
    );
    assert!(st.success(), "orbtail: {err}");
    let r = get(http, "/api/v1/packets?limit=100000");
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(!tail.is_empty());
    assert_eq!(r.body, tail, "HTTP and orbtail --json differ");
    assert!(r.body.contains("\"channels\":[{"), "decoded channels");

    // A selection and a limit, against orbtail's own -m and -n.
    let (_, tail, _) = run_tool(
        &[
            &srv.orb(),
            "--start",
            "oldest",
            "--json",
            "-m",
            ".*_HHZ.*",
            "-n",
            "2",
            "--timeout",
            "2",
        ],
        "orbtail",
        b"",
    );
    let r = get(http, "/api/v1/packets?select=.*_HHZ.*&limit=2");
    assert_eq!(r.body.lines().count(), 2.min(tail.lines().count()));
    assert_eq!(r.body, tail);

    // The orbstat documents: same fields, same sources.
    let (st, stat, err) = run_tool(&[&srv.orb(), "-s", "--json"], "orbstat", b"");
    assert!(st.success(), "orbstat: {err}");
    let docs: Vec<serde_json::Value> = stat
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stat_http = json(&get(http, "/api/v1/stat"));
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    let orbstat_stat = docs.iter().find(|d| d.get("ring").is_some()).unwrap();
    assert_eq!(keys(&stat_http), keys(orbstat_stat));
    assert_eq!(stat_http["ring"]["npkts"], orbstat_stat["ring"]["npkts"]);
    let orbstat_sources = docs.iter().find(|d| d.get("sources").is_some()).unwrap();
    let http_sources = json(&get(http, "/api/v1/sources"));
    let names = |v: &serde_json::Value| {
        v["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["srcname"].clone(), s["npkts"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&http_sources), names(orbstat_sources));
    let clients = json(&get(http, "/api/v1/clients"));
    assert!(clients["clients"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["what"] == "HTTP client"));
}

#[test]
fn every_ringserver_resource_answers() {
    let (_dir, srv) = server();
    let http = srv.http.unwrap();
    simulate(&srv, 1);
    let id = json(&get(http, "/id/json"));
    assert!(id["software"].as_str().unwrap().starts_with("orbserver"));
    let streams = json(&get(http, "/streams/json"));
    assert_eq!(streams["stream_count"], 3);
    let ids = get(http, "/streamids");
    assert_eq!(ids.body.lines().count(), 3);
    // orbsim's MGENC srcnames are not SEED streams: their ids are the srcnames.
    let listed: Vec<&str> = streams["stream"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.body.lines().collect::<Vec<_>>(), listed);
    assert_eq!(json(&get(http, "/streamids/json"))["stream_count"], 3);
    let status = json(&get(http, "/status/json"));
    assert_eq!(status["server"]["ring_size"], 4 << 20);
    let conns = json(&get(http, "/connections/json"));
    assert_eq!(conns["connections"]["client"][0]["type"], "http");
    for text in ["/id", "/streams", "/status", "/connections"] {
        let r = get(http, text);
        assert_eq!(r.status, 200, "{text}");
        assert!(r
            .head
            .to_ascii_lowercase()
            .contains("content-type: text/plain"));
        assert!(!r.body.is_empty(), "{text}");
    }
    assert_eq!(get(http, "/nothing-here").status, 404);
}

#[test]
fn admin_resources_are_refused_to_non_admin_addresses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("orb.toml"), "[access]\nadmin = []\n").unwrap();
    let cfg = dir.path().join("orb.toml");
    let srv = OrbServer::start(
        &dir.path().join("ring"),
        &[
            "--ring-size",
            "1MiB",
            "--http",
            "127.0.0.1:0",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    let http = srv.http.unwrap();
    for path in [
        "/status",
        "/status/json",
        "/connections",
        "/connections/json",
        "/api/v1/clients",
    ] {
        let r = get(http, path);
        assert_eq!(r.status, 403, "{path}");
    }
    assert_eq!(get(http, "/id/json").status, 200);
    let (_, stat, _) = run_tool(&[&srv.orb(), "--json"], "orbstat", b"");
    let stat: serde_json::Value = serde_json::from_str(stat.lines().next().unwrap()).unwrap();
    assert_eq!(stat["refused"]["admin_not_allowed"], 5);
}

#[test]
fn metrics_parse_with_the_prometheus_parser() {
    let Some(py) = oracle::python(&["prometheus_client"]) else {
        return;
    };
    let (dir, srv) = server();
    let http = srv.http.unwrap();
    simulate(&srv, 2);
    assert_eq!(get(http, "/nowhere").status, 404);
    let r = get(http, "/metrics");
    assert_eq!(r.status, 200);
    let path = dir.path().join("metrics.txt");
    std::fs::write(&path, &r.body).unwrap();
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
out = {}
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        key = s.name + json.dumps(dict(sorted(s.labels.items())), sort_keys=True)
        out[key] = s.value
    out["type:" + fam.name] = fam.type
print(json.dumps(out))
"#;
    let got = oracle::run_python(&py, script, &[path.to_str().unwrap()], dir.path());
    let m: serde_json::Value = serde_json::from_str(got.trim()).unwrap();
    let v = |k: &str| m.get(k).unwrap_or_else(|| panic!("{k} missing from {m}"));
    let (_, stat, _) = run_tool(&[&srv.orb(), "--json"], "orbstat", b"");
    let stat: serde_json::Value = serde_json::from_str(stat.lines().next().unwrap()).unwrap();
    let put = stat["totals"]["packets_in"].as_f64().unwrap();
    assert!(put > 0.0);
    assert_eq!(v("orb_packets_in_total{}").as_f64(), Some(put));
    assert_eq!(v("type:orb_packets_in"), "counter");
    assert_eq!(v("orb_ring_packets{}").as_f64(), Some(put));
    // This scrape's connection, and maybe the last one's if its task has not yet
    // dropped its row.
    assert!(v("orb_clients{\"protocol\": \"http\"}").as_f64() >= Some(1.0));
    assert_eq!(
        v("orb_refusals_total{\"kind\": \"http_not_found\"}").as_f64(),
        Some(1.0)
    );
    assert_eq!(v("type:orb_flush_latency_seconds"), "histogram");
    assert!(m.get("orb_ring_newest_age_seconds{}").is_some());
    let sources = m
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("orb_source_packets{"))
        .count();
    assert_eq!(sources, 3);
}

#[test]
fn bad_http_is_answered_and_does_not_disturb_the_native_port() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("orb.toml"),
        "[limits]\nhandshake_timeout = \"1s\"\n",
    )
    .unwrap();
    let cfg = dir.path().join("orb.toml");
    let srv = OrbServer::start(
        &dir.path().join("ring"),
        &[
            "--ring-size",
            "1MiB",
            "--http",
            "127.0.0.1:0",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    let http = srv.http.unwrap();
    // A slow client holds a half-sent request head open while the others run.
    let mut slow = TcpStream::connect(http).unwrap();
    slow.write_all(b"GET /id HTTP/1.1\r\nHost: t\r\n").unwrap();
    assert_eq!(exchange(http, b"NOT HTTP AT ALL\r\n\r\n").status, 400);
    let big = format!(
        "GET /id HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "b".repeat(64 * 1024)
    );
    assert_eq!(exchange(http, big.as_bytes()).status, 431);
    let r = exchange(
        http,
        b"DELETE /id HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 405);
    // The native port serves as ever, meanwhile.
    simulate(&srv, 1);
    let (st, _, err) = run_tool(&[&srv.orb()], "orbstat", b"");
    assert!(st.success(), "{err}");
    // The slow client is closed by the server without an answer.
    slow.set_read_timeout(Some(GUARD)).unwrap();
    let mut rest = Vec::new();
    slow.read_to_end(&mut rest).expect("closed by the server");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    let m = get(http, "/metrics").body;
    for kind in [
        "http_bad_request",
        "http_headers_too_large",
        "http_method_not_allowed",
        "http_header_timeout",
    ] {
        assert!(
            m.contains(&format!("orb_refusals_total{{kind=\"{kind}\"}} 1\n")),
            "{kind}: {m}"
        );
    }
}

/// `/api/v1/envelope` against the samples of the same packets as `orbtail --json`
/// prints them: each bin's minimum and maximum, for a seismic and a pressure channel.
#[test]
fn envelope_bins_hold_the_min_and_max_of_orbtail_samples() {
    use formats::Time;
    let (_dir, srv) = server();
    let http = srv.http.unwrap();
    simulate(&srv, 4);
    for (station, chan, segtype, calib) in [
        ("XX_STA01", "BHZ", "V", 1.0),
        ("XX_PRS01", "LDO", "P", 0.01),
    ] {
        let (st, tail, err) = run_tool(
            &[
                &srv.orb(),
                "--start",
                "oldest",
                "--json",
                "-m",
                &format!("{station}/.*"),
                "--timeout",
                "2",
            ],
            "orbtail",
            b"",
        );
        assert!(st.success(), "orbtail: {err}");
        // (time in microseconds, sample) of every sample of the channel.
        let mut samples: Vec<(f64, i64)> = Vec::new();
        for line in tail.lines() {
            let p: serde_json::Value = serde_json::from_str(line).unwrap();
            for c in p["channels"].as_array().unwrap() {
                if c["chan"] != chan {
                    continue;
                }
                let t0 = Time::parse_iso8601(c["start_time"].as_str().unwrap())
                    .unwrap()
                    .as_micros() as f64;
                let rate = c["samprate"].as_f64().unwrap();
                for (i, v) in c["samples"].as_array().unwrap().iter().enumerate() {
                    samples.push((t0 + i as f64 * 1e6 / rate, v.as_i64().unwrap()));
                }
            }
        }
        assert!(!samples.is_empty(), "{station} {chan}: {tail}");
        // Bin edges half a sample before the first sample and then every 1.5 s: never
        // on a sample, so rounding cannot move one across.
        let rate_us = samples.get(1).map_or(1e6, |s| s.0 - samples[0].0);
        let start = (samples[0].0 - rate_us / 2.0) as i64;
        let (bins, step) = (3usize, 1_500_000i64);
        let end = start + bins as i64 * step;
        let mut min = vec![None; bins];
        let mut max = vec![None; bins];
        for &(t, v) in &samples {
            let b = ((t - start as f64) / step as f64).floor() as usize;
            if b < bins {
                min[b] = Some(min[b].map_or(v, |m: i64| m.min(v)));
                max[b] = Some(max[b].map_or(v, |m: i64| m.max(v)));
            }
        }
        let url = format!(
            "/api/v1/envelope?select={station}/.*&chan={chan}&bins={bins}&start={}&end={}",
            Time::from_micros(start).to_epoch_string(),
            Time::from_micros(end).to_epoch_string()
        );
        let env = json(&get(http, &url));
        assert_eq!(
            env["min"],
            serde_json::json!(min),
            "{station} {chan}: {env}"
        );
        assert_eq!(
            env["max"],
            serde_json::json!(max),
            "{station} {chan}: {env}"
        );
        assert!(min.iter().all(Option::is_some), "every bin has data");
        assert_eq!(env["segtype"], segtype);
        assert_eq!(env["calib"], calib);
        assert_eq!(env["step"], 1.5);
        assert!(env["srcname"].as_str().unwrap().starts_with(station));
        assert_eq!(env["truncated"], false);
        // A packet limit cuts the read, and says so.
        let env = json(&get(http, &format!("{url}&limit=1")));
        assert_eq!(
            (env["packets"].clone(), env["truncated"].clone()),
            (1.into(), true.into())
        );
    }
}
