//! Federation: the links behind `orb2orb`, each forwarding packets from one orb (IN)
//! to another (OUT). The rules are in docs/FEDERATION.md; in short:
//!
//! - A reader task reaps IN with [`OrbClient::reap_reconnecting`] (which resumes by
//!   pktid, falls back to time, and reports overwritten pktids as gaps) and hands the
//!   events to the writer through a bounded channel, so reading never waits for OUT's
//!   acknowledgements.
//! - The writer takes what has arrived as one batch, drops the packets OUT already
//!   has by the duplicate rule ([`newest`]), and puts the rest pipelined
//!   ([`OrbClient::put_acked`]: multi-packet PUT frames, many in
//!   flight). When every PUT_OK has come back, the batch is committed: the rule's
//!   table and the [`state`] advance.
//! - A lost OUT is reconnected with exponential backoff (100 ms to 5 s) and the batch
//!   retried; the rule, refreshed from OUT's SOURCES, drops what did arrive.
//!
//! A link logs through `tracing` with the target [`LOG_TARGET`] and a `link` field
//! naming it ([`LinkConfig::name`]), so the program that runs it (orb2orb, orbreaper)
//! prints the lines under its own name; it returns [`FederationError`] when it stops.

pub mod error;
pub mod newest;
pub mod state;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use formats::proto::{ErrorCode, Whence};
use formats::{Packet, Time};
use tokio::sync::{mpsc, watch};

use crate::{
    ClientError, ClientOptions, OrbAddr, OrbClient, Position, PutAck, ReapEvent, ReapOptions,
};
pub use error::FederationError;
use newest::NewestTimes;
use state::LinkState;

/// Packets at most per batch.
const BATCH_PACKETS: usize = 16 * 1024;
/// Payload bytes at most per batch (a batch may exceed it by one packet).
const BATCH_BYTES: usize = 16 << 20;
/// PUT frames (of up to [`crate::put::FRAME_PACKETS`] packets) in flight on OUT.
const PUT_WINDOW: usize = 64;
/// Events buffered between the reader and the writer.
const CHANNEL: usize = 64 * 1024;
/// Shortest and longest wait between reconnection attempts.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the state file is written when it changed.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The `tracing` target of every line a link logs.
pub const LOG_TARGET: &str = "orb::federation";

/// When a link stops on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndSpec {
    /// After the last packet with a time at or before this one.
    Time(Time),
    /// This long after the start time (START if it is a time, else the first
    /// packet's time).
    Period(Duration),
    /// After the newest packet present in IN when the link started.
    Last,
}

impl EndSpec {
    /// `last`, a period (`10m`, `1h 30m`) or a time ([`Time::parse`]).
    pub fn parse(s: &str, now: Time) -> Result<EndSpec, String> {
        let s = s.trim();
        if s == "last" {
            return Ok(EndSpec::Last);
        }
        if let Ok(d) = formats::parse_duration(s) {
            return Ok(EndSpec::Period(d));
        }
        Time::parse(s, now)
            .map(EndSpec::Time)
            .map_err(|e| format!("end {s:?} is not `last`, a period like 10m, or a time: {e}"))
    }
}

/// One link: what to read, where to put it, and how to remember progress.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// The program running the link, sent as HELLO's `what` (`orb2orb`, `orbreaper`).
    pub program: String,
    /// The link's name in log lines (the `link` field): orb2orb uses [`Self::label`],
    /// orbreaper `rule NAME`.
    pub name: String,
    /// The input orb as the user wrote it (used in names and the state file).
    pub input_name: String,
    /// The output orb as the user wrote it.
    pub output_name: String,
    /// The input orb.
    pub input: OrbAddr,
    /// The output orb.
    pub output: OrbAddr,
    /// Select expression on IN (empty: all).
    pub select: String,
    /// Reject expression on IN (empty: none).
    pub reject: String,
    /// State file; `None`: progress is not remembered.
    pub state: Option<PathBuf>,
    /// Where to start without a state file ([`OrbClient::position`] syntax; `None`:
    /// packets that arrive from now on).
    pub start: Option<String>,
    /// When to stop (`None`: never).
    pub end: Option<EndSpec>,
    /// Log counts every `report_every`.
    pub verbose: bool,
    /// Interval of the verbose log lines.
    pub report_every: Duration,
}

