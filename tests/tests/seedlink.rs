//! The SeedLink gateway through a real server: every command over raw TCP, malformed
//! input (the server and other clients carry on), resume after a reconnect, and
//! ObsPy's SeedLink client reading simulated stations (MGENC and SEED) sample for
//! sample.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use formats::payload::{seed, Channel};
use formats::seedlink::frame::{frame_seq, info_kind, info_text, InfoKind, HEADER_LEN, RECORD_LEN};
use formats::Time;
use orb_tests::harness::{bin, start_with_config, OrbServer};
use orb_tests::oracle;
use orbclient::sim::{Format, SimConfig, Simulator};

/// Deadlock guard for reads and children; never a performance limit.
const GUARD: Duration = Duration::from_secs(30);
const START: &str = "2026-11-22T10:00:00Z";
const SIM_SEED: u64 = 7;

/// A server with a SeedLink port and, if `rounds > 0`, orbsim's packets in its ring.
fn server(format: &str, rounds: u64) -> (tempfile::TempDir, OrbServer) {
    let dir = tempfile::tempdir().unwrap();
    let srv = OrbServer::start(
        dir.path(),
        &[
            "--ring-size",
            "4MiB",
            "--flush",
            "none",
            "--seedlink",
            "127.0.0.1:0",
        ],
    );
    if rounds > 0 {
        simulate(&srv, format, rounds);
    }
    (dir, srv)
}

/// Puts `rounds` rounds of 2 seismic and 1 pressure station with orbsim.
fn simulate(srv: &OrbServer, format: &str, rounds: u64) {
    let out = Command::new(bin("orbsim"))
        .args([
            srv.orb().as_str(),
            "--fast",
            "--seismic",
            "2",
            "--pressure",
            "1",
            "--count",
            &rounds.to_string(),
            "--seed",
            &SIM_SEED.to_string(),
            "--start",
            START,
            "--format",
            format,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run orbsim");
    assert!(
        out.status.success(),
        "orbsim: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn simulator(format: Format) -> Simulator {
    let mut config = SimConfig::network("XX", 2, 1, 1.0);
    config.format = format;
    Simulator::new(config, SIM_SEED, Time::parse_iso8601(START).unwrap()).unwrap()
}

/// What a SeedLink server sent, frame by frame.
#[derive(Debug)]
enum Frame {
    Data(u32, Box<[u8; RECORD_LEN]>),
    Info(Vec<u8>),
    End,
    Closed,
}

struct Client(TcpStream);

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect to the SeedLink port");
        s.set_read_timeout(Some(GUARD)).unwrap();
        Client(s)
    }

    fn send(&mut self, line: &str) {
        self.0.write_all(line.as_bytes()).unwrap();
        self.0.write_all(b"\r\n").unwrap();
    }

    /// One reply line (without CRLF).
    fn line(&mut self) -> String {
        let mut v = Vec::new();
        let mut b = [0u8];
        while !v.ends_with(b"\r\n") {
            match self.0.read(&mut b) {
                Ok(1) => v.push(b[0]),
                other => panic!("reply line cut short after {v:?}: {other:?}"),
            }
            assert!(v.len() < 1024, "reply line too long: {v:?}");
        }
        v.truncate(v.len() - 2);
        String::from_utf8(v).unwrap()
    }

    /// Sends `line` and returns the one-line reply.
    fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.line()
    }

    /// Reads up to `n` bytes, fewer only at EOF.
    fn read_up_to(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        let mut got = 0;
        while got < n {
            match self.0.read(&mut v[got..]).expect("read within the guard") {
                0 => break,
                k => got += k,
            }
        }
        v.truncate(got);
        v
    }

    fn frame(&mut self) -> Frame {
        let head = self.read_up_to(3);
        if head.is_empty() {
            return Frame::Closed;
        }
        if head == b"END" {
            return Frame::End;
        }
        let mut head = head;
        head.extend(self.read_up_to(HEADER_LEN - 3));
        let body = self.read_up_to(RECORD_LEN);
        assert_eq!(body.len(), RECORD_LEN, "frame {head:?} cut short");
        if head.starts_with(b"SLINFO") {
            return Frame::Info([head, body].concat());
        }
        let seq = frame_seq(&head).unwrap_or_else(|| panic!("not a frame header: {head:?}"));
        Frame::Data(seq, Box::new(body.try_into().unwrap()))
    }

    /// Data frames until END (which must come), as (seq, record).
    fn until_end(&mut self) -> Vec<(u32, Box<[u8; RECORD_LEN]>)> {
        let mut out = Vec::new();
        loop {
            match self.frame() {
                Frame::Data(seq, rec) => out.push((seq, rec)),
                Frame::End => return out,
                other => panic!("expected data or END, got {other:?}"),
            }
        }
    }

    /// The XML of one INFO reply, which must not be a refusal.
    fn info(&mut self, level: &str) -> String {
        let (kind, xml) = self.info_reply(level);
        assert_eq!(kind, InfoKind::Info, "INFO {level} refused: {xml}");
        xml
    }

    /// One INFO reply: its kind (the records' channel, `INF` or `ERR`) and its XML.
    /// Every frame must be of that kind, and the reply must end with a last frame.
    fn info_reply(&mut self, level: &str) -> (InfoKind, String) {
        self.send(format!("INFO {level}").trim_end());
        let mut frames = Vec::new();
        let mut kind = None;
        loop {
            let Frame::Info(f) = self.frame() else {
                panic!("expected INFO frames")
            };
            let this = info_kind(&f).expect("an INF or ERR record");
            assert_eq!(*kind.get_or_insert(this), this, "one kind per reply");
            let last = &f[..8] == b"SLINFO  ";
            frames.extend(f);
            if last {
                let xml = info_text(&frames).expect("well-formed INFO frames");
                return (this, xml);
            }
        }
    }
}

/// One SeedLink 4 frame: format, subformat, sequence number, station id, payload.
type V4Frame = (u8, u8, u64, String, Vec<u8>);

impl Client {
    /// Switches the session to SeedLink 4.
    fn v4(addr: SocketAddr) -> Client {
        let mut c = Client::connect(addr);
        assert_eq!(c.ask("SLPROTO 4.0"), "OK");
        c
    }

    /// The next v4 frame, `None` at `END`.
    fn frame_v4(&mut self) -> Option<V4Frame> {
        let mut head = self.read_up_to(3);
        if head == b"END" {
            return None;
        }
        head.extend(self.read_up_to(formats::seedlink::v4::HEADER_LEN - 3));
        assert_eq!(head.len(), formats::seedlink::v4::HEADER_LEN, "{head:?}");
        let rest =
            u32::from_le_bytes(head[4..8].try_into().unwrap()) as usize + usize::from(head[16]);
        let mut all = head;
        all.extend(self.read_up_to(rest));
        let (f, n) = formats::seedlink::v4::parse_frame(&all)
            .expect("a v4 frame")
            .expect("whole");
        assert_eq!(n, all.len());
        Some((
            f.format,
            f.subformat,
            f.seq,
            f.station.to_string(),
            f.payload.to_vec(),
        ))
    }

    /// v4 data frames until END, as (seq, station id, record).
    fn until_end_v4(&mut self) -> Vec<(u64, String, Box<[u8; RECORD_LEN]>)> {
        let mut out = Vec::new();
        while let Some((format, sub, seq, sta, payload)) = self.frame_v4() {
            assert_eq!((format, sub), (b'2', b'D'), "miniSEED 2 data");
            out.push((seq, sta, Box::new(payload.try_into().unwrap())));
        }
        out
    }

