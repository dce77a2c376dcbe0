//! What the operator tools in `src/bin/` share: logging to stderr, one-line errors,
//! exit codes, quiet exit on a closed stdout (`orbtail | head`), a clean stop on
//! SIGINT/SIGTERM ([`StopSignal`]), and small table and number formatting.
//!
//! Output to stdout goes through [`Stdout`], whose errors are [`OutputError`]s, so a
//! broken pipe on stdout (exit 0, silently) is told apart from a broken connection to
//! the server (an error).

use std::fmt;
use std::future::Future;
use std::io::{self, BufWriter, IsTerminal, StdoutLock, Write};
use std::process::ExitCode;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// How a tool ends; the number is the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done (also: stdout was closed by the reader).
    Success = 0,
    /// An error, printed as one line on stderr.
    Failure = 1,
    /// Bad command line (clap exits with this itself).
    Usage = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// Writing to stdout failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write to standard output")]
pub struct OutputError(#[source] pub io::Error);

/// Buffered, locked stdout. Use `write!`/`writeln!` on it (inherent `write_fmt`) and
/// [`flush`](Stdout::flush) before waiting for input, so lines appear promptly without
/// a syscall per line.
pub struct Stdout {
    w: BufWriter<StdoutLock<'static>>,
}

impl Default for Stdout {
    fn default() -> Stdout {
        Stdout::new()
    }
}

impl Stdout {
    /// Locks stdout for this process.
    pub fn new() -> Stdout {
        Stdout {
            w: BufWriter::with_capacity(64 * 1024, io::stdout().lock()),
        }
    }

    /// What `write!` calls.
    pub fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> Result<(), OutputError> {
        self.w.write_fmt(args).map_err(OutputError)
    }

    /// Writes bytes as they are (e.g. a line built by `formats::write::jsonl`).
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), OutputError> {
        self.w.write_all(bytes).map_err(OutputError)
    }

    /// Sends buffered output.
    pub fn flush(&mut self) -> Result<(), OutputError> {
        self.w.flush().map_err(OutputError)
    }
}

/// True if `err` is (or was caused by) a broken pipe on stdout.
pub fn is_stdout_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<OutputError>()
            .is_some_and(|o| o.0.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Logs to stderr as `PROGRAM: [LINK: ]message` lines, the form of the tools' own
/// lines: at `warn`, and `info` for federation links (`orb::federation`: reconnections
/// and `-v` reports); override with `ORB_LOG` (e.g. `ORB_LOG=debug`). An `error` line
/// says `error:`, in red only when [`colour_on_stderr`] says so.
pub fn init_tracing(program: &str) {
    let _ = tracing::subscriber::set_global_default(tool_subscriber(
        program,
        || StderrLossy,
        colour_on_stderr(),
    ));
}

/// The subscriber [`init_tracing`] installs, writing to `writer`.
fn tool_subscriber<W>(
    program: &str,
    writer: W,
    ansi: bool,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORB_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("warn,{}=info", crate::federation::LOG_TARGET))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .log_internal_errors(false)
        .with_ansi(ansi)
        .event_format(ToolLine {
            program: program.to_owned(),
        })
        .finish()
}

/// One log event as one line: `PROGRAM: ` then every field but the message (such as a
/// federation `link`), each followed by `: `, then the message.
struct ToolLine {
    program: String,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for ToolLine
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut w: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut fields = LineFields::default();
        event.record(&mut fields);
        write!(w, "{}: ", self.program)?;
        if *event.metadata().level() == tracing::Level::ERROR {
            if w.has_ansi_escapes() {
                write!(w, "\x1b[31merror:\x1b[0m ")?;
            } else {
                write!(w, "error: ")?;
            }
        }
        for f in &fields.prefix {
            write!(w, "{f}: ")?;
        }
        writeln!(w, "{}", fields.message)
    }
}

/// An event's message and its other fields' values, in order.
#[derive(Default)]
struct LineFields {
    message: String,
    prefix: Vec<String>,
}

