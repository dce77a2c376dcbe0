//! TLS end to end (docs/SECURITY.md, "TLS"): certificates from `orbserver gencert`, a
//! server whose native, DataLink and HTTP ports speak TLS while SeedLink stays
//! plaintext; the tools over `tls://` addresses; `openssl s_client` as an outside client
//! of the native and HTTP ports; wss with a Rust WebSocket client; the wrong CA, the
//! wrong host name, plaintext to a TLS port and TLS to a plaintext port each refused
//! with a clear error and counted; a certificate reload under a running connection.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use orb_tests::harness::{
    bin, guard, hangup, run_command, run_tool, start, start_logged, wait_for_log, OrbServer,
};
use orbclient::{ClientOptions, OrbAddr, OrbClient, TlsOptions};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

/// Runs `orbserver gencert` into `dir`, with these hosts and a client certificate.
fn gencert(dir: &Path, hosts: &[&str]) {
    let mut args = vec![
        "gencert",
        "--out",
        dir.to_str().unwrap(),
        "--client",
        "sta1",
    ];
    for h in hosts {
        args.extend(["--host", h]);
    }
    let (st, out, err) = run_tool(&args, "orbserver", b"");
    assert!(st.success(), "gencert: {st}: {err}");
    assert!(out.contains("server.pem"), "{out}");
    // Run twice, it overwrites nothing.
    let (st, _, err) = run_tool(&args, "orbserver", b"");
    assert!(!st.success());
    assert!(err.contains("exists already"), "{err}");
}

/// A logged server in `dir` whose native, DataLink and HTTP ports speak TLS with the
/// certificates in `certs`; SeedLink is plaintext.
fn tls_server(dir: &Path, certs: &Path) -> OrbServer {
    let (cert, key) = (certs.join("server.pem"), certs.join("server.key"));
    let table = format!("cert = {:?}\nkey = {:?}\n", cert, key);
    let config = format!(
        "datalink = \"127.0.0.1:0\"\nseedlink = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\n\
         [tls.native]\n{table}[tls.datalink]\n{table}[tls.http]\n{table}"
    );
    start_logged(dir, &config)
}

fn tls_addr(srv: &OrbServer, host: &str) -> String {
    format!("tls://{host}:{}", srv.addr.port())
}

fn opts(ca: &Path) -> ClientOptions {
    ClientOptions {
        tls: TlsOptions {
            ca: Some(ca.to_owned()),
            ..TlsOptions::default()
        },
        ..ClientOptions::for_program("e2e-tls")
    }
}

/// Waits until the server has counted `n` failed TLS handshakes: the server sees a
/// client's alert a moment after the client has given up.
async fn wait_failed_handshakes(srv: &OrbServer, ca: &Path, n: u64) {
    orb_tests::harness::wait_until(&format!("{n} failed TLS handshakes counted"), || async {
        failed_handshakes(srv, ca).await == n
    })
    .await;
}

/// The server's count of failed TLS handshakes, asked over TLS.
async fn failed_handshakes(srv: &OrbServer, ca: &Path) -> u64 {
    let addr: OrbAddr = tls_addr(srv, "localhost").parse().unwrap();
    let mut c = guard("connect", OrbClient::connect(&addr, &opts(ca)))
        .await
        .expect("connect over TLS");
    guard("STAT", c.stat())
        .await
        .expect("STAT")
        .refused
        .tls_handshakes
}

fn tool_env(tool: &str, args: &[&str], ca: &Path, stdin: &[u8]) -> (bool, String, String) {
    let (st, out, err) = run_command(
        Command::new(bin(tool)).args(args).env("ORB_TLS_CA", ca),
        stdin,
    );
    (st.success(), out, err)
}