    /// A v4 INFO reply: its subformat (`I` or `E`) and its JSON.
    fn info_v4(&mut self, line: &str) -> (u8, serde_json::Value) {
        self.send(line);
        let (format, sub, seq, sta, payload) = self.frame_v4().expect("an INFO frame");
        assert_eq!((format, seq, sta.as_str()), (b'J', 0, ""));
        (sub, serde_json::from_slice(&payload).expect("JSON"))
    }
}

fn decode(rec: &[u8; RECORD_LEN]) -> Channel {
    let mut chans = seed::decode(rec).expect("a valid miniSEED record");
    assert_eq!(chans.len(), 1);
    chans.remove(0)
}

#[test]
fn hello_cat_info_and_capabilities() {
    let (_dir, srv) = server("mgenc", 2);
    let mut c = Client::connect(srv.seedlink.unwrap());
    c.send("HELLO");
    let id = c.line();
    assert!(id.starts_with("SeedLink v3.1 (orb "), "{id}");
    assert!(
        id.contains("SLPROTO:3.1") && id.contains("EXTREPLY"),
        "{id}"
    );
    assert!(!c.line().is_empty(), "organisation line");

    c.send("CAT");
    let mut cat = Vec::new();
    loop {
        let l = c.read_up_to(1);
        assert_eq!(l.len(), 1, "CAT cut short");
        cat.extend(l);
        if cat.ends_with(b"END") {
            break;
        }
    }
    let cat = String::from_utf8(cat).unwrap();
    assert!(
        cat.contains("XX STA01") && cat.contains("XX PRS01"),
        "{cat}"
    );

    let xml = c.info("ID");
    assert!(xml.contains("<seedlink software=\"SeedLink v3.1"), "{xml}");
    let xml = c.info("CAPABILITIES");
    assert!(xml.contains("<capability name=\"dialup\"/>"), "{xml}");
    let xml = c.info("STATIONS");
    assert!(xml.contains("name=\"STA02\" network=\"XX\""), "{xml}");
    let xml = c.info("STREAMS");
    assert!(
        xml.contains("location=\"\" seedname=\"BHZ\" type=\"D\""),
        "{xml}"
    );
    // Loopback is an administrator by default (access.admin).
    let xml = c.info("CONNECTIONS");
    assert!(xml.contains("<connection host=\"127.0.0.1\""), "{xml}");
    c.send("BYE");
    assert!(matches!(c.frame(), Frame::Closed));
}

#[test]
fn bad_commands_get_error_and_the_connection_goes_on() {
    let (_dir, srv) = server("mgenc", 1);
    let addr = srv.seedlink.unwrap();
    let mut c = Client::connect(addr);
    for bad in [
        "FROB",
        "HELLO extra",
        "DATA zz",
        "TIME 2026,13,1,0,0,0",
        "SELECT 00BHZZ",
        "STATION",
        "END",
        "\u{1}\u{2}",
    ] {
        assert_eq!(c.ask(bad), "ERROR", "{bad:?}");
    }
    assert_eq!(c.ask("CAPABILITIES EXTREPLY"), "OK");
    // ringserver's form, the one libslink reads: ERROR, CR, code and reason, CRLF.
    assert_eq!(c.ask("FROB"), "ERROR\rUNSUPPORTED unknown command FROB");
    let e = c.ask("TIME 2026,1,1,0,0,5 2026,1,1,0,0,0");
    assert!(e.starts_with("ERROR\rARGUMENTS "), "{e}");
    // Lower case, LF only, and a lone CR work as terminators.
    c.0.write_all(b"hello\n").unwrap();
    assert!(c.line().starts_with("SeedLink v3.1"));
    c.line();
    c.0.write_all(b"station STA01 XX\rselect BHZ\r").unwrap();
    assert_eq!(c.line(), "OK");
    assert_eq!(c.line(), "OK");

    // An overlong line closes that connection only.
    let mut long = Client::connect(addr);
    long.0.write_all(&[b'A'; 300]).unwrap();
    assert!(matches!(long.frame(), Frame::Closed));
    let mut other = Client::connect(addr);
    assert!(other.ask("HELLO").starts_with("SeedLink v3.1"));
    // And the first client is still served.
    assert_eq!(c.ask("FETCH"), "OK");
    c.send("END");
    assert!(
        c.until_end().is_empty(),
        "FETCH from the ring's end sends nothing"
    );
}

#[test]
fn info_connections_is_for_administrators_only() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start_with_config(
        dir.path(),
        "[access]\nadmin = []\n",
        &["--seedlink", "127.0.0.1:0"],
    );
    let mut c = Client::connect(srv.seedlink.unwrap());
    // Refused with ERR INFO records (what `slinktool -C` waits for), with or without
    // EXTREPLY; the connection goes on.
    for caps in [false, true] {
        if caps {
            assert_eq!(c.ask("CAPABILITIES EXTREPLY"), "OK");
        }
        let (kind, xml) = c.info_reply("CONNECTIONS");
        assert_eq!(kind, InfoKind::Error, "{xml}");
        assert!(xml.contains("<error code=\"UNAUTHORIZED\""), "{xml}");
        assert!(!xml.contains("<connection"), "{xml}");
    }
    assert!(c.info("ID").contains("<seedlink"));
}

/// What libslink 4.3 sends for `slinktool -S "XX_STA01:BHZ B#Z"` against a SeedLink 3.1
/// server that offers CAP: HELLO, CAPABILITIES EXTREPLY, then per station STATION,
/// one SELECT per selector and FETCH (dial-up), then END; it reads each reply up to
/// CRLF into a 100-byte buffer and wants `OK\r` or `ERROR\r` at its start. The bad
/// selector must be refused in that form and the station still served.
#[test]
fn libslink_negotiation_with_extreply_goes_on_after_a_refused_selector() {
    let (_dir, srv) = server("mgenc", 2);
    let mut c = Client::connect(srv.seedlink.unwrap());
    c.send("HELLO");
    assert!(c.line().contains(":: SLPROTO:4.0 SLPROTO:3.1 CAP"));
    c.line();
    assert_eq!(c.ask("CAPABILITIES EXTREPLY"), "OK");
    assert_eq!(c.ask("STATION STA01 XX"), "OK");
    assert_eq!(c.ask("SELECT BHZ"), "OK");
    c.send("SELECT B#Z");
    let reply = c.read_up_to(
        "ERROR\rARGUMENTS bad selector \"B#Z\": want [!][LL]CCC[.T] or [!][LL_]B_S_S[.T]\r\n".len(),
    );
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "ERROR\rARGUMENTS bad selector \"B#Z\": want [!][LL]CCC[.T] or [!][LL_]B_S_S[.T]\r\n"
    );
    assert!(reply.len() < 100, "fits libslink's reply buffer");
    assert_eq!(c.ask("FETCH 0"), "OK");
    c.send("END");
    let decoded: Vec<Channel> = c.until_end().iter().map(|(_, r)| decode(r)).collect();
    assert!(!decoded.is_empty());
    assert!(
        decoded.iter().all(|d| d.sta == "STA01" && d.chan == "BHZ"),
        "{decoded:?}"
    );
    // A long reason is cut to libslink's buffer, terminator kept.
    let mut c = Client::connect(srv.seedlink.unwrap());
    assert_eq!(c.ask("CAPABILITIES EXTREPLY"), "OK");
    let e = c.ask(&format!("SELECT {}", "Z".repeat(200)));
    assert!(
        e.starts_with("ERROR\rARGUMENTS ") && e.len() + 2 <= 99,
        "{e:?}"
    );
    assert_eq!(c.ask("SELECT BHZ"), "OK", "the next reply is whole");
}

