//! orb's dataset layout: one station at one sample rate per file, as a CF-1.8
//! `timeSeries` (docs/FORMATS.md, "Archive files: netCDF and CDL"). Decides whether a
//! packet fits, builds the [`Dataset`] for the netCDF and CDL writers, and reads the
//! state back from a header to resume.

use chrono::{DateTime, Datelike, Timelike};

use super::model::{find_attr, Attr, AttrValue, Dataset, Dim, NcType, Var};
use crate::meta::{ascii, Inventory, Sensitivity};
use crate::payload::Channel;
use crate::write::FileSummary;
use crate::{Packet, Time};

/// `source` and the start of `history`: the software that wrote the file.
pub const SOFTWARE: &str = concat!("orb ", env!("CARGO_PKG_VERSION"));

/// Index of the `time` variable; channel variables follow it.
pub const TIME_VAR: usize = 1;
/// Index of the first channel variable.
pub const FIRST_CHANNEL_VAR: usize = 2;

/// The latest sample a file holds, in microseconds after its base: `time` values up to
/// here decode exactly in every CF reader we check (docs/FORMATS.md, "Time").
///
/// `time` is a `double` of whole microseconds (classic netCDF has no 64-bit integer).
/// netCDF4/cftime and pandas round such a value to the microsecond, exact for any whole
/// number below 2^53. xarray (2026.9, `coding/times.py`) decodes to nanoseconds by
/// multiplying the double by 1000 and truncating to `int64`: the product
/// `1000 n = 125 n x 2^3` is exact while `125 n` fits the 53-bit significand, so up to
/// `2^53 / 125` us, about 834 days. A packet reaching past it does not fit (the caller
/// starts a new file).
pub const MAX_EXACT_MICROS: i64 = (1i64 << 53) / 125;

/// How a file's `time` variable counts from its base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// Whole microseconds, `units = "microseconds since <base>"`: what orb writes.
    Microseconds,
    /// Seconds, `units = "seconds since <base>"`, as earlier versions of orb wrote:
    /// xarray decodes some of those times 1 ns early. Such a file still resumes (so its
    /// summary tells a restarted caller what it holds) but takes no more packets, and
    /// its header is rebuilt as those versions wrote it.
    Seconds,
}

impl TimeUnit {
    /// The word before `since` in the `units` attribute.
    fn word(self) -> &'static str {
        match self {
            TimeUnit::Microseconds => "microseconds",
            TimeUnit::Seconds => "seconds",
        }
    }
}

/// One channel's fixed metadata, as its variable records it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelMeta {
    /// Channel code.
    pub chan: String,
    /// Location code.
    pub loc: String,
    /// Variable name: `chan`, or `chan_loc` with a location code.
    pub var: String,
    /// Physical units per count.
    pub calib: f64,
    /// Period of `calib`, seconds.
    pub calper: f64,
    /// Antelope segtype.
    pub segtype: char,
    /// Degrees clockwise from north, from the station metadata.
    pub azimuth: Option<f64>,
    /// Degrees down from horizontal, from the station metadata.
    pub dip: Option<f64>,
    /// Counts per input unit, from the station metadata.
    pub sensitivity: Option<Sensitivity>,
}

/// Where a station is, from its metadata: the file's CF coordinates `lat`, `lon`,
/// `alt`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    /// Degrees north.
    pub latitude: f64,
    /// Degrees east.
    pub longitude: f64,
    /// Metres above sea level.
    pub elevation: f64,
}

/// The names of the position variables, in file order (after the channels).
pub const POSITION_VARS: [&str; 3] = ["lat", "lon", "alt"];

/// What every packet of one file shares.
#[derive(Debug, Clone, PartialEq)]
pub struct StationFile {
    /// Network code.
    pub net: String,
    /// Station code.
    pub sta: String,
    /// The srcname of every packet.
    pub srcname: String,
    /// Samples per second.
    pub samprate: f64,
    /// The channels, in variable order (the first packet's order).
    pub channels: Vec<ChannelMeta>,
    /// Whole second of the first sample: `time` counts from here.
    pub base: Time,
    /// What `time` counts: [`TimeUnit::Microseconds`] for every file orb creates.
    pub time_unit: TimeUnit,
    /// The global `title`; `None` in files of earlier versions, which had none (such
    /// a file resumes and is continued in its own layout).
    pub title: Option<String>,
    /// The station's position, when its metadata was known at the first packet.
    pub position: Option<Position>,
}