#[tokio::test]
async fn the_tools_put_tail_and_stat_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    gencert(&certs, &["localhost", "127.0.0.1"]);
    let srv = tls_server(dir.path(), &certs);
    let ca = certs.join("ca.pem");
    let orb = tls_addr(&srv, "localhost");

    for i in 0..3 {
        let (ok, out, err) = tool_env(
            "orbput",
            &[&orb, "--srcname", "TLS_STA/EXP"],
            &ca,
            format!("payload {i}").as_bytes(),
        );
        assert!(ok, "orbput over TLS: {err}");
        assert_eq!(out.trim(), (i + 1).to_string());
    }
    let (ok, out, err) = tool_env("orbtail", &[&orb, "--start", "oldest", "-n", "3"], &ca, b"");
    assert!(ok, "orbtail over TLS: {err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.contains("TLS_STA/EXP"), "{out}");
    let (ok, out, err) = tool_env("orbstat", &[&orb], &ca, b"");
    assert!(ok, "orbstat over TLS: {err}");
    assert!(out.contains("failed TLS handshakes"), "{out}");

    // Pipelined puts and a reap through the library, over TLS.
    let addr: OrbAddr = orb.parse().unwrap();
    let mut w = OrbClient::connect(&addr, &opts(&ca))
        .await
        .expect("connect");
    let packets: Vec<formats::Packet> = (0..500u32)
        .map(|i| {
            formats::Packet::new(
                formats::SrcName::new("TLS_STA/PIPE").unwrap(),
                formats::Time::from_micros(1_700_000_000_000_000 + i64::from(i) * 1_000_000),
                vec![7u8; 300],
            )
        })
        .collect();
    let sum = guard("pipelined puts", w.put_pipelined(&packets, 64))
        .await
        .expect("pipelined puts over TLS");
    assert_eq!(sum.count, 500);
    let r = OrbClient::connect(&addr, &opts(&ca))
        .await
        .expect("connect");
    let all = orb_tests::harness::dump_ring(r).await;
    assert_eq!(all.len(), 503);
}

#[tokio::test]
async fn openssl_s_client_talks_to_the_native_and_http_ports() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    gencert(&certs, &["localhost", "127.0.0.1"]);
    let srv = tls_server(dir.path(), &certs);
    let ca = certs.join("ca.pem");

    // Native port: the handshake verifies against our CA, TLS 1.3.
    let native = srv.addr.to_string();
    let (st, out, err) = run_command(
        Command::new("openssl").args([
            "s_client",
            "-connect",
            &native,
            "-servername",
            "localhost",
            "-verify_hostname",
            "localhost",
            "-verify_return_error",
            "-brief",
            "-CAfile",
            ca.to_str().unwrap(),
        ]),
        b"",
    );
    let all = format!("{out}{err}");
    assert!(st.success(), "openssl s_client on the native port: {all}");
    assert!(all.contains("TLSv1.3"), "{all}");
    assert!(all.contains("Verification: OK"), "{all}");

    // HTTP port: a request over TLS, answered.
    let http = srv.http.unwrap().to_string();
    let (st, out, err) = run_command(
        Command::new("openssl").args([
            "s_client",
            "-connect",
            &http,
            "-servername",
            "localhost",
            "-verify_return_error",
            "-quiet",
            "-ign_eof",
            "-CAfile",
            ca.to_str().unwrap(),
        ]),
        b"GET /id HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(
        st.success(),
        "openssl s_client on the HTTP port: {out}{err}"
    );
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");

    // TLS 1.1 is refused.
    let (st, out, err) = run_command(
        Command::new("openssl").args(["s_client", "-connect", &native, "-tls1_1", "-brief"]),
        b"",
    );
    assert!(!st.success(), "TLS 1.1 was accepted: {out}{err}");
    wait_failed_handshakes(&srv, &ca, 1).await;
}

