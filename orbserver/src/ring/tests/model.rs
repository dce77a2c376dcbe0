//! Model test: `RingStore` against a `VecDeque` reference through random appends, wraps,
//! seeks and reopens; every answer must agree.

use std::collections::VecDeque;

use proptest::prelude::*;

use super::*;
use crate::ring::layout;

#[derive(Debug, Clone)]
enum Op {
    Append { src: u8, len: usize, time: i64 },
    Get(u64),
    After(i64),
    Next(u64),
    Prev(u64),
    Read { from: u64, max: usize, src: u8 },
    Reopen { clean: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0u8..4, prop_oneof![0usize..200, 0usize..40_000], -50i64..50).prop_map(|(src, len, time)| Op::Append { src, len, time }),
        2 => any::<u64>().prop_map(|p| Op::Get(p % 3000)),
        2 => (-60i64..60).prop_map(Op::After),
        1 => any::<u64>().prop_map(|p| Op::Next(p % 3000)),
        1 => any::<u64>().prop_map(|p| Op::Prev(p % 3000)),
        1 => (0u64..3000, 0usize..50, 0u8..5).prop_map(|(from, max, src)| Op::Read { from, max, src }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

const SRCS: [&str; 4] = [
    "TA_M04C/MGENC/EP40",
    "AZ_PFO_BHZ/MGENC/M40",
    "/pf/orbstat",
    "TA_O20A_/MGENC/MSTV",
];

#[derive(Clone)]
struct RefPkt {
    pktid: u64,
    lpos: u64,
    src: u8,
    time: i64,
    len: usize,
}

/// The reference: a deque of packets placed by the rules of RING-FORMAT.md section 3.
#[derive(Default)]
struct Reference {
    pkts: VecDeque<RefPkt>,
    head_end: u64,
}

impl Reference {
    fn append(&mut self, pktid: u64, src: u8, len: usize, time: i64) {
        let cap = MIB;
        let size = layout::stored_size(SRCS[src as usize].len(), len);
        let mut lpos = self.head_end;
        if lpos % cap + size > cap {
            lpos = (lpos / cap + 1) * cap;
        }
        self.head_end = lpos + size;
        while self
            .pkts
            .front()
            .is_some_and(|p| p.lpos < self.head_end - cap.min(self.head_end))
        {
            self.pkts.pop_front();
        }
        self.pkts.push_back(RefPkt {
            pktid,
            lpos,
            src,
            time,
            len,
        });
    }
}

fn check(ring: &RingStore, model: &Reference, op: &Op) {
    let find = |f: &dyn Fn(&RefPkt) -> bool| model.pkts.iter().find(|p| f(p)).map(|p| p.pktid);
    match *op {
        Op::Get(pktid) => {
            let got = ring.get(pktid).unwrap();
            let want = model.pkts.iter().find(|p| p.pktid == pktid);
            assert_eq!(got.is_some(), want.is_some(), "get({pktid})");
            if let (Some(g), Some(w)) = (got, want) {
                assert_eq!(
                    (g.srcname.as_str(), g.time.as_micros()),
                    (SRCS[w.src as usize], w.time)
                );
                assert_eq!(g.payload[..], payload(pktid, w.len)[..]);
            }
        }
        Op::After(t) => assert_eq!(
            ring.after(Time::from_micros(t)).map(|p| p.pktid),
            find(&|p| p.time >= t),
            "after({t})"
        ),
        Op::Next(n) => assert_eq!(
            ring.next_after(n).map(|p| p.pktid),
            find(&|p| p.pktid > n),
            "next({n})"
        ),
        Op::Prev(n) => assert_eq!(
            ring.prev_before(n).map(|p| p.pktid),
            model
                .pkts
                .iter()
                .rev()
                .find(|p| p.pktid < n)
                .map(|p| p.pktid),
            "prev({n})"
        ),
        Op::Read { from, max, src } => {
            let mut out = Vec::new();
            let keep = |s: &SrcName| src == 4 || s.as_str() == SRCS[src as usize];
            let o = ring.read_from(from, max, keep, &mut out);
            let want: Vec<u64> = model
                .pkts
                .iter()
                .filter(|p| p.pktid >= from && (src == 4 || p.src == src))
                .take(max)
                .map(|p| p.pktid)
                .collect();
            assert_eq!(
                out.iter().map(|p| p.pktid).collect::<Vec<_>>(),
                want,
                "read_from({from}, {max})"
            );
            let oldest = model.pkts.front().map(|p| p.pktid);
            assert_eq!(o.gap.is_some(), oldest.is_some_and(|o| from < o));
        }
        _ => {}
    }
    // Every step: the summary and the per-source index agree with the reference.
    let st = ring.stat();
    assert_eq!(st.npkts, model.pkts.len() as u64);
    assert_eq!(
        st.oldest.map(|p| p.pktid),
        model.pkts.front().map(|p| p.pktid)
    );
    assert_eq!(
        st.newest.map(|p| p.pktid),
        model.pkts.back().map(|p| p.pktid)
    );
    for (i, s) in SRCS.iter().enumerate() {
        let mine: Vec<&RefPkt> = model.pkts.iter().filter(|p| p.src as usize == i).collect();
        match ring.source(s) {
            None => assert!(mine.is_empty()),
            Some(info) => {
                assert_eq!(info.npkts, mine.len() as u64);
                assert_eq!(info.nbytes, mine.iter().map(|p| p.len as u64).sum::<u64>());
                assert_eq!(info.oldest_pktid, mine[0].pktid);
                assert_eq!(info.newest_pktid, mine[mine.len() - 1].pktid);
                assert_eq!(info.newest_time.as_micros(), mine[mine.len() - 1].time);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn ring_matches_reference_model(ops in proptest::collection::vec(op(), 1..400)) {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = open(dir.path(), MIB);
        let mut model = Reference::default();
        let mut max_pktid = 0;
        let mut next_pktid = 1;
        for op in &ops {
            match *op {
                Op::Append { src, len, time } => {
                    let pktid = ring.append(&name(SRCS[src as usize]), Time::from_micros(time), &payload(ring.stat().next_pktid, len)).unwrap();
                    prop_assert!(pktid > max_pktid);
                    prop_assert_eq!(pktid, next_pktid);
                    max_pktid = pktid;
                    next_pktid = pktid + 1;
                    model.append(pktid, src, len, time);
                }
                Op::Reopen { clean } => {
                    if clean { drop(ring) } else { ring.drop_unclean() }
                    ring = open(dir.path(), MIB);
                    prop_assert!(ring.recovery().corrupt.is_empty());
                    prop_assert!(ring.recovery().torn_tail.is_none());
                    // A clean close continues exactly; an unclean one may jump, never back.
                    if clean {
                        prop_assert_eq!(ring.recovery().next_pktid, next_pktid);
                    } else {
                        prop_assert!(ring.recovery().next_pktid >= next_pktid);
                    }
                    next_pktid = ring.recovery().next_pktid;
                }
                _ => {}
            }
            check(&ring, &model, op);
        }
    }
}
