//! The transfer: ring packets to SeedLink data frames for one connection's requests.
//!
//! One read position walks the ring in pktid order for all of the connection's
//! stations (the ring is one sequence); each station has its own first pktid, time
//! window and selectors, and a packet is converted (`formats::seedlink::record`) only
//! if some station wants its source. A record goes out once even if several stations
//! want it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;

use formats::seedlink::frame::{self, RECORD_LEN};
use formats::seedlink::record::{self, StreamId};
use formats::seedlink::selected;
use formats::seedlink::{mseed3, v4};
use formats::{SrcName, Time};

use super::request::{Start, StationReq};
use super::resume::{self, ResumeAt};
use crate::conn::{Messages, OutBuf as _};
use crate::hub::clients::Registration;
use crate::hub::Hub;
use crate::ring::{RingStore, Visit};

/// Packets one step of a TIME window's backward search copies out of the ring, so the
/// search never holds the ring's lock long.
const BACK_PACKETS: usize = 64;
/// Most packets one `fill` call reads, so one client never holds the ring's lock long.
const FILL_PACKETS: usize = 256;

/// One station's request in progress.
struct Active {
    req: StationReq,
    /// First pktid this station wants.
    from: u64,
    /// In packet `from`, the first record wanted (SeedLink 4 resumes inside a packet).
    first_index: u32,
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
    /// SeedLink 4: `SE` frames whose sequence numbers name each record.
    v4: bool,
    /// A packet with records past SeedLink 4's numbering was already logged.
    logged_v4_limit: bool,
}

impl Feed {
    /// Resolves where each request starts against the ring as it is now.
    /// `v4`: the session speaks SeedLink 4.
    pub fn new(shared: &Hub, reqs: Vec<StationReq>, peer: String, v4: bool) -> Feed {
        let st = shared.ring.stat();
        let next = st.next_pktid;
        let oldest = st.oldest.map(|p| p.pktid);
        let stations: Vec<Active> = reqs
            .into_iter()
            .map(|req| {
                let mut first_index = 0;
                let (from, begin, end) = match &req.start {
                    Start::Next => (next, None, None),
                    Start::Record { seq, begin, end } => {
                        let (pktid, index) = seq.map_or((0, 0), v4::record_of);
                        let live = oldest.unwrap_or(next);
                        let from = if pktid < live {
                            if seq.is_some() {
                                tracing::info!(
                                    "{peer}: SeedLink 4 resume at sequence {} (pktid {pktid}) is no longer in the ring; starting at the oldest packet, {live}",
                                    seq.unwrap_or(0)
                                );
                            }
                            live
                        } else if pktid > next {
                            // Ahead of the ring (a client of another server): from the next packet.
                            next
                        } else {
                            first_index = index;
                            pktid
                        };
                        (from, *begin, *end)
                    }
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
                        (window_start(&shared.ring, &req, *begin, next), Some(*begin), *end)
                    }
                };
                let fetch_until = req.fetch.then_some(next);
                Active { req, from, first_index, begin, end, fetch_until, done: false }
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
            v4,
            logged_v4_limit: false,
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
        out: &mut Messages,
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
            out.push(frame::END);
            return Fill::Finished;
        }
        Fill::Waiting
    }

    /// Appends the frames of one packet's wanted records.
    fn packet(&mut self, p: &Copied, out: &mut Messages) {
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
        if self.v4 {
            self.packet_v4(p, &takers, &records, out);
            return;
        }
        let wanted: Vec<&[u8; RECORD_LEN]> = records
            .iter()
            .filter(|rec| self.wants_record(&takers, rec, pktid, 0))
            .collect();
        // Only a packet's last record carries its pktid; the ones before it carry the
        // previous pktid. A client's last sequence number then names the last packet
        // it has whole, and a connection that breaks inside a packet resumes with that
        // packet again rather than after it (docs/GATEWAYS.md, "Sequence numbers").
        if let Some((last, before)) = wanted.split_last() {
            for rec in before {
                out.message(|b| frame::data_frame(b, pktid.saturating_sub(1), rec));
            }
            out.message(|b| frame::data_frame(b, pktid, last));
        }
    }

