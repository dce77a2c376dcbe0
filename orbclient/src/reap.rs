//! [`ReapStream`]: the packets a REAP streams, with flow control and, optionally,
//! reconnection that neither repeats nor silently skips a packet.
//!
//! A `ReapStream` owns the [`OrbClient`] whose session it reads: while a reap is
//! active the server refuses SELECT, REJECT, SEEK and AFTER anyway, and owning the
//! connection keeps every frame on it the stream's business. [`ReapStream::into_client`]
//! gives the client back once the stream has ended.
//!
//! Credit: the REAP grants `credit_window` packets; each time half of that has arrived
//! the stream sends one CREDIT for all of them, so the server never waits on a reader
//! that keeps up, and a reader that falls behind holds at most one window in memory.
//!
//! Reconnecting streams ([`OrbClient::reap_reconnecting`]) remember the last packet
//! they delivered. After a lost connection they reconnect with exponential backoff,
//! redo HELLO, select and reject, and SEEK to the pktid after the last delivered one.
//! If that pktid has been overwritten meanwhile, the stream seeks to the oldest packet
//! and reports the lost pktids as a [`ReapEvent::Gap`] (size unknown). If the server's
//! pktids went backwards (a new ring), it falls back to AFTER the last packet's time.
//! Packets with pktids at or below the last delivered one are dropped.

use std::collections::VecDeque;
use std::time::Duration;

use formats::proto::ReapEndReason;
use formats::proto::{Body, ErrorCode, Whence, NO_TIMEOUT};
use formats::{Packet, Time};

use crate::client::{unexpected, ClientOptions, OrbClient};
use crate::connection::{ReapEnd, ServerMsg};
use crate::error::{ClientError, Result};
use crate::OrbAddr;

/// Default credit window: packets the server may send before it needs more credit.
pub const DEFAULT_CREDIT_WINDOW: u32 = 4096;

/// How a reconnecting stream retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Wait before the first attempt; doubled after each failure.
    pub min_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Attempts per outage before giving up (`None`: never give up).
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    /// 100 ms doubling to 5 s, unlimited attempts.
    fn default() -> ReconnectPolicy {
        ReconnectPolicy {
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_attempts: None,
        }
    }
}

/// What a REAP asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReapOptions {
    /// End after this many packets (0: no limit). A reconnecting stream counts across
    /// connections.
    pub max_packets: u32,
    /// End after this long without a packet (`None`: never; zero: send what the ring
    /// holds now, then end).
    pub timeout: Option<Duration>,
    /// Packets the server may send ahead of the reader (at least 1).
    pub credit_window: u32,
    /// Retry policy; used only by [`OrbClient::reap_reconnecting`].
    pub reconnect: ReconnectPolicy,
}

impl Default for ReapOptions {
    /// No packet limit, no timeout, [`DEFAULT_CREDIT_WINDOW`].
    fn default() -> ReapOptions {
        ReapOptions {
            max_packets: 0,
            timeout: None,
            credit_window: DEFAULT_CREDIT_WINDOW,
            reconnect: ReconnectPolicy::default(),
        }
    }
}

/// One thing a reap stream delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReapEvent {
    /// A packet.
    Packet(Packet),
    /// The reader was lapped: pktids `first..=last` were overwritten before it read them.
    Gap {
        /// First pktid lost.
        first: u64,
        /// Last pktid lost.
        last: u64,
        /// Ring bytes lost, when the server reported it (`None` for a gap the client
        /// found across a reconnect).
        bytes: Option<u64>,
    },
}

/// Everything needed to open the session again.
#[derive(Debug)]
struct Resume {
    addr: OrbAddr,
    opts: ClientOptions,
    select: String,
    reject: String,
    start: Option<String>,
}

