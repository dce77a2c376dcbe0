//! The operator tools as a user runs them: help, and one clear error line with a
//! non-zero exit for bad flags and for an orb that is not there.
//!
//! Being an integration test of this package, this file also makes `cargo test
//! --workspace` build every binary of `orbclient` before any test runs (Cargo builds a
//! package's binaries for its integration tests), which the end-to-end tests in
//! `tests/` rely on: a fresh clone must pass `cargo test --workspace` with nothing
//! built before it.

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

/// Every tool of this package with its binary, as Cargo built it for these tests.
const TOOLS: [(&str, &str); 5] = [
    ("orbstat", env!("CARGO_BIN_EXE_orbstat")),
    ("orbtail", env!("CARGO_BIN_EXE_orbtail")),
    ("orbput", env!("CARGO_BIN_EXE_orbput")),
    ("orbsim", env!("CARGO_BIN_EXE_orbsim")),
    ("orb2orb", env!("CARGO_BIN_EXE_orb2orb")),
];

/// A loopback address where nothing listens: a port the kernel gave us and we closed.
fn nobody_listening() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr.to_string()
}

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn every_tool_explains_itself() {
    for (name, bin) in TOOLS {
        let out = run(bin, &["--help"]);
        assert!(out.status.success(), "{name} --help failed");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Usage:"), "{name} --help: {help}");
        assert!(
            help.contains("orb"),
            "{name} --help does not say what orb it talks to"
        );
        assert!(
            help.lines().next().is_some_and(|l| l.len() > 10),
            "{name}: no summary"
        );
    }
}

#[test]
fn an_orb_that_is_not_there_is_one_error_line_and_exit_1() {
    let orb = nobody_listening();
    for (name, args) in [
        ("orbstat", vec![orb.as_str()]),
        ("orbtail", vec![orb.as_str(), "-n", "1"]),
        ("orbput", vec![orb.as_str(), "--srcname", "XX_STA/EXP", "-"]),
        ("orbsim", vec![orb.as_str(), "--count", "1"]),
    ] {
        let bin = TOOLS.iter().find(|t| t.0 == name).unwrap().1;
        let out = run(bin, &args);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: {err}");
        assert!(
            lines[0].starts_with(&format!("{name}: error: cannot connect to orb {orb}")),
            "{name}: {err}"
        );
    }
}

/// The error line goes to a stderr nobody reads (`tool 2>&1 | tee log` after `tee`
/// died): the tool still ends with 1, not with a panic's 101.
#[test]
fn a_closed_stderr_does_not_turn_an_error_into_a_panic() {
    let orb = nobody_listening();
    let mut child = Command::new(env!("CARGO_BIN_EXE_orbstat"))
        .arg(&orb)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
}

#[test]
fn bad_flags_are_usage_errors() {
    for (name, args) in [
        ("orbput", vec![":6510", "--srcname", "bad name"]),
        ("orbtail", vec![":6510", "--start", "yesterday-ish"]),
        ("orbsim", vec![":6510", "--seismic", "many"]),
        ("orbstat", vec![]),
    ] {
        let bin = TOOLS.iter().find(|t| t.0 == name).unwrap().1;
        let out = run(bin, &args);
        assert_eq!(out.status.code(), Some(2), "{name} {args:?}");
        assert!(!out.stderr.is_empty(), "{name}: no message");
    }
}
