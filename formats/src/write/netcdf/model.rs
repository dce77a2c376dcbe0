//! The netCDF classic data model (dimensions, variables, attributes) and where each
//! variable's data lies in a file: shared by the netCDF writer, its reader and the
//! CDL printer, so the two formats describe one dataset.

/// The external types orb writes (and the only ones its reader accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NcType {
    /// `char`: 8-bit text.
    Char,
    /// `int`: 32-bit signed, big-endian.
    Int,
    /// `double`: IEEE 754 64-bit, big-endian.
    Double,
}

impl NcType {
    /// The `nc_type` code in the header (`NC_CHAR` 2, `NC_INT` 4, `NC_DOUBLE` 6).
    pub fn code(self) -> u32 {
        match self {
            NcType::Char => 2,
            NcType::Int => 4,
            NcType::Double => 6,
        }
    }

    /// The type for a header code, if orb writes it.
    pub fn from_code(code: u32) -> Option<NcType> {
        match code {
            2 => Some(NcType::Char),
            4 => Some(NcType::Int),
            6 => Some(NcType::Double),
            _ => None,
        }
    }

    /// Bytes per value.
    pub fn size(self) -> u64 {
        match self {
            NcType::Char => 1,
            NcType::Int => 4,
            NcType::Double => 8,
        }
    }

    /// The CDL keyword.
    pub fn cdl_name(self) -> &'static str {
        match self {
            NcType::Char => "char",
            NcType::Int => "int",
            NcType::Double => "double",
        }
    }
}

/// An attribute's values.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// Text (`NC_CHAR`), ASCII.
    Text(String),
    /// 32-bit integers.
    Int(Vec<i32>),
    /// Doubles.
    Double(Vec<f64>),
}

impl AttrValue {
    /// The attribute's external type.
    pub fn nc_type(&self) -> NcType {
        match self {
            AttrValue::Text(_) => NcType::Char,
            AttrValue::Int(_) => NcType::Int,
            AttrValue::Double(_) => NcType::Double,
        }
    }

    /// Number of values (bytes, for text).
    pub fn len(&self) -> usize {
        match self {
            AttrValue::Text(s) => s.len(),
            AttrValue::Int(v) => v.len(),
            AttrValue::Double(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A named attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    /// Its name.
    pub name: String,
    /// Its values.
    pub value: AttrValue,
}

impl Attr {
    /// A text attribute.
    pub fn text(name: &str, value: impl Into<String>) -> Attr {
        Attr {
            name: name.to_owned(),
            value: AttrValue::Text(value.into()),
        }
    }

    /// A one-value double attribute.
    pub fn double(name: &str, value: f64) -> Attr {
        Attr {
            name: name.to_owned(),
            value: AttrValue::Double(vec![value]),
        }
    }
}

/// A dimension; length 0 marks the unlimited (record) dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct Dim {
    /// Its name.
    pub name: String,
    /// Its length, 0 for the record dimension.
    pub len: u32,
}

/// A variable: shape (indices into [`Dataset::dims`]), attributes and type.
#[derive(Debug, Clone, PartialEq)]
pub struct Var {
    /// Its name.
    pub name: String,
    /// Its dimensions, slowest varying first.
    pub dims: Vec<usize>,
    /// Its attributes, in file order.
    pub attrs: Vec<Attr>,
    /// Its type.
    pub ty: NcType,
}

/// A netCDF classic dataset's metadata (everything but the data).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dataset {
    /// Dimensions, in file order.
    pub dims: Vec<Dim>,
    /// Global attributes, in file order.
    pub attrs: Vec<Attr>,
    /// Variables, in file order.
    pub vars: Vec<Var>,
}

/// The two netCDF classic variants this crate writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CdfVersion {
    /// CDF-1, the classic format: 32-bit variable offsets.
    Classic,
    /// CDF-2, the 64-bit offset format (the default): 64-bit variable offsets.
    #[default]
    Offset64,
}

impl CdfVersion {
    /// The fourth magic byte.
    pub fn magic_byte(self) -> u8 {
        match self {
            CdfVersion::Classic => 1,
            CdfVersion::Offset64 => 2,
        }
    }

    /// Bytes of a variable's `begin` offset in the header.
    pub fn offset_size(self) -> u64 {
        match self {
            CdfVersion::Classic => 4,
            CdfVersion::Offset64 => 8,
        }
    }
}

