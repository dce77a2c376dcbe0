//! `/metrics`: the server's counters in the OpenMetrics text format (which Prometheus
//! scrapes), encoded by the `prometheus-client` crate. Nothing is counted here: each
//! scrape reads the atomics the hub, the ring and the HTTP port already keep, so the
//! packet path pays nothing for metrics. docs/HTTP.md lists every metric.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use formats::Time;
use http::{Response, StatusCode};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::{HttpBody, HttpState};
use crate::ring::FlushLatency;

/// Sources given their own `srcname` label, in srcname order; the others are summed
/// under `srcname="_other"`, so a ring with many sources cannot blow up a Prometheus
/// server's series count.
pub const MAX_SOURCE_LABELS: usize = 500;

/// The label value the sources beyond [`MAX_SOURCE_LABELS`] share.
pub const OTHER_SOURCES: &str = "_other";

/// The exposition's content type.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(String, String)>;
type FGauge = Gauge<f64, AtomicU64>;

fn counter(reg: &mut Registry, name: &str, help: &str, v: u64) {
    let c: Counter = Counter::default();
    c.inc_by(v);
    reg.register(name, help, c);
}

fn gauge(reg: &mut Registry, name: &str, help: &str, unit: Option<Unit>, v: f64) {
    let g = FGauge::default();
    g.set(v);
    match unit {
        Some(u) => reg.register_with_unit(name, help, u, g),
        None => reg.register(name, help, g),
    }
}

/// A histogram whose buckets were counted elsewhere (the ring's msync times).
#[derive(Debug)]
struct ConstHistogram(FlushLatency);

impl EncodeMetric for ConstHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // The encoder wants per-bucket counts ending with +Inf; ours are cumulative.
        let mut buckets = Vec::with_capacity(self.0.buckets.len() + 1);
        let mut below = 0;
        for &(le, n) in &self.0.buckets {
            buckets.push((le, n - below));
            below = n;
        }
        buckets.push((f64::INFINITY, self.0.count - below));
        encoder.encode_histogram::<NoLabelSet>(self.0.sum, self.0.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The whole exposition, as text.
pub(super) fn render(state: &HttpState) -> String {
    let hub = &state.hub;
    let mut reg = Registry::default();
    let t = &hub.totals;
    counter(
        &mut reg,
        "orb_packets_in",
        "Packets put into the ring",
        t.packets_in.load(Relaxed),
    );
    counter(
        &mut reg,
        "orb_bytes_in",
        "Payload bytes put into the ring",
        t.bytes_in.load(Relaxed),
    );
    counter(
        &mut reg,
        "orb_packets_out",
        "Packets sent to readers, every port",
        t.packets_out.load(Relaxed),
    );
    counter(
        &mut reg,
        "orb_bytes_out",
        "Payload bytes sent to readers, every port",
        t.bytes_out.load(Relaxed),
    );
    counter(
        &mut reg,
        "orb_gaps",
        "Gaps: times a reader was lapped",
        t.gaps.load(Relaxed),
    );
    counter(
        &mut reg,
        "orb_gap_packets",
        "Packets lost to lapped readers",
        t.gap_packets.load(Relaxed),
    );
    counter(
        &mut reg,
        "orb_gap_bytes",
        "Ring bytes lost to lapped readers",
        t.gap_bytes.load(Relaxed),
    );

    let clients = Family::<Labels, FGauge>::default();
    for p in ["orb", "DataLink", "SeedLink", super::NAME] {
        clients
            .get_or_create(&vec![("protocol".into(), p.into())])
            .set(0.0);
    }
    let mut readers = 0u64;
    let mut worst_lag = 0f64;
    for c in hub.clients.entries() {
        clients
            .get_or_create(&vec![("protocol".into(), c.protocol().into())])
            .inc_by(1.0);
        if c.reads.load(Relaxed) {
            readers += 1;
            worst_lag = worst_lag.max(hub.ring.lag(c.pos.load(Relaxed)));
        }
    }
    reg.register("orb_clients", "Connected clients by port protocol", clients);
    gauge(
        &mut reg,
        "orb_readers",
        "Connected clients that read",
        None,
        readers as f64,
    );
    gauge(
        &mut reg,
        "orb_reader_lag_max_ratio",
        "Reap lag of the furthest-behind reader, as a fraction of the ring (0 caught up, 1 about to be lapped)",
        None,
        worst_lag,
    );

    let refused = Family::<Labels, Counter>::default();
    let r = hub.refused.snapshot();
    let c = &state.counters;
    for (kind, n) in [
        ("connects_denied", r.connects_denied),
        ("connects_limit", r.connects_limit),
        ("handshake_timeouts", r.handshake_timeouts),
        ("auth_failures", r.auth_failures),
        ("writes_not_allowed", r.writes_not_allowed),
        ("writes_foreign_srcname", r.writes_foreign_srcname),
        ("writes_too_large", r.writes_too_large),
        ("reads_not_allowed", r.reads_not_allowed),
        ("admin_not_allowed", r.admin_not_allowed),
        ("tls_handshakes", r.tls_handshakes),
        ("http_bad_request", c.bad_request.load(Relaxed)),
        ("http_headers_too_large", c.headers_too_large.load(Relaxed)),
        ("http_header_timeout", c.header_timeout.load(Relaxed)),
        ("http_not_found", c.not_found.load(Relaxed)),
        (
            "http_method_not_allowed",
            c.method_not_allowed.load(Relaxed),
        ),
        ("ws_bad_upgrade", c.ws_bad_upgrade.load(Relaxed)),
        ("ws_too_large", c.ws_too_large.load(Relaxed)),
        ("ws_bad_frame", c.ws_bad_frame.load(Relaxed)),
    ] {
        refused
            .get_or_create(&vec![("kind".into(), kind.into())])
            .inc_by(n);
    }
    reg.register(
        "orb_refusals",
        "Refused connections and requests by kind",
        refused,
    );
    counter(
        &mut reg,
        "orb_http_requests",
        "HTTP requests answered",
        c.requests.load(Relaxed),
    );

    let st = hub.ring.stat();
    let now = Time::now().as_micros();
    let age = |t: Time| now.saturating_sub(t.as_micros()) as f64 / 1e6;
    gauge(
        &mut reg,
        "orb_ring_capacity",
        "Ring data capacity",
        Some(Unit::Bytes),
        st.capacity as f64,
    );
    gauge(
        &mut reg,
        "orb_ring_used",
        "Ring bytes the live packets span",
        Some(Unit::Bytes),
        st.used_bytes as f64,
    );
    gauge(
        &mut reg,
        "orb_ring_packets",
        "Live packets in the ring",
        None,
        st.npkts as f64,
    );
    gauge(
        &mut reg,
        "orb_ring_sources",
        "Sources with live packets",
        None,
        st.nsources as f64,
    );
    if let (Some(o), Some(n)) = (st.oldest, st.newest) {
        gauge(
            &mut reg,
            "orb_ring_oldest_age",
            "Age of the oldest live packet's time",
            Some(Unit::Seconds),
            age(o.time),
        );
        gauge(
            &mut reg,
            "orb_ring_newest_age",
            "Age of the newest live packet's time",
            Some(Unit::Seconds),
            age(n.time),
        );
    }
    reg.register_with_unit(
        "orb_flush_latency",
        "Time each msync of the ring took (interval flushes and durable puts)",
        Unit::Seconds,
        ConstHistogram(hub.ring.flush_latency()),
    );

    let packets = Family::<Labels, FGauge>::default();
    let latency = Family::<Labels, FGauge>::default();
    for (name, npkts, lat) in capped_sources(
        hub.ring
            .sources()
            .into_iter()
            .map(|s| (s.srcname.to_string(), s.npkts, age(s.newest_time))),
    ) {
        let l = vec![("srcname".to_string(), name)];
        packets.get_or_create(&l).set(npkts as f64);
        latency.get_or_create(&l).set(lat);
    }
    reg.register(
        "orb_source_packets",
        "Live packets per source in the ring (the first 500 srcnames; the rest summed as _other)",
        packets,
    );
    reg.register_with_unit(
        "orb_source_latency",
        "Now minus the newest packet's time per source (_other: the largest among the rest)",
        Unit::Seconds,
        latency,
    );

    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &reg).expect("writing to a String");
    out
}

