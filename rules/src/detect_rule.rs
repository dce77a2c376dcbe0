//! [`DetectRule`]: run STA/LTA or windowed-statistic detectors (and optionally
//! network coincidence) on an orb's waveform packets and put the triggers back into the same orb as packets;
//! [`DetPayload`] and [`EventPayload`], those packets' JSON payloads; [`DetectState`],
//! what a rule keeps on disk to resume exactly once.
//!
//! The rule fields are documented in docs/RULES.md, the packets and the state in
//! docs/DETECTION.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use formats::{SrcName, Time};
use orbclient::OrbAddr;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::detect::{
    BandPassConfig, ChannelDetector, Coincidence, Detector, DetectorConfig, Direction, OnsetConfig,
    Scale, StaLtaConfig, StaLtaKind, Statistic, WindowConfig, WindowDetector, WindowError,
};
use crate::reap_rule::Start;
use crate::state::{load_rule_state, save_rule_state, StateError};
use crate::SrcSelect;

/// The srcname type of trigger packets: `NET_STA_CHAN[_LOC]/DET`.
pub const DET_SUFFIX: &str = "DET";
/// The srcname type of network-event packets: `NET/EVENT`.
pub const EVENT_SUFFIX: &str = "EVENT";
/// Whether a srcname is a detection packet, never read as waveforms: its type is
/// `DET` or `EVENT`, or starts with `DET` (a replay's `--put` type, like `DETTUNE`).
pub fn is_detection(srcname: &SrcName) -> bool {
    srcname
        .suffix()
        .is_some_and(|s| s == EVENT_SUFFIX || s.starts_with(DET_SUFFIX))
}

/// Whether `t` can be a replay's `--put` srcname type: `DET` and letters, digits or
/// `_` (so that no detector reads it as waveforms), not `DET` itself.
pub fn replay_type_ok(t: &str) -> bool {
    t.len() > DET_SUFFIX.len()
        && t.len() <= 16
        && t.starts_with(DET_SUFFIX)
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// One `[[detect]]` rule, checked; see docs/RULES.md for each field.
#[derive(Debug, Clone, Serialize)]
pub struct DetectRule {
    /// Unique name: logs, payloads, default state file.
    pub name: String,
    /// The orb read, and written back to, as written.
    pub orb: String,
    /// Its address.
    #[serde(skip)]
    pub addr: OrbAddr,
    /// Select expression as written (`None`: all).
    pub select: Option<String>,
    /// Reject expression as written.
    pub reject: Option<String>,
    /// Select and reject, compiled.
    #[serde(skip)]
    pub filter: SrcSelect,
    /// Channel codes taken (whole match), as written.
    pub channels: String,
    /// Compiled, anchored.
    #[serde(skip)]
    pub channels_re: Regex,
    /// The characteristic function: STA/LTA or a windowed statistic.
    pub detector: DetectorRule,
    /// Trigger-on threshold.
    pub on: f64,
    /// Trigger-off threshold.
    pub off: f64,
    /// Band-pass edges (Hz), if any.
    pub bandpass: Option<[f64; 2]>,
    /// Filter corners (with `bandpass`).
    pub corners: usize,
    /// Shortest trigger reported, seconds.
    pub min_duration: f64,
    /// No new trigger this long after one ends, seconds.
    pub holdoff: f64,
    /// Longest trigger, seconds (`None`: no limit).
    pub max_len: Option<f64>,
    /// Network coincidence, if any.
    pub coincidence: Option<CoincidenceRule>,
    /// Where to start without state.
    pub start: Start,
    /// State file (resolved).
    pub state: PathBuf,
}

/// What a detect rule computes on each channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "detector", rename_all = "lowercase")]
pub enum DetectorRule {
    /// STA/LTA (`sta`, `lta`, `method`).
    StaLta {
        /// Classic or recursive STA/LTA.
        method: StaLtaKind,
        /// Short-term window, seconds.
        sta: f64,
        /// Long-term window, seconds.
        lta: f64,
    },
    /// A windowed statistic against a running baseline (`statistic`, `window`,
    /// `baseline`, ...).
    Window(WindowRule),
}

/// The windowed-statistic fields of a detect rule, checked.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowRule {
    /// Mean, RMS, min, max or rate of change.
    pub statistic: Statistic,
    /// The window, seconds.
    pub window: f64,
    /// Time constant of the baseline, seconds.
    pub baseline: f64,
    /// Thresholds in the channel's units or in standard deviations.
    pub scale: Scale,
    /// Rises, falls or both.
    pub direction: Direction,
    /// Floor of the baseline's standard deviation, units (with `sigmas`).
    pub min_std: f64,
    /// Whether the baseline stops learning during an anomaly.
    pub freeze: bool,
}

