// Body of the `seedlink` fuzz target, shared with `tests/tests/fuzz_corpus.rs` (see
// fuzz/README.md). Plain comments, not `//!`: the test pulls this file in with `include!`.

use formats::seedlink::frame::{info_frames, info_kind, info_text, InfoKind};
use formats::seedlink::{parse, selected, split_line, Command, MAX_LINE, MAX_SEQ};

/// Reads `data` as what a SeedLink client sends: line splitting and command parsing
/// must never panic; a line is never longer than MAX_LINE and always consumes input;
/// parsed commands keep their invariants (24-bit sequence numbers, three-character
/// channel patterns, TIME windows that do not end before they begin); selectors match
/// without panicking; and each printable line survives INFO framing unchanged.
pub fn check(data: &[u8]) {
    let mut rest = data;
    while let Ok(Some((line, used))) = split_line(rest) {
        assert!(used > line.len() && used <= rest.len());
        assert!(line.len() <= MAX_LINE);
        match parse(line) {
            Ok(Some(Command::Data(Some(r)) | Command::Fetch(Some(r)))) => {
                assert!(r.seq <= MAX_SEQ)
            }
            Ok(Some(Command::Time { begin, end })) => assert!(end.is_none_or(|e| e >= begin)),
            Ok(Some(Command::Select(Some(s)))) => {
                assert_eq!(s.chan.len(), 3);
                let list = [s];
                let _ = selected(&list, "00", "BHZ", b'D');
                let _ = selected(&list, "", "", b'D');
            }
            _ => {}
        }
        if let Ok(text) = std::str::from_utf8(line) {
            for kind in [InfoKind::Info, InfoKind::Error] {
                let mut frames = Vec::new();
                info_frames(&mut frames, text, kind);
                assert_eq!(info_kind(&frames), Some(kind));
                if text.is_ascii() {
                    assert_eq!(info_text(&frames).as_deref(), Some(text));
                }
            }
        }
        rest = &rest[used..];
    }
}
