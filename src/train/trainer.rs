//! The trainer: the generator, its moving average, the discriminators, their optimisers, and one
//! iteration of training (`gfpgan_model.py`'s `optimize_parameters`: generator step with the
//! discriminators fixed, whole-face discriminator step with lazy R1, component discriminator
//! steps, moving average). Its whole state saves to files and restores for `--resume`, and a
//! resumed run continues exactly as an uninterrupted one (every iteration's data and noise are
//! drawn from the seed and the iteration number alone).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::config::TrainConfig;
use super::data::FaceDataset;
use super::discriminator::{DiscriminatorConfig, FacialComponentDiscriminator, StyleGan2Discriminator};
use super::identity::IdentityLoss;
use super::nets::Params;
use super::optim::{Adam, AdamParams, ema_update, multi_step_lr};
use super::perceptual::PerceptualLoss;
use super::step::{Batch, COMPONENTS, Nets, Weights, total};
use crate::error::{Error, Result};
use crate::model::Config;
use crate::model::gfpgan::GfpGanV1Clean;
use crate::restore::batch::faces_to_tensor;
use crate::restore::noise::random_noises;
use crate::synth::degrade::DegradeOptions;
use crate::weights::Checkpoint;

/// A network and its parameters.
pub struct Trained<N> {
    pub params: Params,
    pub net: N,
}

/// The losses of one iteration (weighted, as summed), and data problems met on the way.
#[derive(Debug, Clone, Default)]
pub struct StepReport {
    pub iteration: u64,
    pub losses: Vec<(String, f64)>,
    /// Faces that could not be used (unreadable, wrong size) and were replaced by others.
    pub skipped: Vec<String>,
}

pub struct Trainer {
    pub cfg: TrainConfig,
    pub g: Trained<GfpGanV1Clean>,
    pub g_ema: Trained<GfpGanV1Clean>,
    pub d: Option<Trained<StyleGan2Discriminator>>,
    pub components: Option<[Trained<FacialComponentDiscriminator>; 3]>,
    identity: Option<IdentityLoss>,
    perceptual: Option<PerceptualLoss>,
    opt_g: Adam,
    opt_d: Option<Adam>,
    opt_components: Vec<Adam>,
    data: FaceDataset,
    degrade: DegradeOptions,
    /// The last finished iteration (0 before the first).
    pub iteration: u64,
}

/// Generator tensors that are not trained: the decoder's stored noise (buffers in PyTorch) and,
/// with `fix_decoder`, the whole decoder.
fn trains_generator_tensor(name: &str, fix_decoder: bool) -> bool {
    !(name.contains(".noises.") || (fix_decoder && name.starts_with("stylegan_decoder.")))
}

fn adam(vars: Vec<(String, candle_core::Var)>, lr: f64, betas: [f64; 2]) -> Adam {
    Adam::new(vars, AdamParams { lr, beta1: betas[0], beta2: betas[1], eps: 1e-8 })
}

