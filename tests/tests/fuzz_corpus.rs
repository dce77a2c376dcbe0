//! Every fuzz target's body (`fuzz/bodies/<target>.rs`, the same file the libFuzzer
//! binary calls) runs on every `cargo test`: over each file of the target's committed
//! seed corpus (`fuzz/corpus/<target>/`), then over [`MUTATIONS`] inputs mutated from
//! that corpus by a seeded generator, so a failure reproduces. The bodies assert the
//! targets' invariants (no panic; decode(encode(x)) == x where a target checks it).
//!
//! The seed corpus is made by our own encoders ([`seeds`]); a test checks that the
//! committed files are what the encoders make today. After a format change, rewrite
//! them with `ORB_WRITE_CORPUS=1 cargo test -p tests --test fuzz_corpus`.
//!
//! Adding a target: give it a body in `fuzz/bodies/` and a binary in
//! `fuzz/fuzz_targets/` that calls it, commit a few seeds under `fuzz/corpus/<target>/`,
//! and add its name to the `targets!` line below. Seeds are best made by an arm in
//! [`seeds::of`], which keeps them in step with the encoders; hand-made ones work too.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use orb_tests::XorShift;

/// Mutated inputs run through each body per `cargo test`.
const MUTATIONS: usize = 10_000;
/// Longest mutated input: the bodies are linear, larger inputs only cost time.
const MAX_INPUT: usize = 16 * 1024;

/// Pulls in each named body from `fuzz/bodies/` as a module and lists them in
/// `TARGETS`, so adding a target here is one name on one line.
macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                include!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../fuzz/bodies/",
                    stringify!($name),
                    ".rs"
                ));
            }
        )*
        /// Each fuzz target's name and body.
        const TARGETS: &[(&str, fn(&[u8]))] = &[$((stringify!($name), $name::check)),*];
    };
}

targets!(
    datalink,
    frame,
    payload_decode,
    raw_file,
    ring_scan,
    rule_file,
    seedlink,
    srcname,
    steim,
    time
);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The committed corpus of `target`, by file name.
fn corpus(target: &str) -> BTreeMap<String, Vec<u8>> {
    let dir = fuzz_dir().join("corpus").join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; write the seed corpus (see this file's docs)",
            dir.display()
        )
    });
    entries
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// Runs `body` on `input`; on a panic, prints what reproduces it before failing.
fn run(target: &str, body: fn(&[u8]), input: &[u8], origin: &str) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| body(input))) {
        eprintln!(
            "fuzz body {target} panicked on {origin} ({} bytes): {input:02x?}\n\
             save these bytes under fuzz/corpus/{target}/ to keep the case",
            input.len()
        );
        resume_unwind(panic);
    }
}

#[test]
fn every_fuzz_target_is_run_here_and_has_a_seed_corpus() {
    let listed: Vec<&str> = TARGETS.iter().map(|t| t.0).collect();
    for e in std::fs::read_dir(fuzz_dir().join("fuzz_targets")).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            listed.contains(&name.as_str()),
            "fuzz target {name} is not run by cargo test: move its body to \
             fuzz/bodies/{name}.rs and add {name} to the targets! line in {}",
            file!()
        );
    }
    // No size limit here: a local `cargo fuzz run` may have added its finds (which git
    // ignores), and running them too does no harm.
    for (target, _) in TARGETS {
        let files = corpus(target);
        assert!(files.len() >= 3, "{target}: only {} seeds", files.len());
    }
}

#[test]
fn the_seed_corpus_is_what_our_encoders_make() {
    let write = std::env::var_os("ORB_WRITE_CORPUS").is_some();
    for (target, _) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(target);
        // Targets without a generator keep hand-made seeds, checked only for existence.
        let Some(want) = seeds::of(target) else {
            continue;
        };
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in &want {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
        let have = corpus(target);
        for (name, bytes) in &want {
            assert_eq!(
                have.get(name.as_str()),
                Some(bytes),
                "fuzz/corpus/{target}/{name} is missing or stale: rewrite the corpus with \
                 ORB_WRITE_CORPUS=1 cargo test -p tests --test fuzz_corpus"
            );
        }
    }
}

