//! `orbput --from` against real servers: packets reaped from one orb into a raw file
//! and replayed into a fresh orb come back with the same srcnames, times and payloads
//! in the same order; two files are merged by packet time; `--realtime --speed` keeps
//! the order; a corrupt record stops the replay with one line naming file and offset,
//! after the packets before it were put.

use std::path::Path;

use formats::write::raw::RawWriter;
use formats::write::PacketWriter;
use formats::{Packet, SrcName, Time};
use orb_tests::harness::{bin, connect, guard, start, OrbServer};
use orb_tests::make_payload;
use orb_tests::oracle::{run_status, RunOutput};

fn t(secs: i64) -> Time {
    Time::from_micros(1_795_341_600_000_000 + secs * 1_000_000 + 250_000)
}

fn packet(name: &str, time: Time, seq: u64) -> Packet {
    Packet::new(SrcName::new(name).unwrap(), time, make_payload(seq, 40))
}

/// Writes `packets` to a raw file at `path`.
fn write_raw(path: &Path, packets: &[Packet]) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = RawWriter::new(std::io::BufWriter::new(f));
    for p in packets {
        w.append(p, &[]).unwrap();
    }
    w.finish().unwrap();
}

/// Every packet in the orb, in pktid order (the orbs here are fresh and small).
async fn all_packets(srv: &OrbServer) -> Vec<Packet> {
    let mut c = connect(srv, "replay-check").await;
    let mut out = Vec::new();
    for pktid in 1..=10_000 {
        match guard("get", c.get(pktid)).await.unwrap() {
            Some(p) => out.push(p),
            None => break,
        }
    }
    out
}

/// srcname, time, payload: what a replay must keep (pktids are the new orb's).
fn content(packets: &[Packet]) -> Vec<(String, Time, Vec<u8>)> {
    packets
        .iter()
        .map(|p| (p.srcname.to_string(), p.time, p.payload.to_vec()))
        .collect()
}

fn orbput(srv: &OrbServer, args: &[&str], dir: &Path) -> RunOutput {
    let mut all = vec![srv.orb()];
    all.extend(args.iter().map(|s| s.to_string()));
    run_status(&bin("orbput"), &all, dir)
}

#[tokio::test]
async fn reaped_packets_replay_into_a_fresh_orb_unchanged() {
    let (_d1, src) = start();
    let mut c = connect(&src, "replay-source").await;
    let names = ["XX_STA1/EXP", "XX_STA2/EXP", "YY_Q/GENC"];
    // Times out of pktid order on purpose: a single file replays in its own order.
    let put: Vec<Packet> = (0..30)
        .map(|i| packet(names[i % 3], t((i as i64 * 7) % 11), i as u64))
        .collect();
    let s = guard("put", c.put_pipelined(put.clone(), 16))
        .await
        .unwrap();
    assert_eq!(s.count, 30);

    // Reap with the client into a raw file.
    let reaped = all_packets(&src).await;
    assert_eq!(reaped.len(), 30);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("reaped.orb");
    write_raw(&file, &reaped);

    let (_d2, fresh) = start();
    let out = orbput(&fresh, &["--from", file.to_str().unwrap()], tmp.path());
    assert!(out.success, "{}", out.stderr);
    assert_eq!(
        out.stdout.trim(),
        format!(
            "orbput: put 30 packets from 1 file into {}, pktids 1..30",
            fresh.orb()
        )
    );
    let replayed = all_packets(&fresh).await;
    assert_eq!(content(&replayed), content(&put));
}

#[tokio::test]
async fn two_files_are_merged_by_time_and_realtime_keeps_the_order() {
    let tmp = tempfile::tempdir().unwrap();
    let even: Vec<Packet> = (0..10)
        .map(|i| packet("XX_EVEN/EXP", t(2 * i), i as u64))
        .collect();
    let odd: Vec<Packet> = (0..10)
        .map(|i| packet("XX_ODD/EXP", t(2 * i + 1), 100 + i as u64))
        .collect();
    // A tie: the same time in both files goes to the file named first.
    let mut odd_with_tie = odd.clone();
    odd_with_tie.push(packet("XX_ODD/EXP", t(30), 200));
    let mut even_with_tie = even.clone();
    even_with_tie.push(packet("XX_EVEN/EXP", t(30), 201));
    let a = tmp.path().join("even.orb");
    let b = tmp.path().join("odd.orb");
    write_raw(&a, &even_with_tie);
    write_raw(&b, &odd_with_tie);
    let mut want: Vec<Packet> = (0..10)
        .flat_map(|i| [even[i].clone(), odd[i].clone()])
        .collect();
    want.push(odd_with_tie[10].clone());
    want.push(even_with_tie[10].clone());

    let files = [b.to_str().unwrap(), a.to_str().unwrap()];
    let (_d, fast) = start();
    let out = orbput(&fast, &["--from", files[0], files[1]], tmp.path());
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout.contains("put 22 packets from 2 files"),
        "{}",
        out.stdout
    );
    assert_eq!(content(&all_packets(&fast).await), content(&want));

    // 30 s of recorded time at 1000x: 30 ms of waiting, in the same order.
    let (_d, paced) = start();
    let args = [
        "--from",
        files[0],
        files[1],
        "--realtime",
        "--speed",
        "1000",
    ];
    let out = orbput(&paced, &args, tmp.path());
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout.contains("put 22 packets from 2 files"),
        "{}",
        out.stdout
    );
    assert_eq!(content(&all_packets(&paced).await), content(&want));
}

#[tokio::test]
async fn a_corrupt_record_stops_the_replay_with_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let packets: Vec<Packet> = (0..10)
        .map(|i| packet("XX_STA1/EXP", t(i), i as u64))
        .collect();
    let file = tmp.path().join("damaged.orb");
    write_raw(&file, &packets);
    let mut bytes = std::fs::read(&file).unwrap();
    // Every record here has the same size: header, then 33 + 11 (srcname) + 40 (payload).
    let record = 33 + 11 + 40;
    let sixth = 12 + 5 * record;
    bytes[sixth + 30] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();

    let (_d, srv) = start();
    let out = orbput(&srv, &["--from", file.to_str().unwrap()], tmp.path());
    assert!(!out.success, "a corrupt file must fail: {}", out.stdout);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", out.stderr);
    let want = format!(
        "orbput: error: {}: corrupt record at byte offset {sixth}: ",
        file.display()
    );
    assert!(lines[0].starts_with(&want), "{}", lines[0]);
    assert!(
        lines[0].contains("the 5 packets merged before it were put"),
        "{}",
        lines[0]
    );
    assert_eq!(content(&all_packets(&srv).await), content(&packets[..5]));

    // A torn tail is not corruption: the complete records go in, with a warning.
    let torn = tmp.path().join("torn.orb");
    std::fs::write(&torn, &bytes[..sixth - 10]).unwrap();
    let (_d, srv) = start();
    let out = orbput(&srv, &["--from", torn.to_str().unwrap()], tmp.path());
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stderr.contains("ends inside a record at byte offset"),
        "{}",
        out.stderr
    );
    assert_eq!(content(&all_packets(&srv).await), content(&packets[..4]));
}