/// A `[detect.coincidence]` table, checked.
#[derive(Debug, Clone, Serialize)]
pub struct CoincidenceRule {
    /// Least coincidence sum that makes an event.
    pub threshold: f64,
    /// How far after an event's end a trigger may start and still join, seconds.
    pub window: f64,
    /// Stations (`NET_STA`) taking part (`None`: every station the rule reads).
    pub stations: Option<Vec<String>>,
    /// Weights by station (`NET_STA`); others weigh 1.
    pub weights: BTreeMap<String, f64>,
    /// Wall-clock seconds after which a channel that has sent nothing is left out of
    /// the events still open, so that a silent station does not hold them back.
    pub timeout: f64,
}

/// Default [`CoincidenceRule::timeout`], seconds.
pub const DEFAULT_COINCIDENCE_TIMEOUT: f64 = 30.0;

impl CoincidenceRule {
    /// Whether station `net_sta` takes part, and its weight.
    pub fn weight(&self, net_sta: &str) -> Option<f64> {
        if let Some(list) = &self.stations {
            if !list.iter().any(|s| s == net_sta) {
                return None;
            }
        }
        Some(self.weights.get(net_sta).copied().unwrap_or(1.0))
    }
}

impl DetectRule {
    /// The trigger options at `rate` samples/s.
    fn onset_config(&self, rate: f64) -> OnsetConfig {
        let samples = |s: f64| (s * rate).round() as u64;
        OnsetConfig {
            min_duration: samples(self.min_duration),
            hold_off: samples(self.holdoff),
            max_len: self.max_len.map(samples),
            ..OnsetConfig::obspy(self.on, self.off)
        }
    }

    /// The STA/LTA detector of one channel at `rate` samples/s (`None` for a
    /// windowed-statistic rule); the error names the rule field (band edges above
    /// Nyquist, windows under one sample).
    pub fn detector_config(&self, rate: f64) -> Option<Result<DetectorConfig, WindowError>> {
        match self.detector {
            DetectorRule::StaLta { method, sta, lta } => {
                Some(self.stalta_config(method, sta, lta, rate))
            }
            DetectorRule::Window(_) => None,
        }
    }

    /// The windowed-statistic detector of one channel at `rate` samples/s (`None` for
    /// an STA/LTA rule); the error names the rule field (a window under one sample, or
    /// under two for a rate of change).
    pub fn window_config(&self, rate: f64) -> Option<Result<WindowConfig, WindowError>> {
        match self.detector {
            DetectorRule::Window(w) => Some(self.windowed_config(w, rate)),
            DetectorRule::StaLta { .. } => None,
        }
    }

    /// A fresh detector for one channel at `rate` samples/s; the error names the
    /// rule field that does not work at that rate.
    pub fn detector(&self, rate: f64) -> Result<Detector, WindowError> {
        match self.detector {
            DetectorRule::StaLta { method, sta, lta } => Ok(Detector::StaLta(
                ChannelDetector::new(self.stalta_config(method, sta, lta, rate)?)?,
            )),
            DetectorRule::Window(w) => Ok(Detector::Window(WindowDetector::new(
                self.windowed_config(w, rate)?,
            )?)),
        }
    }

    fn stalta_config(
        &self,
        method: StaLtaKind,
        sta: f64,
        lta: f64,
        rate: f64,
    ) -> Result<DetectorConfig, WindowError> {
        let config = DetectorConfig {
            filter: self.bandpass.map(|[f1, f2]| BandPassConfig {
                freqmin: f1,
                freqmax: f2,
                corners: self.corners,
                sample_rate: rate,
            }),
            stalta: StaLtaConfig::from_seconds(method, sta, lta, rate)?,
            onset: self.onset_config(rate),
        };
        ChannelDetector::new(config)?;
        Ok(config)
    }

