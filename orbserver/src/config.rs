//! Server configuration: a TOML file (every key optional) overlaid by command-line
//! flags, validated into a [`ServerConfig`]. Sizes are written `256M` or `256MiB`
//! (binary units, [`parse_size`]), durations `10s`, as an operator would.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::access::{AccessError, AccessRules, AccessTable};
use crate::ring::{FlushPolicy, RingOptions};

/// Antelope's orbserver port.
pub const DEFAULT_PORT: u16 = 6510;
/// Default listen address: loopback only, so a fresh server is not open to the network.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:6510";
/// Default ring directory.
pub const DEFAULT_RING_DIR: &str = "orb-data";

/// Limits that protect the server from clients.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest payload accepted (also capped by the ring: a quarter of its size).
    pub max_packet: usize,
    /// Most connections at once.
    pub max_clients: usize,
    /// Most connections at once from one IP address.
    pub max_clients_per_address: usize,
    /// Longest select/reject expression.
    pub max_regex: usize,
    /// Time a new connection has to send HELLO.
    pub handshake_timeout: Duration,
    /// Stream bytes prepared for one client before the server waits for its socket to
    /// take them: with the one frame that may cross it, the most output one client
    /// holds in the server's memory (a slow reader waits, it is not buffered for).
    pub output_buffer: usize,
    /// Addresses in `access.write` are not counted against `max_clients_per_address`,
    /// so a data logger behind one address can open many writing connections.
    pub writers_exempt: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_packet: 1 << 20,
            max_clients: 10_000,
            max_clients_per_address: 1_000,
            max_regex: formats::MAX_REGEX_LEN,
            handshake_timeout: Duration::from_secs(10),
            output_buffer: 256 * 1024,
            writers_exempt: false,
        }
    }
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Ring directory.
    pub ring_dir: PathBuf,
    /// Ring size and flush policy.
    pub ring: RingOptions,
    /// Client limits.
    pub limits: Limits,
    /// Who may connect, read, write and administer.
    pub access: AccessRules,
    /// Address of the DataLink listener (docs/GATEWAYS.md); `None`: off.
    pub datalink: Option<SocketAddr>,
    /// Address of the SeedLink listener (docs/GATEWAYS.md); `None`: off.
    pub seedlink: Option<SocketAddr>,
    /// Address of the HTTP listener (docs/HTTP.md); `None`: off.
    pub http: Option<SocketAddr>,
    /// What the HTTP port adds to its answers and serves from disk.
    pub http_options: HttpOptions,
    /// Which listeners speak TLS, and with which certificate (docs/SECURITY.md, "TLS").
    pub tls: TlsConfig,
}

/// The `[tls.LISTENER]` tables: each listener that has one speaks only TLS, the others
/// only plaintext, so a migration can run both on one server.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The native orb port.
    pub native: Option<TlsFiles>,
    /// The DataLink port.
    pub datalink: Option<TlsFiles>,
    /// The SeedLink port.
    pub seedlink: Option<TlsFiles>,
    /// The HTTP port (`https`, `wss`).
    pub http: Option<TlsFiles>,
}

/// One listener's TLS files, PEM; relative paths are relative to the config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates a client certificate must chain to; set, every client of the
    /// listener must present one.
    pub client_ca: Option<PathBuf>,
}

/// The HTTP port's settings beyond its address (docs/HTTP.md).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpOptions {
    /// Headers added to every response, e.g. `Access-Control-Allow-Origin: *`, checked
    /// to be valid header names and values.
    pub headers: Vec<(String, String)>,
    /// A folder of static files served for paths no resource answers; `None`: none.
    pub web_root: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN.parse().expect("valid default"),
            ring_dir: PathBuf::from(DEFAULT_RING_DIR),
            ring: RingOptions::default(),
            limits: Limits::default(),
            access: AccessRules::default(),
            datalink: None,
            seedlink: None,
            http: None,
            http_options: HttpOptions::default(),
            tls: TlsConfig::default(),
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    // The OS error is in the message, not a `source`, so that `{:#}` chains do not
    // print it twice.
    #[error("cannot read config file {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        reason: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("bad config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said, with line and column.
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("bad config value {key} = {value:?}{}: {why}", in_file(file))]
    Value {
        /// The file it came from, if any.
        file: Option<PathBuf>,
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// What is wrong and what to write instead.
        why: String,
    },
    /// The `[access]` table is wrong.
    #[error("bad config value {source}{}", in_file(file))]
    Access {
        /// The file it came from, if any.
        file: Option<PathBuf>,
        /// What is wrong.
        source: AccessError,
    },
}

