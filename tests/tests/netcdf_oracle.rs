//! Our netCDF classic and CDL writers (`formats::write::netcdf`, `cdl`) checked against
//! the reference tools: `ncdump` must print exactly our CDL, `ncgen` must turn our CDL
//! back into a file `ncdump` prints the same, the Python `netCDF4` library, `cftime`,
//! `xarray` (with CF time decoding) and `pandas` must read every sample and every time
//! back exactly (to the nanosecond, no tolerance), CF scaling must give each calibrated
//! count as the decimal calib times it, and a file cut at every flush, and between a
//! record write and its header write, must still open with `ncdump` holding exactly the
//! counted records.
//!
//! Every file the writer makes (seismic, pressure, with and without station
//! metadata, CDF-1 and CDF-2) scores 100% on the IOOS compliance-checker's
//! `cf:1.8` suite with no finding at any level.
//!
//! Missing tools make these tests print a note and pass locally, but fail under CI
//! ([`orb_tests::oracle`]).

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use formats::meta::Inventory;

use formats::payload::Channel;
use formats::write::cdl::{CdlOptions, CdlWriter};
use formats::write::netcdf::{CdfVersion, NetcdfOptions, NetcdfWriter};
use formats::write::PacketWriter;
use formats::{Packet, SrcName, Time};
use orb_tests::{oracle, XorShift};
use serde_json::Value;

/// Channels and calibrations as a datalogger's MGENC packets carry them: `f32`.
const CHANS: [(&str, char, f32); 3] = [("BHZ", 'V', 1.0), ("LDO", 'P', 0.01), ("BDF", 'I', 0.001)];

/// The barometer's first sample: 1012.97 hPa at calib 0.01.
const LDO_FIRST: i32 = 101_297;

/// Packets of one station at `rate` sps from `start`: random lengths, random samples
/// (extremes and the netCDF int fill value included), contiguous or after a gap of odd
/// microseconds. Each packet goes through its MGENC payload, so the channels are what
/// a reader of the ring decodes (calibrations read from `f32` fields).
fn stream(seed: u64, packets: usize, rate: f64, start: &str) -> Vec<(Packet, Vec<Channel>)> {
    let mut rng = XorShift::new(seed);
    let mut at = Time::parse_iso8601(start).unwrap().as_micros();
    (0..packets)
        .map(|k| {
            let n = rng.range(1, 120) as usize;
            let mut channels: Vec<Channel> = CHANS
                .iter()
                .map(|&(chan, segtype, calib)| Channel {
                    net: "XX".into(),
                    sta: "STA01".into(),
                    chan: chan.into(),
                    loc: String::new(),
                    start: Time::from_micros(at),
                    samprate: rate,
                    calib: f64::from(calib),
                    calper: 1.0,
                    segtype,
                    samples: (0..n)
                        .map(|_| match rng.range(0, 20) {
                            0 => i32::MIN,
                            1 => i32::MAX,
                            2 => -2_147_483_647,
                            3..=10 => rng.next_u64() as i32,
                            _ => rng.range(0, 2000) as i32 - 1000,
                        })
                        .collect(),
                })
                .collect();
            if k == 0 {
                channels[1].samples[0] = LDO_FIRST;
            }
            let payload = formats::payload::mgenc::encode(&channels).unwrap();
            let mut p = Packet::new(
                SrcName::new("XX_STA01/MGENC/40").unwrap(),
                Time::from_micros(at),
                payload,
            );
            p.pktid = 1000 + k as u64;
            let channels = formats::payload::decode(&p.srcname, p.time, &p.payload).unwrap();
            at += (n as f64 * 1e6 / rate).round() as i64;
            if rng.range(0, 3) == 0 {
                at += rng.range(1, 10_000_000) as i64;
            }
            (p, channels)
        })
        .collect()
}

/// Where the streams start: an odd microsecond, and .025 s, where 40 sps samples fall
/// on .025 s steps (times earlier versions stored as seconds, which xarray decoded 1 ns
/// early).
const ODD: &str = "2026-11-22T10:00:00.123456Z";
const STEPS: &str = "2026-11-22T10:00:00.025Z";

