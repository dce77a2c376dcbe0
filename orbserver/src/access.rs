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
//!
//! Users' passwords (`[[access.user]]`, DataLink and SeedLink `AUTH USERPASS`) are the
//! opposite case: people choose them, from a space small enough to search, so a stolen
//! config must not make that search cheap. They are stored as argon2id PHC strings
//! (`orbserver --hash-password`), and the per-address limit on failed attempts
//! ([`AuthLimit`]) bounds the CPU a guesser can make the server spend.
//!
//! A JWT (`AUTH JWT`, HTTP `Authorization: Bearer`) is checked against the HS256 secret
//! in `[access.jwt]`; its claims carry the rights ([`JwtClaims`]). A client certificate
//! verified against a listener's `client_ca` names an `[[access.cert]]` by its subject
//! CN. Every way in ends in one [`Identity`], and every identity in the same [`Grant`].

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHashString, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};

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

/// The `[access]` table's address lists and tokens, as written; every key optional.
/// (The whole table, with users, certificates and JWT, is [`AccessTable`].)
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

impl From<AccessFile> for AccessTable {
    fn from(f: AccessFile) -> AccessTable {
        AccessTable {
            connect_allow: f.connect_allow,
            connect_deny: f.connect_deny,
            write: f.write,
            read: f.read,
            admin: f.admin,
            tokens: f.tokens,
            ..AccessTable::default()
        }
    }
}

/// The whole `[access]` table as written; every key optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessTable {
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
    /// Users with passwords (DataLink and SeedLink `AUTH USERPASS`).
    #[serde(default, rename = "user")]
    pub users: Vec<UserFile>,
    /// Client-certificate identities, by subject CN.
    #[serde(default, rename = "cert")]
    pub certs: Vec<CertFile>,
    /// The key JWTs are checked with; absent: JWTs are refused.
    pub jwt: Option<JwtFile>,
    /// Failed authentications from one address within `auth_fail_window_secs` after
    /// which its further attempts are refused unchecked until the window ends; 0 turns
    /// the limit off. Absent: 5.
    pub auth_fail_limit: Option<u32>,
    /// The window of `auth_fail_limit`, seconds. Absent: 60.
    pub auth_fail_window_secs: Option<u64>,
}

/// One `[[access.user]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFile {
    /// The user name the client sends.
    pub name: String,
    /// The password's argon2 PHC string, as `orbserver --hash-password` prints it.
    pub argon2: String,
    /// Srcnames the user may put (a regular expression over the whole srcname).
    pub write: Option<String>,
    /// The user may read from any address that may connect.
    #[serde(default)]
    pub read: bool,
    /// The user has admin access.
    #[serde(default)]
    pub admin: bool,
}

/// One `[[access.cert]]` entry as written: a client certificate's subject CN.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertFile {
    /// The certificate's subject common name.
    pub cn: String,
    /// Srcnames the certificate's holder may put.
    pub write: Option<String>,
    /// The holder may read from any address that may connect.
    #[serde(default)]
    pub read: bool,
    /// The holder has admin access.
    #[serde(default)]
    pub admin: bool,
}

/// `[access.jwt]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtFile {
    /// A file holding the HS256 secret (at least 32 bytes; a trailing newline is not
    /// part of it); relative paths are relative to the config file.
    pub secret_file: PathBuf,
    /// If set, a JWT's `iss` must be this.
    pub issuer: Option<String>,
    /// If set, a JWT's `aud` must include this.
    pub audience: Option<String>,
}

/// Shortest JWT secret: HS256's key should be as long as its output (RFC 7518 3.2).
pub const MIN_JWT_SECRET_LEN: usize = 32;

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

/// What one identity (token, user, certificate, JWT) may do, checked and compiled.
#[derive(Debug, Clone)]
pub struct Principal {
    /// How the identity shows in logs, CLIENTS and refusals: `token:XX_STA01`.
    label: String,
    write: Option<SrcSelect>,
    write_expr: String,
    read: bool,
    admin: bool,
}

/// A token, checked and compiled.
#[derive(Debug, Clone)]
struct Token {
    hash: [u8; 32],
    who: Principal,
}

/// A user, checked.
#[derive(Debug, Clone)]
struct User {
    name: String,
    hash: PasswordHashString,
    who: Principal,
}

