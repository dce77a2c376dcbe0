use super::*;
use proptest::prelude::*;

/// 2026-11-22T10:00:00Z.
const T0: i64 = 1_795_341_600 * MICROS_PER_SEC;
/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z.
const YEAR_0: i64 = -62_167_219_200 * MICROS_PER_SEC;
const YEAR_9999_END: i64 = 253_402_300_800 * MICROS_PER_SEC - 1;

fn iso(s: &str) -> i64 {
    Time::parse_iso8601(s)
        .unwrap_or_else(|e| panic!("{e}"))
        .as_micros()
}

fn epoch(s: &str) -> i64 {
    Time::parse_epoch(s)
        .unwrap_or_else(|e| panic!("{e}"))
        .as_micros()
}

#[test]
fn iso8601_forms() {
    assert_eq!(iso("2026-11-22T10:00:00.25Z"), T0 + 250_000);
    assert_eq!(iso("2026-11-22T10:00:00Z"), T0);
    assert_eq!(iso("2026-11-22T10:00:00.123456Z"), T0 + 123_456);
    assert_eq!(
        iso("2026-11-22T10:00:00+02:00"),
        T0 - 2 * 3600 * MICROS_PER_SEC
    );
    assert_eq!(iso("2026-11-22T10:00:00-0130"), T0 + 5400 * MICROS_PER_SEC);
    assert_eq!(iso("2026-11-22T10:00:00+02"), T0 - 7200 * MICROS_PER_SEC);
    assert_eq!(iso("2026-11-22 10:00:00.25Z"), T0 + 250_000);
    assert_eq!(iso("2026-11-22t10:00:00,5z"), T0 + 500_000);
    assert_eq!(iso("2026-11-22T10:00:00"), T0);
    assert_eq!(iso("2026-11-22T10:00"), T0);
    assert_eq!(iso("2026-11-22"), T0 - 10 * 3600 * MICROS_PER_SEC);
    assert_eq!(iso("1970-01-01"), 0);
    assert_eq!(iso("1969-12-31T23:59:59.5Z"), -500_000);
    assert_eq!(iso("0000-01-01"), YEAR_0);
    assert_eq!(iso("-0001-12-31T23:59:59Z"), YEAR_0 - MICROS_PER_SEC);
    assert_eq!(iso("+10000-01-01T00:00:00Z"), YEAR_9999_END + 1);
}

