//! Detection rate: `cargo bench -p orb-rules --bench detect`.
//!
//! Runs one channel's detector (`rules::detect::ChannelDetector`: 4-corner
//! Butterworth band-pass, STA/LTA, trigger state) over seismic-like 40 sps counts
//! (noise, a microseism and an event every 100 s, so triggers do happen), on one
//! thread, and prints samples/s beside a baseline measured in the same run: the sum
//! of squares of the same samples (the least any energy detector must do). Ratios are
//! the detector's time as a multiple of the baseline's. Samples go in as whole
//! blocks and as 40-sample packets (one second each, as orbsim sends them).

use std::hint::black_box;
use std::time::Instant;

use rules::detect::{
    BandPassConfig, ChannelDetector, DetectorConfig, OnsetConfig, StaLtaConfig, StaLtaKind,
    TriggerEvent,
};

const RATE: f64 = 40.0;
const SAMPLES: usize = 4_000_000;

fn samples() -> Vec<i32> {
    let mut s = 0x1234_5678_9abc_def0u64;
    (0..SAMPLES)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let t = i as f64 / RATE;
            let white = (s >> 11) as f64 / (1u64 << 53) as f64 * 400.0 - 200.0;
            let micro = 3000.0 * (std::f64::consts::TAU * 0.17 * t).sin();
            let dt = t % 100.0 - 50.0;
            let event = if dt >= 0.0 {
                8000.0 * (-dt / 4.0).exp() * (std::f64::consts::TAU * 4.0 * dt).sin()
            } else {
                0.0
            };
            (white + micro + event).round() as i32
        })
        .collect()
}

/// Best of `reps` timings of `f`, as `n` per second.
fn rate(n: usize, reps: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    n as f64 / best
}

fn config(kind: StaLtaKind, filter: bool) -> DetectorConfig {
    DetectorConfig {
        filter: filter.then_some(BandPassConfig {
            freqmin: 1.0,
            freqmax: 10.0,
            corners: 4,
            sample_rate: RATE,
        }),
        stalta: StaLtaConfig::from_seconds(kind, 1.0, 30.0, RATE).unwrap(),
        onset: OnsetConfig::obspy(4.0, 1.5),
    }
}

fn main() {
    let data = samples();
    let n = data.len();
    let reps = 7;

    let baseline = rate(n, reps, || {
        let mut sum = 0.0f64;
        for x in black_box(&data) {
            let v = f64::from(*x);
            sum += v * v;
        }
        black_box(sum);
    });
    println!("{n} samples of one 40 sps channel, one thread");
    println!(
        "baseline: sum of squares               {:>8.1} M samples/s",
        baseline / 1e6
    );
    let mut triggers = 0;
    for (what, kind, filter) in [
        ("recursive STA/LTA + band-pass", StaLtaKind::Recursive, true),
        ("recursive STA/LTA, no filter", StaLtaKind::Recursive, false),
        ("classic STA/LTA + band-pass", StaLtaKind::Classic, true),
    ] {
        for (chunk, how) in [(n, "blocks"), (40, "40-sample packets")] {
            let r = rate(n, reps, || {
                let mut d = ChannelDetector::new(config(kind, filter)).unwrap();
                let mut events: Vec<TriggerEvent> = Vec::new();
                for c in black_box(&data).chunks(chunk) {
                    d.push_i32(c, &mut events);
                }
                triggers = events.len() / 2;
                black_box(events);
            });
            println!(
                "{:<38} {:>8.1} M samples/s  {:>5.2}x the baseline's time  ({triggers} triggers, {how})",
                what,
                r / 1e6,
                baseline / r
            );
        }
    }
}
