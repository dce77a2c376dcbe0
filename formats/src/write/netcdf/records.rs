//! Record data: encoding packets into records, and reading records back.

use std::io::{Read, Seek, SeekFrom};

use super::header::{self, Header, HeaderError, MAX_HEADER};
use super::model::NcType;
use super::station::micros_since;
use crate::payload::Channel;
use crate::write::WriteError;
use crate::Time;

/// Appends one record per sample instant to `buf`: the sample's time in whole
/// microseconds since `base` (double), then each channel's sample (int), in the order `order` gives,
/// big-endian. The caller checked that the channels share start and length.
pub fn encode(buf: &mut Vec<u8>, base: Time, channels: &[Channel], order: &[usize]) {
    let Some(&lead) = order.first() else { return };
    let lead = &channels[lead];
    let n = lead.samples.len();
    let recsize = 8 + 4 * order.len();
    let old = buf.len();
    buf.resize(old + n * recsize, 0);
    let records = &mut buf[old..];
    // Column by column: each loop is a plain strided store the compiler keeps free of
    // per-sample bounds checks.
    match whole_micros_step(lead.samprate) {
        // `Channel::sample_time` rounds `i * 1e6 / rate` to the microsecond; with a
        // whole number of microseconds per sample that is `i * step` (for any packet
        // shorter than 10^9 samples), without a division and a rounding per sample.
        Some(step) if n < 1_000_000_000 => {
            let mut us = lead.start.as_micros() - base.as_micros();
            for rec in records.chunks_exact_mut(recsize) {
                rec[..8].copy_from_slice(&(us as f64).to_be_bytes());
                us += step;
            }
        }
        _ => {
            for (i, rec) in records.chunks_exact_mut(recsize).enumerate() {
                let t = micros_since(base, lead.sample_time(i));
                rec[..8].copy_from_slice(&t.to_be_bytes());
            }
        }
    }
    for (k, &c) in order.iter().enumerate() {
        let at = 8 + 4 * k;
        for (rec, s) in records.chunks_exact_mut(recsize).zip(&channels[c].samples) {
            rec[at..at + 4].copy_from_slice(&s.to_be_bytes());
        }
    }
}

/// Microseconds per sample when `rate` makes that a whole number up to 1 s (40 sps:
/// 25000), checked by multiplying back so a rate merely close to such a value (whose
/// sample times drift from whole steps) is left out.
fn whole_micros_step(rate: f64) -> Option<i64> {
    let step = (1e6 / rate).round();
    ((1.0..=1e6).contains(&step) && step * rate == 1e6).then_some(step as i64)
}

/// Reads the header at the start of `r` (at most [`MAX_HEADER`] bytes).
pub fn read_header<R: Read + Seek>(r: &mut R) -> Result<Header, WriteError> {
    r.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::new();
    r.take(MAX_HEADER as u64).read_to_end(&mut bytes)?;
    match header::decode(&bytes) {
        Ok(h) => Ok(h),
        Err(HeaderError::Incomplete) if bytes.is_empty() => Err(WriteError::Corrupt(
            "the file is empty (nothing was ever flushed): start a new file".into(),
        )),
        Err(HeaderError::Incomplete) => Err(WriteError::Corrupt(format!(
            "the netCDF header is cut short after {} bytes: the first header write did \
             not complete; start a new file",
            bytes.len()
        ))),
        Err(HeaderError::Invalid(why)) => Err(WriteError::Corrupt(why)),
    }
}

/// A file's contents as orb wrote them.
#[derive(Debug, Clone, PartialEq)]
pub struct Contents {
    /// The header.
    pub header: Header,
    /// The `time` values as stored: counts of the unit its `units` attribute names
    /// (microseconds, or seconds in files of earlier versions) since its base.
    pub time: Vec<f64>,
    /// Each int record variable's name and values, in file order.
    pub channels: Vec<(String, Vec<i32>)>,
    /// The `station` variable's text, if any.
    pub station: Option<String>,
}

/// Reads every counted record of a file orb wrote (for resume checks, tests and
/// tools): the header, `time` and every channel.
pub fn read<R: Read + Seek>(r: &mut R) -> Result<Contents, WriteError> {
    let header = read_header(r)?;
    let ds = &header.dataset;
    let layout = ds.layout(header.len as u64);
    let numrecs = u64::from(header.numrecs);
    let file_len = r.seek(SeekFrom::End(0))?;
    let data_end = layout
        .rec_begin
        .saturating_add(numrecs.saturating_mul(layout.recsize));
    if data_end > file_len {
        return Err(WriteError::Corrupt(format!(
            "the header counts {numrecs} records ending at byte {data_end}, the file has \
             {file_len} bytes"
        )));
    }
    let mut data = vec![
        0u8;
        usize::try_from(numrecs * layout.recsize).map_err(|_| {
            WriteError::Corrupt("the record count does not fit in memory".into())
        })?
    ];
    r.seek(SeekFrom::Start(layout.rec_begin))?;
    r.read_exact(&mut data).map_err(|e| {
        WriteError::Corrupt(format!(
            "the file holds fewer records than its header counts: {e}"
        ))
    })?;
    let mut time = Vec::new();
    let mut channels = Vec::new();
    let mut station = None;
    for (i, v) in ds.vars.iter().enumerate() {
        if !ds.is_record(v) {
            if v.ty == NcType::Char {
                let mut text = vec![0u8; layout.vsizes[i] as usize];
                r.seek(SeekFrom::Start(layout.begins[i]))?;
                r.read_exact(&mut text)?;
                let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
                station = Some(String::from_utf8_lossy(&text[..end]).into_owned());
            }
            continue;
        }
        let off = (layout.begins[i] - layout.rec_begin) as usize;
        let slices = data.chunks_exact(layout.recsize.max(1) as usize);
        match v.ty {
            NcType::Double => {
                let col: Vec<f64> = slices
                    .map(|rec| f64::from_be_bytes(rec[off..off + 8].try_into().unwrap_or([0; 8])))
                    .collect();
                if v.name == "time" {
                    time = col;
                }
            }
            NcType::Int => channels.push((
                v.name.clone(),
                slices
                    .map(|rec| i32::from_be_bytes(rec[off..off + 4].try_into().unwrap_or([0; 4])))
                    .collect(),
            )),
            NcType::Char => {}
        }
    }
    Ok(Contents {
        header,
        time,
        channels,
        station,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_steps_give_the_times_channel_gives() {
        for rate in [
            40.0,
            20.0,
            1.0,
            100.0,
            0.5,
            3.0,
            1.0 / 3.0,
            1e6,
            250.0,
            40.000001,
            7.0,
        ] {
            let ch = Channel {
                net: "XX".into(),
                sta: "S".into(),
                chan: "BHZ".into(),
                loc: String::new(),
                start: Time::from_micros(1_795_341_600_123_456),
                samprate: rate,
                calib: 1.0,
                calper: 1.0,
                segtype: 'V',
                samples: (0..5000).collect(),
            };
            let base = Time::from_micros(1_795_341_600_000_000);
            let mut buf = Vec::new();
            encode(&mut buf, base, std::slice::from_ref(&ch), &[0]);
            for (i, rec) in buf.chunks_exact(12).enumerate() {
                let t = f64::from_be_bytes(rec[..8].try_into().unwrap());
                assert_eq!(
                    t,
                    micros_since(base, ch.sample_time(i)),
                    "rate {rate} sample {i}"
                );
                assert_eq!(rec[8..], (i as i32).to_be_bytes());
            }
        }
    }
}
