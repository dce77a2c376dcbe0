//! SrcName::new must never panic, and every name it accepts must survive
//! parts() -> join() byte for byte, since readers re-select on the joined text.
#![no_main]

use formats::SrcName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|name: &str| {
    if let Ok(sn) = SrcName::new(name) {
        assert_eq!(sn.as_str(), name);
        assert_eq!(sn.parts().join(), name);
    }
});
