//! The SeedLink session's rules driven directly, without a socket or a sleep.

use std::time::Duration;

use super::SeedLink;
use crate::conn::testing::{Clock, TestHub};
use crate::conn::{Close, Farewell, Fill, Messages, OutBuf as _, Session as _};
use crate::ring::FlushPolicy;
use formats::{SrcName, Time};

/// A test hub whose ring has one packet of station `XX` `STA01` (a `STATION` needs a
/// station the ring knows), timed at the epoch so no time window of the tests holds it.
fn hub_with_sta01() -> TestHub {
    let hub = TestHub::new(FlushPolicy::None);
    let name = SrcName::new("XX_STA01/pf").unwrap();
    hub.hub
        .ring
        .append(&name, Time::from_micros(0), b"x")
        .unwrap();
    hub
}

#[test]
fn negotiation_then_transfer_then_bye() {
    let hub = hub_with_sta01();
    let clock = Clock::new();
    let mut s = hub.session::<SeedLink>();
    let mut out = Messages::default();
    assert!(!s.handshake_done());
    let r = s.receive(b"HELLO\r\nSTATION STA01 XX\r\nSEL", clock.now(), &mut out);
    assert_eq!(r.consumed, b"HELLO\r\nSTATION STA01 XX\r\n".len());
    assert!(s.handshake_done());
    let text = String::from_utf8_lossy(out.bytes()).into_owned();
    assert!(text.starts_with("SeedLink v3.1"), "{text}");
    assert!(text.ends_with("OK\r\n"), "STATION answered: {text}");
    assert!(!s.wants_packets());
    out.clear();
    let r = s.receive(b"END\r\n", clock.now(), &mut out);
    assert!(r.close.is_none());
    assert!(s.wants_packets(), "END starts the transfer");
    assert_eq!(s.fill(clock.now(), &mut out, 1 << 16), Fill::Waiting);
    let r = s.receive(b"BYE\r\n", clock.now(), &mut out);
    assert_eq!(r.close, Some(Close::Done));
}

#[test]
fn a_line_too_long_ends_the_connection() {
    let hub = TestHub::new(FlushPolicy::None);
    let clock = Clock::new();
    let mut s = hub.session::<SeedLink>();
    let mut out = Messages::default();
    let r = s.receive(&[b'A'; 4096], clock.now(), &mut out);
    assert!(matches!(r.close, Some(Close::Error(_))), "{r:?}");
}

#[test]
fn seedlink_has_no_words_for_a_kill() {
    let hub = TestHub::new(FlushPolicy::None);
    let mut s = hub.session::<SeedLink>();
    let mut out = Messages::default();
    s.farewell(Farewell::Killed, &mut out);
    assert!(out.is_empty());
}

#[test]
fn a_time_window_ends_when_its_end_passes_even_without_packets() {
    let hub = hub_with_sta01();
    let mut clock = Clock::new();
    let mut s = hub.session::<SeedLink>();
    let mut out = Messages::default();
    // The test clock's wall time is 2026-01-01T00:00:00Z; the window ends 10 s later.
    let input = b"STATION STA01 XX\r\nTIME 2025,12,31,23,59,0 2026,1,1,0,0,10\r\nEND\r\n";
    let r = s.receive(input, clock.now(), &mut out);
    assert!(r.close.is_none());
    assert!(s.wants_packets());
    out.clear();
    assert_eq!(s.fill(clock.now(), &mut out, 1 << 16), Fill::Waiting);
    let deadline = s.deadline().expect("the window's end is a deadline");
    let ahead = deadline - clock.now().mono;
    assert!(
        ahead > Duration::from_secs(9)
            && ahead <= Duration::from_secs(10) + Duration::from_millis(1),
        "{ahead:?}"
    );
    clock.advance(Duration::from_secs(9));
    assert_eq!(s.fill(clock.now(), &mut out, 1 << 16), Fill::Waiting);
    clock.advance(Duration::from_secs(1) + Duration::from_millis(1));
    assert_eq!(
        s.fill(clock.now(), &mut out, 1 << 16),
        Fill::Close(Close::Done)
    );
    assert!(
        out.bytes().ends_with(b"END"),
        "{:?}",
        String::from_utf8_lossy(out.bytes())
    );
}

/// The INFO reply at the start of `out`: its kind and its XML.
fn info_reply(out: &[u8]) -> (formats::seedlink::frame::InfoKind, String) {
    use formats::seedlink::frame::{info_kind, info_text};
    let kind = info_kind(out).expect("INFO frames");
    let xml = info_text(out).expect("whole INFO frames ending in a last one");
    (kind, xml)
}

