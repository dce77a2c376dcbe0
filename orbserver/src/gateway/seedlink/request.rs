//! What a client asks for before the transfer starts: the command state machine of
//! SeedLink's uni- and multi-station modes, without sockets or the ring.
//!
//! Uni-station mode: `SELECT`s (optional) then `DATA`, `FETCH` or `TIME`, which starts
//! the transfer at once, for every station. Multi-station mode: for each station
//! `STATION sta [net]`, its `SELECT`s and a `DATA`, `FETCH` or `TIME` (each answered
//! `OK`), then `END` starts the transfer.

use formats::seedlink::frame;
use formats::seedlink::v4::{self, DataStart, InfoItem};
use formats::seedlink::{Command, InfoLevel, Resume, Selector, StationPattern};
use formats::Time;

/// Where a station's data start and whether its transfer ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// `DATA` without a sequence number: from the next packet on, in real time.
    Next,
    /// `DATA n` / `FETCH n`: resume at packet `n` (see `resume.rs`).
    Resume(Resume),
    /// `TIME begin [end]`: records overlapping the window.
    Window {
        /// First time wanted.
        begin: Time,
        /// Last time wanted; `None`: continue in real time.
        end: Option<Time>,
    },
    /// SeedLink 4's `DATA seq|ALL [begin [end]]`: resume at the record `seq` names
    /// (`None`: the oldest packet), records outside `begin`..`end` left out.
    Record {
        /// The first sequence number wanted (see `formats::seedlink::v4::seq_of`).
        seq: Option<u64>,
        /// Records ending before this are not wanted.
        begin: Option<Time>,
        /// Records starting after this are not wanted.
        end: Option<Time>,
    },
}

/// One station's request.
#[derive(Debug, Clone, PartialEq)]
pub struct StationReq {
    /// Network pattern (`None`: any network).
    pub net: Option<StationPattern>,
    /// Station pattern (`None`: any station, uni-station mode).
    pub sta: Option<StationPattern>,
    /// Stream selectors (empty: every stream).
    pub selectors: Vec<Selector>,
    /// Where to start.
    pub start: Start,
    /// `FETCH`: end with `END` once the ring's current data are sent.
    pub fetch: bool,
    /// SeedLink 4 `SELECT ...:3`: the station's records go out as miniSEED 3.
    pub mseed3: bool,
}

impl StationReq {
    /// True if packets of `net`/`sta` belong to this request.
    pub fn wants_station(&self, net: &str, sta: &str) -> bool {
        self.net.as_ref().is_none_or(|p| p.matches(net))
            && self.sta.as_ref().is_none_or(|p| p.matches(sta))
    }
}

/// What the connection does after a command.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Send these bytes (possibly none) and go on reading commands.
    Reply(Vec<u8>),
    /// Send the HELLO lines.
    Hello,
    /// Send the station list (`CAT`).
    Cat,
    /// Answer an INFO request.
    Info(InfoLevel),
    /// Answer a SeedLink 4 INFO request (JSON).
    InfoV4 {
        /// What is asked for.
        item: InfoItem,
        /// Only stations matching (network, station).
        station: Option<(StationPattern, StationPattern)>,
        /// Only streams matching.
        stream: Option<Selector>,
    },
    /// Record what the client says it is (`USERAGENT`), then send `reply`.
    UserAgent {
        /// The client's words.
        agent: String,
        /// `OK`, or nothing in BATCH mode.
        reply: Vec<u8>,
    },
    /// Start the transfer of these requests.
    Start(Vec<StationReq>),
    /// Close the connection (`BYE`).
    Close,
}

/// The negotiation state of one connection.
#[derive(Debug, Default)]
pub struct Negotiation {
    /// The client switched to SeedLink 4 (`SLPROTO 4.0`).
    pub v4: bool,
    /// The client announced `EXTREPLY`: ERROR replies carry a reason.
    pub extreply: bool,
    /// `BATCH` mode: no replies to STATION, SELECT, DATA, FETCH and TIME.
    batch: bool,
    /// Stations complete in multi-station mode.
    stations: Vec<StationReq>,
    /// The station being configured (after STATION, before its DATA/FETCH/TIME).
    current: Option<StationReq>,
    /// SELECTs given outside multi-station mode.
    uni_selectors: Vec<Selector>,
    /// One of them asked for miniSEED 3.
    uni_mseed3: bool,
    /// The last STATION was refused: its SELECT, DATA, FETCH and TIME get `ERROR` (they
    /// must not fall back to uni-station mode and start a transfer of every station).
    refused: bool,
}