impl LinkConfig {
    /// `IN->OUT`, the link's name in logs and in HELLO's `who`.
    pub fn label(&self) -> String {
        format!("{}->{}", self.input_name, self.output_name)
    }
}

/// What a link did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkSummary {
    /// Packets put into OUT and acknowledged.
    pub forwarded: u64,
    /// Packets not forwarded because OUT already had their srcname at that time or
    /// later (retransmissions, echoes, out-of-order times).
    pub suppressed: u64,
    /// Gaps in IN: stretches of pktids overwritten before the link read them.
    pub gaps: u64,
    /// pktids lost in those gaps.
    pub lost: u64,
    /// pktid at IN of the last packet handled.
    pub last_pktid: Option<u64>,
}

impl std::fmt::Display for LinkSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "forwarded {}, suppressed {}, gaps {} ({} pktids lost)",
            self.forwarded, self.suppressed, self.gaps, self.lost
        )?;
        match self.last_pktid {
            Some(p) => write!(f, ", last input pktid {p}"),
            None => write!(f, ", nothing handled"),
        }
    }
}

/// Options for one side (`"IN"` or `"OUT"`) of a link: the side's own token variable
/// (`ORB_TOKEN_IN` or `ORB_TOKEN_OUT`) and TLS variables (`ORB_TLS_CA_IN`, ...), each
/// falling back to the variable without the suffix.
fn options(cfg: &LinkConfig, read: bool, write: bool, side: &str) -> ClientOptions {
    ClientOptions {
        who: Some(cfg.label()),
        what: Some(cfg.program.clone()),
        connect_timeout: Duration::from_secs(10),
        request_timeout: Some(Duration::from_secs(60)),
        token: crate::client::token_from_env(&format!("{}_{side}", crate::client::TOKEN_ENV))
            .or_else(|| crate::client::token_from_env(crate::client::TOKEN_ENV)),
        tls: crate::TlsOptions::from_env_side(Some(side)),
        ..ClientOptions::default()
    }
    .with_access(read, write)
}

/// Runs one link until its END, or until `shutdown` turns true; writes the state
/// file at exit and returns the counts.
pub async fn run_link(
    cfg: LinkConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<LinkSummary, FederationError> {
    let mut link = Link {
        summary: LinkSummary::default(),
        state: match &cfg.state {
            Some(p) => LinkState::load(p)?,
            None => None,
        },
        dirty: false,
        cfg,
    };
    if let Some(s) = &link.state {
        link.summary.last_pktid = Some(s.pktid);
    }
    let in_opts = options(&link.cfg, true, false, "IN");
    let Some((stream, last)) = link.open_input(&in_opts, &mut shutdown).await? else {
        return link.finish();
    };
    let (tx, rx) = mpsc::channel(CHANNEL);
    let reader = tokio::spawn(read_input(stream, tx));
    let r = link.forward(rx, last, &mut shutdown).await;
    reader.abort();
    let saved = link.save();
    r?;
    saved?;
    Ok(link.summary)
}

/// Reads IN into `tx` until the stream ends or fails (the error is sent on).
async fn read_input(
    mut stream: crate::ReapStream,
    tx: mpsc::Sender<Result<ReapEvent, ClientError>>,
) {
    loop {
        let ev = match stream.next().await {
            Ok(Some(ev)) => Ok(ev),
            Ok(None) => return,
            Err(e) => Err(e),
        };
        let failed = ev.is_err();
        if tx.send(ev).await.is_err() || failed {
            return;
        }
    }
}

struct Link {
    cfg: LinkConfig,
    summary: LinkSummary,
    state: Option<LinkState>,
    /// The state changed since it was last written.
    dirty: bool,
}

/// Waits `delay`, or returns false if `shutdown` turned true first.
async fn sleep_or_stop(delay: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = shutdown.changed() => false,
    }
}

impl Link {
    fn finish(&mut self) -> Result<LinkSummary, FederationError> {
        self.save()?;
        Ok(self.summary)
    }

    fn save(&mut self) -> Result<(), FederationError> {
        if let (true, Some(path), Some(s)) = (self.dirty, &self.cfg.state, &self.state) {
            s.save(path)?;
            self.dirty = false;
        }
        Ok(())
    }

