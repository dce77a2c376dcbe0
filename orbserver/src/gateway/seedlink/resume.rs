//! SeedLink sequence numbers and the orb's pktids.
//!
//! Sequence numbers are pktids modulo 2^24: the last record sent from a packet carries
//! its pktid, the records before it the previous pktid (`feed`). `DATA n` and `FETCH n`
//! carry the client's last sequence number plus one (libslink and ObsPy both send
//! that), so `n` names the first packet the client does not have whole: the transfer
//! resumes at the packet whose pktid has low 24 bits `n`.

use formats::seedlink::MAX_SEQ;

/// Where a resume at sequence number `seq` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeAt {
    /// At this pktid (live, or the next to be written).
    Pktid(u64),
    /// The packet has left the ring: at the oldest live packet (`wanted` is the pktid
    /// it would have been).
    Oldest {
        /// The pktid `seq` stood for, if any pktid so far had those low bits.
        wanted: Option<u64>,
        /// The oldest live pktid, where the transfer starts instead.
        oldest: u64,
    },
}

/// Resolves `seq` against a ring whose oldest live pktid is `oldest` (`None`: empty
/// ring) and whose next pktid is `next`.
///
/// The candidates are the pktids `p <= next` with `p mod 2^24 == seq`; the newest of
/// them is taken, because a client that resumes was reading recently, and 2^24 packets
/// (days to weeks of a busy orb) separate one candidate from the one before it. If the
/// newest candidate is older than the ring's oldest packet, the client was away too
/// long: it gets everything still in the ring.
pub fn resolve(seq: u32, oldest: Option<u64>, next: u64) -> ResumeAt {
    let modulus = u64::from(MAX_SEQ) + 1;
    let seq = u64::from(seq & MAX_SEQ);
    let base = next - next % modulus;
    let wanted = if base + seq <= next {
        Some(base + seq)
    } else {
        // Before the last wrap; none before pktid 0.
        (base + seq).checked_sub(modulus)
    };
    let oldest = oldest.unwrap_or(next);
    match wanted {
        Some(p) if p >= oldest => ResumeAt::Pktid(p),
        _ => ResumeAt::Oldest { wanted, oldest },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_sequence_number_resumes_at_its_packet() {
        assert_eq!(resolve(5, Some(1), 10), ResumeAt::Pktid(5));
        // Caught up: the next packet to be written.
        assert_eq!(resolve(10, Some(1), 10), ResumeAt::Pktid(10));
    }

    #[test]
    fn the_newest_candidate_below_next_wins_across_a_wrap() {
        let m = 1u64 << 24;
        assert_eq!(resolve(3, Some(m - 10), m + 5), ResumeAt::Pktid(m + 3));
        assert_eq!(
            resolve((MAX_SEQ) - 1, Some(m - 10), m + 5),
            ResumeAt::Pktid(m - 2)
        );
    }

    #[test]
    fn a_packet_that_left_the_ring_resumes_at_the_oldest() {
        assert_eq!(
            resolve(5, Some(100), 200),
            ResumeAt::Oldest {
                wanted: Some(5),
                oldest: 100
            }
        );
        // Ahead of the ring (a client of another orb): nothing matches, oldest.
        assert_eq!(
            resolve(500, Some(100), 200),
            ResumeAt::Oldest {
                wanted: None,
                oldest: 100
            }
        );
        assert_eq!(
            resolve(7, None, 0),
            ResumeAt::Oldest {
                wanted: None,
                oldest: 0
            }
        );
    }
}
