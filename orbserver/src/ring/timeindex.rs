//! The time index: answers "first record in ring order whose time is >= t" in O(log n)
//! although packet times are not monotonic.
//!
//! Records are numbered by an in-memory sequence number (`seq`, dense, unlike pktids
//! after a crash jump). Each block of [`BLOCK`] consecutive sequence numbers has one
//! leaf holding the largest time in the block; a segment tree over the leaves holds
//! maxima of ranges. Leaves are used circularly (`block mod capacity`), and the owner
//! rebuilds the tree with twice the capacity before the live blocks would wrap onto
//! themselves. Leaves of evicted blocks keep stale maxima; queries are clipped to the
//! live range, so a stale maximum can only send the descent into a subtree that it then
//! leaves again, which the range bound keeps to O(log n).

/// Sequence numbers per leaf. A query scans at most two partial blocks linearly.
pub const BLOCK: u64 = 16;

/// A max-tree over blocks of sequence numbers.
pub struct TimeIndex {
    /// Number of leaves, a power of two.
    cap: usize,
    /// `tree[1]` is the root; leaves are `tree[cap..2 * cap]`.
    tree: Vec<i64>,
}

impl TimeIndex {
    /// A tree able to hold `blocks` live blocks.
    pub fn with_blocks(blocks: u64) -> TimeIndex {
        let cap = (blocks.max(2) as usize).next_power_of_two();
        TimeIndex {
            cap,
            tree: vec![i64::MIN; 2 * cap],
        }
    }

    /// How many live blocks the tree can hold.
    pub fn capacity_blocks(&self) -> u64 {
        self.cap as u64
    }

    fn leaf(&self, block: u64) -> usize {
        self.cap + (block as usize & (self.cap - 1))
    }

    /// Records that sequence number `seq` has time `time`. Sequence numbers arrive in
    /// increasing order with no gaps.
    pub fn push(&mut self, seq: u64, time: i64) {
        let mut i = self.leaf(seq / BLOCK);
        if seq.is_multiple_of(BLOCK) {
            // A new block reuses the leaf of an evicted one: recompute the whole path,
            // since the old maximum may have been what the ancestors held.
            self.tree[i] = time;
            while i > 1 {
                i /= 2;
                self.tree[i] = self.tree[2 * i].max(self.tree[2 * i + 1]);
            }
        } else {
            while i >= 1 && self.tree[i] < time {
                self.tree[i] = time;
                i /= 2;
            }
        }
    }

    /// The first block in `from..=to` (block numbers, at most `capacity_blocks` apart)
    /// whose maximum time is `>= t`.
    pub fn first_block_at_least(&self, from: u64, to: u64, t: i64) -> Option<u64> {
        if from > to {
            return None;
        }
        debug_assert!(to - from < self.cap as u64);
        let lo = (from as usize) & (self.cap - 1);
        let hi = (to as usize) & (self.cap - 1);
        let leaf_to_block = |leaf: usize| {
            // Map a leaf index back to the block number in from..=to that uses it.
            let off = (leaf + self.cap - lo) & (self.cap - 1);
            from + off as u64
        };
        if lo <= hi {
            self.first_in(1, 0, self.cap - 1, lo, hi, t)
                .map(leaf_to_block)
        } else {
            self.first_in(1, 0, self.cap - 1, lo, self.cap - 1, t)
                .or_else(|| self.first_in(1, 0, self.cap - 1, 0, hi, t))
                .map(leaf_to_block)
        }
    }

    fn first_in(
        &self,
        node: usize,
        nlo: usize,
        nhi: usize,
        lo: usize,
        hi: usize,
        t: i64,
    ) -> Option<usize> {
        if nhi < lo || nlo > hi || self.tree[node] < t {
            return None;
        }
        if nlo == nhi {
            return Some(nlo);
        }
        let mid = nlo + (nhi - nlo) / 2;
        self.first_in(2 * node, nlo, mid, lo, hi, t)
            .or_else(|| self.first_in(2 * node + 1, mid + 1, nhi, lo, hi, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_first_block_across_the_circular_wrap() {
        let mut ti = TimeIndex::with_blocks(4);
        // Blocks 0..8 with block b holding times 10*b .. 10*b+15 reversed.
        for seq in 0..8 * BLOCK {
            let b = seq / BLOCK;
            ti.push(seq, (10 * b + (BLOCK - 1 - seq % BLOCK)) as i64);
        }
        // Live blocks are 4..=7 now; leaves of 0..=3 were reused.
        assert_eq!(ti.first_block_at_least(4, 7, 0), Some(4));
        assert_eq!(ti.first_block_at_least(4, 7, 55), Some(4));
        assert_eq!(ti.first_block_at_least(4, 7, 56), Some(5));
        assert_eq!(ti.first_block_at_least(5, 7, 70), Some(6));
        assert_eq!(ti.first_block_at_least(4, 7, 86), None);
        assert_eq!(ti.first_block_at_least(6, 5, 0), None);
    }

    #[test]
    fn a_reused_leaf_forgets_the_old_maximum() {
        let mut ti = TimeIndex::with_blocks(2);
        for seq in 0..BLOCK {
            ti.push(seq, 1000);
        }
        for seq in BLOCK..3 * BLOCK {
            ti.push(seq, 1);
        }
        assert_eq!(ti.first_block_at_least(1, 2, 1000), None);
        assert_eq!(ti.first_block_at_least(1, 2, 1), Some(1));
    }
}