/// The config file as written: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Listen address, `host:port`.
    pub listen: Option<String>,
    /// DataLink listen address, `host:port` (off when absent).
    pub datalink: Option<String>,
    /// SeedLink listen address, `host:port` (off when absent).
    pub seedlink: Option<String>,
    /// HTTP listen address, `host:port` (off when absent).
    pub http: Option<String>,
    /// Headers added to every HTTP response, name to value.
    pub http_headers: Option<std::collections::BTreeMap<String, String>>,
    /// Folder of static files the HTTP port serves; relative paths are relative to the
    /// config file.
    pub web_root: Option<PathBuf>,
    /// Ring directory; relative paths are relative to the config file.
    pub ring: Option<PathBuf>,
    /// Ring size for a new ring, e.g. `1G` or `1GiB` ([`parse_ring_size`]).
    pub ring_size: Option<String>,
    /// Flush policy.
    pub flush: Option<String>,
    /// Limits.
    #[serde(default)]
    pub limits: LimitsFile,
    /// Access rules (docs/SECURITY.md).
    #[serde(default)]
    pub access: AccessTable,
    /// TLS per listener (docs/SECURITY.md, "TLS").
    #[serde(default)]
    pub tls: TlsConfig,
    /// The file this was read from, for error messages.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// The `[limits]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Largest payload, e.g. `1MiB`.
    pub max_packet: Option<String>,
    /// Most connections.
    pub max_clients: Option<usize>,
    /// Most connections per IP address.
    pub max_clients_per_address: Option<usize>,
    /// Longest select/reject expression in bytes.
    pub max_regex: Option<usize>,
    /// Handshake timeout, e.g. `10s`.
    pub handshake_timeout: Option<String>,
    /// Output held per client, e.g. `256KiB`.
    pub output_buffer: Option<String>,
    /// Exempt writing addresses from `max_clients_per_address`.
    pub writers_exempt: Option<bool>,
}

/// What [`parse_size`] accepts, for its errors.
const SIZE_FORMS: &str = "write bytes (1048576) or a number with a unit: K, M, G or T, \
    also spelled KB/KiB, MB/MiB, GB/GiB, TB/TiB, all powers of 1024 (256M, 256MiB, 1.5GiB)";

/// Parses a size: bytes (`1048576`) or a number, optionally with a decimal fraction,
/// and a unit (`256MiB`, `1 GiB`, `8M`, `1.5g`).
///
/// Every unit is binary, whatever its spelling and case: `K`, `KB` and `KiB` are
/// 2^10 bytes, `M`/`MB`/`MiB` 2^20, `G`/`GB`/`GiB` 2^30, `T`/`TB`/`TiB` 2^40; `B` or
/// no unit is bytes. There are no decimal units: rings, pages and buffers are
/// counted in powers of two, `dd bs=8M` and `ls -h` mean 2^20 by `M` too, and a
/// decimal `8M` would not even be a whole number of 4 KiB pages, so `--ring-size 8M`
/// would be refused. The result must be a whole number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = |why: &str| format!("bad size {s:?}: {why}{SIZE_FORMS}");
    let text = s.trim();
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad("")),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || fraction.len() > 18 {
        return Err(bad(""));
    }
    // number = digits / 10^fraction.len(), exactly, in u128.
    let digits: u128 = format!("{whole}{fraction}").parse().map_err(|_| bad(""))?;
    let scale = 10u128.pow(fraction.len() as u32);
    let bytes = digits.checked_shl(shift).filter(|b| b >> shift == digits);
    match bytes {
        Some(b) if b % scale != 0 => Err(bad("not a whole number of bytes; ")),
        Some(b) => u64::try_from(b / scale).map_err(|_| bad("too large; ")),
        None => Err(bad("too large; ")),
    }
}

