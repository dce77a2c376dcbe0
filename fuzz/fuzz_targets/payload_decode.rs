//! The payload registry on arbitrary bytes under every known suffix.
//! The body, and the invariants it asserts, live in `fuzz/bodies/payload_decode.rs`, which `cargo
//! test` also runs over the committed corpus and mutations of it (`tests/tests/fuzz_corpus.rs`).
#![no_main]

#[path = "../bodies/payload_decode.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::check(data));
