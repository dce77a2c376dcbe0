//! A TOML station table, for networks without StationXML:
//!
//! ```toml
//! [[station]]
//! net = "XX"
//! sta = "STA01"
//! latitude = 45.0        # degrees north
//! longitude = 10.0       # degrees east
//! elevation = 120.0      # metres
//! site = "Hill station"  # optional
//!
//! [[station.channel]]
//! chan = "BHZ"
//! loc = ""               # optional, default empty
//! azimuth = 0.0          # optional, degrees from north
//! dip = -90.0            # optional, degrees down from horizontal
//! sensitivity = 1.0e9    # optional, counts per unit, with `units`
//! sensitivity_frequency = 1.0  # optional, Hz
//! units = "m/s"          # the sensitivity's input units
//! ```
//!
//! A table has no epochs: each station and channel is in force at all times.

use serde::Deserialize;

use super::{ChannelEpoch, Inventory, MetaError, Sensitivity, StationEpoch};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    #[serde(default)]
    station: Vec<Station>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Station {
    net: String,
    sta: String,
    latitude: f64,
    longitude: f64,
    elevation: f64,
    site: Option<String>,
    #[serde(default)]
    channel: Vec<Channel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Channel {
    chan: String,
    #[serde(default)]
    loc: String,
    azimuth: Option<f64>,
    dip: Option<f64>,
    sensitivity: Option<f64>,
    sensitivity_frequency: Option<f64>,
    units: Option<String>,
}

/// Reads a station table into an [`Inventory`] and validates it.
pub fn parse(text: &str) -> Result<Inventory, MetaError> {
    let table: Table = toml::from_str(text).map_err(|e| MetaError::Toml(e.to_string()))?;
    let mut inv = Inventory::default();
    for s in table.station {
        let mut channels = Vec::new();
        for c in s.channel {
            let sensitivity = match (c.sensitivity, c.units) {
                (Some(value), Some(units)) => Some(Sensitivity {
                    value,
                    frequency: c.sensitivity_frequency,
                    units,
                }),
                (None, None) if c.sensitivity_frequency.is_none() => None,
                _ => {
                    return Err(MetaError::Invalid(format!(
                        "station {}_{} channel {}: sensitivity and units go together",
                        s.net, s.sta, c.chan
                    )))
                }
            };
            channels.push(ChannelEpoch {
                loc: c.loc,
                chan: c.chan,
                start: None,
                end: None,
                azimuth: c.azimuth,
                dip: c.dip,
                sample_rate: None,
                sensitivity,
            });
        }
        inv.stations.push(StationEpoch {
            net: s.net,
            sta: s.sta,
            start: None,
            end: None,
            latitude: s.latitude,
            longitude: s.longitude,
            elevation: s.elevation,
            site: s.site,
            channels,
        });
    }
    inv.validate()?;
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Time;

    const TABLE: &str = r#"
[[station]]
net = "XX"
sta = "PRS01"
latitude = -33.5
longitude = 151.25
elevation = 12.0

[[station.channel]]
chan = "LDO"
sensitivity = 100.0
units = "hPa"

[[station.channel]]
chan = "BHZ"
loc = "00"
azimuth = 0.0
dip = -90.0
"#;

    #[test]
    fn reads_a_table() {
        let inv = parse(TABLE).unwrap();
        let s = inv.station("XX", "PRS01", Time::from_micros(0)).unwrap();
        assert_eq!(
            (s.latitude, s.longitude, s.elevation),
            (-33.5, 151.25, 12.0)
        );
        let ldo = s.channel("", "LDO").unwrap();
        assert_eq!(ldo.sensitivity.as_ref().unwrap().units, "hPa");
        assert_eq!(s.channel("00", "BHZ").unwrap().dip, Some(-90.0));
    }

    #[test]
    fn bad_tables_are_refused() {
        let e = parse(&TABLE.replace("latitude = -33.5", "latitude = -133.5"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("latitude -133.5"), "{e}");
        let e = parse(&TABLE.replace("units = \"hPa\"", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("sensitivity and units"), "{e}");
        let e = parse(&TABLE.replace("elevation = 12.0", "elevation = 12.0\nheight = 3"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field"), "{e}");
        let e = parse(&TABLE.replace("chan = \"BHZ\"\nloc = \"00\"", "chan = \"LDO\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("overlap"), "{e}");
    }
}
