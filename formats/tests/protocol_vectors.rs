//! The example frames of `docs/PROTOCOL.md` are test vectors. Each `#### vector: NAME`
//! heading there is followed by a ```` ```hex ```` block; [`table`] below holds the frame
//! each NAME stands for. Every vector must decode to its frame, consuming all its bytes,
//! and the frame must encode back to exactly those bytes. A vector without a table entry,
//! or an entry without a vector, fails, and so does a frame kind without any vector.
//!
//! The same file's kind table, error table and INFO document examples are checked against
//! the code here too, so the document a client author reads cannot drift from the codec.

use bytes::BytesMut;
use formats::proto::encode::encode_put;
use formats::proto::info::{ClientsInfo, ServerStat, SourcesInfo};
use formats::proto::{
    decode, kind_name, Access, Body, Decoded, ErrorCode, Frame, PutPacket, ReapEndReason, Whence,
    DEFAULT_MAX_FRAME, NO_TIMEOUT,
};
use formats::Time;

const PROTOCOL_MD: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"));

/// 2026-11-22T10:00:00Z.
const T0: i64 = 1_795_341_600_000_000;

fn t(micros: i64) -> Time {
    Time::from_micros(micros)
}

/// A PUT frame can only be built by decoding one (its packets are kept encoded), so
/// encode the packets, keep the buffer for the life of the test, and decode it.
fn put(tag: u32, durable: bool, packets: &[PutPacket<'static>]) -> Frame<'static> {
    let mut buf = BytesMut::new();
    encode_put(&mut buf, tag, durable, packets.iter().copied());
    let buf: &'static [u8] = Vec::leak(buf.to_vec());
    let Ok(Decoded::Frame(frame, n)) = decode(buf, DEFAULT_MAX_FRAME) else {
        panic!("encode_put output does not decode");
    };
    assert_eq!(n, buf.len());
    let Body::Put { packets: got, .. } = &frame.body else {
        panic!("encode_put output is not a PUT");
    };
    assert_eq!(got.iter().collect::<Vec<_>>(), packets);
    frame
}

fn f(tag: u32, body: Body<'static>) -> Frame<'static> {
    Frame { tag, body }
}

/// The frame each vector of PROTOCOL.md stands for, by name.
fn table() -> Vec<(&'static str, Frame<'static>)> {
    let rw = Access {
        read: true,
        write: true,
    };
    let r = Access {
        read: true,
        write: false,
    };
    let seek = |tag, whence| f(tag, Body::Seek { whence, pktid: 0 });
    let reap_end = |tag, reason, pos| f(tag, Body::ReapEnd { reason, pos });
    vec![
        (
            "hello",
            f(
                7,
                Body::Hello {
                    version: 1,
                    access: rw,
                    pid: 4242,
                    who: "alice@host",
                    what: "orbtail",
                    token: None,
                },
            ),
        ),
        (
            "hello-read-only",
            f(
                1,
                Body::Hello {
                    version: 1,
                    access: r,
                    pid: 1,
                    who: "",
                    what: "",
                    token: None,
                },
            ),
        ),
        (
            "hello-token",
            f(
                2,
                Body::Hello {
                    version: 1,
                    access: Access {
                        read: false,
                        write: true,
                    },
                    pid: 7,
                    who: "seis@sta01",
                    what: "orbput",
                    token: Some("k7Qm2xTz9LpW4vRb"),
                },
            ),
        ),
        (
            "put",
            put(
                8,
                false,
                &[PutPacket {
                    srcname: "AZ_PFO_BHZ_00/MGENC",
                    time: t(T0),
                    payload: &[0xde, 0xad, 0xbe, 0xef],
                }],
            ),
        ),
        (
            "put-durable",
            put(
                9,
                true,
                &[
                    PutPacket {
                        srcname: "AZ_PFO_BHZ_00",
                        time: t(T0 + 250_000),
                        payload: &[1, 2, 3],
                    },
                    PutPacket {
                        srcname: "AZ_PFO_BHN_00",
                        time: t(-1),
                        payload: &[],
                    },
                ],
            ),
        ),
        (
            "select",
            f(
                10,
                Body::Select {
                    expr: "AZ_.*/MGENC",
                },
            ),
        ),
        ("select-all", f(11, Body::Select { expr: "" })),
        ("reject", f(12, Body::Reject { expr: ".*_LH._.*" })),
        (
            "seek-pktid",
            f(
                13,
                Body::Seek {
                    whence: Whence::Pktid,
                    pktid: 1000,
                },
            ),
        ),
        ("seek-oldest", seek(14, Whence::Oldest)),
        ("seek-newest", seek(15, Whence::Newest)),
        ("seek-next", seek(16, Whence::Next)),
        ("seek-prev", seek(17, Whence::Prev)),
        ("seek-current", seek(18, Whence::Current)),
        (
            "after",
            f(
                19,
                Body::After {
                    time: t(T0 + 250_000),
                },
            ),
        ),
        (
            "after-before-1970",
            f(
                20,
                Body::After {
                    time: t(-1_000_000),
                },
            ),
        ),
        ("tell", f(21, Body::Tell)),
        (
            "get-pktid",
            f(
                22,
                Body::Get {
                    current: false,
                    pktid: 1000,
                },
            ),
        ),
        (
            "get-current",
            f(
                23,
                Body::Get {
                    current: true,
                    pktid: 0,
                },
            ),
        ),
        (
            "reap",
            f(
                24,
                Body::Reap {
                    max_packets: 0,
                    timeout_ms: NO_TIMEOUT,
                    credit: 100,
                },
            ),
        ),
        (
            "reap-poll",
            f(
                25,
                Body::Reap {
                    max_packets: 10,
                    timeout_ms: 0,
                    credit: 10,
                },
            ),
        ),
        ("credit", f(26, Body::Credit { n: 50 })),
        ("stop", f(27, Body::Stop)),
        ("stat", f(28, Body::Stat)),
        ("sources", f(29, Body::Sources)),
        ("clients", f(30, Body::Clients)),
        (
            "ping",
            f(
                31,
                Body::Ping {
                    nonce: 0x0123_4567_89ab_cdef,
                },
            ),
        ),
        ("kill", f(32, Body::Kill { client_id: 3 })),
        ("reload", f(33, Body::Reload)),
        (
            "welcome",
            f(
                7,
                Body::Welcome {
                    version: 1,
                    server: "orbserver 0.1.0",
                    ring_capacity: 1 << 30,
                    max_packet: 1 << 20,
                    client_id: 3,
                },
            ),
        ),
        (
            "put-ok",
            f(
                9,
                Body::PutOk {
                    first_pktid: 1000,
                    count: 2,
                },
            ),
        ),
        ("selected", f(10, Body::Selected { nsources: 12 })),
        ("position", f(13, Body::Position { pktid: 1000 })),
        (
            "packet",
            f(
                24,
                Body::Packet {
                    pktid: 1000,
                    time: t(T0),
                    srcname: "AZ_PFO_BHZ_00/MGENC",
                    payload: &[0xde, 0xad, 0xbe, 0xef],
                },
            ),
        ),
        (
            "packet-empty",
            f(
                22,
                Body::Packet {
                    pktid: 1,
                    time: t(0),
                    srcname: "X",
                    payload: &[],
                },
            ),
        ),
        (
            "gap",
            f(
                24,
                Body::Gap {
                    first: 500,
                    last: 899,
                    bytes: 65536,
                },
            ),
        ),
        ("reap-end-budget", reap_end(25, ReapEndReason::Budget, 1010)),
        (
            "reap-end-timeout",
            reap_end(25, ReapEndReason::Timeout, 1001),
        ),
        (
            "reap-end-stopped",
            reap_end(24, ReapEndReason::Stopped, 1001),
        ),
        (
            "info",
            f(
                29,
                Body::Info {
                    json: r#"{"sources":[]}"#,
                },
            ),
        ),
        (
            "pong",
            f(
                31,
                Body::Pong {
                    nonce: 0x0123_4567_89ab_cdef,
                    server_time: t(T0),
                },
            ),
        ),
        ("killed", f(32, Body::Killed { client_id: 3 })),
        (
            "reloaded",
            f(
                33,
                Body::Reloaded {
                    summary: "access rules reloaded from orb.toml (2 tokens)",
                },
            ),
        ),
        (
            "error",
            f(
                10,
                Body::Error {
                    code: ErrorCode::BadState,
                    message: "reap active",
                },
            ),
        ),
        (
            "error-malformed",
            f(
                42,
                Body::Error {
                    code: ErrorCode::Malformed,
                    message: "unknown frame kind 0x77",
                },
            ),
        ),
        (
            "error-shutting-down",
            f(
                0,
                Body::Error {
                    code: ErrorCode::ShuttingDown,
                    message: "server shutting down",
                },
            ),
        ),
        (
            "error-killed",
            f(
                0,
                Body::Error {
                    code: ErrorCode::Killed,
                    message: "closed by an administrator",
                },
            ),
        ),
        (
            "error-unknown-code",
            f(
                5,
                Body::Error {
                    code: ErrorCode::Other(1000),
                    message: "",
                },
            ),
        ),
    ]
}

/// The code blocks of language `lang` that follow `#### {heading}: NAME` headings, as
/// (NAME, block text). Only blank lines and one description paragraph may come between.
fn blocks(heading: &str, lang: &str) -> Vec<(String, String)> {
    let prefix = format!("#### {heading}:");
    let fence = format!("```{lang}");
    let mut out = Vec::new();
    let mut lines = PROTOCOL_MD.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix(&prefix) else {
            continue;
        };
        let name = name.trim().to_owned();
        let open = lines
            .by_ref()
            .find(|l| l.starts_with("```") || l.starts_with('#'))
            .unwrap_or_else(|| panic!("{heading} {name}: no code block follows"));
        assert_eq!(open.trim(), fence, "{heading} {name}: wrong code block");
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        out.push((name, body.join("\n")));
    }
    out
}

fn unhex(name: &str, text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| {
            assert_eq!(b.len(), 2, "vector {name}: {b:?} is not one hex byte");
            u8::from_str_radix(b, 16)
                .unwrap_or_else(|e| panic!("vector {name}: {b:?} is not hex: {e}"))
        })
        .collect()
}

#[test]
fn every_vector_decodes_and_encodes_exactly() {
    let table = table();
    let vectors = blocks("vector", "hex");
    assert!(!vectors.is_empty(), "PROTOCOL.md has no test vectors");

    for (name, hex) in &vectors {
        let bytes = unhex(name, hex);
        let Some((_, expected)) = table.iter().find(|(n, _)| n == name) else {
            panic!("PROTOCOL.md has vector {name:?}, which the test table lacks");
        };
        let decoded = decode(&bytes, DEFAULT_MAX_FRAME)
            .unwrap_or_else(|e| panic!("vector {name}: does not decode: {e}"));
        assert_eq!(
            decoded,
            Decoded::Frame(expected.clone(), bytes.len()),
            "vector {name}: decodes to another frame"
        );
        let mut out = BytesMut::new();
        expected.encode(&mut out);
        assert_eq!(
            &out[..],
            &bytes[..],
            "vector {name}: the frame encodes to other bytes"
        );
    }

    for (name, _) in &table {
        assert!(
            vectors.iter().any(|(n, _)| n == name),
            "the test table has {name:?}, which PROTOCOL.md lacks as a vector"
        );
    }
    for (i, (name, _)) in vectors.iter().enumerate() {
        assert!(
            !vectors[..i].iter().any(|(n, _)| n == name),
            "PROTOCOL.md has two vectors named {name:?}"
        );
    }
}

#[test]
fn every_kind_has_a_vector() {
    let kinds: Vec<u8> = table().iter().map(|(_, f)| f.body.kind()).collect();
    let known = (0..=u8::MAX).filter(|&k| kind_name(k) != "unknown");
    for k in known {
        assert!(
            kinds.contains(&k),
            "kind 0x{k:02x} ({}) has no vector in PROTOCOL.md",
            kind_name(k)
        );
    }
}

/// The rows of the first table after the heading line `heading`, as trimmed cells.
fn table_rows(heading: &str) -> Vec<Vec<String>> {
    let mut lines = PROTOCOL_MD.lines().skip_while(|l| *l != heading).skip(1);
    let rows: Vec<Vec<String>> = lines
        .by_ref()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_owned())
                .collect()
        })
        .collect();
    assert!(rows.len() > 2, "no table after {heading:?}");
    rows[2..].to_vec()
}

