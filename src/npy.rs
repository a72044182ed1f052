//! `.npy` arrays of float32, read and written without trusting the file: the header is parsed
//! strictly and the shape it declares is checked against the bytes actually there before
//! anything is allocated (a few bytes of header may claim terabytes). Only what the network
//! takes and gives is accepted: little-endian float32 in C order (`np.save` of a float32 array
//! on any common machine), headers of format version 1, 2 or 3. Parameter files (the NIQE
//! model's `.npz`) are read as float64 with [`read_f64`].

use std::io::{Read, Write};
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::files::write_atomically;

const MAGIC: &[u8] = b"\x93NUMPY";
/// numpy's own reader refuses longer headers by default (`max_header_size`); ours need ~100 bytes.
const MAX_HEADER: usize = 10_000;

/// What the header says: the only dtype accepted is `<f4`, C order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub shape: Vec<usize>,
    /// Column-major data (`fortran_order: True`); only float64 parameter arrays may be.
    pub fortran_order: bool,
    /// Bytes before the data (magic, version, length and the header itself).
    pub data_offset: u64,
}

/// Reads a float32 array as a CPU tensor; every error names `path` and fits one line.
pub fn read(path: &Path) -> Result<Tensor> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let header = read_header(&mut file, len).map_err(|msg| Error::format(path, msg))?;
    let count: usize = header.shape.iter().product(); // cannot overflow: checked in read_header
    // The data's length is known to match, so this allocation is what the file really holds.
    let mut data = vec![0f32; count];
    let mut reader = std::io::BufReader::new(file);
    let mut buf = [0u8; 4];
    for v in &mut data {
        reader.read_exact(&mut buf).map_err(|e| Error::io(path, e))?;
        *v = f32::from_le_bytes(buf);
    }
    Ok(Tensor::from_vec(data, header.shape, &Device::Cpu)?)
}

/// Writes `t` (any float dtype, any device) as a float32 `.npy`, version 1 header, atomically:
/// an existing file at `path` is replaced only once the new one is complete.
pub fn write(path: &Path, t: &Tensor) -> Result<()> {
    let t = t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
    let values = t.flatten_all()?.to_vec1::<f32>()?;
    write_atomically(path, |tmp| {
        let file = std::fs::File::create(tmp).map_err(|e| Error::io(tmp, e))?;
        let mut out = std::io::BufWriter::new(file);
        let io = |e| Error::io(path, e);
        out.write_all(&header_bytes(t.dims())).map_err(io)?;
        values.iter().try_for_each(|v| out.write_all(&v.to_le_bytes())).map_err(io)?;
        out.flush().map_err(io)
    })
}

/// Magic, version 1, length and the dict, padded with spaces so the data starts on a multiple
/// of 64 bytes (what numpy writes).
fn header_bytes(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    let unpadded = MAGIC.len() + 2 + 2 + dict.len() + 1;
    dict.extend(std::iter::repeat_n(' ', unpadded.next_multiple_of(64) - unpadded));
    dict.push('\n');
    let mut bytes = MAGIC.to_vec();
    bytes.extend([1, 0]);
    bytes.extend((dict.len() as u16).to_le_bytes());
    bytes.extend(dict.as_bytes());
    bytes
}

/// Little-endian float types an array may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
}

impl Dtype {
    fn descr(self) -> &'static str {
        match self {
            Dtype::F32 => "<f4",
            Dtype::F64 => "<f8",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }

    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }
}

/// Reads a float64 array of `len` bytes from `r` (a file, or an entry of an `.npz`): its shape
/// and values, C order. Errors are one line, without the file's name.
pub fn read_f64(r: &mut impl Read, len: u64) -> std::result::Result<(Vec<usize>, Vec<f64>), String> {
    let header = read_header_of(r, len, Dtype::F64)?;
    let count: usize = header.shape.iter().product();
    let mut bytes = vec![0u8; count * 8]; // checked against `len` in the header
    r.read_exact(&mut bytes).map_err(|e| format!("the array's data: {e}"))?;
    let values: Vec<f64> = bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
    if !header.fortran_order || header.shape.len() < 2 {
        return Ok((header.shape, values));
    }
    if header.shape.len() > 2 {
        return Err(format!("column-major arrays of {} dimensions are not read", header.shape.len()));
    }
    // Column-major to row-major.
    let (rows, cols) = (header.shape[0], header.shape[1]);
    let c_order = (0..rows * cols).map(|i| values[(i % cols) * rows + i / cols]).collect();
    Ok((header.shape, c_order))
}

/// Reads and checks the header of a file of `file_len` bytes: after it, exactly the declared
/// shape's float32 values must follow.
pub fn read_header(r: &mut impl Read, file_len: u64) -> std::result::Result<Header, String> {
    read_header_of(r, file_len, Dtype::F32)
}

