//! Archive writers: packets in, files that researchers' tools open out.
//!
//! One module per format, all behind [`PacketWriter`]:
//!
//! - [`netcdf`]: netCDF classic (CDF-2 by default, CDF-1 on request), CF-1.8
//!   `timeSeries`, appendable while a stream runs.
//! - [`cdl`]: the same dataset as `ncdump` prints it.
//! - [`jsonl`]: JSON Lines, one packet per line.
//! - [`raw`]: complete orb packets with a CRC each, for replay with `orbput --from`.
//! - [`sds`]: miniSEED day files of an SDS archive, one channel per file.
//! - `resume`: [`Truncate`] and [`Resumed`], for reopening a file after a crash.
//!
//! Writers are generic over `std::io` traits and never open files themselves, so tests
//! write into a `Cursor<Vec<u8>>` and compare bytes, and the caller (orbreaper) owns
//! the file, its name and its `fsync`. The layouts are in `docs/FORMATS.md`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::payload::Channel;

pub mod jsonl;
pub mod raw;
pub mod resume;
pub mod sds;

use crate::{Packet, Time};
pub use resume::{Resumed, Truncate};

pub mod cdl;
pub mod netcdf;

/// An archive file being written, one packet at a time.
///
/// A writer either takes a packet whole or refuses it with
/// [`WriteError::DoesNotFit`] and leaves the file as it was; the caller then finishes
/// this file and starts a new one with the packet. A writer never drops, reorders or
/// shifts samples to make a packet fit.
pub trait PacketWriter {
    /// Adds one packet. `channels` is its decoded payload
    /// ([`payload::decode`](crate::payload::decode)); raw files store the payload
    /// bytes and ignore it, netCDF and CDL store only samples and refuse a packet
    /// without any, JSON Lines writes such a packet's payload as base64.
    ///
    /// What is appended may stay buffered until [`flush`](PacketWriter::flush).
    fn append(&mut self, packet: &Packet, channels: &[Channel]) -> Result<(), WriteError>;

    /// Writes everything buffered to the underlying writer, and only then the header
    /// or count that makes it visible to readers, so that a crash at any point leaves
    /// a readable file holding every packet counted. Does not `fsync`: that is the
    /// caller's, who owns the file.
    fn flush(&mut self) -> Result<(), WriteError>;

    /// Flushes and completes the file (formats that can only be written whole, like
    /// CDL, write here). No packet may be appended afterwards.
    fn finish(&mut self) -> Result<(), WriteError>;

    /// What the file holds so far, including what is still buffered.
    fn summary(&self) -> &FileSummary;
}

/// What an archive file holds: the metadata a reaper attaches to it (sidecar JSON,
/// catalog) and reads back to resume after a crash.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileSummary {
    /// Pktid of the first packet in the file.
    pub first_pktid: Option<u64>,
    /// Pktid of the last packet in the file: a reaper resumes after it.
    pub last_pktid: Option<u64>,
    /// Number of packets written.
    pub packets: u64,
    /// Every srcname in the file.
    pub srcnames: BTreeSet<String>,
    /// Time of the earliest sample (or packet, for formats without samples).
    pub start: Option<Time>,
    /// Time just after the latest sample (or the latest packet time).
    pub end: Option<Time>,
    /// Number of samples, summed over channels.
    pub samples: u64,
    /// For SDS day files only: the file's length in bytes when this summary was
    /// taken. The sidecar holding it is the commit point of an SDS file (miniSEED
    /// records carry no pktid): a restart cuts whatever lies beyond it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

impl FileSummary {
    /// Counts one packet with its channels.
    pub fn add(&mut self, packet: &Packet, channels: &[Channel]) {
        if self.first_pktid.is_none() {
            self.first_pktid = Some(packet.pktid);
        }
        self.last_pktid = Some(packet.pktid);
        self.packets += 1;
        if !self.srcnames.contains(packet.srcname.as_str()) {
            self.srcnames.insert(packet.srcname.as_str().to_owned());
        }
        let (start, end) = if channels.is_empty() {
            (packet.time, packet.time)
        } else {
            let start = channels
                .iter()
                .map(|c| c.start)
                .min()
                .unwrap_or(packet.time);
            let end = channels
                .iter()
                .map(Channel::end)
                .max()
                .unwrap_or(packet.time);
            (start, end)
        };
        self.start = Some(self.start.map_or(start, |s| s.min(start)));
        self.end = Some(self.end.map_or(end, |e| e.max(end)));
        self.samples += channels.iter().map(|c| c.samples.len() as u64).sum::<u64>();
    }
}

