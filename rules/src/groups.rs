//! Sample-rate groups: how a reaper fits a multi-rate packet into per-file-layout
//! formats.
//!
//! A netCDF (or CDL) file holds one sample-rate group: every channel shares the
//! unlimited time dimension, so all must share start, length and rate. A packet such
//! as orbsim's pressure MGENC (LDO at 1 sps, BDF at 40 sps) has several; rather than
//! skip it (a hole in the archive), the reaper splits it into one sub-packet per group
//! and writes each to its own file, `<path stem>_<rate>sps.<ext>`. The writers stay
//! one-group-per-file; only the reaper knows about groups.

use std::path::{Path, PathBuf};

use formats::payload::Channel;
use formats::write::Format;

/// The channels of one packet that one file can hold together.
#[derive(Debug, Clone, PartialEq)]
pub struct RateGroup {
    /// File name suffix (`40sps`), or `None` when the packet has a single group and is
    /// written to the rendered path unchanged.
    pub label: Option<String>,
    /// This group's channels, in the packet's order.
    pub channels: Vec<Channel>,
}

impl RateGroup {
    /// The group's file: `path` with `_<label>` before its extension (unchanged
    /// without a label).
    pub fn path(&self, path: &Path) -> PathBuf {
        labeled(path, self.label.as_deref())
    }
}

/// Splits a packet's channels into groups of equal (sample rate, start, number of
/// samples), in order of first appearance, for formats that store samples by file
/// layout (`netcdf`, `cdl`). Other formats keep whole packets, and a packet with one
/// group (or none: no decoded channels) stays whole, so that single-rate sources are
/// written exactly as before.
pub fn split(format: Format, channels: Vec<Channel>) -> Vec<RateGroup> {
    if !matches!(format, Format::Netcdf | Format::Cdl) {
        return vec![whole(channels)];
    }
    let mut groups: Vec<(GroupKey, Vec<Channel>)> = Vec::new();
    for c in channels {
        let key = GroupKey::of(&c);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(c),
            None => groups.push((key, vec![c])),
        }
    }
    if groups.len() <= 1 {
        return vec![whole(groups.pop().map(|(_, g)| g).unwrap_or_default())];
    }
    let mut out: Vec<RateGroup> = Vec::with_capacity(groups.len());
    for (key, channels) in groups {
        let rate = rate_label(f64::from_bits(key.rate));
        // Two groups of one rate (different starts or lengths) must not share a file;
        // the later ones are numbered by their order in the packet, which is stable
        // for a source whose packets keep their shape.
        let same = out
            .iter()
            .filter(|g| g.label.as_deref().is_some_and(|l| label_rate(l) == rate))
            .count();
        let label = if same == 0 {
            rate
        } else {
            format!("{rate}-{}", same + 1)
        };
        out.push(RateGroup {
            label: Some(label),
            channels,
        });
    }
    out
}

fn whole(channels: Vec<Channel>) -> RateGroup {
    RateGroup {
        label: None,
        channels,
    }
}

/// What channels of one group share.
#[derive(PartialEq)]
struct GroupKey {
    /// `f64::to_bits`: the writers compare rates bit for bit too.
    rate: u64,
    start: i64,
    len: usize,
}

impl GroupKey {
    fn of(c: &Channel) -> GroupKey {
        GroupKey {
            rate: c.samprate.to_bits(),
            start: c.start.as_micros(),
            len: c.samples.len(),
        }
    }
}

/// `<rate>sps`, written compactly and safe in a file name: `1sps`, `40sps`, `0p1sps`,
/// `2p5sps`. The decimal point becomes `p` so that the extension stays the only dot
/// (`Path::extension`, the append mode's `_N` numbering and CDL's dataset name all
/// split there); a negative rate (never valid in netCDF) would start with `m`.
pub fn rate_label(samprate: f64) -> String {
    // `Display` for f64 is the shortest round-trip form, never with an exponent.
    let digits = format!("{samprate}").replace('.', "p").replace('-', "m");
    format!("{digits}sps")
}

