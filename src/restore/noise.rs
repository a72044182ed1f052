//! Noise for the decoder's noise-injection layers. The official inference draws fresh noise every
//! call; video needs the same input to give the same output, so the default is the checkpoint's
//! stored noise buffers, with seeded random noise on request.

use candle_core::{DType, Device, Result, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use crate::model::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoiseMode {
    /// The `stylegan_decoder.noises.noise*` buffers of the checkpoint, shared by every face.
    #[default]
    Stored,
    /// Fresh standard-normal noise per face, reproducible from the seed.
    Random { seed: u64 },
}

/// Draws one `(batch, 1, r, r)` map per decoder layer from a seeded generator. Drawn on the CPU
/// so that a seed gives the same noise on every device.
pub fn random_noises(cfg: &Config, batch: usize, seed: u64, device: &Device, dtype: DType) -> Result<Vec<Tensor>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..cfg.num_noises())
        .map(|i| {
            let r = Config::noise_size(i);
            let data: Vec<f32> = (0..batch * r * r).map(|_| StandardNormal.sample(&mut rng)).collect();
            Tensor::from_vec(data, (batch, 1, r, r), &Device::Cpu)?.to_dtype(dtype)?.to_device(device)
        })
        .collect()
}
