//! The DataLink gateway end to end: a real orbserver started with `--datalink`, spoken
//! to over raw TCP by our own client (every command, malformed input), by a client we
//! did not write (Python `simpledali`), and checked against the native protocol
//! (orbtail and the client library read what DataLink wrote, and the other way round).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command as Process, Stdio};

use formats::datalink::{Command, InfoKind, Position, Write};
use formats::payload::{seed, Channel, Steim};
use formats::{SrcName, Time};
use orb_tests::dlclient::{DlClient, DlReply};
use orb_tests::harness::{bin, connect, start_with_config, OrbServer};
use orb_tests::oracle;

/// A server with a DataLink listener (and a config file, possibly empty) in `dir`.
fn server(dir: &Path, toml: &str) -> (OrbServer, SocketAddr) {
    let srv = start_with_config(
        dir,
        toml,
        &[
            "--ring-size",
            "1MiB",
            "--flush",
            "none",
            "--datalink",
            "127.0.0.1:0",
        ],
    );
    let dl = srv
        .datalink
        .expect("the server reports its DataLink address");
    (srv, dl)
}

fn write<'a>(streamid: &'a str, start: i64, ack: bool, payload: &'a [u8]) -> Command<'a> {
    Command::Write(Write {
        streamid,
        start: Time::from_micros(start),
        end: Time::from_micros(start + 1),
        ack,
        payload,
    })
}

/// WRITEs with ACK; returns the pktids.
async fn write_acked(c: &mut DlClient, streamid: &str, n: usize) -> Vec<u64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let payload = vec![i as u8; 20 + i];
        match c
            .request(write(streamid, 1_000_000 * i as i64, true, &payload))
            .await
        {
            DlReply::Ok(id, _) => ids.push(u64::try_from(id).unwrap()),
            other => panic!("WRITE: {other:?}"),
        }
    }
    ids
}

/// Packets until ENDSTREAM, after sending ENDSTREAM (bounded: each read is).
async fn end_stream(c: &mut DlClient) -> Vec<DlReply> {
    c.send(Command::EndStream).await;
    let mut got = Vec::new();
    for _ in 0..10_000 {
        match c.recv().await {
            DlReply::EndStream => return got,
            r => got.push(r),
        }
    }
    panic!("no ENDSTREAM after 10000 replies");
}

fn pktid(r: &DlReply) -> u64 {
    match r {
        DlReply::Packet { pktid, .. } => *pktid,
        other => panic!("expected a PACKET, got {other:?}"),
    }
}

#[tokio::test]
async fn id_announces_protocol_packet_size_and_write_and_shows_in_clients() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, dl) = server(dir.path(), "");
    let mut c = DlClient::connect(dl).await;
    let DlReply::Id(text) = c.request(Command::Id("dltest:alice:4242:x86_64")).await else {
        panic!("ID got no ID reply");
    };
    assert!(text.starts_with("DataLink "), "{text}");
    assert!(text.contains(":: DLPROTO:1.1 PACKETSIZE:"), "{text}");
    assert!(text.ends_with(" WRITE"), "loopback may write: {text}");
    let mut native = connect(&srv, "e2e-admin").await;
    let clients = native.clients().await.unwrap().clients;
    let me = clients
        .iter()
        .find(|c| c.what == "dltest")
        .expect("the DataLink client is listed");
    assert_eq!(
        (me.who.as_str(), me.pid, me.access.as_str()),
        ("alice", 4242, "rw")
    );
    assert_eq!(
        me.client_id, "dltest:alice:4242:x86_64",
        "the fourth field is kept"
    );
}

