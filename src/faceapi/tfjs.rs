//! Reading TF.js weights: a `*-weights_manifest.json` plus the `.bin` shard files it names, into
//! a name -> tensor map on the CPU.
//!
//! The manifest is a list of groups `{paths: [shard, ...], weights: [{name, shape, dtype,
//! quantization?}, ...]}`. A group's shards are concatenated and its tensors follow each other
//! in manifest order with no alignment or padding. A tensor is either little-endian `float32`
//! or, with `quantization: {dtype: "uint8" | "uint16", scale, min}`, one integer per element
//! that tfjs decodes as `q * scale + min` in f64 (JS numbers) and stores into a `Float32Array`;
//! we do exactly that, so the weights are bit-identical to the ones face-api.js runs with.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::Deserialize;

use crate::error::{Error, Result};

/// The tensors of one TF.js model, by manifest name, all `f32` on the CPU and contiguous.
pub struct WeightMap {
    manifest: PathBuf,
    tensors: HashMap<String, Tensor>,
}

// Numbers arrive as strings (see `quote_numbers`) and are parsed by `parse_num`.
#[derive(Deserialize)]
struct Group {
    paths: Vec<String>,
    weights: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    shape: Vec<String>,
    dtype: String,
    quantization: Option<Quantization>,
}

#[derive(Deserialize)]
struct Quantization {
    dtype: String,
    scale: Option<String>,
    min: Option<String>,
}

/// How one tensor is stored in the shard bytes.
enum Storage {
    F32,
    /// `q * scale + min`, with `q` of `bytes` (1 or 2) little-endian bytes.
    Quantized {
        bytes: usize,
        scale: f64,
        min: f64,
    },
}

impl Storage {
    fn bytes_per_element(&self) -> usize {
        match self {
            Storage::F32 => 4,
            Storage::Quantized { bytes, .. } => *bytes,
        }
    }
}

impl WeightMap {
    /// Loads `<dir>/<model>-weights_manifest.json` and its shards, e.g.
    /// `WeightMap::load_model("weights/face-api/model", "face_landmark_68_model")`.
    pub fn load_model(dir: impl AsRef<Path>, model: &str) -> Result<Self> {
        Self::load(dir.as_ref().join(format!("{model}-weights_manifest.json")))
    }

    /// Loads a weights manifest and the shards it names (relative to the manifest's folder).
    pub fn load(manifest: impl AsRef<Path>) -> Result<Self> {
        let manifest = manifest.as_ref();
        let text = std::fs::read_to_string(manifest).map_err(|e| Error::io(manifest, e))?;
        let groups: Vec<Group> = serde_json::from_str(&quote_numbers(&text))
            .map_err(|e| Error::format(manifest, format!("not a TF.js weights manifest: {e}")))?;
        groups.iter().try_for_each(|g| no_control_characters(manifest, g))?;
        let dir = manifest.parent().unwrap_or(Path::new("."));
        let mut tensors = HashMap::new();
        for group in &groups {
            // Sizes first: the shards must hold exactly what the manifest declares before
            // anything is read or allocated.
            let plan = plan_group(manifest, group)?;
            let shards = shard_files(manifest, dir, &group.paths)?;
            check_size(manifest, group, &plan, shards.iter().map(|(_, len)| len).sum())?;
            let data = read_shards(&shards, plan.total)?;
            decode_group(manifest, plan, &data, &mut tensors)?;
        }
        Ok(WeightMap { manifest: manifest.to_path_buf(), tensors })
    }

    /// The manifest these weights came from (for error messages).
    pub fn path(&self) -> &Path {
        &self.manifest
    }

    /// Every tensor name, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The tensor `name`, which must have exactly `shape` (the TF.js layout: HWIO filters,
    /// `[in, out]` fully connected weights).
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| Error::checkpoint(&self.manifest, format!("tensor `{name}` not found in the manifest")))?;
        if t.dims() != shape {
            return Err(Error::checkpoint(
                &self.manifest,
                format!("tensor `{name}` has shape {:?}, expected {shape:?}", t.dims()),
            ));
        }
        Ok(t.clone())
    }

    /// Like [`WeightMap::get`], as a flat `Vec<f32>` (for the hand-written kernels).
    pub fn get_vec(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        Ok(self.get(name, shape)?.flatten_all()?.to_vec1::<f32>()?)
    }
}

