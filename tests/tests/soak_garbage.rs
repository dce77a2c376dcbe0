//! Garbage at the port from [`CONNS`] connections (seeded, so a failure reproduces):
//! random bytes, random bytes after a HELLO, valid sessions cut off mid-frame, valid
//! sessions with bytes flipped, huge declared lengths. Each connection sends its bytes,
//! closes its sending side and reads until the server closes; whatever the server sent
//! back must be whole, well-formed frames. Meanwhile a writer and a reader keep working.
//! Afterwards the server is still up, the traffic is exact, the client count is back to
//! normal, and every packet stored before the garbage is still there, unchanged. Packets
//! a flipped but still valid PUT stored are allowed, as any client's puts are.
//!
//! `bad_input.rs` checks the exact ERROR for each kind of bad frame on one connection at
//! a time; this test is about volume and mixtures.

use std::collections::HashMap;

use bytes::BytesMut;
use formats::proto::encode::encode_put;
use formats::proto::{decode, Body, Decoded, PutPacket, Whence};
use formats::{Packet, SrcName, Time};
use orb_tests::harness::{
    client_count, connect, dump_ring, encode_frame, guard, hello_frame, start_with_config,
    wait_until, RawClient, Steady,
};
use orb_tests::{make_payload, XorShift};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

/// Garbage connections.
const CONNS: usize = 2_000;
/// Opened at once, at most.
const BATCH: usize = 50;
/// Packets put before the garbage, checked byte for byte after it.
const BEFORE: u64 = 300;

const CONFIG: &str = "\
[limits]
max_clients_per_address = 5000
";

fn t(secs: i64) -> Time {
    Time::from_micros(1_795_341_600_000_000 + secs * 1_000_000)
}

/// A few valid request frames after a HELLO: the raw material garbage is cut from.
fn valid_session(rng: &mut XorShift) -> Vec<u8> {
    let mut out = hello_frame(1, "e2e-garbage");
    for tag in 2..rng.range(3, 10) as u32 {
        let frame = match rng.range(0, 7) {
            0 => {
                let payload = make_payload(rng.next_u64(), rng.range(12, 300) as usize);
                let mut b = BytesMut::new();
                let p = PutPacket {
                    srcname: "ZZ_GARBAGE/MGENC",
                    time: t(0),
                    payload: &payload,
                };
                encode_put(&mut b, tag, false, [p]);
                b.to_vec()
            }
            1 => encode_frame(tag, Body::Select { expr: "XX_.*" }),
            2 => encode_frame(
                tag,
                Body::Seek {
                    whence: Whence::Oldest,
                    pktid: 0,
                },
            ),
            3 => encode_frame(
                tag,
                Body::Get {
                    current: false,
                    pktid: rng.range(1, 400),
                },
            ),
            4 => encode_frame(tag, Body::Stat),
            5 => encode_frame(tag, Body::Tell),
            _ => encode_frame(tag, Body::Ping { nonce: 7 }),
        };
        out.extend(frame);
    }
    out
}

/// One connection's garbage, of a kind the seed picks.
fn garbage(rng: &mut XorShift) -> Vec<u8> {
    let noise = |rng: &mut XorShift, n: u64| -> Vec<u8> {
        (0..rng.range(1, n)).map(|_| rng.next_u64() as u8).collect()
    };
    match rng.range(0, 5) {
        0 => noise(rng, 2048),
        1 => [hello_frame(1, "e2e-garbage"), noise(rng, 2048)].concat(),
        2 => {
            let s = valid_session(rng);
            let cut = rng.range(1, s.len() as u64) as usize;
            s[..cut].to_vec()
        }
        3 => {
            let mut s = valid_session(rng);
            for _ in 0..rng.range(1, 4) {
                let i = rng.range(0, s.len() as u64) as usize;
                s[i] ^= 1 << rng.range(0, 8);
            }
            s
        }
        _ => {
            let mut s = hello_frame(1, "e2e-garbage");
            let len = rng.range(1 << 20, u64::from(u32::MAX)) as u32;
            s.extend(len.to_le_bytes());
            s.extend(noise(rng, 64));
            s
        }
    }
}

