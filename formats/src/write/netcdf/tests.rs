//! Golden bytes, append/resume and fit rules of the netCDF writer; CDL text of the
//! same dataset.

use std::io::Cursor;

use proptest::prelude::*;

use super::*;
use crate::write::cdl::{CdlOptions, CdlWriter};
use crate::{SrcName, Time};

/// A packet of `chans` channels at 40 sps starting `start_us` with samples from `first`.
pub(crate) fn packet(
    pktid: u64,
    start_us: i64,
    chans: &[(&str, char, f64)],
    samples: &[Vec<i32>],
) -> (Packet, Vec<Channel>) {
    let mut p = Packet::new(
        SrcName::new("XX_STA01/MGENC/40").unwrap(),
        Time::from_micros(start_us),
        &b""[..],
    );
    p.pktid = pktid;
    let channels = chans
        .iter()
        .zip(samples)
        .map(|(&(chan, segtype, calib), s)| Channel {
            net: "XX".into(),
            sta: "STA01".into(),
            chan: chan.into(),
            loc: String::new(),
            start: Time::from_micros(start_us),
            samprate: 40.0,
            calib,
            calper: 1.0,
            segtype,
            samples: s.clone(),
        })
        .collect();
    (p, channels)
}

/// 2026-11-22T10:00:00.5Z.
const T0: i64 = 1_795_341_600_500_000;
const CHANS: [(&str, char, f64); 2] = [("BHZ", 'V', 1.0), ("BDF", 'I', 0.001)];

/// The fixed dataset: 2 packets x 2 channels x 3 samples, with a gap between them.
pub(crate) fn fixture() -> Vec<(Packet, Vec<Channel>)> {
    vec![
        packet(
            100,
            T0,
            &CHANS,
            &[vec![1, -2, 3], vec![-2147483647, 0, 2147483647]],
        ),
        packet(101, T0 + 500_000, &CHANS, &[vec![4, 5, 6], vec![7, -8, 9]]),
    ]
}

fn write_nc(version: CdfVersion, packets: &[(Packet, Vec<Channel>)]) -> Vec<u8> {
    let mut w = NetcdfWriter::create(Cursor::new(Vec::new()), NetcdfOptions { version });
    for (p, c) in packets {
        w.append(p, c).unwrap();
        w.flush().unwrap();
    }
    w.finish().unwrap();
    w.into_inner().into_inner()
}

fn write_cdl(name: &str, packets: &[(Packet, Vec<Channel>)]) -> String {
    let mut w = CdlWriter::create(Vec::new(), CdlOptions { name: name.into() });
    for (p, c) in packets {
        w.append(p, c).unwrap();
    }
    w.finish().unwrap();
    String::from_utf8(w.into_inner()).unwrap()
}

#[test]
fn scratch_dump() {
    let dir = std::env::var("ORB_SCRATCH").unwrap_or_default();
    if dir.is_empty() {
        return;
    }
    for (v, n) in [(CdfVersion::Classic, "f1"), (CdfVersion::Offset64, "f2")] {
        std::fs::write(format!("{dir}/{n}.nc"), write_nc(v, &fixture())).unwrap();
        std::fs::write(format!("{dir}/{n}-empty.nc"), write_nc(v, &[])).unwrap();
    }
    std::fs::write(format!("{dir}/f2.cdl"), write_cdl("f2", &fixture())).unwrap();
    std::fs::write(format!("{dir}/f2-empty.cdl"), write_cdl("f2-empty", &[])).unwrap();
    let long: Vec<_> = (0..3)
        .map(|k| {
            packet(
                k,
                T0 + k as i64 * 2_000_000,
                &CHANS,
                &[
                    (0..80).map(|i| i * 37 - 1000).collect(),
                    (0..80).map(|i| i * 1234567 - 99).collect(),
                ],
            )
        })
        .collect();
    std::fs::write(
        format!("{dir}/long.nc"),
        write_nc(CdfVersion::Offset64, &long),
    )
    .unwrap();
    std::fs::write(format!("{dir}/long.cdl"), write_cdl("long", &long)).unwrap();
}