    fn windowed_config(&self, w: WindowRule, rate: f64) -> Result<WindowConfig, WindowError> {
        let mut config = WindowConfig::from_seconds(
            w.statistic,
            w.window,
            w.baseline,
            rate,
            w.scale,
            self.on,
            self.off,
        )?;
        config.direction = w.direction;
        config.min_std = w.min_std;
        config.freeze = w.freeze;
        config.onset = self.onset_config(rate);
        config.validate()?;
        Ok(config)
    }

    /// The rule's parameters as trigger payloads repeat them.
    pub fn params(&self) -> DetectParams {
        match self.detector {
            DetectorRule::StaLta { method, sta, lta } => DetectParams::StaLta(StaLtaParams {
                method,
                sta,
                lta,
                on: self.on,
                off: self.off,
                bandpass: self.bandpass,
                corners: self.bandpass.map(|_| self.corners),
            }),
            DetectorRule::Window(w) => DetectParams::Window(WindowParams {
                statistic: w.statistic,
                window: w.window,
                baseline: w.baseline,
                scale: w.scale,
                direction: w.direction,
                on: self.on,
                off: self.off,
            }),
        }
    }

    /// One line saying what the rule does, for `--check`.
    pub fn explain(&self) -> String {
        let what = match self.detector {
            DetectorRule::StaLta { method, sta, lta } => {
                let method = match method {
                    StaLtaKind::Classic => "classic",
                    StaLtaKind::Recursive => "recursive",
                };
                let band = self.bandpass.map_or(String::new(), |[f1, f2]| {
                    format!(" after a {f1}-{f2} Hz band-pass ({} corners)", self.corners)
                });
                format!(
                    "{method} STA/LTA ({sta} s / {lta} s){band}: on at a ratio of {}, off below {}",
                    self.on, self.off
                )
            }
            DetectorRule::Window(w) => {
                let stat = match w.statistic {
                    Statistic::Mean => "mean",
                    Statistic::Rms => "RMS",
                    Statistic::Min => "minimum",
                    Statistic::Max => "maximum",
                    Statistic::Rate => "rate of change (units/s)",
                };
                let unit = match w.scale {
                    Scale::Units => "units",
                    Scale::Sigmas => "standard deviations",
                };
                let dir = match w.direction {
                    Direction::Up => "above",
                    Direction::Down => "below",
                    Direction::Both => "above or below",
                };
                let learn = if w.freeze {
                    "frozen during a trigger"
                } else {
                    "always learning"
                };
                format!(
                    "{stat} over {} s against a {} s baseline ({learn}): on at {} {unit} {dir} it, off under {}",
                    w.window, w.baseline, self.on, self.off
                )
            }
        };
        let mut line = format!(
            "detect rule {}: channels {} of {}: {what}",
            self.name, self.channels, self.orb
        );
        if self.min_duration > 0.0 || self.holdoff > 0.0 {
            line.push_str(&format!(
                "; triggers of at least {} s, none within {} s of the last",
                self.min_duration, self.holdoff
            ));
        }
        if let Some(c) = &self.coincidence {
            line.push_str(&format!(
                "; a network event when stations weighing {} trigger within {} s",
                c.threshold, c.window
            ));
        }
        line
    }
}

/// The detector parameters, as repeated in every trigger payload (flattened into it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DetectParams {
    /// An STA/LTA rule's.
    StaLta(StaLtaParams),
    /// A windowed-statistic rule's.
    Window(WindowParams),
}

/// An STA/LTA rule's parameters in a trigger payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaLtaParams {
    /// `classic` or `recursive`.
    pub method: StaLtaKind,
    /// Short-term window, seconds.
    pub sta: f64,
    /// Long-term window, seconds.
    pub lta: f64,
    /// Trigger-on threshold.
    pub on: f64,
    /// Trigger-off threshold.
    pub off: f64,
    /// Band-pass edges, Hz (`null`: no filter).
    pub bandpass: Option<[f64; 2]>,
    /// Filter corners (`null`: no filter).
    pub corners: Option<usize>,
}

