//! [`Coincidence`]: network events from station triggers, as ObsPy's
//! `coincidence_trigger` defines them, for triggers that arrive as they end.
//!
//! ObsPy's rule, on all triggers sorted by (on, off, channel): take the first trigger
//! as an event's seed; walk the later ones in order, skipping channels already in the
//! event, and stop at the first whose `on` is after the event's `off` plus
//! `off_extension`; every other one joins, adds its channel's weight to the
//! coincidence sum and stretches the event's `off` to its own if later. The event
//! counts if its sum reaches `threshold` and its `off` is after the last counted
//! event's `off` (so the same overlap is not reported again from a later seed). Then
//! the seed is removed and the next trigger seeds.
//!
//! Streaming, an event seeded by the earliest pending trigger is final once every
//! channel's future triggers are known to start after the event's `off` plus
//! `off_extension`: each channel has a watermark (pushed triggers raise it to their
//! `off`; [`Coincidence::advance`] raises it as the channel's data goes by). A
//! channel that stops sending holds events back until the caller advances it (for
//! example after a wall-clock timeout) or [`Coincidence::finish`] is called.
//!
//! Times are integers, microseconds since the epoch like `formats::Time`, so equal
//! times compare equal.

use serde::{Deserialize, Serialize};

use super::error::ConfigError;

/// A channel taking part, with its weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoincidenceChannel {
    /// The channel's identity (ObsPy's trace id, e.g. `NET.STA.LOC.CHAN`, or a
    /// srcname); triggers name it.
    pub id: String,
    /// The station it belongs to, listed in events (ObsPy's `stations`).
    pub station: String,
    /// What a trigger on it adds to the coincidence sum (ObsPy's `trace_ids` weight).
    pub weight: f64,
}

/// The network rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoincidenceConfig {
    /// Least coincidence sum that makes an event (ObsPy's `thr_coincidence_sum`).
    pub threshold: f64,
    /// How far after an event's end a trigger may start and still join, microseconds
    /// (ObsPy's `trigger_off_extension`).
    #[serde(default)]
    pub off_extension_us: i64,
    /// The channels and weights.
    pub channels: Vec<CoincidenceChannel>,
}

impl CoincidenceConfig {
    /// Checks the threshold (finite, above zero), the weights (finite, not negative),
    /// the extension (not negative) and that no channel is listed twice.
    pub fn validate(&self) -> Result<(), CoincidenceError> {
        super::error::positive("threshold", self.threshold)?;
        if self.off_extension_us < 0 {
            return Err(ConfigError::NotPositive {
                field: "off_extension",
                value: self.off_extension_us as f64,
            }
            .into());
        }
        for (i, c) in self.channels.iter().enumerate() {
            if !(c.weight.is_finite() && c.weight >= 0.0) {
                return Err(CoincidenceError::Weight {
                    id: c.id.clone(),
                    weight: c.weight,
                });
            }
            if self.channels[..i].iter().any(|d| d.id == c.id) {
                return Err(CoincidenceError::Duplicate { id: c.id.clone() });
            }
        }
        Ok(())
    }
}

/// Why a coincidence rule or a trigger was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CoincidenceError {
    /// A parameter is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A weight is negative or not a number.
    #[error("channel `{id}` has weight {weight}: weights must be finite and at least 0")]
    Weight {
        /// The channel.
        id: String,
        /// Its weight.
        weight: f64,
    },
    /// A channel is listed twice.
    #[error("channel `{id}` is listed twice: list each channel once")]
    Duplicate {
        /// The channel.
        id: String,
    },
    /// A trigger names a channel not in the rule.
    #[error("a trigger on `{id}`, which is not one of the rule's channels: add it to the rule")]
    UnknownChannel {
        /// The channel named.
        id: String,
    },
    /// A trigger starts before what its channel already promised.
    #[error(
        "a trigger on `{id}` starts at {on_us} us, before {watermark_us} us, which that \
         channel's earlier triggers or progress already settled"
    )]
    OutOfOrder {
        /// The channel.
        id: String,
        /// The trigger's start.
        on_us: i64,
        /// The channel's watermark.
        watermark_us: i64,
    },
}

/// A finished trigger of one channel, in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationTrigger {
    /// The channel (one of [`CoincidenceConfig::channels`]).
    pub id: String,
    /// Start, microseconds.
    pub on_us: i64,
    /// End, microseconds.
    pub off_us: i64,
    /// The characteristic function's peak during the trigger.
    pub peak: f64,
}

/// One channel's part in a network event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The channel.
    pub id: String,
    /// Its station.
    pub station: String,
    /// Its trigger's start (the channel's first onset in the event), microseconds.
    pub on_us: i64,
    /// Its trigger's end, microseconds.
    pub off_us: i64,
    /// Its trigger's peak.
    pub peak: f64,
}

