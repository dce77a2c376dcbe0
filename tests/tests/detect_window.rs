//! Windowed-statistic detect rules, replays and false alarms end to end, on orbsim's
//! data in a real server, run by the `orbdetect` binary:
//!
//! - a rate-of-change rule on `LDO` finds every pressure front orbsim simulates
//!   (`--fronts`) at each pressure station, and nothing else; an RMS rule in standard
//!   deviations on `BDF` finds the strong infrasound bursts at their arrivals with
//!   almost no false triggers; a second `--once` run puts nothing again;
//! - `--replay` over the same range prints the same detections without touching the
//!   rules' state files, and `--replay --put DETTUNE` puts them under that type,
//!   which the live rules do not read;
//! - with orbsim's earthquakes off (noise only) an hour of a 7-station network gives
//!   no network event with a realistic STA/LTA rule, nor with weak quakes below its
//!   threshold; the same rule finds quakes at a tenth of orbsim's usual amplitude,
//!   so the check can fail.

use std::collections::BTreeMap;
use std::path::Path;

use orb_tests::harness::{connect, dump_ring, run_tool, OrbServer};
use orbclient::sim::{Event, EventKind};

const START: &str = "2026-11-22T10:00:00Z";

/// Runs orbsim into `orb`; returns its catalogue.
fn orbsim(orb: &str, args: &[&str], events: &Path) -> Vec<Event> {
    let mut all = vec![
        orb,
        "--fast",
        "--start",
        START,
        "--progress",
        "0",
        "--events",
        events.to_str().unwrap(),
    ];
    all.extend(args);
    let (status, _, stderr) = run_tool(&all, "orbsim", b"");
    assert!(status.success(), "orbsim: {stderr}");
    std::fs::read_to_string(events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn orbdetect(args: &[&str]) -> (String, String) {
    let (status, stdout, stderr) = run_tool(args, "orbdetect", b"");
    assert!(status.success(), "orbdetect {args:?}: {stderr}");
    (stdout, stderr)
}

/// Detection packets in the orb: (srcname, payload), in orb order.
fn detections(srv: &OrbServer) -> Vec<(String, serde_json::Value)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ring = rt.block_on(async { dump_ring(connect(srv, "detect_window").await).await });
    ring.into_iter()
        .filter(|p| rules::detect_rule::is_detection(&p.srcname))
        .map(|p| {
            (
                p.srcname.as_str().to_owned(),
                serde_json::from_slice(&p.payload).unwrap(),
            )
        })
        .collect()
}

/// (channel, onset µs) of the `on` triggers of `rule` among `dets`.
fn ons(dets: &[(String, serde_json::Value)], rule: &str) -> Vec<(String, i64)> {
    dets.iter()
        .filter(|(_, v)| v["rule"] == rule && v["kind"] == "on")
        .map(|(_, v)| {
            (
                v["channel"].as_str().unwrap().to_owned(),
                v["onset_us"].as_i64().unwrap(),
            )
        })
        .collect()
}

const PRESSURE_RULES: &str = r#"
# Pressure fronts: the barometer rising faster than 1 Pa/s over a minute.
[[detect]]
name = "baro"
orb = "ORB"
channels = "LDO"
statistic = "rate"
window = 60.0
baseline = 1800.0
scale = "units"
on = 1.0
off = 0.3
holdoff = 120.0

# Infrasound bursts: the RMS over 1 s, 5 standard deviations above its norm.
[[detect]]
name = "infra"
orb = "ORB"
channels = "BDF"
statistic = "rms"
window = 1.0
baseline = 60.0
on = 5.0
off = 2.0
min_std = 5.0
holdoff = 5.0
"#;

#[test]
fn windowed_rules_find_fronts_and_bursts_and_replay_them() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    std::fs::create_dir(&ring).unwrap();
    let srv = OrbServer::start(&ring, &["--ring-size", "64MiB", "--flush", "none"]);
    let orb = srv.orb();
    let hours = 4.0;
    let cat = orbsim(
        &orb,
        &[
            "--seismic",
            "0",
            "--pressure",
            "3",
            "--fronts",
            "--packet-seconds",
            "10",
            "--duration",
            "4h",
            "--seed",
            "19",
        ],
        &dir.path().join("events.jsonl"),
    );
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, PRESSURE_RULES.replace("ORB", &orb)).unwrap();
    let r = rules.to_str().unwrap();

    // --check explains each rule.
    let (out, _) = orbdetect(&[r, "--check"]);
    assert!(out.contains("detect rule baro: channels LDO"), "{out}");
    assert!(
        out.contains("rate of change (units/s) over 60 s against a 1800 s baseline"),
        "{out}"
    );
    assert!(
        out.contains("on at 5 standard deviations above it"),
        "{out}"
    );

    orbdetect(&[r, "--once"]);
    let dets = detections(&srv);
    assert!(!dets.is_empty());
    for (name, v) in &dets {
        assert!(name.ends_with("/DET"), "{name}");
        let want = if v["rule"] == "baro" { "rate" } else { "rms" };
        assert_eq!(v["statistic"], want, "{v}");
        assert!(v.get("sta").is_none(), "{v}");
    }
    let start = formats::Time::parse_iso8601(START).unwrap().as_micros();
    let end = start + (hours * 3600e6) as i64;

    // Fronts: every arrival after the warm-up (window + baseline) and 300 s before the
    // end, and not within 400 s of an earlier one at the station, is one trigger
    // within 120 s after it; there is no trigger away from the arrivals.
    let baro = ons(&dets, "baro");
    let mut found = 0;
    let mut used = vec![false; baro.len()];
    for e in cat.iter().filter(|e| e.kind == EventKind::Front) {
        for a in &e.arrivals {
            if a.time_us < start + 1_900_000_000 || a.time_us > end - 300_000_000 {
                continue;
            }
            // An arrival within 400 s of the previous one at the station may be
            // inside its trigger (rise, window and hold-off): not scored.
            let masked = cat.iter().filter(|e| e.kind == EventKind::Front).any(|f| {
                f.arrivals.iter().any(|b| {
                    b.station == a.station
                        && b.time_us < a.time_us
                        && b.time_us > a.time_us - 400_000_000
                })
            });
            if masked {
                continue;
            }
            let chan = format!("XX_{}_LDO", a.station);
            let hit = baro
                .iter()
                .position(|(c, t)| *c == chan && *t >= a.time_us && *t <= a.time_us + 120_000_000);
            assert!(
                hit.is_some(),
                "front arrival not found: {a:?} in {:?}; arrivals {:?}",
                baro.iter()
                    .map(|(c, t)| (c, (t - start) / 1_000_000))
                    .collect::<Vec<_>>(),
                cat.iter()
                    .filter(|e| e.kind == EventKind::Front)
                    .flat_map(|e| e.arrivals.iter().map(|a| (
                        &a.station,
                        (a.time_us - start) / 1_000_000,
                        a.amplitude
                    )))
                    .collect::<Vec<_>>()
            );
            used[hit.unwrap()] = true;
            found += 1;
        }
    }
    assert!(
        found >= 3,
        "only {found} front arrivals in the span: {cat:?}"
    );
    // (Triggers on fronts arriving in the warm-up or the last minutes are no false
    // alarms: only those far from every arrival are.)
    let near_arrival = |c: &str, t: i64| {
        cat.iter().filter(|e| e.kind == EventKind::Front).any(|e| {
            e.arrivals.iter().any(|a| {
                format!("XX_{}_LDO", a.station) == c
                    && t >= a.time_us
                    && t <= a.time_us + 120_000_000
            })
        })
    };
    for (i, (c, t)) in baro.iter().enumerate() {
        assert!(
            used[i] || near_arrival(c, *t),
            "false front trigger {c} at {t}"
        );
    }

    // Bursts: arrivals of at least 300 mPa with no other at that station in the 20 s
    // before, after the warm-up: at least 90% found within 0.5 s; triggers outside
    // every wavetrain (arrival - 1 s to + 16 s) at most 1 per station-hour.
    let infra = ons(&dets, "infra");
    let arrivals: Vec<_> = cat
        .iter()
        .filter(|e| e.kind == EventKind::Infrasound)
        .flat_map(|e| e.arrivals.iter())
        .collect();
    let (mut strong, mut hit) = (0, 0);
    for a in &arrivals {
        let alone = !arrivals.iter().any(|b| {
            b.station == a.station && b.time_us < a.time_us && b.time_us > a.time_us - 20_000_000
        });
        if !alone
            || a.amplitude < 300.0
            || a.time_us < start + 70_000_000
            || a.time_us > end - 20_000_000
        {
            continue;
        }
        strong += 1;
        let chan = format!("XX_{}_BDF", a.station);
        if infra
            .iter()
            .any(|(c, t)| *c == chan && (t - a.time_us).abs() <= 500_000)
        {
            hit += 1;
        }
    }
    assert!(strong >= 20, "{strong}");
    assert!(
        hit as f64 >= 0.9 * strong as f64,
        "bursts: {hit} of {strong}"
    );
    let false_alarms = infra
        .iter()
        .filter(|(c, t)| {
            !arrivals.iter().any(|a| {
                format!("XX_{}_BDF", a.station) == *c
                    && *t >= a.time_us - 1_000_000
                    && *t <= a.time_us + 16_000_000
            })
        })
        .count();
    assert!(
        false_alarms as f64 <= 3.0 * hours,
        "{false_alarms} false burst triggers"
    );
    println!(
        "fronts: {found} arrivals found, {} triggers; bursts: {hit} of {strong} found, {false_alarms} false in {hours} h at 3 stations",
        baro.len()
    );

    // Exactly once: a second run finds everything done and puts nothing.
    let states: Vec<String> = ["baro", "infra"]
        .iter()
        .map(|n| std::fs::read_to_string(dir.path().join(format!("state/{n}.json"))).unwrap())
        .collect();
    orbdetect(&[r, "--once"]);
    assert_eq!(detections(&srv).len(), dets.len());

    // A replay over the whole range prints the same detections and leaves the state
    // files alone.
    let to = formats::Time::from_micros(end).to_iso8601().unwrap();
    let (out, err) = orbdetect(&[r, "--replay", "--from", START, "--to", &to]);
    let printed: Vec<(String, serde_json::Value)> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["srcname"].as_str().unwrap().to_owned(),
                v["payload"].clone(),
            )
        })
        .collect();
    let key = |d: &[(String, serde_json::Value)]| {
        let mut k: Vec<(String, String, i64)> = d
            .iter()
            .map(|(n, v)| {
                (
                    n.clone(),
                    v["kind"].as_str().unwrap_or("").to_owned(),
                    v["onset_us"].as_i64().unwrap_or(0),
                )
            })
            .collect();
        k.sort();
        k
    };
    // (The live run leaves a trigger still open at the end of the data open; the
    // replay closes it: its off packet is the only difference allowed.)
    let (live, replayed) = (key(&dets), key(&printed));
    let ons_only = |k: &[(String, String, i64)]| -> Vec<(String, String, i64)> {
        k.iter().filter(|x| x.1 == "on").cloned().collect()
    };
    assert_eq!(ons_only(&live), ons_only(&replayed), "{err}");
    assert!(replayed.len() >= live.len() && replayed.len() <= live.len() + 6);
    for (i, n) in ["baro", "infra"].iter().enumerate() {
        let now = std::fs::read_to_string(dir.path().join(format!("state/{n}.json"))).unwrap();
        assert_eq!(now, states[i], "the replay changed the state of {n}");
    }
    // A replay of one rule over the last hour only: its detections are in that hour.
    let from = formats::Time::from_micros(end - 3_600_000_000)
        .to_iso8601()
        .unwrap();
    let (out, _) = orbdetect(&[r, "--replay", "--from", &from, "--rule", "infra"]);
    assert!(out.lines().count() > 0);
    for l in out.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["payload"]["rule"], "infra");
        assert!(v["payload"]["onset_us"].as_i64().unwrap() >= end - 3_600_000_000);
    }

    // --put: into the orb under another type; the live rules do not read it.
    let before = detections(&srv).len();
    orbdetect(&[
        r, "--replay", "--from", &from, "--rule", "infra", "--put", "DETTUNE",
    ]);
    let after = detections(&srv);
    let tune: Vec<_> = after[before..].iter().collect();
    assert_eq!(tune.len(), out.lines().count());
    assert!(
        tune.iter().all(|(n, _)| n.ends_with("/DETTUNE")),
        "{tune:?}"
    );
    orbdetect(&[r, "--once"]);
    assert_eq!(detections(&srv).len(), after.len());
    // A bad --put type is refused.
    let (status, _, stderr) = run_tool(
        &[r, "--replay", "--from", START, "--put", "TUNE"],
        "orbdetect",
        b"",
    );
    assert!(
        !status.success() && stderr.contains("starts with DET"),
        "{stderr}"
    );
}

