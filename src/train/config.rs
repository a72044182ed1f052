//! `gfpgan train --config FILE`: a TOML file mirroring the official training options
//! (options/train_gfpgan_v1.yml). Every field has the official value as its default, so a
//! config names only what it changes; an unknown key is an error (a typo would otherwise
//! silently train with the default).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Config as GeneratorConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Where checkpoints, logs and pictures go (relative to the config file).
    pub output: PathBuf,
    pub data: DataOptions,
    #[serde(default)]
    pub network_g: GeneratorOptions,
    #[serde(default)]
    pub network_d: DiscriminatorOptions,
    #[serde(default)]
    pub losses: LossWeights,
    #[serde(default)]
    pub optim: OptimOptions,
    #[serde(default)]
    pub schedule: Schedule,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataOptions {
    /// A dataset made by `gfpgan prepare-data` (relative to the config file).
    pub train: PathBuf,
    /// Held-out faces for validation: another dataset folder. Without it, no validation.
    #[serde(default)]
    pub val: Option<PathBuf>,
    /// At most this many validation faces are used (the first ones, by name).
    #[serde(default = "default_val_count")]
    pub val_count: usize,
    /// NIQE's model file (weights/niqe_pris_params.npz), needed for validation.
    #[serde(default)]
    pub val_niqe: Option<PathBuf>,
    /// face-api's model folder (identity and landmark metrics), needed for validation.
    #[serde(default)]
    pub val_face_models: Option<PathBuf>,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Each channel of the clean face scaled by a gain drawn from [1 - x, 1 + x] before it is
    /// degraded, so the input and the target share the new colour: the network learns to keep
    /// its input's colours instead of recalling the training people's. Not in the official
    /// recipe (0, off); for small data sets, where colours can be memorised.
    #[serde(default)]
    pub pair_color_jitter: f32,
    /// Degradation ranges (official: blur sigma 0.1-10, downscale 0.8-8, noise 0-20, JPEG 60-100).
    #[serde(default)]
    pub degradation: DegradationRanges,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DegradationRanges {
    pub blur_kernel_size: usize,
    pub blur_sigma: [f32; 2],
    pub downsample_range: [f32; 2],
    pub noise_range: [f32; 2],
    pub jpeg_range: [u8; 2],
    pub color_jitter_prob: f32,
    pub color_jitter_shift: f32,
    pub gray_prob: f32,
}

impl Default for DegradationRanges {
    fn default() -> Self {
        Self {
            blur_kernel_size: 41,
            blur_sigma: [0.1, 10.0],
            downsample_range: [0.8, 8.0],
            noise_range: [0.0, 20.0],
            jpeg_range: [60, 100],
            color_jitter_prob: 0.3,
            color_jitter_shift: 20.0,
            gray_prob: 0.01,
        }
    }
}

impl DegradationRanges {
    pub fn options(&self) -> crate::synth::degrade::DegradeOptions {
        crate::synth::degrade::DegradeOptions {
            kernel_size: self.blur_kernel_size,
            blur_sigma: (self.blur_sigma[0], self.blur_sigma[1]),
            downscale: (self.downsample_range[0], self.downsample_range[1]),
            noise_sigma: (self.noise_range[0], self.noise_range[1]),
            jpeg_quality: (self.jpeg_range[0], self.jpeg_range[1]),
            color_jitter_prob: self.color_jitter_prob,
            color_shift: self.color_jitter_shift,
            gray_prob: self.gray_prob,
        }
    }
}

/// The generator: its architecture (`GFPGANv1Clean` arguments) and where it starts. Unset
/// architecture fields come from `pretrain` when there is one, else from the released models'
/// configuration (512, style 512, channel multiplier 2, `sft_half`, `different_w`); set ones
/// must agree with `pretrain`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorOptions {
    pub out_size: Option<usize>,
    pub num_style_feat: Option<usize>,
    pub channel_multiplier: Option<f64>,
    pub narrow: Option<f64>,
    pub sft_half: Option<bool>,
    pub different_w: Option<bool>,
    pub num_mlp: Option<usize>,
    /// Start from these weights (v1.3/v1.4 or any GFPGANv1Clean checkpoint). None: from scratch.
    pub pretrain: Option<PathBuf>,
    /// Keep the StyleGAN2 decoder fixed (the official v1 recipe, which starts from a trained
    /// StyleGAN2); off when training from scratch.
    pub fix_decoder: bool,
}

impl GeneratorOptions {
    /// The architecture: the set fields over `base` (the pretrained checkpoint's, or the
    /// released models'). With a checkpoint, a set field that differs from it is an error.
    pub fn config(&self, pretrained: Option<&GeneratorConfig>) -> std::result::Result<GeneratorConfig, String> {
        let base = pretrained.cloned().unwrap_or_default();
        let mut c = base.clone();
        let mut differ = Vec::new();
        macro_rules! field {
            ($f:ident) => {
                if let Some(v) = self.$f {
                    if pretrained.is_some() && v != base.$f {
                        differ.push(format!("{} = {:?} (the checkpoint has {:?})", stringify!($f), v, base.$f));
                    }
                    c.$f = v;
                }
            };
        }
        field!(out_size);
        field!(num_style_feat);
        field!(channel_multiplier);
        field!(narrow);
        field!(sft_half);
        field!(different_w);
        field!(num_mlp);
        if !differ.is_empty() {
            return Err(format!("network_g differs from network_g.pretrain: {}", differ.join(", ")));
        }
        c.validate().map_err(|m| format!("network_g: {m}"))?;
        Ok(c)
    }
}