impl Trainer {
    /// Builds every network: the generator from `network_g.pretrain` or from scratch (seeded),
    /// the discriminators fresh (or from `network_d.pretrain_dir`).
    pub fn new(cfg: TrainConfig, device: &Device) -> Result<Self> {
        let dtype = DType::F32;
        let data = FaceDataset::open(&cfg.data.train)?.with_pair_color_jitter(cfg.data.pair_color_jitter);
        let start = match &cfg.network_g.pretrain {
            Some(path) => Checkpoint::load(path)?,
            None => {
                let gcfg = cfg.network_g.config(None).map_err(Error::Input)?;
                Checkpoint::random(&gcfg, cfg.schedule.seed)?
            }
        };
        let gcfg = match &cfg.network_g.pretrain {
            Some(path) => cfg.network_g.config(Some(&start.config)).map_err(|m| Error::checkpoint(path, m))?,
            None => start.config.clone(),
        };
        if data.size() != gcfg.out_size {
            return Err(Error::Input(format!(
                "{}: the dataset's faces are {1}x{1}, the generator's {2}x{2}",
                cfg.data.train.display(),
                data.size(),
                gcfg.out_size
            )));
        }
        let g = generator(&start.tensors, &gcfg, device, dtype)?;
        let g_ema = generator(&start.tensors, &gcfg, device, dtype)?;

        let w = &cfg.losses;
        let seed = cfg.schedule.seed;
        let d = if w.gan > 0.0 || w.r1 > 0.0 {
            let dcfg = DiscriminatorConfig {
                channel_multiplier: cfg.network_d.channel_multiplier,
                narrow: cfg.network_d.narrow,
                ..DiscriminatorConfig::new(gcfg.out_size)
            };
            let params = Params::empty(device, dtype);
            let net = StyleGan2Discriminator::new(params.builder(), &dcfg)?;
            params.init_stylegan(seed.wrapping_add(1))?;
            Some(Trained { params, net })
        } else {
            None
        };
        let components = if w.component_gan > 0.0 || w.component_style > 0.0 {
            let make = |i: u64| -> Result<Trained<FacialComponentDiscriminator>> {
                let params = Params::empty(device, dtype);
                let net = FacialComponentDiscriminator::new(params.builder())?;
                params.init_stylegan(seed.wrapping_add(2 + i))?;
                Ok(Trained { params, net })
            };
            Some([make(0)?, make(1)?, make(2)?])
        } else {
            None
        };
        if let Some(dir) = &cfg.network_d.pretrain_dir {
            load_discriminators(dir, d.as_ref(), components.as_ref())?;
        }
        let identity = match (&w.identity_model, w.identity > 0.0) {
            (Some(dir), true) => Some(IdentityLoss::load(dir)?),
            _ => None,
        };

        let perceptual = match (&w.vgg19, w.perceptual > 0.0 || w.perceptual_style > 0.0) {
            (Some(path), true) => Some(PerceptualLoss::load(path, device, dtype)?),
            _ => None,
        };

        let o = &cfg.optim;
        let fix = cfg.network_g.fix_decoder;
        let opt_g = adam(g.params.named(|n| trains_generator_tensor(n, fix)), o.lr_g, o.betas_g);
        let opt_d = d.as_ref().map(|d| adam(d.params.named(|_| true), o.lr_d, o.betas_d));
        let opt_components = components
            .iter()
            .flatten()
            .map(|c| adam(c.params.named(|_| true), o.lr_component, o.betas_component))
            .collect();
        let degrade = cfg.data.degradation.options();
        Ok(Self {
            cfg,
            g,
            g_ema,
            d,
            components,
            identity,
            perceptual,
            opt_g,
            opt_d,
            opt_components,
            data,
            degrade,
            iteration: 0,
        })
    }

    pub fn generator_config(&self) -> &Config {
        self.g.net.config()
    }

