//! The StyleGAN2 decoder of GFPGANv1Clean (`StyleGAN2GeneratorCSFT` and its parts in the official
//! stylegan2_clean_arch.py / gfpganv1_clean_arch.py), with Channel-Split SFT.

use candle_core::{D, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::config::Config;
use super::ops::{conv2d, lrelu, per_channel, upsample2x};

/// A modulated convolution in activation-scaling form: instead of building one weight per sample
/// (a grouped convolution), the input is scaled per channel by the style, convolved with the
/// shared weight, and the output scaled by the per-sample demodulation factors. Mathematically
/// identical to the official code and batches as one ordinary convolution.
pub struct ModulatedConv2d {
    /// `(out, in, k, k)`, contiguous (a view of the checkpoint's or the trainer's tensor).
    weight: Tensor,
    demodulate: bool,
    modulation: Linear,
    padding: usize,
    upsample: bool,
}

impl ModulatedConv2d {
    pub fn new(
        vb: VarBuilder,
        cin: usize,
        cout: usize,
        k: usize,
        style: usize,
        demodulate: bool,
        upsample: bool,
    ) -> Result<Self> {
        let weight = vb.get((1, cout, cin, k, k), "weight")?.reshape((cout, cin, k, k))?.contiguous()?;
        let modulation = candle_nn::linear(style, cin, vb.pp("modulation"))?;
        Ok(Self { weight, demodulate, modulation, padding: k / 2, upsample })
    }

    /// `x`: `(b, in, h, w)`, `style`: `(b, num_style_feat)`; `gain` multiplies the output (folded
    /// into the per-channel factors, so it costs nothing).
    pub fn forward(&self, x: &Tensor, style: &Tensor, gain: f64) -> Result<Tensor> {
        let s = self.modulation.forward(style)?; // (b, in)
        let mut x = x.broadcast_mul(&per_channel(&s)?)?;
        if self.upsample {
            x = upsample2x(&x)?;
        }
        let out = conv2d(&x, &self.weight, self.padding, 1)?;
        if self.demodulate {
            // sum over (in, k, k) of (w * s)^2 = s^2 @ sum_k w^2. Derived from the weight at every
            // call, not cached: a trainer updates the weight in place.
            let weight_sq_t = self.weight.sqr()?.sum(D::Minus1)?.sum(D::Minus1)?.t()?;
            let demod = (s.sqr()?.matmul(&weight_sq_t)? + 1e-8)?.sqrt()?.recip()?;
            out.broadcast_mul(&per_channel(&(demod * gain)?)?)
        } else if gain != 1.0 {
            out * gain
        } else {
            Ok(out)
        }
    }
}

/// Modulated 3x3 convolution, noise injection, bias and LeakyReLU.
pub struct StyleConv {
    modulated_conv: ModulatedConv2d,
    /// Noise strength, shape `(1,)`.
    noise_weight: Tensor,
    bias: Tensor,
}

impl StyleConv {
    pub fn new(vb: VarBuilder, cin: usize, cout: usize, style: usize, upsample: bool) -> Result<Self> {
        Ok(Self {
            modulated_conv: ModulatedConv2d::new(vb.pp("modulated_conv"), cin, cout, 3, style, true, upsample)?,
            noise_weight: vb.get(1, "weight")?,
            bias: vb.get((1, cout, 1, 1), "bias")?,
        })
    }

    /// `noise`: `(b or 1, 1, h, w)` at the output resolution.
    pub fn forward(&self, x: &Tensor, style: &Tensor, noise: &Tensor) -> Result<Tensor> {
        let out = self.modulated_conv.forward(x, style, std::f64::consts::SQRT_2)?;
        let noise = noise.broadcast_mul(&self.noise_weight)?;
        lrelu(&out.broadcast_add(&noise)?.broadcast_add(&self.bias)?)
    }
}

/// Unmodulated-demodulation 1x1 projection to RGB, added to the upsampled running image.
pub struct ToRgb {
    modulated_conv: ModulatedConv2d,
    bias: Tensor,
}

impl ToRgb {
    pub fn new(vb: VarBuilder, cin: usize, style: usize) -> Result<Self> {
        Ok(Self {
            modulated_conv: ModulatedConv2d::new(vb.pp("modulated_conv"), cin, 3, 1, style, false, false)?,
            bias: vb.get((1, 3, 1, 1), "bias")?,
        })
    }

    pub fn forward(&self, x: &Tensor, style: &Tensor, skip: Option<&Tensor>) -> Result<Tensor> {
        let out = self.modulated_conv.forward(x, style, 1.0)?.broadcast_add(&self.bias)?;
        match skip {
            Some(skip) => out + upsample2x(skip)?,
            None => Ok(out),
        }
    }
}

/// The SFT conditions of one decoder level: `x * scale + shift` on all or half of the channels.
pub struct SftCondition<'a> {
    pub scale: &'a Tensor,
    pub shift: &'a Tensor,
}

