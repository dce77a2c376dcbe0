//! Access control end to end (docs/SECURITY.md), with real orbserver processes reading a
//! config file in a temporary directory: writers without write rights, tokens bound to
//! srcnames, unknown tokens, oversized packets, pipelined PUT frames at the frame limit
//! and a refused frame of a pipelined put, the connect deny list, admin-only
//! CLIENTS, KILL and RELOAD, and SIGHUP reloads (good and bad). Every refusal must come back as an ERROR
//! with advice, be counted in STAT and leave nothing in the ring, while other clients
//! keep being served. Addresses other than 127.0.0.1 are reached by binding the client
//! socket to 127.0.0.2 (Linux routes all of 127/8 to loopback).

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use formats::proto::info::ServerStat;
use formats::proto::{decode, Body, Decoded, ErrorCode};
use formats::{Packet, SrcName, Time};
use orb_tests::harness::{bin, encode_frame, guard, hangup, start_logged, wait_for_log, OrbServer};
use orbclient::{ClientError, ClientOptions, OrbClient, ReapEvent, ReapOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const STA01_TOKEN: &str = "sta01-Zq8w3Rk2Lm9Xv4Tn";

/// The config line `orbserver --hash-token` prints for `token`.
fn hash_line(token: &str) -> String {
    let mut child = Command::new(bin("orbserver"))
        .arg("--hash-token")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn orbserver --hash-token");
    writeln!(child.stdin.take().expect("stdin"), "{token}").expect("write the token");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "--hash-token failed");
    let line = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_string();
    assert!(line.starts_with("sha256 = \""), "{line}");
    line
}

/// Options with an explicit token (never the environment's).
fn opts(what: &str, token: Option<&str>) -> ClientOptions {
    ClientOptions {
        token: token.map(str::to_owned),
        request_timeout: Some(Duration::from_secs(30)),
        ..ClientOptions::for_program(what)
    }
}

async fn client(srv: &OrbServer, what: &str, token: Option<&str>) -> OrbClient {
    guard(
        "connect",
        OrbClient::connect(&srv.orb_addr(), &opts(what, token)),
    )
    .await
    .expect("connect")
}

async fn stat(srv: &OrbServer) -> ServerStat {
    let mut c = client(srv, "e2e-stat", None).await;
    guard("stat", c.stat()).await.expect("stat")
}

fn name(s: &str) -> SrcName {
    SrcName::new(s).expect("valid srcname")
}

/// The server's refusal of a request: its code and message.
fn refusal<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (ErrorCode, String) {
    match r {
        Err(ClientError::Server { code, message }) => (code, message),
        other => panic!("expected an ERROR from the server, got {other:?}"),
    }
}

/// A raw connection from `local` (e.g. 127.0.0.2) that sends HELLO and returns the
/// first frame's kind and, for ERROR, code and message.
async fn raw_hello_from(local: &str, srv: SocketAddr) -> (u8, Option<(ErrorCode, String)>) {
    let sock = TcpSocket::new_v4().expect("socket");
    sock.bind(format!("{local}:0").parse().expect("address"))
        .expect("bind the client address");
    let mut s = guard("connect", sock.connect(srv)).await.expect("connect");
    let hello = encode_frame(
        1,
        Body::Hello {
            version: 1,
            access: formats::proto::Access {
                read: true,
                write: false,
            },
            pid: 1,
            who: "e2e@host",
            what: "e2e-raw",
            token: None,
        },
    );
    s.write_all(&hello).await.expect("send HELLO");
    let mut buf = BytesMut::new();
    loop {
        if let Decoded::Frame(f, _) = decode(&buf, 1 << 20).expect("a valid frame") {
            let kind = f.body.kind();
            let err = match f.body {
                Body::Error { code, message } => Some((code, message.to_string())),
                _ => None,
            };
            return (kind, err);
        }
        let n = guard("reply", s.read_buf(&mut buf)).await.expect("read");
        assert!(n > 0, "closed without a reply");
    }
}