/// A stream of packets from a REAP; see the module docs.
#[derive(Debug)]
pub struct ReapStream {
    /// `None` only while reconnecting.
    client: Option<OrbClient>,
    /// The REAP's tag, carried by every stream frame.
    tag: u32,
    opts: ReapOptions,
    /// Packets received since the last CREDIT.
    unacked: u32,
    /// Events read while stopping (or found while reconnecting), delivered first.
    pending: VecDeque<ReapEvent>,
    end: Option<ReapEnd>,
    /// Packets delivered, for `max_packets` across reconnects.
    delivered: u64,
    /// pktid and time of the last packet delivered.
    last: Option<(u64, Time)>,
    /// Where a new session resumes: after the last packet or gap delivered.
    resume: u64,
    reconnect: Option<Resume>,
}

impl OrbClient {
    /// Starts a REAP on this session; the stream owns the client until
    /// [`ReapStream::into_client`].
    pub async fn reap(self, opts: ReapOptions) -> Result<ReapStream> {
        ReapStream::start(self, opts, 0, None).await
    }

    /// Connects, applies `select` and `reject` (empty: none), positions at `start`
    /// ([`OrbClient::position`] syntax; `None`: only packets that arrive from now on)
    /// and starts a REAP that survives lost connections (see the module docs). The
    /// first connection is not retried, so a wrong address fails at once.
    pub async fn reap_reconnecting(
        addr: &OrbAddr,
        opts: &ClientOptions,
        select: &str,
        reject: &str,
        start: Option<&str>,
        reap: ReapOptions,
    ) -> Result<ReapStream> {
        let resume = Resume {
            addr: addr.clone(),
            opts: opts.clone(),
            select: select.to_owned(),
            reject: reject.to_owned(),
            start: start.map(str::to_owned),
        };
        let mut c = OrbClient::connect(addr, opts).await?;
        let pos = resume.prepare(&mut c).await?;
        ReapStream::start(c, reap, pos, Some(resume)).await
    }
}

impl Resume {
    /// Applies select and reject and positions at `start`; returns the position.
    async fn prepare(&self, c: &mut OrbClient) -> Result<u64> {
        if !self.select.is_empty() {
            c.select(&self.select).await?;
        }
        if !self.reject.is_empty() {
            c.reject(&self.reject).await?;
        }
        match &self.start {
            Some(s) => c.position(s).await,
            None => c.tell().await,
        }
    }
}

/// REAP's `timeout_ms`; a nonzero timeout never rounds down to 0 (which means poll).
fn timeout_ms(t: Option<Duration>) -> u32 {
    match t {
        None => NO_TIMEOUT,
        Some(d) if d.is_zero() => 0,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            u32::try_from(ms)
                .unwrap_or(NO_TIMEOUT - 1)
                .min(NO_TIMEOUT - 1)
        }
    }
}

impl ReapStream {
    async fn start(
        client: OrbClient,
        mut opts: ReapOptions,
        resume: u64,
        reconnect: Option<Resume>,
    ) -> Result<ReapStream> {
        opts.credit_window = opts.credit_window.max(1);
        let mut s = ReapStream {
            client: Some(client),
            tag: 0,
            opts,
            unacked: 0,
            pending: VecDeque::new(),
            end: None,
            delivered: 0,
            last: None,
            resume,
            reconnect,
        };
        s.send_reap().await?;
        Ok(s)
    }

    /// Sends REAP for what is left of the budget on the current client.
    async fn send_reap(&mut self) -> Result<()> {
        let max = u64::from(self.opts.max_packets);
        let left = max.saturating_sub(self.delivered);
        if max > 0 && left == 0 {
            self.end = Some(ReapEnd {
                reason: ReapEndReason::Budget,
                pos: self.resume,
            });
            return Ok(());
        }
        let body = Body::Reap {
            max_packets: u32::try_from(left).unwrap_or(u32::MAX),
            timeout_ms: timeout_ms(self.opts.timeout),
            credit: self.opts.credit_window,
        };
        let c = self.client.as_mut().ok_or(ClientError::Closed)?;
        self.tag = c.send(body).await?;
        self.unacked = 0;
        Ok(())
    }

