//! Figure 14: detection latency. A spawned release `orbdetect` (next to this
//! executable; build it with `cargo build --release --bin orbdetect`) runs one STA/LTA
//! detect rule (recursive, 0.5 s / 10 s, 1-8 Hz band-pass, on 4) on an in-process
//! server while four stations put one-second 40 sps GENC packets of noise, each with a
//! strong burst every 20 s of data starting at a packet's first sample. For each burst,
//! the time from the put of the packet holding its onset (the packet that crosses the
//! threshold) to the arrival of the `on` trigger packet at a reaping client; the
//! baseline is the time from the same put to that packet's own arrival at another
//! reaping client (plain reap latency), measured on the same packets in the same run.
//! At two packet rates: 40 and 400 packets/s (data 10 and 100 times faster than real
//! time). Target (issue 19): p50 under 10 ms beyond the plain reap.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use formats::payload::{genc, Channel};
use formats::{Packet, SrcName, Time};
use orbclient::{OrbClient, ReapEvent, ReapOptions};

use super::{client_opts, mark, micros, pct, Bench};

const NAME: &str = "14 detection latency";
const RATE: f64 = 40.0;
const STATIONS: usize = 4;
/// Seconds of data before the first burst (the LTA's warm-up and more).
const WARM_UP: usize = 30;
/// Seconds of data between bursts at a station.
const EVERY: usize = 20;

/// Kills the spawned detector when dropped.
struct Detector(Child);

impl Drop for Detector {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One station's samples: noise, and a 3 Hz burst decaying over 2 s from each
/// burst second (`s` offsets the bursts between stations).
fn samples(s: usize, seconds: usize) -> Vec<i32> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (s as u64 + 1).wrapping_mul(0x1234_5678_9abc);
    (0..seconds * RATE as usize)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let noise = ((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 200.0;
            let t = i as f64 / RATE;
            let sec = t.floor() as usize;
            let burst = match last_burst(s, sec) {
                Some(b) => {
                    let dt = t - b as f64;
                    8000.0 * (-dt / 2.0).exp() * (std::f64::consts::TAU * 3.0 * dt).sin()
                }
                None => 0.0,
            };
            (noise + burst).round() as i32
        })
        .collect()
}

/// The latest burst second at station `s` at or before second `sec`, if within 10 s.
fn last_burst(s: usize, sec: usize) -> Option<usize> {
    let first = WARM_UP + 5 * s;
    if sec < first {
        return None;
    }
    let b = first + (sec - first) / EVERY * EVERY;
    (sec - b < 10).then_some(b)
}