impl tracing::field::Visit for LineFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.record(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

impl LineFields {
    fn record(&mut self, field: &tracing::field::Field, text: String) {
        if field.name() == "message" {
            self.message = text;
        } else {
            self.prefix.push(text);
        }
    }
}

/// Whether log lines on stderr may carry ANSI colour codes: only on a terminal, and not
/// when `NO_COLOR` is set to anything but the empty string (no-color.org), so a log
/// redirected to a file or a pipe holds plain text.
pub fn colour_on_stderr() -> bool {
    colour_allowed(
        io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

/// [`colour_on_stderr`]'s rule, apart from where its inputs come from.
pub fn colour_allowed(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Stderr that drops what it cannot write. A log line or error line lost to a closed
/// stderr (`tool 2>&1 | tee log` after `tee` died) must not turn into a panic that ends
/// the program with status 101, as `eprintln!` would.
#[derive(Debug, Clone, Copy, Default)]
pub struct StderrLossy;

impl Write for StderrLossy {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

/// Prints one line to stderr through [`StderrLossy`].
fn error_line(line: fmt::Arguments<'_>) {
    let _ = writeln!(StderrLossy, "{line}");
}

/// Runs a tool's async body on a single-threaded runtime and turns its outcome into
/// an exit code: errors print as `tool: error: ...` on one line; a closed stdout ends
/// quietly with success.
pub fn run<F>(tool: &str, body: F) -> ExitCode
where
    F: Future<Output = anyhow::Result<()>>,
{
    init_tracing(tool);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error_line(format_args!(
                "{tool}: error: cannot start the async runtime: {e}"
            ));
            return Exit::Failure.into();
        }
    };
    exit_for(tool, rt.block_on(body)).into()
}

/// The exit for an outcome, printing the error line if there is one.
pub fn exit_for(tool: &str, outcome: anyhow::Result<()>) -> Exit {
    match outcome {
        Ok(()) => Exit::Success,
        Err(e) if is_stdout_broken_pipe(&e) => Exit::Success,
        Err(e) => {
            error_line(format_args!("{tool}: error: {e:#}"));
            Exit::Failure
        }
    }
}

/// Listens for SIGINT and SIGTERM, so that a long-running tool can stop cleanly and
/// print its summary instead of dying in mid-batch.
///
/// The first signal is recorded ([`requested`](StopSignal::requested),
/// [`wait`](StopSignal::wait)); the tool finishes what is in flight and returns. A
/// second signal means the operator does not want to wait (a server that stopped
/// answering, say): the process exits at once with status 130, the shell's code for
/// death by SIGINT.
#[derive(Debug, Clone)]
pub struct StopSignal {
    rx: watch::Receiver<Option<&'static str>>,
}

impl StopSignal {
    /// Installs the handlers (from then on SIGINT and SIGTERM no longer kill the
    /// process) and starts the task that watches them. Call it inside the runtime.
    pub fn listen(tool: &'static str) -> io::Result<StopSignal> {
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let first = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            let _ = tx.send(Some(first));
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            eprintln!("{tool}: second signal: exiting at once, without a summary");
            std::process::exit(130);
        });
        Ok(StopSignal { rx })
    }

    /// The signal that asked to stop (`"SIGINT"` or `"SIGTERM"`), if one came.
    pub fn requested(&self) -> Option<&'static str> {
        *self.rx.borrow()
    }

    /// Waits for the first signal and returns its name. Cancel-safe, so it can be one
    /// arm of a `select!`.
    pub async fn wait(&mut self) -> &'static str {
        // The borrow of the value ends here, so the future stays `Send`.
        let got = self.rx.wait_for(Option::is_some).await.map(|s| *s);
        match got {
            Ok(s) => s.unwrap_or("signal"),
            // The watching task is gone (the runtime is shutting down): no signal
            // will be reported any more.
            Err(_) => std::future::pending().await,
        }
    }
}

/// Reads `--timeout`-style values: plain seconds (`30`, `0.5`) or a duration with a
/// unit (`30s`, `10m`, `500ms`).
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("{s:?} is not a number of seconds >= 0"));
    }
    formats::parse_duration(s).map_err(|e| e.to_string())
}