    fn nets(&self) -> Nets<'_> {
        Nets {
            g: &self.g.net,
            d: self.d.as_ref().map(|d| &d.net),
            components: self.components.as_ref().map(|[a, b, c]| [&a.net, &b.net, &c.net]),
            identity: self.identity.as_ref(),
            perceptual: self.perceptual.as_ref(),
        }
    }

    /// The loss weights of `iteration`.
    fn weights(&self, iteration: u64) -> Weights {
        let w = &self.cfg.losses;
        let r1 = if self.d.is_some() && w.r1 > 0.0 && iteration.is_multiple_of(w.r1_every) {
            w.r1 / 2.0 * w.r1_every as f64
        } else {
            0.0
        };
        Weights {
            pixel: w.pixel,
            pyramid: if iteration > w.remove_pyramid_after { 1e-12 } else { w.pyramid },
            gan: w.gan,
            r1,
            component_gan: w.component_gan,
            component_style: w.component_style,
            identity: if self.identity.is_some() { w.identity } else { 0.0 },
            perceptual: if self.perceptual.is_some() { w.perceptual } else { 0.0 },
            perceptual_style: if self.perceptual.is_some() { w.perceptual_style } else { 0.0 },
        }
    }

    /// The batch of `iteration`: faces and degradations drawn from the seed and the iteration
    /// alone. A face that cannot be used is replaced by another and named in `skipped`.
    pub fn batch(&self, iteration: u64) -> Result<(Batch, Vec<String>)> {
        let n = self.cfg.data.batch_size;
        let mut rng = StdRng::seed_from_u64(self.cfg.schedule.seed ^ iteration.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut draw = || (rng.random_range(0..self.data.len()), rng.random::<u64>());
        let first: Vec<(usize, u64)> = (0..n).map(|_| draw()).collect();
        let mut samples: Vec<_> = first.par_iter().map(|&(i, s)| self.data.sample(i, s, &self.degrade)).collect();
        let mut skipped = Vec::new();
        for slot in &mut samples {
            let mut attempts = 0;
            while let Err(e) = slot {
                skipped.push(e.one_line());
                attempts += 1;
                if attempts > 20 {
                    return Err(Error::Input(format!(
                        "20 faces in a row could not be used; the last: {}",
                        e.one_line()
                    )));
                }
                let (i, s) = draw();
                *slot = self.data.sample(i, s, &self.degrade);
            }
        }
        let samples: Vec<_> = samples.into_iter().collect::<Result<_>>()?;
        let device = &self.g.params.device;
        let to = |t: Tensor| -> Result<Tensor> { Ok(t.to_device(device)?) };
        let lq = to(faces_to_tensor(&samples.iter().map(|s| s.lq.clone()).collect::<Vec<_>>())?)?;
        let gt = to(faces_to_tensor(&samples.iter().map(|s| s.gt.clone()).collect::<Vec<_>>())?)?;
        let boxes: [Vec<[f64; 4]>; 3] =
            std::array::from_fn(|c| samples.iter().map(|s| s.components.boxes()[c].map(f64::from)).collect());
        Ok((Batch { lq, gt, boxes }, skipped))
    }

    /// Runs the next iteration.
    pub fn step(&mut self) -> Result<StepReport> {
        let iteration = self.iteration + 1;
        let (batch, skipped) = self.batch(iteration)?;
        self.set_learning_rates(iteration);
        let w = self.weights(iteration);
        let gcfg = self.g.net.config().clone();
        let noise_seed = self.cfg.schedule.seed.wrapping_add(iteration.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let noises = random_noises(&gcfg, batch.lq.dim(0)?, noise_seed, &self.g.params.device, DType::F32)?;
        let mut losses = Vec::new();

        // Generator, the discriminators fixed (their gradients are computed and not used).
        let (fwd, g_terms) = self.nets().generator_terms(&batch, &noises, &w)?;
        let g_total = total(&g_terms)?;
        self.opt_g.step(&g_total.backward()?)?;
        record(&mut losses, &g_terms, "g_total", &g_total)?;
        let fake = fwd.image.detach();

        // Whole-face discriminator.
        let d_terms = self.nets().discriminator_terms(&batch, &fake, &w)?;
        if let (Some(opt), false) = (&mut self.opt_d, d_terms.is_empty()) {
            let d_total = total(&d_terms)?;
            opt.step(&d_total.backward()?)?;
            record(&mut losses, &d_terms, "d_total", &d_total)?;
        }
        // Component discriminators, each its own optimiser.
        let c_losses = self.nets().component_terms(&batch, &fake)?;
        for ((loss, opt), name) in c_losses.iter().zip(&mut self.opt_components).zip(COMPONENTS) {
            opt.step(&loss.backward()?)?;
            losses.push((format!("d_{name}"), scalar(loss)?));
        }

        ema_update(&self.g_ema.params.named(|_| true), &self.g.params.by_name(), self.cfg.optim.ema_decay)?;
        self.iteration = iteration;
        Ok(StepReport { iteration, losses, skipped })
    }

    fn set_learning_rates(&mut self, iteration: u64) {
        let s = &self.cfg.schedule;
        let o = &self.cfg.optim;
        let lr = |base: f64| multi_step_lr(base, &s.milestones, s.gamma, iteration);
        self.opt_g.set_learning_rate(lr(o.lr_g));
        if let Some(opt) = &mut self.opt_d {
            opt.set_learning_rate(lr(o.lr_d));
        }
        for opt in &mut self.opt_components {
            opt.set_learning_rate(lr(o.lr_component));
        }
    }

    pub fn learning_rate_g(&self) -> f64 {
        self.opt_g.learning_rate()
    }

    /// The averaged generator as a checkpoint (what inference loads).
    pub fn ema_checkpoint(&self) -> Result<Checkpoint> {
        Ok(Checkpoint { config: self.g.net.config().clone(), tensors: self.g_ema.params.tensors()? })
    }

    /// Every network and optimiser state, by file stem: `net_g` (the average, official names,
    /// loadable by inference), `net_g_raw`, `net_d`, `net_d_left_eye`, ..., and `optimizers`.
    pub fn state(&self) -> Result<Vec<(String, HashMap<String, Tensor>)>> {
        let mut files = vec![
            ("net_g".to_string(), self.g_ema.params.tensors()?),
            ("net_g_raw".to_string(), self.g.params.tensors()?),
        ];
        if let Some(d) = &self.d {
            files.push(("net_d".into(), d.params.tensors()?));
        }
        for (c, name) in self.components.iter().flatten().zip(COMPONENTS) {
            files.push((format!("net_d_{name}"), c.params.tensors()?));
        }
        let mut opt = self.opt_g.state_tensors("g")?;
        if let Some(o) = &self.opt_d {
            opt.extend(o.state_tensors("d")?);
        }
        for (o, name) in self.opt_components.iter().zip(COMPONENTS) {
            opt.extend(o.state_tensors(&format!("d_{name}"))?);
        }
        opt.insert("iteration".into(), Tensor::new(&[self.iteration as f64], &Device::Cpu)?);
        files.push(("optimizers".into(), opt));
        Ok(files)
    }

    /// Restores what [`Trainer::state`] saved, from `dir/<stem>.safetensors`.
    pub fn restore(&mut self, dir: &Path) -> Result<()> {
        let read = |stem: &str| -> Result<HashMap<String, Tensor>> {
            let path = dir.join(format!("{stem}.safetensors"));
            crate::weights::read_tensors(&path)
        };
        let path = |stem: &str| dir.join(format!("{stem}.safetensors"));
        self.g_ema.params.load(&read("net_g")?, &path("net_g"))?;
        self.g.params.load(&read("net_g_raw")?, &path("net_g_raw"))?;
        load_discriminators(dir, self.d.as_ref(), self.components.as_ref())?;
        let opt = read("optimizers")?;
        self.opt_g.load_state("g", &opt)?;
        if let Some(o) = &mut self.opt_d {
            o.load_state("d", &opt)?;
        }
        for (o, name) in self.opt_components.iter_mut().zip(COMPONENTS) {
            o.load_state(&format!("d_{name}"), &opt)?;
        }
        let it = opt.get("iteration").ok_or_else(|| Error::checkpoint(path("optimizers"), "no `iteration`"))?;
        self.iteration = it.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?[0] as u64;
        Ok(())
    }
}

fn generator(
    tensors: &HashMap<String, Tensor>,
    cfg: &Config,
    device: &Device,
    dtype: DType,
) -> Result<Trained<GfpGanV1Clean>> {
    let params = Params::from_tensors(tensors, device, dtype)?;
    let net = GfpGanV1Clean::new(params.builder(), cfg)?;
    Ok(Trained { params, net })
}

/// Loads `net_d.safetensors` and `net_d_<component>.safetensors` from `dir` into the
/// discriminators that exist.
fn load_discriminators(
    dir: &Path,
    d: Option<&Trained<StyleGan2Discriminator>>,
    components: Option<&[Trained<FacialComponentDiscriminator>; 3]>,
) -> Result<()> {
    let load = |params: &Params, stem: &str| -> Result<()> {
        let path = dir.join(format!("{stem}.safetensors"));
        params.load(&crate::weights::read_tensors(&path)?, &path)
    };
    if let Some(d) = d {
        load(&d.params, "net_d")?;
    }
    for (c, name) in components.into_iter().flatten().zip(COMPONENTS) {
        load(&c.params, &format!("net_d_{name}"))?;
    }
    Ok(())
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

fn record(out: &mut Vec<(String, f64)>, terms: &super::step::Terms, total_name: &str, total: &Tensor) -> Result<()> {
    for (name, t) in terms {
        out.push((name.to_string(), scalar(t)?));
    }
    out.push((total_name.to_string(), scalar(total)?));
    Ok(())
}