/// `slinktool -i LEVEL` on a level the server does not know (or refuses) waits for the
/// INFO's last frame: it must come, as an `ERR` record, and the connection goes on.
#[test]
fn info_on_an_unknown_level_is_a_last_err_record_and_the_connection_goes_on() {
    let (_dir, srv) = server("mgenc", 1);
    let mut c = Client::connect(srv.seedlink.unwrap());
    for extreply in [false, true] {
        if extreply {
            assert_eq!(c.ask("CAPABILITIES EXTREPLY"), "OK");
        }
        for level in ["FORMATS", "NOPE", ""] {
            let (kind, xml) = c.info_reply(level);
            assert_eq!(kind, InfoKind::Error, "INFO {level}: {xml}");
            assert!(
                xml.starts_with("<?xml") && xml.contains("<seedlink "),
                "{xml}"
            );
        }
    }
    assert!(c.ask("HELLO").starts_with("SeedLink v3.1"));
    c.line();
    // During the transfer too (libslink's keepalives and INFO requests arrive then).
    c.send("DATA");
    assert_eq!(c.info_reply("FORMATS").0, InfoKind::Error);
    assert!(c.info("ID").contains("<seedlink"));
}

/// The INFO documents as slinktool reads them: every `<connection>` inside a
/// `<station>` with the attributes slinktool looks up (it does not check for missing
/// ones), stations and streams with theirs.
#[test]
fn info_documents_have_the_elements_and_attributes_slinktool_reads() {
    let (_dir, srv) = server("mgenc", 1);
    let mut reader = Client::connect(srv.seedlink.unwrap());
    assert_eq!(reader.ask("USERAGENT slinktool/5.0 libslink/4.3"), "OK");
    reader.send("DATA");
    assert!(reader.info("ID").contains("<seedlink"));
    let mut c = Client::connect(srv.seedlink.unwrap());

    let xml = c.info("ID");
    for attr in ["software=\"SeedLink v3.1", "organization=\"", "started=\""] {
        assert!(xml.contains(attr), "{attr}: {xml}");
    }
    let xml = c.info("STATIONS");
    let sta = xml
        .lines()
        .find(|l| l.contains("name=\"STA01\""))
        .unwrap_or_else(|| panic!("{xml}"));
    for attr in [
        "network=\"XX\"",
        "description=\"",
        "begin_seq=\"",
        "end_seq=\"",
        "stream_check=\"enabled\"",
    ] {
        assert!(sta.contains(attr), "{attr}: {sta}");
    }
    for level in ["STREAMS", "GAPS"] {
        let xml = c.info(level);
        let stream = xml
            .lines()
            .find(|l| l.trim_start().starts_with("<stream ") && l.contains("seedname=\"BHZ\""))
            .unwrap_or_else(|| panic!("{level}: {xml}"));
        for attr in ["location=\"", "type=\"D\"", "begin_time=\"", "end_time=\""] {
            assert!(stream.contains(attr), "{level} {attr}: {stream}");
        }
    }

    let xml = c.info("CONNECTIONS");
    let lines: Vec<&str> = xml.lines().collect();
    let mut connections = 0;
    for (i, l) in lines.iter().enumerate() {
        if !l.trim_start().starts_with("<connection ") {
            continue;
        }
        connections += 1;
        assert!(
            lines[i - 1]
                .trim_start()
                .starts_with("<station name=\"CLIENT\"")
                && lines[i + 1].trim() == "</station>",
            "a connection inside its own station: {xml}"
        );
        for attr in [
            "host=\"127.0.0.1\"",
            "port=\"",
            "ctime=\"",
            "current_seq=\"",
            "txcount=\"",
            "sequence_gaps=\"",
            "realtime=\"",
            "end_of_data=\"",
        ] {
            assert!(l.contains(attr), "{attr}: {l}");
        }
        for attr in ["network=\"", "end_seq=\""] {
            assert!(lines[i - 1].contains(attr), "{attr}: {}", lines[i - 1]);
        }
    }
    assert_eq!(connections, 2, "{xml}");
    // The reader's station says what it is, whole, and that it reads.
    let reader_station = lines
        .iter()
        .position(|l| l.contains("description=\"SeedLink client slinktool/5.0 libslink/4.3\""))
        .unwrap_or_else(|| panic!("{xml}"));
    assert!(
        !lines[reader_station + 1].contains("current_seq=\"unset\""),
        "{xml}"
    );
}

/// SeedLink 4 style selectors (`B_H_Z`, `LOC_B_S_SS`) select as ringserver selects
/// them on a SeedLink 3 connection.
#[test]
fn seedlink_4_selectors_are_taken_in_v3() {
    let (_dir, srv) = server("mgenc", 2);
    for (selectors, want) in [
        (&["B_H_Z"][..], &["BHZ"][..]),
        (&["_B_H_?", "!*_B_H_E"][..], &["BHN", "BHZ"][..]),
    ] {
        let mut c = Client::connect(srv.seedlink.unwrap());
        assert_eq!(c.ask("CAPABILITIES EXTREPLY"), "OK");
        assert_eq!(c.ask("STATION STA01 XX"), "OK");
        for s in selectors {
            assert_eq!(c.ask(&format!("SELECT {s}")), "OK", "{s}");
        }
        assert_eq!(c.ask("FETCH 0"), "OK");
        c.send("END");
        let decoded: Vec<Channel> = c.until_end().iter().map(|(_, r)| decode(r)).collect();
        let chans: BTreeSet<&str> = decoded.iter().map(|d| d.chan.as_str()).collect();
        assert_eq!(chans, want.iter().copied().collect(), "{selectors:?}");
    }
}

#[test]
fn an_idle_connection_is_closed_after_the_handshake_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start_with_config(
        dir.path(),
        "[limits]\nhandshake_timeout = \"300ms\"\n",
        &["--seedlink", "127.0.0.1:0"],
    );
    let mut c = Client::connect(srv.seedlink.unwrap());
    let t0 = Instant::now();
    assert!(matches!(c.frame(), Frame::Closed));
    assert!(t0.elapsed() < GUARD);
    let mut d = Client::connect(srv.seedlink.unwrap());
    assert!(d.ask("HELLO").starts_with("SeedLink"));
}

/// The expected samples of station `sta`, channel `chan`: time (µs) -> sample.
fn expected(sim: &Simulator, rounds: u64, sta: &str, chan: &str) -> BTreeMap<i64, i32> {
    let si = sim.stations().iter().position(|s| s.name == sta).unwrap();
    let mut want = BTreeMap::new();
    for k in 0..rounds {
        let ch = sim
            .channels(si, k)
            .into_iter()
            .find(|c| c.chan == chan)
            .unwrap();
        for (i, &v) in ch.samples.iter().enumerate() {
            want.insert(ch.sample_time(i).as_micros(), v);
        }
    }
    want
}

/// Samples of `records` of one channel by time.
fn samples(records: &[Channel], chan: &str) -> BTreeMap<i64, i32> {
    let mut got = BTreeMap::new();
    for ch in records.iter().filter(|c| c.chan == chan) {
        for (i, &v) in ch.samples.iter().enumerate() {
            assert!(
                got.insert(ch.sample_time(i).as_micros(), v).is_none(),
                "a sample came twice"
            );
        }
    }
    got
}

