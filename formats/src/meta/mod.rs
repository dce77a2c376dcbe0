//! Station metadata: where a station is and how each channel is oriented and
//! calibrated, read from FDSN StationXML ([`stationxml`]) or from a small TOML station
//! table ([`table`]), and looked up by network, station, location and channel for the
//! archive writers (docs/FORMATS.md, "Station metadata").
//!
//! Both sources give an [`Inventory`]: station epochs, each with its channel epochs.
//! A writer asks for the station of its first packet at that packet's time
//! ([`Inventory::station`]) and keeps the answer for the whole file, since a netCDF
//! header never changes size once written.

pub mod stationxml;
pub mod table;

use std::path::Path;

use crate::Time;

/// The largest metadata file [`Inventory::load`] reads: a StationXML file with full
/// responses for a few thousand channels is tens of MiB.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Why a metadata file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The StationXML is not well-formed or not FDSN StationXML.
    #[error("not valid FDSN StationXML: {0}")]
    Xml(String),
    /// The TOML station table does not parse.
    #[error("not a valid station table: {0}")]
    Toml(String),
    /// A value is out of range, missing or repeated.
    #[error("{0}")]
    Invalid(String),
}

/// A channel's sensitivity: counts per input unit at a frequency (StationXML's
/// `InstrumentSensitivity`).
#[derive(Debug, Clone, PartialEq)]
pub struct Sensitivity {
    /// Counts per input unit.
    pub value: f64,
    /// Frequency at which `value` holds, Hz.
    pub frequency: Option<f64>,
    /// The input units (what the sensor measures), as the source spells them: `m/s`.
    pub units: String,
}

/// One epoch of a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelEpoch {
    /// Location code (may be empty).
    pub loc: String,
    /// Channel code.
    pub chan: String,
    /// Start of the epoch (`None`: always).
    pub start: Option<Time>,
    /// End of the epoch, exclusive (`None`: still open).
    pub end: Option<Time>,
    /// Degrees clockwise from north.
    pub azimuth: Option<f64>,
    /// Degrees down from horizontal (-90: up, as for a vertical seismometer).
    pub dip: Option<f64>,
    /// Samples per second, if given (orb writes it; files take the rate from packets).
    pub sample_rate: Option<f64>,
    /// The overall sensitivity.
    pub sensitivity: Option<Sensitivity>,
}

/// One epoch of a station, with its channels.
#[derive(Debug, Clone, PartialEq)]
pub struct StationEpoch {
    /// Network code.
    pub net: String,
    /// Station code.
    pub sta: String,
    /// Start of the epoch (`None`: always).
    pub start: Option<Time>,
    /// End of the epoch, exclusive (`None`: still open).
    pub end: Option<Time>,
    /// Degrees north, WGS84.
    pub latitude: f64,
    /// Degrees east, WGS84.
    pub longitude: f64,
    /// Metres above sea level.
    pub elevation: f64,
    /// The site's name, if given.
    pub site: Option<String>,
    /// Channel epochs.
    pub channels: Vec<ChannelEpoch>,
}

/// What one archive file records about its station: the station epoch in force at
/// the file's first sample, with only the channel epochs in force then.
pub type StationMeta = StationEpoch;

/// Station metadata, as loaded from one file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inventory {
    /// Station epochs, in file order.
    pub stations: Vec<StationEpoch>,
}

fn covers(start: Option<Time>, end: Option<Time>, at: Time) -> bool {
    start.is_none_or(|s| s <= at) && end.is_none_or(|e| at < e)
}

impl StationEpoch {
    /// The channel `loc`/`chan`, if this epoch lists it.
    pub fn channel(&self, loc: &str, chan: &str) -> Option<&ChannelEpoch> {
        self.channels
            .iter()
            .find(|c| c.loc == loc && c.chan == chan)
    }
}

