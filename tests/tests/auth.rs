//! Authentication end to end (docs/SECURITY.md, "Authentication"): DataLink `AUTH
//! USERPASS` and `AUTH JWT` as ringserver 4 speaks them, writes held to the identity's
//! srcnames; SeedLink 4 `AUTH`; HTTP `Authorization: Bearer` on the admin resources and
//! on a WebSocket DataLink upgrade; a Python `ssl` DataLink client writing with AUTH
//! over TLS; a client certificate's CN as an identity; an expired server certificate
//! refused by the client; the per-address limit on failed attempts; and no secret in
//! the server's log.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;

use formats::datalink::{Command as Dl, Credential, Write};
use formats::{SrcName, Time};
use futures_util::{SinkExt, StreamExt};
use orb_tests::dlclient::{DlClient, DlReply};
use orb_tests::harness::{
    bin, guard, run_command, run_tool, server_log, start_logged, wait_for_log, OrbServer,
};
use orb_tests::oracle;
use orbclient::{ClientOptions, OrbAddr, OrbClient, TlsOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "alice-Pa55word-never-logged";
const WRONG: &str = "wrong-Pa55word-never-logged";
const JWT_SECRET: &str = "jwt-secret-0123456789abcdef-never-logged";
const ADMIN_TOKEN: &str = "admin-token-0123456789-never-logged";

/// `orbserver --hash-password` for `password`: the line for the config.
fn hash_password(password: &str) -> String {
    let (st, out, err) = run_tool(
        &["--hash-password"],
        "orbserver",
        format!("{password}\n").as_bytes(),
    );
    assert!(st.success(), "--hash-password: {err}");
    let line = out.trim().to_string();
    assert!(line.starts_with("argon2 = \"$argon2id$"), "{line}");
    assert!(!line.contains(password));
    line
}

fn hash_token(token: &str) -> String {
    let (st, out, err) = run_tool(
        &["--hash-token"],
        "orbserver",
        format!("{token}\n").as_bytes(),
    );
    assert!(st.success(), "--hash-token: {err}");
    out.trim().to_string()
}

/// The `[access]` table all tests share: nobody writes or administers by address;
/// user `alice` may put XX_ALICE_*; a JWT key; an admin token; `extra` added to it.
fn access(dir: &Path, extra: &str) -> String {
    std::fs::write(dir.join("jwt.secret"), format!("{JWT_SECRET}\n")).unwrap();
    format!(
        "[access]\nwrite = []\nadmin = []\n{extra}\n\
         [[access.user]]\nname = \"alice\"\n{}\nwrite = \"XX_ALICE_.*\"\n\
         [[access.token]]\nname = \"ops\"\n{}\nadmin = true\n\
         [access.jwt]\nsecret_file = \"jwt.secret\"\n",
        hash_password(PASSWORD),
        hash_token(ADMIN_TOKEN),
    )
}

fn jwt(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

fn in_ten_minutes() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600
}

fn auth_userpass(user: &str, password: &str) -> Vec<u8> {
    let payload = format!("{user}\r{password}");
    let mut b = Vec::new();
    Dl::Auth {
        kind: "USERPASS",
        credential: Credential(payload.as_bytes()),
    }
    .encode(&mut b)
    .unwrap();
    b
}

fn auth_jwt(token: &str) -> Vec<u8> {
    let mut b = Vec::new();
    Dl::Auth {
        kind: "JWT",
        credential: Credential(token.as_bytes()),
    }
    .encode(&mut b)
    .unwrap();
    b
}

fn write(streamid: &str) -> Dl<'_> {
    Dl::Write(Write {
        streamid,
        start: Time::from_micros(1_000_000),
        end: Time::from_micros(1_000_000),
        ack: true,
        payload: b"payload",
    })
}

fn is_ok(r: &DlReply) -> bool {
    matches!(r, DlReply::Ok(..))
}

fn error_text(r: DlReply) -> String {
    match r {
        DlReply::Error(_, m) => m,
        other => panic!("want ERROR, got {other:?}"),
    }
}

/// The secrets of these tests must not be in the log.
fn assert_no_secret_logged(dir: &Path, secrets: &[&str]) {
    let log = server_log(dir);
    for s in secrets {
        assert!(!log.contains(s), "the log holds a secret ({s}):\n{log}");
    }
}

