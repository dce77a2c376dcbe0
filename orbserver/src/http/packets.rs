//! `/api/v1/packets`: the ring's packets as JSON Lines, each line exactly what
//! `orbtail --json` prints for the packet (the `formats::write::jsonl` encoder, with
//! the payload decoded by `formats::payload`), and `{"gap":{...}}` lines where a lapped
//! read lost packets.
//!
//! Memory is bounded: a producer task copies at most [`BATCH_BYTES`] of payload out of
//! the ring at a time (under the read lock, no decoding there), encodes it into chunks
//! of about [`CHUNK`] bytes and hands them to the response body through a channel of
//! [`CHUNKS_QUEUED`]; a slow client blocks the producer, not the server's memory. The
//! read ends at the packet that was newest when the request came (it never waits for
//! new packets), after `limit` packets (at most [`MAX_LIMIT`]), on KILL or shutdown,
//! or when the client goes away.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::Bytes;
use formats::payload;
use formats::write::jsonl;
use formats::{Packet, SrcSelect, Time};
use http::{Response, StatusCode};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{HttpBody, HttpState, Query};
use crate::hub::clients::ClientEntry;
use crate::ring::Visit;

/// Packets returned when the request gives no `limit`.
pub const DEFAULT_LIMIT: u64 = 1_000;
/// The most packets one request returns; a larger `limit` is lowered to this.
pub const MAX_LIMIT: u64 = 100_000;
/// Payload bytes copied out of the ring per batch.
pub const BATCH_BYTES: usize = 256 * 1024;
/// Packets copied out of the ring per batch.
const BATCH_PACKETS: usize = 1_024;
/// Encoded bytes per body chunk.
pub const CHUNK: usize = 64 * 1024;
/// Chunks waiting for the client at most.
pub const CHUNKS_QUEUED: usize = 4;

/// A parsed `/api/v1/packets` request.
#[derive(Debug)]
pub(super) struct Request {
    select: SrcSelect,
    start: Option<Time>,
    end: Option<Time>,
    /// Only packets with a pktid greater than this (a poller's cursor).
    after: Option<u64>,
    limit: u64,
}

impl Request {
    /// From the query: `select`, `reject` (regular expressions over the whole srcname,
    /// as `orbtail -m/-r`), `start`, `end` (ISO 8601, epoch seconds with a `.`, or
    /// relative like `-10m`; packet times `>= start` and `< end`), `after` (pktids
    /// greater than it: a poller passes the last pktid it got, so it sees each packet
    /// once), `limit`.
    pub(super) fn from_query(q: &Query) -> Result<Request, String> {
        let select = SrcSelect::new(q.get("select"), q.get("reject"))
            .map_err(|e| format!("bad select/reject: {e}"))?;
        let now = Time::now();
        let time = |key: &str| -> Result<Option<Time>, String> {
            match q.get(key).filter(|s| !s.is_empty()) {
                None | Some("oldest") if key == "start" => Ok(None),
                None => Ok(None),
                Some(s) => Time::parse(s, now)
                    .map(Some)
                    .map_err(|e| format!("bad {key} {s:?}: {e}")),
            }
        };
        let limit = match q.get("limit") {
            None | Some("") => DEFAULT_LIMIT,
            Some(s) => s
                .parse::<u64>()
                .map_err(|_| format!("bad limit {s:?}: write a whole number of packets"))?
                .min(MAX_LIMIT),
        };
        let after = match q.get("after") {
            None | Some("") => None,
            Some(s) => Some(s.parse::<u64>().map_err(|_| {
                format!("bad after {s:?}: write a pktid (a whole number, 0 or more)")
            })?),
        };
        Ok(Request {
            select,
            start: time("start")?,
            end: time("end")?,
            after,
            limit,
        })
    }
}

/// Starts the producer and answers with its stream.
pub(super) fn respond(
    state: &Arc<HttpState>,
    entry: &Arc<ClientEntry>,
    req: Request,
    tracker: &TaskTracker,
    stop: CancellationToken,
    kill: CancellationToken,
) -> Response<HttpBody> {
    let (tx, rx) = mpsc::channel(CHUNKS_QUEUED);
    {
        let mut ident = entry.ident();
        ident.select = req.select.select().unwrap_or_default().to_string();
        ident.reject = req.select.reject().unwrap_or_default().to_string();
    }
    entry.reads.store(true, Relaxed);
    tracker.spawn(produce(
        Arc::clone(state),
        Arc::clone(entry),
        req,
        tx,
        stop,
        kill,
    ));
    let mut r = Response::new(HttpBody::Stream(rx));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-ndjson"),
    );
    r
}

