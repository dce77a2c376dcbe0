//! [`Onset`]: trigger on and off from a characteristic function, as ObsPy's
//! `trigger_onset(cf, on, off)` defines them, sample by sample.
//!
//! A trigger starts at the first sample whose value is at least `on`, and ends at the
//! last sample, from there, whose value is at least `off` (so the sample after it is
//! below `off`). The next trigger can start at the first sample after that end whose
//! value is at least `on` again. A trigger still on when the data ends closes at the
//! last sample ([`Onset::finish`]), as ObsPy's does at the end of its array.
//!
//! ObsPy's `max_len` (longest trigger) is [`OnsetConfig::max_len`], with ObsPy's
//! meaning (`max_len_delete=False`). Two more options, both off in the
//! ObsPy-equivalent mode:
//! - `min_duration` (samples): a trigger whose `off - on` is shorter is dropped
//!   without any event; its start is announced ([`TriggerEvent::On`]) only once it has
//!   lasted that long.
//! - `hold_off` (samples): after a trigger ends at `off`, no trigger may start before
//!   sample `off + 1 + hold_off` (a dropped short trigger does not start a hold-off).

use serde::{Deserialize, Serialize};

use super::error::{positive, ConfigError};

/// Thresholds and options.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OnsetConfig {
    /// A trigger starts when the function reaches this (ObsPy's `thres1`).
    pub on: f64,
    /// A trigger ends when the function falls below this (ObsPy's `thres2`); at most
    /// `on`.
    pub off: f64,
    /// Shortest trigger kept, `off - on` in samples; 0 keeps all (ObsPy).
    #[serde(default)]
    pub min_duration: u64,
    /// Samples after a trigger's end during which no new trigger starts; 0 (ObsPy).
    #[serde(default)]
    pub hold_off: u64,
    /// Longest trigger, `off - on` in samples (ObsPy's `max_len`): a trigger still on
    /// after it ends at `on + max_len`, and the next can start where the function
    /// comes back up to `on`. `None` for no limit (ObsPy's default).
    #[serde(default)]
    pub max_len: Option<u64>,
}

impl OnsetConfig {
    /// ObsPy's `trigger_onset(cf, on, off)`: no minimum duration, no hold-off.
    pub fn obspy(on: f64, off: f64) -> OnsetConfig {
        OnsetConfig {
            on,
            off,
            min_duration: 0,
            hold_off: 0,
            max_len: None,
        }
    }

    /// Checks that both thresholds are finite and above zero and `off <= on`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("on", self.on)?;
        positive("off", self.off)?;
        if self.off > self.on {
            return Err(ConfigError::OffAboveOn {
                on: self.on,
                off: self.off,
            });
        }
        Ok(())
    }
}

/// One finished trigger, in sample indices of the channel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// First sample at or above `on`.
    pub on: u64,
    /// Last sample at or above `off`.
    pub off: u64,
    /// Highest value of the function from `on` to `off`.
    pub peak: f64,
    /// Where that highest value is (the first such sample).
    pub peak_at: u64,
}

/// What the state machine reports.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum TriggerEvent {
    /// A trigger has started at sample `on`, with value `cf` there (reported at `on`,
    /// or `min_duration` samples later).
    On {
        /// First sample at or above `on`.
        on: u64,
        /// The function's value there.
        cf: f64,
    },
    /// A trigger has ended.
    Off(Trigger),
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum State {
    Idle,
    Active {
        on: u64,
        cf_on: f64,
        peak: f64,
        peak_at: u64,
        announced: bool,
        /// Whether the last sample was at or above `on`.
        above: bool,
    },
    /// A trigger was cut at `max_len` and the function has not yet fallen below
    /// `off`.
    Capped {
        /// Whether the last sample was at or above `on`.
        above: bool,
    },
}

/// The trigger state of one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Onset {
    config: OnsetConfig,
    state: State,
    /// Index of the next sample.
    next: u64,
    /// No trigger may start before this sample (the hold-off).
    earliest: u64,
}

impl Onset {
    /// A fresh state (the next sample is sample 0).
    pub fn new(config: OnsetConfig) -> Result<Onset, ConfigError> {
        config.validate()?;
        Ok(Onset {
            config,
            state: State::Idle,
            next: 0,
            earliest: 0,
        })
    }

