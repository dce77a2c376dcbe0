//! The HTTP port over real loopback sockets with raw requests, so that what is tested
//! is the bytes a client sees, bad requests included.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use formats::proto::info::{ServerStat, SourcesInfo};
use formats::{SrcName, Time};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::access::{AccessFile, AccessRules};
use crate::config::{HttpOptions, ServerConfig};
use crate::hub::Hub;
use crate::ring::{FlushPolicy, RingOptions};
use crate::server::Server;

struct Running {
    http: SocketAddr,
    orb: SocketAddr,
    hub: Arc<Hub>,
    /// The first packet's time; the others follow a second apart.
    t0: i64,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Running {
    /// Waits (bounded) until earlier connections have left the client table: a
    /// connection's task drops its row just after closing the socket, so a client can
    /// see the close first.
    async fn settle(&self) {
        for _ in 0..1000 {
            if self.hub.clients.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("connections stayed in the client table");
    }

    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops")
            .unwrap();
    }
}

/// A server with an HTTP port, `access` as its `[access]` table, and three packets of
/// two sources in its ring.
async fn start(access: &str, tweak: impl FnOnce(&mut ServerConfig)) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let file: AccessFile = toml::from_str(access).unwrap();
    let mut cfg = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ring_dir: dir.path().join("ring"),
        ring: RingOptions {
            size: Some(1 << 20),
            flush: FlushPolicy::None,
        },
        access: AccessRules::from_file(&file).unwrap(),
        http: Some("127.0.0.1:0".parse().unwrap()),
        ..ServerConfig::default()
    };
    tweak(&mut cfg);
    let server = Server::bind(cfg).await.unwrap();
    let ring = &server.shared().ring;
    let t0 = Time::now().as_micros() - 60_000_000;
    for (i, name) in ["AA_ONE/EXP", "BB_TWO/EXP", "AA_ONE/EXP"]
        .iter()
        .enumerate()
    {
        ring.append(
            &SrcName::new(name).unwrap(),
            Time::from_micros(t0 + i as i64 * 1_000_000),
            format!("payload {i}").as_bytes(),
        )
        .unwrap();
    }
    let http = server.http_addr().unwrap();
    let orb = server.local_addr().unwrap();
    let hub = Arc::clone(server.shared());
    let stop = server.shutdown_token();
    let task = tokio::spawn(async move {
        server.run(Duration::from_secs(5)).await.unwrap();
    });
    Running {
        http,
        orb,
        hub,
        t0,
        stop,
        task,
        _dir: dir,
    }
}

/// A parsed response.
#[derive(Debug)]
struct Resp {
    status: u16,
    head: String,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }
}

/// Sends `raw` and reads until the server closes; the response must come within 10 s.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got))
        .await
        .expect("the server answers and closes")
        .unwrap();
    parse(&got)
}

fn parse(got: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(got).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Resp {
        status,
        head: head.to_string(),
        body: if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    }
}

/// Decodes a chunked body (sizes in hex, each chunk followed by CRLF).
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

async fn get(addr: SocketAddr, path: &str) -> Resp {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: http-test\r\nConnection: close\r\n\r\n"
    );
    exchange(addr, req.as_bytes()).await
}

