//! FDSN StationXML 1.2, read with quick-xml's serde deserializer (a maintained,
//! widely used streaming XML crate; with serde the document's shape is declared once
//! as structs, and elements orb does not use are skipped) and written as text.
//!
//! Read: `Network@code`, `Station@code/@startDate/@endDate`, `Station/Latitude`,
//! `Longitude`, `Elevation`, `Site/Name`, `Channel@code/@locationCode/@startDate/@endDate`,
//! `Channel/Azimuth`, `Dip`, `SampleRate` and
//! `Response/InstrumentSensitivity/{Value,Frequency,InputUnits/Name}`. Everything else
//! is ignored.

use std::fmt::Write as _;

use quick_xml::escape::escape;
use quick_xml::events::Event;
use serde::Deserialize;

use super::{parse_date, ChannelEpoch, Inventory, MetaError, Sensitivity, StationEpoch};
use crate::Time;

/// The StationXML namespace.
pub const NAMESPACE: &str = "http://www.fdsn.org/xml/station/1";

#[derive(Deserialize)]
struct Root {
    #[serde(rename = "Network", default)]
    networks: Vec<Network>,
}

#[derive(Deserialize)]
struct Network {
    #[serde(rename = "@code")]
    code: String,
    #[serde(rename = "Station", default)]
    stations: Vec<Station>,
}

#[derive(Deserialize)]
struct Station {
    #[serde(rename = "@code")]
    code: String,
    #[serde(rename = "@startDate")]
    start: Option<String>,
    #[serde(rename = "@endDate")]
    end: Option<String>,
    #[serde(rename = "Latitude")]
    latitude: Number,
    #[serde(rename = "Longitude")]
    longitude: Number,
    #[serde(rename = "Elevation")]
    elevation: Number,
    #[serde(rename = "Site")]
    site: Option<Site>,
    #[serde(rename = "Channel", default)]
    channels: Vec<Channel>,
}

#[derive(Deserialize)]
struct Site {
    #[serde(rename = "Name")]
    name: Option<String>,
}

#[derive(Deserialize)]
struct Channel {
    #[serde(rename = "@code")]
    code: String,
    #[serde(rename = "@locationCode", default)]
    location: String,
    #[serde(rename = "@startDate")]
    start: Option<String>,
    #[serde(rename = "@endDate")]
    end: Option<String>,
    #[serde(rename = "Azimuth")]
    azimuth: Option<Number>,
    #[serde(rename = "Dip")]
    dip: Option<Number>,
    #[serde(rename = "SampleRate")]
    sample_rate: Option<Number>,
    #[serde(rename = "Response")]
    response: Option<Response>,
}

#[derive(Deserialize)]
struct Response {
    #[serde(rename = "InstrumentSensitivity")]
    sensitivity: Option<XmlSensitivity>,
}

#[derive(Deserialize)]
struct XmlSensitivity {
    #[serde(rename = "Value")]
    value: Number,
    #[serde(rename = "Frequency")]
    frequency: Option<Number>,
    #[serde(rename = "InputUnits")]
    input_units: Units,
}

#[derive(Deserialize)]
struct Units {
    #[serde(rename = "Name")]
    name: String,
}

/// A number element; its attributes (`unit`, `plusError`, ...) are ignored.
#[derive(Deserialize)]
struct Number {
    #[serde(rename = "$text")]
    value: f64,
}

fn date(s: &Option<String>) -> Result<Option<Time>, MetaError> {
    s.as_deref().map(parse_date).transpose()
}

/// Checks that the document element is `FDSNStationXML`.
fn check_root(text: &str) -> Result<(), MetaError> {
    let mut reader = quick_xml::Reader::from_str(text);
    // Bounded by the document: each event consumes input.
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                let name = e.local_name();
                let name: &str = name.as_ref();
                return if name == "FDSNStationXML" {
                    Ok(())
                } else {
                    Err(MetaError::Xml(format!(
                        "the document element is {:?}, not FDSNStationXML",
                        name
                    )))
                };
            }
            Ok(Event::Eof) => return Err(MetaError::Xml("the document is empty".into())),
            Ok(_) => {}
            Err(e) => return Err(MetaError::Xml(e.to_string())),
        }
    }
}

