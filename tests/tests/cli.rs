//! The operator tools against a real server: `orbput` prints the pktid of a payload from
//! a file or standard input; `orbtail` prints `#pktid srcname time nbytes` lines or, with
//! `--json`, objects whose fields parse back to what was put, stops at `-n` or
//! `--timeout`, and exits 0 when the reader of its output goes away (`orbtail | head -1`);
//! `orbstat --json` prints the STAT, SOURCES and CLIENTS documents one per line, and
//! `-s`/`-c` print tables naming the sources and the connected tools. `orbtail --json`
//! prints exactly the objects the JSON Lines archive writer writes for the same packets,
//! and `orbput --from` stopped by SIGTERM exits 0 with a summary of what the server got.
//! `orbserver --ring-size 8M` makes an 8 MiB ring (units are binary).

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use formats::proto::info::{ClientsInfo, ServerStat, SourcesInfo};
use formats::{Packet, SrcName, Time};
use orb_tests::harness::{bin, connect, run_tool as run, start_with, Killed, OrbServer, GUARD};
use orbclient::OrbClient;

fn start() -> (tempfile::TempDir, OrbServer) {
    start_with(&["--ring-size", "4MiB", "--flush", "none"])
}

fn t(secs: i64) -> Time {
    Time::from_micros(1_795_341_600_000_000 + secs * 1_000_000 + 250_000)
}

/// Puts `n` packets alternating between two sources; returns them with their pktids.
async fn put_some(c: &mut OrbClient, n: i64) -> Vec<Packet> {
    let names = ["TEST_STA/EXP", "OTHER_STA/MGENC"];
    let mut out = Vec::new();
    for i in 0..n {
        let src = SrcName::new(names[i as usize % 2]).unwrap();
        let payload = vec![i as u8; 10 + i as usize];
        let pktid = c.put(&src, t(i), &payload).await.unwrap();
        out.push(Packet {
            pktid,
            ..Packet::new(src, t(i), payload)
        });
    }
    out
}

