//! The detection core (`rules::detect`) against ObsPy, on the same samples: a
//! 5-station, 40 sps network of deterministic noise, a microseism and synthetic
//! events (some seen by every station, one by two only), made here in Rust and written
//! as raw f64s for Python to read.
//!
//! - band-pass (ObsPy `bandpass(..., corners=4, zerophase=False)`): equal to 1e-12 of
//!   the trace's largest output, not to the bit: the transfer function is scipy's,
//!   but the poles and zeros are grouped into other second-order sections, run in
//!   direct form I where scipy's `sosfilt` uses transposed direct form II, so rounding
//!   differs (by about 4e-15 of the peak here). Relative to each sample it would not
//!   hold near zero crossings, where any rounding is a large fraction of the value.
//! - `classic_sta_lta` and `recursive_sta_lta`, on the raw and on the band-passed
//!   samples: equal to 1e-6 relative (warm-up zeros exactly zero).
//! - `trigger_onset` on all four functions, without and with `max_len`: the same on
//!   and off indices.
//! - `coincidence_trigger` (recursive STA/LTA on the band-passed traces, station
//!   weights, two thresholds, trigger-off extensions and maximum trigger lengths):
//!   the same events (time to
//!   the microsecond, stations, coincidence sum, duration).
//!
//! Without a Python that can `import obspy` the test prints a note and passes locally,
//! but fails under CI ([`orb_tests::oracle`]).

use std::path::Path;

use formats::Time;
use orb_tests::{oracle, XorShift};
use rules::detect::{
    classic_sta_lta, coincidence_trigger, recursive_sta_lta, trigger_onset, BandPass,
    BandPassConfig, ChannelDetector, CoincidenceChannel, CoincidenceConfig, DetectorConfig, Onset,
    OnsetConfig, StaLtaConfig, StaLtaKind, StationTrigger, TriggerEvent,
};
use serde_json::{json, Value};

const RATE: f64 = 40.0;
const SECONDS: usize = 900;
const STATIONS: [&str; 5] = ["STA01", "STA02", "STA03", "STA04", "STA05"];
const FREQMIN: f64 = 1.0;
const FREQMAX: f64 = 10.0;
const STA: f64 = 0.5;
const LTA: f64 = 10.0;
const ON: f64 = 3.5;
const OFF: f64 = 1.5;
/// (threshold, trigger-off extension s, maximum trigger length s) for the coincidence
/// runs; ObsPy's default maximum length is 1e6 s.
const COINCIDENCE: [(f64, f64, f64); 2] = [(3.0, 0.0, 1e6), (2.0, 1.5, 3.0)];
/// `trigger_onset`'s `max_len` in the run that uses it, samples.
const MAX_LEN: u64 = 80;

const SCRIPT: &str = r#"
import json, sys
import numpy as np
from obspy import Stream, Trace, UTCDateTime
from obspy.signal.filter import bandpass
from obspy.signal.trigger import (classic_sta_lta, recursive_sta_lta,
                                  trigger_onset, coincidence_trigger)

d = sys.argv[1]
p = json.load(open(d + '/params.json'))
rate = p['rate']
nsta, nlta = int(p['sta'] * rate), int(p['lta'] * rate)
out = {'stations': {}, 'coincidence': []}
traces = []
for sta in p['stations']:
    x = np.fromfile(f'{d}/{sta}.raw', dtype='<f8')
    f = bandpass(x, p['freqmin'], p['freqmax'], df=rate, corners=4, zerophase=False)
    f.astype('<f8').tofile(f'{d}/{sta}.bp')
    r = {}
    for name, fn in (('classic', classic_sta_lta), ('recursive', recursive_sta_lta)):
        for src, data in (('raw', x), ('bp', f)):
            cf = fn(data, nsta, nlta)
            cf.astype('<f8').tofile(f'{d}/{sta}.{name}.{src}')
            r[f'{name}.{src}'] = [[int(a), int(b)] for a, b in
                                  trigger_onset(cf, p['on'], p['off'])]
            r[f'{name}.{src}.max_len'] = [
                [int(a), int(b)] for a, b in
                trigger_onset(cf, p['on'], p['off'], max_len=p['max_len'])]
    out['stations'][sta] = r
    tr = Trace(x.copy())
    tr.stats.network = 'XX'
    tr.stats.station = sta
    tr.stats.channel = 'BHZ'
    tr.stats.sampling_rate = rate
    tr.stats.starttime = UTCDateTime(ns=p['t0_us'] * 1000)
    traces.append(tr)