/// A network event (one element of ObsPy's `coincidence_trigger` result).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkEvent {
    /// The first onset (ObsPy's `time`), microseconds.
    pub time_us: i64,
    /// From the first onset to the last trigger's end (ObsPy's `duration`), µs.
    pub duration_us: i64,
    /// Sum of the members' weights (ObsPy's `coincidence_sum`).
    pub coincidence_sum: f64,
    /// The triggers, in order of onset (ObsPy's `trace_ids` and `stations`).
    pub members: Vec<Member>,
}

/// Network coincidence state: triggers not yet settled, each channel's watermark and
/// the last event's end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coincidence {
    config: CoincidenceConfig,
    /// Triggers not yet used as a seed, sorted by (on, off, channel index).
    pending: Vec<(i64, i64, usize, f64)>,
    /// Per channel: every trigger still to come starts at or after this.
    watermarks: Vec<i64>,
    /// End of the last event reported.
    last_off: Option<i64>,
}

impl Coincidence {
    /// A fresh state; nothing is known of any channel yet.
    pub fn new(config: CoincidenceConfig) -> Result<Coincidence, CoincidenceError> {
        config.validate()?;
        let watermarks = vec![i64::MIN; config.channels.len()];
        Ok(Coincidence {
            config,
            pending: Vec::new(),
            watermarks,
            last_off: None,
        })
    }

    /// The rule.
    pub fn config(&self) -> &CoincidenceConfig {
        &self.config
    }

    /// Adds a channel that was not in the rule (a stream seen for the first time),
    /// whose triggers all start at or after `from_us` (its first sample). Events
    /// already emitted do not change; later ones may include it.
    pub fn add_channel(
        &mut self,
        channel: CoincidenceChannel,
        from_us: i64,
    ) -> Result<(), CoincidenceError> {
        if self.config.channels.iter().any(|c| c.id == channel.id) {
            return Err(CoincidenceError::Duplicate { id: channel.id });
        }
        if !(channel.weight.is_finite() && channel.weight >= 0.0) {
            return Err(CoincidenceError::Weight {
                id: channel.id,
                weight: channel.weight,
            });
        }
        self.config.channels.push(channel);
        self.watermarks.push(from_us);
        Ok(())
    }

    /// Whether channel `id` is one of the rule's.
    pub fn has_channel(&self, id: &str) -> bool {
        self.config.channels.iter().any(|c| c.id == id)
    }

    fn index(&self, id: &str) -> Result<usize, CoincidenceError> {
        self.config
            .channels
            .iter()
            .position(|c| c.id == id)
            .ok_or_else(|| CoincidenceError::UnknownChannel { id: id.to_owned() })
    }

    /// Adds a finished trigger. Triggers of one channel must come in order.
    pub fn push(&mut self, t: &StationTrigger) -> Result<(), CoincidenceError> {
        let c = self.index(&t.id)?;
        if t.on_us < self.watermarks[c] {
            return Err(CoincidenceError::OutOfOrder {
                id: t.id.clone(),
                on_us: t.on_us,
                watermark_us: self.watermarks[c],
            });
        }
        // The channel's next trigger starts after this one's end.
        self.watermarks[c] = t.off_us.max(t.on_us).saturating_add(1);
        let key = (t.on_us, t.off_us, c, t.peak);
        let at = self.pending.partition_point(|p| self.before(p, &key));
        self.pending.insert(at, key);
        Ok(())
    }

    /// Sort order: (on, off, channel id), as ObsPy sorts its trigger tuples.
    fn before(&self, a: &(i64, i64, usize, f64), b: &(i64, i64, usize, f64)) -> bool {
        (a.0, a.1, &self.config.channels[a.2].id) < (b.0, b.1, &self.config.channels[b.2].id)
    }

    /// Promises that every trigger still to come on channel `id` starts at or after
    /// `until_us` (for a channel whose detector has no trigger in progress, the time of
    /// its next sample; with one in progress, that trigger's start).
    pub fn advance(&mut self, id: &str, until_us: i64) -> Result<(), CoincidenceError> {
        let c = self.index(id)?;
        self.watermarks[c] = self.watermarks[c].max(until_us);
        Ok(())
    }

    /// Appends the events that can no longer change.
    pub fn poll(&mut self, out: &mut Vec<NetworkEvent>) {
        self.drain(false, out);
    }

    /// No more triggers will come: appends every remaining event.
    pub fn finish(&mut self, out: &mut Vec<NetworkEvent>) {
        self.drain(true, out);
    }

