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

/// Waits (at most 20 s) for `child` to exit.
fn wait_bounded(child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// `orbserver 2>&1 | tee log` whose `tee` died: stdout and stderr are pipes nobody
/// reads. SIGTERM must still stop the server with status 0 and a cleanly closed ring
/// (a log line to a closed stderr used to panic: status 101, or a hang when the panic
/// hit the signal task).
#[test]
fn sigterm_closes_the_ring_cleanly_when_stdout_and_stderr_are_gone() {
    use std::io::BufRead;
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let mut child = orbserver()
        .args(["--listen", "127.0.0.1:0", "--ring-size", "2MiB", "--ring"])
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("orbserver: listening on"), "{line:?}");
    drop(stdout);
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_bounded(&mut child).expect("orbserver still running 20 s after SIGTERM");
    assert!(status.success(), "orbserver ended with {status}");

    let out = orbserver()
        .args(["--check", "--ring"])
        .arg(dir.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("previous close was clean"), "{report}");
}

/// `orbserver --check | head -1`: the reader leaves early; the tool ends quietly with
/// status 0 (no panic) and the ring is still closed cleanly.
#[test]
fn check_into_a_closed_pipe_ends_quietly_and_closes_the_ring() {
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let created = orbserver()
        .args(["--check", "--ring-size", "2MiB", "--ring"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(created.status.success());
    let mut child = orbserver()
        .args(["--check", "-s", "--ring"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = wait_bounded(&mut child).expect("orbserver --check did not end");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(!err.contains("panicked"), "{err}");

    let again = orbserver()
        .args(["--check", "--ring"])
        .arg(dir.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&again.stdout);
    assert!(report.contains("previous close was clean"), "{report}");
}

/// Logs redirected to a file or pipe are plain text: no ANSI colour codes.
#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = orbserver()
        .args(["--check", "--ring-size", "2MiB", "--ring"])
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("created ring"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "colour codes in a piped log: {err:?}"
    );
}