#[tokio::test]
async fn orbput_prints_the_pktid_of_a_payload_from_a_file_or_stdin() {
    let (dir, srv) = start();
    let orb = srv.orb();
    let file = dir.path().join("payload.bin");
    let bytes: Vec<u8> = (0..=255u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    let f = file.to_str().unwrap();

    let args = [
        &orb,
        "--srcname",
        "TEST_STA/EXP",
        "--time",
        "2026-11-22T10:00:00Z",
        f,
    ];
    let (st, out, err) = run(&args, "orbput", b"");
    assert!(st.success(), "{st}: {err}");
    assert_eq!((out.as_str(), err.as_str()), ("1\n", ""));
    let (st, out, err) = run(
        &[&orb, "--srcname", "TEST_STA/EXP2"],
        "orbput",
        b"from stdin\n",
    );
    assert!(st.success(), "{st}: {err}");
    assert_eq!(out, "2\n");
    let (st, out, _) = run(
        &[&orb, "--srcname", "TEST_STA/EXP2", "-"],
        "orbput",
        b"dash",
    );
    assert!(st.success());
    assert_eq!(out, "3\n");
    let args = [
        &orb,
        "--srcname",
        "TEST_STA/EXP",
        "--durable",
        "--time",
        "-1h",
        f,
    ];
    let (st, out, _) = run(&args, "orbput", b"");
    assert!(st.success());
    assert_eq!(out, "4\n");

    let mut c = connect(&srv, "e2e-check").await;
    let p1 = c.get(1).await.unwrap().unwrap();
    assert_eq!(p1.srcname.as_str(), "TEST_STA/EXP");
    assert_eq!(
        p1.time,
        Time::parse_iso8601("2026-11-22T10:00:00Z").unwrap()
    );
    assert_eq!(p1.payload.as_ref(), bytes);
    let p2 = c.get(2).await.unwrap().unwrap();
    assert_eq!(p2.srcname.as_str(), "TEST_STA/EXP2");
    assert_eq!(p2.payload.as_ref(), b"from stdin\n");
    assert_eq!(c.get(3).await.unwrap().unwrap().payload.as_ref(), b"dash");
    let p4 = c.get(4).await.unwrap().unwrap();
    let hour_ago = Time::now().checked_sub_micros(3_600_000_000).unwrap();
    let off = (p4.time.as_micros() - hour_ago.as_micros()).abs();
    assert!(
        off < GUARD.as_micros() as i64,
        "--time -1h gave {}",
        p4.time
    );

    // A bad srcname is a usage error and stores nothing.
    let (st, out, _) = run(&[&orb, "--srcname", "bad name", f], "orbput", b"");
    assert!(!st.success());
    assert_eq!(out, "");
    assert_eq!(c.stat().await.unwrap().ring.npkts, 4);
}

#[tokio::test]
async fn orbtail_prints_one_line_per_packet() {
    let (_dir, srv) = start();
    let mut c = connect(&srv, "e2e-writer").await;
    let put = put_some(&mut c, 5).await;
    let orb = srv.orb();

    let (st, out, err) = run(&[&orb, "--start", "oldest", "-n", "3"], "orbtail", b"");
    assert!(st.success(), "{st}: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (line, p) in lines.iter().zip(&put) {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 4, "{line}");
        assert_eq!(f[0], format!("#{}", p.pktid));
        assert_eq!(f[1], p.srcname.as_str());
        assert_eq!(Time::parse_iso8601(f[2]).unwrap(), p.time, "{line}");
        assert_eq!(f[3].parse::<usize>().unwrap(), p.payload.len());
    }

    // Select, a start pktid, and --timeout ending a tail with nothing more to show.
    let args = [&orb, "-m", "OTHER_.*", "--start", "2", "--timeout", "0.3"];
    let (st, out, err) = run(&args, "orbtail", b"");
    assert!(st.success(), "{st}: {err}");
    let ids: Vec<&str> = out.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(ids, ["#2", "#4"]);
}

#[tokio::test]
async fn orbtail_json_lines_parse_back_to_the_packets() {
    let (_dir, srv) = start();
    let mut c = connect(&srv, "e2e-writer").await;
    let put = put_some(&mut c, 5).await;
    let args = [&srv.orb(), "--start", "oldest", "-n", "3", "--json"];
    let (st, out, err) = run(&args, "orbtail", b"");
    assert!(st.success(), "{st}: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (line, p) in lines.iter().zip(&put) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["pktid"].as_u64(), Some(p.pktid), "{line}");
        assert_eq!(v["srcname"].as_str(), Some(p.srcname.as_str()), "{line}");
        let time = v["time"].as_str().expect("time is a string");
        assert_eq!(Time::parse_iso8601(time).unwrap(), p.time, "{line}");
        assert_eq!(v["nbytes"].as_u64(), Some(p.payload.len() as u64));
    }
}

#[tokio::test]
async fn orbtail_json_objects_equal_the_json_lines_archive_lines() {
    use formats::payload::{self, mgenc, Channel};
    use formats::write::jsonl::JsonLinesWriter;
    use formats::write::PacketWriter;

    let (_dir, srv) = start();
    let mut c = connect(&srv, "e2e-writer").await;
    // A decodable multi-channel packet, a packet of an unknown type (kept as base64),
    // and a damaged MGENC payload, all at times with a fraction of a second.
    let chans: Vec<Channel> = ["BHZ", "BHN"]
        .iter()
        .map(|chan| Channel {
            net: "XX".into(),
            sta: "STA01".into(),
            chan: (*chan).into(),
            loc: String::new(),
            start: t(0),
            samprate: 40.0,
            calib: 0.25,
            calper: 1.0,
            segtype: 'V',
            samples: (0..40).map(|i| i * 1000 - 20_000).collect(),
        })
        .collect();
    let sent = [
        ("XX_STA01/MGENC/M40", mgenc::encode(&chans).unwrap()),
        ("XX_STA01/ODD", b"\x00\xffopaque".to_vec()),
        ("XX_STA02/MGENC", b"damaged".to_vec()),
    ];
    let mut put = Vec::new();
    for (i, (name, payload)) in sent.iter().enumerate() {
        let src = SrcName::new(name).unwrap();
        let pktid = c.put(&src, t(i as i64), payload).await.unwrap();
        put.push(Packet {
            pktid,
            ..Packet::new(src, t(i as i64), payload.clone())
        });
    }
    let args = [&srv.orb(), "--start", "oldest", "-n", "3", "--json"];
    let (st, out, err) = run(&args, "orbtail", b"");
    assert!(st.success(), "{st}: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (line, p) in lines.iter().zip(&put) {
        // What orbreaper's `format = "json"` writes: payloads decoded the same way,
        // nothing when they cannot be.
        let channels = payload::decode(&p.srcname, p.time, &p.payload).unwrap_or_default();
        let mut w = JsonLinesWriter::new(Vec::new());
        w.append(p, &channels).unwrap();
        w.finish().unwrap();
        let archived: serde_json::Value = serde_json::from_slice(&w.into_inner()).unwrap();
        let tailed: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(tailed, archived, "pktid {}", p.pktid);
    }
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["channels"].as_array().unwrap().len(), 2, "{first}");
    assert_eq!(first["time"], "2026-11-22T10:00:00.250000Z");
}