/// The archive formats, as rule files and command lines name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// netCDF classic (`.nc`).
    Netcdf,
    /// CDL text as `ncdump` prints it (`.cdl`).
    Cdl,
    /// JSON Lines (`.jsonl`).
    Json,
    /// Complete orb packets for replay (`.orb`).
    Raw,
    /// miniSEED day files in an SDS archive (`NET.STA.LOC.CHAN.D.YEAR.DAY`).
    Sds,
}

impl Format {
    /// Every format, in the order documentation lists them.
    pub const ALL: [Format; 5] = [
        Format::Netcdf,
        Format::Cdl,
        Format::Json,
        Format::Raw,
        Format::Sds,
    ];

    /// The name used in rule files: `netcdf`, `cdl`, `json`, `raw`, `sds`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Netcdf => "netcdf",
            Format::Cdl => "cdl",
            Format::Json => "json",
            Format::Raw => "raw",
            Format::Sds => "sds",
        }
    }

    /// The usual file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Netcdf => "nc",
            Format::Cdl => "cdl",
            Format::Json => "jsonl",
            Format::Raw => "orb",
            Format::Sds => "mseed",
        }
    }

    /// Whether a file of this format can be reopened and appended to
    /// (CDL is written whole, its data section being ordered by variable).
    pub fn appendable(self) -> bool {
        !matches!(self, Format::Cdl)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of `netcdf`, `cdl`, `json`, `raw`, `sds`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {0:?}: use netcdf, cdl, json, raw or sds")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// Why a writer could not take a packet or write its file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The packet does not belong in this file (another station, sample rate or
    /// channel set, samples overlapping those already written, no samples at all).
    /// Nothing was written: finish this file and start a new one for the packet.
    #[error("packet {pktid} does not fit this file: {reason}")]
    DoesNotFit {
        /// The packet's id.
        pktid: u64,
        /// What differs, for the log.
        reason: String,
    },
    /// An existing file given to resume is not one this writer can continue.
    #[error("cannot continue this file: {0}")]
    Corrupt(String),
    /// The file was already finished.
    #[error("the file is already finished")]
    Finished,
    /// Reading or writing the underlying file failed (disk full, permissions).
    #[error("cannot write the archive file: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SrcName;

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>().unwrap(), f);
        }
        let err = "nc".parse::<Format>().unwrap_err();
        assert!(err.to_string().contains("netcdf, cdl, json, raw or sds"));
    }

    #[test]
    fn summary_counts_packets_and_samples() {
        let mut s = FileSummary::default();
        let name = SrcName::new("XX_STA01/GENC/BHZ").unwrap();
        let mut p = Packet::new(name, Time::from_micros(1_000_000), &b""[..]);
        p.pktid = 7;
        let ch = Channel {
            net: "XX".into(),
            sta: "STA01".into(),
            chan: "BHZ".into(),
            loc: String::new(),
            start: Time::from_micros(1_000_000),
            samprate: 10.0,
            calib: 1.0,
            calper: 1.0,
            segtype: 'V',
            samples: vec![1, 2, 3],
        };
        s.add(&p, std::slice::from_ref(&ch));
        p.pktid = 8;
        s.add(&p, &[]);
        assert_eq!(s.first_pktid, Some(7));
        assert_eq!(s.last_pktid, Some(8));
        assert_eq!(s.packets, 2);
        assert_eq!(s.samples, 3);
        assert_eq!(s.start, Some(Time::from_micros(1_000_000)));
        assert_eq!(s.end, Some(Time::from_micros(1_300_000)));
        assert_eq!(s.srcnames.len(), 1);
    }
}
