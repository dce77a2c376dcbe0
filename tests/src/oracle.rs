//! Reference tools that check our output from outside: Python packages (`pymseed`,
//! `netCDF4`, `xarray`, `pandas`) and command-line tools (`ncdump`, `ncgen`).
//!
//! The interpreter is `$ORB_PYTHON`, else `target/ci-venv/bin/python` in the workspace
//! (`.ci/run` creates that venv and installs the packages into it); tools are looked up
//! on `PATH` (`.ci/run` installs Debian's `netcdf-bin`). When something is missing a
//! test prints a note and passes locally, but panics when `CI` is set (to anything but
//! `false`), so CI cannot silently skip an oracle.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one oracle run may take.
pub const CHILD_LIMIT: Duration = Duration::from_secs(120);

/// Whether a missing oracle must fail the test (under CI) rather than skip it.
fn must_not_skip() -> bool {
    let ci = std::env::var("CI").unwrap_or_default();
    !ci.is_empty() && ci != "false"
}

/// Skips (`None`, after a note on stderr) or, under CI, panics, saying why and how to
/// install what is missing.
fn missing<T>(why: String) -> Option<T> {
    if must_not_skip() {
        panic!("CI is set: {why}");
    }
    eprintln!("note: skipping an oracle check: {why}");
    None
}

/// A Python interpreter that can import every module in `modules`, or `None` (after a
/// note) when the test should skip. Panics under CI instead of skipping.
pub fn python(modules: &[&str]) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (py, from) = match std::env::var_os("ORB_PYTHON").filter(|v| !v.is_empty()) {
        Some(p) => (PathBuf::from(p), "$ORB_PYTHON"),
        None => (root.join("target/ci-venv/bin/python"), "the default"),
    };
    let import = format!("import {}", modules.join(", "));
    let ok = Command::new(&py)
        .args(["-c", &import])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(py);
    }
    let list = modules.join(" ");
    missing(format!(
        "this check needs a Python with `{list}`, but {from} interpreter {} is missing \
         or cannot `{import}`. Install with `python3 -m venv target/ci-venv && \
         target/ci-venv/bin/pip install {list}` (which `bash .ci/run` does), or point \
         ORB_PYTHON at a Python that has them",
        py.display()
    ))
}

/// The command-line tool `name` (e.g. `ncdump`) from `PATH`, or `None` (after a note)
/// when the test should skip. Panics under CI instead of skipping.
pub fn tool(name: &str, debian_package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None => missing(format!(
            "this check needs `{name}` on PATH: install Debian's `{debian_package}` \
             (which `bash .ci/run` does)"
        )),
    }
}

/// Runs `program args...` in `dir`, waits for it (at most [`CHILD_LIMIT`], killing it
/// after) and returns its stdout; panics with its stderr if it fails.
pub fn run<S: AsRef<OsStr>>(program: &Path, args: &[S], dir: &Path) -> String {
    let out = run_status(program, args, dir);
    assert!(
        out.success,
        "{} failed ({}):\n{}",
        program.display(),
        out.status,
        out.stderr
    );
    out.stdout
}

/// What a finished oracle run printed.
#[derive(Debug)]
pub struct RunOutput {
    /// Whether it exited with 0.
    pub success: bool,
    /// The exit status, for messages.
    pub status: String,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

/// Like [`run`], but returns a failed run instead of panicking (for checks that expect
/// a tool to refuse something).
pub fn run_status<S: AsRef<OsStr>>(program: &Path, args: &[S], dir: &Path) -> RunOutput {
    let out_path = tempfile::NamedTempFile::new_in(dir).expect("stdout file");
    let err_path = tempfile::NamedTempFile::new_in(dir).expect("stderr file");
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(File::create(out_path.path()).unwrap())
        .stderr(File::create(err_path.path()).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let deadline = Instant::now() + CHILD_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the oracle") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} did not finish within {CHILD_LIMIT:?}",
                program.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    RunOutput {
        success: status.success(),
        status: status.to_string(),
        stdout: std::fs::read_to_string(out_path.path()).unwrap_or_default(),
        stderr: std::fs::read_to_string(err_path.path()).unwrap_or_default(),
    }
}

/// Runs `py -c script args...` in `dir` (see [`run`]).
pub fn run_python<S: AsRef<OsStr>>(py: &Path, script: &str, args: &[S], dir: &Path) -> String {
    let mut all: Vec<&OsStr> = vec![OsStr::new("-c"), OsStr::new(script)];
    all.extend(args.iter().map(AsRef::as_ref));
    run(py, &all, dir)
}
