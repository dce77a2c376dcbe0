//! Byte-exact vectors, malformed input, and proptest round trips.

use proptest::prelude::*;

use super::reply::capabilities;
use super::*;
use crate::Time;

const MAX: usize = 1 << 20;

fn enc(c: &Command<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    c.encode(&mut out).unwrap();
    out
}

/// A packet with `header` and `payload`, its length byte computed.
fn pkt(header: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = b"DL".to_vec();
    v.push(header.len() as u8);
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(payload);
    v
}

fn dec(b: &[u8]) -> Command<'_> {
    match decode_command(b, MAX).unwrap() {
        Decoded::Done(c, n) => {
            assert_eq!(n, b.len());
            c
        }
        Decoded::NeedMore => panic!("need more on a whole packet"),
    }
}

#[test]
fn what_simpledali_sends() {
    assert_eq!(
        dec(&pkt("ID simpledali:me:1234:python3.11", b"")),
        Command::Id("simpledali:me:1234:python3.11")
    );
    // simpledali leaves a trailing space when it gives no time.
    assert_eq!(
        dec(&pkt("POSITION SET 5 ", b"")),
        Command::PositionSet(Position::Pktid {
            pktid: 5,
            time: None
        })
    );
    assert_eq!(
        dec(&pkt("POSITION SET EARLIEST ", b"")),
        Command::PositionSet(Position::Earliest)
    );
    assert_eq!(
        dec(&pkt("POSITION AFTER 1700000000000", b"")),
        Command::PositionAfter(Time::from_micros(1_700_000_000_000))
    );
    assert_eq!(dec(&pkt("MATCH 3", b"XX_")), Command::Match("XX_"));
    assert_eq!(dec(&pkt("MATCH", b"")), Command::Match(""));
    let w = &pkt("WRITE XX_S__BHZ/MSEED 10 20 A 3", b"abc");
    assert_eq!(
        dec(w),
        Command::Write(Write {
            streamid: "XX_S__BHZ/MSEED",
            start: Time::from_micros(10),
            end: Time::from_micros(20),
            ack: true,
            payload: b"abc"
        })
    );
    assert_eq!(
        dec(&pkt("INFO CONNECTIONS", b"")),
        Command::Info {
            kind: InfoKind::Connections,
            matching: None
        }
    );
}

#[test]
fn replies_are_byte_exact() {
    let mut out = Vec::new();
    Reply::Ok {
        value: 7,
        message: "hi",
    }
    .encode(&mut out)
    .unwrap();
    assert_eq!(out, b"DL\x06OK 7 2hi");
    out.clear();
    Reply::EndStream.encode(&mut out).unwrap();
    assert_eq!(out, b"DL\x09ENDSTREAM");
    out.clear();
    Reply::Packet {
        streamid: "A_B/X",
        pktid: 1,
        pkttime: Time::from_micros(2),
        start: Time::from_micros(2),
        end: Time::from_micros(3),
        data: b"zz",
    }
    .encode(&mut out)
    .unwrap();
    assert_eq!(out, b"DL\x16PACKET A_B/X 1 2 2 3 2zz");
    assert_eq!(
        capabilities("orbserver 0.1", 512, true, false),
        "DataLink orbserver_0.1 :: DLPROTO:1.1 PACKETSIZE:512 WRITE"
    );
    assert_eq!(
        capabilities("orbserver 0.1", 512, false, true),
        "DataLink orbserver_0.1 :: DLPROTO:1.1 PACKETSIZE:512 AUTH"
    );
}

