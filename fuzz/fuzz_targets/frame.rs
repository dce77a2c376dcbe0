//! The frame decoder on arbitrary bytes read as a stream of frames.
//! The body, and the invariants it asserts, live in `fuzz/bodies/frame.rs`, which `cargo
//! test` also runs over the committed corpus and mutations of it (`tests/tests/fuzz_corpus.rs`).
#![no_main]

#[path = "../bodies/frame.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::check(data));
