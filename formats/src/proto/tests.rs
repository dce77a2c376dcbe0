//! Codec properties over random frames of every kind, and the malformed inputs the
//! decoder must refuse. PROTOCOL.md's byte-exact vectors live in
//! `formats/tests/protocol_vectors.rs`.
//!
//! Frames borrow their strings and payloads, so the strategies leak what they generate
//! (`Box::leak`) to hand out `Frame<'static>` values; a run leaks a few megabytes.

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::Union;

use super::encode::encode_put;
use super::*;
use crate::Time;

fn leak_str(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn leak_bytes(b: Vec<u8>) -> &'static [u8] {
    Box::leak(b.into_boxed_slice())
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn fit(mut s: String, max: usize) -> String {
    while s.len() > max {
        s.pop();
    }
    s
}

/// UTF-8 text of at most `max` bytes: mostly short runs of any characters, sometimes
/// exactly `max` bytes, ASCII or ending in a two-byte character.
fn text(max: usize) -> BoxedStrategy<&'static str> {
    prop_oneof![
        8 => vec(any::<char>(), 0..24).prop_map(move |cs| fit(cs.into_iter().collect(), max)),
        1 => Just("a".repeat(max)),
        1 => Just(format!("{}\u{e9}", "a".repeat(max - 2))),
    ]
    .prop_map(leak_str)
    .boxed()
}

fn str8() -> BoxedStrategy<&'static str> {
    text(u8::MAX.into())
}

fn payload() -> BoxedStrategy<&'static [u8]> {
    prop_oneof![
        8 => vec(any::<u8>(), 0..48),
        1 => vec(any::<u8>(), 0..4096),
    ]
    .prop_map(leak_bytes)
    .boxed()
}

fn time() -> impl Strategy<Value = Time> {
    any::<i64>().prop_map(Time::from_micros)
}

fn put_packet() -> impl Strategy<Value = PutPacket<'static>> {
    (str8(), time(), payload()).prop_map(|(srcname, time, payload)| PutPacket {
        srcname,
        time,
        payload,
    })
}

