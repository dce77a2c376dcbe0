//! `/api/v1/envelope`: one channel's smallest and largest sample in each of `bins`
//! equal time bins over a window (24 hours by default): what a helicorder draws, at a
//! size a page can fetch (a day of 40 sps is 3.5 million samples; 1440 bins are two
//! arrays of 1440 numbers). Samples are counts, as in `/api/v1/packets`; `calib` and
//! `segtype` of the channel say what they measure.
//!
//! The work is bounded: at most `limit` matching packets (at most
//! [`super::packets::MAX_LIMIT`]) are decoded, the read ends at the packet that was
//! newest when the request came, and it runs on the blocking pool with at most
//! [`super::packets::BATCH_BYTES`] of payload copied out of the ring at a time, so the
//! ring's lock and the server's async workers are never held for the whole window.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::Bytes;
use formats::payload;
use formats::{Packet, SrcSelect, Time};
use http::{Response, StatusCode};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use super::packets::{BATCH_BYTES, MAX_LIMIT};
use super::{HttpBody, HttpState, Query};
use crate::hub::clients::ClientEntry;
use crate::ring::Visit;

/// Bins when the request gives no `bins`.
pub const DEFAULT_BINS: usize = 1_440;
/// The most bins one request may ask for; more is answered 400.
pub const MAX_BINS: usize = 100_000;
/// The window when the request gives no `start`.
pub const DEFAULT_WINDOW: &str = "-24h";
/// Packets copied out of the ring per batch.
const BATCH_PACKETS: usize = 1_024;

/// A parsed `/api/v1/envelope` request.
#[derive(Debug)]
pub(super) struct Request {
    select: SrcSelect,
    chan: String,
    start: Time,
    end: Time,
    bins: usize,
    limit: u64,
}

impl Request {
    /// From the query: `select` (required: a regular expression over the whole srcname,
    /// as for `/api/v1/packets`), `reject`, `chan` (required: the channel code, e.g.
    /// `BHZ`), `start` (default 24 hours ago), `end` (default now), `bins` (default
    /// [`DEFAULT_BINS`], 1 to [`MAX_BINS`]), `limit` (packets decoded at most, default
    /// and most [`MAX_LIMIT`]).
    pub(super) fn from_query(q: &Query) -> Result<Request, String> {
        let Some(sel) = q.get("select").filter(|s| !s.is_empty()) else {
            return Err("name the source with select=REGEX (e.g. select=XX_STA01/.*)".into());
        };
        let select = SrcSelect::new(Some(sel), q.get("reject"))
            .map_err(|e| format!("bad select/reject: {e}"))?;
        let chan = match q.get("chan") {
            Some(c)
                if !c.is_empty()
                    && c.len() <= 8
                    && c.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                c.to_owned()
            }
            Some(c) => return Err(format!("bad chan {c:?}: write a channel code like BHZ")),
            None => return Err("name the channel with chan=CODE (e.g. chan=BHZ)".into()),
        };
        let now = Time::now();
        let time = |key: &str, default: &str| -> Result<Time, String> {
            let s = q.get(key).filter(|s| !s.is_empty()).unwrap_or(default);
            if s == "now" {
                return Ok(now);
            }
            Time::parse(s, now).map_err(|e| format!("bad {key} {s:?}: {e}"))
        };
        let start = time("start", DEFAULT_WINDOW)?;
        let end = time("end", "now")?;
        if end <= start {
            return Err("end must be after start".into());
        }
        let bins = match q.get("bins") {
            None | Some("") => DEFAULT_BINS,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=MAX_BINS).contains(&n) => n,
                _ => {
                    return Err(format!(
                        "bad bins {s:?}: write a whole number from 1 to {MAX_BINS}"
                    ))
                }
            },
        };
        let limit = match q.get("limit") {
            None | Some("") => MAX_LIMIT,
            Some(s) => s
                .parse::<u64>()
                .map_err(|_| format!("bad limit {s:?}: write a whole number of packets"))?
                .min(MAX_LIMIT),
        };
        Ok(Request {
            select,
            chan,
            start,
            end,
            bins,
            limit,
        })
    }
}

