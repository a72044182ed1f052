//! The network ready to run: a checkpoint loaded onto a device, with input checks and noise.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::error::{Error, Result};
use crate::model::{Config, Forward, GfpGanV1Clean};
use crate::noise::{NoiseMode, random_noises};
use crate::weights::Checkpoint;

pub struct Restorer {
    model: GfpGanV1Clean,
    device: Device,
    dtype: DType,
}

impl Restorer {
    /// Loads and checks a `.pth` or `.safetensors` checkpoint onto `device` in `dtype`.
    pub fn load(path: &Path, device: &Device, dtype: DType) -> Result<Self> {
        let checkpoint = Checkpoint::load(path)?;
        Self::from_checkpoint(&checkpoint, device, dtype)
    }

    pub fn from_checkpoint(checkpoint: &Checkpoint, device: &Device, dtype: DType) -> Result<Self> {
        let tensors = checkpoint.tensors_on(device, dtype)?;
        let vb = VarBuilder::from_tensors(tensors, dtype, device);
        let model = GfpGanV1Clean::new(vb, &checkpoint.config)?;
        Ok(Self { model, device: device.clone(), dtype })
    }

    pub fn config(&self) -> &Config {
        self.model.config()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Checks that `x` is `(n, 3, size, size)` for this model's size.
    pub fn check_input(&self, dims: &[usize]) -> Result<()> {
        let s = self.config().out_size;
        match dims {
            [n, 3, h, w] if *n > 0 && *h == s && *w == s => Ok(()),
            _ => Err(Error::Input(format!("faces must have shape (N, 3, {s}, {s}) with N >= 1, got {dims:?}"))),
        }
    }

    /// Runs the network on a batch of faces (any dtype/device; converted here) and returns every
    /// intermediate the parity tests check, in the model's dtype on its device.
    pub fn forward_detailed(&self, x: &Tensor, noise: NoiseMode) -> Result<Forward> {
        self.check_input(x.dims())?;
        let x = x.to_device(&self.device)?.to_dtype(self.dtype)?;
        let noises = match noise {
            NoiseMode::Stored => self.model.decoder().stored_noises().to_vec(),
            NoiseMode::Random { seed } => random_noises(self.config(), x.dim(0)?, seed, &self.device, self.dtype)?,
        };
        Ok(self.model.forward_detailed(&x, &noises)?)
    }

    /// Restored faces as `f32` on the CPU, `(n, 3, size, size)`, RGB in about [-1, 1].
    pub fn restore(&self, x: &Tensor, noise: NoiseMode) -> Result<Tensor> {
        Ok(self.forward_detailed(x, noise)?.image.to_dtype(DType::F32)?.to_device(&Device::Cpu)?)
    }
}
