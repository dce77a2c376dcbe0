//! One reap rule's task: its schedule, its reads from the orb, and retries.
//!
//! A session loads the state, finishes pending batch files, opens a reap after the
//! state's pktid and hands packets to the [`Sink`], which writes them out when a batch
//! is full or old enough, or when appended packets have waited `flush`. Any failure
//! (orb unreachable, disk full) ends the session with a log line; the next session
//! starts after a backoff from what the state says, so a retry never loses or repeats
//! a packet. The rule logs where it resumes once, then a summary line at most once a
//! minute ([`SUMMARY_EVERY`]) and when it stops.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use formats::proto::{ErrorCode, Whence};
use orbclient::{ClientError, ClientOptions, OrbClient, ReapEvent, ReapOptions, ReapStream};
use rules::state::ReapState;
use rules::Schedule;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::batch::finish_pending;
use crate::sink::{RuleCtx, Sink, SUMMARY_EVERY};

const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// With `--once`, sessions tried before the rule gives up.
const ONCE_ATTEMPTS: u32 = 5;

/// How a session reads.
#[derive(Clone, Copy)]
struct Read {
    /// Stop when the orb has sent what it holds.
    drain: bool,
    /// Packets at most (0: no limit).
    max_packets: u32,
}

/// Runs a rule until shutdown (or, with `once`, until the orb's current packets are archived).
pub async fn run_rule(
    ctx: Arc<RuleCtx>,
    once: bool,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let outcome = schedule(&ctx, once, stop).await;
    // What the last minute did, before the program's last words.
    ctx.summary(true);
    outcome
}

async fn schedule(
    ctx: &Arc<RuleCtx>,
    once: bool,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let rule = &ctx.rule;
    if once {
        let read = Read {
            drain: true,
            max_packets: 0,
        };
        return retrying(ctx, read, &mut stop, Some(ONCE_ATTEMPTS)).await;
    }
    match rule.schedule {
        Schedule::Continuous => {
            let read = Read {
                drain: false,
                max_packets: 0,
            };
            retrying(ctx, read, &mut stop, None).await
        }
        Schedule::Every { delay, every } => {
            let max_packets = rule
                .reads_per_run
                .map_or(0, |r| r.saturating_mul(rule.packets_per_read));
            let read = Read {
                drain: true,
                max_packets,
            };
            let mut next = Instant::now() + delay;
            // One run per period until shutdown.
            loop {
                if !sleep_until(next, &mut stop).await {
                    return Ok(());
                }
                retrying(ctx, read, &mut stop, None).await?;
                ctx.summary(false);
                // A run longer than the period delays the next; missed runs are not
                // made up one after another (each run reads everything anyway).
                next = (next + every).max(Instant::now());
                if *stop.borrow() {
                    return Ok(());
                }
            }
        }
    }
}