fn fetch_multi_station(format: &str, sim_format: Format) {
    let rounds = 3;
    let (_dir, srv) = server(format, rounds);
    let mut c = Client::connect(srv.seedlink.unwrap());
    assert_eq!(c.ask("STATION STA01 XX"), "OK");
    assert_eq!(c.ask("SELECT BH?.D"), "OK");
    assert_eq!(c.ask("SELECT !BHE"), "OK");
    assert_eq!(c.ask("FETCH"), "OK");
    assert_eq!(c.ask("STATION PRS01 XX"), "OK");
    assert_eq!(c.ask("TIME 2026,11,22,10,0,0 2026,11,22,10,0,10"), "OK");
    c.send("END");
    let recs = c.until_end();
    // FETCH without a number is "from the next packet": STA01 sends nothing; the
    // window sends all of PRS01's data.
    let decoded: Vec<Channel> = recs.iter().map(|(_, r)| decode(r)).collect();
    assert!(decoded.iter().all(|c| c.sta == "PRS01"), "{decoded:?}");
    let sim = simulator(sim_format);
    let prs = &sim.stations()[2];
    for chan in prs.channels.iter().map(|c| c.chan.as_str()) {
        assert_eq!(
            samples(&decoded, chan),
            expected(&sim, rounds, "PRS01", chan),
            "{chan}"
        );
    }

    // From the oldest packet (FETCH 0: resolves to a pktid before the ring's oldest).
    let mut c = Client::connect(srv.seedlink.unwrap());
    assert_eq!(c.ask("STATION STA01 XX"), "OK");
    assert_eq!(c.ask("SELECT BH?.D"), "OK");
    assert_eq!(c.ask("SELECT !BHE"), "OK");
    assert_eq!(c.ask("FETCH 0"), "OK");
    c.send("END");
    let decoded: Vec<Channel> = c.until_end().iter().map(|(_, r)| decode(r)).collect();
    let chans: BTreeSet<&str> = decoded.iter().map(|c| c.chan.as_str()).collect();
    assert_eq!(chans, BTreeSet::from(["BHN", "BHZ"]));
    for chan in ["BHZ", "BHN"] {
        let got = samples(&decoded, chan);
        assert_eq!(got, expected(&sim, rounds, "STA01", chan), "{chan}");
    }
}

#[test]
fn fetch_serves_mgenc_stations_as_steim2_records() {
    fetch_multi_station("mgenc", Format::Mgenc);
}

#[test]
fn fetch_serves_seed_stations_record_for_record() {
    fetch_multi_station("seed", Format::Seed);
}

#[test]
fn time_windows_end_with_end_and_keep_to_the_window() {
    let (_dir, srv) = server("mgenc", 4);
    let mut c = Client::connect(srv.seedlink.unwrap());
    assert_eq!(c.ask("STATION STA02 XX"), "OK");
    assert_eq!(c.ask("SELECT BHZ"), "OK");
    assert_eq!(c.ask("TIME 2026,11,22,10,0,1 2026,11,22,10,0,2"), "OK");
    c.send("END");
    let decoded: Vec<Channel> = c.until_end().iter().map(|(_, r)| decode(r)).collect();
    let t = |s| Time::parse_iso8601(s).unwrap();
    assert!(!decoded.is_empty());
    for ch in &decoded {
        assert_eq!((ch.sta.as_str(), ch.chan.as_str()), ("STA02", "BHZ"));
        assert!(ch.end() > t("2026-11-22T10:00:01Z"), "{:?}", ch.start);
        assert!(ch.start <= t("2026-11-22T10:00:02Z"), "{:?}", ch.start);
    }
}

/// Puts a miniSEED packet of `XX_sta_BHZ/SEED`: `n` samples at 1 Hz from `start`.
async fn put_seed(w: &mut orbclient::OrbClient, sta: &str, start: Time, n: i32) {
    let ch = Channel {
        net: "XX".into(),
        sta: sta.into(),
        chan: "BHZ".into(),
        loc: String::new(),
        start,
        samprate: 1.0,
        calib: 1.0,
        calper: 1.0,
        segtype: 'V',
        samples: (0..n).collect(),
    };
    let mut recs = Vec::new();
    formats::seedlink::record::encode(&ch, &mut recs).unwrap();
    let name = formats::SrcName::new(&format!("XX_{sta}_BHZ/SEED")).unwrap();
    w.put(&name, start, &recs.concat()).await.expect("put");
}

/// A TIME window whose begin falls 200 s into a 300 s packet gets that packet's record:
/// the window's start is searched back through the ring, not a fixed time before it.
/// The records entirely before the begin do not come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_window_gets_the_long_packet_it_begins_in() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start_with_config(dir.path(), "", &["--seedlink", "127.0.0.1:0"]);
    let mut w = orb_tests::harness::connect(&srv, "e2e-writer").await;
    let t0 = Time::parse_iso8601("2026-11-22T10:00:00Z").unwrap();
    let at = |s: i64| t0.checked_add_micros(s * 1_000_000).unwrap();
    put_seed(&mut w, "LONG1", at(-100), 50).await; // ends at -50 s: before the window
    put_seed(&mut w, "LONG1", at(0), 300).await; // 0..300 s: holds the begin
    put_seed(&mut w, "OTHER", at(100), 10).await;
    put_seed(&mut w, "LONG1", at(300), 100).await; // 300..400 s: inside the window
    let addr = srv.seedlink.unwrap();
    let got = tokio::task::spawn_blocking(move || {
        let mut c = Client::connect(addr);
        assert_eq!(c.ask("STATION LONG1 XX"), "OK");
        assert_eq!(c.ask("TIME 2026,11,22,10,3,20 2026,11,22,10,5,0"), "OK");
        c.send("END");
        c.until_end()
    })
    .await
    .unwrap();
    let starts: Vec<Time> = got.iter().map(|(_, r)| decode(r).start).collect();
    assert_eq!(starts, [at(0), at(300)], "{starts:?}");
}

/// INFO GAPS lists the gap between two packets of a stream, as slinktool reads it: a
/// `<gap begin_time end_time>` inside the `<stream>` of a station whose
/// `stream_check` is enabled; a packet that follows on within half a sample period is
/// not a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_gaps_lists_a_gap_between_packets() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start_with_config(dir.path(), "", &["--seedlink", "127.0.0.1:0"]);
    let mut w = orb_tests::harness::connect(&srv, "e2e-writer").await;
    let t0 = Time::parse_iso8601("2026-11-22T10:00:00Z").unwrap();
    let at = |s: i64| t0.checked_add_micros(s * 1_000_000).unwrap();
    put_seed(&mut w, "GAP01", at(0), 10).await;
    put_seed(&mut w, "GAP01", at(10), 10).await;
    put_seed(&mut w, "GAP01", at(30), 10).await; // 20 s .. 30 s missing
    put_seed(&mut w, "GAP01", at(40), 10).await;
    let addr = srv.seedlink.unwrap();
    let xml = tokio::task::spawn_blocking(move || Client::connect(addr).info("GAPS"))
        .await
        .unwrap();
    let gaps: Vec<&str> = xml.lines().filter(|l| l.contains("<gap ")).collect();
    assert_eq!(
        gaps,
        ["      <gap begin_time=\"2026/11/22 10:00:20.0000\" end_time=\"2026/11/22 10:00:30.0000\"/>"],
        "{xml}"
    );
    let station = xml.find("<station name=\"GAP01\"").unwrap();
    let stream = xml[station..].find("seedname=\"BHZ\"").unwrap() + station;
    let gap = xml.find("<gap ").unwrap();
    assert!(
        stream < gap && gap < stream + xml[stream..].find("</stream>").unwrap(),
        "{xml}"
    );
}

