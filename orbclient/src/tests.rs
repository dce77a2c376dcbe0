//! Session logic against a scripted fake peer on loopback (`testpeer`): requests and
//! replies, pipelined puts within their window, reap credit and STOP, and reconnecting
//! reaps that neither repeat nor silently skip packets. The real server is exercised
//! by the end-to-end tests in the `tests` crate.

use std::time::Duration;

use formats::proto::{Body, ErrorCode, Frame, ReapEndReason, Whence};
use formats::{Packet, SrcName, Time};

use crate::testpeer::{listen, Got, Peer, LIMIT};
use crate::{ClientError, ClientOptions, OrbClient, ReapEvent, ReapOptions, ReconnectPolicy};

fn opts() -> ClientOptions {
    ClientOptions::for_program("unit-test")
}

fn reply(tag: u32, body: Body<'static>) -> Frame<'static> {
    Frame { tag, body }
}

/// Runs the client side and the peer side together, both bounded by `LIMIT`.
async fn both<A, B>(client: A, peer: B) -> (A::Output, B::Output)
where
    A: std::future::Future,
    B: std::future::Future,
{
    tokio::time::timeout(LIMIT, async { tokio::join!(client, peer) })
        .await
        .expect("test took too long")
}

#[tokio::test]
async fn requests_get_their_replies() {
    let (l, addr) = listen().await;
    let client = async {
        let mut c = OrbClient::connect(&addr, &opts()).await.unwrap();
        assert_eq!(c.welcome().client_id, 7);
        // The server's frame limit follows from WELCOME's max_packet (1000).
        assert_eq!(c.max_frame(), 1000 + 64 * 1024);
        assert_eq!(c.select("TA_.*").await.unwrap(), 3);
        assert_eq!(c.position("oldest").await.unwrap(), 5);
        assert_eq!(c.get(99).await.unwrap(), None);
        assert_eq!(c.clients().await.unwrap().clients.len(), 0);
        let e = c.reject("(").await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "orb server: bad regular expression: unclosed group"
        );
        c.ping().await.unwrap();
    };
    let peer = async {
        let mut p = Peer::accept(&l).await;
        let (tag, got) = p.recv().await.unwrap();
        assert_eq!(
            got,
            Got::Hello {
                what: "unit-test".into()
            }
        );
        p.send(&[crate::testpeer::welcome(tag)]).await;
        let (tag, got) = p.recv().await.unwrap();
        assert_eq!(got, Got::Select("TA_.*".into()));
        p.send(&[reply(tag, Body::Selected { nsources: 3 })]).await;
        let (tag, got) = p.recv().await.unwrap();
        assert!(matches!(
            got,
            Got::Seek {
                whence: Whence::Oldest,
                ..
            }
        ));
        p.send(&[reply(tag, Body::Position { pktid: 5 })]).await;
        let (tag, _) = p.recv().await.unwrap();
        let not_found = Body::Error {
            code: ErrorCode::NotFound,
            message: "no pktid 99",
        };
        p.send(&[reply(tag, not_found)]).await;
        let (tag, _) = p.recv().await.unwrap();
        p.send(&[reply(
            tag,
            Body::Info {
                json: "{\"clients\":[]}",
            },
        )])
        .await;
        let (tag, got) = p.recv().await.unwrap();
        assert_eq!(got, Got::Reject("(".into()));
        let bad = Body::Error {
            code: ErrorCode::BadRegex,
            message: "unclosed group",
        };
        p.send(&[reply(tag, bad)]).await;
        let (tag, Got::Ping(nonce)) = p.recv().await.unwrap() else {
            panic!("expected PING");
        };
        let pong = Body::Pong {
            nonce,
            server_time: Time::UNIX_EPOCH,
        };
        p.send(&[reply(tag, pong)]).await;
    };
    both(client, peer).await;
}

