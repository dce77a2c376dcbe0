//! Reference tools that check our output from outside: Python packages (`pymseed`,
//! `netCDF4`, `xarray`, `pandas`, `obspy`, `compliance_checker`, `websockets`, ...),
//! command-line tools (`ncdump`, `ncgen`, `chromium`) and npm packages run in Node
//! (`seisplotjs` with `ws`, in `tests/js`).
//!
//! The interpreter is `$ORB_PYTHON`, else `target/ci-venv/bin/python` in the workspace
//! (`.ci/run` creates that venv and installs the packages into it); tools are looked up
//! on `PATH` (`.ci/run` installs Debian's `netcdf-bin`). When something is missing a
//! test prints a note and passes locally, but panics when `CI` is set (to anything but
//! `false`), so CI cannot silently skip an oracle.
//!
//! Every oracle check also records whether it ran or skipped, in a file keyed by the
//! `cargo test` process that started the test binaries ([`record`]). The last test
//! binary, `tests/zz_oracle_report.rs`, prints that record, so a run that skipped
//! checks says so at its end instead of showing only `ok`.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::Write;
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
    record(Outcome::Skipped, &why);
    // Straight to stderr, past the test harness's capture, so the skip shows even when
    // the test passes.
    let _ = writeln!(
        std::io::stderr(),
        "note: skipping an oracle check in {}: {why}",
        check_name()
    );
    None
}

/// Whether an oracle check ran or was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The tool was there and the check used it.
    Ran,
    /// The tool was missing and the check passed without checking.
    Skipped,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Ran => "ran",
            Outcome::Skipped => "skipped",
        }
    }
}

/// The check's name: test binary and test, as `cargo test` prints them.
fn check_name() -> String {
    let exe = std::env::current_exe().ok();
    let binary = exe
        .as_deref()
        .and_then(Path::file_stem)
        .and_then(OsStr::to_str)
        .map(|s| {
            s.rsplit_once('-')
                .map_or(s, |(name, _hash)| name)
                .to_owned()
        })
        .unwrap_or_default();
    let thread = std::thread::current();
    match thread.name() {
        Some(test) if test != "main" => format!("{binary}::{test}"),
        _ => binary,
    }
}

/// Where this `cargo test` run's oracle outcomes are recorded: one file per run in
/// `target/<profile>/oracle-checks/`, named by the pid of the process that started the
/// test binaries (cargo), which every test binary of one run shares.
pub fn record_file() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let run = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
    profile_dir.join("oracle-checks").join(format!("{run}.tsv"))
}

/// Appends one outcome line (`ran|skipped TAB check TAB detail`) to [`record_file`].
/// Best effort: a record that cannot be written must not fail the check itself.
pub fn record(outcome: Outcome, detail: &str) {
    let path = record_file();
    let Some(dir) = path.parent() else { return };
    let _ = std::fs::create_dir_all(dir);
    let line = format!(
        "{}\t{}\t{}\n",
        outcome.word(),
        check_name(),
        detail.replace(['\t', '\n'], " ")
    );
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(&path) {
        // One write per line: O_APPEND keeps lines from concurrent tests whole.
        let _ = f.write_all(line.as_bytes());
    }
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
        record(Outcome::Ran, &format!("python with {}", modules.join(" ")));
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
        Some(p) => {
            record(Outcome::Ran, name);
            Some(p)
        }
        None => missing(format!(
            "this check needs `{name}` on PATH: install Debian's `{debian_package}` \
             (which `bash .ci/run` does)"
        )),
    }
}

/// Node and the npm packages of `tests/js` (`.ci/run` installs them with
/// `npm ci --prefix tests/js`): the `node` binary and the `tests/js` directory, or
/// `None` (after a note) when the test should skip. Panics under CI instead of
/// skipping.
pub fn node_packages(packages: &[&str]) -> Option<(PathBuf, PathBuf)> {
    let node = tool("node", "nodejs")?;
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
    let missing_pkgs: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !js.join("node_modules")
                .join(p)
                .join("package.json")
                .is_file()
        })
        .collect();
    if missing_pkgs.is_empty() {
        record(Outcome::Ran, &format!("node with {}", packages.join(" ")));
        return Some((node, js));
    }
    missing(format!(
        "this check needs the npm packages {} in tests/js/node_modules: run \
         `npm ci --prefix tests/js` (which `bash .ci/run` does)",
        missing_pkgs.join(" ")
    ))
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

