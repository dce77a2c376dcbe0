//! Figure 10: SeedLink streaming of SEED and of MGENC packets to 1 and to 16 clients,
//! each as a ratio to the native reap of the same packets in the same run.
//!
//! The ring holds two families side by side: `XX_Snn_BHZ/SEED` packets (one 512-byte
//! Steim2 record each, passed through as they are) and `XX_Mnn/MGENC` packets (three
//! channels of 40 samples, which the gateway converts to one Steim2 record per channel
//! as it sends them). A SeedLink pass is k connections that each ask for one family
//! (`STATION S* XX` or `STATION M* XX`) and `FETCH` it from the oldest packet to the
//! `END` that closes the transfer; a native pass is k reapers that `SELECT` the same
//! family and reap from the oldest packet until the ring has no more. Passes alternate,
//! so load from other processes hits both alike, and each rate is packets delivered per
//! second of wall time, summed over the k clients.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use formats::payload::Channel;
use formats::proto::Whence;
use formats::{Packet, SrcName, Time};
use orbclient::OrbClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{client_opts, rate, reap_all, Bench, Tally};

/// Stations of each family.
const STATIONS: usize = 16;
/// Samples per channel in one MGENC packet (one second at 40 sps).
const MGENC_SAMPLES: usize = 40;
/// Samples in one SEED packet's record.
const SEED_SAMPLES: usize = 200;
/// Length of a SeedLink 3 data frame: `SL`, six hex digits, a 512-byte record.
const FRAME_LEN: usize = 520;
/// Alternating passes of each side per line.
const PASSES: usize = 3;

/// One family of packets in the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Seed,
    Mgenc,
}

impl Family {
    /// The SeedLink STATION pattern that picks this family.
    fn station(self) -> &'static str {
        match self {
            Family::Seed => "S*",
            Family::Mgenc => "M*",
        }
    }

    /// The native select expression that picks the same packets.
    fn select(self) -> &'static str {
        match self {
            Family::Seed => "XX_S.*/SEED",
            Family::Mgenc => "XX_M.*/MGENC",
        }
    }
}

/// A signal that compresses like a quiet seismic trace: a slow swing plus noise.
fn trace(seed: u64, n: usize) -> Vec<i32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let swing = ((i as f64 + seed as f64) * 0.07).sin() * 3000.0;
            swing as i32 + (x % 201) as i32 - 100
        })
        .collect()
}

fn channel(sta: &str, chan: &str, start: Time, samples: Vec<i32>) -> Channel {
    Channel {
        net: "XX".into(),
        sta: sta.into(),
        chan: chan.into(),
        loc: String::new(),
        start,
        samprate: 40.0,
        calib: 1.0,
        calper: 1.0,
        segtype: 'V',
        samples,
    }
}

/// The time of sample `k` at 40 sps after `t0`.
fn at(t0: Time, k: u64) -> Time {
    Time::from_micros(t0.as_micros() + (k * 25_000) as i64)
}

/// `n` packets of each family, stations taking turns, times advancing as real data.
fn packets(n: usize) -> Result<Vec<Packet>> {
    let t0 = Time::parse_iso8601("2026-12-01T00:00:00Z").expect("valid time");
    let mut out = Vec::with_capacity(2 * n);
    for i in 0..n {
        let s = i % STATIONS;
        let round = (i / STATIONS) as u64;
        let seed_sta = format!("S{s:02}");
        let start = at(t0, round * SEED_SAMPLES as u64);
        let ch = channel(&seed_sta, "BHZ", start, trace(round, SEED_SAMPLES));
        let mut recs = Vec::new();
        formats::seedlink::record::encode(&ch, &mut recs)?;
        let name = SrcName::new(&format!("XX_{seed_sta}_BHZ/SEED"))?;
        out.push(Packet::new(name, start, recs.concat()));

        let mgenc_sta = format!("M{s:02}");
        let start = at(t0, round * MGENC_SAMPLES as u64);
        let chans = ["BHZ", "BHN", "BHE"]
            .iter()
            .enumerate()
            .map(|(c, chan)| {
                channel(
                    &mgenc_sta,
                    chan,
                    start,
                    trace(round * 3 + c as u64, MGENC_SAMPLES),
                )
            })
            .collect::<Vec<_>>();
        let name = SrcName::new(&format!("XX_{mgenc_sta}/MGENC"))?;
        out.push(Packet::new(
            name,
            start,
            formats::payload::mgenc::encode(&chans)?,
        ));
    }
    Ok(out)
}

/// Streams one family over SeedLink 3 from the oldest packet (`oldest`, a pktid) to
/// the END of the FETCH; returns the records received.
async fn seedlink_fetch(addr: SocketAddr, family: Family, oldest: u64) -> Result<u64> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut s = BufReader::with_capacity(256 * 1024, stream);
    let seq = oldest & u64::from(formats::seedlink::MAX_SEQ);
    for cmd in [
        format!("STATION {} XX", family.station()),
        format!("FETCH {seq:06X}"),
    ] {
        s.get_mut()
            .write_all(format!("{cmd}\r\n").as_bytes())
            .await?;
        let mut reply = [0u8; 4];
        s.read_exact(&mut reply).await?;
        if &reply != b"OK\r\n" {
            bail!("SeedLink {cmd}: {:?}", String::from_utf8_lossy(&reply));
        }
    }
    s.get_mut().write_all(b"END\r\n").await?;
    let mut frame = vec![0u8; FRAME_LEN];
    let mut records = 0u64;
    loop {
        s.read_exact(&mut frame[..3]).await?;
        if &frame[..3] == b"END" {
            return Ok(records);
        }
        s.read_exact(&mut frame[3..]).await?;
        if &frame[..2] != b"SL" {
            bail!(
                "SeedLink: expected a data frame, got {:?}",
                String::from_utf8_lossy(&frame[..8])
            );
        }
        std::hint::black_box(&frame);
        records += 1;
    }
}