#[tokio::test]
async fn pipelined_puts_stay_within_the_window() {
    const N: u64 = 5000;
    const WINDOW: usize = 8;
    let (l, addr) = listen().await;
    let client = async {
        let mut c = OrbClient::connect(&addr, &opts()).await.unwrap();
        let name = SrcName::new("AA_BBB/MGENC").unwrap();
        // Payloads of max_packet: the server's frame limit (max_packet + 64 KiB), not
        // the packet count, bounds how many share a frame; the peer refuses any
        // frame over it.
        let packets = (0..N).map(|i| {
            let len = if i % 2 == 0 { 20 } else { 1000 };
            Packet::new(name.clone(), Time::from_micros(i as i64), vec![1u8; len])
        });
        let s = c.put_pipelined(packets, WINDOW).await.unwrap();
        assert_eq!((s.first, s.last, s.count), (1000, 1000 + N - 1, N));
        // The session is in step afterwards.
        assert_eq!(c.tell().await.unwrap(), 77);
    };
    let peer = async {
        let mut p = Peer::accept(&l).await;
        p.handshake().await;
        // (tag, packets) of the PUTs not yet acknowledged.
        let mut unacked: Vec<(u32, u32)> = Vec::new();
        let mut received = 0u64;
        let mut frames = 0u64;
        let mut next_pktid = 1000u64;
        while received < N {
            let (tag, Got::Put { count, durable }) = p.recv().await.unwrap() else {
                panic!("expected PUT");
            };
            assert!(!durable);
            received += u64::from(count);
            frames += 1;
            unacked.push((tag, count));
            assert!(unacked.len() <= WINDOW, "more than {WINDOW} PUTs in flight");
            // Acknowledge only when the client must be waiting, half at a time.
            if unacked.len() == WINDOW || received == N {
                let n = if received == N {
                    unacked.len()
                } else {
                    WINDOW / 2
                };
                let acks: Vec<Frame> = unacked
                    .drain(..n)
                    .map(|(tag, count)| {
                        next_pktid += u64::from(count);
                        reply(
                            tag,
                            Body::PutOk {
                                first_pktid: next_pktid - u64::from(count),
                                count,
                            },
                        )
                    })
                    .collect();
                p.send(&acks).await;
            }
        }
        assert!(frames < N / 10, "{frames} frames for {N} packets");
        let (tag, got) = p.recv().await.unwrap();
        assert_eq!(got, Got::Tell);
        p.send(&[reply(tag, Body::Position { pktid: 77 })]).await;
    };
    both(client, peer).await;
}

/// A PUT_OK counting other than the PUT's packets is a protocol error, and the
/// session is unusable after it (replies and requests are out of step).
#[tokio::test]
async fn put_ok_with_the_wrong_count_fails_the_put() {
    let (l, addr) = listen().await;
    let client = async {
        let mut c = OrbClient::connect(&addr, &opts()).await.unwrap();
        let name = SrcName::new("AA_BBB").unwrap();
        let packets: Vec<Packet> = (0..3)
            .map(|i| Packet::new(name.clone(), Time::from_micros(i), vec![0u8; 10]))
            .collect();
        let e = c.put_acked(&packets, 4).await.unwrap_err();
        assert!(matches!(e, ClientError::Protocol(_)), "{e:?}");
        assert!(c.tell().await.is_err());
    };
    let peer = async {
        let mut p = Peer::accept(&l).await;
        p.handshake().await;
        let (tag, got) = p.recv().await.unwrap();
        assert_eq!(
            got,
            Got::Put {
                count: 3,
                durable: false
            }
        );
        let short = Body::PutOk {
            first_pktid: 1,
            count: 2,
        };
        p.send(&[reply(tag, short)]).await;
    };
    both(client, peer).await;
}

#[tokio::test]
async fn reap_grants_credit_in_batches_and_stops_cleanly() {
    let (l, addr) = listen().await;
    let client = async {
        let c = OrbClient::connect(&addr, &opts()).await.unwrap();
        let reap = ReapOptions {
            credit_window: 4,
            timeout: Some(Duration::from_secs(1)),
            ..ReapOptions::default()
        };
        let mut s = c.reap(reap).await.unwrap();
        for want in 1..=4 {
            let Some(ReapEvent::Packet(p)) = s.next().await.unwrap() else {
                panic!("expected packet {want}");
            };
            assert_eq!(
                (p.pktid, &p.payload[..]),
                (want, want.to_string().as_bytes())
            );
        }
        let end = s.stop().await.unwrap();
        assert_eq!((end.reason, end.pos), (ReapEndReason::Stopped, 6));
        // The packet that was on its way when STOP went out is still delivered.
        assert!(matches!(s.next().await.unwrap(), Some(ReapEvent::Packet(p)) if p.pktid == 5));
        assert!(s.next().await.unwrap().is_none());
        let mut c = s.into_client().await.unwrap();
        c.ping().await.unwrap();
    };
    let peer = async {
        let mut p = Peer::accept(&l).await;
        p.handshake().await;
        let (tag, got) = p.recv().await.unwrap();
        assert_eq!(
            got,
            Got::Reap {
                max_packets: 0,
                timeout_ms: 1000,
                credit: 4
            }
        );
        p.packets(tag, 1..=4).await;
        // One CREDIT per half window, not one per packet.
        assert_eq!(p.recv().await.unwrap().1, Got::Credit(2));
        assert_eq!(p.recv().await.unwrap().1, Got::Credit(2));
        assert_eq!(p.recv().await.unwrap().1, Got::Stop);
        p.packets(tag, [5]).await;
        let end = Body::ReapEnd {
            reason: ReapEndReason::Stopped,
            pos: 6,
        };
        p.send(&[reply(tag, end)]).await;
        let (t, Got::Ping(nonce)) = p.recv().await.unwrap() else {
            panic!("expected PING");
        };
        p.send(&[reply(
            t,
            Body::Pong {
                nonce,
                server_time: Time::UNIX_EPOCH,
            },
        )])
        .await;
    };
    both(client, peer).await;
}

