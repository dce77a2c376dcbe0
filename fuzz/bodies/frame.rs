// Body of the `frame` fuzz target, shared with `tests/tests/fuzz_corpus.rs` (see
// fuzz/README.md). Plain comments, not `//!`: the test pulls this file in with `include!`.

use bytes::BytesMut;
use formats::proto::{decode, Decoded, DEFAULT_MAX_FRAME};

/// Reads `data` as a stream of frames: the decoder must never panic, and every frame it
/// accepts must encode back to exactly the bytes it came from and decode again to the
/// same frame.
pub fn check(data: &[u8]) {
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
}
