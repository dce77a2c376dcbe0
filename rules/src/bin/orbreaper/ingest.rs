//! Ingest rules: forwarding runs orb2orb's link ([`orbclient::federation`]); a put
//! rule puts its packet once and remembers that in its state file.

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
