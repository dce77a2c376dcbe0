//! The one place that knows each format's writer: create a new archive file or
//! resume an existing one, as a boxed [`PacketWriter`].

use std::fs::File;

use formats::write::cdl::{CdlOptions, CdlWriter};
use formats::write::jsonl::JsonLinesWriter;
use formats::write::netcdf::{NetcdfOptions, NetcdfWriter};
use formats::write::raw::RawWriter;
use formats::write::{Format, PacketWriter, WriteError};

/// A writer for any format, movable between tasks.
pub type BoxWriter = Box<dyn PacketWriter + Send>;

/// A writer reopened on an existing file.
pub struct Resumed {
    /// The writer, positioned to append.
    pub writer: BoxWriter,
    /// Bytes cut from a torn end (0 for a clean file, and always 0 for netCDF, whose
    /// header count decides what the file holds).
    pub cut: u64,
}

/// Starts a new, empty file of `format` in `file`. `name` is the dataset name CDL
/// prints after `netcdf` (the file name without its extension).
pub fn create(format: Format, file: File, name: &str) -> BoxWriter {
    match format {
        Format::Netcdf => Box::new(NetcdfWriter::create(file, NetcdfOptions::default())),
        Format::Cdl => Box::new(CdlWriter::create(
            file,
            CdlOptions {
                name: name.to_owned(),
            },
        )),
        Format::Json => Box::new(JsonLinesWriter::new(file)),
        Format::Raw => Box::new(RawWriter::new(file)),
    }
}

/// Reopens `file` (opened to read and write) to append to it. CDL is written whole
/// and cannot be resumed (rule files refuse CDL in append mode).
pub fn resume(format: Format, file: File) -> Result<Resumed, WriteError> {
    Ok(match format {
        Format::Netcdf => Resumed {
            writer: Box::new(NetcdfWriter::resume(file)?),
            cut: 0,
        },
        Format::Json => {
            let r = JsonLinesWriter::resume(file)?;
            Resumed {
                writer: Box::new(r.writer),
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
        Format::Cdl => {
            return Err(WriteError::Corrupt(
                "a CDL file is written whole and cannot be appended to".to_owned(),
            ))
        }
    })
}
