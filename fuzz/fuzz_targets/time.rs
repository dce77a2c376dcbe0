//! Time::parse on arbitrary text.
//! The body, and the invariants it asserts, live in `fuzz/bodies/time.rs`, which `cargo
//! test` also runs over the committed corpus and mutations of it (`tests/tests/fuzz_corpus.rs`).
#![no_main]

#[path = "../bodies/time.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::check(data));
