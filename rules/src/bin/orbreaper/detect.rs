//! Detect rules: STA/LTA or windowed-statistic detectors (and network coincidence) over an orb's waveform
//! packets, their triggers put back into the same orb as `NET_STA_CHAN[_LOC]/DET` and
//! `NET/EVENT` packets (docs/DETECTION.md).
//!
//! Exactly once: packets are read in pktid order after the state's `pktid`, and each
//! packet's detection packets are put (and acknowledged) before the state recording
//! that packet is saved. A kill between the put and the save makes the restart run
//! the same packets through the same detector states again, which gives the same
//! detections; before reading, a session collects the keys (rule, channel, on/off,
//! onset time) of this rule's detection packets put after the state's `out_mark`,
//! and does not put those again.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Context;
use formats::payload::{self, SuffixWarnings};
use formats::proto::{ErrorCode, Whence};
use formats::{Packet, SrcName, Time};
use orbclient::{ClientError, ClientOptions, OrbClient, ReapEvent, ReapOptions};
use rules::detect::{
    Coincidence, CoincidenceChannel, CoincidenceConfig, NetworkEvent, StationTrigger, TriggerEvent,
};
use rules::detect_rule::{
    epoch, ChannelState, DetKind, DetPayload, DetectState, DetectionKey, EventMember, EventPayload,
};
use rules::DetectRule;
use tokio::sync::watch;
use tokio::time::Instant;

/// The program this module is built into (`orbreaper` or `orbdetect`), for logs.
const PROG: &str = env!("CARGO_BIN_NAME");
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// With `--once`, sessions tried before the rule gives up.
const ONCE_ATTEMPTS: u32 = 5;
/// The state is saved at least this often while packets without detections go by
/// (a packet that makes detections is saved at once, to keep the replay short).
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// Detection packets of every rule: read back to find what was already put, and never
/// read as waveforms.
const DETECTIONS: &str = ".*/(?:DET[A-Za-z0-9_]*|EVENT)";

/// Runs one detect rule until shutdown (or, with `once`, until the orb's current
/// packets are through the detectors).
pub async fn run_detect(
    rule: DetectRule,
    once: bool,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut delay = MIN_BACKOFF;
    let mut tried = 0;
    // Bounded by ONCE_ATTEMPTS with --once; a daemon retries until shutdown.
    loop {
        tried += 1;
        match session(&rule, once, &mut stop).await {
            Ok(()) => return Ok(()),
            Err(e) if once && tried >= ONCE_ATTEMPTS => {
                return Err(e.context(format!(
                    "detect rule {} gave up after {tried} attempts",
                    rule.name
                )))
            }
            Err(e) => {
                eprintln!("{PROG}: {}: {e:#}; retrying in {delay:?}", rule.name);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => return Ok(()),
                }
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        }
    }
}

fn options(rule: &DetectRule, read: bool) -> ClientOptions {
    ClientOptions {
        who: Some(format!("{PROG}:{}", rule.name)),
        ..ClientOptions::for_program(PROG)
    }
    .with_access(read, !read)
}