/// The JWT key in force.
#[derive(Clone)]
struct JwtKey {
    key: jsonwebtoken::DecodingKey,
    /// SHA-256 of the secret: a JWT identity holds it, so a reload that changes the
    /// secret takes the rights of sessions admitted with the old one.
    fingerprint: [u8; 32],
    validation: jsonwebtoken::Validation,
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKey(not shown)")
    }
}

/// The claims a JWT carries (docs/SECURITY.md, "JWT"). `sub` and `exp` are required.
#[derive(Debug, Clone, Deserialize)]
pub struct JwtClaims {
    /// Who the token was issued to: shown as `jwt:SUB`.
    pub sub: String,
    /// Srcnames the holder may put, a regular expression over the whole srcname.
    #[serde(default)]
    pub write: Option<String>,
    /// simpledali's name for `write`, taken when `write` is absent.
    #[serde(default)]
    pub wpat: Option<String>,
    /// The holder may read from any address that may connect.
    #[serde(default)]
    pub read: bool,
    /// The holder has admin access.
    #[serde(default)]
    pub admin: bool,
}

/// A verified JWT's rights and the key that verified it.
#[derive(Debug, Clone)]
pub struct JwtGrant {
    key: [u8; 32],
    who: Principal,
}

/// Who a session proved to be. Sessions keep this, not a secret, so that a reload can
/// re-decide their rights: a token, user or certificate removed from the config grants
/// nothing any more, nor does a JWT whose key was changed.
#[derive(Debug, Clone)]
pub enum Identity {
    /// A token, by its SHA-256.
    Token([u8; 32]),
    /// A user who gave the right password.
    User(String),
    /// A client certificate's subject CN that an `[[access.cert]]` names.
    Cert(String),
    /// A JWT verified with the key in force.
    Jwt(Arc<JwtGrant>),
}

/// The per-address limit on failed authentications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthLimit {
    /// Failures in a window after which attempts are refused; 0: no limit.
    pub failures: u32,
    /// The window.
    pub window: Duration,
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
    users: Vec<User>,
    certs: Vec<Principal>,
    jwt: Option<JwtKey>,
    limit: AuthLimit,
}

/// The argon2id PHC string for a password, with a fresh random salt, as
/// `[[access.user]]` stores it.
pub fn password_hash(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password failed: {e}"))
}

/// The config line for a password: `argon2 = "$argon2id$..."`.
pub fn password_hash_line(password: &str) -> Result<String, String> {
    password_hash(password).map(|h| format!("argon2 = \"{h}\""))
}

/// A hash of a password nobody has, verified against when the user is unknown so that
/// a wrong name costs the same time as a wrong password.
fn decoy_hash() -> &'static PasswordHashString {
    static DECOY: std::sync::OnceLock<PasswordHashString> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let h = password_hash("decoy password nobody has").expect("hashing works");
        PasswordHashString::new(&h).expect("a hash just made parses")
    })
}

/// Checks one identity's `write`, `read` and `admin` as written into a [`Principal`].
/// `key` names the entry in messages (`token[2]`).
fn principal(
    key: &str,
    label: String,
    write: &Option<String>,
    read: bool,
    admin: bool,
) -> Result<Principal, AccessError> {
    let err = |field: &str, value: &str, why: String| AccessError {
        key: format!("{key}.{field}"),
        value: value.to_string(),
        why,
    };
    let select = match write {
        None => None,
        Some(e) if e.is_empty() => {
            return Err(err(
                "write",
                e,
                "empty; write the srcnames it may put, e.g. XX_STA01_.* (or .* for all)".into(),
            ))
        }
        Some(e) => {
            Some(SrcSelect::new(Some(e), None).map_err(|why| err("write", e, why.to_string()))?)
        }
    };
    if select.is_none() && !read && !admin {
        return Err(err(
            "name",
            &label,
            "it grants nothing; give it write = \"REGEX\", read = true or admin = true".into(),
        ));
    }
    Ok(Principal {
        label,
        write: select,
        write_expr: write.clone().unwrap_or_default(),
        read,
        admin,
    })
}

