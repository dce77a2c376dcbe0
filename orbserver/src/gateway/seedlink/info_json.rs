//! SeedLink 4's INFO replies: JSON documents in `SE` frames of format `J` (subformat
//! `I`, or `E` for a refusal), shaped as ringserver 4 shapes them: every document
//! has `software` and `organization`; ID adds `server_start`, FORMATS `format`,
//! CAPABILITIES `capability`, STATIONS `station` (and STREAMS each station's
//! `stream`), CONNECTIONS `connection`, a refusal `error` (`code`, `message`).
//! Sequence numbers are SeedLink 4's (`formats::seedlink::v4::seq_of`).

use std::sync::atomic::Ordering::Relaxed;

use formats::seedlink::v4::{self, InfoItem};
use formats::seedlink::{Selector, StationPattern};
use formats::Time;
use serde_json::{json, Map, Value};

use super::{hello_line, info, ORGANIZATION};
use crate::hub::Hub;

/// What SeedLink 4's INFO CAPABILITIES lists: the protocol versions and what the
/// server does beyond the base protocol (`TIME`-less time windows are DATA's).
pub const CAPABILITIES: &[&str] = &["SLPROTO:4.0", "SLPROTO:3.1"];

fn iso(t: Time) -> Value {
    t.to_iso8601().map_or(Value::Null, Value::String)
}

/// The root every document has.
fn root() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("software".into(), hello_line().into());
    m.insert("organization".into(), ORGANIZATION.into());
    m
}

/// A refusal's document (sent as a frame of subformat `E`).
pub fn error(code: &str, message: &str) -> String {
    let mut m = root();
    m.insert("error".into(), json!({"code": code, "message": message}));
    Value::Object(m).to_string()
}

/// A stream id as SeedLink 4 spells it: `LOC_B_S_SS` from a location and a SEED
/// channel code (band, source, subsource).
pub fn stream_id(loc: &str, chan: &str) -> String {
    let c: Vec<char> = chan.chars().collect();
    match c.as_slice() {
        [b, s, ss] => format!("{loc}_{b}_{s}_{ss}"),
        _ => format!("{loc}_{chan}"),
    }
}

/// The document for `item` (the caller checks who may see CONNECTIONS), restricted
/// to the stations matching `station` (network, station) and streams matching
/// `stream`.
pub fn document(
    shared: &Hub,
    item: InfoItem,
    station: Option<&(StationPattern, StationPattern)>,
    stream: Option<&Selector>,
) -> String {
    let mut m = root();
    match item {
        InfoItem::Id => {
            m.insert("server_start".into(), iso(shared.started));
        }
        InfoItem::Formats => {
            m.insert(
                "format".into(),
                json!({
                    "2": {"mimetype": "application/vnd.fdsn.mseed", "subformat": {"D": "data"}},
                    "3": {"mimetype": "application/vnd.fdsn.mseed3", "subformat": {"D": "data"}},
                }),
            );
            m.insert(
                "filter".into(),
                json!({
                    "native": "miniSEED 2, as in SeedLink 3",
                    "3": "miniSEED 3, converted from the miniSEED 2 records",
                }),
            );
        }
        InfoItem::Capabilities => {
            m.insert("capability".into(), json!(CAPABILITIES));
        }
        InfoItem::Stations | InfoItem::Streams => {
            let streams = item == InfoItem::Streams;
            let mut list = Vec::new();
            for ((net, sta), st) in info::stations(shared, streams || stream.is_some()) {
                if station.is_some_and(|(n, s)| !n.matches(&net) || !s.matches(&sta)) {
                    continue;
                }
                let chosen: Vec<Value> = st
                    .streams
                    .iter()
                    .filter(|((loc, chan), _)| {
                        stream.is_none_or(|sel| sel.matches(loc, chan, b'D'))
                    })
                    .map(|((loc, chan), (first, last))| {
                        json!({
                            "id": stream_id(loc, chan),
                            "format": "2",
                            "subformat": "D",
                            "start_time": iso(*first),
                            "end_time": iso(*last),
                        })
                    })
                    .collect();
                if stream.is_some() && chosen.is_empty() {
                    continue;
                }
                let mut s = Map::new();
                s.insert("id".into(), format!("{net}_{sta}").into());
                s.insert("description".into(), "".into());
                s.insert(
                    "start_seq".into(),
                    v4::seq_of(st.begin_seq, 0).map_or(Value::Null, Value::from),
                );
                s.insert(
                    "end_seq".into(),
                    v4::seq_of(st.end_seq + 1, 0).map_or(Value::Null, Value::from),
                );
                if streams {
                    s.insert("stream".into(), Value::Array(chosen));
                }
                list.push(Value::Object(s));
            }
            m.insert("station".into(), Value::Array(list));
        }
        InfoItem::Connections => {
            let list: Vec<Value> = shared
                .clients
                .entries()
                .iter()
                .map(|c| {
                    let ident = c.ident().clone();
                    json!({
                        "host": c.addr.ip().to_string(),
                        "port": c.addr.port(),
                        "ctime": iso(c.connected),
                        "type": ident.what,
                        "useragent": ident.who,
                        "current_packet": c.reads.load(Relaxed).then(|| c.pos.load(Relaxed)),
                        "packets": c.packets_out.load(Relaxed),
                        "bytes": c.bytes_out.load(Relaxed),
                        "sequence_gaps": c.gaps.load(Relaxed),
                    })
                })
                .collect();
            m.insert("connection".into(), Value::Array(list));
        }
    }
    Value::Object(m).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_are_fdsn_style() {
        assert_eq!(stream_id("", "BHZ"), "_B_H_Z");
        assert_eq!(stream_id("00", "LDO"), "00_L_D_O");
    }

    #[test]
    fn an_error_document_says_code_and_message() {
        let v: Value = serde_json::from_str(&error("ARGUMENTS", "no such item")).unwrap();
        assert_eq!(v["error"]["code"], "ARGUMENTS");
        assert_eq!(v["error"]["message"], "no such item");
        assert_eq!(v["organization"], ORGANIZATION);
    }
}