async fn session(
    rule: &DetectRule,
    once: bool,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut state = DetectState::load(&rule.state, &rule.name)?;
    let seen = already_put(rule, &state)
        .await
        .with_context(|| format!("cannot read orb {}", rule.orb))?;
    let start = start_position(rule, &mut state)
        .await
        .with_context(|| format!("cannot read orb {}", rule.orb))?;
    eprintln!(
        "{PROG}: {}: detecting from {start} ({} channels in the state, {} detections put before a stop found again)",
        rule.name,
        state.channels.len(),
        seen.len()
    );
    let mut out = OrbClient::connect(&rule.addr, &options(rule, false))
        .await
        .with_context(|| format!("cannot reach orb {}", rule.orb))?;
    let reject = match &rule.reject {
        Some(r) => format!("(?:{r})|{DETECTIONS}"),
        None => DETECTIONS.to_owned(),
    };
    let reap = ReapOptions {
        timeout: once.then_some(Duration::ZERO),
        ..ReapOptions::default()
    };
    let mut stream = OrbClient::reap_reconnecting(
        &rule.addr,
        &options(rule, true),
        rule.select.as_deref().unwrap_or(""),
        &reject,
        Some(&start),
        reap,
    )
    .await
    .with_context(|| format!("cannot read orb {}", rule.orb))?;
    let mut run = Run {
        rule,
        seen,
        bad: HashSet::new(),
        undecoded: SuffixWarnings::new(),
        started: Instant::now(),
        heard: HashMap::new(),
        silent: HashSet::new(),
        types: live_types(),
    };
    // With coincidence, silent channels are looked for between packets too: the
    // others may all be waiting on the one that stopped.
    let mut ticker = tokio::time::interval(match &rule.coincidence {
        Some(c) => Duration::from_secs_f64((c.timeout / 4.0).clamp(0.05, 5.0)),
        None => Duration::from_secs(3600),
    });
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut saved = Instant::now();
    let mut dirty = false;
    // Test hook: abort (as kill -9 would) after this many acknowledged puts, before
    // the state that records them is saved: the restart must not put them again.
    let mut abort_after: Option<u64> = std::env::var("ORBREAPER_DETECT_ABORT_AFTER_PUTS")
        .ok()
        .and_then(|v| v.parse().ok());
    let outcome = loop {
        let due = dirty.then_some(saved + SAVE_EVERY);
        let ev = tokio::select! {
            ev = stream.next() => ev,
            () = sleep_until_due(due) => {
                state.save(&rule.state)?;
                saved = Instant::now();
                dirty = false;
                continue;
            }
            _ = ticker.tick(), if rule.coincidence.is_some() => {
                let made = run.release_silent(&mut state);
                if !made.is_empty() {
                    put_made(&mut out, rule, &made, &mut state).await?;
                    state.save(&rule.state)?;
                    saved = Instant::now();
                    dirty = false;
                }
                continue;
            }
            _ = stop.changed() => break Ok(()),
        };
        match ev {
            Ok(Some(ReapEvent::Packet(p))) => {
                let made = run.packet(&p, &mut state);
                if !made.is_empty() {
                    put_made(&mut out, rule, &made, &mut state).await?;
                    if let Some(n) = &mut abort_after {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            std::process::abort();
                        }
                    }
                }
                state.pktid = Some(p.pktid);
                state.time = Some(p.time);
                dirty = true;
                if !made.is_empty() || saved.elapsed() >= SAVE_EVERY {
                    state.save(&rule.state)?;
                    saved = Instant::now();
                    dirty = false;
                }
            }
            Ok(Some(ReapEvent::Gap { first, last, .. })) => eprintln!(
                "{PROG}: {}: pktids {first}-{last} were overwritten in the orb before they were read; detectors run on across the gap",
                rule.name
            ),
            Ok(None) => break Ok(()),
            Err(e) => break Err(anyhow::Error::new(e).context(format!("reading orb {}", rule.orb))),
        }
    };
    if dirty {
        state.save(&rule.state)?;
    }
    outcome
}

fn live_types() -> (String, String) {
    (
        rules::detect_rule::DET_SUFFIX.to_owned(),
        rules::detect_rule::EVENT_SUFFIX.to_owned(),
    )
}

/// `--replay`: detection over a time range already in the orb, for tuning.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ReplayArgs {
    /// Run the detect rules over the packets already in the orb from --from to --to,
    /// with fresh detectors, then exit. The rules' state files are neither read nor
    /// written, and nothing is put unless --put says so: for tuning thresholds on
    /// archived data while the live rules run (docs/DETECTION.md).
    #[arg(long, requires = "from", conflicts_with_all = ["check", "once"])]
    pub replay: bool,
    /// With --replay: the first packet time read (ISO 8601, epoch seconds, or relative
    /// like -2h). Start a warm-up (lta or baseline) before the events to tune on.
    #[arg(
        long,
        value_name = "T",
        allow_hyphen_values = true,
        requires = "replay"
    )]
    pub from: Option<String>,
    /// With --replay: packets from this time on are not read [default: up to the
    /// orb's newest packet].
    #[arg(
        long,
        value_name = "T",
        allow_hyphen_values = true,
        requires = "replay"
    )]
    pub to: Option<String>,
    /// With --replay: put the detections into the rule's orb as NET_STA_CHAN/TYPE and
    /// NET/TYPE (TYPE starts with DET, e.g. DETTUNE: no detector reads it) instead of
    /// printing them [default: one JSON object a line on stdout: srcname, time,
    /// payload].
    #[arg(long, value_name = "TYPE", requires = "replay")]
    pub put: Option<String>,
    /// With --replay: only the detect rule of this name [default: every one].
    #[arg(long, value_name = "NAME", requires = "replay")]
    pub rule: Option<String>,
}