/// A PUT body holding `packets`, built the way clients build it: `encode_put`, then
/// decoded (the only way to get a [`PutPackets`]).
fn put_body(durable: bool, packets: &[PutPacket<'_>]) -> Body<'static> {
    let mut out = BytesMut::new();
    encode_put(&mut out, 0, durable, packets.iter().copied());
    let bytes = leak_bytes(out.to_vec());
    match decode(bytes, u32::MAX) {
        Ok(Decoded::Frame(Frame { body, .. }, _)) => body,
        other => panic!("encode_put wrote an undecodable frame: {other:?}"),
    }
}

/// Any body of any kind. `long` allows str16 fields up to their 65535-byte limit;
/// without it they stay under 300 bytes, for tests that work per byte.
fn body(long: bool) -> BoxedStrategy<Body<'static>> {
    let str16 = || text(if long { u16::MAX.into() } else { 300 });
    let whence = (0..6u8).prop_map(|b| Whence::from_byte(b).expect("whence 0..6"));
    let reason = (0..3u8).prop_map(|b| ReapEndReason::from_byte(b).expect("reason 0..3"));
    let access = (0..4u8).prop_map(|b| Access::from_byte(b).expect("access 0..4"));
    let json = vec(any::<char>(), 0..64).prop_map(|cs| leak_str(cs.into_iter().collect()));
    Union::new(vec![
        (
            any::<u16>(),
            access,
            any::<u32>(),
            str8(),
            str8(),
            proptest::option::of(str8()),
        )
            .prop_map(|(version, access, pid, who, what, token)| Body::Hello {
                version,
                access,
                pid,
                who,
                what,
                token,
            })
            .boxed(),
        (any::<bool>(), vec(put_packet(), 1..4))
            .prop_map(|(durable, packets)| put_body(durable, &packets))
            .boxed(),
        str16().prop_map(|expr| Body::Select { expr }).boxed(),
        str16().prop_map(|expr| Body::Reject { expr }).boxed(),
        (whence, any::<u64>())
            .prop_map(|(whence, pktid)| Body::Seek { whence, pktid })
            .boxed(),
        time().prop_map(|time| Body::After { time }).boxed(),
        Just(Body::Tell).boxed(),
        (any::<bool>(), any::<u64>())
            .prop_map(|(current, pktid)| Body::Get { current, pktid })
            .boxed(),
        (any::<u32>(), any::<u32>(), any::<u32>())
            .prop_map(|(max_packets, timeout_ms, credit)| Body::Reap {
                max_packets,
                timeout_ms,
                credit,
            })
            .boxed(),
        any::<u32>().prop_map(|n| Body::Credit { n }).boxed(),
        Just(Body::Stop).boxed(),
        Just(Body::Stat).boxed(),
        Just(Body::Sources).boxed(),
        Just(Body::Clients).boxed(),
        any::<u64>().prop_map(|nonce| Body::Ping { nonce }).boxed(),
        any::<u64>()
            .prop_map(|client_id| Body::Kill { client_id })
            .boxed(),
        Just(Body::Reload).boxed(),
        (
            any::<u16>(),
            str8(),
            any::<u64>(),
            any::<u32>(),
            any::<u64>(),
        )
            .prop_map(
                |(version, server, ring_capacity, max_packet, client_id)| Body::Welcome {
                    version,
                    server,
                    ring_capacity,
                    max_packet,
                    client_id,
                },
            )
            .boxed(),
        (any::<u64>(), any::<u32>())
            .prop_map(|(first_pktid, count)| Body::PutOk { first_pktid, count })
            .boxed(),
        any::<u32>()
            .prop_map(|nsources| Body::Selected { nsources })
            .boxed(),
        any::<u64>()
            .prop_map(|pktid| Body::Position { pktid })
            .boxed(),
        (any::<u64>(), time(), str8(), payload())
            .prop_map(|(pktid, time, srcname, payload)| Body::Packet {
                pktid,
                time,
                srcname,
                payload,
            })
            .boxed(),
        (any::<u64>(), any::<u64>(), any::<u64>())
            .prop_map(|(first, last, bytes)| Body::Gap { first, last, bytes })
            .boxed(),
        (reason, any::<u64>())
            .prop_map(|(reason, pos)| Body::ReapEnd { reason, pos })
            .boxed(),
        json.prop_map(|json| Body::Info { json }).boxed(),
        (any::<u64>(), time())
            .prop_map(|(nonce, server_time)| Body::Pong { nonce, server_time })
            .boxed(),
        any::<u64>()
            .prop_map(|client_id| Body::Killed { client_id })
            .boxed(),
        str16()
            .prop_map(|summary| Body::Reloaded { summary })
            .boxed(),
        // Through from_u16, so known numbers are never `Other`: the one spelling the
        // decoder gives back.
        (any::<u16>(), str16())
            .prop_map(|(code, message)| Body::Error {
                code: ErrorCode::from_u16(code),
                message,
            })
            .boxed(),
    ])
    .boxed()
}

fn frame(long: bool) -> impl Strategy<Value = Frame<'static>> {
    (any::<u32>(), body(long)).prop_map(|(tag, body)| Frame { tag, body })
}

fn encoded(f: &Frame<'_>) -> Vec<u8> {
    let mut out = BytesMut::new();
    f.encode(&mut out);
    out.to_vec()
}

/// Whatever `decode` says about `bytes`, it must not panic, and a frame it accepts must
/// be the one canonical spelling of that frame: re-encoding gives the same bytes.
fn check_decode(bytes: &[u8], max_frame: u32) -> Result<(), TestCaseError> {
    match decode(bytes, max_frame) {
        Ok(Decoded::Frame(f, n)) => {
            prop_assert!(n >= FRAME_HEADER && n <= bytes.len());
            prop_assert_eq!(&encoded(&f)[..], &bytes[..n]);
        }
        Ok(Decoded::NeedMore { needed }) => {
            if let Some(total) = needed {
                prop_assert!(total > bytes.len());
            } else {
                prop_assert!(bytes.len() < 4);
            }
        }
        Err(_) => {}
    }
    Ok(())
}

