//! [`RuleFile`]: a TOML rule file, parsed into checked [`ReapRule`]s and
//! [`IngestRule`]s.
//!
//! Parsing has two steps. Serde reads the TOML into raw tables that keep each value's
//! byte span (`toml::Spanned`), refusing unknown fields with the list of known ones.
//! Then each rule is checked field by field, and every refusal is one [`RuleError`]
//! naming the file, line, column and field, and what the field allows.

use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use formats::meta::Inventory;

use formats::write::Format;
use formats::{SrcName, Time};
use orbclient::OrbAddr;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::detect::{Direction, Scale, StaLtaKind, Statistic};
use crate::detect_rule::{CoincidenceRule, DetectRule, DetectorRule, WindowRule};
use crate::error::{RuleError, RuleWarning};
use crate::ingest_rule::{IngestAction, IngestRule};
use crate::reap_rule::{Mode, NetcdfVersion, ReapRule, Schedule, Start};
use crate::template::{PathTemplate, SdsTemplate};
use crate::SrcSelect;

/// Packets per read when a rule does not say.
pub const DEFAULT_PACKETS_PER_READ: u32 = 1000;
/// In append mode, how long appended packets wait before they are written out, when
/// a rule does not say.
pub const DEFAULT_FLUSH: Duration = Duration::from_secs(2);
/// In batch mode, the longest a batch stays open before it is written out, when a
/// rule does not say: long enough that a quiet source still makes files of many
/// packets, short enough that an archive lags its orb by minutes, not hours.
pub const DEFAULT_MAX_BATCH_AGE: Duration = Duration::from_secs(600);
/// The packet rate (per second, all selected sources together) that `--check`
/// assumes when it warns that a batch rule's files will be far smaller than
/// `packets_per_read`: a small network sends about one packet per second per source.
pub const ASSUMED_PACKET_RATE: u32 = 50;
/// Catalog directory, beside the rule file, when the file does not say.
pub const DEFAULT_CATALOG: &str = "catalog";