/// `StyleGAN2GeneratorCSFT` with `input_is_latent=True`. The style MLP is kept only so that the
/// checkpoint's tensor set is complete and `input_is_latent=False` networks can run too.
pub struct StyleGan2Decoder {
    style_mlp: Vec<Linear>,
    constant_input: Tensor,
    style_conv1: StyleConv,
    to_rgb1: ToRgb,
    style_convs: Vec<StyleConv>,
    to_rgbs: Vec<ToRgb>,
    noises: Vec<Tensor>,
    sft_half: bool,
    num_latent: usize,
}

impl StyleGan2Decoder {
    pub fn new(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let s = cfg.num_style_feat;
        let style_mlp = (0..cfg.num_mlp)
            .map(|j| candle_nn::linear(s, s, vb.pp(format!("style_mlp.{}", 2 * j + 1))))
            .collect::<Result<Vec<_>>>()?;
        let c4 = cfg.decoder_channels(4);
        let constant_input = vb.get((1, c4, 4, 4), "constant_input.weight")?;
        let style_conv1 = StyleConv::new(vb.pp("style_conv1"), c4, c4, s, false)?;
        let to_rgb1 = ToRgb::new(vb.pp("to_rgb1"), c4, s)?;
        let (mut style_convs, mut to_rgbs) = (Vec::new(), Vec::new());
        for (i, (cin, cout)) in cfg.decoder_levels().into_iter().enumerate() {
            style_convs.push(StyleConv::new(vb.pp(format!("style_convs.{}", 2 * i)), cin, cout, s, true)?);
            style_convs.push(StyleConv::new(vb.pp(format!("style_convs.{}", 2 * i + 1)), cout, cout, s, false)?);
            to_rgbs.push(ToRgb::new(vb.pp(format!("to_rgbs.{i}")), cout, s)?);
        }
        let noises = (0..cfg.num_noises())
            .map(|i| {
                let r = Config::noise_size(i);
                vb.get((1, 1, r, r), &format!("noises.noise{i}"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            style_mlp,
            constant_input,
            style_conv1,
            to_rgb1,
            style_convs,
            to_rgbs,
            noises,
            sft_half: cfg.sft_half,
            num_latent: cfg.num_latent(),
        })
    }

    /// The noise maps stored in the checkpoint, `(1, 1, r, r)` each.
    pub fn stored_noises(&self) -> &[Tensor] {
        &self.noises
    }

    /// The style MLP (`NormStyleCode` then linear + LeakyReLU layers), for `input_is_latent=False`.
    pub fn style_mlp(&self, z: &Tensor) -> Result<Tensor> {
        let norm = (z.sqr()?.mean_keepdim(1)? + 1e-8)?.sqrt()?.recip()?;
        let mut x = z.broadcast_mul(&norm)?;
        for layer in &self.style_mlp {
            x = lrelu(&layer.forward(&x)?)?;
        }
        Ok(x)
    }

    /// `latent`: `(b, num_latent, style)` (one code per layer) or `(b, style)` (shared).
    /// `conditions`: one scale/shift pair per upsampling level, lowest resolution first.
    /// `noises`: one map per style convolution.
    pub fn forward(&self, latent: &Tensor, conditions: &[SftCondition], noises: &[Tensor]) -> Result<Tensor> {
        let latent = match latent.rank() {
            2 => latent.unsqueeze(1)?.repeat((1, self.num_latent, 1))?,
            _ => latent.clone(),
        };
        let code = |i: usize| latent.narrow(1, i, 1)?.squeeze(1)?.contiguous();
        let b = latent.dim(0)?;
        let mut out = self.constant_input.repeat((b, 1, 1, 1))?;
        out = self.style_conv1.forward(&out, &code(0)?, &noises[0])?;
        let mut skip = self.to_rgb1.forward(&out, &code(1)?, None)?;
        for (level, to_rgb) in self.to_rgbs.iter().enumerate() {
            let i = 1 + 2 * level;
            out = self.style_convs[2 * level].forward(&out, &code(i)?, &noises[i])?;
            if let Some(cond) = conditions.get(level) {
                out = self.apply_sft(&out, cond)?;
            }
            out = self.style_convs[2 * level + 1].forward(&out, &code(i + 1)?, &noises[i + 1])?;
            skip = to_rgb.forward(&out, &code(i + 2)?, Some(&skip))?;
        }
        Ok(skip)
    }

    fn apply_sft(&self, x: &Tensor, cond: &SftCondition) -> Result<Tensor> {
        let modulate = |x: &Tensor| (x * cond.scale)? + cond.shift;
        if self.sft_half {
            let half = x.dim(1)? / 2;
            let same = x.narrow(1, 0, half)?;
            let sft = x.narrow(1, half, x.dim(1)? - half)?;
            Tensor::cat(&[same, modulate(&sft)?], 1)
        } else {
            modulate(x)
        }
    }
}
