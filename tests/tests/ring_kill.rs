//! A child process appending at full speed is killed with SIGKILL again and again; after
//! each kill the ring is reopened and checked: every packet whose append returned (and
//! was reported) is there with its pktid and payload unless the ring has since
//! overwritten it, live pktids strictly increase, and new pktids are above all old ones.
//! See RING-FORMAT.md sections 6 and 7.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use orb_tests::{check_payload, XorShift};
use orbserver::ring::{FlushPolicy, RingOptions, RingStore};

const CYCLES: u64 = 24;
const RING_SIZE: u64 = 4 << 20;

/// Kills the child when dropped, so a failing assertion leaves no process behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_acknowledged_append_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = XorShift::new(0x5eed);
    let mut max_pktid_ever = 0u64;
    let flushes = ["none", "interval:20ms", "always"];
    for cycle in 0..CYCLES {
        let flush = flushes[(cycle % 3) as usize];
        let child = Command::new(env!("CARGO_BIN_EXE_ring-appender"))
            .args([
                dir.path().to_str().unwrap(),
                &RING_SIZE.to_string(),
                flush,
                &cycle.to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn ring-appender");
        let mut child = Killed(child);
        let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
        let ready = lines.next().expect("ready line").unwrap();
        let first: u64 = ready
            .strip_prefix("ready ")
            .expect("ready line")
            .parse()
            .unwrap();
        assert!(
            first > max_pktid_ever,
            "cycle {cycle}: next pktid {first} reuses an old pktid (max {max_pktid_ever})"
        );
        // Read reports on a thread while the child runs, so its pipe never fills.
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for line in lines.map_while(Result::ok) {
                let mut it = line.split(' ').map(|x| x.parse::<u64>().unwrap());
                acked.push((it.next().unwrap(), it.next().unwrap()));
            }
            acked
        });
        std::thread::sleep(Duration::from_millis(rng.range(30, 200)));
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        let acked = reader.join().unwrap();
        assert!(
            !acked.is_empty() || flush == "always",
            "cycle {cycle}: the child appended nothing"
        );

        let started = Instant::now();
        let ring = RingStore::open(
            dir.path(),
            &RingOptions {
                size: Some(RING_SIZE),
                flush: FlushPolicy::None,
            },
        )
        .unwrap_or_else(|e| panic!("cycle {cycle}: reopen failed: {e}"));
        let r = ring.recovery().clone();
        assert!(!r.clean, "cycle {cycle}");
        assert!(
            r.corrupt.is_empty(),
            "cycle {cycle}: kill -9 must not corrupt the middle: {:?}",
            r.corrupt
        );
        assert_eq!(r.dropped, 0, "cycle {cycle}");

        let mut live = Vec::new();
        let o = ring.read_from(0, usize::MAX, |_| true, &mut live);
        assert_eq!(o.corrupt, 0);
        let by_pktid: HashMap<u64, u64> = live
            .iter()
            .map(|p| {
                (
                    p.pktid,
                    check_payload(&p.payload)
                        .unwrap_or_else(|| panic!("cycle {cycle}: pktid {} corrupt", p.pktid)),
                )
            })
            .collect();
        assert!(
            live.windows(2).all(|w| w[0].pktid < w[1].pktid),
            "cycle {cycle}: pktids must increase"
        );
        let oldest = live.first().map_or(u64::MAX, |p| p.pktid);
        let newest = live.last().map_or(0, |p| p.pktid);
        for &(pktid, seq) in &acked {
            assert!(pktid >= first, "cycle {cycle}");
            if pktid >= oldest {
                assert_eq!(
                    by_pktid.get(&pktid),
                    Some(&seq),
                    "cycle {cycle}: acknowledged pktid {pktid} lost or wrong"
                );
            }
        }
        if let Some(&(last_acked, _)) = acked.last() {
            assert!(
                newest >= last_acked,
                "cycle {cycle}: newest {newest} < last acknowledged {last_acked}"
            );
            // The ring is full after a wrap: an over-eager eviction would show here.
            if last_acked - first > 10_000 {
                assert!(
                    ring.stat().used_bytes > RING_SIZE - 2 * 3100,
                    "cycle {cycle}: ring not full after wrapping"
                );
            }
        }
        assert!(r.next_pktid > newest);
        max_pktid_ever = max_pktid_ever
            .max(newest)
            .max(acked.last().map_or(0, |a| a.0));
        eprintln!(
            "cycle {cycle:2} flush {flush:<13} acked {:>7}  live {:>5} pktids {oldest}..={newest}  torn tail {:?}  reopen {:?}",
            acked.len(),
            live.len(),
            r.torn_tail,
            started.elapsed()
        );
        ring.close_unclean();
    }
}