/// Runs the replay of `args` for the detect rules of a file.
pub async fn replay(rules: &[DetectRule], args: &ReplayArgs) -> anyhow::Result<()> {
    let now = Time::now();
    let parse = |what: &str, s: &Option<String>| -> anyhow::Result<Option<Time>> {
        s.as_deref()
            .map(|t| Time::parse(t, now).with_context(|| format!("--{what} {t}")))
            .transpose()
    };
    let from = parse("from", &args.from)?.context("--replay needs --from")?;
    let to = parse("to", &args.to)?;
    if let Some(put) = &args.put {
        if !rules::detect_rule::replay_type_ok(put) {
            anyhow::bail!("--put {put:?}: give a srcname type that starts with DET and is not DET itself, like DETTUNE (letters, digits, _; at most 16)");
        }
    }
    let chosen: Vec<&DetectRule> = rules
        .iter()
        .filter(|r| args.rule.as_ref().is_none_or(|n| *n == r.name))
        .collect();
    if chosen.is_empty() {
        anyhow::bail!(
            "no detect rule named {:?}",
            args.rule.as_deref().unwrap_or("")
        );
    }
    for rule in chosen {
        let n = replay_rule(rule, from, to, args.put.as_deref())
            .await
            .with_context(|| format!("replaying detect rule {}", rule.name))?;
        eprintln!("{PROG}: {}: replay made {n} detections", rule.name);
    }
    Ok(())
}

async fn replay_rule(
    rule: &DetectRule,
    from: Time,
    to: Option<Time>,
    put: Option<&str>,
) -> anyhow::Result<u64> {
    use std::io::Write;
    let mut state = DetectState::new(&rule.name);
    let reap = ReapOptions {
        timeout: Some(Duration::ZERO),
        ..ReapOptions::default()
    };
    let reject = match &rule.reject {
        Some(r) => format!("(?:{r})|{DETECTIONS}"),
        None => DETECTIONS.to_owned(),
    };
    let mut stream = OrbClient::reap_reconnecting(
        &rule.addr,
        &options(rule, true),
        rule.select.as_deref().unwrap_or(""),
        &reject,
        Some(&rules::Start::Time(from).position_spec()),
        reap,
    )
    .await
    .with_context(|| format!("cannot read orb {}", rule.orb))?;
    let mut out = match put {
        Some(_) => Some(
            OrbClient::connect(&rule.addr, &options(rule, false))
                .await
                .with_context(|| format!("cannot reach orb {}", rule.orb))?,
        ),
        None => None,
    };
    let types = match put {
        Some(t) => (t.to_owned(), t.to_owned()),
        None => live_types(),
    };
    let mut run = Run {
        rule,
        seen: HashSet::new(),
        bad: HashSet::new(),
        undecoded: SuffixWarnings::new(),
        started: Instant::now(),
        heard: HashMap::new(),
        silent: HashSet::new(),
        types,
    };
    let mut stdout = std::io::stdout().lock();
    let mut emit = async |made: Vec<Packet>, state: &mut DetectState| -> anyhow::Result<()> {
        if made.is_empty() {
            return Ok(());
        }
        match &mut out {
            Some(c) => put_made(c, rule, &made, state).await?,
            None => {
                state.emitted += made.len() as u64;
                for p in &made {
                    let payload: serde_json::Value = serde_json::from_slice(&p.payload)?;
                    let line = serde_json::json!({
                        "srcname": p.srcname.as_str(),
                        "time": iso(p.time),
                        "payload": payload,
                    });
                    writeln!(stdout, "{line}")?;
                }
            }
        }
        Ok(())
    };
    // Bounded: the stream ends once the ring's current packets are sent.
    while let Some(ev) = stream.next().await? {
        match ev {
            ReapEvent::Packet(p) => {
                if to.is_some_and(|to| p.time >= to) {
                    continue;
                }
                let made = run.packet(&p, &mut state);
                emit(made, &mut state).await?;
            }
            ReapEvent::Gap { first, last, .. } => eprintln!(
                "{PROG}: {}: pktids {first}-{last} were overwritten in the orb before they were read",
                rule.name
            ),
        }
    }
    // The range has ended: triggers in progress end at their last sample, and every
    // network event is decided.
    let made = run.finish(&mut state);
    emit(made, &mut state).await?;
    Ok(state.emitted)
}

