//! DataLink command and reply decoding on arbitrary bytes.
//! The body, and the invariants it asserts, live in `fuzz/bodies/datalink.rs`, which `cargo
//! test` also runs over the committed corpus and mutations of it (`tests/tests/fuzz_corpus.rs`).
#![no_main]

#[path = "../bodies/datalink.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::check(data));