/// Station metadata for the streams' station, as StationXML gives it.
fn metadata() -> Arc<Inventory> {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<FDSNStationXML xmlns="http://www.fdsn.org/xml/station/1" schemaVersion="1.2">
  <Source>test</Source><Created>2026-01-01T00:00:00Z</Created>
  <Network code="XX">
    <Station code="STA01">
      <Latitude>-33.25</Latitude><Longitude>151.5</Longitude><Elevation>12.5</Elevation>
      <Site><Name>Harbour</Name></Site>
      <Channel code="BHZ" locationCode="">
        <Latitude>-33.25</Latitude><Longitude>151.5</Longitude><Elevation>12.5</Elevation>
        <Depth>0</Depth><Azimuth>0</Azimuth><Dip>-90</Dip>
        <Response><InstrumentSensitivity><Value>1e9</Value><Frequency>1</Frequency>
          <InputUnits><Name>m/s</Name></InputUnits><OutputUnits><Name>COUNTS</Name></OutputUnits>
        </InstrumentSensitivity></Response>
      </Channel>
      <Channel code="LDO" locationCode="">
        <Latitude>-33.25</Latitude><Longitude>151.5</Longitude><Elevation>12.5</Elevation>
        <Depth>0</Depth>
        <Response><InstrumentSensitivity><Value>100</Value><Frequency>0</Frequency>
          <InputUnits><Name>hPa</Name></InputUnits><OutputUnits><Name>COUNTS</Name></OutputUnits>
        </InstrumentSensitivity></Response>
      </Channel>
    </Station>
  </Network>
</FDSNStationXML>
"#;
    Arc::new(formats::meta::stationxml::parse(xml).unwrap())
}

/// The netCDF bytes after each flush (one flush per packet).
fn nc_images(packets: &[(Packet, Vec<Channel>)], version: CdfVersion) -> Vec<Vec<u8>> {
    nc_images_with(packets, version, None)
}

/// [`nc_images`] with station metadata.
fn nc_images_with(
    packets: &[(Packet, Vec<Channel>)],
    version: CdfVersion,
    metadata: Option<Arc<Inventory>>,
) -> Vec<Vec<u8>> {
    let mut w = NetcdfWriter::create(Cursor::new(Vec::new()), NetcdfOptions { version })
        .with_metadata(metadata);
    let mut images = Vec::new();
    for (p, c) in packets {
        w.append(p, c).unwrap();
        w.flush().unwrap();
        images.push(w.get_ref().get_ref().clone());
    }
    w.finish().unwrap();
    images.push(w.into_inner().into_inner());
    images
}

fn cdl(name: &str, packets: &[(Packet, Vec<Channel>)]) -> String {
    cdl_with(name, packets, None)
}

fn cdl_with(
    name: &str,
    packets: &[(Packet, Vec<Channel>)],
    metadata: Option<Arc<Inventory>>,
) -> String {
    let mut w =
        CdlWriter::create(Vec::new(), CdlOptions { name: name.into() }).with_metadata(metadata);
    for (p, c) in packets {
        w.append(p, c).unwrap();
    }
    w.finish().unwrap();
    String::from_utf8(w.into_inner()).unwrap()
}

fn ncdump(dir: &Path, file: &str, bytes: &[u8]) -> Option<String> {
    let tool = oracle::tool("ncdump", "netcdf-bin")?;
    std::fs::write(dir.join(file), bytes).unwrap();
    Some(oracle::run(&tool, &[file], dir))
}