/// Parses the config file's `ring_size`: a [`parse_size`] size that is a
/// whole number of 4 KiB pages from 1 MiB to 1 TiB. Any other size is refused with
/// the nearest sizes that would do, rather than rounded behind the operator's back:
/// an existing ring must be given its exact size again.
pub fn parse_ring_size(s: &str) -> Result<u64, String> {
    use crate::ring::layout::{CAPACITY_ALIGN, MAX_CAPACITY, MIN_CAPACITY};
    let n = parse_size(s)?;
    if !(MIN_CAPACITY..=MAX_CAPACITY).contains(&n) {
        return Err(format!(
            "ring size {s:?} is {n} bytes, out of range: use 1 MiB to 1 TiB \
             ({MIN_CAPACITY} to {MAX_CAPACITY} bytes)"
        ));
    }
    if !n.is_multiple_of(CAPACITY_ALIGN) {
        let down = n / CAPACITY_ALIGN * CAPACITY_ALIGN;
        let up = down + CAPACITY_ALIGN;
        let mut near: Vec<String> = [down, up]
            .into_iter()
            .filter(|c| (MIN_CAPACITY..=MAX_CAPACITY).contains(c))
            .map(|c| c.to_string())
            .collect();
        near.dedup();
        return Err(format!(
            "ring size {s:?} is {n} bytes, not a multiple of 4 KiB (4096, a page): use {}",
            near.join(" or ")
        ));
    }
    Ok(n)
}

fn in_file(file: &Option<PathBuf>) -> String {
    file.as_ref()
        .map(|f| format!(" in {}", f.display()))
        .unwrap_or_default()
}

