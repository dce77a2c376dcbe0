//! The sensor network simulator behind `orbsim`: seismic and pressure stations with
//! realistic, fully deterministic signals.
//!
//! - [`config`]: [`SimConfig`], stations, channels, rates, packet length (TOML or flags).
//! - [`rng`]: splitmix64, as a stream and as a hash of coordinates.
//! - [`signal`]: the signal models (noise, microseism, earthquakes, barometric drift,
//!   infrasound bursts).
//!
//! Every sample is a pure function of (seed, station, channel, sample index), so
//! [`Simulator::channels`] recomputes any packet exactly, which is how tests check
//! what went through a server.

use formats::meta::{ChannelEpoch, Inventory, Sensitivity, StationEpoch};
use formats::payload::{self, Channel, Steim};
use formats::{Packet, SrcName, Time};

pub mod config;
pub mod events;
pub mod rng;
pub mod signal;

pub use config::{ChannelConfig, Format, Kind, SimConfig, StationConfig};
pub use events::{Arrival, Event, EventKind};

/// Kilometres per degree of longitude at 45 degrees north, where the line of stations
/// runs east.
const KM_PER_DEG_LON: f64 = 111.32 * std::f64::consts::FRAC_1_SQRT_2;

/// Longitude of a point `x_km` east of 45 N 10 E along the line of stations, to the
/// microdegree (about 10 cm), as station lists give positions.
pub fn longitude(x_km: f64) -> f64 {
    ((10.0 + x_km / KM_PER_DEG_LON) * 1e6).round() / 1e6
}

/// Why a simulation cannot be set up or a packet built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The configuration is inconsistent.
    #[error("bad simulator config: {0}")]
    Config(String),
    /// Encoding a payload failed.
    #[error("cannot encode station {station}: {source}")]
    Payload {
        /// The station.
        station: String,
        /// What went wrong.
        source: payload::PayloadError,
    },
}

/// A station as simulated: its config, resolved channels and position.
#[derive(Debug, Clone)]
pub struct Station {
    /// Station code.
    pub name: String,
    /// What it measures.
    pub kind: Kind,
    /// Its channels (never empty).
    pub channels: Vec<ChannelConfig>,
    /// Position, km.
    pub x_km: f64,
}

/// The simulation: config, seed and start time; see the module docs.
#[derive(Debug, Clone)]
pub struct Simulator {
    config: SimConfig,
    stations: Vec<Station>,
    seed: u64,
    start: Time,
    packet_us: i64,
}

impl Simulator {
    /// Checks `config` and sets up the stations. `start` is the time of the first
    /// sample of packet 0.
    pub fn new(config: SimConfig, seed: u64, start: Time) -> Result<Simulator, SimError> {
        let bad = |m: String| Err(SimError::Config(m));
        let ps = config.packet_seconds;
        if !(ps > 0.0 && ps <= 3600.0) {
            return bad(format!("packet_seconds {ps} must be in (0, 3600]"));
        }
        if config.stations.is_empty() {
            return bad(
                "no stations: give --seismic or --pressure, or [[station]] in the config".into(),
            );
        }
        let qs = config.quake_scale;
        if !(qs.is_finite() && qs >= 0.0) {
            return bad(format!(
                "quake_scale {qs} must be a finite number at least 0"
            ));
        }
        let packet_us = (ps * 1e6).round() as i64;
        let mut stations = Vec::new();
        for (i, s) in config.stations.iter().enumerate() {
            let channels = if s.channels.is_empty() {
                match s.kind {
                    Kind::Seismic => config::seismic_channels(),
                    Kind::Pressure => config::pressure_channels(),
                }
            } else {
                s.channels.clone()
            };
            for c in &channels {
                let n = ps * f64::from(c.rate);
                if c.rate == 0 || n.fract() != 0.0 || n > 65_535.0 {
                    return bad(format!(
                        "station {} channel {}: {} sps x {ps} s is not a whole number of samples up to 65535",
                        s.name, c.chan, c.rate
                    ));
                }
            }
            stations.push(Station {
                name: s.name.clone(),
                kind: s.kind,
                channels,
                x_km: s.x_km.unwrap_or(25.0 * i as f64),
            });
        }
        Ok(Simulator {
            config,
            stations,
            seed,
            start,
            packet_us,
        })
    }

    /// The stations.
    pub fn stations(&self) -> &[Station] {
        &self.stations
    }