/// The whole-face StyleGAN2 discriminator and the three facial-component discriminators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscriminatorOptions {
    pub channel_multiplier: f64,
    pub narrow: f64,
    /// Start the discriminators from a training run's saved ones (`net_d*.safetensors` in a
    /// folder); None: fresh.
    pub pretrain_dir: Option<PathBuf>,
}

impl Default for DiscriminatorOptions {
    fn default() -> Self {
        Self { channel_multiplier: 1.0, narrow: 1.0, pretrain_dir: None }
    }
}

/// Loss weights (0 switches a term off, and its network is then not built).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossWeights {
    pub pixel: f64,
    pub pyramid: f64,
    /// The pyramid weight becomes 1e-12 after this many iterations.
    pub remove_pyramid_after: u64,
    pub gan: f64,
    pub r1: f64,
    /// R1 is computed every this many discriminator steps (lazy regularisation).
    pub r1_every: u64,
    pub component_gan: f64,
    pub component_style: f64,
    /// Identity loss with face-api's recognition net (needs `identity_model`).
    pub identity: f64,
    /// Folder with face-api's `face_recognition_model-*` files.
    pub identity_model: Option<PathBuf>,
    /// VGG19 perceptual loss (L1 of features before the ReLUs of conv1_2 ... conv5_4), with
    /// `vgg19` (torchvision's state dict as .safetensors or .pth); off without the file.
    pub perceptual: f64,
    /// The style (Gram matrix) part of the perceptual loss.
    pub perceptual_style: f64,
    pub vgg19: Option<PathBuf>,
}

impl Default for LossWeights {
    fn default() -> Self {
        Self {
            pixel: 0.1,
            pyramid: 1.0,
            remove_pyramid_after: 50_000,
            gan: 0.1,
            r1: 10.0,
            r1_every: 16,
            component_gan: 1.0,
            component_style: 200.0,
            identity: 10.0,
            identity_model: None,
            perceptual: 1.0,
            perceptual_style: 50.0,
            vgg19: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimOptions {
    pub lr_g: f64,
    pub betas_g: [f64; 2],
    pub lr_d: f64,
    pub betas_d: [f64; 2],
    pub lr_component: f64,
    pub betas_component: [f64; 2],
    pub ema_decay: f64,
}

impl Default for OptimOptions {
    /// The official rates and betas, the discriminator's adjusted for lazy R1 every 16 steps.
    fn default() -> Self {
        let ratio = 16.0 / 17.0;
        Self {
            lr_g: 2e-3,
            betas_g: [0.0, 0.99],
            lr_d: 2e-3 * ratio,
            betas_d: [0.0, 0.99f64.powf(ratio)],
            lr_component: 2e-3,
            betas_component: [0.9, 0.99],
            ema_decay: 0.5f64.powf(32.0 / 10_000.0),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Schedule {
    pub total_iter: u64,
    pub milestones: Vec<u64>,
    pub gamma: f64,
    /// Validation every this many iterations (0: never).
    pub val_every: u64,
    /// A resumable checkpoint every this many iterations (and at the end, and on Ctrl-C).
    pub save_every: u64,
    /// Losses logged (train.jsonl, loss.png) every this many iterations.
    pub log_every: u64,
    /// Stop after this many seconds of training, saving a checkpoint (0: no limit).
    pub max_seconds: u64,
    pub seed: u64,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            total_iter: 800_000,
            milestones: vec![600_000, 700_000],
            gamma: 0.5,
            val_every: 5_000,
            save_every: 5_000,
            log_every: 100,
            max_seconds: 0,
            seed: 0,
        }
    }
}

fn default_val_count() -> usize {
    16
}

fn default_batch() -> usize {
    3
}

impl TrainConfig {
    /// Reads and checks a config file; relative paths in it become relative to its folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut cfg: TrainConfig =
            toml::from_str(&text).map_err(|e| Error::format(path, e.to_string().replace('\n', " ")))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        rebase(&mut cfg.output);
        rebase(&mut cfg.data.train);
        let optional = [
            &mut cfg.data.val,
            &mut cfg.data.val_niqe,
            &mut cfg.data.val_face_models,
            &mut cfg.network_g.pretrain,
            &mut cfg.network_d.pretrain_dir,
            &mut cfg.losses.identity_model,
            &mut cfg.losses.vgg19,
        ];
        for p in optional.into_iter().flatten() {
            rebase(p);
        }
        cfg.check().map_err(|msg| Error::format(path, msg))?;
        Ok(cfg)
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.network_g.pretrain.is_none() {
            self.network_g.config(None)?;
        }
        if self.data.batch_size == 0 {
            return Err("data.batch_size must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.data.pair_color_jitter) {
            return Err("data.pair_color_jitter must be in [0, 1)".into());
        }
        if self.schedule.total_iter == 0 {
            return Err("schedule.total_iter must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.optim.ema_decay) {
            return Err(format!("optim.ema_decay must be in [0, 1), got {}", self.optim.ema_decay));
        }
        if self.losses.identity > 0.0 && self.losses.identity_model.is_none() {
            return Err("losses.identity > 0 needs losses.identity_model (face-api's model folder)".into());
        }
        if self.losses.r1 > 0.0 && self.losses.r1_every == 0 {
            return Err("losses.r1_every must be at least 1".into());
        }
        Ok(())
    }

    /// The config as TOML (written next to the checkpoints, so a run records what it trained).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}