#[test]
fn ncdump_prints_exactly_our_cdl() {
    let dir = tempfile::tempdir().unwrap();
    for (seed, version, rate) in [
        (1, CdfVersion::Offset64, 40.0),
        (2, CdfVersion::Classic, 3.0),
    ] {
        let packets = stream(seed, 12, rate, ODD);
        let nc = nc_images(&packets, version).pop().unwrap();
        let Some(dump) = ncdump(dir.path(), "x.nc", &nc) else {
            return;
        };
        assert_eq!(dump, cdl("x", &packets), "seed {seed}");
        // The barometer's f32 calib 0.01 is the decimal 0.01 in the file.
        assert!(dump.contains("\t\tLDO:scale_factor = 0.01 ;\n"), "{dump}");
        assert!(dump.contains("\t\tBDF:scale_factor = 0.001 ;\n"), "{dump}");
        assert!(
            dump.contains("\t\ttime:units = \"microseconds since 2026-11-22T10:00:00Z\" ;\n"),
            "{dump}"
        );
    }
    let empty = nc_images(&[], CdfVersion::Offset64).pop().unwrap();
    let dump = ncdump(dir.path(), "x.nc", &empty).unwrap();
    assert_eq!(dump, cdl("x", &[]));
    // With station metadata: the position variables' data and the channels'
    // metadata attributes print as our CDL says.
    for version in [CdfVersion::Classic, CdfVersion::Offset64] {
        let packets = stream(11, 5, 40.0, ODD);
        let nc = nc_images_with(&packets, version, Some(metadata()))
            .pop()
            .unwrap();
        let dump = ncdump(dir.path(), "m.nc", &nc).unwrap();
        assert_eq!(dump, cdl_with("m", &packets, Some(metadata())));
        for line in [
            " lat = -33.25 ;\n",
            " lon = 151.5 ;\n",
            " alt = 12.5 ;\n",
            "\t\tBHZ:dip = -90. ;\n",
            "\t\tLDO:sensitivity_units = \"hPa\" ;\n",
            "\t\t:title = \"XX_STA01 (Harbour): data archived by orb\" ;\n",
            "\t\t:featureType = \"timeSeries\" ;\n",
        ] {
            assert!(dump.contains(line), "{line:?} in {dump}");
        }
    }
}

#[test]
fn ncgen_turns_our_cdl_into_an_equivalent_file() {
    let Some(ncgen) = oracle::tool("ncgen", "netcdf-bin") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let long = stream(4, 5, 0.1, ODD);
    let last = long.last().unwrap().1[0].end().as_micros();
    assert!(
        last - long[0].1[0].start.as_micros() > i64::from(i32::MAX),
        "the long stream has times past 2^31 us"
    );
    // ncgen 4.9 reads a whole number past 2^31 as a 64-bit integer constant, which it
    // refuses when `-k` names a classic kind ("Illegal integer constant for classic
    // format"), even in a double variable and even in ncdump's own output; without
    // `-k` it infers the kind and writes such numbers into a classic file unharmed.
    for (packets, kind) in [
        (stream(3, 9, 40.0, STEPS), Some("classic")),
        (stream(9, 6, 3.0, ODD), Some("64-bit offset")),
        (long, None),
        (vec![], Some("classic")),
    ] {
        let text = cdl("y", &packets);
        std::fs::write(dir.path().join("y.cdl"), &text).unwrap();
        let _ = std::fs::remove_file(dir.path().join("y.nc"));
        let mut args = vec!["-o", "y.nc", "y.cdl"];
        if let Some(kind) = kind {
            args.splice(0..0, ["-k", kind]);
        }
        oracle::run(&ncgen, &args, dir.path());
        let ncdump = oracle::tool("ncdump", "netcdf-bin").unwrap();
        assert_eq!(oracle::run(&ncdump, &["y.nc"], dir.path()), text);
        // Our writer's file and ncgen's agree on every value, not just as printed.
        let ours = nc_images(&packets, CdfVersion::Classic).pop().unwrap();
        let theirs = std::fs::read(dir.path().join("y.nc")).unwrap();
        let a = formats::write::netcdf::read(&mut Cursor::new(ours)).unwrap();
        let b = formats::write::netcdf::read(&mut Cursor::new(theirs)).unwrap();
        assert_eq!(
            (a.time, a.channels, a.station),
            (b.time, b.channels, b.station)
        );
        assert_eq!(a.header.dataset, b.header.dataset);
    }
}

