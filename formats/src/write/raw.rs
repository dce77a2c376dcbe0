//! Raw packet files (`.orb`): complete orb packets, each with a CRC, for replay with
//! `orbput --from`.
//!
//! All integers are little-endian. A file is a 12-byte header and then records, back
//! to back, with no index and no padding (`docs/FORMATS.md`, "Archive files"):
//!
//! ```text
//! header   0   8  magic      89 4F 52 42 52 41 57 0A  ("\x89ORBRAW\n")
//!          8   2  u16        format version, 1
//!         10   2  u16        flags, 0 (any other value: a newer format, refused)
//! record   0   4  u32        body length L = 21 + n + m (bytes 8 .. 8+L)
//!          4   4  u32        CRC-32 of bytes 0..4 (so a damaged length is never trusted)
//!          8   8  u64        pktid
//!         16   8  i64        packet time, microseconds since 1970-01-01T00:00:00Z
//!         24   1  u8         srcname length n, 1..=63
//!         25   n  ASCII      srcname
//!       25+n   4  u32        payload length m
//!       29+n   m  bytes      payload
//!     29+n+m   4  u32        CRC-32 (IEEE, as crc32fast) of record bytes 0 .. 29+n+m
//! ```
//!
//! Recovery rule: reading from the start, a record whose first 8 bytes, or whose
//! whole trusted length, run past the end of the file is a torn tail (a crash in
//! mid-write): everything before it is kept and it is cut on resume. Anything else
//! wrong (a length or record CRC that does not match, a bad field) is corruption: the
//! reader stops with [`RawError::Corrupt`] naming the byte offset, and nothing from
//! there on is trusted.

use std::io::{self, Read, Seek, SeekFrom, Write};

use bytes::Bytes;

use super::resume::{Resumed, Truncate};
use super::{FileSummary, PacketWriter, WriteError};
use crate::payload::Channel;
use crate::{Packet, SrcName, Time, MAX_SRCNAME_LEN};

/// The file's first 8 bytes. The high first byte catches 7-bit transfers, the
/// newline catches newline translation (as in PNG's signature).
pub const MAGIC: [u8; 8] = *b"\x89ORBRAW\n";
/// The format version this module writes and reads.
pub const VERSION: u16 = 1;

const MAGIC_AT: usize = 0;
const VERSION_AT: usize = MAGIC_AT + MAGIC.len();
const FLAGS_AT: usize = VERSION_AT + size_of::<u16>();
/// Bytes in the file header.
pub const HEADER_LEN: usize = FLAGS_AT + size_of::<u16>();

const BODY_LEN_AT: usize = 0;
const LEN_CRC_AT: usize = BODY_LEN_AT + size_of::<u32>();
const PKTID_AT: usize = LEN_CRC_AT + size_of::<u32>();
const TIME_AT: usize = PKTID_AT + size_of::<u64>();
const NAME_LEN_AT: usize = TIME_AT + size_of::<i64>();
const NAME_AT: usize = NAME_LEN_AT + size_of::<u8>();
/// Bytes of a record that are not srcname or payload: the fixed fields and both CRCs.
pub const RECORD_OVERHEAD: usize = NAME_AT + size_of::<u32>() + size_of::<u32>();
/// Body bytes besides srcname and payload: pktid, time, srcname length, payload length.
const BODY_FIXED: usize = RECORD_OVERHEAD - PKTID_AT - size_of::<u32>();

/// The largest payload a record holds. Orb packets are far smaller (orbserver's
/// default limit is 1 MiB); the bound keeps a reader from allocating gigabytes for a
/// length that passed its CRC by chance.
pub const MAX_PAYLOAD: usize = 256 << 20;