#[tokio::test]
async fn write_read_position_and_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (_srv, dl) = server(dir.path(), "");
    let mut c = DlClient::connect(dl).await;
    let ids = write_acked(&mut c, "XX_STA01/EXP", 5).await;
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");

    // A WRITE without ACK gets no reply: the next reply is the READ's.
    c.send(write("XX_STA02/EXP", 9_000_000, false, b"quiet"))
        .await;
    let quiet = ids[4] + 1;
    match c.request(Command::Read(quiet)).await {
        DlReply::Packet {
            streamid,
            pktid,
            pkttime,
            start,
            end,
            data,
        } => {
            assert_eq!((streamid.as_str(), pktid), ("XX_STA02/EXP", quiet));
            assert_eq!(data, b"quiet");
            assert_eq!(pkttime, Time::from_micros(9_000_000));
            assert_eq!(
                (start, end),
                (pkttime, pkttime),
                "not miniSEED: end = start"
            );
        }
        other => panic!("READ: {other:?}"),
    }
    match c.request(Command::Read(quiet + 100)).await {
        DlReply::Error(_, msg) => assert!(msg.contains("not found"), "{msg}"),
        other => panic!("READ of a missing packet: {other:?}"),
    }

    // POSITION SET EARLIEST: the stream starts with the oldest packet.
    let r = c.request(Command::PositionSet(Position::Earliest)).await;
    assert_eq!(
        r,
        DlReply::Ok(ids[0] as i64, format!("Positioned to packet ID {}", ids[0]))
    );
    c.send(Command::Stream).await;
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(pktid(&c.recv().await));
    }
    assert_eq!(got, [ids[0], ids[1], ids[2], ids[3], ids[4], quiet]);
    // Streaming goes on with packets written while it runs, from another client.
    let mut w = DlClient::connect(dl).await;
    let later = write_acked(&mut w, "XX_STA03/EXP", 1).await[0];
    assert_eq!(pktid(&c.recv().await), later);
    assert!(end_stream(&mut c).await.is_empty());

    // POSITION SET pktid: as ringserver, the stream goes on after that packet.
    let r = c
        .request(Command::PositionSet(Position::Pktid {
            pktid: ids[2],
            time: None,
        }))
        .await;
    assert_eq!(
        r,
        DlReply::Ok(ids[2] as i64, format!("Positioned to packet ID {}", ids[2]))
    );
    c.send(Command::Stream).await;
    assert_eq!(pktid(&c.recv().await), ids[3]);
    end_stream(&mut c).await;

    // With a time, the packet must have it.
    let at = |time| {
        Command::PositionSet(Position::Pktid {
            pktid: ids[1],
            time: Some(Time::from_micros(time)),
        })
    };
    assert!(matches!(c.request(at(1_000_000)).await, DlReply::Ok(..)));
    assert!(matches!(c.request(at(1_000_001)).await, DlReply::Error(..)));

    // POSITION AFTER: the first packet at or after the time.
    let r = c
        .request(Command::PositionAfter(Time::from_micros(2_500_000)))
        .await;
    assert_eq!(
        r,
        DlReply::Ok(ids[3] as i64, format!("Positioned to packet ID {}", ids[3]))
    );
    c.send(Command::Stream).await;
    assert_eq!(pktid(&c.recv().await), ids[3]);
    end_stream(&mut c).await;
    assert!(matches!(
        c.request(Command::PositionAfter(Time::from_micros(i64::MAX)))
            .await,
        DlReply::Error(..)
    ));

    // POSITION SET LATEST: only what comes next.
    let r = c.request(Command::PositionSet(Position::Latest)).await;
    assert_eq!(
        r,
        DlReply::Ok(later as i64, format!("Positioned to packet ID {later}"))
    );
    c.send(Command::Stream).await;
    let next = write_acked(&mut w, "XX_STA03/EXP", 1).await[0];
    assert_eq!(pktid(&c.recv().await), next);
    end_stream(&mut c).await;
}

#[tokio::test]
async fn match_and_reject_search_stream_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (_srv, dl) = server(dir.path(), "");
    let mut c = DlClient::connect(dl).await;
    let a = write_acked(&mut c, "XX_AAA/EXP", 2).await;
    let b = write_acked(&mut c, "XX_BBB/EXP", 2).await;
    let x = write_acked(&mut c, "YY_AAA/EXP", 1).await;
    // Unanchored, as ringserver's: "AAA" selects two streams.
    assert_eq!(
        c.request(Command::Match("AAA")).await,
        DlReply::Ok(2, "2 streams selected after match".into())
    );
    assert_eq!(
        c.request(Command::Reject("^YY")).await,
        DlReply::Ok(1, "1 streams selected after reject".into())
    );
    c.request(Command::PositionSet(Position::Earliest)).await;
    c.send(Command::Stream).await;
    let got = [pktid(&c.recv().await), pktid(&c.recv().await)];
    assert_eq!(got, [a[0], a[1]]);
    assert!(end_stream(&mut c).await.is_empty(), "nothing else matches");
    // Cleared: everything.
    assert!(matches!(
        c.request(Command::Match("")).await,
        DlReply::Ok(2, _)
    ));
    assert!(matches!(
        c.request(Command::Reject("")).await,
        DlReply::Ok(3, _)
    ));
    c.request(Command::PositionSet(Position::Earliest)).await;
    c.send(Command::Stream).await;
    let mut all = Vec::new();
    for _ in 0..5 {
        all.push(pktid(&c.recv().await));
    }
    assert_eq!(all, [a[0], a[1], b[0], b[1], x[0]]);
    end_stream(&mut c).await;
    match c.request(Command::Match("(unclosed")).await {
        DlReply::Error(_, msg) => assert!(msg.contains("regular expression"), "{msg}"),
        other => panic!("bad MATCH: {other:?}"),
    }
}

