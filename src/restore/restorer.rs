//! The network ready to run: a checkpoint loaded onto a device, with input checks and noise.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::noise::{NoiseMode, random_noises};
use crate::error::{Error, Result};
use crate::model::{Config, Forward, GfpGanV1Clean};
use crate::nhwc::{self, Act};
use crate::weights::Checkpoint;

/// Which implementation runs the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Engine {
    /// The NHWC engine on the CPU in f32, candle otherwise.
    #[default]
    Auto,
    /// candle's tensor operations (any device and dtype): the reference port.
    Candle,
    /// The NHWC CPU engine (`crate::nhwc`), f32 only.
    Nhwc,
}

enum Net {
    Candle(GfpGanV1Clean),
    Nhwc(nhwc::Network),
}

pub struct Restorer {
    net: Net,
    config: Config,
    /// The stored noise maps, `(1, 1, r, r)` each.
    stored_noises: Vec<Tensor>,
    device: Device,
    dtype: DType,
}

impl Restorer {
    /// Loads and checks a `.pth` or `.safetensors` checkpoint onto `device` in `dtype`.
    pub fn load(path: &Path, device: &Device, dtype: DType, engine: Engine) -> Result<Self> {
        Self::with_engine(&Checkpoint::load(path)?, device, dtype, engine)
    }

    pub fn with_engine(checkpoint: &Checkpoint, device: &Device, dtype: DType, engine: Engine) -> Result<Self> {
        let nhwc = match engine {
            Engine::Auto => device.is_cpu() && dtype == DType::F32,
            Engine::Candle => false,
            Engine::Nhwc if device.is_cpu() && dtype == DType::F32 => true,
            Engine::Nhwc => return Err(Error::Device("the NHWC engine runs on the CPU in f32 only".into())),
        };
        let config = checkpoint.config.clone();
        let tensors = checkpoint.tensors_on(device, dtype)?;
        let stored_noises =
            (0..config.num_noises()).map(|i| tensors[&format!("stylegan_decoder.noises.noise{i}")].clone()).collect();
        let vb = VarBuilder::from_tensors(tensors, dtype, device);
        let net = if nhwc {
            Net::Nhwc(nhwc::Network::new(vb, &config)?)
        } else {
            Net::Candle(GfpGanV1Clean::new(vb, &config)?)
        };
        Ok(Self { net, config, stored_noises, device: device.clone(), dtype })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn engine(&self) -> Engine {
        match self.net {
            Net::Candle(_) => Engine::Candle,
            Net::Nhwc(_) => Engine::Nhwc,
        }
    }

    /// Floating-point operations of the multiplications one face costs in the engine that
    /// runs (the direct convolutions' count for candle; Winograd's reduced one for the NHWC
    /// engine).
    pub fn executed_flops_per_face(&self) -> f64 {
        match &self.net {
            Net::Candle(_) => self.config.flops_per_face(),
            Net::Nhwc(net) => net.executed_flops_per_face(),
        }
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
        self.run(x, &self.noises(noise, x.dim(0)?)?, true)
    }

    fn noises(&self, noise: NoiseMode, batch: usize) -> Result<Vec<Tensor>> {
        Ok(match noise {
            NoiseMode::Stored => self.stored_noises.clone(),
            NoiseMode::Random { seed } => random_noises(self.config(), batch, seed, &self.device, self.dtype)?,
        })
    }

    /// One noise set per face, each drawn from its own seed (video: the same noise for a face
    /// in every frame it appears in), as `restore` takes them.
    pub fn noises_for_seeds(&self, seeds: &[u64]) -> Result<Vec<Tensor>> {
        self.noises_for_faces(&seeds.iter().copied().map(Some).collect::<Vec<_>>())
    }

    /// `noises_for_seeds` where a face may also take the stored maps (`None`): a pass can hold
    /// faces of a video track and faces sent to the server without a seed.
    pub fn noises_for_faces(&self, seeds: &[Option<u64>]) -> Result<Vec<Tensor>> {
        let per_face: Vec<Vec<Tensor>> = seeds
            .iter()
            .map(|&seed| self.noises(seed.map_or(NoiseMode::Stored, |seed| NoiseMode::Random { seed }), 1))
            .collect::<Result<_>>()?;
        (0..self.config.num_noises())
            .map(|i| Ok(Tensor::cat(&per_face.iter().map(|n| &n[i]).collect::<Vec<_>>(), 0)?))
            .collect()
    }

    /// `detailed`: also convert the NHWC engine's SFT conditions (hundreds of MB at 512).
    fn run(&self, x: &Tensor, noises: &[Tensor], detailed: bool) -> Result<Forward> {
        let x = x.to_device(&self.device)?.to_dtype(self.dtype)?;
        match &self.net {
            Net::Candle(model) => Ok(model.forward_detailed(&x, noises)?),
            Net::Nhwc(net) => {
                let noises = noises
                    .iter()
                    .map(|t| t.flatten_all()?.to_vec1::<f32>())
                    .collect::<candle_core::Result<Vec<_>>>()?;
                let out = net.forward(&Act::from_nchw(&x)?, &noises);
                let n = x.dim(0)?;
                let s = self.config.num_style_feat;
                let style_code = Tensor::from_vec(out.style_code, (n, self.config.style_code_len()), &Device::Cpu)?;
                let style_code = if self.config.different_w {
                    style_code.reshape((n, self.config.num_latent(), s))?
                } else {
                    style_code
                };
                Ok(Forward {
                    image: out.image.to_nchw()?,
                    style_code,
                    conditions: if detailed {
                        out.conditions.iter().map(Act::to_nchw).collect::<candle_core::Result<_>>()?
                    } else {
                        Vec::new()
                    },
                    rgbs: Vec::new(),
                })
            }
        }
    }

    /// Restored faces as `f32` on the CPU, `(n, 3, size, size)`, RGB in about [-1, 1].
    pub fn restore(&self, x: &Tensor, noise: NoiseMode) -> Result<Tensor> {
        self.check_input(x.dims())?;
        self.restore_with_noises(x, &self.noises(noise, x.dim(0)?)?)
    }

    /// `restore` with explicit noise maps: `(1, 1, r, r)` shared by the batch or `(n, 1, r, r)`
    /// one per face (see `noises_for_seeds`).
    pub fn restore_with_noises(&self, x: &Tensor, noises: &[Tensor]) -> Result<Tensor> {
        self.check_input(x.dims())?;
        if noises.len() != self.config.num_noises() {
            return Err(Error::Input(format!(
                "{} noise maps for a decoder of {}",
                noises.len(),
                self.config.num_noises()
            )));
        }
        Ok(self.run(x, noises, false)?.image.to_dtype(DType::F32)?.to_device(&Device::Cpu)?)
    }
}