/// A windowed-statistic rule's parameters in a trigger payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowParams {
    /// `mean`, `rms`, `min`, `max` or `rate`.
    pub statistic: Statistic,
    /// Window, seconds.
    pub window: f64,
    /// Baseline time constant, seconds.
    pub baseline: f64,
    /// `units` or `sigmas`.
    pub scale: Scale,
    /// `up`, `down` or `both`.
    pub direction: Direction,
    /// Trigger-on threshold (in `scale`).
    pub on: f64,
    /// Trigger-off threshold.
    pub off: f64,
}

/// Whether a trigger packet opens or closes a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetKind {
    /// The trigger has started.
    On,
    /// The trigger has ended.
    Off,
}

/// The JSON payload of a `NET_STA_CHAN[_LOC]/DET` packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetPayload {
    /// The rule that made it.
    pub rule: String,
    /// `on` or `off`.
    pub kind: DetKind,
    /// The channel: `NET_STA_CHAN[_LOC]`.
    pub channel: String,
    /// Onset: time of the first sample at or above `on`, ISO 8601 UTC.
    pub onset: String,
    /// The same, epoch seconds (microsecond precision).
    pub onset_epoch: f64,
    /// The same, microseconds since the epoch (the dedupe key).
    pub onset_us: i64,
    /// `off`: time of the trigger's last sample, ISO 8601 UTC.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub end: Option<String>,
    /// `off`: `end - onset`, seconds.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub duration: Option<f64>,
    /// The characteristic function at the onset (`on`), or its highest over the
    /// trigger (`off`): the STA/LTA ratio, or the windowed statistic's departure from
    /// its baseline (in units or standard deviations, as the rule's `scale`).
    pub ratio: f64,
    /// `off`: time of the highest ratio, ISO 8601 UTC.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub peak_time: Option<String>,
    /// The channel's sample rate.
    pub samprate: f64,
    /// The detector.
    #[serde(flatten)]
    pub params: DetectParams,
}

/// One station of a network event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMember {
    /// The channel: `NET_STA_CHAN[_LOC]`.
    pub channel: String,
    /// The station: `NET_STA`.
    pub station: String,
    /// Its trigger's onset, ISO 8601 UTC.
    pub onset: String,
    /// The same, epoch seconds.
    pub onset_epoch: f64,
    /// Its trigger's duration, seconds.
    pub duration: f64,
    /// Its highest STA/LTA.
    pub peak: f64,
}

/// The JSON payload of a `NET/EVENT` packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventPayload {
    /// The rule that made it.
    pub rule: String,
    /// First onset of all members, ISO 8601 UTC.
    pub time: String,
    /// The same, epoch seconds.
    pub time_epoch: f64,
    /// The same, microseconds (the dedupe key).
    pub time_us: i64,
    /// From the first onset to the last member's end, seconds.
    pub duration: f64,
    /// Sum of the members' weights.
    pub coincidence_sum: f64,
    /// The rule's threshold.
    pub threshold: f64,
    /// Stations (`NET_STA`), in order of onset.
    pub stations: Vec<String>,
    /// Each member, in order of onset.
    pub members: Vec<EventMember>,
}

/// What identifies a detection packet, for never putting one twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DetectionKey {
    /// A trigger: channel, on/off, onset in microseconds.
    Trigger(String, DetKind, i64),
    /// A network event: first onset in microseconds.
    Event(i64),
}

impl DetectionKey {
    /// The key of a detection packet made by rule `rule`, `None` for any other packet.
    pub fn of_packet(rule: &str, srcname: &SrcName, payload: &[u8]) -> Option<DetectionKey> {
        match srcname.suffix()? {
            DET_SUFFIX => {
                let p: DetPayload = serde_json::from_slice(payload).ok()?;
                (p.rule == rule).then_some(DetectionKey::Trigger(p.channel, p.kind, p.onset_us))
            }
            EVENT_SUFFIX => {
                let p: EventPayload = serde_json::from_slice(payload).ok()?;
                (p.rule == rule).then_some(DetectionKey::Event(p.time_us))
            }
            _ => None,
        }
    }
}

