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

/// An `ERROR` reply; with `reason` (for clients that announced `EXTREPLY`) it is
/// `ERROR CODE reason`, the code being SeedLink 4's `UNSUPPORTED` or `ARGUMENTS`.
pub fn error(reason: Option<(&str, &str)>) -> Vec<u8> {
    match reason {
        None => ERROR.to_vec(),
        Some((code, text)) => {
            // One line: the reason must not break the framing.
            let text: String = text
                .chars()
                .map(|c| {
                    if c.is_ascii() && !c.is_ascii_control() {
                        c
                    } else {
                        ' '
                    }
                })
                .collect();
            format!("ERROR {code} {text}\r\n").into_bytes()
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

/// Appends the INFO frames carrying `xml` (ASCII; anything else is replaced by `?`).
/// The records are named station `INFO`, channel `LOG`; the level is not carried.
pub fn info_frames(out: &mut Vec<u8>, xml: &str) {
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
    for (i, chunk) in chunks.into_iter().enumerate() {
        out.extend_from_slice(if i == last { b"SLINFO  " } else { b"SLINFO *" });
        out.extend_from_slice(&log_record(i as u32 + 1, chunk));
    }
}

/// A 512-byte miniSEED log record holding `text` (at most [`INFO_CHUNK`] bytes).
fn log_record(seq: u32, text: &[u8]) -> [u8; RECORD_LEN] {
    let mut r = [0u8; RECORD_LEN];
    r[..6].copy_from_slice(format!("{:06}", seq % 1_000_000).as_bytes());
    r[6] = b'D';
    r[7] = b' ';
    // Station "INFO", no location, channel "LOG", no network: how SeisComP names them.
    r[8..20].copy_from_slice(b"INFO   LOG  ");
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
            b"ERROR ARGUMENTS bad  line\r\n"
        );
    }

    #[test]
    fn info_frames_are_log_records_with_a_continuation_flag() {
        let xml = "x".repeat(INFO_CHUNK + 10);
        let mut out = Vec::new();
        info_frames(&mut out, &xml);
        assert_eq!(out.len(), 2 * (HEADER_LEN + RECORD_LEN));
        assert_eq!(&out[..8], b"SLINFO *");
        assert_eq!(&out[520..528], b"SLINFO  ");
        // blockette 1000, encoding 0 (ASCII), 512-byte record.
        assert_eq!(&out[8 + 48..8 + 50], &1000u16.to_be_bytes());
        assert_eq!(out[8 + 52], 0);
        assert_eq!(out[8 + 54], 9);
        assert_eq!(info_text(&out).as_deref(), Some(xml.as_str()));
    }

    proptest! {
        #[test]
        fn info_text_round_trips(xml in "[ -~]{0,2000}") {
            let mut out = Vec::new();
            info_frames(&mut out, &xml);
            prop_assert_eq!(info_text(&out), Some(xml));
        }
    }
}