async fn native_admin(srv: &OrbServer) -> OrbClient {
    let opts = ClientOptions {
        token: Some(ADMIN_TOKEN.into()),
        ..ClientOptions::for_program("e2e-auth")
    };
    guard("connect", OrbClient::connect(&srv.orb_addr(), &opts))
        .await
        .expect("connect with the admin token")
}

#[tokio::test]
async fn datalink_auth_userpass_and_jwt_hold_writes_to_their_scope() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("datalink = \"127.0.0.1:0\"\n{}", access(dir.path(), ""));
    let srv = start_logged(dir.path(), &config);
    let dl = srv.datalink.unwrap();

    let mut c = DlClient::connect(dl).await;
    match c.request(Dl::Id("e2e:me:1:x")).await {
        DlReply::Id(caps) => assert!(
            caps.ends_with(" AUTH") && !caps.contains(" WRITE"),
            "{caps}"
        ),
        other => panic!("{other:?}"),
    }
    let refused = error_text(c.request(write("XX_ALICE_BHZ/EXP")).await);
    assert!(
        refused.starts_with("Write permission not granted"),
        "{refused}"
    );
    assert_eq!(
        c.request_raw(&auth_userpass("alice", PASSWORD)).await,
        DlReply::Ok(0, "Authentication successful".into())
    );
    match c.request(Dl::Id("e2e:me:1:x")).await {
        DlReply::Id(caps) => assert!(caps.contains(" WRITE"), "{caps}"),
        other => panic!("{other:?}"),
    }
    assert!(is_ok(&c.request(write("XX_ALICE_BHZ/EXP")).await));
    let foreign = error_text(c.request(write("XX_BOB_BHZ/EXP")).await);
    assert!(foreign.contains("user:alice may put only"), "{foreign}");

    // The client table shows who the client proved to be.
    let mut admin = native_admin(&srv).await;
    let rows = guard("CLIENTS", admin.clients()).await.unwrap().clients;
    assert!(rows.iter().any(|r| r.identity == "user:alice"), "{rows:?}");

    // A JWT's claims are its rights.
    let token =
        jwt(serde_json::json!({"sub": "logger-9", "exp": in_ten_minutes(), "write": "XX_LOG9_.*"}));
    let mut j = DlClient::connect(dl).await;
    assert!(is_ok(&j.request_raw(&auth_jwt(&token)).await));
    assert!(is_ok(&j.request(write("XX_LOG9_HHZ/EXP")).await));
    assert!(error_text(j.request(write("XX_ALICE_HHZ/EXP")).await).contains("jwt:logger-9"));

    // A wrong password: ringserver's ERROR, and the connection closed.
    let mut w = DlClient::connect(dl).await;
    assert_eq!(
        w.request_raw(&auth_userpass("alice", WRONG)).await,
        DlReply::Error(0, "Authentication failed, not allowed to connect".into())
    );
    assert_eq!(w.try_recv().await, None, "the connection stays open");
    let forged = jwt(serde_json::json!({"sub": "x", "exp": in_ten_minutes(), "write": ".*"}))
        .replace('.', ".x");
    let mut f = DlClient::connect(dl).await;
    assert!(
        error_text(f.request_raw(&auth_jwt(&forged)).await).starts_with("Authentication failed")
    );

    let log = wait_for_log(dir.path(), "authentication failed", 2);
    assert!(log.contains("authenticated as user:alice"), "{log}");
    assert!(log.contains("authenticated as jwt:logger-9"), "{log}");
    assert_no_secret_logged(
        dir.path(),
        &[PASSWORD, WRONG, JWT_SECRET, &token, &forged, ADMIN_TOKEN],
    );
    let stat = guard("STAT", admin.stat()).await.unwrap();
    assert_eq!(stat.refused.auth_failures, 2);
}

async fn sl_line(
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    line: &str,
) -> Option<String> {
    w.write_all(format!("{line}\r\n").as_bytes()).await.unwrap();
    let mut got = String::new();
    let n = guard("SeedLink reply", r.read_line(&mut got))
        .await
        .unwrap();
    (n > 0).then(|| got.trim_end().to_string())
}