fn json(r: &Resp) -> serde_json::Value {
    assert_eq!(r.status, 200, "{r:?}");
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

#[tokio::test]
async fn every_resource_answers_from_an_admin_address() {
    let s = start("", |_| {}).await;
    let a = s.http;
    let id = json(&get(a, "/id/json").await);
    assert!(id["software"].as_str().unwrap().starts_with("orbserver"));
    assert!(id["server_start"].as_str().unwrap().ends_with('Z'));
    assert!(get(a, "/id").await.body.starts_with("orbserver"));

    let st = json(&get(a, "/streams/json").await);
    assert_eq!(st["stream_count"], 2);
    assert_eq!(st["stream"][0]["srcname"], "AA_ONE/EXP");
    assert_eq!(st["stream"][0]["earliest_packet_id"], 1);
    assert_eq!(st["stream"][0]["latest_packet_id"], 3);
    assert_eq!(st["stream"][0]["packets"], 2);
    assert!(st["stream"][0]["data_latency"].as_f64().unwrap() > 0.0);
    let only_b = json(&get(a, "/streams/json?match=BB").await);
    assert_eq!(only_b["stream_count"], 1);
    assert_eq!(get(a, "/streams?match=(").await.status, 400);
    let text = get(a, "/streams").await;
    assert_eq!(text.body.lines().count(), 2, "{text:?}");
    let ids = get(a, "/streamids").await;
    assert_eq!(ids.body.lines().count(), 2);
    let ids = json(&get(a, "/streamids/json").await);
    assert_eq!(
        ids["stream"][1]["id"],
        ids["stream"][1]["id"].as_str().unwrap()
    );

    let status = json(&get(a, "/status/json").await);
    assert_eq!(status["server"]["ring_size"], 1 << 20);
    assert_eq!(status["server"]["earliest_packet_id"], 1);
    assert_eq!(status["server"]["latest_packet_id"], 3);
    let threads = status["server"]["thread"].as_array().unwrap();
    assert!(threads
        .iter()
        .any(|t| t["protocol"] == "http" && t["port"] == s.http.port().to_string().as_str()));
    assert!(get(a, "/status").await.body.contains("Ring size: 1048576"));

    let conns = json(&get(a, "/connections/json").await);
    let me = &conns["connections"]["client"][0];
    assert_eq!(me["type"], "http", "{conns}");
    assert_eq!(me["server_port"], s.http.port().to_string().as_str());
    assert!(me["client_id"].as_str().unwrap().contains("http-test"));
    assert!(get(a, "/connections").await.body.contains("[http]"));

    // The orbstat documents, in the same types orbstat reads.
    s.settle().await;
    let stat: ServerStat = serde_json::from_str(&get(a, "/api/v1/stat").await.body).unwrap();
    assert_eq!(stat.ring.npkts, 3);
    assert_eq!(stat.clients, 1, "the HTTP connection itself is a client");
    let sources: SourcesInfo = serde_json::from_str(&get(a, "/api/v1/sources").await.body).unwrap();
    assert_eq!(sources.sources.len(), 2);
    let clients = json(&get(a, "/api/v1/clients").await);
    assert_eq!(clients["clients"][0]["what"], "HTTP client");
    s.stop().await;
}

#[tokio::test]
async fn admin_resources_answer_403_to_other_addresses_and_count_it() {
    let s = start("admin = []", |_| {}).await;
    for path in [
        "/status",
        "/status/json",
        "/connections",
        "/connections/json",
        "/api/v1/clients",
    ] {
        let r = get(s.http, path).await;
        assert_eq!(r.status, 403, "{path}: {r:?}");
        assert!(r.body.contains("admin"), "{r:?}");
    }
    assert_eq!(s.hub.refused.admin_not_allowed.load(Relaxed), 5);
    assert_eq!(get(s.http, "/id/json").await.status, 200);
    assert_eq!(get(s.http, "/api/v1/stat").await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn reading_resources_answer_403_without_read_rights() {
    let s = start("read = []", |_| {}).await;
    for path in [
        "/api/v1/packets",
        "/streams/json",
        "/streamids",
        "/api/v1/envelope?select=AA_.*&chan=BHZ",
    ] {
        assert_eq!(get(s.http, path).await.status, 403, "{path}");
    }
    assert_eq!(s.hub.refused.reads_not_allowed.load(Relaxed), 4);
    // The page itself needs no read rights; what it fetches does.
    assert_eq!(get(s.http, "/").await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn packets_stream_as_json_lines_with_select_and_limit() {
    let s = start("", |_| {}).await;
    let r = get(s.http, "/api/v1/packets").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<serde_json::Value> = r
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{r:?}");
    assert_eq!(lines[0]["pktid"], 1);
    assert_eq!(lines[1]["srcname"], "BB_TWO/EXP");
    assert_eq!(lines[0]["nbytes"], 9);
    assert_eq!(lines[0]["channels"], serde_json::json!([]));
    let r = get(s.http, "/api/v1/packets?select=AA_.*&limit=1").await;
    assert_eq!(r.body.lines().count(), 1);
    assert!(r.body.contains("\"pktid\":1,"));
    let r = get(s.http, "/api/v1/packets?select=AA_.*&reject=AA_ONE.*").await;
    assert_eq!(r.body, "");
    let half = |us: i64| {
        let us = us + 500_000;
        format!(
            "{}.{:06}",
            us.div_euclid(1_000_000),
            us.rem_euclid(1_000_000)
        )
    };
    let at = format!(
        "/api/v1/packets?start={}&end={}",
        half(s.t0),
        half(s.t0 + 1_000_000)
    );
    let r = get(s.http, &at).await;
    assert_eq!(r.body.lines().count(), 1, "{r:?}");
    assert!(r.body.starts_with("{\"pktid\":2,"), "{r:?}");
    assert_eq!(get(s.http, "/api/v1/packets?limit=x").await.status, 400);
    assert_eq!(s.hub.totals.packets_out.load(Relaxed), 5);
    s.stop().await;
}

#[tokio::test]
async fn packets_after_a_cursor_are_each_seen_once() {
    let s = start("", |_| {}).await;
    let ids = |r: &Resp| -> Vec<u64> {
        assert_eq!(r.status, 200, "{r:?}");
        r.body
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["pktid"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(
        ids(&get(s.http, "/api/v1/packets?after=0").await),
        [1, 2, 3]
    );
    assert_eq!(ids(&get(s.http, "/api/v1/packets?after=1").await), [2, 3]);
    assert_eq!(
        ids(&get(s.http, "/api/v1/packets?after=3").await),
        [] as [u64; 0]
    );
    assert_eq!(
        ids(&get(s.http, "/api/v1/packets?after=99").await),
        [] as [u64; 0]
    );
    assert_eq!(
        ids(&get(s.http, "/api/v1/packets?after=1&limit=1").await),
        [2]
    );
    assert_eq!(
        ids(&get(s.http, "/api/v1/packets?after=1&select=AA_.*").await),
        [3]
    );
    // With a start time too, both bounds hold.
    let start = format!(
        "/api/v1/packets?after=2&start={}.0",
        s.t0.div_euclid(1_000_000)
    );
    assert_eq!(ids(&get(s.http, &start).await), [3]);
    for bad in [
        "after=-1",
        "after=x",
        "after=1e3",
        "after=99999999999999999999999",
    ] {
        let r = get(s.http, &format!("/api/v1/packets?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}: {r:?}");
        assert!(r.body.contains("bad after"), "{bad}: {r:?}");
    }
    s.stop().await;
}

#[tokio::test]
async fn metrics_show_the_counters() {
    let s = start("admin = []", |_| {}).await;
    assert_eq!(get(s.http, "/status").await.status, 403);
    s.settle().await;
    let r = get(s.http, "/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .contains("openmetrics-text"));
    for want in [
        "orb_packets_in_total 0",
        "orb_ring_packets 3",
        "orb_clients{protocol=\"http\"} 1",
        "orb_refusals_total{kind=\"admin_not_allowed\"} 1",
        "orb_source_packets{srcname=\"AA_ONE/EXP\"} 2",
        "orb_source_latency_seconds{srcname=\"BB_TWO/EXP\"}",
        "orb_ring_oldest_age_seconds ",
        "orb_flush_latency_seconds_bucket{le=\"+Inf\"}",
        "# EOF",
    ] {
        assert!(r.body.contains(want), "{want} in {}", r.body);
    }
    s.stop().await;
}

#[tokio::test]
async fn bad_requests_are_answered_and_counted() {
    let s = start("", |c| {
        c.limits.handshake_timeout = Duration::from_millis(300)
    })
    .await;
    let a = s.http;
    let r = get(a, "/nowhere").await;
    assert_eq!(r.status, 404);
    let r = exchange(
        a,
        b"POST /id HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = exchange(a, b"GARBAGE\r\n\r\n").await;
    assert_eq!(r.status, 400, "{r:?}");
    let huge = format!(
        "GET /id HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(super::MAX_HEADER_BYTES)
    );
    let r = exchange(a, huge.as_bytes()).await;
    assert_eq!(r.status, 431, "{r:?}");
    // Slowloris: half a request head, then nothing. The server must close.
    let r = exchange(a, b"GET /id HTTP/1.1\r\nHost: x\r\n").await;
    assert_eq!(r.status, 0, "no answer, just the close: {r:?}");
    // HEAD: headers only.
    let r = exchange(
        a,
        b"HEAD /id/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));

    let m = get(a, "/metrics").await.body;
    for kind in [
        "http_not_found",
        "http_method_not_allowed",
        "http_bad_request",
        "http_headers_too_large",
        "http_header_timeout",
    ] {
        assert!(
            m.contains(&format!("orb_refusals_total{{kind=\"{kind}\"}} 1\n")),
            "{kind}: {m}"
        );
    }
    // The native port did not notice.
    let mut native = TcpStream::connect(s.orb).await.unwrap();
    native.write_all(b"\0").await.unwrap();
    drop(native);
    assert_eq!(get(a, "/id").await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_handshake_timeout() {
    let s = start("", |c| {
        c.limits.handshake_timeout = Duration::from_millis(300)
    })
    .await;
    // Nothing sent at all.
    let r = exchange(s.http, b"").await;
    assert_eq!(r.status, 0, "{r:?}");
    // One whole request, then idle on the kept-alive connection.
    let r = exchange(s.http, b"GET /id HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(r.status, 200, "{r:?}");
    // Both connections leave the client table (or settle panics).
    s.settle().await;
    s.stop().await;
}

#[tokio::test]
async fn kill_closes_a_kept_alive_http_connection() {
    let s = start("", |_| {}).await;
    let mut held = TcpStream::connect(s.http).await.unwrap();
    held.write_all(b"GET /id HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    held.read_exact(&mut first).await.unwrap();
    let entries = s.hub.clients.entries();
    let http: Vec<_> = entries.iter().filter(|e| e.protocol() == "http").collect();
    assert_eq!(http.len(), 1);
    http[0].kill.cancel();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), held.read_to_end(&mut rest))
        .await
        .expect("KILL closes the connection")
        .unwrap();
    s.stop().await;
}

#[tokio::test]
async fn admission_limits_apply_to_the_http_port() {
    let s = start("", |c| c.limits.max_clients_per_address = 1).await;
    // One idle keep-alive connection holds the address's one slot.
    let mut held = TcpStream::connect(s.http).await.unwrap();
    held.write_all(b"GET /id HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    held.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let r = get(s.http, "/id").await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.body.contains("maximum of 1"), "{r:?}");
    assert_eq!(s.hub.refused.connects_limit.load(Relaxed), 1);
    drop(held);
    s.stop().await;
}

#[tokio::test]
async fn configured_headers_and_web_root_files() {
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "<p>hello</p>").unwrap();
    std::fs::write(www.path().join("app.js"), "let x;").unwrap();
    std::fs::create_dir(www.path().join("ui")).unwrap();
    std::fs::write(www.path().join("ui/index.html"), "shadow").unwrap();
    let root = www.path().to_path_buf();
    let s = start("", move |c| {
        c.http_options = HttpOptions {
            headers: vec![("Access-Control-Allow-Origin".into(), "*".into())],
            web_root: Some(root),
        }
    })
    .await;
    let r = get(s.http, "/").await;
    assert_eq!((r.status, r.body.as_str()), (200, "<p>hello</p>"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let r = get(s.http, "/app.js").await;
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    let r = get(s.http, "/../etc/passwd").await;
    assert_eq!(r.status, 404);
    let r = get(s.http, "/%2e%2e/%2e%2e/etc/passwd").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    // Resources win over files.
    assert_eq!(json(&get(s.http, "/id/json").await)["organization"], "");
    // The web root's index.html is `/`, but the live view stays at /ui/: a web root
    // cannot shadow it.
    let r = get(s.http, "/ui/").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<title>orb live view</title>"), "{r:?}");
    s.stop().await;
}

#[tokio::test]
async fn the_live_view_is_at_the_root_without_a_web_root() {
    let s = start("", |_| {}).await;
    let page = get(s.http, "/").await;
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(page.body.contains("<title>orb live view</title>"));
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert_eq!(get(s.http, "/ui/").await.body, page.body);
    assert_eq!(get(s.http, "/ui").await.body, page.body);
    let js = get(s.http, "/ui/live.js").await;
    assert!(js
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.body.contains("class PacketPoller"));
    let css = get(s.http, "/ui/live.css").await;
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    for bad in [
        "/ui/missing.js",
        "/ui/../etc/passwd",
        "/ui/live.js/x",
        "/index.html",
    ] {
        assert_eq!(get(s.http, bad).await.status, 404, "{bad}");
    }
    let m = get(s.http, "/metrics").await.body;
    assert!(
        m.contains("orb_refusals_total{kind=\"http_not_found\"} 4\n"),
        "{m}"
    );
    let head = exchange(
        s.http,
        b"HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    s.stop().await;
}

#[tokio::test]
async fn envelope_requests_are_checked() {
    let s = start("", |_| {}).await;
    for bad in [
        "",
        "?chan=BHZ",
        "?select=AA_.*",
        "?select=(&chan=BHZ",
        "?select=AA_.*&chan=B/Z",
        "?select=AA_.*&chan=BHZ&bins=0",
        "?select=AA_.*&chan=BHZ&bins=100001",
        "?select=AA_.*&chan=BHZ&bins=many",
        "?select=AA_.*&chan=BHZ&limit=-5",
        "?select=AA_.*&chan=BHZ&start=soon",
        "?select=AA_.*&chan=BHZ&start=-1h&end=-2h",
    ] {
        let r = get(s.http, &format!("/api/v1/envelope{bad}")).await;
        assert_eq!(r.status, 400, "{bad}: {r:?}");
        assert!(r.body.starts_with("400 Bad Request: "), "{r:?}");
    }
    // Packets orb cannot decode have no channels: an envelope with no data, not an error.
    let r = json(
        &get(
            s.http,
            "/api/v1/envelope?select=AA_.*&chan=BHZ&bins=4&start=-1h",
        )
        .await,
    );
    assert_eq!(r["bins"], 4);
    assert_eq!(r["packets"], 2);
    assert_eq!(r["min"], serde_json::json!([null, null, null, null]));
    assert_eq!(r["srcname"], serde_json::Value::Null);
    s.stop().await;
}

#[tokio::test]
async fn seed_sources_are_listed_under_their_fdsn_stream_ids() {
    let s = start("", |_| {}).await;
    s.hub
        .ring
        .append(
            &SrcName::new("XX_STA_BHZ_00/SEED").unwrap(),
            Time::now(),
            b"not really miniSEED",
        )
        .unwrap();
    let ids = get(s.http, "/streamids?match=FDSN").await;
    assert_eq!(ids.body, "FDSN:XX_STA_00_B_H_Z/MSEED\n", "{ids:?}");
    let st = json(&get(s.http, "/streams/json?match=FDSN").await);
    assert_eq!(st["stream"][0]["srcname"], "XX_STA_BHZ_00/SEED");
    s.stop().await;
}

#[test]
fn queries_are_percent_decoded() {
    let q = super::Query::parse("select=AA_.%2A&x=a+b&bad=%zz&select=last&e");
    assert_eq!(q.get("select"), Some("last"));
    assert_eq!(q.get("x"), Some("a b"));
    assert_eq!(q.get("bad"), Some("%zz"));
    assert_eq!(q.get("e"), Some(""));
    assert_eq!(q.get("none"), None);
    let q = super::Query::parse("select=AA_.%2A");
    assert_eq!(q.get("select"), Some("AA_.*"));
    assert_eq!(super::Query::parse("a=%").get("a"), Some("%"));
    assert_eq!(super::Query::parse("a=%é").get("a"), Some("%é"));
}
