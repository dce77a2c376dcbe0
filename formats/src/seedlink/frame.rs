//! What a SeedLink 3.1 server sends: text replies, data frames and INFO frames.
//!
//! A data frame is `SL`, six uppercase hex digits of the 24-bit sequence number, and
//! one 512-byte miniSEED 2 record. An INFO reply is one or more frames of `SLINFO`
//! plus `" *"` (more follow) or `"  "` (the last), each with a 512-byte miniSEED log
//! record whose data are the reply's XML as ASCII (blockette 1000 encoding 0, the
//! sample count being the number of characters).

use super::MAX_SEQ;

/// The reply to an accepted command.
pub const OK: &[u8] = b"OK\r\n";
/// The reply to a refused command (without a reason: the client did not ask for
/// `EXTREPLY`).
pub const ERROR: &[u8] = b"ERROR\r\n";
/// Sent when a FETCH or a TIME window is complete; the server then closes.
pub const END: &[u8] = b"END";
/// Length of the records SeedLink 3 carries.
pub const RECORD_LEN: usize = 512;
/// Length of a data or INFO frame header.
pub const HEADER_LEN: usize = 8;
/// Characters of XML one INFO record carries (512 minus the 48-byte header and the
/// 8-byte blockette 1000).
pub const INFO_CHUNK: usize = RECORD_LEN - 56;

/// Longest reply line [`error`] writes, terminator included. libslink reads a reply
/// to SELECT, STATION and DATA into a 100-byte buffer and stops there: a longer line
/// would leave its tail in the socket, to be taken as the reply to the next command.
pub const MAX_REPLY: usize = 99;

/// An `ERROR` reply. Without `reason` (the client did not announce `EXTREPLY`) it is
/// the bare `ERROR\r\n`. With one it is `ERROR\r` + `CODE reason` + `\r\n`, as
/// ringserver sends it and libslink reads it: libslink takes a reply as an error when
/// it starts with `ERROR\r` and shows what lies between that CR and the next one as
/// the reason; `ERROR CODE ...` (SeedLink 4's form) is an invalid response to it, and
/// it drops the whole negotiation. The code is one of SeedLink 4's (`UNSUPPORTED`,
/// `ARGUMENTS`, `UNEXPECTED`, `UNAUTHORIZED`, ...). The line is cut to [`MAX_REPLY`]
/// bytes.
pub fn error(reason: Option<(&str, &str)>) -> Vec<u8> {
    match reason {
        None => ERROR.to_vec(),
        Some((code, text)) => {
            // One line: the reason must not break the framing.
            let mut line: String = format!("ERROR\r{code} {text}")
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i == 5 || (c.is_ascii() && !c.is_ascii_control()) {
                        c
                    } else {
                        ' '
                    }
                })
                .collect();
            // ASCII only from here on, so byte lengths are character counts.
            line.truncate(MAX_REPLY - 2);
            line.push_str("\r\n");
            line.into_bytes()
        }
    }
}

/// Appends a data frame: the header for `seq` (taken modulo 2^24) and `record`.
pub fn data_frame(out: &mut Vec<u8>, seq: u64, record: &[u8; RECORD_LEN]) {
    out.extend_from_slice(format!("SL{:06X}", seq & u64::from(MAX_SEQ)).as_bytes());
    out.extend_from_slice(record);
}

/// Reads a data frame's sequence number from its 8-byte header, `None` if it is not
/// one (an INFO frame, `END`, text).
pub fn frame_seq(header: &[u8]) -> Option<u32> {
    let hex = header.strip_prefix(b"SL")?.get(..6)?;
    let text = std::str::from_utf8(hex).ok()?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

/// What an INFO reply is: the document asked for, or a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoKind {
    /// The document asked for: records of channel `INF`.
    Info,
    /// The level is unknown or refused: records of channel `ERR`. A SeedLink 3 client
    /// waits for INFO records after INFO, never for a text reply (libslink takes
    /// `ERROR` between frames as the end of the connection, and slinktool waits for
    /// the last INFO frame forever); slinktool reports an `ERR` record as an INFO
    /// level that is not enabled, as ringserver's `ERR` records mean.
    Error,
}

