//! The unit the ring stores and the protocol carries.

use bytes::Bytes;

use crate::{SrcName, Time};

/// One orb packet: an opaque payload tagged with a srcname and a time.
///
/// The payload is not interpreted here; codecs pick a decoder from the
/// srcname's [`suffix`](SrcName::suffix). `Bytes` lets the ring, the index
/// and every reader share one allocation.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Packet {
    /// Packet id, assigned by the server when the packet is accepted: the first
    /// packet of a ring gets 1 and each later one the previous id plus 1. An id
    /// is never reused, not even after a crash and restart, so a reader can
    /// resume "after pktid N" safely. 0 means "not yet assigned", as in packets
    /// a client is putting.
    pub pktid: u64,
    /// Source name, e.g. `TA_M04C/MGENC/EP40`.
    pub srcname: SrcName,
    /// Packet time as chosen by the producer, usually the time of the first sample.
    pub time: Time,
    /// The raw payload bytes.
    pub payload: Bytes,
}

impl Packet {
    /// A packet to be put, with `pktid` 0 (the server assigns the real one).
    pub fn new(srcname: SrcName, time: Time, payload: impl Into<Bytes>) -> Packet {
        Packet {
            pktid: 0,
            srcname,
            time,
            payload: payload.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_packet_has_no_pktid() {
        let name = SrcName::new("TA_M04C/MGENC/EP40").unwrap();
        let p = Packet::new(name.clone(), Time::from_micros(7), &b"abc"[..]);
        assert_eq!(p.pktid, 0);
        assert_eq!(p.srcname, name);
        assert_eq!(p.time, Time::from_micros(7));
        assert_eq!(p.payload, Bytes::from_static(b"abc"));
    }
}
