//! Session tests over real loopback sockets with raw frames: the server's side of the
//! protocol, independent of the client library.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use formats::proto::encode::encode_put;
use formats::proto::{
    decode, Access, Body, Decoded, ErrorCode, Frame, PutPacket, ReapEndReason, Whence,
};
use formats::Time;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::config::ServerConfig;
use crate::ring::{FlushPolicy, RingOptions};

/// An owned copy of the frames tests look at.
#[derive(Debug, Clone, PartialEq)]
enum Got {
    Welcome,
    PutOk(u64, u32),
    Selected(u32),
    Position(u64),
    Packet(u64, String, Vec<u8>),
    Gap(u64, u64, u64),
    ReapEnd(ReapEndReason, u64),
    Info(String),
    Pong,
    Killed(u64),
    Reloaded(String),
    Error(ErrorCode),
}

struct Peer {
    s: TcpStream,
    buf: BytesMut,
}

impl Peer {
    async fn connect(addr: std::net::SocketAddr, access: Access) -> Peer {
        let mut p = Peer {
            s: TcpStream::connect(addr).await.unwrap(),
            buf: BytesMut::new(),
        };
        p.send(Body::Hello {
            version: 1,
            access,
            pid: 1,
            who: "test@host",
            what: "session-test",
            token: None,
        })
        .await;
        assert_eq!(p.recv().await, Got::Welcome);
        p
    }

    async fn send(&mut self, body: Body<'_>) {
        let mut out = BytesMut::new();
        Frame { tag: 7, body }.encode(&mut out);
        self.s.write_all(&out).await.unwrap();
    }

    async fn put(&mut self, packets: &[(&str, i64, &[u8])]) -> Got {
        let mut out = BytesMut::new();
        let ps = packets.iter().map(|&(s, t, p)| PutPacket {
            srcname: s,
            time: Time::from_micros(t),
            payload: p,
        });
        encode_put(&mut out, 1, false, ps);
        self.s.write_all(&out).await.unwrap();
        self.recv().await
    }

    async fn recv(&mut self) -> Got {
        tokio::time::timeout(Duration::from_secs(5), self.recv_inner())
            .await
            .expect("a frame within 5 s")
    }

    async fn recv_inner(&mut self) -> Got {
        loop {
            if let Decoded::Frame(f, n) = decode(&self.buf, 1 << 24).unwrap() {
                let g = match f.body {
                    Body::Welcome { .. } => Got::Welcome,
                    Body::PutOk { first_pktid, count } => Got::PutOk(first_pktid, count),
                    Body::Selected { nsources } => Got::Selected(nsources),
                    Body::Position { pktid } => Got::Position(pktid),
                    Body::Packet {
                        pktid,
                        srcname,
                        payload,
                        ..
                    } => Got::Packet(pktid, srcname.into(), payload.to_vec()),
                    Body::Gap { first, last, bytes } => Got::Gap(first, last, bytes),
                    Body::ReapEnd { reason, pos } => Got::ReapEnd(reason, pos),
                    Body::Info { json } => Got::Info(json.into()),
                    Body::Pong { .. } => Got::Pong,
                    Body::Killed { client_id } => Got::Killed(client_id),
                    Body::Reloaded { summary } => Got::Reloaded(summary.into()),
                    Body::Error { code, .. } => Got::Error(code),
                    other => panic!("unexpected {other:?}"),
                };
                self.buf.advance(n);
                return g;
            }
            if self.s.read_buf(&mut self.buf).await.unwrap() == 0 {
                panic!("connection closed");
            }
        }
    }

    /// The read position, by TELL.
    async fn pos_now(&mut self) -> u64 {
        self.send(Body::Tell).await;
        match self.recv().await {
            Got::Position(p) => p,
            other => panic!("TELL answered by {other:?}"),
        }
    }