/// Why a raw packet file cannot be read (further).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RawError {
    /// The file does not start with a raw packet file header this version reads.
    #[error("not a raw packet file ({reason}); raw packet files start with \"\\x89ORBRAW\\n\" (format `raw`, extension .orb)")]
    NotRaw {
        /// What is wrong with the header.
        reason: String,
    },
    /// A record is damaged; the records before `offset` are intact.
    #[error("corrupt record at byte offset {offset}: {reason}; the records before it are intact (keep only them with `truncate -s {offset} FILE`)")]
    Corrupt {
        /// Byte offset of the record in the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Reading the file failed.
    #[error("cannot read the raw packet file: {0}")]
    Io(#[from] io::Error),
}

/// The file header, as [`RawWriter`] writes it.
pub fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[MAGIC_AT..VERSION_AT].copy_from_slice(&MAGIC);
    h[VERSION_AT..FLAGS_AT].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// What the start of a file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderCheck {
    /// A valid header: records start at [`HEADER_LEN`].
    Valid,
    /// Fewer than [`HEADER_LEN`] bytes, all agreeing with a header: a file cut while
    /// its header was written (or empty). Nothing in it is kept.
    Incomplete,
}

/// Checks the file header at the start of `buf`.
pub fn check_header(buf: &[u8]) -> Result<HeaderCheck, RawError> {
    let want = header();
    let n = buf.len().min(HEADER_LEN);
    let got = &buf[..n];
    if got[..n.min(MAGIC.len())] != want[..n.min(MAGIC.len())] {
        return Err(RawError::NotRaw {
            reason: "wrong magic bytes".into(),
        });
    }
    if n < HEADER_LEN {
        return Ok(HeaderCheck::Incomplete);
    }
    let version = u16::from_le_bytes([got[VERSION_AT], got[VERSION_AT + 1]]);
    let flags = u16::from_le_bytes([got[FLAGS_AT], got[FLAGS_AT + 1]]);
    if version != VERSION || flags != 0 {
        return Err(RawError::NotRaw {
            reason: format!(
                "format version {version} flags {flags:#x}; this program reads version {VERSION} flags 0, use a newer one"
            ),
        });
    }
    Ok(HeaderCheck::Valid)
}

/// Appends one record for `packet` to `out`. Fails (appending nothing) if the
/// payload is larger than [`MAX_PAYLOAD`].
pub fn encode_record(out: &mut Vec<u8>, packet: &Packet) -> Result<(), io::Error> {
    let name = packet.srcname.as_str().as_bytes();
    let payload = &packet.payload[..];
    if payload.len() > MAX_PAYLOAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "packet {} has a payload of {} bytes, more than a raw file record holds ({MAX_PAYLOAD})",
                packet.pktid,
                payload.len()
            ),
        ));
    }
    // SrcName guarantees 1..=63 bytes and MAX_PAYLOAD keeps the sum far below u32::MAX.
    let body_len = (BODY_FIXED + name.len() + payload.len()) as u32;
    let start = out.len();
    out.reserve(RECORD_OVERHEAD + name.len() + payload.len());
    let len_bytes = body_len.to_le_bytes();
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&crc32fast::hash(&len_bytes).to_le_bytes());
    out.extend_from_slice(&packet.pktid.to_le_bytes());
    out.extend_from_slice(&packet.time.as_micros().to_le_bytes());
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The outcome of decoding the record at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A record of this many bytes held this packet.
    Record(Packet, usize),
    /// The buffer ends inside the record: read more, or at the end of the file, a
    /// torn tail.
    Incomplete,
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Decodes the record at the start of `buf`, which sits at byte `offset` of the
/// file (for error messages). Checks the length CRC before trusting the length, and
/// the record CRC before reading any field.
pub fn decode_record(buf: &[u8], offset: u64) -> Result<Decoded, RawError> {
    let corrupt = |reason: String| RawError::Corrupt { offset, reason };
    if buf.len() < PKTID_AT {
        return Ok(Decoded::Incomplete);
    }
    let body_len = le_u32(buf, BODY_LEN_AT) as usize;
    if crc32fast::hash(&buf[BODY_LEN_AT..LEN_CRC_AT]) != le_u32(buf, LEN_CRC_AT) {
        return Err(corrupt("its length field fails its CRC".into()));
    }
    let max_body = BODY_FIXED + MAX_SRCNAME_LEN + MAX_PAYLOAD;
    if !(BODY_FIXED + 1..=max_body).contains(&body_len) {
        return Err(corrupt(format!(
            "body length {body_len} is outside {}..={max_body}",
            BODY_FIXED + 1
        )));
    }
    let crc_at = PKTID_AT + body_len;
    let total = crc_at + size_of::<u32>();
    if buf.len() < total {
        return Ok(Decoded::Incomplete);
    }
    if crc32fast::hash(&buf[..crc_at]) != le_u32(buf, crc_at) {
        return Err(corrupt("its CRC does not match its bytes".into()));
    }
    let pktid = le_u64(buf, PKTID_AT);
    let time = Time::from_micros(le_u64(buf, TIME_AT) as i64);
    let name_len = usize::from(buf[NAME_LEN_AT]);
    let payload_len_at = NAME_AT + name_len;
    if payload_len_at + size_of::<u32>() > crc_at {
        return Err(corrupt(format!(
            "srcname length {name_len} overruns the record"
        )));
    }
    let payload_len = le_u32(buf, payload_len_at) as usize;
    let payload_at = payload_len_at + size_of::<u32>();
    if payload_at + payload_len != crc_at {
        return Err(corrupt(format!(
            "payload length {payload_len} disagrees with the record length {body_len}"
        )));
    }
    let name = std::str::from_utf8(&buf[NAME_AT..payload_len_at])
        .map_err(|_| corrupt("the srcname is not ASCII".into()))?;
    let srcname = SrcName::new(name).map_err(|e| corrupt(e.to_string()))?;
    let packet = Packet {
        pktid,
        srcname,
        time,
        payload: Bytes::copy_from_slice(&buf[payload_at..crc_at]),
    };
    Ok(Decoded::Record(packet, total))
}

