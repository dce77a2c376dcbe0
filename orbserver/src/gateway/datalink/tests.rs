//! The DataLink session's rules driven directly, without a socket or a sleep.

use formats::datalink::{decode_reply, Command, Decoded, Reply, Write};
use formats::Time;

use super::DataLink;
use crate::conn::testing::{Clock, TestHub};
use crate::conn::{Action, Close, Farewell, Fill, Messages, OutBuf as _, Session as _};
use crate::ring::FlushPolicy;

fn cmd(c: Command<'_>) -> Vec<u8> {
    let mut b = Vec::new();
    c.encode(&mut b).expect("encodable");
    b
}

fn write(ack: bool) -> Vec<u8> {
    cmd(Command::Write(Write {
        streamid: "AA_STA/EXP",
        start: Time::from_micros(1),
        end: Time::from_micros(1),
        ack,
        payload: b"hello",
    }))
}

/// Each message in `out` decoded as exactly one whole reply (the framing a WebSocket
/// client relies on: one DataLink message per WebSocket message); empties `out`.
fn decoded(out: &Messages) -> Vec<Reply<'_>> {
    let mut got = Vec::new();
    for m in out.iter() {
        match decode_reply(m, 1 << 20) {
            Ok(Decoded::Done(r, len)) => {
                assert_eq!(len, m.len(), "one reply per message, whole");
                got.push(r);
            }
            other => panic!("a message that is not one whole reply: {other:?}"),
        }
    }
    got
}

/// The replies in `out`, as `(kind, value)`; empties `out`.
fn replies(out: &mut Messages) -> Vec<(&'static str, i64)> {
    let got = decoded(out)
        .into_iter()
        .map(|r| match r {
            Reply::Id(_) => ("ID", 0),
            Reply::Ok { value, .. } => ("OK", value),
            Reply::Error { value, .. } => ("ERROR", value),
            Reply::Packet { pktid, .. } => ("PACKET", pktid as i64),
            _ => ("OTHER", 0),
        })
        .collect();
    out.clear();
    got
}

#[test]
fn the_handshake_ends_with_the_first_command_good_or_bad() {
    let hub = TestHub::new(FlushPolicy::None);
    let clock = Clock::new();
    let mut s = hub.session::<DataLink>();
    let mut out = Messages::default();
    assert!(!s.handshake_done());
    let id = cmd(Command::Id("test:me:1:x"));
    let r = s.receive(&id[..id.len() - 1], clock.now(), &mut out);
    assert_eq!(r.consumed, 0);
    assert!(!s.handshake_done(), "half a command is not a command");
    s.receive(&id, clock.now(), &mut out);
    assert!(s.handshake_done());
    assert_eq!(replies(&mut out), [("ID", 0)]);
    let mut s = hub.session::<DataLink>();
    let r = s.receive(b"DL\x00", clock.now(), &mut out);
    assert!(matches!(r.close, Some(Close::Error(_))), "{r:?}");
    assert!(s.handshake_done());
}

#[test]
fn a_streaming_reader_gets_packets_written_by_another_session() {
    let hub = TestHub::new(FlushPolicy::None);
    let clock = Clock::new();
    let (mut reader, mut writer) = (hub.session::<DataLink>(), hub.session::<DataLink>());
    let (mut rout, mut wout) = (Messages::default(), Messages::default());
    reader.receive(&cmd(Command::Stream), clock.now(), &mut rout);
    assert!(reader.wants_packets());
    assert_eq!(reader.fill(clock.now(), &mut rout, 1 << 16), Fill::Waiting);
    writer.receive(&write(true), clock.now(), &mut wout);
    assert!(writer.take_appended());
    assert_eq!(replies(&mut wout), [("OK", 1)]);
    assert_eq!(reader.fill(clock.now(), &mut rout, 1 << 16), Fill::Sent);
    assert_eq!(replies(&mut rout), [("PACKET", 1)]);
}

#[test]
fn under_flush_always_a_write_is_acknowledged_after_the_drivers_sync() {
    let hub = TestHub::new(FlushPolicy::Always);
    let clock = Clock::new();
    let mut s = hub.session::<DataLink>();
    let mut out = Messages::default();
    let mut input = write(true);
    input.extend(write(true));
    let r = s.receive(&input, clock.now(), &mut out);
    assert_eq!(r.consumed, write(true).len(), "stops after the first WRITE");
    assert_eq!(replies(&mut out), []);
    let action = s.take_action().expect("a sync");
    assert!(matches!(action, Action::Sync(_)));
    s.complete(action.run(&hub.hub), clock.now(), &mut out);
    assert_eq!(replies(&mut out), [("OK", 1)]);
}

#[test]
fn kill_and_shutdown_are_said_as_errors() {
    let hub = TestHub::new(FlushPolicy::None);
    let mut s = hub.session::<DataLink>();
    let mut out = Messages::default();
    s.farewell(Farewell::Killed, &mut out);
    s.farewell(Farewell::Shutdown, &mut out);
    assert_eq!(replies(&mut out), [("ERROR", 0), ("ERROR", 0)]);
}