/// Appends the INFO frames carrying `xml` (ASCII; anything else is replaced by `?`).
/// The records are named as ringserver names them: network `XX`, station `INFO`, no
/// location, channel `INF` (or `ERR` for [`InfoKind::Error`]); the level is not
/// carried.
pub fn info_frames(out: &mut Vec<u8>, xml: &str, kind: InfoKind) {
    each_info_frame(xml, kind, |f| out.extend_from_slice(f));
}

/// Hands the INFO frames carrying `xml` to `frame` one at a time, each whole (header
/// and record), for a transport that sends each frame as a message of its own.
pub fn each_info_frame(xml: &str, kind: InfoKind, mut frame: impl FnMut(&[u8])) {
    let text: Vec<u8> = xml
        .bytes()
        .map(|b| if b.is_ascii() { b } else { b'?' })
        .collect();
    let chunks: Vec<&[u8]> = if text.is_empty() {
        vec![&[][..]]
    } else {
        text.chunks(INFO_CHUNK).collect()
    };
    let last = chunks.len() - 1;
    let mut f = [0u8; HEADER_LEN + RECORD_LEN];
    for (i, chunk) in chunks.into_iter().enumerate() {
        f[..HEADER_LEN].copy_from_slice(if i == last { b"SLINFO  " } else { b"SLINFO *" });
        f[HEADER_LEN..].copy_from_slice(&log_record(i as u32 + 1, chunk, kind));
        frame(&f);
    }
}

/// A 512-byte miniSEED log record holding `text` (at most [`INFO_CHUNK`] bytes).
fn log_record(seq: u32, text: &[u8], kind: InfoKind) -> [u8; RECORD_LEN] {
    let mut r = [0u8; RECORD_LEN];
    r[..6].copy_from_slice(format!("{:06}", seq % 1_000_000).as_bytes());
    r[6] = b'D';
    r[7] = b' ';
    // Station "INFO", no location, channel "INF" or "ERR", network "XX": slinktool
    // looks at the channel to tell a refusal from a document.
    r[8..20].copy_from_slice(match kind {
        InfoKind::Info => b"INFO   INFXX",
        InfoKind::Error => b"INFO   ERRXX",
    });
    // BTIME 1970,001 00:00:00: INFO records carry no time of their own.
    r[20..22].copy_from_slice(&1970u16.to_be_bytes());
    r[22..24].copy_from_slice(&1u16.to_be_bytes());
    let n = text.len().min(INFO_CHUNK);
    r[30..32].copy_from_slice(&(n as u16).to_be_bytes());
    r[39] = 1;
    r[44..46].copy_from_slice(&56u16.to_be_bytes());
    r[46..48].copy_from_slice(&48u16.to_be_bytes());
    r[48..50].copy_from_slice(&1000u16.to_be_bytes());
    r[52] = 0; // encoding: ASCII text
    r[53] = 1; // big-endian
    r[54] = RECORD_LEN.trailing_zeros() as u8;
    r[56..56 + n].copy_from_slice(&text[..n]);
    r
}

/// The kind of the INFO frames `frames` begins with (by the first record's channel),
/// `None` if it does not begin with one.
pub fn info_kind(frames: &[u8]) -> Option<InfoKind> {
    if !frames.starts_with(b"SLINFO") {
        return None;
    }
    match frames.get(HEADER_LEN + 15..HEADER_LEN + 18)? {
        b"INF" => Some(InfoKind::Info),
        b"ERR" => Some(InfoKind::Error),
        _ => None,
    }
}