fn config(dir: &Path, text: &str) -> OrbServer {
    start_logged(dir, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_without_write_rights_is_refused_counted_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let srv = config(dir.path(), "[access]\nwrite = []\n");
    let mut w = client(&srv, "e2e-writer", None).await;
    let (code, msg) = refusal(w.put(&name("XX_STA01_BHZ"), Time::now(), b"x").await);
    assert_eq!(code, ErrorCode::NotAllowed);
    assert!(
        msg.contains("ORB_TOKEN") && msg.contains("nothing was stored"),
        "{msg}"
    );
    // The session stays usable, and reading is still allowed.
    let pos = guard("tell", w.tell()).await.expect("tell");
    assert_eq!(pos, 1);
    let st = stat(&srv).await;
    assert_eq!(st.refused.writes_not_allowed, 1);
    assert_eq!(st.ring.npkts, 0);
    let log = wait_for_log(dir.path(), "refused a PUT", 1);
    assert!(
        log.contains("127.0.0.1:"),
        "the log names the address: {log}"
    );
    // orbstat shows the counters.
    let out = Command::new(bin("orbstat"))
        .arg(srv.orb())
        .env_remove("ORB_TOKEN")
        .output()
        .expect("run orbstat");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "orbstat failed: {text}");
    assert!(
        text.contains("writes 1 not allowed, 0 foreign srcname"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_writes_its_own_srcnames_only() {
    let dir = tempfile::tempdir().unwrap();
    let srv = config(
        dir.path(),
        &format!(
            "[access]\nwrite = []\n[[access.token]]\nname = \"XX_STA01\"\n{}\nwrite = \"XX_STA01_.*\"\n",
            hash_line(STA01_TOKEN)
        ),
    );
    let mut w = client(&srv, "e2e-station", Some(STA01_TOKEN)).await;
    let first = guard("put", w.put(&name("XX_STA01_BHZ"), Time::now(), b"ok"))
        .await
        .expect("the token's own srcname is stored");
    // A foreign srcname, alone or in a batch with good ones: refused, nothing stored.
    let (code, msg) = refusal(w.put(&name("YY_STA01_BHZ"), Time::now(), b"no").await);
    assert_eq!(code, ErrorCode::NotAllowed);
    assert!(
        msg.contains("XX_STA01") && msg.contains("YY_STA01_BHZ"),
        "{msg}"
    );
    let batch = [
        Packet::new(name("XX_STA01_BHN"), Time::now(), &b"a"[..]),
        Packet::new(name("XX_STA02_BHN"), Time::now(), &b"b"[..]),
    ];
    let (code, _) = refusal(w.put_batch(&batch, false).await);
    assert_eq!(code, ErrorCode::NotAllowed);
    // The session goes on.
    let next = guard("put", w.put(&name("XX_STA01_BHE"), Time::now(), b"ok"))
        .await
        .expect("put after a refusal");
    assert_eq!(next, first + 1, "nothing was stored in between");
    let st = stat(&srv).await;
    assert_eq!(st.refused.writes_foreign_srcname, 2);
    assert_eq!(st.ring.npkts, 2);
    let mut c = client(&srv, "e2e-sources", None).await;
    let names: Vec<String> = guard("sources", c.sources())
        .await
        .unwrap()
        .sources
        .into_iter()
        .map(|s| s.srcname)
        .collect();
    assert_eq!(names, ["XX_STA01_BHE", "XX_STA01_BHZ"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_token_is_refused_at_hello_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let srv = config(
        dir.path(),
        &format!(
            "[access]\n[[access.token]]\nname = \"XX_STA01\"\n{}\nwrite = \"XX_STA01_.*\"\n",
            hash_line(STA01_TOKEN)
        ),
    );
    let wrong = format!("{STA01_TOKEN}x");
    let r = guard(
        "connect",
        OrbClient::connect(&srv.orb_addr(), &opts("e2e-wrong", Some(&wrong))),
    )
    .await;
    let (code, msg) = refusal(r);
    assert_eq!(code, ErrorCode::NotAllowed);
    assert!(msg.contains("ORB_TOKEN"), "{msg}");
    assert_eq!(stat(&srv).await.refused.auth_failures, 1);
    wait_for_log(dir.path(), "unknown token", 1);
    // The right token still works.
    let mut ok = client(&srv, "e2e-right", Some(STA01_TOKEN)).await;
    guard("put", ok.put(&name("XX_STA01_BHZ"), Time::now(), b"ok"))
        .await
        .expect("put with the right token");
}

/// A raw PUT frame of one packet.
fn put_frame(tag: u32, srcname: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    let p = formats::proto::PutPacket {
        srcname,
        time: Time::now(),
        payload,
    };
    formats::proto::encode::encode_put(&mut out, tag, false, std::iter::once(p));
    out.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_packets_and_frames_are_refused_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let srv = config(dir.path(), "[limits]\nmax_packet = \"4KiB\"\n");
    let mut other = client(&srv, "e2e-other", None).await;
    // Over raw TCP, since the client library refuses oversized packets itself: a packet
    // over max_packet (refused, the session goes on), one at the limit (stored), then a
    // frame far over the frame limit (refused, only this connection closed).
    let mut raw = TcpStream::connect(srv.addr).await.unwrap();
    let hello = encode_frame(
        1,
        Body::Hello {
            version: 1,
            access: formats::proto::Access {
                read: false,
                write: true,
            },
            pid: 1,
            who: "e2e",
            what: "e2e-huge",
            token: None,
        },
    );
    raw.write_all(&hello).await.unwrap();
    raw.write_all(&put_frame(2, "XX_STA01_BHZ", &[0u8; 8192]))
        .await
        .unwrap();
    raw.write_all(&put_frame(3, "XX_STA01_BHZ", &[0u8; 4096]))
        .await
        .unwrap();
    raw.write_all(&(16u32 << 20).to_le_bytes()).await.unwrap();
    let mut buf = Vec::new();
    guard("close", raw.read_to_end(&mut buf)).await.unwrap();
    let mut frames = Vec::new();
    let mut at = 0;
    while let Ok(Decoded::Frame(f, n)) = decode(&buf[at..], 1 << 20) {
        match f.body {
            Body::Welcome { .. } => frames.push("WELCOME".to_string()),
            Body::PutOk { .. } => frames.push(format!("PUT_OK {}", f.tag)),
            Body::Error { code, message } => {
                assert!(
                    message.contains("max_packet") || message.contains("nothing was stored"),
                    "{message}"
                );
                frames.push(format!("{code:?} {}", f.tag));
            }
            other => panic!("unexpected {other:?}"),
        }
        at += n;
    }
    assert_eq!(
        frames,
        ["WELCOME", "PacketTooLarge 2", "PUT_OK 3", "TooLarge 0"]
    );
    guard(
        "put",
        other.put(&name("XX_STA01_BHZ"), Time::now(), b"still"),
    )
    .await
    .expect("the other connection is still served");
    let st = stat(&srv).await;
    assert_eq!(st.refused.writes_too_large, 2);
    assert_eq!(st.ring.npkts, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deny_list_refuses_a_connection_and_admin_gates_clients() {
    let dir = tempfile::tempdir().unwrap();
    let srv = config(
        dir.path(),
        "[access]\nconnect_deny = [\"127.0.0.2/32\"]\nadmin = [\"127.0.0.3\"]\n",
    );
    let (kind, err) = raw_hello_from("127.0.0.2", srv.addr).await;
    assert_eq!(kind, formats::proto::kind::ERROR);
    let (code, msg) = err.unwrap();
    assert_eq!(code, ErrorCode::Refused);
    assert!(
        msg.contains("127.0.0.2") && msg.contains("connect_allow"),
        "{msg}"
    );
    let (kind, _) = raw_hello_from("127.0.0.4", srv.addr).await;
    assert_eq!(kind, formats::proto::kind::WELCOME);
    // 127.0.0.1 is not in the admin list: CLIENTS is refused, STAT is not.
    let mut c = client(&srv, "e2e-admin", None).await;
    let (code, msg) = refusal(c.clients().await);
    assert_eq!(code, ErrorCode::NotAllowed);
    assert!(msg.contains("access.admin"), "{msg}");
    let st = guard("stat", c.stat()).await.unwrap();
    assert_eq!(st.refused.connects_denied, 1);
    assert_eq!(st.refused.admin_not_allowed, 1);
    let log = wait_for_log(dir.path(), "refused connection", 1);
    assert!(log.contains("127.0.0.2:"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_changes_the_rules_without_dropping_a_reader() {
    let dir = tempfile::tempdir().unwrap();
    let before = "[access]\nwrite = []\n";
    let srv = config(dir.path(), before);
    let token = hash_line(STA01_TOKEN);
    // A reader streaming from the start, and a writer that may not write yet.
    let reader = client(&srv, "e2e-reader", None).await;
    let mut stream = guard("reap", reader.reap(ReapOptions::default()))
        .await
        .expect("reap");
    let mut w = client(&srv, "e2e-writer", None).await;
    let (code, _) = refusal(w.put(&name("XX_STA01_BHZ"), Time::now(), b"no").await);
    assert_eq!(code, ErrorCode::NotAllowed);
    assert_eq!(
        raw_hello_from("127.0.0.2", srv.addr).await.0,
        formats::proto::kind::WELCOME
    );

    // Reload: loopback may write, 127.0.0.2 may no longer connect, a token appears.
    std::fs::write(
        dir.path().join("orbserver.toml"),
        format!(
            "[access]\nwrite = [\"127.0.0.0/8\"]\nconnect_deny = [\"127.0.0.2\"]\n\
             [[access.token]]\nname = \"XX_STA01\"\n{token}\nwrite = \"XX_STA01_.*\"\n"
        ),
    )
    .unwrap();
    hangup(&srv);
    wait_for_log(dir.path(), "access rules reloaded", 1);
    // The existing writer's next PUT follows the new rules; so does a new connection.
    let p1 = guard("put", w.put(&name("XX_STA01_BHZ"), Time::now(), b"1"))
        .await
        .expect("the same session may write after the reload");
    let (code, _) = raw_hello_from("127.0.0.2", srv.addr).await.1.unwrap();
    assert_eq!(code, ErrorCode::Refused);
    let mut t = client(&srv, "e2e-token", Some(STA01_TOKEN)).await;
    let p2 = guard("put", t.put(&name("XX_STA01_BHN"), Time::now(), b"2"))
        .await
        .expect("the new token works");
    // The reader got both, in order, with no gap and no reconnect.
    for want in [p1, p2] {
        match guard("packet", stream.next()).await.expect("reap") {
            Some(ReapEvent::Packet(p)) => assert_eq!(p.pktid, want),
            other => panic!("expected packet {want}, got {other:?}"),
        }
    }
    assert!(stream.end().is_none(), "the reap is still running");

    // A broken file on SIGHUP: logged, the rules in force stay.
    std::fs::write(
        dir.path().join("orbserver.toml"),
        "[access]\nwrite = []\nconnect_deny = [\"300.0.0.0/8\"]\n",
    )
    .unwrap();
    hangup(&srv);
    let log = wait_for_log(dir.path(), "reload failed", 1);
    let line = log.lines().find(|l| l.contains("reload failed")).unwrap();
    assert!(
        line.contains("previous access rules stay") && line.contains("access.connect_deny"),
        "{line}"
    );
    let p3 = guard("put", w.put(&name("XX_STA01_BHE"), Time::now(), b"3"))
        .await
        .expect("the previous rules (loopback writes) are still in force");
    match guard("packet", stream.next()).await.expect("reap") {
        Some(ReapEvent::Packet(p)) => assert_eq!(p.pktid, p3),
        other => panic!("expected packet {p3}, got {other:?}"),
    }

    // Narrowing the token applies to the station's next PUT, even for a srcname it has
    // already put on this connection.
    std::fs::write(
        dir.path().join("orbserver.toml"),
        format!(
            "[access]\nwrite = [\"127.0.0.0/8\"]\n\
             [[access.token]]\nname = \"XX_STA01\"\n{token}\nwrite = \"XX_STA01_BHZ\"\n"
        ),
    )
    .unwrap();
    hangup(&srv);
    wait_for_log(dir.path(), "access rules reloaded", 2);
    let (code, _) = refusal(t.put(&name("XX_STA01_BHN"), Time::now(), b"no").await);
    assert_eq!(code, ErrorCode::NotAllowed);
    let st = stat(&srv).await;
    assert_eq!(st.refused.connects_denied, 1);
    assert_eq!(st.refused.writes_not_allowed, 1);
    assert_eq!(st.refused.writes_foreign_srcname, 1);
    assert_eq!(st.ring.npkts, 3);
}

#[test]
fn check_reports_a_bad_access_table_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("orbserver.toml");
    for (text, want) in [
        ("[access]\nwrite = [\"10.0.0.0/40\"]\n", "access.write"),
        (
            "[access]\n[[access.token]]\nname = \"a\"\nsha256 = \"1234\"\nread = true\n",
            "access.token[0].sha256",
        ),
        (
            &format!(
                "[access]\n[[access.token]]\nname = \"a\"\n{}\nwrite = \"XX_(\"\n",
                hash_line(STA01_TOKEN)
            ),
            "access.token[0].write",
        ),
    ] {
        std::fs::write(&cfg, text).unwrap();
        let out = Command::new(bin("orbserver"))
            .arg("--check")
            .arg("--ring")
            .arg(dir.path().join("ring"))
            .arg("--config")
            .arg(&cfg)
            .output()
            .expect("run orbserver --check");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}: --check passed");
        let lines: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(lines[0].contains(want), "{text}: {err}");
    }
    // A token too short to be safe is refused by --hash-token.
    let mut child = Command::new(bin("orbserver"))
        .arg("--hash-token")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "short").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("random"));
}

/// A raw session from `local` (e.g. 127.0.0.2), past its WELCOME, for requests the
/// client library cannot send from another address; with the bytes read past the
/// frames taken so far.
async fn raw_session_from(local: &str, srv: SocketAddr) -> (TcpStream, BytesMut) {
    let sock = TcpSocket::new_v4().expect("socket");
    sock.bind(format!("{local}:0").parse().expect("address"))
        .expect("bind the client address");
    let mut s = guard("connect", sock.connect(srv)).await.expect("connect");
    let hello = encode_frame(
        1,
        Body::Hello {
            version: 1,
            access: formats::proto::Access::default(),
            pid: 1,
            who: "e2e@host",
            what: "e2e-raw-admin",
            token: None,
        },
    );
    s.write_all(&hello).await.expect("send HELLO");
    let mut buf = BytesMut::new();
    let (tag, kind, _) = raw_reply(&mut s, &mut buf).await.expect("a reply to HELLO");
    assert_eq!((tag, kind), (1, formats::proto::kind::WELCOME));
    (s, buf)
}

/// The next frame on a raw session (`buf` keeps bytes read past it, as replies may
/// arrive together): tag, kind and, for ERROR, code and message; `None` once the server
/// closed the connection.
async fn raw_reply(
    s: &mut TcpStream,
    buf: &mut BytesMut,
) -> Option<(u32, u8, Option<(ErrorCode, String)>)> {
    loop {
        if let Decoded::Frame(f, n) = decode(buf, 1 << 20).expect("a valid frame") {
            let kind = f.body.kind();
            let err = match f.body {
                Body::Error { code, message } => Some((code, message.to_string())),
                _ => None,
            };
            let tag = f.tag;
            buf.advance(n);
            return Some((tag, kind, err));
        }
        let n = guard("reply", s.read_buf(buf)).await.expect("read");
        if n == 0 {
            assert!(buf.is_empty(), "closed inside a frame");
            return None;
        }
    }
}

/// The ids CLIENTS lists.
async fn client_ids(admin: &mut OrbClient) -> Vec<u64> {
    let info = guard("clients", admin.clients()).await.expect("CLIENTS");
    info.clients.into_iter().map(|c| c.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_kills_a_reading_client_and_the_others_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let srv = config(dir.path(), "[access]\nadmin = [\"127.0.0.1/32\"]\n");
    let doomed = client(&srv, "e2e-doomed", None).await;
    let doomed_id = doomed.welcome().client_id;
    let mut doomed = guard("reap", doomed.reap(ReapOptions::default()))
        .await
        .expect("reap");
    let survivor = client(&srv, "e2e-survivor", None).await;
    let mut survivor = guard("reap", survivor.reap(ReapOptions::default()))
        .await
        .expect("reap");
    let mut w = client(&srv, "e2e-writer", None).await;
    let mut admin = client(&srv, "e2e-admin", None).await;
    assert!(client_ids(&mut admin).await.contains(&doomed_id));

    guard("kill", admin.kill_client(doomed_id))
        .await
        .expect("an admin may kill");
    // The killed reader's stream ends with the ERROR, not a packet or a reconnect.
    let (code, msg) = refusal(guard("doomed reap", doomed.next()).await);
    assert_eq!(code, ErrorCode::Killed);
    assert!(msg.contains("administrator"), "{msg}");

    // Everyone else goes on.
    let p = guard("put", w.put(&name("XX_STA01_BHZ"), Time::now(), b"after"))
        .await
        .expect("the writer is still served");
    match guard("packet", survivor.next()).await.expect("reap") {
        Some(ReapEvent::Packet(got)) => assert_eq!(got.pktid, p),
        other => panic!("expected packet {p}, got {other:?}"),
    }
    // The close completes on the killed connection's own task: wait for it.
    let mut ids = Vec::new();
    for _ in 0..250 {
        ids = client_ids(&mut admin).await;
        if !ids.contains(&doomed_id) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !ids.contains(&doomed_id),
        "CLIENTS still lists {doomed_id}: {ids:?}"
    );
    assert!(ids.contains(&admin.welcome().client_id));

    // Killing it again finds nobody; killing oneself is refused.
    let (code, msg) = refusal(admin.kill_client(doomed_id).await);
    assert_eq!(code, ErrorCode::NotFound);
    assert!(msg.contains("CLIENTS"), "{msg}");
    let own = admin.welcome().client_id;
    let (code, _) = refusal(admin.kill_client(own).await);
    assert_eq!(code, ErrorCode::BadState);
    let st = guard("stat", admin.stat()).await.unwrap();
    assert_eq!(st.refused.admin_not_allowed, 0);
    let log = wait_for_log(dir.path(), "KILL of client", 1);
    assert!(
        log.contains("e2e-doomed"),
        "the log names the victim: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_admin_is_refused_kill_and_reload_counted_and_nothing_happens() {
    let dir = tempfile::tempdir().unwrap();
    let srv = config(dir.path(), "[access]\nadmin = [\"127.0.0.1/32\"]\n");
    let mut victim = client(&srv, "e2e-victim", None).await;
    let victim_id = victim.welcome().client_id;
    // A file a successful reload would put in force: no one may write.
    std::fs::write(
        dir.path().join("orbserver.toml"),
        "[access]\nadmin = [\"127.0.0.1/32\"]\nwrite = []\n",
    )
    .unwrap();

    let (mut raw, mut buf) = raw_session_from("127.0.0.2", srv.addr).await;
    raw.write_all(&encode_frame(
        2,
        Body::Kill {
            client_id: victim_id,
        },
    ))
    .await
    .unwrap();
    raw.write_all(&encode_frame(3, Body::Reload)).await.unwrap();
    for tag in [2, 3] {
        let (got, kind, err) = raw_reply(&mut raw, &mut buf).await.expect("a reply");
        assert_eq!((got, kind), (tag, formats::proto::kind::ERROR));
        let (code, msg) = err.unwrap();
        assert_eq!(code, ErrorCode::NotAllowed);
        assert!(
            msg.contains("127.0.0.2") && msg.contains("access.admin"),
            "{msg}"
        );
    }
    // The refused session stays usable.
    raw.write_all(&encode_frame(4, Body::Ping { nonce: 1 }))
        .await
        .unwrap();
    let (tag, kind, _) = raw_reply(&mut raw, &mut buf).await.expect("PONG");
    assert_eq!((tag, kind), (4, formats::proto::kind::PONG));

    // Nothing happened: the victim is served, and loopback may still write.
    guard("put", victim.put(&name("XX_STA01_BHZ"), Time::now(), b"x"))
        .await
        .expect("the old rules are in force and the victim is alive");
    let st = stat(&srv).await;
    assert_eq!(st.refused.admin_not_allowed, 2);
    let log = wait_for_log(dir.path(), "refused KILL", 1);
    assert!(
        log.contains("127.0.0.2:"),
        "the log names the address: {log}"
    );
    assert!(!log.contains("access rules reloaded"), "{log}");
}

/// Runs orbstat with `args` and the admin token `token` (or none); returns whether it
/// succeeded, its stdout and its stderr.
fn orbstat(srv: &OrbServer, args: &[&str], token: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new(bin("orbstat"));
    cmd.arg(srv.orb()).args(args).env_remove("ORB_TOKEN");
    if let Some(t) = token {
        cmd.env("ORB_TOKEN", t);
    }
    let out = cmd.output().expect("run orbstat");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_changes_the_rules_and_a_bad_file_keeps_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let srv = config(dir.path(), "[access]\nwrite = []\n");
    let mut admin = client(&srv, "e2e-admin", None).await;
    let mut w = client(&srv, "e2e-writer", None).await;
    let (code, _) = refusal(w.put(&name("XX_STA01_BHZ"), Time::now(), b"no").await);
    assert_eq!(code, ErrorCode::NotAllowed);

    std::fs::write(
        dir.path().join("orbserver.toml"),
        "[access]\nwrite = [\"127.0.0.0/8\"]\n",
    )
    .unwrap();
    let summary = guard("reload", admin.reload()).await.expect("RELOAD");
    assert!(
        summary.contains("access rules reloaded") && summary.contains("orbserver.toml"),
        "{summary}"
    );
    let mut fresh = client(&srv, "e2e-fresh", None).await;
    guard("put", fresh.put(&name("XX_STA01_BHZ"), Time::now(), b"1"))
        .await
        .expect("a new connection follows the reloaded rules");
    wait_for_log(dir.path(), "RELOAD from 127.0.0.1", 1);

    // A broken file: ERROR BadConfig with the reason; the rules in force stay.
    std::fs::write(
        dir.path().join("orbserver.toml"),
        "[access]\nwrite = []\nconnect_deny = [\"300.0.0.0/8\"]\n",
    )
    .unwrap();
    let (code, msg) = refusal(admin.reload().await);
    assert_eq!(code, ErrorCode::BadConfig);
    assert!(
        msg.contains("access.connect_deny") && msg.contains("previous access rules stay"),
        "{msg}"
    );
    guard("put", w.put(&name("XX_STA01_BHZ"), Time::now(), b"2"))
        .await
        .expect("the previous rules (loopback writes) are still in force");

    // orbstat --reload as a process: non-zero with one error line for the bad file...
    let (ok, _, err) = orbstat(&srv, &["--reload"], None);
    assert!(!ok, "orbstat --reload passed on a bad file");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("orbstat: error:") && lines[0].contains("access.connect_deny"),
        "{err}"
    );
    // ... and exit 0 with the summary once the file is good again.
    std::fs::write(dir.path().join("orbserver.toml"), "[access]\nwrite = []\n").unwrap();
    let (ok, out, err) = orbstat(&srv, &["--reload"], None);
    assert!(ok, "orbstat --reload failed: {err}");
    assert!(out.contains("access rules reloaded"), "{out}");
    let (code, _) = refusal(w.put(&name("XX_STA01_BHZ"), Time::now(), b"3").await);
    assert_eq!(code, ErrorCode::NotAllowed, "writes are closed again");
    let st = guard("stat", admin.stat()).await.unwrap();
    assert_eq!(st.ring.npkts, 2);
    assert_eq!(st.refused.admin_not_allowed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orbstat_kill_needs_an_admin_and_exits_non_zero_on_refusal() {
    const ADMIN_TOKEN: &str = "operator-Hq4v8Nw2Kc7Rt5Ym";
    let dir = tempfile::tempdir().unwrap();
    // No address is an admin: only the token is.
    let srv = config(
        dir.path(),
        &format!(
            "[access]\nadmin = []\n[[access.token]]\nname = \"operator\"\n{}\nadmin = true\n",
            hash_line(ADMIN_TOKEN)
        ),
    );
    let victim = client(&srv, "e2e-victim", None).await;
    let victim_id = victim.welcome().client_id;
    let id = victim_id.to_string();

    let (ok, _, err) = orbstat(&srv, &["--kill", &id], None);
    assert!(!ok, "orbstat --kill without admin access passed");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("needs admin access"), "{err}");
    let (ok, _, err) = orbstat(&srv, &["--reload"], None);
    assert!(!ok, "orbstat --reload without admin access passed");
    assert!(err.contains("needs admin access"), "{err}");
    assert_eq!(stat(&srv).await.refused.admin_not_allowed, 2);

    let (ok, out, err) = orbstat(&srv, &["--kill", &id], Some(ADMIN_TOKEN));
    assert!(ok, "orbstat --kill with the admin token failed: {err}");
    assert_eq!(out.trim(), format!("client {victim_id} closed"));
    let mut victim = victim;
    let (code, _) = refusal(guard("tell", victim.tell()).await);
    assert_eq!(code, ErrorCode::Killed);

    let (ok, _, err) = orbstat(&srv, &["--kill", "999999"], Some(ADMIN_TOKEN));
    assert!(!ok, "orbstat --kill of nobody passed");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no client 999999"), "{err}");
}

/// Pipelined puts of payloads at `max_packet` pack as many packets per PUT frame as the
/// server's frame limit (`max_packet` + 64 KiB) allows and no more: a frame over it
/// would be refused as fatal `TooLarge` and end the session. Every packet is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_frames_fill_up_to_the_frame_limit_and_are_all_stored() {
    let dir = tempfile::tempdir().unwrap();
    let srv = config(dir.path(), "[limits]\nmax_packet = \"4KiB\"\n");
    let mut w = client(&srv, "e2e-pipelined", None).await;
    let max = w.welcome().max_packet as usize;
    // Srcnames of 1 to 63 bytes, payloads from 0 to max_packet.
    let packets: Vec<Packet> = (0..600usize)
        .map(|i| {
            let name = name(&"S".repeat(1 + i % 63));
            let len = if i % 3 == 0 { max } else { i * 37 % (max + 1) };
            Packet::new(
                name,
                Time::from_micros(i as i64),
                vec![(i % 251) as u8; len],
            )
        })
        .collect();
    let ack = guard("put", w.put_acked(&packets, 16))
        .await
        .expect("every frame within the limit");
    assert_eq!(ack.acked, 600);
    assert!(ack.contiguous, "the only writer gets consecutive pktids");
    let (first, last) = ack.pktids.unwrap();
    assert_eq!(last - first + 1, 600);
    // The 1 MiB ring has wrapped; the newest packets are still in it.
    for (i, p) in packets.iter().enumerate().skip(540).step_by(7) {
        let got = guard("get", w.get(first + i as u64))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((&got.srcname, &got.payload), (&p.srcname, &p.payload));
    }
    assert_eq!(stat(&srv).await.refused.writes_too_large, 0);
}

/// A PUT is stored whole or not at all, so a foreign srcname in a pipelined put refuses
/// its whole frame, good packets too: with one frame in flight, the ring holds exactly
/// the frames before it, and the put returns the refusal rather than a count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_frame_of_a_pipelined_put_stores_none_of_its_packets() {
    let dir = tempfile::tempdir().unwrap();
    let srv = config(
        dir.path(),
        &format!(
            "[access]\nwrite = []\n[[access.token]]\nname = \"XX_STA01\"\n{}\nwrite = \"XX_STA01_.*\"\n",
            hash_line(STA01_TOKEN)
        ),
    );
    let mut w = client(&srv, "e2e-station", Some(STA01_TOKEN)).await;
    let per_frame = orbclient::put::FRAME_PACKETS;
    let bad = per_frame + 10;
    let packets: Vec<Packet> = (0..3 * per_frame)
        .map(|i| {
            let s = if i == bad {
                "YY_STA01_BHZ"
            } else {
                "XX_STA01_BHZ"
            };
            Packet::new(name(s), Time::from_micros(i as i64), &b"data"[..])
        })
        .collect();
    let (code, msg) = refusal(guard("put", w.put_pipelined(&packets, 1)).await);
    assert_eq!(code, ErrorCode::NotAllowed);
    assert!(msg.contains("nothing was stored"), "{msg}");
    let mut r = client(&srv, "e2e-reader", None).await;
    assert_eq!(stat(&srv).await.ring.npkts, per_frame as u64);
    let oldest = guard("seek", r.seek(formats::proto::Whence::Oldest, 0))
        .await
        .unwrap();
    let last = guard("get", r.get(oldest + per_frame as u64 - 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.time, Time::from_micros(per_frame as i64 - 1));
    // The session goes on.
    guard("put", w.put(&name("XX_STA01_BHZ"), Time::now(), b"ok"))
        .await
        .expect("a put after the refusal");
}
