//! Prints which oracle checks ran and which were skipped, and why, at the end of
//! `cargo test --workspace`. A skipped check passes with `ok`, so without this summary
//! a run on a machine missing netCDF4 or ncdump would look as thorough as CI's.
//!
//! Cargo runs packages in name order (this one, `tests`, is the last) and a package's
//! integration tests in name order after its unit tests: the `zz_` prefix makes this
//! binary the last test binary of the run. Only the libraries' doc-test runs follow. It is a plain `main` (`harness = false` in Cargo.toml) so its output
//! is not captured.

use std::time::{Duration, SystemTime};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let path = orb_tests::oracle::record_file();
    let records = std::fs::read_to_string(&path).unwrap_or_default();
    println!("\n{}\n", orb_tests::oracle::summarize(&records));
    let _ = std::fs::remove_file(&path);
    // Records of runs that never reached this binary (interrupted, or filtered to
    // other tests) are dropped after a day.
    let day_ago = SystemTime::now() - Duration::from_secs(24 * 3600);
    if let Some(Ok(entries)) = path.parent().map(std::fs::read_dir) {
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < day_ago);
            if old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
