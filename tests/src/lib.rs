//! Support for the end-to-end tests in `tests/tests/`: self-checking payloads and the
//! helper binaries the tests drive as real processes.
//!
//! - [`harness`]: start a real `orbserver` on 127.0.0.1 port 0 (killed on drop) and find
//!   the workspace's binaries.
//! - [`dlclient`]: a small DataLink client for the DataLink tests and the benchmark.
//! - [`oracle`]: reference tools (Python packages, `ncdump`) that check our output,
//!   skipping locally but failing under CI when missing.
//! - `ring-appender` (src/bin/ring_appender.rs): appends to a ring at full speed and
//!   reports each returned pktid, so a test can kill it with SIGKILL and check the ring.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod dlclient;
pub mod harness;
pub mod oracle;

/// Builds a payload of `len` bytes (at least 12) that carries `seq` and a CRC-32 of its
/// body, so a reader can tell a whole, right payload from a torn or foreign one.
pub fn make_payload(seq: u64, len: usize) -> Vec<u8> {
    let len = len.max(12);
    let mut v = vec![0u8; len];
    v[..8].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in v[12..].iter_mut().enumerate() {
        *b = (seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (i % 57)) as u8 ^ i as u8;
    }
    let crc = crc32fast::hash(&v[12..]);
    v[8..12].copy_from_slice(&crc.to_le_bytes());
    v
}

/// Returns the `seq` a payload made by [`make_payload`] carries, or `None` if it is not
/// whole and right.
pub fn check_payload(p: &[u8]) -> Option<u64> {
    let seq = u64::from_le_bytes(p.get(..8)?.try_into().ok()?);
    let crc = u32::from_le_bytes(p.get(8..12)?.try_into().ok()?);
    (crc32fast::hash(&p[12..]) == crc && make_payload(seq, p.len()) == p).then_some(seq)
}

/// A small deterministic PRNG (xorshift64*), so tests need no extra crate and a failing
/// seed reproduces.
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (any value; zero is mapped to a fixed non-zero state).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1).wrapping_mul(0x2545_F491_4F6C_DD1D))
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_check_and_reject_changes() {
        for len in [0, 12, 13, 100, 3000] {
            let p = make_payload(42, len);
            assert_eq!(check_payload(&p), Some(42));
            let mut bad = p.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert_eq!(check_payload(&bad), None);
            assert_eq!(check_payload(&p[..p.len() - 1]), None);
        }
    }
}
