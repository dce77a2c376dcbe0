//! DataLink and SeedLink over WebSocket at `/datalink` and `/seedlink` on the HTTP port
//! (docs/HTTP.md, "WebSocket"), through a real `orbserver --http` fed by orbsim:
//! seisplotjs itself (from npm, run in Node with the `ws` package) streams and decodes
//! the miniSEED to orbsim's samples; a Rust WebSocket client checks the framing (one
//! protocol message per WebSocket message, input a stream) and the client table; bad
//! input is refused with the right status or close code, counted, and never stops the
//! native port.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

use formats::datalink::{decode_reply, Command as DlCommand, Decoded, Position, Reply};
use formats::{SrcName, Time};
use futures_util::{SinkExt as _, StreamExt as _};
use orb_tests::harness::{bin, connect, guard, start_with_config, OrbServer, GUARD};
use orb_tests::oracle;
use orbclient::sim::{Format, SimConfig, Simulator};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const START: &str = "2026-11-22T10:00:00Z";
const SIM_SEED: u64 = 7;
/// `limits.max_packet` of the test servers: a WebSocket DataLink message may be this
/// plus 1 KiB.
const MAX_PACKET: usize = 64 * 1024;

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A server with an HTTP port, a small `max_packet` and `output_buffer`.
fn server() -> (tempfile::TempDir, OrbServer) {
    let dir = tempfile::tempdir().unwrap();
    let srv = start_with_config(
        dir.path(),
        "[limits]\nmax_packet = \"64KiB\"\noutput_buffer = \"64KiB\"\n",
        &[
            "--ring-size",
            "4MiB",
            "--flush",
            "none",
            "--http",
            "127.0.0.1:0",
        ],
    );
    (dir, srv)
}

/// Puts `rounds` rounds of 2 seismic and 1 pressure station as miniSEED with orbsim.
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
            &SIM_SEED.to_string(),
            "--start",
            START,
            "--format",
            "seed",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run orbsim");
    assert!(
        out.status.success(),
        "orbsim: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn simulator() -> Simulator {
    let mut config = SimConfig::network("XX", 2, 1, 1.0);
    config.format = Format::Seed;
    Simulator::new(config, SIM_SEED, Time::parse_iso8601(START).unwrap()).unwrap()
}

/// Samples by (station, channel), then by time (µs).
type Samples = BTreeMap<(String, String), BTreeMap<i64, i32>>;

/// Every channel's samples as orbsim made them; and how many packets and 512-byte
/// records it put for each station.
fn expected(rounds: u64) -> (Samples, BTreeMap<String, (u64, u64)>) {
    let sim = simulator();
    let (mut samples, mut counts) = (BTreeMap::new(), BTreeMap::new());
    for k in 0..rounds {
        for (si, st) in sim.stations().iter().enumerate() {
            for ch in sim.channels(si, k) {
                let m: &mut BTreeMap<i64, i32> = samples
                    .entry((ch.sta.clone(), ch.chan.clone()))
                    .or_default();
                for (i, &v) in ch.samples.iter().enumerate() {
                    m.insert(ch.sample_time(i).as_micros(), v);
                }
            }
            let c: &mut (u64, u64) = counts.entry(st.name.clone()).or_default();
            for p in sim.packets(si, k).unwrap() {
                c.0 += 1;
                c.1 += (p.payload.len() / 512) as u64;
            }
        }
    }
    (samples, counts)
}

/// The samples of the records a script printed (JSON lines), by channel and time.
fn samples_of(lines: &str) -> (Samples, usize) {
    let mut got = Samples::new();
    let mut done = 0;
    for line in lines.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if let Some(n) = v.get("done") {
            done = n.as_u64().unwrap() as usize;
            continue;
        }
        let start = v["startMillis"].as_i64().unwrap() * 1000;
        let rate = v["rate"].as_f64().unwrap();
        let m = got
            .entry((
                v["sta"].as_str().unwrap().to_owned(),
                v["chan"].as_str().unwrap().to_owned(),
            ))
            .or_default();
        for (i, s) in v["samples"].as_array().unwrap().iter().enumerate() {
            let t = start + (i as f64 * 1e6 / rate).round() as i64;
            assert!(
                m.insert(t, s.as_i64().unwrap() as i32).is_none(),
                "a sample came twice: {line}"
            );
        }
    }
    (got, done)
}