#[tokio::test]
async fn seedlink_4_auth_userpass_and_a_failure_closes() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "seedlink = \"127.0.0.1:0\"\n{}",
        access(dir.path(), "read = []")
    );
    let srv = start_logged(dir.path(), &config);
    let sl = srv.seedlink.unwrap();
    let (rd, mut wr) = tokio::net::TcpStream::connect(sl)
        .await
        .unwrap()
        .into_split();
    let mut rd = BufReader::new(rd);
    assert_eq!(
        sl_line(&mut rd, &mut wr, "SLPROTO 4.0").await.as_deref(),
        Some("OK")
    );
    let token = jwt(serde_json::json!({"sub": "reader", "exp": in_ten_minutes(), "read": true}));
    assert_eq!(
        sl_line(&mut rd, &mut wr, &format!("AUTH JWT {token}"))
            .await
            .as_deref(),
        Some("OK")
    );
    let (rd, mut wr) = tokio::net::TcpStream::connect(sl)
        .await
        .unwrap()
        .into_split();
    let mut rd = BufReader::new(rd);
    assert_eq!(
        sl_line(&mut rd, &mut wr, "SLPROTO 4.0").await.as_deref(),
        Some("OK")
    );
    assert_eq!(
        sl_line(&mut rd, &mut wr, &format!("AUTH USERPASS alice {PASSWORD}"))
            .await
            .as_deref(),
        Some("OK")
    );
    let (rd, mut wr) = tokio::net::TcpStream::connect(sl)
        .await
        .unwrap()
        .into_split();
    let mut rd = BufReader::new(rd);
    assert_eq!(
        sl_line(&mut rd, &mut wr, "SLPROTO 4.0").await.as_deref(),
        Some("OK")
    );
    assert_eq!(
        sl_line(&mut rd, &mut wr, &format!("AUTH USERPASS alice {WRONG}"))
            .await
            .as_deref(),
        Some("ERROR AUTH Authentication failed, not allowed to connect")
    );
    let mut rest = String::new();
    let n = guard("close", rd.read_line(&mut rest)).await.unwrap_or(0);
    assert_eq!(n, 0, "the connection stays open: {rest:?}");
    wait_for_log(dir.path(), "SeedLink: authentication failed", 1);
    let log = wait_for_log(dir.path(), "SeedLink: authenticated as", 2);
    assert!(
        log.contains("jwt:reader") && log.contains("user:alice"),
        "{log}"
    );
    assert_no_secret_logged(dir.path(), &[PASSWORD, WRONG, &token]);
}

fn http_get(addr: SocketAddr, path: &str, extra: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(orb_tests::harness::GUARD)).unwrap();
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
    (status, got)
}

#[tokio::test]
async fn http_bearer_tokens_open_admin_resources_and_carry_into_websocket_datalink() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("http = \"127.0.0.1:0\"\n{}", access(dir.path(), ""));
    let srv = start_logged(dir.path(), &config);
    let http = srv.http.unwrap();
    let (status, _) = http_get(http, "/connections", "");
    assert_eq!(status, 403, "admin resource without a credential");
    let (status, _) = http_get(
        http,
        "/connections",
        &format!("Authorization: Bearer {ADMIN_TOKEN}\r\n"),
    );
    assert_eq!(status, 200);
    let (status, text) = http_get(
        http,
        "/status",
        "Authorization: Bearer not-a-known-token-000\r\n",
    );
    assert_eq!(status, 401);
    assert!(
        text.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{text}"
    );
    let (status, _) = http_get(http, "/status", "Authorization: Basic YTpi\r\n");
    assert_eq!(status, 401);
    let admin_jwt =
        jwt(serde_json::json!({"sub": "ops-jwt", "exp": in_ten_minutes(), "admin": true}));
    let (status, _) = http_get(
        http,
        "/status",
        &format!("Authorization: Bearer {admin_jwt}\r\n"),
    );
    assert_eq!(status, 200);

    // A WebSocket DataLink session starts from the bearer JWT's rights.
    let writer =
        jwt(serde_json::json!({"sub": "ws-writer", "exp": in_ten_minutes(), "write": "XX_WS_.*"}));
    let mut req = format!("ws://{http}/datalink")
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    h.insert("sec-websocket-protocol", "DataLink1.0".parse().unwrap());
    h.insert("authorization", format!("Bearer {writer}").parse().unwrap());
    let (mut ws, _) = guard("WebSocket", tokio_tungstenite::connect_async(req))
        .await
        .expect("upgrade with a bearer JWT");
    for (streamid, want_ok) in [("XX_WS_HHZ/EXP", true), ("XX_OTHER_HHZ/EXP", false)] {
        let mut b = Vec::new();
        write(streamid).encode(&mut b).unwrap();
        ws.send(Message::binary(b)).await.unwrap();
        let m = guard("reply", ws.next())
            .await
            .unwrap()
            .unwrap()
            .into_data();
        let reply = match formats::datalink::decode_reply(&m, 1 << 20).unwrap() {
            formats::datalink::Decoded::Done(r, _) => DlReply::from(r),
            other => panic!("{other:?}"),
        };
        assert_eq!(is_ok(&reply), want_ok, "{streamid}: {reply:?}");
    }
    let log = wait_for_log(dir.path(), "http: authentication failed", 1);
    assert!(
        log.contains("http: authenticated as jwt:ws-writer"),
        "{log}"
    );
    assert_no_secret_logged(
        dir.path(),
        &[ADMIN_TOKEN, &admin_jwt, &writer, "not-a-known-token-000"],
    );
}

