//! The ring recovery scanner on arbitrary data areas.
//! The body, and the invariants it asserts, live in `fuzz/bodies/ring_scan.rs`, which `cargo
//! test` also runs over the committed corpus and mutations of it (`tests/tests/fuzz_corpus.rs`).
#![no_main]

#[path = "../bodies/ring_scan.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::check(data));
