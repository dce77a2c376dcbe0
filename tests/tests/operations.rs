//! Every client operation against a real `orbserver`, through `OrbClient`: put (single,
//! batch, durable batch, pipelined; pktids consecutive from 1), get (by pktid, current,
//! not found), select/reject and the number of matching sources they report, every SEEK
//! whence (including out-of-range errors that leave the session usable), AFTER with
//! out-of-order packet times, TELL, `position` specs, REAP with a budget, a poll, a
//! timeout and a writer on another connection waking a waiting reader, the STAT,
//! SOURCES and CLIENTS documents field by field, access rules, and PING
//! (PROTOCOL.md, "Session rules" and "INFO documents").

use std::time::Duration;

use formats::proto::{ErrorCode, ReapEndReason, Whence};
use formats::{Packet, SrcName, Time};
use orb_tests::harness::{connect, connect_with, guard, start, OrbServer, GUARD};
use orbclient::{
    ClientError, ClientOptions, OrbClient, PutSummary, ReapEvent, ReapOptions, ReapStream,
};

fn name(s: &str) -> SrcName {
    SrcName::new(s).unwrap()
}

/// 2026-11-22T10:00:00Z plus `secs`.
fn t(secs: i64) -> Time {
    Time::from_micros(1_795_341_600_000_000 + secs * 1_000_000)
}

fn reap_opts(max_packets: u32, timeout: Option<Duration>) -> ReapOptions {
    ReapOptions {
        max_packets,
        timeout,
        ..ReapOptions::default()
    }
}

/// Every event of a stream until it ends.
async fn drain(stream: &mut ReapStream) -> Vec<ReapEvent> {
    let mut evs = Vec::new();
    for _ in 0..100_000 {
        match guard("reap", stream.next()).await.unwrap() {
            Some(ev) => evs.push(ev),
            None => return evs,
        }
    }
    panic!("the reap did not end after 100000 events");
}

fn packets(evs: &[ReapEvent]) -> Vec<&Packet> {
    evs.iter()
        .map(|e| match e {
            ReapEvent::Packet(p) => p,
            ReapEvent::Gap { .. } => panic!("unexpected gap in {evs:?}"),
        })
        .collect()
}

fn pktids(evs: &[ReapEvent]) -> Vec<u64> {
    packets(evs).iter().map(|p| p.pktid).collect()
}

/// Reaps from the session's position until nothing more is there (timeout 0).
async fn poll_all(c: OrbClient) -> (Vec<ReapEvent>, OrbClient) {
    let mut s = guard("REAP", c.reap(reap_opts(0, Some(Duration::ZERO))))
        .await
        .unwrap();
    let evs = drain(&mut s).await;
    assert_eq!(s.end().unwrap().reason, ReapEndReason::Timeout);
    (evs, s.into_client().await.unwrap())
}

fn code(r: Result<impl std::fmt::Debug, ClientError>) -> ErrorCode {
    match r {
        Err(ClientError::Server { code, .. }) => code,
        other => panic!("expected an ERROR from the server, got {other:?}"),
    }
}