impl Default for AccessRules {
    /// Everyone may connect and read; loopback may write and administer; no tokens.
    fn default() -> AccessRules {
        AccessRules::from_table(&AccessTable::default()).expect("the defaults are valid")
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

/// Reads and checks `[access.jwt]`.
fn jwt_key(f: &JwtFile) -> Result<JwtKey, AccessError> {
    let err = |why: String| AccessError {
        key: "jwt.secret_file".into(),
        value: f.secret_file.display().to_string(),
        why,
    };
    let mut secret =
        std::fs::read(&f.secret_file).map_err(|e| err(format!("cannot read it: {e}")))?;
    while secret.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        secret.pop();
    }
    if secret.len() < MIN_JWT_SECRET_LEN {
        return Err(err(format!(
            "the secret has {} bytes; HS256 needs at least {MIN_JWT_SECRET_LEN} random bytes (e.g. `head -c 48 /dev/urandom | base64`)",
            secret.len()
        )));
    }
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "sub"]);
    match &f.issuer {
        Some(iss) => validation.set_issuer(&[iss]),
        None => validation.iss = None,
    }
    match &f.audience {
        Some(aud) => validation.set_audience(&[aud]),
        None => validation.validate_aud = false,
    }
    Ok(JwtKey {
        key: jsonwebtoken::DecodingKey::from_secret(&secret),
        fingerprint: Sha256::digest(&secret).into(),
        validation,
    })
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
    /// The srcnames an identity (token, user, certificate, JWT) covers.
    Token {
        /// The identity's label, e.g. `token:XX_STA01`.
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
                        "{name} may put only srcnames matching {expr:?}, not {srcname:?}"
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
    /// Checks and compiles an `[access]` table's address lists and tokens.
    pub fn from_file(f: &AccessFile) -> Result<AccessRules, AccessError> {
        AccessRules::from_table(&AccessTable::from(f.clone()))
    }

    /// Checks and compiles a whole `[access]` table.
    pub fn from_table(f: &AccessTable) -> Result<AccessRules, AccessError> {
        let loopback: Vec<String> = LOOPBACK.iter().map(|s| s.to_string()).collect();
        let mut tokens: Vec<Token> = Vec::with_capacity(f.tokens.len());
        for (i, t) in f.tokens.iter().enumerate() {
            let key = format!("token[{i}]");
            let err = |field: &str, value: &str, why: String| AccessError {
                key: format!("{key}.{field}"),
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
                        other.who.label.trim_start_matches("token:")
                    ),
                ));
            }
            let who = principal(&key, format!("token:{}", t.name), &t.write, t.read, t.admin)?;
            tokens.push(Token { hash, who });
        }
        let mut users: Vec<User> = Vec::with_capacity(f.users.len());
        for (i, u) in f.users.iter().enumerate() {
            let key = format!("user[{i}]");
            let err = |field: &str, value: &str, why: &str| AccessError {
                key: format!("{key}.{field}"),
                value: value.to_string(),
                why: why.into(),
            };
            let name = u.name.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(err("name", &u.name, "give each user a name without spaces"));
            }
            if users.iter().any(|o| o.name == name) {
                return Err(err(
                    "name",
                    &u.name,
                    "a second user of this name; names are unique",
                ));
            }
            let hash = PasswordHashString::new(u.argon2.trim())
                .ok()
                .filter(|h| h.algorithm().as_str().starts_with("argon2"))
                .ok_or_else(|| {
                    err(
                        "argon2",
                        "(not shown)",
                        "not an argon2 PHC string; paste the line `orbserver --hash-password` prints",
                    )
                })?;
            let who = principal(&key, format!("user:{name}"), &u.write, u.read, u.admin)?;
            users.push(User {
                name: name.to_string(),
                hash,
                who,
            });
        }
        let mut certs: Vec<Principal> = Vec::with_capacity(f.certs.len());
        for (i, c) in f.certs.iter().enumerate() {
            let key = format!("cert[{i}]");
            if c.cn.trim().is_empty() || certs.iter().any(|o| o.label == format!("cert:{}", c.cn)) {
                return Err(AccessError {
                    key: format!("{key}.cn"),
                    value: c.cn.clone(),
                    why: "give each certificate identity its subject CN, once".into(),
                });
            }
            certs.push(principal(
                &key,
                format!("cert:{}", c.cn),
                &c.write,
                c.read,
                c.admin,
            )?);
        }
        let jwt = f.jwt.as_ref().map(jwt_key).transpose()?;
        let limit = AuthLimit {
            failures: f.auth_fail_limit.unwrap_or(5),
            window: Duration::from_secs(f.auth_fail_window_secs.unwrap_or(60).max(1)),
        };
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
            users,
            certs,
            jwt,
            limit,
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
        let mut found: Option<&Token> = None;
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
        self.find(hash)
            .map(|t| t.who.label.trim_start_matches("token:"))
    }

    /// True if clients can authenticate with AUTH (users, tokens or a JWT key are
    /// configured): the DataLink ID reply then names `AUTH`.
    pub fn takes_auth(&self) -> bool {
        !self.users.is_empty() || !self.tokens.is_empty() || self.jwt.is_some()
    }

    /// The per-address limit on failed authentications.
    pub fn auth_limit(&self) -> AuthLimit {
        self.limit
    }

    /// Checks a user's password (`AUTH USERPASS`). A wrong name and a wrong password
    /// cost the same argon2 verification and give the same `Err`, which is for the log
    /// and never holds the password.
    pub fn check_password(&self, user: &str, password: &str) -> Result<Identity, String> {
        let found = self.users.iter().find(|u| u.name == user);
        let hash = found.map_or_else(|| decoy_hash().password_hash(), |u| u.hash.password_hash());
        let good = Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
        let shown: String = user.chars().take(64).collect();
        match found {
            Some(u) if good => Ok(Identity::User(u.name.clone())),
            Some(_) => Err(format!("wrong password for user {shown:?}")),
            None => Err(format!("unknown user {shown:?}")),
        }
    }

    /// Checks a JWT (`AUTH JWT`, or a bearer token that is no configured token): the
    /// signature with the `[access.jwt]` key (HS256 only), `exp`, and `iss`/`aud` if the
    /// config names them. The `Err` is for the log and never holds the token.
    pub fn check_jwt(&self, token: &str) -> Result<Identity, String> {
        let Some(k) = &self.jwt else {
            return Err("a JWT, but no [access.jwt] key is configured".into());
        };
        let data = jsonwebtoken::decode::<JwtClaims>(token, &k.key, &k.validation)
            .map_err(|e| format!("JWT refused: {e}"))?;
        let c = data.claims;
        let sub: String = c.sub.chars().take(64).collect();
        let write = c.write.or(c.wpat);
        let who = principal("jwt", format!("jwt:{sub}"), &write, c.read, c.admin)
            .map_err(|e| format!("JWT of {sub:?} refused: {}", e.why))?;
        Ok(Identity::Jwt(Arc::new(JwtGrant {
            key: k.fingerprint,
            who,
        })))
    }

    /// Checks a bearer credential (HTTP `Authorization: Bearer`): a configured token,
    /// else a JWT.
    pub fn check_bearer(&self, credential: &str) -> Result<Identity, String> {
        let hash = token_hash(credential);
        if self.find(&hash).is_some() {
            return Ok(Identity::Token(hash));
        }
        if self.jwt.is_some() && credential.split('.').count() == 3 {
            return self.check_jwt(credential);
        }
        Err("unknown bearer token".into())
    }

    /// The identity a verified client certificate's subject CN names, if any.
    pub fn cert_identity(&self, cn: &str) -> Option<Identity> {
        self.certs
            .iter()
            .any(|c| c.label.strip_prefix("cert:") == Some(cn))
            .then(|| Identity::Cert(cn.to_string()))
    }

    /// What `id` may do under these rules; `None` if the rules no longer know it.
    fn principal<'a>(&'a self, id: &'a Identity) -> Option<&'a Principal> {
        match id {
            Identity::Token(h) => self.find(h).map(|t| &t.who),
            Identity::User(n) => self.users.iter().find(|u| &u.name == n).map(|u| &u.who),
            Identity::Cert(cn) => self
                .certs
                .iter()
                .find(|c| c.label.strip_prefix("cert:") == Some(cn.as_str())),
            Identity::Jwt(g) => self
                .jwt
                .as_ref()
                .filter(|k| k.fingerprint == g.key)
                .map(|_| &g.who),
        }
    }

    /// How `id` shows in logs and CLIENTS (`user:alice`); empty if the rules no longer
    /// know it.
    pub fn label(&self, id: &Identity) -> String {
        self.principal(id)
            .map(|p| p.label.clone())
            .unwrap_or_default()
    }

    /// What a session from `ip` that proved to be `id` may do under these rules. An
    /// identity that a reload removed grants nothing any more.
    pub fn grant(&self, ip: IpAddr, id: Option<&Identity>) -> Grant {
        let ip = ip.to_canonical();
        let who = id.and_then(|id| self.principal(id));
        // An identity's srcname binding wins over the address: a station that presents
        // its token is held to its srcnames even from a trusted address.
        let write = match who.and_then(|p| p.write.as_ref().map(|s| (p, s))) {
            Some((p, select)) => WriteGrant::Token {
                name: p.label.clone(),
                expr: p.write_expr.clone(),
                select: select.clone(),
            },
            None if contains(&self.write, ip) => WriteGrant::Any,
            None => WriteGrant::None,
        };
        Grant {
            read: self.read.as_ref().is_none_or(|l| contains(l, ip)) || who.is_some_and(|p| p.read),
            write,
            admin: contains(&self.admin, ip) || who.is_some_and(|p| p.admin),
        }
    }

    /// Number of tokens, for the log.
    pub fn ntokens(&self) -> usize {
        self.tokens.len()
    }

    /// Number of users, for the log.
    pub fn nusers(&self) -> usize {
        self.users.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(toml_text: &str) -> Result<AccessRules, AccessError> {
        let f: AccessTable = toml::from_str(toml_text).expect("valid TOML");
        AccessRules::from_table(&f)
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
            let g = r.grant(ip(from), Some(&Identity::Token(h)));
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
        assert!(sta_rules()
            .grant(ip("10.0.0.1"), Some(&Identity::Token(h)))
            .write
            .any());
        let after = rules("write = []").unwrap();
        assert!(!after
            .grant(ip("10.0.0.1"), Some(&Identity::Token(h)))
            .write
            .any());
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
        assert!(
            r.grant(ip("10.0.0.1"), h.map(Identity::Token).as_ref())
                .read
        );
        assert!(!r
            .grant(ip("10.0.0.1"), h.map(Identity::Token).as_ref())
            .write
            .any());
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
        assert!(
            r.grant(ip("127.0.0.1"), h.map(Identity::Token).as_ref())
                .admin
        );
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

    /// A config with a user `alice` (password `sesame`, writes XX_ALICE_.*), a JWT key
    /// in `dir`, and a certificate identity.
    fn auth_rules(dir: &std::path::Path) -> AccessRules {
        let secret = dir.join("jwt.secret");
        std::fs::write(&secret, format!("{JWT_SECRET}\n")).unwrap();
        rules(&format!(
            "write = []\nadmin = []\n\
             [[user]]\nname = \"alice\"\n{}\nwrite = \"XX_ALICE_.*\"\n\
             [[cert]]\ncn = \"station-7\"\nwrite = \"XX_STA07_.*\"\nadmin = true\n\
             [jwt]\nsecret_file = {:?}\n",
            password_hash_line("sesame").unwrap(),
            secret.display().to_string()
        ))
        .unwrap()
    }

    const JWT_SECRET: &str = "0123456789abcdef0123456789abcdef-test";

    fn jwt(claims: serde_json::Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn users_are_checked_by_argon2_and_held_to_their_srcnames() {
        let dir = tempfile::tempdir().unwrap();
        let r = auth_rules(dir.path());
        assert!(r.takes_auth());
        let id = r.check_password("alice", "sesame").unwrap();
        assert_eq!(r.label(&id), "user:alice");
        let g = r.grant(ip("10.0.0.1"), Some(&id));
        assert_eq!(g.write.check("XX_ALICE_BHZ"), Ok(()));
        match g.write.check("XX_BOB_BHZ") {
            Err(WriteRefusal::ForeignSrcname(m)) => assert!(m.contains("user:alice"), "{m}"),
            other => panic!("{other:?}"),
        }
        let wrong = r.check_password("alice", "sesame!").unwrap_err();
        let unknown = r.check_password("mallory", "sesame").unwrap_err();
        assert!(!wrong.contains("sesame") && !unknown.contains("sesame"));
        assert!(unknown.contains("mallory"), "{unknown}");
        // The stored form is a salted argon2id PHC string: the same password hashes
        // differently twice.
        let (a, b) = (password_hash("pw").unwrap(), password_hash("pw").unwrap());
        assert!(a.starts_with("$argon2id$") && a != b);
    }

    #[test]
    fn jwts_carry_their_rights_until_the_key_changes() {
        let dir = tempfile::tempdir().unwrap();
        let r = auth_rules(dir.path());
        let good = jwt(
            serde_json::json!({"sub": "datalogger", "exp": now() + 600, "write": "XX_DL_.*", "read": true}),
            JWT_SECRET,
        );
        let id = r.check_jwt(&good).unwrap();
        assert_eq!(r.label(&id), "jwt:datalogger");
        let g = r.grant(ip("10.0.0.1"), Some(&id));
        assert!(g.read && !g.admin);
        assert_eq!(g.write.check("XX_DL_HHZ"), Ok(()));
        assert!(g.write.check("XX_OTHER").is_err());
        // simpledali's `wpat` names the same scope.
        let wpat = jwt(
            serde_json::json!({"sub": "s", "exp": now() + 600, "wpat": "XX_S_.*"}),
            JWT_SECRET,
        );
        let g = r.grant(ip("10.0.0.1"), Some(&r.check_jwt(&wpat).unwrap()));
        assert_eq!(g.write.check("XX_S_HHZ"), Ok(()));
        // A bearer credential that is no token is tried as a JWT.
        assert_eq!(r.label(&r.check_bearer(&good).unwrap()), "jwt:datalogger");
        for bad in [
            jwt(
                serde_json::json!({"sub": "x", "exp": now() + 600, "read": true}),
                "another-secret-of-enough-length-000",
            ),
            jwt(
                serde_json::json!({"sub": "x", "exp": now() - 3600, "read": true}),
                JWT_SECRET,
            ),
            jwt(serde_json::json!({"sub": "x", "read": true}), JWT_SECRET),
            jwt(
                serde_json::json!({"sub": "x", "exp": now() + 600}),
                JWT_SECRET,
            ),
            "not.a.jwt".to_string(),
        ] {
            let e = r.check_jwt(&bad).unwrap_err();
            assert!(!e.contains(&bad), "{e}");
        }
        // A reload with another secret takes the rights of JWTs signed with the old one.
        std::fs::write(
            dir.path().join("jwt.secret"),
            "a-new-secret-after-rotation-0123456789",
        )
        .unwrap();
        let after = auth_rules_keep_secret(dir.path());
        assert!(!after.grant(ip("10.0.0.1"), Some(&id)).write.any());
    }

    fn auth_rules_keep_secret(dir: &std::path::Path) -> AccessRules {
        let secret = dir.join("jwt.secret");
        rules(&format!(
            "write = []\n[jwt]\nsecret_file = {:?}\n",
            secret.display().to_string()
        ))
        .unwrap()
    }

    #[test]
    fn certificate_cns_name_configured_identities_only() {
        let dir = tempfile::tempdir().unwrap();
        let r = auth_rules(dir.path());
        let id = r.cert_identity("station-7").unwrap();
        assert_eq!(r.label(&id), "cert:station-7");
        let g = r.grant(ip("10.0.0.1"), Some(&id));
        assert!(g.admin && g.write.check("XX_STA07_HHZ").is_ok());
        assert!(r.cert_identity("station-8").is_none());
    }

    #[test]
    fn bad_auth_tables_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, "too short\n").unwrap();
        for (text, want) in [
            (
                "[[user]]\nname = \"a\"\nargon2 = \"plain\"\nread = true".to_string(),
                "--hash-password",
            ),
            (
                "[[user]]\nname = \"a b\"\nargon2 = \"x\"\nread = true".to_string(),
                "user[0].name",
            ),
            (
                format!("[jwt]\nsecret_file = {:?}", short.display().to_string()),
                "at least 32",
            ),
            (
                "[jwt]\nsecret_file = \"/nonexistent/secret\"".to_string(),
                "jwt.secret_file",
            ),
            ("[[cert]]\ncn = \"\"\nread = true".to_string(), "cert[0].cn"),
        ] {
            let e = rules(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(!e.contains("plain"), "{e}");
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