#[test]
fn auth_round_trips_and_its_argument_errors_skip_the_header() {
    let mut out = Vec::new();
    let cmd = Command::Auth {
        kind: "USERPASS",
        credential: Credential(b"alice\rsesame"),
    };
    cmd.encode(&mut out).unwrap();
    assert_eq!(out, b"DL\x10AUTH USERPASS 12alice\rsesame");
    assert_eq!(
        decode_command(&out, 0).unwrap(),
        Decoded::Done(cmd, out.len())
    );
    // The payload is waited for; it is not bounded by the packet size.
    assert_eq!(
        decode_command(&out[..out.len() - 1], 0).unwrap(),
        Decoded::NeedMore
    );
    // The secret never shows in a Debug print.
    assert!(!format!("{cmd:?}").contains("sesame"));
    for (header, want) in [
        ("AUTH USERPASS", "AUTH requires 2 arguments"),
        ("AUTH USERPASS x", "AUTH size argument is invalid"),
        ("AUTH USERPASS 5000", "AUTH credentials are too large"),
    ] {
        let mut pkt = vec![b'D', b'L', header.len() as u8];
        pkt.extend_from_slice(header.as_bytes());
        let e = decode_command(&pkt, 1 << 20).unwrap_err();
        assert!(e.to_string().contains(want), "{header}: {e}");
        assert_eq!(e.skip(), Some(pkt.len()), "{header}");
    }
}

#[test]
fn incomplete_input_needs_more() {
    let w = enc(&Command::Write(Write {
        streamid: "A_B/C",
        start: Time::from_micros(1),
        end: Time::from_micros(2),
        ack: false,
        payload: b"0123456789",
    }));
    for cut in 0..w.len() {
        assert_eq!(
            decode_command(&w[..cut], MAX),
            Ok(Decoded::NeedMore),
            "cut {cut}"
        );
    }
}

#[test]
fn malformed_input_is_typed() {
    let e = |b: &[u8]| decode_command(b, MAX).unwrap_err();
    assert!(matches!(e(b"XL\x04STREAM"), DecodeError::BadMagic { .. }));
    assert!(matches!(e(b"Q"), DecodeError::BadMagic { .. }));
    assert_eq!(e(b"DL\x00"), DecodeError::EmptyHeader);
    assert!(matches!(e(b"DL\x02\x01\x02"), DecodeError::NotText { .. }));
    let u = e(&pkt("HELLO", b""));
    assert!(matches!(u, DecodeError::UnknownCommand { .. }));
    assert_eq!(u.skip(), Some(8));
    // A bad field with intact framing can be skipped, payload and all.
    let b = e(&pkt("WRITE A_B/C 1 x A 3", b"abc"));
    assert_eq!(b.skip(), Some(3 + 19 + 3), "{b}");
    assert!(b.to_string().contains("microseconds"), "{b}");
    assert_eq!(e(&pkt("READ banana", b"")).skip(), Some(14));
    // Without a size the stream is lost.
    assert_eq!(e(&pkt("WRITE A_B/C", b"")).skip(), None);
    assert_eq!(e(&pkt("MATCH x", b"")).skip(), None);
    // A client-chosen pktid is refused, but the size is known: skippable.
    assert_eq!(
        e(&pkt("WRITE A_B/C 1 2 A 3 99", b"abc")).skip(),
        Some(3 + 22 + 3)
    );
    assert_eq!(
        decode_command(&pkt("WRITE A_B/C 1 2 A 100", b""), 10).unwrap_err(),
        DecodeError::TooLarge { size: 100, max: 10 }
    );
}

fn text() -> impl Strategy<Value = String> {
    "[!-~]{1,40}"
}

fn time() -> impl Strategy<Value = Time> {
    any::<i64>().prop_map(Time::from_micros)
}