/// A whole rule file, checked.
#[derive(Debug, Clone, Serialize)]
pub struct RuleFile {
    /// The file it was read from.
    pub path: PathBuf,
    /// Directory of the catalog (resolved).
    pub catalog: PathBuf,
    /// Reap rules, in file order.
    pub reap: Vec<ReapRule>,
    /// Ingest rules, in file order.
    pub ingest: Vec<IngestRule>,
    /// Detect rules, in file order.
    pub detect: Vec<DetectRule>,
    /// What the file allows but probably does not mean, in file order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<RuleWarning>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    catalog: Option<Spanned<String>>,
    stations: Option<Spanned<String>>,
    #[serde(default)]
    reap: Vec<Spanned<RawReap>>,
    #[serde(default)]
    ingest: Vec<Spanned<RawIngest>>,
    #[serde(default)]
    detect: Vec<Spanned<RawDetect>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetect {
    name: Spanned<String>,
    orb: Spanned<String>,
    select: Option<Spanned<String>>,
    reject: Option<Spanned<String>>,
    channels: Option<Spanned<String>>,
    method: Option<Spanned<StaLtaKind>>,
    sta: Option<Spanned<f64>>,
    lta: Option<Spanned<f64>>,
    statistic: Option<Spanned<Statistic>>,
    window: Option<Spanned<f64>>,
    baseline: Option<Spanned<f64>>,
    scale: Option<Spanned<Scale>>,
    direction: Option<Spanned<Direction>>,
    min_std: Option<Spanned<f64>>,
    freeze: Option<Spanned<bool>>,
    on: Spanned<f64>,
    off: Spanned<f64>,
    bandpass: Option<Spanned<Vec<f64>>>,
    corners: Option<Spanned<i64>>,
    min_duration: Option<Spanned<f64>>,
    holdoff: Option<Spanned<f64>>,
    max_len: Option<Spanned<f64>>,
    start: Option<Spanned<StartValue>>,
    state: Option<Spanned<String>>,
    coincidence: Option<Spanned<RawCoincidence>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCoincidence {
    threshold: Spanned<f64>,
    window: Option<Spanned<f64>>,
    stations: Option<Spanned<Vec<String>>>,
    weights: Option<Spanned<BTreeMap<String, f64>>>,
    timeout: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReap {
    name: Spanned<String>,
    collection: Option<Spanned<String>>,
    orb: Spanned<String>,
    select: Option<Spanned<String>>,
    reject: Option<Spanned<String>>,
    start: Option<Spanned<StartValue>>,
    delay: Option<Spanned<String>>,
    every: Option<Spanned<String>>,
    packets_per_read: Option<Spanned<i64>>,
    reads_per_run: Option<Spanned<i64>>,
    flush: Option<Spanned<String>>,
    max_batch_age: Option<Spanned<String>>,
    format: Spanned<Format>,
    netcdf_version: Option<Spanned<NetcdfVersion>>,
    stations: Option<Spanned<String>>,
    path: Spanned<String>,
    mode: Option<Spanned<Mode>>,
    roll: Option<Spanned<String>>,
    state: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIngest {
    name: Spanned<String>,
    from: Option<Spanned<String>>,
    to: Spanned<String>,
    select: Option<Spanned<String>>,
    reject: Option<Spanned<String>>,
    start: Option<Spanned<StartValue>>,
    state: Option<Spanned<String>>,
    format: Option<Spanned<Format>>,
    path: Option<Spanned<String>>,
    mode: Option<Spanned<Mode>>,
    roll: Option<Spanned<String>>,
    srcname: Option<Spanned<String>>,
    time: Option<Spanned<String>>,
    payload: Option<Spanned<String>>,
    file: Option<Spanned<String>>,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum StartValue {
    Pktid(i64),
    Text(String),
}

/// Locates errors in one file's text.
struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
    root: PathBuf,
    warnings: RefCell<Vec<RuleWarning>>,
    /// Station metadata files already loaded, so rules naming one file share it.
    stations: RefCell<HashMap<PathBuf, Arc<Inventory>>>,
    /// The file-level `stations`, for rules that name none.
    default_stations: OnceCell<Option<RuleStations>>,
}

/// A rule's station metadata: the file (resolved) and what it holds.
type RuleStations = (PathBuf, Arc<Inventory>);

impl Ctx<'_> {
    /// Line and column (from 1) of a byte offset.
    fn locate(&self, span: &Range<usize>) -> (usize, usize) {
        let at = span.start.min(self.text.len());
        let before = &self.text[..at];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    fn warn(&self, span: Range<usize>, field: &str, message: impl Into<String>) {
        let (line, column) = self.locate(&span);
        self.warnings.borrow_mut().push(RuleWarning {
            file: self.file.to_owned(),
            line,
            column,
            field: field.to_owned(),
            message: message.into(),
        });
    }

    fn err(&self, span: Range<usize>, field: &str, message: impl Into<String>) -> RuleError {
        let (line, column) = self.locate(&span);
        RuleError::Invalid {
            file: self.file.to_owned(),
            line,
            column,
            field: field.to_owned(),
            // Values quoted from the file may hold line breaks; errors stay one line.
            message: message.into().replace('\r', "\\r").replace('\n', "\\n"),
        }
    }

    fn at<T>(&self, v: &Spanned<T>, field: &str, message: impl Into<String>) -> RuleError {
        self.err(v.span(), field, message)
    }

    fn resolve(&self, p: &str) -> PathBuf {
        self.root.join(p)
    }

    /// Loads (once per file) the station metadata `v` names.
    fn load_stations(&self, v: &Spanned<String>, field: &str) -> Result<RuleStations, RuleError> {
        if v.get_ref().is_empty() {
            return Err(self.at(
                v,
                field,
                "empty; name a StationXML file (.xml) or a TOML station table (.toml)",
            ));
        }
        let path = self.resolve(v.get_ref());
        if let Some(inv) = self.stations.borrow().get(&path) {
            return Ok((path, inv.clone()));
        }
        let inv = Inventory::load(&path).map_err(|e| {
            self.at(
                v,
                field,
                format!("cannot use the station metadata in {}: {e}", path.display()),
            )
        })?;
        let inv = Arc::new(inv);
        self.stations.borrow_mut().insert(path.clone(), inv.clone());
        Ok((path, inv))
    }

    /// A toml/serde error: the field comes from the message (`unknown field`,
    /// `missing field`) or from the key on the line the span points at.
    fn toml_err(&self, e: &toml::de::Error) -> RuleError {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().replace('\n', " ");
        let field = field_in_message(&message)
            .or_else(|| self.key_at(span.start))
            .unwrap_or_default();
        let message = if message.starts_with("invalid type") || message.contains("did not match") {
            format!("{message}; see docs/RULES.md for the field's type")
        } else {
            message
        };
        self.err(span, &field, message)
    }

    fn key_at(&self, offset: usize) -> Option<String> {
        let at = offset.min(self.text.len());
        let start = self.text[..at].rfind('\n').map_or(0, |i| i + 1);
        let line = self.text[start..].lines().next()?;
        let (key, _) = line.split_once('=')?;
        let key = key.trim();
        (!key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            .then(|| key.to_owned())
    }
}

fn field_in_message(m: &str) -> Option<String> {
    for pat in ["unknown field `", "missing field `", "duplicate key `"] {
        if let Some(i) = m.find(pat) {
            let rest = &m[i + pat.len()..];
            return rest.split('`').next().map(str::to_owned);
        }
    }
    None
}

impl RuleFile {
    /// Reads and checks the rule file at `path`. Paths in it are resolved against
    /// its directory made absolute, so the catalog and sidecars name files that
    /// `orbreaper find` can report from anywhere.
    pub fn load(path: &Path) -> Result<RuleFile, RuleError> {
        let read_err = |reason| RuleError::Read {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(read_err)?;
        let origin = std::path::absolute(path).map_err(read_err)?;
        let mut file = RuleFile::parse(&text, &origin).map_err(|e| match e {
            // Errors name the file as the user gave it.
            RuleError::Invalid {
                line,
                column,
                field,
                message,
                ..
            } => RuleError::Invalid {
                file: path.to_owned(),
                line,
                column,
                field,
                message,
            },
            other => other,
        })?;
        for w in &mut file.warnings {
            path.clone_into(&mut w.file);
        }
        Ok(file)
    }

    /// Checks rule-file `text` read from `origin`; relative paths in it are relative
    /// to `origin`'s directory.
    pub fn parse(text: &str, origin: &Path) -> Result<RuleFile, RuleError> {
        let root = origin.parent().map(Path::to_owned).unwrap_or_default();
        let ctx = Ctx {
            file: origin,
            text,
            root,
            warnings: RefCell::new(Vec::new()),
            stations: RefCell::new(HashMap::new()),
            default_stations: OnceCell::new(),
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| ctx.toml_err(&e))?;
        let default_stations = raw
            .stations
            .as_ref()
            .map(|v| ctx.load_stations(v, "stations"))
            .transpose()?;
        let _ = ctx.default_stations.set(default_stations);
        let mut names: HashMap<String, Range<usize>> = HashMap::new();
        let mut states: HashSet<PathBuf> = HashSet::new();
        let mut claim = |name: &Spanned<String>, rule_states: &[&Path], span: Range<usize>| {
            if names.contains_key(name.get_ref()) {
                return Err(ctx.at(
                    name,
                    "name",
                    format!(
                        "rule name {:?} is used twice; give every rule its own name",
                        name.get_ref()
                    ),
                ));
            }
            names.insert(name.get_ref().clone(), name.span());
            for state in rule_states {
                if !states.insert(state.to_path_buf()) {
                    return Err(ctx.err(
                        span,
                        "state",
                        format!(
                            "state file {} is used by two rules; give each rule its own",
                            state.display()
                        ),
                    ));
                }
            }
            Ok(())
        };
        let mut reap = Vec::new();
        for r in &raw.reap {
            let rule = reap_rule(&ctx, r.get_ref())?;
            let span = r.get_ref().state.as_ref().map_or(r.span(), Spanned::span);
            claim(&r.get_ref().name, &[&rule.state], span)?;
            reap.push(rule);
        }
        let mut ingest = Vec::new();
        for r in &raw.ingest {
            let rule = ingest_rule(&ctx, r.get_ref())?;
            let span = r.get_ref().state.as_ref().map_or(r.span(), Spanned::span);
            let rule_states: Vec<&Path> = match &rule.action {
                IngestAction::Forward { state, archive, .. } => {
                    let mut v = vec![state.as_path()];
                    v.extend(archive.iter().map(|a| a.state.as_path()));
                    v
                }
                IngestAction::Put { state, .. } | IngestAction::File { state, .. } => {
                    vec![state.as_path()]
                }
            };
            claim(&r.get_ref().name, &rule_states, span)?;
            ingest.push(rule);
        }
        let mut detect = Vec::new();
        for r in &raw.detect {
            let rule = detect_rule(&ctx, r.get_ref())?;
            let span = r.get_ref().state.as_ref().map_or(r.span(), Spanned::span);
            claim(&r.get_ref().name, &[&rule.state], span)?;
            detect.push(rule);
        }
        if reap.is_empty() && ingest.is_empty() && detect.is_empty() {
            return Err(ctx.err(
                0..0,
                "",
                "no rules: add a [[reap]], [[ingest]] or [[detect]] table (see docs/RULES.md)",
            ));
        }
        let catalog = match &raw.catalog {
            Some(c) if c.get_ref().is_empty() => {
                return Err(ctx.at(c, "catalog", "empty; name a directory, like \"catalog\""))
            }
            Some(c) => ctx.resolve(c.get_ref()),
            None => ctx.resolve(DEFAULT_CATALOG),
        };
        Ok(RuleFile {
            path: origin.to_owned(),
            catalog,
            reap,
            ingest,
            detect,
            warnings: ctx.warnings.into_inner(),
        })
    }

    /// The catalog file of this rule file: `<catalog>/<rule file stem>.jsonl`.
    pub fn catalog_file(&self) -> PathBuf {
        let stem = self
            .path
            .file_stem()
            .map_or_else(|| "rules".into(), |s| s.to_string_lossy().into_owned());
        self.catalog.join(format!("{stem}.jsonl"))
    }
}

fn check_name(ctx: &Ctx<'_>, name: &Spanned<String>) -> Result<String, RuleError> {
    let n = name.get_ref();
    let ok = !n.is_empty()
        && !n.starts_with('.')
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !ok {
        return Err(ctx.at(
            name,
            "name",
            format!("{n:?} is not a rule name: use 1 to 64 letters, digits, '_', '.' or '-', not starting with '.'"),
        ));
    }
    Ok(n.clone())
}

fn check_orb(ctx: &Ctx<'_>, field: &str, v: &Spanned<String>) -> Result<OrbAddr, RuleError> {
    v.get_ref()
        .parse::<OrbAddr>()
        .map_err(|e| ctx.at(v, field, e.to_string()))
}

fn check_select(
    ctx: &Ctx<'_>,
    select: &Option<Spanned<String>>,
    reject: &Option<Spanned<String>>,
) -> Result<SrcSelect, RuleError> {
    let text = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.get_ref().clone());
    if let Some(s) = select {
        SrcSelect::new(Some(s.get_ref()), None).map_err(|e| ctx.at(s, "select", e.to_string()))?;
    }
    if let Some(r) = reject {
        SrcSelect::new(None, Some(r.get_ref())).map_err(|e| ctx.at(r, "reject", e.to_string()))?;
    }
    SrcSelect::new(text(select).as_deref(), text(reject).as_deref())
        .map_err(|e| ctx.err(0..0, "select", e.to_string()))
}

fn check_start(ctx: &Ctx<'_>, v: &Spanned<StartValue>) -> Result<Start, RuleError> {
    const ALLOWED: &str = "use \"oldest\", \"newest\", a pktid (like 1234) or a UTC time (like \"2026-11-22T10:00:00Z\" or epoch seconds \"1763805600.0\")";
    match v.get_ref() {
        StartValue::Pktid(p) => u64::try_from(*p)
            .map(Start::Pktid)
            .map_err(|_| ctx.at(v, "start", format!("pktid {p} is negative; {ALLOWED}"))),
        StartValue::Text(s) => match s.trim() {
            "oldest" => Ok(Start::Oldest),
            "newest" => Ok(Start::Newest),
            t if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => t
                .parse()
                .map(Start::Pktid)
                .map_err(|_| ctx.at(v, "start", format!("pktid {t} is out of range"))),
            t => Time::parse_iso8601(t)
                .or_else(|_| Time::parse_epoch(t))
                .map(Start::Time)
                .map_err(|_| ctx.at(v, "start", format!("{t:?} is not a start; {ALLOWED}"))),
        },
    }
}

fn check_duration(
    ctx: &Ctx<'_>,
    field: &str,
    v: &Spanned<String>,
    allow_zero: bool,
) -> Result<Duration, RuleError> {
    let d = formats::parse_duration(v.get_ref()).map_err(|_| {
        ctx.at(
            v,
            field,
            format!(
                "{:?} is not a duration; write one like \"30s\", \"10m\", \"1h 30m\" or \"500ms\"",
                v.get_ref()
            ),
        )
    })?;
    if d.is_zero() && !allow_zero {
        return Err(ctx.at(v, field, "must be longer than zero, like \"10m\""));
    }
    Ok(d)
}

fn check_count(ctx: &Ctx<'_>, field: &str, v: &Spanned<i64>) -> Result<u32, RuleError> {
    u32::try_from(*v.get_ref())
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            ctx.at(
                v,
                field,
                format!(
                    "{} is not allowed; use a whole number from 1 to {}",
                    v.get_ref(),
                    u32::MAX
                ),
            )
        })
}

/// The parts of a rule that say what files to write.
struct Output<'a> {
    format: &'a Spanned<Format>,
    path: &'a Spanned<String>,
    mode: Option<&'a Spanned<Mode>>,
    roll: Option<&'a Spanned<String>>,
}

/// What [`check_output`] found: format, path template, mode, roll, SDS path.
type CheckedOutput = (
    Format,
    PathTemplate,
    Mode,
    Option<Duration>,
    Option<SdsTemplate>,
);

fn check_output(ctx: &Ctx<'_>, o: &Output<'_>) -> Result<CheckedOutput, RuleError> {
    let format = *o.format.get_ref();
    let path =
        PathTemplate::parse(o.path.get_ref()).map_err(|e| ctx.at(o.path, "path", e.to_string()))?;
    if format == Format::Sds {
        return check_sds_output(ctx, o, path);
    }
    let mode = o.mode.map_or(Mode::Batch, |m| *m.get_ref());
    let roll = match o.roll {
        Some(r) => Some(check_duration(ctx, "roll", r, false)?),
        None => None,
    };
    match mode {
        Mode::Batch => {
            if !path.has_pktid() {
                return Err(ctx.at(
                    o.path,
                    "path",
                    "in batch mode each batch is a new file, so the path must contain {first_pktid} or {last_pktid}, or later batches would overwrite earlier ones; add one, or set mode = \"append\"",
                ));
            }
            if let Some(r) = o.roll {
                return Err(ctx.at(
                    r,
                    "roll",
                    "roll applies only to mode = \"append\"; remove it or set mode = \"append\"",
                ));
            }
        }
        Mode::Append => {
            if !format.appendable() {
                let at = o.mode.map_or(o.format.span(), Spanned::span);
                return Err(ctx.err(
                    at,
                    "mode",
                    format!("format {format} cannot be appended to (it is written whole); use mode = \"batch\", or format netcdf, json or raw"),
                ));
            }
            if path.has_pktid() {
                return Err(ctx.at(o.path, "path", "{first_pktid} and {last_pktid} change as an append-mode file grows; remove them, or use mode = \"batch\""));
            }
            if let (Some(r), Some(rs)) = (roll, o.roll) {
                match path.time_resolution() {
                    None => return Err(ctx.at(o.path, "path", "with roll, the path must contain a time placeholder ({date}, {hour}, {minute}, {time}, ...) so each period gets its own file")),
                    Some(res) if res > r => return Err(ctx.at(rs, "roll", format!(
                        "a roll of {} is shorter than the path's finest time placeholder ({}), so files of different periods would get the same name; use a finer placeholder like {{hour}} or {{time}}, or a longer roll",
                        humantime::format_duration(r), humantime::format_duration(res)))),
                    Some(_) => {}
                }
            }
        }
    }
    Ok((format, path, mode, roll, None))
}

/// [`check_output`] for format `sds`: always append mode, a new file each UTC day.
fn check_sds_output(
    ctx: &Ctx<'_>,
    o: &Output<'_>,
    path: PathTemplate,
) -> Result<CheckedOutput, RuleError> {
    if !path.is_literal() {
        return Err(ctx.at(
            o.path,
            "path",
            "format sds names files with ringserver's % codes (%n %s %l %c %Y %y %j), not {placeholders}; give the archive root, such as \"sds\", for the SDS layout",
        ));
    }
    let sds = SdsTemplate::from_rule_path(o.path.get_ref())
        .map_err(|e| ctx.at(o.path, "path", e.to_string()))?;
    if let Some(m) = o.mode.filter(|m| *m.get_ref() == Mode::Batch) {
        return Err(ctx.at(
            m,
            "mode",
            "format sds appends to one file per channel and day; remove mode or set mode = \"append\"",
        ));
    }
    if let Some(r) = o.roll {
        return Err(ctx.at(
            r,
            "roll",
            "format sds starts a new file at each midnight UTC by itself; remove roll",
        ));
    }
    Ok((Format::Sds, path, Mode::Append, None, Some(sds)))
}

fn reap_rule(ctx: &Ctx<'_>, r: &RawReap) -> Result<ReapRule, RuleError> {
    let name = check_name(ctx, &r.name)?;
    let addr = check_orb(ctx, "orb", &r.orb)?;
    let filter = check_select(ctx, &r.select, &r.reject)?;
    let start = match &r.start {
        Some(s) => check_start(ctx, s)?,
        None => Start::Oldest,
    };
    let schedule = match (&r.delay, &r.every) {
        (None, None) => Schedule::Continuous,
        (Some(d), None) => {
            return Err(ctx.at(d, "delay", "delay needs every (the period of scheduled runs); add every = \"10m\", or remove delay for a continuous rule"))
        }
        (d, Some(e)) => Schedule::Every {
            delay: match d {
                Some(d) => check_duration(ctx, "delay", d, true)?,
                None => Duration::ZERO,
            },
            every: check_duration(ctx, "every", e, false)?,
        },
    };
    let packets_per_read = match &r.packets_per_read {
        Some(n) => check_count(ctx, "packets_per_read", n)?,
        None => DEFAULT_PACKETS_PER_READ,
    };
    let reads_per_run =
        match &r.reads_per_run {
            Some(n) if schedule == Schedule::Continuous => return Err(ctx.at(
                n,
                "reads_per_run",
                "reads_per_run applies only to scheduled rules; add every = \"10m\" or remove it",
            )),
            Some(n) => Some(check_count(ctx, "reads_per_run", n)?),
            None => None,
        };
    let flush = match &r.flush {
        Some(f) => Some(check_duration(ctx, "flush", f, false)?),
        None => None,
    };
    let max_batch_age = match &r.max_batch_age {
        Some(a) => Some(check_duration(ctx, "max_batch_age", a, false)?),
        None => None,
    };
    let (format, path, mode, roll, sds_path) = check_output(
        ctx,
        &Output {
            format: &r.format,
            path: &r.path,
            mode: r.mode.as_ref(),
            roll: r.roll.as_ref(),
        },
    )?;
    let (flush, max_batch_age) = match mode {
        Mode::Batch => (
            None,
            Some(batch_age(
                ctx,
                r,
                schedule,
                packets_per_read,
                flush,
                max_batch_age,
            )?),
        ),
        Mode::Append => {
            if let Some(a) = &r.max_batch_age {
                return Err(ctx.at(a, "max_batch_age", "applies only to mode = \"batch\" (an append-mode file grows, whatever its age); for how long appended packets wait before they are written out, use flush"));
            }
            (Some(flush.unwrap_or(DEFAULT_FLUSH)), None)
        }
    };
    let netcdf_version = match &r.netcdf_version {
        Some(v) if format != Format::Netcdf => {
            return Err(ctx.at(
                v,
                "netcdf_version",
                format!("applies only to format = \"netcdf\", not {format}; remove it"),
            ))
        }
        Some(v) => *v.get_ref(),
        None => NetcdfVersion::default(),
    };
    // Raw and SDS files carry no station metadata: a rule naming some for them is a
    // mistake; the file-level default simply does not apply to them.
    let carries_metadata = matches!(format, Format::Netcdf | Format::Cdl | Format::Json);
    let stations = match &r.stations {
        Some(v) if !carries_metadata => {
            return Err(ctx.at(
                v,
                "stations",
                format!("applies only to formats netcdf, cdl and json, not {format}; remove it"),
            ))
        }
        Some(v) => Some(ctx.load_stations(v, "stations")?),
        None if carries_metadata => ctx.default_stations.get().cloned().flatten(),
        None => None,
    };
    let collection = match &r.collection {
        Some(c) if c.get_ref().is_empty() => {
            return Err(ctx.at(
                c,
                "collection",
                "empty; name the collection, or remove the field to use the rule name",
            ))
        }
        Some(c) => c.get_ref().clone(),
        None => name.clone(),
    };
    Ok(ReapRule {
        state: state_path(ctx, &r.state, &name, "")?,
        name,
        collection,
        orb: r.orb.get_ref().clone(),
        addr,
        select: r.select.as_ref().map(|s| s.get_ref().clone()),
        reject: r.reject.as_ref().map(|s| s.get_ref().clone()),
        filter,
        start,
        schedule,
        packets_per_read,
        reads_per_run,
        flush,
        max_batch_age,
        format,
        netcdf_version,
        stations: stations.as_ref().map(|(p, _)| p.clone()),
        metadata: stations.map(|(_, inv)| inv),
        path,
        sds_path,
        root: ctx.root.clone(),
        mode,
        roll,
    })
}

/// A batch rule's `max_batch_age` (or `flush`, its old name), with a warning when the
/// age or the schedule cuts batches long before they reach `packets_per_read`.
fn batch_age(
    ctx: &Ctx<'_>,
    r: &RawReap,
    schedule: Schedule,
    packets_per_read: u32,
    flush: Option<Duration>,
    max_batch_age: Option<Duration>,
) -> Result<Duration, RuleError> {
    if let (Some(f), Some(_)) = (&r.flush, &r.max_batch_age) {
        return Err(ctx.at(
            f,
            "flush",
            "in batch mode flush is the old name of max_batch_age, which is also set; remove flush",
        ));
    }
    if let Some(f) = &r.flush {
        ctx.warn(f.span(), "flush", format!(
            "in batch mode this is now called max_batch_age (the longest a batch stays open); rename it, or remove it for the default of {}",
            humantime::format_duration(DEFAULT_MAX_BATCH_AGE)));
    }
    let age = max_batch_age.or(flush).unwrap_or(DEFAULT_MAX_BATCH_AGE);
    // Whichever ends a batch first: its age, or (scheduled rules) the end of a run.
    let (window, field, span, cause, advice) = match (schedule, &r.every) {
        (Schedule::Every { every, .. }, Some(e)) if every < age => (
            every,
            "every",
            e.span(),
            "each scheduled run ends its batch",
            "run less often or lower packets_per_read",
        ),
        _ => {
            let (field, span) = match (&r.max_batch_age, &r.flush, &r.packets_per_read) {
                (Some(a), _, _) => ("max_batch_age", a.span()),
                (None, Some(f), _) => ("flush", f.span()),
                (None, None, Some(n)) => ("packets_per_read", n.span()),
                (None, None, None) => ("name", r.name.span()),
            };
            (
                age,
                field,
                span,
                "a batch is written when it is max_batch_age old",
                "raise max_batch_age or lower packets_per_read",
            )
        }
    };
    let filled_at = f64::from(ASSUMED_PACKET_RATE) * window.as_secs_f64();
    if filled_at < f64::from(packets_per_read) {
        let needed = f64::from(packets_per_read) / window.as_secs_f64();
        ctx.warn(span, field, format!(
            "files will be far smaller than packets_per_read = {packets_per_read}: {cause} ({}), so it fills only if the selected sources send over {needed:.0} packets per second together, and a small network sends about one per second per source; {advice}",
            humantime::format_duration(window)));
    }
    Ok(age)
}

fn state_path(
    ctx: &Ctx<'_>,
    state: &Option<Spanned<String>>,
    name: &str,
    suffix: &str,
) -> Result<PathBuf, RuleError> {
    match state {
        Some(s) if s.get_ref().is_empty() => Err(ctx.at(
            s,
            "state",
            "empty; name a file, like \"state/rule.json\", or remove the field",
        )),
        Some(s) if suffix.is_empty() => Ok(ctx.resolve(s.get_ref())),
        Some(s) => Ok(ctx.resolve(&format!("{}{suffix}", s.get_ref()))),
        None => Ok(ctx.resolve(&format!("state/{name}{suffix}.json"))),
    }
}

fn ingest_rule(ctx: &Ctx<'_>, r: &RawIngest) -> Result<IngestRule, RuleError> {
    let name = check_name(ctx, &r.name)?;
    let to_addr = check_orb(ctx, "to", &r.to)?;
    let action = match &r.from {
        Some(from) => {
            for (field, v) in [
                ("srcname", &r.srcname),
                ("time", &r.time),
                ("payload", &r.payload),
            ] {
                if let Some(v) = v {
                    return Err(ctx.at(v, field, format!("{field} belongs to a put rule (without from); remove it or remove from")));
                }
            }
            let from_addr = check_orb(ctx, "from", from)?;
            check_select(ctx, &r.select, &r.reject)?;
            let start = r.start.as_ref().map(|s| check_start(ctx, s)).transpose()?;
            let archive = match (&r.format, &r.path) {
                (None, None) => {
                    for (field, v) in [
                        ("mode", r.mode.as_ref().map(Spanned::span)),
                        ("roll", r.roll.as_ref().map(Spanned::span)),
                    ] {
                        if let Some(span) = v {
                            return Err(ctx.err(
                                span,
                                field,
                                format!("{field} needs format and path (the archive to write)"),
                            ));
                        }
                    }
                    None
                }
                (Some(format), Some(path)) => {
                    let raw = RawReap {
                        name: r.name.clone(),
                        collection: None,
                        orb: from.clone(),
                        select: r.select.clone(),
                        reject: r.reject.clone(),
                        start: r.start.clone(),
                        delay: None,
                        every: None,
                        packets_per_read: None,
                        reads_per_run: None,
                        flush: None,
                        max_batch_age: None,
                        format: format.clone(),
                        netcdf_version: None,
                        stations: None,
                        path: path.clone(),
                        mode: r.mode.clone(),
                        roll: r.roll.clone(),
                        state: None,
                    };
                    let mut rule = reap_rule(ctx, &raw)?;
                    rule.state = state_path(ctx, &r.state, &name, ".archive")?;
                    if r.start.is_none() {
                        rule.start = Start::Newest;
                    }
                    Some(Box::new(rule))
                }
                (Some(f), None) => {
                    return Err(ctx.at(f, "format", "format needs path (where to write the files)"))
                }
                (None, Some(p)) => {
                    return Err(ctx.at(
                        p,
                        "path",
                        "path needs format (netcdf, cdl, json, raw or sds)",
                    ))
                }
            };
            IngestAction::Forward {
                from: from.get_ref().clone(),
                from_addr,
                to: r.to.get_ref().clone(),
                to_addr,
                select: r.select.as_ref().map(|s| s.get_ref().clone()),
                reject: r.reject.as_ref().map(|s| s.get_ref().clone()),
                start,
                state: state_path(ctx, &r.state, &name, "")?,
                archive,
            }
        }
        None => {
            let file_rule = r.file.is_some();
            for (field, v) in [
                (
                    "srcname",
                    r.srcname.as_ref().map(Spanned::span).filter(|_| file_rule),
                ),
                (
                    "time",
                    r.time.as_ref().map(Spanned::span).filter(|_| file_rule),
                ),
                (
                    "payload",
                    r.payload.as_ref().map(Spanned::span).filter(|_| file_rule),
                ),
            ] {
                if let Some(span) = v {
                    return Err(ctx.err(span, field, format!("{field} belongs to a literal put rule, not to one with file; remove one of them")));
                }
            }
            for (field, v) in [
                ("select", r.select.as_ref().map(Spanned::span)),
                ("reject", r.reject.as_ref().map(Spanned::span)),
                ("start", r.start.as_ref().map(Spanned::span)),
                ("format", r.format.as_ref().map(Spanned::span)),
                ("path", r.path.as_ref().map(Spanned::span)),
                ("mode", r.mode.as_ref().map(Spanned::span)),
                ("roll", r.roll.as_ref().map(Spanned::span)),
            ] {
                if let Some(span) = v {
                    return Err(ctx.err(span, field, format!("{field} belongs to a forwarding rule; add from = \"host:port\" or remove it")));
                }
            }
            if let Some(file) = &r.file {
                if file.get_ref().is_empty() {
                    return Err(ctx.at(file, "file", "empty; name a raw packet file (written by a reap rule with format = \"raw\")"));
                }
                return Ok(IngestRule {
                    action: IngestAction::File {
                        to: r.to.get_ref().clone(),
                        to_addr,
                        file: ctx.resolve(file.get_ref()),
                        state: state_path(ctx, &r.state, &name, "")?,
                    },
                    name,
                });
            }
            let payload = r.payload.as_ref().ok_or_else(|| {
                ctx.at(&r.name, "payload", "an ingest rule needs from (to forward from another orb), file (to put a raw file's packets) or payload and srcname (to put one packet)")
            })?;
            let srcname = r.srcname.as_ref().ok_or_else(|| {
                ctx.at(
                    payload,
                    "srcname",
                    "a put rule needs srcname, like \"XX_STA/GENC/LOG\"",
                )
            })?;
            let srcname_v = SrcName::new(srcname.get_ref())
                .map_err(|e| ctx.at(srcname, "srcname", e.to_string()))?;
            let time = match &r.time {
                Some(t) => Some(
                    Time::parse_iso8601(t.get_ref())
                        .or_else(|_| Time::parse_epoch(t.get_ref()))
                        .map_err(|_| ctx.at(t, "time", format!("{:?} is not a time; write a UTC time like \"2026-11-22T10:00:00Z\" or epoch seconds", t.get_ref())))?,
                ),
                None => None,
            };
            IngestAction::Put {
                to: r.to.get_ref().clone(),
                to_addr,
                srcname: srcname_v,
                time,
                payload: payload.get_ref().clone(),
                state: state_path(ctx, &r.state, &name, "")?,
            }
        }
    };
    Ok(IngestRule { name, action })
}

/// A number of seconds that must be finite and above zero (or zero, with `allow_zero`).
fn check_seconds(
    ctx: &Ctx<'_>,
    field: &str,
    v: &Spanned<f64>,
    allow_zero: bool,
) -> Result<f64, RuleError> {
    let x = *v.get_ref();
    let ok = x.is_finite() && (x > 0.0 || (allow_zero && x == 0.0));
    if !ok {
        let what = if allow_zero { "at least 0" } else { "above 0" };
        return Err(ctx.at(
            v,
            field,
            format!("{x} is not allowed; give seconds, a finite number {what}"),
        ));
    }
    Ok(x)
}

fn detect_rule(ctx: &Ctx<'_>, r: &RawDetect) -> Result<DetectRule, RuleError> {
    let name = check_name(ctx, &r.name)?;
    let addr = check_orb(ctx, "orb", &r.orb)?;
    let filter = check_select(ctx, &r.select, &r.reject)?;
    let channels = r.channels.as_ref().map_or(".*", |c| c.get_ref().as_str());
    let channels_re = match &r.channels {
        Some(c) if c.get_ref().is_empty() => {
            return Err(ctx.at(c, "channels", "empty; give a regular expression for channel codes, like \"BHZ\" or \"[BH]H[ZNE]\", or remove the field for every channel"));
        }
        Some(c)
            if !c
                .get_ref()
                .contains(['.', '[', '(', '*', '+', '?', '|', '\\'])
                && !c.get_ref().bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            return Err(ctx.at(c, "channels", format!("{:?} is not a channel code (letters and digits, like \"BHZ\") or a regular expression of them", c.get_ref())));
        }
        _ => regex::Regex::new(&format!("^(?:{channels})$")).map_err(|e| {
            let span = r.channels.as_ref().map_or(r.name.span(), Spanned::span);
            ctx.err(
                span,
                "channels",
                format!(
                    "not a valid regular expression: {}",
                    e.to_string().replace('\n', " ")
                ),
            )
        })?,
    };
    // With station metadata, a channel pattern that names no channel in it is a typo.
    if let (Some(c), Some(Some((path, inv)))) = (&r.channels, ctx.default_stations.get()) {
        if !inv
            .stations
            .iter()
            .flat_map(|s| &s.channels)
            .any(|ch| channels_re.is_match(&ch.chan))
        {
            return Err(ctx.at(
                c,
                "channels",
                format!(
                    "{:?} matches no channel of the station metadata {}: check the channel codes",
                    c.get_ref(),
                    path.display()
                ),
            ));
        }
    }
    let detector = match &r.statistic {
        None => {
            // STA/LTA: the windowed-statistic fields are a mistake here.
            let window_fields = [
                ("window", r.window.as_ref().map(Spanned::span)),
                ("baseline", r.baseline.as_ref().map(Spanned::span)),
                ("scale", r.scale.as_ref().map(Spanned::span)),
                ("direction", r.direction.as_ref().map(Spanned::span)),
                ("min_std", r.min_std.as_ref().map(Spanned::span)),
                ("freeze", r.freeze.as_ref().map(Spanned::span)),
            ];
            if let Some((field, Some(span))) = window_fields.into_iter().find(|(_, s)| s.is_some())
            {
                return Err(ctx.err(span, field, format!("{field} applies only to a windowed-statistic rule; add statistic = \"mean\" (or rms, min, max, rate) or remove it")));
            }
            let need = |field: &str, v: &Option<Spanned<f64>>| {
                match v {
                Some(v) => check_seconds(ctx, field, v, false),
                None => Err(ctx.err(r.name.span(), field, format!("missing; give {field} in seconds for an STA/LTA rule, or statistic = \"rms\" (mean, min, max, rate) and window and baseline for a windowed-statistic rule"))),
            }
            };
            let method = r
                .method
                .as_ref()
                .map_or(StaLtaKind::Recursive, |m| *m.get_ref());
            let sta = need("sta", &r.sta)?;
            let lta = need("lta", &r.lta)?;
            if lta <= sta {
                let span = r.lta.as_ref().map_or(r.name.span(), Spanned::span);
                return Err(ctx.err(span, "lta", format!("lta ({lta} s) must be longer than sta ({sta} s): make the long-term window longer or the short-term one shorter")));
            }
            DetectorRule::StaLta { method, sta, lta }
        }
        Some(statistic) => {
            let stalta_fields = [
                ("sta", r.sta.as_ref().map(Spanned::span)),
                ("lta", r.lta.as_ref().map(Spanned::span)),
                ("method", r.method.as_ref().map(Spanned::span)),
                ("bandpass", r.bandpass.as_ref().map(Spanned::span)),
                ("corners", r.corners.as_ref().map(Spanned::span)),
            ];
            if let Some((field, Some(span))) = stalta_fields.into_iter().find(|(_, s)| s.is_some())
            {
                return Err(ctx.err(span, field, format!("{field} applies only to an STA/LTA rule; a rule with statistic is a windowed-statistic rule (window, baseline, scale, direction)")));
            }
            let need = |field: &str, v: &Option<Spanned<f64>>| match v {
                Some(v) => check_seconds(ctx, field, v, false),
                None => Err(ctx.err(
                    statistic.span(),
                    field,
                    format!("missing; a windowed-statistic rule needs {field} in seconds"),
                )),
            };
            let window = need("window", &r.window)?;
            let baseline = need("baseline", &r.baseline)?;
            if baseline <= window {
                let span = r.baseline.as_ref().map_or(r.name.span(), Spanned::span);
                return Err(ctx.err(span, "baseline", format!("baseline ({baseline} s) must be longer than window ({window} s): the baseline is the norm the window is compared with")));
            }
            let min_std = match &r.min_std {
                Some(v) if !(v.get_ref().is_finite() && *v.get_ref() > 0.0) => {
                    return Err(ctx.at(v, "min_std", format!("{} is not allowed; the floor of the standard deviation is in the channel's units, a finite number above 0", v.get_ref())));
                }
                Some(v) => *v.get_ref(),
                None => 1e-6,
            };
            DetectorRule::Window(WindowRule {
                statistic: *statistic.get_ref(),
                window,
                baseline,
                scale: r.scale.as_ref().map_or(Scale::Sigmas, |v| *v.get_ref()),
                direction: r.direction.as_ref().map_or(Direction::Up, |v| *v.get_ref()),
                min_std,
                freeze: r.freeze.as_ref().is_none_or(|v| *v.get_ref()),
            })
        }
    };
    let threshold = |field: &str, v: &Spanned<f64>| {
        let x = *v.get_ref();
        if x.is_finite() && x > 0.0 {
            Ok(x)
        } else {
            Err(ctx.at(
                v,
                field,
                format!("{x} is not allowed; a threshold is a finite number above 0 (an STA/LTA ratio, or a windowed statistic's departure in units or standard deviations)"),
            ))
        }
    };
    let on = threshold("on", &r.on)?;
    let off = threshold("off", &r.off)?;
    if off > on {
        return Err(ctx.at(&r.off, "off", format!("off ({off}) is above on ({on}): a trigger ends when the ratio falls below off, so off must be at most on")));
    }
    let bandpass = match &r.bandpass {
        None => None,
        Some(b) => {
            let [f1, f2] = b.get_ref()[..] else {
                return Err(ctx.at(b, "bandpass", "give two band edges in Hz, like [1.0, 10.0]"));
            };
            if !(f1.is_finite() && f1 > 0.0 && f2.is_finite()) {
                return Err(ctx.at(
                    b,
                    "bandpass",
                    format!("[{f1}, {f2}]: band edges must be finite and above 0 Hz"),
                ));
            }
            if f1 >= f2 {
                return Err(ctx.at(
                    b,
                    "bandpass",
                    format!("[{f1}, {f2}]: the low edge must be below the high edge"),
                ));
            }
            Some([f1, f2])
        }
    };
    let corners = match &r.corners {
        Some(c) if bandpass.is_none() => {
            return Err(ctx.at(
                c,
                "corners",
                "corners applies only with bandpass; add bandpass = [f1, f2] or remove it",
            ));
        }
        Some(c) => usize::try_from(*c.get_ref())
            .ok()
            .filter(|n| (1..=10).contains(n))
            .ok_or_else(|| {
                ctx.at(
                    c,
                    "corners",
                    format!(
                        "{} is not allowed; use 1 to 10 (4 is ObsPy's default)",
                        c.get_ref()
                    ),
                )
            })?,
        None => 4,
    };
    let min_duration = r
        .min_duration
        .as_ref()
        .map(|v| check_seconds(ctx, "min_duration", v, true))
        .transpose()?
        .unwrap_or(0.0);
    let holdoff = r
        .holdoff
        .as_ref()
        .map(|v| check_seconds(ctx, "holdoff", v, true))
        .transpose()?
        .unwrap_or(0.0);
    let max_len = r
        .max_len
        .as_ref()
        .map(|v| check_seconds(ctx, "max_len", v, false))
        .transpose()?;
    let start = match &r.start {
        Some(s) => check_start(ctx, s)?,
        None => Start::Oldest,
    };
    let coincidence = match &r.coincidence {
        None => None,
        Some(c) => {
            let c = c.get_ref();
            let threshold = *c.threshold.get_ref();
            if !(threshold.is_finite() && threshold > 0.0) {
                return Err(ctx.at(&c.threshold, "threshold", format!("{threshold} is not allowed; the least coincidence sum is a finite number above 0")));
            }
            let window = c
                .window
                .as_ref()
                .map(|v| check_seconds(ctx, "window", v, true))
                .transpose()?
                .unwrap_or(0.0);
            let station_ok = |s: &str| !s.is_empty() && !s.contains(['/', ' ']);
            if let Some(st) = &c.stations {
                if st.get_ref().is_empty() {
                    return Err(ctx.at(st, "stations", "empty; list stations as \"NET_STA\", or remove the field for every station"));
                }
                if let Some(bad) = st
                    .get_ref()
                    .iter()
                    .find(|s| !station_ok(s) || !s.contains('_'))
                {
                    return Err(ctx.at(
                        st,
                        "stations",
                        format!("{bad:?} is not a station; write \"NET_STA\", like \"XX_STA01\""),
                    ));
                }
            }
            let weights = c
                .weights
                .as_ref()
                .map(|w| w.get_ref().clone())
                .unwrap_or_default();
            if let Some(w) = &c.weights {
                for (s, x) in w.get_ref() {
                    if !(x.is_finite() && *x >= 0.0) {
                        return Err(ctx.at(
                            w,
                            "weights",
                            format!(
                                "station {s:?} has weight {x}; weights are finite and at least 0"
                            ),
                        ));
                    }
                    if let Some(st) = &c.stations {
                        if !st.get_ref().contains(s) {
                            return Err(ctx.at(w, "weights", format!("station {s:?} is not in stations; add it there or remove its weight")));
                        }
                    }
                }
            }
            let timeout = c
                .timeout
                .as_ref()
                .map(|v| check_seconds(ctx, "timeout", v, false))
                .transpose()?
                .unwrap_or(crate::detect_rule::DEFAULT_COINCIDENCE_TIMEOUT);
            Some(CoincidenceRule {
                threshold,
                window,
                timeout,
                stations: c.stations.as_ref().map(|s| s.get_ref().clone()),
                weights,
            })
        }
    };
    Ok(DetectRule {
        state: state_path(ctx, &r.state, &name, "")?,
        name,
        orb: r.orb.get_ref().clone(),
        addr,
        select: r.select.as_ref().map(|s| s.get_ref().clone()),
        reject: r.reject.as_ref().map(|s| s.get_ref().clone()),
        filter,
        channels: channels.to_owned(),
        channels_re,
        detector,
        on,
        off,
        bandpass,
        corners,
        min_duration,
        holdoff,
        max_len,
        coincidence,
        start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "[[reap]]\nname = \"a\"\norb = \":6510\"\nformat = \"raw\"\npath = \"x/{first_pktid}.orb\"\n";

    const DETECT: &str = "[[detect]]\nname = \"local\"\norb = \":6510\"\nselect = \"XX_.*\"\n\
        channels = \"BHZ\"\nsta = 1.0\nlta = 30.0\non = 4.0\noff = 1.5\nbandpass = [1.0, 10.0]\n\
        min_duration = 0.5\nholdoff = 2.0\n[detect.coincidence]\nthreshold = 2.0\nwindow = 1.0\n\
        weights = { XX_A = 2.0 }\n";

    fn detect(text: &str) -> Result<RuleFile, RuleError> {
        RuleFile::parse(text, Path::new("/r/d.toml"))
    }

    #[test]
    fn detect_rules_are_read_with_defaults() {
        let f = detect(DETECT).unwrap();
        let d = &f.detect[0];
        assert_eq!(d.name, "local");
        assert_eq!(
            d.detector,
            DetectorRule::StaLta {
                method: StaLtaKind::Recursive,
                sta: 1.0,
                lta: 30.0
            }
        );
        assert_eq!(d.bandpass, Some([1.0, 10.0]));
        assert_eq!(d.corners, 4);
        assert!(d.channels_re.is_match("BHZ") && !d.channels_re.is_match("BHZZ"));
        assert_eq!(d.state, Path::new("/r/state/local.json"));
        let c = d.coincidence.as_ref().unwrap();
        assert_eq!((c.threshold, c.window, c.timeout), (2.0, 1.0, 30.0));
        assert_eq!((c.weight("XX_A"), c.weight("XX_B")), (Some(2.0), Some(1.0)));
        let cfg = d.detector_config(40.0).unwrap().unwrap();
        assert!(d.window_config(40.0).is_none());
        assert_eq!((cfg.stalta.nsta, cfg.stalta.nlta), (40, 1200));
        assert_eq!((cfg.onset.min_duration, cfg.onset.hold_off), (20, 80));
        // A band edge above Nyquist is known only with the channel's rate.
        assert_eq!(d.detector(10.0).unwrap_err().field(), "freqmax");
    }

    const WINDOW: &str = "[[detect]]\nname = \"baro\"\norb = \":6510\"\nchannels = \"LDO\"\n\
        statistic = \"rate\"\nwindow = 60.0\nbaseline = 1800.0\nscale = \"units\"\n\
        direction = \"both\"\non = 0.5\noff = 0.2\nholdoff = 600.0\n";

    #[test]
    fn windowed_statistic_rules_are_read_and_explained() {
        let f = detect(WINDOW).unwrap();
        let d = &f.detect[0];
        let DetectorRule::Window(w) = d.detector else {
            panic!("{:?}", d.detector)
        };
        assert_eq!(
            (w.statistic, w.window, w.baseline, w.scale, w.direction),
            (Statistic::Rate, 60.0, 1800.0, Scale::Units, Direction::Both)
        );
        assert!(w.freeze && w.min_std == 1e-6);
        assert!(d.detector_config(1.0).is_none());
        let c = d.window_config(1.0).unwrap().unwrap();
        assert_eq!((c.window, c.baseline, c.onset.hold_off), (60, 1800, 600));
        assert_eq!((c.onset.on, c.onset.off), (0.5, 0.2));
        assert!(matches!(
            d.detector(1.0).unwrap(),
            crate::detect::Detector::Window(_)
        ));
        // Defaults: sigmas, rises, frozen baseline.
        let f = detect(
            &WINDOW
                .replace("scale = \"units\"\n", "")
                .replace("direction = \"both\"\n", "")
                .replace("\"rate\"", "\"rms\""),
        )
        .unwrap();
        let DetectorRule::Window(w) = f.detect[0].detector else {
            panic!()
        };
        assert_eq!((w.scale, w.direction), (Scale::Sigmas, Direction::Up));
        // A window too short for the channel's rate is known only with the rate.
        assert_eq!(
            detect(&WINDOW.replace("window = 60.0", "window = 1.5"))
                .unwrap()
                .detect[0]
                .detector(0.5)
                .unwrap_err()
                .field(),
            "window"
        );
        let line = d.explain();
        for says in [
            "detect rule baro",
            "rate of change",
            "60 s",
            "1800 s baseline",
            "0.5 units above or below",
        ] {
            assert!(line.contains(says), "{says}: {line}");
        }
        let line = detect(DETECT).unwrap().detect[0].explain();
        for says in ["recursive STA/LTA (1 s / 30 s)", "1-10 Hz", "weighing 2"] {
            assert!(line.contains(says), "{says}: {line}");
        }
    }

    /// Bad windowed-statistic rules, and fields of one kind in a rule of the other,
    /// are refused with the line and field.
    #[test]
    fn bad_windowed_statistic_rules_name_line_and_field() {
        let cases: &[(&str, &str, usize, &str, &str)] = &[
            (
                "baseline = 1800.0",
                "baseline = 30.0",
                7,
                "baseline",
                "must be longer than window",
            ),
            ("baseline = 1800.0\n", "", 5, "baseline", "missing"),
            ("window = 60.0", "window = -1.0", 6, "window", "above 0"),
            ("\"rate\"", "\"median\"", 5, "statistic", "unknown variant"),
            ("\"units\"", "\"percent\"", 8, "scale", "unknown variant"),
            (
                "\"both\"",
                "\"sideways\"",
                9,
                "direction",
                "unknown variant",
            ),
            (
                "holdoff = 600.0",
                "holdoff = 600.0\nmin_std = 0.0",
                13,
                "min_std",
                "above 0",
            ),
            (
                "holdoff = 600.0",
                "holdoff = 600.0\nsta = 1.0",
                13,
                "sta",
                "only to an STA/LTA rule",
            ),
            (
                "holdoff = 600.0",
                "holdoff = 600.0\nbandpass = [1.0, 2.0]",
                13,
                "bandpass",
                "only to an STA/LTA rule",
            ),
            ("off = 0.2", "off = 0.7", 11, "off", "above on"),
        ];
        for (from, to, line, field, says) in cases {
            let text = WINDOW.replace(from, to);
            assert_ne!(text, WINDOW, "{from}");
            let e = detect(&text).unwrap_err();
            let RuleError::Invalid { line: l, .. } = &e else {
                panic!("{e}")
            };
            assert_eq!((*l, e.field()), (*line, Some(*field)), "{to}: {e}");
            assert!(e.to_string().contains(says), "{to}: {e}");
        }
        // Window fields in an STA/LTA rule; an STA/LTA rule without sta.
        let e =
            detect(&DETECT.replace("holdoff = 2.0", "holdoff = 2.0\nbaseline = 60.0")).unwrap_err();
        assert_eq!(e.field(), Some("baseline"), "{e}");
        assert!(
            e.to_string().contains("only to a windowed-statistic rule"),
            "{e}"
        );
        let e = detect(&DETECT.replace("sta = 1.0\n", "")).unwrap_err();
        assert_eq!(e.field(), Some("sta"), "{e}");
        assert!(e.to_string().contains("missing"), "{e}");
        // The coincidence timeout.
        let e = detect(&DETECT.replace("window = 1.0", "window = 1.0\ntimeout = 0.0")).unwrap_err();
        assert_eq!(e.field(), Some("timeout"), "{e}");
        let f = detect(&DETECT.replace("window = 1.0", "window = 1.0\ntimeout = 5.0")).unwrap();
        assert_eq!(f.detect[0].coincidence.as_ref().unwrap().timeout, 5.0);
    }

    /// Each bad detect rule is refused with the line and field of the mistake.
    #[test]
    fn bad_detect_rules_name_line_and_field() {
        let cases: &[(&str, &str, usize, &str, &str)] = &[
            (
                "lta = 30.0",
                "lta = 1.0",
                7,
                "lta",
                "must be longer than sta",
            ),
            (
                "lta = 30.0",
                "lta = 0.5",
                7,
                "lta",
                "must be longer than sta",
            ),
            ("off = 1.5", "off = 5.0", 9, "off", "above on"),
            ("on = 4.0", "on = -1.0", 8, "on", "above 0"),
            ("sta = 1.0", "sta = 0.0", 6, "sta", "above 0"),
            (
                "[1.0, 10.0]",
                "[10.0, 1.0]",
                10,
                "bandpass",
                "low edge must be below",
            ),
            ("[1.0, 10.0]", "[0.0, 1.0]", 10, "bandpass", "above 0 Hz"),
            ("[1.0, 10.0]", "[1.0]", 10, "bandpass", "two band edges"),
            (
                "channels = \"BHZ\"",
                "channels = \"BH-Z\"",
                5,
                "channels",
                "not a channel code",
            ),
            (
                "channels = \"BHZ\"",
                "channels = \"BH[Z\"",
                5,
                "channels",
                "regular expression",
            ),
            (
                "min_duration = 0.5",
                "min_duration = -1.0",
                11,
                "min_duration",
                "at least 0",
            ),
            (
                "threshold = 2.0",
                "threshold = 0.0",
                14,
                "threshold",
                "above 0",
            ),
            ("XX_A = 2.0", "XX_A = -2.0", 16, "weights", "at least 0"),
            (
                "sta = 1.0",
                "sta = 1.0\nmethod = \"fast\"",
                7,
                "method",
                "unknown variant",
            ),
            (
                "sta = 1.0",
                "sta = 1.0\ncorner = 3",
                7,
                "corner",
                "unknown field",
            ),
            (
                "holdoff = 2.0\n",
                "holdoff = 2.0\ncorners = 3\n",
                13,
                "",
                "",
            ),
        ];
        for (from, to, line, field, says) in cases {
            let text = DETECT.replace(from, to);
            assert_ne!(text, DETECT, "{from}");
            if field.is_empty() {
                detect(&text).unwrap();
                let e = detect(&text.replace("bandpass = [1.0, 10.0]\n", "")).unwrap_err();
                assert_eq!(e.field(), Some("corners"), "{e}");
                continue;
            }
            let e = detect(&text).unwrap_err();
            let RuleError::Invalid { line: l, .. } = &e else {
                panic!("{e}")
            };
            assert_eq!((*l, e.field()), (*line, Some(*field)), "{to}: {e}");
            assert!(e.to_string().starts_with("/r/d.toml:"), "{e}");
            assert!(e.to_string().contains(says), "{to}: {e}");
        }
        // With station metadata, a channel pattern naming none of its channels.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("net.toml"),
            format!("{STATION_TABLE}[[station.channel]]\nchan = \"BHZ\"\nloc = \"\"\n"),
        )
        .unwrap();
        let p = dir.path().join("d.toml");
        for (chan, ok) in [("BHZ", true), ("HHZ", false)] {
            let text = format!(
                "stations = \"net.toml\"\n{}",
                DETECT.replace("\"BHZ\"", &format!("{chan:?}"))
            );
            std::fs::write(&p, text).unwrap();
            match RuleFile::load(&p) {
                Ok(_) => assert!(ok, "{chan}"),
                Err(e) => {
                    assert!(!ok, "{chan}: {e}");
                    assert_eq!(e.field(), Some("channels"), "{e}");
                    assert!(e.to_string().contains("matches no channel"), "{e}");
                }
            }
        }
    }

    #[test]
    fn load_resolves_paths_beside_the_rule_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.toml");
        std::fs::write(&p, RULE).unwrap();
        let f = RuleFile::load(&p).unwrap();
        assert!(f.reap[0].root.is_absolute());
        assert_eq!(f.reap[0].state, f.reap[0].root.join("state/a.json"));
        assert_eq!(f.catalog_file(), f.reap[0].root.join("catalog/r.jsonl"));
    }

    #[test]
    fn load_errors_name_the_file_as_given() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, RULE.replace("raw", "tape")).unwrap();
        let e = RuleFile::load(&p).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("{}:4:10: field `format`", p.display())),
            "{e}"
        );
        assert_eq!(e.field(), Some("format"));
        let e = RuleFile::load(&dir.path().join("missing.toml")).unwrap_err();
        assert!(matches!(e, RuleError::Read { .. }), "{e}");
    }

    const STATION_TABLE: &str = "[[station]]\nnet = \"XX\"\nsta = \"STA01\"\n\
        latitude = 45.0\nlongitude = 10.0\nelevation = 100.0\n";

    /// `stations` loads a StationXML file or a TOML table at rule load, relative to
    /// the rule file: a rule's own overrides the file's, rules naming one file share
    /// it, and raw and SDS rules take none from the file.
    #[test]
    fn stations_are_loaded_with_the_rules() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("net.toml"), STATION_TABLE).unwrap();
        let xml = formats::meta::stationxml::write(
            &formats::meta::table::parse(&STATION_TABLE.replace("STA01", "STA09")).unwrap(),
            "test",
            formats::Time::from_micros(0),
        );
        std::fs::write(dir.path().join("net.xml"), xml).unwrap();
        let text = "stations = \"net.toml\"\n\
            [[reap]]\nname = \"a\"\norb = \":6510\"\nformat = \"netcdf\"\npath = \"a/{first_pktid}\"\n\
            [[reap]]\nname = \"b\"\norb = \":6510\"\nformat = \"json\"\npath = \"b/{first_pktid}\"\n\
            [[reap]]\nname = \"c\"\norb = \":6510\"\nformat = \"cdl\"\npath = \"c/{first_pktid}\"\nstations = \"net.xml\"\n\
            [[reap]]\nname = \"d\"\norb = \":6510\"\nformat = \"raw\"\npath = \"d/{first_pktid}\"\n";
        let rules = dir.path().join("r.toml");
        std::fs::write(&rules, text).unwrap();
        let f = RuleFile::load(&rules).unwrap();
        let at = formats::Time::from_micros(0);
        let (a, b, c, d) = (&f.reap[0], &f.reap[1], &f.reap[2], &f.reap[3]);
        assert!(a.stations.as_ref().unwrap().ends_with("net.toml"));
        let inv = a.metadata.as_ref().unwrap();
        assert!(inv.station("XX", "STA01", at).is_some());
        assert!(Arc::ptr_eq(inv, b.metadata.as_ref().unwrap()));
        let own = c.metadata.as_ref().unwrap();
        assert!(
            own.station("XX", "STA09", at).is_some() && own.station("XX", "STA01", at).is_none()
        );
        assert!(d.metadata.is_none() && d.stations.is_none());
    }

    /// A metadata file that is missing, malformed or out of range is refused at load,
    /// naming the field and why; so is `stations` on a format that cannot carry it.
    #[test]
    fn bad_station_metadata_is_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.xml"), "<FDSNStationXML><Network code=\"XX\"><Station code=\"S\"><Latitude>x</Latitude></Station></Network></FDSNStationXML>").unwrap();
        std::fs::write(
            dir.path().join("far.toml"),
            STATION_TABLE.replace("45.0", "145.0"),
        )
        .unwrap();
        let rule = |extra: &str, format: &str| {
            let text = format!(
                "[[reap]]\nname = \"a\"\norb = \":6510\"\nformat = \"{format}\"\npath = \"a/{{first_pktid}}\"\n{extra}"
            );
            let path = dir.path().join("r.toml");
            std::fs::write(&path, text).unwrap();
            RuleFile::load(&path).unwrap_err()
        };
        for (extra, format, says) in [
            ("stations = \"none.xml\"\n", "netcdf", "cannot read"),
            (
                "stations = \"bad.xml\"\n",
                "netcdf",
                "not valid FDSN StationXML",
            ),
            ("stations = \"far.toml\"\n", "json", "latitude 145"),
            ("stations = \"\"\n", "cdl", "empty"),
            ("stations = \"far.toml\"\n", "raw", "only to formats netcdf"),
        ] {
            let e = rule(extra, format);
            assert_eq!(e.field(), Some("stations"), "{e}");
            assert!(e.to_string().contains(says), "{extra}: {e}");
            assert!(e.to_string().contains(":6:"), "{extra}: {e}");
        }
    }

    fn sds_rule(extra: &str) -> Result<RuleFile, RuleError> {
        let text = format!("[[reap]]\nname = \"s\"\norb = \":6510\"\nformat = \"sds\"\n{extra}");
        RuleFile::parse(&text, Path::new("/arch/r.toml"))
    }

    /// An SDS rule appends, with the SDS layout below a plain path, or the path's own
    /// `%` codes; what cannot give one file per channel and day is refused.
    #[test]
    fn sds_rules_default_to_the_layout_and_append() {
        let f = sds_rule("path = \"sds\"\n").unwrap();
        let r = &f.reap[0];
        assert_eq!(r.format, Format::Sds);
        assert_eq!(r.mode, Mode::Append);
        assert_eq!(
            r.sds_path.as_ref().unwrap().as_str(),
            "sds/%Y/%n/%s/%c.D/%n.%s.%l.%c.D.%Y.%j"
        );
        let f = sds_rule("path = \"a/%n.%s.%l.%c.%Y.%j\"\nmode = \"append\"\n").unwrap();
        assert_eq!(
            f.reap[0].sds_path.as_ref().unwrap().as_str(),
            "a/%n.%s.%l.%c.%Y.%j"
        );
        for (extra, field, says) in [
            ("path = \"sds\"\nmode = \"batch\"\n", "mode", "appends"),
            ("path = \"sds\"\nroll = \"1h\"\n", "roll", "midnight"),
            ("path = \"a/%n.%s.%c.%Y.%j\"\n", "path", "lacks %l"),
            (
                "path = \"a/%n.%s.%l.%c.%Y.%j.%H\"\n",
                "path",
                "unknown code %H",
            ),
            ("path = \"{sta}/x\"\n", "path", "% codes"),
            (
                "path = \"sds\"\nnetcdf_version = \"cdf1\"\n",
                "netcdf_version",
                "sds",
            ),
        ] {
            let e = sds_rule(extra).unwrap_err();
            assert_eq!(e.field(), Some(field), "{extra}: {e}");
            assert!(e.to_string().contains(says), "{extra}: {e}");
        }
    }

    #[test]
    fn start_positions_for_the_client() {
        assert_eq!(Start::Oldest.position_spec(), "oldest");
        assert_eq!(Start::Pktid(7).position_spec(), "7");
        assert_eq!(
            Start::Time(Time::from_micros(1_000_000)).position_spec(),
            "1.0"
        );
        assert_eq!(
            Start::Time(Time::from_micros(1_500_000)).position_spec(),
            "1.5"
        );
    }
}
