//! The JSON documents STAT, SOURCES and CLIENTS answer with, built from the ring and
//! the server's counters.

use std::sync::atomic::Ordering::Relaxed;

use formats::proto::info::{
    ClientsInfo, PktAt, RingInfo, ServerStat, SourceStat, SourcesInfo, Totals,
};
use formats::proto::PROTOCOL_VERSION;
use formats::Time;

use crate::hub::clients::access_text;
use crate::hub::Hub;
use crate::ring::PktRef;

fn at(p: PktRef) -> PktAt {
    PktAt {
        pktid: p.pktid,
        time: p.time.to_string(),
    }
}

/// Seconds as a float, for rates and latencies meant for people.
fn secs(micros: i64) -> f64 {
    micros as f64 / 1e6
}

/// STAT.
pub fn server_stat(shared: &Hub) -> ServerStat {
    let st = shared.ring.stat();
    let t = &shared.totals;
    let (packet_rate, byte_rate) = shared.rates();
    ServerStat {
        server: crate::hub::server_name(),
        protocol: PROTOCOL_VERSION,
        started: shared.started.to_string(),
        now: Time::now().to_string(),
        ring: RingInfo {
            path: st.path.display().to_string(),
            capacity: st.capacity,
            used_bytes: st.used_bytes,
            npkts: st.npkts,
            nsources: st.nsources,
            oldest: st.oldest.map(at),
            newest: st.newest.map(at),
            next_pktid: st.next_pktid,
            flush: st.flush.to_string(),
        },
        packet_rate,
        byte_rate,
        clients: shared.clients.len() as u64,
        totals: Totals {
            packets_in: t.packets_in.load(Relaxed),
            bytes_in: t.bytes_in.load(Relaxed),
            packets_out: t.packets_out.load(Relaxed),
            bytes_out: t.bytes_out.load(Relaxed),
            gaps: t.gaps.load(Relaxed),
            gap_packets: t.gap_packets.load(Relaxed),
            gap_bytes: t.gap_bytes.load(Relaxed),
        },
        refused: shared.refused.snapshot(),
    }
}

/// SOURCES.
pub fn sources(shared: &Hub) -> SourcesInfo {
    let now = Time::now().as_micros();
    let sources = shared
        .ring
        .sources()
        .into_iter()
        .map(|s| SourceStat {
            srcname: s.srcname.to_string(),
            oldest: PktAt {
                pktid: s.oldest_pktid,
                time: s.oldest_time.to_string(),
            },
            newest: PktAt {
                pktid: s.newest_pktid,
                time: s.newest_time.to_string(),
            },
            npkts: s.npkts,
            nbytes: s.nbytes,
            latency: secs(now.saturating_sub(s.newest_time.as_micros())),
        })
        .collect();
    SourcesInfo { sources }
}

/// CLIENTS.
pub fn clients(shared: &Hub) -> ClientsInfo {
    let (_, rules) = shared.policy.current();
    let clients = shared
        .clients
        .entries()
        .iter()
        .map(|c| {
            // A native session's rights under the rules in force now, not at its HELLO:
            // a RELOAD may have taken some away.
            let now = c.ident().rights.clone().map(|asked| {
                let g = rules.grant(c.addr.ip(), asked.identity.as_ref());
                (asked.read && g.read, asked.write && g.write.any())
            });
            let reads = now.map_or_else(|| c.reads.load(Relaxed), |(read, _)| read);
            let lag = reads.then(|| shared.ring.lag(c.pos.load(Relaxed)));
            let mut row = c.stat(lag);
            if let Some((read, write)) = now {
                row.access = access_text(read, write);
            }
            row
        })
        .collect();
    ClientsInfo { clients }
}