/// seisplotjs's `DataLinkConnection`, in Node over the `ws` package, streams every
/// packet orbsim put and decodes each to exactly orbsim's samples.
#[test]
fn seisplotjs_datalink_streams_orbsims_samples() {
    let Some((node, js)) = oracle::node_packages(&["seisplotjs", "ws"]) else {
        return;
    };
    let (_dir, srv) = server();
    let rounds = 3;
    simulate(&srv, rounds);
    let (want, counts) = expected(rounds);
    let packets: u64 = counts.values().map(|c| c.0).sum();
    let url = format!("ws://{}/datalink", srv.http.unwrap());
    let out = oracle::run(
        &node,
        &["datalink.mjs", &url, "^FDSN:XX_", &packets.to_string()],
        &js,
    );
    let (got, done) = samples_of(&out);
    assert_eq!(done as u64, packets);
    assert_eq!(
        got, want,
        "seisplotjs decoded other samples than orbsim made"
    );
}

/// seisplotjs's SeedLink 3.1 and 4.0 connections (subprotocols `SeedLink3.1` and
/// `SeedLink4.0`) negotiate, stream a station from a start time, and decode each record
/// to orbsim's samples.
#[test]
fn seisplotjs_seedlink_3_and_4_stream_orbsims_samples() {
    let Some((node, js)) = oracle::node_packages(&["seisplotjs", "ws"]) else {
        return;
    };
    let (_dir, srv) = server();
    let rounds = 3;
    simulate(&srv, rounds);
    let (want, counts) = expected(rounds);
    let want: BTreeMap<_, _> = want
        .into_iter()
        .filter(|((s, _), _)| s == "STA01")
        .collect();
    let records = counts["STA01"].1.to_string();
    let url = format!("ws://{}/seedlink", srv.http.unwrap());
    let v3 = oracle::run(
        &node,
        &[
            "seedlink.mjs",
            "3",
            &url,
            &records,
            "STATION STA01 XX",
            "TIME 2026,11,22,10,00,00",
        ],
        &js,
    );
    let v4 = oracle::run(
        &node,
        &[
            "seedlink.mjs",
            "4",
            &url,
            &records,
            "STATION XX_STA01",
            "DATA ALL 2026-11-22T10:00:00Z",
        ],
        &js,
    );
    for (version, out) in [("3.1", v3), ("4.0", v4)] {
        let (got, done) = samples_of(&out);
        assert_eq!(done.to_string(), records, "SeedLink {version}");
        assert_eq!(
            got, want,
            "SeedLink {version}: other samples than orbsim made"
        );
    }
}

/// A WebSocket client of `path` offering `subprotocol`; the subprotocol the server
/// chose.
async fn ws_connect(http: SocketAddr, path: &str, subprotocol: &str) -> (Ws, Option<String>) {
    let mut req = format!("ws://{http}{path}").into_client_request().unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", subprotocol.parse().unwrap());
    let (ws, resp) = guard("WebSocket connect", tokio_tungstenite::connect_async(req))
        .await
        .expect("WebSocket handshake");
    let chosen = resp
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_owned());
    (ws, chosen)
}

fn dl(c: DlCommand<'_>) -> Vec<u8> {
    let mut b = Vec::new();
    c.encode(&mut b).unwrap();
    b
}

