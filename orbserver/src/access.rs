//! Access rules: who may connect, read, write and administer, by address (CIDR lists)
//! and by token. The `[access]` table of the config file is parsed and checked here into
//! [`AccessRules`]; the server asks the rules at accept ([`AccessRules::admits`]), at
//! HELLO ([`AccessRules::authenticate`]) and, through a [`Grant`], at each request.
//! docs/SECURITY.md is the operator's view of the same rules.
//!
//! Tokens are stored as SHA-256 hashes, never in clear. SHA-256 rather than a password
//! hash (argon2, bcrypt): tokens are long random strings an operator generates, not
//! passwords people choose, so there is no small space to brute-force, and a slow hash
//! would make every HELLO cost tens of milliseconds of CPU, a lever for anyone who can
//! open connections.

use std::net::IpAddr;

use formats::SrcSelect;
use ipnet::IpNet;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The networks the `write` and `admin` lists default to: loopback only, as ringserver
/// does, so a fresh server takes packets only from its own machine.
pub const LOOPBACK: [&str; 2] = ["127.0.0.0/8", "::1/128"];

/// Shortest token `orbserver --hash-token` accepts: 16 bytes of random text is beyond
/// guessing; shorter ones invite words.
pub const MIN_TOKEN_LEN: usize = 16;

/// Longest token: HELLO carries it as a str8.
pub const MAX_TOKEN_LEN: usize = 255;

/// The `[access]` table as written; every key optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessFile {
    /// Networks that may connect; absent: every address.
    pub connect_allow: Option<Vec<String>>,
    /// Networks that may not connect, even if `connect_allow` lists them.
    #[serde(default)]
    pub connect_deny: Vec<String>,
    /// Networks that may write without a token; absent: loopback.
    pub write: Option<Vec<String>>,
    /// Networks that may read without a token; absent: every address that may connect.
    pub read: Option<Vec<String>>,
    /// Networks with admin access (CLIENTS, KILL, RELOAD); absent: loopback.
    pub admin: Option<Vec<String>>,
    /// Tokens.
    #[serde(default, rename = "token")]
    pub tokens: Vec<TokenFile>,
}

/// One `[[access.token]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    /// A label for logs and CLIENTS, e.g. the station.
    pub name: String,
    /// Hex SHA-256 of the token, as `orbserver --hash-token` prints it.
    pub sha256: String,
    /// Srcnames the token may put, a regular expression over the whole srcname;
    /// absent: the token does not grant writing.
    pub write: Option<String>,
    /// The token grants reading from any address that may connect.
    #[serde(default)]
    pub read: bool,
    /// The token grants admin access.
    #[serde(default)]
    pub admin: bool,
}

/// Why an `[access]` table was refused: names the key, the value and what to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("access.{key} = {value:?}: {why}")]
pub struct AccessError {
    /// The key, e.g. `connect_deny` or `token[2].sha256`.
    pub key: String,
    /// The value as written.
    pub value: String,
    /// What is wrong and what to write instead.
    pub why: String,
}

/// A token, checked and compiled.
#[derive(Debug, Clone)]
struct Token {
    name: String,
    hash: [u8; 32],
    write: Option<SrcSelect>,
    write_expr: String,
    read: bool,
    admin: bool,
}

/// The access rules in force, checked and compiled.
#[derive(Debug, Clone)]
pub struct AccessRules {
    connect_allow: Option<Vec<IpNet>>,
    connect_deny: Vec<IpNet>,
    write: Vec<IpNet>,
    read: Option<Vec<IpNet>>,
    admin: Vec<IpNet>,
    tokens: Vec<Token>,
}

impl Default for AccessRules {
    /// Everyone may connect and read; loopback may write and administer; no tokens.
    fn default() -> AccessRules {
        AccessRules::from_file(&AccessFile::default()).expect("the defaults are valid")
    }
}

/// The SHA-256 of a token, as the config stores it.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The config line for a token: `sha256 = "<hex>"`.
pub fn token_hash_line(token: &str) -> String {
    format!("sha256 = \"{}\"", hex::encode(token_hash(token)))
}

fn nets(key: &str, list: &[String]) -> Result<Vec<IpNet>, AccessError> {
    list.iter()
        .map(|s| {
            let s = s.trim();
            // A bare address means that one host.
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| AccessError {
                    key: key.to_string(),
                    value: s.to_string(),
                    why: "not an address or CIDR network; write e.g. 10.0.0.0/8, 192.168.1.7 or ::1/128".into(),
                })
        })
        .collect()
}

fn contains(list: &[IpNet], ip: IpAddr) -> bool {
    list.iter().any(|n| n.contains(&ip))
}

