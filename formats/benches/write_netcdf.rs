//! Archive writer rates: `cargo bench -p orb-formats --bench write_netcdf`.
//!
//! Appends a stream of 3-channel 40 sps packets (one flush, i.e. record write plus
//! header rewrite, every 10 packets) to the netCDF writer over an in-memory file, and
//! the same packets to the CDL writer (text written at finish), and prints samples/s
//! (summed over channels) next to a baseline: copying the same samples into a `Vec`,
//! measured in the same run. The target for netCDF is at least 50 million samples/s.

use std::hint::black_box;
use std::io::Cursor;
use std::time::Instant;

use formats::payload::Channel;
use formats::write::cdl::{CdlOptions, CdlWriter};
use formats::write::netcdf::{NetcdfOptions, NetcdfWriter};
use formats::write::PacketWriter;
use formats::{Packet, SrcName, Time};

const PACKETS: usize = 2_000;
const PER_PACKET: usize = 400;
const CHANS: [&str; 3] = ["BHZ", "BHN", "BHE"];

fn packets() -> Vec<(Packet, Vec<Channel>)> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let t0 = 1_795_341_600_000_000i64;
    (0..PACKETS)
        .map(|k| {
            let start = Time::from_micros(t0 + (k * PER_PACKET) as i64 * 25_000);
            let channels = CHANS
                .iter()
                .map(|chan| Channel {
                    net: "XX".into(),
                    sta: "STA01".into(),
                    chan: (*chan).into(),
                    loc: String::new(),
                    start,
                    samprate: 40.0,
                    calib: 1.0,
                    calper: 1.0,
                    segtype: 'V',
                    samples: (0..PER_PACKET)
                        .map(|_| {
                            state ^= state << 13;
                            state ^= state >> 7;
                            state ^= state << 17;
                            (state >> 40) as i32 - (1 << 23)
                        })
                        .collect(),
                })
                .collect();
            let mut p = Packet::new(SrcName::new("XX_STA01/MGENC/40").unwrap(), start, &b""[..]);
            p.pktid = k as u64;
            (p, channels)
        })
        .collect()
}

/// Best of `reps` timings of `f`, as samples per second.
fn rate(samples: usize, reps: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    samples as f64 / best
}

fn main() {
    let packets = packets();
    let samples = PACKETS * PER_PACKET * CHANS.len();

    let copy = rate(samples, 5, || {
        let mut out: Vec<i32> = Vec::with_capacity(samples);
        for (_, chans) in &packets {
            for c in chans {
                out.extend_from_slice(&c.samples);
            }
        }
        black_box(out);
    });

    let mut file_len = 0;
    let netcdf = rate(samples, 5, || {
        let mut w = NetcdfWriter::create(
            Cursor::new(Vec::with_capacity(samples * 6)),
            NetcdfOptions::default(),
        );
        for (k, (p, c)) in packets.iter().enumerate() {
            w.append(p, c).unwrap();
            if k % 10 == 9 {
                w.flush().unwrap();
            }
        }
        w.finish().unwrap();
        file_len = w.into_inner().into_inner().len();
    });

    let mut text_len = 0;
    let cdl = rate(samples, 3, || {
        let mut w = CdlWriter::create(
            Vec::new(),
            CdlOptions {
                name: "bench".into(),
            },
        );
        for (p, c) in &packets {
            w.append(p, c).unwrap();
        }
        w.finish().unwrap();
        text_len = w.into_inner().len();
    });

    println!(
        "{samples} samples in {PACKETS} packets of {} channels x {PER_PACKET}",
        CHANS.len()
    );
    println!("copy into a Vec (baseline): {:>12.0} samples/s", copy);
    println!(
        "netCDF append (CDF-2):      {:>12.0} samples/s  {:.3} x baseline  ({file_len} bytes)",
        netcdf,
        netcdf / copy
    );
    println!(
        "CDL (written at finish):    {:>12.0} samples/s  {:.3} x baseline  ({text_len} bytes)",
        cdl,
        cdl / copy
    );
}
