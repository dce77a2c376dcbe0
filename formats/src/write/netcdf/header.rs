//! The netCDF classic header, encoded and decoded (sans-io, over bytes).
//!
//! ```text
//! header   := magic numrecs dim_list gatt_list var_list      all big-endian
//! magic    := 'C' 'D' 'F' (1 | 2)                            CDF-1 | CDF-2
//! numrecs  := u32                                            records counted
//! dim_list := ABSENT | NC_DIMENSION(0x0A) u32 (name u32)*     length 0 = unlimited
//! gatt_list, vatt_list := ABSENT | NC_ATTRIBUTE(0x0C) u32 (name nc_type u32 values)*
//! var_list := ABSENT | NC_VARIABLE(0x0B) u32 var*
//! var      := name u32 dimid* vatt_list nc_type vsize:u32 begin:(u32 | u64)
//! name     := u32 bytes padded with zeros to 4;  values likewise padded to 4
//! ABSENT   := 0u32 0u32
//! ```

use super::model::{pad4, Attr, AttrValue, CdfVersion, Dataset, Dim, Layout, NcType, Var};

const NC_DIMENSION: u32 = 0x0A;
const NC_VARIABLE: u32 = 0x0B;
const NC_ATTRIBUTE: u32 = 0x0C;

/// Bytes of the header of `ds` in `version` (independent of numrecs and offsets).
pub fn header_len(ds: &Dataset, version: CdfVersion) -> u64 {
    let mut out = Vec::new();
    encode_into(&mut out, ds, version, 0, None);
    out.len() as u64
}

/// Appends the header of `ds` holding `numrecs` records, with offsets from `layout`.
pub fn encode(out: &mut Vec<u8>, ds: &Dataset, version: CdfVersion, numrecs: u32, layout: &Layout) {
    encode_into(out, ds, version, numrecs, Some(layout));
}

