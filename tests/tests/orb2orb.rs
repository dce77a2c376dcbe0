//! orb2orb end to end: real orbservers on loopback and the real orb2orb binary.
//! Every test puts numbered packets (several srcnames, increasing times per srcname)
//! and compares the destination with the source one by one: srcname, time, payload,
//! per-srcname order, and no packet twice (docs/FEDERATION.md, "Guarantees").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use formats::proto::Whence;
use formats::{Packet, SrcName, Time};
use orb_tests::harness::{bin, guard, start_with, OrbServer};
use orb_tests::make_payload;
use orbclient::{ClientOptions, OrbClient, ReapEvent, ReapOptions};

const PAYLOAD: usize = 512;
const BIG: &[&str] = &["--ring-size", "16MiB", "--flush", "none"];

/// The `seq`-th packet of a source family `fam` (`AA`, `BB`): four srcnames, time
/// increasing per srcname, payload carrying `seq`.
fn packet(fam: &str, seq: u64) -> Packet {
    packet_every(fam, seq, 1_000)
}

/// Packet times start here.
const BASE_US: i64 = 1_795_341_600_000_000;

/// As [`packet`], with `step_us` between consecutive packets' times.
fn packet_every(fam: &str, seq: u64, step_us: i64) -> Packet {
    let name = SrcName::new(&format!("{fam}_S{}/MGENC", seq % 4)).unwrap();
    let t = Time::from_micros(BASE_US + seq as i64 * step_us);
    Packet::new(name, t, make_payload(seq, PAYLOAD))
}

fn opts() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Some(Duration::from_secs(20)),
        ..ClientOptions::for_program("e2e-orb2orb")
    }
}

async fn client(srv: &OrbServer) -> OrbClient {
    guard("connect", OrbClient::connect(&srv.orb_addr(), &opts()))
        .await
        .unwrap()
}