#[tokio::test]
async fn wrong_ca_wrong_name_and_plaintext_are_refused_clearly_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let other = dir.path().join("other");
    // The server certificate names localhost only, so 127.0.0.1 is the wrong name.
    gencert(&certs, &["localhost"]);
    gencert(&other, &["localhost"]);
    let srv = tls_server(dir.path(), &certs);
    let ca = certs.join("ca.pem");
    assert_eq!(failed_handshakes(&srv, &ca).await, 0);

    // Wrong CA: the client says so; the server counts a failed handshake.
    let (ok, _, err) = tool_env(
        "orbstat",
        &[&tls_addr(&srv, "localhost")],
        &other.join("ca.pem"),
        b"",
    );
    assert!(!ok);
    assert!(err.contains("not signed by a trusted CA"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    wait_failed_handshakes(&srv, &ca, 1).await;

    // Wrong host name.
    let (ok, _, err) = tool_env("orbstat", &[&tls_addr(&srv, "127.0.0.1")], &ca, b"");
    assert!(!ok);
    assert!(
        err.contains("not valid for the name \"127.0.0.1\""),
        "{err}"
    );
    wait_failed_handshakes(&srv, &ca, 2).await;

    // Plaintext to the TLS port: refused, counted, logged.
    let (ok, _, err) = tool_env("orbstat", &[&srv.orb()], &ca, b"");
    assert!(!ok, "a plaintext client got an answer from a TLS port");
    assert!(
        err.contains("the server answered in TLS: write tls://"),
        "{err}"
    );
    wait_failed_handshakes(&srv, &ca, 3).await;
    wait_for_log(dir.path(), "TLS handshake failed", 1);
    // Logged once per address, however many fail.
    let log = orb_tests::harness::server_log(dir.path());
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("TLS handshake failed"))
            .count(),
        1,
        "{log}"
    );

    // TLS to a plaintext port.
    let (_plain_dir, plain) = start();
    let (ok, _, err) = tool_env("orbstat", &[&tls_addr(&plain, "localhost")], &ca, b"");
    assert!(!ok);
    assert!(err.contains("plaintext port"), "{err}");

    // And a good client still works after all that.
    let (ok, _, err) = tool_env("orbstat", &[&tls_addr(&srv, "localhost")], &ca, b"");
    assert!(ok, "{err}");
}

#[tokio::test]
async fn client_certificates_are_required_when_a_client_ca_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    gencert(&certs, &["localhost"]);
    let (cert, key, ca) = (
        certs.join("server.pem"),
        certs.join("server.key"),
        certs.join("ca.pem"),
    );
    let config = format!("[tls.native]\ncert = {cert:?}\nkey = {key:?}\nclient_ca = {ca:?}\n");
    let srv = start_logged(dir.path(), &config);
    let orb = tls_addr(&srv, "localhost");
    let (ok, _, err) = tool_env("orbstat", &[&orb], &ca, b"");
    assert!(!ok, "no client certificate, yet admitted");
    assert!(err.contains("client certificate"), "{err}");
    let (st, out, err) = run_command(
        Command::new(bin("orbstat"))
            .arg(&orb)
            .env("ORB_TLS_CA", &ca)
            .env("ORB_TLS_CERT", certs.join("client.pem"))
            .env("ORB_TLS_KEY", certs.join("client.key")),
        b"",
    );
    assert!(st.success(), "{out}{err}");
    wait_for_log(dir.path(), "client certificate CN=\"sta1\"", 1);
}

/// A TLS client config trusting `ca`, with ring as the tools use it.
#[allow(deprecated)]
fn client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

#[tokio::test]
async fn datalink_over_wss_and_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    gencert(&certs, &["localhost"]);
    let srv = tls_server(dir.path(), &certs);
    let connector = tokio_rustls::TlsConnector::from(client_config(&certs.join("ca.pem")));
    let name = ServerName::try_from("localhost").unwrap();

    // wss: TLS, then the WebSocket handshake, then a DataLink ID.
    let tcp = tokio::net::TcpStream::connect(srv.http.unwrap())
        .await
        .unwrap();
    let tls = guard("TLS", connector.connect(name.clone(), tcp))
        .await
        .expect("TLS handshake on the HTTP port");
    let url = format!("wss://localhost:{}/datalink", srv.http.unwrap().port());
    let (mut ws, _) = guard("wss", tokio_tungstenite::client_async(url, tls))
        .await
        .expect("WebSocket handshake over TLS");
    let id = b"ID e2e-tls";
    let mut msg = vec![b'D', b'L', id.len() as u8];
    msg.extend_from_slice(id);
    ws.send(tokio_tungstenite::tungstenite::Message::binary(msg))
        .await
        .unwrap();
    let reply = guard("ID reply", ws.next()).await.unwrap().unwrap();
    let data = reply.into_data();
    assert!(
        data.starts_with(b"DL") && data.windows(8).any(|w| w == b"DataLink"),
        "{data:?}"
    );

    // The DataLink port itself over TLS.
    let tcp = tokio::net::TcpStream::connect(srv.datalink.unwrap())
        .await
        .unwrap();
    let mut tls = guard("TLS", connector.connect(name, tcp))
        .await
        .expect("TLS handshake on the DataLink port");
    let mut msg = vec![b'D', b'L', id.len() as u8];
    msg.extend_from_slice(id);
    tls.write_all(&msg).await.unwrap();
    let mut buf = vec![0u8; 512];
    let n = guard("ID reply", tls.read(&mut buf)).await.unwrap();
    assert!(buf[..n].starts_with(b"DL"), "{:?}", &buf[..n]);

    // SeedLink stayed plaintext on the same server.
    let mut sl = tokio::net::TcpStream::connect(srv.seedlink.unwrap())
        .await
        .unwrap();
    sl.write_all(b"HELLO\r\n").await.unwrap();
    let n = guard("HELLO", sl.read(&mut buf)).await.unwrap();
    assert!(buf[..n].starts_with(b"SeedLink"), "{:?}", &buf[..n]);
}