/// Reads a StationXML document into an [`Inventory`] and validates it.
pub fn parse(text: &str) -> Result<Inventory, MetaError> {
    check_root(text)?;
    let root: Root = quick_xml::de::from_str(text).map_err(|e| MetaError::Xml(e.to_string()))?;
    let mut inv = Inventory::default();
    for n in root.networks {
        for s in n.stations {
            let mut channels = Vec::new();
            for c in s.channels {
                let sensitivity = c.response.and_then(|r| r.sensitivity).map(|x| Sensitivity {
                    value: x.value.value,
                    frequency: x.frequency.map(|f| f.value),
                    units: x.input_units.name.trim().to_owned(),
                });
                channels.push(ChannelEpoch {
                    loc: c.location.trim().to_owned(),
                    chan: c.code.trim().to_owned(),
                    start: date(&c.start)?,
                    end: date(&c.end)?,
                    azimuth: c.azimuth.map(|a| a.value),
                    dip: c.dip.map(|d| d.value),
                    sample_rate: c.sample_rate.map(|r| r.value),
                    sensitivity,
                });
            }
            inv.stations.push(StationEpoch {
                net: n.code.trim().to_owned(),
                sta: s.code.trim().to_owned(),
                start: date(&s.start)?,
                end: date(&s.end)?,
                latitude: s.latitude.value,
                longitude: s.longitude.value,
                elevation: s.elevation.value,
                site: s.site.and_then(|s| s.name).map(|n| n.trim().to_owned()),
                channels,
            });
        }
    }
    inv.validate()?;
    Ok(inv)
}

