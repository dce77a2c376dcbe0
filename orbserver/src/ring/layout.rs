//! Byte layout of the ring file, as `docs/RING-FORMAT.md` sections 4 and 5 describe it.
//!
//! Every offset is chained from the previous field's offset and size, so a field can
//! only move if the one before it changes size; `offsets_match_the_doc` pins them to the
//! numbers printed in the document. Encoding and decoding here are pure functions over
//! byte slices: the scanner in `recover.rs` and the fuzz target use them on arbitrary
//! bytes, so nothing here may panic on bad input.

use std::mem::size_of;

/// Size of the header page, and the file offset of the data area.
pub const HEADER_SIZE: usize = 4096;
/// The header's first 8 bytes.
pub const HEADER_MAGIC: [u8; 8] = *b"ORBRING\0";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Header field: magic.
pub const H_MAGIC: usize = 0;
/// Header field: format version (u32).
pub const H_VERSION: usize = H_MAGIC + HEADER_MAGIC.len();
/// Header field: header size (u32).
pub const H_HEADER_SIZE: usize = H_VERSION + size_of::<u32>();
/// Header field: data capacity C (u64).
pub const H_CAPACITY: usize = H_HEADER_SIZE + size_of::<u32>();
/// Header field: creation time (i64 microseconds).
pub const H_CREATED: usize = H_CAPACITY + size_of::<u64>();
/// End of the geometry the geometry CRC covers.
pub const H_GEOMETRY_END: usize = H_CREATED + size_of::<i64>();
/// Header field: CRC-32 of bytes `0..H_GEOMETRY_END` (u32).
pub const H_GEOMETRY_CRC: usize = H_GEOMETRY_END;
/// Header field: next pktid hint (u64). Starts the writer's hint area on its own line.
pub const H_NEXT_PKTID: usize = 64;
/// Header field: pktid high-water mark (u64).
pub const H_PKTID_HWM: usize = H_NEXT_PKTID + size_of::<u64>();
/// Header field: clean-close flag (u64).
pub const H_CLEAN: usize = H_PKTID_HWM + size_of::<u64>();
/// Header field: scan limit (u64): no record was ever written at or beyond this data
/// offset; 0 means unknown (scan everything).
pub const H_SCAN_LIMIT: usize = H_CLEAN + size_of::<u64>();
/// End of the fields in use; the rest of the page is reserved.
pub const H_END: usize = H_SCAN_LIMIT + size_of::<u64>();

/// First 4 bytes of every record (`ORBR` read as little-endian).
pub const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"ORBR");
/// Record field: magic (u32).
pub const R_MAGIC: usize = 0;
/// Record field: CRC-32 of bytes `R_LPOS..` to the end of the payload (u32).
pub const R_CRC: usize = R_MAGIC + size_of::<u32>();
/// Record field: logical position (u64).
pub const R_LPOS: usize = R_CRC + size_of::<u32>();
/// Record field: pktid (u64).
pub const R_PKTID: usize = R_LPOS + size_of::<u64>();
/// Record field: time in microseconds (i64).
pub const R_TIME: usize = R_PKTID + size_of::<u64>();
/// Record field: payload length (u32).
pub const R_PAYLOAD_LEN: usize = R_TIME + size_of::<i64>();
/// Record field: srcname length (u16).
pub const R_SRCNAME_LEN: usize = R_PAYLOAD_LEN + size_of::<u32>();
/// Record field: flags (u16), zero in version 1.
pub const R_FLAGS: usize = R_SRCNAME_LEN + size_of::<u16>();
/// Size of the fixed record header; the srcname follows.
pub const RECORD_HEADER: usize = R_FLAGS + size_of::<u16>();
/// Records start on multiples of this.
pub const RECORD_ALIGN: usize = 8;
/// How far the scan limit is raised each time the writer reaches it.
pub const SCAN_LIMIT_STEP: u64 = 64 << 20;
/// How far `pktid_hwm` is raised each time the writer reaches it.
pub const PKTID_HWM_STEP: u64 = 65_536;