/// Runs the IOOS compliance-checker's `cf:1.8` suite on each file: per file, the
/// score, the possible score, the counts of high, medium and low findings, and each
/// finding.
const CF_CHECK: &str = r#"
import json, os, sys, tempfile
from compliance_checker.runner import CheckSuite, ComplianceChecker
CheckSuite.load_all_available_checkers()
out = {}
for path in sys.argv[1:]:
    fd, report = tempfile.mkstemp(suffix=".json", dir=".")
    os.close(fd)
    ComplianceChecker.run_checker(path, ["cf:1.8"], 0, "normal",
                                  output_filename=report, output_format="json")
    with open(report) as f:
        r = json.load(f)["cf:1.8"]
    os.remove(report)
    findings = []
    for level in ("high_priorities", "medium_priorities", "low_priorities"):
        for item in r.get(level, []):
            if item["value"][0] < item["value"][1] or item["msgs"]:
                findings.append([level, item["name"], item["msgs"]])
    out[path] = {"scored": r["scored_points"], "possible": r["possible_points"],
                 "high": r["high_count"], "medium": r["medium_count"],
                 "low": r["low_count"], "findings": findings}
print(json.dumps(out))
"#;

/// The IOOS compliance-checker's `cf:1.8` verdict on each of `files` (paths relative
/// to `dir`): `Err` names every file that scored less than full or has any finding
/// (high, medium or low), with the checker's messages. Needs a Python from
/// [`python`] with `compliance_checker`.
pub fn cf_check(py: &Path, dir: &Path, files: &[String]) -> Result<(), String> {
    let out = run_python(py, CF_CHECK, files, dir);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let mut bad = Vec::new();
    for f in files {
        let r = &v[f.as_str()];
        let full = r["scored"] == r["possible"]
            && r["possible"].as_u64().is_some_and(|p| p > 0)
            && r["high"] == 0
            && r["medium"] == 0
            && r["low"] == 0
            && r["findings"].as_array().is_some_and(Vec::is_empty);
        if !full {
            bad.push(format!("{f}: {r}"));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(bad.join("\n"))
    }
}

/// The end-of-run summary of recorded outcomes (the text of [`record_file`]): how many
/// checks ran, and each skipped check with its reason. Several records of one check
/// (it asked for two tools) count once; it counts as skipped if any of them skipped.
pub fn summarize(records: &str) -> String {
    use std::collections::BTreeMap;
    let mut checks: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    for line in records.lines() {
        let mut fields = line.splitn(3, '\t');
        let (Some(outcome), Some(check)) = (fields.next(), fields.next()) else {
            continue;
        };
        let detail = fields.next().unwrap_or("");
        let entry = checks.entry(check).or_insert(None);
        if outcome == Outcome::Skipped.word() && entry.is_none() {
            *entry = Some(detail);
        }
    }
    if checks.is_empty() {
        return "oracle checks: none ran in this test run".to_owned();
    }
    let skipped: Vec<(&str, &str)> = checks
        .iter()
        .filter_map(|(check, why)| why.map(|w| (*check, w)))
        .collect();
    let mut out = format!(
        "oracle checks: {} ran, {} skipped",
        checks.len() - skipped.len(),
        skipped.len()
    );
    if !skipped.is_empty() {
        out.push_str(" (these passed without checking; under CI=true they fail):");
        for (check, why) in skipped {
            out.push_str(&format!("\n  skipped {check}: {why}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_checks_once_and_lists_the_skipped() {
        let records = "ran\tnetcdf_oracle::a\tncdump\n\
                       ran\tnetcdf_oracle::a\tncgen\n\
                       ran\tseed_oracle::b\tpython with pymseed\n\
                       skipped\tseed_oracle::c\tno pymseed\n\
                       ran\tseed_oracle::c\tncdump\n";
        let s = summarize(records);
        assert!(s.starts_with("oracle checks: 2 ran, 1 skipped"), "{s}");
        assert!(s.ends_with("\n  skipped seed_oracle::c: no pymseed"), "{s}");
        assert_eq!(
            summarize("ran\tx::y\tncdump\n"),
            "oracle checks: 1 ran, 0 skipped"
        );
        assert_eq!(summarize(""), "oracle checks: none ran in this test run");
    }
}
