//! The live view at `/` (docs/HTTP.md, "The live view") in a real browser: a real
//! `orbserver --http` fed by orbsim (28 seismic and 2 pressure stations; 40 sps
//! seismic), the page loaded in Debian's headless `chromium` and driven through the
//! Chrome DevTools Protocol by `tests/browser/live_view.py` (Python with the
//! `websockets` package). The page's own state must show every station fed, packets
//! received, trace samples drawn, a helicorder with data, and ink on the traces
//! canvas. A screenshot is saved to `target/test-artifacts/live-view.png`; the frame
//! rate the page measured is printed, never asserted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use orb_tests::harness::{bin, run_tool, start_with, Killed};
use orb_tests::oracle;

const SEISMIC: usize = 28;
const PRESSURE: usize = 2;

/// `target/test-artifacts`, beside the profile directories.
fn artifacts() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let target = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("target directory");
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir
}

#[test]
fn live_view_shows_every_station_and_draws_traces() {
    let Some(chromium) = oracle::tool("chromium", "chromium") else {
        return;
    };
    let Some(py) = oracle::python(&["websockets"]) else {
        return;
    };
    let (dir, srv) = start_with(&[
        "--ring-size",
        "32MiB",
        "--flush",
        "none",
        "--http",
        "127.0.0.1:0",
    ]);
    let http = srv.http.expect("the server printed its http address");
    let (seismic, pressure) = (SEISMIC.to_string(), PRESSURE.to_string());
    let network = ["--seismic", &seismic, "--pressure", &pressure];
    // Ten minutes of history (for the helicorder and the first traces) ...
    let mut args = vec![srv.orb()];
    args.extend(network.iter().map(|s| s.to_string()));
    args.extend(
        [
            "--fast",
            "--start",
            "-10m",
            "--duration",
            "10m",
            "--progress",
            "0",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (st, _, err) = run_tool(&args, "orbsim", b"");
    assert!(st.success(), "orbsim: {err}");
    // ... then live data, in real time, for as long as the page is watched.
    let _live = Killed(
        Command::new(bin("orbsim"))
            .arg(srv.orb())
            .args(network)
            .args(["--progress", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn orbsim"),
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/live_view.py");
    let shot = artifacts().join("live-view.png");
    let url = format!("http://{http}/");
    let out = oracle::run(
        &py,
        &[
            script.as_os_str(),
            chromium.as_os_str(),
            url.as_ref(),
            shot.as_os_str(),
            (SEISMIC + PRESSURE).to_string().as_ref(),
        ],
        dir.path(),
    );
    let state: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));

    let mut want: Vec<String> = (1..=PRESSURE).map(|i| format!("XX_PRS{i:02}")).collect();
    want.extend((1..=SEISMIC).map(|i| format!("XX_STA{i:02}")));
    let rows: Vec<&str> = state["stations"]
        .as_array()
        .expect("station rows")
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(rows, want, "one row per station fed, in order: {state}");
    for h in state["health"].as_array().unwrap() {
        assert!(
            ["ok", "late", "dead"].contains(&h.as_str().unwrap()),
            "{state}"
        );
    }
    assert!(state["packets"].as_u64().unwrap() > 0, "{state}");
    assert!(
        state["drawn"].as_u64().unwrap() > 0,
        "no trace samples: {state}"
    );
    assert!(
        state["ink_pixels"].as_u64().unwrap() > 1000,
        "the traces canvas is blank: {state}"
    );
    assert!(
        state["heli_bins"].as_u64().unwrap() > 0,
        "empty helicorder: {state}"
    );
    // Units as the packets' segtypes say: nm/s for seismic, hPa and Pa for pressure.
    let rms: Vec<&str> = state["rms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        rms[0].starts_with("LDO ") && rms[0].contains(" hPa") && rms[0].contains("BDF "),
        "{rms:?}"
    );
    assert!(rms[0].ends_with(" Pa"), "{rms:?}");
    assert!(
        rms[PRESSURE].starts_with("Z ") && rms[PRESSURE].ends_with(" nm/s"),
        "{rms:?}"
    );
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    // Measured, not asserted: the machine's load decides it.
    println!(
        "live view: {} stations, {} packets, ready after {} s; trace drawing at {} fps \
         with 4 stations shown (samples {}, {} ms of script a frame), {} fps with all shown \
         ({} samples, {} ms of script a frame); \
         screenshot {}",
        rows.len(),
        state["packets"],
        state["ready_after_s"],
        state["fps"],
        state["fps_samples"],
        state["draw_ms"],
        state["fps_all_samples"],
        state["drawn_all"],
        state["draw_ms_all"],
        shot.display()
    );
}
