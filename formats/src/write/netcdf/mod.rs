//! netCDF classic writer, pure Rust: CDF-2 (64-bit offsets) by default, CDF-1 on
//! request, one station at one sample rate per file as a CF-1.8 `timeSeries`, and
//! appendable while a stream runs.
//!
//! - [`model`]: dimensions, variables, attributes and where their data lies.
//! - [`header`]: the header bytes, encoded and decoded.
//! - [`station`]: orb's layout (which packets fit, what the header says).
//! - [`records`]: record bytes, and a reader for them.
//!
//! Append order (docs/FORMATS.md): the first flush writes the `station` data, then
//! every flush writes its buffered records after those already counted and only then
//! rewrites the whole header, `numrecs` included, in one `write_all` at offset 0. The
//! header never changes size once a packet defined it, so a crash anywhere leaves a
//! file whose header counts only records that are complete on disk.

pub mod header;
pub mod model;
pub mod records;
pub mod station;

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;

pub use model::CdfVersion;
use model::{Dataset, Layout};
pub use records::{read, Contents};
use station::StationFile;

use super::{FileSummary, PacketWriter, WriteError};
use crate::meta::Inventory;
use crate::payload::Channel;
use crate::Packet;

/// How to create a netCDF file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetcdfOptions {
    /// CDF-2 (the default) or CDF-1 for old readers.
    pub version: CdfVersion,
}

/// The most records a classic header counts (`0xFFFFFFFF` means "streaming").
const MAX_RECORDS: u64 = u32::MAX as u64 - 1;

/// Writes packets of one station into a netCDF classic file.
#[derive(Debug)]
pub struct NetcdfWriter<W> {
    w: W,
    version: CdfVersion,
    /// The layout, once the first packet (or a resumed header) defined it.
    file: Option<Placed>,
    /// Records counted in the header on disk.
    written: u64,
    /// Encoded records not yet written.
    buf: Vec<u8>,
    buffered: u64,
    /// Whether the fixed data (the `station` text) is on disk.
    fixed_written: bool,
    /// Whether an empty file was written (flushing without packets).
    empty_written: bool,
    summary: FileSummary,
    order: Vec<usize>,
    header: Vec<u8>,
    finished: bool,
    /// A write failed half way: the writer's idea of the file may be wrong.
    poisoned: bool,
    /// Station metadata to look the first packet's station up in.
    metadata: Option<Arc<Inventory>>,
}

#[derive(Debug)]
struct Placed {
    station: StationFile,
    layout: Layout,
}

impl<W: Read + Write + Seek> NetcdfWriter<W> {
    /// A writer for a new file in `w` (which should be empty). Nothing is written
    /// until the first flush: the first packet decides the header.
    pub fn create(w: W, options: NetcdfOptions) -> NetcdfWriter<W> {
        NetcdfWriter {
            w,
            version: options.version,
            file: None,
            written: 0,
            buf: Vec::new(),
            buffered: 0,
            fixed_written: false,
            empty_written: false,
            summary: FileSummary::default(),
            order: Vec::new(),
            header: Vec::new(),
            finished: false,
            poisoned: false,
            metadata: None,
        }
    }

    /// Looks the first packet's station up in `metadata`: when found, the file gets
    /// the station's position and its channels' orientation and sensitivity
    /// (docs/FORMATS.md, "Station metadata"). Has no effect on a resumed file, which
    /// keeps what it recorded.
    pub fn with_metadata(mut self, metadata: Option<Arc<Inventory>>) -> NetcdfWriter<W> {
        self.metadata = metadata;
        self
    }

    /// Continues a file this writer wrote (after a restart or crash): reads its header,
    /// rebuilds the summary from it and appends after its counted records. Records
    /// beyond the count (written before a crash, never counted) are written over; any
    /// such bytes past what it then writes stay uncounted, and readers ignore them.
    pub fn resume(mut w: W) -> Result<NetcdfWriter<W>, WriteError> {
        let h = records::read_header(&mut w)?;
        let mut writer = NetcdfWriter::create(w, NetcdfOptions { version: h.version });
        if station::is_empty_dataset(&h.dataset) {
            writer.empty_written = true;
            return Ok(writer);
        }
        let numrecs = u64::from(h.numrecs);
        let fixed = read_fixed_doubles(&mut writer.w, &h.dataset, h.len as u64)?;
        let (station, summary) = StationFile::from_dataset(&h.dataset, numrecs, &fixed)
            .map_err(|why| WriteError::Corrupt(format!("not a file orb wrote: {why}")))?;
        let rebuilt = station.dataset(&summary);
        let layout = rebuilt.layout(header::header_len(&rebuilt, h.version));
        let mut again = Vec::new();
        header::encode(&mut again, &rebuilt, h.version, h.numrecs, &layout);
        let mut on_disk = vec![0; again.len()];
        w_seek_read(&mut writer.w, &mut on_disk)?;
        if rebuilt != h.dataset || again != on_disk {
            return Err(WriteError::Corrupt(
                "the header differs from what this version of orb writes; start a new file".into(),
            ));
        }
        writer.file = Some(Placed { station, layout });
        writer.written = numrecs;
        writer.fixed_written = true;
        writer.summary = summary;
        Ok(writer)
    }

    /// Gives back the underlying writer (flush or finish first).
    pub fn into_inner(self) -> W {
        self.w
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.w
    }

    fn dataset(&self) -> Dataset {
        match &self.file {
            Some(p) => p.station.dataset(&self.summary),
            None => station::empty_dataset(),
        }
    }