/// A group's shard files (inside the manifest's folder) with their sizes.
/// No string of the manifest has control characters: none is valid in a name, path, dtype or
/// number, and the errors below quote them (an error is one line).
fn no_control_characters(manifest: &Path, group: &Group) -> Result<()> {
    let mut texts: Vec<&String> = group.paths.iter().collect();
    for w in &group.weights {
        texts.extend([&w.name, &w.dtype]);
        texts.extend(&w.shape);
        if let Some(q) = &w.quantization {
            texts.extend([Some(&q.dtype), q.scale.as_ref(), q.min.as_ref()].into_iter().flatten());
        }
    }
    match texts.into_iter().find(|t| t.chars().any(char::is_control)) {
        Some(t) => Err(Error::format(manifest, format!("control character in the manifest string {t:?}"))),
        None => Ok(()),
    }
}

fn shard_files(manifest: &Path, dir: &Path, paths: &[String]) -> Result<Vec<(PathBuf, u64)>> {
    paths
        .iter()
        .map(|p| {
            // tfjs resolves shard paths as URLs relative to the manifest; stay inside its folder.
            let rel = Path::new(p);
            if p.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
                return Err(Error::format(manifest, format!("shard path `{p}` is not a plain relative path")));
            }
            let path = dir.join(rel);
            let len = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
            Ok((path, len))
        })
        .collect()
}

/// Concatenates a group's shard files, whose sizes add up to `total` (checked by [`check_size`]).
fn read_shards(shards: &[(PathBuf, u64)], total: usize) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    data.try_reserve_exact(total).map_err(|_| Error::Input(format!("cannot allocate {total} bytes of weights")))?;
    for (path, _) in shards {
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        std::io::Read::read_to_end(&mut file, &mut data).map_err(|e| Error::io(path, e))?;
    }
    Ok(data)
}

/// One tensor of a group: where it is in the shard bytes and how it is stored.
struct Planned<'a> {
    entry: &'a Entry,
    shape: Vec<usize>,
    storage: Storage,
    size: usize,
}

/// A group's tensors in manifest order, with the bytes they need together.
struct Plan<'a> {
    tensors: Vec<Planned<'a>>,
    total: usize,
}

/// Describes every tensor of a group from the manifest alone, with overflow-checked sizes.
fn plan_group<'a>(manifest: &Path, group: &'a Group) -> Result<Plan<'a>> {
    let mut tensors = Vec::with_capacity(group.weights.len());
    let mut total: usize = 0;
    for w in &group.weights {
        let bad = |msg: String| Error::format(manifest, format!("tensor `{}`: {msg}", w.name));
        let shape = w
            .shape
            .iter()
            .map(|d| d.parse::<usize>().map_err(|_| bad(format!("bad dimension `{d}` in shape"))))
            .collect::<Result<Vec<_>>>()?;
        let count =
            shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| bad("shape too large".into()))?;
        let storage = storage(w).map_err(bad)?;
        let size = count.checked_mul(storage.bytes_per_element()).ok_or_else(|| bad("shape too large".into()))?;
        total = total.checked_add(size).ok_or_else(|| bad("shape too large".into()))?;
        tensors.push(Planned { entry: w, shape, storage, size });
    }
    Ok(Plan { tensors, total })
}

/// The shards must hold exactly the bytes the manifest's tensors need: a truncated or
/// mismatched shard is reported with both sizes.
fn check_size(manifest: &Path, group: &Group, plan: &Plan, have: u64) -> Result<()> {
    let total = plan.total as u64;
    if have == total {
        return Ok(());
    }
    let what = if have < total { "truncated" } else { "has unexpected trailing bytes" };
    Err(Error::format(
        manifest,
        format!(
            "shard {} {what}: {have} bytes, the manifest's {} tensors need {total}",
            group.paths.join(" + "),
            group.weights.len()
        ),
    ))
}