/// `1536` -> `1.5 KiB`; exact below 1 KiB.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Seconds as `850ms`, `12.3s`, `4m05s`, `3h12m`, `2d04h`.
pub fn human_secs(secs: f64) -> String {
    if !secs.is_finite() {
        return "-".into();
    }
    let neg = if secs < 0.0 { "-" } else { "" };
    let s = secs.abs();
    let whole = s as u64;
    let body = if s < 1.0 {
        format!("{}ms", (s * 1000.0).round() as u64)
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else if s < 86400.0 {
        format!("{}h{:02}m", whole / 3600, whole % 3600 / 60)
    } else {
        format!("{}d{:02}h", whole / 86400, whole % 86400 / 3600)
    };
    format!("{neg}{body}")
}

/// A plain-text table: columns padded to their widest cell, numbers right-aligned.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns; `(name, right_aligned)`.
    pub fn new(columns: &[(&'static str, bool)]) -> Table {
        Table {
            headers: columns.iter().map(|c| c.0).collect(),
            right: columns.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells print empty, extra cells are dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Writes header and rows.
    pub fn write(&self, out: &mut Stdout) -> Result<(), OutputError> {
        let n = self.headers.len();
        let mut width: Vec<usize> = self.headers.iter().map(|h| h.len()).collect();
        for r in &self.rows {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        for cells in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (&w, &right)) in width.iter().zip(&self.right).enumerate() {
                let c = cells.get(i).map(String::as_str).unwrap_or("");
                if i > 0 {
                    line.push_str("  ");
                }
                if right {
                    line.push_str(&format!("{c:>w$}"));
                } else if i + 1 < n {
                    line.push_str(&format!("{c:<w$}"));
                } else {
                    line.push_str(c);
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::sync::{Arc, Mutex};

    /// Log lines written into a shared buffer.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_lines_name_the_program_and_the_link() {
        let out = Captured::default();
        let writer = out.clone();
        let sub = tool_subscriber("orbreaper", move || writer.clone(), false);
        tracing::subscriber::with_default(sub, || {
            let name = "rule fwd";
            tracing::warn!(target: crate::federation::LOG_TARGET, link = %name, "gap: input pktids 3..=5");
            tracing::info!(target: crate::federation::LOG_TARGET, link = %name, "reconnected to b:1");
            tracing::info!("not shown: info outside federation");
            tracing::error!("cannot go on");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "orbreaper: rule fwd: gap: input pktids 3..=5\n\
             orbreaper: rule fwd: reconnected to b:1\n\
             orbreaper: error: cannot go on\n"
        );
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_allowed(true, None));
        assert!(colour_allowed(true, Some(OsStr::new(""))));
        assert!(!colour_allowed(true, Some(OsStr::new("1"))));
        assert!(!colour_allowed(false, None));
    }

    #[test]
    fn only_stdout_broken_pipes_are_quiet() {
        let pipe = || io::Error::from(io::ErrorKind::BrokenPipe);
        let stdout = anyhow::Error::new(OutputError(pipe())).context("printing packets");
        assert!(is_stdout_broken_pipe(&stdout));
        let server = anyhow::Error::new(crate::ClientError::Io(pipe()));
        assert!(!is_stdout_broken_pipe(&server));
        assert_eq!(exit_for("t", Err(stdout)), Exit::Success);
        assert_eq!(exit_for("t", Err(server)), Exit::Failure);
        assert_eq!(exit_for("t", Ok(())), Exit::Success);
    }

    #[test]
    fn seconds_parse_plain_or_with_units() {
        assert_eq!(parse_seconds("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_seconds("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
    }

    #[test]
    fn numbers_print_for_people() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(256 << 20), "256.0 MiB");
        assert_eq!(human_secs(0.25), "250ms");
        assert_eq!(human_secs(12.34), "12.3s");
        assert_eq!(human_secs(245.0), "4m05s");
        assert_eq!(human_secs(3.0 * 3600.0 + 720.0), "3h12m");
        assert_eq!(human_secs(-2.0), "-2.0s");
    }
}