#[tokio::test]
async fn failed_attempts_are_limited_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "datalink = \"127.0.0.1:0\"\n{}",
        access(
            dir.path(),
            "auth_fail_limit = 3\nauth_fail_window_secs = 3600"
        )
    );
    let srv = start_logged(dir.path(), &config);
    let dl = srv.datalink.unwrap();
    for _ in 0..3 {
        let mut c = DlClient::connect(dl).await;
        let e = error_text(c.request_raw(&auth_userpass("alice", WRONG)).await);
        assert_eq!(e, "Authentication failed, not allowed to connect");
    }
    // The right password from the same address is now refused unchecked.
    let mut c = DlClient::connect(dl).await;
    let e = error_text(c.request_raw(&auth_userpass("alice", PASSWORD)).await);
    assert!(
        e.contains("too many failed attempts") && e.contains("try again in"),
        "{e}"
    );
    assert_eq!(c.try_recv().await, None);
    let mut admin = native_admin(&srv).await;
    let stat = guard("STAT", admin.stat()).await.unwrap();
    assert_eq!(stat.refused.auth_failures, 4);
    assert_no_secret_logged(dir.path(), &[PASSWORD, WRONG]);
}

/// Runs `orbserver gencert` into `dir` with a client certificate `sta1`.
fn gencert(dir: &Path) {
    let args = [
        "gencert",
        "--out",
        dir.to_str().unwrap(),
        "--client",
        "sta1",
        "--host",
        "localhost",
    ];
    let (st, _, err) = run_tool(&args, "orbserver", b"");
    assert!(st.success(), "gencert: {err}");
}

const PY_DATALINK: &str = r#"
import socket, ssl, sys
port, ca, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30), server_hostname="localhost")

def send(header, payload=b""):
    h = header.encode()
    s.sendall(b"DL" + bytes([len(h)]) + h + payload)