fn fast_retry() -> ReapOptions {
    ReapOptions {
        max_packets: 3,
        reconnect: ReconnectPolicy {
            min_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(10),
            max_attempts: Some(5),
        },
        ..ReapOptions::default()
    }
}

/// Drains a stream into a list of events.
async fn events(s: &mut crate::ReapStream) -> Vec<ReapEvent> {
    let mut v = Vec::new();
    for _ in 0..100 {
        match s.next().await.unwrap() {
            Some(ev) => v.push(ev),
            None => return v,
        }
    }
    panic!("stream did not end");
}

fn pktids(evs: &[ReapEvent]) -> Vec<String> {
    evs.iter()
        .map(|e| match e {
            ReapEvent::Packet(p) => p.pktid.to_string(),
            ReapEvent::Gap { first, last, bytes } => format!("gap {first}..={last} {bytes:?}"),
        })
        .collect()
}

#[tokio::test]
async fn reconnect_resumes_after_the_last_packet_and_reports_lost_ones() {
    let (l, addr) = listen().await;
    let client = async {
        let mut s =
            OrbClient::reap_reconnecting(&addr, &opts(), "AA_.*", "", Some("oldest"), fast_retry())
                .await
                .unwrap();
        let evs = events(&mut s).await;
        assert_eq!(pktids(&evs), ["10", "11", "gap 12..=19 None", "20"]);
        assert_eq!(s.end().unwrap().reason, ReapEndReason::Budget);
    };
    let peer = async {
        let mut p = Peer::accept(&l).await;
        p.handshake().await;
        let (tag, got) = p.recv().await.unwrap();
        assert_eq!(got, Got::Select("AA_.*".into()));
        p.send(&[reply(tag, Body::Selected { nsources: 1 })]).await;
        let (tag, got) = p.recv().await.unwrap();
        assert!(matches!(
            got,
            Got::Seek {
                whence: Whence::Oldest,
                ..
            }
        ));
        p.send(&[reply(tag, Body::Position { pktid: 10 })]).await;
        let (tag, got) = p.recv().await.unwrap();
        assert!(matches!(got, Got::Reap { max_packets: 3, .. }));
        p.packets(tag, [10, 11]).await;
        // The server goes away; the client comes back.
        drop(p);
        let mut p = Peer::accept(&l).await;
        p.handshake().await;
        let (tag, got) = p.recv().await.unwrap();
        assert_eq!(got, Got::Select("AA_.*".into()));
        p.send(&[reply(tag, Body::Selected { nsources: 1 })]).await;
        let (tag, got) = p.recv().await.unwrap();
        assert_eq!(
            got,
            Got::Seek {
                whence: Whence::Pktid,
                pktid: 12
            }
        );
        let gone = Body::Error {
            code: ErrorCode::OutOfRange,
            message: "pktid 12 is not in 20..=30",
        };
        p.send(&[reply(tag, gone)]).await;
        let (tag, got) = p.recv().await.unwrap();
        assert!(matches!(
            got,
            Got::Seek {
                whence: Whence::Oldest,
                ..
            }
        ));
        p.send(&[reply(tag, Body::Position { pktid: 20 })]).await;
        let (tag, got) = p.recv().await.unwrap();
        assert!(matches!(got, Got::Reap { max_packets: 1, .. }), "{got:?}");
        // A repeat of 11 must not be delivered twice.
        p.packets(tag, [11, 20]).await;
        let end = Body::ReapEnd {
            reason: ReapEndReason::Budget,
            pos: 21,
        };
        p.send(&[reply(tag, end)]).await;
    };
    both(client, peer).await;
}