#[tokio::test]
async fn puts_of_every_kind_get_consecutive_pktids_and_get_returns_them() {
    let (_dir, srv) = start();
    let mut w = connect(&srv, "e2e-writer").await;
    assert_eq!(w.welcome().version, 1);
    assert!(w.welcome().server.starts_with("orbserver "));
    let a = name("TA_AAA/MGENC");
    let b = name("AZ_PFO/MGENC");
    let mut want: Vec<Packet> = Vec::new();

    // Single put.
    assert_eq!(w.put(&a, t(0), b"one").await.unwrap(), 1);
    want.push(Packet::new(a.clone(), t(0), &b"one"[..]));
    // A batch in one PUT frame.
    let batch: Vec<Packet> = (1..=3)
        .map(|i| Packet::new(b.clone(), t(i), vec![i as u8; 10 * i as usize]))
        .collect();
    assert_eq!(w.put_batch(&batch, false).await.unwrap(), 2);
    want.extend(batch.iter().cloned());
    // A durable batch, and an empty payload.
    let durable = vec![Packet::new(a.clone(), t(4), Vec::new())];
    assert_eq!(w.put_batch(&durable, true).await.unwrap(), 5);
    want.extend(durable);
    // Pipelined puts, many frames in flight.
    let piped: Vec<Packet> = (0..20)
        .map(|i| Packet::new(a.clone(), t(10 + i), format!("piped {i}").into_bytes()))
        .collect();
    let summary = guard("pipelined put", w.put_pipelined(piped.clone(), 4))
        .await
        .unwrap();
    assert_eq!(
        summary,
        PutSummary {
            first: 6,
            last: 25,
            count: 20
        }
    );
    want.extend(piped);

    for (i, p) in want.iter().enumerate() {
        let pktid = i as u64 + 1;
        let got = w.get(pktid).await.unwrap().expect("stored packet");
        assert_eq!(got.pktid, pktid);
        assert_eq!(got.srcname, p.srcname, "pktid {pktid}");
        assert_eq!(got.time, p.time, "pktid {pktid}");
        assert_eq!(got.payload, p.payload, "pktid {pktid}");
    }
    assert_eq!(w.get(26).await.unwrap(), None, "pktid beyond the newest");
    assert_eq!(w.get(0).await.unwrap(), None, "pktid 0 is never assigned");

    // This session connected to an empty ring: its position is 1, so its current
    // packet is pktid 1; GET never moves the position.
    assert_eq!(w.tell().await.unwrap(), 1);
    assert_eq!(w.get_current().await.unwrap().unwrap().pktid, 1);
    assert_eq!(w.tell().await.unwrap(), 1);

    // A new session starts at the next pktid: no current packet yet.
    let mut r = connect(&srv, "e2e-reader").await;
    assert_eq!(r.tell().await.unwrap(), 26);
    assert_eq!(r.get_current().await.unwrap(), None);
    r.ping().await.unwrap();
}

