//! The in-memory index of the live records: pktid lookup, ring-order neighbours, the
//! time index and the per-source index. Rebuilt from the file on open (recovery) and kept
//! in step with every append and eviction; it never touches the file.

use std::collections::{HashMap, VecDeque};

use formats::{SrcName, Time};

use super::timeindex::{TimeIndex, BLOCK};

const NONE: u64 = u64::MAX;

/// One live record, as the index knows it (40 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Logical position of the record.
    pub lpos: u64,
    /// Packet id.
    pub pktid: u64,
    /// Packet time, microseconds since the epoch.
    pub time: i64,
    /// Sequence number of the next live entry of the same source, or `NONE`.
    next_same: u64,
    /// Payload length in bytes.
    pub payload_len: u32,
    /// Source number, an index into the source table.
    pub src: u32,
}

/// Per-source summary of the live records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// The source.
    pub srcname: SrcName,
    /// Oldest live pktid of this source.
    pub oldest_pktid: u64,
    /// Time of that packet.
    pub oldest_time: Time,
    /// Newest live pktid of this source.
    pub newest_pktid: u64,
    /// Time of that packet.
    pub newest_time: Time,
    /// Live packets of this source.
    pub npkts: u64,
    /// Live payload bytes of this source.
    pub nbytes: u64,
}

struct Source {
    name: SrcName,
    oldest_seq: u64,
    newest_seq: u64,
    npkts: u64,
    nbytes: u64,
}

/// The index of live records, oldest first.
pub struct RingIndex {
    entries: VecDeque<Entry>,
    /// Sequence number of `entries[0]`.
    head_seq: u64,
    times: TimeIndex,
    sources: Vec<Source>,
    by_name: HashMap<SrcName, u32, ahash::RandomState>,
}

impl Default for RingIndex {
    fn default() -> Self {
        RingIndex {
            entries: VecDeque::new(),
            head_seq: 0,
            times: TimeIndex::with_blocks(64),
            sources: Vec::new(),
            by_name: HashMap::default(),
        }
    }
}

impl RingIndex {
    /// Number of live records.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry at ring position `pos` (0 is the oldest).
    pub fn get(&self, pos: usize) -> Option<&Entry> {
        self.entries.get(pos)
    }

    /// The oldest live entry.
    pub fn front(&self) -> Option<&Entry> {
        self.entries.front()
    }

    /// The newest live entry.
    pub fn back(&self) -> Option<&Entry> {
        self.entries.back()
    }

    /// The srcname of source number `src`.
    pub fn srcname(&self, src: u32) -> &SrcName {
        &self.sources[src as usize].name
    }

    /// Adds the newest record. `pktid` and `lpos` must exceed those of every live entry.
    pub fn push(&mut self, pktid: u64, lpos: u64, time: i64, payload_len: u32, srcname: &str) {
        debug_assert!(self.back().is_none_or(|b| b.pktid < pktid && b.lpos < lpos));
        let seq = self.head_seq + self.entries.len() as u64;
        let src = match self.by_name.get(srcname) {
            Some(&s) => s,
            None => {
                // Callers pass names that were validated (or read back from records
                // that were), so this only fails on a bug; the record limit applies.
                let name = SrcName::with_limit(srcname, super::MAX_RECORD_SRCNAME)
                    .expect("validated srcname");
                let s = self.sources.len() as u32;
                self.sources.push(Source {
                    name: name.clone(),
                    oldest_seq: NONE,
                    newest_seq: NONE,
                    npkts: 0,
                    nbytes: 0,
                });
                self.by_name.insert(name, s);
                s
            }
        };
        let source = &mut self.sources[src as usize];
        if source.npkts == 0 {
            source.oldest_seq = seq;
        } else {
            let prev = (source.newest_seq - self.head_seq) as usize;
            self.entries[prev].next_same = seq;
        }
        source.newest_seq = seq;
        source.npkts += 1;
        source.nbytes += u64::from(payload_len);
        self.entries.push_back(Entry {
            lpos,
            pktid,
            time,
            next_same: NONE,
            payload_len,
            src,
        });
        let span = seq / BLOCK - self.head_seq / BLOCK + 1;
        if span > self.times.capacity_blocks() {
            self.rebuild_times(span * 2);
        } else {
            self.times.push(seq, time);
        }
    }

    fn rebuild_times(&mut self, blocks: u64) {
        let mut times = TimeIndex::with_blocks(blocks);
        // A block's leaf is reset by its first sequence number, so start from the
        // block boundary even if the oldest entries of that block are gone.
        let first = self.head_seq - self.head_seq % BLOCK;
        for seq in first..self.head_seq {
            times.push(seq, i64::MIN);
        }
        for (i, e) in self.entries.iter().enumerate() {
            times.push(self.head_seq + i as u64, e.time);
        }
        self.times = times;
    }

    /// Removes the oldest record and returns it.
    pub fn pop_front(&mut self) -> Option<Entry> {
        let e = self.entries.pop_front()?;
        let source = &mut self.sources[e.src as usize];
        debug_assert_eq!(source.oldest_seq, self.head_seq);
        source.npkts -= 1;
        source.nbytes -= u64::from(e.payload_len);
        source.oldest_seq = e.next_same;
        if source.npkts == 0 {
            source.newest_seq = NONE;
        }
        self.head_seq += 1;
        Some(e)
    }