/// Where data lies in a file with a given header length.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Header bytes (the first variable's data starts here).
    pub header_len: u64,
    /// Per variable: offset of its data (of its slice in record 0 for record variables).
    pub begins: Vec<u64>,
    /// Per variable: the header's `vsize` (bytes of data, of one record's slice for
    /// record variables), padded to 4.
    pub vsizes: Vec<u64>,
    /// Bytes of one record (all record variables' slices).
    pub recsize: u64,
    /// Offset of record 0.
    pub rec_begin: u64,
}

/// `n` rounded up to a multiple of 4.
pub fn pad4(n: u64) -> u64 {
    n.div_ceil(4) * 4
}

impl Dataset {
    /// Whether `var` has the unlimited dimension (which classic files allow only first).
    pub fn is_record(&self, var: &Var) -> bool {
        var.dims
            .first()
            .is_some_and(|&d| self.dims.get(d).is_some_and(|d| d.len == 0))
    }

    /// Bytes of `var`'s data (of one record's slice, for a record variable), unpadded.
    fn slice_bytes(&self, var: &Var) -> u64 {
        let skip = usize::from(self.is_record(var));
        var.dims[skip..]
            .iter()
            .map(|&d| u64::from(self.dims.get(d).map_or(0, |d| d.len)))
            .product::<u64>()
            * var.ty.size()
    }

    /// Lays out the data after a header of `header_len` bytes, as the specification
    /// orders it: non-record variables in header order, then records, each record
    /// holding every record variable's slice in header order.
    pub fn layout(&self, header_len: u64) -> Layout {
        let vsizes: Vec<u64> = self
            .vars
            .iter()
            .map(|v| pad4(self.slice_bytes(v)))
            .collect();
        let mut begins = vec![0; self.vars.len()];
        let mut at = header_len;
        for (i, v) in self.vars.iter().enumerate() {
            if !self.is_record(v) {
                begins[i] = at;
                at += vsizes[i];
            }
        }
        let rec_begin = at;
        let records: Vec<usize> = (0..self.vars.len())
            .filter(|&i| self.is_record(&self.vars[i]))
            .collect();
        for &i in &records {
            begins[i] = at;
            at += vsizes[i];
        }
        let mut recsize = at - rec_begin;
        // The specification's special case: a lone record variable is not padded
        // between records.
        if let [only] = records[..] {
            recsize = self.slice_bytes(&self.vars[only]);
        }
        Layout {
            header_len,
            begins,
            vsizes,
            recsize,
            rec_begin,
        }
    }

    /// The global attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&AttrValue> {
        find_attr(&self.attrs, name)
    }

    /// The index of variable `name`.
    pub fn var_index(&self, name: &str) -> Option<usize> {
        self.vars.iter().position(|v| v.name == name)
    }
}

/// The attribute `name` in `attrs`.
pub fn find_attr<'a>(attrs: &'a [Attr], name: &str) -> Option<&'a AttrValue> {
    attrs.iter().find(|a| a.name == name).map(|a| &a.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str, dims: Vec<usize>, ty: NcType) -> Var {
        Var {
            name: name.into(),
            dims,
            attrs: vec![],
            ty,
        }
    }

    #[test]
    fn records_follow_fixed_data_and_are_padded() {
        let ds = Dataset {
            dims: vec![
                Dim {
                    name: "time".into(),
                    len: 0,
                },
                Dim {
                    name: "n".into(),
                    len: 5,
                },
            ],
            attrs: vec![],
            vars: vec![
                var("s", vec![1], NcType::Char),
                var("t", vec![0], NcType::Double),
                var("c", vec![0, 1], NcType::Char),
            ],
        };
        let l = ds.layout(100);
        assert_eq!(l.vsizes, vec![8, 8, 8]);
        assert_eq!(l.begins, vec![100, 108, 116]);
        assert_eq!(l.rec_begin, 108);
        assert_eq!(l.recsize, 16);
    }

    #[test]
    fn a_lone_record_variable_is_not_padded() {
        let ds = Dataset {
            dims: vec![
                Dim {
                    name: "time".into(),
                    len: 0,
                },
                Dim {
                    name: "n".into(),
                    len: 3,
                },
            ],
            attrs: vec![],
            vars: vec![var("c", vec![0, 1], NcType::Char)],
        };
        let l = ds.layout(64);
        assert_eq!(l.vsizes, vec![4]);
        assert_eq!(l.recsize, 3);
    }
}