#[test]
fn after_extreply_a_bad_selector_is_refused_in_libslinks_form_and_negotiation_goes_on() {
    let hub = hub_with_sta01();
    let clock = Clock::new();
    let mut s = hub.session::<SeedLink>();
    let mut out = Messages::default();
    s.receive(b"SELECT B#Z\r\n", clock.now(), &mut out);
    assert_eq!(out.bytes(), b"ERROR\r\n", "no reason without EXTREPLY");
    out.clear();
    let input =
        b"CAPABILITIES EXTREPLY\r\nSTATION STA01 XX\r\nSELECT BHZ\r\nSELECT B#Z\r\nDATA\r\n";
    let r = s.receive(input, clock.now(), &mut out);
    assert!(r.close.is_none());
    let text = String::from_utf8(out.bytes().to_vec()).unwrap();
    assert_eq!(
        text,
        "OK\r\nOK\r\nOK\r\nERROR\rARGUMENTS bad selector \"B#Z\": want [!][LL]CCC[.T] or [!][LL_]B_S_S[.T]\r\nOK\r\n"
    );
    s.receive(b"END\r\n", clock.now(), &mut out);
    assert!(s.wants_packets(), "END starts the transfer");
}

#[test]
fn info_on_an_unknown_level_is_one_last_err_frame_before_and_during_the_transfer() {
    use formats::seedlink::frame::InfoKind;
    let hub = TestHub::new(FlushPolicy::None);
    let clock = Clock::new();
    let mut s = hub.session::<SeedLink>();
    let mut out = Messages::default();
    for line in ["INFO FORMATS\r\n", "INFO\r\n"] {
        out.clear();
        s.receive(line.as_bytes(), clock.now(), &mut out);
        assert_eq!(
            &out.bytes()[..8],
            b"SLINFO  ",
            "{line:?}: one frame, the last"
        );
        let (kind, xml) = info_reply(out.bytes());
        assert_eq!(kind, InfoKind::Error, "{line:?}");
        assert!(xml.contains("<seedlink software=\"SeedLink v3.1"), "{xml}");
        assert!(xml.contains("<error code=\"ARGUMENTS\""), "{xml}");
    }
    out.clear();
    s.receive(b"DATA\r\nINFO FORMATS\r\n", clock.now(), &mut out);
    assert!(s.wants_packets());
    assert_eq!(info_reply(out.bytes()).0, InfoKind::Error);
    out.clear();
    s.receive(b"INFO ID\r\n", clock.now(), &mut out);
    assert_eq!(info_reply(out.bytes()).0, InfoKind::Info);
}

#[test]
fn useragent_is_recorded_whole_and_connections_are_nested_in_stations() {
    use formats::seedlink::frame::InfoKind;
    let hub = TestHub::new(FlushPolicy::None);
    let clock = Clock::new();
    let mut s = hub.session::<SeedLink>();
    let mut out = Messages::default();
    s.receive(
        b"USERAGENT slinktool/5.0 libslink/4.3\r\n",
        clock.now(),
        &mut out,
    );
    assert_eq!(out.bytes(), b"OK\r\n");
    let entry = hub
        .hub
        .clients
        .entries()
        .pop()
        .expect("the session's entry");
    assert_eq!(entry.ident().who, "slinktool/5.0 libslink/4.3");
    out.clear();
    // The test hub's loopback client is an administrator.
    s.receive(b"INFO CONNECTIONS\r\n", clock.now(), &mut out);
    let (kind, xml) = info_reply(out.bytes());
    assert_eq!(kind, InfoKind::Info);
    let station = xml
        .find("<station name=\"CLIENT\" network=\"SL\" description=\"SeedLink client slinktool/5.0 libslink/4.3\"")
        .unwrap_or_else(|| panic!("{xml}"));
    let conn = xml
        .find("<connection host=\"127.0.0.1\" port=\"40000\"")
        .unwrap();
    let close = xml.find("</station>").unwrap();
    assert!(station < conn && conn < close, "{xml}");
    for attr in [
        "ctime=",
        "current_seq=\"unset\"",
        "sequence_gaps=",
        "txcount=",
        "realtime=",
        "end_of_data=",
    ] {
        assert!(xml[conn..close].contains(attr), "{attr} in {xml}");
    }
    assert!(xml[station..conn].contains("end_seq="), "{xml}");
}