#[test]
fn iso8601_rejects() {
    for bad in [
        "",
        "2026-11-22T10:00:00.1234567Z",
        "2026-11-22T10:00:00.Z",
        "2026-13-01",
        "2026-02-30",
        "2026-11-22T24:00:00Z",
        "2026-11-22T23:59:60Z",
        "2026-11-22T10:00:00+24:00",
        "2026-11-22T10:00:00ZZ",
        "2026-11-22T10:00:00 UTC",
        "2026-11-22X10:00:00",
        "26-11-22",
        "2026-1-22",
        "+1234567-01-01",
        "yesterday",
        "2026-11-22T10:00:00\u{e9}",
    ] {
        let err = Time::parse_iso8601(bad).unwrap_err();
        assert!(matches!(err, TimeError::Iso8601 { .. }), "{bad:?}");
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
    let err = Time::parse_iso8601("2026-11-22T10:00:00.1234567Z").unwrap_err();
    assert_eq!(
        err.to_string(),
        "bad ISO 8601 time \"2026-11-22T10:00:00.1234567Z\": 7 fractional digits, \
         orb times keep at most 6 (microseconds); write e.g. 2026-11-22T10:00:00.25Z"
    );
}

#[test]
fn epoch_forms() {
    assert_eq!(epoch("1795341600.25"), T0 + 250_000);
    assert_eq!(epoch("1795341600"), T0);
    assert_eq!(epoch("+1795341600.000001"), T0 + 1);
    assert_eq!(epoch("-5.5"), -5_500_000);
    assert_eq!(epoch("-0.5"), -500_000);
    assert_eq!(epoch("-0"), 0);
    assert_eq!(epoch("0000000000000000000000000001"), MICROS_PER_SEC);
    assert_eq!(epoch("-9223372036854.775808"), i64::MIN);
    assert_eq!(epoch("9223372036854.775807"), i64::MAX);
}

#[test]
fn epoch_rejects() {
    for bad in [
        "",
        "-",
        ".5",
        "5.",
        "1.2.3",
        "1.1234567",
        "1e9",
        " 1",
        "1 ",
        "--1",
        "9223372036854.775808",
        "99999999999999999999999999",
    ] {
        let err = Time::parse_epoch(bad).unwrap_err();
        assert!(matches!(err, TimeError::Epoch { .. }), "{bad:?}");
    }
    assert_eq!(
        Time::parse_epoch("1.1234567").unwrap_err().to_string(),
        "bad epoch time \"1.1234567\": 7 fractional digits, orb times keep at most 6 \
         (microseconds); write seconds since 1970 like 1763805600.25"
    );
}

#[test]
fn relative_forms() {
    let now = Time::from_micros(T0);
    let rel = |s: &str| {
        Time::parse_relative(s, now)
            .unwrap_or_else(|e| panic!("{e}"))
            .as_micros()
            - T0
    };
    let sec = MICROS_PER_SEC;
    assert_eq!(rel("-10m"), -600 * sec);
    assert_eq!(rel("-1h"), -3600 * sec);
    assert_eq!(rel("-30s"), -30 * sec);
    assert_eq!(rel("-2d"), -2 * 86400 * sec);
    assert_eq!(rel("+5m"), 300 * sec);
    assert_eq!(rel("-1h30m"), -5400 * sec);
    assert_eq!(rel("-500ms"), -500_000);
    for bad in [
        "10m",
        "-",
        "-10",
        "-10x",
        "-1ns",
        "+",
        "-99999999999999999h",
    ] {
        let got = Time::parse_relative(bad, now);
        assert!(matches!(got, Err(TimeError::Relative { .. })), "{bad:?}");
    }
    assert!(Time::parse_relative("-1s", Time::MIN).is_err());
}

#[test]
fn parse_dispatches_on_shape() {
    let now = Time::from_micros(T0);
    let p = |s: &str| {
        Time::parse(s, now)
            .unwrap_or_else(|e| panic!("{e}"))
            .as_micros()
    };
    assert_eq!(p("-10m"), T0 - 600 * MICROS_PER_SEC);
    assert_eq!(p("+1h 30m"), T0 + 5400 * MICROS_PER_SEC);
    assert_eq!(p("1795341600.25"), T0 + 250_000);
    assert_eq!(p("-5.5"), -5_500_000);
    assert_eq!(p("2026-11-22T10:00:00.25Z"), T0 + 250_000);
    assert_eq!(p("2026-11-22"), T0 - 36_000 * MICROS_PER_SEC);
    // A signed year ends in a letter too, but its '-' and ':' keep it out of the relative form.
    assert_eq!(p("-0001-12-31T23:59:59Z"), YEAR_0 - MICROS_PER_SEC);
    assert!(Time::from_str("2026-11-22T10:00:00Z").is_ok());
}

#[test]
fn parse_error_lists_forms() {
    let err = Time::parse("yesterday", Time::UNIX_EPOCH).unwrap_err();
    assert!(matches!(err, TimeError::Unrecognized { .. }));
    assert_eq!(
        err.to_string(),
        "cannot read time \"yesterday\": expected a 4-digit year (or a signed year of up to \
         6 digits) at offset 0; write ISO 8601 (2026-11-22T10:00:00.25Z), epoch seconds \
         (1763805600.25) or a time relative to now (-10m)"
    );
    let err = Time::parse("1.1234567", Time::UNIX_EPOCH).unwrap_err();
    assert!(err.to_string().contains("7 fractional digits"), "{err}");
    let err = Time::parse("-10parsecs", Time::UNIX_EPOCH).unwrap_err();
    assert!(err.to_string().contains("parsecs"), "{err}");
}

#[test]
fn display_trims_fraction() {
    let show = |m: i64| Time::from_micros(m).to_string();
    assert_eq!(show(T0 + 250_000), "2026-11-22T10:00:00.25Z");
    assert_eq!(show(T0), "2026-11-22T10:00:00Z");
    assert_eq!(show(T0 + 1), "2026-11-22T10:00:00.000001Z");
    assert_eq!(show(-500_000), "1969-12-31T23:59:59.5Z");
    assert_eq!(show(YEAR_0), "0000-01-01T00:00:00Z");
    assert_eq!(show(YEAR_0 - 1), "-0001-12-31T23:59:59.999999Z");
    assert_eq!(show(YEAR_9999_END + 1), "+10000-01-01T00:00:00Z");
}

#[test]
fn display_falls_back_to_epoch_outside_calendar() {
    assert_eq!(Time::MAX.to_iso8601(), None);
    assert_eq!(Time::MAX.to_string(), "9223372036854.775807");
    assert_eq!(Time::MIN.to_string(), "-9223372036854.775808");
}

#[test]
fn epoch_string_is_exact() {
    let show = |m: i64| Time::from_micros(m).to_epoch_string();
    assert_eq!(show(T0 + 250_000), "1795341600.25");
    assert_eq!(show(T0), "1795341600");
    assert_eq!(show(-500_000), "-0.5");
    assert_eq!(show(-5_500_000), "-5.5");
    assert_eq!(show(-1), "-0.000001");
    assert_eq!(show(0), "0");
}

#[test]
fn constructors_and_arithmetic() {
    assert_eq!(Time::from_secs(1_795_341_600), Some(Time::from_micros(T0)));
    assert_eq!(Time::from_secs(i64::MAX), None);
    assert_eq!(Time::MAX.checked_add_micros(1), None);
    assert_eq!(Time::MIN.checked_sub_micros(1), None);
    assert_eq!(
        Time::UNIX_EPOCH.checked_add_micros(-1),
        Some(Time::from_micros(-1))
    );
    // Sanity bound rather than an exact value: the clock is real.
    assert!(Time::now() > Time::from_secs(1_700_000_000).unwrap());
}

#[test]
fn durations() {
    use std::time::Duration;
    assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    let err = parse_duration("soon").unwrap_err();
    assert!(matches!(err, TimeError::Duration { .. }));
    assert!(
        err.to_string().starts_with("bad duration \"soon\": "),
        "{err}"
    );
}

proptest! {
    #[test]
    fn iso_round_trip_years_0_to_9999(m in YEAR_0..=YEAR_9999_END) {
        let t = Time::from_micros(m);
        prop_assert_eq!(Time::parse_iso8601(&t.to_string()), Ok(t));
    }

    #[test]
    fn iso_round_trip_whole_calendar(m in any::<i64>()) {
        let t = Time::from_micros(m);
        if let Some(text) = t.to_iso8601() {
            prop_assert_eq!(Time::parse_iso8601(&text), Ok(t));
            prop_assert_eq!(Time::parse(&text, Time::UNIX_EPOCH), Ok(t));
        }
    }

    #[test]
    fn epoch_round_trip(m in any::<i64>()) {
        let t = Time::from_micros(m);
        prop_assert_eq!(Time::parse_epoch(&t.to_epoch_string()), Ok(t));
        prop_assert_eq!(Time::parse(&t.to_epoch_string(), Time::UNIX_EPOCH), Ok(t));
    }

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,40}") {
        let _ = Time::parse(&s, Time::from_micros(T0));
        let _ = Time::parse_iso8601(&s);
        let _ = Time::parse_epoch(&s);
        let _ = Time::parse_relative(&s, Time::MAX);
        let _ = parse_duration(&s);
    }

    #[test]
    fn time_shaped_strings_never_panic(s in "[-+]?[0-9]{1,7}[-.:T Zz+0-9]{0,30}") {
        if let Ok(t) = Time::parse(&s, Time::MIN) {
            if let Some(text) = t.to_iso8601() {
                prop_assert_eq!(Time::parse_iso8601(&text), Ok(t));
            }
        }
    }
}

#[test]
fn serde_uses_iso8601_text() {
    let t = Time::parse_iso8601("2026-11-22T10:00:00.25Z").unwrap();
    let json = serde_json::to_string(&t).unwrap();
    assert_eq!(json, "\"2026-11-22T10:00:00.25Z\"");
    assert_eq!(serde_json::from_str::<Time>(&json).unwrap(), t);
    assert!(serde_json::from_str::<Time>("\"-10m\"").is_err());
}
