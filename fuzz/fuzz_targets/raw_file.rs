//! The raw packet file reader on arbitrary bytes (behind a valid header, and as they
//! come): it must never panic; the slice reader and the streaming reader must agree on
//! the packets, on where the intact part ends and on whether the rest is corrupt; and
//! the intact part, written again by `RawWriter`, must be the same bytes.
#![no_main]

use formats::write::raw::{header, RawReader, RawStream, RawWriter};
use formats::write::PacketWriter;
use libfuzzer_sys::fuzz_target;

fn check(bytes: &[u8]) {
    let mut r = RawReader::new(bytes);
    let mut packets = Vec::new();
    let mut corrupt = false;
    for item in r.by_ref() {
        match item {
            Ok(p) => packets.push(p),
            Err(_) => corrupt = true,
        }
    }
    let valid = r.valid_len();
    assert!(valid <= bytes.len());

    let mut s = RawStream::new(bytes);
    let mut streamed = Vec::new();
    let stream_corrupt = loop {
        match s.next_packet() {
            Ok(Some(p)) => streamed.push(p),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert_eq!(streamed, packets);
    assert_eq!(stream_corrupt, corrupt);
    assert_eq!(s.valid_len(), valid as u64);

    if valid > 0 {
        let mut w = RawWriter::new(Vec::new());
        for p in &packets {
            w.append(p, &[]).unwrap();
        }
        w.finish().unwrap();
        assert_eq!(w.into_inner(), &bytes[..valid]);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut with_header = header().to_vec();
    with_header.extend_from_slice(data);
    check(&with_header);
});
