//! SDS writing rate: `cargo bench -p orb-formats --bench write_sds`.
//!
//! Takes a stream of 3-channel 40 sps MGENC packets, as orbreaper reads them, and
//! times what an SDS rule does with each: decode the payload, cut each channel at
//! midnight and re-encode it as 512-byte Steim2 records ([`sds::split`]), and append
//! the records to the channel's day file ([`SdsWriter`], over an in-memory file, one
//! flush every 10 packets). Prints samples/s (summed over channels) and the ratio to
//! the netCDF writer given the same packets (decoding included) in the same run. The
//! target is at least 50 million samples/s.
//!
//! The signal is a random walk with steps up to ±2^11, so Steim2 differences take
//! every width from 4 to 15 bits, as broadband seismic data do.

use std::collections::HashMap;
use std::hint::black_box;
use std::io::Cursor;
use std::time::Instant;

use formats::payload::{self, mgenc, Channel};
use formats::write::netcdf::{NetcdfOptions, NetcdfWriter};
use formats::write::sds::{self, SdsWriter, StreamKey};
use formats::write::PacketWriter;
use formats::{Packet, SrcName, Time};

const PACKETS: usize = 2_000;
const PER_PACKET: usize = 400;
const CHANS: [&str; 3] = ["BHZ", "BHN", "BHE"];

fn packets() -> Vec<Packet> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut level = [0i32; 3];
    // Starts 2026-12-05T23:50Z, so the stream crosses midnight.
    let t0 = 1_796_514_600_000_000i64;
    (0..PACKETS)
        .map(|k| {
            let start = Time::from_micros(t0 + (k * PER_PACKET) as i64 * 25_000);
            let channels: Vec<Channel> = CHANS
                .iter()
                .zip(level.iter_mut())
                .map(|(chan, x)| Channel {
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
                            *x = x.wrapping_add((state >> 52) as i32 - (1 << 11));
                            *x
                        })
                        .collect(),
                })
                .collect();
            let mut p = Packet::new(
                SrcName::new("XX_STA01/MGENC/40").unwrap(),
                start,
                mgenc::encode(&channels).unwrap(),
            );
            p.pktid = k as u64;
            p
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
    let decode = |p: &Packet| payload::decode(&p.srcname, p.time, &p.payload).unwrap();

    let mut sds_len = 0;
    let mut files = 0;
    let sds_rate = rate(samples, 5, || {
        let mut out: HashMap<(StreamKey, Time), SdsWriter<Cursor<Vec<u8>>>> = HashMap::new();
        for (k, p) in packets.iter().enumerate() {
            for piece in sds::split(p, &decode(p)).unwrap() {
                out.entry((piece.key, piece.day))
                    .or_insert_with(|| SdsWriter::new(Cursor::new(Vec::new())))
                    .append(&piece.packet, &piece.channels)
                    .unwrap();
            }
            if k % 10 == 9 {
                out.values_mut().for_each(|w| w.flush().unwrap());
            }
        }
        files = out.len();
        sds_len = out
            .into_values()
            .map(|mut w| {
                w.finish().unwrap();
                w.into_inner().into_inner().len()
            })
            .sum();
    });

    let mut nc_len = 0;
    let netcdf = rate(samples, 5, || {
        let mut w = NetcdfWriter::create(
            Cursor::new(Vec::with_capacity(samples * 6)),
            NetcdfOptions::default(),
        );
        for (k, p) in packets.iter().enumerate() {
            w.append(p, &decode(p)).unwrap();
            if k % 10 == 9 {
                w.flush().unwrap();
            }
        }
        w.finish().unwrap();
        nc_len = w.into_inner().into_inner().len();
    });
    black_box((sds_len, nc_len));

    println!(
        "{samples} samples in {PACKETS} MGENC packets of {} channels x {PER_PACKET}",
        CHANS.len()
    );
    println!(
        "SDS (decode, Steim2, append): {:>12.0} samples/s  {:.3} x netCDF  ({files} day files, {sds_len} bytes)",
        sds_rate,
        sds_rate / netcdf
    );
    println!(
        "netCDF (decode, append):      {:>12.0} samples/s  ({nc_len} bytes)",
        netcdf
    );
}
