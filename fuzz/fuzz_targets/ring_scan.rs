//! The ring recovery scanner on arbitrary data areas: it must never panic, and what it
//! calls live must be in strictly increasing pktid and position order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orbserver::ring::recover::scan;

fuzz_target!(|data: &[u8]| {
    let s = scan(data);
    for w in s.live.windows(2) {
        assert!(w[0].pktid < w[1].pktid && w[0].lpos < w[1].lpos);
    }
});
