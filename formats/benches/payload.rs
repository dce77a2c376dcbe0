//! Payload codec rates: `cargo bench -p orb-formats --bench payload`.
//!
//! Prints encode and decode rates in samples/s for gencompress and Steim2 next to a
//! copy of the same i32 samples (the ceiling), and the compression ratio (raw i32 bytes
//! over encoded bytes) on orbsim-like data: 40 sps seismic noise with a microseism and
//! an earthquake, generated inline.

use std::hint::black_box;
use std::time::Instant;

use formats::payload::{gencompress, steim, Steim};

/// Seismic-like samples: band-limited noise, microseism, and one event.
fn seismic(n: usize) -> Vec<i32> {
    let mut state = 0x1234_5678_9abc_def0u64;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let t = i as f64 / 40.0;
            let white = (state >> 11) as f64 / (1u64 << 53) as f64 * 40.0 - 20.0;
            let noise = 30.0 * (std::f64::consts::TAU * 1.3 * t).sin()
                + 25.0 * (std::f64::consts::TAU * 3.7 * t + 1.0).sin();
            let micro = 300.0 * (std::f64::consts::TAU * 0.17 * t).sin();
            let dt = t - 600.0;
            let quake = if (0.0..30.0).contains(&dt) {
                8_000.0 * (-dt / 5.0).exp() * (std::f64::consts::TAU * 2.0 * dt).sin()
            } else {
                0.0
            };
            (white + noise + micro + quake).round() as i32
        })
        .collect()
}

/// Best of `reps` timings of `f`, as samples per second.
fn rate(n: usize, reps: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    n as f64 / best
}

fn msps(r: f64) -> String {
    format!("{:>8.0} M samples/s", r / 1e6)
}

fn main() {
    let n = 40 * 3600; // an hour at 40 sps
    let samples = seismic(n);
    let raw_bytes = 4 * n;
    let reps = 20;

    let mut copy = vec![0i32; n];
    let memcpy = rate(n, reps, || {
        copy.copy_from_slice(black_box(&samples));
        black_box(&copy);
    });

    let mut gc = Vec::new();
    gencompress::encode(&samples, &mut gc).unwrap();
    let gc_enc = rate(n, reps, || {
        let mut out = Vec::with_capacity(gc.len());
        gencompress::encode(black_box(&samples), &mut out).unwrap();
        black_box(out);
    });
    let mut out = Vec::with_capacity(n);
    let gc_dec = rate(n, reps, || {
        out.clear();
        gencompress::decode_into(black_box(&gc), n, &mut out).unwrap();
        black_box(&out);
    });
    assert_eq!(out, samples);

    // Steim2 as whole frames (one long run, as in many 512-byte records).
    let frames = n; // room enough
    let mut st = Vec::new();
    let e = steim::encode(&samples, None, Steim::Two, frames, &mut st).unwrap();
    assert_eq!(e.samples, n);
    let st_enc = rate(n, reps, || {
        let mut out = Vec::with_capacity(st.len());
        steim::encode(black_box(&samples), None, Steim::Two, frames, &mut out).unwrap();
        black_box(out);
    });
    let st_dec = rate(n, reps, || {
        out.clear();
        steim::decode(black_box(&st), n, Steim::Two, &mut out).unwrap();
        black_box(&out);
    });
    assert_eq!(out, samples);

    // miniSEED in 512-byte records, as orbsim's SEED packets are.
    let ch = formats::payload::Channel {
        net: "XX".into(),
        sta: "STA01".into(),
        chan: "BHZ".into(),
        loc: String::new(),
        start: formats::Time::from_micros(1_795_341_600_000_000),
        samprate: 40.0,
        calib: 1.0,
        calper: 1.0,
        segtype: 'V',
        samples: samples.clone(),
    };
    let seed = formats::payload::seed::encode(&ch, Steim::Two).unwrap();
    let seed_dec = rate(n, reps, || {
        black_box(formats::payload::seed::decode(black_box(&seed)).unwrap());
    });

    println!("payload codecs, {n} samples of orbsim-like 40 sps seismic data (best of {reps}):");
    println!("  memcpy of i32 (baseline)   {}", msps(memcpy));
    println!("  gencompress encode         {}", msps(gc_enc));
    println!("  gencompress decode         {}", msps(gc_dec));
    println!("  steim2 frames encode       {}", msps(st_enc));
    println!("  steim2 frames decode       {}", msps(st_dec));
    println!("  miniSEED 512 B decode      {}", msps(seed_dec));
    println!("compression ratio (raw i32 bytes / encoded bytes):");
    println!(
        "  gencompress                {:.2}",
        raw_bytes as f64 / gc.len() as f64
    );
    println!(
        "  steim2 frames              {:.2}",
        raw_bytes as f64 / st.len() as f64
    );
    println!(
        "  miniSEED 512 B records     {:.2}",
        raw_bytes as f64 / seed.len() as f64
    );
}