/// In SeedLink 3 a STATION of a station the ring has no packets of yet is taken (`OK`),
/// as ringserver takes it: a client that connects before the station's first packet
/// receives its packets when they arrive, and the other stations' as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn station_of_an_unknown_station_is_ok_in_v3_and_its_packets_come_when_they_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start_with_config(dir.path(), "", &["--seedlink", "127.0.0.1:0"]);
    let mut w = orb_tests::harness::connect(&srv, "e2e-writer").await;
    let t0 = Time::parse_iso8601("2026-11-22T10:00:00Z").unwrap();
    put_seed(&mut w, "EARLY", t0, 10).await;
    let addr = srv.seedlink.unwrap();
    let mut c = tokio::task::spawn_blocking(move || {
        let mut c = Client::connect(addr);
        assert_eq!(c.ask("STATION LATE XX"), "OK");
        assert_eq!(c.ask("CAPABILITIES EXTREPLY"), "OK");
        assert_eq!(c.ask("STATION LATE2 XX"), "OK");
        assert_eq!(c.ask("SELECT BHZ"), "OK");
        assert_eq!(c.ask("DATA"), "OK");
        c.send("END");
        // An INFO answered in the stream says the transfer has started.
        assert!(c.info("ID").contains("<seedlink"));
        c
    })
    .await
    .unwrap();
    put_seed(
        &mut w,
        "EARLY",
        t0.checked_add_micros(10_000_000).unwrap(),
        10,
    )
    .await;
    put_seed(&mut w, "LATE", t0, 10).await;
    put_seed(&mut w, "LATE2", t0, 10).await;
    let got = tokio::task::spawn_blocking(move || {
        let mut stations = Vec::new();
        while stations.len() < 2 {
            let Frame::Data(_, rec) = c.frame() else {
                panic!("expected data")
            };
            stations.push(decode(&rec).sta);
        }
        stations
    })
    .await
    .unwrap();
    assert_eq!(got, ["LATE", "LATE2"]);
}

#[test]
fn uni_station_data_starts_at_once_and_follows_new_packets() {
    let (_dir, srv) = server("seed", 1);
    let mut c = Client::connect(srv.seedlink.unwrap());
    assert_eq!(c.ask("SELECT LDO"), "OK");
    // In uni-station mode DATA has no reply: an INFO answered in the stream says the
    // transfer has started.
    c.send("DATA");
    let xml = c.info("ID");
    assert!(xml.contains("<seedlink"), "{xml}");
    // DATA starts at the next packet: put more and they arrive, in real time.
    simulate(&srv, "seed", 2);
    let mut seen = 0;
    while seen < 2 {
        let Frame::Data(_, rec) = c.frame() else {
            panic!("expected data")
        };
        let ch = decode(&rec);
        assert_eq!((ch.sta.as_str(), ch.chan.as_str()), ("PRS01", "LDO"));
        seen += 1;
    }
}

/// MGENC packets become several records (one per channel); a connection that breaks
/// between two of them resumes with that packet again: nothing is lost, and what comes
/// twice is at most that packet's records.
#[test]
fn a_break_inside_a_packet_resends_that_packet_and_loses_nothing() {
    let (_dir, srv) = server("mgenc", 3);
    let addr = srv.seedlink.unwrap();
    let all = {
        let mut c = Client::connect(addr);
        c.send("FETCH 0");
        c.until_end()
    };
    let seqs: Vec<u32> = all.iter().map(|(s, _)| *s).collect();
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "{seqs:?}");
    assert!(
        seqs.windows(2).any(|w| w[0] == w[1]),
        "multi-record packets"
    );
    // Break after the first record (inside packet 1) and after the fifth.
    for k in [1, 5] {
        let mut first = Client::connect(addr);
        first.send("DATA 0");
        let mut got = Vec::new();
        for _ in 0..k {
            let Frame::Data(seq, rec) = first.frame() else {
                panic!("expected data")
            };
            got.push((seq, rec));
        }
        drop(first);
        let last = got.last().unwrap().0;
        let mut second = Client::connect(addr);
        second.send(&format!("FETCH {:06X}", last + 1));
        let rest = second.until_end();
        // The second transfer is a tail of everything, starting at or before the
        // break: no record is missing, and the repeats are the broken packet's.
        let start = all.len() - rest.len();
        assert!(
            start <= k,
            "k {k}: resumed at record {start}, after the break"
        );
        assert_eq!(rest[..], all[start..], "k {k}");
        assert_eq!(got[..start], all[..start], "k {k}");
        assert!(k - start < 6, "k {k}: repeated {} records", k - start);
    }
}

#[test]
fn resuming_with_data_seq_gives_no_gap_and_no_duplicate() {
    let (_dir, srv) = server("seed", 3);
    let addr = srv.seedlink.unwrap();
    let all: Vec<u32> = {
        let mut c = Client::connect(addr);
        c.send("FETCH 0");
        c.until_end().into_iter().map(|(s, _)| s).collect()
    };
    // One SEED packet of one record per channel and round: 8 per round.
    assert_eq!(all.len(), 24);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
    let mut first = Client::connect(addr);
    first.send("DATA 0");
    let mut got = Vec::new();
    for _ in 0..10 {
        let Frame::Data(seq, _) = first.frame() else {
            panic!("expected data")
        };
        got.push(seq);
    }
    drop(first);
    let last = *got.last().unwrap();
    let mut second = Client::connect(addr);
    // As libslink and ObsPy resume: the last sequence number plus one, in hex.
    second.send(&format!("FETCH {:06X}", last + 1));
    got.extend(second.until_end().into_iter().map(|(s, _)| s));
    assert_eq!(got, all);
}