/// The session's access, decided from its address and token against one set of rules.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// May read.
    pub read: bool,
    /// May write: what.
    pub write: WriteGrant,
    /// May use admin requests (CLIENTS, KILL, RELOAD).
    pub admin: bool,
}

/// What a session may write.
#[derive(Debug, Clone, Default)]
pub enum WriteGrant {
    /// Nothing.
    #[default]
    None,
    /// Any srcname (the address is in `write`).
    Any,
    /// The srcnames a token covers.
    Token {
        /// The token's name.
        name: String,
        /// Its expression as written, for messages.
        expr: String,
        /// Compiled.
        select: SrcSelect,
    },
}

/// Why a PUT's srcname is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteRefusal {
    /// The session may not write at all.
    NotAllowed,
    /// The token does not cover this srcname; carries a message.
    ForeignSrcname(String),
}

impl WriteGrant {
    /// Whether `srcname` may be put.
    pub fn check(&self, srcname: &str) -> Result<(), WriteRefusal> {
        match self {
            WriteGrant::None => Err(WriteRefusal::NotAllowed),
            WriteGrant::Any => Ok(()),
            WriteGrant::Token { name, expr, select } => {
                if select.matches(srcname) {
                    Ok(())
                } else {
                    Err(WriteRefusal::ForeignSrcname(format!(
                        "token {name:?} may put only srcnames matching {expr:?}, not {srcname:?}"
                    )))
                }
            }
        }
    }

    /// True if anything may be written.
    pub fn any(&self) -> bool {
        !matches!(self, WriteGrant::None)
    }
}

impl AccessRules {
    /// Checks and compiles an `[access]` table.
    pub fn from_file(f: &AccessFile) -> Result<AccessRules, AccessError> {
        let loopback: Vec<String> = LOOPBACK.iter().map(|s| s.to_string()).collect();
        let mut tokens: Vec<Token> = Vec::with_capacity(f.tokens.len());
        for (i, t) in f.tokens.iter().enumerate() {
            let err = |field: &str, value: &str, why: String| AccessError {
                key: format!("token[{i}].{field}"),
                value: value.to_string(),
                why,
            };
            if t.name.trim().is_empty() {
                return Err(err(
                    "name",
                    &t.name,
                    "give each token a name (e.g. its station) for logs".into(),
                ));
            }
            let mut hash = [0u8; 32];
            hex::decode_to_slice(t.sha256.trim(), &mut hash).map_err(|_| {
                err(
                    "sha256",
                    &t.sha256,
                    "not 64 hex digits; paste the line `orbserver --hash-token` prints".into(),
                )
            })?;
            if let Some(other) = tokens.iter().find(|o| o.hash == hash) {
                return Err(err(
                    "sha256",
                    &t.sha256,
                    format!(
                        "the same token as {:?}; give each station its own token",
                        other.name
                    ),
                ));
            }
            let write = match &t.write {
                None => None,
                Some(e) if e.is_empty() => return Err(err(
                    "write",
                    e,
                    "empty; write the srcnames the token may put, e.g. XX_STA01_.* (or .* for all)"
                        .into(),
                )),
                Some(e) => Some(
                    SrcSelect::new(Some(e), None)
                        .map_err(|why| err("write", e, why.to_string()))?,
                ),
            };
            if write.is_none() && !t.read && !t.admin {
                return Err(err(
                    "name",
                    &t.name,
                    "the token grants nothing; give it write = \"REGEX\", read = true or admin = true".into(),
                ));
            }
            tokens.push(Token {
                name: t.name.clone(),
                hash,
                write,
                write_expr: t.write.clone().unwrap_or_default(),
                read: t.read,
                admin: t.admin,
            });
        }
        Ok(AccessRules {
            connect_allow: f
                .connect_allow
                .as_deref()
                .map(|l| nets("connect_allow", l))
                .transpose()?,
            connect_deny: nets("connect_deny", &f.connect_deny)?,
            write: nets("write", f.write.as_deref().unwrap_or(&loopback))?,
            read: f.read.as_deref().map(|l| nets("read", l)).transpose()?,
            admin: nets("admin", f.admin.as_deref().unwrap_or(&loopback))?,
            tokens,
        })
    }

    /// Whether `ip` may connect; `Err` carries the reply for the client.
    pub fn admits(&self, ip: IpAddr) -> Result<(), String> {
        let ip = ip.to_canonical();
        let allowed = self.connect_allow.as_ref().is_none_or(|l| contains(l, ip));
        if allowed && !contains(&self.connect_deny, ip) {
            Ok(())
        } else {
            Err(format!(
                "address {ip} may not connect to this orb; ask its operator to add it to access.connect_allow"
            ))
        }
    }

