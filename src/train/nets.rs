//! Trainable parameters: each network's tensors held as candle `Var`s in a `VarMap`, under the
//! official state-dict names, so that the very structs used for inference (built through a
//! `VarBuilder` on the map) train, and a saved map is an official checkpoint.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{Error, Result, first_line};

/// A network's parameters and the device and dtype they live in.
pub struct Params {
    pub map: VarMap,
    pub device: Device,
    pub dtype: DType,
}

impl Params {
    /// Parameters holding copies of `tensors`.
    pub fn from_tensors(tensors: &HashMap<String, Tensor>, device: &Device, dtype: DType) -> Result<Self> {
        let map = VarMap::new();
        {
            let mut data = map.data().lock().expect("VarMap lock");
            for (name, t) in tensors {
                let t = t.to_dtype(dtype)?.to_device(device)?.contiguous()?;
                data.insert(name.clone(), Var::from_tensor(&t)?);
            }
        }
        Ok(Self { map, device: device.clone(), dtype })
    }

    /// Empty parameters: the network built on [`Params::builder`] creates them, then
    /// [`Params::init_stylegan`] gives them the official initial values.
    pub fn empty(device: &Device, dtype: DType) -> Self {
        Self { map: VarMap::new(), device: device.clone(), dtype }
    }

    pub fn builder(&self) -> VarBuilder<'_> {
        VarBuilder::from_varmap(&self.map, self.dtype, &self.device)
    }

    /// StyleGAN2-style initial values (BasicSR's `EqualConv2d`/`EqualLinear` draw standard
    /// normal weights and scale them at run time; biases start at zero), drawn in name order
    /// from `seed`.
    pub fn init_stylegan(&self, seed: u64) -> Result<()> {
        let mut rng = StdRng::seed_from_u64(seed);
        for (_, var) in self.named(|_| true) {
            let n = var.elem_count();
            let values: Vec<f32> =
                if var.rank() >= 2 { (0..n).map(|_| StandardNormal.sample(&mut rng)).collect() } else { vec![0.0; n] };
            let t =
                Tensor::from_vec(values, var.shape(), &Device::Cpu)?.to_dtype(self.dtype)?.to_device(&self.device)?;
            var.set(&t)?;
        }
        Ok(())
    }

    /// The parameters whose names pass `keep`, sorted by name (a stable order for optimiser
    /// state and seeded initialisation).
    pub fn named(&self, keep: impl Fn(&str) -> bool) -> Vec<(String, Var)> {
        let data = self.map.data().lock().expect("VarMap lock");
        let mut vars: Vec<(String, Var)> =
            data.iter().filter(|(k, _)| keep(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    pub fn by_name(&self) -> HashMap<String, Var> {
        self.named(|_| true).into_iter().collect()
    }

    /// Copies of the values as `f32` on the CPU, for saving.
    pub fn tensors(&self) -> Result<HashMap<String, Tensor>> {
        self.named(|_| true)
            .into_iter()
            .map(|(k, v)| Ok((k, v.as_tensor().detach().to_dtype(DType::F32)?.to_device(&Device::Cpu)?)))
            .collect()
    }

    /// Sets every parameter from `tensors` (same names and shapes; extra tensors are an error,
    /// missing ones too: a checkpoint of another network must not half-load).
    pub fn load(&self, tensors: &HashMap<String, Tensor>, source: &Path) -> Result<()> {
        let vars = self.by_name();
        let mut missing: Vec<&String> = vars.keys().filter(|k| !tensors.contains_key(*k)).collect();
        let mut extra: Vec<&String> = tensors.keys().filter(|k| !vars.contains_key(*k)).collect();
        missing.sort();
        extra.sort();
        if let Some(k) = missing.first() {
            return Err(Error::checkpoint(source, format!("missing tensor `{k}` ({} missing)", missing.len())));
        }
        if let Some(k) = extra.first() {
            return Err(Error::checkpoint(source, format!("unexpected tensor `{k}` ({} unexpected)", extra.len())));
        }
        for (name, var) in &vars {
            let t = &tensors[name];
            if t.dims() != var.dims() {
                return Err(Error::checkpoint(
                    source,
                    format!("tensor `{name}` has shape {:?}, the network needs {:?}", t.dims(), var.dims()),
                ));
            }
            var.set(&t.to_dtype(self.dtype)?.to_device(&self.device)?)?;
        }
        Ok(())
    }

    /// Writes the parameters as `.safetensors` (f32, official names).
    pub fn save(&self, path: &Path) -> Result<()> {
        save_tensors(&self.tensors()?, path)
    }
}

/// Writes tensors as `.safetensors` through a temporary file, so that an interrupted save never
/// leaves a truncated checkpoint under the final name.
pub fn save_tensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let tmp = path.with_extension("safetensors.partial");
    candle_core::safetensors::save(tensors, &tmp)
        .map_err(|e| Error::format(&tmp, format!("cannot write: {}", first_line(&e))))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
