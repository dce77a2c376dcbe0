//! Station metadata end to end: `orbsim --stationxml` writes FDSN StationXML 1.2 that
//! ObsPy validates against the 1.2 schema and reads (`obspy.read_inventory`) as orb
//! does; orbreaper rules naming it (`stations`) write netCDF, CDL and JSON Lines that
//! carry each station's position and each channel's orientation and sensitivity, and
//! every netCDF file the reaper writes, with and without metadata, seismic and
//! pressure, scores 100% on the compliance-checker's `cf:1.8` with no finding; a bad
//! metadata file stops orbreaper at rule load with a non-zero exit.
//!
//! Without a Python that has `obspy`, `compliance_checker` and `netCDF4` the oracle
//! checks print a note and pass locally, but fail under CI ([`orb_tests::oracle`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use formats::meta::stationxml;
use formats::write::netcdf::model::AttrValue;
use orb_tests::harness::{bin, run_command, start};
use orb_tests::oracle;
use serde_json::Value;

/// `orbsim --fast` putting `rounds` rounds of one-second packets from a fixed start
/// into `orb`, and writing the network's StationXML to `xml`.
fn sim(orb: &str, xml: &Path, rounds: u64) {
    let xml = xml.to_str().unwrap();
    let rounds = rounds.to_string();
    let (st, _, err) = run_command(
        Command::new(bin("orbsim")).args([
            orb,
            "--fast",
            "--seismic",
            "2",
            "--pressure",
            "1",
            "--count",
            &rounds,
            "--start",
            "2026-12-01T00:00:00Z",
            "--progress",
            "0",
            "--stationxml",
            xml,
        ]),
        b"",
    );
    assert!(st.success(), "orbsim: {err}");
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p, ext));
        } else if p.extension().is_some_and(|e| e == ext)
            && !p.file_name().unwrap().to_string_lossy().starts_with('.')
        {
            out.push(p);
        }
    }
    out.sort();
    out
}

const OBSPY_READ: &str = r#"
import json, sys
import obspy
from obspy.io.stationxml.core import validate_stationxml
ok, errors = validate_stationxml(sys.argv[1])
inv = obspy.read_inventory(sys.argv[1], format="STATIONXML")
def num(x):
    # repr: the shortest decimal that reads back as the same double.
    return None if x is None else repr(float(x))
chans = []
for net in inv:
    for sta in net:
        for ch in sta:
            s = ch.response.instrument_sensitivity if ch.response else None
            chans.append({
                "id": f"{net.code}.{sta.code}.{ch.location_code}.{ch.code}",
                "lat": num(sta.latitude), "lon": num(sta.longitude),
                "elev": num(sta.elevation), "site": sta.site.name,
                "azimuth": num(ch.azimuth), "dip": num(ch.dip), "rate": num(ch.sample_rate),
                "sensitivity": num(s.value) if s else None,
                "frequency": num(s.frequency) if s else None,
                "units": s.input_units if s else None,
            })
print(json.dumps({"valid": ok, "errors": [str(e) for e in errors], "channels": chans}))
"#;

/// orbsim's StationXML is valid FDSN StationXML 1.2 (ObsPy's schema check), and
/// ObsPy reads every station and channel from it with the values orb reads.
#[test]
fn orbsim_stationxml_is_valid_and_obspy_reads_it() {
    let Some(py) = oracle::python(&["obspy"]) else {
        return;
    };
    let (dir, srv) = start();
    let xml = dir.path().join("net.xml");
    sim(&srv.orb(), &xml, 1);
    let ours = stationxml::parse(&std::fs::read_to_string(&xml).unwrap()).unwrap();
    let out = oracle::run_python(&py, OBSPY_READ, &["net.xml"], dir.path());
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["valid"], true, "{}", v["errors"]);
    let chans = v["channels"].as_array().unwrap();
    // Numbers come as Python reprs: parsed here exactly.
    let f = |x: &Value| x.as_str().map(|s| s.parse::<f64>().unwrap());
    // Two seismic stations of three channels, one pressure station of two.
    assert_eq!(chans.len(), 8, "{out}");
    let mut k = 0;
    for s in &ours.stations {
        for c in &s.channels {
            let o = &chans[k];
            k += 1;
            assert_eq!(o["id"], format!("{}.{}.{}.{}", s.net, s.sta, c.loc, c.chan));
            assert_eq!(f(&o["lat"]), Some(s.latitude));
            assert_eq!(f(&o["lon"]), Some(s.longitude));
            assert_eq!(f(&o["elev"]), Some(s.elevation));
            assert_eq!(o["site"].as_str(), s.site.as_deref());
            assert_eq!(f(&o["azimuth"]), c.azimuth);
            assert_eq!(f(&o["dip"]), c.dip);
            assert_eq!(f(&o["rate"]), c.sample_rate);
            let sens = c.sensitivity.as_ref().unwrap();
            assert_eq!(f(&o["sensitivity"]), Some(sens.value));
            assert_eq!(f(&o["frequency"]), sens.frequency);
            assert_eq!(o["units"].as_str(), Some(sens.units.as_str()));
        }
    }
    let bhz = chans.iter().find(|c| c["id"] == "XX.STA01..BHZ").unwrap();
    assert_eq!(
        (f(&bhz["azimuth"]), f(&bhz["dip"])),
        (Some(0.0), Some(-90.0))
    );
    assert_eq!(f(&bhz["sensitivity"]), Some(1e9));
}