/// SeedLink 3 takes a STATION the ring has no packet of yet, as ringserver does: the
/// station's packets go to the client once they arrive.
#[test]
fn v3_station_of_a_station_the_ring_does_not_have_yet_is_ok_and_gets_its_packets() {
    let hub = hub_with_sta01();
    let clock = Clock::new();
    let mut s = hub.session::<SeedLink>();
    let mut out = Messages::default();
    let input = b"CAPABILITIES EXTREPLY\r\nSTATION LATE XX\r\nDATA\r\nEND\r\n";
    let r = s.receive(input, clock.now(), &mut out);
    assert!(r.close.is_none());
    assert_eq!(
        String::from_utf8(out.bytes().to_vec()).unwrap(),
        "OK\r\nOK\r\nOK\r\n"
    );
    assert!(s.wants_packets(), "END starts the transfer of LATE");
    out.clear();
    assert_eq!(s.fill(clock.now(), &mut out, 1 << 16), Fill::Waiting);
    // LATE's first packet arrives after the request: it is sent.
    let ch = formats::payload::Channel {
        net: "XX".into(),
        sta: "LATE".into(),
        chan: "BHZ".into(),
        loc: String::new(),
        start: Time::from_micros(1_000_000),
        samprate: 1.0,
        calib: 1.0,
        calper: 1.0,
        segtype: 'V',
        samples: (0..10).collect(),
    };
    let mut recs = Vec::new();
    formats::seedlink::record::encode(&ch, &mut recs).unwrap();
    let name = SrcName::new("XX_LATE_BHZ/SEED").unwrap();
    hub.hub
        .ring
        .append(&name, ch.start, &recs.concat())
        .unwrap();
    s.fill(clock.now(), &mut out, 1 << 16);
    assert_eq!(out.len(), 8 + 512, "one data frame");
    assert_eq!(out.count(), 1, "a data frame is a message of its own");
    assert_eq!(&out.bytes()[8 + 8..8 + 13], b"LATE ");
}

/// Appends a SEED packet of `XX_sta_BHZ` with `n` samples at 1 Hz from `start_s`
/// seconds: several 512-byte records when `n` is large. Returns the pktid and the
/// records.
fn put_seed(hub: &TestHub, sta: &str, start_s: i64, n: i32) -> (u64, Vec<[u8; 512]>) {
    let ch = formats::payload::Channel {
        net: "XX".into(),
        sta: sta.into(),
        chan: "BHZ".into(),
        loc: String::new(),
        start: Time::from_micros(start_s * 1_000_000),
        samprate: 1.0,
        calib: 1.0,
        calper: 1.0,
        segtype: 'V',
        // Noise-like samples so Steim2 cannot pack them tightly: several records.
        samples: (0..n).map(|i| (i * 7919) % 100_003 - 50_000).collect(),
    };
    let mut recs = Vec::new();
    formats::seedlink::record::encode(&ch, &mut recs).unwrap();
    let name = SrcName::new(&format!("XX_{sta}_BHZ/SEED")).unwrap();
    let pktid = hub
        .hub
        .ring
        .append(&name, ch.start, &recs.concat())
        .unwrap();
    (pktid, recs)
}

/// The v4 frames of a transfer in `out`: one frame per message, then `END`.
fn v4_messages(out: &Messages) -> Vec<(u8, u8, u64, String, Vec<u8>)> {
    let all: Vec<&[u8]> = out.iter().collect();
    let (last, frames) = all.split_last().expect("messages");
    assert_eq!(
        *last, b"END",
        "the transfer ends with END, a message of its own"
    );
    frames.iter().flat_map(|m| one_v4_frame(m)).collect()
}

/// The v4 frames in `out`, each a message of its own.
fn v4_frames_of(out: &Messages) -> Vec<(u8, u8, u64, String, Vec<u8>)> {
    out.iter().flat_map(one_v4_frame).collect()
}

/// The one whole v4 frame that is message `m`.
fn one_v4_frame(m: &[u8]) -> Vec<(u8, u8, u64, String, Vec<u8>)> {
    let f = v4_frames(m);
    assert_eq!(f.len(), 1, "one v4 frame per message");
    f
}