/// ObsPy's `get_waveforms` on one channel of each kind of station; every sample must
/// be orbsim's, at orbsim's time.
fn obspy_reads(format: &str, sim_format: Format) {
    let Some(py) = oracle::python(&["obspy"]) else {
        return;
    };
    let rounds = 4;
    let (dir, srv) = server(format, rounds);
    let addr = srv.seedlink.unwrap();
    let script = r#"
import json, sys
from obspy import UTCDateTime
from obspy.clients.seedlink.basic_client import Client
host, port, sta, cha = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
t0 = UTCDateTime(sys.argv[5])
client = Client(host, port=port, timeout=20)
st = client.get_waveforms("XX", sta, "", cha, t0, t0 + float(sys.argv[6]))
out = [{"id": tr.id, "start_us": tr.stats.starttime.ns // 1000,
        "rate": tr.stats.sampling_rate, "data": [int(v) for v in tr.data]} for tr in st]
print(json.dumps(out))
"#;
    let sim = simulator(sim_format);
    for (sta, chan) in [("STA01", "BHZ"), ("PRS01", "BDF")] {
        let text = oracle::run_python(
            &py,
            script,
            &[
                addr.ip().to_string(),
                addr.port().to_string(),
                sta.into(),
                chan.into(),
                START.into(),
                (rounds - 1).to_string(),
            ],
            dir.path(),
        );
        let traces: Vec<serde_json::Value> = serde_json::from_str(text.trim()).unwrap();
        assert!(!traces.is_empty(), "{sta} {chan}: no traces");
        let want = expected(&sim, rounds, sta, chan);
        let mut got = BTreeMap::new();
        for tr in &traces {
            assert_eq!(tr["id"].as_str().unwrap(), format!("XX.{sta}..{chan}"));
            let rate = tr["rate"].as_f64().unwrap();
            let start = tr["start_us"].as_i64().unwrap();
            for (i, v) in tr["data"].as_array().unwrap().iter().enumerate() {
                let t = start + (i as f64 * 1e6 / rate).round() as i64;
                got.insert(t, v.as_i64().unwrap() as i32);
            }
        }
        // get_waveforms trims to [t0, t0 + rounds - 1 s]; compare that part.
        let t0 = Time::parse_iso8601(START).unwrap().as_micros();
        let end = t0 + (rounds as i64 - 1) * 1_000_000;
        let want: BTreeMap<i64, i32> = want.range(t0..=end).map(|(k, v)| (*k, *v)).collect();
        assert_eq!(got.len(), want.len(), "{sta} {chan}: sample count");
        assert_eq!(got, want, "{sta} {chan}: samples and times");
    }
}

#[test]
fn obspy_get_waveforms_reads_an_mgenc_station() {
    obspy_reads("mgenc", Format::Mgenc);
}

#[test]
fn obspy_get_waveforms_reads_a_seed_station() {
    obspy_reads("seed", Format::Seed);
}

#[test]
fn reads_need_access_read_and_are_refused_with_error() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start_with_config(
        dir.path(),
        "[access]\nread = [\"10.0.0.0/8\"]\n",
        &["--seedlink", "127.0.0.1:0"],
    );
    let mut c = Client::connect(srv.seedlink.unwrap());
    assert!(c.ask("HELLO").starts_with("SeedLink v3.1"));
    c.line();
    assert_eq!(c.ask("STATION STA01 XX"), "OK");
    assert_eq!(c.ask("DATA"), "ERROR");
    assert_eq!(c.info_reply("STATIONS").0, InfoKind::Error);
    assert_eq!(c.ask("CAPABILITIES EXTREPLY"), "OK");
    let e = c.ask("END");
    assert!(e.starts_with("ERROR\rUNAUTHORIZED "), "{e}");
    // Identification is not data: INFO ID is answered.
    assert!(c.info("ID").contains("<seedlink"));
    let out = Command::new(bin("orbstat"))
        .args([srv.orb().as_str(), "-s"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("; reads "))
        .unwrap_or_else(|| panic!("no read refusal counter in {text}"));
    // DATA, INFO STATIONS and END.
    assert!(line.contains("; reads 3,"), "{line}");
}