#[tokio::test]
async fn select_and_reject_report_the_matching_sources() {
    let (_dir, srv) = start();
    let mut w = connect(&srv, "e2e-writer").await;
    let names = [
        "TA_AAA/MGENC",
        "TA_BBB/MGENC",
        "AZ_PFO/MGENC",
        "/pf/orbstat",
    ];
    for round in 0..2 {
        for (i, n) in names.iter().enumerate() {
            w.put(&name(n), t(round * 10 + i as i64), n.as_bytes())
                .await
                .unwrap();
        }
    }
    let mut r = connect(&srv, "e2e-reader").await;
    assert_eq!(r.select("TA_.*").await.unwrap(), 2);
    // The expression must match the whole srcname.
    assert_eq!(r.select("TA_").await.unwrap(), 0);
    assert_eq!(r.select("AZ_PFO").await.unwrap(), 0);
    assert_eq!(r.select("AZ_PFO/MGENC").await.unwrap(), 1);
    assert_eq!(r.select("").await.unwrap(), 4);
    assert_eq!(r.reject("/pf/.*").await.unwrap(), 3);
    assert_eq!(r.select("TA_.*|/pf/.*").await.unwrap(), 2);
    assert_eq!(r.reject("").await.unwrap(), 3);
    assert_eq!(r.reject(".*_BBB/.*").await.unwrap(), 2);

    // A bad expression is refused and the previous one stays in force.
    assert_eq!(code(r.select("(").await), ErrorCode::BadRegex);
    assert_eq!(code(r.reject("[").await), ErrorCode::BadRegex);
    let me = r.welcome().client_id;
    let row = r
        .clients()
        .await
        .unwrap()
        .clients
        .into_iter()
        .find(|c| c.id == me)
        .expect("own row in CLIENTS");
    assert_eq!(row.select, "TA_.*|/pf/.*");
    assert_eq!(row.reject, ".*_BBB/.*");

    // The filter applies to reaps; changing it did not move the position.
    assert_eq!(r.tell().await.unwrap(), 9);
    assert_eq!(r.seek(Whence::Oldest, 0).await.unwrap(), 1);
    let (evs, _r) = poll_all(r).await;
    let got: Vec<(u64, String)> = packets(&evs)
        .iter()
        .map(|p| (p.pktid, p.srcname.to_string()))
        .collect();
    let want: Vec<(u64, String)> = [1, 4, 5, 8]
        .iter()
        .map(|&p| (p, names[(p as usize - 1) % 4].to_owned()))
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn every_seek_whence_moves_the_position_as_documented() {
    let (_dir, srv) = start();
    let mut c = connect(&srv, "e2e-seeker").await;
    // Odd pktids from A, even pktids from B.
    for i in 1..=10 {
        let n = if i % 2 == 1 { "AA_ODD" } else { "BB_EVEN" };
        assert_eq!(c.put(&name(n), t(i), &[i as u8]).await.unwrap(), i as u64);
    }
    assert_eq!(c.seek(Whence::Oldest, 0).await.unwrap(), 1);
    assert_eq!(c.seek(Whence::Newest, 0).await.unwrap(), 10);
    assert_eq!(c.seek(Whence::Pktid, 5).await.unwrap(), 5);
    // The next pktid is a valid position; beyond it is not.
    assert_eq!(c.seek(Whence::Pktid, 11).await.unwrap(), 11);
    assert_eq!(code(c.seek(Whence::Pktid, 12).await), ErrorCode::OutOfRange);
    assert_eq!(code(c.seek(Whence::Pktid, 0).await), ErrorCode::OutOfRange);
    assert_eq!(c.tell().await.unwrap(), 11, "a failed seek leaves pos");
    c.ping().await.unwrap();

    assert_eq!(c.select("BB_.*").await.unwrap(), 1);
    assert_eq!(c.seek(Whence::Pktid, 5).await.unwrap(), 5);
    // CURRENT: the first matching packet at or after pos.
    assert_eq!(c.seek(Whence::Current, 0).await.unwrap(), 6);
    assert_eq!(c.tell().await.unwrap(), 6);
    // NEXT skips the current packet.
    assert_eq!(c.seek(Whence::Next, 0).await.unwrap(), 7);
    assert_eq!(c.seek(Whence::Current, 0).await.unwrap(), 8);
    // PREV: the last matching pktid before pos.
    assert_eq!(c.seek(Whence::Prev, 0).await.unwrap(), 6);
    assert_eq!(c.seek(Whence::Prev, 0).await.unwrap(), 4);
    assert_eq!(c.seek(Whence::Prev, 0).await.unwrap(), 2);
    assert_eq!(code(c.seek(Whence::Prev, 0).await), ErrorCode::OutOfRange);
    assert_eq!(c.tell().await.unwrap(), 2, "a failed PREV leaves pos");
    // With no current packet, CURRENT and NEXT leave pos alone.
    assert_eq!(c.seek(Whence::Pktid, 10).await.unwrap(), 10);
    assert_eq!(c.seek(Whence::Next, 0).await.unwrap(), 11);
    assert_eq!(c.seek(Whence::Current, 0).await.unwrap(), 11);
    assert_eq!(c.seek(Whence::Next, 0).await.unwrap(), 11);
    assert_eq!(c.get_current().await.unwrap(), None);

    // NEWEST then a reap returns the newest packet itself.
    assert_eq!(c.select("").await.unwrap(), 2);
    assert_eq!(c.seek(Whence::Newest, 0).await.unwrap(), 10);
    let (evs, mut c) = poll_all(c).await;
    assert_eq!(pktids(&evs), [10]);
    assert_eq!(c.tell().await.unwrap(), 11);
}

#[tokio::test]
async fn after_finds_the_first_packet_in_ring_order_at_or_after_a_time() {
    let (_dir, srv) = start();
    let mut c = connect(&srv, "e2e-after").await;
    // Packet times out of order: pktid 1..=5 at these seconds.
    for (i, secs) in [100, 50, 200, 150, 300].into_iter().enumerate() {
        let pktid = c.put(&name("XX_TIME"), t(secs), &[0u8; 3]).await.unwrap();
        assert_eq!(pktid, i as u64 + 1);
    }
    for (secs, want) in [
        (0, 1),
        (50, 1),
        (100, 1),
        (101, 3),
        (150, 3),
        (175, 3),
        (200, 3),
        (201, 5),
        (300, 5),
        (301, 6),
    ] {
        assert_eq!(c.after(t(secs)).await.unwrap(), want, "AFTER +{secs}s");
        assert_eq!(c.tell().await.unwrap(), want);
    }
    // A reap after AFTER goes on in pktid order, whatever the times.
    c.after(t(150)).await.unwrap();
    let (evs, _c) = poll_all(c).await;
    assert_eq!(pktids(&evs), [3, 4, 5]);
}

#[tokio::test]
async fn position_reads_antelope_style_specs() {
    let (_dir, srv) = start();
    let mut c = connect(&srv, "e2e-position").await;
    let now = Time::now();
    let ago = |secs: i64| now.checked_sub_micros(secs * 1_000_000).unwrap();
    let a = name("XX_POS");
    assert_eq!(c.put(&a, ago(7200), b"two hours ago").await.unwrap(), 1);
    assert_eq!(c.put(&a, ago(300), b"five minutes ago").await.unwrap(), 2);
    assert_eq!(c.put(&a, now, b"now").await.unwrap(), 3);

    assert_eq!(c.position("oldest").await.unwrap(), 1);
    assert_eq!(c.position("newest").await.unwrap(), 3);
    assert_eq!(c.position("2").await.unwrap(), 2);
    let iso = ago(3600).to_iso8601().unwrap();
    assert_eq!(c.position(&iso).await.unwrap(), 2, "{iso}");
    assert_eq!(c.position("-10m").await.unwrap(), 2);
    assert_eq!(c.position("-1m").await.unwrap(), 3);
    assert_eq!(
        c.position("+1h").await.unwrap(),
        4,
        "nothing that late: next"
    );
    let epoch = format!("{}.5", ago(3 * 3600).as_micros() / 1_000_000);
    assert_eq!(c.position(&epoch).await.unwrap(), 1, "{epoch}");
    assert_eq!(code(c.position("99").await), ErrorCode::OutOfRange);
    assert!(matches!(
        c.position("yesterday").await,
        Err(ClientError::BadRequest(_))
    ));
    assert_eq!(c.tell().await.unwrap(), 1);
}

#[tokio::test]
async fn reap_honours_budget_poll_and_timeout() {
    let (_dir, srv) = start();
    let mut w = connect(&srv, "e2e-writer").await;
    for i in 0..10 {
        w.put(&name("XX_REAP"), t(i), &[i as u8; 5]).await.unwrap();
    }
    let mut r = connect(&srv, "e2e-reader").await;
    r.seek(Whence::Oldest, 0).await.unwrap();

    // Budget: four packets, then REAP_END Budget at pos 5.
    let mut s = r.reap(reap_opts(4, None)).await.unwrap();
    assert_eq!(pktids(&drain(&mut s).await), [1, 2, 3, 4]);
    let end = s.end().unwrap();
    assert_eq!((end.reason, end.pos), (ReapEndReason::Budget, 5));
    let mut r = s.into_client().await.unwrap();
    assert_eq!(r.tell().await.unwrap(), 5);

    // Poll: what is there now, then REAP_END Timeout.
    let (evs, r) = poll_all(r).await;
    assert_eq!(pktids(&evs), [5, 6, 7, 8, 9, 10]);
    let (evs, r) = poll_all(r).await;
    assert!(evs.is_empty());

    // A timeout with nothing arriving ends the reap (Timeout, pos unchanged).
    let mut s = r
        .reap(reap_opts(0, Some(Duration::from_millis(200))))
        .await
        .unwrap();
    assert!(drain(&mut s).await.is_empty());
    let end = s.end().unwrap();
    assert_eq!((end.reason, end.pos), (ReapEndReason::Timeout, 11));
    let mut r = s.into_client().await.unwrap();

    // A credit window of one packet still delivers everything.
    r.seek(Whence::Oldest, 0).await.unwrap();
    let opts = ReapOptions {
        timeout: Some(Duration::ZERO),
        credit_window: 1,
        ..ReapOptions::default()
    };
    let mut s = r.reap(opts).await.unwrap();
    assert_eq!(pktids(&drain(&mut s).await), (1..=10).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_waiting_reap_is_woken_by_a_writer_on_another_connection() {
    let (_dir, srv) = start();
    let r = connect(&srv, "e2e-waiting-reader").await;
    let reader_id = r.welcome().client_id;
    let reader = tokio::spawn(async move {
        // No timeout: only a put can end this wait.
        let mut s = r.reap(reap_opts(0, None)).await.unwrap();
        let mut got = Vec::new();
        while got.len() < 5 {
            match guard("woken reap", s.next()).await.unwrap() {
                Some(ReapEvent::Packet(p)) => got.push(p),
                other => panic!("unexpected {other:?}"),
            }
        }
        let end = s.stop().await.unwrap();
        (got, end)
    });

    let mut w = connect(&srv, "e2e-writer").await;
    // Wait (bounded) until the server shows the reader's reap as active.
    let mut reaping = false;
    for _ in 0..3000 {
        let c = w.clients().await.unwrap();
        if c.clients.iter().any(|c| c.id == reader_id && c.reaping) {
            reaping = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(reaping, "the reader never started reaping");
    for i in 0..5u8 {
        let pktid = w.put(&name("XX_WAKE"), t(i.into()), &[i]).await.unwrap();
        assert_eq!(pktid, u64::from(i) + 1);
    }
    let (got, end) = guard("reader task", reader).await.unwrap();
    let ids: Vec<u64> = got.iter().map(|p| p.pktid).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    for (i, p) in got.iter().enumerate() {
        assert_eq!(p.payload.as_ref(), [i as u8]);
    }
    assert_eq!((end.reason, end.pos), (ReapEndReason::Stopped, 6));
}

#[tokio::test]
async fn stat_sources_and_clients_documents_describe_the_server() {
    let (_dir, srv) = start();
    let writer_opts = ClientOptions {
        who: Some("tester@e2e".into()),
        ..ClientOptions::for_program("e2e-writer").with_access(false, true)
    };
    let mut w = connect_with(&srv, writer_opts).await;
    let az = name("AZ_PFO/MGENC");
    let ta = name("TA_AAA/MGENC");
    // pktid: 1 AZ(10) 2 TA(5) 3 AZ(20) 4 TA(7) 5 AZ(30)
    for (i, (n, len)) in [(&az, 10), (&ta, 5), (&az, 20), (&ta, 7), (&az, 30)]
        .into_iter()
        .enumerate()
    {
        w.put(n, t(i as i64), &vec![1u8; len]).await.unwrap();
    }
    let reader_opts = ClientOptions::for_program("e2e-reader").with_access(true, false);
    let mut r = connect_with(&srv, reader_opts).await;
    assert_eq!(r.select("AZ_.*").await.unwrap(), 1);
    r.seek(Whence::Oldest, 0).await.unwrap();
    let (evs, mut r) = poll_all(r).await;
    assert_eq!(pktids(&evs), [1, 3, 5]);
    r.seek(Whence::Pktid, 2).await.unwrap();

    let mut s = connect_with(
        &srv,
        ClientOptions::for_program("e2e-stat").with_access(false, false),
    )
    .await;
    let stat = s.stat().await.unwrap();
    assert!(stat.server.starts_with("orbserver "), "{}", stat.server);
    assert_eq!(stat.protocol, 1);
    assert!(
        Time::parse_iso8601(&stat.started).is_ok(),
        "{}",
        stat.started
    );
    assert!(Time::parse_iso8601(&stat.now).is_ok(), "{}", stat.now);
    let ring = &stat.ring;
    assert!(ring.path.ends_with("orb.ring"), "{}", ring.path);
    assert_eq!(ring.capacity, w.welcome().ring_capacity);
    assert_eq!(ring.npkts, 5);
    assert_eq!(ring.nsources, 2);
    assert!(ring.used_bytes >= 72 && ring.used_bytes <= ring.capacity);
    let oldest = ring.oldest.as_ref().unwrap();
    assert_eq!(oldest.pktid, 1);
    assert_eq!(Time::parse_iso8601(&oldest.time).unwrap(), t(0));
    let newest = ring.newest.as_ref().unwrap();
    assert_eq!(newest.pktid, 5);
    assert_eq!(Time::parse_iso8601(&newest.time).unwrap(), t(4));
    assert_eq!(ring.next_pktid, 6);
    assert_eq!(ring.flush, "none");
    assert_eq!(stat.clients, 3);
    assert!(stat.packet_rate >= 0.0 && stat.byte_rate >= 0.0);
    let tot = &stat.totals;
    assert_eq!((tot.packets_in, tot.bytes_in), (5, 72));
    assert_eq!((tot.packets_out, tot.bytes_out), (3, 60));
    assert_eq!((tot.gaps, tot.gap_packets, tot.gap_bytes), (0, 0, 0));

    let sources = s.sources().await.unwrap().sources;
    let rows: Vec<(&str, u64, u64, u64, u64)> = sources
        .iter()
        .map(|r| {
            (
                r.srcname.as_str(),
                r.npkts,
                r.nbytes,
                r.oldest.pktid,
                r.newest.pktid,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [("AZ_PFO/MGENC", 3, 60, 1, 5), ("TA_AAA/MGENC", 2, 12, 2, 4)]
    );
    assert_eq!(Time::parse_iso8601(&sources[1].newest.time).unwrap(), t(3));
    assert!(sources.iter().all(|s| s.latency.is_finite()));

    let clients = s.clients().await.unwrap().clients;
    assert_eq!(clients.len(), 3);
    let ids: Vec<u64> = clients.iter().map(|c| c.id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "rows are by id");
    let row = |id: u64| clients.iter().find(|c| c.id == id).expect("client row");
    let wr = row(w.welcome().client_id);
    assert_eq!(
        (wr.who.as_str(), wr.what.as_str(), wr.access.as_str()),
        ("tester@e2e", "e2e-writer", "w")
    );
    assert_eq!(wr.pid, std::process::id());
    assert!(wr.address.starts_with("127.0.0.1:"), "{}", wr.address);
    assert!(Time::parse_iso8601(&wr.connected).is_ok());
    assert_eq!((wr.packets_in, wr.bytes_in), (5, 72));
    assert_eq!((wr.packets_out, wr.bytes_out), (0, 0));
    assert_eq!(wr.lag, None, "a writer does not read");
    assert!(!wr.reaping);
    let rr = row(r.welcome().client_id);
    assert_eq!((rr.what.as_str(), rr.access.as_str()), ("e2e-reader", "r"));
    assert_eq!((rr.select.as_str(), rr.reject.as_str()), ("AZ_.*", ""));
    assert_eq!(rr.pos, 2);
    assert_eq!((rr.packets_out, rr.bytes_out, rr.gaps), (3, 60, 0));
    let lag = rr.lag.expect("a reader has a lag");
    assert!((0.0..=1.0).contains(&lag), "{lag}");
    assert!(!rr.reaping);
    assert_eq!(row(s.welcome().client_id).what, "e2e-stat");

    // A client that leaves leaves the table.
    drop(w);
    let mut gone = false;
    for _ in 0..3000 {
        if s.stat().await.unwrap().clients == 2 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gone, "the writer's row stayed after it disconnected");
}

#[tokio::test]
async fn access_is_checked_per_request_and_ping_needs_none() {
    let (_dir, srv) = start();
    let mut none = connect_with(
        &srv,
        ClientOptions::for_program("e2e-none").with_access(false, false),
    )
    .await;
    let rtt = none.ping().await.unwrap();
    assert!(rtt < GUARD);
    none.stat().await.unwrap();
    assert_eq!(
        code(none.put(&name("XX_ACC"), t(0), b"x").await),
        ErrorCode::NotAllowed
    );
    assert_eq!(code(none.tell().await), ErrorCode::NotAllowed);

    let mut w = connect_with(
        &srv,
        ClientOptions::for_program("e2e-writer").with_access(false, true),
    )
    .await;
    assert_eq!(code(w.seek(Whence::Oldest, 0).await), ErrorCode::NotAllowed);
    assert_eq!(code(w.select("X.*").await), ErrorCode::NotAllowed);
    assert_eq!(code(w.get(1).await), ErrorCode::NotAllowed);
    assert_eq!(w.put(&name("XX_ACC"), t(0), b"x").await.unwrap(), 1);

    let mut r = connect_with(
        &srv,
        ClientOptions::for_program("e2e-reader").with_access(true, false),
    )
    .await;
    assert_eq!(
        code(r.put(&name("XX_ACC"), t(0), b"y").await),
        ErrorCode::NotAllowed
    );
    assert_eq!(r.get(1).await.unwrap().unwrap().payload.as_ref(), b"x");
    // Refused requests left every session usable, and stored nothing.
    for c in [&mut none, &mut w, &mut r] {
        c.ping().await.unwrap();
    }
    assert_eq!(r.stat().await.unwrap().ring.npkts, 1);
}

#[tokio::test]
async fn a_narrow_select_finds_packets_beyond_long_runs_of_others() {
    // More non-matching packets than the server scans per batch (64 Ki), then one match.
    const OTHERS: u64 = 70_000;
    let dir = tempfile::tempdir().unwrap();
    let srv = OrbServer::start(dir.path(), &["--ring-size", "16MiB", "--flush", "none"]);
    let mut w = connect(&srv, "e2e-writer").await;
    let noise = name("XX_NOISE");
    let batch: Vec<Packet> = (0..1000)
        .map(|i| Packet::new(noise.clone(), t(i), &b"n"[..]))
        .collect();
    for _ in 0..OTHERS / 1000 {
        w.put_batch(&batch, false).await.unwrap();
    }
    let rare = OTHERS + 1;
    assert_eq!(w.put(&name("YY_RARE"), t(0), b"rare").await.unwrap(), rare);
    let mut r = connect(&srv, "e2e-reader").await;
    assert_eq!(r.select("YY_.*").await.unwrap(), 1);
    r.seek(Whence::Oldest, 0).await.unwrap();
    assert_eq!(r.get_current().await.unwrap().unwrap().pktid, rare);
    assert_eq!(r.seek(Whence::Current, 0).await.unwrap(), rare);
    r.seek(Whence::Oldest, 0).await.unwrap();
    assert_eq!(r.seek(Whence::Next, 0).await.unwrap(), rare + 1);
    assert_eq!(r.seek(Whence::Prev, 0).await.unwrap(), rare);

    // A poll must not end before it has looked at everything.
    r.seek(Whence::Oldest, 0).await.unwrap();
    let (evs, mut r) = poll_all(r).await;
    assert_eq!(pktids(&evs), [rare]);
    // Nor may a waiting reap sleep while matches remain unscanned.
    r.seek(Whence::Oldest, 0).await.unwrap();
    let mut s = r.reap(reap_opts(1, None)).await.unwrap();
    assert_eq!(pktids(&drain(&mut s).await), [rare]);
}

#[tokio::test]
async fn sources_lists_thousands_of_sources() {
    let (_dir, srv) = start();
    let mut w = connect(&srv, "e2e-writer").await;
    let batch: Vec<Packet> = (0..3000)
        .map(|i| Packet::new(name(&format!("N{i:05}_STA/MGENC")), t(i), &b"x"[..]))
        .collect();
    for chunk in batch.chunks(500) {
        w.put_batch(chunk, false).await.unwrap();
    }
    let sources = w.sources().await.unwrap().sources;
    assert_eq!(sources.len(), 3000);
    assert!(sources.windows(2).all(|p| p[0].srcname < p[1].srcname));
    assert_eq!(w.select("N001.*").await.unwrap(), 100);
    assert_eq!(w.stat().await.unwrap().ring.nsources, 3000);
}

#[tokio::test]
async fn after_and_seeks_are_exact_on_a_wrapped_ring_with_shuffled_times() {
    let (_dir, srv) = start();
    let mut w = connect(&srv, "e2e-writer").await;
    let mut rng = orb_tests::XorShift::new(7);
    let src = name("XX_WRAP");
    // About 3 MiB through the 1 MiB ring; times jump around.
    let times: Vec<i64> = (0..1500).map(|_| rng.range(0, 5000) as i64).collect();
    let batch: Vec<Packet> = times
        .iter()
        .map(|&s| Packet::new(src.clone(), t(s), vec![0u8; 2000]))
        .collect();
    let put = guard("put", w.put_pipelined(batch, 32)).await.unwrap();
    assert_eq!((put.first, put.last), (1, 1500));
    let mut r = connect(&srv, "e2e-reader").await;
    let oldest = r.seek(Whence::Oldest, 0).await.unwrap();
    assert!(oldest > 1, "the ring should have wrapped");
    let (evs, mut r) = poll_all(r).await;
    let live: Vec<(u64, Time)> = packets(&evs).iter().map(|p| (p.pktid, p.time)).collect();
    assert_eq!(live.first().unwrap().0, oldest);
    assert_eq!(live.last().unwrap().0, 1500);
    for (pktid, time) in &live {
        assert_eq!(*time, t(times[*pktid as usize - 1]), "pktid {pktid}");
    }
    // AFTER t: the first live packet in ring order with time >= t, else next.
    for _ in 0..200 {
        let secs = rng.range(0, 5002) as i64;
        let want = live
            .iter()
            .find(|(_, time)| *time >= t(secs))
            .map_or(1501, |(p, _)| *p);
        assert_eq!(r.after(t(secs)).await.unwrap(), want, "AFTER +{secs}s");
    }
    // Overwritten pktids are gone for GET and SEEK, and PREV stops at the oldest.
    assert_eq!(r.get(oldest - 1).await.unwrap(), None);
    assert_eq!(r.get(oldest).await.unwrap().unwrap().pktid, oldest);
    let err = r.seek(Whence::Pktid, oldest - 1).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::OutOfRange), "{err}");
    assert_eq!(r.seek(Whence::Pktid, oldest).await.unwrap(), oldest);
    let err = r.seek(Whence::Prev, 0).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::OutOfRange), "{err}");
    assert_eq!(r.seek(Whence::Pktid, oldest + 1).await.unwrap(), oldest + 1);
    assert_eq!(r.seek(Whence::Prev, 0).await.unwrap(), oldest);
    let stat = r.stat().await.unwrap();
    assert_eq!(stat.ring.npkts, 1500 - oldest + 1);
    assert!(stat.ring.used_bytes <= stat.ring.capacity);
    let sources = r.sources().await.unwrap().sources;
    assert_eq!(sources.len(), 1);
    assert_eq!(
        (sources[0].npkts, sources[0].oldest.pktid),
        (stat.ring.npkts, oldest)
    );
    assert_eq!(sources[0].nbytes, stat.ring.npkts * 2000);
}
