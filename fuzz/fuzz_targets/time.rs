//! Time::parse must never panic, and every time it accepts must print as text
//! that reads back to the same microsecond: ISO 8601 where the calendar
//! reaches, epoch seconds always.
#![no_main]

use formats::Time;
use libfuzzer_sys::fuzz_target;

// A fixed "now" keeps relative inputs reproducible across runs.
const NOW: Time = Time::from_micros(1_795_341_600_000_000);

fuzz_target!(|text: &str| {
    if let Ok(t) = Time::parse(text, NOW) {
        if let Some(iso) = t.to_iso8601() {
            assert_eq!(iso, t.to_string());
            assert_eq!(Time::parse_iso8601(&iso), Ok(t));
        }
        assert_eq!(Time::parse_epoch(&t.to_epoch_string()), Ok(t));
    }
});