fn copy_certs(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in ["server.pem", "server.key"] {
        // Write to a new name and rename, as an operator's deploy would.
        let tmp: PathBuf = to.join(format!("{f}.new"));
        std::fs::copy(from.join(f), &tmp).unwrap();
        std::fs::rename(&tmp, to.join(f)).unwrap();
    }
}

#[tokio::test]
async fn a_certificate_reload_keeps_open_connections_and_serves_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new, live) = (
        dir.path().join("old"),
        dir.path().join("new"),
        dir.path().join("live"),
    );
    gencert(&old, &["localhost"]);
    gencert(&new, &["localhost"]);
    copy_certs(&old, &live);
    let srv = tls_server(dir.path(), &live);
    let addr: OrbAddr = tls_addr(&srv, "localhost").parse().unwrap();
    let (old_ca, new_ca) = (old.join("ca.pem"), new.join("ca.pem"));

    // A writer and a reader opened under the old certificate.
    let mut writer = OrbClient::connect(&addr, &opts(&old_ca)).await.unwrap();
    let reader = OrbClient::connect(&addr, &opts(&old_ca)).await.unwrap();
    let src = formats::SrcName::new("TLS_STA/RELOAD").unwrap();
    let time = |i: u32| formats::Time::from_micros(1_700_000_000_000_000 + i64::from(i));
    let mut stream = reader
        .reap(orbclient::ReapOptions::default())
        .await
        .expect("reap");
    for i in 0..50 {
        guard("put", writer.put(&src, time(i), &[1u8; 100]))
            .await
            .expect("put before the reload");
    }

    copy_certs(&new, &live);
    hangup(&srv);
    wait_for_log(dir.path(), "TLS certificates reloaded", 1);

    // New connections get the new certificate.
    assert!(OrbClient::connect(&addr, &opts(&new_ca)).await.is_ok());
    let err = OrbClient::connect(&addr, &opts(&old_ca)).await.unwrap_err();
    assert!(
        err.to_string().contains("not signed by a trusted CA"),
        "{err}"
    );

    // The connections opened before go on.
    for i in 50..100 {
        guard("put", writer.put(&src, time(i), &[1u8; 100]))
            .await
            .expect("put after the reload");
    }
    let mut got = 0;
    while got < 100 {
        match guard("reap", stream.next())
            .await
            .expect("reap after the reload")
        {
            Some(orbclient::ReapEvent::Packet(_)) => got += 1,
            other => panic!("unexpected {other:?}"),
        }
    }

    // A bad certificate file changes nothing.
    std::fs::write(live.join("server.pem"), "not a certificate").unwrap();
    hangup(&srv);
    wait_for_log(dir.path(), "reload failed", 1);
    assert!(OrbClient::connect(&addr, &opts(&new_ca)).await.is_ok());
}

