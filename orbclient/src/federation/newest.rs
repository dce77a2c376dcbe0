//! The duplicate and loop rule: per srcname, the newest packet time already at OUT.
//!
//! A packet is forwarded only if its time is strictly greater than the newest time
//! OUT is known to hold for its srcname. The table is replaced from OUT's SOURCES at
//! every (re)connect, raised from SOURCES before a batch is put unless OUT provably
//! holds nothing the table does not reflect ([`NewestTimes::through`]), and raised
//! again from the batch once OUT acknowledged it. See docs/FEDERATION.md.

use std::collections::HashMap;

use formats::proto::info::SourcesInfo;
use formats::{Packet, Time};

/// Newest time per srcname known to be present at OUT.
#[derive(Debug, Default, Clone)]
pub struct NewestTimes {
    newest: HashMap<String, Time>,
    /// An OUT pktid such that every packet OUT holds with this pktid or a lower one
    /// is reflected in the table; `None`: unknown.
    through: Option<u64>,
}

impl NewestTimes {
    /// Forgets everything and takes OUT's SOURCES as the truth (after a connect: OUT
    /// may be a new ring that lost what it had).
    pub fn replace_from(&mut self, sources: &SourcesInfo) {
        self.newest.clear();
        self.through = None;
        self.merge(sources);
    }

    /// The OUT pktid up to which the table is complete (see [`set_through`]).
    ///
    /// [`set_through`]: Self::set_through
    pub fn through(&self) -> Option<u64> {
        self.through
    }

    /// Records that every packet OUT holds up to pktid `p` is reflected in the table:
    /// `p` is OUT's newest pktid read *before* the SOURCES that was just merged.
    pub fn set_through(&mut self, p: Option<u64>) {
        self.through = p;
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

    /// Records packets OUT acknowledged, and that they got OUT's pktids `pktids`
    /// (first, last) with no other packet among them (`contiguous`). If they directly
    /// follow [`through`](Self::through), it advances to the last; otherwise it is
    /// forgotten (another writer may have put packets the table does not reflect).
    pub fn commit<'a>(
        &mut self,
        forwarded: impl IntoIterator<Item = &'a Packet>,
        pktids: Option<(u64, u64)>,
        contiguous: bool,
    ) {
        for p in forwarded {
            self.raise(p.srcname.as_str(), p.time);
        }
        self.through = match (self.through, pktids) {
            (t, None) => t,
            (Some(t), Some((first, last))) if contiguous && first == t + 1 => Some(last),
            _ => None,
        };
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
        n.commit(keep, None, true);
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
        n.commit(&[pkt("AA_X", 50)], None, true);
        n.merge(&sources(&[("AA_X", 10)]));
        assert_eq!(n.admit(&[pkt("AA_X", 20)]).1, 1);
        n.replace_from(&sources(&[("AA_X", 10)]));
        assert_eq!(n.admit(&[pkt("AA_X", 20)]).1, 0);
        assert_eq!(n.len(), 1);
    }

    #[test]
    fn through_advances_only_over_our_own_contiguous_pktids() {
        let mut n = NewestTimes::default();
        n.replace_from(&sources(&[("AA_X", 10)]));
        assert_eq!(n.through(), None);
        n.set_through(Some(7));
        n.commit(&[pkt("AA_X", 20)], Some((8, 9)), true);
        assert_eq!(n.through(), Some(9));
        n.commit(&[], None, true);
        assert_eq!(n.through(), Some(9), "nothing put, nothing learnt");
        n.commit(&[pkt("AA_X", 30)], Some((11, 12)), true);
        assert_eq!(n.through(), None, "pktid 10 was someone else's");
        n.set_through(Some(12));
        n.commit(&[pkt("AA_X", 40)], Some((13, 20)), false);
        assert_eq!(n.through(), None, "interleaved frames");
        n.set_through(Some(20));
        n.replace_from(&sources(&[]));
        assert_eq!(n.through(), None, "a reconnect forgets it");
    }
}
