//! One SeedLink connection: reads command lines, answers them, and once the transfer
//! starts writes data frames as packets arrive. Protocol decisions live in `request`
//! and `feed`; this is the socket side.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use formats::seedlink::{self, frame, Command, InfoLevel, SeedLinkError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::feed::{Feed, Fill};
use super::request::{Negotiation, StationReq, Step};
use super::{hello_line, info, ORGANIZATION};
use crate::access::Grant;
use crate::server::clients::Registration;
use crate::server::policy::{Refusal, RefusalCounters, RefusalLog};
use crate::server::Shared;

/// How a connection ended, for the log.
#[derive(Debug, thiserror::Error)]
enum End {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("closed after a protocol error: {0}")]
    Protocol(SeedLinkError),
    #[error("no command within the handshake timeout")]
    Handshake,
    #[error("closed for shutdown")]
    Shutdown,
    #[error("closed by an administrator (KILL)")]
    Killed,
    #[error("read access was withdrawn by a rules reload")]
    Revoked,
}

/// Serves one admitted SeedLink connection.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    reg: Registration,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    {
        let mut ident = reg.entry.ident();
        ident.what = "SeedLink client".into();
    }
    let (generation, rules) = shared.policy.current();
    let grant = rules.grant(peer.ip(), None);
    let mut conn = Conn {
        rd,
        wr,
        rbuf: Vec::new(),
        out: Vec::new(),
        shared,
        reg,
        peer,
        grant,
        grant_gen: generation,
        logged: RefusalLog::default(),
        neg: Negotiation::default(),
    };
    match conn.run(&shutdown).await {
        Ok(()) => tracing::debug!("{peer}: SeedLink connection closed"),
        Err(e @ End::Handshake) => tracing::warn!("{peer}: SeedLink: refused: {e}"),
        Err(e) => tracing::info!("{peer}: SeedLink: {e}"),
    }
}

struct Conn {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    rbuf: Vec<u8>,
    out: Vec<u8>,
    shared: Arc<Shared>,
    reg: Registration,
    peer: SocketAddr,
    grant: Grant,
    grant_gen: u64,
    /// Refusals logged already (later ones are only counted).
    logged: RefusalLog,
    neg: Negotiation,
}

/// What the command phase ended with.
enum Next {
    Close,
    Transfer(Vec<StationReq>),
}

impl Conn {
    async fn run(&mut self, shutdown: &CancellationToken) -> Result<(), End> {
        let deadline = tokio::time::Instant::now() + self.shared.limits.handshake_timeout;
        let mut commands = 0u64;
        let reqs = loop {
            match self.commands(&mut commands) {
                Ok(None) => {}
                Ok(Some(Next::Close)) => {
                    self.flush(shutdown).await?;
                    return Ok(());
                }
                Ok(Some(Next::Transfer(reqs))) => break reqs,
                Err(e) => {
                    let _ = self.flush(shutdown).await;
                    return Err(e);
                }
            }
            self.flush(shutdown).await?;
            let kill = self.reg.entry.kill.clone();
            tokio::select! {
                _ = kill.cancelled() => return Err(End::Killed),
                _ = shutdown.cancelled() => return Err(End::Shutdown),
                r = self.rd.read_buf(&mut self.rbuf) => {
                    if r? == 0 {
                        return Ok(());
                    }
                }
                _ = tokio::time::sleep_until(deadline), if commands == 0 => {
                    RefusalCounters::bump(&self.shared.refused.handshake_timeouts);
                    return Err(End::Handshake);
                }
            }
        };
        self.transfer(reqs, shutdown).await
    }

    /// Re-decides the read and admin rights if the rules were reloaded.
    fn refresh_grant(&mut self) {
        if self.shared.policy.generation() != self.grant_gen {
            let (generation, rules) = self.shared.policy.current();
            self.grant = rules.grant(self.peer.ip(), None);
            self.grant_gen = generation;
        }
    }