/// The v4 frames in `out`, all of them whole.
fn v4_frames(mut out: &[u8]) -> Vec<(u8, u8, u64, String, Vec<u8>)> {
    let mut v = Vec::new();
    while !out.is_empty() {
        let (f, n) = formats::seedlink::v4::parse_frame(out)
            .unwrap()
            .expect("whole frames");
        v.push((
            f.format,
            f.subformat,
            f.seq,
            f.station.to_string(),
            f.payload.to_vec(),
        ));
        out = &out[n..];
    }
    v
}

#[test]
fn v4_negotiation_replies_are_byte_exact_and_errors_are_v4_form() {
    let hub = hub_with_sta01();
    let clock = Clock::new();
    let mut s = hub.session::<SeedLink>();
    let mut out = Messages::default();
    s.receive(b"HELLO\r\n", clock.now(), &mut out);
    let hello = String::from_utf8(out.bytes().to_vec()).unwrap();
    assert!(hello.contains(":: SLPROTO:4.0 SLPROTO:3.1 CAP "), "{hello}");
    let steps: &[(&str, &str)] = &[
        ("SLPROTO 5.0", "ERROR\r\n"),
        ("SLPROTO 4.0", "OK\r\n"),
        ("USERAGENT test/1.0", "OK\r\n"),
        (
            "AUTH USERPASS a b",
            "ERROR UNSUPPORTED AUTH USERPASS: no authentication is configured on this server\r\n",
        ),
        (
            "STATION XX_NOPE",
            "ERROR ARGUMENTS station XX_NOPE not found\r\n",
        ),
        (
            "DATA",
            "ERROR UNEXPECTED DATA, FETCH or TIME after a refused STATION\r\n",
        ),
        ("FETCH", "ERROR UNSUPPORTED unknown command FETCH\r\n"),
        (
            "DATA 1A",
            "ERROR ARGUMENTS bad sequence number \"1A\": want a decimal number or ALL\r\n",
        ),
        ("STATION XX_STA0?", "OK\r\n"),
        (
            "SELECT *_B_H_Z:4",
            "ERROR ARGUMENTS unsupported filter \"4\": want native (miniSEED 2) or 3 (miniSEED 3)\r\n",
        ),
        ("SELECT *_B_H_Z.D", "OK\r\n"),
        ("DATA", "OK\r\n"),
    ];
    for (line, want) in steps {
        out.clear();
        s.receive(format!("{line}\r\n").as_bytes(), clock.now(), &mut out);
        assert_eq!(String::from_utf8_lossy(out.bytes()), *want, "{line}");
    }
    out.clear();
    s.receive(b"END\r\n", clock.now(), &mut out);
    assert!(out.is_empty());
    assert!(s.wants_packets(), "END starts the transfer");
}