#[test]
fn clients_shows_a_datalink_clients_rights_under_the_rules_in_force() {
    let hub = TestHub::new(FlushPolicy::None);
    let _s = hub.session::<DataLink>();
    let access = || {
        let doc = crate::native::info::clients(&hub.hub);
        doc.clients
            .iter()
            .map(|c| c.access.clone())
            .collect::<Vec<_>>()
    };
    // Loopback may read and write by default.
    assert_eq!(access(), ["rw"]);
    let file: crate::config::ConfigFile =
        toml::from_str("[access]\nread = [\"10.0.0.0/8\"]\nwrite = []\n").unwrap();
    hub.hub.policy.replace(file.access_rules().unwrap());
    assert_eq!(access(), ["-"], "a reload took both rights away");
}

#[test]
fn the_whole_client_id_is_kept() {
    let hub = TestHub::new(FlushPolicy::None);
    let clock = Clock::new();
    let mut s = hub.session::<DataLink>();
    let mut out = Messages::default();
    s.receive(
        &cmd(Command::Id("slinktool:alice:4242:Linux")),
        clock.now(),
        &mut out,
    );
    let doc = crate::native::info::clients(&hub.hub);
    let row = &doc.clients[0];
    assert_eq!(
        (row.what.as_str(), row.who.as_str(), row.pid),
        ("slinktool", "alice", 4242)
    );
    assert_eq!(row.client_id, "slinktool:alice:4242:Linux");
}

/// The stream ids of the PACKETs in `out`; empties `out`.
fn streamids(out: &mut Messages) -> Vec<String> {
    let got = decoded(out)
        .into_iter()
        .filter_map(|r| match r {
            Reply::Packet { streamid, .. } => Some(streamid.to_string()),
            _ => None,
        })
        .collect();
    out.clear();
    got
}

/// Sends `commands` to `s`, then READs packet 1; the stream id it is sent as.
fn name_after(s: &mut super::session::DlSession, commands: &[Command<'_>]) -> String {
    let clock = Clock::new();
    let mut out = Messages::default();
    for c in commands {
        s.receive(&cmd(*c), clock.now(), &mut out);
    }
    out.clear();
    s.receive(&cmd(Command::Read(1)), clock.now(), &mut out);
    let ids = streamids(&mut out);
    assert_eq!(ids.len(), 1, "one PACKET for READ 1: {ids:?}");
    ids[0].clone()
}

fn write_to(streamid: &str) -> Command<'_> {
    Command::Write(Write {
        streamid,
        start: Time::from_micros(1),
        end: Time::from_micros(1),
        ack: false,
        payload: b"hello",
    })
}

#[test]
fn a_session_names_miniseed_streams_the_way_its_client_speaks() {
    const V10: &str = "XX_STA_00_BHZ/MSEED";
    const V11: &str = "FDSN:XX_STA_00_B_H_Z/MSEED";
    let hub = TestHub::new(FlushPolicy::None);
    let mut writer = hub.session::<DataLink>();
    // A 1.0 WRITE makes the writer a 1.0 client; the packet is the orb's either way.
    assert_eq!(name_after(&mut writer, &[write_to(V10)]), V10);
    // The last name used counts.
    assert_eq!(name_after(&mut writer, &[write_to(V11)]), V11);
    assert_eq!(name_after(&mut writer, &[write_to(V10)]), V10);
    // A client that says nothing gets DataLink 1.1's names, as announced.
    let mut silent = hub.session::<DataLink>();
    assert_eq!(name_after(&mut silent, &[Command::Id("x:y:1:z")]), V11);
    // One that announces 1.0 keeps 1.0 names whatever it uses later, and the other way.
    let mut old = hub.session::<DataLink>();
    let id10 = Command::Id("x:y:1:z DLPROTO:1.0");
    assert_eq!(name_after(&mut old, &[id10, write_to(V11)]), V10);
    assert_eq!(name_after(&mut old, &[Command::Match("FDSN:XX_.*")]), V10);
    let mut new = hub.session::<DataLink>();
    let id11 = Command::Id("x:y:1:z DLPROTO:1.1");
    assert_eq!(name_after(&mut new, &[id11, write_to(V10)]), V11);
    // MATCH and REJECT: an expression only 1.0 names match makes a 1.0 client; one
    // both names match says nothing; one naming `FDSN:` makes a 1.1 client.
    let mut matcher = hub.session::<DataLink>();
    assert_eq!(
        name_after(&mut matcher, &[Command::Match("_BHZ/MSEED")]),
        V10
    );
    assert_eq!(name_after(&mut matcher, &[Command::Match("XX_STA")]), V10);
    assert_eq!(name_after(&mut matcher, &[Command::Reject("FDSN:YY")]), V11);
    assert_eq!(name_after(&mut matcher, &[Command::Reject("00_BHZ")]), V10);
    assert_eq!(name_after(&mut matcher, &[Command::Match("")]), V10);
}

