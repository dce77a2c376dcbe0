//! The native session's rules driven directly: input bytes and a hand-moved clock in,
//! frames out, with no socket and no sleep.

use std::time::Duration;

use bytes::BytesMut;
use formats::proto::encode::encode_put;
use formats::proto::{
    decode, Access, Body, Decoded, ErrorCode, Frame, PutPacket, ReapEndReason, PROTOCOL_VERSION,
};
use formats::Time;

use super::{Native, Session};
use crate::conn::testing::{Clock, TestHub};
use crate::conn::{Action, Close, Fill, Outcome, Session as _};
use crate::ring::FlushPolicy;

/// An owned summary of one frame the session wrote.
#[derive(Debug, Clone, PartialEq)]
enum Got {
    Welcome,
    PutOk(u64, u32),
    Packet(u64),
    ReapEnd(ReapEndReason),
    Pong(Time),
    Reloaded,
    Error(u32, ErrorCode),
    Other(&'static str),
}

fn frames(out: &mut BytesMut) -> Vec<Got> {
    let mut got = Vec::new();
    let mut at = 0;
    while let Ok(Decoded::Frame(f, len)) = decode(&out[at..], u32::MAX) {
        got.push(match f.body {
            Body::Welcome { .. } => Got::Welcome,
            Body::PutOk { first_pktid, count } => Got::PutOk(first_pktid, count),
            Body::Packet { pktid, .. } => Got::Packet(pktid),
            Body::ReapEnd { reason, .. } => Got::ReapEnd(reason),
            Body::Pong { server_time, .. } => Got::Pong(server_time),
            Body::Reloaded { .. } => Got::Reloaded,
            Body::Error { code, .. } => Got::Error(f.tag, code),
            other => Got::Other(formats::proto::kind_name(other.kind())),
        });
        at += len;
    }
    assert_eq!(at, out.len(), "only whole frames");
    out.clear();
    got
}

fn frame(tag: u32, body: Body<'_>) -> BytesMut {
    let mut b = BytesMut::new();
    Frame { tag, body }.encode(&mut b);
    b
}

fn hello(tag: u32) -> BytesMut {
    frame(
        tag,
        Body::Hello {
            version: PROTOCOL_VERSION,
            access: Access {
                read: true,
                write: true,
            },
            pid: 1,
            who: "test",
            what: "unit test",
            token: None,
        },
    )
}

fn put(tag: u32, durable: bool, n: usize) -> BytesMut {
    let mut b = BytesMut::new();
    let payload = [7u8; 16];
    encode_put(
        &mut b,
        tag,
        durable,
        (0..n).map(|i| PutPacket {
            srcname: "AA_STA/EXP",
            time: Time::from_micros(i as i64),
            payload: &payload,
        }),
    );
    b
}

fn reap(tag: u32, timeout_ms: u32, credit: u32) -> BytesMut {
    frame(
        tag,
        Body::Reap {
            max_packets: 0,
            timeout_ms,
            credit,
        },
    )
}

/// A session past HELLO.
fn greeted(hub: &TestHub, clock: &Clock) -> (Session, BytesMut) {
    let mut s = hub.session::<Native>();
    let mut out = BytesMut::new();
    assert!(!s.handshake_done());
    let r = s.receive(&hello(1), clock.now(), &mut out);
    assert_eq!(r.consumed, hello(1).len());
    assert!(s.handshake_done());
    assert_eq!(frames(&mut out), [Got::Welcome]);
    (s, out)
}

#[test]
fn a_reap_times_out_exactly_when_its_idle_time_has_passed() {
    let hub = TestHub::new(FlushPolicy::None);
    let mut clock = Clock::new();
    let (mut s, mut out) = greeted(&hub, &clock);
    s.receive(&reap(2, 100, 10), clock.now(), &mut out);
    assert_eq!(s.fill(clock.now(), &mut out, 1 << 16), Fill::Waiting);
    assert_eq!(
        s.deadline(),
        Some(clock.now().mono + Duration::from_millis(100))
    );
    clock.advance(Duration::from_millis(99));
    s.fill(clock.now(), &mut out, 1 << 16);
    assert_eq!(frames(&mut out), []);
    clock.advance(Duration::from_millis(1));
    s.fill(clock.now(), &mut out, 1 << 16);
    assert_eq!(frames(&mut out), [Got::ReapEnd(ReapEndReason::Timeout)]);
    assert_eq!(s.deadline(), None);
}

#[test]
fn a_sent_packet_restarts_the_idle_timeout() {
    let hub = TestHub::new(FlushPolicy::None);
    let mut clock = Clock::new();
    let (mut s, mut out) = greeted(&hub, &clock);
    s.receive(&reap(2, 100, 10), clock.now(), &mut out);
    clock.advance(Duration::from_millis(80));
    s.receive(&put(3, false, 1), clock.now(), &mut out);
    assert_eq!(s.fill(clock.now(), &mut out, 1 << 16), Fill::Sent);
    assert_eq!(frames(&mut out), [Got::PutOk(1, 1), Got::Packet(1)]);
    assert_eq!(
        s.deadline(),
        Some(clock.now().mono + Duration::from_millis(100))
    );
    clock.advance(Duration::from_millis(99));
    s.fill(clock.now(), &mut out, 1 << 16);
    assert_eq!(frames(&mut out), [], "still inside the restarted timeout");
}

#[test]
fn without_credit_the_timeout_stops_and_credit_restarts_it() {
    let hub = TestHub::new(FlushPolicy::None);
    let mut clock = Clock::new();
    let (mut s, mut out) = greeted(&hub, &clock);
    s.receive(&reap(2, 100, 0), clock.now(), &mut out);
    assert_eq!(s.deadline(), None);
    assert!(!s.wants_packets());
    clock.advance(Duration::from_secs(3600));
    s.fill(clock.now(), &mut out, 1 << 16);
    assert_eq!(frames(&mut out), [], "no timeout without credit");
    s.receive(&frame(3, Body::Credit { n: 5 }), clock.now(), &mut out);
    assert!(s.wants_packets());
    assert_eq!(
        s.deadline(),
        Some(clock.now().mono + Duration::from_millis(100))
    );
}

#[test]
fn a_poll_reap_ends_at_once_when_nothing_is_there() {
    let hub = TestHub::new(FlushPolicy::None);
    let clock = Clock::new();
    let (mut s, mut out) = greeted(&hub, &clock);
    s.receive(&reap(2, 0, 10), clock.now(), &mut out);
    assert_eq!(s.deadline(), None, "a poll is not ended by the clock");
    s.fill(clock.now(), &mut out, 1 << 16);
    assert_eq!(frames(&mut out), [Got::ReapEnd(ReapEndReason::Timeout)]);
}

#[test]
fn the_first_frame_must_be_hello() {
    let hub = TestHub::new(FlushPolicy::None);
    let clock = Clock::new();
    let mut s = hub.session::<Native>();
    let mut out = BytesMut::new();
    let r = s.receive(&frame(5, Body::Tell), clock.now(), &mut out);
    assert!(matches!(r.close, Some(Close::Error(_))));
    assert!(!s.handshake_done());
    assert_eq!(frames(&mut out), [Got::Error(5, ErrorCode::BadState)]);
}

#[test]
fn partial_input_waits_for_the_rest() {
    let hub = TestHub::new(FlushPolicy::None);
    let clock = Clock::new();
    let mut s = hub.session::<Native>();
    let mut out = BytesMut::new();
    let h = hello(1);
    let r = s.receive(&h[..h.len() - 1], clock.now(), &mut out);
    assert_eq!(r.consumed, 0);
    assert!(r.close.is_none());
    assert_eq!(frames(&mut out), []);
}

#[test]
fn pong_carries_the_time_passed_in() {
    let hub = TestHub::new(FlushPolicy::None);
    let clock = Clock::new();
    let (mut s, mut out) = greeted(&hub, &clock);
    s.receive(&frame(2, Body::Ping { nonce: 9 }), clock.now(), &mut out);
    assert_eq!(frames(&mut out), [Got::Pong(clock.now().wall)]);
}

#[test]
fn a_durable_put_is_acknowledged_only_after_the_drivers_sync() {
    let hub = TestHub::new(FlushPolicy::None);
    let clock = Clock::new();
    let (mut s, mut out) = greeted(&hub, &clock);
    let mut input = put(2, true, 3);
    input.extend_from_slice(&frame(3, Body::Tell));
    let r = s.receive(&input, clock.now(), &mut out);
    // The session stops after the PUT, so TELL's answer cannot overtake PUT_OK.
    assert_eq!(r.consumed, put(2, true, 3).len());
    assert_eq!(frames(&mut out), []);
    let Some(Action::Sync(pending)) = s.take_action() else {
        panic!("a durable PUT asks the driver for a sync");
    };
    assert!(s.take_action().is_none());
    let outcome = Action::Sync(pending).run(&hub.hub);
    s.complete(outcome, clock.now(), &mut out);
    s.receive(&input[r.consumed..], clock.now(), &mut out);
    assert_eq!(frames(&mut out), [Got::PutOk(1, 3), Got::Other("POSITION")]);
}

#[test]
fn a_failed_sync_answers_the_put_with_ring_error() {
    let hub = TestHub::new(FlushPolicy::None);
    let clock = Clock::new();
    let (mut s, mut out) = greeted(&hub, &clock);
    s.receive(&put(2, true, 1), clock.now(), &mut out);
    assert!(matches!(s.take_action(), Some(Action::Sync(_))));
    let failed = std::io::Error::other("injected");
    let e = crate::ring::RingError::Io {
        action: "msync",
        path: "ring".into(),
        source: failed,
    };
    s.complete(Outcome::Synced(Err(e)), clock.now(), &mut out);
    assert_eq!(frames(&mut out), [Got::Error(2, ErrorCode::RingError)]);
}

#[test]
fn flush_always_makes_every_put_wait_for_a_sync_and_plain_puts_do_not() {
    let hub = TestHub::new(FlushPolicy::Always);
    let clock = Clock::new();
    let (mut s, mut out) = greeted(&hub, &clock);
    s.receive(&put(2, false, 1), clock.now(), &mut out);
    assert!(matches!(s.take_action(), Some(Action::Sync(_))));
    let hub = TestHub::new(FlushPolicy::None);
    let (mut s, mut out) = greeted(&hub, &clock);
    s.receive(&put(2, false, 1), clock.now(), &mut out);
    assert!(s.take_action().is_none());
    assert_eq!(frames(&mut out), [Got::PutOk(1, 1)]);
}

#[test]
fn reload_reads_the_file_in_the_driver_not_in_the_session() {
    let hub = TestHub::new(FlushPolicy::None);
    let clock = Clock::new();
    let (mut s, mut out) = greeted(&hub, &clock);
    s.receive(&frame(4, Body::Reload), clock.now(), &mut out);
    assert_eq!(frames(&mut out), []);
    let action = s.take_action().expect("RELOAD asks the driver");
    assert!(matches!(action, Action::Reload { .. }));
    // This hub has no config file, so the reload is refused with BadState.
    let outcome = action.run(&hub.hub);
    s.complete(outcome, clock.now(), &mut out);
    assert_eq!(frames(&mut out), [Got::Error(4, ErrorCode::BadState)]);
}