#[test]
fn v4_data_frames_carry_each_records_sequence_number_and_resume_inside_a_packet() {
    use formats::seedlink::v4::seq_of;
    let hub = hub_with_sta01();
    let clock = Clock::new();
    let (p1, r1) = put_seed(&hub, "STA01", 100, 1500);
    let (p2, r2) = put_seed(&hub, "STA01", 1600, 1500);
    assert!(r1.len() >= 3 && r2.len() >= 3, "multi-record packets");
    let want: Vec<(u64, [u8; 512])> = r1
        .iter()
        .enumerate()
        .map(|(i, r)| (seq_of(p1, i as u32).unwrap(), *r))
        .chain(
            r2.iter()
                .enumerate()
                .map(|(i, r)| (seq_of(p2, i as u32).unwrap(), *r)),
        )
        .collect();
    let fetch = |start: &str| {
        let mut s = hub.session::<SeedLink>();
        let mut out = Messages::default();
        let cmds = format!("SLPROTO 4.0\r\nSTATION XX_STA01\r\nDATA {start}\r\nENDFETCH\r\n");
        s.receive(cmds.as_bytes(), clock.now(), &mut out);
        assert_eq!(out.bytes(), b"OK\r\nOK\r\nOK\r\n");
        out.clear();
        loop {
            match s.fill(clock.now(), &mut out, 1 << 20) {
                Fill::Close(Close::Done) => break,
                Fill::Sent => continue,
                other => panic!("{other:?}"),
            }
        }
        v4_messages(&out)
            .into_iter()
            .map(|(format, sub, seq, sta, payload)| {
                assert_eq!((format, sub, sta.as_str()), (b'2', b'D', "XX_STA01"));
                (seq, <[u8; 512]>::try_from(payload.as_slice()).unwrap())
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(fetch("ALL"), want);
    // Resume after each record: exactly the records after it, none twice.
    for k in 0..want.len() {
        let next = want[k].0 + 1;
        assert_eq!(fetch(&next.to_string()), want[k + 1..], "after record {k}");
    }
}

#[test]
fn v4_info_is_json_and_a_bad_item_is_a_json_error_frame() {
    let hub = hub_with_sta01();
    let clock = Clock::new();
    put_seed(&hub, "STA02", 100, 100);
    let mut s = hub.session::<SeedLink>();
    let mut out = Messages::default();
    s.receive(b"SLPROTO 4.0\r\n", clock.now(), &mut out);
    let info = |s: &mut super::session::SlSession, line: &str| {
        let mut out = Messages::default();
        s.receive(format!("{line}\r\n").as_bytes(), clock.now(), &mut out);
        let frames = v4_frames_of(&out);
        assert_eq!(frames.len(), 1, "{line}");
        let (format, sub, seq, sta, payload) = frames.into_iter().next().unwrap();
        assert_eq!((format, seq, sta.as_str()), (b'J', 0, ""));
        let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        (sub, v)
    };
    let (sub, v) = info(&mut s, "INFO STREAMS XX_STA02");
    assert_eq!(sub, b'I');
    assert_eq!(v["station"].as_array().unwrap().len(), 1);
    assert_eq!(v["station"][0]["id"], "XX_STA02");
    assert_eq!(v["station"][0]["stream"][0]["id"], "_B_H_Z");
    assert_eq!(v["station"][0]["stream"][0]["format"], "2");
    let (sub, v) = info(&mut s, "INFO FORMATS");
    assert_eq!(sub, b'I');
    assert_eq!(v["format"]["2"]["mimetype"], "application/vnd.fdsn.mseed");
    let (sub, v) = info(&mut s, "INFO GAPS");
    assert_eq!(sub, b'E');
    assert_eq!(v["error"]["code"], "ARGUMENTS");
    let (sub, v) = info(&mut s, "INFO CONNECTIONS");
    assert_eq!(sub, b'I');
    assert_eq!(v["connection"][0]["port"], 40000);
    // During the transfer INFO is answered in the stream, bad ones included.
    out.clear();
    s.receive(
        b"STATION XX_STA02\r\nDATA\r\nEND\r\n",
        clock.now(),
        &mut out,
    );
    assert_eq!(out.bytes(), b"OK\r\nOK\r\n");
    assert!(s.wants_packets());
    let (sub, v) = info(&mut s, "INFO ID");
    assert_eq!(sub, b'I');
    assert!(v["server_start"].is_string());
    let (sub, _) = info(&mut s, "INFO NOPE");
    assert_eq!(sub, b'E');
}

#[test]
fn v4_select_with_filter_3_sends_miniseed_3_records_of_the_same_samples() {
    use formats::seedlink::mseed3;
    let hub = hub_with_sta01();
    let clock = Clock::new();
    let (_, recs) = put_seed(&hub, "STA01", 100, 1500);
    let mut s = hub.session::<SeedLink>();
    let mut out = Messages::default();
    let cmds = b"SLPROTO 4.0\r\nSTATION XX_STA01\r\nSELECT *_B_H_Z:3\r\nDATA ALL\r\nENDFETCH\r\n";
    s.receive(cmds, clock.now(), &mut out);
    assert_eq!(out.bytes(), b"OK\r\nOK\r\nOK\r\nOK\r\n");
    out.clear();
    while s.fill(clock.now(), &mut out, 1 << 20) == Fill::Sent {}
    let frames = v4_messages(&out);
    assert_eq!(frames.len(), recs.len());
    for ((format, sub, _, sta, payload), rec) in frames.iter().zip(&recs) {
        assert_eq!((*format, *sub, sta.as_str()), (b'3', b'D', "XX_STA01"));
        assert_eq!(*payload, mseed3::from_mseed2(rec).unwrap());
    }
}

/// Over a WebSocket every reply and frame is one message (seisplotjs reads HELLO's two
/// lines from one message, each `OK` from one, and each data frame from one): the
/// session marks them so in its output.
#[test]
fn replies_info_frames_and_data_frames_are_messages_of_their_own() {
    let hub = hub_with_sta01();
    let clock = Clock::new();
    let mut s = hub.session::<SeedLink>();
    let mut out = Messages::default();
    s.receive(b"HELLO\r\nSTATION STA01 XX\r\n", clock.now(), &mut out);
    let msgs: Vec<&[u8]> = out.iter().collect();
    assert_eq!(msgs.len(), 2, "HELLO's two lines, then OK");
    assert_eq!(String::from_utf8_lossy(msgs[0]).lines().count(), 2);
    assert_eq!(msgs[1], b"OK\r\n");
    out.clear();
    // INFO STREAMS on a ring with many sources spans several INFO frames.
    for i in 0..40 {
        let name = SrcName::new(&format!("XX_S{i:03}_BHZ/SEED")).expect("srcname");
        hub.hub
            .ring
            .append(&name, Time::from_micros(1), b"x")
            .expect("append");
    }
    s.receive(b"INFO STREAMS\r\n", clock.now(), &mut out);
    assert!(out.count() > 1, "a long INFO document spans several frames");
    for (i, m) in out.iter().enumerate() {
        assert_eq!(m.len(), 8 + 512, "INFO frame {i} whole, alone");
        let last = i + 1 == out.count();
        assert_eq!(&m[..8], if last { b"SLINFO  " } else { b"SLINFO *" });
    }
    out.clear();
    s.receive(b"DATA\r\nEND\r\n", clock.now(), &mut out);
    assert_eq!(out.iter().collect::<Vec<_>>(), [b"OK\r\n"]);
    out.clear();
    let (_, recs) = put_seed(&hub, "STA01", 1_000_000, 3000);
    assert!(recs.len() > 1, "a packet of several records");
    while s.fill(clock.now(), &mut out, 1 << 20) == Fill::Sent {}
    let msgs: Vec<&[u8]> = out.iter().collect();
    assert_eq!(msgs.len(), recs.len(), "one message per record");
    for (m, rec) in msgs.iter().zip(&recs) {
        assert_eq!(&m[..2], b"SL");
        assert_eq!(&m[8..], &rec[..]);
    }
}

#[test]
fn v4_auth_userpass_and_its_errors_as_ringserver_answers_them() {
    let hub = hub_with_sta01();
    let text = format!(
        "read = []\n[[user]]\nname = \"alice\"\n{}\nread = true\n",
        crate::access::password_hash_line("sesame").unwrap()
    );
    let rules = crate::access::AccessRules::from_table(&toml::from_str(&text).unwrap()).unwrap();
    hub.hub.policy.replace(rules);
    let clock = Clock::new();
    let mut s = hub.session::<SeedLink>();
    let mut out = Messages::default();
    let steps: &[(&str, &str)] = &[
        // SeedLink 3 has no AUTH.
        ("AUTH USERPASS alice sesame", "ERROR\r\n"),
        ("SLPROTO 4.0", "OK\r\n"),
        ("STATION XX_STA01", "OK\r\n"),
        (
            "DATA",
            "ERROR UNAUTHORIZED address 127.0.0.1 may not read this orb\r\n",
        ),
        (
            "AUTH",
            "ERROR ARGUMENTS AUTH requires a sub-command (USERPASS or JWT)\r\n",
        ),
        (
            "AUTH USERPASS onlyuser",
            "ERROR ARGUMENTS AUTH USERPASS requires 2 arguments\r\n",
        ),
        (
            "AUTH JWT",
            "ERROR ARGUMENTS AUTH JWT requires 1 argument\r\n",
        ),
        (
            "AUTH NOPE x",
            "ERROR UNSUPPORTED Unrecognized AUTH sub-command; use USERPASS or JWT\r\n",
        ),
        ("AUTH USERPASS alice sesame", "OK\r\n"),
        ("STATION XX_STA01", "OK\r\n"),
        ("DATA", "OK\r\n"),
    ];
    for (line, want) in steps {
        out.clear();
        let r = s.receive(format!("{line}\r\n").as_bytes(), clock.now(), &mut out);
        assert!(r.close.is_none(), "{line}");
        assert_eq!(String::from_utf8_lossy(out.bytes()), *want, "{line}");
    }
    assert_eq!(hub.hub.clients.entries()[0].ident().identity, "user:alice");
    let mut s = hub.session::<SeedLink>();
    out.clear();
    s.receive(b"SLPROTO 4.0\r\n", clock.now(), &mut out);
    out.clear();
    let r = s.receive(b"AUTH USERPASS alice wrong\r\n", clock.now(), &mut out);
    assert!(matches!(r.close, Some(Close::Error(_))), "{r:?}");
    assert_eq!(
        String::from_utf8_lossy(out.bytes()),
        "ERROR AUTH Authentication failed, not allowed to connect\r\n"
    );
}