    fn check_usable(&self) -> Result<(), WriteError> {
        if self.finished {
            return Err(WriteError::Finished);
        }
        if self.poisoned {
            return Err(WriteError::Io(std::io::Error::other(
                "an earlier write to this file failed: resume the file to continue",
            )));
        }
        Ok(())
    }

    fn write_all_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), WriteError> {
        self.w.seek(SeekFrom::Start(offset))?;
        self.w.write_all(bytes)?;
        Ok(())
    }

    fn flush_inner(&mut self) -> Result<(), WriteError> {
        let Some(placed) = &self.file else {
            if !self.empty_written {
                let ds = station::empty_dataset();
                let layout = ds.layout(header::header_len(&ds, self.version));
                let mut bytes = std::mem::take(&mut self.header);
                bytes.clear();
                header::encode(&mut bytes, &ds, self.version, 0, &layout);
                self.write_all_at(0, &bytes)?;
                self.header = bytes;
                self.empty_written = true;
            }
            return Ok(self.w.flush()?);
        };
        let layout = placed.layout.clone();
        if !self.fixed_written {
            let id = placed.station.station_id();
            let mut fixed = id.into_bytes();
            fixed.resize(layout.vsizes[0] as usize, 0);
            // The position variables lie right after `station`, in header order.
            if let Some(values) = placed.station.position_values() {
                for v in values {
                    fixed.extend_from_slice(&v.to_be_bytes());
                }
            }
            self.write_all_at(layout.begins[0], &fixed)?;
            self.fixed_written = true;
        }
        if self.buffered > 0 {
            let at = layout.rec_begin + self.written * layout.recsize;
            let buf = std::mem::take(&mut self.buf);
            let result = self.write_all_at(at, &buf);
            self.buf = buf;
            result?;
            self.buf.clear();
            self.written += self.buffered;
            self.buffered = 0;
        }
        let ds = self.dataset();
        let mut bytes = std::mem::take(&mut self.header);
        bytes.clear();
        header::encode(&mut bytes, &ds, self.version, self.written as u32, &layout);
        debug_assert_eq!(
            bytes.len() as u64,
            layout.header_len,
            "the header changed size"
        );
        let result = self.write_all_at(0, &bytes);
        self.header = bytes;
        result?;
        Ok(self.w.flush()?)
    }
}

/// The values of `ds`'s scalar `double` variables (the station position), read from
/// the data after a header of `header_len` bytes.
fn read_fixed_doubles<R: Read + Seek>(
    r: &mut R,
    ds: &Dataset,
    header_len: u64,
) -> Result<Vec<(String, f64)>, WriteError> {
    let layout = ds.layout(header_len);
    let mut out = Vec::new();
    for (i, v) in ds.vars.iter().enumerate() {
        if v.dims.is_empty() && v.ty == model::NcType::Double {
            let mut b = [0u8; 8];
            r.seek(SeekFrom::Start(layout.begins[i]))?;
            r.read_exact(&mut b)?;
            out.push((v.name.clone(), f64::from_be_bytes(b)));
        }
    }
    Ok(out)
}

/// Reads `buf.len()` bytes from the start of `r`.
fn w_seek_read<R: Read + Seek>(r: &mut R, buf: &mut [u8]) -> Result<(), WriteError> {
    r.seek(SeekFrom::Start(0))?;
    r.read_exact(buf)?;
    Ok(())
}

impl<W: Read + Write + Seek> PacketWriter for NetcdfWriter<W> {
    fn append(&mut self, packet: &Packet, channels: &[Channel]) -> Result<(), WriteError> {
        self.check_usable()?;
        let does_not_fit = |reason: String| WriteError::DoesNotFit {
            pktid: packet.pktid,
            reason,
        };
        let mut order = std::mem::take(&mut self.order);
        let fits = match &self.file {
            Some(p) => p
                .station
                .check(packet, channels, self.summary.end, &mut order)
                .map(|()| None),
            None => StationFile::first(packet, channels, self.metadata.as_deref()).map(|s| {
                order.clear();
                order.extend(0..channels.len());
                Some(s)
            }),
        };
        let new = match fits {
            Ok(new) => new,
            Err(reason) => {
                self.order = order;
                return Err(does_not_fit(reason));
            }
        };
        let n = channels[order[0]].samples.len() as u64;
        if self.written + self.buffered + n > MAX_RECORDS {
            self.order = order;
            return Err(does_not_fit(format!(
                "the file would exceed {MAX_RECORDS} records, the most a classic header counts"
            )));
        }
        if let Some(station) = new {
            let mut summary = FileSummary::default();
            summary.add(packet, channels);
            let ds = station.dataset(&summary);
            let layout = ds.layout(header::header_len(&ds, self.version));
            if self.version == CdfVersion::Classic && layout.rec_begin > u64::from(u32::MAX) {
                self.order = order;
                return Err(does_not_fit("the header is too large for CDF-1".into()));
            }
            self.file = Some(Placed { station, layout });
        }
        let base = self
            .file
            .as_ref()
            .map_or(crate::Time::UNIX_EPOCH, |p| p.station.base);
        records::encode(&mut self.buf, base, channels, &order);
        self.buffered += n;
        self.summary.add(packet, channels);
        self.order = order;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        if self.finished {
            return Ok(());
        }
        self.check_usable()?;
        let result = self.flush_inner();
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn finish(&mut self) -> Result<(), WriteError> {
        self.check_usable()?;
        self.flush()?;
        self.finished = true;
        Ok(())
    }

    fn summary(&self) -> &FileSummary {
        &self.summary
    }
}

#[cfg(test)]
mod tests;