/// Epoch seconds of a time, for payloads.
pub fn epoch(t: Time) -> f64 {
    t.as_micros() as f64 / 1e6
}

/// Version of the detector state file layout.
pub const DETECT_STATE_VERSION: u32 = 1;

/// One channel's saved detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelState {
    /// Sample rate the detector was made for.
    pub samprate: f64,
    /// Time of the detector's sample 0 (indices count from it).
    pub origin: Time,
    /// Samples seen (the next sample's index).
    pub next: u64,
    /// The detector.
    pub detector: Detector,
}

impl ChannelState {
    /// Time of sample index `i`.
    pub fn time_of(&self, i: u64) -> Time {
        let us = (i as f64 * 1e6 / self.samprate).round() as i64;
        self.origin.checked_add_micros(us).unwrap_or(self.origin)
    }
}

/// A detect rule's progress: what it has read and its detectors, saved atomically
/// once the trigger packets of everything read are acknowledged by the orb.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectState {
    /// [`DETECT_STATE_VERSION`].
    pub version: u32,
    /// The rule's name, to catch a state file shared by mistake.
    pub rule: String,
    /// Every packet up to this pktid has been run through the detectors.
    pub pktid: Option<u64>,
    /// Time of that packet.
    pub time: Option<Time>,
    /// Every detection packet put after this state was saved has a larger pktid:
    /// on restart the packets after it are read to find what was already put.
    pub out_mark: Option<u64>,
    /// Detectors by channel (`NET_STA_CHAN[_LOC]`).
    pub channels: BTreeMap<String, ChannelState>,
    /// Network coincidence state.
    pub coincidence: Option<Coincidence>,
    /// Triggers and events put so far.
    pub emitted: u64,
}

impl DetectState {
    /// A fresh state for `rule`.
    pub fn new(rule: &str) -> DetectState {
        DetectState {
            version: DETECT_STATE_VERSION,
            rule: rule.to_owned(),
            ..DetectState::default()
        }
    }

    /// Reads the state at `path`; a missing file is a fresh state.
    pub fn load(path: &Path, rule: &str) -> Result<DetectState, StateError> {
        Ok(
            load_rule_state(path, rule, DETECT_STATE_VERSION, |s: &DetectState| {
                (s.version, s.rule.as_str())
            })?
            .unwrap_or_else(|| DetectState::new(rule)),
        )
    }

    /// Replaces the state file atomically.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        save_rule_state(path, self, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::TriggerEvent;