/// The rate part of a label (`40sps` of `40sps-2`).
fn label_rate(label: &str) -> &str {
    label.split('-').next().unwrap_or(label)
}

/// `dir/stem_<label>.ext` for `dir/stem.ext` (`dir/stem_<label>` without an
/// extension); `path` itself without a label.
pub fn labeled(path: &Path, label: Option<&str>) -> PathBuf {
    let Some(suffix) = label else {
        return path.to_owned();
    };
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let name = match path.extension() {
        Some(e) => format!("{stem}_{suffix}.{}", e.to_string_lossy()),
        None => format!("{stem}_{suffix}"),
    };
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::Time;

    fn chan(name: &str, rate: f64, start_s: i64, n: usize) -> Channel {
        Channel {
            net: "XX".into(),
            sta: "PRS01".into(),
            chan: name.into(),
            loc: String::new(),
            start: Time::from_micros(start_s * 1_000_000),
            samprate: rate,
            calib: 1.0,
            calper: 1.0,
            segtype: 'P',
            samples: vec![0; n],
        }
    }

    fn labels(groups: &[RateGroup]) -> Vec<(Option<&str>, Vec<&str>)> {
        groups
            .iter()
            .map(|g| {
                (
                    g.label.as_deref(),
                    g.channels.iter().map(|c| c.chan.as_str()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn one_group_stays_whole() {
        let ch = vec![chan("BHZ", 40.0, 0, 40), chan("BHN", 40.0, 0, 40)];
        let g = split(Format::Netcdf, ch);
        assert_eq!(labels(&g), [(None, vec!["BHZ", "BHN"])]);
        assert_eq!(g[0].path(Path::new("a/w.nc")), PathBuf::from("a/w.nc"));
        assert_eq!(labels(&split(Format::Netcdf, Vec::new())), [(None, vec![])]);
    }

    #[test]
    fn rates_split_in_order_of_first_appearance() {
        let ch = vec![
            chan("LDO", 1.0, 0, 1),
            chan("BDF", 40.0, 0, 40),
            chan("LDI", 1.0, 0, 1),
        ];
        let g = split(Format::Cdl, ch);
        assert_eq!(
            labels(&g),
            [
                (Some("1sps"), vec!["LDO", "LDI"]),
                (Some("40sps"), vec!["BDF"])
            ]
        );
        assert_eq!(
            g[1].path(Path::new("a/w.nc")),
            PathBuf::from("a/w_40sps.nc")
        );
        assert_eq!(g[0].path(Path::new("a/w")), PathBuf::from("a/w_1sps"));
    }

    #[test]
    fn same_rate_other_start_or_length_gets_its_own_file() {
        let ch = vec![
            chan("A", 1.0, 0, 1),
            chan("B", 1.0, 5, 1),
            chan("C", 1.0, 0, 2),
            chan("D", 1.0, 5, 1),
        ];
        assert_eq!(
            labels(&split(Format::Netcdf, ch)),
            [
                (Some("1sps"), vec!["A"]),
                (Some("1sps-2"), vec!["B", "D"]),
                (Some("1sps-3"), vec!["C"]),
            ]
        );
    }

    #[test]
    fn whole_packet_formats_are_not_split() {
        for f in [Format::Json, Format::Raw] {
            let ch = vec![chan("LDO", 1.0, 0, 1), chan("BDF", 40.0, 0, 40)];
            assert_eq!(labels(&split(f, ch)), [(None, vec!["LDO", "BDF"])]);
        }
    }

    #[test]
    fn rate_labels_are_compact_and_dot_free() {
        assert_eq!(rate_label(1.0), "1sps");
        assert_eq!(rate_label(40.0), "40sps");
        assert_eq!(rate_label(0.1), "0p1sps");
        assert_eq!(rate_label(2.5), "2p5sps");
        assert_eq!(rate_label(-1.0), "m1sps");
    }
}
