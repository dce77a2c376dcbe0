//! Recovery by scan (RING-FORMAT.md section 7, steps 2 to 6): a pure function from the
//! bytes of a data area to the live records and a report of what was skipped. It runs
//! on arbitrary bytes (the fuzz target feeds it garbage), so it never panics and never
//! trusts a length it has not checked.

use super::layout::{
    check_record, decode_record_header, max_record, RecordHeader, RECORD_ALIGN, RECORD_HEADER,
};

/// A hole in the live window that no valid record covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptRegion {
    /// Logical position where the hole starts.
    pub start: u64,
    /// Logical position where it ends (exclusive).
    pub end: u64,
    /// pktid of the last good record before it.
    pub after_pktid: u64,
    /// pktid of the first good record after it.
    pub before_pktid: u64,
}

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// The live records in ring (= lpos = pktid) order.
    pub live: Vec<RecordHeader>,
    /// Logical end of the newest record: where the writer continues.
    pub head_end: u64,
    /// Holes inside the live window.
    pub corrupt: Vec<CorruptRegion>,
    /// Records that checked but broke pktid order, dropped.
    pub out_of_order: u64,
    /// pktid of a record torn at the head, if one was found.
    pub torn_tail: Option<u64>,
}

/// Scans a data area (the file minus its header page) and returns the live records.
pub fn scan(data: &[u8]) -> Scan {
    scan_to(data, data.len())
}

/// As [`scan`], looking for records only below data offset `limit` (the header's scan
/// limit: nothing was ever written beyond it, so a fresh or lightly used ring reopens
/// without reading its untouched tail).
pub fn scan_to(data: &[u8], limit: usize) -> Scan {
    let capacity = data.len() as u64;
    let limit = limit.min(data.len());
    let mut found: Vec<RecordHeader> = Vec::new();
    let mut off = 0usize;
    while off + RECORD_HEADER <= limit {
        match check_record(data, off) {
            Some(h) => {
                found.push(h);
                off += h.stored_size() as usize;
            }
            None => off += RECORD_ALIGN,
        }
    }
    let Some(head_end) = found.iter().map(|h| h.lpos + h.stored_size()).max() else {
        return Scan::default();
    };
    let window_start = head_end.saturating_sub(capacity);
    found.retain(|h| h.lpos >= window_start);
    found.sort_unstable_by_key(|h| h.lpos);

    let mut out = Scan {
        head_end,
        ..Scan::default()
    };
    let mut live: Vec<RecordHeader> = Vec::with_capacity(found.len());
    for h in found {
        if let Some(prev) = live.last() {
            if h.pktid <= prev.pktid {
                out.out_of_order += 1;
                continue;
            }
            let expected = prev.lpos + prev.stored_size();
            let wrap = h.lpos % capacity == 0 && h.lpos - expected < max_record(capacity);
            if h.lpos > expected && !wrap {
                out.corrupt.push(CorruptRegion {
                    start: expected,
                    end: h.lpos,
                    after_pktid: prev.pktid,
                    before_pktid: h.pktid,
                });
            }
        }
        live.push(h);
    }
    out.live = live;
    out.torn_tail = torn_at(data, head_end);
    out
}

/// A record header at `lpos` that claims that position but does not check.
fn torn_at(data: &[u8], lpos: u64) -> Option<u64> {
    let off = (lpos % data.len() as u64) as usize;
    let h = decode_record_header(data.get(off..)?)?;
    (h.lpos == lpos && check_record(data, off).is_none()).then_some(h.pktid)
}

#[cfg(test)]
mod tests {
    use super::super::layout::{encode_record, stored_size};
    use super::*;

    fn put(data: &mut [u8], lpos: u64, pktid: u64, payload: &[u8]) -> u64 {
        let size = stored_size(1, payload.len());
        let off = (lpos % data.len() as u64) as usize;
        encode_record(
            &mut data[off..off + size as usize],
            lpos,
            pktid,
            0,
            b"S",
            payload,
        );
        lpos + size
    }

    #[test]
    fn empty_and_garbage_areas_hold_nothing() {
        assert_eq!(scan(&vec![0u8; 1 << 20]), Scan::default());
        let garbage: Vec<u8> = (0..1u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert!(scan(&garbage).live.is_empty());
        assert!(scan(&[]).live.is_empty());
        assert!(scan(&[1, 2, 3]).live.is_empty());
    }

    #[test]
    fn stale_records_of_older_laps_are_not_live() {
        let cap = 1u64 << 20;
        let mut data = vec![0u8; cap as usize];
        // Lap 0 fills the area with 1000-byte payloads; lap 1 writes a few records.
        let mut lpos = 0;
        let mut pktid = 1;
        while lpos % cap + stored_size(1, 1000) <= cap {
            lpos = put(&mut data, lpos, pktid, &[7; 1000]);
            pktid += 1;
        }
        let lap0_last = pktid - 1;
        lpos = cap;
        for _ in 0..5 {
            lpos = put(&mut data, lpos, pktid, &[8; 100]);
            pktid += 1;
        }
        let s = scan(&data);
        assert_eq!(s.head_end, lpos);
        assert_eq!(s.live.last().unwrap().pktid, pktid - 1);
        // Lap-0 records overlapped by lap 1 are gone; the rest are live, in order.
        assert_eq!(s.live.first().unwrap().pktid, 2);
        assert_eq!(
            s.live.iter().filter(|h| h.pktid <= lap0_last).count() as u64,
            lap0_last - 1
        );
        assert!(s.corrupt.is_empty(), "{:?}", s.corrupt);
        assert_eq!(s.out_of_order, 0);
    }
}