#[test]
fn every_corpus_file_passes_its_body() {
    for (target, body) in TARGETS {
        for (name, input) in corpus(target) {
            run(
                target,
                *body,
                &input,
                &format!("fuzz/corpus/{target}/{name}"),
            );
        }
    }
}

#[test]
fn mutations_of_the_corpus_pass_their_body() {
    for (i, (target, body)) in TARGETS.iter().enumerate() {
        let seeds: Vec<Vec<u8>> = corpus(target).into_values().collect();
        let seed = 0xF022_0000 + i as u64;
        let mut rng = XorShift::new(seed);
        for n in 0..MUTATIONS {
            let input = mutate(&mut rng, &seeds);
            run(
                target,
                *body,
                &input,
                &format!("mutation {n} of seed {seed:#x}"),
            );
        }
    }
}

/// Values that sit on the edges parsers get wrong: zero, one, sign bits, all ones.
const INTERESTING: [u32; 8] = [0, 1, 0x7f, 0x80, 0xff, 0x7fff_ffff, 0x8000_0000, u32::MAX];

/// One input made from a random seed by one to four random edits, in the spirit of
/// libFuzzer's mutators: bit flips, edge values, insertions, deletions, truncation,
/// duplicated ranges and splices from another seed; one in sixteen is plain noise.
fn mutate(rng: &mut XorShift, seeds: &[Vec<u8>]) -> Vec<u8> {
    let pick = |rng: &mut XorShift| seeds[rng.range(0, seeds.len() as u64) as usize].clone();
    if rng.range(0, 16) == 0 {
        let len = rng.range(0, 512);
        return (0..len).map(|_| rng.next_u64() as u8).collect();
    }
    let mut v = pick(rng);
    for _ in 0..rng.range(1, 5) {
        let len = v.len() as u64;
        let at = |rng: &mut XorShift| rng.range(0, len + 1) as usize;
        match rng.range(0, 9) {
            0 if len > 0 => {
                let i = rng.range(0, len) as usize;
                v[i] ^= 1 << rng.range(0, 8);
            }
            1 if len > 0 => {
                let i = rng.range(0, len) as usize;
                v[i] = INTERESTING[rng.range(0, 8) as usize] as u8;
            }
            2 if len >= 4 => {
                let i = rng.range(0, len - 3) as usize;
                let x = INTERESTING[rng.range(0, 8) as usize];
                v[i..i + 4].copy_from_slice(&x.to_le_bytes());
            }
            3 => {
                let i = at(rng);
                let n = rng.range(1, 17);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                v.splice(i..i, bytes);
            }
            4 if len > 0 => {
                let i = rng.range(0, len) as usize;
                let n = rng.range(1, 17).min(len - i as u64) as usize;
                v.drain(i..i + n);
            }
            5 => v.truncate(at(rng)),
            6 if len > 0 => {
                let i = rng.range(0, len) as usize;
                let n = rng.range(1, 65).min(len - i as u64) as usize;
                let copy = v[i..i + n].to_vec();
                let j = at(rng);
                v.splice(j..j, copy);
            }
            7 => {
                let other = pick(rng);
                let from = rng.range(0, other.len() as u64 + 1) as usize;
                v.truncate(at(rng));
                v.extend_from_slice(&other[from..]);
            }
            _ if len > 0 => {
                let i = rng.range(0, len) as usize;
                v[i] = rng.next_u64() as u8;
            }
            _ => v.push(rng.next_u64() as u8),
        }
    }
    v.truncate(MAX_INPUT);
    v
}

/// The seed corpus, made by the encoders the fuzzed decoders pair with: a few valid
/// inputs (named `valid-*`) and a few broken in the ways real input breaks
/// (`malformed-*`).
mod seeds {
    use bytes::BytesMut;
    use formats::payload::steim::{self, Steim};
    use formats::payload::{gen, genc, mgenc, seed, Channel};
    use formats::proto::encode::encode_put;
    use formats::proto::{Access, Body, ErrorCode, PutPacket, ReapEndReason, Whence};
    use formats::{SrcName, Time};
    use orb_tests::harness::encode_frame;
    use orb_tests::make_payload;
    use orbserver::ring::{FlushPolicy, RingOptions, RingStore};