proptest! {
    #[test]
    fn commands_round_trip(
        which in 0..11u8, s in text(), n in any::<u64>(), t in time(), t2 in time(),
        ack in any::<bool>(), payload in proptest::collection::vec(any::<u8>(), 0..300),
        expr in ".{0,50}",
    ) {
        let cmd = match which {
            0 => Command::Id(&s),
            1 => Command::PositionSet(Position::Pktid { pktid: n, time: Some(t) }),
            2 => Command::PositionSet(Position::Pktid { pktid: n, time: None }),
            3 => Command::PositionSet(if ack { Position::Earliest } else { Position::Latest }),
            4 => Command::PositionAfter(t),
            5 => Command::Match(&expr),
            6 => Command::Reject(&expr),
            7 => Command::Read(n),
            8 => if ack { Command::Stream } else { Command::EndStream },
            9 => Command::Write(Write { streamid: &s, start: t, end: t2, ack, payload: &payload }),
            _ => Command::Info { kind: InfoKind::Streams, matching: ack.then_some(s.as_str()) },
        };
        let bytes = enc(&cmd);
        prop_assert_eq!(dec(&bytes), cmd);
        // Split anywhere: a prefix needs more, never errs.
        for cut in 0..bytes.len() {
            prop_assert_eq!(decode_command(&bytes[..cut], MAX), Ok(Decoded::NeedMore));
        }
    }

    #[test]
    fn replies_round_trip(
        which in 0..6u8, s in text(), v in any::<i64>(), n in any::<u64>(), t in time(),
        msg in ".{0,60}", data in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let r = match which {
            0 => Reply::Id(&s),
            1 => Reply::Ok { value: v, message: &msg },
            2 => Reply::Error { value: v, message: &msg },
            3 => Reply::Packet { streamid: &s, pktid: n, pkttime: t, start: t, end: t, data: &data },
            4 => Reply::Info { kind: &s, xml: &msg },
            _ => Reply::EndStream,
        };
        let mut out = Vec::new();
        r.encode(&mut out).unwrap();
        prop_assert_eq!(decode_reply(&out, MAX), Ok(Decoded::Done(r, out.len())));
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode_command(&b, MAX);
        let _ = decode_reply(&b, MAX);
        let mut with_magic = b"DL".to_vec();
        with_magic.extend_from_slice(&b);
        if let Err(e) = decode_command(&with_magic, MAX) {
            prop_assert!(e.skip().is_none_or(|n| n <= with_magic.len()));
        }
    }
}

/// A PACKET's header, written digit by digit, is the text `format!` would write.
#[test]
fn packet_headers_are_written_as_format_writes_them() {
    for (pktid, t) in [
        (0u64, 0i64),
        (1, -1),
        (u64::MAX, i64::MIN),
        (1_234_567, i64::MAX),
        (10, 1_795_341_600_000_000),
    ] {
        let time = Time::from_micros(t);
        let r = Reply::Packet {
            streamid: "FDSN:XX_STA__B_H_Z/MSEED",
            pktid,
            pkttime: time,
            start: time,
            end: time,
            data: b"abc",
        };
        let mut out = Vec::new();
        r.encode(&mut out).unwrap();
        let header = format!("PACKET FDSN:XX_STA__B_H_Z/MSEED {pktid} {t} {t} {t} 3");
        let mut want = b"DL".to_vec();
        want.push(header.len() as u8);
        want.extend_from_slice(header.as_bytes());
        want.extend_from_slice(b"abc");
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&want)
        );
    }
}

proptest! {
    /// PACKET's numbers are read as `str::parse` reads them, whatever the text.
    #[test]
    fn packet_numbers_parse_as_str_parse_does(
        a in "[-+]?[0-9]{0,21}|[-+0-9a]{1,5}",
        v in any::<i64>(),
        n in any::<u64>(),
    ) {
        for text in [a.clone(), v.to_string(), n.to_string(), format!("+{n}"), format!("-{n}")] {
            let header = format!("PACKET X {text} {text} 0 0 0");
            let mut buf = b"DL".to_vec();
            buf.push(header.len() as u8);
            buf.extend_from_slice(header.as_bytes());
            let got = decode_reply(&buf, MAX);
            match (text.parse::<u64>(), text.parse::<i64>()) {
                (Ok(id), Ok(t)) => prop_assert!(matches!(got, Ok(Decoded::Done(Reply::Packet { pktid, pkttime, .. }, _)) if pktid == id && pkttime.as_micros() == t), "{text}: {got:?}"),
                _ => prop_assert!(got.is_err(), "{text}: {got:?}"),
            }
        }
    }
}
