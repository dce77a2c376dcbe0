// Body of the `time` fuzz target, shared with `tests/tests/fuzz_corpus.rs` (see
// fuzz/README.md).

use formats::Time;

/// A fixed "now" keeps relative inputs reproducible across runs.
pub const NOW: Time = Time::from_micros(1_795_341_600_000_000);

/// Parses the longest UTF-8 prefix of `data` as a time: `Time::parse` must never panic,
/// and every time it accepts must print as text that reads back to the same
/// microsecond: ISO 8601 where the calendar reaches, epoch seconds always.
pub fn check(data: &[u8]) {
    let text = match std::str::from_utf8(data) {
        Ok(s) => s,
        // The valid prefix, as libFuzzer's `&str` inputs are made.
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default(),
    };
    if let Ok(t) = Time::parse(text, NOW) {
        if let Some(iso) = t.to_iso8601() {
            assert_eq!(iso, t.to_string());
            assert_eq!(Time::parse_iso8601(&iso), Ok(t));
        }
        assert_eq!(Time::parse_epoch(&t.to_epoch_string()), Ok(t));
    }
}
