//! Reading GFPGANv1Clean checkpoints: the official `.pth` files (PyTorch zip format, state dict
//! under `params_ema`, else `params`, else at the top level) and `.safetensors`; checking them
//! against the full expected tensor set; writing `.safetensors`.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::Path;

use candle_core::pickle::{Object, Stack};
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

/// Reads every tensor of a weights file onto the CPU, without interpreting names.
pub fn read_tensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    match sniff(path)? {
        Kind::SafeTensors => candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| Error::format(path, format!("invalid safetensors file: {}", first_line(&e)))),
        Kind::TorchZip => read_torch_zip(path),
        Kind::TorchLegacy => Err(Error::format(
            path,
            "PyTorch legacy (pre-1.6, non-zip) checkpoint; re-save it in the zip format with \
             `python -c \"import torch,sys; torch.save(torch.load(sys.argv[1], map_location='cpu'), sys.argv[2])\" IN.pth OUT.pth` \
             and load OUT.pth",
        )),
    }
}

fn read_torch_zip(path: &Path) -> Result<HashMap<String, Tensor>> {
    let bad = |msg: String| Error::format(path, format!("invalid PyTorch checkpoint: {msg}"));
    let open = || -> Result<zip::ZipArchive<BufReader<std::fs::File>>> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        zip::ZipArchive::new(BufReader::new(file)).map_err(|e| bad(format!("{e} (truncated download?)")))
    };
    let mut zip = open()?;
    let pkl_name = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .find(|n| n.ends_with("/data.pkl") || n == "data.pkl")
        .ok_or_else(|| bad("no data.pkl inside the archive".into()))?;
    let dir = Path::new(pkl_name.strip_suffix(".pkl").unwrap_or(&pkl_name)).to_path_buf();
    let object = {
        let entry = zip.by_name(&pkl_name).map_err(|e| bad(e.to_string()))?;
        let mut reader = BufReader::new(entry);
        let mut stack = Stack::empty();
        stack.read_loop(&mut reader).map_err(|e| bad(format!("unreadable pickle: {}", first_line(&e))))?;
        stack.finalize().map_err(|e| bad(format!("unreadable pickle: {}", first_line(&e))))?
    };
    let entries = state_dict_entries(object).ok_or_else(|| bad("the pickle holds no dictionary of tensors".into()))?;

    let mut tensors = HashMap::new();
    for (name, value) in entries {
        let info = match value.into_tensor_info(name, &dir) {
            Ok(Some(info)) => info,
            // Non-tensor entries (e.g. an iteration counter) are not part of the network.
            Ok(None) => continue,
            Err(e) => return Err(bad(format!("unreadable tensor record: {}", first_line(&e)))),
        };
        let layout = &info.layout;
        if !layout.is_contiguous() {
            return Err(bad(format!("tensor `{}` is stored non-contiguous", info.name)));
        }
        let mut entry = zip.by_name(&info.path).map_err(|e| bad(format!("tensor `{}`: {e}", info.name)))?;
        // Reading the whole entry to its end makes the zip reader verify its CRC, which catches
        // corrupted downloads whose archive structure survived.
        let mut storage = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut storage).map_err(|e| bad(format!("tensor `{}`: {e}", info.name)))?;
        let elem = info.dtype.size_in_bytes();
        let (start, len) = (layout.start_offset() * elem, layout.shape().elem_count() * elem);
        let bytes = storage.get(start..start + len).ok_or_else(|| {
            bad(format!("tensor `{}` needs {} bytes, its storage has {}", info.name, start + len, storage.len()))
        })?;
        let tensor = Tensor::from_raw_buffer(bytes, info.dtype, layout.dims(), &Device::Cpu)?;
        tensors.insert(info.name, tensor);
    }
    Ok(tensors)
}

/// Finds the state dict: under `params_ema` or `params` when the top level is a BasicSR wrapper,
/// else the top-level dictionary itself.
fn state_dict_entries(object: Object) -> Option<Vec<(Object, Object)>> {
    let top = as_dict(object)?;
    for key in STATE_DICT_KEYS {
        if let Some((_, v)) = top.iter().find(|(k, _)| *k == Object::Unicode(key.to_string())) {
            return as_dict(v.clone());
        }
    }
    Some(top)
}

/// A dict, or an `OrderedDict` rebuilt by `Reduce`/`Build` opcodes.
fn as_dict(object: Object) -> Option<Vec<(Object, Object)>> {
    match object {
        Object::Dict(kv) => Some(kv),
        Object::Build { callable, args } => as_dict(*args).or_else(|| as_dict(*callable)),
        Object::Reduce { args, .. } => match *args {
            Object::Tuple(items) => items.into_iter().find_map(as_dict),
            other => as_dict(other),
        },
        _ => None,
    }
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
        let config = Config::infer(&shapes).map_err(not_gfpgan)?;
        config.check_shapes(&shapes).map_err(|m| Error::checkpoint(path, m))?;
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
