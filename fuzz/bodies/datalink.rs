// Body of the `datalink` fuzz target, shared with `tests/tests/fuzz_corpus.rs` (see
// fuzz/README.md). Plain comments, not `//!`: the test pulls this file in with `include!`.

use formats::datalink::{decode_command, decode_reply, Decoded, EncodeError};

/// Largest payload the target lets a packet declare.
const MAX_PAYLOAD: usize = 1 << 20;

/// Reads `data` as a client's stream of DataLink commands, as the server does: the
/// decoder must never panic, must skip only within the buffer, and every command it
/// accepts must encode to bytes that decode to the same command. The same bytes read
/// as server replies must not panic either.
pub fn check(data: &[u8]) {
    let mut rest = data;
    loop {
        match decode_command(rest, MAX_PAYLOAD) {
            Ok(Decoded::Done(cmd, n)) => {
                assert!(n > 0 && n <= rest.len());
                let mut out = Vec::new();
                match cmd.encode(&mut out) {
                    Ok(()) => assert_eq!(
                        decode_command(&out, MAX_PAYLOAD),
                        Ok(Decoded::Done(cmd, out.len()))
                    ),
                    // A bare MATCH re-encodes with its size, which may not fit.
                    Err(EncodeError::HeaderTooLong { .. }) => {}
                    Err(e) => panic!("decoded {cmd:?} does not encode: {e}"),
                }
                rest = &rest[n..];
            }
            Ok(Decoded::NeedMore) => break,
            Err(e) => match e.skip() {
                Some(n) => {
                    assert!(n > 0 && n <= rest.len(), "{e}: skip {n} of {}", rest.len());
                    rest = &rest[n..];
                }
                None => break,
            },
        }
    }
    let mut rest = data;
    while let Ok(Decoded::Done(_, n)) = decode_reply(rest, MAX_PAYLOAD) {
        rest = &rest[n..];
    }
}
