//! What orbsim simulates: a network of stations, each with channels and rates, and the
//! packet length. Built from command-line counts or read from a TOML file:
//!
//! ```toml
//! network = "XX"
//! packet_seconds = 1.0   # seconds of data per packet
//! interval = 1.0         # seconds between rounds in real time (default: packet_seconds)
//! count = 60             # rounds (one packet per station, or per channel for SEED)
//! format = "mgenc"       # or "seed"
//! quakes = true          # background earthquakes (about 42 an hour)
//! quake_scale = 1.0      # their amplitudes times this
//! fronts = false         # pressure fronts on LDO (0.6 per half hour)
//!
//! [[station]]
//! name = "STA01"
//! kind = "seismic"       # BHZ/BHN/BHE at 40 sps unless `channels` says otherwise
//! x_km = 0.0             # position along the line earthquakes travel
//!
//! [[station]]
//! name = "PRS01"
//! kind = "pressure"      # LDO at 1 sps, BDF at 20 sps
//! channels = [{ chan = "LDO", rate = 1 }, { chan = "BDF", rate = 40 }]
//! ```

use serde::Deserialize;

/// Payload format of the packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One MGENC packet per station: `NET_STA/MGENC/M<rate>`.
    #[default]
    Mgenc,
    /// One miniSEED (Steim2) packet per channel: `NET_STA_CHAN/SEED`.
    Seed,
}

/// What a station measures; it picks the default channels and the signal models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Three-component seismometer (Z, N, E).
    Seismic,
    /// Barometer and infrasound sensor.
    Pressure,
}

/// One channel of a station.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// SEED channel code: `BHZ`, `BHN`, `BHE`, `HHZ`..., `LDO`, `BDF`.
    pub chan: String,
    /// Samples per second (a whole number).
    pub rate: u32,
}

/// One station.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationConfig {
    /// Station code (at most 5 characters for SEED).
    pub name: String,
    /// What it measures.
    pub kind: Kind,
    /// Channels; empty: the kind's defaults.
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
    /// Position along the line earthquakes travel, km; default 25 km x station index.
    pub x_km: Option<f64>,
}

/// The whole simulated network.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Network code (at most 2 characters for SEED).
    #[serde(default = "default_network")]
    pub network: String,
    /// Seconds of data per packet.
    #[serde(default = "default_packet_seconds")]
    pub packet_seconds: f64,
    /// Seconds between rounds in real time; default `packet_seconds`.
    pub interval: Option<f64>,
    /// Rounds to send; `None`: until stopped.
    pub count: Option<u64>,
    /// Payload format.
    #[serde(default)]
    pub format: Format,
    /// The stations.
    #[serde(default, rename = "station")]
    pub stations: Vec<StationConfig>,
    /// Whether the background earthquakes happen (on by default).
    #[serde(default = "yes")]
    pub quakes: bool,
    /// Their source amplitudes times this (1 by default; below 1 for weak quakes).
    #[serde(default = "one")]
    pub quake_scale: f64,
    /// Whether pressure fronts cross the network (off by default, so that the `LDO`
    /// samples stay what they always were).
    #[serde(default)]
    pub fronts: bool,
}

fn yes() -> bool {
    true
}

fn one() -> f64 {
    1.0
}

fn default_network() -> String {
    "XX".to_owned()
}

fn default_packet_seconds() -> f64 {
    1.0
}

/// Default seismic channels: broadband at 40 sps.
pub fn seismic_channels() -> Vec<ChannelConfig> {
    ["BHZ", "BHN", "BHE"]
        .map(|chan| ChannelConfig {
            chan: chan.to_owned(),
            rate: 40,
        })
        .to_vec()
}

/// Default pressure channels: barometer at 1 sps, infrasound at 20 sps.
pub fn pressure_channels() -> Vec<ChannelConfig> {
    vec![
        ChannelConfig {
            chan: "LDO".to_owned(),
            rate: 1,
        },
        ChannelConfig {
            chan: "BDF".to_owned(),
            rate: 20,
        },
    ]
}

impl SimConfig {
    /// `seismic` stations `STA01..` and `pressure` stations `PRS01..` in `network`.
    pub fn network(
        network: &str,
        seismic: usize,
        pressure: usize,
        packet_seconds: f64,
    ) -> SimConfig {
        let mut stations = Vec::new();
        for i in 1..=seismic {
            stations.push(StationConfig {
                name: format!("STA{i:02}"),
                kind: Kind::Seismic,
                channels: Vec::new(),
                x_km: None,
            });
        }
        for i in 1..=pressure {
            stations.push(StationConfig {
                name: format!("PRS{i:02}"),
                kind: Kind::Pressure,
                channels: Vec::new(),
                x_km: None,
            });
        }
        SimConfig {
            network: network.to_owned(),
            packet_seconds,
            interval: None,
            count: None,
            format: Format::Mgenc,
            stations,
            quakes: true,
            quake_scale: 1.0,
            fronts: false,
        }
    }

    /// Reads a TOML config.
    pub fn from_toml(text: &str) -> Result<SimConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_config_reads() {
        let c = SimConfig::from_toml(
            r#"
            network = "ZZ"
            packet_seconds = 2.0
            count = 5
            format = "seed"
            [[station]]
            name = "A1"
            kind = "seismic"
            channels = [{ chan = "HHZ", rate = 100 }]
            [[station]]
            name = "P1"
            kind = "pressure"
            "#,
        )
        .unwrap();
        assert_eq!(c.network, "ZZ");
        assert_eq!(c.count, Some(5));
        assert_eq!(c.format, Format::Seed);
        assert_eq!(c.stations[0].channels[0].rate, 100);
        assert!(c.stations[1].channels.is_empty());
        assert!(SimConfig::from_toml("bogus = 1").is_err());
    }
}
