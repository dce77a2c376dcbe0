//! Flush policies: what survives a power failure (RING-FORMAT.md section 6).

use std::fmt;
use std::str::FromStr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

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
    ) -> std::io::Result<IntervalFlusher> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name("ring-flush".into()).spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                if let Err(e) = flusher.flush() {
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