st = Stream(traces)
st.filter('bandpass', freqmin=p['freqmin'], freqmax=p['freqmax'], corners=4,
          zerophase=False)
weights = {f'XX.{s}..BHZ': w for s, w in zip(p['stations'], p['weights'])}
for thr, ext, longest in p['coincidence']:
    events = coincidence_trigger('recstalta', p['on'], p['off'], st.copy(), thr,
                                 trace_ids=weights, trigger_off_extension=ext,
                                 max_trigger_length=longest,
                                 sta=p['sta'], lta=p['lta'])
    out['coincidence'].append([
        {'time_us': round(e['time'].ns / 1000),
         'duration': e['duration'],
         'stations': e['stations'],
         'trace_ids': e['trace_ids'],
         'coincidence_sum': e['coincidence_sum']} for e in events])
print(json.dumps(out))
"#;

/// Roughly Gaussian noise (sum of four uniforms), unit-ish scale.
fn gauss(rng: &mut XorShift) -> f64 {
    (0..4)
        .map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 - 0.5)
        .sum::<f64>()
}

/// Each station's samples: noise, a large 0.2 Hz microseism the band-pass removes,
/// and decaying 3 to 6 Hz wavelets at each event's arrival.
fn signals() -> Vec<Vec<f64>> {
    let n = SECONDS * RATE as usize;
    // (origin s, per-station delay s, amplitude, which stations see it)
    let events: [(f64, f64, f64, [bool; 5]); 5] = [
        (100.0, 1.3, 30.0, [true; 5]),
        (260.5, 2.1, 12.0, [true; 5]),
        (400.25, 0.7, 25.0, [true, true, false, false, false]),
        (560.0, 4.0, 20.0, [true; 5]),
        (562.0, 0.4, 15.0, [false, true, true, true, false]),
    ];
    let mut rng = XorShift::new(0x00de_7ec7);
    STATIONS
        .iter()
        .enumerate()
        .map(|(s, _)| {
            let scale = 100.0 * (1.0 + s as f64 * 0.3);
            (0..n)
                .map(|i| {
                    let t = i as f64 / RATE;
                    let mut v = scale * gauss(&mut rng)
                        + 4000.0 * (std::f64::consts::TAU * 0.2 * t + s as f64).sin();
                    for (k, (origin, delay, amp, seen)) in events.iter().enumerate() {
                        let dt = t - (origin + delay * s as f64);
                        if seen[s] && dt >= 0.0 {
                            let f = 3.0 + k as f64 * 0.7;
                            v += amp
                                * scale
                                * (-dt / 3.0).exp()
                                * (std::f64::consts::TAU * f * dt).sin();
                        }
                    }
                    v
                })
                .collect()
        })
        .collect()
}

fn write_f64(path: &Path, v: &[f64]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn read_f64(path: &Path) -> Vec<f64> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// `got` equals `want` to `rel` relative; zeros must be zeros.
fn assert_relative(what: &str, got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let mut worst = 0.0f64;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(w.is_finite(), "{what}[{i}]: ObsPy gave {w}");
        let err = (g - w).abs();
        assert!(err <= rel * w.abs(), "{what}[{i}]: {g} vs ObsPy {w}");
        if *w != 0.0 {
            worst = worst.max(err / w.abs());
        }
    }
    eprintln!("{what}: worst relative difference {worst:.1e}");
}