/// Puts detection packets and waits for the orb's acknowledgement; records the last
/// pktid as the state's `out_mark`.
async fn put_made(
    out: &mut OrbClient,
    rule: &DetectRule,
    made: &[Packet],
    state: &mut DetectState,
) -> anyhow::Result<()> {
    let ack = out
        .put_acked(made.iter(), 8)
        .await
        .with_context(|| format!("putting detections into {}", rule.orb))?;
    if let Some((_, last)) = ack.pktids {
        state.out_mark = Some(state.out_mark.map_or(last, |m| m.max(last)));
    }
    state.emitted += made.len() as u64;
    Ok(())
}

/// Sleeps until `due`, or forever when nothing is due.
async fn sleep_until_due(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Keys of this rule's detection packets put after the state's `out_mark` (all of
/// them without a mark): put by a run killed before it saved its state.
async fn already_put(
    rule: &DetectRule,
    state: &DetectState,
) -> Result<HashSet<DetectionKey>, ClientError> {
    let reap = ReapOptions {
        timeout: Some(Duration::ZERO),
        ..ReapOptions::default()
    };
    let mut stream = OrbClient::reap_reconnecting(
        &rule.addr,
        &options(rule, true),
        DETECTIONS,
        "",
        Some("oldest"),
        reap,
    )
    .await?;
    let mut seen = HashSet::new();
    // Bounded: the stream ends once the ring's current packets are sent.
    while let Some(ev) = stream.next().await? {
        if let ReapEvent::Packet(p) = ev {
            if state.out_mark.is_some_and(|m| p.pktid <= m) {
                continue;
            }
            if let Some(k) = DetectionKey::of_packet(&rule.name, &p.srcname, &p.payload) {
                seen.insert(k);
            }
        }
    }
    Ok(seen)
}

/// Where to read: after the state's pktid, or the rule's start. When the state's
/// packets are gone from the orb (overwritten while stopped, or a new ring), the
/// detectors start afresh: they warm up again over `lta`.
async fn start_position(rule: &DetectRule, state: &mut DetectState) -> anyhow::Result<String> {
    let Some(done) = state.pktid else {
        return Ok(rule.start.position_spec());
    };
    let mut probe = OrbClient::connect(&rule.addr, &options(rule, true)).await?;
    let next = done.saturating_add(1);
    match probe.seek(Whence::Pktid, next).await {
        Ok(_) => Ok(next.to_string()),
        Err(e) if e.code() == Some(ErrorCode::OutOfRange) => {
            // (The server accepts the pktid one past its newest, so `next` is refused
            // only when it was overwritten or the ring was replaced.)
            let oldest = probe.seek(Whence::Oldest, 0).await?;
            let why = if oldest > next {
                "was overwritten in the orb while the rule was stopped"
            } else {
                "is beyond the orb's newest (the ring was replaced)"
            };
            eprintln!(
                "{PROG}: {}: pktid {next} {why}; detectors start afresh from the oldest packet",
                rule.name
            );
            state.channels.clear();
            state.coincidence = None;
            Ok("oldest".to_owned())
        }
        Err(e) => Err(e.into()),
    }
}

/// One session's working set besides the state.
struct Run<'a> {
    rule: &'a DetectRule,
    /// Detections already in the orb: not put again.
    seen: HashSet<DetectionKey>,
    /// Channels whose rate the rule cannot work at (reported once).
    bad: HashSet<String>,
    undecoded: SuffixWarnings,
    /// When the session started: channels of the state not heard since count from it.
    started: Instant,
    /// When each coincidence channel last brought samples (wall clock).
    heard: HashMap<String, Instant>,
    /// Coincidence channels silent longer than the timeout (reported once each time).
    silent: HashSet<String>,
    /// Srcname types of the trigger and event packets made.
    types: (String, String),
}

impl Run<'_> {
    /// Runs one packet through the detectors; returns the detection packets to put.
    fn packet(&mut self, p: &Packet, state: &mut DetectState) -> Vec<Packet> {
        let mut made = Vec::new();
        if rules::detect_rule::is_detection(&p.srcname)
            || !self.rule.filter.matches(p.srcname.as_str())
        {
            return made;
        }
        let channels = match payload::decode(&p.srcname, p.time, &p.payload) {
            Ok(c) => c,
            Err(e) => {
                if self.undecoded.first_time(&p.srcname) {
                    eprintln!(
                        "{PROG}: {}: {}: not a waveform packet, skipped (reported once per source): {e}",
                        self.rule.name, p.srcname
                    );
                }
                return made;
            }
        };
        for ch in channels {
            if !self.rule.channels_re.is_match(&ch.chan)
                || ch.samples.is_empty()
                || !(ch.samprate.is_finite() && ch.samprate > 0.0)
            {
                continue;
            }
            let key = if ch.loc.is_empty() {
                format!("{}_{}_{}", ch.net, ch.sta, ch.chan)
            } else {
                format!("{}_{}_{}_{}", ch.net, ch.sta, ch.chan, ch.loc)
            };
            self.channel(
                &key,
                &format!("{}_{}", ch.net, ch.sta),
                &ch,
                state,
                &mut made,
            );
        }
        made.extend(self.release_silent(state));
        made
    }

    /// The data has ended: closes every trigger in progress and decides every
    /// network event; returns their packets.
    fn finish(&mut self, state: &mut DetectState) -> Vec<Packet> {
        let mut made = Vec::new();
        let keys: Vec<String> = state.channels.keys().cloned().collect();
        for key in keys {
            let mut events = Vec::new();
            if let Some(cs) = state.channels.get_mut(&key) {
                cs.detector.finish(&mut events);
            }
            if let Some(cs) = state.channels.get(&key) {
                self.triggers(&key, cs, &events, state.coincidence.as_mut(), &mut made);
            }
        }
        let mut events = Vec::new();
        if let Some(c) = &mut state.coincidence {
            c.finish(&mut events);
        }
        for e in events {
            self.event(&e, &mut made);
        }
        made
    }

    /// Leaves out of the open network events the coincidence channels that have
    /// brought no samples for the rule's `timeout` (wall clock): they are promised to
    /// have no trigger before the latest data time of any channel, so that events
    /// waiting on them are decided without them. Returns the event
    /// packets that are now final.
    fn release_silent(&mut self, state: &mut DetectState) -> Vec<Packet> {
        let mut made = Vec::new();
        let (Some(rule), Some(c)) = (&self.rule.coincidence, &mut state.coincidence) else {
            return made;
        };
        let timeout = Duration::from_secs_f64(rule.timeout);
        let now = Instant::now();
        let last = |id: &str| self.heard.get(id).copied().unwrap_or(self.started);
        // The data time the network has reached: the latest next sample of its
        // channels (when all of them are silent, the silent ones are promised up to
        // where the last one stopped).
        let reached = state
            .channels
            .iter()
            .filter(|(k, _)| c.has_channel(k))
            .map(|(_, cs)| cs.time_of(cs.next).as_micros())
            .max();
        if let Some(reached) = reached {
            let ids: Vec<String> = c.config().channels.iter().map(|ch| ch.id.clone()).collect();
            for id in ids {
                if now.duration_since(last(&id)) < timeout {
                    continue;
                }
                if self.silent.insert(id.clone()) {
                    eprintln!(
                        "{PROG}: {}: {id} has sent nothing for {:?}: network events are decided without it until it sends again",
                        self.rule.name, timeout
                    );
                }
                let _ = c.advance(&id, reached);
            }
        }
        let mut events = Vec::new();
        c.poll(&mut events);
        for e in events {
            self.event(&e, &mut made);
        }
        made
    }

    fn channel(
        &mut self,
        key: &str,
        station: &str,
        ch: &payload::Channel,
        state: &mut DetectState,
        made: &mut Vec<Packet>,
    ) {
        let rate = ch.samprate;
        let half = (5e5 / rate) as i64;
        let mut samples = &ch.samples[..];
        let mut events = Vec::new();
        let mut fresh = false;
        match state.channels.get_mut(key) {
            Some(cs) if cs.samprate == rate => {
                let expected = cs.time_of(cs.next).as_micros();
                let start = ch.start.as_micros();
                if start > expected + half {
                    // A gap: the trigger in progress ends at the last sample, and the
                    // detector starts again (warming up over lta).
                    cs.detector.finish(&mut events);
                    self.triggers(key, cs, &events, state.coincidence.as_mut(), made);
                    events.clear();
                    fresh = true;
                } else if start < expected - half {
                    // Overlap (a packet sent twice): only the samples after what was seen.
                    let skip = ((expected - start) as f64 * rate / 1e6).round() as usize;
                    samples = samples.get(skip..).unwrap_or(&[]);
                }
            }
            Some(cs) => {
                cs.detector.finish(&mut events);
                self.triggers(key, cs, &events, state.coincidence.as_mut(), made);
                events.clear();
                fresh = true;
            }
            None => fresh = true,
        }
        if fresh {
            let detector = match self.rule.detector(rate) {
                Ok(d) => d,
                Err(e) => {
                    if self.bad.insert(key.to_owned()) {
                        eprintln!(
                            "{PROG}: {}: {key} at {rate} samples/s cannot be used: field `{}`: {e}",
                            self.rule.name,
                            e.field()
                        );
                    }
                    state.channels.remove(key);
                    return;
                }
            };
            state.channels.insert(
                key.to_owned(),
                ChannelState {
                    samprate: rate,
                    origin: ch.start,
                    next: 0,
                    detector,
                },
            );
        }
        if samples.is_empty() {
            return;
        }
        if let Some(cr) = &self.rule.coincidence {
            if let Some(weight) = cr.weight(station) {
                let c = state.coincidence.get_or_insert_with(|| {
                    Coincidence::new(CoincidenceConfig {
                        threshold: cr.threshold,
                        off_extension_us: (cr.window * 1e6).round() as i64,
                        channels: Vec::new(),
                    })
                    .expect("the rule file checked the threshold and window")
                });
                if !c.has_channel(key) {
                    let channel = CoincidenceChannel {
                        id: key.to_owned(),
                        station: station.to_owned(),
                        weight,
                    };
                    let _ = c.add_channel(channel, ch.start.as_micros());
                }
            }
        }
        let Some(cs) = state.channels.get_mut(key) else {
            return;
        };
        if state
            .coincidence
            .as_ref()
            .is_some_and(|c| c.has_channel(key))
        {
            self.heard.insert(key.to_owned(), Instant::now());
            if self.silent.remove(key) {
                eprintln!(
                    "{PROG}: {}: {key} sends again; its triggers before the events decided without it are not in them",
                    self.rule.name
                );
            }
        }
        cs.detector.push_i32(samples, &mut events);
        cs.next += samples.len() as u64;
        self.triggers(key, cs, &events, state.coincidence.as_mut(), made);
        if let Some(c) = &mut state.coincidence {
            if c.has_channel(key) {
                let settled = cs.time_of(cs.detector.onset().earliest_pending_on());
                let _ = c.advance(key, settled.as_micros());
            }
        }
    }

    /// Turns trigger events into DET packets (and finished triggers into coincidence
    /// input).
    fn triggers(
        &mut self,
        key: &str,
        cs: &ChannelState,
        events: &[TriggerEvent],
        mut coincidence: Option<&mut Coincidence>,
        made: &mut Vec<Packet>,
    ) {
        for ev in events {
            let (kind, on, ratio, off) = match ev {
                TriggerEvent::On { on, cf } => (DetKind::On, *on, *cf, None),
                TriggerEvent::Off(t) => (DetKind::Off, t.on, t.peak, Some((t.off, t.peak_at))),
            };
            let onset = cs.time_of(on);
            let end = off.map(|(o, _)| cs.time_of(o));
            if let (Some(c), Some(end)) = (coincidence.as_deref_mut(), end) {
                if c.has_channel(key) {
                    let t = StationTrigger {
                        id: key.to_owned(),
                        on_us: onset.as_micros(),
                        off_us: end.as_micros(),
                        peak: ratio,
                    };
                    if let Err(e) = c.push(&t) {
                        eprintln!("{PROG}: {}: {key}: {e}", self.rule.name);
                    }
                }
            }
            let payload = DetPayload {
                rule: self.rule.name.clone(),
                kind,
                channel: key.to_owned(),
                onset: iso(onset),
                onset_epoch: epoch(onset),
                onset_us: onset.as_micros(),
                end: end.map(iso),
                duration: end.map(|e| (e.as_micros() - onset.as_micros()) as f64 / 1e6),
                ratio,
                peak_time: off.map(|(_, at)| iso(cs.time_of(at))),
                samprate: cs.samprate,
                params: self.rule.params(),
            };
            let k = DetectionKey::Trigger(key.to_owned(), kind, onset.as_micros());
            let Ok(name) = SrcName::new(&format!("{key}/{}", self.types.0)) else {
                continue;
            };
            self.put(k, name, end.unwrap_or(onset), &payload, made);
        }
    }

    fn event(&mut self, e: &NetworkEvent, made: &mut Vec<Packet>) {
        let net = e
            .members
            .first()
            .map_or("", |m| m.station.split('_').next().unwrap_or(""));
        let mut stations: Vec<String> = Vec::new();
        for m in &e.members {
            if !stations.contains(&m.station) {
                stations.push(m.station.clone());
            }
        }
        let time = Time::from_micros(e.time_us);
        let payload = EventPayload {
            rule: self.rule.name.clone(),
            time: iso(time),
            time_epoch: epoch(time),
            time_us: e.time_us,
            duration: e.duration_us as f64 / 1e6,
            coincidence_sum: e.coincidence_sum,
            threshold: self.rule.coincidence.as_ref().map_or(0.0, |c| c.threshold),
            stations,
            members: e
                .members
                .iter()
                .map(|m| EventMember {
                    channel: m.id.clone(),
                    station: m.station.clone(),
                    onset: iso(Time::from_micros(m.on_us)),
                    onset_epoch: epoch(Time::from_micros(m.on_us)),
                    duration: (m.off_us - m.on_us) as f64 / 1e6,
                    peak: m.peak,
                })
                .collect(),
        };
        let Ok(name) = SrcName::new(&format!("{net}/{}", self.types.1)) else {
            return;
        };
        self.put(DetectionKey::Event(e.time_us), name, time, &payload, made);
    }

    fn put(
        &mut self,
        key: DetectionKey,
        name: SrcName,
        time: Time,
        payload: &impl serde::Serialize,
        made: &mut Vec<Packet>,
    ) {
        if self.seen.remove(&key) {
            return;
        }
        match serde_json::to_vec(payload) {
            Ok(bytes) => made.push(Packet::new(name, time, bytes)),
            Err(e) => eprintln!("{PROG}: {}: cannot encode a detection: {e}", self.rule.name),
        }
    }
}

fn iso(t: Time) -> String {
    t.to_iso8601().unwrap_or_else(|| t.to_epoch_string())
}