    /// File name and bytes of each seed of `target`, or `None` for a target whose seeds
    /// are not made here.
    pub fn of(target: &str) -> Option<Vec<(String, Vec<u8>)>> {
        let seeds = match target {
            "datalink" => datalink(),
            "frame" => frame(),
            "payload_decode" => payload_decode(),
            "raw_file" => raw_file(),
            "ring_scan" => ring_scan(),
            "srcname" => text(&[
                ("valid-full", "TA_M04C_BHZ_00/MGENC/EP40"),
                ("valid-net-sta", "XX_STA01"),
                ("valid-seed", "XX_STA01_BHZ_00/SEED"),
                ("valid-pf", "AZ_BZN/pf/st"),
                ("malformed-empty", ""),
                ("malformed-space", "XX STA/MGENC"),
                ("malformed-no-net", "/MGENC"),
                ("malformed-empty-part", "XX_STA//EP40"),
                ("malformed-non-ascii", "XX_STÅ_BHZ"),
            ]),
            "time" => time(),
            "steim" => steim(),
            "seedlink" => text(&[
                (
                    "valid-multi-station",
                    "HELLO\r\nCAPABILITIES EXTREPLY\r\nSTATION  STA01 XX\r\nSELECT 00BH?.D\r\n\
                     SELECT !BHE\r\nDATA 0x1a2b 2026,11,22,10,0,0\r\nSTATION PRS01 XX\r\n\
                     TIME 2026,11,22,10,0,0 2026,11,22,10,0,5\r\nEND\r\n",
                ),
                ("valid-uni-station", "select BHZ\nfetch 00001F\n"),
                ("valid-info", "INFO STREAMS\rINFO ID\rCAT\rBYE\r"),
                ("malformed-unknown", "FROB\r\nHELLO there\r\n"),
                (
                    "malformed-bad-args",
                    "DATA zz\r\nTIME 2026,13,1,0,0,0\r\nSELECT 00BHZZ\r\n",
                ),
                ("malformed-no-terminator", "STATION STA01 XX"),
                (
                    "valid-libslink",
                    "HELLO\r\nCAPABILITIES EXTREPLY\r\nUSERAGENT slinktool/5.0 libslink/4.3\r\n\
                     STATION STA01 XX\r\nSELECT B_H_Z\r\nSELECT !00_B_H_?.D\r\n\
                     SELECT *_B_H_*\r\nSELECT B#Z\r\nFETCH 1A\r\nEND\r\nINFO FORMATS\r\nINFO\r\n",
                ),
            ]),
            _ => return None,
        };
        Some(
            seeds
                .into_iter()
                .map(|(name, bytes)| (name.to_string(), bytes))
                .collect(),
        )
    }