/// A frame header with a correct `len` in front of `body`.
fn with_header(kind: u8, tag: u32, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).expect("small body") + LEN_OVERHEAD;
    let mut out = len.to_le_bytes().to_vec();
    out.push(kind);
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(body);
    out
}

proptest! {
    /// (a) decode(encode(x)) == x, consuming exactly what was encoded; the length field
    /// says so, and a limit of exactly that length is enough.
    #[test]
    fn round_trip(f in frame(true)) {
        let bytes = encoded(&f);
        let len = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
        prop_assert_eq!(len as usize + 4, bytes.len());
        prop_assert_eq!(bytes[4], f.body.kind());
        prop_assert_eq!(
            decode(&bytes, DEFAULT_MAX_FRAME),
            Ok(Decoded::Frame(f.clone(), bytes.len()))
        );
        prop_assert_eq!(decode(&bytes, len), Ok(Decoded::Frame(f, bytes.len())));
        prop_assert_eq!(decode(&bytes, len - 1), Err(DecodeError::TooLarge { len, max: len - 1 }));
    }

    /// PUT packets survive encode_put and decode as a list, in order.
    #[test]
    fn put_packets_round_trip(
        tag in any::<u32>(),
        durable in any::<bool>(),
        packets in vec(put_packet(), 1..8),
    ) {
        let mut out = BytesMut::new();
        encode_put(&mut out, tag, durable, packets.iter().copied());
        let Ok(Decoded::Frame(f, n)) = decode(&out, DEFAULT_MAX_FRAME) else {
            return Err(TestCaseError::fail("encode_put output does not decode"));
        };
        prop_assert_eq!(n, out.len());
        prop_assert_eq!(f.tag, tag);
        let Body::Put { durable: d, packets: got } = f.body else {
            return Err(TestCaseError::fail("not a PUT"));
        };
        prop_assert_eq!(d, durable);
        prop_assert_eq!(got.count() as usize, packets.len());
        prop_assert_eq!(got.iter().len(), packets.len());
        prop_assert_eq!(got.iter().collect::<Vec<_>>(), packets);
    }

    /// (b) Arbitrary bytes never panic the decoder, whatever the limit.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..256), max_frame in any::<u32>()) {
        check_decode(&bytes, max_frame)?;
        check_decode(&bytes, DEFAULT_MAX_FRAME)?;
    }

    /// (b) Garbage bodies behind a correct header reach every body decoder.
    #[test]
    fn arbitrary_bodies_never_panic(
        kind in prop_oneof![3 => 0x01..=0x11u8, 3 => 0x41..=0x51u8, 1 => Just(kind::ERROR), 1 => any::<u8>()],
        tag in any::<u32>(),
        body in vec(any::<u8>(), 0..64),
        max_frame in prop_oneof![Just(DEFAULT_MAX_FRAME), any::<u32>()],
    ) {
        check_decode(&with_header(kind, tag, &body), max_frame)?;
    }

    /// (b) Valid frames with a few bytes changed or cut off never panic the decoder.
    #[test]
    fn mangled_frames_never_panic(
        f in frame(false),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encoded(&f);
        for (at, x) in edits {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        let keep = cut.index(bytes.len() + 1);
        check_decode(&bytes[..keep], DEFAULT_MAX_FRAME)?;
        check_decode(&bytes, DEFAULT_MAX_FRAME)?;
    }

    /// (c) Several frames in one stream, arriving in two chunks split at every byte,
    /// decode to the same frames; each "need more" names the next frame's total size.
    #[test]
    fn stream_split_anywhere(frames in vec(frame(false), 1..5)) {
        let mut stream = Vec::new();
        let mut sizes = Vec::new();
        for f in &frames {
            let b = encoded(f);
            sizes.push(b.len());
            stream.extend_from_slice(&b);
        }
        for split in 0..=stream.len() {
            let mut chunks = [&stream[..split], &stream[split..]].into_iter();
            let mut buf: Vec<u8> = Vec::new();
            let mut next = 0;
            loop {
                match decode(&buf, DEFAULT_MAX_FRAME) {
                    Ok(Decoded::Frame(f, n)) => {
                        prop_assert!(next < frames.len(), "split {}: extra frame", split);
                        prop_assert_eq!(&f, &frames[next], "split {}", split);
                        prop_assert_eq!(n, sizes[next]);
                        next += 1;
                        buf.drain(..n);
                    }
                    Ok(Decoded::NeedMore { needed }) => {
                        match needed {
                            None => prop_assert!(buf.len() < 4),
                            Some(total) => {
                                prop_assert!(buf.len() < total);
                                prop_assert_eq!(total, sizes[next], "split {}", split);
                            }
                        }
                        match chunks.next() {
                            Some(chunk) => buf.extend_from_slice(chunk),
                            None => break,
                        }
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("split {split}: {e}"))),
                }
            }
            prop_assert_eq!(next, frames.len(), "split {}", split);
            prop_assert!(buf.is_empty());
        }
    }

    /// (d) A length over the limit is refused from the four length bytes alone,
    /// whatever follows them.
    #[test]
    fn too_large_from_the_length_alone(
        (len, max) in (1..=u32::MAX).prop_flat_map(|len| (Just(len), 0..len)),
        rest in vec(any::<u8>(), 0..16),
    ) {
        let mut bytes = len.to_le_bytes().to_vec();
        prop_assert_eq!(decode(&bytes, max), Err(DecodeError::TooLarge { len, max }));
        bytes.extend_from_slice(&rest);
        prop_assert_eq!(decode(&bytes, max), Err(DecodeError::TooLarge { len, max }));
    }

    /// (e) Every proper prefix of a frame needs more: of unknown size before the length
    /// is complete, then of exactly the frame's size.
    #[test]
    fn need_more_reports_the_total(f in frame(false)) {
        let bytes = encoded(&f);
        for cut in 0..bytes.len() {
            let needed = (cut >= 4).then_some(bytes.len());
            prop_assert_eq!(decode(&bytes[..cut], DEFAULT_MAX_FRAME), Ok(Decoded::NeedMore { needed }));
        }
    }
}