    /// Ring position of `pktid`, or `Err(position where it would be)`.
    pub fn find(&self, pktid: u64) -> Result<usize, usize> {
        let (Some(front), Some(back)) = (self.front(), self.back()) else {
            return Err(0);
        };
        if pktid < front.pktid {
            return Err(0);
        }
        if pktid > back.pktid {
            return Err(self.entries.len());
        }
        // pktids are dense unless a crash jump or a corrupt region left a hole.
        if back.pktid - front.pktid + 1 == self.entries.len() as u64 {
            return Ok((pktid - front.pktid) as usize);
        }
        self.entries.binary_search_by_key(&pktid, |e| e.pktid)
    }

    /// Ring position of the first live record whose pktid is greater than `pktid`.
    pub fn first_after(&self, pktid: u64) -> usize {
        match self.find(pktid) {
            Ok(p) => p + 1,
            Err(p) => p,
        }
    }

    /// Ring position of the first record in ring order whose time is `>= t`.
    pub fn first_at_or_after_time(&self, t: i64) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let tail_seq = self.head_seq + self.entries.len() as u64 - 1;
        let head_block = self.head_seq / BLOCK;
        let tail_block = tail_seq / BLOCK;
        // The oldest block may be partly evicted and its leaf may remember evicted
        // times, so it is scanned directly.
        let head_end = ((head_block + 1) * BLOCK).min(tail_seq + 1);
        if let Some(p) = self.scan(self.head_seq, head_end, t) {
            return Some(p);
        }
        let block = self
            .times
            .first_block_at_least(head_block + 1, tail_block, t)?;
        let from = block * BLOCK;
        self.scan(from, ((block + 1) * BLOCK).min(tail_seq + 1), t)
    }

    fn scan(&self, from_seq: u64, to_seq: u64, t: i64) -> Option<usize> {
        let from = (from_seq - self.head_seq) as usize;
        let to = (to_seq - self.head_seq) as usize;
        self.entries
            .range(from..to)
            .position(|e| e.time >= t)
            .map(|i| from + i)
    }

    fn info(&self, s: &Source) -> Option<SourceInfo> {
        if s.npkts == 0 {
            return None;
        }
        let oldest = &self.entries[(s.oldest_seq - self.head_seq) as usize];
        let newest = &self.entries[(s.newest_seq - self.head_seq) as usize];
        Some(SourceInfo {
            srcname: s.name.clone(),
            oldest_pktid: oldest.pktid,
            oldest_time: Time::from_micros(oldest.time),
            newest_pktid: newest.pktid,
            newest_time: Time::from_micros(newest.time),
            npkts: s.npkts,
            nbytes: s.nbytes,
        })
    }

    /// Summaries of every source with live records, in srcname order.
    pub fn sources(&self) -> Vec<SourceInfo> {
        let mut v: Vec<SourceInfo> = self.sources.iter().filter_map(|s| self.info(s)).collect();
        v.sort_by(|a, b| a.srcname.cmp(&b.srcname));
        v
    }

    /// The summary of one source, if it has live records.
    pub fn source(&self, srcname: &str) -> Option<SourceInfo> {
        let &s = self.by_name.get(srcname)?;
        self.info(&self.sources[s as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> SrcName {
        SrcName::new(s).unwrap()
    }

    #[test]
    fn sources_follow_evictions() {
        let mut ix = RingIndex::default();
        let (a, b) = (name("A/GEN"), name("B/GEN"));
        for (i, n) in [&a, &b, &a, &a, &b].iter().enumerate() {
            ix.push(i as u64 + 1, i as u64 * 64, 100 + i as i64, 10, n.as_str());
        }
        let sa = ix.source("A/GEN").unwrap();
        assert_eq!(
            (sa.oldest_pktid, sa.newest_pktid, sa.npkts, sa.nbytes),
            (1, 4, 3, 30)
        );
        ix.pop_front();
        ix.pop_front();
        let sa = ix.source("A/GEN").unwrap();
        assert_eq!(
            (sa.oldest_pktid, sa.oldest_time.as_micros(), sa.npkts),
            (3, 102, 2)
        );
        let sb = ix.source("B/GEN").unwrap();
        assert_eq!((sb.oldest_pktid, sb.newest_pktid, sb.npkts), (5, 5, 1));
        ix.pop_front();
        ix.pop_front();
        assert!(ix.source("A/GEN").is_none());
        assert_eq!(ix.sources().len(), 1);
        ix.push(9, 1000, 5, 1, a.as_str());
        assert_eq!(ix.source("A/GEN").unwrap().oldest_pktid, 9);
    }

    #[test]
    fn find_with_and_without_holes() {
        let mut ix = RingIndex::default();
        let a = name("A/GEN");
        for p in [3u64, 4, 5, 9, 10] {
            ix.push(p, p * 64, 0, 0, a.as_str());
        }
        assert_eq!(ix.find(4), Ok(1));
        assert_eq!(ix.find(9), Ok(3));
        assert_eq!(ix.find(7), Err(3));
        assert_eq!(ix.first_after(5), 3);
        assert_eq!(ix.first_after(1), 0);
        assert_eq!(ix.first_after(10), 5);
    }
}