fn var_name(c: &Channel) -> String {
    if c.loc.is_empty() {
        c.chan.clone()
    } else {
        format!("{}_{}", c.chan, c.loc)
    }
}

/// Names CDL can print unescaped and that cannot collide with ours.
fn valid_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name != "time"
        && name != "station"
}

fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks what a packet's channels must share among themselves.
fn check_shape(channels: &[Channel]) -> Result<&Channel, String> {
    let first = channels
        .first()
        .ok_or("it has no decoded channels (netCDF stores samples)")?;
    if first.samples.is_empty() {
        return Err("it has no samples".into());
    }
    if !(first.samprate.is_finite() && first.samprate > 0.0) {
        return Err(format!("sample rate {} is not positive", first.samprate));
    }
    for c in channels {
        if c.net != first.net || c.sta != first.sta {
            return Err(format!(
                "channels of several stations ({}_{} and {}_{})",
                first.net, first.sta, c.net, c.sta
            ));
        }
        if c.start != first.start || c.samples.len() != first.samples.len() {
            return Err(format!(
                "channel {} does not share the start and length of {}",
                c.chan, first.chan
            ));
        }
        if c.samprate.to_bits() != first.samprate.to_bits() {
            return Err(format!("channel {} has another sample rate", c.chan));
        }
        if !(c.calib.is_finite() && c.calper.is_finite()) {
            return Err(format!(
                "channel {} has a non-finite calib or calper",
                c.chan
            ));
        }
        // Resume splits a variable name at its first `_` into channel and location.
        if c.chan.contains('_') || !valid_var_name(&var_name(c)) {
            return Err(format!(
                "channel code {:?} location {:?} does not make a netCDF variable name \
                 (letters, digits, _ starting with a letter)",
                c.chan, c.loc
            ));
        }
    }
    for (i, c) in channels.iter().enumerate() {
        if channels[..i].iter().any(|o| var_name(o) == var_name(c)) {
            return Err(format!("channel {} appears twice", var_name(c)));
        }
    }
    Ok(first)
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`: the same width for every time, so rewriting the
/// header never changes its size. `None` outside years 0000-9999.
pub fn fixed_iso(t: Time) -> Option<String> {
    let dt = DateTime::from_timestamp(t.as_micros().div_euclid(1_000_000), 0)?;
    if !(0..=9999).contains(&dt.year()) {
        return None;
    }
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        t.as_micros().rem_euclid(1_000_000)
    ))
}

/// Microseconds from `base` to `t`, as the `time` variable stores them: a whole
/// number, exact in a double (and in every reader up to [`MAX_EXACT_MICROS`]).
pub fn micros_since(base: Time, t: Time) -> f64 {
    (t.as_micros() - base.as_micros()) as f64
}

/// Physical units, CF standard name and the quantity's name for pressure segtypes
/// (docs/FORMATS.md): such channels carry `scale_factor = calib` so CF readers unpack
/// counts to them.
fn pressure(segtype: char) -> Option<(&'static str, &'static str, &'static str)> {
    match segtype {
        'P' => Some(("hPa", "air_pressure", "pressure")),
        'K' => Some(("kPa", "air_pressure", "pressure")),
        'I' => Some(("Pa", "air_pressure_anomaly", "pressure anomaly")),
        _ => None,
    }
}

/// Checks that the last sample of `lead` lies within [`MAX_EXACT_MICROS`] of `base`.
fn check_exact_range(base: Time, lead: &Channel) -> Result<(), String> {
    let last = lead.sample_time(lead.samples.len().saturating_sub(1));
    if last.as_micros().saturating_sub(base.as_micros()) > MAX_EXACT_MICROS {
        return Err(format!(
            "its last sample {last} lies more than {MAX_EXACT_MICROS} us (about 834 days) \
             after the file's base time {base}, past which readers decode times inexactly"
        ));
    }
    Ok(())
}

impl StationFile {
    /// The file the first packet starts; `metadata`, if given, is searched for the
    /// station at the first sample's time (nothing found: the file has no position).
    pub fn first(
        packet: &Packet,
        channels: &[Channel],
        metadata: Option<&Inventory>,
    ) -> Result<StationFile, String> {
        let first = check_shape(channels)?;
        if !valid_code(&first.net) || !valid_code(&first.sta) {
            return Err(format!(
                "network {:?} or station {:?} is empty or not letters, digits, - and _",
                first.net, first.sta
            ));
        }
        let base = Time::from_micros(first.start.as_micros().div_euclid(1_000_000) * 1_000_000);
        if fixed_iso(first.start).is_none() || fixed_iso(first.end()).is_none() {
            return Err("its samples lie outside the years 0000-9999".into());
        }
        if !packet.srcname.as_str().is_ascii() || packet.srcname.as_str().contains('"') {
            return Err("its srcname is not plain ASCII".into());
        }
        check_exact_range(base, first)?;
        let meta = metadata.and_then(|m| m.station(&first.net, &first.sta, first.start));
        let site = meta
            .as_ref()
            .and_then(|m| m.site.as_deref())
            .map_or_else(String::new, |s| {
                format!(" ({})", ascii(s).replace('"', "'"))
            });
        Ok(StationFile {
            net: first.net.clone(),
            sta: first.sta.clone(),
            srcname: packet.srcname.as_str().to_owned(),
            samprate: first.samprate,
            channels: channels
                .iter()
                .map(|c| ChannelMeta {
                    chan: c.chan.clone(),
                    loc: c.loc.clone(),
                    var: var_name(c),
                    calib: c.calib,
                    calper: c.calper,
                    segtype: c.segtype,
                    ..channel_meta(meta.as_ref().and_then(|m| m.channel(&c.loc, &c.chan)))
                })
                .collect(),
            base,
            time_unit: TimeUnit::Microseconds,
            title: Some(format!(
                "{}_{}{site}: data archived by orb",
                first.net, first.sta
            )),
            position: meta.as_ref().map(|m| Position {
                latitude: m.latitude,
                longitude: m.longitude,
                elevation: m.elevation,
            }),
        })
    }

    /// Whether a later packet fits after data ending at `end`; fills `order` with, per
    /// channel variable, the index of the packet's channel that feeds it.
    pub fn check(
        &self,
        packet: &Packet,
        channels: &[Channel],
        end: Option<Time>,
        order: &mut Vec<usize>,
    ) -> Result<(), String> {
        if self.time_unit == TimeUnit::Seconds {
            return Err(
                "the file stores times in seconds, as earlier versions of orb wrote them \
                 (xarray decodes some 1 ns early); it takes no more packets"
                    .into(),
            );
        }
        let first = check_shape(channels)?;
        if packet.srcname.as_str() != self.srcname {
            return Err(format!(
                "srcname {} is not {}",
                packet.srcname, self.srcname
            ));
        }
        if first.net != self.net || first.sta != self.sta {
            return Err(format!(
                "station {}_{} is not {}_{}",
                first.net, first.sta, self.net, self.sta
            ));
        }
        if first.samprate.to_bits() != self.samprate.to_bits() {
            return Err(format!(
                "sample rate {} is not the file's {}",
                first.samprate, self.samprate
            ));
        }
        if channels.len() != self.channels.len() {
            return Err(format!(
                "{} channels, the file has {}",
                channels.len(),
                self.channels.len()
            ));
        }
        order.clear();
        for meta in &self.channels {
            let i = channels
                .iter()
                .position(|c| c.chan == meta.chan && c.loc == meta.loc)
                .ok_or_else(|| format!("channel {} is missing", meta.var))?;
            let c = &channels[i];
            if c.calib.to_bits() != meta.calib.to_bits()
                || c.calper.to_bits() != meta.calper.to_bits()
                || c.segtype != meta.segtype
            {
                return Err(format!(
                    "channel {} changed calib, calper or segtype",
                    meta.var
                ));
            }
            order.push(i);
        }
        if let Some(end) = end {
            // One microsecond of slack: sample times are rounded to the microsecond.
            if first.start.as_micros() + 1 < end.as_micros() {
                return Err(format!(
                    "its first sample {} overlaps the file, which ends at {}",
                    first.start, end
                ));
            }
        }
        if fixed_iso(first.end()).is_none() {
            return Err("its samples lie outside the years 0000-9999".into());
        }
        check_exact_range(self.base, first)
    }

    /// The dataset describing this file after `summary`.
    pub fn dataset(&self, summary: &FileSummary) -> Dataset {
        let strlen = self.station_id().len() as u32;
        // A CF discrete sampling geometry needs the station's position: without it
        // the file is a plain CF dataset of time series (no featureType, no
        // cf_role), which the CF checker accepts in full. Files of earlier versions
        // keep the layout they had.
        let dsg = self.position.is_some() || self.title.is_none();
        let mut station_attrs = vec![Attr::text("long_name", "station")];
        if dsg {
            station_attrs.push(Attr::text("cf_role", "timeseries_id"));
        }
        let coordinates = if self.position.is_some() {
            "time lat lon alt station"
        } else {
            "time station"
        };
        let mut vars = vec![
            Var {
                name: "station".into(),
                dims: vec![1],
                attrs: station_attrs,
                ty: NcType::Char,
            },
            time_var(self.base, self.time_unit),
        ];
        for c in &self.channels {
            let packed = pressure(c.segtype).filter(|_| c.calib != 0.0);
            // What a reader sees: the physical quantity once scale_factor unpacks the
            // counts, else the counts. Files in seconds said "raw counts" throughout.
            let what = match packed {
                Some((.., quantity)) if self.time_unit == TimeUnit::Microseconds => quantity,
                _ => "raw counts",
            };
            let mut attrs = vec![Attr::text(
                "long_name",
                format!(
                    "{} {} {}{}{} {what}",
                    self.net,
                    self.sta,
                    c.chan,
                    if c.loc.is_empty() { "" } else { " " },
                    c.loc
                ),
            )];
            match packed {
                Some((units, standard_name, _)) => {
                    attrs.push(Attr::text("units", units));
                    attrs.push(Attr::text("standard_name", standard_name));
                    attrs.push(Attr::double("scale_factor", c.calib));
                }
                None => attrs.push(Attr::text("units", "counts")),
            }
            attrs.push(Attr::double("calib", c.calib));
            attrs.push(Attr::double("calper", c.calper));
            attrs.push(Attr::text("segtype", c.segtype.to_string()));
            if let Some(a) = c.azimuth {
                attrs.push(Attr::double("azimuth", a));
            }
            if let Some(d) = c.dip {
                attrs.push(Attr::double("dip", d));
            }
            if let Some(s) = &c.sensitivity {
                attrs.push(Attr::double("sensitivity", s.value));
                if let Some(f) = s.frequency {
                    attrs.push(Attr::double("sensitivity_frequency", f));
                }
                attrs.push(Attr::text("sensitivity_units", s.units.clone()));
            }
            attrs.push(Attr::text("coordinates", coordinates));
            vars.push(Var {
                name: c.var.clone(),
                dims: vec![0],
                attrs,
                ty: NcType::Int,
            });
        }
        if self.position.is_some() {
            vars.extend(position_vars());
        }
        let pktid = |p: Option<u64>| p.map_or(-1.0, |p| p as f64);
        let iso = |t: Option<Time>| t.and_then(fixed_iso).unwrap_or_else(|| "-".repeat(27));
        let mut attrs = vec![Attr::text("Conventions", "CF-1.8")];
        if let Some(t) = &self.title {
            attrs.push(Attr::text("title", t.clone()));
        }
        if dsg {
            attrs.push(Attr::text("featureType", "timeSeries"));
        }
        Dataset {
            dims: vec![
                Dim {
                    name: "time".into(),
                    len: 0,
                },
                Dim {
                    name: "name_strlen".into(),
                    len: strlen,
                },
            ],
            attrs: attrs
                .into_iter()
                .chain([
                    Attr::text("network", self.net.clone()),
                    Attr::text("station", self.sta.clone()),
                    Attr::text("srcname", self.srcname.clone()),
                    Attr::double("sample_rate", self.samprate),
                    Attr::double("first_pktid", pktid(summary.first_pktid)),
                    Attr::double("last_pktid", pktid(summary.last_pktid)),
                    Attr::double("packet_count", summary.packets as f64),
                    Attr::text("time_coverage_start", iso(summary.start)),
                    Attr::text("time_coverage_end", iso(summary.end)),
                    Attr::text("source", SOFTWARE),
                    Attr::text("history", format!("written by {SOFTWARE} from orb packets")),
                ])
                .collect(),
            vars,
        }
    }

    /// The values of the position variables, in [`POSITION_VARS`] order.
    pub fn position_values(&self) -> Option<[f64; 3]> {
        self.position
            .map(|p| [p.latitude, p.longitude, p.elevation])
    }

    /// The `station` variable's text: `NET_STA`, as srcnames name a station.
    pub fn station_id(&self) -> String {
        format!("{}_{}", self.net, self.sta)
    }

    /// Reads the state and summary back from a header that [`StationFile::dataset`]
    /// built, with `numrecs` records; `fixed` holds the values of the scalar `double`
    /// variables (the position), read from the file's data.
    pub fn from_dataset(
        ds: &Dataset,
        numrecs: u64,
        fixed: &[(String, f64)],
    ) -> Result<(StationFile, FileSummary), String> {
        let text = |name: &str| match ds.attr(name) {
            Some(AttrValue::Text(s)) => Ok(s.clone()),
            _ => Err(format!("global attribute {name} is missing or not text")),
        };
        let double = |name: &str| match ds.attr(name) {
            Some(AttrValue::Double(v)) if v.len() == 1 => Ok(v[0]),
            _ => Err(format!(
                "global attribute {name} is missing or not one double"
            )),
        };
        let pktid = |name: &str| -> Result<Option<u64>, String> {
            let v = double(name)?;
            if v == -1.0 {
                Ok(None)
            } else if v >= 0.0 && v.fract() == 0.0 && v < 2f64.powi(53) {
                Ok(Some(v as u64))
            } else {
                Err(format!("{name} {v} is not a pktid"))
            }
        };
        let time = |name: &str| -> Result<Time, String> {
            let s = text(name)?;
            Time::parse_iso8601(&s).map_err(|e| format!("{name}: {e}"))
        };
        let time_units = match ds.vars.get(TIME_VAR).map(|v| find_attr(&v.attrs, "units")) {
            Some(Some(AttrValue::Text(s))) => s.clone(),
            _ => return Err("the time variable has no units".into()),
        };
        let (time_unit, epoch) = [TimeUnit::Microseconds, TimeUnit::Seconds]
            .into_iter()
            .find_map(|u| {
                time_units
                    .strip_prefix(u.word())
                    .and_then(|s| s.strip_prefix(" since "))
                    .map(|s| (u, s))
            })
            .ok_or("time units are not microseconds or seconds since a time")?;
        let base = Time::parse_iso8601(epoch).map_err(|_| "time units have a bad epoch")?;
        let mut channels = Vec::new();
        for v in ds
            .vars
            .iter()
            .skip(FIRST_CHANNEL_VAR)
            .filter(|v| v.ty == NcType::Int)
        {
            let d = |name: &str| match find_attr(&v.attrs, name) {
                Some(AttrValue::Double(x)) if x.len() == 1 => Ok(x[0]),
                _ => Err(format!("variable {} has no {name}", v.name)),
            };
            let opt = |name: &str| d(name).ok();
            let sensitivity = match (opt("sensitivity"), find_attr(&v.attrs, "sensitivity_units")) {
                (Some(value), Some(AttrValue::Text(units))) => Some(Sensitivity {
                    value,
                    frequency: opt("sensitivity_frequency"),
                    units: units.clone(),
                }),
                _ => None,
            };
            let segtype = match find_attr(&v.attrs, "segtype") {
                Some(AttrValue::Text(s)) if s.chars().count() == 1 => {
                    s.chars().next().unwrap_or('-')
                }
                _ => return Err(format!("variable {} has no segtype", v.name)),
            };
            let (chan, loc) = match v.name.split_once('_') {
                Some((c, l)) => (c.to_owned(), l.to_owned()),
                None => (v.name.clone(), String::new()),
            };
            channels.push(ChannelMeta {
                chan,
                loc,
                var: v.name.clone(),
                calib: d("calib")?,
                calper: d("calper")?,
                segtype,
                azimuth: opt("azimuth"),
                dip: opt("dip"),
                sensitivity,
            });
        }
        let title = match ds.attr("title") {
            Some(AttrValue::Text(t)) => Some(t.clone()),
            _ => None,
        };
        let value = |name: &str| {
            fixed
                .iter()
                .find(|(n, _)| n == name)
                .map(|&(_, v)| v)
                .ok_or_else(|| format!("variable {name} is missing"))
        };
        let position = if ds.var_index("lat").is_some() {
            Some(Position {
                latitude: value("lat")?,
                longitude: value("lon")?,
                elevation: value("alt")?,
            })
        } else {
            None
        };
        let station = StationFile {
            net: text("network")?,
            sta: text("station")?,
            srcname: text("srcname")?,
            samprate: double("sample_rate")?,
            channels,
            base,
            time_unit,
            title,
            position,
        };
        let packets = double("packet_count")?;
        let summary = FileSummary {
            first_pktid: pktid("first_pktid")?,
            last_pktid: pktid("last_pktid")?,
            packets: packets as u64,
            srcnames: [station.srcname.clone()].into_iter().collect(),
            start: Some(time("time_coverage_start")?),
            end: Some(time("time_coverage_end")?),
            samples: numrecs * station.channels.len() as u64,
            bytes: None,
        };
        Ok((station, summary))
    }
}

/// A channel's metadata fields from its metadata epoch, if any.
fn channel_meta(c: Option<&crate::meta::ChannelEpoch>) -> ChannelMeta {
    ChannelMeta {
        chan: String::new(),
        loc: String::new(),
        var: String::new(),
        calib: 0.0,
        calper: 0.0,
        segtype: '-',
        azimuth: c.and_then(|c| c.azimuth),
        dip: c.and_then(|c| c.dip),
        sensitivity: c.and_then(|c| c.sensitivity.clone()),
    }
}

/// The scalar `lat`, `lon` and `alt` variables: the station's position as CF
/// auxiliary coordinates of a single `timeSeries`.
fn position_vars() -> [Var; 3] {
    let var = |name: &str, standard_name: &str, long_name: &str, units: &str, axis: &str| Var {
        name: name.into(),
        dims: vec![],
        attrs: {
            let mut a = vec![
                Attr::text("standard_name", standard_name),
                Attr::text("long_name", long_name),
                Attr::text("units", units),
                Attr::text("axis", axis),
            ];
            if name == "alt" {
                a.push(Attr::text("positive", "up"));
            }
            a
        },
        ty: NcType::Double,
    };
    [
        var("lat", "latitude", "station latitude", "degrees_north", "Y"),
        var("lon", "longitude", "station longitude", "degrees_east", "X"),
        var(
            "alt",
            "altitude",
            "station elevation above sea level",
            "m",
            "Z",
        ),
    ]
}

fn time_var(base: Time, unit: TimeUnit) -> Var {
    let epoch = fixed_iso(base)
        .map(|s| format!("{}Z", &s[..19]))
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
    Var {
        name: "time".into(),
        dims: vec![0],
        attrs: vec![
            Attr::text("standard_name", "time"),
            Attr::text("long_name", "time of sample"),
            Attr::text("units", format!("{} since {epoch}", unit.word())),
            Attr::text("calendar", "standard"),
            Attr::text("axis", "T"),
        ],
        ty: NcType::Double,
    }
}

/// The `title` of a file finished without packets.
pub const EMPTY_TITLE: &str = "no data: an empty file archived by orb";

/// What a file finished without packets holds: the `time` dimension and variable with
/// no records, and the attributes naming the conventions, title and software.
pub fn empty_dataset() -> Dataset {
    Dataset {
        dims: vec![Dim {
            name: "time".into(),
            len: 0,
        }],
        attrs: vec![
            Attr::text("Conventions", "CF-1.8"),
            Attr::text("title", EMPTY_TITLE),
            Attr::double("packet_count", 0.0),
            Attr::text("source", SOFTWARE),
            Attr::text("history", format!("written by {SOFTWARE} from orb packets")),
        ],
        vars: vec![time_var(Time::UNIX_EPOCH, TimeUnit::Microseconds)],
    }
}

/// Whether `ds` is the layout [`empty_dataset`] describes, or one earlier versions
/// wrote (without a title, time in microseconds or seconds): each holds nothing, so
/// its first packet lays it out anew.
pub fn is_empty_dataset(ds: &Dataset) -> bool {
    let mut empty = empty_dataset();
    if *ds == empty {
        return true;
    }
    empty.attrs.retain(|a| a.name != "title");
    if *ds == empty {
        return true;
    }
    empty.vars = vec![time_var(Time::UNIX_EPOCH, TimeUnit::Seconds)];
    *ds == empty
}