#[test]
fn lengths_below_five_are_too_short() {
    for len in 0..LEN_OVERHEAD {
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 8]);
        assert_eq!(
            decode(&bytes, DEFAULT_MAX_FRAME),
            Err(DecodeError::TooShort { len })
        );
    }
}

#[test]
fn kinds_decode_exactly_as_kind_name_lists_them() {
    for k in 0..=u8::MAX {
        let bytes = with_header(k, 0, &[]);
        let result = decode(&bytes, DEFAULT_MAX_FRAME);
        if kind_name(k) == "unknown" {
            assert_eq!(result, Err(DecodeError::UnknownKind { kind: k }));
        } else {
            // An empty body is valid for some kinds and too short for the others.
            match result {
                Ok(Decoded::Frame(f, _)) => assert_eq!(f.body.kind(), k),
                Err(DecodeError::Malformed { kind, .. }) => assert_eq!(kind, kind_name(k)),
                other => panic!("kind 0x{k:02x}: {other:?}"),
            }
        }
    }
}

#[test]
fn error_codes_round_trip() {
    for n in 0..=u16::MAX {
        assert_eq!(ErrorCode::from_u16(n).to_u16(), n);
    }
}

/// The body-level refusals, each with the message and body offset it reports.
#[test]
fn malformed_bodies_are_refused() {
    let put_one = |flags: u8, count: u32, payload_len: u32| {
        let mut b = vec![flags];
        b.extend_from_slice(&count.to_le_bytes());
        b.extend_from_slice(&[1, b'X']);
        b.extend_from_slice(&0i64.to_le_bytes());
        b.extend_from_slice(&payload_len.to_le_bytes());
        b
    };
    let cases: Vec<(u8, Vec<u8>, &str, usize)> = vec![
        (
            kind::HELLO,
            vec![1, 0, 4, 0, 0, 0, 0, 0, 0],
            "reserved access bits set",
            3,
        ),
        (kind::PUT, put_one(2, 1, 0), "reserved flag bits set", 1),
        (
            kind::PUT,
            put_one(0, 0, 0),
            "a PUT needs at least one packet",
            5,
        ),
        (kind::PUT, put_one(0, 2, 0), "truncated srcname", 19),
        (
            kind::PUT,
            put_one(0, 1, 1),
            "payload runs past the end of the frame",
            19,
        ),
        (kind::SELECT, vec![2, 0, 0xff, 0xfe], "text is not UTF-8", 2),
        (kind::SELECT, vec![3, 0, b'a'], "truncated expression", 2),
        (
            kind::SEEK,
            [vec![6], vec![0; 8]].concat(),
            "unknown whence",
            1,
        ),
        (
            kind::GET,
            [vec![2], vec![0; 8]].concat(),
            "unknown which",
            1,
        ),
        (kind::TELL, vec![0], "bytes after the end of the body", 0),
        (kind::PING, vec![0; 7], "truncated nonce", 0),
        (
            kind::REAP_END,
            [vec![3], vec![0; 8]].concat(),
            "unknown reason",
            1,
        ),
        (kind::INFO, vec![b'{', 0xc0], "text is not UTF-8", 0),
        (kind::KILL, vec![0; 7], "truncated client id", 0),
        (kind::KILL, vec![0; 9], "bytes after the end of the body", 8),
        (kind::RELOAD, vec![0], "bytes after the end of the body", 0),
        (kind::KILLED, vec![0; 7], "truncated client id", 0),
        (
            kind::RELOADED,
            vec![4, 0, b'o', b'k'],
            "truncated summary",
            2,
        ),
        (kind::ERROR, vec![1, 0, 5, 0, b'a'], "truncated message", 4),
    ];
    for (k, body, what, offset) in cases {
        let bytes = with_header(k, 9, &body);
        let got = decode(&bytes, DEFAULT_MAX_FRAME);
        let want = DecodeError::Malformed {
            kind: kind_name(k),
            what,
            offset,
        };
        assert_eq!(got, Err(want), "{} body {body:02x?}", kind_name(k));
    }
}