/// Smallest data capacity a ring may have.
pub const MIN_CAPACITY: u64 = 1 << 20;
/// Largest data capacity a ring may have.
pub const MAX_CAPACITY: u64 = 1 << 40;
/// Data capacities are multiples of this (one page).
pub const CAPACITY_ALIGN: u64 = 4096;

/// Stored size of a record: its length rounded up to [`RECORD_ALIGN`].
pub fn stored_size(srcname_len: usize, payload_len: usize) -> u64 {
    let len = (RECORD_HEADER + srcname_len + payload_len) as u64;
    len.div_ceil(RECORD_ALIGN as u64) * RECORD_ALIGN as u64
}

/// The largest stored record size a ring of capacity `capacity` accepts.
pub fn max_record(capacity: u64) -> u64 {
    capacity / 4
}

/// The fields of a record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// CRC-32 as stored.
    pub crc: u32,
    /// Logical position.
    pub lpos: u64,
    /// Packet id.
    pub pktid: u64,
    /// Packet time, microseconds since the epoch.
    pub time_us: i64,
    /// Payload length in bytes.
    pub payload_len: u32,
    /// Srcname length in bytes.
    pub srcname_len: u16,
    /// Flags; zero in version 1.
    pub flags: u16,
}

impl RecordHeader {
    /// Total length of the record (header, srcname, payload), without padding.
    pub fn record_len(&self) -> usize {
        RECORD_HEADER + usize::from(self.srcname_len) + self.payload_len as usize
    }

    /// Stored size of the record, padding included.
    pub fn stored_size(&self) -> u64 {
        stored_size(usize::from(self.srcname_len), self.payload_len as usize)
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Reads a little-endian u32 at `at`, or `None` past the end.
pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads a little-endian u64 at `at`, or `None` past the end.
pub fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Writes a little-endian u64 at `at`. Panics if out of bounds: callers write only into
/// buffers they sized themselves.
pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Writes a little-endian u32 at `at` (same contract as [`put_u64`]).
pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Decodes a record header at the start of `b` if the magic matches and the flags are
/// known; nothing else is checked here.
pub fn decode_record_header(b: &[u8]) -> Option<RecordHeader> {
    if u32_at(b, R_MAGIC)? != RECORD_MAGIC {
        return None;
    }
    let h = RecordHeader {
        crc: u32_at(b, R_CRC)?,
        lpos: u64_at(b, R_LPOS)?,
        pktid: u64_at(b, R_PKTID)?,
        time_us: u64_at(b, R_TIME)? as i64,
        payload_len: u32_at(b, R_PAYLOAD_LEN)?,
        srcname_len: u16_at(b, R_SRCNAME_LEN)?,
        flags: u16_at(b, R_FLAGS)?,
    };
    (h.flags == 0 && h.srcname_len >= 1).then_some(h)
}

/// CRC of a whole record laid out in `rec` (`rec` spans exactly header, srcname, payload).
pub fn record_crc(rec: &[u8]) -> u32 {
    crc32fast::hash(&rec[R_LPOS..])
}

/// Checks the record at data offset `offset` of `data` (the whole data area) and returns
/// its header if it is valid by the rules of RING-FORMAT.md section 5.
pub fn check_record(data: &[u8], offset: usize) -> Option<RecordHeader> {
    let h = decode_record_header(data.get(offset..)?)?;
    let rec = data.get(offset..offset.checked_add(h.record_len())?)?;
    let capacity = data.len() as u64;
    if h.lpos % capacity != offset as u64 || h.stored_size() > max_record(capacity) {
        return None;
    }
    (record_crc(rec) == h.crc).then_some(h)
}

/// Writes a complete record (header, srcname, payload, zero padding, then the CRC) into
/// `dst`, which must be exactly `stored_size` bytes long. The CRC goes in last so that a
/// record torn by a crash never checks (RING-FORMAT.md section 6).
pub fn encode_record(
    dst: &mut [u8],
    lpos: u64,
    pktid: u64,
    time_us: i64,
    srcname: &[u8],
    payload: &[u8],
) {
    let len = RECORD_HEADER + srcname.len() + payload.len();
    put_u32(dst, R_MAGIC, RECORD_MAGIC);
    put_u32(dst, R_CRC, 0);
    put_u64(dst, R_LPOS, lpos);
    put_u64(dst, R_PKTID, pktid);
    put_u64(dst, R_TIME, time_us as u64);
    put_u32(dst, R_PAYLOAD_LEN, payload.len() as u32);
    dst[R_SRCNAME_LEN..R_SRCNAME_LEN + 2].copy_from_slice(&(srcname.len() as u16).to_le_bytes());
    dst[R_FLAGS..R_FLAGS + 2].copy_from_slice(&0u16.to_le_bytes());
    dst[RECORD_HEADER..RECORD_HEADER + srcname.len()].copy_from_slice(srcname);
    dst[RECORD_HEADER + srcname.len()..len].copy_from_slice(payload);
    dst[len..].fill(0);
    let crc = record_crc(&dst[..len]);
    put_u32(dst, R_CRC, crc);
}

/// The geometry of a ring as stored in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Data capacity C in bytes.
    pub capacity: u64,
    /// Creation time, microseconds since the epoch.
    pub created_us: i64,
}

/// Why a header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderProblem {
    /// The first bytes are not `ORBRING\0`.
    BadMagic,
    /// A version this code does not know.
    UnknownVersion(u32),
    /// The geometry CRC does not match.
    BadChecksum,
    /// A header size other than 4096.
    BadHeaderSize(u32),
    /// A capacity out of range or not page-aligned.
    BadCapacity(u64),
}