#[tokio::test]
async fn orbtail_exits_quietly_when_its_reader_goes_away() {
    let (_dir, srv) = start();
    let mut c = connect(&srv, "e2e-writer").await;
    // More lines than a pipe holds, so orbtail is writing when the pipe closes.
    let src = SrcName::new("TEST_STA/EXP").unwrap();
    let packets = (0..4000).map(|i| Packet::new(src.clone(), t(i), vec![0u8; 8]));
    c.put_pipelined(packets, 64).await.unwrap();

    let mut child = Killed(
        Command::new(bin("orbtail"))
            .args([&srv.orb(), "--start", "oldest"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn orbtail"),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("#1 TEST_STA/EXP "), "{line}");
    drop(stdout);
    // Keep packets coming (bounded) in case orbtail was waiting rather than writing.
    let started = Instant::now();
    let st = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            started.elapsed() < GUARD,
            "orbtail kept running after its reader left"
        );
        c.put(&src, Time::now(), b"more").await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(st.success(), "orbtail | head -1 exited with {st}: {err}");
    // The once-per-source note about the undecoded EXP payload type is not an error.
    let err: Vec<&str> = err
        .lines()
        .filter(|l| !l.contains("payload type not decoded"))
        .collect();
    assert!(err.is_empty(), "a closed stdout is not an error: {err:?}");
}

#[tokio::test]
async fn orbstat_json_prints_the_info_documents_one_per_line() {
    let (_dir, srv) = start();
    let mut c = connect(&srv, "e2e-holder").await;
    put_some(&mut c, 4).await;
    let orb = srv.orb();

    let (st, out, err) = run(&[&orb, "--json"], "orbstat", b"");
    assert!(st.success(), "{st}: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    let stat: ServerStat = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(stat.ring.npkts, 4);
    assert_eq!(stat.ring.nsources, 2);
    assert_eq!(stat.totals.packets_in, 4);
    assert_eq!(stat.clients, 2, "the holder and orbstat itself");

    let (st, out, err) = run(&[&orb, "-s", "-c", "--json"], "orbstat", b"");
    assert!(st.success(), "{st}: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let _: ServerStat = serde_json::from_str(lines[0]).unwrap();
    let sources: SourcesInfo = serde_json::from_str(lines[1]).unwrap();
    let names: Vec<&str> = sources.sources.iter().map(|s| s.srcname.as_str()).collect();
    assert_eq!(names, ["OTHER_STA/MGENC", "TEST_STA/EXP"]);
    let clients: ClientsInfo = serde_json::from_str(lines[2]).unwrap();
    let mut whats: Vec<&str> = clients.clients.iter().map(|c| c.what.as_str()).collect();
    whats.sort_unstable();
    // The first orbstat's row may linger for a moment after it exited.
    whats.dedup();
    assert_eq!(whats, ["e2e-holder", "orbstat"]);
}

#[tokio::test]
async fn orbstat_tables_name_the_sources_and_the_clients() {
    let (_dir, srv) = start();
    let mut c = connect(&srv, "e2e-holder").await;
    put_some(&mut c, 4).await;
    let orb = srv.orb();

    let (st, out, err) = run(&[&orb], "orbstat", b"");
    assert!(st.success(), "{st}: {err}");
    assert!(out.contains("orbserver"), "{out}");
    assert!(out.contains("4 packets"), "{out}");
    assert!(!out.contains("SRCNAME") && !out.contains("WHAT"), "{out}");

    let (st, out, err) = run(&[&orb, "-s"], "orbstat", b"");
    assert!(st.success(), "{st}: {err}");
    let table: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("SRCNAME"))
        .collect();
    assert_eq!(table.len(), 3, "header and two sources: {out}");
    assert!(table[1].starts_with("OTHER_STA/MGENC "), "{out}");
    assert!(table[2].starts_with("TEST_STA/EXP "), "{out}");

    let (st, out, err) = run(&[&orb, "-c"], "orbstat", b"");
    assert!(st.success(), "{st}: {err}");
    let table: Vec<&str> = out.lines().skip_while(|l| !l.contains("WHAT")).collect();
    // Two clients, or three if the earlier orbstat's row lingers for a moment.
    assert!(table.len() >= 3, "header and the clients: {out}");
    assert!(table.iter().any(|l| l.contains("e2e-holder")), "{out}");
    assert!(table.iter().any(|l| l.contains("orbstat")), "{out}");
    assert!(c.ping().await.is_ok());
}

#[tokio::test]
async fn orbtail_json_reports_a_gap_when_the_ring_laps_it() {
    let dir = tempfile::tempdir().unwrap();
    let srv = OrbServer::start(dir.path(), &["--ring-size", "1MiB", "--flush", "none"]);
    let mut c = connect(&srv, "e2e-writer").await;
    let mut child = Killed(
        Command::new(bin("orbtail"))
            .args([&srv.orb(), "--start", "oldest", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn orbtail"),
    );
    // Wait (bounded) until orbtail is reaping, then put far more than the ring, its
    // credit window and the pipe hold while nobody reads orbtail's output.
    let mut reaping = false;
    for _ in 0..3000 {
        let clients = c.clients().await.unwrap().clients;
        if clients.iter().any(|c| c.what == "orbtail" && c.reaping) {
            reaping = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(reaping, "orbtail never started reaping");
    let src = SrcName::new("TEST_STA/EXP").unwrap();
    let n = 20_000u64;
    let packets = (0..n).map(|i| Packet::new(src.clone(), t(i as i64), vec![0u8; 1000]));
    let put = c.put_pipelined(packets, 64).await.unwrap();
    assert_eq!(put.last, n);

    let stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut expect = 1;
    let mut gaps = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if let Some(g) = v.get("gap") {
            let first = g["first"].as_u64().unwrap();
            let last = g["last"].as_u64().unwrap();
            assert_eq!(first, expect, "{line}");
            assert!(last >= first && g["bytes"].as_u64().unwrap() > 0, "{line}");
            gaps.push((first, last));
            expect = last + 1;
        } else {
            assert_eq!(v["pktid"].as_u64(), Some(expect), "{line}");
            if expect == n {
                break;
            }
            expect += 1;
        }
    }
    assert_eq!(expect, n, "orbtail stopped before the newest packet");
    assert!(!gaps.is_empty(), "orbtail was lapped but printed no gap");
}

#[tokio::test]
async fn orbput_replay_stopped_by_sigterm_prints_a_summary_of_what_the_server_holds() {
    use formats::write::raw::RawWriter;
    use formats::write::PacketWriter;

    let (dir, srv) = start();
    // 100 packets one second apart, replayed at 4x: 4 packets a second for 25 s, so
    // the replay is still running when the signal comes.
    let file = dir.path().join("quake.orb");
    let mut w = RawWriter::new(std::fs::File::create(&file).unwrap());
    let src = SrcName::new("TEST_STA/EXP").unwrap();
    for i in 0..100 {
        let mut p = Packet::new(src.clone(), t(i), vec![i as u8; 16]);
        p.pktid = 1 + i as u64;
        w.append(&p, &[]).unwrap();
    }
    w.finish().unwrap();
    drop(w);

    let mut child = Killed(
        Command::new(bin("orbput"))
            .args([
                srv.orb().as_str(),
                "--from",
                file.to_str().unwrap(),
                "--realtime",
                "--speed",
                "4",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn orbput"),
    );
    let mut out = child.0.stdout.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let mut err = child.0.stderr.take().unwrap();
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut c = connect(&srv, "e2e-check").await;
    let held = |s: SourcesInfo| s.sources.iter().map(|s| s.npkts).sum::<u64>();
    let started = Instant::now();
    while held(c.sources().await.unwrap()) < 3 {
        assert!(child.0.try_wait().unwrap().is_none(), "orbput ended early");
        assert!(
            started.elapsed() < GUARD,
            "3 packets not replayed in {GUARD:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let st = child.wait();
    let (out, err) = (out_t.join().unwrap(), err_t.join().unwrap());
    assert_eq!(st.code(), Some(0), "{st}: {err}");
    let summary = out.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("orbput: put ") && summary.ends_with("; stopped by SIGTERM"),
        "{out}"
    );
    let put: u64 = summary["orbput: put ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let now = held(c.sources().await.unwrap());
    assert!((3..100).contains(&put), "{summary}");
    assert_eq!(put, now, "{summary}: the server holds {now}");
    assert!(summary.contains(&format!("pktids 1..{put};")), "{summary}");
}

#[tokio::test]
async fn ring_size_units_are_binary() {
    // 8M read as 8,000,000 bytes was refused as not a multiple of 4 KiB.
    for (flag, want) in [("8M", 8u64 << 20), ("2MB", 2 << 20), ("3072K", 3 << 20)] {
        let (_dir, srv) = start_with(&["--ring-size", flag, "--flush", "none"]);
        let mut c = connect(&srv, "e2e-stat").await;
        assert_eq!(c.stat().await.unwrap().ring.capacity, want, "{flag}");
    }
}
