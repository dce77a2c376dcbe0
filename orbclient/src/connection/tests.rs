//! The framing loop against a fake peer on loopback: frames split at awkward
//! boundaries, zero-copy payloads, end of stream, refused lengths, batched writes.

use bytes::BytesMut;
use formats::proto::encode::encode_packet;
use formats::proto::{Body, DecodeError, Frame, ReapEndReason, DEFAULT_MAX_FRAME};
use tokio::net::TcpStream;

use super::*;
use crate::testpeer::{listen, Got, Peer, LIMIT};

async fn pair() -> (Connection, Peer) {
    let (l, addr) = listen().await;
    let (stream, peer) = tokio::join!(
        TcpStream::connect((addr.host.as_str(), addr.port)),
        Peer::accept(&l)
    );
    (Connection::new(stream.unwrap(), DEFAULT_MAX_FRAME), peer)
}

/// Several frames, including a PACKET with a 100 KiB payload, as one byte stream.
fn script() -> BytesMut {
    let mut out = BytesMut::new();
    let frames = [
        crate::testpeer::welcome(1),
        Frame {
            tag: 2,
            body: Body::Info { json: "{\"a\":1}" },
        },
        Frame {
            tag: 3,
            body: Body::ReapEnd {
                reason: ReapEndReason::Timeout,
                pos: 99,
            },
        },
    ];
    for f in &frames {
        f.encode(&mut out);
    }
    let big: Vec<u8> = (0..100 * 1024).map(|i| (i % 251) as u8).collect();
    encode_packet(&mut out, 4, 42, Time::from_micros(5), "TA_M04C/MGENC", &big);
    encode_packet(&mut out, 4, 43, Time::from_micros(6), "TA_M04C/MGENC", b"x");
    out
}

fn check(frames: &[Incoming]) {
    assert_eq!(frames.len(), 5);
    assert!(matches!(&frames[0].msg, ServerMsg::Welcome(w) if w.max_packet == 1000));
    assert_eq!(frames[1].msg, ServerMsg::Info("{\"a\":1}".into()));
    assert_eq!(
        frames[2].msg,
        ServerMsg::ReapEnd(ReapEnd {
            reason: ReapEndReason::Timeout,
            pos: 99
        })
    );
    let ServerMsg::Packet(p) = &frames[3].msg else {
        panic!("not a packet: {:?}", frames[3]);
    };
    assert_eq!(
        (frames[3].tag, p.pktid, p.srcname.as_str()),
        (4, 42, "TA_M04C/MGENC")
    );
    assert_eq!(p.payload.len(), 100 * 1024);
    assert!(p
        .payload
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i % 251) as u8));
    let ServerMsg::Packet(q) = &frames[4].msg else {
        panic!("not a packet: {:?}", frames[4]);
    };
    assert_eq!((q.pktid, &q.payload[..]), (43, &b"x"[..]));
}

#[tokio::test]
async fn frames_split_anywhere_decode_the_same() {
    let bytes = script();
    for chunk in [1usize, 3, 7, 4096, bytes.len()] {
        let (mut conn, mut peer) = pair().await;
        let sent = bytes.clone();
        let writer = tokio::spawn(async move {
            // Tiny pieces over every header and the last frame, 997-byte pieces through
            // the big payload (byte by byte there would only make the test slow).
            let (head, rest) = sent.split_at(600);
            let (middle, tail) = rest.split_at(rest.len() - 40);
            let pieces = head
                .chunks(chunk)
                .chain(middle.chunks(chunk.max(997)))
                .chain(tail.chunks(chunk));
            for piece in pieces {
                peer.send_raw(piece).await;
                // Small pieces would coalesce in the socket otherwise.
                if chunk < 8 {
                    tokio::task::yield_now().await;
                }
            }
            peer
        });
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(
                tokio::time::timeout(LIMIT, conn.read_frame())
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        check(&got);
        assert!(!conn.has_frame());
        drop(writer.await.unwrap());
        assert!(matches!(conn.read_frame().await, Err(ClientError::Closed)));
        assert!(matches!(conn.read_frame().await, Err(ClientError::Closed)));
    }
}

#[tokio::test]
async fn has_frame_tells_whether_a_read_would_wait() {
    let (mut conn, mut peer) = pair().await;
    let bytes = script();
    peer.send_raw(&bytes).await;
    let first = tokio::time::timeout(LIMIT, conn.read_frame())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.tag, 1);
    // The rest may arrive in pieces; has_frame never claims a frame that is not there.
    let mut n = 1;
    while n < 5 {
        if conn.has_frame() {
            assert!(conn.try_read_frame().unwrap().is_some());
        } else {
            conn.read_frame().await.unwrap();
        }
        n += 1;
    }
    assert!(!conn.has_frame());
    assert!(conn.try_read_frame().unwrap().is_none());
}

#[tokio::test]
async fn end_of_stream_inside_a_frame_is_an_io_error() {
    let (mut conn, mut peer) = pair().await;
    let bytes = script();
    peer.send_raw(&bytes[..20]).await;
    drop(peer);
    let e = tokio::time::timeout(LIMIT, conn.read_frame())
        .await
        .unwrap();
    let eof =
        matches!(e, Err(ClientError::Io(ref e)) if e.kind() == std::io::ErrorKind::UnexpectedEof);
    assert!(eof);
    assert!(!conn.is_usable());
}

#[tokio::test]
async fn oversized_length_is_refused_before_buffering() {
    let (mut conn, mut peer) = pair().await;
    conn.set_max_frame(1000);
    peer.send_raw(&2000u32.to_le_bytes()).await;
    let e = tokio::time::timeout(LIMIT, conn.read_frame())
        .await
        .unwrap();
    assert!(matches!(
        e,
        Err(ClientError::Decode(DecodeError::TooLarge {
            len: 2000,
            max: 1000
        }))
    ));
    assert!(matches!(conn.read_frame().await, Err(ClientError::Closed)));
}

#[tokio::test]
async fn client_frames_from_the_server_are_protocol_errors() {
    let (mut conn, mut peer) = pair().await;
    peer.send(&[Frame {
        tag: 1,
        body: Body::Tell,
    }])
    .await;
    let e = tokio::time::timeout(LIMIT, conn.read_frame())
        .await
        .unwrap();
    assert!(matches!(e, Err(ClientError::Protocol(_))), "{e:?}");
}

#[tokio::test]
async fn bad_srcname_in_a_packet_is_a_protocol_error() {
    let (mut conn, mut peer) = pair().await;
    let mut out = BytesMut::new();
    encode_packet(&mut out, 1, 1, Time::UNIX_EPOCH, "has space", b"");
    peer.send_raw(&out).await;
    let e = tokio::time::timeout(LIMIT, conn.read_frame())
        .await
        .unwrap();
    assert!(matches!(e, Err(ClientError::Protocol(_))), "{e:?}");
}

#[tokio::test]
async fn queued_frames_go_out_together() {
    let (mut conn, mut peer) = pair().await;
    for tag in 1..=3 {
        conn.queue(&Frame {
            tag,
            body: Body::Credit { n: tag },
        });
    }
    assert_eq!(conn.queued(), 3 * 13);
    conn.flush().await.unwrap();
    assert_eq!(conn.queued(), 0);
    for tag in 1..=3 {
        assert_eq!(peer.recv().await, Some((tag, Got::Credit(tag))));
    }
}