impl std::fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderProblem::BadMagic => write!(f, "it does not start with the orb ring magic"),
            HeaderProblem::UnknownVersion(v) => {
                write!(f, "format version {v} is not known (this orbserver reads version {FORMAT_VERSION})")
            }
            HeaderProblem::BadChecksum => write!(f, "the header geometry checksum does not match"),
            HeaderProblem::BadHeaderSize(s) => write!(f, "header size {s} is not {HEADER_SIZE}"),
            HeaderProblem::BadCapacity(c) => write!(
                f,
                "capacity {c} is out of range or not a multiple of {CAPACITY_ALIGN}"
            ),
        }
    }
}

/// Checks that a capacity is one this format allows.
pub fn capacity_ok(capacity: u64) -> bool {
    (MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) && capacity.is_multiple_of(CAPACITY_ALIGN)
}

/// Writes a fresh header page (geometry, hints, `clean = 1`) into `page`.
pub fn encode_header(page: &mut [u8], g: Geometry) {
    page[..HEADER_SIZE].fill(0);
    page[H_MAGIC..H_MAGIC + 8].copy_from_slice(&HEADER_MAGIC);
    put_u32(page, H_VERSION, FORMAT_VERSION);
    put_u32(page, H_HEADER_SIZE, HEADER_SIZE as u32);
    put_u64(page, H_CAPACITY, g.capacity);
    put_u64(page, H_CREATED, g.created_us as u64);
    let crc = crc32fast::hash(&page[..H_GEOMETRY_END]);
    put_u32(page, H_GEOMETRY_CRC, crc);
    put_u64(page, H_NEXT_PKTID, 1);
    put_u64(page, H_PKTID_HWM, 1);
    put_u64(page, H_CLEAN, 1);
}

