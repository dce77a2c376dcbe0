//! `ring-appender DIR SIZE FLUSH SEED`: opens the ring in DIR and appends self-checking
//! packets as fast as it can until killed. After each append returns it records
//! `pktid seq` and writes the records to stdout every 64 appends, so whatever the parent
//! reads was certainly acknowledged. Prints `ready NEXT_PKTID` once the ring is open.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use formats::{SrcName, Time};
use orb_tests::{make_payload, XorShift};
use orbserver::ring::{FlushPolicy, RingOptions, RingStore};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, size, flush, seed] = &args[..] else {
        anyhow::bail!("usage: ring-appender DIR SIZE FLUSH SEED");
    };
    let flush: FlushPolicy = flush.parse().map_err(anyhow::Error::msg)?;
    let opts = RingOptions {
        size: Some(size.parse()?),
        flush,
    };
    let ring = RingStore::open(&PathBuf::from(dir), &opts).context("open ring")?;
    let mut rng = XorShift::new(seed.parse()?);
    let names: Vec<SrcName> = [
        "TA_M04C/MGENC/EP40",
        "AZ_PFO_BHZ/MGENC/M40",
        "/pf/orbstat",
        "TA_O20A_/MGENC/MSTV",
    ]
    .iter()
    .map(|s| SrcName::new(s).unwrap())
    .collect();
    let out = std::io::stdout();
    let mut out = out.lock();
    writeln!(out, "ready {}", ring.recovery().next_pktid)?;
    out.flush()?;
    let mut line = String::new();
    for seq in 0u64.. {
        let len = rng.range(12, 3000) as usize;
        let src = &names[(seq % 4) as usize];
        let pktid = ring.append(src, Time::from_micros(seq as i64), &make_payload(seq, len))?;
        line.push_str(&format!("{pktid} {seq}\n"));
        if seq % 64 == 63 {
            out.write_all(line.as_bytes())?;
            out.flush()?;
            line.clear();
        }
    }
    Ok(())
}
