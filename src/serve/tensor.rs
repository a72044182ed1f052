//! Tensors as the protocol carries them, whichever the transport: a name, a datatype, a shape
//! and the elements, read from raw little-endian bytes (gRPC's `raw_*_contents`, HTTP's binary
//! extension) or from typed lists (JSON `data`, gRPC `contents`), every size checked against
//! the shape before anything is allocated for it.

use super::error::ServeError;

/// The datatypes this server reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datatype {
    Uint8,
    Uint64,
    Fp32,
}

impl Datatype {
    pub fn parse(name: &str) -> Result<Self, ServeError> {
        match name {
            "UINT8" => Ok(Self::Uint8),
            "UINT64" => Ok(Self::Uint64),
            "FP32" => Ok(Self::Fp32),
            other => Err(ServeError::bad(format!("datatype {other:?} is not served (UINT8, UINT64 or FP32)"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Uint8 => "UINT8",
            Self::Uint64 => "UINT64",
            Self::Fp32 => "FP32",
        }
    }

    pub fn size(self) -> usize {
        match self {
            Self::Uint8 => 1,
            Self::Uint64 => 8,
            Self::Fp32 => 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Elements {
    U8(Vec<u8>),
    U64(Vec<u64>),
    F32(Vec<f32>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Elements,
}

/// The number of elements of `shape` (as the protocol sends it), refusing negative dimensions
/// and products that overflow.
pub fn element_count(name: &str, shape: &[i64]) -> Result<usize, ServeError> {
    shape.iter().try_fold(1usize, |n, &d| {
        let d = usize::try_from(d)
            .map_err(|_| ServeError::bad(format!("input {name:?}: negative dimension in shape {shape:?}")))?;
        n.checked_mul(d).ok_or_else(|| ServeError::bad(format!("input {name:?}: shape {shape:?} is too large")))
    })
}

impl Tensor {
    pub fn datatype(&self) -> Datatype {
        match self.data {
            Elements::U8(_) => Datatype::Uint8,
            Elements::U64(_) => Datatype::Uint64,
            Elements::F32(_) => Datatype::Fp32,
        }
    }

    /// `shape` as the protocol writes it.
    pub fn wire_shape(&self) -> Vec<i64> {
        self.shape.iter().map(|&d| d as i64).collect()
    }

    /// From raw bytes: row-major, little-endian, exactly the shape's size.
    pub fn from_raw(name: &str, datatype: &str, shape: &[i64], bytes: &[u8]) -> Result<Self, ServeError> {
        let datatype = Datatype::parse(datatype)?;
        let count = element_count(name, shape)?;
        let want = count.checked_mul(datatype.size());
        if want != Some(bytes.len()) {
            return Err(ServeError::bad(format!(
                "input {name:?}: {} bytes of data, but shape {shape:?} of {} needs {}",
                bytes.len(),
                datatype.name(),
                want.map_or("more than can be addressed".to_string(), |w| w.to_string())
            )));
        }
        let data = match datatype {
            Datatype::Uint8 => Elements::U8(bytes.to_vec()),
            Datatype::Uint64 => Elements::U64(
                bytes.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))).collect(),
            ),
            Datatype::Fp32 => Elements::F32(
                bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect(),
            ),
        };
        Ok(Self { name: name.into(), shape: shape.iter().map(|&d| d as usize).collect(), data })
    }

    /// From typed elements already decoded (JSON numbers, gRPC `contents`): their number must
    /// be the shape's.
    pub fn from_elements(name: &str, shape: &[i64], data: Elements) -> Result<Self, ServeError> {
        let count = element_count(name, shape)?;
        let got = match &data {
            Elements::U8(v) => v.len(),
            Elements::U64(v) => v.len(),
            Elements::F32(v) => v.len(),
        };
        if got != count {
            return Err(ServeError::bad(format!("input {name:?}: {got} elements, but shape {shape:?} holds {count}")));
        }
        Ok(Self { name: name.into(), shape: shape.iter().map(|&d| d as usize).collect(), data })
    }

    /// From a JSON `data` value (flat or nested lists of numbers) for `datatype`.
    pub fn from_json(name: &str, datatype: &str, shape: &[i64], data: &serde_json::Value) -> Result<Self, ServeError> {
        let datatype = Datatype::parse(datatype)?;
        let count = element_count(name, shape)?;
        let mut flat = Vec::with_capacity(count.min(1 << 24));
        flatten(data, &mut flat, count).map_err(|e| ServeError::bad(format!("input {name:?}: {e}")))?;
        let bad = |what: &str| ServeError::bad(format!("input {name:?}: {what}"));
        let data = match datatype {
            Datatype::Uint8 => Elements::U8(
                flat.iter()
                    .map(|v| v.as_u64().and_then(|v| u8::try_from(v).ok()))
                    .collect::<Option<_>>()
                    .ok_or_else(|| bad("UINT8 data must be integers 0..255"))?,
            ),
            Datatype::Uint64 => Elements::U64(
                flat.iter()
                    .map(|v| v.as_u64())
                    .collect::<Option<_>>()
                    .ok_or_else(|| bad("UINT64 data must be integers >= 0"))?,
            ),
            Datatype::Fp32 => Elements::F32(
                flat.iter()
                    .map(|v| v.as_f64().map(|v| v as f32))
                    .collect::<Option<_>>()
                    .ok_or_else(|| bad("FP32 data must be numbers"))?,
            ),
        };
        Self::from_elements(name, shape, data)
    }

    /// The elements as raw little-endian bytes.
    pub fn to_raw(&self) -> Vec<u8> {
        match &self.data {
            Elements::U8(v) => v.clone(),
            Elements::U64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Elements::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    /// The elements as a flat JSON list.
    pub fn to_json_data(&self) -> serde_json::Value {
        match &self.data {
            Elements::U8(v) => serde_json::json!(v),
            Elements::U64(v) => serde_json::json!(v),
            Elements::F32(v) => serde_json::json!(v),
        }
    }
}

/// Appends the numbers of `value` (nested lists allowed) to `out`, stopping past `limit` so
/// that a huge body cannot grow the list beyond what the shape allows.
fn flatten<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>, limit: usize) -> Result<(), String> {
    match value {
        serde_json::Value::Array(items) => items.iter().try_for_each(|v| flatten(v, out, limit)),
        v if v.is_number() => {
            if out.len() == limit {
                return Err(format!("more elements than the shape's {limit}"));
            }
            out.push(v);
            Ok(())
        }
        other => Err(format!("data must hold numbers, found {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_data_must_match_the_shape() {
        let t = Tensor::from_raw("x", "FP32", &[1, 2], &[0, 0, 128, 63, 0, 0, 0, 64]).unwrap();
        assert_eq!(t.data, Elements::F32(vec![1.0, 2.0]));
        assert_eq!(t.to_raw(), [0, 0, 128, 63, 0, 0, 0, 64]);
        let e = Tensor::from_raw("x", "FP32", &[1, 3], &[0; 8]).unwrap_err();
        assert!(e.message.contains("8 bytes") && e.message.contains("needs 12"), "{e}");
        assert!(Tensor::from_raw("x", "FP32", &[-1, 3], &[]).is_err());
        assert!(Tensor::from_raw("x", "FP32", &[i64::MAX, i64::MAX], &[]).unwrap_err().message.contains("too large"));
        assert!(Tensor::from_raw("x", "INT8", &[1], &[0]).unwrap_err().message.contains("INT8"));
    }

    #[test]
    fn json_data_may_be_nested_and_is_checked() {
        let t = Tensor::from_json("x", "UINT8", &[2, 2], &serde_json::json!([[1, 2], [3, 255]])).unwrap();
        assert_eq!(t.data, Elements::U8(vec![1, 2, 3, 255]));
        assert!(Tensor::from_json("x", "UINT8", &[1], &serde_json::json!([256])).is_err());
        assert!(Tensor::from_json("x", "FP32", &[2], &serde_json::json!([1.0])).is_err());
        assert!(Tensor::from_json("x", "FP32", &[1], &serde_json::json!([1.0, 2.0])).is_err());
        assert!(Tensor::from_json("x", "FP32", &[1], &serde_json::json!(["a"])).is_err());
    }
}