#[test]
fn kind_table_matches_the_code() {
    let rows = table_rows("## Frame kinds");
    let mut listed = Vec::new();
    for row in rows {
        let number = row[0].strip_prefix("0x").expect("kind written as 0xNN");
        let k = u8::from_str_radix(number, 16).expect("kind is hex");
        assert_eq!(row[1], kind_name(k), "kind 0x{k:02x} has another name");
        let client = k < 0x40;
        let direction = if client {
            "client -> server"
        } else {
            "server -> client"
        };
        assert_eq!(row[2], direction, "kind {}", row[1]);
        listed.push(k);
    }
    let known: Vec<u8> = (0..=u8::MAX)
        .filter(|&k| kind_name(k) != "unknown")
        .collect();
    assert_eq!(
        listed, known,
        "the kind table lists other kinds than the code"
    );
}

#[test]
fn error_table_matches_the_code() {
    let rows = table_rows("## Errors");
    let mut listed = Vec::new();
    for row in rows {
        let n: u16 = row[0].parse().expect("error code is a number");
        let code = ErrorCode::from_u16(n);
        assert_eq!(row[1], format!("{code:?}"), "code {n} has another name");
        let fatal = row[2].starts_with("yes");
        assert_eq!(fatal, code.is_fatal(), "code {n} ({}) fatality", row[1]);
        listed.push(n);
    }
    let known: Vec<u16> = (0..=u16::MAX)
        .filter(|&n| !matches!(ErrorCode::from_u16(n), ErrorCode::Other(_)))
        .collect();
    assert_eq!(
        listed, known,
        "the error table lists other codes than the code"
    );
}

/// Parses `json` as `T` and serialises it back: every field the example shows must be
/// one `T` has, and every field `T` has must be in the example.
fn same_document<T: serde::de::DeserializeOwned + serde::Serialize>(name: &str, json: &str) {
    let doc: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("document {name}: {e}"));
    let typed: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("document {name} does not fit its type: {e}"));
    let back = serde_json::to_value(&typed).expect("serialises");
    assert_eq!(
        back, doc,
        "document {name} has fields its type lacks, or lacks some"
    );
}

#[test]
fn info_examples_match_the_types() {
    let docs = blocks("document", "json");
    let mut names: Vec<&str> = docs.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["clients", "sources", "stat"]);
    for (name, json) in &docs {
        match name.as_str() {
            "stat" => same_document::<ServerStat>(name, json),
            "sources" => same_document::<SourcesInfo>(name, json),
            "clients" => same_document::<ClientsInfo>(name, json),
            _ => unreachable!(),
        }
    }
}