    /// The thresholds and options.
    pub fn config(&self) -> &OnsetConfig {
        &self.config
    }

    /// Index of the next sample [`push`](Onset::push) will see.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// The start of the trigger in progress, if any.
    pub fn active_since(&self) -> Option<u64> {
        match self.state {
            State::Idle | State::Capped { .. } => None,
            State::Active { on, .. } => Some(on),
        }
    }

    /// The earliest sample any trigger not yet finished can start at: the start of the
    /// one in progress, else the next sample (or the end of a hold-off). Network
    /// coincidence needs it to know that a channel's past is settled.
    pub fn earliest_pending_on(&self) -> u64 {
        self.active_since()
            .unwrap_or_else(|| self.next.max(self.earliest))
    }

    /// Feeds the function's next values; appends what happened to `out`.
    pub fn push(&mut self, cf: &[f64], out: &mut Vec<TriggerEvent>) {
        let OnsetConfig {
            on: thr_on,
            off: thr_off,
            min_duration,
            hold_off,
            max_len,
        } = self.config;
        let max_len = max_len.unwrap_or(u64::MAX);
        let mut i = self.next;
        let mut rest = cf;
        while !rest.is_empty() {
            match &mut self.state {
                State::Idle => {
                    // Skip the hold-off, then scan for the threshold.
                    let skip = (self.earliest.saturating_sub(i) as usize).min(rest.len());
                    i += skip as u64;
                    rest = &rest[skip..];
                    match rest.iter().position(|v| *v >= thr_on) {
                        None => {
                            i += rest.len() as u64;
                            rest = &[];
                        }
                        Some(k) => {
                            i += k as u64;
                            rest = &rest[k..];
                            self.start(i, rest[0], out);
                            i += 1;
                            rest = &rest[1..];
                        }
                    }
                }
                State::Capped { above } => {
                    // After a trigger cut at `max_len`: a new one starts only where
                    // the function comes back up to `on` (ObsPy's next run start).
                    let v = rest[0];
                    if v >= thr_on && !*above && i >= self.earliest {
                        self.start(i, v, out);
                    } else if v < thr_off {
                        self.state = State::Idle;
                    } else {
                        *above = v >= thr_on;
                    }
                    i += 1;
                    rest = &rest[1..];
                }
                State::Active {
                    on,
                    cf_on,
                    peak,
                    peak_at,
                    announced,
                    above,
                } => {
                    let v = rest[0];
                    if v >= thr_off && i - *on > max_len {
                        // Too long: ObsPy ends it at on + max_len; this sample is
                        // looked at again, as a possible new start.
                        if *announced {
                            out.push(TriggerEvent::Off(Trigger {
                                on: *on,
                                off: *on + max_len,
                                peak: *peak,
                                peak_at: *peak_at,
                            }));
                            self.earliest = (*on + max_len + 1).saturating_add(hold_off);
                        }
                        self.state = State::Capped { above: *above };
                        continue;
                    }
                    rest = &rest[1..];
                    if v < thr_off {
                        let trigger = Trigger {
                            on: *on,
                            off: i - 1,
                            peak: *peak,
                            peak_at: *peak_at,
                        };
                        if *announced {
                            out.push(TriggerEvent::Off(trigger));
                            self.earliest = i.saturating_add(hold_off);
                        }
                        self.state = State::Idle;
                    } else {
                        *above = v >= thr_on;
                        if v > *peak {
                            *peak = v;
                            *peak_at = i;
                        }
                        if !*announced && i - *on >= min_duration {
                            *announced = true;
                            out.push(TriggerEvent::On {
                                on: *on,
                                cf: *cf_on,
                            });
                        }
                    }
                    i += 1;
                }
            }
        }
        self.next = i;
    }

    /// A trigger starts at sample `i`, value `v`.
    fn start(&mut self, i: u64, v: f64, out: &mut Vec<TriggerEvent>) {
        let announced = self.config.min_duration == 0;
        if announced {
            out.push(TriggerEvent::On { on: i, cf: v });
        }
        self.state = State::Active {
            on: i,
            cf_on: v,
            peak: v,
            peak_at: i,
            announced,
            above: true,
        };
    }