    fn drain(&mut self, all: bool, out: &mut Vec<NetworkEvent>) {
        let ext = self.config.off_extension_us;
        let mut used = 0;
        while used < self.pending.len() {
            let (on, seed_off, seed, peak) = self.pending[used];
            let ch = &self.config.channels;
            let mut off = seed_off;
            let mut sum = ch[seed].weight;
            let mut members = vec![member(&ch[seed], on, seed_off, peak)];
            let mut in_event = vec![seed];
            for &(t_on, t_off, c, t_peak) in &self.pending[used + 1..] {
                if in_event.contains(&c) {
                    continue;
                }
                if t_on > off.saturating_add(ext) {
                    break;
                }
                in_event.push(c);
                sum += ch[c].weight;
                members.push(member(&ch[c], t_on, t_off, t_peak));
                off = off.max(t_off);
            }
            // Final only if no trigger still to come could join: those of channels
            // not in the event all start after off + ext (those of channels in it
            // would be skipped).
            let horizon = (0..ch.len())
                .filter(|c| !in_event.contains(c))
                .map(|c| self.watermarks[c])
                .min()
                .unwrap_or(i64::MAX);
            if !all && horizon <= off.saturating_add(ext) {
                break;
            }
            used += 1;
            if sum < self.config.threshold {
                continue;
            }
            if self.last_off.is_some_and(|last| off <= last) {
                continue;
            }
            self.last_off = Some(off);
            out.push(NetworkEvent {
                time_us: on,
                duration_us: off - on,
                coincidence_sum: sum,
                members,
            });
        }
        self.pending.drain(..used);
    }
}

fn member(c: &CoincidenceChannel, on_us: i64, off_us: i64, peak: f64) -> Member {
    Member {
        id: c.id.clone(),
        station: c.station.clone(),
        on_us,
        off_us,
        peak,
    }
}