/// The next data message (pings and pongs skipped); `None` at the close.
async fn next_binary(ws: &mut Ws) -> Option<Vec<u8>> {
    loop {
        match guard("a WebSocket message", ws.next()).await? {
            Ok(Message::Binary(b)) => return Some(b.to_vec()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(Message::Text(t)) => panic!("the server sent text: {t}"),
            Ok(_) => {}
        }
    }
}

/// The close frame's code the server ends with (data messages before it skipped).
async fn close_code(ws: &mut Ws) -> Option<CloseCode> {
    loop {
        match guard("the close", ws.next()).await? {
            Ok(Message::Close(f)) => return f.map(|f| f.code),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// One message decoded as exactly one whole DataLink reply, as `(kind, value)`.
fn one_reply(m: &[u8]) -> (String, i64) {
    match decode_reply(m, 1 << 20) {
        Ok(Decoded::Done(r, len)) => {
            assert_eq!(
                len,
                m.len(),
                "one whole DataLink message per WebSocket message"
            );
            match r {
                Reply::Id(_) => ("ID".into(), 0),
                Reply::Ok { value, .. } => ("OK".into(), value),
                Reply::Error { value, message } => (format!("ERROR {message}"), value),
                Reply::Packet { pktid, .. } => ("PACKET".into(), pktid as i64),
                _ => ("OTHER".into(), 0),
            }
        }
        other => panic!("not one DataLink message: {other:?}"),
    }
}

/// `GET path` over plain HTTP/1.1: status and body.
fn http_get(addr: SocketAddr, path: &str, extra: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(GUARD)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    let status = got
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = got.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

/// `orb_refusals_total{kind}` in `/metrics`.
fn refusals(http: SocketAddr, kind: &str) -> u64 {
    let (status, body) = http_get(http, "/metrics", "");
    assert_eq!(status, 200);
    let needle = format!("orb_refusals_total{{kind=\"{kind}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .unwrap_or_else(|| panic!("no {needle} in /metrics"))
        .trim()
        .parse()
        .unwrap()
}

/// The WebSocket rows of `/connections/json`: (`type`, `transmit_bytes`).
fn ws_rows(http: SocketAddr) -> Vec<(String, u64)> {
    let (status, body) = http_get(http, "/connections/json", "");
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    doc["connections"]["client"]
        .as_array()
        .expect("a list of connections")
        .iter()
        .filter(|r| r["type"].as_str().is_some_and(|t| t.ends_with("-ws")))
        .map(|r| {
            (
                r["type"].as_str().unwrap().to_owned(),
                r["transmit_bytes"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_datalink_message_per_websocket_message_whatever_the_input_messages_hold() {
    let (_dir, srv) = server();
    simulate(&srv, 2);
    let packets = expected(2).1.values().map(|c| c.0).sum::<u64>();
    let http = srv.http.unwrap();
    let (mut ws, chosen) = ws_connect(http, "/datalink", "DataLink1.0").await;
    assert_eq!(
        chosen.as_deref(),
        Some("DataLink1.0"),
        "the subprotocol is echoed"
    );
    // ID and MATCH in one message; POSITION split across two, the second also
    // carrying STREAM: input is a byte stream.
    let mut first = dl(DlCommand::Id("rust:test:1:x"));
    first.extend(dl(DlCommand::Match("XX_")));
    ws.send(Message::binary(first)).await.unwrap();
    let pos = dl(DlCommand::PositionSet(Position::Earliest));
    ws.send(Message::binary(pos[..5].to_vec())).await.unwrap();
    let mut rest = pos[5..].to_vec();
    rest.extend(dl(DlCommand::Stream));
    ws.send(Message::binary(rest)).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 3 + packets as usize {
        let m = next_binary(&mut ws).await.expect("a message");
        got.push(one_reply(&m));
    }
    assert_eq!(got[0].0, "ID");
    assert_eq!(got[1], ("OK".into(), 8), "MATCH: 8 streams");
    assert_eq!(got[2], ("OK".into(), 1), "positioned at the oldest");
    let pktids: Vec<i64> = got[3..]
        .iter()
        .map(|(k, v)| {
            assert_eq!(k, "PACKET");
            *v
        })
        .collect();
    assert_eq!(pktids, (1..=packets as i64).collect::<Vec<_>>());
    // The client table shows the WebSocket protocol (admission, limits and KILL are
    // those of the HTTP connection it upgraded).
    let rows = tokio::task::spawn_blocking(move || ws_rows(http))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "datalink-ws");
    // More packets stream as they arrive.
    let mut c = connect(&srv, "e2e-ws-writer").await;
    let name = SrcName::new("XX_LIVE/EXP").unwrap();
    let pktid = c.put(&name, Time::from_micros(1), b"live").await.unwrap();
    let m = next_binary(&mut ws).await.expect("the live packet");
    assert_eq!(one_reply(&m), ("PACKET".into(), pktid as i64));
    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seedlink_replies_and_frames_are_messages_of_their_own() {
    let (_dir, srv) = server();
    simulate(&srv, 2);
    let records = expected(2).1["STA01"].1;
    let http = srv.http.unwrap();
    let (mut ws, chosen) = ws_connect(http, "/seedlink", "SeedLink3.1").await;
    assert_eq!(chosen.as_deref(), Some("SeedLink3.1"));
    // Two commands in one text message, as a browser may send them.
    ws.send(Message::text("HELLO\r\nSTATION STA01 XX\r\n"))
        .await
        .unwrap();
    let hello = next_binary(&mut ws).await.unwrap();
    let hello = String::from_utf8(hello).unwrap();
    assert_eq!(
        hello.lines().count(),
        2,
        "HELLO's two lines in one message: {hello:?}"
    );
    assert_eq!(next_binary(&mut ws).await.unwrap(), b"OK\r\n");
    ws.send(Message::text(
        "TIME 2026,11,22,10,00,00 2026,11,22,10,00,02\r\nEND\r\n",
    ))
    .await
    .unwrap();
    assert_eq!(next_binary(&mut ws).await.unwrap(), b"OK\r\n");
    let mut frames = 0;
    loop {
        let m = next_binary(&mut ws).await.expect("frames, then END");
        if m == b"END" {
            break;
        }
        assert_eq!(m.len(), 8 + 512, "one whole data frame per message");
        assert_eq!(&m[..2], b"SL");
        frames += 1;
    }
    assert_eq!(frames, records);
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Normal));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_upgrades_oversized_messages_and_garbage_are_refused_and_counted() {
    let (_dir, srv) = server();
    let http = srv.http.unwrap();
    let mut native = connect(&srv, "e2e-bystander").await;

    // Not a WebSocket upgrade: 426, counted.
    let (status, body) = tokio::task::spawn_blocking(move || http_get(http, "/datalink", ""))
        .await
        .unwrap();
    assert_eq!(status, 426, "{body}");
    let (status, _) = tokio::task::spawn_blocking(move || {
        http_get(
            http,
            "/seedlink",
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        )
    })
    .await
    .unwrap();
    assert_eq!(status, 426, "WebSocket version 8");

    // A message over max_packet + 1 KiB: closed with 1009.
    let (mut ws, _) = ws_connect(http, "/datalink", "DataLink1.0").await;
    let big = vec![b'x'; MAX_PACKET + 1024 + 1];
    let _ = ws.send(Message::binary(big)).await;
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Size));
    // One at the limit is the session's to judge: a WRITE of exactly max_packet is
    // stored.
    let (mut ws, _) = ws_connect(http, "/datalink", "DataLink1.0").await;
    let payload = vec![7u8; MAX_PACKET];
    let write = dl(DlCommand::Write(formats::datalink::Write {
        streamid: "XX_BIG/EXP",
        start: Time::from_micros(1),
        end: Time::from_micros(1),
        ack: true,
        payload: &payload,
    }));
    ws.send(Message::binary(write)).await.unwrap();
    let m = next_binary(&mut ws).await.unwrap();
    assert_eq!(one_reply(&m).0, "OK", "a WRITE of max_packet is taken");

    // Garbage in a text message on /datalink: DataLink's own refusal, then the close.
    let (mut ws, _) = ws_connect(http, "/datalink", "DataLink1.0").await;
    ws.send(Message::text("GET / HTTP/1.0\r\n\r\n"))
        .await
        .unwrap();
    let m = next_binary(&mut ws).await.expect("an ERROR");
    assert!(one_reply(&m).0.starts_with("ERROR"), "{:?}", one_reply(&m));
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Policy));

    // A text frame that is not UTF-8: closed with 1007, counted.
    let (mut ws, _) = ws_connect(http, "/seedlink", "SeedLink3.1").await;
    let frame = Frame::message(
        vec![0xff, 0xfe, b'\r', b'\n'],
        OpCode::Data(Data::Text),
        true,
    );
    ws.send(Message::Frame(frame)).await.unwrap();
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Invalid));

    // The native port served all along.
    let name = SrcName::new("XX_NATIVE/EXP").unwrap();
    let pktid = guard("native put", native.put(&name, Time::from_micros(1), b"n"))
        .await
        .unwrap();
    let back = guard("native get", native.get(pktid)).await.unwrap();
    assert_eq!(back.map(|p| p.payload.to_vec()), Some(b"n".to_vec()));
    let counts = tokio::task::spawn_blocking(move || {
        (
            refusals(http, "ws_bad_upgrade"),
            refusals(http, "ws_too_large"),
            refusals(http, "ws_bad_frame"),
        )
    })
    .await
    .unwrap();
    assert_eq!(counts, (2, 1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_small_messages_and_a_reader_that_never_reads_leave_the_other_ports_serving() {
    let (_dir, srv) = server();
    let http = srv.http.unwrap();
    // A streaming reader that never reads.
    let (mut stalled, _) = ws_connect(http, "/datalink", "DataLink1.0").await;
    let mut go = dl(DlCommand::Id("stalled:x:1:y"));
    go.extend(dl(DlCommand::Stream));
    stalled.send(Message::binary(go)).await.unwrap();
    // A flood of small messages each asking for a reply, never reading either: the
    // server stops reading it when its replies back up, so the flood ends in a send
    // that waits; the task is dropped at the end.
    let (mut flood, _) = ws_connect(http, "/seedlink", "SeedLink3.1").await;
    let flooder = tokio::spawn(async move {
        for _ in 0..1_000_000u32 {
            if flood.send(Message::text("HELLO\r\n")).await.is_err() {
                break;
            }
        }
    });
    // Meanwhile the native port takes 32 MiB of packets (eight times the ring, far
    // more than socket buffers hold) and a native reader streams them all: each pktid
    // arrives or is reported lapped (a reader on a loaded machine may fall a ring
    // behind), none goes missing. The reap ends once nothing came for a while: an end
    // condition, not a timing assertion.
    let mut w = connect(&srv, "e2e-writer").await;
    let reader = connect(&srv, "e2e-reader").await;
    let name = SrcName::new("XX_BULK/EXP").unwrap();
    let payload = vec![1u8; 8 * 1024];
    let n = 4096u64;
    let mut reap = guard(
        "reap",
        reader.reap(orbclient::ReapOptions {
            timeout: Some(std::time::Duration::from_secs(3)),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    let writes = async {
        let mut last = 0;
        for i in 0..n {
            last = w
                .put(&name, Time::from_micros(i as i64), &payload)
                .await
                .unwrap();
        }
        last
    };
    let reads = async {
        let (mut packets, mut lost) = (0u64, 0u64);
        while let Some(ev) = guard("reap next", reap.next()).await.unwrap() {
            match ev {
                orbclient::ReapEvent::Packet(_) => packets += 1,
                orbclient::ReapEvent::Gap { first, last, .. } => lost += last - first + 1,
            }
        }
        (packets, lost)
    };
    let (last, (packets, lost)) = tokio::join!(writes, reads);
    assert_eq!(last, n, "pktids 1..=n");
    assert!(packets > 0);
    assert_eq!(packets + lost, n, "every packet reaped or reported lapped");
    // The stalled reader was held back by its output limit, not buffered for: the
    // server sent it far less than was put.
    let total = n * payload.len() as u64;
    let rows = tokio::task::spawn_blocking(move || ws_rows(http))
        .await
        .unwrap();
    let sent: Vec<u64> = rows
        .iter()
        .filter(|(kind, _)| kind == "datalink-ws")
        .map(|(_, sent)| *sent)
        .collect();
    assert_eq!(sent.len(), 1, "{rows:?}");
    assert!(sent[0] < total / 2, "sent {} of {total} bytes", sent[0]);
    flooder.abort();
    drop(stalled);
    // And the HTTP port itself still answers.
    let (status, _) = tokio::task::spawn_blocking(move || http_get(http, "/id", ""))
        .await
        .unwrap();
    assert_eq!(status, 200);
}

/// An administrator's KILL reaches a WebSocket client as on the TCP port: DataLink's
/// `ERROR` farewell as a message, then the close (1008); the connection leaves the
/// client table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_kills_a_websocket_client() {
    let (_dir, srv) = server();
    let http = srv.http.unwrap();
    let (mut ws, _) = ws_connect(http, "/datalink", "DataLink1.0").await;
    ws.send(Message::binary(dl(DlCommand::Id("killme:x:1:y"))))
        .await
        .unwrap();
    assert_eq!(one_reply(&next_binary(&mut ws).await.unwrap()).0, "ID");
    let mut admin = connect(&srv, "e2e-admin").await;
    let clients = guard("CLIENTS", admin.clients()).await.unwrap();
    let id = clients
        .clients
        .iter()
        .find(|c| c.client_id == "killme:x:1:y")
        .expect("the WebSocket client in CLIENTS")
        .id;
    guard("KILL", admin.kill_client(id)).await.unwrap();
    let m = next_binary(&mut ws).await.expect("the farewell");
    let (kind, _) = one_reply(&m);
    assert!(kind.contains("closed by an administrator"), "{kind}");
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Policy));
    orb_tests::harness::wait_until("the row gone", || async {
        tokio::task::spawn_blocking(move || ws_rows(http))
            .await
            .unwrap()
            .is_empty()
    })
    .await;
}