const QUAKE_RULE: &str = r#"
[[detect]]
name = "NET"
orb = "ORB"
select = "NET_.*"
channels = "BHZ"
method = "recursive"
sta = 1.0
lta = 10.0
on = 4.0
off = 2.0
bandpass = [1.0, 10.0]
min_duration = 0.5
holdoff = 2.0
max_len = 10.0

[detect.coincidence]
threshold = 3.0
window = 5.0
"#;

/// Noise only, and weak earthquakes: no network event in an hour; quakes at a tenth of
/// the usual amplitude are found (the check can fail).
#[test]
fn no_false_events_on_noise_or_weak_quakes() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("ring");
    std::fs::create_dir(&ring).unwrap();
    let srv = OrbServer::start(&ring, &["--ring-size", "256MiB", "--flush", "none"]);
    let orb = srv.orb();
    let mut rules = String::new();
    let mut cats = BTreeMap::new();
    for (net, extra) in [
        ("NQ", vec!["--no-quakes"]),
        ("WQ", vec!["--quake-scale", "0.005"]),
        ("TQ", vec!["--quake-scale", "0.1"]),
    ] {
        let mut args = vec![
            "--network",
            net,
            "--seismic",
            "7",
            "--pressure",
            "0",
            "--packet-seconds",
            "10",
            "--duration",
            "1h",
            "--seed",
            "19",
        ];
        args.extend(extra);
        let cat = orbsim(&orb, &args, &dir.path().join(format!("{net}.jsonl")));
        cats.insert(net, cat);
        rules.push_str(&QUAKE_RULE.replace("NET", net).replace("ORB", &orb));
    }
    assert!(cats["NQ"].is_empty(), "{:?}", cats["NQ"]);
    assert!(cats["WQ"].len() > 30);
    assert!(cats["WQ"].iter().all(|e| e.amplitude <= 100.0));
    let path = dir.path().join("rules.toml");
    std::fs::write(&path, rules).unwrap();
    orbdetect(&[path.to_str().unwrap(), "--once"]);
    let dets = detections(&srv);
    let events = |net: &str| {
        dets.iter()
            .filter(|(n, _)| *n == format!("{net}/EVENT"))
            .count()
    };
    let triggers = |net: &str| ons(&dets, net).len();
    println!(
        "noise only: {} events, {} station triggers; weak quakes (source <= 100 counts): {} events, {} triggers; a tenth of the usual: {} events of {} quakes",
        events("NQ"),
        triggers("NQ"),
        events("WQ"),
        triggers("WQ"),
        events("TQ"),
        cats["TQ"].len()
    );
    assert_eq!(events("NQ"), 0);
    assert_eq!(events("WQ"), 0);
    assert!(events("TQ") >= 10, "{}", events("TQ"));
}