impl Inventory {
    /// Reads a StationXML file (`.xml`) or a TOML station table (`.toml`); any other
    /// name is read as StationXML when its text starts with `<`, else as a table.
    /// Only a regular file of at most [`MAX_FILE_BYTES`] is read (not a device or a
    /// pipe, which might never end).
    pub fn load(path: &Path) -> Result<Inventory, MetaError> {
        let io = |source| MetaError::Io {
            path: path.display().to_string(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(MetaError::Invalid(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(MetaError::Invalid(format!(
                "{} has {} bytes, more than the {MAX_FILE_BYTES} a metadata file may have",
                path.display(),
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext.eq_ignore_ascii_case("xml")
            || (!ext.eq_ignore_ascii_case("toml") && text.trim_start().starts_with('<'))
        {
            stationxml::parse(&text)
        } else {
            table::parse(&text)
        }
    }

    /// The station `net`/`sta` as it was at `at`, with the channel epochs in force
    /// then; `None` when no epoch of the station covers `at`.
    pub fn station(&self, net: &str, sta: &str, at: Time) -> Option<StationMeta> {
        let s = self
            .stations
            .iter()
            .find(|s| s.net == net && s.sta == sta && covers(s.start, s.end, at))?;
        let mut meta = s.clone();
        meta.channels.retain(|c| covers(c.start, c.end, at));
        Some(meta)
    }

    /// Checks every value: finite coordinates in range, angles in range, non-zero
    /// finite sensitivities, codes and units of printable ASCII, no station or channel
    /// epoch listed twice. Both parsers call it.
    pub fn validate(&self) -> Result<(), MetaError> {
        let bad = |what: String| Err(MetaError::Invalid(what));
        for (i, s) in self.stations.iter().enumerate() {
            let name = format!("station {}_{}", s.net, s.sta);
            if !code_ok(&s.net, false) || !code_ok(&s.sta, false) {
                return bad(format!(
                    "{name}: network and station codes must be letters, digits, - or _"
                ));
            }
            if !(s.latitude.is_finite() && (-90.0..=90.0).contains(&s.latitude)) {
                return bad(format!("{name}: latitude {} is not in -90..90", s.latitude));
            }
            if !(s.longitude.is_finite() && (-180.0..=180.0).contains(&s.longitude)) {
                return bad(format!(
                    "{name}: longitude {} is not in -180..180",
                    s.longitude
                ));
            }
            if !s.elevation.is_finite() {
                return bad(format!("{name}: elevation is not a number"));
            }
            if let (Some(a), Some(b)) = (s.start, s.end) {
                if b <= a {
                    return bad(format!("{name}: its epoch ends before it starts"));
                }
            }
            if self.stations[..i].iter().any(|o| {
                o.net == s.net && o.sta == s.sta && overlap(o.start, o.end, s.start, s.end)
            }) {
                return bad(format!("{name}: two epochs of it overlap"));
            }
            for (j, c) in s.channels.iter().enumerate() {
                let cname = format!("{name} channel {}.{}", c.loc, c.chan);
                if !code_ok(&c.chan, false) || !code_ok(&c.loc, true) {
                    return bad(format!(
                        "{cname}: channel and location codes must be letters, digits, - or _"
                    ));
                }
                if let Some(a) = c.azimuth {
                    if !(a.is_finite() && (-360.0..=360.0).contains(&a)) {
                        return bad(format!("{cname}: azimuth {a} is not in -360..360"));
                    }
                }
                if let Some(d) = c.dip {
                    if !(d.is_finite() && (-90.0..=90.0).contains(&d)) {
                        return bad(format!("{cname}: dip {d} is not in -90..90"));
                    }
                }
                if let Some(sens) = &c.sensitivity {
                    if !(sens.value.is_finite() && sens.value != 0.0) {
                        return bad(format!(
                            "{cname}: sensitivity {} is not a non-zero number",
                            sens.value
                        ));
                    }
                    if sens.frequency.is_some_and(|f| !(f.is_finite() && f >= 0.0)) {
                        return bad(format!(
                            "{cname}: sensitivity frequency is not a number >= 0"
                        ));
                    }
                    if sens.units.is_empty()
                        || !sens
                            .units
                            .bytes()
                            .all(|b| b.is_ascii_graphic() || b == b' ')
                    {
                        return bad(format!(
                            "{cname}: sensitivity units {:?} are empty or not printable ASCII",
                            sens.units
                        ));
                    }
                }
                if s.channels[..j].iter().any(|o| {
                    o.loc == c.loc && o.chan == c.chan && overlap(o.start, o.end, c.start, c.end)
                }) {
                    return bad(format!("{cname}: two epochs of it overlap"));
                }
            }
        }
        Ok(())
    }
}

fn overlap(a0: Option<Time>, a1: Option<Time>, b0: Option<Time>, b1: Option<Time>) -> bool {
    let starts_before_end = |s: Option<Time>, e: Option<Time>| match (s, e) {
        (Some(s), Some(e)) => s < e,
        _ => true,
    };
    starts_before_end(a0, b1) && starts_before_end(b0, a1)
}

fn code_ok(code: &str, may_be_empty: bool) -> bool {
    (may_be_empty || !code.is_empty())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `text` with every character that is not printable ASCII replaced by `?`: netCDF
/// classic text attributes, as orb writes them, are ASCII.
pub fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Parses a StationXML or table date: ISO 8601, with or without `Z`.
fn parse_date(s: &str) -> Result<Time, MetaError> {
    let s = s.trim();
    let has_zone = s.ends_with('Z') || s.ends_with('z') || {
        let tail = s.rsplit_once('T').map_or("", |(_, t)| t);
        tail.contains('+') || tail.contains('-')
    };
    let text = if has_zone {
        s.to_owned()
    } else {
        format!("{s}Z")
    };
    Time::parse_iso8601(&text).map_err(|e| MetaError::Invalid(format!("date {s:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(start: Option<&str>, end: Option<&str>) -> StationEpoch {
        StationEpoch {
            net: "XX".into(),
            sta: "STA01".into(),
            start: start.map(|s| parse_date(s).unwrap()),
            end: end.map(|s| parse_date(s).unwrap()),
            latitude: 45.0,
            longitude: 10.0,
            elevation: 100.0,
            site: None,
            channels: vec![],
        }
    }

    #[test]
    fn lookup_picks_the_epoch_in_force() {
        let mut a = epoch(Some("2020-01-01T00:00:00"), Some("2024-01-01T00:00:00"));
        a.latitude = 1.0;
        let mut b = epoch(Some("2024-01-01T00:00:00"), None);
        b.latitude = 2.0;
        let inv = Inventory {
            stations: vec![a, b],
        };
        inv.validate().unwrap();
        let at = |s: &str| Time::parse_iso8601(s).unwrap();
        assert_eq!(
            inv.station("XX", "STA01", at("2023-12-31T23:59:59Z"))
                .unwrap()
                .latitude,
            1.0
        );
        assert_eq!(
            inv.station("XX", "STA01", at("2024-01-01T00:00:00Z"))
                .unwrap()
                .latitude,
            2.0
        );
        assert!(inv
            .station("XX", "STA01", at("2019-01-01T00:00:00Z"))
            .is_none());
        assert!(inv
            .station("XX", "STA02", at("2024-06-01T00:00:00Z"))
            .is_none());
    }

    #[test]
    fn only_regular_files_load() {
        let dir = std::env::temp_dir();
        let e = Inventory::load(&dir).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        if Path::new("/dev/zero").exists() {
            let e = Inventory::load(Path::new("/dev/zero"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("not a regular file"), "{e}");
        }
    }

    #[test]
    fn overlapping_epochs_and_bad_values_are_refused() {
        let inv = Inventory {
            stations: vec![epoch(None, None), epoch(Some("2024-01-01T00:00:00Z"), None)],
        };
        assert!(inv.validate().unwrap_err().to_string().contains("overlap"));
        let mut s = epoch(None, None);
        s.latitude = 91.0;
        let inv = Inventory { stations: vec![s] };
        assert!(inv.validate().unwrap_err().to_string().contains("latitude"));
    }
}