/// What orbreaper writes with `stations` carries the metadata; every netCDF file it
/// writes, with and without metadata, is CF-1.8 in full.
#[test]
fn reaped_files_carry_the_metadata_and_are_cf_in_full() {
    let Some(py) = oracle::python(&["compliance_checker", "netCDF4"]) else {
        return;
    };
    let (dir, srv) = start();
    let xml = dir.path().join("net.xml");
    sim(&srv.orb(), &xml, 12);
    let inv = stationxml::parse(&std::fs::read_to_string(&xml).unwrap()).unwrap();
    let orb = srv.orb();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            r#"
[[reap]]
name = "located"
orb = "{orb}"
format = "netcdf"
stations = "net.xml"
path = "located/{{net}}_{{sta}}/{{first_pktid}}.nc"

[[reap]]
name = "plain"
orb = "{orb}"
format = "netcdf"
netcdf_version = "cdf1"
path = "plain/{{net}}_{{sta}}/{{first_pktid}}.nc"

[[reap]]
name = "cdl"
orb = "{orb}"
format = "cdl"
stations = "net.xml"
path = "cdl/{{net}}_{{sta}}/{{first_pktid}}.cdl"

[[reap]]
name = "json"
orb = "{orb}"
format = "json"
stations = "net.xml"
mode = "append"
path = "json/{{net}}_{{sta}}.jsonl"
"#
        ),
    )
    .unwrap();
    let (st, _, err) = run_command(
        Command::new(bin("orbreaper")).arg(&rules).arg("--once"),
        b"",
    );
    assert!(st.success(), "orbreaper: {err}");

    let located = files(&dir.path().join("located"), "nc");
    let plain = files(&dir.path().join("plain"), "nc");
    // Seismic at 40 sps; pressure split by rate (LDO 1 sps, BDF 20 sps).
    for set in [&located, &plain] {
        assert!(set.len() >= 4, "{set:?}");
        assert!(set.iter().any(|p| p.to_string_lossy().contains("PRS01")));
        assert!(set.iter().any(|p| p.to_string_lossy().contains("STA02")));
    }
    for path in &located {
        let c = formats::write::netcdf::read(&mut std::fs::File::open(path).unwrap()).unwrap();
        let ds = &c.header.dataset;
        let text = |name: &str| match ds.attr(name) {
            Some(AttrValue::Text(t)) => t.clone(),
            other => panic!("{name}: {other:?}"),
        };
        let sta = text("station");
        let meta = inv.stations.iter().find(|s| s.sta == sta).unwrap();
        assert_eq!(text("featureType"), "timeSeries");
        assert!(
            text("title").contains(meta.site.as_deref().unwrap()),
            "{}",
            text("title")
        );
        assert!(ds.var_index("lat").is_some() && ds.var_index("alt").is_some());
        for v in ds
            .vars
            .iter()
            .filter(|v| v.ty == formats::write::netcdf::model::NcType::Int)
        {
            let m = meta.channel("", &v.name).unwrap();
            let sens = v.attrs.iter().find(|a| a.name == "sensitivity").unwrap();
            assert_eq!(
                sens.value,
                AttrValue::Double(vec![m.sensitivity.as_ref().unwrap().value]),
                "{}",
                v.name
            );
        }
    }
    for path in &plain {
        let c = formats::write::netcdf::read(&mut std::fs::File::open(path).unwrap()).unwrap();
        assert!(c.header.dataset.var_index("lat").is_none());
        assert!(c.header.dataset.attr("featureType").is_none());
    }
    let names: Vec<String> = located
        .iter()
        .chain(&plain)
        .map(|p| {
            p.strip_prefix(dir.path())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    if let Err(e) = oracle::cf_check(&py, dir.path(), &names) {
        panic!("reaped files that are not CF-1.8 in full:\n{e}");
    }

    let cdl = files(&dir.path().join("cdl"), "cdl");
    assert!(!cdl.is_empty());
    for path in &cdl {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            text.contains("\t\t:featureType = \"timeSeries\" ;\n"),
            "{text}"
        );
        assert!(text.contains("\n lat = 45 ;\n"), "{text}");
    }
    let json = files(&dir.path().join("json"), "jsonl");
    assert_eq!(json.len(), 3, "{json:?}");
    for path in &json {
        let text = std::fs::read_to_string(path).unwrap();
        let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        let h = &first["header"];
        let meta = inv
            .stations
            .iter()
            .find(|s| h["sta"] == s.sta.as_str())
            .unwrap();
        // serde_json's default parser may be a bit off in the last digit: compare
        // the numbers as written.
        assert_eq!(
            h["latitude"].to_string(),
            serde_json::json!(meta.latitude).to_string()
        );
        assert_eq!(
            h["longitude"].to_string(),
            serde_json::json!(meta.longitude).to_string()
        );
        assert_eq!(h["channels"].as_array().unwrap().len(), meta.channels.len());
        let headers = text
            .lines()
            .filter(|l| l.starts_with("{\"header\":"))
            .count();
        assert_eq!(headers, 1, "{}", path.display());
        assert_eq!(text.lines().count(), 13, "a header and 12 packets");
    }
}

/// A metadata file that cannot be used stops orbreaper at rule load, exit 1, with one
/// line naming the rule file's line, the field and why.
#[test]
fn bad_station_metadata_stops_orbreaper() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.xml"),
        "<FDSNStationXML><Network code=\"XX\"><Station code=\"S\">",
    )
    .unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "stations = \"bad.xml\"\n[[reap]]\nname = \"x\"\norb = \":6510\"\nformat = \"netcdf\"\npath = \"a/{first_pktid}.nc\"\n",
    )
    .unwrap();
    for args in [&["--check"][..], &["--once"][..]] {
        let (st, _, err) = run_command(Command::new(bin("orbreaper")).arg(&rules).args(args), b"");
        assert_eq!(st.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("rules.toml:1:12: field `stations`"), "{err}");
        assert!(err.contains("not valid FDSN StationXML"), "{err}");
    }
}