impl Bench {
    /// Figure 14 (see the module doc).
    pub(super) fn detection(&mut self) -> Result<()> {
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("orbdetect")))
            .context("no executable directory")?;
        if !exe.exists() {
            println!(
                "{NAME:<36}skipped: {} is missing; build it with \
                 `cargo build --release --bin orbdetect` (same target dir)",
                exe.display()
            );
            self.record_skipped(NAME);
            return Ok(());
        }
        let srv = self.bind_inproc_config(256 << 20, |_| {})?;
        let dir = tempfile::Builder::new()
            .prefix("orbbench-detect-")
            .tempdir()?;
        let rules = dir.path().join("rules.toml");
        std::fs::write(
            &rules,
            format!(
                "[[detect]]\nname = \"bench\"\norb = \"{}:{}\"\nselect = \"XX_R.*\"\n\
                 channels = \"BHZ\"\nmethod = \"recursive\"\nsta = 0.5\nlta = 10.0\n\
                 on = 4.0\noff = 1.5\nbandpass = [1.0, 8.0]\nholdoff = 1.0\n",
                srv.addr.host, srv.addr.port
            ),
        )?;
        let _detector = Detector(
            Command::new(&exe)
                .arg(&rules)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("cannot start {}", exe.display()))?,
        );
        let seconds = if self.args.quick { 70 } else { 250 };
        let mut met = true;
        for (r, per_second) in [(1, 40.0), (2, 400.0)] {
            let (det, reap, missing) = self.detection_run(&srv.addr, r, per_second, seconds)?;
            let (d50, d90, dmax) = (pct(&det, 0.5), pct(&det, 0.9), pct(&det, 1.0));
            let (r50, r90) = (pct(&reap, 0.5), pct(&reap, 0.9));
            let beyond = d50.saturating_sub(r50);
            let ok = beyond < Duration::from_millis(10) && missing == 0 && !det.is_empty();
            met &= ok;
            println!(
                "{:<36}{:>12}   (p90 {}, max {}, {} triggers{}; plain reap of the same packets p50 {}, p90 {}; \
                 p50 beyond the reap {})   target p50 < 10 ms beyond the reap   {}",
                format!("14 detection latency, {per_second:.0} pkt/s"),
                format!("p50 {}", micros(d50)),
                micros(d90),
                micros(dmax),
                det.len(),
                if missing > 0 {
                    format!(", {missing} MISSING")
                } else {
                    String::new()
                },
                micros(r50),
                micros(r90),
                micros(beyond),
                mark(ok)
            );
        }
        self.record(NAME, Some(met));
        Ok(())
    }

    /// One rate: puts `seconds` of data of stations `XX_R<r>S<i>` at `per_second`
    /// packets/s; returns the sorted trigger and plain-reap latencies of the burst
    /// packets and how many triggers did not come.
    fn detection_run(
        &mut self,
        addr: &orbclient::OrbAddr,
        r: usize,
        per_second: f64,
        seconds: usize,
    ) -> Result<(Vec<Duration>, Vec<Duration>, usize)> {
        let start = Time::from_micros(1_795_341_600_000_000);
        let mut rounds: Vec<Vec<(Packet, bool)>> = vec![Vec::new(); seconds];
        for s in 0..STATIONS {
            let sta = format!("R{r}S{s}");
            let x = samples(s, seconds);
            let name = SrcName::new(&format!("XX_{sta}_BHZ/GENC"))?;
            for (sec, round) in rounds.iter_mut().enumerate() {
                let t = start
                    .checked_add_micros(sec as i64 * 1_000_000)
                    .context("time")?;
                let ch = Channel {
                    net: "XX".into(),
                    sta: sta.clone(),
                    chan: "BHZ".into(),
                    loc: String::new(),
                    start: t,
                    samprate: RATE,
                    calib: 1.0,
                    calper: 1.0,
                    segtype: 'V',
                    samples: x[sec * RATE as usize..(sec + 1) * RATE as usize].to_vec(),
                };
                let onset = last_burst(s, sec) == Some(sec);
                round.push((Packet::new(name.clone(), t, genc::encode(&ch)?), onset));
            }
        }
        let bursts: usize = rounds.iter().flatten().filter(|(_, b)| *b).count();
        let opts = client_opts("orbbench-detect");
        let gap = Duration::from_secs_f64(1.0 / per_second);
        let addr = addr.clone();
        self.client_rt.block_on(async move {
            let mut put = OrbClient::connect(&addr, &opts).await?;
            let mut dets = OrbClient::connect(&addr, &opts).await?;
            dets.select(&format!("XX_R{r}S.*/DET")).await?;
            let mut dets = dets.reap(ReapOptions::default()).await?;
            let mut waves = OrbClient::connect(&addr, &opts).await?;
            waves.select(&format!("XX_R{r}S.*/GENC")).await?;
            let mut waves = waves.reap(ReapOptions::default()).await?;
            let origin = Instant::now();
            let put_task = async {
                let mut sent: HashMap<(String, i64), Instant> = HashMap::new();
                let mut tick = tokio::time::interval(gap);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                for (p, onset) in rounds.iter().flatten() {
                    tick.tick().await;
                    let at = Instant::now();
                    put.put(&p.srcname, p.time, &p.payload).await?;
                    if *onset {
                        let chan = p.srcname.as_str().trim_end_matches("/GENC").to_owned();
                        sent.insert((chan, p.time.as_micros() / 1_000_000), at);
                    }
                }
                anyhow::Ok(sent)
            };
            let wave_task = async {
                let mut got: HashMap<(String, i64), Instant> = HashMap::new();
                let total = rounds.iter().map(Vec::len).sum::<usize>();
                let mut n = 0;
                while n < total {
                    match waves.next().await? {
                        Some(ReapEvent::Packet(p)) => {
                            n += 1;
                            let chan = p.srcname.as_str().trim_end_matches("/GENC").to_owned();
                            got.insert((chan, p.time.as_micros() / 1_000_000), Instant::now());
                        }
                        Some(ReapEvent::Gap { .. }) => {}
                        None => break,
                    }
                }
                anyhow::Ok(got)
            };
            let det_task = async {
                let mut got: HashMap<(String, i64), Instant> = HashMap::new();
                // Bounded: all bursts' triggers, or 10 s without one after the data.
                let data =
                    Duration::from_secs_f64(rounds.len() as f64 * STATIONS as f64 / per_second);
                while got.len() < bursts {
                    let wait = (origin + data + Duration::from_secs(10))
                        .saturating_duration_since(Instant::now());
                    let Ok(ev) = tokio::time::timeout(wait, dets.next()).await else {
                        break;
                    };
                    if let Some(ReapEvent::Packet(p)) = ev? {
                        let v: serde_json::Value = serde_json::from_slice(&p.payload)?;
                        if v["kind"] == "on" {
                            let chan = v["channel"].as_str().unwrap_or("").to_owned();
                            let sec = v["onset_us"].as_i64().unwrap_or(0).div_euclid(1_000_000);
                            got.insert((chan, sec), Instant::now());
                        }
                    }
                }
                anyhow::Ok(got)
            };
            let (sent, waves, dets) = tokio::try_join!(put_task, wave_task, det_task)?;
            let mut det = Vec::new();
            let mut reap = Vec::new();
            let mut missing = 0;
            for (k, at) in &sent {
                match dets.get(k) {
                    Some(d) => det.push(d.saturating_duration_since(*at)),
                    None => missing += 1,
                }
                if let Some(w) = waves.get(k) {
                    reap.push(w.saturating_duration_since(*at));
                }
            }
            det.sort_unstable();
            reap.sort_unstable();
            anyhow::Ok((det, reap, missing))
        })
    }
}