impl Bench {
    /// Figure 10 (see the module doc).
    pub(super) fn seedlink(&mut self) -> Result<()> {
        let ring = self.sizes.ring_bytes.min(256 << 20);
        let srv = self.bind_inproc_config(ring, |cfg| {
            cfg.seedlink = Some("127.0.0.1:0".parse().expect("valid address"));
        })?;
        let sl_addr = srv
            .seedlink
            .context("the server has no SeedLink listener")?;
        let n = if self.args.quick { 10_000 } else { 50_000 };
        let all = packets(n)?;
        let opts = client_opts("orbbench-seedlink");
        let addr = srv.addr.clone();
        let window = self.args.window;
        let oldest = self.client_rt.block_on(async {
            let mut c = OrbClient::connect(&addr, &opts).await?;
            let s = c.put_pipelined(&all, window).await?;
            if s.count != all.len() as u64 {
                bail!("stored {} of {} packets", s.count, all.len());
            }
            anyhow::Ok(c.seek(Whence::Oldest, 0).await?)
        })?;
        let per_client = n as u64;
        for family in [Family::Seed, Family::Mgenc] {
            for clients in [1usize, 16] {
                let (mut sl, mut native) = (Tally::default(), Tally::default());
                for pass in 0..PASSES {
                    for sl_turn in [pass % 2 == 0, pass % 2 == 1] {
                        let t = Instant::now();
                        let got: Vec<u64> = if sl_turn {
                            self.client_rt.block_on(async {
                                let mut set = tokio::task::JoinSet::new();
                                for _ in 0..clients {
                                    set.spawn(seedlink_fetch(sl_addr, family, oldest));
                                }
                                collect(set).await
                            })?
                        } else {
                            let addr = addr.clone();
                            self.client_rt.block_on(async {
                                let mut set = tokio::task::JoinSet::new();
                                for _ in 0..clients {
                                    let (addr, opts) = (addr.clone(), opts.clone());
                                    set.spawn(async move {
                                        let mut c = OrbClient::connect(&addr, &opts).await?;
                                        c.select(family.select()).await?;
                                        c.seek(Whence::Oldest, 0).await?;
                                        reap_all(c).await
                                    });
                                }
                                collect(set).await
                            })?
                        };
                        let elapsed = t.elapsed();
                        let want = match (sl_turn, family) {
                            (true, Family::Mgenc) => per_client * 3,
                            _ => per_client,
                        };
                        if let Some(bad) = got.iter().find(|&&g| g != want) {
                            bail!(
                                "{} pass of {family:?} delivered {bad} of {want}",
                                if sl_turn { "SeedLink" } else { "native" }
                            );
                        }
                        let tally = if sl_turn { &mut sl } else { &mut native };
                        tally.add(per_client * clients as u64, elapsed);
                    }
                }
                self.seedlink_line(family, clients, sl, native);
            }
        }
        self.stop_inproc(srv)
    }

    fn seedlink_line(&mut self, family: Family, clients: usize, sl: Tally, native: Tally) {
        let ratio = sl.per_sec() / native.per_sec();
        let name = match (family, clients) {
            (Family::Seed, 1) => "10a SeedLink SEED, 1 client",
            (Family::Seed, _) => "10b SeedLink SEED, 16 clients",
            (Family::Mgenc, 1) => "10c SeedLink MGENC, 1 client",
            (Family::Mgenc, _) => "10d SeedLink MGENC, 16 clients",
        };
        let extra = match family {
            Family::Seed => {
                let met = ratio >= 0.7;
                self.record(name, Some(met));
                format!("target >= 0.70 {}", if met { "met" } else { "MISSED" })
            }
            Family::Mgenc => {
                let samples = sl.n as f64 * (3 * MGENC_SAMPLES) as f64;
                let ns = sl.t.as_secs_f64() * 1e9 / samples;
                self.record(name, None);
                format!("{ns:.1} ns of wall time per sample converted and sent")
            }
        };
        println!(
            "{:<36}{:>12}   (native reap {}, ratio {ratio:.2}; {extra}; packets/s summed over clients, {PASSES} passes each, alternating)",
            name,
            rate(sl.per_sec()),
            rate(native.per_sec()),
        );
    }
}

/// Waits for every task of `set`; their results, or the first error.
async fn collect(mut set: tokio::task::JoinSet<Result<u64>>) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    let deadline = Duration::from_secs(600);
    while let Some(r) = tokio::time::timeout(deadline, set.join_next())
        .await
        .context("a client did not finish within 10 minutes")?
    {
        out.push(r.context("client task")??);
    }
    Ok(out)
}
