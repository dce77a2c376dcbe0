//! Replaying raw packet files into an orb: what `orbput --from` does, without the I/O
//! to the server.
//!
//! - [`Merge`]: several raw files read together in packet-time order (a k-way merge
//!   on each file's next packet; ties go to the file given first, then the lower
//!   pktid). Each file is read in its own order, a record at a time.
//! - [`Pacer`]: when a packet is due in a real-time replay, from the gap between
//!   packet times, scaled by a speed.
//! - [`Progress`]: when to print a progress line on a long replay.
//!
//! A corrupt record stops the merge at once: every packet already handed out was
//! read before it (in its own file, and merged before the point where that file's
//! next packet was needed), nothing after is, and [`Merge::take_error`] names the file
//! and byte offset. A torn tail (a file cut in mid-record, as a crash of its writer
//! leaves it) is not an error: the file simply ends, and [`Merge::torn_tails`] says so.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Read;
use std::time::{Duration, Instant};

use formats::write::raw::{RawError, RawStream};
use formats::{Packet, Time};

/// A raw file that could not be replayed to its end.
#[derive(Debug, thiserror::Error)]
// The raw error is shown in the message, not chained as a source, so that anyhow's
// `{:#}` prints it once.
#[error("{file}: {error}")]
pub struct ReplayError {
    /// The file, as given.
    pub file: String,
    /// What is wrong with it (offset included).
    pub error: RawError,
}

/// A file that ended inside a record: the bytes after `offset` were not replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The file, as given.
    pub file: String,
    /// Where the incomplete record starts.
    pub offset: u64,
    /// Its bytes.
    pub len: u64,
}

struct Source<R> {
    name: String,
    stream: RawStream<R>,
    head: Option<Packet>,
}

/// Raw files merged by packet time; see the module docs. An [`Iterator`] of packets
/// (pktids as stored in the files), so it feeds `OrbClient::put_pipelined` directly.
pub struct Merge<R> {
    sources: Vec<Source<R>>,
    /// (time, file index, pktid) of each file's next packet, earliest on top.
    heap: BinaryHeap<Reverse<(Time, usize, u64)>>,
    error: Option<ReplayError>,
    torn: Vec<TornTail>,
    handed_out: u64,
}

impl<R: Read> Merge<R> {
    /// Opens the merge over `(name, reader)` pairs, reading each file's header and
    /// first packet. Fails on the first file that is not a raw file or whose first
    /// record is corrupt, before any packet is handed out.
    pub fn new(files: impl IntoIterator<Item = (String, R)>) -> Result<Merge<R>, ReplayError> {
        let mut m = Merge {
            sources: Vec::new(),
            heap: BinaryHeap::new(),
            error: None,
            torn: Vec::new(),
            handed_out: 0,
        };
        for (name, reader) in files {
            m.sources.push(Source {
                name,
                stream: RawStream::new(reader),
                head: None,
            });
            let i = m.sources.len() - 1;
            m.refill(i);
            if let Some(e) = m.error.take() {
                return Err(e);
            }
        }
        Ok(m)
    }

    /// Reads file `i`'s next packet into its head and the heap.
    fn refill(&mut self, i: usize) {
        let src = &mut self.sources[i];
        match src.stream.next_packet() {
            Ok(Some(p)) => {
                self.heap.push(Reverse((p.time, i, p.pktid)));
                src.head = Some(p);
            }
            Ok(None) => {
                if src.stream.torn_len() > 0 {
                    self.torn.push(TornTail {
                        file: src.name.clone(),
                        offset: src.stream.valid_len(),
                        len: src.stream.torn_len(),
                    });
                }
            }
            Err(error) => {
                self.error = Some(ReplayError {
                    file: src.name.clone(),
                    error,
                });
            }
        }
    }

    /// The time of the packet [`next`](Iterator::next) would give, if any.
    pub fn peek_time(&self) -> Option<Time> {
        if self.error.is_some() {
            return None;
        }
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    /// The corrupt record that stopped the merge, if one did.
    pub fn take_error(&mut self) -> Option<ReplayError> {
        self.error.take()
    }

    /// Files that ended in an incomplete record, in the order their ends were reached.
    pub fn torn_tails(&self) -> &[TornTail] {
        &self.torn
    }

    /// How many files are merged.
    pub fn files(&self) -> usize {
        self.sources.len()
    }

    /// How many packets were handed out so far.
    pub fn handed_out(&self) -> u64 {
        self.handed_out
    }
}

impl<R: Read> Iterator for Merge<R> {
    type Item = Packet;

    fn next(&mut self) -> Option<Packet> {
        if self.error.is_some() {
            return None;
        }
        let Reverse((_, i, _)) = self.heap.pop()?;
        let p = self.sources[i].head.take()?;
        // Read the file's next record now, so that a corrupt one stops the merge
        // before any later packet (of any file) goes out.
        self.refill(i);
        self.handed_out += 1;
        Some(p)
    }
}

/// When packets of a real-time replay are due: the first packet at once, each later
/// one after the gap between its time and the first packet's, divided by `speed`.
/// A packet older than the first is due at once.
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    origin: Time,
    speed: f64,
}

impl Pacer {
    /// A pacer for a replay whose first packet has time `origin`; `speed` 2 plays twice
    /// as fast as recorded. `speed` must be finite and positive (orbput checks it).
    pub fn new(origin: Time, speed: f64) -> Pacer {
        Pacer { origin, speed }
    }