impl Negotiation {
    /// An ERROR reply: SeedLink 4's `ERROR CODE reason`, or in 3.1 with `reason` if
    /// the client asked for reasons.
    pub fn error(&self, code: &str, reason: &str) -> Vec<u8> {
        if self.v4 {
            return v4::error(code, reason);
        }
        frame::error(self.extreply.then_some((code, reason)))
    }

    /// `OK`, unless in BATCH mode.
    fn ok(&self) -> Step {
        Step::Reply(self.ok_bytes())
    }

    /// `OK` as bytes, or nothing in BATCH mode.
    pub fn ok_bytes(&self) -> Vec<u8> {
        if self.batch {
            Vec::new()
        } else {
            frame::OK.to_vec()
        }
    }

    fn multi(&self) -> bool {
        self.current.is_some() || !self.stations.is_empty() || self.refused
    }

    /// Refuses a `STATION` whose station the ring does not have: the station before it
    /// stays configured, the commands up to the next STATION or END are refused too,
    /// and the negotiation goes on. The reply is an ERROR even in BATCH mode.
    pub fn refuse_station(
        &mut self,
        sta: &StationPattern,
        net: Option<&StationPattern>,
    ) -> Vec<u8> {
        if let Some(open) = self.current.take() {
            self.stations.push(open);
        }
        self.refused = true;
        let id = format!("{}_{}", net.map_or("*", |n| n.as_str()), sta.as_str());
        self.error("ARGUMENTS", &format!("station {id} not found"))
    }

    /// Handles one command.
    pub fn handle(&mut self, cmd: Command) -> Step {
        match cmd {
            Command::Hello => Step::Hello,
            Command::Cat => Step::Cat,
            Command::Bye => Step::Close,
            Command::Batch => {
                self.batch = true;
                Step::Reply(frame::OK.to_vec())
            }
            Command::Info(level) => Step::Info(level),
            Command::InfoV4 {
                item,
                station,
                stream,
            } => Step::InfoV4 {
                item,
                station,
                stream,
            },
            Command::SlProto(version) => match version.as_str() {
                "4.0" => {
                    self.v4 = true;
                    self.ok()
                }
                // Back to 3.1, as ringserver allows (its replies, frames and numbers).
                "3.0" | "3.1" => {
                    self.v4 = false;
                    self.ok()
                }
                other => Step::Reply(self.error(
                    "UNSUPPORTED",
                    &format!("protocol version {other}: this server speaks 4.0 and 3.1"),
                )),
            },
            // The session answers AUTH (it needs the access rules); this is the answer
            // of a server that takes no credentials.
            Command::Auth(req) => Step::Reply(self.error(
                "UNSUPPORTED",
                &format!(
                    "AUTH {}: no authentication is configured on this server",
                    req.method
                ),
            )),
            Command::DataV4 { start, begin, end } => {
                let start = match start {
                    DataStart::Next => match begin {
                        Some(begin) => Start::Window { begin, end },
                        None => Start::Next,
                    },
                    DataStart::All => Start::Record {
                        seq: None,
                        begin,
                        end,
                    },
                    DataStart::Seq(seq) => Start::Record {
                        seq: Some(seq),
                        begin,
                        end,
                    },
                };
                self.action(start, false)
            }
            Command::EndFetch => {
                let step = self.handle(Command::End);
                match step {
                    Step::Start(mut reqs) => {
                        reqs.iter_mut().for_each(|r| r.fetch = true);
                        Step::Start(reqs)
                    }
                    other => other,
                }
            }
            Command::UserAgent(agent) => Step::UserAgent {
                agent,
                reply: self.ok_bytes(),
            },
            Command::Capabilities(caps) => {
                self.extreply |= caps.iter().any(|c| c == "EXTREPLY");
                Step::Reply(frame::OK.to_vec())
            }
            Command::Station { sta, net } => {
                self.refused = false;
                if let Some(open) = self.current.take() {
                    // A STATION without DATA/FETCH/TIME: taken as DATA (from the next packet).
                    self.stations.push(open);
                }
                self.current = Some(StationReq {
                    net,
                    sta: Some(sta),
                    selectors: Vec::new(),
                    start: Start::Next,
                    fetch: false,
                    mseed3: false,
                });
                self.ok()
            }
            Command::Select(_) | Command::SelectMseed3(_) if self.refused => {
                Step::Reply(self.error("UNEXPECTED", "SELECT after a refused STATION"))
            }
            Command::Select(sel) => {
                let list = match &mut self.current {
                    Some(st) => &mut st.selectors,
                    None => &mut self.uni_selectors,
                };
                match sel {
                    Some(s) => list.push(s),
                    None => list.clear(),
                }
                self.ok()
            }
            Command::SelectMseed3(sel) => {
                match &mut self.current {
                    Some(st) => {
                        st.selectors.push(sel);
                        st.mseed3 = true;
                    }
                    None => {
                        self.uni_selectors.push(sel);
                        self.uni_mseed3 = true;
                    }
                }
                self.ok()
            }
            Command::Data(resume) => self.action(resume.map_or(Start::Next, Start::Resume), false),
            Command::Fetch(resume) => self.action(resume.map_or(Start::Next, Start::Resume), true),
            Command::Time { begin, end } => self.action(Start::Window { begin, end }, false),
            Command::End => {
                self.refused = false;
                if let Some(open) = self.current.take() {
                    self.stations.push(open);
                }
                if self.stations.is_empty() {
                    return Step::Reply(self.error("UNEXPECTED", "END without any STATION"));
                }
                Step::Start(std::mem::take(&mut self.stations))
            }
        }
    }

