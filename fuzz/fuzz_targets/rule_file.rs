//! RuleFile::parse must never panic on any text, and every error it returns must be
//! one line (orbreaper prints it as its only line of output).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Err(e) = rules::RuleFile::parse(text, Path::new("fuzz/rules.toml")) {
        let msg = e.to_string();
        assert!(!msg.contains('\n'), "{msg}");
    }
});