/// Starts the work on the blocking pool and answers with its one document.
pub(super) fn respond(
    state: &Arc<HttpState>,
    entry: &Arc<ClientEntry>,
    req: Request,
    tracker: &TaskTracker,
) -> Response<HttpBody> {
    let (tx, rx) = mpsc::channel(1);
    {
        let mut ident = entry.ident();
        ident.select = req.select.select().unwrap_or_default().to_string();
        ident.reject = req.select.reject().unwrap_or_default().to_string();
    }
    entry.reads.store(true, Relaxed);
    let state = Arc::clone(state);
    let entry = Arc::clone(entry);
    tracker.spawn_blocking(move || {
        let doc = envelope(&state, &entry, &req);
        // The client may have gone; nothing to do then.
        let _ = tx.blocking_send(Bytes::from(doc.to_string()));
    });
    let mut r = Response::new(HttpBody::Stream(rx));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// One channel's running minimum and maximum per bin.
struct Bins {
    start: i64,
    step_us: f64,
    min: Vec<Option<i32>>,
    max: Vec<Option<i32>>,
}

impl Bins {
    fn new(start: Time, end: Time, bins: usize) -> Bins {
        let span = (end.as_micros() - start.as_micros()) as f64;
        Bins {
            start: start.as_micros(),
            step_us: span / bins as f64,
            min: vec![None; bins],
            max: vec![None; bins],
        }
    }

    /// Adds the samples of a channel whose first sample is at `t0` (microseconds).
    fn add(&mut self, t0: i64, samprate: f64, samples: &[i32]) {
        let dt_us = if samprate > 0.0 { 1e6 / samprate } else { 0.0 };
        let first = (t0 - self.start) as f64;
        for (i, &v) in samples.iter().enumerate() {
            let at = (first + i as f64 * dt_us) / self.step_us;
            if at < 0.0 {
                continue;
            }
            let b = at as usize;
            if b >= self.min.len() {
                break;
            }
            self.min[b] = Some(self.min[b].map_or(v, |m| m.min(v)));
            self.max[b] = Some(self.max[b].map_or(v, |m| m.max(v)));
        }
    }
}

/// Reads the window and builds the document.
fn envelope(state: &HttpState, entry: &ClientEntry, req: &Request) -> serde_json::Value {
    let ring = &state.hub.ring;
    let totals = &state.hub.totals;
    let mut bins = Bins::new(req.start, req.end, req.bins);
    let mut used = 0u64;
    let mut truncated = false;
    let mut first_channel: Option<payload::Channel> = None;
    let mut srcname = None;
    let last = ring.newest().map(|p| p.pktid);
    let first = ring.after(req.start).map(|p| p.pktid);
    if let (Some(last), Some(mut from)) = (last, first) {
        let mut batch: Vec<Packet> = Vec::new();
        'read: while from <= last {
            batch.clear();
            let outcome = ring.visit_from(
                from,
                BATCH_PACKETS,
                BATCH_BYTES,
                |_, name| req.select.matches(name.as_str()),
                |v| {
                    if let Visit::Record(r) = v {
                        batch.push(Packet {
                            pktid: r.pktid,
                            srcname: r.srcname.clone(),
                            time: r.time,
                            payload: Bytes::copy_from_slice(r.payload),
                        });
                    }
                },
            );
            for p in &batch {
                if p.pktid > last {
                    break 'read;
                }
                if p.time < req.start || p.time >= req.end {
                    continue;
                }
                if used == req.limit {
                    truncated = true;
                    break 'read;
                }
                used += 1;
                let n = p.payload.len() as u64;
                entry.packets_out.fetch_add(1, Relaxed);
                entry.bytes_out.fetch_add(n, Relaxed);
                entry.pos.store(p.pktid, Relaxed);
                totals.packets_out.fetch_add(1, Relaxed);
                totals.bytes_out.fetch_add(n, Relaxed);
                let channels = payload::decode(&p.srcname, p.time, &p.payload).unwrap_or_default();
                for c in channels.into_iter().filter(|c| c.chan == req.chan) {
                    bins.add(c.start.as_micros(), c.samprate, &c.samples);
                    if first_channel.is_none() {
                        srcname = Some(p.srcname.as_str().to_owned());
                        first_channel = Some(c);
                    }
                }
            }
            if !outcome.more && (outcome.next <= from || batch.is_empty()) {
                break;
            }
            from = outcome.next;
        }
    }
    let ch = first_channel.as_ref();
    json!({
        "select": req.select.select(),
        "chan": req.chan,
        "srcname": srcname,
        "start": req.start.to_iso8601(),
        "end": req.end.to_iso8601(),
        "step": bins.step_us / 1e6,
        "bins": req.bins,
        "packets": used,
        "truncated": truncated,
        "samprate": ch.map(|c| c.samprate),
        "calib": ch.map(|c| c.calib),
        "segtype": ch.map(|c| c.segtype.to_string()),
        "min": bins.min,
        "max": bins.max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_and_bounded() {
        let r = Request::from_query(&Query::parse("select=XX_A/.*&chan=BHZ")).unwrap();
        assert_eq!((r.bins, r.limit), (DEFAULT_BINS, MAX_LIMIT));
        let day = r.end.as_micros() - r.start.as_micros();
        assert_eq!(day, 24 * 3600 * 1_000_000, "the default window is a day");
        let r = Request::from_query(&Query::parse(
            "select=X&chan=LDO&bins=100000&limit=999999999&start=-1h&end=now",
        ))
        .unwrap();
        assert_eq!((r.bins, r.limit), (MAX_BINS, MAX_LIMIT));
        for bad in [
            "chan=BHZ",
            "select=&chan=BHZ",
            "select=(&chan=BHZ",
            "select=X",
            "select=X&chan=",
            "select=X&chan=B%2FZ",
            "select=X&chan=TOOLONGCHAN",
            "select=X&chan=BHZ&bins=0",
            "select=X&chan=BHZ&bins=100001",
            "select=X&chan=BHZ&bins=-3",
            "select=X&chan=BHZ&limit=-1",
            "select=X&chan=BHZ&start=yesterday",
            "select=X&chan=BHZ&start=-1h&end=-2h",
            "select=X&chan=BHZ&start=-1h&end=-1h",
        ] {
            assert!(Request::from_query(&Query::parse(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn samples_fall_into_their_bins() {
        let t = Time::from_micros(1_000_000_000_000_000);
        let end = Time::from_micros(t.as_micros() + 10_000_000);
        let mut b = Bins::new(t, end, 10);
        // Two seconds at 2 sps from t + 1 s: bins 1 and 2.
        b.add(t.as_micros() + 1_000_000, 2.0, &[5, -3, 7, 1]);
        // Before the window, and past its end: ignored.
        b.add(t.as_micros() - 2_000_000, 1.0, &[100, 100]);
        b.add(t.as_micros() + 9_500_000, 1.0, &[9, 99]);
        assert_eq!(b.min[..4], [None, Some(-3), Some(1), None]);
        assert_eq!(b.max[..4], [None, Some(5), Some(7), None]);
        assert_eq!((b.min[9], b.max[9]), (Some(9), Some(9)));
        assert_eq!(b.min.len(), 10);
    }
}
