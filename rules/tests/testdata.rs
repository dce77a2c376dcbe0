//! Data-driven rule-file tests: each `testdata/<case>.toml` is parsed and the outcome
//! (the checked rules as JSON, or the error line) must equal `testdata/<case>.expected`.
//! Cases named `bad_*` must fail, all others must parse. `UPDATE_EXPECT=1` rewrites the
//! expected files (review the diff before committing). Cases named `warn_*` must parse
//! with at least one warning (`orbreaper --check` prints them), all other good cases
//! without any.

use std::path::{Path, PathBuf};

use rules::RuleFile;

/// The expected text, and the number of warnings.
fn outcome(toml: &Path) -> (String, usize) {
    let text = std::fs::read_to_string(toml).expect("read case");
    // Relative origin, so paths in the expected text do not depend on the machine.
    let origin = Path::new("testdata").join(toml.file_name().expect("file name"));
    match RuleFile::parse(&text, &origin) {
        Ok(file) => (
            serde_json::to_string_pretty(&file).expect("json") + "\n",
            file.warnings.len(),
        ),
        Err(e) => (format!("error: {e}\n"), 0),
    }
}

#[test]
fn testdata_cases() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("testdata dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 12, "only {} cases", cases.len());
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let (got, warnings) = outcome(case);
        let name = case.file_stem().unwrap().to_string_lossy().into_owned();
        let bad = name.starts_with("bad_");
        assert_eq!(
            warnings > 0,
            name.starts_with("warn_"),
            "{name}: warn_ cases must warn and others not; got {got}"
        );
        assert_eq!(
            got.starts_with("error: "),
            bad,
            "{name}: bad_ cases must fail and others parse; got {got}"
        );
        if bad {
            assert_eq!(
                got.lines().count(),
                1,
                "{name}: error is not one line: {got}"
            );
        }
        let expected_path = case.with_extension("expected");
        if update {
            std::fs::write(&expected_path, &got).expect("write expected");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
            panic!(
                "{} is missing; run with UPDATE_EXPECT=1",
                expected_path.display()
            )
        });
        if expected != got {
            failures.push(format!("{name}:\n--- expected\n{expected}--- got\n{got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
