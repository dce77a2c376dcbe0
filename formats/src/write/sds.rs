//! SDS day files: miniSEED records of one channel and one UTC day per file, as the
//! SeisComP Data Structure lays them out (`YEAR/NET/STA/CHAN.D/NET.STA.LOC.CHAN.D.YEAR.DAY`;
//! the path is the caller's, see `docs/FORMATS.md`).
//!
//! Writing is two steps. [`split`] cuts a packet into [`Piece`]s, one per channel and
//! day, each a packet whose payload is miniSEED records:
//!
//! - a `SEED` (or `MSEED`) packet's records are kept byte for byte, each in the piece of
//!   its stream and of the UTC day its **start time** falls in (the SDS convention: a
//!   record spanning midnight is not cut, it goes to the file of the day it starts);
//! - any other packet the payload registry decodes (`MGENC`, `GENC`, `GEN`) is
//!   re-encoded channel by channel as 512-byte Steim2 records (Steim1 when a first
//!   difference does not fit Steim2), its samples first cut at each midnight UTC, so a
//!   day file holds only samples of its day.
//!
//! [`SdsWriter`] then appends pieces to one day file. miniSEED records carry no
//! pktid, so what a file holds is committed by its summary's [`FileSummary::bytes`]
//! (kept by the caller in the file's sidecar): [`SdsWriter::resume`] cuts whatever a
//! crash left beyond it.

use std::io::{Read, Seek, SeekFrom, Write};

use super::resume::{Resumed, Truncate};
use super::{FileSummary, PacketWriter, WriteError};
use crate::payload::{self, seed, Channel, PayloadError};
use crate::{Packet, Time};

/// Microseconds in a day.
const DAY_US: i64 = 86_400_000_000;

/// The stream a day file holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    /// Network code.
    pub net: String,
    /// Station code.
    pub sta: String,
    /// Location code (often empty).
    pub loc: String,
    /// Channel code.
    pub chan: String,
}

impl StreamKey {
    fn of(ch: &Channel) -> StreamKey {
        StreamKey {
            net: ch.net.clone(),
            sta: ch.sta.clone(),
            loc: ch.loc.clone(),
            chan: ch.chan.clone(),
        }
    }
}

/// What one day file gets of a packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// The stream.
    pub key: StreamKey,
    /// Midnight UTC starting the day.
    pub day: Time,
    /// The packet with, as payload, the miniSEED records for this file (its pktid,
    /// srcname and time unchanged).
    pub packet: Packet,
    /// The samples those records hold, for the file's summary.
    pub channels: Vec<Channel>,
}

/// Midnight UTC starting the day that holds `t`.
pub fn day_of(t: Time) -> Time {
    Time::from_micros(t.as_micros().div_euclid(DAY_US) * DAY_US)
}

/// Whether a srcname type means the payload is miniSEED records.
fn is_seed(p: &Packet) -> bool {
    matches!(p.srcname.suffix(), Some("SEED" | "MSEED"))
}

/// Cuts a packet into the pieces its day files get (see the module docs), in the
/// packet's order. `channels` is the packet's decoded payload (ignored for `SEED`
/// packets, whose records are read again to copy them). An empty result means the
/// packet holds no samples; an error, that it cannot be written as miniSEED (not
/// decodable, codes too long for miniSEED, a rate SEED cannot express).
pub fn split(packet: &Packet, channels: &[Channel]) -> Result<Vec<Piece>, PayloadError> {
    let mut pieces: Vec<Piece> = Vec::new();
    if is_seed(packet) {
        for h in seed::record_headers(&packet.payload)? {
            let key = StreamKey::of(&h.channel);
            let day = day_of(h.channel.start);
            let bytes = &packet.payload[h.range.clone()];
            match pieces.iter_mut().find(|p| p.key == key && p.day == day) {
                Some(p) => {
                    let mut v = p.packet.payload.to_vec();
                    v.extend_from_slice(bytes);
                    p.packet.payload = v.into();
                }
                None => pieces.push(Piece {
                    key,
                    day,
                    packet: Packet {
                        payload: bytes::Bytes::copy_from_slice(bytes),
                        ..packet.clone()
                    },
                    channels: Vec::new(),
                }),
            }
        }
        for p in &mut pieces {
            p.channels = seed::decode(&p.packet.payload)?;
        }
        return Ok(pieces);
    }
    for ch in channels {
        for part in cut_at_midnight(ch) {
            let records = seed::encode_steim(&part)?;
            pieces.push(Piece {
                key: StreamKey::of(&part),
                day: day_of(part.start),
                packet: Packet {
                    payload: records.into(),
                    ..packet.clone()
                },
                channels: vec![part],
            });
        }
    }
    Ok(pieces)
}

