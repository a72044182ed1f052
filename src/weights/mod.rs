//! Reading GFPGANv1Clean checkpoints: the official `.pth` files (PyTorch zip format, state dict
//! under `params_ema`, else `params`, else at the top level) and `.safetensors`; checking them
//! against the full expected tensor set; writing `.safetensors`.
//!
//! Files are untrusted input: `torch_zip` reads PyTorch archives with our own bounded pickle
//! reader (`pickle`) and checks every tensor view against its storage (`view`) before reading;
//! safetensors headers are checked by the `safetensors` crate after a size check here. Every
//! failure is one line naming the file.

mod pickle;
pub(crate) mod torch_zip;
mod view;

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result, first_line};
use crate::model::config::{Config, ShapeMap};

/// Keys under which BasicSR-trained checkpoints store the state dict, in order of preference.
const STATE_DICT_KEYS: [&str; 2] = ["params_ema", "params"];

/// A checkpoint's tensors (on the CPU, in their stored dtype) and the configuration they imply.
pub struct Checkpoint {
    pub config: Config,
    pub tensors: HashMap<String, Tensor>,
}

enum Kind {
    TorchZip,
    TorchLegacy,
    SafeTensors,
}

fn sniff(path: &Path) -> Result<Kind> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::format(path, "is a directory, not a weights file"));
    }
    if meta.len() == 0 {
        return Err(Error::format(path, "file is empty"));
    }
    let mut head = [0u8; 9];
    let n = std::fs::File::open(path)
        .and_then(|mut f| {
            let mut n = 0;
            while n < head.len() {
                match f.read(&mut head[n..])? {
                    0 => break,
                    k => n += k,
                }
            }
            Ok(n)
        })
        .map_err(|e| Error::io(path, e))?;
    let head = &head[..n];
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(Kind::TorchZip);
    }
    // torch.save(..., _use_new_zipfile_serialization=False): a pickled magic number first.
    if head.starts_with(&[0x80, 0x02, 0x8a, 0x0a]) {
        return Ok(Kind::TorchLegacy);
    }
    // safetensors: an 8-byte little-endian header length, then a JSON object.
    if n == 9 && head[8] == b'{' {
        return Ok(Kind::SafeTensors);
    }
    Err(Error::format(
        path,
        "not a PyTorch checkpoint or a safetensors file (unrecognised leading bytes; truncated or corrupt download?)",
    ))
}

/// `msg` with control characters escaped (`\n`, `\u{1b}`), printable text as it is.
fn escape_controls(msg: &str) -> String {
    msg.chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect()
}

/// Reads every tensor of a weights file onto the CPU, without interpreting names.
pub fn read_tensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    match sniff(path)? {
        Kind::SafeTensors => read_safetensors(path),
        Kind::TorchZip => torch_zip::read(path),
        Kind::TorchLegacy => Err(Error::format(
            path,
            "PyTorch legacy (pre-1.6, non-zip) checkpoint; re-save it in the zip format with \
             `python -c \"import torch,sys; torch.save(torch.load(sys.argv[1], map_location='cpu'), sys.argv[2])\" IN.pth OUT.pth` \
             and load OUT.pth",
        )),
    }
}

/// Reads a `.safetensors` file. The `safetensors` crate checks the header (JSON, offsets inside
/// the data, contiguous and not overlapping, sizes matching shapes); the header length is
/// checked against the file here first, for a message with both sizes.
fn read_safetensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    let bad = |msg: String| Error::format(path, format!("invalid safetensors file: {msg}"));
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut head = [0u8; 8];
    file.read_exact(&mut head).map_err(|e| bad(e.to_string()))?;
    let header_len = u64::from_le_bytes(head);
    if header_len > file_len.saturating_sub(8) {
        return Err(bad(format!("header claims {header_len} bytes, the file has {file_len}")));
    }
    drop(file);
    candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| bad(first_line(&e)))
}

impl Checkpoint {
    /// Reads a weights file, infers its configuration and checks the complete tensor set.
    pub fn load(path: &Path) -> Result<Self> {
        let tensors = read_tensors(path)?;
        let shapes: ShapeMap = tensors.iter().map(|(k, t)| (k.clone(), t.dims().to_vec())).collect();
        let not_gfpgan = |msg: String| {
            let sample: Vec<&String> = shapes.keys().take(2).collect();
            Error::checkpoint(
                path,
                format!(
                    "not a GFPGANv1Clean checkpoint: {msg} (the file has {} tensors, e.g. {sample:?})",
                    shapes.len()
                ),
            )
        };
        // Tensor names come from the file and may hold control characters (a newline would break
        // the one-line error): escaped.
        let config = Config::infer(&shapes).map_err(|m| not_gfpgan(escape_controls(&m)))?;
        config.check_shapes(&shapes).map_err(|m| Error::checkpoint(path, escape_controls(&m)))?;
        for (name, t) in &tensors {
            if !t.dtype().is_float() {
                return Err(Error::checkpoint(
                    path,
                    format!("tensor `{name}` has dtype {:?}, expected a float", t.dtype()),
                ));
            }
        }
        Ok(Self { config, tensors })
    }

    /// The tensors converted to `dtype` and moved to `device`, contiguous (candle convolutions
    /// need contiguous kernels).
    pub fn tensors_on(&self, device: &Device, dtype: DType) -> Result<HashMap<String, Tensor>> {
        self.tensors.iter().map(|(k, t)| Ok((k.clone(), t.to_dtype(dtype)?.to_device(device)?.contiguous()?))).collect()
    }

    /// A checkpoint of `config` with random weights of sensible magnitude: for benchmarks (speed
    /// does not depend on the values) and for demos on machines without the released files.
    pub fn random(config: &Config, seed: u64) -> Result<Self> {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        config.validate().map_err(|m| Error::Input(format!("invalid configuration: {m}")))?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut tensors = HashMap::new();
        for (name, shape) in config.expected_shapes() {
            let n: usize = shape.iter().product();
            // fan-in: every dimension but the output one (the leading 1 of modulated weights aside).
            let dims: &[usize] = if shape.len() == 5 { &shape[1..] } else { &shape };
            let fan_in: usize = dims.iter().skip(1).product::<usize>().max(1);
            let (mean, std) = if name.contains(".noises.") {
                (0.0, 1.0)
            } else if name.ends_with("modulation.bias") {
                (1.0, 0.1)
            } else if name.ends_with(".bias") || shape == [1] {
                (0.0, 0.05)
            } else {
                (0.0, 1.0 / (fan_in as f64).sqrt())
            };
            let normal = Normal::new(mean as f32, std as f32).expect("finite std");
            let data: Vec<f32> = (0..n).map(|_| normal.sample(&mut rng)).collect();
            tensors.insert(name, Tensor::from_vec(data, shape, &Device::Cpu)?);
        }
        Ok(Self { config: config.clone(), tensors })
    }

    /// Writes the checkpoint as `.safetensors` in `dtype`.
    pub fn save_safetensors(&self, path: &Path, dtype: DType) -> Result<()> {
        let tensors = self.tensors_on(&Device::Cpu, dtype)?;
        candle_core::safetensors::save(&tensors, path)
            .map_err(|e| Error::format(path, format!("cannot write: {}", first_line(&e))))
    }
}
