//! `GFPGANv1Clean`: the U-Net degradation-removal module, its latent code and SFT conditions, and
//! the StyleGAN2 decoder they drive.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Conv2dConfig, Linear, VarBuilder};

use super::config::Config;
use super::ops::{conv2d, downsample2x, lrelu, upsample2x};
use super::stylegan2::{SftCondition, StyleGan2Decoder};

/// A "same" convolution with optional bias: `candle_nn::Conv2d`'s weights (names and
/// initialisation), run through [`conv2d`] so that training gets its fast backward pass.
pub struct Conv2d {
    inner: candle_nn::Conv2d,
    padding: usize,
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = conv2d(x, self.inner.weight(), self.padding, 1)?;
        match self.inner.bias() {
            // As candle_nn::Conv2d adds it.
            Some(bias) => y.broadcast_add(&bias.reshape((1, bias.dims1()?, 1, 1))?),
            None => Ok(y),
        }
    }
}

fn conv(vb: VarBuilder, cin: usize, cout: usize, k: usize, bias: bool) -> Result<Conv2d> {
    let cfg = Conv2dConfig { padding: k / 2, ..Default::default() };
    let inner = if bias {
        candle_nn::conv2d(cin, cout, k, cfg, vb)?
    } else {
        candle_nn::conv2d_no_bias(cin, cout, k, cfg, vb)?
    };
    Ok(Conv2d { inner, padding: k / 2 })
}

/// Residual block that halves or doubles the resolution (bilinear), as in the official ResBlock.
pub struct ResBlock {
    conv1: Conv2d,
    conv2: Conv2d,
    skip: Conv2d,
    up: bool,
}

impl ResBlock {
    pub fn new(vb: VarBuilder, cin: usize, cout: usize, up: bool) -> Result<Self> {
        Ok(Self {
            conv1: conv(vb.pp("conv1"), cin, cin, 3, true)?,
            conv2: conv(vb.pp("conv2"), cin, cout, 3, true)?,
            skip: conv(vb.pp("skip"), cin, cout, 1, false)?,
            up,
        })
    }

    fn resample(&self, x: &Tensor) -> Result<Tensor> {
        if self.up { upsample2x(x) } else { downsample2x(x) }
    }
}

impl Module for ResBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let out = self.resample(&lrelu(&self.conv1.forward(x)?)?)?;
        let out = lrelu(&self.conv2.forward(&out)?)?;
        out + self.skip.forward(&self.resample(x)?)?
    }
}

/// `nn.Sequential(conv3x3, LeakyReLU, conv3x3)` producing an SFT scale or shift map.
pub struct ConditionBranch {
    conv0: Conv2d,
    conv2: Conv2d,
}

impl ConditionBranch {
    pub fn new(vb: VarBuilder, c: usize, cout: usize) -> Result<Self> {
        Ok(Self { conv0: conv(vb.pp("0"), c, c, 3, true)?, conv2: conv(vb.pp("2"), c, cout, 3, true)? })
    }
}

impl Module for ConditionBranch {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.conv2.forward(&lrelu(&self.conv0.forward(x)?)?)
    }
}

/// Everything one forward pass computes that the parity fixtures check.
pub struct Forward {
    /// Restored faces, `(b, 3, out_size, out_size)`, RGB in about [-1, 1].
    pub image: Tensor,
    /// `final_linear` output: `(b, num_latent, style)` with `different_w`, else `(b, style)`.
    pub style_code: Tensor,
    /// SFT scale and shift per level, lowest resolution first: `[scale0, shift0, scale1, ...]`.
    pub conditions: Vec<Tensor>,
    /// The intermediate RGB images of the `toRGB` heads, lowest resolution first (8x8 up to the
    /// output size): computed only for training ([`GfpGanV1Clean::forward_train`]), else empty.
    pub rgbs: Vec<Tensor>,
}

/// The official `GFPGANv1Clean` network.
pub struct GfpGanV1Clean {
    cfg: Config,
    conv_body_first: Conv2d,
    conv_body_down: Vec<ResBlock>,
    final_conv: Conv2d,
    conv_body_up: Vec<ResBlock>,
    final_linear: Linear,
    condition_scale: Vec<ConditionBranch>,
    condition_shift: Vec<ConditionBranch>,
    stylegan_decoder: StyleGan2Decoder,
    /// 1x1 RGB heads on the U-Net's upsampling levels: auxiliary images for the pyramid
    /// restoration loss, computed only in training.
    to_rgb: Vec<Conv2d>,
}

