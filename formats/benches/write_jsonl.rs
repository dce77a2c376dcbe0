//! Archive writer rates: `cargo bench -p orb-formats --bench write_jsonl`.
//!
//! Appends the same orbsim-like packets (3 channels of 40 sps seismic-like counts, one
//! second each, MGENC payloads) to a JSON Lines writer and to a raw packet writer, and
//! prints samples/s for each beside a baseline measured in the same run: copying the
//! same samples into a `Vec<i32>` (the least any writer must do). Ratios are baseline
//! rate over writer rate: the time a writer takes as a multiple of the copy's (below 1 means
//! faster than the copy, as raw files, which copy payload bytes, not samples, can be).
//! Writers write into a sink that only counts bytes, so the figures are
//! formatting and buffering, not the disk.

use std::hint::black_box;
use std::io;
use std::time::Instant;

use formats::payload::{mgenc, Channel};
use formats::write::jsonl::JsonLinesWriter;
use formats::write::raw::RawWriter;
use formats::write::PacketWriter;
use formats::{Packet, SrcName, Time};

const PACKETS: usize = 20_000;
const RATE: usize = 40;

/// Seismic-like counts: noise plus a microseism, from a fixed seed.
fn samples(state: &mut u64, n: usize, t0: usize) -> Vec<i32> {
    (0..n)
        .map(|i| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            let t = (t0 + i) as f64 / RATE as f64;
            let white = (*state >> 11) as f64 / (1u64 << 53) as f64 * 400.0 - 200.0;
            let micro = 3000.0 * (std::f64::consts::TAU * 0.17 * t).sin();
            (white + micro).round() as i32
        })
        .collect()
}

fn dataset() -> Vec<(Packet, Vec<Channel>)> {
    let name = SrcName::new("XX_STA01/MGENC").unwrap();
    let mut state = 0x1234_5678_9abc_def0u64;
    let t0 = 1_795_341_600_000_000i64;
    (0..PACKETS)
        .map(|i| {
            let start = Time::from_micros(t0 + i as i64 * 1_000_000);
            let chans: Vec<Channel> = ["BHZ", "BHN", "BHE"]
                .iter()
                .map(|c| Channel {
                    net: "XX".into(),
                    sta: "STA01".into(),
                    chan: (*c).into(),
                    loc: String::new(),
                    start,
                    samprate: RATE as f64,
                    calib: 0.25,
                    calper: 1.0,
                    segtype: 'V',
                    samples: samples(&mut state, RATE, i * RATE),
                })
                .collect();
            let mut p = Packet::new(name.clone(), start, mgenc::encode(&chans).unwrap());
            p.pktid = i as u64 + 1;
            (p, chans)
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

fn main() {
    let data = dataset();
    let n: usize = data
        .iter()
        .map(|(_, c)| c.iter().map(|c| c.samples.len()).sum::<usize>())
        .sum();
    let reps = 7;

    let copy = rate(n, reps, || {
        let mut v: Vec<i32> = Vec::with_capacity(n);
        for (_, chans) in &data {
            for c in chans {
                v.extend_from_slice(black_box(&c.samples));
            }
        }
        black_box(v);
    });

    let mut jsonl_bytes = 0;
    let jsonl = rate(n, reps, || {
        let mut w = JsonLinesWriter::new(Counting::default());
        for (p, chans) in &data {
            w.append(p, chans).unwrap();
        }
        w.finish().unwrap();
        jsonl_bytes = w.into_inner().0;
    });

    let mut raw_bytes = 0;
    let raw = rate(n, reps, || {
        let mut w = RawWriter::new(Counting::default());
        for (p, chans) in &data {
            w.append(p, chans).unwrap();
        }
        w.finish().unwrap();
        raw_bytes = w.into_inner().0;
    });

    println!("{PACKETS} packets, {n} samples (3 channels x {RATE} per packet, MGENC payloads)");
    println!(
        "baseline: copy into Vec<i32>  {:>8.1} M samples/s",
        copy / 1e6
    );
    for (what, r, bytes) in [
        ("JSON Lines", jsonl, jsonl_bytes),
        ("raw packets", raw, raw_bytes),
    ] {
        println!(
            "{what:<12} {:>8.1} M samples/s  {:>6.2}x the copy's time  {:>7.1} MB/s  {:.2} bytes/sample",
            r / 1e6,
            copy / r,
            r * bytes as f64 / n as f64 / 1e6,
            bytes as f64 / n as f64
        );
    }
}

/// A sink that counts the bytes written, so the output size can be printed.
#[derive(Default)]
struct Counting(usize);

impl io::Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(black_box(buf).len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