    /// The next frame, which must be an ERROR: its code and tag.
    async fn recv_error(&mut self) -> (ErrorCode, u32) {
        for _ in 0..1000 {
            if let Decoded::Frame(f, n) = decode(&self.buf, 1 << 24).unwrap() {
                let Body::Error { code, .. } = f.body else {
                    panic!("expected an ERROR, got {:?}", f.body)
                };
                let tag = f.tag;
                self.buf.advance(n);
                return (code, tag);
            }
            let read = tokio::time::timeout(Duration::from_secs(5), self.s.read_buf(&mut self.buf));
            assert!(
                read.await.expect("a frame within 5 s").unwrap() > 0,
                "closed"
            );
        }
        panic!("no whole frame")
    }

    /// A connection that has sent nothing yet.
    async fn raw(addr: std::net::SocketAddr) -> Peer {
        Peer {
            s: TcpStream::connect(addr).await.unwrap(),
            buf: BytesMut::new(),
        }
    }

    /// True if the server closed the connection (after any frames already sent).
    async fn closed(&mut self) -> bool {
        let mut b = [0u8; 4096];
        for _ in 0..100 {
            match tokio::time::timeout(Duration::from_secs(5), self.s.read(&mut b)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
        false
    }
}

const RW: Access = Access {
    read: true,
    write: true,
};

async fn start(
    size: u64,
) -> (
    tempfile::TempDir,
    std::net::SocketAddr,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    start_with(size, None).await
}

/// A server as `start` makes it, reading its access rules from `config` on RELOAD.
async fn start_with(
    size: u64,
    config: Option<std::path::PathBuf>,
) -> (
    tempfile::TempDir,
    std::net::SocketAddr,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ring_dir: dir.path().to_owned(),
        ring: RingOptions {
            size: Some(size),
            flush: FlushPolicy::None,
        },
        limits: Limits {
            handshake_timeout: Duration::from_millis(300),
            ..Limits::default()
        },
        ..ServerConfig::default()
    };
    let server = Server::bind(cfg).await.unwrap();
    if let Some(path) = config {
        server.set_config_file(path);
    }
    let addr = server.local_addr().unwrap();
    let token = server.shutdown_token();
    let h = tokio::spawn(async move { server.run(Duration::from_secs(2)).await.unwrap() });
    (dir, addr, token, h)
}

#[tokio::test]
async fn put_get_seek_and_select() {
    let (_d, addr, token, h) = start(1 << 20).await;
    let mut p = Peer::connect(addr, RW).await;
    assert_eq!(
        p.put(&[
            ("TA_M04C/MGENC/EP40", 10, b"a"),
            ("AZ_PFO_BHZ/MGENC/M40", 20, b"b")
        ])
        .await,
        Got::PutOk(1, 2)
    );
    assert_eq!(
        p.put(&[("TA_O20A_/MGENC/MSTV", 5, b"c")]).await,
        Got::PutOk(3, 1)
    );
    p.send(Body::Get {
        current: false,
        pktid: 2,
    })
    .await;
    assert_eq!(
        p.recv().await,
        Got::Packet(2, "AZ_PFO_BHZ/MGENC/M40".into(), b"b".to_vec())
    );
    p.send(Body::Get {
        current: false,
        pktid: 9,
    })
    .await;
    assert_eq!(p.recv().await, Got::Error(ErrorCode::NotFound));
    p.send(Body::Select { expr: "TA_.*" }).await;
    assert_eq!(p.recv().await, Got::Selected(2));
    p.send(Body::Reject { expr: ".*MSTV" }).await;
    assert_eq!(p.recv().await, Got::Selected(1));
    p.send(Body::Select { expr: "TA_(" }).await;
    assert_eq!(p.recv().await, Got::Error(ErrorCode::BadRegex));
    // After HELLO the position is the next pktid; seeks per PROTOCOL.md.
    p.send(Body::Tell).await;
    assert_eq!(p.recv().await, Got::Position(1));
    p.send(Body::Seek {
        whence: Whence::Oldest,
        pktid: 0,
    })
    .await;
    assert_eq!(p.recv().await, Got::Position(1));
    p.send(Body::Seek {
        whence: Whence::Next,
        pktid: 0,
    })
    .await;
    assert_eq!(p.recv().await, Got::Position(2));
    p.send(Body::Seek {
        whence: Whence::Current,
        pktid: 0,
    })
    .await;
    // Only pktid 1 matches TA_.* minus MSTV: no current packet at or after 2.
    assert_eq!(p.recv().await, Got::Position(2));
    p.send(Body::Seek {
        whence: Whence::Prev,
        pktid: 0,
    })
    .await;
    assert_eq!(p.recv().await, Got::Position(1));
    p.send(Body::Seek {
        whence: Whence::Pktid,
        pktid: 99,
    })
    .await;
    assert_eq!(p.recv().await, Got::Error(ErrorCode::OutOfRange));
    p.send(Body::After {
        time: Time::from_micros(15),
    })
    .await;
    assert_eq!(p.recv().await, Got::Position(2));
    p.send(Body::Seek {
        whence: Whence::Newest,
        pktid: 0,
    })
    .await;
    assert_eq!(p.recv().await, Got::Position(3));
    p.send(Body::Ping { nonce: 3 }).await;
    assert_eq!(p.recv().await, Got::Pong);
    token.cancel();
    assert_eq!(p.recv().await, Got::Error(ErrorCode::ShuttingDown));
    h.await.unwrap();
}

#[tokio::test]
async fn reap_streams_blocks_for_new_packets_and_reports_gaps() {
    let (_d, addr, token, h) = start(1 << 20).await;
    let mut w = Peer::connect(addr, RW).await;
    let mut r = Peer::connect(
        addr,
        Access {
            read: true,
            write: false,
        },
    )
    .await;
    r.send(Body::Seek {
        whence: Whence::Oldest,
        pktid: 0,
    })
    .await;
    assert_eq!(r.recv().await, Got::Position(1));
    r.send(Body::Reap {
        max_packets: 3,
        timeout_ms: u32::MAX,
        credit: 100,
    })
    .await;
    // Nothing in the ring yet: the reap waits, and a put wakes it.
    assert_eq!(
        w.put(&[("A/GEN", 1, b"1"), ("B/GEN", 2, b"2")]).await,
        Got::PutOk(1, 2)
    );
    assert_eq!(
        r.recv().await,
        Got::Packet(1, "A/GEN".into(), b"1".to_vec())
    );
    assert_eq!(
        r.recv().await,
        Got::Packet(2, "B/GEN".into(), b"2".to_vec())
    );
    assert_eq!(w.put(&[("A/GEN", 3, b"3")]).await, Got::PutOk(3, 1));
    assert_eq!(
        r.recv().await,
        Got::Packet(3, "A/GEN".into(), b"3".to_vec())
    );
    assert_eq!(r.recv().await, Got::ReapEnd(ReapEndReason::Budget, 4));
    // A writer cannot read without read access, a reader cannot write.
    assert_eq!(
        r.put(&[("A/GEN", 1, b"x")]).await,
        Got::Error(ErrorCode::NotAllowed)
    );
    // Lap the reader: fill the 1 MiB ring several times over.
    let big = vec![7u8; 60_000];
    for _ in 0..60 {
        assert!(matches!(w.put(&[("A/GEN", 4, &big)]).await, Got::PutOk(..)));
    }
    r.send(Body::Reap {
        max_packets: 0,
        timeout_ms: 0,
        credit: 1000,
    })
    .await;
    let got = r.recv().await;
    let Got::Gap(first, last, bytes) = got else {
        panic!("expected a gap first, got {got:?}")
    };
    assert_eq!(first, 4);
    assert!(last > 4 && bytes > 0, "{last} {bytes}");
    let mut n = 0;
    loop {
        match r.recv().await {
            Got::Packet(id, ..) => {
                assert_eq!(id, last + 1 + n);
                n += 1;
            }
            Got::ReapEnd(ReapEndReason::Timeout, pos) => {
                assert_eq!(pos, 64);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(n >= 10);
    r.send(Body::Stat).await;
    let Got::Info(json) = r.recv().await else {
        panic!()
    };
    let stat: formats::proto::info::ServerStat = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (stat.totals.gaps, stat.totals.packets_in, stat.clients),
        (1, 63, 2)
    );
    token.cancel();
    h.await.unwrap();
}

#[tokio::test]
async fn credit_stop_and_timeout() {
    let (_d, addr, token, h) = start(1 << 20).await;
    let mut w = Peer::connect(addr, RW).await;
    for i in 0..10 {
        w.put(&[("A/GEN", i, b"p")]).await;
    }
    w.send(Body::Seek {
        whence: Whence::Oldest,
        pktid: 0,
    })
    .await;
    w.recv().await;
    w.send(Body::Reap {
        max_packets: 0,
        timeout_ms: 200,
        credit: 2,
    })
    .await;
    assert!(matches!(w.recv().await, Got::Packet(1, ..)));
    assert!(matches!(w.recv().await, Got::Packet(2, ..)));
    // No credit: no packets and no timeout, however long we wait.
    assert!(
        tokio::time::timeout(Duration::from_millis(400), w.recv_inner())
            .await
            .is_err()
    );
    w.send(Body::Select { expr: "" }).await;
    assert_eq!(w.recv().await, Got::Error(ErrorCode::BadState));
    w.send(Body::Credit { n: 1 }).await;
    assert!(matches!(w.recv().await, Got::Packet(3, ..)));
    w.send(Body::Stop).await;
    assert_eq!(w.recv().await, Got::ReapEnd(ReapEndReason::Stopped, 4));
    w.send(Body::Reap {
        max_packets: 0,
        timeout_ms: 150,
        credit: 100,
    })
    .await;
    for id in 4..=10 {
        assert!(matches!(w.recv().await, Got::Packet(i, ..) if i == id));
    }
    assert_eq!(w.recv().await, Got::ReapEnd(ReapEndReason::Timeout, 11));
    token.cancel();
    h.await.unwrap();
}

#[tokio::test]
async fn bad_input_closes_only_that_connection() {
    let (_d, addr, token, h) = start(1 << 20).await;
    let mut good = Peer::connect(addr, RW).await;
    // Garbage: a malformed frame gets an error and the connection is closed.
    let mut bad = Peer::connect(addr, RW).await;
    bad.s
        .write_all(&[6, 0, 0, 0, 0x77, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    assert_eq!(bad.recv().await, Got::Error(ErrorCode::Malformed));
    assert!(bad.closed().await);
    // An oversized declared length is refused before the body is read.
    let mut big = Peer::connect(addr, RW).await;
    big.s.write_all(&u32::MAX.to_le_bytes()).await.unwrap();
    assert_eq!(big.recv().await, Got::Error(ErrorCode::TooLarge));
    assert!(big.closed().await);
    // No HELLO within the handshake timeout.
    let mut silent = Peer {
        s: TcpStream::connect(addr).await.unwrap(),
        buf: BytesMut::new(),
    };
    assert_eq!(silent.recv().await, Got::Error(ErrorCode::BadState));
    assert!(silent.closed().await);
    // A frame arriving one byte at a time is fine, however slowly.
    let mut slow = Peer {
        s: TcpStream::connect(addr).await.unwrap(),
        buf: BytesMut::new(),
    };
    let mut hello = BytesMut::new();
    Frame {
        tag: 1,
        body: Body::Hello {
            version: 1,
            access: RW,
            pid: 2,
            who: "w",
            what: "slow",
            token: None,
        },
    }
    .encode(&mut hello);
    for b in hello.iter() {
        slow.s.write_all(&[*b]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(slow.recv().await, Got::Welcome);
    // Bad srcname and oversized packet: refused, nothing stored, connection usable.
    assert_eq!(
        good.put(&[("A/GEN", 1, b"ok"), ("has space", 1, b"x")])
            .await,
        Got::Error(ErrorCode::BadSrcname)
    );
    let huge = vec![0u8; 300_000];
    assert_eq!(
        good.put(&[("A/GEN", 1, &huge)]).await,
        Got::Error(ErrorCode::PacketTooLarge)
    );
    assert_eq!(good.put(&[("A/GEN", 1, b"ok")]).await, Got::PutOk(1, 1));
    // A wrong protocol version is refused.
    let mut old = Peer {
        s: TcpStream::connect(addr).await.unwrap(),
        buf: BytesMut::new(),
    };
    old.send(Body::Hello {
        version: 9,
        access: RW,
        pid: 1,
        who: "",
        what: "",
        token: None,
    })
    .await;
    assert_eq!(old.recv().await, Got::Error(ErrorCode::BadVersion));
    token.cancel();
    h.await.unwrap();
}

/// KILL closes a reader that stopped reading in the middle of a large reap (the server
/// may be blocked writing to it), frees its place in the client table, and refuses
/// the admin's own id; RELOAD on a server without a config file changes nothing.
#[tokio::test]
async fn kill_closes_a_stalled_reader_and_reload_needs_a_config_file() {
    let (_d, addr, token, h) = start(4 << 20).await;
    // Client ids are handed out in connection order: writer 1, reader 2, admin 3.
    let mut w = Peer::connect(addr, RW).await;
    let payload = [7u8; 16 << 10];
    for i in 0..128 {
        let got = w.put(&[("XX_STA01_BHZ", i, &payload)]).await;
        assert!(matches!(got, Got::PutOk(..)), "{got:?}");
    }
    let mut stalled = Peer::connect(addr, RW).await;
    stalled
        .send(Body::Seek {
            whence: Whence::Oldest,
            pktid: 0,
        })
        .await;
    assert!(matches!(stalled.recv().await, Got::Position(_)));
    stalled
        .send(Body::Reap {
            max_packets: 0,
            timeout_ms: formats::proto::NO_TIMEOUT,
            credit: u32::MAX,
        })
        .await;
    let mut admin = Peer::connect(addr, Access::default()).await;
    admin.send(Body::Kill { client_id: 3 }).await;
    assert_eq!(admin.recv().await, Got::Error(ErrorCode::BadState));
    admin.send(Body::Kill { client_id: 2 }).await;
    assert_eq!(admin.recv().await, Got::Killed(2));
    // Drain what was sent before the kill, up to the close. Whether ERROR Killed is
    // among it depends on whether the stalled socket had room for it (the e2e test in
    // tests/access.rs checks it for a reader that reads); the bytes must be whole
    // frames, perhaps cut short at the end, never garbage.
    let mut tail = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    for _ in 0..10_000 {
        let read = tokio::time::timeout(Duration::from_secs(5), stalled.s.read(&mut chunk));
        match read.await.expect("the killed reader was not closed") {
            Ok(0) | Err(_) => break,
            Ok(n) => tail.extend_from_slice(&chunk[..n]),
        }
    }
    let mut at = 0;
    while let Decoded::Frame(_, n) = decode(&tail[at..], 1 << 24).expect("whole frames") {
        at += n;
    }
    // Its entry goes when its task ends; poll, bounded.
    let mut gone = false;
    for _ in 0..250 {
        admin.send(Body::Kill { client_id: 2 }).await;
        if admin.recv().await == Got::Error(ErrorCode::NotFound) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "client 2 is still in the table");
    admin.send(Body::Reload).await;
    assert_eq!(admin.recv().await, Got::Error(ErrorCode::BadState));
    // The writer is untouched.
    let got = w.put(&[("XX_STA01_BHZ", 999, b"x")]).await;
    assert!(matches!(got, Got::PutOk(129, 1)), "{got:?}");
    token.cancel();
    h.await.unwrap();
}

/// STAT as a parsed document.
async fn stat(p: &mut Peer) -> formats::proto::info::ServerStat {
    p.send(Body::Stat).await;
    let Got::Info(json) = p.recv().await else {
        panic!("STAT answered by something else")
    };
    serde_json::from_str(&json).unwrap()
}

/// The CLIENTS row of client `id` (loopback is admin by default).
async fn client_row(p: &mut Peer, id: u64) -> formats::proto::info::ClientStat {
    p.send(Body::Clients).await;
    let Got::Info(json) = p.recv().await else {
        panic!("CLIENTS answered by something else")
    };
    let doc: formats::proto::info::ClientsInfo = serde_json::from_str(&json).unwrap();
    doc.clients.into_iter().find(|c| c.id == id).unwrap()
}

/// Puts 160 packets of 8 KiB: more than a 1 MiB ring holds, so every earlier pktid is
/// overwritten. Returns the oldest pktid left.
async fn lap(w: &mut Peer) -> u64 {
    let payload = vec![5u8; 8 << 10];
    for i in 0..160 {
        let got = w.put(&[("XX_LAP", i, &payload)]).await;
        assert!(matches!(got, Got::PutOk(..)), "{got:?}");
    }
    stat(w).await.ring.oldest.expect("packets").pktid
}

/// Drains a poll reap: the frames up to and including its REAP_END, packets without
/// their payloads (so that a failing assertion prints little).
async fn drain_reap(r: &mut Peer) -> Vec<Got> {
    let mut got = Vec::new();
    for _ in 0..10_000 {
        let g = match r.recv().await {
            Got::Packet(id, src, _) => Got::Packet(id, src, Vec::new()),
            g => g,
        };
        let end = matches!(g, Got::ReapEnd(..));
        got.push(g);
        if end {
            return got;
        }
    }
    panic!("no REAP_END")
}

/// A reader whose position was overwritten is never moved silently: SEEK CURRENT and
/// SEEK NEXT step over the loss, and the next reap starts with the GAP, counted in STAT
/// and in the reader's CLIENTS row. An absolute SEEK drops the pending loss.
#[tokio::test]
async fn a_lapped_reader_moved_by_seek_gets_a_gap() {
    let (_d, addr, token, h) = start(1 << 20).await;
    // Client ids: writer 1, reader 2.
    let mut w = Peer::connect(addr, RW).await;
    let mut r = Peer::connect(addr, RW).await;
    for i in 0..3 {
        w.put(&[("XX_LAP", i, b"small")]).await;
    }
    r.send(Body::Seek {
        whence: Whence::Pktid,
        pktid: 2,
    })
    .await;
    assert_eq!(r.recv().await, Got::Position(2));
    let poll = || Body::Reap {
        max_packets: 0,
        timeout_ms: 0,
        credit: 1000,
    };
    for (whence, step) in [(Whence::Current, 0), (Whence::Next, 1)] {
        let before = r.pos_now().await;
        let oldest = lap(&mut w).await;
        assert!(oldest > before, "{oldest} {before}");
        r.send(Body::Seek { whence, pktid: 0 }).await;
        assert_eq!(r.recv().await, Got::Position(oldest + step));
        r.send(poll()).await;
        let got = drain_reap(&mut r).await;
        let Got::Gap(first, last, bytes) = got[0] else {
            panic!("{whence:?}: expected a GAP first, got {:?}", got[0])
        };
        assert_eq!((first, last), (before, oldest - 1), "{whence:?}");
        assert!(bytes > 0);
        assert_eq!(
            got[1],
            Got::Packet(oldest + step, "XX_LAP".into(), Vec::new())
        );
    }
    let st = stat(&mut r).await;
    assert_eq!(st.totals.gaps, 2);
    assert_eq!(client_row(&mut r, 2).await.gaps, 2);
    // An absolute SEEK names the new position itself: no GAP for the old one.
    lap(&mut w).await;
    r.send(Body::Seek {
        whence: Whence::Current,
        pktid: 0,
    })
    .await;
    assert!(matches!(r.recv().await, Got::Position(_)));
    r.send(Body::Seek {
        whence: Whence::Oldest,
        pktid: 0,
    })
    .await;
    assert!(matches!(r.recv().await, Got::Position(_)));
    r.send(poll()).await;
    let got = drain_reap(&mut r).await;
    assert!(matches!(got[0], Got::Packet(..)), "{:?}", got[0]);
    assert_eq!(stat(&mut r).await.totals.gaps, 2);
    token.cancel();
    h.await.unwrap();
}

/// A request needing a right the session did not ask for in HELLO is refused and
/// counted under the same STAT counter as one the access rules refuse.
#[tokio::test]
async fn requests_without_the_asked_right_are_counted_as_refused() {
    let (_d, addr, token, h) = start(1 << 20).await;
    let mut p = Peer::connect(addr, Access::default()).await;
    assert_eq!(
        p.put(&[("XX_STA", 1, b"x")]).await,
        Got::Error(ErrorCode::NotAllowed)
    );
    p.send(Body::Tell).await;
    assert_eq!(p.recv().await, Got::Error(ErrorCode::NotAllowed));
    p.send(Body::Reap {
        max_packets: 0,
        timeout_ms: 0,
        credit: 1,
    })
    .await;
    assert_eq!(p.recv().await, Got::Error(ErrorCode::NotAllowed));
    let refused = stat(&mut p).await.refused;
    assert_eq!(
        (refused.writes_not_allowed, refused.reads_not_allowed),
        (1, 2)
    );
    token.cancel();
    h.await.unwrap();
}

/// CLIENTS shows the rights each session has under the rules in force: `-` for a
/// HELLO that asked for none, and no `rw` (nor a lag) left after a RELOAD that took
/// both rights away from a session's address.
#[tokio::test]
async fn clients_rows_show_the_rights_in_force() {
    let conf = tempfile::tempdir().unwrap();
    let path = conf.path().join("orb.toml");
    std::fs::write(&path, "").unwrap();
    let (_d, addr, token, h) = start_with(1 << 20, Some(path.clone())).await;
    // Client ids: reader-writer 1, one that asked for nothing 2.
    let mut rw = Peer::connect(addr, RW).await;
    let mut admin = Peer::connect(addr, Access::default()).await;
    let row = client_row(&mut admin, 1).await;
    assert_eq!(row.access, "rw");
    assert!(row.lag.is_some());
    assert_eq!(client_row(&mut admin, 2).await.access, "-");
    std::fs::write(&path, "[access]\nread = [\"192.0.2.0/24\"]\nwrite = []\n").unwrap();
    admin.send(Body::Reload).await;
    assert!(matches!(admin.recv().await, Got::Reloaded(_)));
    let row = client_row(&mut admin, 1).await;
    assert_eq!((row.access.as_str(), row.lag), ("-", None));
    // The row tells the truth: the session's requests are refused now.
    rw.send(Body::Tell).await;
    assert_eq!(rw.recv().await, Got::Error(ErrorCode::NotAllowed));
    token.cancel();
    h.await.unwrap();
}

/// The tag rule: an ERROR answering a frame the server read whole carries that frame's
/// tag, whether its kind, body or place in the session was wrong; tag 0 only when the
/// frame was refused by its length alone.
#[tokio::test]
async fn errors_carry_the_tag_of_the_frame_read_whole() {
    let (_d, addr, token, h) = start(1 << 20).await;
    let frame = |kind: u8, tag: u32, body: &[u8]| {
        let mut f = (5 + body.len() as u32).to_le_bytes().to_vec();
        f.push(kind);
        f.extend_from_slice(&tag.to_le_bytes());
        f.extend_from_slice(body);
        f
    };
    let cases: [(Vec<u8>, bool, ErrorCode, u32); 7] = [
        // An unknown kind, after HELLO.
        (frame(0x77, 5, &[1, 2]), true, ErrorCode::Malformed, 5),
        // A body that does not match its kind (SEEK whence 9).
        (
            frame(0x05, 6, &[9, 0, 0, 0, 0, 0, 0, 0, 0]),
            true,
            ErrorCode::Malformed,
            6,
        ),
        // A server kind with a valid body (POSITION), and with a bad one.
        (
            frame(0x45, 7, &[1, 0, 0, 0, 0, 0, 0, 0]),
            true,
            ErrorCode::Malformed,
            7,
        ),
        (frame(0x45, 8, &[1]), true, ErrorCode::Malformed, 8),
        // A first frame that is not HELLO.
        (frame(0x07, 9, &[]), false, ErrorCode::BadState, 9),
        // len below 5, and over the limit: refused from the length alone.
        (
            vec![4, 0, 0, 0, 0x07, 1, 0, 0, 0],
            true,
            ErrorCode::Malformed,
            0,
        ),
        (
            u32::MAX.to_le_bytes().to_vec(),
            true,
            ErrorCode::TooLarge,
            0,
        ),
    ];
    for (bytes, after_hello, code, tag) in cases {
        let mut p = if after_hello {
            Peer::connect(addr, RW).await
        } else {
            Peer::raw(addr).await
        };
        p.s.write_all(&bytes).await.unwrap();
        assert_eq!(p.recv_error().await, (code, tag), "{bytes:02x?}");
        assert!(p.closed().await);
    }
    // BadVersion answers the HELLO with its tag.
    let mut p = Peer::raw(addr).await;
    let mut hello = BytesMut::new();
    Frame {
        tag: 11,
        body: Body::Hello {
            version: 2,
            access: RW,
            pid: 1,
            who: "",
            what: "",
            token: None,
        },
    }
    .encode(&mut hello);
    p.s.write_all(&hello).await.unwrap();
    assert_eq!(p.recv_error().await, (ErrorCode::BadVersion, 11));
    token.cancel();
    h.await.unwrap();
}

/// A poll (timeout 0) waits for credit like any reap: started with credit 0 it sends
/// nothing and does not end; CREDIT lets it send what the ring holds, then it ends.
#[tokio::test]
async fn a_poll_without_credit_ends_once_credit_arrives() {
    let (_d, addr, token, h) = start(1 << 20).await;
    let mut p = Peer::connect(addr, RW).await;
    for i in 0..3 {
        p.put(&[("XX_STA", i, b"p")]).await;
    }
    p.send(Body::Seek {
        whence: Whence::Oldest,
        pktid: 0,
    })
    .await;
    assert_eq!(p.recv().await, Got::Position(1));
    p.send(Body::Reap {
        max_packets: 0,
        timeout_ms: 0,
        credit: 0,
    })
    .await;
    // Nothing is sent before CREDIT: the next frame is PING's answer.
    p.send(Body::Ping { nonce: 1 }).await;
    assert_eq!(p.recv().await, Got::Pong);
    p.send(Body::Credit { n: 2 }).await;
    assert!(matches!(p.recv().await, Got::Packet(1, ..)));
    assert!(matches!(p.recv().await, Got::Packet(2, ..)));
    // Out of credit again: paused, not ended.
    p.send(Body::Ping { nonce: 2 }).await;
    assert_eq!(p.recv().await, Got::Pong);
    p.send(Body::Credit { n: 5 }).await;
    assert!(matches!(p.recv().await, Got::Packet(3, ..)));
    assert_eq!(p.recv().await, Got::ReapEnd(ReapEndReason::Timeout, 4));
    token.cancel();
    h.await.unwrap();
}

/// The largest frame the server accepts is exactly WELCOME's `max_packet` + 64 KiB
/// (`server_max_frame`): a PUT frame of that length is read (its packet is too large,
/// a non-fatal refusal); one byte more is refused from its length alone.
#[tokio::test]
async fn the_frame_limit_is_max_packet_plus_the_slack_inclusive() {
    let (_d, addr, token, h) = start(1 << 20).await;
    let put_of_len = |len: u32| {
        // len = kind 1 + tag 4 + flags 1 + count 4 + srcname 2 + time 8 + payload_len 4 + p
        let p = len - 24;
        let mut f = len.to_le_bytes().to_vec();
        f.extend([0x02, 3, 0, 0, 0, 0, 1, 0, 0, 0, 1, b'X']);
        f.extend(0i64.to_le_bytes());
        f.extend(p.to_le_bytes());
        f.resize(4 + len as usize, 0);
        f
    };
    for (extra, code) in [(0, ErrorCode::PacketTooLarge), (1, ErrorCode::TooLarge)] {
        let mut p = Peer::raw(addr).await;
        p.send(Body::Hello {
            version: 1,
            access: RW,
            pid: 1,
            who: "",
            what: "",
            token: None,
        })
        .await;
        let mut max_packet = None;
        for _ in 0..1000 {
            if let Decoded::Frame(f, n) = decode(&p.buf, 1 << 24).unwrap() {
                if let Body::Welcome { max_packet: m, .. } = f.body {
                    max_packet = Some(m);
                }
                p.buf.advance(n);
                break;
            }
            p.s.read_buf(&mut p.buf).await.unwrap();
        }
        let limit = formats::proto::server_max_frame(max_packet.expect("WELCOME"));
        p.s.write_all(&put_of_len(limit + extra)).await.unwrap();
        assert_eq!(p.recv_error().await.0, code, "len limit + {extra}");
        if extra == 0 {
            p.send(Body::Ping { nonce: 1 }).await;
            assert_eq!(p.recv().await, Got::Pong);
        }
    }
    token.cancel();
    h.await.unwrap();
}
