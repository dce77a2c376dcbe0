//! The arrows between the workspace's crates that must never be (docs/ARCHITECTURE.md):
//! `formats` depends on no other orb crate; `orbserver` and `orbclient` only on
//! `formats`, so the server never links the client library or the rule engine, and the
//! client never links the server. Read from `cargo metadata`, so a new dependency in
//! any Cargo.toml (normal, dev or build) that breaks the layering fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Each workspace package and the workspace packages it depends on, of any kind.
fn workspace_arrows() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let ours: BTreeSet<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["name"].as_str())
                .filter(|name| ours.contains(*name))
                .map(str::to_owned)
                .collect();
            (p["name"].as_str().unwrap_or_default().to_owned(), deps)
        })
        .collect()
}

#[test]
fn crates_depend_only_downwards() {
    let arrows = workspace_arrows();
    let allowed: &[(&str, &[&str])] = &[
        ("orb-formats", &[]),
        ("orbserver", &["orb-formats"]),
        ("orbclient", &["orb-formats"]),
        ("orb-rules", &["orb-formats", "orbclient"]),
    ];
    for (package, may) in allowed {
        let deps = arrows
            .get(*package)
            .unwrap_or_else(|| panic!("no package {package} in the workspace: {arrows:?}"));
        let wrong: Vec<&String> = deps.iter().filter(|d| !may.contains(&d.as_str())).collect();
        assert!(
            wrong.is_empty(),
            "{package} depends on {wrong:?}; it may depend only on {may:?} (docs/ARCHITECTURE.md)"
        );
    }
}
