// Body of the `rule_file` fuzz target, shared with `tests/tests/fuzz_corpus.rs` (see
// fuzz/README.md). Plain comments, not `//!`: the test pulls this file in with `include!`.

use std::path::Path;

/// Parses the longest UTF-8 prefix of `data` as a rule file: `RuleFile::parse` must never
/// panic, and every error must be one line, since orbreaper prints it as its only line.
pub fn check(data: &[u8]) {
    let text = match std::str::from_utf8(data) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default(),
    };
    if let Err(e) = rules::RuleFile::parse(text, Path::new("fuzz/rules.toml")) {
        let msg = e.to_string();
        assert!(!msg.contains('\n'), "{msg}");
    }
}