fn encode_into(
    out: &mut Vec<u8>,
    ds: &Dataset,
    version: CdfVersion,
    numrecs: u32,
    layout: Option<&Layout>,
) {
    out.extend_from_slice(&[b'C', b'D', b'F', version.magic_byte()]);
    put_u32(out, numrecs);
    if ds.dims.is_empty() {
        put_u32(out, 0);
        put_u32(out, 0);
    } else {
        put_u32(out, NC_DIMENSION);
        put_len(out, ds.dims.len());
        for d in &ds.dims {
            put_name(out, &d.name);
            put_u32(out, d.len);
        }
    }
    put_attrs(out, &ds.attrs);
    if ds.vars.is_empty() {
        put_u32(out, 0);
        put_u32(out, 0);
        return;
    }
    put_u32(out, NC_VARIABLE);
    put_len(out, ds.vars.len());
    for (i, v) in ds.vars.iter().enumerate() {
        put_name(out, &v.name);
        put_len(out, v.dims.len());
        for &d in &v.dims {
            put_len(out, d);
        }
        put_attrs(out, &v.attrs);
        put_u32(out, v.ty.code());
        let (vsize, begin) = layout.map_or((0, 0), |l| (l.vsizes[i], l.begins[i]));
        // A vsize beyond 32 bits is written as 2^32 - 1 (readers recompute it).
        put_u32(out, u32::try_from(vsize).unwrap_or(u32::MAX));
        match version {
            // The writer checks CDF-1 offsets fit before it lays a file out.
            CdfVersion::Classic => put_u32(out, u32::try_from(begin).unwrap_or(u32::MAX)),
            CdfVersion::Offset64 => out.extend_from_slice(&begin.to_be_bytes()),
        }
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    // Counts of dims, attributes and values are bounded far below 2^32 by the writer.
    put_u32(out, u32::try_from(n).unwrap_or(u32::MAX));
}

fn put_padded(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
    let pad = pad4(bytes.len() as u64) as usize - bytes.len();
    out.extend_from_slice(&[0; 3][..pad]);
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    put_len(out, name.len());
    put_padded(out, name.as_bytes());
}

fn put_attrs(out: &mut Vec<u8>, attrs: &[Attr]) {
    if attrs.is_empty() {
        put_u32(out, 0);
        put_u32(out, 0);
        return;
    }
    put_u32(out, NC_ATTRIBUTE);
    put_len(out, attrs.len());
    for a in attrs {
        put_name(out, &a.name);
        put_u32(out, a.value.nc_type().code());
        put_len(out, a.value.len());
        match &a.value {
            AttrValue::Text(s) => put_padded(out, s.as_bytes()),
            AttrValue::Int(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
            AttrValue::Double(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
        }
    }
}

/// A decoded header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// CDF-1 or CDF-2.
    pub version: CdfVersion,
    /// Records counted.
    pub numrecs: u32,
    /// Dimensions, attributes, variables.
    pub dataset: Dataset,
    /// Per variable, `(vsize, begin)` as the header states them.
    pub placement: Vec<(u32, u64)>,
    /// Bytes the header takes.
    pub len: usize,
}

/// Why bytes are not a header orb can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// The bytes end inside the header: read more.
    Incomplete,
    /// Not a netCDF classic header of the kind orb writes.
    Invalid(String),
}

/// Decodes a header from the start of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Header, HeaderError> {
    let mut c = Reader { bytes, at: 0 };
    let magic = c.take(4)?;
    let version = match magic {
        b"CDF\x01" => CdfVersion::Classic,
        b"CDF\x02" => CdfVersion::Offset64,
        _ => {
            return Err(HeaderError::Invalid(format!(
                "magic {magic:02x?} is not CDF-1 or CDF-2 netCDF"
            )))
        }
    };
    let numrecs = c.u32()?;
    let mut dataset = Dataset::default();
    match c.list_tag(NC_DIMENSION, "dimension")? {
        0 => {}
        n => {
            for _ in 0..n {
                let name = c.name()?;
                let len = c.u32()?;
                dataset.dims.push(Dim { name, len });
            }
        }
    }
    dataset.attrs = c.attrs()?;
    let nvars = c.list_tag(NC_VARIABLE, "variable")?;
    let mut placement = Vec::new();
    for _ in 0..nvars {
        let name = c.name()?;
        let ndims = c.count("dimension ids")?;
        let mut dims = Vec::with_capacity(ndims);
        for _ in 0..ndims {
            let d = c.u32()? as usize;
            if d >= dataset.dims.len() {
                return Err(HeaderError::Invalid(format!(
                    "variable {name} uses dimension {d}, the file has {}",
                    dataset.dims.len()
                )));
            }
            dims.push(d);
        }
        let attrs = c.attrs()?;
        let ty = c.nc_type()?;
        let vsize = c.u32()?;
        let begin = match version {
            CdfVersion::Classic => u64::from(c.u32()?),
            CdfVersion::Offset64 => u64::from_be_bytes(c.array()?),
        };
        dataset.vars.push(Var {
            name,
            dims,
            attrs,
            ty,
        });
        placement.push((vsize, begin));
    }
    Ok(Header {
        version,
        numrecs,
        dataset,
        placement,
        len: c.at,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], HeaderError> {
        let end = self.at.checked_add(n).ok_or(HeaderError::Incomplete)?;
        let s = self
            .bytes
            .get(self.at..end)
            .ok_or(HeaderError::Incomplete)?;
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], HeaderError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, HeaderError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A count that must be plausible for what is left, so a corrupt count cannot
    /// make us allocate.
    fn count(&mut self, what: &str) -> Result<usize, HeaderError> {
        let n = self.u32()? as usize;
        if n > self.bytes.len() {
            // Each element takes at least one byte; more than the buffer holds is
            // either a bigger header (read more) or garbage, told apart by the caller's
            // limit on how much it reads.
            if self.bytes.len() >= MAX_HEADER {
                return Err(HeaderError::Invalid(format!("{n} {what} is implausible")));
            }
            return Err(HeaderError::Incomplete);
        }
        Ok(n)
    }

    fn padded(&mut self, n: usize) -> Result<&'a [u8], HeaderError> {
        let s = self.take(n)?;
        self.take(pad4(n as u64) as usize - n)?;
        Ok(s)
    }

    fn name(&mut self) -> Result<String, HeaderError> {
        let n = self.count("name bytes")?;
        let s = self.padded(n)?;
        String::from_utf8(s.to_vec())
            .map_err(|_| HeaderError::Invalid("a name is not UTF-8".into()))
    }

    fn nc_type(&mut self) -> Result<NcType, HeaderError> {
        let code = self.u32()?;
        NcType::from_code(code).ok_or_else(|| {
            HeaderError::Invalid(format!(
                "nc_type {code}: orb writes only char, int and double"
            ))
        })
    }

    fn list_tag(&mut self, tag: u32, what: &str) -> Result<usize, HeaderError> {
        let t = self.u32()?;
        let n = self.count(what)?;
        match (t, n) {
            (0, 0) => Ok(0),
            (t, n) if t == tag => Ok(n),
            _ => Err(HeaderError::Invalid(format!(
                "expected the {what} list tag {tag:#x} or ABSENT, found {t:#x} with {n} elements"
            ))),
        }
    }

    fn attrs(&mut self) -> Result<Vec<Attr>, HeaderError> {
        let n = self.list_tag(NC_ATTRIBUTE, "attribute")?;
        let mut attrs = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.name()?;
            let ty = self.nc_type()?;
            let len = self.count("attribute values")?;
            let value = match ty {
                NcType::Char => {
                    let s = self.padded(len)?;
                    AttrValue::Text(String::from_utf8(s.to_vec()).map_err(|_| {
                        HeaderError::Invalid(format!("attribute {name} is not UTF-8"))
                    })?)
                }
                NcType::Int => {
                    let mut v = Vec::with_capacity(len);
                    for _ in 0..len {
                        v.push(i32::from_be_bytes(self.array()?));
                    }
                    AttrValue::Int(v)
                }
                NcType::Double => {
                    let mut v = Vec::with_capacity(len);
                    for _ in 0..len {
                        v.push(f64::from_be_bytes(self.array()?));
                    }
                    AttrValue::Double(v)
                }
            };
            attrs.push(Attr { name, value });
        }
        Ok(attrs)
    }
}