/// A channel cut at each midnight UTC its samples cross (empty parts left out; a
/// channel without a positive rate stays whole, in the day of its start).
pub fn cut_at_midnight(ch: &Channel) -> Vec<Channel> {
    let n = ch.samples.len();
    if n == 0 {
        return Vec::new();
    }
    let rate_ok = ch.samprate.is_finite() && ch.samprate > 0.0;
    if !rate_ok || day_of(ch.start) == day_of(ch.sample_time(n - 1)) {
        return vec![ch.clone()];
    }
    let mut parts = Vec::new();
    let mut from = 0;
    while from < n {
        let next_day = day_of(ch.sample_time(from)).as_micros() + DAY_US;
        // The first sample at or after the next midnight: estimated from the rate,
        // then corrected by the sample times themselves, which decide.
        let offset = (next_day - ch.start.as_micros()) as f64 * ch.samprate / 1e6;
        let mut to = (offset.ceil().max(0.0) as usize).clamp(from + 1, n);
        while to > from + 1 && ch.sample_time(to - 1).as_micros() >= next_day {
            to -= 1;
        }
        while to < n && ch.sample_time(to).as_micros() < next_day {
            to += 1;
        }
        parts.push(Channel {
            start: ch.sample_time(from),
            samples: ch.samples[from..to].to_vec(),
            ..clone_header(ch)
        });
        from = to;
    }
    parts
}

fn clone_header(ch: &Channel) -> Channel {
    Channel {
        net: ch.net.clone(),
        sta: ch.sta.clone(),
        chan: ch.chan.clone(),
        loc: ch.loc.clone(),
        start: ch.start,
        samprate: ch.samprate,
        calib: ch.calib,
        calper: ch.calper,
        segtype: ch.segtype,
        samples: Vec::new(),
    }
}

/// Appends [`Piece`]s to one SDS day file; see the module docs.
///
/// [`append`](PacketWriter::append) takes a piece's packet and channels: the payload
/// must be whole miniSEED records, and is written as it is (a payload whose first
/// record does not read as miniSEED is refused with [`WriteError::DoesNotFit`]).
#[derive(Debug)]
pub struct SdsWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    summary: FileSummary,
    finished: bool,
}

/// Write the buffer out once it holds this much, so memory stays bounded between flushes.
const FLUSH_AT: usize = 1 << 20;

impl<W: Write> SdsWriter<W> {
    /// A writer starting a new, empty day file at the current position of `out`.
    pub fn new(out: W) -> SdsWriter<W> {
        SdsWriter {
            out,
            buf: Vec::new(),
            summary: FileSummary {
                bytes: Some(0),
                ..FileSummary::default()
            },
            finished: false,
        }
    }