/// ObsPy's `coincidence_trigger` on triggers already computed, all at once.
pub fn coincidence_trigger(
    config: CoincidenceConfig,
    triggers: &[StationTrigger],
) -> Result<Vec<NetworkEvent>, CoincidenceError> {
    let mut c = Coincidence::new(config)?;
    let mut sorted: Vec<&StationTrigger> = triggers.iter().collect();
    sorted.sort_by_key(|t| t.on_us);
    for t in sorted {
        c.push(t)?;
    }
    let mut out = Vec::new();
    c.finish(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config(n: usize, threshold: f64, ext: i64) -> CoincidenceConfig {
        CoincidenceConfig {
            threshold,
            off_extension_us: ext,
            channels: (0..n)
                .map(|i| CoincidenceChannel {
                    id: format!("XX.S{i}..BHZ"),
                    station: format!("S{i}"),
                    weight: 1.0 + (i % 2) as f64,
                })
                .collect(),
        }
    }

    fn trig(c: usize, on: i64, off: i64) -> StationTrigger {
        StationTrigger {
            id: format!("XX.S{c}..BHZ"),
            on_us: on,
            off_us: off,
            peak: 1.0,
        }
    }

    /// ObsPy's loop, as written there (over pre-sorted triggers): the definition.
    fn obspy(
        config: &CoincidenceConfig,
        triggers: &[StationTrigger],
    ) -> Vec<(i64, i64, f64, Vec<String>)> {
        let mut t: Vec<(i64, i64, String)> = triggers
            .iter()
            .map(|t| (t.on_us, t.off_us, t.id.clone()))
            .collect();
        t.sort();
        let weight = |id: &str| config.channels.iter().find(|c| c.id == id).unwrap().weight;
        let mut out = vec![];
        let mut last_off = 0i64;
        while !t.is_empty() {
            let (on, mut off, id) = t.remove(0);
            let mut ids = vec![id.clone()];
            let mut sum = weight(&id);
            for (t_on, t_off, t_id) in &t {
                if ids.contains(t_id) {
                    continue;
                }
                if *t_on > off + config.off_extension_us {
                    break;
                }
                ids.push(t_id.clone());
                sum += weight(t_id);
                off = off.max(*t_off);
            }
            if sum < config.threshold || off <= last_off {
                continue;
            }
            out.push((on, off - on, sum, ids));
            last_off = off;
        }
        out
    }

    fn simple(events: &[NetworkEvent]) -> Vec<(i64, i64, f64, Vec<String>)> {
        events
            .iter()
            .map(|e| {
                (
                    e.time_us,
                    e.duration_us,
                    e.coincidence_sum,
                    e.members.iter().map(|m| m.id.clone()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn overlapping_triggers_make_one_event_and_a_lone_one_none() {
        let cfg = config(3, 3.0, 0);
        let t = [
            trig(0, 100, 200),
            trig(1, 150, 300),
            trig(2, 290, 400),
            trig(0, 1000, 1100),
        ];
        let ev = coincidence_trigger(cfg, &t).unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].time_us, 100);
        assert_eq!(ev[0].duration_us, 300);
        assert_eq!(ev[0].coincidence_sum, 4.0);
        let stations: Vec<&str> = ev[0].members.iter().map(|m| m.station.as_str()).collect();
        assert_eq!(stations, ["S0", "S1", "S2"]);
        assert_eq!(ev[0].members[2].on_us, 290);
    }

    #[test]
    fn events_wait_for_every_channel() {
        let mut c = Coincidence::new(config(2, 2.0, 10)).unwrap();
        let mut out = vec![];
        c.push(&trig(0, 100, 200)).unwrap();
        c.poll(&mut out);
        assert!(out.is_empty());
        // Channel 1 could still start a trigger at 210 (off + extension).
        c.advance("XX.S1..BHZ", 210).unwrap();
        c.poll(&mut out);
        assert!(out.is_empty());
        c.advance("XX.S1..BHZ", 211).unwrap();
        c.poll(&mut out);
        // Settled: the sum (1) is below 2, no event, and the trigger is gone.
        assert!(out.is_empty());
        assert!(c.pending.is_empty());
        assert!(matches!(
            c.push(&trig(1, 150, 160)),
            Err(CoincidenceError::OutOfOrder { .. })
        ));
        assert!(matches!(
            c.push(&trig(7, 150, 160)),
            Err(CoincidenceError::UnknownChannel { .. })
        ));
    }

    /// A channel added later holds events back only from its first sample on, and
    /// counts in events after that.
    #[test]
    fn channels_added_later_join_events() {
        let mut c = Coincidence::new(config(1, 2.0, 0)).unwrap();
        let mut out = vec![];
        let extra = |id: &str| CoincidenceChannel {
            id: id.into(),
            station: "S9".into(),
            weight: 1.0,
        };
        c.add_channel(extra("XX.S9..BHZ"), 150).unwrap();
        assert!(c.has_channel("XX.S9..BHZ"));
        assert!(matches!(
            c.add_channel(extra("XX.S9..BHZ"), 0),
            Err(CoincidenceError::Duplicate { .. })
        ));
        c.push(&trig(0, 100, 200)).unwrap();
        c.poll(&mut out);
        assert!(out.is_empty(), "S9 may still trigger from 150");
        c.push(&StationTrigger {
            id: "XX.S9..BHZ".into(),
            on_us: 160,
            off_us: 220,
            peak: 5.0,
        })
        .unwrap();
        c.finish(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].coincidence_sum, 2.0);
        assert_eq!(out[0].members[1].station, "S9");
    }

    #[test]
    fn rules_are_checked() {
        let mut cfg = config(2, 0.0, 0);
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("threshold"));
        cfg.threshold = 1.0;
        cfg.channels[1].id = cfg.channels[0].id.clone();
        assert!(matches!(
            cfg.validate(),
            Err(CoincidenceError::Duplicate { .. })
        ));
        cfg.channels[1].id = "other".into();
        cfg.channels[1].weight = -1.0;
        assert!(matches!(
            cfg.validate(),
            Err(CoincidenceError::Weight { .. })
        ));
    }

    proptest! {
        #[test]
        fn streaming_equals_obspy(
            raw in proptest::collection::vec((0usize..5, 0i64..60, 0i64..15), 0..60),
            threshold in 1u8..7,
            ext in 0i64..5,
            poll_every in 1usize..6,
        ) {
            let cfg = config(5, f64::from(threshold), ext);
            // Per channel, non-overlapping triggers in order, as a detector makes them.
            let mut next = [1i64; 5];
            let mut triggers = vec![];
            for (c, gap, len) in raw {
                let on = next[c] + gap;
                let off = on + len;
                next[c] = off + 1;
                triggers.push(trig(c, on, off));
            }
            let want = obspy(&cfg, &triggers);
            prop_assert_eq!(simple(&coincidence_trigger(cfg.clone(), &triggers).unwrap()), want.clone());

            // Streaming: triggers arrive in order of their end, channels advance as
            // time goes by, events are polled now and then and the state is saved
            // and restored.
            let mut by_end = triggers.clone();
            by_end.sort_by_key(|t| t.off_us);
            let mut c = Coincidence::new(cfg.clone()).unwrap();
            let mut got = vec![];
            for (k, t) in by_end.iter().enumerate() {
                c.push(t).unwrap();
                // Every channel's data has passed t.off; a channel with a trigger
                // still to come that has started has its watermark at that start.
                for ch in 0..5 {
                    let id = format!("XX.S{ch}..BHZ");
                    let active = by_end[k + 1..].iter().filter(|u| u.id == id && u.on_us <= t.off_us).map(|u| u.on_us).min();
                    c.advance(&id, active.unwrap_or(t.off_us + 1)).unwrap();
                }
                if k % poll_every == 0 {
                    c.poll(&mut got);
                    c = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
                }
            }
            c.finish(&mut got);
            prop_assert_eq!(simple(&got), want);
        }
    }
}