def recv():
    def exactly(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                raise SystemExit("closed")
            b += c
        return b
    pre = exactly(3)
    header = exactly(pre[2]).decode()
    words = header.split()
    size = int(words[-1]) if words[0] in ("OK", "ERROR") else 0
    return header, exactly(size).decode()

send("ID pydali:me:1:py")
print("ID", recv()[0])
cred = (user + "\r" + password).encode()
send("AUTH USERPASS %d" % len(cred), cred)
print("AUTH", *recv())
for sid in ("XX_ALICE_00_HHZ/EXP", "XX_BOB_00_HHZ/EXP"):
    send("WRITE %s 1000000 1000000 A 4" % sid, b"data")
    print("WRITE", sid, *recv())
print("TLS", s.version())
"#;

#[tokio::test]
async fn a_python_ssl_datalink_client_writes_with_auth() {
    let Some(py) = oracle::python(&["ssl"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    gencert(&certs);
    let (cert, key) = (certs.join("server.pem"), certs.join("server.key"));
    let config = format!(
        "datalink = \"127.0.0.1:0\"\n[tls.datalink]\ncert = {cert:?}\nkey = {key:?}\n{}",
        access(dir.path(), "")
    );
    let srv = start_logged(dir.path(), &config);
    let port = srv.datalink.unwrap().port().to_string();
    let ca = certs.join("ca.pem");
    let out = oracle::run_python(
        &py,
        PY_DATALINK,
        &[port.as_str(), ca.to_str().unwrap(), "alice", PASSWORD],
        dir.path(),
    );
    assert!(
        out.contains("AUTH OK 0 25 Authentication successful"),
        "{out}"
    );
    assert!(out.contains("WRITE XX_ALICE_00_HHZ/EXP OK"), "{out}");
    assert!(
        out.contains("WRITE XX_BOB_00_HHZ/EXP ERROR") && out.contains("user:alice may put only"),
        "{out}"
    );
    assert!(out.contains("TLS TLSv1.3"), "{out}");
    // The packet is in the ring, read back over the native port.
    let mut admin = native_admin(&srv).await;
    let st = guard("STAT", admin.stat()).await.unwrap();
    assert_eq!(st.refused.auth_failures, 0);
    assert_no_secret_logged(dir.path(), &[PASSWORD]);
}

#[tokio::test]
async fn a_client_certificate_cn_names_an_identity_in_the_access_rules() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    gencert(&certs);
    let (cert, key, ca) = (
        certs.join("server.pem"),
        certs.join("server.key"),
        certs.join("ca.pem"),
    );
    let config = format!(
        "[tls.native]\ncert = {cert:?}\nkey = {key:?}\nclient_ca = {ca:?}\n{}\
         [[access.cert]]\ncn = \"sta1\"\nwrite = \"XX_STA1_.*\"\nadmin = true\n",
        access(dir.path(), "")
    );
    let srv = start_logged(dir.path(), &config);
    let addr: OrbAddr = format!("tls://localhost:{}", srv.addr.port())
        .parse()
        .unwrap();
    let opts = ClientOptions {
        tls: TlsOptions {
            ca: Some(ca.clone()),
            cert: Some(certs.join("client.pem")),
            key: Some(certs.join("client.key")),
        },
        ..ClientOptions::for_program("e2e-cert")
    };
    let mut c = guard("connect", OrbClient::connect(&addr, &opts))
        .await
        .expect("connect with the client certificate");
    let t = Time::from_micros(1_000_000);
    guard(
        "put",
        c.put(&SrcName::new("XX_STA1_HHZ/pf").unwrap(), t, b"x"),
    )
    .await
    .expect("the certificate's scope");
    let e = guard(
        "put",
        c.put(&SrcName::new("XX_STA2_HHZ/pf").unwrap(), t, b"x"),
    )
    .await
    .expect_err("outside the certificate's scope");
    assert!(e.to_string().contains("cert:sta1"), "{e}");
    // Admin by certificate: CLIENTS answers, and shows the identity.
    let rows = guard("CLIENTS", c.clients())
        .await
        .expect("admin by certificate")
        .clients;
    assert!(rows.iter().any(|r| r.identity == "cert:sta1"), "{rows:?}");
}

#[tokio::test]
async fn an_expired_server_certificate_is_refused_by_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("ca.pem"), ca.pem()).unwrap();
    std::fs::write(p("server.pem"), cert.pem()).unwrap();
    std::fs::write(p("server.key"), key.serialize_pem()).unwrap();
    let config = format!(
        "[tls.native]\ncert = {:?}\nkey = {:?}\n",
        p("server.pem"),
        p("server.key")
    );
    let srv = start_logged(dir.path(), &config);
    let orb = format!("tls://localhost:{}", srv.addr.port());
    let (st, out, err) = run_command(
        Command::new(bin("orbstat"))
            .arg(&orb)
            .env("ORB_TLS_CA", p("ca.pem")),
        b"",
    );
    assert!(!st.success(), "an expired certificate was taken: {out}");
    assert!(err.to_lowercase().contains("expired"), "{err}");
    wait_for_log(dir.path(), "TLS handshake", 1);
}