    /// The underlying writer (after [`flush`](PacketWriter::flush) it holds everything).
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<F: Read + Write + Seek + Truncate> SdsWriter<F> {
    /// Reopens a day file to append. `committed` is the summary last made durable
    /// beside it (its sidecar): the file is cut back to its
    /// [`bytes`](FileSummary::bytes), which drops records a crash left after the
    /// commit (their packets are read again), and the summary continues from it.
    /// Without one (a file this writer did not start, such as an archive written by
    /// another program), the whole file is kept and nothing is known about its
    /// packets. A file shorter than its commit is [`WriteError::Corrupt`].
    pub fn resume(
        mut file: F,
        committed: Option<&FileSummary>,
    ) -> Result<Resumed<SdsWriter<F>>, WriteError> {
        let len = file.seek(SeekFrom::End(0))?;
        let (summary, cut) = match committed.and_then(|s| s.bytes.map(|b| (s, b))) {
            Some((s, keep)) => {
                if len < keep {
                    return Err(WriteError::Corrupt(format!(
                        "the file has {len} bytes but its sidecar says {keep} were written; it was cut or replaced"
                    )));
                }
                if len > keep {
                    file.set_len(keep)?;
                }
                file.seek(SeekFrom::Start(keep))?;
                (s.clone(), len - keep)
            }
            None => (
                FileSummary {
                    bytes: Some(len),
                    ..FileSummary::default()
                },
                0,
            ),
        };
        Ok(Resumed {
            writer: SdsWriter {
                out: file,
                buf: Vec::new(),
                summary,
                finished: false,
            },
            cut,
        })
    }
}

impl<W: Write> PacketWriter for SdsWriter<W> {
    fn append(&mut self, packet: &Packet, channels: &[Channel]) -> Result<(), WriteError> {
        if self.finished {
            return Err(WriteError::Finished);
        }
        let refuse = |reason: String| WriteError::DoesNotFit {
            pktid: packet.pktid,
            reason,
        };
        if packet.payload.is_empty() {
            return Err(refuse("no miniSEED records (use sds::split)".into()));
        }
        // The first record is checked, so a packet of another type is refused; the
        // rest are as `split` read or made them (checking each again cost a tenth of
        // the writing rate).
        seed::first_record_header(&packet.payload)
            .map_err(|e| refuse(format!("the payload is not miniSEED records: {e}")))?;
        self.buf.extend_from_slice(&packet.payload);
        self.summary.add(packet, channels);
        self.summary.bytes = Some(self.summary.bytes.unwrap_or(0) + packet.payload.len() as u64);
        if self.buf.len() >= FLUSH_AT {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        if self.finished {
            return Err(WriteError::Finished);
        }
        self.out.write_all(&self.buf)?;
        self.buf.clear();
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

/// Decodes a packet and splits it: [`split`] after
/// [`crate::payload::decode`], for callers holding only the packet.
pub fn split_packet(packet: &Packet) -> Result<Vec<Piece>, PayloadError> {
    if is_seed(packet) {
        return split(packet, &[]);
    }
    let channels = payload::decode(&packet.srcname, packet.time, &packet.payload)?;
    split(packet, &channels)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::payload::{mgenc, Steim};
    use crate::SrcName;

    /// 2026-12-05T23:59:58Z.
    const LATE: i64 = 1_796_515_198_000_000;

    fn channel(chan: &str, start_us: i64, rate: f64, n: i32) -> Channel {
        Channel {
            net: "XX".into(),
            sta: "STA01".into(),
            chan: chan.into(),
            loc: String::new(),
            start: Time::from_micros(start_us),
            samprate: rate,
            calib: 1.0,
            calper: 1.0,
            segtype: 'V',
            samples: (0..n).map(|i| (i * i * 37) % 2001 - 1000).collect(),
        }
    }

    fn packet(name: &str, pktid: u64, time: i64, payload: Vec<u8>) -> Packet {
        let mut p = Packet::new(
            SrcName::new(name).unwrap(),
            Time::from_micros(time),
            payload,
        );
        p.pktid = pktid;
        p
    }

    #[test]
    fn late_is_two_seconds_before_midnight() {
        assert_eq!(
            Time::from_micros(LATE).to_string(),
            Time::parse_iso8601("2026-12-05T23:59:58Z")
                .unwrap()
                .to_string()
        );
    }

    /// An MGENC packet crossing midnight: each channel in two day files, every sample
    /// once, each file's samples inside its day, the samples bit-exact.
    #[test]
    fn mgenc_is_cut_at_midnight_and_encoded_per_channel() {
        let chans = [
            channel("BHZ", LATE, 40.0, 200),
            channel("BHN", LATE, 40.0, 200),
        ];
        let p = packet("XX_STA01/MGENC", 5, LATE, mgenc::encode(&chans).unwrap());
        let pieces = split_packet(&p).unwrap();
        assert_eq!(pieces.len(), 4);
        let midnight = day_of(Time::from_micros(LATE)).as_micros() + DAY_US;
        for want in &chans {
            let mine: Vec<&Piece> = pieces.iter().filter(|p| p.key.chan == want.chan).collect();
            assert_eq!(mine.len(), 2);
            let mut all = Vec::new();
            for piece in &mine {
                assert_eq!(piece.packet.pktid, 5);
                let back = seed::decode(&piece.packet.payload).unwrap();
                assert_eq!(back.len(), 1);
                assert_eq!(piece.packet.payload[52], 11, "Steim2");
                let ch = &back[0];
                assert_eq!(day_of(ch.start), piece.day);
                assert_eq!(day_of(ch.sample_time(ch.samples.len() - 1)), piece.day);
                all.extend_from_slice(&ch.samples);
            }
            assert_eq!(mine[0].channels[0].samples.len(), 80, "2 s at 40 sps");
            assert_eq!(mine[1].day.as_micros(), midnight);
            assert_eq!(all, want.samples);
        }
    }

    #[test]
    fn cutting_keeps_every_sample_once_at_any_start() {
        for offset in [0, 1, 12_499, 12_500, 24_999, 25_000, 1_999_999, 2_000_000] {
            for rate in [40.0, 0.1, 1.0 / 3.0, 100.0] {
                let ch = channel("BHZ", LATE + offset, rate, 300);
                let parts = cut_at_midnight(&ch);
                let mut n = 0;
                for part in &parts {
                    assert!(!part.samples.is_empty());
                    assert_eq!(part.start, ch.sample_time(n), "{offset} {rate}");
                    let last = ch.sample_time(n + part.samples.len() - 1);
                    assert_eq!(day_of(part.start), day_of(last), "{offset} {rate}");
                    assert_eq!(part.samples, ch.samples[n..n + part.samples.len()]);
                    n += part.samples.len();
                }
                assert_eq!(n, 300);
            }
        }
        assert!(cut_at_midnight(&channel("BHZ", LATE, 40.0, 0)).is_empty());
        assert_eq!(cut_at_midnight(&channel("BHZ", LATE, 0.0, 5)).len(), 1);
    }

    /// SEED records are copied byte for byte, each to the day its start is in.
    #[test]
    fn seed_records_go_whole_to_the_day_they_start_in() {
        // Four records of BHZ (the third spans midnight) and one of BHE.
        let z = seed::encode(&channel("BHZ", LATE - 20_000_000, 40.0, 1400), Steim::Two).unwrap();
        let e = seed::encode(&channel("BHE", LATE, 40.0, 10), Steim::Two).unwrap();
        assert!(z.len() / 512 >= 3);
        let payload = [z.clone(), e.clone()].concat();
        let p = packet("XX_STA01_BHZ/SEED", 9, LATE, payload);
        let pieces = split_packet(&p).unwrap();
        let heads = seed::record_headers(&z).unwrap();
        let midnight = day_of(Time::from_micros(LATE)).as_micros() + DAY_US;
        let before: Vec<u8> = heads
            .iter()
            .filter(|h| h.channel.start.as_micros() < midnight)
            .flat_map(|h| z[h.range.clone()].to_vec())
            .collect();
        assert!(before.len() < z.len(), "some records start after midnight");
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces[0].key.chan, "BHZ");
        assert_eq!(&pieces[0].packet.payload[..], &before[..]);
        assert_eq!(&pieces[1].packet.payload[..], &z[before.len()..]);
        assert_eq!(pieces[1].day.as_micros(), midnight);
        assert_eq!(&pieces[2].packet.payload[..], &e[..]);
        let samples: usize = pieces[..2]
            .iter()
            .map(|p| p.channels[0].samples.len())
            .sum();
        assert_eq!(samples, 1400);
    }

    #[test]
    fn wide_differences_fall_back_to_steim1() {
        let mut ch = channel("BHZ", LATE - 60_000_000, 1.0, 4);
        ch.samples = vec![0, 1 << 30, -(1 << 30), 5];
        let p = packet("XX_STA01/GENC", 1, ch.start.as_micros(), Vec::new());
        let pieces = split(&p, &[ch.clone()]).unwrap();
        assert_eq!(pieces[0].packet.payload[52], 10, "Steim1");
        assert_eq!(
            seed::decode(&pieces[0].packet.payload).unwrap()[0].samples,
            ch.samples
        );
    }

    #[test]
    fn unwritable_channels_are_errors() {
        let mut ch = channel("BHZ", LATE, 40.0, 4);
        ch.sta = "TOOLONG".into();
        let p = packet("XX_TOOLONG/GENC", 1, LATE, Vec::new());
        assert!(split(&p, &[ch]).is_err());
        let p = packet("XX_STA01_BHZ/SEED", 1, LATE, b"junk".to_vec());
        assert!(split_packet(&p).is_err());
    }

    fn pieces_of(pktid: u64, start: i64) -> Piece {
        let ch = channel("BHZ", start, 40.0, 400);
        let p = packet("XX_STA01/GENC", pktid, start, Vec::new());
        split(&p, &[ch]).unwrap().remove(0)
    }

    /// Resuming cuts what lies beyond the committed length, and appending then gives
    /// the file an uninterrupted writer would have written.
    #[test]
    fn resume_cuts_back_to_the_commit() {
        let a = pieces_of(1, LATE - 60_000_000);
        let b = pieces_of(2, LATE - 50_000_000);
        let mut w = SdsWriter::new(Cursor::new(Vec::new()));
        w.append(&a.packet, &a.channels).unwrap();
        w.flush().unwrap();
        let committed = w.summary().clone();
        assert_eq!(committed.bytes, Some(a.packet.payload.len() as u64));
        w.append(&b.packet, &b.channels).unwrap();
        w.finish().unwrap();
        let whole = w.into_inner().into_inner();
        let torn_at = a.packet.payload.len() + 700;
        for cut in [a.packet.payload.len(), torn_at, whole.len()] {
            let r =
                SdsWriter::resume(Cursor::new(whole[..cut].to_vec()), Some(&committed)).unwrap();
            assert_eq!(r.cut, (cut - a.packet.payload.len()) as u64);
            let mut w = r.writer;
            assert_eq!(w.summary().last_pktid, Some(1));
            w.append(&b.packet, &b.channels).unwrap();
            w.finish().unwrap();
            assert_eq!(w.into_inner().into_inner(), whole, "cut at {cut}");
        }
        let err = SdsWriter::resume(Cursor::new(Vec::new()), Some(&committed)).unwrap_err();
        assert!(matches!(err, WriteError::Corrupt(_)), "{err}");
        // A file without a commit (another program's) is kept whole.
        let r = SdsWriter::resume(Cursor::new(whole.clone()), None).unwrap();
        assert_eq!(r.cut, 0);
        assert_eq!(r.writer.summary().bytes, Some(whole.len() as u64));
        assert_eq!(r.writer.summary().last_pktid, None);
    }

    #[test]
    fn payloads_that_are_not_records_are_refused() {
        let mut w = SdsWriter::new(Cursor::new(Vec::new()));
        let p = packet("XX_STA01/GENC", 1, LATE, b"not records".to_vec());
        assert!(matches!(
            w.append(&p, &[]),
            Err(WriteError::DoesNotFit { .. })
        ));
        assert_eq!(w.summary().packets, 0);
    }
}