    /// The config.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The metadata of the simulated network, as StationXML would give it
    /// (`orbsim --stationxml`): stations along a line east from 45 N 10 E, `x_km`
    /// apart as the signals are; seismic components oriented by their last letter (Z
    /// up, N north, E east) with the sensitivity that makes counts nm/s (calib 1);
    /// pressure channels with the sensitivity their calib gives, in hPa or Pa.
    pub fn inventory(&self) -> Inventory {
        let stations = self
            .stations
            .iter()
            .enumerate()
            .map(|(i, st)| StationEpoch {
                net: self.config.network.clone(),
                sta: st.name.clone(),
                start: None,
                end: None,
                latitude: 45.0,
                longitude: longitude(st.x_km),
                elevation: 100.0 + 10.0 * i as f64,
                site: Some(format!(
                    "orbsim {} station {}",
                    match st.kind {
                        Kind::Seismic => "seismic",
                        Kind::Pressure => "pressure",
                    },
                    st.name
                )),
                channels: st
                    .channels
                    .iter()
                    .map(|c| {
                        let (segtype, calib) = signal::units(&c.chan);
                        let (per_count, units) = match segtype {
                            // calib is nm/s per count: counts per m/s is 1e9 / calib.
                            'V' => (1e9, "m/s"),
                            'P' => (1.0, "hPa"),
                            _ => (1.0, "Pa"),
                        };
                        let (azimuth, dip) = match (segtype, c.chan.chars().last()) {
                            ('V', Some('Z')) => (Some(0.0), Some(-90.0)),
                            ('V', Some('N')) => (Some(0.0), Some(0.0)),
                            ('V', Some('E')) => (Some(90.0), Some(0.0)),
                            _ => (None, None),
                        };
                        ChannelEpoch {
                            loc: String::new(),
                            chan: c.chan.clone(),
                            start: None,
                            end: None,
                            azimuth,
                            dip,
                            sample_rate: Some(f64::from(c.rate)),
                            sensitivity: Some(Sensitivity {
                                value: per_count / calib,
                                frequency: Some(1.0),
                                units: units.to_owned(),
                            }),
                        }
                    })
                    .collect(),
            })
            .collect();
        Inventory { stations }
    }

    /// Earthquake amplitudes times this: 0 with quakes off.
    pub fn quake_scale(&self) -> f64 {
        if self.config.quakes {
            self.config.quake_scale
        } else {
            0.0
        }
    }

    /// The seed of the signals.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Time of the first sample of round 0.
    pub fn start(&self) -> Time {
        self.start
    }

    /// Time of the first sample of round `k`.
    pub fn packet_time(&self, k: u64) -> Time {
        Time::from_micros(self.start.as_micros() + self.packet_us * k as i64)
    }

    /// The channels of station `station` in round `k`, sample for sample.
    pub fn channels(&self, station: usize, k: u64) -> Vec<Channel> {
        let st = &self.stations[station];
        let t0 = self.packet_time(k);
        st.channels
            .iter()
            .enumerate()
            .map(|(ci, c)| {
                let n = (self.config.packet_seconds * f64::from(c.rate)).round() as u64;
                let first = k * n;
                let model = signal::Model::new(self.seed, station as u64, ci as u64, st, c)
                    .events(self.quake_scale(), self.config.fronts);
                let samples = (first..first + n).map(|i| model.sample(i)).collect();
                let (segtype, calib) = signal::units(&c.chan);
                Channel {
                    net: self.config.network.clone(),
                    sta: st.name.clone(),
                    chan: c.chan.clone(),
                    loc: String::new(),
                    start: t0,
                    samprate: f64::from(c.rate),
                    calib,
                    calper: 1.0,
                    segtype,
                    samples,
                }
            })
            .collect()
    }

    /// The packets of station `station` in round `k`: one MGENC packet, or one SEED
    /// packet per channel.
    pub fn packets(&self, station: usize, k: u64) -> Result<Vec<Packet>, SimError> {
        let st = &self.stations[station];
        let channels = self.channels(station, k);
        let time = self.packet_time(k);
        let enc_err = |source| SimError::Payload {
            station: st.name.clone(),
            source,
        };
        let name =
            |s: String| SrcName::new(&s).map_err(|e| SimError::Config(format!("srcname {s}: {e}")));
        match self.config.format {
            Format::Mgenc => {
                let rate = st.channels.iter().map(|c| c.rate).max().unwrap_or(0);
                let sn = name(format!("{}_{}/MGENC/M{rate}", self.config.network, st.name))?;
                let payload = payload::mgenc::encode(&channels).map_err(enc_err)?;
                Ok(vec![Packet::new(sn, time, payload)])
            }
            Format::Seed => channels
                .iter()
                .map(|c| {
                    let sn = name(format!("{}_{}_{}/SEED", c.net, c.sta, c.chan))?;
                    let payload = payload::seed::encode(c, Steim::Two).map_err(enc_err)?;
                    Ok(Packet::new(sn, time, payload))
                })
                .collect(),
        }
    }