impl GfpGanV1Clean {
    pub fn new(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let conv_body_first = conv(vb.pp("conv_body_first"), 3, cfg.unet_channels(cfg.out_size), 1, true)?;
        let conv_body_down = (cfg.down_blocks().into_iter().enumerate())
            .map(|(i, (cin, cout))| ResBlock::new(vb.pp(format!("conv_body_down.{i}")), cin, cout, false))
            .collect::<Result<Vec<_>>>()?;
        let c4 = cfg.unet_channels(4);
        let final_conv = conv(vb.pp("final_conv"), c4, c4, 3, true)?;
        let (mut conv_body_up, mut condition_scale, mut condition_shift) = (Vec::new(), Vec::new(), Vec::new());
        let mut to_rgb = Vec::new();
        for (i, (cin, cout)) in cfg.up_blocks().into_iter().enumerate() {
            conv_body_up.push(ResBlock::new(vb.pp(format!("conv_body_up.{i}")), cin, cout, true)?);
            to_rgb.push(conv(vb.pp(format!("toRGB.{i}")), cout, 3, 1, true)?);
            let sft_out = cfg.sft_channels(cout);
            condition_scale.push(ConditionBranch::new(vb.pp(format!("condition_scale.{i}")), cout, sft_out)?);
            condition_shift.push(ConditionBranch::new(vb.pp(format!("condition_shift.{i}")), cout, sft_out)?);
        }
        let final_linear = candle_nn::linear(c4 * 16, cfg.style_code_len(), vb.pp("final_linear"))?;
        let stylegan_decoder = StyleGan2Decoder::new(vb.pp("stylegan_decoder"), cfg)?;
        Ok(Self {
            cfg: cfg.clone(),
            conv_body_first,
            conv_body_down,
            final_conv,
            conv_body_up,
            final_linear,
            condition_scale,
            condition_shift,
            stylegan_decoder,
            to_rgb,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn decoder(&self) -> &StyleGan2Decoder {
        &self.stylegan_decoder
    }

    /// Runs the network on `x`: `(b, 3, out_size, out_size)` RGB in [-1, 1], with one noise map
    /// per decoder layer (drawn by the caller: `restore::noise`).
    pub fn forward_detailed(&self, x: &Tensor, noises: &[Tensor]) -> Result<Forward> {
        self.run(x, noises, false)
    }

    /// The training forward (`return_rgb=True` in the official code): the restored faces and the
    /// intermediate RGB images in [`Forward::rgbs`].
    pub fn forward_train(&self, x: &Tensor, noises: &[Tensor]) -> Result<Forward> {
        self.run(x, noises, true)
    }

    fn run(&self, x: &Tensor, noises: &[Tensor], with_rgbs: bool) -> Result<Forward> {
        let mut feat = lrelu(&self.conv_body_first.forward(x)?)?;
        let mut unet_skips = Vec::with_capacity(self.conv_body_down.len());
        for block in &self.conv_body_down {
            feat = block.forward(&feat)?;
            unet_skips.push(feat.clone());
        }
        feat = lrelu(&self.final_conv.forward(&feat)?)?;

        let b = feat.dim(0)?;
        let mut style_code = self.final_linear.forward(&feat.flatten_from(1)?)?;
        if self.cfg.different_w {
            style_code = style_code.reshape((b, self.cfg.num_latent(), self.cfg.num_style_feat))?;
        }

        let mut conditions = Vec::with_capacity(2 * self.conv_body_up.len());
        let mut rgbs = Vec::new();
        for (i, block) in self.conv_body_up.iter().enumerate() {
            // Deepest skip first.
            feat = (feat + &unet_skips[unet_skips.len() - 1 - i])?;
            feat = block.forward(&feat)?;
            conditions.push(self.condition_scale[i].forward(&feat)?);
            conditions.push(self.condition_shift[i].forward(&feat)?);
            if with_rgbs {
                rgbs.push(self.to_rgb[i].forward(&feat)?);
            }
        }

        let latent =
            if self.cfg.input_is_latent { style_code.clone() } else { self.stylegan_decoder.style_mlp(&style_code)? };
        let sft: Vec<SftCondition> =
            conditions.chunks(2).map(|pair| SftCondition { scale: &pair[0], shift: &pair[1] }).collect();
        let image = self.stylegan_decoder.forward(&latent, &sft, noises)?;
        Ok(Forward { image, style_code, conditions, rgbs })
    }

    /// Restored faces only.
    pub fn forward(&self, x: &Tensor, noises: &[Tensor]) -> Result<Tensor> {
        Ok(self.forward_detailed(x, noises)?.image)
    }
}