/// Regression: an over-long str16 (or, in release builds, str8) was cut at byte 65535
/// (255) even inside a character, so the frame went out as invalid UTF-8 and the peer
/// closed the connection as malformed. It is now cut on a character boundary.
#[test]
fn over_long_text_is_cut_on_a_character_boundary() {
    let message = format!("{}\u{e9}", "a".repeat(usize::from(u16::MAX) - 1));
    assert_eq!(message.len(), usize::from(u16::MAX) + 1);
    let f = Frame {
        tag: 1,
        body: Body::Error {
            code: ErrorCode::RingError,
            message: &message,
        },
    };
    let bytes = encoded(&f);
    let Ok(Decoded::Frame(got, _)) = decode(&bytes, DEFAULT_MAX_FRAME) else {
        panic!("an over-long message made an undecodable frame");
    };
    let Body::Error { message: cut, .. } = got.body else {
        panic!("not an ERROR: {got:?}");
    };
    assert_eq!(cut, &message[..usize::from(u16::MAX) - 1]);
}

/// `frame_tag` gives the tag of a frame read whole, whatever its kind or body, and
/// nothing for a frame refused by its length alone or not yet all there.
#[test]
fn frame_tag_is_known_once_the_whole_frame_is_read() {
    let unknown = with_header(0x77, 5, &[1, 2]);
    assert!(matches!(
        decode(&unknown, 1 << 20),
        Err(DecodeError::UnknownKind { .. })
    ));
    assert_eq!(frame_tag(&unknown, 1 << 20), Some(5));
    let bad_body = with_header(kind::SEEK, 6, &[9, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(matches!(
        decode(&bad_body, 1 << 20),
        Err(DecodeError::Malformed { .. })
    ));
    assert_eq!(frame_tag(&bad_body, 1 << 20), Some(6));
    assert_eq!(frame_tag(&bad_body[..bad_body.len() - 1], 1 << 20), None);
    assert_eq!(frame_tag(&bad_body, 8), None);
    assert_eq!(frame_tag(&[4, 0, 0, 0, 1, 2, 3, 4, 5], 1 << 20), None);
}