/// [`read_header`] for arrays of `dtype`.
fn read_header_of(r: &mut impl Read, file_len: u64, dtype: Dtype) -> std::result::Result<Header, String> {
    let bad = || "not a readable .npy array: too short for a header".to_string();
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre).map_err(|_| bad())?;
    if &pre[..6] != MAGIC {
        return Err("not a readable .npy array: no numpy magic string".into());
    }
    let (len_bytes, version) = match pre[6] {
        1 => (2, 1),
        2 | 3 => (4, pre[6]),
        v => return Err(format!("not a readable .npy array: unknown format version {v}.{}", pre[7])),
    };
    let mut len = [0u8; 4];
    r.read_exact(&mut len[..len_bytes]).map_err(|_| bad())?;
    let header_len = u32::from_le_bytes(len) as usize;
    if header_len > MAX_HEADER {
        return Err(format!("not a readable .npy array: header of {header_len} bytes (at most {MAX_HEADER})"));
    }
    let mut text = vec![0u8; header_len];
    r.read_exact(&mut text).map_err(|_| bad())?;
    // Versions 1 and 2 are latin-1, 3 is UTF-8; a float32 header is plain ASCII in all three.
    let text = std::str::from_utf8(&text)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| format!("not a readable .npy array: version {version} header is not ASCII"))?;
    let (shape, fortran_order) =
        parse_dict(text, dtype).map_err(|e| format!("not a readable .npy array: header {e}"))?;
    let data_offset = (8 + len_bytes + header_len) as u64;
    let count = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let want = count.and_then(|c| c.checked_mul(dtype.size())).and_then(|b| u64::try_from(b).ok());
    let have = file_len.saturating_sub(data_offset);
    if want != Some(have) {
        let want = want.map_or("more than 2^64".to_string(), |w| w.to_string());
        let name = dtype.name();
        return Err(format!("shape {shape:?} needs {want} bytes of {name} data, the file holds {have}"));
    }
    Ok(Header { shape, fortran_order, data_offset })
}

/// The shape from a header dict, `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`
/// (each key exactly once, any order, Python literal syntax), after checking the other two keys.
fn parse_dict(text: &str, dtype: Dtype) -> std::result::Result<(Vec<usize>, bool), String> {
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    p.expect(b'{')?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    while !p.eat(b'}') {
        let key = p.string()?;
        p.expect(b':')?;
        match key.as_str() {
            "descr" if descr.is_none() => descr = Some(p.string()?),
            "fortran_order" if fortran.is_none() => fortran = Some(p.boolean()?),
            "shape" if shape.is_none() => shape = Some(p.tuple()?),
            // Escaped: the key is the file's text, and an error is one line.
            k => return Err(format!("has an unexpected or repeated key {k:?}")),
        }
        if !p.eat(b',') {
            p.expect(b'}')?;
            break;
        }
    }
    if p.s[p.i..].iter().any(|c| !c.is_ascii_whitespace()) {
        return Err("has text after the dict".into());
    }
    let (Some(descr), Some(fortran), Some(shape)) = (descr, fortran, shape) else {
        return Err("lacks one of 'descr', 'fortran_order', 'shape'".into());
    };
    let (want, name) = (dtype.descr(), dtype.name());
    match descr.as_str() {
        d if d == want => {}
        d if d.strip_prefix('>') == want.strip_prefix('<') => {
            return Err(format!("dtype '{d}' is big-endian, expected little-endian {name} ('{want}')"));
        }
        d => return Err(format!("dtype '{d}', expected {name} ('{want}')")),
    }
    if fortran && dtype == Dtype::F32 {
        return Err("says fortran_order: True, expected C order (np.ascontiguousarray before saving)".into());
    }
    Ok((shape, fortran))
}