/// Decodes and checks the geometry of a header page.
pub fn decode_header(page: &[u8]) -> Result<Geometry, HeaderProblem> {
    if page.get(H_MAGIC..H_MAGIC + 8) != Some(&HEADER_MAGIC[..]) {
        return Err(HeaderProblem::BadMagic);
    }
    let version = u32_at(page, H_VERSION).ok_or(HeaderProblem::BadMagic)?;
    if version != FORMAT_VERSION {
        return Err(HeaderProblem::UnknownVersion(version));
    }
    let crc = u32_at(page, H_GEOMETRY_CRC).ok_or(HeaderProblem::BadMagic)?;
    if crc != crc32fast::hash(&page[..H_GEOMETRY_END]) {
        return Err(HeaderProblem::BadChecksum);
    }
    let header_size = u32_at(page, H_HEADER_SIZE).ok_or(HeaderProblem::BadMagic)?;
    if header_size as usize != HEADER_SIZE {
        return Err(HeaderProblem::BadHeaderSize(header_size));
    }
    let capacity = u64_at(page, H_CAPACITY).ok_or(HeaderProblem::BadMagic)?;
    if !capacity_ok(capacity) {
        return Err(HeaderProblem::BadCapacity(capacity));
    }
    let created_us = u64_at(page, H_CREATED).ok_or(HeaderProblem::BadMagic)? as i64;
    Ok(Geometry {
        capacity,
        created_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_match_the_doc() {
        // The numbers printed in docs/RING-FORMAT.md, sections 4 and 5.
        assert_eq!(
            [
                H_MAGIC,
                H_VERSION,
                H_HEADER_SIZE,
                H_CAPACITY,
                H_CREATED,
                H_GEOMETRY_CRC
            ],
            [0, 8, 12, 16, 24, 32]
        );
        assert_eq!(
            [H_NEXT_PKTID, H_PKTID_HWM, H_CLEAN, H_SCAN_LIMIT, H_END],
            [64, 72, 80, 88, 96]
        );
        assert_eq!(
            [
                R_MAGIC,
                R_CRC,
                R_LPOS,
                R_PKTID,
                R_TIME,
                R_PAYLOAD_LEN,
                R_SRCNAME_LEN,
                R_FLAGS
            ],
            [0, 4, 8, 16, 24, 32, 36, 38]
        );
        assert_eq!(RECORD_HEADER, 40);
        assert_eq!(RECORD_MAGIC.to_le_bytes(), *b"ORBR");
        assert_eq!(RECORD_MAGIC, 0x5242_524F);
    }

    #[test]
    fn record_round_trip_and_every_single_bit_flip_is_caught() {
        let mut data = vec![0u8; 1 << 20];
        let size = stored_size(4, 11) as usize;
        assert_eq!(size, 56);
        encode_record(&mut data[64..64 + size], 64, 7, -5, b"A_B/", b"hello world");
        let h = check_record(&data, 64).expect("valid record");
        assert_eq!(
            (h.lpos, h.pktid, h.time_us, h.payload_len, h.srcname_len),
            (64, 7, -5, 11, 4)
        );
        for bit in 0..(RECORD_HEADER + 15) * 8 {
            let mut bad = data.clone();
            bad[64 + bit / 8] ^= 1 << (bit % 8);
            assert!(
                check_record(&bad, 64).is_none(),
                "flip of bit {bit} not caught"
            );
        }
    }

    #[test]
    fn a_record_is_only_valid_at_its_own_position() {
        let mut data = vec![0u8; 1 << 20];
        encode_record(&mut data[0..48], 8, 1, 0, b"X", b"");
        assert!(check_record(&data, 0).is_none());
    }

    #[test]
    fn header_round_trip_and_refusals() {
        let mut page = vec![0u8; HEADER_SIZE];
        let g = Geometry {
            capacity: 1 << 20,
            created_us: 42,
        };
        encode_header(&mut page, g);
        assert_eq!(decode_header(&page), Ok(g));
        let mut bad = page.clone();
        bad[0] = b'X';
        assert_eq!(decode_header(&bad), Err(HeaderProblem::BadMagic));
        let mut bad = page.clone();
        bad[H_CAPACITY] ^= 1;
        assert_eq!(decode_header(&bad), Err(HeaderProblem::BadChecksum));
        let mut bad = page.clone();
        put_u32(&mut bad, H_VERSION, 9);
        assert_eq!(decode_header(&bad), Err(HeaderProblem::UnknownVersion(9)));
        assert_eq!(decode_header(&page[..10]), Err(HeaderProblem::BadMagic));
    }
}