#[tokio::test]
async fn info_answers_ringserver_shaped_xml() {
    let dir = tempfile::tempdir().unwrap();
    let (_srv, dl) = server(dir.path(), "");
    let mut c = DlClient::connect(dl).await;
    c.request(Command::Id("dltest:bob:1:x")).await;
    write_acked(&mut c, "IU_ANMO_00_BHZ/MSEED", 1).await;
    write_acked(&mut c, "XX_A&B/EXP", 1).await;
    let info = |kind, matching| Command::Info { kind, matching };
    let DlReply::Info(kind, xml) = c.request(info(InfoKind::Status, None)).await else {
        panic!("INFO STATUS");
    };
    assert_eq!(kind, "STATUS");
    assert!(
        xml.contains("<DataLink ") && xml.contains("<Status "),
        "{xml}"
    );
    assert!(xml.contains("TotalStreams=\"2\""), "{xml}");
    // The ring's creation time, from its header, in ringserver's time format.
    let created = ring_creation_time(&xml);
    assert_eq!(
        created.len(),
        "2026-01-02 03:04:05.000000".len(),
        "{created}"
    );
    assert_eq!(&created[10..11], " ", "{created}");
    let DlReply::Info(kind, xml) = c.request(info(InfoKind::Streams, None)).await else {
        panic!("INFO STREAMS");
    };
    assert_eq!(kind, "STREAMS");
    assert!(xml.contains("Name=\"IU_ANMO_00_BHZ/MSEED\""), "{xml}");
    assert!(xml.contains("Name=\"XX_A&amp;B/EXP\""), "escaped: {xml}");
    assert!(xml.contains("SelectedStreams=\"2\""), "{xml}");
    let DlReply::Info(_, xml) = c.request(info(InfoKind::Streams, Some("ANMO"))).await else {
        panic!("INFO STREAMS ANMO");
    };
    assert!(xml.contains("SelectedStreams=\"1\""), "{xml}");
    // The writer used 1.0 names and sees them; a client that said nothing sees 1.1's.
    let mut other = DlClient::connect(dl).await;
    let DlReply::Info(_, xml) = other.request(info(InfoKind::Streams, None)).await else {
        panic!("INFO STREAMS");
    };
    assert!(
        xml.contains("Name=\"FDSN:IU_ANMO_00_B_H_Z/MSEED\""),
        "{xml}"
    );
    let DlReply::Info(_, xml) = c.request(info(InfoKind::Connections, None)).await else {
        panic!("INFO CONNECTIONS from loopback (admin)");
    };
    assert!(
        xml.contains("ClientID=\"dltest:bob:1:x\""),
        "the whole ID: {xml}"
    );
}

/// The `RingCreationTime` attribute of an INFO document.
fn ring_creation_time(xml: &str) -> String {
    xml.split("RingCreationTime=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no RingCreationTime: {xml}"))
        .to_string()
}

/// INFO STATUS from a new connection to `dl`.
async fn info_status(dl: SocketAddr) -> String {
    let mut c = DlClient::connect(dl).await;
    let status = Command::Info {
        kind: InfoKind::Status,
        matching: None,
    };
    match c.request(status).await {
        DlReply::Info(_, xml) => xml,
        other => panic!("INFO STATUS: {other:?}"),
    }
}

#[tokio::test]
async fn info_shows_the_rings_creation_time_which_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut srv, dl) = server(dir.path(), "");
    let first = ring_creation_time(&info_status(dl).await);
    assert_ne!(first, "-");
    assert!(srv.terminate().success());
    let (_srv, dl) = server(dir.path(), "");
    // The same ring: the time is its header's, not the server's start.
    assert_eq!(ring_creation_time(&info_status(dl).await), first);
}

#[tokio::test]
async fn refusals_are_errors_counted_and_the_connection_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, dl) = server(
        dir.path(),
        "[access]\nwrite = []\nadmin = []\n[limits]\nmax_packet = \"4KiB\"\n",
    );
    let mut c = DlClient::connect(dl).await;
    let DlReply::Id(text) = c.request(Command::Id("dltest:x:1:x")).await else {
        panic!("ID");
    };
    assert!(!text.contains("WRITE"), "no write rights, no WRITE: {text}");
    match c.request(write("XX_STA01/EXP", 0, true, b"x")).await {
        DlReply::Error(_, msg) => assert!(msg.contains("access.write"), "{msg}"),
        other => panic!("WRITE without rights: {other:?}"),
    }
    // Without ACK the refusal is still said.
    c.send(write("XX_STA01/EXP", 0, false, b"x")).await;
    assert!(matches!(c.recv().await, DlReply::Error(..)));
    match c
        .request(Command::Info {
            kind: InfoKind::Connections,
            matching: None,
        })
        .await
    {
        DlReply::Error(_, msg) => assert!(msg.contains("admin"), "{msg}"),
        other => panic!("INFO CONNECTIONS without admin: {other:?}"),
    }
    let mut native = connect(&srv, "e2e-stat").await;
    let stat = native.stat().await.unwrap();
    assert_eq!(stat.ring.npkts, 0, "nothing was stored");
    assert_eq!(stat.refused.writes_not_allowed, 2);
    assert_eq!(stat.refused.admin_not_allowed, 1);
    // The connection still works.
    assert!(matches!(
        c.request(Command::Id("again")).await,
        DlReply::Id(_)
    ));
}