    fn gap(&mut self, first: u64, last: u64) {
        self.summary.gaps += 1;
        self.summary.lost += last.saturating_sub(first) + 1;
        tracing::warn!(
            target: LOG_TARGET,
            link = %self.cfg.name,
            "gap: input pktids {first}..={last} were overwritten before they could be forwarded"
        );
    }

    /// Opens the reconnecting reap on IN (retrying while IN is unreachable); returns
    /// it and, for END `last`, the newest pktid at IN. `None`: shut down meanwhile.
    async fn open_input(
        &mut self,
        opts: &ClientOptions,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Option<(crate::ReapStream, Option<u64>)>, FederationError> {
        let mut delay = MIN_BACKOFF;
        loop {
            match self.try_open_input(opts).await {
                Ok(v) => return Ok(Some(v)),
                Err(e) if e.is_connection_lost() => {
                    tracing::warn!(
                        target: LOG_TARGET,
                        link = %self.cfg.name,
                        "cannot open {}: {}; retrying in {delay:?}",
                        self.cfg.input_name,
                        error_chain(&e)
                    );
                    if !sleep_or_stop(delay, shutdown).await {
                        return Ok(None);
                    }
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
                Err(source) => {
                    return Err(FederationError::Input {
                        orb: self.cfg.input_name.clone(),
                        source,
                    })
                }
            }
        }
    }

    async fn try_open_input(
        &mut self,
        opts: &ClientOptions,
    ) -> Result<(crate::ReapStream, Option<u64>), ClientError> {
        let mut probe = OrbClient::connect(&self.cfg.input, opts).await?;
        if !self.cfg.select.is_empty() {
            probe.select(&self.cfg.select).await?;
        }
        if !self.cfg.reject.is_empty() {
            probe.reject(&self.cfg.reject).await?;
        }
        let start = match &self.state {
            Some(s) => {
                let next = s.pktid.saturating_add(1);
                match probe.seek(Whence::Pktid, next).await {
                    Ok(_) => Some(next.to_string()),
                    Err(e) if e.code() == Some(ErrorCode::OutOfRange) => {
                        let oldest = probe.seek(Whence::Oldest, 0).await?;
                        if oldest > next {
                            self.gap(next, oldest - 1);
                            Some("oldest".to_owned())
                        } else {
                            // IN's pktids restarted (a new ring): resume by time; the
                            // duplicate rule drops what OUT already has. A whole
                            // number of epoch seconds needs a `.` to read as a time,
                            // not a pktid.
                            let t = &s.time;
                            Some(if t.contains('.') {
                                t.clone()
                            } else {
                                format!("{t}.0")
                            })
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            None => self.cfg.start.clone(),
        };
        let last = match self.cfg.end {
            Some(EndSpec::Last) => Some(probe.seek(Whence::Newest, 0).await?),
            _ => None,
        };
        drop(probe);
        let reap = ReapOptions {
            // END `last`: the reap ends once it has sent what the ring holds.
            timeout: (self.cfg.end == Some(EndSpec::Last)).then_some(Duration::ZERO),
            credit_window: 16 * 1024,
            ..ReapOptions::default()
        };
        let stream = OrbClient::reap_reconnecting(
            &self.cfg.input,
            opts,
            &self.cfg.select,
            &self.cfg.reject,
            start.as_deref(),
            reap,
        )
        .await?;
        Ok((stream, last))
    }

    /// The writer: batches, filters, puts and commits until END, the end of the
    /// input, or shutdown.
    async fn forward(
        &mut self,
        mut rx: mpsc::Receiver<Result<ReapEvent, ClientError>>,
        last_pktid: Option<u64>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), FederationError> {
        let out_opts = options(&self.cfg, true, true, "OUT");
        let mut out: Option<OrbClient> = None;
        let mut newest = NewestTimes::default();
        let mut end_time = match self.cfg.end {
            Some(EndSpec::Time(t)) => Some(t),
            Some(EndSpec::Period(d)) => match self
                .cfg
                .start
                .as_deref()
                .filter(|_| self.state.is_none())
                .map(|s| Position::parse(s, Time::now()))
            {
                Some(Ok(Position::After(t))) => Some(add(t, d)),
                _ => None,
            },
            _ => None,
        };
        let mut batch: Vec<Packet> = Vec::new();
        let mut input_done = false;
        let mut last_save = Instant::now();
        let mut last_report = Instant::now();
        let mut reported = LinkSummary::default();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !input_done {
            // Gather: wait for one event, then take what else is ready.
            let mut first = None;
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => first = Some(ev),
                    None => input_done = true,
                },
                _ = shutdown.changed() => return Ok(()),
                _ = tick.tick() => {}
            }
            let mut bytes = 0;
            let mut next = first;
            while let Some(ev) = next.take() {
                let ev = ev.map_err(|source| FederationError::Input {
                    orb: self.cfg.input_name.clone(),
                    source,
                })?;
                match ev {
                    ReapEvent::Gap { first, last, .. } => self.gap(first, last),
                    ReapEvent::Packet(p) => {
                        if end_time.is_none() {
                            if let Some(EndSpec::Period(d)) = self.cfg.end {
                                end_time = Some(add(p.time, d));
                            }
                        }
                        let past_time = end_time.is_some_and(|t| p.time > t);
                        let past_pktid = last_pktid.is_some_and(|l| p.pktid > l);
                        if past_time || past_pktid {
                            input_done = true;
                            break;
                        }
                        let at_last = last_pktid == Some(p.pktid);
                        bytes += p.payload.len();
                        batch.push(p);
                        if at_last {
                            input_done = true;
                            break;
                        }
                    }
                }
                if batch.len() >= BATCH_PACKETS || bytes >= BATCH_BYTES {
                    break;
                }
                match rx.try_recv() {
                    Ok(ev) => next = Some(ev),
                    Err(mpsc::error::TryRecvError::Empty) => {}
                    Err(mpsc::error::TryRecvError::Disconnected) => input_done = true,
                }
            }
            if !batch.is_empty() {
                let put = self.deliver(&mut out, &out_opts, &mut newest, &batch);
                tokio::select! {
                    r = put => r?,
                    _ = shutdown.changed() => return Ok(()),
                }
                let p = batch.last().expect("non-empty batch");
                self.state = Some(LinkState::new(
                    &self.cfg.input_name,
                    &self.cfg.output_name,
                    p.pktid,
                    p.time,
                ));
                self.summary.last_pktid = Some(p.pktid);
                self.dirty = true;
                batch.clear();
            }
            if last_save.elapsed() >= SAVE_EVERY {
                self.save()?;
                last_save = Instant::now();
            }
            if self.cfg.verbose && last_report.elapsed() >= self.cfg.report_every {
                self.report(&reported);
                reported = self.summary;
                last_report = Instant::now();
            }
        }
        Ok(())
    }

    fn report(&self, before: &LinkSummary) {
        let s = &self.summary;
        let lag = match &self.state {
            Some(st) => match st.time() {
                Ok(t) => {
                    crate::cli::human_secs((Time::now().as_micros() - t.as_micros()) as f64 / 1e6)
                }
                Err(_) => "-".into(),
            },
            None => "-".into(),
        };
        tracing::info!(
            target: LOG_TARGET,
            link = %self.cfg.name,
            "+{} forwarded, +{} suppressed, +{} gaps; totals {}; lag {lag}",
            s.forwarded - before.forwarded,
            s.suppressed - before.suppressed,
            s.gaps - before.gaps,
            s
        );
    }

    /// Puts the packets of `batch` that pass the duplicate rule, reconnecting to OUT
    /// as often as needed (with backoff; the caller races it against shutdown).
    /// Returns once OUT acknowledged every packet put.
    async fn deliver(
        &mut self,
        out: &mut Option<OrbClient>,
        opts: &ClientOptions,
        newest: &mut NewestTimes,
        batch: &[Packet],
    ) -> Result<(), FederationError> {
        let mut delay = MIN_BACKOFF;
        let mut attempt = 0u32;
        loop {
            if out.is_none() {
                if attempt > 0 {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
                attempt += 1;
                match connect_out(&self.cfg.output, opts, newest).await {
                    Ok(c) => {
                        if attempt > 1 {
                            tracing::info!(
                                target: LOG_TARGET,
                                link = %self.cfg.name,
                                "reconnected to {}",
                                self.cfg.output_name
                            );
                        }
                        *out = Some(c);
                    }
                    Err(e) if e.is_connection_lost() => {
                        self.warn_out(&e, delay);
                        continue;
                    }
                    Err(source) => {
                        return Err(FederationError::Output {
                            orb: self.cfg.output_name.clone(),
                            source,
                        })
                    }
                }
            }
            let c = out.as_mut().expect("connected");
            match put_batch(c, newest, batch).await {
                Ok((forwarded, suppressed)) => {
                    self.summary.forwarded += forwarded;
                    self.summary.suppressed += suppressed;
                    return Ok(());
                }
                Err(e) if e.is_connection_lost() => {
                    *out = None;
                    self.warn_out(&e, delay);
                    attempt = attempt.max(1);
                }
                Err(source) => {
                    return Err(FederationError::Put {
                        orb: self.cfg.output_name.clone(),
                        source,
                    })
                }
            }
        }
    }

    fn warn_out(&self, e: &ClientError, delay: Duration) {
        tracing::warn!(
            target: LOG_TARGET,
            link = %self.cfg.name,
            "{} is unavailable ({}); retrying in {delay:?}",
            self.cfg.output_name,
            error_chain(e)
        );
    }
}

/// An error and its sources, `: `-joined, for one log line.
fn error_chain(e: &dyn std::error::Error) -> String {
    std::iter::successors(Some(e), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

fn add(t: Time, d: Duration) -> Time {
    let us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    t.checked_add_micros(us).unwrap_or(Time::MAX)
}

/// Connects to OUT and takes its SOURCES as the duplicate rule's table.
async fn connect_out(
    addr: &OrbAddr,
    opts: &ClientOptions,
    newest: &mut NewestTimes,
) -> Result<OrbClient, ClientError> {
    let mut c = OrbClient::connect(addr, opts).await?;
    let through = out_newest(&mut c).await?;
    let sources = c.sources().await?;
    newest.replace_from(&sources);
    newest.set_through(through.filter(|_| !sources.sources.is_empty()));
    Ok(c)
}

/// OUT's newest pktid (for an empty ring, the pktid its next packet will get).
async fn out_newest(c: &mut OrbClient) -> Result<Option<u64>, ClientError> {
    match c.seek(Whence::Newest, 0).await {
        Ok(p) => Ok(Some(p)),
        Err(e) if e.code() == Some(ErrorCode::OutOfRange) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Makes the table reflect every packet OUT holds now (so a packet that came from
/// OUT and returned by another path is recognised): if OUT's newest pktid is still
/// the one the table is complete through, nothing was put at OUT but our own
/// acknowledged packets and the table is current; otherwise SOURCES is read again.
/// Then puts what passes, and commits it. Returns (forwarded, suppressed).
async fn put_batch(
    c: &mut OrbClient,
    newest: &mut NewestTimes,
    batch: &[Packet],
) -> Result<(u64, u64), ClientError> {
    let now = out_newest(c).await?;
    if now.is_none() || now != newest.through() {
        // The newest pktid is read before SOURCES, so SOURCES reflects every packet
        // up to it. An empty ring (no sources) says nothing about the pktid its
        // next packet gets, so the table is then complete through nothing.
        let sources = c.sources().await?;
        newest.merge(&sources);
        newest.set_through(now.filter(|_| !sources.sources.is_empty()));
    }
    let (keep, suppressed) = newest.admit(batch);
    if !keep.is_empty() {
        let n = keep.len() as u64;
        // Boxed as a Send future here, where the borrows' lifetimes are concrete:
        // left inside the link's future, rustc fails to prove that future Send
        // (a known limitation with generic async fns over borrowed items).
        let put: Pin<Box<dyn Future<Output = Result<PutAck, ClientError>> + Send + '_>> =
            Box::pin(c.put_acked(keep.iter().copied(), PUT_WINDOW));
        let ack = put.await?;
        if ack.acked != n {
            return Err(ClientError::Protocol(format!(
                "{n} packets put but {} acknowledged",
                ack.acked
            )));
        }
        newest.commit(keep.iter().copied(), ack.pktids, ack.contiguous);
        return Ok((n, suppressed));
    }
    Ok((0, suppressed))
}