/// Reads, encodes and sends; returns when done or when nobody listens any more.
async fn produce(
    state: Arc<HttpState>,
    entry: Arc<ClientEntry>,
    req: Request,
    tx: mpsc::Sender<Bytes>,
    stop: CancellationToken,
    kill: CancellationToken,
) {
    let ring = &state.hub.ring;
    let Some(last) = ring.newest().map(|p| p.pktid) else {
        return;
    };
    let first = match req.start {
        Some(t) => match ring.after(t) {
            Some(p) => p.pktid,
            None => return,
        },
        None => ring.oldest().map_or(0, |p| p.pktid),
    };
    // A cursor older than the ring's oldest packet reads from there, after a gap line
    // (the visit reports it), so a poller that fell behind learns what it lost.
    let first = match req.after {
        Some(a) if a >= last => return,
        Some(a) if req.start.is_none() => a + 1,
        Some(a) => first.max(a + 1),
        None => first,
    };
    let in_window = |t: Time| req.start.is_none_or(|s| t >= s) && req.end.is_none_or(|e| t < e);
    let mut from = first;
    let mut sent = 0u64;
    let mut chunk = Vec::with_capacity(CHUNK + 4096);
    let mut line = Vec::new();
    let mut batch: Vec<Packet> = Vec::new();
    let totals = &state.hub.totals;
    while sent < req.limit && from <= last {
        batch.clear();
        let mut gap = None;
        let outcome = ring.visit_from(
            from,
            BATCH_PACKETS,
            BATCH_BYTES,
            |_, name| req.select.matches(name.as_str()),
            |v| match v {
                Visit::Gap(g) => gap = Some(g),
                Visit::Record(r) => batch.push(Packet {
                    pktid: r.pktid,
                    srcname: r.srcname.clone(),
                    time: r.time,
                    payload: Bytes::copy_from_slice(r.payload),
                }),
            },
        );
        if let Some(g) = gap {
            chunk.extend_from_slice(
                format!(
                    "{{\"gap\":{{\"first\":{},\"last\":{},\"bytes\":null}}}}\n",
                    g.first, g.last
                )
                .as_bytes(),
            );
        }
        for p in &batch {
            if p.pktid > last || sent >= req.limit {
                break;
            }
            if !in_window(p.time) {
                continue;
            }
            let channels = payload::decode(&p.srcname, p.time, &p.payload).unwrap_or_default();
            line.clear();
            if jsonl::encode_line(&mut line, p, &channels).is_err() {
                continue;
            }
            chunk.extend_from_slice(&line);
            sent += 1;
            let n = p.payload.len() as u64;
            entry.packets_out.fetch_add(1, Relaxed);
            entry.bytes_out.fetch_add(n, Relaxed);
            entry.pos.store(p.pktid, Relaxed);
            totals.packets_out.fetch_add(1, Relaxed);
            totals.bytes_out.fetch_add(n, Relaxed);
            if chunk.len() >= CHUNK && !send(&tx, &mut chunk, &stop, &kill).await {
                return;
            }
        }
        if outcome.next <= from && !outcome.more {
            break;
        }
        from = outcome.next;
        if batch.is_empty() && !outcome.more {
            break;
        }
    }
    if !chunk.is_empty() {
        send(&tx, &mut chunk, &stop, &kill).await;
    }
}

/// Sends the chunk; false if the client is gone or the read must stop.
async fn send(
    tx: &mpsc::Sender<Bytes>,
    chunk: &mut Vec<u8>,
    stop: &CancellationToken,
    kill: &CancellationToken,
) -> bool {
    let bytes = Bytes::from(std::mem::replace(chunk, Vec::with_capacity(CHUNK + 4096)));
    tokio::select! {
        r = tx.send(bytes) => r.is_ok(),
        _ = stop.cancelled() => false,
        _ = kill.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_capped_and_bad_values_refused() {
        let r = Request::from_query(&Query::parse("limit=99999999")).unwrap();
        assert_eq!(r.limit, MAX_LIMIT);
        let r = Request::from_query(&Query::parse("")).unwrap();
        assert_eq!(r.limit, DEFAULT_LIMIT);
        assert!(r.start.is_none() && r.end.is_none());
        let r =
            Request::from_query(&Query::parse("start=oldest&end=2024-01-01T00:00:00Z")).unwrap();
        assert!(r.start.is_none() && r.end.is_some());
        for bad in [
            "limit=-1",
            "limit=ten",
            "start=yesterday",
            "select=(",
            "end=x",
            "after=-1",
            "after=x",
            "after=1.5",
        ] {
            let e = Request::from_query(&Query::parse(bad)).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
        let r = Request::from_query(&Query::parse("after=41")).unwrap();
        assert_eq!(r.after, Some(41));
        assert_eq!(
            Request::from_query(&Query::parse("after=")).unwrap().after,
            None
        );
        let r = Request::from_query(&Query::parse("select=AA_.*&reject=AA_X.*")).unwrap();
        assert!(r.select.matches("AA_B/GENC") && !r.select.matches("AA_XB/GENC"));
        assert!(
            !r.select.matches("BB_AA_B/GENC"),
            "select matches the whole name"
        );
    }
}