    #[test]
    fn state_round_trips_detectors_to_the_bit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        assert_eq!(DetectState::load(&p, "r").unwrap(), DetectState::new("r"));
        let config = DetectorConfig {
            filter: Some(BandPassConfig {
                freqmin: 1.0,
                freqmax: 8.0,
                corners: 4,
                sample_rate: 40.0,
            }),
            stalta: StaLtaConfig::from_seconds(StaLtaKind::Recursive, 1.0, 10.0, 40.0).unwrap(),
            onset: OnsetConfig::obspy(3.0, 1.5),
        };
        let mut d = ChannelDetector::new(config).unwrap();
        let x: Vec<f64> = (0..1000).map(|i| ((i * 7919) % 13) as f64 - 6.0).collect();
        let mut ev: Vec<TriggerEvent> = vec![];
        d.push(&x, &mut ev);
        let mut s = DetectState::new("r");
        s.pktid = Some(7);
        s.channels.insert(
            "XX_A_BHZ".into(),
            ChannelState {
                samprate: 40.0,
                origin: Time::from_micros(1_000_000),
                next: 1000,
                detector: Detector::StaLta(d),
            },
        );
        s.save(&p).unwrap();
        let back = DetectState::load(&p, "r").unwrap();
        // (The detector's scratch buffer is not state, so compare what is saved.)
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            serde_json::to_string(&s).unwrap()
        );
        assert_eq!(
            back.channels["XX_A_BHZ"].time_of(40),
            Time::from_micros(2_000_000)
        );
        let err = DetectState::load(&p, "other").unwrap_err();
        assert!(err.to_string().contains("belongs to rule"), "{err}");
    }

    /// A windowed-statistic rule's trigger payload reads back with its parameters, so
    /// its key is found again on restart; a state file holding a bare STA/LTA
    /// detector (written before the windowed kind existed) still reads.
    #[test]
    fn windowed_payloads_and_old_states_read_back() {
        let params = DetectParams::Window(WindowParams {
            statistic: Statistic::Rms,
            window: 1.0,
            baseline: 60.0,
            scale: Scale::Sigmas,
            direction: Direction::Up,
            on: 5.0,
            off: 2.0,
        });
        let p = DetPayload {
            rule: "w".into(),
            kind: DetKind::Off,
            channel: "XX_P_BDF".into(),
            onset: "x".into(),
            onset_epoch: 2.0,
            onset_us: 2_000_000,
            end: Some("y".into()),
            duration: Some(3.0),
            ratio: 9.5,
            peak_time: Some("z".into()),
            samprate: 20.0,
            params,
        };
        let bytes = serde_json::to_vec(&p).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            (v["statistic"].as_str(), v["scale"].as_str()),
            (Some("rms"), Some("sigmas"))
        );
        assert!(v.get("sta").is_none());
        assert_eq!(serde_json::from_slice::<DetPayload>(&bytes).unwrap(), p);
        let det = SrcName::new("XX_P_BDF/DET").unwrap();
        assert_eq!(
            DetectionKey::of_packet("w", &det, &bytes),
            Some(DetectionKey::Trigger(
                "XX_P_BDF".into(),
                DetKind::Off,
                2_000_000
            ))
        );

        let config = DetectorConfig {
            filter: None,
            stalta: StaLtaConfig::from_seconds(StaLtaKind::Classic, 1.0, 10.0, 40.0).unwrap(),
            onset: OnsetConfig::obspy(3.0, 1.5),
        };
        let bare = serde_json::to_string(&ChannelDetector::new(config).unwrap()).unwrap();
        let d: Detector = serde_json::from_str(&bare).unwrap();
        assert!(matches!(d, Detector::StaLta(_)));
        let w =
            WindowConfig::from_seconds(Statistic::Mean, 1.0, 10.0, 20.0, Scale::Units, 2.0, 1.0)
                .unwrap();
        let text =
            serde_json::to_string(&Detector::Window(WindowDetector::new(w).unwrap())).unwrap();
        let d: Detector = serde_json::from_str(&text).unwrap();
        assert!(matches!(d, Detector::Window(_)));
    }

    #[test]
    fn keys_come_only_from_this_rules_packets() {
        let params = DetectParams::StaLta(StaLtaParams {
            method: StaLtaKind::Recursive,
            sta: 1.0,
            lta: 10.0,
            on: 3.0,
            off: 1.5,
            bandpass: None,
            corners: None,
        });
        let p = DetPayload {
            rule: "a".into(),
            kind: DetKind::On,
            channel: "XX_A_BHZ".into(),
            onset: "x".into(),
            onset_epoch: 1.0,
            onset_us: 1_000_000,
            end: None,
            duration: None,
            ratio: 3.5,
            peak_time: None,
            samprate: 40.0,
            params,
        };
        let bytes = serde_json::to_vec(&p).unwrap();
        let det = SrcName::new("XX_A_BHZ/DET").unwrap();
        assert_eq!(
            DetectionKey::of_packet("a", &det, &bytes),
            Some(DetectionKey::Trigger(
                "XX_A_BHZ".into(),
                DetKind::On,
                1_000_000
            ))
        );
        assert_eq!(DetectionKey::of_packet("b", &det, &bytes), None);
        let wf = SrcName::new("XX_A_BHZ/GENC").unwrap();
        assert_eq!(DetectionKey::of_packet("a", &wf, &bytes), None);
        assert!(is_detection(&det) && !is_detection(&wf));
        let tune = SrcName::new("XX_A_BHZ/DETTUNE").unwrap();
        assert!(is_detection(&tune));
        assert_eq!(DetectionKey::of_packet("a", &tune, &bytes), None);
        assert!(replay_type_ok("DETTUNE") && replay_type_ok("DET_2"));
        assert!(!replay_type_ok("DET") && !replay_type_ok("TUNE") && !replay_type_ok("DET/X"));
    }
}
