// Body of the `srcname` fuzz target, shared with `tests/tests/fuzz_corpus.rs` (see
// fuzz/README.md).

use formats::SrcName;

/// Parses the longest UTF-8 prefix of `data` as a srcname: `SrcName::new` must never
/// panic, and every name it accepts must survive `parts()` -> `join()` byte for byte,
/// since readers re-select on the joined text.
pub fn check(data: &[u8]) {
    let name = match std::str::from_utf8(data) {
        Ok(s) => s,
        // The valid prefix, as libFuzzer's `&str` inputs are made.
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default(),
    };
    if let Ok(sn) = SrcName::new(name) {
        assert_eq!(sn.as_str(), name);
        assert_eq!(sn.parts().join(), name);
    }
}