/// Sends `bytes`, closes the sending side, and reads until the server closes. Returns
/// the frames it sent, each checked to decode whole.
async fn send_garbage(addr: std::net::SocketAddr, bytes: Vec<u8>) -> usize {
    let mut c = RawClient::connect(addr).await.expect("connect");
    // The server may close before reading everything (a fatal frame early on): a
    // failed write is part of the game.
    let _ = c.0.write_all(&bytes).await;
    let _ = c.0.shutdown().await;
    let mut got = Vec::new();
    for _ in 0..100_000 {
        match guard(
            "the server to close a garbage connection",
            c.0.read_buf(&mut got),
        )
        .await
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let mut rest = &got[..];
    let mut frames = 0;
    while !rest.is_empty() {
        match decode(rest, u32::MAX) {
            Ok(Decoded::Frame(_, n)) => {
                rest = &rest[n..];
                frames += 1;
            }
            other => panic!("the server sent a bad or cut frame to {bytes:02x?}: {other:?}"),
        }
    }
    frames
}

/// Every packet in the ring, oldest first.
async fn dump(srv: &orb_tests::harness::OrbServer) -> Vec<Packet> {
    dump_ring(connect(srv, "e2e-dump").await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_many_connections_harms_no_one_and_changes_nothing_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = start_with_config(
        dir.path(),
        CONFIG,
        &["--ring-size", "8MiB", "--flush", "none"],
    );
    let mut w = connect(&srv, "e2e-before").await;
    let before: Vec<Packet> = (0..BEFORE)
        .map(|i| Packet {
            pktid: 0,
            srcname: SrcName::new(&format!("XX_ST{:02}_BHZ/MGENC", i % 7)).unwrap(),
            time: t(i as i64),
            payload: make_payload(i, 20 + (i as usize * 13) % 700).into(),
        })
        .collect();
    for chunk in before.chunks(50) {
        w.put_batch(chunk, false).await.unwrap();
    }
    drop(w);
    let stored = dump(&srv).await;
    assert_eq!(stored.len() as u64, BEFORE);
    for (s, b) in stored.iter().zip(&before) {
        assert_eq!(
            (&s.srcname, s.time, &s.payload),
            (&b.srcname, b.time, &b.payload)
        );
    }

    let steady = Steady::start(&srv).await;
    steady
        .advance(20, "steady traffic before the garbage")
        .await;
    let normal = client_count(&srv).await;

    let mut rng = XorShift::new(0x06a2_ba6e);
    let addr = srv.addr;
    let mut replies = 0;
    for _ in 0..CONNS / BATCH {
        let mut set = JoinSet::new();
        for _ in 0..BATCH {
            set.spawn(send_garbage(addr, garbage(&mut rng)));
        }
        while let Some(r) = set.join_next().await {
            replies += r.unwrap();
        }
    }
    steady.advance(50, "steady traffic after the garbage").await;
    assert!(srv.is_running(), "the server died of garbage");
    wait_until("the client count to come back", || async {
        client_count(&srv).await == normal
    })
    .await;
    let put = steady.finish().await;

    // Nothing stored before was lost or changed; pktids still only grow.
    let after = dump(&srv).await;
    assert!(after.windows(2).all(|w| w[0].pktid < w[1].pktid));
    let by_pktid: HashMap<u64, &Packet> = after.iter().map(|p| (p.pktid, p)).collect();
    for p in &stored {
        assert_eq!(
            by_pktid.get(&p.pktid).copied(),
            Some(p),
            "pktid {} was lost or changed",
            p.pktid
        );
    }
    let others = after.len() - stored.len() - put.len() - 1;
    eprintln!(
        "{CONNS} garbage connections got {replies} frames back; {} steady packets; \
         {others} packets stored by flipped but valid PUTs",
        put.len()
    );
}