const READ_BACK: &str = r#"
import datetime, json, sys
import cftime, netCDF4, numpy, pandas, xarray
path = sys.argv[1]
out = {}
EPOCH_NS = numpy.datetime64("1970-01-01T00:00:00", "ns")
def exact(values):
    # repr: the shortest decimal that reads back as the same double (JSON numbers
    # would pass through a parser that need not round correctly).
    return [repr(float(x)) for x in values]
def micros(dates, epoch):
    return [(d - epoch) // datetime.timedelta(microseconds=1) for d in dates]
with netCDF4.Dataset(path) as nc:
    nc.set_auto_maskandscale(False)
    t = nc["time"]
    out["netcdf4_time"] = exact(t[:])
    out["netcdf4_units"] = t.units
    # num2date as netCDF4 and cftime give it: cftime dates, and Python datetimes.
    out["cftime_us"] = micros(netCDF4.num2date(t[:], t.units, t.calendar),
                              cftime.DatetimeGregorian(1970, 1, 1))
    out["num2date_us"] = micros(
        netCDF4.num2date(t[:], t.units, t.calendar, only_use_cftime_datetimes=False,
                         only_use_python_datetimes=True),
        datetime.datetime(1970, 1, 1))
    # pandas from the raw values and the units' reference time.
    unit, since = t.units.split(" since ")
    ref = pandas.Timestamp(since)
    times = ref + pandas.to_timedelta(numpy.asarray(t[:], dtype="float64"), unit={"microseconds": "us"}[unit])
    out["pandas_ns"] = [int(x) for x in (times.tz_localize(None).values.astype("datetime64[ns]") - EPOCH_NS).astype("int64")]
    out["netcdf4"] = {n: [int(x) for x in nc[n][:]] for n in ["BHZ", "LDO", "BDF"]}
    out["station"] = netCDF4.chartostring(nc["station"][:]).item()
    out["globals"] = {k: (v.item() if hasattr(v, "item") else v) for k, v in nc.__dict__.items()}
    out["long_names"] = {n: nc[n].long_name for n in ["BHZ", "LDO", "BDF"]}
with netCDF4.Dataset(path) as nc:
    # netCDF4's own unpacking (auto scale): counts x scale_factor.
    nc.set_auto_mask(False)
    out["netcdf4_hpa"] = exact(nc["LDO"][:])
raw = xarray.open_dataset(path, mask_and_scale=False)
out["xarray_time_ns"] = [int(t) for t in (raw["time"].values.astype("datetime64[ns]") - EPOCH_NS).astype("int64")]
out["xarray"] = {n: [int(x) for x in raw[n].values] for n in ["BHZ", "LDO", "BDF"]}
out["feature"] = raw.attrs.get("featureType")
out["position"] = [float(raw[n].values) for n in ["lat", "lon", "alt"] if n in raw.variables]
out["bhz_coords"] = sorted(raw["BHZ"].coords)
cf = xarray.open_dataset(path)
out["ldo_hpa"] = exact(cf["LDO"].values)
out["ldo_units"] = cf["LDO"].attrs["units"]
out["pandas_index_ns"] = [int(x) for x in (cf.indexes["time"].values.astype("datetime64[ns]") - EPOCH_NS).astype("int64")]
print(json.dumps(out))
"#;

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

/// Doubles sent as their Python `repr` (Rust's parser rounds correctly).
fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn netcdf4_cftime_xarray_and_pandas_read_every_sample_and_time_exactly() {
    let Some(py) = oracle::python(&["netCDF4", "cftime", "xarray", "pandas", "numpy"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (seed, version, rate, start, meta) in [
        (5, CdfVersion::Offset64, 40.0, ODD, None),
        (8, CdfVersion::Offset64, 40.0, STEPS, Some(metadata())),
        (6, CdfVersion::Classic, 3.0, ODD, None),
        (6, CdfVersion::Classic, 3.0, ODD, Some(metadata())),
    ] {
        let located = meta.is_some();
        let packets = stream(seed, 10, rate, start);
        let nc = nc_images_with(&packets, version, meta).pop().unwrap();
        std::fs::write(dir.path().join("z.nc"), &nc).unwrap();
        let out = oracle::run_python(&py, READ_BACK, &["z.nc"], dir.path());
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        let mut times = Vec::new();
        let mut columns = vec![Vec::new(); CHANS.len()];
        for (_, chans) in &packets {
            times.extend((0..chans[0].samples.len()).map(|i| chans[0].sample_time(i).as_micros()));
            for (col, ch) in columns.iter_mut().zip(chans) {
                col.extend(ch.samples.iter().map(|&s| i64::from(s)));
            }
        }
        let what = format!("seed {seed}, {rate} sps from {start}");
        let base = times[0].div_euclid(1_000_000) * 1_000_000;
        assert_eq!(
            v["netcdf4_units"],
            "microseconds since 2026-11-22T10:00:00Z"
        );
        // The stored values are whole microseconds after the base, exactly.
        let stored: Vec<f64> = times.iter().map(|&t| (t - base) as f64).collect();
        assert_eq!(
            floats(&v["netcdf4_time"]),
            stored,
            "netCDF4 raw time, {what}"
        );
        let ns: Vec<i64> = times.iter().map(|&t| t * 1000).collect();
        assert_eq!(ints(&v["cftime_us"]), times, "cftime dates, {what}");
        assert_eq!(ints(&v["num2date_us"]), times, "num2date datetimes, {what}");
        assert_eq!(
            ints(&v["xarray_time_ns"]),
            ns,
            "xarray datetime64[ns], {what}"
        );
        assert_eq!(
            ints(&v["pandas_index_ns"]),
            ns,
            "xarray's pandas index, {what}"
        );
        assert_eq!(ints(&v["pandas_ns"]), ns, "pandas to_timedelta, {what}");
        for (k, (name, ..)) in CHANS.iter().enumerate() {
            for lib in ["netcdf4", "xarray"] {
                assert_eq!(ints(&v[lib][name]), columns[k], "{lib} {name}, {what}");
            }
        }
        // CF readers unpack the barometer's counts to hPa with scale_factor = calib =
        // 0.01 (the f32 field's decimal): each value is exactly the count times 0.01
        // in doubles, and 101297 counts are 1012.97 hPa.
        assert_eq!(v["ldo_units"], "hPa");
        let hpa: Vec<f64> = columns[1].iter().map(|&c| c as f64 * 0.01).collect();
        assert_eq!(floats(&v["ldo_hpa"]), hpa, "xarray hPa, {what}");
        assert_eq!(floats(&v["netcdf4_hpa"]), hpa, "netCDF4 hPa, {what}");
        assert_eq!(v["ldo_hpa"][0], "1012.97");
        assert_eq!(v["netcdf4_hpa"][0], "1012.97");
        assert_eq!(
            v["long_names"],
            serde_json::json!({
                "BHZ": "XX STA01 BHZ raw counts",
                "LDO": "XX STA01 LDO pressure",
                "BDF": "XX STA01 BDF pressure anomaly",
            })
        );
        assert_eq!(v["station"], "XX_STA01");
        // With metadata a CF single-station timeSeries whose channels xarray gives
        // the position as coordinates; without, plain time series.
        if located {
            assert_eq!(v["feature"], "timeSeries");
            assert_eq!(v["position"], serde_json::json!([-33.25, 151.5, 12.5]));
            assert_eq!(
                v["bhz_coords"],
                serde_json::json!(["alt", "lat", "lon", "station", "time"])
            );
        } else {
            assert_eq!(v["feature"], Value::Null);
            assert_eq!(v["position"], serde_json::json!([]));
        }
        let g = &v["globals"];
        assert_eq!(g["Conventions"], "CF-1.8");
        assert_eq!(g["first_pktid"], 1000.0);
        assert_eq!(g["last_pktid"], 1009.0);
        assert_eq!(g["packet_count"], 10.0);
        assert_eq!(g["source"], format!("orb {}", env!("CARGO_PKG_VERSION")));
    }
}

#[test]
fn a_file_cut_at_any_step_opens_with_the_counted_records() {
    if oracle::tool("ncdump", "netcdf-bin").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let packets = stream(7, 6, 40.0, STEPS);
    let images = nc_images(&packets, CdfVersion::Offset64);
    let header_len = |b: &[u8]| formats::write::netcdf::header::decode(b).unwrap().len;
    for k in 0..packets.len() {
        // After flush k: packets 0..=k.
        let dump = ncdump(dir.path(), "c.nc", &images[k]).unwrap();
        assert_eq!(dump, cdl("c", &packets[..=k]), "after flush {k}");
        if k == 0 {
            continue;
        }
        // Records of flush k written (whole, or cut in the middle of a record), the
        // header not yet rewritten: the file is the state after flush k - 1.
        let (before, after) = (&images[k - 1], &images[k]);
        let h = header_len(after);
        for cut in [
            before.len(),
            (before.len() + after.len()) / 2 + 3,
            after.len(),
        ] {
            let mut torn = after[..cut].to_vec();
            torn[..h].copy_from_slice(&before[..h]);
            let dump = ncdump(dir.path(), "c.nc", &torn).unwrap();
            assert_eq!(dump, cdl("c", &packets[..k]), "flush {k}, cut at {cut}");
        }
    }
}

/// Every kind of file the writer makes scores 100% on `compliance-checker
/// --test=cf:1.8` with no finding: seismic and pressure channels, with and without
/// station metadata, CDF-1 and CDF-2, and an empty file. A file with the title taken
/// out (made by ncgen from our CDL) shows that the check does fail.
#[test]
fn cf_checker_scores_every_file_in_full() {
    let Some(py) = oracle::python(&["compliance_checker", "netCDF4"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let only =
        |packets: Vec<(Packet, Vec<Channel>)>, keep: &[&str]| -> Vec<(Packet, Vec<Channel>)> {
            packets
                .into_iter()
                .map(|(p, c)| {
                    (
                        p,
                        c.into_iter()
                            .filter(|c| keep.contains(&c.chan.as_str()))
                            .collect(),
                    )
                })
                .collect()
        };
    let seismic = only(stream(21, 8, 40.0, ODD), &["BHZ"]);
    let pressure = only(stream(22, 8, 1.0, STEPS), &["LDO", "BDF"]);
    let mut files = Vec::new();
    for (what, packets) in [("seismic", &seismic), ("pressure", &pressure)] {
        for version in [CdfVersion::Classic, CdfVersion::Offset64] {
            for meta in [None, Some(metadata())] {
                let name = format!(
                    "{what}-{}-{}.nc",
                    if version == CdfVersion::Classic {
                        "cdf1"
                    } else {
                        "cdf2"
                    },
                    if meta.is_some() { "meta" } else { "plain" }
                );
                let nc = nc_images_with(packets, version, meta).pop().unwrap();
                std::fs::write(dir.path().join(&name), nc).unwrap();
                files.push(name);
            }
        }
    }
    std::fs::write(
        dir.path().join("empty.nc"),
        nc_images(&[], CdfVersion::Offset64).pop().unwrap(),
    )
    .unwrap();
    files.push("empty.nc".into());
    if let Err(e) = oracle::cf_check(&py, dir.path(), &files) {
        panic!("files that are not CF-1.8 in full:\n{e}");
    }
    // The control: without its title a file has a finding, so the check can fail.
    let Some(ncgen) = oracle::tool("ncgen", "netcdf-bin") else {
        return;
    };
    let text = cdl_with("untitled", &seismic, Some(metadata()));
    let untitled: String = text
        .lines()
        .filter(|l| !l.contains(":title = "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(untitled, text);
    std::fs::write(dir.path().join("untitled.cdl"), untitled).unwrap();
    oracle::run(&ncgen, &["-o", "untitled.nc", "untitled.cdl"], dir.path());
    let e = oracle::cf_check(&py, dir.path(), &["untitled.nc".to_owned()]).unwrap_err();
    assert!(e.contains("title"), "{e}");
}