/// Sessions until one ends well, with backoff between failures.
async fn retrying(
    ctx: &Arc<RuleCtx>,
    read: Read,
    stop: &mut watch::Receiver<bool>,
    attempts: Option<u32>,
) -> anyhow::Result<()> {
    let mut delay = MIN_BACKOFF;
    let mut tried = 0;
    // Bounded by `attempts` with --once; a daemon retries until shutdown.
    loop {
        tried += 1;
        match session(ctx, read, stop).await {
            Ok(()) => return Ok(()),
            Err(e) if attempts.is_some_and(|a| tried >= a) => {
                return Err(e.context(format!(
                    "rule {} gave up after {tried} attempts",
                    ctx.rule.name
                )))
            }
            Err(e) => {
                ctx.log(format_args!("{e:#}; retrying in {delay:?}"));
                if !sleep_until(Instant::now() + delay, stop).await {
                    return Ok(());
                }
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn session(
    ctx: &Arc<RuleCtx>,
    read: Read,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let rule = &ctx.rule;
    let mut state = ReapState::load(&rule.state, &rule.name)?;
    ctx.announce(&state);
    if !state.pending.is_empty() {
        ctx.log(format_args!(
            "finishing {} files written before a stop",
            state.pending.len()
        ));
        finish_pending(ctx, &mut state)?;
    }
    let stream = open(ctx, &state, read)
        .await
        .with_context(|| format!("cannot read orb {}", rule.orb))?;
    let (tx, mut rx) = mpsc::channel(4096);
    let reader = tokio::spawn(read_stream(stream, tx));
    let mut sink = Sink::new(ctx.clone());
    let mut summary = tokio::time::interval_at(Instant::now() + SUMMARY_EVERY, SUMMARY_EVERY);
    summary.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let outcome = loop {
        let due = sink.deadline().map(Instant::from_std);
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(Ok(ReapEvent::Packet(p))) => {
                    ctx.count_packet();
                    if let Err(e) = sink.add(&p, &mut state) {
                        break Err(e);
                    }
                }
                Some(Ok(ReapEvent::Gap { first, last, .. })) => ctx.log(format_args!(
                    "pktids {first}-{last} were overwritten in the orb before they were read; they are not archived"
                )),
                Some(Err(e)) => break Err(anyhow::Error::new(e).context(format!("reading orb {}", rule.orb))),
                None => break Ok(()),
            },
            () = sleep_until_due(due) => {
                if let Err(e) = sink.flush(&mut state) {
                    break Err(e);
                }
            }
            _ = summary.tick() => {
                ctx.note_position(&state);
                ctx.summary(false);
            }
            _ = stop.changed() => break Ok(()),
        }
    };
    reader.abort();
    let outcome = outcome.and_then(|()| sink.flush(&mut state));
    ctx.note_position(&state);
    outcome
}

/// Sleeps until `due`, or forever when nothing is due.
async fn sleep_until_due(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reads the stream into `tx` until it ends or fails (the error is sent on).
async fn read_stream(mut stream: ReapStream, tx: mpsc::Sender<Result<ReapEvent, ClientError>>) {
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

/// A reap positioned after the state's pktid (or at the rule's start).
async fn open(ctx: &RuleCtx, state: &ReapState, read: Read) -> Result<ReapStream, ClientError> {
    let rule = &ctx.rule;
    let opts = ClientOptions {
        who: Some(format!("orbreaper:{}", rule.name)),
        ..ClientOptions::for_program("orbreaper")
    }
    .with_access(true, false);
    let select = rule.select.as_deref().unwrap_or("");
    let reject = rule.reject.as_deref().unwrap_or("");
    let start = match state.pktid {
        None => rule.start.position_spec(),
        Some(done) => {
            let mut probe = OrbClient::connect(&rule.addr, &opts).await?;
            let next = done.saturating_add(1);
            match probe.seek(Whence::Pktid, next).await {
                Ok(_) => next.to_string(),
                Err(e) if e.code() == Some(ErrorCode::OutOfRange) => {
                    let oldest = probe.seek(Whence::Oldest, 0).await?;
                    if oldest > next {
                        ctx.log(format_args!(
                            "pktids {next}-{} were overwritten in the orb while the rule was stopped; they are not archived",
                            oldest - 1
                        ));
                        "oldest".to_owned()
                    } else {
                        // The orb's pktids restarted (a new ring): go on by time.
                        ctx.log(format_args!(
                            "pktid {next} is beyond the orb's newest: the ring was replaced; reading on after the state's time"
                        ));
                        match state.time {
                            Some(t) => rules::Start::Time(t).position_spec(),
                            None => rule.start.position_spec(),
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
    };
    let reap = ReapOptions {
        max_packets: read.max_packets,
        timeout: read.drain.then_some(Duration::ZERO),
        ..ReapOptions::default()
    };
    OrbClient::reap_reconnecting(&rule.addr, &opts, select, reject, Some(&start), reap).await
}

/// Sleeps until `at`; `false` if shutdown came first.
async fn sleep_until(at: Instant, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep_until(at) => true,
        _ = stop.changed() => false,
    }
}
