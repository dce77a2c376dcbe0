//! The SeedLink session's rules driven directly, without a socket or a sleep.

use std::time::Duration;

use super::SeedLink;
use crate::conn::testing::{Clock, TestHub};
use crate::conn::{Close, Farewell, Fill, Session as _};
use crate::ring::FlushPolicy;

#[test]
fn negotiation_then_transfer_then_bye() {
    let hub = TestHub::new(FlushPolicy::None);
    let clock = Clock::new();
    let mut s = hub.session::<SeedLink>();
    let mut out = Vec::new();
    assert!(!s.handshake_done());
    let r = s.receive(b"HELLO\r\nSTATION STA01 XX\r\nSEL", clock.now(), &mut out);
    assert_eq!(r.consumed, b"HELLO\r\nSTATION STA01 XX\r\n".len());
    assert!(s.handshake_done());
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(text.starts_with("SeedLink v3.1"), "{text}");
    assert!(text.ends_with("OK\r\n"), "STATION answered: {text}");
    assert!(!s.wants_packets());
    out.clear();
    let r = s.receive(b"END\r\n", clock.now(), &mut out);
    assert!(r.close.is_none());
    assert!(s.wants_packets(), "END starts the transfer");
    assert_eq!(s.fill(clock.now(), &mut out, 1 << 16), Fill::Waiting);
    let r = s.receive(b"BYE\r\n", clock.now(), &mut out);
    assert_eq!(r.close, Some(Close::Done));
}

#[test]
fn a_line_too_long_ends_the_connection() {
    let hub = TestHub::new(FlushPolicy::None);
    let clock = Clock::new();
    let mut s = hub.session::<SeedLink>();
    let mut out = Vec::new();
    let r = s.receive(&[b'A'; 4096], clock.now(), &mut out);
    assert!(matches!(r.close, Some(Close::Error(_))), "{r:?}");
}

#[test]
fn seedlink_has_no_words_for_a_kill() {
    let hub = TestHub::new(FlushPolicy::None);
    let mut s = hub.session::<SeedLink>();
    let mut out = Vec::new();
    s.farewell(Farewell::Killed, &mut out);
    assert!(out.is_empty());
}

#[test]
fn a_time_window_ends_when_its_end_passes_even_without_packets() {
    let hub = TestHub::new(FlushPolicy::None);
    let mut clock = Clock::new();
    let mut s = hub.session::<SeedLink>();
    let mut out = Vec::new();
    // The test clock's wall time is 2026-01-01T00:00:00Z; the window ends 10 s later.
    let input = b"STATION STA01 XX\r\nTIME 2025,12,31,23,59,0 2026,1,1,0,0,10\r\nEND\r\n";
    let r = s.receive(input, clock.now(), &mut out);
    assert!(r.close.is_none());
    assert!(s.wants_packets());
    out.clear();
    assert_eq!(s.fill(clock.now(), &mut out, 1 << 16), Fill::Waiting);
    let deadline = s.deadline().expect("the window's end is a deadline");
    let ahead = deadline - clock.now().mono;
    assert!(
        ahead > Duration::from_secs(9)
            && ahead <= Duration::from_secs(10) + Duration::from_millis(1),
        "{ahead:?}"
    );
    clock.advance(Duration::from_secs(9));
    assert_eq!(s.fill(clock.now(), &mut out, 1 << 16), Fill::Waiting);
    clock.advance(Duration::from_secs(1) + Duration::from_millis(1));
    assert_eq!(
        s.fill(clock.now(), &mut out, 1 << 16),
        Fill::Close(Close::Done)
    );
    assert!(out.ends_with(b"END"), "{:?}", String::from_utf8_lossy(&out));
}
