// Body of the `steim` fuzz target, shared with `tests/tests/fuzz_corpus.rs` (see
// fuzz/README.md).

use formats::payload::steim::{self, Steim};

/// Decodes the rest of `data` as Steim1 and Steim2 frames holding as many samples as
/// its first byte says, which must never panic; and encodes `data` read as big-endian
/// samples with both, which must round-trip (Steim2 may refuse differences over 30
/// bits).
pub fn check(data: &[u8]) {
    let Some((&n, frames)) = data.split_first() else {
        return;
    };
    let mut out = Vec::new();
    let _ = steim::decode(frames, usize::from(n), Steim::One, &mut out);
    out.clear();
    let _ = steim::decode(frames, usize::from(n), Steim::Two, &mut out);

    let samples: Vec<i32> = data
        .chunks_exact(4)
        .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    for kind in [Steim::One, Steim::Two] {
        let mut enc = Vec::new();
        if let Ok(e) = steim::encode(&samples, None, kind, 7, &mut enc) {
            let mut dec = Vec::new();
            steim::decode(&enc, e.samples, kind, &mut dec).unwrap();
            assert_eq!(dec, samples[..e.samples]);
        }
    }
}