    /// True if `ip` is in the `write` list (for the per-address limit's exemption).
    pub fn writes_by_address(&self, ip: IpAddr) -> bool {
        contains(&self.write, ip.to_canonical())
    }

    /// Finds the token whose hash is `hash`. Every configured hash is compared in
    /// constant time, and all of them are compared, so the time taken tells nothing
    /// about how close a guess was.
    fn find(&self, hash: &[u8; 32]) -> Option<&Token> {
        let mut found = None;
        for t in &self.tokens {
            if bool::from(t.hash.ct_eq(hash)) {
                found = Some(t);
            }
        }
        found
    }

    /// Checks HELLO's token: `Ok(None)` without one, `Ok(Some(hash))` for a known
    /// token, `Err(message)` for an unknown one. The session keeps the hash, not the
    /// token, so a reload can re-decide its rights.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Option<[u8; 32]>, String> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let hash = token_hash(token);
        match self.find(&hash) {
            Some(_) => Ok(Some(hash)),
            None => Err(
                "the token sent is not known to this orb; check ORB_TOKEN, or ask the operator for a token"
                    .into(),
            ),
        }
    }

    /// The token name for a hash, for logs and CLIENTS.
    pub fn token_name(&self, hash: &[u8; 32]) -> Option<&str> {
        self.find(hash).map(|t| t.name.as_str())
    }

    /// What a session from `ip` with the token `hash` may do under these rules. A token
    /// that a reload removed grants nothing any more.
    pub fn grant(&self, ip: IpAddr, hash: Option<&[u8; 32]>) -> Grant {
        let ip = ip.to_canonical();
        let token = hash.and_then(|h| self.find(h));
        // A token's srcname binding wins over the address: a station that presents its
        // token is held to its srcnames even from a trusted address.
        let write = match token.and_then(|t| t.write.as_ref().map(|s| (t, s))) {
            Some((t, select)) => WriteGrant::Token {
                name: t.name.clone(),
                expr: t.write_expr.clone(),
                select: select.clone(),
            },
            None if contains(&self.write, ip) => WriteGrant::Any,
            None => WriteGrant::None,
        };
        Grant {
            read: self.read.as_ref().is_none_or(|l| contains(l, ip))
                || token.is_some_and(|t| t.read),
            write,
            admin: contains(&self.admin, ip) || token.is_some_and(|t| t.admin),
        }
    }

    /// Number of tokens, for the log.
    pub fn ntokens(&self) -> usize {
        self.tokens.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(toml_text: &str) -> Result<AccessRules, AccessError> {
        let f: AccessFile = toml::from_str(toml_text).expect("valid TOML");
        AccessRules::from_file(&f)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const STA_TOKEN: &str = "station-01-secret-token";

    fn sta_rules() -> AccessRules {
        rules(&format!(
            "write = []\n[[token]]\nname = \"XX_STA01\"\n{}\nwrite = \"XX_STA01_.*\"\n",
            token_hash_line(STA_TOKEN)
        ))
        .unwrap()
    }

    #[test]
    fn defaults_let_everyone_read_and_loopback_write_and_administer() {
        let r = AccessRules::default();
        for a in ["127.0.0.1", "10.1.2.3", "::1", "2001:db8::1"] {
            assert!(r.admits(ip(a)).is_ok(), "{a}");
            assert!(r.grant(ip(a), None).read, "{a}");
        }
        for (a, local) in [("127.0.0.2", true), ("::1", true), ("10.1.2.3", false)] {
            let g = r.grant(ip(a), None);
            assert_eq!((g.write.any(), g.admin), (local, local), "{a}");
        }
        // An IPv4 peer seen through a dual-stack socket is still loopback.
        assert!(r.grant(ip("::ffff:127.0.0.1"), None).write.any());
    }

    #[test]
    fn connect_deny_beats_connect_allow() {
        let r = rules(
            "connect_allow = [\"10.0.0.0/8\", \"127.0.0.1\"]\nconnect_deny = [\"10.9.0.0/16\"]",
        )
        .unwrap();
        assert!(r.admits(ip("10.1.1.1")).is_ok());
        assert!(r.admits(ip("127.0.0.1")).is_ok());
        let msg = r.admits(ip("10.9.1.1")).unwrap_err();
        assert!(
            msg.contains("10.9.1.1") && msg.contains("connect_allow"),
            "{msg}"
        );
        assert!(r.admits(ip("192.168.1.1")).is_err());
        assert!(r.admits(ip("127.0.0.2")).is_err());
    }

    #[test]
    fn a_token_binds_its_srcnames_even_from_a_writing_address() {
        let r = sta_rules();
        let h = r.authenticate(Some(STA_TOKEN)).unwrap().unwrap();
        assert_eq!(r.token_name(&h), Some("XX_STA01"));
        for from in ["10.1.2.3", "127.0.0.1"] {
            let g = r.grant(ip(from), Some(&h));
            assert_eq!(g.write.check("XX_STA01_BHZ/MGENC"), Ok(()));
            // Anchored like select: a prefix or an embedded match is not enough.
            for foreign in ["YY_STA01_BHZ", "AXX_STA01_BHZ", "XX_STA02_BHZ"] {
                match g.write.check(foreign) {
                    Err(WriteRefusal::ForeignSrcname(m)) => {
                        assert!(m.contains("XX_STA01") && m.contains(foreign), "{m}")
                    }
                    other => panic!("{foreign}: {other:?}"),
                }
            }
        }
        // write = [] : without a token nobody writes, not even loopback.
        assert_eq!(
            r.grant(ip("127.0.0.1"), None).write.check("XX_STA01_BHZ"),
            Err(WriteRefusal::NotAllowed)
        );
    }

    #[test]
    fn unknown_and_empty_tokens() {
        let r = sta_rules();
        assert!(r
            .authenticate(Some("station-01-secret-tokeN"))
            .unwrap_err()
            .contains("ORB_TOKEN"));
        assert_eq!(r.authenticate(None), Ok(None));
        assert_eq!(r.authenticate(Some("")), Ok(None));
    }

    #[test]
    fn a_reload_that_drops_a_token_takes_its_rights() {
        let h = token_hash(STA_TOKEN);
        assert!(sta_rules().grant(ip("10.0.0.1"), Some(&h)).write.any());
        let after = rules("write = []").unwrap();
        assert!(!after.grant(ip("10.0.0.1"), Some(&h)).write.any());
    }

    #[test]
    fn read_list_requires_a_read_token_elsewhere() {
        let line = token_hash_line("partner-read-token-123");
        let r = rules(&format!(
            "read = [\"192.168.0.0/16\"]\n[[token]]\nname = \"partner\"\n{line}\nread = true\n"
        ))
        .unwrap();
        assert!(r.grant(ip("192.168.4.4"), None).read);
        assert!(!r.grant(ip("10.0.0.1"), None).read);
        let h = r.authenticate(Some("partner-read-token-123")).unwrap();
        assert!(r.grant(ip("10.0.0.1"), h.as_ref()).read);
        assert!(!r.grant(ip("10.0.0.1"), h.as_ref()).write.any());
    }

    #[test]
    fn admin_by_list_or_token() {
        let line = token_hash_line("operator-admin-token-1");
        let r = rules(&format!(
            "admin = []\n[[token]]\nname = \"ops\"\n{line}\nadmin = true\n"
        ))
        .unwrap();
        assert!(!r.grant(ip("127.0.0.1"), None).admin);
        let h = r.authenticate(Some("operator-admin-token-1")).unwrap();
        assert!(r.grant(ip("127.0.0.1"), h.as_ref()).admin);
    }

    #[test]
    fn bad_tables_name_the_key_and_what_to_write() {
        let good = token_hash_line("x-token-0123456789");
        for (text, want) in [
            ("connect_deny = [\"10.0.0.0/33\"]", "access.connect_deny"),
            ("write = [\"localhost\"]", "CIDR"),
            ("admin = [\"1.2.3\"]", "access.admin"),
            ("[[token]]\nname = \"a\"\nsha256 = \"abc\"\nread = true", "--hash-token"),
            ("[[token]]\nname = \"a\"\nsha256 = \"zz\"\nread = true", "token[0].sha256"),
            (&format!("[[token]]\nname = \"a\"\n{good}\nwrite = \"XX_(\""), "token[0].write"),
            (&format!("[[token]]\nname = \"a\"\n{good}\nwrite = \"\""), "empty"),
            (&format!("[[token]]\nname = \"a\"\n{good}"), "grants nothing"),
            (&format!("[[token]]\nname = \"\"\n{good}\nread = true"), "name"),
            (
                &format!("[[token]]\nname = \"a\"\n{good}\nread = true\n[[token]]\nname = \"b\"\n{good}\nread = true"),
                "same token as \"a\"",
            ),
        ] {
            let e = rules(text).unwrap_err().to_string();
            assert!(e.contains(want) && !e.contains('\n'), "{text}: {e}");
        }
    }

    #[test]
    fn hash_line_is_what_the_config_takes() {
        let line = token_hash_line("abc");
        // SHA-256("abc"), the FIPS 180-2 test vector.
        assert_eq!(
            line,
            "sha256 = \"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\""
        );
    }
}