    /// How long after the replay started a packet of time `t` is due.
    pub fn offset(&self, t: Time) -> Duration {
        let gap = t.as_micros().saturating_sub(self.origin.as_micros());
        if gap <= 0 {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64(gap as f64 / 1e6 / self.speed).unwrap_or(Duration::MAX)
    }
}

/// Says when a long replay is due for its next progress line.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    start: Instant,
    last: Instant,
    every: Duration,
}

impl Progress {
    /// Progress lines at most every `every`, counted from `now`.
    pub fn new(now: Instant, every: Duration) -> Progress {
        Progress {
            start: now,
            last: now,
            every,
        }
    }

    /// A line for `packets` sent so far if one is due at `now`, else `None`.
    pub fn tick(&mut self, now: Instant, packets: u64) -> Option<String> {
        if now.duration_since(self.last) < self.every {
            return None;
        }
        self.last = now;
        let secs = now.duration_since(self.start).as_secs_f64();
        let rate = if secs > 0.0 {
            packets as f64 / secs
        } else {
            0.0
        };
        Some(format!(
            "{packets} packets in {secs:.1}s ({rate:.0} packets/s)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::write::raw::RawWriter;
    use formats::write::PacketWriter;
    use formats::SrcName;

    fn file(packets: &[(u64, i64)]) -> Vec<u8> {
        let mut w = RawWriter::new(Vec::new());
        for &(id, t) in packets {
            let mut p = Packet::new(
                SrcName::new("XX_A").unwrap(),
                Time::from_micros(t),
                id.to_le_bytes().to_vec(),
            );
            p.pktid = id;
            w.append(&p, &[]).unwrap();
        }
        w.finish().unwrap();
        w.into_inner()
    }

    fn ids<R: Read>(m: Merge<R>) -> Vec<u64> {
        m.map(|p| p.pktid).collect()
    }

    #[test]
    fn files_merge_by_time_then_file_then_pktid() {
        let a = file(&[(1, 10), (2, 30), (3, 30), (4, 50)]);
        let b = file(&[(11, 20), (12, 30), (13, 40)]);
        let c = file(&[]);
        let m = Merge::new([
            ("a".to_owned(), &a[..]),
            ("b".to_owned(), &b[..]),
            ("c".to_owned(), &c[..]),
        ])
        .unwrap();
        assert_eq!(m.files(), 3);
        assert_eq!(ids(m), [1, 11, 2, 3, 12, 13, 4]);
        let m = Merge::new([("b".to_owned(), &b[..]), ("a".to_owned(), &a[..])]).unwrap();
        assert_eq!(ids(m), [1, 11, 12, 2, 3, 13, 4]);
    }

    #[test]
    fn corruption_stops_the_merge_and_names_file_and_offset() {
        let a = file(&[(1, 10), (2, 20), (3, 30)]);
        let mut bad = file(&[(11, 15), (12, 25), (13, 35)]);
        let second = 12 + 33 + 4 + 8; // header, record of "XX_A" with an 8-byte payload
        bad[second + 20] ^= 1;
        let mut m = Merge::new([("a".to_owned(), &a[..]), ("bad".to_owned(), &bad[..])]).unwrap();
        let got: Vec<u64> = m.by_ref().map(|p| p.pktid).collect();
        // 11 is handed out, and reading its successor finds the damage.
        assert_eq!(got, [1, 11]);
        let e = m.take_error().unwrap().to_string();
        assert!(
            e.starts_with(&format!("bad: corrupt record at byte offset {second}")),
            "{e}"
        );
    }

    #[test]
    fn bad_first_record_or_header_fails_before_any_packet() {
        let a = file(&[(1, 10)]);
        let junk = b"hello world".to_vec();
        let err = Merge::new([("a".to_owned(), &a[..]), ("junk".to_owned(), &junk[..])])
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("junk: not a raw packet file"));
    }

    #[test]
    fn torn_tail_ends_a_file_quietly() {
        let a = file(&[(1, 10), (2, 20)]);
        let cut = &a[..a.len() - 3];
        let mut m = Merge::new([("a".to_owned(), cut)]).unwrap();
        assert_eq!(m.by_ref().map(|p| p.pktid).collect::<Vec<_>>(), [1]);
        assert!(m.take_error().is_none());
        assert_eq!(
            m.torn_tails(),
            [TornTail {
                file: "a".into(),
                offset: 12 + 45,
                len: 42
            }]
        );
    }

    #[test]
    fn pacer_scales_gaps() {
        let p = Pacer::new(Time::from_micros(1_000_000), 4.0);
        assert_eq!(p.offset(Time::from_micros(0)), Duration::ZERO);
        assert_eq!(p.offset(Time::from_micros(1_000_000)), Duration::ZERO);
        assert_eq!(
            p.offset(Time::from_micros(3_000_000)),
            Duration::from_millis(500)
        );
        let p = Pacer::new(Time::MIN, 1e-300);
        assert_eq!(p.offset(Time::MAX), Duration::MAX);
    }

    #[test]
    fn progress_lines_come_at_most_every_period() {
        let t0 = Instant::now();
        let mut p = Progress::new(t0, Duration::from_secs(1));
        assert_eq!(p.tick(t0 + Duration::from_millis(500), 10), None);
        let line = p.tick(t0 + Duration::from_secs(2), 100).unwrap();
        assert_eq!(line, "100 packets in 2.0s (50 packets/s)");
        assert_eq!(p.tick(t0 + Duration::from_millis(2500), 150), None);
    }
}
