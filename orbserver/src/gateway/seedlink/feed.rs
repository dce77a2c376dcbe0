//! The transfer: ring packets to SeedLink data frames for one connection's requests.
//!
//! One read position walks the ring in pktid order for all of the connection's
//! stations (the ring is one sequence); each station has its own first pktid, time
//! window and selectors, and a packet is converted (`formats::seedlink::record`) only
//! if some station wants its source. A record goes out once even if several stations
//! want it.

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;

use formats::seedlink::frame::{self, RECORD_LEN};
use formats::seedlink::record::{self, StreamId};
use formats::seedlink::selected;
use formats::{SrcName, Time};

use super::request::{Start, StationReq};
use super::resume::{self, ResumeAt};
use crate::hub::clients::Registration;
use crate::hub::Hub;
use crate::ring::Visit;

/// How far before a TIME window's begin the ring is searched: a packet that starts
/// before the window may hold samples inside it. Packets longer than this that start
/// before the window are missed (orb packets are typically a few seconds long).
const WINDOW_SLACK_US: i64 = 60 * 1_000_000;
/// Most packets one `fill` call reads, so one client never holds the ring's lock long.
const FILL_PACKETS: usize = 256;

/// One station's request in progress.
struct Active {
    req: StationReq,
    /// First pktid this station wants.
    from: u64,
    /// Records ending before this are not wanted.
    begin: Option<Time>,
    /// Records starting after this are not wanted; the station ends once caught up.
    end: Option<Time>,
    /// FETCH: the station ends once the reader reaches this pktid.
    fetch_until: Option<u64>,
    done: bool,
}

/// What `fill` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Frames may have been written; call again.
    More,
    /// Caught up with the ring: wait for new packets.
    Waiting,
    /// Every station is complete: `END` was written; close after sending.
    Finished,
}

/// A packet copied out of the ring, converted outside the ring's lock.
struct Copied {
    pktid: u64,
    time: Time,
    srcname: SrcName,
    payload: Vec<u8>,
}

/// The transfer state of one connection.
pub struct Feed {
    stations: Vec<Active>,
    pos: u64,
    /// Per ring source number: 0 undecided, 1 some station wants it, 2 none does.
    verdicts: Vec<u8>,
    /// Sources whose undecodable packets were already logged.
    logged: HashSet<SrcName>,
    /// Packets skipped because they could not be served as miniSEED.
    skipped: u64,
    peer: String,
}

impl Feed {
    /// Resolves where each request starts against the ring as it is now.
    pub fn new(shared: &Hub, reqs: Vec<StationReq>, peer: String) -> Feed {
        let st = shared.ring.stat();
        let next = st.next_pktid;
        let oldest = st.oldest.map(|p| p.pktid);
        let stations: Vec<Active> = reqs
            .into_iter()
            .map(|req| {
                let (from, begin, end) = match &req.start {
                    Start::Next => (next, None, None),
                    Start::Resume(r) => {
                        let from = match resume::resolve(r.seq, oldest, next) {
                            ResumeAt::Pktid(p) => p,
                            ResumeAt::Oldest { wanted, oldest } => {
                                tracing::info!(
                                    "{peer}: SeedLink resume at sequence {:06X} (pktid {}) is no longer in the ring; starting at the oldest packet, {oldest}",
                                    r.seq,
                                    wanted.map_or_else(|| "none yet".to_string(), |w| w.to_string()),
                                );
                                oldest
                            }
                        };
                        (from, r.begin, None)
                    }
                    Start::Window { begin, end } => {
                        let early = Time::from_micros(begin.as_micros().saturating_sub(WINDOW_SLACK_US));
                        let from = shared.ring.after(early).map_or(next, |p| p.pktid);
                        (from, Some(*begin), *end)
                    }
                };
                let fetch_until = req.fetch.then_some(next);
                Active { req, from, begin, end, fetch_until, done: false }
            })
            .collect();
        let pos = stations.iter().map(|s| s.from).min().unwrap_or(next);
        Feed {
            stations,
            pos,
            verdicts: Vec::new(),
            logged: HashSet::new(),
            skipped: 0,
            peer,
        }
    }

    /// Packets this transfer skipped because they could not be served as miniSEED.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The read position (the next pktid looked at).
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// The earliest end of a TIME window still open: the transfer may be complete then
    /// even if no packet arrives.
    pub fn next_window_end(&self) -> Option<Time> {
        self.stations
            .iter()
            .filter(|s| !s.done)
            .filter_map(|s| s.end)
            .min()
    }

