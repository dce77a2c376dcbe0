//! ORB addresses as Antelope tools write them: `host:port`, `:port`, `host`; and any of
//! them after `tls://` for a TLS connection.
//!
//! Antelope also resolves symbolic ports (`:ingest`) through
//! `orbserver_names.pf`; orb has no such table, so a port must be a number.

use std::fmt;
use std::str::FromStr;

/// Antelope's orbserver port, used when an address names no port.
pub const DEFAULT_PORT: u16 = 6510;

/// Host used for `:port`, which Antelope reads as "this machine".
const LOCALHOST: &str = "127.0.0.1";

/// Where an orbserver listens.
///
/// Parsed from (see [`FromStr`]):
/// - `host:port`, e.g. `orb.example.org:6510` or `10.0.0.5:6580`;
/// - `:port`, meaning `127.0.0.1:port`;
/// - `host`, meaning `host:6510`;
/// - `[v6addr]:port`, and a bare IPv6 address like `::1` (more than one `:`),
///   meaning port 6510;
/// - any of these after `tls://`, e.g. `tls://orb.example.org:6510`: the same address
///   over TLS ([`OrbAddr::tls`]).
///
/// [`Display`](fmt::Display) writes `host:port`, bracketing IPv6 hosts, which
/// parses back to the same address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrbAddr {
    /// Host name or IP address, without brackets.
    pub host: String,
    /// TCP port, 1..=65535.
    pub port: u16,
    /// Written `tls://host:port`: the connection speaks TLS, and the server's
    /// certificate must be valid for `host`.
    pub tls: bool,
}

/// Why a string is not an ORB address. Every message ends with the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddrError {
    /// The string was empty.
    #[error("empty orb address; write host:port, :port or host")]
    Empty,
    /// The port was not a decimal number in 1..=65535.
    #[error(
        "bad orb address {addr:?}: port {port:?} is not a number 1..65535; write host:port, :port or host"
    )]
    BadPort {
        /// The whole rejected address.
        addr: String,
        /// The port text.
        port: String,
    },
    /// The host part was malformed.
    #[error(
        "bad orb address {addr:?}: {reason}; write host:port, :port or host ([::1]:6510 for IPv6)"
    )]
    BadHost {
        /// The whole rejected address.
        addr: String,
        /// What was wrong with the host.
        reason: &'static str,
    },
}

impl OrbAddr {
    /// An address from its parts.
    pub fn new(host: impl Into<String>, port: u16) -> OrbAddr {
        OrbAddr {
            host: host.into(),
            port,
            tls: false,
        }
    }

    /// The same address over TLS.
    pub fn with_tls(self) -> OrbAddr {
        OrbAddr { tls: true, ..self }
    }
}

impl FromStr for OrbAddr {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<OrbAddr, AddrError> {
        if let Some(rest) = s.strip_prefix("tls://") {
            return rest
                .parse::<OrbAddr>()
                .map(OrbAddr::with_tls)
                .map_err(|e| match e {
                    // The whole address, prefix included, in the message.
                    AddrError::BadPort { port, .. } => AddrError::BadPort {
                        addr: s.to_owned(),
                        port,
                    },
                    AddrError::BadHost { reason, .. } => AddrError::BadHost {
                        addr: s.to_owned(),
                        reason,
                    },
                    AddrError::Empty => AddrError::BadHost {
                        addr: s.to_owned(),
                        reason: "no host after tls://",
                    },
                });
        }
        let bad_host = |reason| AddrError::BadHost {
            addr: s.to_owned(),
            reason,
        };
        if s.is_empty() {
            return Err(AddrError::Empty);
        }
        if s.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(bad_host("it contains whitespace or control characters"));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| bad_host("missing ']' after the IPv6 host"))?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| bad_host("expected ':port' after ']'"))?,
                ),
            };
            if host.is_empty() {
                return Err(bad_host("the host between '[' and ']' is empty"));
            }
            (host, port)
        } else if s.matches(':').count() > 1 {
            // More than one ':' without brackets can only be an IPv6 host;
            // reading the last group as a port would make "::1" ambiguous.
            (s, None)
        } else {
            match s.split_once(':') {
                Some(("", port)) => (LOCALHOST, Some(port)),
                Some((host, port)) => (host, Some(port)),
                None => (s, None),
            }
        };
        if host.contains(['[', ']', '/']) {
            return Err(bad_host("the host contains '[', ']' or '/'"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => parse_port(p).ok_or_else(|| AddrError::BadPort {
                addr: s.to_owned(),
                port: p.to_owned(),
            })?,
        };
        Ok(OrbAddr::new(host, port))
    }
}