impl ConfigFile {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|reason| ConfigError::Read {
            path: path.to_owned(),
            reason,
        })?;
        let mut file: ConfigFile = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        file.path = Some(path.to_owned());
        if let Some(dir) = path.parent() {
            for p in [&mut file.ring, &mut file.web_root].into_iter().flatten() {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            }
            let t = &mut file.tls;
            for files in [&mut t.native, &mut t.datalink, &mut t.seedlink, &mut t.http]
                .into_iter()
                .flatten()
            {
                for p in [&mut files.cert, &mut files.key]
                    .into_iter()
                    .chain(files.client_ca.as_mut())
                {
                    if p.is_relative() {
                        *p = dir.join(&*p);
                    }
                }
            }
            if let Some(j) = file.access.jwt.as_mut() {
                if j.secret_file.is_relative() {
                    j.secret_file = dir.join(&j.secret_file);
                }
            }
        }
        Ok(file)
    }

    /// Applies this file's values over `cfg`.
    pub fn apply(&self, cfg: &mut ServerConfig) -> Result<(), ConfigError> {
        let value_err = |key: &'static str, value: &str, why: String| ConfigError::Value {
            file: self.path.clone(),
            key,
            value: value.to_string(),
            why,
        };
        if let Some(l) = &self.listen {
            cfg.listen = l.parse().map_err(|_| {
                value_err("listen", l, "write host:port, e.g. 127.0.0.1:6510".into())
            })?;
        }
        for (key, value, slot) in [
            ("datalink", &self.datalink, &mut cfg.datalink),
            ("seedlink", &self.seedlink, &mut cfg.seedlink),
            ("http", &self.http, &mut cfg.http),
        ] {
            if let Some(l) = value {
                *slot = Some(l.parse().map_err(|_| {
                    value_err(key, l, "write host:port, e.g. 127.0.0.1:16000".into())
                })?);
            }
        }
        if let Some(r) = &self.ring {
            cfg.ring_dir = r.clone();
        }
        if let Some(headers) = &self.http_headers {
            cfg.http_options.headers = headers
                .iter()
                .map(|(name, value)| {
                    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        return Err(value_err(
                            "http_headers",
                            name,
                            "not a valid header name; write e.g. Access-Control-Allow-Origin"
                                .into(),
                        ));
                    }
                    if http::HeaderValue::from_str(value).is_err() {
                        return Err(value_err(
                            "http_headers",
                            value,
                            "not a valid header value: visible ASCII only, one line".into(),
                        ));
                    }
                    Ok((name.clone(), value.clone()))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(w) = &self.web_root {
            cfg.http_options.web_root = Some(w.clone());
        }
        if let Some(s) = &self.ring_size {
            cfg.ring.size = Some(parse_ring_size(s).map_err(|e| value_err("ring_size", s, e))?);
        }
        if let Some(f) = &self.flush {
            cfg.ring.flush = f
                .parse::<FlushPolicy>()
                .map_err(|e| value_err("flush", f, e))?;
        }
        let l = &self.limits;
        if let Some(s) = &l.max_packet {
            let n = parse_size(s).map_err(|e| value_err("limits.max_packet", s, e))?;
            cfg.limits.max_packet = usize::try_from(n)
                .map_err(|_| value_err("limits.max_packet", s, "too large".into()))?;
        }
        if let Some(n) = l.max_clients {
            cfg.limits.max_clients = n;
        }
        if let Some(n) = l.max_clients_per_address {
            cfg.limits.max_clients_per_address = n;
        }
        if let Some(n) = l.max_regex {
            cfg.limits.max_regex = n;
        }
        if let Some(s) = &l.handshake_timeout {
            cfg.limits.handshake_timeout = humantime::parse_duration(s)
                .map_err(|e| value_err("limits.handshake_timeout", s, e.to_string()))?;
        }
        if let Some(s) = &l.output_buffer {
            let n = parse_size(s).map_err(|e| value_err("limits.output_buffer", s, e))?;
            if !(4096..=64 << 20).contains(&n) {
                return Err(value_err(
                    "limits.output_buffer",
                    s,
                    "write a size from 4KiB to 64MiB".into(),
                ));
            }
            cfg.limits.output_buffer = n as usize;
        }
        if let Some(b) = l.writers_exempt {
            cfg.limits.writers_exempt = b;
        }
        cfg.access = self.access_rules()?;
        cfg.tls = self.tls.clone();
        Ok(())
    }

    /// The `[access]` table, checked and compiled (what a reload applies).
    pub fn access_rules(&self) -> Result<AccessRules, ConfigError> {
        AccessRules::from_table(&self.access).map_err(|source| ConfigError::Access {
            file: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_applies_and_relative_ring_follows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orb.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:7000\"\ndatalink = \"127.0.0.1:7001\"\nseedlink = \"127.0.0.1:7002\"\nhttp = \"127.0.0.1:7003\"\nweb_root = \"www\"\nring = \"data\"\nring_size = \"64MiB\"\nflush = \"always\"\n\
             [limits]\nmax_packet = \"64KiB\"\nmax_clients = 5\nmax_clients_per_address = 2\nmax_regex = 100\nhandshake_timeout = \"2s\"\n\
             output_buffer = \"64KiB\"\nwriters_exempt = true\n\
             [access]\nconnect_deny = [\"10.0.0.0/8\"]\nwrite = []\n\
             [http_headers]\nAccess-Control-Allow-Origin = \"*\"\n",
        )
        .unwrap();
        let mut cfg = ServerConfig::default();
        ConfigFile::load(&path).unwrap().apply(&mut cfg).unwrap();
        assert_eq!(cfg.listen.port(), 7000);
        assert_eq!(cfg.datalink.map(|a| a.port()), Some(7001));
        assert_eq!(cfg.seedlink.map(|a| a.port()), Some(7002));
        assert_eq!(cfg.http.map(|a| a.port()), Some(7003));
        assert_eq!(cfg.http_options.web_root, Some(dir.path().join("www")));
        assert_eq!(
            cfg.http_options.headers,
            [("Access-Control-Allow-Origin".to_string(), "*".to_string())]
        );
        assert_eq!(cfg.ring_dir, dir.path().join("data"));
        assert_eq!(cfg.ring.size, Some(64 << 20));
        assert_eq!(cfg.ring.flush, FlushPolicy::Always);
        assert_eq!(cfg.limits.max_packet, 64 << 10);
        assert_eq!(
            (
                cfg.limits.max_clients,
                cfg.limits.max_clients_per_address,
                cfg.limits.max_regex
            ),
            (5, 2, 100)
        );
        assert_eq!(cfg.limits.handshake_timeout, Duration::from_secs(2));
        assert_eq!(cfg.limits.output_buffer, 64 << 10);
        assert!(cfg.limits.writers_exempt);
        let local = "127.0.0.1".parse().unwrap();
        assert!(cfg.access.admits("10.1.1.1".parse().unwrap()).is_err());
        assert!(!cfg.access.grant(local, None).write.any());
    }

    #[test]
    fn size_units_are_binary_in_every_spelling() {
        for (text, want) in [
            ("1048576", 1 << 20),
            ("0", 0),
            ("512B", 512),
            ("512 b", 512),
            ("4K", 4 << 10),
            ("4k", 4 << 10),
            ("4KB", 4 << 10),
            ("4kb", 4 << 10),
            ("4KiB", 4 << 10),
            ("4kib", 4 << 10),
            ("8M", 8 << 20),
            ("8MB", 8 << 20),
            ("8MiB", 8 << 20),
            ("8 MiB", 8 << 20),
            (" 8m ", 8 << 20),
            ("256MiB", 256 << 20),
            ("1G", 1 << 30),
            ("4GB", 4 << 30),
            ("4GiB", 4 << 30),
            ("1T", 1 << 40),
            ("1TB", 1 << 40),
            ("1TiB", 1 << 40),
            ("1.5G", 3 << 29),
            ("0.5KiB", 512),
            ("2.25M", 9 << 18),
        ] {
            assert_eq!(parse_size(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn bad_sizes_say_what_to_write() {
        for bad in [
            "",
            "huge",
            "8X",
            "8 MiBs",
            "-1M",
            "1.5",
            "0.3K",
            "1e6",
            "M",
            "1..5M",
            "99999999T",
        ] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{bad:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        assert!(parse_size("1.5")
            .unwrap_err()
            .contains("whole number of bytes"));
        assert!(parse_size("lots").unwrap_err().contains("1024"));
    }

    #[test]
    fn ring_sizes_are_whole_pages_and_the_error_names_the_nearest() {
        assert_eq!(parse_ring_size("8M"), Ok(8 << 20));
        assert_eq!(parse_ring_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_ring_size("1T"), Ok(1 << 40));
        assert_eq!(parse_ring_size("10004K"), Ok(10004 << 10));
        let e = parse_ring_size("10000000").unwrap_err();
        assert!(
            e.contains("not a multiple of 4 KiB")
                && e.contains("9998336")
                && e.contains("10002432"),
            "{e}"
        );
        let e = parse_ring_size("1000K").unwrap_err();
        assert!(e.contains("1 MiB to 1 TiB") && e.contains("1048576"), "{e}");
        let e = parse_ring_size("2T").unwrap_err();
        assert!(e.contains("1 MiB to 1 TiB"), "{e}");
        let e = parse_ring_size("many").unwrap_err();
        assert!(e.contains("\"many\""), "{e}");
    }

    #[test]
    fn a_ring_size_in_the_file_is_checked_like_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orb.toml");
        std::fs::write(&path, "ring_size = \"8M\"").unwrap();
        let mut cfg = ServerConfig::default();
        ConfigFile::load(&path).unwrap().apply(&mut cfg).unwrap();
        assert_eq!(cfg.ring.size, Some(8 << 20));
        std::fs::write(&path, "ring_size = \"10000000\"").unwrap();
        let e = ConfigFile::load(&path)
            .unwrap()
            .apply(&mut ServerConfig::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("ring_size") && e.contains("10002432"), "{e}");
    }

    #[test]
    fn bad_files_give_one_clear_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orb.toml");
        for (text, want) in [
            ("listen = 5", "bad config file"),
            ("colour = \"red\"", "unknown field"),
            ("ring_size = \"huge\"", "ring_size"),
            ("flush = \"sometimes\"", "flush"),
            ("listen = \"nowhere\"", "host:port"),
            ("datalink = \"nowhere\"", "datalink"),
            ("http = \"nowhere\"", "http"),
            ("[http_headers]\n\"Bad Name\" = \"x\"", "http_headers"),
            ("[http_headers]\nX-A = \"two\\nlines\"", "http_headers"),
            (
                "[access]\nconnect_deny = [\"10.0.0.0/99\"]",
                "access.connect_deny",
            ),
            (
                "[access]\n[[access.token]]\nname = \"a\"\nsha256 = \"00\"\nread = true",
                "token[0].sha256",
            ),
            ("[access]\ncolour = 1", "unknown field"),
            ("[limits]\noutput_buffer = \"1KiB\"", "4KiB"),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = ConfigFile::load(&path)
                .and_then(|f| f.apply(&mut ServerConfig::default()))
                .unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(want) && !msg.contains('\n'), "{text}: {msg}");
        }
        let e = ConfigFile::load(&dir.path().join("missing.toml")).unwrap_err();
        assert!(e.to_string().contains("cannot read config file"));
    }
}