    /// Appends data frames for the next packets, up to about `max_bytes` of output.
    /// `now` is the wall-clock time the session was given: a TIME window is over once
    /// its end has passed.
    pub fn fill(
        &mut self,
        shared: &Hub,
        reg: &Registration,
        now: Time,
        out: &mut Vec<u8>,
        max_bytes: usize,
    ) -> Fill {
        let mut packets: Vec<Copied> = Vec::new();
        let (stations, verdicts) = (&self.stations, &mut self.verdicts);
        let outcome = shared.ring.visit_from(
            self.pos,
            FILL_PACKETS,
            max_bytes,
            |src, name| wanted(stations, verdicts, src, name),
            |v| {
                if let Visit::Record(r) = v {
                    packets.push(Copied {
                        pktid: r.pktid,
                        time: r.time,
                        srcname: r.srcname.clone(),
                        payload: r.payload.to_vec(),
                    });
                }
            },
        );
        if let Some(g) = outcome.gap {
            tracing::info!(
                "{}: SeedLink reader lapped: pktids {}..={} were overwritten before it read them",
                self.peer,
                g.first,
                g.last
            );
            shared.totals.gaps.fetch_add(1, Relaxed);
            reg.entry.gaps.fetch_add(1, Relaxed);
        }
        let (mut sent, mut bytes) = (0u64, 0u64);
        for p in &packets {
            let before = out.len();
            self.packet(p, out);
            if out.len() > before {
                sent += 1;
                bytes += (out.len() - before) as u64;
            }
        }
        self.pos = outcome.next.max(self.pos);
        reg.entry.pos.store(self.pos, Relaxed);
        reg.entry.packets_out.fetch_add(sent, Relaxed);
        reg.entry.bytes_out.fetch_add(bytes, Relaxed);
        shared.totals.packets_out.fetch_add(sent, Relaxed);
        shared.totals.bytes_out.fetch_add(bytes, Relaxed);
        if !packets.is_empty() || outcome.more || outcome.gap.is_some() {
            return Fill::More;
        }
        // Caught up with the ring: finite requests may be complete.
        let pos = self.pos;
        for s in &mut self.stations {
            let fetched = s.fetch_until.is_some_and(|u| pos >= u);
            let window_over = s.end.is_some_and(|e| e < now);
            s.done |= fetched || window_over;
        }
        if self.stations.iter().all(|s| s.done) {
            out.extend_from_slice(frame::END);
            return Fill::Finished;
        }
        Fill::Waiting
    }

    /// Appends the frames of one packet's wanted records.
    fn packet(&mut self, p: &Copied, out: &mut Vec<u8>) {
        let parts = p.srcname.parts();
        let (net, sta) = (parts.net, parts.sta.unwrap_or(""));
        let pktid = p.pktid;
        let takers: Vec<usize> = (0..self.stations.len())
            .filter(|&i| {
                let s = &self.stations[i];
                !s.done && pktid >= s.from && s.req.wants_station(net, sta)
            })
            .collect();
        if takers.is_empty() {
            return;
        }
        let records = match record::records(&p.srcname, p.time, &p.payload) {
            Ok(r) => r,
            Err(e) => {
                self.skipped += 1;
                if self.logged.insert(p.srcname.clone()) {
                    tracing::warn!(
                        "{}: SeedLink skips packets of {} that cannot be served as miniSEED: {e} (logged once per source)",
                        self.peer,
                        p.srcname
                    );
                }
                return;
            }
        };
        let wanted: Vec<&[u8; RECORD_LEN]> = records
            .iter()
            .filter(|rec| self.wants_record(&takers, rec))
            .collect();
        // Only a packet's last record carries its pktid; the ones before it carry the
        // previous pktid. A client's last sequence number then names the last packet
        // it has whole, and a connection that breaks inside a packet resumes with that
        // packet again rather than after it (docs/GATEWAYS.md, "Sequence numbers").
        if let Some((last, before)) = wanted.split_last() {
            for rec in before {
                frame::data_frame(out, pktid.saturating_sub(1), rec);
            }
            frame::data_frame(out, pktid, last);
        }
    }

    fn wants_record(&self, takers: &[usize], rec: &[u8; RECORD_LEN]) -> bool {
        let id = StreamId::of_record(rec);
        let mut span = None;
        takers.iter().any(|&i| {
            let s = &self.stations[i];
            if !selected(&s.req.selectors, &id.loc, &id.chan, id.kind) {
                return false;
            }
            if s.begin.is_none() && s.end.is_none() {
                return true;
            }
            let (start, end) = *span.get_or_insert_with(|| {
                record::span(rec).unwrap_or((
                    Time::from_micros(i64::MIN / 2),
                    Time::from_micros(i64::MAX / 2),
                ))
            });
            s.begin.is_none_or(|b| end > b) && s.end.is_none_or(|e| start <= e)
        })
    }
}

/// Whether any station wants packets of source `src`, cached per source number so
/// the patterns run once per source, not once per packet.
fn wanted(stations: &[Active], verdicts: &mut Vec<u8>, src: u32, name: &SrcName) -> bool {
    let i = src as usize;
    if verdicts.len() <= i {
        verdicts.resize(i + 1, 0);
    }
    if verdicts[i] == 0 {
        let parts = name.parts();
        let (net, sta) = (parts.net, parts.sta.unwrap_or(""));
        let any = stations.iter().any(|s| s.req.wants_station(net, sta));
        verdicts[i] = if any { 1 } else { 2 };
    }
    verdicts[i] == 1
}
