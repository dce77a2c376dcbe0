// Body of the `ring_scan` fuzz target, shared with `tests/tests/fuzz_corpus.rs` (see
// fuzz/README.md).

use orbserver::ring::recover::scan;

/// Scans `data` as a ring's data area: the recovery scanner must never panic, and what
/// it calls live must be in strictly increasing pktid and position order.
pub fn check(data: &[u8]) {
    let s = scan(data);
    for w in s.live.windows(2) {
        assert!(w[0].pktid < w[1].pktid && w[0].lpos < w[1].lpos);
    }
}