/// Puts packets `range` of family `fam` into `srv`, in slices, pausing a little
/// between slices so links forward while packets arrive.
async fn put(srv: &OrbServer, fam: &str, range: std::ops::Range<u64>) {
    let mut c = client(srv).await;
    let seqs: Vec<u64> = range.collect();
    for chunk in seqs.chunks(250) {
        let ps: Vec<Packet> = chunk.iter().map(|&s| packet(fam, s)).collect();
        guard("put", c.put_pipelined(ps, 64)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Every packet in the ring, oldest first.
async fn contents(srv: &OrbServer) -> Vec<Packet> {
    let mut c = client(srv).await;
    c.seek(Whence::Oldest, 0).await.unwrap();
    let reap = ReapOptions {
        timeout: Some(Duration::ZERO),
        ..ReapOptions::default()
    };
    let mut s = c.reap(reap).await.unwrap();
    let mut out = Vec::new();
    while let Some(ev) = guard("reap", s.next()).await.unwrap() {
        if let ReapEvent::Packet(p) = ev {
            out.push(p);
        }
    }
    out
}

/// Packets in the ring, from SOURCES.
async fn count(srv: &OrbServer) -> u64 {
    let mut c = client(srv).await;
    let s = guard("sources", c.sources()).await.unwrap();
    s.sources.iter().map(|s| s.npkts).sum()
}

/// Waits (deadlock guard only) until `srv` holds at least `n` packets.
async fn wait_count(srv: &OrbServer, n: u64, what: &str) {
    let started = Instant::now();
    loop {
        let c = count(srv).await;
        if c >= n {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what}: {c} of {n} packets after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

type Key = (String, i64, Vec<u8>);

fn key(p: &Packet) -> Key {
    (
        p.srcname.as_str().to_owned(),
        p.time.as_micros(),
        p.payload.to_vec(),
    )
}

/// Packets per srcname, in ring order.
fn by_source(ps: &[Packet]) -> BTreeMap<String, Vec<Key>> {
    let mut m: BTreeMap<String, Vec<Key>> = BTreeMap::new();
    for p in ps {
        m.entry(p.srcname.as_str().to_owned())
            .or_default()
            .push(key(p));
    }
    m
}

/// Asserts `got` holds exactly `want`, with the same per-srcname order, each once.
fn assert_same(got: &[Packet], want: &[Packet], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: packet count");
    let (g, w) = (by_source(got), by_source(want));
    assert_eq!(
        g.keys().collect::<Vec<_>>(),
        w.keys().collect::<Vec<_>>(),
        "{what}: srcnames"
    );
    for (name, wp) in &w {
        let gp = &g[name];
        for (i, (a, b)) in gp.iter().zip(wp).enumerate() {
            assert_eq!(a, b, "{what}: {name} packet {i} differs");
        }
    }
}

/// A running orb2orb, killed when dropped; stderr goes to a file.
struct Link {
    child: Option<Child>,
    stderr: PathBuf,
}

impl Link {
    fn start(dir: &Path, name: &str, args: &[String]) -> Link {
        let stderr = dir.join(format!("{name}.stderr"));
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr)
            .unwrap();
        use std::io::Write;
        writeln!(log, "--- start").unwrap();
        let child = Command::new(bin("orb2orb"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn orb2orb");
        Link {
            child: Some(child),
            stderr,
        }
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits (deadlock guard: 60 s) for orb2orb to exit by itself; asserts success
    /// and returns what it wrote on stderr.
    fn wait_exit(&mut self) -> String {
        let mut c = self.child.take().expect("running");
        let started = Instant::now();
        let status = loop {
            if let Some(st) = c.try_wait().unwrap() {
                break st;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = c.kill();
                let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
                panic!("orb2orb did not exit by itself within 60 s\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        assert!(status.success(), "orb2orb failed: {status}\n{log}");
        log
    }

    /// True once the process has exited (it stays reaped for `wait_exit`).
    fn exited(&mut self) -> bool {
        let c = self.child.as_mut().expect("running");
        c.try_wait().unwrap().is_some()
    }

    /// SIGTERM; waits for a clean exit and returns what it wrote on stderr.
    fn terminate(&mut self) -> String {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let started = Instant::now();
        let status = loop {
            if let Some(st) = c.try_wait().unwrap() {
                break st;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = c.kill();
                panic!("orb2orb did not exit within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        assert!(status.success(), "orb2orb failed: {status}\n{log}");
        log
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn all(fam: &str, n: u64) -> Vec<Packet> {
    (0..n).map(|s| packet(fam, s)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_delivers_every_packet_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (_da, a) = start_with(BIG);
    let (_db, b) = start_with(BIG);
    let (_dc, c) = start_with(BIG);
    let mut ab = Link::start(dir.path(), "ab", &args(&[&a.orb(), &b.orb(), "oldest"]));
    let mut bc = Link::start(dir.path(), "bc", &args(&[&b.orb(), &c.orb(), "oldest"]));
    const N: u64 = 4000;
    put(&a, "AA", 0..N).await;
    wait_count(&c, N, "C").await;
    assert_same(&contents(&c).await, &all("AA", N), "C");
    assert_same(&contents(&b).await, &all("AA", N), "B");
    let log = ab.terminate();
    assert!(log.contains("forwarded 4000"), "summary missing: {log}");
    bc.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_and_restart_with_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("ab.state").display().to_string();
    let (_da, a) = start_with(BIG);
    let (_db, b) = start_with(BIG);
    let link_args = args(&["-S", &state, &a.orb(), &b.orb(), "oldest"]);
    let mut link = Link::start(dir.path(), "ab", &link_args);
    const N: u64 = 6000;
    // Killed while the first half streams in; the second half arrives while it is
    // down; the restarted link must resume from the state file.
    let killer = async {
        wait_count(&b, N / 8, "B before the kill").await;
        link.kill9();
    };
    tokio::join!(put(&a, "AA", 0..N / 2), killer);
    put(&a, "AA", N / 2..N).await;
    let mut link = Link::start(dir.path(), "ab", &link_args);
    wait_count(&b, N, "B").await;
    assert_same(&contents(&b).await, &all("AA", N), "B");
    let log = link.terminate();
    assert!(
        std::fs::metadata(&state).is_ok(),
        "state file written\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_restart_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_da, a) = start_with(BIG);
    let (db, mut b) = start_with(BIG);
    let listen = b.addr.to_string();
    let mut link = Link::start(dir.path(), "ab", &args(&[&a.orb(), &b.orb(), "oldest"]));
    const N: u64 = 6000;
    // OUT stops while the first half streams in, stays away while the next quarter
    // arrives, and comes back on the same port and ring for the rest.
    let stopper = async {
        wait_count(&b, N / 8, "B before the restart").await;
        b.terminate();
    };
    tokio::join!(put(&a, "AA", 0..N / 2), stopper);
    put(&a, "AA", N / 2..N * 3 / 4).await;
    let b = OrbServer::start_on(db.path(), &listen, BIG);
    put(&a, "AA", N * 3 / 4..N).await;
    wait_count(&b, N, "B").await;
    assert_same(&contents(&b).await, &all("AA", N), "B");
    let log = link.terminate();
    assert!(log.contains("forwarded"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_way_pair_does_not_echo() {
    let dir = tempfile::tempdir().unwrap();
    let (_da, a) = start_with(BIG);
    let (_db, b) = start_with(BIG);
    // Overlapping selects: both links take AA and BB packets.
    let mut ab = Link::start(
        dir.path(),
        "ab",
        &args(&["-m", "(AA|BB)_.*", &a.orb(), &b.orb(), "oldest"]),
    );
    let mut ba = Link::start(
        dir.path(),
        "ba",
        &args(&["-m", ".*", &b.orb(), &a.orb(), "oldest"]),
    );
    const N: u64 = 2000;
    tokio::join!(put(&a, "AA", 0..N), put(&b, "BB", 0..N));
    wait_count(&a, 2 * N, "A").await;
    wait_count(&b, 2 * N, "B").await;
    // Let any echo that were to happen arrive before looking.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ab_log = ab.terminate();
    let ba_log = ba.terminate();
    let mut want = all("AA", N);
    want.extend(all("BB", N));
    assert_same(&contents(&a).await, &want, "A");
    assert_same(&contents(&b).await, &want, "B");
    assert!(ab_log.contains("forwarded 2000,"), "{ab_log}");
    assert!(ba_log.contains("forwarded 2000,"), "{ba_log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_longer_than_the_input_ring_reports_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("ab.state").display().to_string();
    let (_da, a) = start_with(&["--ring-size", "1MiB", "--flush", "none"]);
    let (_db, b) = start_with(BIG);
    let link_args = args(&["-S", &state, &a.orb(), &b.orb(), "oldest"]);
    const FIRST: u64 = 500;
    const TOTAL: u64 = 6000;
    let mut link = Link::start(dir.path(), "ab", &link_args);
    put(&a, "AA", 0..FIRST).await;
    wait_count(&b, FIRST, "B before the outage").await;
    link.terminate();
    // The outage: far more than IN's 1 MiB ring holds.
    put(&a, "AA", FIRST..TOTAL).await;
    let left = contents(&a).await;
    assert!(
        left.first()
            .is_some_and(|p| p.time > packet("AA", FIRST).time),
        "the ring was meant to overwrite unforwarded packets"
    );
    let mut link = Link::start(dir.path(), "ab", &link_args);
    wait_count(&b, FIRST + left.len() as u64, "B after the outage").await;
    let log = link.terminate();
    let run = log.rsplit("--- start").next().unwrap_or_default();
    assert!(run.contains("gap: input pktids"), "no gap reported: {log}");
    assert!(run.contains(", gaps 1 ("), "summary counts no gap: {log}");
    let lost = TOTAL - FIRST - left.len() as u64;
    assert!(
        run.contains(&format!("({lost} pktids lost)")),
        "summary counts {lost} lost pktids: {log}"
    );
    let mut want = all("AA", FIRST);
    want.extend(left);
    assert_same(&contents(&b).await, &want, "B");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_restart_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (da, mut a) = start_with(BIG);
    let (_db, b) = start_with(BIG);
    let listen = a.addr.to_string();
    let mut link = Link::start(dir.path(), "ab", &args(&[&a.orb(), &b.orb(), "oldest"]));
    const N: u64 = 6000;
    // IN stops while the first half streams in (nothing is put while it is down) and
    // comes back on the same port and ring for the second half.
    let mut c = client(&a).await;
    let stopper = async {
        wait_count(&b, N / 8, "B before the restart").await;
        a.terminate();
    };
    let putter = async {
        // Puts until IN goes away; returns how many packets IN acknowledged.
        let mut done = 0;
        while done < N / 2 {
            let ps: Vec<Packet> = (done..done + 100).map(|s| packet("AA", s)).collect();
            match c.put_pipelined(ps, 64).await {
                Ok(_) => done += 100,
                Err(_) => break,
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        done
    };
    let (done, ()) = tokio::join!(putter, stopper);
    drop(c);
    let a = OrbServer::start_on(da.path(), &listen, BIG);
    // A slice cut short by the stop may be partly in the ring: count what is there.
    let before = contents(&a).await;
    let held = before.len() as u64;
    assert!(held >= done, "A lost acknowledged packets: {held} < {done}");
    assert_same(&before, &all("AA", held), "A after its restart");
    let done = held;
    put(&a, "AA", done..N).await;
    wait_count(&b, N, "B").await;
    assert_same(&contents(&b).await, &all("AA", N), "B");
    let log = link.terminate();
    assert!(log.contains(&format!("forwarded {N},")), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_last_stops_at_the_newest_packet_present_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (_da, a) = start_with(BIG);
    let (_db, b) = start_with(BIG);
    const N: u64 = 10_000;
    put(&a, "AA", 0..N).await;
    let mut link = Link::start(
        dir.path(),
        "ab",
        &args(&[&a.orb(), &b.orb(), "oldest", "last"]),
    );
    // Once B holds a packet the link has read IN's newest pktid; what is put from
    // now on is after END (if the link is still running, all the better).
    let started = Instant::now();
    while count(&b).await == 0 && !link.exited() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "link never forwarded"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    put(&a, "AA", N..N + 2000).await;
    let log = link.wait_exit();
    assert!(log.contains(&format!("forwarded {N},")), "{log}");
    assert_same(&contents(&b).await, &all("AA", N), "B");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_period_forwards_start_to_start_plus_period_inclusive() {
    let dir = tempfile::tempdir().unwrap();
    let (_da, a) = start_with(BIG);
    let (_db, b) = start_with(BIG);
    // One packet every 100 ms of packet time, 30 s in all.
    const STEP: i64 = 100_000;
    let every = |s: u64| packet_every("PP", s, STEP);
    let mut c = client(&a).await;
    let ps: Vec<Packet> = (0..300).map(every).collect();
    guard("put", c.put_pipelined(ps, 64)).await.unwrap();
    // START is packet 50's time (AFTER: the first packet at or after it); END is 10 s
    // later, packet 150's time, which is still forwarded ("stop at the first packet
    // with a later time").
    let start = every(50).time.to_iso8601().unwrap();
    let mut link = Link::start(
        dir.path(),
        "ab",
        &args(&[&a.orb(), &b.orb(), &start, "10s"]),
    );
    let log = link.wait_exit();
    assert!(log.contains("forwarded 101,"), "{log}");
    let want: Vec<Packet> = (50..=150).map(every).collect();
    assert_same(&contents(&b).await, &want, "B");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_file_runs_two_links_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let (_da, a) = start_with(BIG);
    let (_db, b) = start_with(BIG);
    let (_dc, c) = start_with(BIG);
    let file = dir.path().join("links.toml");
    let text = format!(
        "[[link]]\nin = \"{a}\"\nout = \"{b}\"\nselect = \"AA_S[01]/.*\"\nstart = \"oldest\"\n\n\
         [[link]]\nin = \"{a}\"\nout = \"{c}\"\nselect = \"AA_S[23]/.*\"\nstart = \"oldest\"\n\
         state = \"{state}\"\n",
        a = a.orb(),
        b = b.orb(),
        c = c.orb(),
        state = dir.path().join("ac.state").display(),
    );
    std::fs::write(&file, text).unwrap();
    let mut link = Link::start(
        dir.path(),
        "links",
        &args(&["-p", &file.display().to_string()]),
    );
    const N: u64 = 4000;
    put(&a, "AA", 0..N).await;
    wait_count(&b, N / 2, "B").await;
    wait_count(&c, N / 2, "C").await;
    let want = |r: &[u64]| -> Vec<Packet> {
        all("AA", N)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| r.contains(&(*i as u64 % 4)))
            .map(|(_, p)| p)
            .collect()
    };
    assert_same(&contents(&b).await, &want(&[0, 1]), "B");
    assert_same(&contents(&c).await, &want(&[2, 3]), "C");
    let log = link.terminate();
    let lines = log
        .lines()
        .filter(|l| l.contains("forwarded 2000,"))
        .count();
    assert_eq!(lines, 2, "one summary per link: {log}");
}