    fn text(cases: &[(&'static str, &str)]) -> Vec<(&'static str, Vec<u8>)> {
        cases
            .iter()
            .map(|(name, s)| (*name, s.as_bytes().to_vec()))
            .collect()
    }

    const T0: Time = Time::from_micros(1_795_341_600_250_000);

    fn put(tag: u32, durable: bool, packets: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = BytesMut::new();
        let ps = packets.iter().map(|(srcname, payload)| PutPacket {
            srcname,
            time: T0,
            payload,
        });
        encode_put(&mut b, tag, durable, ps);
        b.to_vec()
    }

    fn raw_file() -> Vec<(&'static str, Vec<u8>)> {
        use formats::write::raw::RawWriter;
        use formats::write::PacketWriter;
        let packets: Vec<formats::Packet> = (0..3u64)
            .map(|i| formats::Packet {
                pktid: 10 + i,
                srcname: SrcName::new(if i == 1 {
                    "XX_STA02/GENC/BHZ"
                } else {
                    "XX_STA01/EXP"
                })
                .unwrap(),
                time: T0,
                payload: make_payload(i, 40 + 10 * i as usize).into(),
            })
            .collect();
        let mut w = RawWriter::new(Vec::new());
        for p in &packets {
            w.append(p, &[]).unwrap();
        }
        w.finish().unwrap();
        let whole = w.into_inner();
        let mut flipped = whole.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x40;
        let mut empty = RawWriter::new(Vec::new());
        empty.finish().unwrap();
        vec![
            ("valid-three-packets", whole.clone()),
            ("valid-empty", empty.into_inner()),
            ("malformed-torn-tail", whole[..whole.len() - 5].to_vec()),
            ("malformed-bit-flip", flipped),
            ("malformed-no-header", whole[whole.len() / 3..].to_vec()),
        ]
    }

    fn datalink() -> Vec<(&'static str, Vec<u8>)> {
        use formats::datalink::{Command, InfoKind, Position, Write};
        let enc = |cmds: &[Command<'_>]| {
            let mut out = Vec::new();
            for c in cmds {
                c.encode(&mut out).unwrap();
            }
            out
        };
        let write = Command::Write(Write {
            streamid: "IU_ANMO_00_BHZ/MSEED",
            start: T0,
            end: T0,
            ack: true,
            payload: b"record bytes",
        });
        let session = enc(&[
            Command::Id("slink2dali:seis:4242:x86_64"),
            write,
            Command::Match("IU_.*"),
            Command::Reject("LOG"),
            Command::PositionSet(Position::Pktid {
                pktid: 7,
                time: Some(T0),
            }),
            Command::PositionSet(Position::Earliest),
            Command::PositionAfter(T0),
            Command::Read(7),
            Command::Stream,
            Command::EndStream,
            Command::Info {
                kind: InfoKind::Streams,
                matching: Some("ANMO"),
            },
        ]);
        let mut truncated = enc(&[write]);
        truncated.truncate(truncated.len() - 3);
        vec![
            ("valid-session", session),
            ("valid-write", enc(&[write])),
            (
                "malformed-unknown-then-id",
                b"DL\x05HELLODL\x05ID me".to_vec(),
            ),
            ("malformed-bad-time", b"DL\x13WRITE A_B/C 1 x A 1z".to_vec()),
            ("malformed-magic", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
            ("malformed-truncated", truncated),
        ]
    }

    fn frame() -> Vec<(&'static str, Vec<u8>)> {
        let hello = encode_frame(
            1,
            Body::Hello {
                version: 1,
                access: Access {
                    read: true,
                    write: true,
                },
                pid: 4242,
                who: "seis@digitizer1",
                what: "orbput",
                token: None,
            },
        );
        let put = put(
            2,
            false,
            &[
                ("XX_STA01/MGENC", b"abc"),
                ("XX_STA02/MGENC", &[0, 1, 2, 3]),
            ],
        );
        let mut session = hello.clone();
        for (tag, body) in [
            (
                3,
                Body::Select {
                    expr: "XX_.*/MGENC",
                },
            ),
            (4, Body::Reject { expr: "" }),
            (
                5,
                Body::Seek {
                    whence: Whence::Pktid,
                    pktid: 17,
                },
            ),
            (6, Body::After { time: T0 }),
            (7, Body::Tell),
            (
                8,
                Body::Get {
                    current: false,
                    pktid: 17,
                },
            ),
            (
                9,
                Body::Reap {
                    max_packets: 0,
                    timeout_ms: u32::MAX,
                    credit: 64,
                },
            ),
            (10, Body::Credit { n: 64 }),
            (11, Body::Stop),
            (12, Body::Stat),
            (13, Body::Clients),
            (14, Body::Ping { nonce: 7 }),
            (15, Body::Kill { client_id: 3 }),
            (16, Body::Reload),
        ] {
            session.extend(encode_frame(tag, body));
        }
        session.extend(&put);
        let mut server = Vec::new();
        for (tag, body) in [
            (
                1,
                Body::Welcome {
                    version: 1,
                    server: "orbserver 0.1.0",
                    ring_capacity: 1 << 20,
                    max_packet: 1 << 16,
                    client_id: 3,
                },
            ),
            (3, Body::Killed { client_id: 3 }),
            (
                4,
                Body::Reloaded {
                    summary: "access rules from orbserver.toml: 2 tokens",
                },
            ),
            (
                2,
                Body::PutOk {
                    first_pktid: 17,
                    count: 2,
                },
            ),
            (
                9,
                Body::Packet {
                    pktid: 17,
                    time: T0,
                    srcname: "XX_STA01/MGENC",
                    payload: b"abc",
                },
            ),
            (
                9,
                Body::Gap {
                    first: 18,
                    last: 20,
                    bytes: 192,
                },
            ),
            (
                9,
                Body::ReapEnd {
                    reason: ReapEndReason::Stopped,
                    pos: 21,
                },
            ),
            (
                12,
                Body::Info {
                    json: "{\"clients\":[]}",
                },
            ),
            (
                14,
                Body::Pong {
                    nonce: 7,
                    server_time: T0,
                },
            ),
            (
                15,
                Body::Error {
                    code: ErrorCode::NotFound,
                    message: "pktid 99 is not in the ring",
                },
            ),
        ] {
            server.extend(encode_frame(tag, body));
        }
        let mut unknown_kind = encode_frame(5, Body::Tell);
        unknown_kind[4] = 0x3e;
        let mut huge = put.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        vec![
            ("valid-hello", hello),
            (
                "valid-put-durable",
                self::put(2, true, &[("XX_STA01_BHZ/GENC", b"x")]),
            ),
            ("valid-client-session", session),
            ("valid-server-stream", server),
            ("malformed-truncated-put", put[..put.len() / 2].to_vec()),
            ("malformed-length-too-short", vec![3, 0, 0, 0, 0x07, 1, 0]),
            ("malformed-unknown-kind", unknown_kind),
            ("malformed-huge-length", huge),
        ]
    }

    fn channel(chan: &str, n: i32) -> Channel {
        Channel {
            net: "XX".into(),
            sta: "STA01".into(),
            chan: chan.into(),
            loc: String::new(),
            start: Time::from_micros(1_700_000_000_000_000),
            samprate: 40.0,
            calib: 0.5,
            calper: 1.0,
            segtype: 'V',
            samples: (0..n).map(|i| (i * i * 37) % 2001 - 1000).collect(),
        }
    }

    fn payload_decode() -> Vec<(&'static str, Vec<u8>)> {
        // The first byte picks the srcname from the body's NAMES.
        let with = |pick: u8, bytes: Vec<u8>| [vec![pick], bytes].concat();
        let gen = gen::encode(&channel("BHZ", 40)).unwrap();
        let genc = genc::encode(&channel("BHZ", 120)).unwrap();
        let mut seed_ch = channel("BHZ", 200);
        seed_ch.loc = "00".into();
        let seed = seed::encode(&seed_ch, Steim::Two).unwrap();
        let mgenc = mgenc::encode(&[channel("BHZ", 40), channel("BHN", 40)]).unwrap();
        let mut mgenc_flipped = mgenc.clone();
        let mid = mgenc_flipped.len() / 2;
        mgenc_flipped[mid] ^= 0x10;
        vec![
            ("valid-gen", with(0, gen)),
            ("valid-genc", with(1, genc.clone())),
            ("valid-mgenc", with(2, mgenc.clone())),
            ("valid-seed-steim2", with(3, seed.clone())),
            ("valid-exp", with(4, b"opaque bytes".to_vec())),
            (
                "malformed-genc-truncated",
                with(1, genc[..genc.len() - 7].to_vec()),
            ),
            ("malformed-mgenc-bit-flip", with(2, mgenc_flipped)),
            ("malformed-seed-truncated", with(3, seed[..100].to_vec())),
        ]
    }

    /// The start of a real ring's data area after `n` small appends.
    fn ring_area(n: u64) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let ring = RingStore::open(
            dir.path(),
            &RingOptions {
                size: Some(1 << 20),
                flush: FlushPolicy::None,
            },
        )
        .unwrap();
        for seq in 0..n {
            let src = SrcName::new(if seq % 2 == 0 {
                "XX_A/MGENC"
            } else {
                "XX_B_BHZ/GENC"
            })
            .unwrap();
            ring.append(&src, T0, &make_payload(seq, 12 + seq as usize * 5))
                .unwrap();
        }
        ring.close().unwrap();
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| std::fs::metadata(p).unwrap().len() > (1 << 20))
            .expect("the ring file");
        let bytes = std::fs::read(file).unwrap();
        let area = &bytes[orbserver::ring::layout::HEADER_SIZE..];
        // Up to the end of the last record (a longer all-zero tail adds nothing), but at
        // least four times the largest record, as a real ring (RING-FORMAT.md 5).
        let (end, largest) = (0..n).fold((0, 0), |(at, largest), _| {
            let len = record_len(area, at);
            (at + len, largest.max(len))
        });
        let area = area[..end.max(4 * largest)].to_vec();
        let live = orbserver::ring::recover::scan(&area).live.len();
        assert_eq!(live as u64, n, "the seed area must hold every record whole");
        area
    }

    fn ring_scan() -> Vec<(&'static str, Vec<u8>)> {
        let area = ring_area(8);
        let mut flipped = area.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x01;
        let mut zeroed = area.clone();
        zeroed[64..192].fill(0);
        // The second record's pktid set to 1, its CRC made right again: recovery must
        // drop it for breaking pktid order, not for a bad checksum.
        let mut reordered = area.clone();
        let second = record_len(&area, 0);
        reordered[second + 16..second + 24].copy_from_slice(&1u64.to_le_bytes());
        let len = 40 + record_body_len(&area, second);
        let crc = crc32fast::hash(&reordered[second + 8..second + len]);
        reordered[second + 4..second + 8].copy_from_slice(&crc.to_le_bytes());
        vec![
            ("valid-8-records", area.clone()),
            ("valid-1-record", ring_area(1)),
            ("malformed-bit-flip", flipped),
            ("malformed-torn-tail", area[..area.len() - 20].to_vec()),
            ("malformed-zeroed-middle", zeroed),
            ("malformed-pktid-order", reordered),
        ]
    }

    /// Srcname plus payload bytes of the record at data offset `at` (RING-FORMAT.md 5).
    fn record_body_len(area: &[u8], at: usize) -> usize {
        let payload = u32::from_le_bytes(area[at + 32..at + 36].try_into().unwrap());
        let srcname = u16::from_le_bytes(area[at + 36..at + 38].try_into().unwrap());
        payload as usize + usize::from(srcname)
    }

    /// Stored size of the record at data offset `at`.
    fn record_len(area: &[u8], at: usize) -> usize {
        (40 + record_body_len(area, at) + 7) & !7
    }

    fn time() -> Vec<(&'static str, Vec<u8>)> {
        let t = Time::from_micros(1_795_341_600_123_456);
        let before_1970 = Time::from_micros(-86_400_000_001);
        let iso = t.to_iso8601().unwrap();
        vec![
            ("valid-iso8601", iso.clone().into_bytes()),
            ("valid-epoch", t.to_epoch_string().into_bytes()),
            (
                "valid-before-1970",
                before_1970.to_epoch_string().into_bytes(),
            ),
            ("valid-relative", b"-10m".to_vec()),
            ("malformed-month-13", b"2026-13-22T09:00:00Z".to_vec()),
            ("malformed-exponent", b"1e309".to_vec()),
            ("malformed-sign-only", b"-".to_vec()),
        ]
    }

    fn steim() -> Vec<(&'static str, Vec<u8>)> {
        // The first byte is the sample count the frames are decoded for.
        let samples: Vec<i32> = (0..60).map(|i| (i * i * 91) % 40_001 - 20_000).collect();
        let frames = |kind: Steim| {
            let mut out = Vec::new();
            let e = steim::encode(&samples, None, kind, 2, &mut out).unwrap();
            [vec![u8::try_from(e.samples).unwrap()], out].concat()
        };
        let one = frames(Steim::One);
        let two = frames(Steim::Two);
        let mut too_many = two.clone();
        too_many[0] = 255;
        vec![
            ("valid-steim1", one.clone()),
            ("valid-steim2", two.clone()),
            ("malformed-steim1-truncated", one[..one.len() - 30].to_vec()),
            ("malformed-steim2-count-too-large", too_many),
            ("malformed-steim2-bit-flip", {
                let mut v = two;
                v[70] ^= 0x40;
                v
            }),
        ]
    }
}