    /// SeedLink 4: each record has its own sequence number (`v4::seq_of`: the pktid
    /// and the record's index among all the packet's records, selected or not), so a
    /// client resumes after exactly the last record it has.
    fn packet_v4(
        &mut self,
        p: &Copied,
        takers: &[usize],
        records: &[[u8; RECORD_LEN]],
        out: &mut Messages,
    ) {
        let parts = p.srcname.parts();
        let station = format!("{}_{}", parts.net, parts.sta.unwrap_or(""));
        for (index, rec) in records.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let Some(taker) = self.taker(takers, rec, p.pktid, index) else {
                continue;
            };
            let Some(seq) = v4::seq_of(p.pktid, index) else {
                if !self.logged_v4_limit {
                    self.logged_v4_limit = true;
                    tracing::warn!(
                        "{}: SeedLink 4 skips records of pktid {} past the {}th: they have no sequence number (docs/GATEWAYS.md, \"SeedLink 4.0\"; logged once)",
                        self.peer,
                        p.pktid,
                        v4::MAX_RECORDS
                    );
                }
                continue;
            };
            if !self.stations[taker].req.mseed3 {
                out.message(|b| v4::frame(b, v4::FORMAT_MSEED2, v4::SUB_DATA, seq, &station, rec));
                continue;
            }
            match mseed3::from_mseed2(rec) {
                Ok(m3) => out
                    .message(|b| v4::frame(b, v4::FORMAT_MSEED3, v4::SUB_DATA, seq, &station, &m3)),
                Err(e) => {
                    self.skipped += 1;
                    if self.logged.insert(p.srcname.clone()) {
                        tracing::warn!(
                            "{}: SeedLink 4 skips records of {} that cannot be served as miniSEED 3: {e} (logged once per source)",
                            self.peer,
                            p.srcname
                        );
                    }
                }
            }
        }
    }

    /// True if a station of `takers` wants `rec`, the record `index` of its packet
    /// (a station resuming inside the packet wants only the records from its
    /// `first_index` on).
    fn wants_record(
        &self,
        takers: &[usize],
        rec: &[u8; RECORD_LEN],
        pktid: u64,
        index: u32,
    ) -> bool {
        self.taker(takers, rec, pktid, index).is_some()
    }

    /// The first station of `takers` that wants `rec` (see `wants_record`): its
    /// request says the record's format.
    fn taker(
        &self,
        takers: &[usize],
        rec: &[u8; RECORD_LEN],
        pktid: u64,
        index: u32,
    ) -> Option<usize> {
        let id = StreamId::of_record(rec);
        let mut span = None;
        takers.iter().copied().find(|&i| {
            let s = &self.stations[i];
            if s.from == pktid && index < s.first_index {
                return false;
            }
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

/// The time just after the last sample of a packet's records (the latest, if it holds
/// several channels); `None` if it cannot be served as miniSEED.
pub(super) fn data_end(srcname: &SrcName, time: Time, payload: &[u8]) -> Option<Time> {
    let records = record::records(srcname, time, payload).ok()?;
    records
        .iter()
        .filter_map(|r| record::span(r).map(|(_, end)| end))
        .max()
}

/// The first pktid a TIME window starting at `begin` must look at: the first packet of
/// `req`'s stations (in ring order) whose data overlap `begin`, or else the first packet
/// at or after `begin`.
///
/// Packets after the first one timed at or after `begin` (the time index answers that)
/// are all read forward anyway. Before it, every packet starts before `begin` but may
/// still hold samples at or after it, however long it is. So the search walks back from
/// there over the packets of the stations asked for, and a source is settled by its
/// first packet (going back) whose data end at or before `begin`: a source's packets
/// come into the ring in time order, so the ones before that end earlier still. A
/// source whose newest packet lies before the search point is settled by that packet
/// alone when it ends before `begin` (a station that stopped sending long ago costs one
/// decode, not a walk back to it). A source is also settled once its oldest live packet
/// was looked at. So the walk is about one packet duration of the ring per source,
/// whatever the packets' lengths; only packets of the sources asked for are decoded.
/// A packet that cannot be served as miniSEED settles its source too: its records would
/// be skipped anyway, and a source of an unservable type (`/pf`) would otherwise be
/// walked back to its oldest packet on every request. A backfilled packet written into the ring after a later packet of its
/// source that ends before `begin` is not looked for.
pub(super) fn window_start(ring: &RingStore, req: &StationReq, begin: Time, next: u64) -> u64 {
    let first = ring.after(begin).map_or(next, |p| p.pktid);
    let mut from = first;
    // Sources still unsettled -> their oldest live pktid.
    let mut open: HashMap<SrcName, u64> = HashMap::new();
    for src in ring.sources() {
        let parts = src.srcname.parts();
        if !req.wants_station(parts.net, parts.sta.unwrap_or("")) || src.oldest_pktid >= first {
            continue;
        }
        if src.newest_pktid < first {
            // Its newest packet is before the search point: it alone may say "done".
            match ring.get(src.newest_pktid) {
                Ok(Some(p)) => match data_end(&p.srcname, p.time, &p.payload) {
                    Some(end) if end > begin => from = from.min(p.pktid),
                    _ => continue,
                },
                _ => continue,
            }
        }
        open.insert(src.srcname, src.oldest_pktid);
    }
    let mut before = first;
    while !open.is_empty() {
        let mut copied: Vec<Copied> = Vec::new();
        let went_on = ring.visit_back(
            before,
            BACK_PACKETS,
            |_, name| open.contains_key(name),
            |r| {
                copied.push(Copied {
                    pktid: r.pktid,
                    time: r.time,
                    srcname: r.srcname.clone(),
                    payload: r.payload.to_vec(),
                })
            },
        );
        for p in &copied {
            let Some(&oldest) = open.get(&p.srcname) else {
                continue;
            };
            match data_end(&p.srcname, p.time, &p.payload) {
                Some(end) if end > begin => from = from.min(p.pktid),
                _ => {
                    open.remove(&p.srcname);
                    continue;
                }
            }
            if p.pktid <= oldest {
                open.remove(&p.srcname);
            }
        }
        match went_on {
            Some(b) => before = b,
            None => break,
        }
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{FlushPolicy, RingOptions};
    use formats::payload::Channel;
    use formats::seedlink::StationPattern;

    const S: i64 = 1_000_000;

    fn ring(dir: &std::path::Path) -> RingStore {
        let opts = RingOptions {
            size: Some(1 << 20),
            flush: FlushPolicy::None,
        };
        RingStore::open(dir, &opts).unwrap()
    }

    /// Appends a miniSEED packet of `XX_sta_BHZ` starting at `start_s` with `n` samples
    /// at 1 Hz; returns its pktid.
    fn put(ring: &RingStore, sta: &str, start_s: i64, n: usize) -> u64 {
        let ch = Channel {
            net: "XX".into(),
            sta: sta.into(),
            chan: "BHZ".into(),
            loc: String::new(),
            start: Time::from_micros(start_s * S),
            samprate: 1.0,
            calib: 1.0,
            calper: 1.0,
            segtype: 'V',
            samples: (0..n as i32).collect(),
        };
        let mut recs = Vec::new();
        record::encode(&ch, &mut recs).unwrap();
        let payload: Vec<u8> = recs.concat();
        let name = SrcName::new(&format!("XX_{sta}_BHZ/SEED")).unwrap();
        ring.append(&name, ch.start, &payload).unwrap()
    }

    fn req(sta: &str) -> StationReq {
        StationReq {
            net: Some(StationPattern::new("XX", 2).unwrap()),
            sta: Some(StationPattern::new(sta, 5).unwrap()),
            selectors: Vec::new(),
            start: Start::Next,
            fetch: false,
            mseed3: false,
        }
    }

    #[test]
    fn a_window_starts_at_a_long_packet_that_began_long_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let ring = ring(dir.path());
        // STA01: one 300 s packet from t=0, then 10 s packets; STA02: 10 s packets.
        let long = put(&ring, "STA01", 0, 300);
        let mut first_sta02_overlapping = None;
        for k in 0..40 {
            let id = put(&ring, "STA02", k * 10, 10);
            if k == 20 {
                first_sta02_overlapping = Some(id);
            }
        }
        let after_long = put(&ring, "STA01", 300, 10);
        let next = after_long + 1;
        // The window begins at 205 s, 205 s into STA01's long packet.
        let begin = Time::from_micros(205 * S);
        assert_eq!(window_start(&ring, &req("STA01"), begin, next), long);
        // STA02's packet 200..210 holds 205; the one before ends at 200.
        assert_eq!(
            window_start(&ring, &req("STA02"), begin, next),
            first_sta02_overlapping.unwrap()
        );
        // A window beginning exactly at a packet's end does not want that packet.
        let at_end = Time::from_micros(300 * S);
        let first_at_end = ring.after(at_end).unwrap().pktid;
        assert!(first_at_end > long && first_at_end <= after_long);
        assert_eq!(
            window_start(&ring, &req("STA01"), at_end, next),
            first_at_end
        );
        // A station with no packets at all starts at the first packet after begin.
        let first_after = ring.after(begin).unwrap().pktid;
        assert_eq!(window_start(&ring, &req("NOPE"), begin, next), first_after);
    }

    #[test]
    fn a_source_that_stopped_long_before_the_window_is_settled_by_its_newest_packet() {
        let dir = tempfile::tempdir().unwrap();
        let ring = ring(dir.path());
        let stopped = put(&ring, "STA03", 0, 10);
        let mut ids = Vec::new();
        for k in 1..30 {
            ids.push(put(&ring, "STA01", k * 10, 10));
        }
        let begin = Time::from_micros(155 * S);
        let from = window_start(&ring, &req("STA0?"), begin, ids[ids.len() - 1] + 1);
        // STA01's 150..160 packet is the first wanted one; STA03's ended at 10 s.
        assert_eq!(from, ids[14]);
        assert!(from > stopped);
    }
}
