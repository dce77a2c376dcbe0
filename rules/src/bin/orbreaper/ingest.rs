//! Ingest rules: forwarding runs orb2orb's link ([`orbclient::federation`]); a put
//! rule puts its packet once and remembers that in its state file; a file rule
//! replays a raw packet file ([`orbclient::replay`]) in chunks, saving after each
//! acknowledged chunk how many packets are in.

use std::time::Duration;

use anyhow::Context;
use orbclient::federation::{run_link, EndSpec, LinkConfig};
use orbclient::{ClientOptions, OrbClient};
use rules::{IngestAction, IngestRule};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

#[derive(Serialize, Deserialize)]
struct PutState {
    rule: String,
    pktid: u64,
}

/// Progress of a file rule.
#[derive(Serialize, Deserialize, Default)]
struct FileState {
    rule: String,
    /// Packets of the file (in replay order) acknowledged by the orb.
    packets: u64,
    /// The whole file is in.
    complete: bool,
}

/// Packets put per acknowledged chunk: after a crash at most this many are put again.
const FILE_CHUNK: usize = 256;

/// Runs one ingest rule until it is done or shutdown.
pub async fn run_ingest(
    rule: IngestRule,
    once: bool,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    match rule.action {
        IngestAction::Forward {
            from,
            from_addr,
            to,
            to_addr,
            select,
            reject,
            start,
            state,
            archive: _,
        } => {
            // The link writes its state file but does not create its directory.
            let dir = rules::atomic::parent(&state);
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
            let cfg = LinkConfig {
                program: "orbreaper".to_owned(),
                name: format!("rule {}", rule.name),
                input_name: from,
                output_name: to,
                input: from_addr,
                output: to_addr,
                select: select.unwrap_or_default(),
                reject: reject.unwrap_or_default(),
                state: Some(state),
                start: start.map(|s| s.position_spec()),
                end: once.then_some(EndSpec::Last),
                verbose: false,
                report_every: Duration::from_secs(60),
            };
            let summary = run_link(cfg, stop)
                .await
                .with_context(|| format!("ingest rule {}", rule.name))?;
            eprintln!("orbreaper: {}: {summary}", rule.name);
            Ok(())
        }
        IngestAction::File {
            to,
            to_addr,
            file,
            state,
        } => put_file(&rule.name, &to, &to_addr, &file, &state).await,
        IngestAction::Put {
            to,
            to_addr,
            srcname,
            time,
            payload,
            state,
        } => {
            if state.exists() {
                return Ok(());
            }
            let opts = ClientOptions::for_program("orbreaper").with_access(false, true);
            let mut c = OrbClient::connect(&to_addr, &opts)
                .await
                .with_context(|| format!("ingest rule {}: cannot reach {to}", rule.name))?;
            let t = time.unwrap_or_else(formats::Time::now);
            let pktid = c
                .put(&srcname, t, payload.as_bytes())
                .await
                .with_context(|| format!("ingest rule {}: put into {to}", rule.name))?;
            let record = serde_json::to_vec_pretty(&PutState {
                rule: rule.name.clone(),
                pktid,
            })?;
            rules::atomic::write_atomic(&state, &record)
                .with_context(|| format!("cannot write {}", state.display()))?;
            eprintln!(
                "orbreaper: {}: put {srcname} into {to} as pktid {pktid}",
                rule.name
            );
            Ok(())
        }
    }
}

async fn put_file(
    name: &str,
    to: &str,
    to_addr: &orbclient::OrbAddr,
    file: &std::path::Path,
    state_path: &std::path::Path,
) -> anyhow::Result<()> {
    let mut state: FileState = match std::fs::read(state_path) {
        Ok(b) => serde_json::from_slice(&b)
            .with_context(|| format!("state file {} is not valid", state_path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileState {
            rule: name.to_owned(),
            ..FileState::default()
        },
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", state_path.display())),
    };
    if state.complete {
        return Ok(());
    }
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let label = file.display().to_string();
    let mut merge = orbclient::replay::Merge::new([(label, std::io::BufReader::new(f))])?;
    let skip = usize::try_from(state.packets).unwrap_or(usize::MAX);
    for _ in merge.by_ref().take(skip) {}
    let opts = ClientOptions::for_program("orbreaper").with_access(false, true);
    let mut c = OrbClient::connect(to_addr, &opts)
        .await
        .with_context(|| format!("ingest rule {name}: cannot reach {to}"))?;
    let save = |s: &FileState| -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(s)?;
        rules::atomic::write_atomic(state_path, &bytes)
            .with_context(|| format!("cannot write {}", state_path.display()))
    };
    // Bounded by the file's length.
    loop {
        let chunk: Vec<formats::Packet> = merge.by_ref().take(FILE_CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len() as u64;
        c.put_pipelined(chunk, 64)
            .await
            .with_context(|| format!("ingest rule {name}: put into {to}"))?;
        state.packets += n;
        save(&state)?;
    }
    if let Some(e) = merge.take_error() {
        return Err(anyhow::Error::new(e).context(format!(
            "ingest rule {name}: the {} packets before it were put",
            state.packets
        )));
    }
    for t in merge.torn_tails() {
        eprintln!(
            "orbreaper: {name}: {} ends inside a record at byte offset {} ({} bytes not replayed)",
            t.file, t.offset, t.len
        );
    }
    state.complete = true;
    save(&state)?;
    eprintln!(
        "orbreaper: {name}: put {} packets of {} into {to}",
        state.packets,
        file.display()
    );
    Ok(())
}