/// Writes `inv` as an FDSN StationXML 1.2 document, `source` naming the producer and
/// `created` the time it was made. Channels get their station's position and depth 0
/// (StationXML requires them), and `OutputUnits` COUNTS.
pub fn write(inv: &Inventory, source: &str, created: Time) -> String {
    let iso = |t: Time| {
        t.to_iso8601()
            .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
    };
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<FDSNStationXML xmlns=\"{NAMESPACE}\" schemaVersion=\"1.2\">"
    );
    let _ = writeln!(out, "  <Source>{}</Source>", escape(source));
    let _ = writeln!(out, "  <Created>{}</Created>", iso(created));
    let mut nets: Vec<&str> = Vec::new();
    for s in &inv.stations {
        if !nets.contains(&s.net.as_str()) {
            nets.push(&s.net);
        }
    }
    let dates = |start: Option<Time>, end: Option<Time>| {
        let mut a = String::new();
        if let Some(t) = start {
            let _ = write!(a, " startDate=\"{}\"", iso(t));
        }
        if let Some(t) = end {
            let _ = write!(a, " endDate=\"{}\"", iso(t));
        }
        a
    };
    for net in nets {
        let _ = writeln!(out, "  <Network code=\"{}\">", escape(net));
        for s in inv.stations.iter().filter(|s| s.net == net) {
            let _ = writeln!(
                out,
                "    <Station code=\"{}\"{}>",
                escape(&s.sta),
                dates(s.start, s.end)
            );
            let position = format!(
                "<Latitude>{}</Latitude>\n{i}<Longitude>{}</Longitude>\n{i}<Elevation>{}</Elevation>",
                s.latitude,
                s.longitude,
                s.elevation,
                i = "      ",
            );
            let _ = writeln!(out, "      {position}");
            let site = s.site.clone().unwrap_or_else(|| s.sta.clone());
            let _ = writeln!(
                out,
                "      <Site>\n        <Name>{}</Name>\n      </Site>",
                escape(&site)
            );
            for c in &s.channels {
                let _ = writeln!(
                    out,
                    "      <Channel code=\"{}\" locationCode=\"{}\"{}>",
                    escape(&c.chan),
                    escape(&c.loc),
                    dates(c.start, c.end)
                );
                let i = "        ";
                let _ = writeln!(
                    out,
                    "{i}{}",
                    position.replace("\n      ", &format!("\n{i}"))
                );
                let _ = writeln!(out, "{i}<Depth>0</Depth>");
                if let Some(a) = c.azimuth {
                    let _ = writeln!(out, "{i}<Azimuth>{a}</Azimuth>");
                }
                if let Some(d) = c.dip {
                    let _ = writeln!(out, "{i}<Dip>{d}</Dip>");
                }
                if let Some(r) = c.sample_rate {
                    let _ = writeln!(out, "{i}<SampleRate>{r}</SampleRate>");
                }
                if let Some(sens) = &c.sensitivity {
                    let _ = writeln!(out, "{i}<Response>");
                    let _ = writeln!(out, "{i}  <InstrumentSensitivity>");
                    let _ = writeln!(out, "{i}    <Value>{}</Value>", sens.value);
                    let _ = writeln!(
                        out,
                        "{i}    <Frequency>{}</Frequency>",
                        sens.frequency.unwrap_or(0.0)
                    );
                    let _ = writeln!(
                        out,
                        "{i}    <InputUnits>\n{i}      <Name>{}</Name>\n{i}    </InputUnits>",
                        escape(&sens.units)
                    );
                    let _ = writeln!(
                        out,
                        "{i}    <OutputUnits>\n{i}      <Name>COUNTS</Name>\n{i}    </OutputUnits>"
                    );
                    let _ = writeln!(out, "{i}  </InstrumentSensitivity>");
                    let _ = writeln!(out, "{i}</Response>");
                }
                let _ = writeln!(out, "      </Channel>");
            }
            let _ = writeln!(out, "    </Station>");
        }
        let _ = writeln!(out, "  </Network>");
    }
    out.push_str("</FDSNStationXML>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document as data centres serve it: namespace, attributes on numbers,
    /// elements orb ignores, two channel epochs.
    const DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<FDSNStationXML xmlns="http://www.fdsn.org/xml/station/1" schemaVersion="1.2">
  <Source>test</Source>
  <Created>2026-01-01T00:00:00</Created>
  <Network code="XX" startDate="2000-01-01T00:00:00">
    <Description>Test network</Description>
    <Station code="STA01" startDate="2020-01-01T00:00:00">
      <Latitude unit="DEGREES">45.5</Latitude>
      <Longitude>-10.25</Longitude>
      <Elevation unit="METERS">120.5</Elevation>
      <Site><Name>Hill &amp; Dale</Name></Site>
      <CreationDate>2020-01-01T00:00:00</CreationDate>
      <Channel code="BHZ" locationCode="" startDate="2020-01-01T00:00:00" endDate="2024-01-01T00:00:00">
        <Latitude>45.5</Latitude><Longitude>-10.25</Longitude><Elevation>120.5</Elevation><Depth>0</Depth>
        <Azimuth>0</Azimuth><Dip>-90</Dip>
        <SampleRate>40</SampleRate>
        <Response>
          <InstrumentSensitivity>
            <Value>6.0E8</Value><Frequency>1.0</Frequency>
            <InputUnits><Name>m/s</Name><Description>velocity</Description></InputUnits>
            <OutputUnits><Name>COUNTS</Name></OutputUnits>
          </InstrumentSensitivity>
          <Stage number="1"><StageGain><Value>1</Value><Frequency>1</Frequency></StageGain></Stage>
        </Response>
      </Channel>
      <Channel code="BHZ" locationCode="" startDate="2024-01-01T00:00:00">
        <Latitude>45.5</Latitude><Longitude>-10.25</Longitude><Elevation>120.5</Elevation><Depth>0</Depth>
        <Azimuth>0</Azimuth><Dip>-90</Dip>
        <Response><InstrumentSensitivity><Value>1.2E9</Value><Frequency>1</Frequency>
          <InputUnits><Name>m/s</Name></InputUnits><OutputUnits><Name>COUNTS</Name></OutputUnits>
        </InstrumentSensitivity></Response>
      </Channel>
      <Channel code="LDO" locationCode="10">
        <Latitude>45.5</Latitude><Longitude>-10.25</Longitude><Elevation>120.5</Elevation><Depth>0</Depth>
      </Channel>
    </Station>
  </Network>
</FDSNStationXML>
"#;

    #[test]
    fn reads_what_a_data_centre_serves() {
        let inv = parse(DOC).unwrap();
        assert_eq!(inv.stations.len(), 1);
        let s = &inv.stations[0];
        assert_eq!((s.net.as_str(), s.sta.as_str()), ("XX", "STA01"));
        assert_eq!(
            (s.latitude, s.longitude, s.elevation),
            (45.5, -10.25, 120.5)
        );
        assert_eq!(s.site.as_deref(), Some("Hill & Dale"));
        assert_eq!(s.channels.len(), 3);
        let at = Time::parse_iso8601("2025-01-01T00:00:00Z").unwrap();
        let now = inv.station("XX", "STA01", at).unwrap();
        let bhz = now.channel("", "BHZ").unwrap();
        assert_eq!(bhz.sensitivity.as_ref().unwrap().value, 1.2e9);
        assert_eq!((bhz.azimuth, bhz.dip), (Some(0.0), Some(-90.0)));
        let ldo = now.channel("10", "LDO").unwrap();
        assert!(ldo.sensitivity.is_none() && ldo.azimuth.is_none());
        let then = Time::parse_iso8601("2021-01-01T00:00:00Z").unwrap();
        let old = inv.station("XX", "STA01", then).unwrap();
        let sens = old.channel("", "BHZ").unwrap().sensitivity.clone().unwrap();
        assert_eq!(
            (sens.value, sens.frequency, sens.units.as_str()),
            (6e8, Some(1.0), "m/s")
        );
    }

    #[test]
    fn what_it_writes_it_reads_back() {
        let inv = parse(DOC).unwrap();
        let text = write(&inv, "orb test", Time::from_micros(0));
        let back = parse(&text).unwrap();
        assert_eq!(back, inv);
    }

    #[test]
    fn broken_documents_are_refused_with_the_reason() {
        let e = parse("<html><body/></html>").unwrap_err().to_string();
        assert!(e.contains("not FDSNStationXML"), "{e}");
        let e = parse(&DOC.replace("<Latitude unit=\"DEGREES\">45.5", "<Latitude>north"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("StationXML"), "{e}");
        let e = parse(&DOC.replace("</Network>", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("StationXML"), "{e}");
        let e = parse(&DOC.replace(
            ">45.5</Latitude>\n      <Longitude>",
            ">95.5</Latitude>\n      <Longitude>",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("latitude 95.5"), "{e}");
        let e = parse(&DOC.replace("<Dip>-90</Dip>", "<Dip>-190</Dip>"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("dip -190"), "{e}");
    }
}
