//! The duplicate and loop rule: per srcname, the newest packet time already at OUT.
//!
//! A packet is forwarded only if its time is strictly greater than the newest time
//! OUT is known to hold for its srcname. The table is replaced from OUT's SOURCES at
//! every (re)connect, raised from SOURCES before each batch is put, and raised again
//! from the batch once OUT acknowledged it. See docs/FEDERATION.md.

use std::collections::HashMap;

use formats::proto::info::SourcesInfo;
use formats::{Packet, Time};

/// Newest time per srcname known to be present at OUT.
#[derive(Debug, Default, Clone)]
pub struct NewestTimes {
    newest: HashMap<String, Time>,
}

impl NewestTimes {
    /// Forgets everything and takes OUT's SOURCES as the truth (after a connect: OUT
    /// may be a new ring that lost what it had).
    pub fn replace_from(&mut self, sources: &SourcesInfo) {
        self.newest.clear();
        self.merge(sources);
    }

    /// Raises entries to what SOURCES reports (never lowers them).
    pub fn merge(&mut self, sources: &SourcesInfo) {
        for s in &sources.sources {
            // A time the server writes and cannot read back is skipped; the entry
            // then only errs toward forwarding.
            if let Ok(t) = Time::parse_iso8601(&s.newest.time) {
                self.raise(&s.srcname, t);
            }
        }
    }

    fn raise(&mut self, srcname: &str, t: Time) {
        match self.newest.get_mut(srcname) {
            Some(old) => *old = (*old).max(t),
            None => {
                self.newest.insert(srcname.to_owned(), t);
            }
        }
    }

    /// Splits `packets` into those to forward (in order) and the count suppressed,
    /// applying the rule within the batch too. The table is not changed: call
    /// [`commit`](Self::commit) with the forwarded packets once OUT acknowledged them.
    pub fn admit<'a>(&self, packets: &'a [Packet]) -> (Vec<&'a Packet>, u64) {
        let mut overlay: HashMap<&str, Time> = HashMap::new();
        let mut keep = Vec::with_capacity(packets.len());
        let mut suppressed = 0;
        for p in packets {
            let name = p.srcname.as_str();
            let known = overlay
                .get(name)
                .copied()
                .or_else(|| self.newest.get(name).copied());
            if known.is_some_and(|k| p.time <= k) {
                suppressed += 1;
            } else {
                overlay.insert(name, p.time);
                keep.push(p);
            }
        }
        (keep, suppressed)
    }

    /// Records packets OUT acknowledged.
    pub fn commit<'a>(&mut self, forwarded: impl IntoIterator<Item = &'a Packet>) {
        for p in forwarded {
            self.raise(p.srcname.as_str(), p.time);
        }
    }

    /// Srcnames known.
    pub fn len(&self) -> usize {
        self.newest.len()
    }

    /// True if no srcname is known.
    pub fn is_empty(&self) -> bool {
        self.newest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::proto::info::{PktAt, SourceStat};
    use formats::SrcName;

    fn pkt(name: &str, t: i64) -> Packet {
        Packet::new(SrcName::new(name).unwrap(), Time::from_micros(t), vec![1u8])
    }

    fn sources(rows: &[(&str, i64)]) -> SourcesInfo {
        SourcesInfo {
            sources: rows
                .iter()
                .map(|&(n, t)| SourceStat {
                    srcname: n.to_owned(),
                    oldest: PktAt {
                        pktid: 1,
                        time: Time::from_micros(0).to_iso8601().unwrap(),
                    },
                    newest: PktAt {
                        pktid: 2,
                        time: Time::from_micros(t).to_iso8601().unwrap(),
                    },
                    npkts: 2,
                    nbytes: 2,
                    latency: 0.0,
                })
                .collect(),
        }
    }

    #[test]
    fn only_strictly_newer_times_pass() {
        let mut n = NewestTimes::default();
        n.replace_from(&sources(&[("AA_X", 100)]));
        let ps = [
            pkt("AA_X", 99),
            pkt("AA_X", 100),
            pkt("AA_X", 101),
            pkt("BB_Y", 5),
        ];
        let (keep, sup) = n.admit(&ps);
        assert_eq!(sup, 2);
        assert_eq!(keep.len(), 2);
        n.commit(keep);
        let more = [pkt("AA_X", 101), pkt("BB_Y", 5), pkt("BB_Y", 6)];
        let (keep, sup) = n.admit(&more);
        assert_eq!((keep.len(), sup), (1, 2));
    }

    #[test]
    fn duplicates_within_a_batch_are_suppressed() {
        let n = NewestTimes::default();
        let ps = [pkt("AA_X", 1), pkt("AA_X", 1), pkt("AA_X", 2)];
        let (keep, sup) = n.admit(&ps);
        assert_eq!((keep.len(), sup), (2, 1));
        assert!(n.is_empty(), "admit does not change the table");
    }

    #[test]
    fn merge_raises_and_replace_forgets() {
        let mut n = NewestTimes::default();
        n.commit(&[pkt("AA_X", 50)]);
        n.merge(&sources(&[("AA_X", 10)]));
        assert_eq!(n.admit(&[pkt("AA_X", 20)]).1, 1);
        n.replace_from(&sources(&[("AA_X", 10)]));
        assert_eq!(n.admit(&[pkt("AA_X", 20)]).1, 0);
        assert_eq!(n.len(), 1);
    }
}