fn decode_group(manifest: &Path, plan: Plan, data: &[u8], out: &mut HashMap<String, Tensor>) -> Result<()> {
    if data.len() != plan.total {
        return Err(Error::format(manifest, "a shard changed size while being read"));
    }
    let mut offset = 0;
    for Planned { entry: w, shape, storage, size } in plan.tensors {
        let bytes = &data[offset..offset + size];
        offset += size;
        let values: Vec<f32> = match storage {
            Storage::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            // f64 arithmetic, then one rounding to f32: what tfjs' decodeWeights does.
            Storage::Quantized { bytes: 1, scale, min } => {
                bytes.iter().map(|&q| (q as f64 * scale + min) as f32).collect()
            }
            Storage::Quantized { scale, min, .. } => {
                bytes.chunks_exact(2).map(|b| (u16::from_le_bytes([b[0], b[1]]) as f64 * scale + min) as f32).collect()
            }
        };
        let t = Tensor::from_vec(values, shape, &Device::Cpu)?;
        if out.insert(w.name.clone(), t).is_some() {
            return Err(Error::format(manifest, format!("tensor `{}` appears twice", w.name)));
        }
    }
    Ok(())
}

fn storage(w: &Entry) -> std::result::Result<Storage, String> {
    // Only float32 tensors make sense for these nets (int32/bool weights do occur in other
    // TF.js models; they would need another tensor dtype here).
    if w.dtype != "float32" {
        return Err(format!("unsupported dtype `{}` (only float32 is read)", w.dtype));
    }
    let Some(q) = &w.quantization else { return Ok(Storage::F32) };
    let bytes = match q.dtype.as_str() {
        "uint8" => 1,
        "uint16" => 2,
        other => return Err(format!("unsupported quantization dtype `{other}` (uint8 and uint16 are read)")),
    };
    let num = |v: &Option<String>, key: &str| -> std::result::Result<f64, String> {
        let s = v.as_deref().ok_or_else(|| format!("quantization without `{key}`"))?;
        parse_num(s).ok_or_else(|| format!("bad quantization {key} `{s}`"))
    };
    Ok(Storage::Quantized { bytes, scale: num(&q.scale, "scale")?, min: num(&q.min, "min")? })
}

