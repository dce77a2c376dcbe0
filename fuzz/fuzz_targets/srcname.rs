//! SrcName::new on arbitrary text.
//! The body, and the invariants it asserts, live in `fuzz/bodies/srcname.rs`, which `cargo
//! test` also runs over the committed corpus and mutations of it (`tests/tests/fuzz_corpus.rs`).
#![no_main]

#[path = "../bodies/srcname.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::check(data));