/// Reads the packets of a whole raw file held in memory (sans-io: give it the bytes).
///
/// Iterating yields each intact packet in file order. At a torn tail it ends; at a
/// corrupt record (or a bad header) it yields one error and then ends. Afterwards
/// [`valid_len`](RawReader::valid_len) is where the intact part ends.
#[derive(Debug)]
pub struct RawReader<'a> {
    buf: &'a [u8],
    pos: usize,
    done: bool,
    header_error: Option<RawError>,
}

impl<'a> RawReader<'a> {
    /// A reader over the bytes of a file, from its start.
    pub fn new(buf: &'a [u8]) -> RawReader<'a> {
        let (pos, done, header_error) = match check_header(buf) {
            Ok(HeaderCheck::Valid) => (HEADER_LEN, false, None),
            Ok(HeaderCheck::Incomplete) => (0, true, None),
            Err(e) => (0, true, Some(e)),
        };
        RawReader {
            buf,
            pos,
            done: done && header_error.is_none(),
            header_error,
        }
    }

    /// Bytes from the file start to the end of the last record read: header and
    /// intact records. 0 when not even the header is complete.
    pub fn valid_len(&self) -> usize {
        self.pos
    }

    /// Bytes after [`valid_len`](RawReader::valid_len) once iteration ended at a torn
    /// tail (or at a corrupt record: then they are not a tail to cut blindly).
    pub fn rest_len(&self) -> usize {
        self.buf.len() - self.pos
    }
}

impl Iterator for RawReader<'_> {
    type Item = Result<Packet, RawError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.header_error.take() {
            self.done = true;
            return Some(Err(e));
        }
        if self.done {
            return None;
        }
        match decode_record(&self.buf[self.pos..], self.pos as u64) {
            Ok(Decoded::Record(p, len)) => {
                self.pos += len;
                Some(Ok(p))
            }
            Ok(Decoded::Incomplete) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Reads the packets of a raw file from any [`Read`], buffering only one record at a
/// time: for files too large to hold in memory (replay, resume).
#[derive(Debug)]
pub struct RawStream<R> {
    inner: R,
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    start: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    eof: bool,
    header_read: bool,
}

impl<R: Read> RawStream<R> {
    /// A stream reading a file from its first byte.
    pub fn new(inner: R) -> RawStream<R> {
        RawStream {
            inner,
            buf: Vec::with_capacity(64 * 1024),
            start: 0,
            offset: 0,
            eof: false,
            header_read: false,
        }
    }

    /// File offset just after the last packet returned (or the header): the intact
    /// length when [`next_packet`](RawStream::next_packet) returned `Ok(None)`.
    pub fn valid_len(&self) -> u64 {
        self.offset
    }

    /// Bytes after [`valid_len`](RawStream::valid_len) at the end of the file: a torn
    /// tail, once [`next_packet`](RawStream::next_packet) returned `Ok(None)`.
    pub fn torn_len(&self) -> u64 {
        (self.buf.len() - self.start) as u64
    }

    /// Reads until `buf[start..]` holds at least `want` bytes or the file ends.
    fn fill(&mut self, want: usize) -> Result<(), RawError> {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        while !self.eof && self.buf.len() - self.start < want {
            let have = self.buf.len();
            let need = (self.start + want).max(have + 64 * 1024);
            self.buf.resize(need, 0);
            match self.inner.read(&mut self.buf[have..]) {
                Ok(0) => {
                    self.buf.truncate(have);
                    self.eof = true;
                }
                Ok(n) => self.buf.truncate(have + n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.buf.truncate(have),
                Err(e) => {
                    self.buf.truncate(have);
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// The next packet; `Ok(None)` at the end of the file, clean or torn (see
    /// [`torn_len`](RawStream::torn_len)); an error at a bad header or corrupt record.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, RawError> {
        if !self.header_read {
            self.fill(HEADER_LEN)?;
            match check_header(&self.buf[self.start..])? {
                HeaderCheck::Incomplete => return Ok(None),
                HeaderCheck::Valid => {
                    self.start += HEADER_LEN;
                    self.offset += HEADER_LEN as u64;
                    self.header_read = true;
                }
            }
        }
        let mut want = PKTID_AT;
        loop {
            self.fill(want)?;
            match decode_record(&self.buf[self.start..], self.offset)? {
                Decoded::Record(p, len) => {
                    self.start += len;
                    self.offset += len as u64;
                    return Ok(Some(p));
                }
                Decoded::Incomplete if self.eof => return Ok(None),
                Decoded::Incomplete => {
                    // The length is trusted now (its CRC passed), so ask for all of it.
                    let have = self.buf.len() - self.start;
                    want = if have >= PKTID_AT {
                        PKTID_AT + le_u32(&self.buf[self.start..], BODY_LEN_AT) as usize + 4
                    } else {
                        PKTID_AT
                    };
                    if want <= have {
                        want = have + 1;
                    }
                }
            }
        }
    }
}

/// Writes a raw packet file; see the module docs for the bytes.
///
/// Keeps every packet as it came, so `channels` is ignored and nothing is refused
/// (but payloads over [`MAX_PAYLOAD`], an I/O error of kind `InvalidInput`). The
/// summary's times are packet times and its sample count is 0.
#[derive(Debug)]
pub struct RawWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    summary: FileSummary,
    finished: bool,
}

/// Write the buffer out once it holds this much, so memory stays bounded between flushes.
const FLUSH_AT: usize = 1 << 20;

impl<W: Write> RawWriter<W> {
    /// A writer starting a new file at the current position of `out` (the header
    /// goes out with the first flush).
    pub fn new(out: W) -> RawWriter<W> {
        RawWriter {
            out,
            buf: header().to_vec(),
            summary: FileSummary::default(),
            finished: false,
        }
    }

    /// The underlying writer (after [`flush`](PacketWriter::flush) it holds everything).
    pub fn into_inner(self) -> W {
        self.out
    }

    fn write_buffer(&mut self) -> Result<(), WriteError> {
        if !self.buf.is_empty() {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

impl<F: Read + Write + Seek + Truncate> RawWriter<F> {
    /// Reopens an existing raw file to append: reads it from the start, rebuilds the
    /// summary, cuts a torn tail and positions after the last intact record. A
    /// corrupt record is [`WriteError::Corrupt`] (nothing is cut: the damage may be
    /// worth a look); an empty file or a torn header starts the file anew.
    pub fn resume(mut file: F) -> Result<Resumed<RawWriter<F>>, WriteError> {
        file.seek(SeekFrom::Start(0))?;
        let mut summary = FileSummary::default();
        let mut stream = RawStream::new(io::BufReader::new(&mut file));
        loop {
            match stream.next_packet() {
                Ok(Some(p)) => summary.add(&p, &[]),
                Ok(None) => break,
                Err(RawError::Io(e)) => return Err(WriteError::Io(e)),
                Err(e) => return Err(WriteError::Corrupt(e.to_string())),
            }
        }
        let valid = stream.valid_len();
        let cut = stream.torn_len();
        drop(stream);
        if cut > 0 {
            file.set_len(valid)?;
        }
        file.seek(SeekFrom::Start(valid))?;
        let buf = if valid == 0 {
            header().to_vec()
        } else {
            Vec::new()
        };
        Ok(Resumed {
            writer: RawWriter {
                out: file,
                buf,
                summary,
                finished: false,
            },
            cut,
        })
    }
}

impl<W: Write> PacketWriter for RawWriter<W> {
    fn append(&mut self, packet: &Packet, _channels: &[Channel]) -> Result<(), WriteError> {
        if self.finished {
            return Err(WriteError::Finished);
        }
        encode_record(&mut self.buf, packet)?;
        self.summary.add(packet, &[]);
        if self.buf.len() >= FLUSH_AT {
            self.write_buffer()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        if self.finished {
            return Err(WriteError::Finished);
        }
        self.write_buffer()?;
        self.out.flush()?;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), WriteError> {
        self.flush()?;
        self.finished = true;
        Ok(())
    }

    fn summary(&self) -> &FileSummary {
        &self.summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    fn packet(pktid: u64, name: &str, us: i64, payload: &[u8]) -> Packet {
        Packet {
            pktid,
            srcname: SrcName::new(name).unwrap(),
            time: Time::from_micros(us),
            payload: Bytes::copy_from_slice(payload),
        }
    }

    fn fixed() -> Vec<Packet> {
        vec![
            packet(1, "XX_A/GENC", 1_000_000, b"hi"),
            packet(258, "YY_BB", -1, b""),
        ]
    }

    fn write_all(packets: &[Packet]) -> Vec<u8> {
        let mut w = RawWriter::new(Cursor::new(Vec::new()));
        for p in packets {
            w.append(p, &[]).unwrap();
        }
        w.finish().unwrap();
        w.into_inner().into_inner()
    }

    #[test]
    fn layout_constants_match_the_table() {
        assert_eq!(HEADER_LEN, 12);
        assert_eq!((PKTID_AT, TIME_AT, NAME_LEN_AT, NAME_AT), (8, 16, 24, 25));
        assert_eq!(RECORD_OVERHEAD, 33);
        assert_eq!(BODY_FIXED, 21);
    }

    /// The CRCs were computed independently (Python's `zlib.crc32`), so this pins the
    /// CRC flavour as well as the layout.
    #[test]
    fn golden_bytes_of_a_small_file() {
        let bytes = write_all(&fixed());
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &[0x89, b'O', b'R', b'B', b'R', b'A', b'W', b'\n'][..], // magic
            &[1, 0, 0, 0],                               // version 1, flags 0
            // Record 1: body length 21 + 9 + 2 = 32, CRC of those 4 bytes
            &[32, 0, 0, 0, 0x22, 0x70, 0x76, 0x81],
            &[1, 0, 0, 0, 0, 0, 0, 0],                   // pktid 1
            &[0x40, 0x42, 0x0f, 0, 0, 0, 0, 0],          // 1_000_000 us
            &[9], b"XX_A/GENC",                          // srcname
            &[2, 0, 0, 0], b"hi",                        // payload
            &[0xab, 0x72, 0x02, 0xe4],                   // record CRC
            // Record 2: body length 21 + 5 + 0 = 26; pktid 258; time -1 us
            &[26, 0, 0, 0, 0xe7, 0x68, 0xe0, 0x1e],
            &[2, 1, 0, 0, 0, 0, 0, 0],
            &[0xff; 8],
            &[5], b"YY_BB",
            &[0, 0, 0, 0],
            &[0xca, 0xbe, 0xea, 0xc1],
        ]
        .concat();
        assert_eq!(bytes, want);
    }

    #[test]
    fn reader_gives_back_the_packets() {
        let bytes = write_all(&fixed());
        let mut r = RawReader::new(&bytes);
        let got: Vec<Packet> = r.by_ref().map(Result::unwrap).collect();
        assert_eq!(got, fixed());
        assert_eq!(r.valid_len(), bytes.len());
        assert_eq!(r.rest_len(), 0);
    }

    #[test]
    fn torn_tail_at_every_offset_keeps_the_earlier_packets() {
        let bytes = write_all(&fixed());
        let last_start = 12 + 33 + 11;
        for cut in last_start..bytes.len() {
            let mut r = RawReader::new(&bytes[..cut]);
            let got: Vec<Packet> = r.by_ref().map(Result::unwrap).collect();
            assert_eq!(got, fixed()[..1], "cut at {cut}");
            assert_eq!(r.valid_len(), last_start, "cut at {cut}");

            let mut s = RawStream::new(&bytes[..cut]);
            assert_eq!(s.next_packet().unwrap(), Some(fixed()[0].clone()));
            assert_eq!(s.next_packet().unwrap(), None, "cut at {cut}");
            assert_eq!(s.valid_len(), last_start as u64);
            assert_eq!(s.torn_len(), (cut - last_start) as u64);

            let resumed = RawWriter::resume(Cursor::new(bytes[..cut].to_vec())).unwrap();
            assert_eq!(resumed.cut, (cut - last_start) as u64);
            let mut w = resumed.writer;
            assert_eq!(w.summary().packets, 1);
            assert_eq!(w.summary().last_pktid, Some(1));
            w.append(&fixed()[1], &[]).unwrap();
            w.finish().unwrap();
            assert_eq!(w.into_inner().into_inner(), bytes, "cut at {cut}");
        }
        for cut in 0..HEADER_LEN {
            let mut r = RawReader::new(&bytes[..cut]);
            assert!(r.next().is_none());
            assert_eq!(r.valid_len(), 0);
            let resumed = RawWriter::resume(Cursor::new(bytes[..cut].to_vec())).unwrap();
            assert_eq!(resumed.writer.summary().packets, 0);
        }
    }

    #[test]
    fn corrupt_crc_is_detected_with_its_offset() {
        let clean = write_all(&fixed());
        let second = 12 + 33 + 11;
        // Every byte of the second record, flipped, is caught.
        for at in second..clean.len() {
            let mut bytes = clean.clone();
            bytes[at] ^= 0x20;
            let mut r = RawReader::new(&bytes);
            assert_eq!(r.next().unwrap().unwrap(), fixed()[0]);
            match r.next() {
                Some(Err(RawError::Corrupt { offset, .. })) => {
                    assert_eq!(offset, second as u64, "flip at {at}")
                }
                other => panic!("flip at {at}: {other:?}"),
            }
            assert!(r.next().is_none());
            assert_eq!(r.valid_len(), second);
            let err = RawWriter::resume(Cursor::new(bytes.clone())).unwrap_err();
            assert!(matches!(err, WriteError::Corrupt(_)), "{err}");
        }
        let mut bytes = clean.clone();
        bytes[0] = b'x';
        assert!(matches!(
            RawReader::new(&bytes).next(),
            Some(Err(RawError::NotRaw { .. }))
        ));
        let msg = decode_record(&clean[second + 1..], 99)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("offset 99") && msg.contains("truncate -s 99"),
            "{msg}"
        );
    }

    fn arb_packet() -> impl Strategy<Value = Packet> {
        (
            any::<u64>(),
            "[A-Z]{1,8}_[A-Z0-9]{1,6}(/[A-Z]{1,6})?",
            any::<i64>(),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(id, name, t, payload)| packet(id, &name, t, &payload))
    }

    proptest! {
        #[test]
        fn write_then_read_round_trips(packets in proptest::collection::vec(arb_packet(), 0..20)) {
            let bytes = write_all(&packets);
            let got: Vec<Packet> = RawReader::new(&bytes).map(Result::unwrap).collect();
            prop_assert_eq!(&got, &packets);
            // The streaming reader agrees, even when reads come one byte at a time.
            let mut s = RawStream::new(io::BufReader::with_capacity(1, &bytes[..]));
            let mut streamed = Vec::new();
            while let Some(p) = s.next_packet().unwrap() {
                streamed.push(p);
            }
            prop_assert_eq!(streamed, packets.clone());
            prop_assert_eq!(s.torn_len(), 0);
            let resumed = RawWriter::resume(Cursor::new(bytes.clone())).unwrap();
            let mut want = FileSummary::default();
            for p in &packets {
                want.add(p, &[]);
            }
            prop_assert_eq!(resumed.writer.summary(), &want);
        }

        #[test]
        fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut bytes = header().to_vec();
            bytes.extend_from_slice(&tail);
            let mut r = RawReader::new(&bytes);
            for _ in r.by_ref() {}
            prop_assert!(r.valid_len() <= bytes.len());
        }
    }
}