/// Joins the XML text of INFO frames (as [`info_frames`] writes them); `None` if the
/// bytes are not whole INFO frames ending in a last one.
pub fn info_text(mut frames: &[u8]) -> Option<String> {
    let mut text = Vec::new();
    loop {
        let frame = frames.get(..HEADER_LEN + RECORD_LEN)?;
        let more = match &frame[..HEADER_LEN] {
            b"SLINFO *" => true,
            b"SLINFO  " => false,
            _ => return None,
        };
        let rec = &frame[HEADER_LEN..];
        let n = usize::from(u16::from_be_bytes([rec[30], rec[31]])).min(INFO_CHUNK);
        let data = usize::from(u16::from_be_bytes([rec[44], rec[45]]));
        text.extend_from_slice(rec.get(data..data + n)?);
        frames = &frames[HEADER_LEN + RECORD_LEN..];
        if !more {
            return String::from_utf8(text).ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn data_frames_carry_24_bit_uppercase_hex_sequence_numbers() {
        let mut out = Vec::new();
        data_frame(&mut out, 0x1_00AB_CDEF, &[7u8; RECORD_LEN]);
        assert_eq!(&out[..8], b"SLABCDEF");
        assert_eq!(out.len(), 8 + RECORD_LEN);
        assert_eq!(frame_seq(&out[..8]), Some(0xAB_CDEF));
        assert_eq!(frame_seq(b"SLINFO *"), None);
    }

    #[test]
    fn error_replies_with_and_without_reasons() {
        assert_eq!(error(None), b"ERROR\r\n");
        assert_eq!(
            error(Some(("ARGUMENTS", "bad\r\nline"))),
            b"ERROR\rARGUMENTS bad  line\r\n"
        );
        let long = error(Some(("ARGUMENTS", &"x".repeat(300))));
        assert_eq!(long.len(), MAX_REPLY);
        assert!(long.starts_with(b"ERROR\rARGUMENTS xx") && long.ends_with(b"x\r\n"));
    }

    #[test]
    fn info_frames_are_log_records_with_a_continuation_flag() {
        let xml = "x".repeat(INFO_CHUNK + 10);
        let mut out = Vec::new();
        info_frames(&mut out, &xml, InfoKind::Info);
        assert_eq!(out.len(), 2 * (HEADER_LEN + RECORD_LEN));
        // Station, location, channel and network as ringserver names them.
        assert_eq!(&out[8 + 8..8 + 20], b"INFO   INFXX");
        assert_eq!(info_kind(&out), Some(InfoKind::Info));
        assert_eq!(&out[..8], b"SLINFO *");
        assert_eq!(&out[520..528], b"SLINFO  ");
        // blockette 1000, encoding 0 (ASCII), 512-byte record.
        assert_eq!(&out[8 + 48..8 + 50], &1000u16.to_be_bytes());
        assert_eq!(out[8 + 52], 0);
        assert_eq!(out[8 + 54], 9);
        assert_eq!(info_text(&out).as_deref(), Some(xml.as_str()));
    }

    #[test]
    fn refusals_are_err_records_and_a_short_one_is_one_last_frame() {
        let mut out = Vec::new();
        info_frames(&mut out, "<seedlink/>", InfoKind::Error);
        assert_eq!(out.len(), HEADER_LEN + RECORD_LEN);
        assert_eq!(&out[..8], b"SLINFO  ");
        assert_eq!(&out[8 + 15..8 + 18], b"ERR");
        assert_eq!(info_kind(&out), Some(InfoKind::Error));
        assert_eq!(info_text(&out).as_deref(), Some("<seedlink/>"));
        assert_eq!(info_kind(b"SL000001"), None);
    }

    proptest! {
        #[test]
        fn info_text_round_trips(xml in "[ -~]{0,2000}") {
            let mut out = Vec::new();
            info_frames(&mut out, &xml, InfoKind::Info);
            prop_assert_eq!(info_text(&out), Some(xml));
        }
    }
}