/// A cursor over the header dict's few Python literals.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_space();
        let hit = self.s.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        if self.eat(c) { Ok(()) } else { Err(format!("is malformed: expected '{}' at byte {}", c as char, self.i)) }
    }

    /// A quoted string without escapes (none of the three keys or the dtypes have any).
    fn string(&mut self) -> std::result::Result<String, String> {
        self.skip_space();
        let quote =
            *self.s.get(self.i).filter(|c| **c == b'\'' || **c == b'"').ok_or("is malformed: expected a string")?;
        let start = self.i + 1;
        let len = self.s[start..].iter().position(|&c| c == quote).ok_or("is malformed: unterminated string")?;
        self.i = start + len + 1;
        Ok(String::from_utf8_lossy(&self.s[start..start + len]).into_owned())
    }

    fn word(&mut self) -> &[u8] {
        self.skip_space();
        let start = self.i;
        // Signs and points too, so that `-2` or `2.0` is reported whole.
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_alphanumeric() || b"_-+.".contains(c)) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    fn boolean(&mut self) -> std::result::Result<bool, String> {
        match self.word() {
            b"True" => Ok(true),
            b"False" => Ok(false),
            w => Err(format!("has fortran_order '{}', expected True or False", String::from_utf8_lossy(w))),
        }
    }

    /// `()`, `(n,)`, `(n, m)`, `(n, m,)`: a Python tuple of non-negative integers.
    fn tuple(&mut self) -> std::result::Result<Vec<usize>, String> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        while !self.eat(b')') {
            let w = self.word();
            let d = std::str::from_utf8(w).ok().filter(|w| w.bytes().all(|c| c.is_ascii_digit()));
            let d = d.and_then(|w| w.parse::<usize>().ok()).ok_or_else(|| {
                format!("has shape entry '{}', expected a non-negative integer", String::from_utf8_lossy(w))
            })?;
            dims.push(d);
            if !self.eat(b',') {
                self.expect(b')')?;
                // `(5)` is an integer in Python, not a tuple.
                if dims.len() == 1 {
                    return Err("has shape (n) without a comma: not a tuple".into());
                }
                break;
            }
        }
        Ok(dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dict: &str, version: u8, data: usize) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend([version, 0]);
        match version {
            1 => b.extend((dict.len() as u16).to_le_bytes()),
            _ => b.extend((dict.len() as u32).to_le_bytes()),
        }
        b.extend(dict.as_bytes());
        b.extend(vec![0u8; data]);
        b
    }

    fn header(bytes: &[u8]) -> std::result::Result<Header, String> {
        read_header(&mut &bytes[..], bytes.len() as u64)
    }

    #[test]
    fn numpy_and_candle_headers_parse() {
        let numpy = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }          \n";
        assert_eq!(header(&file(numpy, 1, 24)).unwrap().shape, vec![2, 3]);
        let candle = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,3,), }\n";
        assert_eq!(header(&file(candle, 2, 24)).unwrap().shape, vec![2, 3]);
        let odd = "{\"shape\": (5,), \"fortran_order\": False, \"descr\": \"<f4\"}";
        assert_eq!(header(&file(odd, 3, 20)).unwrap().shape, vec![5]);
        let scalar = "{'descr': '<f4', 'fortran_order': False, 'shape': (), }";
        assert_eq!(header(&file(scalar, 1, 4)).unwrap().shape, Vec::<usize>::new());
    }

    #[test]
    fn written_headers_read_back_aligned() {
        for shape in [vec![], vec![7], vec![1, 3, 64, 64]] {
            let bytes = header_bytes(&shape);
            assert_eq!(bytes.len() % 64, 0);
            let n: usize = shape.iter().product();
            let mut all = bytes.clone();
            all.extend(vec![0u8; 4 * n]);
            let h = header(&all).unwrap();
            assert_eq!((h.shape, h.data_offset), (shape, bytes.len() as u64));
        }
    }

    #[test]
    fn hostile_headers_are_refused_before_allocating() {
        let dict = |descr: &str, fortran: &str, shape: &str| {
            format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}")
        };
        let cases = [
            (dict("<f4", "False", "(100000, 100000, 100000, 3)"), "needs 12000000000000000 bytes"),
            (dict("<f4", "False", "(4294967296, 4294967296, 4294967296)"), "more than 2^64"),
            (dict("<f4", "False", "(2, 3)"), "the file holds 8"),
            (dict("<f4", "True", "(2,)"), "fortran_order"),
            (dict(">f4", "False", "(2,)"), "big-endian"),
            (dict("<f8", "False", "(1,)"), "expected float32"),
            (dict("<f4", "False", "(-2,)"), "non-negative"),
            (dict("<f4", "False", "(2)"), "not a tuple"),
            (dict("<f4", "maybe", "(2,)"), "True or False"),
            ("{'descr': '<f4', 'shape': (2,), }".into(), "lacks"),
            ("{'descr': '<f4', 'descr': '<f4', }".into(), "repeated"),
            (dict("<f4", "False", "(2,)") + " x", "after the dict"),
        ];
        for (d, needle) in cases {
            let err = header(&file(&d, 1, 8)).unwrap_err();
            assert!(err.contains(needle), "{d}: {err}");
        }
        let mut long = file("{}", 2, 0);
        long[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(header(&long).unwrap_err().contains("at most"));
        assert!(header(b"\x93NUMPY\x04\x00").unwrap_err().contains("version 4"));
        assert!(header(b"not numpy at all").unwrap_err().contains("magic"));
    }
}