#[test]
fn check_validates_the_certificates_and_a_bad_one_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    gencert(&certs, &["localhost"]);
    let config = dir.path().join("orb.toml");
    let write_config = |cert: &str| {
        std::fs::write(
            &config,
            format!("[tls.native]\ncert = \"certs/{cert}\"\nkey = \"certs/server.key\"\n"),
        )
        .unwrap();
    };
    let ring = dir.path().join("ring");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "--config".to_string(),
            config.to_str().unwrap().to_string(),
            "--ring".into(),
            ring.to_str().unwrap().to_string(),
            "--ring-size".into(),
            "1MiB".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    write_config("server.pem");
    let a = args(&["--check"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (st, out, err) = run_tool(&a, "orbserver", b"");
    assert!(st.success(), "{err}");
    assert!(
        out.contains("tls         native (certificates valid)"),
        "{out}"
    );

    // The key is not a certificate: --check and a start both refuse, naming the file.
    write_config("server.key");
    for extra in [&["--check"][..], &[][..]] {
        let a = args(extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let (st, _, err) = run_tool(&a, "orbserver", b"");
        assert!(!st.success());
        assert!(
            err.contains("server.key") && err.contains("no CERTIFICATE"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn orb2orb_copies_from_a_tls_orb_to_a_plaintext_one() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    gencert(&certs, &["localhost"]);
    let srv = tls_server(dir.path(), &certs);
    let ca = certs.join("ca.pem");
    let orb = tls_addr(&srv, "localhost");
    for i in 0..5 {
        let (ok, _, err) = tool_env(
            "orbput",
            &[&orb, "--srcname", "TLS_STA/LINK"],
            &ca,
            format!("p{i}").as_bytes(),
        );
        assert!(ok, "{err}");
    }
    let (_plain_dir, plain) = start();
    let _link = orb_tests::harness::Killed(
        Command::new(bin("orb2orb"))
            .args([orb.as_str(), plain.orb().as_str(), "oldest"])
            .env("ORB_TLS_CA", &ca)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn orb2orb"),
    );
    orb_tests::harness::wait_until("orb2orb copied the 5 packets", || async {
        let mut c = orb_tests::harness::connect(&plain, "e2e-count").await;
        c.stat().await.expect("STAT").ring.npkts == 5
    })
    .await;
}

#[tokio::test]
async fn orb2orb_takes_a_ca_and_a_client_certificate_per_side() {
    // Two networks with their own CAs: IN's server certificate from one, OUT's from
    // the other, and OUT also wants a client certificate from its CA. Only the
    // per-side variables can satisfy both sides at once.
    let dir = tempfile::tempdir().unwrap();
    let (certs_in, certs_out) = (dir.path().join("certs-in"), dir.path().join("certs-out"));
    gencert(&certs_in, &["localhost"]);
    gencert(&certs_out, &["localhost"]);
    let (dir_in, dir_out) = (dir.path().join("orb-in"), dir.path().join("orb-out"));
    std::fs::create_dir_all(&dir_in).unwrap();
    std::fs::create_dir_all(&dir_out).unwrap();
    let srv_in = tls_server(&dir_in, &certs_in);
    let (cert, key, ca_out) = (
        certs_out.join("server.pem"),
        certs_out.join("server.key"),
        certs_out.join("ca.pem"),
    );
    let srv_out = start_logged(
        &dir_out,
        &format!("[tls.native]\ncert = {cert:?}\nkey = {key:?}\nclient_ca = {ca_out:?}\n"),
    );
    let ca_in = certs_in.join("ca.pem");
    let (orb_in, orb_out) = (
        tls_addr(&srv_in, "localhost"),
        tls_addr(&srv_out, "localhost"),
    );
    for i in 0..3 {
        let (ok, _, err) = tool_env(
            "orbput",
            &[&orb_in, "--srcname", "TLS_STA/SIDE"],
            &ca_in,
            format!("p{i}").as_bytes(),
        );
        assert!(ok, "{err}");
    }
    let _link = orb_tests::harness::Killed(
        Command::new(bin("orb2orb"))
            .args([orb_in.as_str(), orb_out.as_str(), "oldest"])
            .env("ORB_TLS_CA_IN", &ca_in)
            .env("ORB_TLS_CA_OUT", &ca_out)
            .env("ORB_TLS_CERT_OUT", certs_out.join("client.pem"))
            .env("ORB_TLS_KEY_OUT", certs_out.join("client.key"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn orb2orb"),
    );
    let opts_out = ClientOptions {
        tls: TlsOptions {
            ca: Some(ca_out.clone()),
            cert: Some(certs_out.join("client.pem")),
            key: Some(certs_out.join("client.key")),
        },
        ..ClientOptions::for_program("e2e-tls")
    };
    let addr_out: OrbAddr = orb_out.parse().unwrap();
    orb_tests::harness::wait_until("orb2orb copied the 3 packets", || async {
        let mut c = guard("connect", OrbClient::connect(&addr_out, &opts_out))
            .await
            .expect("connect to OUT over TLS");
        c.stat().await.expect("STAT").ring.npkts == 3
    })
    .await;
}