/// The most header bytes a reader reads before giving up on a file.
pub const MAX_HEADER: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Dataset {
        Dataset {
            dims: vec![Dim {
                name: "time".into(),
                len: 0,
            }],
            attrs: vec![Attr::text("a", "xyz"), Attr::double("b", 1.5)],
            vars: vec![Var {
                name: "time".into(),
                dims: vec![0],
                attrs: vec![Attr {
                    name: "i".into(),
                    value: AttrValue::Int(vec![-1, 2]),
                }],
                ty: NcType::Double,
            }],
        }
    }

    #[test]
    fn headers_round_trip_in_both_versions() {
        for version in [CdfVersion::Classic, CdfVersion::Offset64] {
            let ds = sample();
            let layout = ds.layout(header_len(&ds, version));
            let mut bytes = Vec::new();
            encode(&mut bytes, &ds, version, 7, &layout);
            assert_eq!(bytes.len() as u64, layout.header_len);
            let h = decode(&bytes).unwrap();
            assert_eq!(h.dataset, ds);
            assert_eq!(h.numrecs, 7);
            assert_eq!(h.len, bytes.len());
            assert_eq!(h.placement, vec![(8, layout.header_len)]);
            for cut in 0..bytes.len() {
                assert_eq!(
                    decode(&bytes[..cut]),
                    Err(HeaderError::Incomplete),
                    "cut {cut}"
                );
            }
        }
    }

    #[test]
    fn other_files_are_refused() {
        assert!(matches!(
            decode(b"CDF\x05\0\0\0\0"),
            Err(HeaderError::Invalid(_))
        ));
        assert!(matches!(
            decode(b"\x89HDF\r\n\x1a\n"),
            Err(HeaderError::Invalid(_))
        ));
    }
}