    /// The next packet or gap; `None` once the stream has ended (see
    /// [`end`](Self::end) for why). A reconnecting stream handles lost connections
    /// inside this call; other errors end the stream.
    pub async fn next(&mut self) -> Result<Option<ReapEvent>> {
        // Each turn handles one frame or one reconnection (bounded by the policy).
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Ok(Some(ev));
            }
            if self.end.is_some() {
                return Ok(None);
            }
            match self.read_event().await {
                Ok(Some(ev)) => return Ok(Some(ev)),
                Ok(None) => {}
                Err(e) if self.reconnect.is_some() && e.is_connection_lost() => {
                    self.reconnect(e).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// How the stream ended, once it has.
    pub fn end(&self) -> Option<ReapEnd> {
        self.end
    }

    /// pktid of the last packet delivered.
    pub fn last_pktid(&self) -> Option<u64> {
        self.last.map(|(p, _)| p)
    }

    /// True if [`next`](Self::next) can answer without waiting for the network (a
    /// whole frame is buffered, or the stream has ended); callers use it to flush
    /// their output only before they would wait.
    pub fn is_ready(&self) -> bool {
        !self.pending.is_empty()
            || self.end.is_some()
            || self.client.as_ref().is_some_and(|c| c.conn.has_frame())
    }

    /// Sends STOP and reads up to REAP_END. Packets already on their way are kept:
    /// [`next`](Self::next) delivers them before it returns `None`.
    pub async fn stop(&mut self) -> Result<ReapEnd> {
        if let Some(e) = self.end {
            return Ok(e);
        }
        let stopped = ReapEnd {
            reason: ReapEndReason::Stopped,
            pos: self.resume,
        };
        let Some(c) = self.client.as_mut() else {
            self.end = Some(stopped);
            return Ok(stopped);
        };
        let limit = c.request_timeout;
        let drain = async {
            let c = self.client.as_mut().ok_or(ClientError::Closed)?;
            c.send(Body::Stop).await?;
            // At most one credit window of packets (plus gaps) precede REAP_END.
            while self.end.is_none() {
                if let Some(ev) = self.read_event().await? {
                    self.pending.push_back(ev);
                }
            }
            Ok(())
        };
        let r = match limit {
            Some(t) => tokio::time::timeout(t, drain)
                .await
                .unwrap_or(Err(ClientError::Timeout {
                    what: "REAP_END after STOP",
                    after: t,
                })),
            None => drain.await,
        };
        match r {
            Ok(()) => Ok(self.end.unwrap_or(stopped)),
            // A reconnecting stream that loses its connection now has stopped anyway.
            Err(e) if self.reconnect.is_some() && e.is_connection_lost() => {
                self.client = None;
                self.end = Some(stopped);
                Ok(stopped)
            }
            Err(e) => Err(e),
        }
    }

    /// Stops the stream if it is active and gives back the client. Events not yet
    /// taken with [`next`](Self::next) are dropped.
    pub async fn into_client(mut self) -> Result<OrbClient> {
        self.stop().await?;
        self.client.take().ok_or(ClientError::Closed)
    }

    /// Reads one frame of the stream; `None` for a frame that yields no event
    /// (a duplicate, or REAP_END, which sets `end`).
    async fn read_event(&mut self) -> Result<Option<ReapEvent>> {
        let c = self.client.as_mut().ok_or(ClientError::Closed)?;
        let f = c.conn.read_frame().await?;
        if f.tag != self.tag {
            return match f.msg {
                ServerMsg::Error { code, message } if f.tag == 0 => {
                    Err(ClientError::Server { code, message })
                }
                other => Err(unexpected("a frame of the reap", f.tag, &other)),
            };
        }
        match f.msg {
            ServerMsg::Packet(p) => {
                self.unacked += 1;
                if self.unacked >= (self.opts.credit_window / 2).max(1) {
                    let n = std::mem::take(&mut self.unacked);
                    c.send(Body::Credit { n }).await?;
                }
                if self.last.is_some_and(|(l, _)| p.pktid <= l) {
                    return Ok(None);
                }
                self.last = Some((p.pktid, p.time));
                self.resume = p.pktid.saturating_add(1);
                self.delivered += 1;
                Ok(Some(ReapEvent::Packet(p)))
            }
            ServerMsg::Gap { first, last, bytes } => {
                self.resume = self.resume.max(last.saturating_add(1));
                Ok(Some(ReapEvent::Gap {
                    first,
                    last,
                    bytes: Some(bytes),
                }))
            }
            ServerMsg::ReapEnd(e) => {
                self.end = Some(e);
                Ok(None)
            }
            ServerMsg::Error { code, message } => Err(ClientError::Server { code, message }),
            other => Err(unexpected("PACKET, GAP or REAP_END", f.tag, &other)),
        }
    }

    /// Reconnects after `cause`, with backoff, until a session is reaping again or the
    /// policy gives up (then the last error is returned).
    async fn reconnect(&mut self, cause: ClientError) -> Result<()> {
        self.client = None;
        let policy = self.opts.reconnect.clone();
        let mut delay = policy.min_backoff;
        let mut last_err = cause;
        let mut attempt = 0u32;
        // Bounded by max_attempts when set; unlimited is the documented default.
        loop {
            if policy.max_attempts.is_some_and(|max| attempt >= max) {
                return Err(last_err);
            }
            attempt += 1;
            tracing::warn!(
                "{}; reconnecting in {delay:?} (attempt {attempt})",
                error_chain(&last_err)
            );
            tokio::time::sleep(delay).await;
            match self.resume_session().await {
                Ok(()) => {
                    tracing::warn!("reconnected; reading on from pktid {}", self.resume);
                    return Ok(());
                }
                Err(e) if e.is_connection_lost() => {
                    last_err = e;
                    delay = (delay * 2).min(policy.max_backoff);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Opens a new session positioned after the last delivered packet, and reaps.
    async fn resume_session(&mut self) -> Result<()> {
        let plan = self.reconnect.as_ref().ok_or(ClientError::Closed)?;
        let mut c = OrbClient::connect(&plan.addr, &plan.opts).await?;
        if !plan.select.is_empty() {
            c.select(&plan.select).await?;
        }
        if !plan.reject.is_empty() {
            c.reject(&plan.reject).await?;
        }
        match c.seek(Whence::Pktid, self.resume).await {
            Ok(_) => {}
            Err(e) if e.code() == Some(ErrorCode::OutOfRange) => {
                let oldest = c.seek(Whence::Oldest, 0).await?;
                if oldest > self.resume {
                    // Overwritten while we were away: say so rather than skip silently.
                    self.pending.push_back(ReapEvent::Gap {
                        first: self.resume,
                        last: oldest - 1,
                        bytes: None,
                    });
                    self.resume = oldest;
                } else {
                    // Our pktid is beyond the server's next one: the pktid sequence
                    // restarted (a new ring), so pktids no longer tell what we have
                    // seen; times do.
                    tracing::warn!(
                        "pktid {} is beyond the server's newest: the ring was replaced; \
                         reading on by time",
                        self.resume
                    );
                    self.resume = match self.last {
                        Some((_, t)) => c.after(t).await?,
                        None => plan.prepare(&mut c).await?,
                    };
                    self.last = None;
                }
            }
            Err(e) => return Err(e),
        }
        self.client = Some(c);
        self.send_reap().await
    }
}

/// `e` and its sources on one line, as anyhow's `{:#}` prints them.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_map_to_the_wire() {
        assert_eq!(timeout_ms(None), NO_TIMEOUT);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_secs(2))), 2000);
        assert_eq!(
            timeout_ms(Some(Duration::from_secs(u64::MAX))),
            NO_TIMEOUT - 1
        );
    }

    #[test]
    fn error_chain_reads_like_anyhow() {
        let e = ClientError::Io(std::io::Error::other("reset"));
        assert_eq!(
            error_chain(&e),
            "connection to the orb server failed: reset"
        );
    }
}