/// Rules where nobody writes by address and user `alice` (password `sesame`) may put
/// AA_STA srcnames; failed attempts are limited to 2 a minute.
fn auth_rules() -> crate::access::AccessRules {
    let text = format!(
        "write = []\nauth_fail_limit = 2\n[[user]]\nname = \"alice\"\n{}\nwrite = \"AA_STA.*\"\n",
        crate::access::password_hash_line("sesame").unwrap()
    );
    crate::access::AccessRules::from_table(&toml::from_str(&text).unwrap()).unwrap()
}

fn auth(user: &str, password: &str) -> Vec<u8> {
    let payload = format!("{user}\r{password}");
    cmd(Command::Auth {
        kind: "USERPASS",
        credential: formats::datalink::Credential(payload.as_bytes()),
    })
}

/// The text of each reply in `out`; empties `out`.
fn texts(out: &mut Messages) -> Vec<String> {
    let got = decoded(out)
        .into_iter()
        .map(|r| match r {
            Reply::Id(t) => format!("ID {t}"),
            Reply::Ok { message, .. } => format!("OK {message}"),
            Reply::Error { message, .. } => format!("ERROR {message}"),
            _ => "OTHER".into(),
        })
        .collect();
    out.clear();
    got
}

#[test]
fn auth_userpass_grants_the_users_srcnames_and_a_failure_closes() {
    let hub = TestHub::new(FlushPolicy::None);
    hub.hub.policy.replace(auth_rules());
    let clock = Clock::new();
    let mut s = hub.session::<DataLink>();
    let mut out = Messages::default();
    s.receive(&cmd(Command::Id("t:u:1:x")), clock.now(), &mut out);
    let id = texts(&mut out).remove(0);
    assert!(id.ends_with(" AUTH") && !id.contains(" WRITE"), "{id}");
    s.receive(&write(true), clock.now(), &mut out);
    assert!(texts(&mut out)[0].starts_with("ERROR Write permission not granted"));
    let r = s.receive(&auth("alice", "sesame"), clock.now(), &mut out);
    assert!(r.close.is_none());
    assert_eq!(texts(&mut out), ["OK Authentication successful"]);
    assert_eq!(hub.hub.clients.entries()[0].ident().identity, "user:alice");
    s.receive(&write(true), clock.now(), &mut out);
    assert_eq!(replies(&mut out), [("OK", 1)]);
    let foreign = cmd(Command::Write(Write {
        streamid: "BB_STA/EXP",
        start: Time::from_micros(1),
        end: Time::from_micros(1),
        ack: true,
        payload: b"x",
    }));
    s.receive(&foreign, clock.now(), &mut out);
    let t = texts(&mut out);
    assert!(t[0].contains("user:alice may put only"), "{t:?}");

    // Argument errors keep the connection; a wrong password closes it.
    let mut s = hub.session::<DataLink>();
    let bad = cmd(Command::Auth {
        kind: "NOPE",
        credential: formats::datalink::Credential(b"data"),
    });
    let r = s.receive(&bad, clock.now(), &mut out);
    assert!(r.close.is_none());
    assert!(texts(&mut out)[0].starts_with("ERROR Unsupported AUTH type"));
    let nosep = cmd(Command::Auth {
        kind: "USERPASS",
        credential: formats::datalink::Credential(b"alicesesame"),
    });
    let r = s.receive(&nosep, clock.now(), &mut out);
    assert!(r.close.is_none());
    assert!(texts(&mut out)[0].starts_with("ERROR AUTH USERPASS requires payload of USER"));
    let r = s.receive(&auth("alice", "wrong"), clock.now(), &mut out);
    assert!(matches!(r.close, Some(Close::Error(_))), "{r:?}");
    assert_eq!(
        texts(&mut out),
        ["ERROR Authentication failed, not allowed to connect"]
    );
    assert_eq!(hub.hub.refused.snapshot().auth_failures, 1);
}

#[test]
fn after_the_limit_an_address_is_refused_even_with_the_right_password() {
    let hub = TestHub::new(FlushPolicy::None);
    hub.hub.policy.replace(auth_rules());
    let clock = Clock::new();
    let mut out = Messages::default();
    for _ in 0..2 {
        let mut s = hub.session::<DataLink>();
        s.receive(&auth("alice", "wrong"), clock.now(), &mut out);
        out.clear();
    }
    let mut s = hub.session::<DataLink>();
    let r = s.receive(&auth("alice", "sesame"), clock.now(), &mut out);
    assert!(r.close.is_some());
    let t = texts(&mut out);
    assert!(t[0].contains("too many failed attempts"), "{t:?}");
    assert_eq!(hub.hub.refused.snapshot().auth_failures, 3);
}