    /// All packets of round `k`, station by station.
    pub fn round(&self, k: u64) -> Result<Vec<Packet>, SimError> {
        let mut out = Vec::new();
        for s in 0..self.stations.len() {
            out.extend(self.packets(s, k)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(format: Format) -> Simulator {
        let mut c = SimConfig::network("XX", 2, 1, 1.0);
        c.format = format;
        Simulator::new(c, 42, Time::from_micros(1_795_341_600_000_000)).unwrap()
    }

    #[test]
    fn packets_decode_to_the_channels() {
        for format in [Format::Mgenc, Format::Seed] {
            let s = sim(format);
            for k in [0, 7] {
                for st in 0..s.stations().len() {
                    let want = s.channels(st, k);
                    let mut got = Vec::new();
                    for p in s.packets(st, k).unwrap() {
                        got.extend(payload::decode(&p.srcname, p.time, &p.payload).unwrap());
                    }
                    assert_eq!(got.len(), want.len());
                    for (g, w) in got.iter().zip(&want) {
                        assert_eq!(
                            (&g.chan, &g.samples, g.start),
                            (&w.chan, &w.samples, w.start)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn srcnames_and_rates() {
        let s = sim(Format::Mgenc);
        let r = s.round(0).unwrap();
        let names: Vec<&str> = r.iter().map(|p| p.srcname.as_str()).collect();
        assert_eq!(
            names,
            [
                "XX_STA01/MGENC/M40",
                "XX_STA02/MGENC/M40",
                "XX_PRS01/MGENC/M20"
            ]
        );
        let ch = s.channels(2, 3);
        assert_eq!((ch[0].samples.len(), ch[1].samples.len()), (1, 20));
        assert_eq!(s.packet_time(3), Time::from_micros(1_795_341_603_000_000));
        let seed = sim(Format::Seed).round(0).unwrap();
        assert_eq!(seed[0].srcname.as_str(), "XX_STA01_BHZ/SEED");
        assert_eq!(seed.len(), 8);
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        let a = sim(Format::Mgenc).channels(0, 5);
        assert_eq!(a, sim(Format::Mgenc).channels(0, 5));
        let c = SimConfig::network("XX", 2, 1, 1.0);
        let other = Simulator::new(c, 43, Time::from_micros(1_795_341_600_000_000)).unwrap();
        assert_ne!(a, other.channels(0, 5));
    }

    #[test]
    fn bad_configs_are_refused() {
        let c = SimConfig::network("XX", 0, 0, 1.0);
        assert!(Simulator::new(c, 1, Time::from_micros(0)).is_err());
        let c = SimConfig::network("XX", 1, 0, 0.01);
        assert!(Simulator::new(c, 1, Time::from_micros(0)).is_err());
    }

    /// The StationXML orbsim writes describes what it sends: every station and
    /// channel, each sensitivity the inverse of the channel's calib in its units, and
    /// it reads back as written.
    #[test]
    fn inventory_matches_the_packets() {
        let sim =
            Simulator::new(SimConfig::network("XX", 2, 1, 1.0), 1, Time::from_micros(0)).unwrap();
        let inv = sim.inventory();
        let xml = formats::meta::stationxml::write(&inv, "orbsim", Time::from_micros(0));
        assert_eq!(formats::meta::stationxml::parse(&xml).unwrap(), inv);
        for st in 0..sim.stations().len() {
            for c in sim.channels(st, 0) {
                let meta = inv.station(&c.net, &c.sta, c.start).unwrap();
                let m = meta.channel(&c.loc, &c.chan).unwrap();
                let sens = m.sensitivity.as_ref().unwrap();
                let per_unit = if c.segtype == 'V' { 1e9 } else { 1.0 };
                assert!(
                    (sens.value * c.calib - per_unit).abs() < 1e-9 * per_unit,
                    "{}",
                    c.chan
                );
                assert_eq!(m.sample_rate, Some(c.samprate));
                if c.chan == "BHZ" {
                    assert_eq!((m.azimuth, m.dip), (Some(0.0), Some(-90.0)));
                }
            }
        }
        let lon = |i: usize| inv.stations[i].longitude;
        assert!(lon(0) < lon(1) && lon(1) < lon(2));
    }
}