#[tokio::test]
async fn oversize_writes_and_bad_stream_ids_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, dl) = server(dir.path(), "[limits]\nmax_packet = \"4KiB\"\n");
    let mut c = DlClient::connect(dl).await;
    let DlReply::Id(text) = c.request(Command::Id("dltest")).await else {
        panic!("ID");
    };
    assert!(text.contains("PACKETSIZE:4096"), "{text}");
    let big = vec![7u8; 5000];
    match c.request(write("XX_STA01/EXP", 0, true, &big)).await {
        DlReply::Error(_, msg) => assert!(msg.contains("too large"), "{msg}"),
        other => panic!("oversize WRITE: {other:?}"),
    }
    let long = format!("XX_{}/EXP", "S".repeat(70));
    match c.request(write(&long, 0, true, b"x")).await {
        DlReply::Error(_, msg) => assert!(msg.contains("srcname"), "{msg}"),
        other => panic!("bad stream id: {other:?}"),
    }
    // Framing held: the connection goes on and stores what is good.
    let ok = write_acked(&mut c, "XX_STA01/EXP", 1).await;
    let mut native = connect(&srv, "e2e-stat").await;
    let stat = native.stat().await.unwrap();
    assert_eq!(stat.ring.npkts, 1);
    assert_eq!(stat.refused.writes_too_large, 1);
    assert_eq!(
        native.get(ok[0]).await.unwrap().unwrap().payload,
        vec![0u8; 20]
    );
    // Far beyond the limit: the size alone closes the connection after an ERROR.
    let header = b"WRITE XX_STA01/EXP 0 0 A 999999999";
    let mut huge = vec![b'D', b'L', header.len() as u8];
    huge.extend_from_slice(header);
    c.send_raw(&huge).await;
    assert!(matches!(c.recv().await, DlReply::Error(..)));
    assert_eq!(c.try_recv().await, None, "closed");
}

/// Sends `bytes` on a fresh connection; returns the replies until the server closes it.
async fn replies_to(dl: SocketAddr, bytes: &[u8]) -> Vec<DlReply> {
    let mut c = DlClient::connect(dl).await;
    c.send_raw(bytes).await;
    let mut got = Vec::new();
    while let Some(r) = c.try_recv().await {
        got.push(r);
    }
    got
}

#[tokio::test]
async fn malformed_input_gets_an_error_and_the_server_serves_others() {
    let dir = tempfile::tempdir().unwrap();
    let (mut srv, dl) = server(dir.path(), "");
    let fatal: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\n\r\n",     // bad magic
        b"DL\x00",                     // header length 0
        b"DL\x05\x01\x02\x03\x04\x05", // not text
        b"DL\x0bWRITE A_B/C",          // WRITE without its size
    ];
    for bytes in fatal {
        let got = replies_to(dl, bytes).await;
        assert!(
            matches!(got.as_slice(), [DlReply::Error(..)]),
            "{bytes:?}: {got:?}"
        );
    }
    // Bad commands with intact framing: ERROR, and the connection goes on.
    let mut c = DlClient::connect(dl).await;
    for bytes in [
        &b"DL\x05HELLO"[..],
        b"DL\x0bREAD banana",
        b"DL\x0fPOSITION JUMP 3",
        b"DL\x09INFO TIME",
        // A client-chosen pktid: refused, its payload skipped.
        b"DL\x16WRITE A_B/C 1 2 A 1 99z",
    ] {
        match c.request_raw(bytes).await {
            DlReply::Error(_, msg) => assert!(!msg.is_empty(), "{bytes:?}"),
            other => panic!("{bytes:?}: {other:?}"),
        }
    }
    assert!(matches!(
        c.request(Command::Id("still here")).await,
        DlReply::Id(_)
    ));
    // Truncated input, then the client leaves: nothing to answer, nothing breaks.
    let mut t = DlClient::connect(dl).await;
    t.send_raw(b"DL\x20WRITE XX_STA01/EXP 0 0 A 100\0").await;
    drop(t);
    // Garbage from a seeded generator.
    let mut rng = orb_tests::XorShift::new(7);
    for _ in 0..20 {
        let bytes: Vec<u8> = (0..rng.range(1, 300))
            .map(|_| rng.next_u64() as u8)
            .collect();
        let mut g = DlClient::connect(dl).await;
        g.send_raw(&bytes).await;
        drop(g);
    }
    assert!(srv.is_running());
    let mut other = DlClient::connect(dl).await;
    assert_eq!(write_acked(&mut other, "XX_STA01/EXP", 2).await.len(), 2);
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_handshake_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, dl) = server(dir.path(), "[limits]\nhandshake_timeout = \"300ms\"\n");
    let mut c = DlClient::connect(dl).await;
    match c.try_recv().await {
        Some(DlReply::Error(_, msg)) => assert!(msg.contains("handshake"), "{msg}"),
        other => panic!("silent client: {other:?}"),
    }
    assert_eq!(c.try_recv().await, None);
    let mut native = connect(&srv, "e2e-stat").await;
    assert_eq!(native.stat().await.unwrap().refused.handshake_timeouts, 1);
}

