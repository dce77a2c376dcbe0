//! The `orbserver` binary as a user runs it: help, `--check`, and one-line errors with a
//! non-zero exit for bad flags, bad config files and refused rings. (Also makes
//! `cargo test --workspace` build the binary for the end-to-end tests in `tests/`.)

use std::process::Command;

fn orbserver() -> Command {
    Command::new(env!("CARGO_BIN_EXE_orbserver"))
}

fn one_error_line(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("orbserver: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected: {err}");
    lines[0].to_string()
}

#[test]
fn help_explains_the_flags() {
    let out = orbserver().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--ring",
        "--ring-size",
        "--flush",
        "--config",
        "--check",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn check_creates_and_reports_a_ring() {
    let dir = tempfile::tempdir().unwrap();
    let out = orbserver()
        .args(["--check", "--ring-size", "2MiB", "--ring"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("capacity    2097152 bytes"), "{text}");
    assert!(text.contains("next pktid  1"), "{text}");
    // Asking for another size of an existing ring is refused, and names the fix.
    let out = orbserver()
        .args(["--check", "--ring-size", "4MiB", "--ring"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(one_error_line(&out).contains("--ring-size 2097152"));
}

#[test]
fn bad_flags_and_config_files_fail_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = orbserver()
        .args(["--check", "--ring-size", "100KiB", "--ring"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(one_error_line(&out).contains("not allowed"));
    let cfg = dir.path().join("orb.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:0\"\n[limits]\nmax_clients = \"many\"\n",
    )
    .unwrap();
    let out = orbserver().arg("--config").arg(&cfg).output().unwrap();
    assert!(one_error_line(&out).contains("bad config file"));
    // A missing config file: the OS reason once, not repeated by the error chain.
    let out = orbserver()
        .arg("--config")
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    let line = one_error_line(&out);
    assert!(line.contains("cannot read config file"), "{line}");
    assert_eq!(line.matches("No such file").count(), 1, "{line}");
    let out = orbserver().args(["--flush", "sometimes"]).output().unwrap();
    assert!(!out.status.success());
    // A corrupt ring header is refused; the file is left alone.
    let ring = tempfile::tempdir().unwrap();
    std::fs::write(ring.path().join("orb.ring"), vec![0u8; 8192]).unwrap();
    let out = orbserver()
        .arg("--check")
        .arg("--ring")
        .arg(ring.path())
        .output()
        .unwrap();
    assert!(one_error_line(&out).contains("refusing to open"));
    assert_eq!(
        std::fs::read(ring.path().join("orb.ring")).unwrap(),
        vec![0u8; 8192]
    );
}
