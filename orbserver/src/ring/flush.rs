//! Flush policies: what survives a power failure (RING-FORMAT.md section 6).

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::storage::RingFlusher;

/// When the ring's pages are written to the disk.
///
/// The default is `interval` with [`DEFAULT_FLUSH_INTERVAL`]: a process kill loses
/// nothing, a power failure at most one second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Never msync; survives a process kill, power failure loses what the kernel had not
    /// yet written back.
    None,
    /// A background thread msyncs the whole ring every interval: at most one interval of
    /// packets is lost on power failure.
    Interval(Duration),
    /// msync each append (or batch) before it returns: nothing acknowledged is lost.
    Always,
}

impl Default for FlushPolicy {
    fn default() -> Self {
        FlushPolicy::Interval(DEFAULT_FLUSH_INTERVAL)
    }
}

/// The interval `interval` means when none is given.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

impl fmt::Display for FlushPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlushPolicy::None => f.write_str("none"),
            FlushPolicy::Always => f.write_str("always"),
            FlushPolicy::Interval(d) => write!(f, "interval:{}", humantime::format_duration(*d)),
        }
    }
}

impl FromStr for FlushPolicy {
    type Err = String;

    /// Accepts `none`, `always`, `interval` (one second) and `interval:DURATION`
    /// (`interval:250ms`, `interval:5s`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(FlushPolicy::None),
            "always" => Ok(FlushPolicy::Always),
            "interval" => Ok(FlushPolicy::Interval(DEFAULT_FLUSH_INTERVAL)),
            _ => {
                let bad = || {
                    format!("bad flush policy {s:?}: use none, always, interval or interval:DURATION (e.g. interval:500ms)")
                };
                let d = s.strip_prefix("interval:").ok_or_else(bad)?;
                let d = humantime::parse_duration(d).map_err(|_| bad())?;
                if d.is_zero() {
                    return Err(bad());
                }
                Ok(FlushPolicy::Interval(d))
            }
        }
    }
}

/// Upper bounds, in seconds, of the msync latency histogram's buckets (the last,
/// `+Inf`, is implied).
pub const FLUSH_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// How long msyncs took: a histogram kept in atomics, so recording costs a few relaxed
/// adds and no lock. Interval flushes and the syncs of durable puts are both recorded.
#[derive(Debug, Default)]
pub struct FlushTimes {
    /// Counts per bucket of [`FLUSH_BUCKETS`], then the `+Inf` bucket (not cumulative).
    buckets: [AtomicU64; FLUSH_BUCKETS.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

/// A snapshot of [`FlushTimes`].
#[derive(Debug, Clone, PartialEq)]
pub struct FlushLatency {
    /// `(upper bound in seconds, msyncs that took at most that long)`, cumulative, one
    /// per [`FLUSH_BUCKETS`] entry.
    pub buckets: Vec<(f64, u64)>,
    /// Seconds spent in msync in all.
    pub sum: f64,
    /// Msyncs recorded.
    pub count: u64,
}

impl FlushTimes {
    /// Records one msync that took `d`.
    pub fn record(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = FLUSH_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(FLUSH_BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_us
            .fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// The histogram so far.
    pub fn snapshot(&self) -> FlushLatency {
        let mut below = 0;
        let buckets = FLUSH_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(&b, n)| {
                below += n.load(Relaxed);
                (b, below)
            })
            .collect();
        FlushLatency {
            buckets,
            sum: self.sum_us.load(Relaxed) as f64 / 1e6,
            count: self.count.load(Relaxed),
        }
    }
}

/// The background thread of the `interval` policy; stops when dropped.
pub struct IntervalFlusher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl IntervalFlusher {
    /// Starts flushing `flusher` (an msync of the whole mapping) every `every`.
    pub fn start<F: RingFlusher>(
        flusher: F,
        every: Duration,
        name: String,
        times: Arc<FlushTimes>,
    ) -> std::io::Result<IntervalFlusher> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name("ring-flush".into()).spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let started = Instant::now();
                let flushed = flusher.flush();
                times.record(started.elapsed());
                if let Err(e) = flushed {
                    tracing::error!("cannot msync ring {name}: {e}; packets since the last good msync are at risk on power failure");
                }
            }
        })?;
        Ok(IntervalFlusher {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for IntervalFlusher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_times_fall_into_cumulative_buckets() {
        let t = FlushTimes::default();
        t.record(Duration::from_micros(50));
        t.record(Duration::from_millis(3));
        t.record(Duration::from_secs(2));
        let s = t.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets.len(), FLUSH_BUCKETS.len());
        assert_eq!(s.buckets[0], (0.0001, 1));
        // 3 ms is above 2.5 ms and within 5 ms.
        assert_eq!(s.buckets[4], (0.0025, 1));
        assert_eq!(s.buckets[5], (0.005, 2));
        // 2 s is only in +Inf, which is `count`.
        assert_eq!(s.buckets.last(), Some(&(1.0, 2)));
        assert!((s.sum - 2.00305).abs() < 1e-9, "{}", s.sum);
    }

    #[test]
    fn parses_and_prints_every_policy() {
        for (s, p) in [
            ("none", FlushPolicy::None),
            ("always", FlushPolicy::Always),
            ("interval", FlushPolicy::Interval(Duration::from_secs(1))),
            (
                "interval:250ms",
                FlushPolicy::Interval(Duration::from_millis(250)),
            ),
        ] {
            assert_eq!(s.parse::<FlushPolicy>(), Ok(p));
            assert_eq!(p.to_string().parse::<FlushPolicy>(), Ok(p));
        }
        for bad in ["", "sometimes", "interval:", "interval:0s", "interval:xyz"] {
            let e = bad.parse::<FlushPolicy>().unwrap_err();
            assert!(e.contains("none, always, interval"), "{e}");
        }
    }
}