#[tokio::test]
async fn shutdown_then_new_ring_resumes_by_time() {
    let (l, addr) = listen().await;
    let client = async {
        let mut s = OrbClient::reap_reconnecting(&addr, &opts(), "", "", None, fast_retry())
            .await
            .unwrap();
        let evs = events(&mut s).await;
        assert_eq!(pktids(&evs), ["50", "3"]);
    };
    let peer = async {
        let mut p = Peer::accept(&l).await;
        p.handshake().await;
        let (tag, got) = p.recv().await.unwrap();
        assert_eq!(got, Got::Tell);
        p.send(&[reply(tag, Body::Position { pktid: 50 })]).await;
        let (tag, _) = p.recv().await.unwrap();
        p.packets(tag, [50]).await;
        let bye = Body::Error {
            code: ErrorCode::ShuttingDown,
            message: "server shutting down",
        };
        p.send(&[reply(0, bye)]).await;
        drop(p);
        let mut p = Peer::accept(&l).await;
        p.handshake().await;
        let (tag, got) = p.recv().await.unwrap();
        assert_eq!(
            got,
            Got::Seek {
                whence: Whence::Pktid,
                pktid: 51
            }
        );
        let ahead = Body::Error {
            code: ErrorCode::OutOfRange,
            message: "pktid 51 is not in 1..=4",
        };
        p.send(&[reply(tag, ahead)]).await;
        let (tag, _) = p.recv().await.unwrap();
        p.send(&[reply(tag, Body::Position { pktid: 1 })]).await;
        let (tag, got) = p.recv().await.unwrap();
        assert_eq!(got, Got::After(Time::from_micros(50)));
        p.send(&[reply(tag, Body::Position { pktid: 3 })]).await;
        let (tag, got) = p.recv().await.unwrap();
        assert!(matches!(got, Got::Reap { max_packets: 2, .. }), "{got:?}");
        p.packets(tag, [3]).await;
        let end = Body::ReapEnd {
            reason: ReapEndReason::Timeout,
            pos: 4,
        };
        p.send(&[reply(tag, end)]).await;
    };
    both(client, peer).await;
}

#[tokio::test]
async fn without_reconnect_a_lost_connection_is_an_error() {
    let (l, addr) = listen().await;
    let client = async {
        let c = OrbClient::connect(&addr, &opts()).await.unwrap();
        let mut s = c.reap(ReapOptions::default()).await.unwrap();
        assert!(matches!(s.next().await, Err(ClientError::Closed)));
    };
    let peer = async {
        let mut p = Peer::accept(&l).await;
        p.handshake().await;
        p.recv().await.unwrap();
    };
    both(client, peer).await;
}

#[tokio::test]
async fn refused_hello_is_a_server_error() {
    let (l, addr) = listen().await;
    let client = async {
        let e = OrbClient::connect(&addr, &opts()).await.unwrap_err();
        assert!(matches!(
            e,
            ClientError::Server {
                code: ErrorCode::Refused,
                ..
            }
        ));
    };
    let peer = async {
        let mut p = Peer::accept(&l).await;
        let (tag, _) = p.recv().await.unwrap();
        let no = Body::Error {
            code: ErrorCode::Refused,
            message: "too many clients",
        };
        p.send(&[reply(tag, no)]).await;
    };
    both(client, peer).await;
}

#[tokio::test]
async fn connect_to_nothing_names_the_address() {
    let (l, addr) = listen().await;
    drop(l);
    let e = OrbClient::connect(&addr, &opts()).await.unwrap_err();
    assert!(matches!(e, ClientError::Connect { .. }));
    assert!(e.to_string().contains(&addr.to_string()), "{e}");
}

#[tokio::test]
async fn oversized_put_is_refused_locally() {
    let (l, addr) = listen().await;
    let client = async {
        let mut c = OrbClient::connect(&addr, &opts()).await.unwrap();
        let name = SrcName::new("AA_BBB").unwrap();
        let e = c
            .put(&name, Time::UNIX_EPOCH, &[0u8; 1001])
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            ClientError::PacketTooLarge {
                len: 1001,
                max: 1000
            }
        ));
        let e = c.put_batch(&[], false).await.unwrap_err();
        assert!(matches!(e, ClientError::BadRequest(_)));
        let big: Vec<Packet> = (0..2000)
            .map(|_| Packet::new(name.clone(), Time::UNIX_EPOCH, vec![0u8; 1000]))
            .collect();
        let e = c.put_batch(&big, true).await.unwrap_err();
        assert!(matches!(e, ClientError::BadRequest(_)), "{e:?}");
        let first = c.put_batch(&big[..3], true).await.unwrap();
        assert_eq!(first, 40);
    };
    let peer = async {
        let mut p = Peer::accept(&l).await;
        p.handshake().await;
        // Nothing of the refused puts reached the wire.
        let (tag, got) = p.recv().await.unwrap();
        assert_eq!(
            got,
            Got::Put {
                count: 3,
                durable: true
            }
        );
        p.send(&[reply(
            tag,
            Body::PutOk {
                first_pktid: 40,
                count: 3,
            },
        )])
        .await;
    };
    both(client, peer).await;
}

/// The put and link futures can be spawned on a multi-threaded runtime (orbreaper
/// spawns its ingest links); a compile-time check.
#[allow(dead_code)]
fn put_futures_are_send(
    c: &mut OrbClient,
    owned: Vec<Packet>,
    refs: Vec<&Packet>,
    link: crate::federation::LinkConfig,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    fn send<T: Send>(_: T) {}
    send(crate::federation::run_link(link, stop));
    send(c.put_pipelined(owned, 1));
    send(c.put_acked(refs.iter().copied(), 1));
}