fn seed_record(net: &str, sta: &str, loc: &str, chan: &str, start: Time, n: i32) -> Vec<u8> {
    let ch = Channel {
        net: net.into(),
        sta: sta.into(),
        chan: chan.into(),
        loc: loc.into(),
        start,
        samprate: 20.0,
        calib: seed::CALIB,
        calper: seed::CALPER,
        segtype: seed::SEGTYPE,
        samples: (0..n).map(|i| (i * 37) % 1000 - 500).collect(),
    };
    seed::encode(&ch, Steim::Two).unwrap()
}

#[tokio::test]
async fn datalink_writes_are_reaped_natively_with_the_srcname_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, dl) = server(dir.path(), "");
    let start = Time::parse_iso8601("2026-01-02T03:04:05Z").unwrap();
    let rec = seed_record("IU", "ANMO", "00", "BHZ", start, 100);
    let bare = seed_record("XX", "STA01", "", "BHZ", start, 100);
    let mut c = DlClient::connect(dl).await;
    let mut ids = Vec::new();
    for (sid, data) in [
        ("IU_ANMO_00_BHZ/MSEED", &rec[..]),
        ("XX_STA01__BHZ/MSEED", &bare[..]),
        ("XX_STA01/MGENC", b"opaque bytes"),
    ] {
        let r = c
            .request(Command::Write(Write {
                streamid: sid,
                start,
                end: start,
                ack: true,
                payload: data,
            }))
            .await;
        let DlReply::Ok(id, _) = r else {
            panic!("{sid}: {r:?}")
        };
        ids.push(id as u64);
    }
    let orb = srv.orb();
    let out = Process::new(bin("orbtail"))
        .args([
            &orb,
            "--start",
            "oldest",
            "-n",
            "3",
            "--json",
            "--timeout",
            "10",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run orbtail");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = lines
        .iter()
        .map(|v| v["srcname"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["IU_ANMO_BHZ_00/SEED", "XX_STA01_BHZ/SEED", "XX_STA01/MGENC"]
    );
    for (v, id) in lines.iter().zip(&ids) {
        assert_eq!(v["pktid"].as_u64(), Some(*id));
        assert_eq!(
            Time::parse_iso8601(v["time"].as_str().unwrap()).unwrap(),
            start
        );
    }
    assert_eq!(lines[0]["channels"][0]["sta"], "ANMO", "{}", lines[0]);
    // The exact bytes, through the client library.
    let mut native = connect(&srv, "e2e-get").await;
    for (id, data) in ids.iter().zip([&rec[..], &bare[..], b"opaque bytes"]) {
        assert_eq!(native.get(*id).await.unwrap().unwrap().payload, data);
    }
}

/// How a reader in `native_puts_read_over_datalink` shows which names it speaks.
#[derive(Clone, Copy)]
enum Reader {
    /// Says nothing: gets DataLink 1.1's FDSN source ids, as from ringserver 4.
    Silent,
    /// Sends `DLPROTO:1.0` in its ID string.
    Announces10,
    /// MATCHes with an expression that selects only by 1.0 names.
    Matches10,
}

#[tokio::test]
async fn native_puts_are_read_over_datalink_1_1_with_fdsn_source_ids() {
    native_puts_read_over_datalink(
        Reader::Silent,
        [
            "FDSN:XX_STA01__B_H_Z/MSEED",
            "FDSN:XX_STA01_10_B_H_Z/MSEED",
            "XX_STA01/MGENC",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_client_announcing_datalink_1_0_reads_1_0_names() {
    native_puts_read_over_datalink(
        Reader::Announces10,
        [
            "XX_STA01__BHZ/MSEED",
            "XX_STA01_10_BHZ/MSEED",
            "XX_STA01/MGENC",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_client_matching_by_1_0_names_reads_1_0_names() {
    native_puts_read_over_datalink(
        Reader::Matches10,
        [
            "XX_STA01__BHZ/MSEED",
            "XX_STA01_10_BHZ/MSEED",
            "XX_STA01/MGENC",
        ],
    )
    .await;
}

async fn native_puts_read_over_datalink(reader: Reader, names: [&str; 3]) {
    let dir = tempfile::tempdir().unwrap();
    let (srv, dl) = server(dir.path(), "");
    let start = Time::parse_iso8601("2026-01-02T03:04:05Z").unwrap();
    let rec = seed_record("XX", "STA01", "", "BHZ", start, 100);
    let loc = seed_record("XX", "STA01", "10", "BHZ", start, 100);
    let mut native = connect(&srv, "e2e-put").await;
    let mut ids = Vec::new();
    for (name, data) in [
        ("XX_STA01_BHZ/SEED", &rec[..]),
        ("XX_STA01_BHZ_10/SEED", &loc[..]),
        ("XX_STA01/MGENC", b"opaque bytes"),
    ] {
        ids.push(
            native
                .put(&SrcName::new(name).unwrap(), start, data)
                .await
                .unwrap(),
        );
    }
    let mut c = DlClient::connect(dl).await;
    // Whatever the client speaks, the server announces 1.1.
    let id = match reader {
        Reader::Announces10 => "reader:me:1:x DLPROTO:1.0",
        Reader::Silent | Reader::Matches10 => "reader:me:1:x",
    };
    match c.request(Command::Id(id)).await {
        DlReply::Id(text) => assert!(text.contains(" DLPROTO:1.1 "), "{text}"),
        other => panic!("ID: {other:?}"),
    }
    if let Reader::Matches10 = reader {
        // `_BHZ/MSEED` is in no FDSN id (`..._B_H_Z/MSEED`); MGENC is kept by `|`.
        assert_eq!(
            c.request(Command::Match("_BHZ/MSEED|MGENC")).await,
            DlReply::Ok(3, "3 streams selected after match".into())
        );
    }
    c.request(Command::PositionSet(Position::Earliest)).await;
    c.send(Command::Stream).await;
    // 100 samples at 20 Hz: the last one is 4.95 s after the first.
    let end = Time::from_micros(start.as_micros() + 4_950_000);
    let want = [(&rec[..], end), (&loc[..], end), (b"opaque bytes", start)];
    for ((id, sid), (data, want_end)) in ids.iter().zip(names).zip(want) {
        match c.recv().await {
            DlReply::Packet {
                streamid,
                pktid,
                pkttime,
                start: s,
                end: e,
                data: d,
            } => {
                assert_eq!((streamid.as_str(), pktid), (sid, *id));
                assert_eq!((pkttime, s, e), (start, start, want_end), "{sid}");
                assert_eq!(d, data, "{sid}");
            }
            other => panic!("{other:?}"),
        }
    }
    end_stream(&mut c).await;
    // INFO STREAMS names the streams as PACKET does.
    let DlReply::Info(_, xml) = c
        .request(Command::Info {
            kind: InfoKind::Streams,
            matching: None,
        })
        .await
    else {
        panic!("INFO STREAMS");
    };
    for sid in names {
        assert!(xml.contains(&format!("Name=\"{sid}\"")), "{sid}: {xml}");
    }
}

/// simpledali (Python, not ours) writes real miniSEED records with ACK, then streams
/// them back, speaking DataLink 1.1's FDSN source ids (what the ID reply announces) or,
/// kept at 1.0 (argument "1.0"), 1.0 names.
const SIMPLEDALI: &str = r#"
import array, asyncio, sys
from datetime import datetime, timezone, timedelta
import simpledali, simplemseed

async def main(port, n, proto):
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    sent = {}
    async with simpledali.SocketDataLink("127.0.0.1", port) as dali:
        r = await dali.id("simpledali-test", "tester", 99, "python")
        assert r.type == "ID", r
        assert dali.packet_size > 0, dali.packet_size
        # The ID reply announces 1.1: simpledali takes it and names its records by
        # FDSN source id. A client kept at 1.0 writes (and so reads) 1.0 names.
        assert dali.dlproto == simpledali.DLPROTO_1_1, dali.dlproto
        want_id = "FDSN:XX_PYSTA_00_H_H_Z/MSEED"
        if proto == "1.0":
            dali.dlproto = simpledali.DLPROTO_1_0
            want_id = "XX_PYSTA_00_HHZ/MSEED"
        for i in range(n):
            data = [(i * 7 + k) % 100 for k in range(50)]
            header = simplemseed.MiniseedHeader("XX", "PYSTA", "00", "HHZ",
                                                start + timedelta(seconds=i), len(data), 100.0)
            # int32 samples in the machine's order: a little-endian data section
            # (blockette 1000 word order 0) behind a big-endian header.
            rec = simplemseed.MiniseedRecord(header, data=array.array("i", data))
            r = await dali.writeMSeed(rec)
            assert r.type == "OK", str(r)
            sent[int(r.value)] = rec.pack()
        if proto == "1.1":
            r = await dali.match("FDSN:XX_.*")
            assert r.type == "OK" and int(r.value) == 1, str(r)
        r = await dali.positionEarliest()
        assert r.type == "OK", str(r)
        got = 0
        async for pkt in dali.stream():
            assert pkt.type == "PACKET", str(pkt)
            assert pkt.streamId == want_id, pkt.streamId
            assert bytes(pkt.data) == sent[int(pkt.packetId)]
            got += 1
            if got == n:
                break
        info = await dali.parsedInfoStatus()
        print(f"ok {got} {sorted(sent)} {info['Status']['TotalStreams']}")

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simpledali_writes_with_ack_and_streams_back() {
    simpledali_round_trip("1.0").await;
}

/// DataLink 1.1 names the same records `FDSN:XX_PYSTA_00_H_H_Z/MSEED`; they land under
/// the same srcname, and a client that matches by FDSN id gets FDSN ids back. simpledali
/// speaks 1.1 because the ID reply says `DLPROTO:1.1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simpledali_with_fdsn_source_ids_writes_and_streams_back() {
    simpledali_round_trip("1.1").await;
}

async fn simpledali_round_trip(proto: &'static str) {
    let Some(py) = oracle::python(&["simpledali", "simplemseed"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (srv, dl) = server(dir.path(), "");
    let port = dl.port().to_string();
    let out = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || oracle::run_python(&py, SIMPLEDALI, &[port.as_str(), "5", proto], &dir)
    })
    .await
    .unwrap();
    let line = out.lines().last().unwrap_or_default();
    assert!(line.starts_with("ok 5 [1, 2, 3, 4, 5] 1"), "{out}");
    // The records are in the orb under the orb's name for them.
    let mut native = connect(&srv, "e2e-get").await;
    let p = native.get(1).await.unwrap().unwrap();
    assert_eq!(p.srcname.as_str(), "XX_PYSTA_HHZ_00/SEED");
    // simplemseed writes int32 samples little-endian; our decoder reads them back to
    // the samples the script sent (packet 1 is i = 0: samples k % 100).
    let chans = formats::payload::seed::decode(&p.payload).expect("a miniSEED record");
    assert_eq!(chans.len(), 1);
    assert_eq!(
        (chans[0].net.as_str(), chans[0].sta.as_str()),
        ("XX", "PYSTA")
    );
    assert_eq!(chans[0].samples, (0..50).collect::<Vec<i32>>());
    assert_eq!(chans[0].samprate, 100.0);
}

#[tokio::test]
async fn a_killed_client_is_told_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, dl) = server(dir.path(), "");
    let mut c = DlClient::connect(dl).await;
    c.request(Command::Id("victim:x:1:x")).await;
    c.send(Command::Stream).await;
    let mut admin = connect(&srv, "e2e-admin").await;
    let clients = admin.clients().await.unwrap().clients;
    let victim = clients.iter().find(|c| c.what == "victim").expect("listed");
    admin.kill_client(victim.id).await.unwrap();
    match c.try_recv().await {
        Some(DlReply::Error(_, msg)) => assert!(msg.contains("administrator"), "{msg}"),
        other => panic!("killed client: {other:?}"),
    }
    assert_eq!(c.try_recv().await, None);
}

#[tokio::test]
async fn a_reload_that_withdraws_read_access_ends_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, dl) = server(dir.path(), "");
    let mut c = DlClient::connect(dl).await;
    let mut native = connect(&srv, "e2e-admin").await;
    let name = SrcName::new("XX_STA01/EXP").unwrap();
    let first = native.put(&name, Time::from_micros(1), b"a").await.unwrap();
    // Position on the stored packet before streaming: a STREAM sent first could reach the
    // server after the put and, starting at the newest packet, never see it.
    c.request(Command::PositionSet(Position::Earliest)).await;
    c.send(Command::Stream).await;
    assert_eq!(pktid(&c.recv().await), first);
    std::fs::write(
        dir.path().join("orb.toml"),
        "[access]\nread = [\"10.0.0.0/8\"]\n",
    )
    .unwrap();
    native.reload().await.unwrap();
    native.put(&name, Time::from_micros(2), b"b").await.unwrap();
    match c.recv().await {
        DlReply::Error(_, msg) => assert!(msg.contains("read access"), "{msg}"),
        other => panic!("after the reload: {other:?}"),
    }
    // Still connected; reads are now refused and counted.
    match c.request(Command::Read(first)).await {
        DlReply::Error(_, msg) => assert!(msg.contains("access.read"), "{msg}"),
        other => panic!("READ without read access: {other:?}"),
    }
    assert_eq!(native.stat().await.unwrap().refused.reads_not_allowed, 1);
}

/// A DataLink reader the ring laps skips to the oldest packet still held (DataLink has
/// no way to say packets were lost), and the loss is counted where operators look.
#[tokio::test]
async fn a_lapped_datalink_reader_skips_to_the_oldest_and_the_loss_is_counted() {
    const PAYLOAD: usize = 4000;
    let dir = tempfile::tempdir().unwrap();
    let (srv, dl) = server(dir.path(), "");
    let mut w = connect(&srv, "e2e-writer").await;
    let src = SrcName::new("XX_GAP/EXP").unwrap();
    let payload = |seq| orb_tests::make_payload(seq, PAYLOAD);
    assert_eq!(
        w.put(&src, Time::from_micros(0), &payload(0))
            .await
            .unwrap(),
        1
    );
    let mut c = DlClient::connect(dl).await;
    c.request(Command::Id("lapped:x:1:x")).await;
    assert!(matches!(
        c.request(Command::PositionSet(Position::Earliest)).await,
        DlReply::Ok(1, _)
    ));
    // About 3 MiB through the 1 MiB ring while the reader holds its position.
    let n = 3 * (1u64 << 20) / PAYLOAD as u64;
    let packets = (1..=n)
        .map(|seq| formats::Packet::new(src.clone(), Time::from_micros(seq as i64), payload(seq)));
    w.put_pipelined(packets, 32).await.unwrap();
    let oldest = w
        .stat()
        .await
        .unwrap()
        .ring
        .oldest
        .expect("not empty")
        .pktid;
    assert!(
        oldest > 2,
        "the ring should have been lapped (oldest {oldest})"
    );

    c.send(Command::Stream).await;
    for want in oldest..=n + 1 {
        let r = c.recv().await;
        assert_eq!(pktid(&r), want);
        let DlReply::Packet { data, .. } = r else {
            unreachable!()
        };
        assert_eq!(data, payload(want - 1), "packet {want} intact");
    }
    end_stream(&mut c).await;
    let stat = w.stat().await.unwrap();
    assert_eq!(stat.totals.gaps, 1);
    assert_eq!(stat.totals.gap_packets, oldest - 1);
    let rows = w.clients().await.unwrap().clients;
    let row = rows.iter().find(|r| r.what == "lapped").expect("listed");
    assert_eq!(row.gaps, 1);
}

/// A refused DataLink client that already sent its first commands reads the refusal,
/// and the refusal is counted. (The accept loop also drains such input before closing,
/// so that stacks which drop received data on a reset keep the ERROR; Linux loopback
/// keeps it either way, so this test does not pin the drain itself.)
#[tokio::test]
async fn a_refused_client_that_already_sent_commands_reads_the_refusal() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let (srv, dl) = server(dir.path(), "[access]\nconnect_deny = [\"127.0.0.2/32\"]\n");
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut s = orb_tests::harness::guard("connect", sock.connect(dl))
        .await
        .unwrap();
    let mut first = Vec::new();
    Command::Id("refused:me:1:x").encode(&mut first).unwrap();
    // Input the server never answers: it only refuses.
    for i in 0..64 {
        write("XX_STA_00_BHZ/MSEED", i, false, &[0u8; 200])
            .encode(&mut first)
            .unwrap();
    }
    s.write_all(&first).await.unwrap();
    // Let the refusal and the close happen before reading, as a slow client would.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut got = Vec::new();
    let r = orb_tests::harness::guard("refusal", s.read_to_end(&mut got)).await;
    assert!(r.is_ok(), "reading the refusal failed: {r:?} after {got:?}");
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains("ERROR") && text.contains("127.0.0.2"),
        "{text}"
    );
    let mut native = connect(&srv, "e2e").await;
    assert_eq!(native.stat().await.unwrap().refused.connects_denied, 1);
}