    /// Answers a request that needs read access with ERROR if the address may not read.
    fn may_read(&mut self) -> bool {
        self.refresh_grant();
        if self.grant.read {
            return true;
        }
        self.logged.refuse(
            &self.shared.refused,
            Refusal::ReadNotAllowed,
            self.peer,
            "SeedLink: ",
            "a read: address not in access.read",
        );
        let msg = format!("address {} may not read this orb", self.peer.ip());
        self.out.extend(self.neg.error("UNAUTHORIZED", &msg));
        false
    }

    /// Handles every whole command line in the read buffer.
    fn commands(&mut self, count: &mut u64) -> Result<Option<Next>, End> {
        loop {
            let (line, used) = match seedlink::split_line(&self.rbuf) {
                Ok(Some((line, used))) => (line.to_vec(), used),
                Ok(None) => return Ok(None),
                Err(e) => return Err(End::Protocol(e)),
            };
            self.rbuf.drain(..used);
            let cmd = match seedlink::parse(&line) {
                Ok(Some(cmd)) => cmd,
                Ok(None) => continue,
                Err(e) => {
                    *count += 1;
                    tracing::debug!("{}: SeedLink: {e}", self.peer);
                    let code = if matches!(e, SeedLinkError::UnknownCommand(_)) {
                        "UNSUPPORTED"
                    } else {
                        "ARGUMENTS"
                    };
                    self.out.extend(self.neg.error(code, &e.to_string()));
                    continue;
                }
            };
            *count += 1;
            let needs_read = matches!(
                cmd,
                Command::Data(_)
                    | Command::Fetch(_)
                    | Command::Time { .. }
                    | Command::End
                    | Command::Cat
            );
            if needs_read && !self.may_read() {
                continue;
            }
            match self.neg.handle(cmd) {
                Step::Reply(bytes) => self.out.extend(bytes),
                Step::Hello => {
                    let text = format!("{}\r\n{ORGANIZATION}\r\n", hello_line());
                    self.out.extend(text.as_bytes());
                }
                Step::Cat => self.out.extend(info::cat(&self.shared)),
                Step::Info(level) => self.info(level),
                Step::Close => return Ok(Some(Next::Close)),
                Step::Start(reqs) => return Ok(Some(Next::Transfer(reqs))),
            }
        }
    }

    /// Answers INFO: ID and CAPABILITIES to anyone, data names to readers,
    /// CONNECTIONS to administrators.
    fn info(&mut self, level: InfoLevel) {
        let data = !matches!(level, InfoLevel::Id | InfoLevel::Capabilities);
        if data && !self.may_read() {
            return;
        }
        if matches!(level, InfoLevel::Connections | InfoLevel::All) && !self.grant.admin {
            RefusalCounters::bump(&self.shared.refused.admin_not_allowed);
            let msg = format!(
                "INFO {} needs admin access: address {} is not in access.admin",
                level.name(),
                self.peer.ip()
            );
            self.out.extend(self.neg.error("UNAUTHORIZED", &msg));
            return;
        }
        frame::info_frames(&mut self.out, &info::xml(&self.shared, level));
    }

    /// Lines sent during the transfer: INFO is answered in the stream, BYE closes,
    /// anything else is ignored (a reply would land among the data frames).
    fn commands_in_transfer(&mut self) -> Result<bool, End> {
        loop {
            let (line, used) = match seedlink::split_line(&self.rbuf) {
                Ok(Some((line, used))) => (line.to_vec(), used),
                Ok(None) => return Ok(false),
                Err(e) => return Err(End::Protocol(e)),
            };
            self.rbuf.drain(..used);
            match seedlink::parse(&line) {
                Ok(Some(Command::Info(level))) => self.info(level),
                Ok(Some(Command::Bye)) => return Ok(true),
                Ok(_) | Err(_) => {
                    tracing::debug!(
                        "{}: SeedLink: ignored a command during the transfer",
                        self.peer
                    );
                }
            }
        }
    }