/// `trigger_onset(cf, ON, OFF, max_len)` by the streaming state machine.
fn onsets(cf: &[f64], max_len: Option<u64>) -> Vec<(u64, u64)> {
    let mut o = Onset::new(OnsetConfig {
        max_len,
        ..OnsetConfig::obspy(ON, OFF)
    })
    .unwrap();
    let mut events = Vec::new();
    for c in cf.chunks(40) {
        o.push(c, &mut events);
    }
    o.finish(&mut events);
    events
        .into_iter()
        .filter_map(|e| match e {
            TriggerEvent::Off(t) => Some((t.on, t.off)),
            TriggerEvent::On { .. } => None,
        })
        .collect()
}

fn pairs(v: &Value) -> Vec<(u64, u64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
        .collect()
}

#[test]
fn detection_core_equals_obspy() {
    let Some(py) = oracle::python(&["obspy", "numpy"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = signals();
    let t0 = Time::parse_iso8601("2026-11-22T10:00:00Z").unwrap();
    let weights: Vec<f64> = (0..STATIONS.len())
        .map(|s| if s == 1 { 2.0 } else { 1.0 })
        .collect();
    for (s, x) in STATIONS.iter().zip(&data) {
        write_f64(&d.join(format!("{s}.raw")), x);
    }
    let params = json!({
        "rate": RATE, "stations": STATIONS, "freqmin": FREQMIN, "freqmax": FREQMAX,
        "sta": STA, "lta": LTA, "on": ON, "off": OFF, "t0_us": t0.as_micros(),
        "weights": weights, "coincidence": COINCIDENCE, "max_len": MAX_LEN,
    });
    std::fs::write(d.join("params.json"), params.to_string()).unwrap();
    let out: Value =
        serde_json::from_str(&oracle::run_python(&py, SCRIPT, &[d], d)).expect("oracle JSON");

    let bp = BandPassConfig {
        freqmin: FREQMIN,
        freqmax: FREQMAX,
        corners: 4,
        sample_rate: RATE,
    };
    let recursive = StaLtaConfig::from_seconds(StaLtaKind::Recursive, STA, LTA, RATE).unwrap();
    let (nsta, nlta) = (recursive.nsta, recursive.nlta);
    let mut total_triggers = 0;
    let mut cut = 0;
    let mut triggers = vec![Vec::new(); COINCIDENCE.len()];
    for (s, x) in STATIONS.iter().zip(&data) {
        // Band-pass, in packet-sized chunks as the detector will see it.
        let mut f = BandPass::new(bp).unwrap();
        let mut filtered = x.clone();
        for c in filtered.chunks_mut(40) {
            f.process(c);
        }
        let want = read_f64(&d.join(format!("{s}.bp")));
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let worst = filtered
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).abs())
            .fold(0.0f64, f64::max);
        eprintln!(
            "{s} band-pass: worst difference {:.1e} of the peak",
            worst / scale
        );
        assert!(
            worst <= 1e-12 * scale,
            "{s}: band-pass differs by {worst} (peak {scale})"
        );

        let expected = &out["stations"][s];
        for (name, func) in [
            ("classic", classic_sta_lta as fn(&[f64], usize, usize) -> _),
            ("recursive", recursive_sta_lta),
        ] {
            for (src, input) in [("raw", x), ("bp", &filtered)] {
                let key = format!("{name}.{src}");
                let cf = func(input, nsta, nlta).unwrap();
                let want = read_f64(&d.join(format!("{s}.{key}")));
                assert_relative(&format!("{s} {key}"), &cf, &want, 1e-6);
                let got = trigger_onset(&cf, ON, OFF).unwrap();
                let want = pairs(&expected[&key]);
                assert_eq!(got, want, "{s} {key}: trigger_onset");
                total_triggers += got.len();
                let got = onsets(&cf, Some(MAX_LEN));
                let want = pairs(&expected[format!("{key}.max_len")]);
                assert_eq!(got, want, "{s} {key}: trigger_onset max_len={MAX_LEN}");
                cut += got.iter().filter(|(on, off)| off - on == MAX_LEN).count();
            }
        }

        // The whole per-channel detector, fed packet by packet, for coincidence,
        // with each run's maximum trigger length (`int(seconds * rate + 0.5)`, as
        // ObsPy's `coincidence_trigger` converts it).
        for (run, (_, _, longest)) in COINCIDENCE.iter().enumerate() {
            let mut det = ChannelDetector::new(DetectorConfig {
                filter: Some(bp),
                stalta: recursive,
                onset: OnsetConfig {
                    max_len: Some((longest * RATE + 0.5) as u64),
                    ..OnsetConfig::obspy(ON, OFF)
                },
            })
            .unwrap();
            let mut events = Vec::new();
            for c in x.chunks(40) {
                det.push(c, &mut events);
            }
            det.finish(&mut events);
            let at = |i: u64| t0.as_micros() + (i as f64 * 1e6 / RATE).round() as i64;
            for e in events {
                if let TriggerEvent::Off(t) = e {
                    triggers[run].push(StationTrigger {
                        id: format!("XX.{s}..BHZ"),
                        on_us: at(t.on),
                        off_us: at(t.off),
                        peak: t.peak,
                    });
                }
            }
        }
    }
    // The signals must exercise the comparison: triggers on every trace and function,
    // and triggers long enough to be cut.
    assert!(total_triggers >= 30, "only {total_triggers} triggers");
    assert!(cut >= 10, "only {cut} triggers cut at max_len");
    let long = (COINCIDENCE[1].2 * RATE + 0.5) as i64 * 1_000_000 / RATE as i64;
    let cut_in_run = triggers[1]
        .iter()
        .filter(|t| t.off_us - t.on_us == long)
        .count();
    assert!(
        cut_in_run >= 3,
        "only {cut_in_run} triggers cut in coincidence run 1"
    );
    eprintln!("{total_triggers} triggers, {cut} cut at max_len, {cut_in_run} in run 1");

    for (k, (threshold, ext, _)) in COINCIDENCE.iter().enumerate() {
        let config = CoincidenceConfig {
            threshold: *threshold,
            off_extension_us: (ext * 1e6) as i64,
            channels: STATIONS
                .iter()
                .zip(&weights)
                .map(|(s, w)| CoincidenceChannel {
                    id: format!("XX.{s}..BHZ"),
                    station: (*s).to_owned(),
                    weight: *w,
                })
                .collect(),
        };
        let got = coincidence_trigger(config, &triggers[k]).unwrap();
        let want = out["coincidence"][k].as_array().unwrap();
        assert!(
            want.len() >= 3,
            "run {k}: ObsPy found only {} events",
            want.len()
        );
        assert_eq!(got.len(), want.len(), "run {k}: {got:#?}\nObsPy: {want:#?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(
                g.time_us,
                w["time_us"].as_i64().unwrap(),
                "run {k}: {g:?} {w}"
            );
            let ids: Vec<&str> = g.members.iter().map(|m| m.id.as_str()).collect();
            let want_ids: Vec<&str> = w["trace_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(ids, want_ids, "run {k}: trace ids");
            let stations: Vec<&str> = g.members.iter().map(|m| m.station.as_str()).collect();
            let want_st: Vec<&str> = w["stations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(stations, want_st, "run {k}: stations");
            assert_eq!(
                g.coincidence_sum,
                w["coincidence_sum"].as_f64().unwrap(),
                "run {k}"
            );
            let duration = w["duration"].as_f64().unwrap();
            assert!(
                (g.duration_us as f64 / 1e6 - duration).abs() < 1e-6,
                "run {k}: duration {} vs {duration}",
                g.duration_us
            );
        }
        eprintln!("coincidence run {k}: {} events, equal", got.len());
    }
}
