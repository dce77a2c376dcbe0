//! The frame decoder on arbitrary bytes, read as a stream of frames: it must never
//! panic, and every frame it accepts must encode back to exactly the bytes it came
//! from and decode again to the same frame.
#![no_main]

use bytes::BytesMut;
use formats::proto::{decode, Decoded, DEFAULT_MAX_FRAME};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Decoded::Frame(frame, n)) = decode(rest, DEFAULT_MAX_FRAME) {
        let mut out = BytesMut::new();
        frame.encode(&mut out);
        assert_eq!(&out[..], &rest[..n]);
        assert_eq!(
            decode(&out, DEFAULT_MAX_FRAME),
            Ok(Decoded::Frame(frame, n))
        );
        rest = &rest[n..];
    }
});