    fn action(&mut self, start: Start, fetch: bool) -> Step {
        if self.refused {
            return Step::Reply(
                self.error("UNEXPECTED", "DATA, FETCH or TIME after a refused STATION"),
            );
        }
        if let Some(mut st) = self.current.take() {
            st.start = start;
            st.fetch = fetch;
            self.stations.push(st);
            return self.ok();
        }
        if self.multi() {
            return Step::Reply(
                self.error("UNEXPECTED", "DATA, FETCH or TIME needs a STATION first"),
            );
        }
        // Uni-station mode: every station, no reply, the transfer starts now.
        let all = StationReq {
            net: None,
            sta: None,
            selectors: std::mem::take(&mut self.uni_selectors),
            start,
            fetch,
            mseed3: self.uni_mseed3,
        };
        Step::Start(vec![all])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::seedlink::parse;

    fn run(n: &mut Negotiation, line: &str) -> Step {
        n.handle(parse(line.as_bytes()).unwrap().unwrap())
    }

    #[test]
    fn multi_station_requests_collect_until_end() {
        let mut n = Negotiation::default();
        assert_eq!(
            run(&mut n, "STATION STA01 XX"),
            Step::Reply(b"OK\r\n".to_vec())
        );
        assert_eq!(run(&mut n, "SELECT BHZ"), Step::Reply(b"OK\r\n".to_vec()));
        assert_eq!(run(&mut n, "FETCH"), Step::Reply(b"OK\r\n".to_vec()));
        assert_eq!(
            run(&mut n, "STATION STA02 XX"),
            Step::Reply(b"OK\r\n".to_vec())
        );
        assert_eq!(
            run(&mut n, "TIME 2026,1,1,0,0,0"),
            Step::Reply(b"OK\r\n".to_vec())
        );
        let Step::Start(reqs) = run(&mut n, "END") else {
            panic!("END starts")
        };
        assert_eq!(reqs.len(), 2);
        assert!(reqs[0].fetch && reqs[0].selectors.len() == 1);
        assert!(reqs[0].wants_station("XX", "STA01") && !reqs[0].wants_station("XX", "STA02"));
        assert!(matches!(reqs[1].start, Start::Window { end: None, .. }));
    }

    #[test]
    fn uni_station_data_starts_at_once_for_every_station() {
        let mut n = Negotiation::default();
        run(&mut n, "SELECT BH?");
        let Step::Start(reqs) = run(&mut n, "DATA") else {
            panic!("DATA starts")
        };
        assert!(reqs[0].wants_station("YY", "ANY"));
        assert_eq!(reqs[0].selectors.len(), 1);
    }

    #[test]
    fn batch_mode_sends_no_ok() {
        let mut n = Negotiation::default();
        assert_eq!(run(&mut n, "BATCH"), Step::Reply(b"OK\r\n".to_vec()));
        assert_eq!(run(&mut n, "STATION STA01 XX"), Step::Reply(Vec::new()));
        assert_eq!(run(&mut n, "DATA"), Step::Reply(Vec::new()));
    }

    #[test]
    fn errors_carry_reasons_only_after_extreply() {
        let mut n = Negotiation::default();
        assert_eq!(run(&mut n, "END"), Step::Reply(b"ERROR\r\n".to_vec()));
        run(&mut n, "CAPABILITIES EXTREPLY");
        let Step::Reply(r) = run(&mut n, "END") else {
            panic!()
        };
        assert!(r.starts_with(b"ERROR\rUNEXPECTED "), "{r:?}");
    }

    #[test]
    fn a_refused_station_refuses_its_commands_and_keeps_the_others() {
        let mut n = Negotiation::default();
        run(&mut n, "STATION STA01 XX");
        run(&mut n, "DATA");
        let sta = StationPattern::new("NOPE", 5).unwrap();
        let net = StationPattern::new("XX", 2).unwrap();
        assert_eq!(n.refuse_station(&sta, Some(&net)), b"ERROR\r\n");
        // Its DATA must not start a uni-station transfer of everything.
        assert_eq!(
            run(&mut n, "SELECT BHZ"),
            Step::Reply(b"ERROR\r\n".to_vec())
        );
        assert_eq!(run(&mut n, "DATA"), Step::Reply(b"ERROR\r\n".to_vec()));
        let Step::Start(reqs) = run(&mut n, "END") else {
            panic!("END starts the stations accepted")
        };
        assert_eq!(reqs.len(), 1);
        assert!(reqs[0].wants_station("XX", "STA01"));
        // With EXTREPLY the reason names the station; BATCH does not hide the ERROR.
        let mut n = Negotiation::default();
        run(&mut n, "CAPABILITIES EXTREPLY");
        run(&mut n, "BATCH");
        assert_eq!(
            n.refuse_station(&sta, None),
            b"ERROR\rARGUMENTS station *_NOPE not found\r\n"
        );
        // A refused first STATION leaves no uni-station fallback either.
        assert_eq!(
            run(&mut n, "TIME 2026,1,1,0,0,0"),
            Step::Reply(
                b"ERROR\rUNEXPECTED DATA, FETCH or TIME after a refused STATION\r\n".to_vec()
            )
        );
        // The next STATION is taken again.
        assert_eq!(run(&mut n, "STATION STA01 XX"), Step::Reply(Vec::new()));
        assert_eq!(run(&mut n, "DATA"), Step::Reply(Vec::new()));
    }

    #[test]
    fn slproto_switches_between_versions_and_refuses_others() {
        let mut n = Negotiation::default();
        assert_eq!(
            run(&mut n, "SLPROTO 4.1"),
            Step::Reply(b"ERROR\r\n".to_vec())
        );
        assert!(!n.v4);
        assert_eq!(run(&mut n, "SLPROTO 4.0"), Step::Reply(b"OK\r\n".to_vec()));
        assert!(n.v4);
        let Step::Reply(r) = n.handle(formats::seedlink::v4::parse(b"SLPROTO 5").unwrap().unwrap())
        else {
            panic!()
        };
        assert!(r.starts_with(b"ERROR UNSUPPORTED "), "{r:?}");
        assert_eq!(run(&mut n, "SLPROTO 3.1"), Step::Reply(b"OK\r\n".to_vec()));
        assert!(!n.v4);
    }

    #[test]
    fn useragent_is_passed_on_and_answered_ok_unless_batch() {
        let mut n = Negotiation::default();
        assert_eq!(
            run(&mut n, "USERAGENT slinktool/5.0 libslink/4.3"),
            Step::UserAgent {
                agent: "slinktool/5.0 libslink/4.3".into(),
                reply: b"OK\r\n".to_vec()
            }
        );
        run(&mut n, "BATCH");
        assert_eq!(
            run(&mut n, "USERAGENT x"),
            Step::UserAgent {
                agent: "x".into(),
                reply: Vec::new()
            }
        );
    }
}