/// A decimal port in 1..=65535; 0 is refused because a client cannot connect to it.
fn parse_port(p: &str) -> Option<u16> {
    // u16::from_str accepts a leading '+', which no one means in an address.
    if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    p.parse().ok().filter(|&port| port != 0)
}

impl fmt::Display for OrbAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tls {
            f.write_str("tls://")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> OrbAddr {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(s: &str) -> AddrError {
        s.parse::<OrbAddr>().unwrap_err()
    }

    #[test]
    fn host_and_port() {
        assert_eq!(
            addr("orb.example.org:6580"),
            OrbAddr::new("orb.example.org", 6580)
        );
        assert_eq!(addr("10.0.0.5:1"), OrbAddr::new("10.0.0.5", 1));
        assert_eq!(addr("h:65535"), OrbAddr::new("h", 65535));
    }

    #[test]
    fn port_only_means_localhost() {
        assert_eq!(addr(":6580"), OrbAddr::new("127.0.0.1", 6580));
    }

    #[test]
    fn host_only_means_default_port() {
        assert_eq!(addr("anfexport"), OrbAddr::new("anfexport", DEFAULT_PORT));
        assert_eq!(addr("anfexport").port, 6510);
    }

    #[test]
    fn ipv6() {
        assert_eq!(addr("[::1]:6580"), OrbAddr::new("::1", 6580));
        assert_eq!(addr("[::1]"), OrbAddr::new("::1", 6510));
        assert_eq!(addr("::1"), OrbAddr::new("::1", 6510));
        assert_eq!(addr("fe80::1:2"), OrbAddr::new("fe80::1:2", 6510));
    }

    #[test]
    fn display_round_trips() {
        for s in ["orb.example.org:6580", "127.0.0.1:6510", "[::1]:6580"] {
            assert_eq!(addr(s).to_string(), s);
            assert_eq!(addr(&addr(s).to_string()), addr(s));
        }
        assert_eq!(addr("::1").to_string(), "[::1]:6510");
        assert_eq!(addr(":7").to_string(), "127.0.0.1:7");
        assert_eq!(addr("h").to_string(), "h:6510");
    }

    #[test]
    fn tls_prefix() {
        assert_eq!(
            addr("tls://orb.example.org:6580"),
            OrbAddr::new("orb.example.org", 6580).with_tls()
        );
        assert!(addr("tls://h").tls && addr("tls://h").port == 6510);
        assert!(addr("tls://[::1]:7").tls);
        assert!(!addr("h:7").tls);
        for s in ["tls://orb.example.org:6580", "tls://[::1]:7"] {
            assert_eq!(addr(s).to_string(), s);
        }
        assert!(matches!(err("tls://"), AddrError::BadHost { .. }));
        assert!(matches!(err("tls://h:x"), AddrError::BadPort { addr, .. } if addr == "tls://h:x"));
        // A prefix is not a host: "tls:" alone would otherwise read as host "tls".
        assert!(matches!(err("tls://h/x"), AddrError::BadHost { .. }));
    }

    #[test]
    fn empty_is_an_error() {
        assert_eq!(err(""), AddrError::Empty);
        assert_eq!(
            err("").to_string(),
            "empty orb address; write host:port, :port or host"
        );
    }

    #[test]
    fn bad_ports() {
        assert_eq!(
            err("x:y").to_string(),
            "bad orb address \"x:y\": port \"y\" is not a number 1..65535; \
             write host:port, :port or host"
        );
        for s in [
            "h:", "h:0", "h:65536", "h:+5", "h:-5", ":ingest", "[::1]:x", "[::1]:",
        ] {
            assert!(matches!(err(s), AddrError::BadPort { .. }), "{s:?}");
        }
    }

    #[test]
    fn bad_hosts() {
        for s in ["[::1", "[]:5", "[::1]5", "a b:5", "h\n", "a]:5", "a/b"] {
            assert!(matches!(err(s), AddrError::BadHost { .. }), "{s:?}");
        }
        assert_eq!(
            err("[::1").to_string(),
            "bad orb address \"[::1\": missing ']' after the IPv6 host; \
             write host:port, :port or host ([::1]:6510 for IPv6)"
        );
    }
}