#[test]
fn seedlink_clients_are_listed_by_orbstat() {
    let (_dir, srv) = server("mgenc", 1);
    let mut c = Client::connect(srv.seedlink.unwrap());
    assert_eq!(c.ask("USERAGENT slinktool/5.0 libslink/4.3"), "OK");
    assert_eq!(c.ask("STATION STA01 XX"), "OK");
    assert_eq!(c.ask("SELECT BHZ"), "OK");
    assert_eq!(c.ask("DATA"), "OK");
    c.send("END");
    // INFO answered in the stream: the transfer has started.
    assert!(c.info("ID").contains("<seedlink"));
    let out = Command::new(bin("orbstat"))
        .args([srv.orb().as_str(), "-c"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains("SeedLink client"))
        .unwrap_or_else(|| panic!("no SeedLink row in {text}"));
    assert!(row.contains("XX_STA01:BHZ"), "{row}");
    // The whole USERAGENT text, as `who`.
    assert!(row.contains("slinktool/5.0 libslink/4.3"), "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_kills_a_seedlink_client() {
    let (_dir, srv) = server("mgenc", 1);
    let addr = srv.seedlink.unwrap();
    let mut c = tokio::task::spawn_blocking(move || {
        let mut c = Client::connect(addr);
        c.send("DATA");
        assert!(c.info("ID").contains("<seedlink"));
        c
    })
    .await
    .unwrap();
    let mut admin = orb_tests::harness::connect(&srv, "e2e-admin").await;
    let info = admin.clients().await.expect("CLIENTS");
    let id = info
        .clients
        .iter()
        .find(|r| r.what == "SeedLink client")
        .expect("the SeedLink client is listed")
        .id;
    admin.kill_client(id).await.expect("KILL");
    let end = tokio::task::spawn_blocking(move || matches!(c.frame(), Frame::Closed))
        .await
        .unwrap();
    assert!(end, "the killed client's connection is closed");
    // The port still serves others.
    let again = tokio::task::spawn_blocking(move || Client::connect(addr).ask("HELLO"))
        .await
        .unwrap();
    assert!(again.starts_with("SeedLink v3.1"));
}

/// ObsPy resolves a station wildcard with INFO STATIONS before it asks for data: both
/// seismic stations must come back, with orbsim's samples.
#[test]
fn obspy_station_wildcards_use_info_stations() {
    let Some(py) = oracle::python(&["obspy"]) else {
        return;
    };
    let rounds = 3;
    let (dir, srv) = server("mgenc", rounds);
    let addr = srv.seedlink.unwrap();
    let script = r#"
import json, sys
from obspy import UTCDateTime
from obspy.clients.seedlink.basic_client import Client
client = Client(sys.argv[1], port=int(sys.argv[2]), timeout=20)
print(json.dumps(sorted(client.get_info(station="STA*", level="station"))))
t0 = UTCDateTime(sys.argv[3])
st = client.get_waveforms("XX", "STA*", "", "BHZ", t0, t0 + 2)
st.merge()
print(json.dumps({tr.id: [int(v) for v in tr.data] for tr in st}))
"#;
    let text = oracle::run_python(
        &py,
        script,
        &[
            addr.ip().to_string(),
            addr.port().to_string(),
            START.to_string(),
        ],
        dir.path(),
    );
    let mut lines = text.lines();
    let stations: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(
        stations,
        serde_json::json!([["XX", "STA01"], ["XX", "STA02"]])
    );
    let traces: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let sim = simulator(Format::Mgenc);
    let t0 = Time::parse_iso8601(START).unwrap().as_micros();
    for sta in ["STA01", "STA02"] {
        let want: Vec<i32> = expected(&sim, rounds, sta, "BHZ")
            .range(t0..=t0 + 2_000_000)
            .map(|(_, v)| *v)
            .collect();
        let got: Vec<i32> = traces[format!("XX.{sta}..BHZ")]
            .as_array()
            .unwrap_or_else(|| panic!("no trace for {sta}: {traces}"))
            .iter()
            .map(|v| v.as_i64().unwrap() as i32)
            .collect();
        assert_eq!(got, want, "{sta}");
    }
}

/// ObsPy's `easyseedlink` streams in real time (multi-station DATA, no end): started
/// before the packets exist, it must receive orbsim's samples as they are put.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obspy_easyseedlink_streams_new_packets() {
    let Some(py) = oracle::python(&["obspy"]) else {
        return;
    };
    let rounds = 2;
    let (dir, srv) = server("mgenc", 0);
    let addr = srv.seedlink.unwrap();
    // A STATION needs a station the ring has: one packet of XX STA01 that is not
    // miniSEED (skipped by the transfer, which starts after it anyway).
    let mut w = orb_tests::harness::connect(&srv, "e2e-writer").await;
    let pf = formats::SrcName::new("XX_STA01/pf").unwrap();
    w.put(&pf, formats::Time::now(), b"x").await.expect("put");
    let script = r#"
import json, os, sys
from obspy.clients.seedlink.easyseedlink import EasySeedLinkClient
want = int(sys.argv[2])
class Collect(EasySeedLinkClient):
    got = []
    def on_data(self, tr):
        self.got.append(tr)
        if sum(len(t.data) for t in self.got) >= want:
            out = [{"start_us": t.stats.starttime.ns // 1000, "rate": t.stats.sampling_rate,
                    "id": t.id, "data": [int(v) for v in t.data]} for t in self.got]
            print(json.dumps(out), flush=True)
            os._exit(0)
# This ObsPy's connect() compares against a None timeout unless one is set.
c = Collect(sys.argv[1], autoconnect=False)
c.conn.timeout = 30
c.connect()
c.select_stream("XX", "STA01", "BHZ")
c.run()
"#;
    let sim = simulator(Format::Mgenc);
    let want = expected(&sim, rounds, "STA01", "BHZ");
    let mut child = Killed(
        Command::new(&py)
            .args(["-c", script, &addr.to_string(), &want.len().to_string()])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python"),
    );
    // Wait until its transfer has started (CLIENTS shows it reading), then put.
    let mut admin = orb_tests::harness::connect(&srv, "e2e-admin").await;
    let t0 = Instant::now();
    loop {
        let info = admin.clients().await.expect("CLIENTS");
        if info
            .clients
            .iter()
            .any(|r| r.what == "SeedLink client" && r.access == "r")
        {
            break;
        }
        assert!(
            t0.elapsed() < GUARD,
            "easyseedlink never started its transfer"
        );
        assert!(child.0.try_wait().unwrap().is_none(), "python exited early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    simulate(&srv, "mgenc", rounds);
    let t0 = Instant::now();
    while child.0.try_wait().unwrap().is_none() {
        assert!(t0.elapsed() < GUARD, "easyseedlink did not get the samples");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut text = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let traces: Vec<serde_json::Value> = serde_json::from_str(text.trim()).unwrap();
    let mut got = BTreeMap::new();
    for tr in &traces {
        assert_eq!(tr["id"].as_str().unwrap(), "XX.STA01..BHZ");
        let rate = tr["rate"].as_f64().unwrap();
        let start = tr["start_us"].as_i64().unwrap();
        for (i, v) in tr["data"].as_array().unwrap().iter().enumerate() {
            let t = start + (i as f64 * 1e6 / rate).round() as i64;
            assert!(
                got.insert(t, v.as_i64().unwrap() as i32).is_none(),
                "duplicate sample"
            );
        }
    }
    assert_eq!(got, want);
}

/// Kills the child when dropped, so a failing assertion leaves no process behind.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_that_are_not_miniseed_are_skipped() {
    let (_dir, srv) = server("mgenc", 1);
    let mut c = orb_tests::harness::connect(&srv, "e2e-junk").await;
    let t = Time::parse_iso8601(START).unwrap();
    for name in ["XX_STA01/MGENC", "XX_STA01/EXP", "XX_STA01_BHZ/SEED"] {
        let src = formats::SrcName::new(name).unwrap();
        c.put(&src, t, b"not a payload").await.expect("put");
    }
    simulate(&srv, "mgenc", 1);
    let addr = srv.seedlink.unwrap();
    let decoded = tokio::task::spawn_blocking(move || {
        let mut c = Client::connect(addr);
        assert_eq!(c.ask("STATION STA01 XX"), "OK");
        assert_eq!(c.ask("FETCH 0"), "OK");
        c.send("END");
        c.until_end()
            .iter()
            .map(|(_, r)| decode(r))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    // Both rounds of orbsim's three channels, nothing from the junk.
    assert_eq!(decoded.len(), 6, "{decoded:?}");
    assert!(decoded.iter().all(|ch| ch.sta == "STA01"));
}

/// SeedLink 4 negotiation over TCP, reply for reply: HELLO offers 4.0, `SLPROTO 4.0`
/// switches, and from then on errors are `ERROR CODE description`.
#[test]
fn seedlink_4_negotiation_is_byte_exact() {
    let (_dir, srv) = server("mgenc", 1);
    let mut c = Client::connect(srv.seedlink.unwrap());
    c.send("HELLO");
    let hello = c.line();
    assert!(
        hello.starts_with("SeedLink v3.1 (orb ")
            && hello.ends_with(") :: SLPROTO:4.0 SLPROTO:3.1 CAP EXTREPLY NSWILDCARD BATCH"),
        "{hello}"
    );
    assert_eq!(c.line(), "orb ring server");
    assert_eq!(c.ask("SLPROTO 4.1"), "ERROR", "3.1 errors until the switch");
    assert_eq!(c.ask("SLPROTO 4.0"), "OK");
    assert_eq!(c.ask("USERAGENT e2e/1.0 (test)"), "OK");
    assert_eq!(
        c.ask("AUTH JWT abc"),
        "ERROR UNSUPPORTED AUTH JWT: no authentication is configured on this server"
    );
    assert_eq!(c.ask("FROB"), "ERROR UNSUPPORTED unknown command FROB");
    assert_eq!(
        c.ask("TIME 2026,1,1,0,0,0"),
        "ERROR UNSUPPORTED unknown command TIME"
    );
    assert_eq!(
        c.ask("STATION XX_NOPE"),
        "ERROR ARGUMENTS station XX_NOPE not found"
    );
    assert_eq!(
        c.ask("STATION STA01 XX"),
        "ERROR ARGUMENTS STATION takes 1 to 1 arguments, got 2"
    );
    assert_eq!(c.ask("STATION XX_STA0*"), "OK");
    assert_eq!(c.ask("SELECT *_B_H_Z.D:native"), "OK");
    assert_eq!(
        c.ask("DATA 0x10"),
        "ERROR ARGUMENTS bad sequence number \"0x10\": want a decimal number or ALL"
    );
    assert_eq!(c.ask("DATA ALL"), "OK");
    c.send("ENDFETCH");
    let got = c.until_end_v4();
    assert!(!got.is_empty());
    for (_, sta, rec) in &got {
        let ch = decode(rec);
        assert_eq!(*sta, format!("XX_{}", ch.sta));
        assert!(ch.sta.starts_with("STA0") && ch.chan == "BHZ", "{ch:?}");
    }
}

/// A v4 transfer of orbsim's MGENC stations: frames decode to orbsim's samples, and
/// resuming with the sequence number after any record, also one in the middle of a
/// multi-record packet, gets every later record exactly once.
#[test]
fn seedlink_4_data_decodes_to_the_samples_and_resumes_after_exactly_one_record() {
    let rounds = 3;
    let (_dir, srv) = server("mgenc", rounds);
    let addr = srv.seedlink.unwrap();
    let fetch = |start: &str| {
        let mut c = Client::v4(addr);
        assert_eq!(c.ask("STATION XX_*"), "OK");
        assert_eq!(c.ask(&format!("DATA {start}")), "OK");
        c.send("ENDFETCH");
        c.until_end_v4()
    };
    let all = fetch("ALL");
    let seqs: Vec<u64> = all.iter().map(|(s, _, _)| *s).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let pktids: Vec<u64> = seqs
        .iter()
        .map(|s| formats::seedlink::v4::record_of(*s).0)
        .collect();
    assert!(
        pktids.windows(2).any(|w| w[0] == w[1]),
        "multi-record packets"
    );
    let decoded: Vec<Channel> = all.iter().map(|(_, _, r)| decode(r)).collect();
    let sim = simulator(Format::Mgenc);
    for st in sim.stations() {
        for ch in &st.channels {
            assert_eq!(
                samples(
                    &decoded
                        .iter()
                        .filter(|c| c.sta == st.name)
                        .cloned()
                        .collect::<Vec<_>>(),
                    &ch.chan
                ),
                expected(&sim, rounds, &st.name, &ch.chan),
                "{} {}",
                st.name,
                ch.chan
            );
        }
    }
    // A break after each record of the first packets (inside and at the end of a
    // packet): the resumed transfer is exactly the records after it.
    for k in 0..6.min(all.len() - 1) {
        let mut first = Client::v4(addr);
        assert_eq!(first.ask("STATION XX_*"), "OK");
        assert_eq!(first.ask("DATA ALL"), "OK");
        first.send("END");
        let mut got = Vec::new();
        for _ in 0..=k {
            let (_, _, seq, sta, rec) = first.frame_v4().expect("data");
            got.push((seq, sta, Box::new(rec.try_into().unwrap())));
        }
        drop(first);
        let last = got.last().unwrap().0;
        got.extend(fetch(&(last + 1).to_string()));
        assert_eq!(got, all, "break after record {k}");
    }
}

/// INFO in v4 is one JSON frame: ID, FORMATS, STATIONS and STREAMS (with a station
/// filter) parse with serde_json; an unknown item is a JSON error frame and the
/// session goes on.
#[test]
fn seedlink_4_info_is_json() {
    let (_dir, srv) = server("mgenc", 1);
    let mut c = Client::v4(srv.seedlink.unwrap());
    let (sub, id) = c.info_v4("INFO ID");
    assert_eq!(sub, b'I');
    assert_eq!(id["organization"], "orb ring server");
    assert!(id["software"].as_str().unwrap().contains("SLPROTO:4.0"));
    let (_, formats) = c.info_v4("INFO FORMATS");
    assert_eq!(formats["format"]["2"]["subformat"]["D"], "data");
    let (_, st) = c.info_v4("INFO STATIONS");
    let ids: Vec<&str> = st["station"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["XX_PRS01", "XX_STA01", "XX_STA02"]);
    let (_, streams) = c.info_v4("INFO STREAMS XX_STA01 *_B_H_?");
    let station = &streams["station"];
    assert_eq!(station.as_array().unwrap().len(), 1);
    let ids: BTreeSet<&str> = station[0]["stream"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, BTreeSet::from(["_B_H_E", "_B_H_N", "_B_H_Z"]));
    let (sub, err) = c.info_v4("INFO GAPS");
    assert_eq!(sub, b'E');
    assert_eq!(err["error"]["code"], "ARGUMENTS");
    // The session went on after the error: BYE closes it.
    c.send("BYE");
    assert!(c.read_up_to(1).is_empty(), "closed after BYE");
}

/// EarthScope's `seedlink-client` (PyPI), a SeedLink 4 client we did not write,
/// negotiates 4.0 from our HELLO, fetches a station from the oldest data (`DATA ALL`,
/// `ENDFETCH`) and decodes its records to orbsim's samples, as miniSEED 2 and, with
/// `SELECT ...:3`, as miniSEED 3 (pymseed checks the CRC); its INFO STATIONS reads our
/// JSON.
#[test]
fn seedlink_client_speaks_seedlink_4_with_the_orb() {
    let Some(py) = oracle::python(&["seedlink_client"]) else {
        return;
    };
    let rounds = 3;
    let (dir, srv) = server("mgenc", rounds);
    let addr = srv.seedlink.unwrap();
    let script = r#"
import json, sys
from pymseed import MS3Record
from seedlink_client import SeedLink
host, port = sys.argv[1], int(sys.argv[2])
out = {"packets": []}
with SeedLink(host, port, timeout=20, dialup=True, idle_timeout=20) as sl:
    sl.add_stream("XX_STA01", "*_B_H_Z", all_data=True)
    for p in sl.collect(reconnect=False):
        rec = next(iter(MS3Record.from_buffer(p.payload, unpack_data=True)))
        out["packets"].append({"station": p.station_id, "seq": p.seqnum,
            "sid": rec.sourceid, "start_ns": rec.starttime, "rate": rec.samprate,
            "data": [int(v) for v in rec.np_datasamples]})
    out["protocol"] = str(sl.protocol)
out["mseed3"] = []
with SeedLink(host, port, timeout=20, dialup=True, idle_timeout=20) as sl:
    sl.add_stream("XX_STA02", "*_B_H_Z:3", all_data=True)
    for p in sl.collect(reconnect=False):
        rec = next(iter(MS3Record.from_buffer(p.payload, unpack_data=True)))
        out["mseed3"].append({"station": p.station_id, "version": rec.formatversion,
            "sid": rec.sourceid, "start_ns": rec.starttime, "rate": rec.samprate,
            "data": [int(v) for v in rec.np_datasamples]})
with SeedLink(host, port, timeout=20) as sl:
    out["stations"] = sl.info_dict("STATIONS")
print(json.dumps(out, default=str))
"#;
    let text = oracle::run_python(
        &py,
        script,
        &[addr.ip().to_string(), addr.port().to_string()],
        dir.path(),
    );
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["protocol"], "Protocol.V4", "negotiated SeedLink 4");
    let packets = v["packets"].as_array().unwrap();
    assert!(!packets.is_empty());
    let mut got = BTreeMap::new();
    let mut seqs = Vec::new();
    for p in packets {
        assert_eq!(p["station"], "XX_STA01");
        assert_eq!(p["sid"], "FDSN:XX_STA01__B_H_Z");
        seqs.push(p["seq"].as_u64().unwrap());
        let rate = p["rate"].as_f64().unwrap();
        let start = p["start_ns"].as_i64().unwrap() / 1000;
        for (i, s) in p["data"].as_array().unwrap().iter().enumerate() {
            got.insert(
                start + (i as f64 * 1e6 / rate).round() as i64,
                s.as_i64().unwrap() as i32,
            );
        }
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let sim = simulator(Format::Mgenc);
    assert_eq!(got, expected(&sim, rounds, "STA01", "BHZ"));
    // SELECT ...:3: miniSEED 3 records (pymseed checks their CRC), the same samples.
    let mut got = BTreeMap::new();
    let records = v["mseed3"].as_array().unwrap();
    assert!(!records.is_empty());
    for p in records {
        assert_eq!(p["version"], 3, "miniSEED 3");
        assert_eq!(p["sid"], "FDSN:XX_STA02__B_H_Z");
        let rate = p["rate"].as_f64().unwrap();
        let start = p["start_ns"].as_i64().unwrap() / 1000;
        for (i, s) in p["data"].as_array().unwrap().iter().enumerate() {
            got.insert(
                start + (i as f64 * 1e6 / rate).round() as i64,
                s.as_i64().unwrap() as i32,
            );
        }
    }
    assert_eq!(got, expected(&sim, rounds, "STA02", "BHZ"));
    let ids: Vec<&str> = v["stations"]["station"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", v["stations"]))
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["XX_PRS01", "XX_STA01", "XX_STA02"]);
}