    /// The data has ended: closes a trigger still on at the last sample seen (as
    /// ObsPy's `trigger_onset` does at the end of its array), if it is long enough.
    pub fn finish(&mut self, out: &mut Vec<TriggerEvent>) {
        if let State::Active {
            on,
            peak,
            peak_at,
            announced,
            ..
        } = self.state
        {
            if announced {
                out.push(TriggerEvent::Off(Trigger {
                    on,
                    off: self.next - 1,
                    peak,
                    peak_at,
                }));
                self.earliest = self.next.saturating_add(self.config.hold_off);
            }
            self.state = State::Idle;
        }
    }
}

/// ObsPy's `trigger_onset(cf, on, off)` on a whole series: `(on, off)` sample pairs.
pub fn trigger_onset(cf: &[f64], on: f64, off: f64) -> Result<Vec<(u64, u64)>, ConfigError> {
    let mut onset = Onset::new(OnsetConfig::obspy(on, off))?;
    let mut events = Vec::new();
    onset.push(cf, &mut events);
    onset.finish(&mut events);
    Ok(events
        .into_iter()
        .filter_map(|e| match e {
            TriggerEvent::Off(t) => Some((t.on, t.off)),
            TriggerEvent::On { .. } => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    /// ObsPy 1.5's `trigger_onset` (max_len unlimited), line by line: the definition
    /// the state machine must equal.
    fn obspy_trigger_onset(cf: &[f64], thres1: f64, thres2: f64, max_len: i64) -> Vec<(u64, u64)> {
        let ind1: Vec<i64> = (0..cf.len())
            .filter(|&i| cf[i] >= thres1)
            .map(|i| i as i64)
            .collect();
        if ind1.is_empty() {
            return vec![];
        }
        let ind2: Vec<i64> = (0..cf.len())
            .filter(|&i| cf[i] >= thres2)
            .map(|i| i as i64)
            .collect();
        let mut on: VecDeque<i64> = VecDeque::from([ind1[0]]);
        let mut of: VecDeque<i64> = VecDeque::from([-1]);
        for k in 0..ind2.len() {
            if k + 1 == ind2.len() || ind2[k + 1] - ind2[k] > 1 {
                of.push_back(ind2[k]);
            }
        }
        for k in 1..ind1.len() {
            if ind1[k] - ind1[k - 1] > 1 {
                on.push_back(ind1[k]);
            }
        }
        of.push_back(*ind2.last().unwrap());
        of.push_back(cf.len() as i64);
        let mut pick = vec![];
        while on.back().unwrap() > of.front().unwrap() {
            while on[0] <= of[0] {
                on.pop_front();
            }
            while of[0] < on[0] {
                of.pop_front();
            }
            if of[0] - on[0] > max_len {
                of.push_front(on[0] + max_len);
            }
            pick.push((on[0] as u64, of[0] as u64));
        }
        pick
    }

    #[test]
    fn basic_on_off() {
        let cf = [0.0, 1.0, 3.0, 2.0, 4.0, 1.6, 1.4, 0.5, 3.5, 3.0];
        assert_eq!(trigger_onset(&cf, 3.0, 1.5).unwrap(), vec![(2, 5), (8, 9)]);
        assert_eq!(
            obspy_trigger_onset(&cf, 3.0, 1.5, i64::MAX),
            vec![(2, 5), (8, 9)]
        );
    }

    #[test]
    fn min_duration_drops_short_triggers_and_delays_the_on() {
        let cf = [0.0, 5.0, 0.0, 5.0, 5.0, 5.0, 5.0, 0.0];
        let mut o = Onset::new(OnsetConfig {
            min_duration: 2,
            ..OnsetConfig::obspy(3.0, 1.0)
        })
        .unwrap();
        let mut ev = vec![];
        o.push(&cf[..5], &mut ev);
        assert!(ev.is_empty(), "{ev:?}");
        o.push(&cf[5..], &mut ev);
        assert_eq!(
            ev,
            vec![
                TriggerEvent::On { on: 3, cf: 5.0 },
                TriggerEvent::Off(Trigger {
                    on: 3,
                    off: 6,
                    peak: 5.0,
                    peak_at: 3
                })
            ]
        );
    }

    #[test]
    fn hold_off_delays_the_next_trigger() {
        let cf = [5.0, 0.0, 5.0, 0.0, 0.0, 5.0, 0.0];
        let mut o = Onset::new(OnsetConfig {
            hold_off: 2,
            ..OnsetConfig::obspy(3.0, 1.0)
        })
        .unwrap();
        let mut ev = vec![];
        o.push(&cf, &mut ev);
        let ons: Vec<u64> = ev
            .iter()
            .filter_map(|e| match e {
                TriggerEvent::On { on, .. } => Some(*on),
                _ => None,
            })
            .collect();
        // Trigger 0..0 ends at 0: nothing may start at 1, 2 or 3.
        assert_eq!(ons, vec![0, 5]);
    }

    #[test]
    fn thresholds_are_checked() {
        let e = Onset::new(OnsetConfig::obspy(2.0, 3.0)).unwrap_err();
        assert_eq!(e.field(), "off");
        assert!(e.to_string().contains("at most `on`"), "{e}");
        assert_eq!(
            Onset::new(OnsetConfig::obspy(0.0, 0.0))
                .unwrap_err()
                .field(),
            "on"
        );
        assert_eq!(
            Onset::new(OnsetConfig::obspy(2.0, f64::NAN))
                .unwrap_err()
                .field(),
            "off"
        );
    }

    proptest! {
        #[test]
        fn equals_obspy_and_streams(
            cf in proptest::collection::vec(0u8..8, 0..300),
            on in 1u8..8,
            below in 0u8..4,
            chunks in proptest::collection::vec(1usize..30, 1..10),
            max_len in proptest::option::of(0u64..12),
        ) {
            let cf: Vec<f64> = cf.into_iter().map(f64::from).collect();
            let on = f64::from(on);
            let off = (on - f64::from(below)).max(0.5);
            let want = obspy_trigger_onset(&cf, on, off, max_len.map_or(i64::MAX, |m| m as i64));
            if max_len.is_none() {
                prop_assert_eq!(trigger_onset(&cf, on, off).unwrap(), want.clone());
            }

            let mut o = Onset::new(OnsetConfig { max_len, ..OnsetConfig::obspy(on, off) }).unwrap();
            let mut ev = vec![];
            let mut start = 0;
            let mut k = 0;
            while start < cf.len() {
                let end = (start + chunks[k % chunks.len()]).min(cf.len());
                o.push(&cf[start..end], &mut ev);
                o = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
                start = end;
                k += 1;
            }
            o.finish(&mut ev);
            let mut got = vec![];
            let mut open = None;
            for e in ev {
                match e {
                    TriggerEvent::On { on, cf: v } => {
                        prop_assert!(open.is_none());
                        prop_assert_eq!(v, cf[on as usize]);
                        open = Some(on);
                    }
                    TriggerEvent::Off(t) => {
                        prop_assert_eq!(open.take(), Some(t.on));
                        let max = cf[t.on as usize..=t.off as usize].iter().cloned().fold(f64::MIN, f64::max);
                        prop_assert_eq!(t.peak, max);
                        prop_assert_eq!(cf[t.peak_at as usize], max);
                        got.push((t.on, t.off));
                    }
                }
            }
            prop_assert_eq!(got, want);
        }

        #[test]
        fn options_only_remove_or_shift(
            cf in proptest::collection::vec(0u8..8, 0..300),
            min_duration in 0u64..6,
            hold_off in 0u64..6,
        ) {
            let cf: Vec<f64> = cf.into_iter().map(f64::from).collect();
            let mut o = Onset::new(OnsetConfig { on: 4.0, off: 2.0, min_duration, hold_off, max_len: None }).unwrap();
            let mut ev = vec![];
            o.push(&cf, &mut ev);
            o.finish(&mut ev);
            let mut last_off: Option<u64> = None;
            for e in ev {
                if let TriggerEvent::Off(t) = e {
                    prop_assert!(t.off - t.on >= min_duration);
                    prop_assert!(cf[t.on as usize] >= 4.0);
                    prop_assert!(cf[t.on as usize..=t.off as usize].iter().all(|v| *v >= 2.0));
                    prop_assert!(t.off as usize + 1 == cf.len() || cf[t.off as usize + 1] < 2.0);
                    if let Some(prev) = last_off {
                        prop_assert!(t.on > prev + hold_off);
                    }
                    last_off = Some(t.off);
                }
            }
        }
    }
}