    async fn transfer(
        &mut self,
        reqs: Vec<StationReq>,
        shutdown: &CancellationToken,
    ) -> Result<(), End> {
        let select = describe(&reqs);
        {
            let mut ident = self.reg.entry.ident();
            ident.access = "r".into();
            ident.select = select;
        }
        self.reg.entry.reads.store(true, Relaxed);
        let mut feed = Feed::new(&self.shared, reqs, self.peer.to_string());
        let result = self.stream(&mut feed, shutdown).await;
        if feed.skipped() > 0 {
            tracing::info!(
                "{}: SeedLink transfer skipped {} packets that could not be served as miniSEED",
                self.peer,
                feed.skipped()
            );
        }
        result
    }

    /// Sends the feed's frames as packets arrive, until it is complete or the client
    /// leaves.
    async fn stream(&mut self, feed: &mut Feed, shutdown: &CancellationToken) -> Result<(), End> {
        self.reg.entry.pos.store(feed.pos(), Relaxed);
        let cap = self.shared.limits.output_buffer.max(4096);
        let kill = self.reg.entry.kill.clone();
        // Lines that came in the same read as the command that started the transfer.
        if self.commands_in_transfer()? {
            self.flush(shutdown).await?;
            return Ok(());
        }
        loop {
            if kill.is_cancelled() {
                return Err(End::Killed);
            }
            self.refresh_grant();
            if !self.grant.read {
                return Err(End::Revoked);
            }
            // Register interest before looking at the ring, so a packet appended between
            // the look and the wait still wakes us.
            let shared = Arc::clone(&self.shared);
            let notified = shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut fill = Fill::More;
            while fill == Fill::More && self.out.len() < cap {
                let room = cap - self.out.len();
                fill = feed.fill(&self.shared, &self.reg, &mut self.out, room);
            }
            self.flush(shutdown).await?;
            match fill {
                Fill::Finished => {
                    let _ = self.wr.shutdown().await;
                    return Ok(());
                }
                Fill::More => {
                    tokio::task::yield_now().await;
                    continue;
                }
                Fill::Waiting => {}
            }
            tokio::select! {
                _ = kill.cancelled() => return Err(End::Killed),
                _ = shutdown.cancelled() => return Err(End::Shutdown),
                r = self.rd.read_buf(&mut self.rbuf) => {
                    if r? == 0 {
                        return Ok(());
                    }
                    if self.commands_in_transfer()? {
                        self.flush(shutdown).await?;
                        return Ok(());
                    }
                }
                _ = &mut notified => {}
            }
        }
    }

    /// Writes the output buffer; gives up on shutdown or KILL.
    async fn flush(&mut self, shutdown: &CancellationToken) -> Result<(), End> {
        if self.out.is_empty() {
            return Ok(());
        }
        let kill = self.reg.entry.kill.clone();
        tokio::select! {
            r = self.wr.write_all(&self.out) => r?,
            _ = shutdown.cancelled() => return Err(End::Shutdown),
            _ = kill.cancelled() => return Err(End::Killed),
        }
        self.out.clear();
        Ok(())
    }
}

/// The requests in one line for CLIENTS' select column: `NET_STA:selectors` per
/// station, `*` for any.
fn describe(reqs: &[StationReq]) -> String {
    reqs.iter()
        .map(|r| {
            let pat = |p: &Option<formats::seedlink::StationPattern>| {
                p.as_ref()
                    .map_or("*".to_string(), |p| p.as_str().to_string())
            };
            let mut s = format!("{}_{}", pat(&r.net), pat(&r.sta));
            if !r.selectors.is_empty() {
                let sels: Vec<String> = r
                    .selectors
                    .iter()
                    .map(|x| {
                        format!(
                            "{}{}{}{}",
                            if x.negate { "!" } else { "" },
                            x.loc.as_deref().unwrap_or(""),
                            x.chan,
                            x.kind
                                .map(|k| format!(".{}", char::from(k)))
                                .unwrap_or_default()
                        )
                    })
                    .collect();
                s.push(':');
                s.push_str(&sels.join(" "));
            }
            s
        })
        .collect::<Vec<_>>()
        .join(",")
}
