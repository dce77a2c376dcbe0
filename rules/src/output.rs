//! The one place that knows each format's writer: create a new archive file or
//! resume an existing one, as a boxed [`PacketWriter`].

use std::fs::File;
use std::sync::Arc;

use formats::meta::Inventory;

use formats::write::cdl::{CdlOptions, CdlWriter};
use formats::write::jsonl::JsonLinesWriter;
use formats::write::netcdf::{CdfVersion, NetcdfOptions, NetcdfWriter};
use formats::write::raw::RawWriter;
use formats::write::sds::SdsWriter;
use formats::write::{FileSummary, Format, PacketWriter, WriteError};

/// A writer for any format, movable between tasks.
pub type BoxWriter = Box<dyn ArchiveWriter>;

/// A [`PacketWriter`] of one of the archive formats, with what orbreaper needs
/// beyond the trait.
pub trait ArchiveWriter: PacketWriter + Send {
    /// Names the dataset after the file's final stem, known only once the file is
    /// complete (a batch file is named by its last pktid). Only CDL stores a name (the
    /// one after `netcdf`); the other formats ignore it. Call before `finish`.
    fn set_dataset_name(&mut self, _name: &str) {}
}

impl ArchiveWriter for NetcdfWriter<File> {}
impl ArchiveWriter for JsonLinesWriter<File> {}
impl ArchiveWriter for RawWriter<File> {}
impl ArchiveWriter for SdsWriter<File> {}
impl ArchiveWriter for CdlWriter<File> {
    fn set_dataset_name(&mut self, name: &str) {
        self.set_name(name);
    }
}

/// A writer reopened on an existing file.
pub struct Resumed {
    /// The writer, positioned to append.
    pub writer: BoxWriter,
    /// Bytes cut from a torn end (0 for a clean file, and always 0 for netCDF, whose
    /// header count decides what the file holds).
    pub cut: u64,
}

/// Starts a new, empty file of `format` in `file`. `name` is the dataset name CDL
/// prints after `netcdf` (the file name without its extension; a caller that knows
/// the final name only later replaces it with
/// [`set_dataset_name`](ArchiveWriter::set_dataset_name)); `version` is the netCDF
/// variant (ignored by the other formats); `metadata` is the rule's station metadata
/// (used by netCDF, CDL and JSON Lines).
pub fn create(
    format: Format,
    file: File,
    name: &str,
    version: CdfVersion,
    metadata: Option<&Arc<Inventory>>,
) -> BoxWriter {
    let metadata = metadata.cloned();
    match format {
        Format::Netcdf => {
            Box::new(NetcdfWriter::create(file, NetcdfOptions { version }).with_metadata(metadata))
        }
        Format::Cdl => Box::new(
            CdlWriter::create(
                file,
                CdlOptions {
                    name: name.to_owned(),
                },
            )
            .with_metadata(metadata),
        ),
        Format::Json => Box::new(JsonLinesWriter::new(file).with_metadata(metadata)),
        Format::Raw => Box::new(RawWriter::new(file)),
        Format::Sds => Box::new(SdsWriter::new(file)),
    }
}

/// Reopens `file` (opened to read and write) to append to it. CDL is written whole
/// and cannot be resumed (rule files refuse CDL in append mode). `committed` is the
/// summary in the file's sidecar: SDS day files are cut back to the length it
/// records (see [`SdsWriter::resume`]); the other formats find their end themselves
/// and ignore it. A resumed netCDF file keeps the metadata it recorded; a resumed JSON
/// Lines file writes a header line for each station in `metadata` it has none for.
pub fn resume(
    format: Format,
    file: File,
    committed: Option<&FileSummary>,
    metadata: Option<&Arc<Inventory>>,
) -> Result<Resumed, WriteError> {
    Ok(match format {
        Format::Netcdf => Resumed {
            writer: Box::new(NetcdfWriter::resume(file)?),
            cut: 0,
        },
        Format::Json => {
            let r = JsonLinesWriter::resume(file)?;
            Resumed {
                writer: Box::new(r.writer.with_metadata(metadata.cloned())),
                cut: r.cut,
            }
        }
        Format::Raw => {
            let r = RawWriter::resume(file)?;
            Resumed {
                writer: Box::new(r.writer),
                cut: r.cut,
            }
        }
        Format::Sds => {
            let r = SdsWriter::resume(file, committed)?;
            Resumed {
                writer: Box::new(r.writer),
                cut: r.cut,
            }
        }
        Format::Cdl => {
            return Err(WriteError::Corrupt(
                "a CDL file is written whole and cannot be appended to".to_owned(),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use formats::payload::Channel;
    use formats::{Packet, SrcName, Time};

    use super::*;

    /// One packet of one 10 sps channel, pktid 1.
    fn packet() -> (Packet, Channel) {
        let mut p = Packet::new(
            SrcName::new("XX_STA01/GENC/BHZ").unwrap(),
            Time::from_micros(1_000_000),
            &b""[..],
        );
        p.pktid = 1;
        let ch = Channel {
            net: "XX".into(),
            sta: "STA01".into(),
            chan: "BHZ".into(),
            loc: String::new(),
            start: p.time,
            samprate: 10.0,
            calib: 1.0,
            calper: 1.0,
            segtype: 'V',
            samples: vec![1, 2, 3],
        };
        (p, ch)
    }

    /// The rule's netCDF variant reaches the file: the magic's fourth byte is 1 or 2.
    #[test]
    fn netcdf_version_reaches_the_file() {
        for (version, magic) in [(CdfVersion::Classic, 1u8), (CdfVersion::Offset64, 2)] {
            let file = tempfile::tempfile().unwrap();
            let mut w = create(
                Format::Netcdf,
                file.try_clone().unwrap(),
                "x",
                version,
                None,
            );
            let (p, ch) = packet();
            w.append(&p, &[ch]).unwrap();
            w.finish().unwrap();
            let mut head = [0u8; 4];
            let mut f = file;
            std::io::Seek::rewind(&mut f).unwrap();
            f.read_exact(&mut head).unwrap();
            assert_eq!(head, [b'C', b'D', b'F', magic]);
        }
    }

    /// A batch file's final name is known only at its end: the name set then is the
    /// CDL dataset's, written as ncdump writes a name starting with a digit.
    #[test]
    fn cdl_dataset_name_set_before_finish_is_written() {
        let file = tempfile::tempfile().unwrap();
        let mut w = create(
            Format::Cdl,
            file.try_clone().unwrap(),
            "1_pending",
            CdfVersion::Offset64,
            None,
        );
        let (p, ch) = packet();
        w.append(&p, &[ch]).unwrap();
        w.set_dataset_name("1_9");
        w.finish().unwrap();
        let mut text = String::new();
        let mut f = file;
        std::io::Seek::rewind(&mut f).unwrap();
        f.read_to_string(&mut text).unwrap();
        assert_eq!(text.lines().next(), Some("netcdf \\1_9 {"));
    }
}