/// Sources by srcname: the first [`MAX_SOURCE_LABELS`] as they are, the rest as one
/// `_other` row with their packets summed and their largest latency.
fn capped_sources(sources: impl Iterator<Item = (String, u64, f64)>) -> Vec<(String, u64, f64)> {
    let sorted: BTreeMap<String, (u64, f64)> = sources.map(|(n, p, l)| (n, (p, l))).collect();
    let mut out: Vec<(String, u64, f64)> = Vec::new();
    let mut other: Option<(u64, f64)> = None;
    for (i, (name, (p, l))) in sorted.into_iter().enumerate() {
        if i < MAX_SOURCE_LABELS {
            out.push((name, p, l));
        } else {
            let o = other.get_or_insert((0, f64::NEG_INFINITY));
            o.0 += p;
            o.1 = o.1.max(l);
        }
    }
    if let Some((p, l)) = other {
        out.push((OTHER_SOURCES.into(), p, l));
    }
    out
}

/// The `/metrics` response.
pub(super) fn respond(state: &HttpState) -> Response<HttpBody> {
    super::respond(StatusCode::OK, CONTENT_TYPE, render(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_beyond_the_cap_are_summed_under_other() {
        let n = MAX_SOURCE_LABELS + 3;
        let rows = capped_sources((0..n).rev().map(|i| (format!("S{i:05}/GENC"), 2, i as f64)));
        assert_eq!(rows.len(), MAX_SOURCE_LABELS + 1);
        assert_eq!(
            rows[0].0, "S00000/GENC",
            "labels go to the first srcnames in order"
        );
        let other = rows.last().unwrap();
        assert_eq!(other.0, OTHER_SOURCES);
        assert_eq!(other.1, 6);
        assert_eq!(other.2, (n - 1) as f64);
        let few = capped_sources([("A".to_string(), 1, 0.5)].into_iter());
        assert_eq!(few, [("A".to_string(), 1, 0.5)]);
    }

    #[test]
    fn the_const_histogram_encodes_cumulative_buckets_and_inf() {
        let mut reg = Registry::default();
        reg.register_with_unit(
            "x_latency",
            "test",
            Unit::Seconds,
            ConstHistogram(FlushLatency {
                buckets: vec![(0.1, 1), (1.0, 3)],
                sum: 7.5,
                count: 4,
            }),
        );
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).unwrap();
        assert!(
            out.contains("x_latency_seconds_bucket{le=\"0.1\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_latency_seconds_bucket{le=\"1.0\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("x_latency_seconds_bucket{le=\"+Inf\"} 4\n"),
            "{out}"
        );
        assert!(out.contains("x_latency_seconds_count 4\n"), "{out}");
    }
}