/// Correctly rounded f64 parsing (`str::parse`), finite values only.
fn parse_num(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Wraps every JSON number literal of `text` in quotes, leaving strings untouched.
///
/// Why: serde_json (without its `float_roundtrip` feature, which this crate does not enable)
/// parses floats with a fast algorithm that is not always correctly rounded: on the landmark,
/// expression and recognition manifests 42 tensors get a `scale` or `min` one ulp off, which
/// changes ~117,000 dequantized f32 weights by one ulp. Taking the literal text and parsing it
/// with `str::parse::<f64>` (correctly rounded, like JavaScript's `JSON.parse`) keeps all the
/// weights bit-identical to tfjs' (checked against `tf.io.decodeWeights` on those three models).
fn quote_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => {
                    if let Some(e) = chars.next() {
                        out.push(e);
                    }
                }
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == '-' || c.is_ascii_digit() {
            out.push('"');
            out.push(c);
            while let Some(&n) = chars.peek() {
                if n.is_ascii_digit() || matches!(n, '.' | 'e' | 'E' | '+' | '-') {
                    out.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push('"');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, manifest: &str, shard: &[u8]) -> PathBuf {
        std::fs::write(dir.join("m.bin"), shard).unwrap();
        let path = dir.join("m-weights_manifest.json");
        std::fs::write(&path, manifest).unwrap();
        path
    }

    const MANIFEST: &str = r#"[{"paths": ["m.bin"], "weights": [
        {"name": "a/q", "shape": [2, 2], "dtype": "float32",
         "quantization": {"dtype": "uint8", "scale": 0.004853619781194949, "min": -0.5872879935245888}},
        {"name": "b\"x", "shape": [2], "dtype": "float32"}
    ]}]"#;

    fn shard() -> Vec<u8> {
        let mut s = vec![0u8, 1, 128, 255];
        s.extend_from_slice(&1.5f32.to_le_bytes());
        s.extend_from_slice(&(-2.25f32).to_le_bytes());
        s
    }

    #[test]
    fn decodes_quantized_and_float_tensors_in_manifest_order() {
        let dir = tempfile::tempdir().unwrap();
        let m = WeightMap::load(write(dir.path(), MANIFEST, &shard())).unwrap();
        assert_eq!(m.len(), 2);
        let (scale, min) = (0.004853619781194949f64, -0.5872879935245888f64);
        let want: Vec<f32> = [0u8, 1, 128, 255].iter().map(|&q| (q as f64 * scale + min) as f32).collect();
        assert_eq!(m.get_vec("a/q", &[2, 2]).unwrap(), want);
        assert_eq!(m.get_vec("b\"x", &[2]).unwrap(), vec![1.5, -2.25]);
    }

    #[test]
    fn truncated_shard_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = shard();
        let err = WeightMap::load(write(dir.path(), MANIFEST, &s[..s.len() - 3])).err().unwrap();
        let msg = err.to_string();
        assert!(matches!(err, Error::Format { .. }), "{msg}");
        assert!(msg.contains("m.bin truncated: 9 bytes") && msg.contains("need 12"), "{msg}");
    }

    #[test]
    fn trailing_bytes_missing_files_and_bad_dtypes_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = shard();
        s.push(0);
        let msg = WeightMap::load(write(dir.path(), MANIFEST, &s)).err().unwrap().to_string();
        assert!(msg.contains("trailing bytes"), "{msg}");

        let err = WeightMap::load(dir.path().join("absent.json")).err().unwrap();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        let path = write(dir.path(), MANIFEST, &shard());
        std::fs::remove_file(dir.path().join("m.bin")).unwrap();
        let err = WeightMap::load(&path).err().unwrap();
        assert!(matches!(err, Error::Io { .. }) && err.to_string().contains("m.bin"), "{err}");

        let f16 = MANIFEST.replace(r#""dtype": "uint8""#, r#""dtype": "float16""#);
        let msg = WeightMap::load(write(dir.path(), &f16, &shard())).err().unwrap().to_string();
        assert!(msg.contains("tensor `a/q`: unsupported quantization dtype `float16`"), "{msg}");
        let i32s = MANIFEST.replace(r#""shape": [2], "dtype": "float32""#, r#""shape": [2], "dtype": "int32""#);
        let msg = WeightMap::load(write(dir.path(), &i32s, &shard())).err().unwrap().to_string();
        assert!(msg.contains("unsupported dtype `int32`"), "{msg}");

        let msg = WeightMap::load(write(dir.path(), "{\"not\": 1}", &shard())).err().unwrap().to_string();
        assert!(msg.contains("not a TF.js weights manifest"), "{msg}");
        let escape = MANIFEST.replace("\"m.bin\"", "\"../m.bin\"");
        let msg = WeightMap::load(write(dir.path(), &escape, &shard())).err().unwrap().to_string();
        assert!(msg.contains("not a plain relative path"), "{msg}");
    }

    #[test]
    fn missing_names_and_wrong_shapes_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let m = WeightMap::load(write(dir.path(), MANIFEST, &shard())).unwrap();
        let err = m.get("fc/weights", &[256, 7]).err().unwrap();
        assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
        assert!(err.to_string().contains("tensor `fc/weights` not found"), "{err}");
        let msg = m.get("a/q", &[4]).err().unwrap().to_string();
        assert!(msg.contains("tensor `a/q` has shape [2, 2], expected [4]"), "{msg}");
    }

    #[test]
    fn numbers_are_quoted_outside_strings_only() {
        let q = quote_numbers(r#"{"a-1": [1, -2.5e-3, 3E+2], "s": "x\"9\\", "t": true, "n": null}"#);
        assert_eq!(q, r#"{"a-1": ["1", "-2.5e-3", "3E+2"], "s": "x\"9\\", "t": true, "n": null}"#);
    }
}
