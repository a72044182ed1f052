//! GFPGANv1Clean on NHWC activations for the CPU: the same modules and state-dict names as
//! `crate::model`, built on the packed convolutions of `conv.rs`.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::act::{Act, Input, Resample, resample};
use super::conv::{Conv, linear};
use super::epilogue::Epilogue;
use super::pool;
use crate::model::Config;

/// A convolution whose output is `side x side`.
fn conv(vb: &VarBuilder, name: &str, (cin, cout, k): (usize, usize, usize), bias: bool, side: usize) -> Result<Conv> {
    let vb = vb.pp(name);
    let w = vb.get((cout, cin, k, k), "weight")?;
    let b = if bias { Some(vb.get(cout, "bias")?) } else { None };
    Conv::new(&w, b.as_ref(), side)
}

/// A linear layer stored transposed, `(in x out)`, for `x * w_t`.
struct Linear {
    w_t: Vec<f32>,
    bias: Vec<f32>,
    out: usize,
}

impl Linear {
    fn new(vb: VarBuilder, cin: usize, cout: usize) -> Result<Self> {
        let w = vb.get((cout, cin), "weight")?;
        Self::from_weight(&w, &vb.get(cout, "bias")?)
    }

    fn from_weight(w: &Tensor, bias: &Tensor) -> Result<Self> {
        let out = w.dim(0)?;
        Ok(Self { w_t: w.t()?.contiguous()?.flatten_all()?.to_vec1()?, bias: bias.to_vec1()?, out })
    }

    fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        linear(x, rows, &self.w_t, Some(&self.bias), self.out)
    }
}

struct ResBlock {
    conv1: Conv,
    conv2: Conv,
    skip: Conv,
    mode: Resample,
}

impl ResBlock {
    /// `side`: the size of the block's input.
    fn new(vb: &VarBuilder, cin: usize, cout: usize, mode: Resample, side: usize) -> Result<Self> {
        let out = mode.side(side);
        // The skip runs before upsampling and after downsampling (see `forward`).
        let skip_side = if mode == Resample::Up { side } else { out };
        Ok(Self {
            conv1: conv(vb, "conv1", (cin, cin, 3), true, side)?,
            conv2: conv(vb, "conv2", (cin, cout, 3), true, out)?,
            skip: conv(vb, "skip", (cin, cout, 1), false, skip_side)?,
            mode,
        })
    }

    fn forward(&self, x: &Act) -> Act {
        let relu = Epilogue { lrelu: true, ..Default::default() };
        let h = self.conv1.forward(&Input::plain(x), &relu);
        // The skip is a 1x1 convolution without bias, which commutes with bilinear resampling:
        // it runs on the smaller of the two maps.
        let skip = match self.mode {
            Resample::Up => resample(&self.skip.forward(&Input::plain(x), &Epilogue::default()), Resample::Up),
            mode => self.skip.forward(&Input::new(x, None, mode), &Epilogue::default()),
        };
        let epi = Epilogue { lrelu: true, residual: Some(&skip), ..Default::default() };
        self.conv2.forward(&Input::new(&h, None, self.mode), &epi)
    }
}

struct ModulatedConv {
    conv: Conv,
    modulation: Linear,
    /// `(cin x cout)` squared taps, for the demodulation factors; none for ToRGB.
    wsq: Option<Vec<f32>>,
    upsample: bool,
}

impl ModulatedConv {
    /// `side`: the size of the output.
    fn new(
        vb: VarBuilder,
        (cin, cout, k): (usize, usize, usize),
        style: usize,
        demodulate: bool,
        upsample: bool,
        side: usize,
    ) -> Result<Self> {
        let weight = vb.get((1, cout, cin, k, k), "weight")?;
        // Sum over the kernel taps of the squared weights, `(cin x cout)`: the demodulation
        // factor of output `o` for input scales `s` is `1 / sqrt(sum_i s_i^2 wsq[i][o] + eps)`.
        let wsq = if demodulate {
            let taps = weight.reshape((cout, cin, k * k))?.sqr()?.sum(2)?;
            Some(taps.t()?.contiguous()?.flatten_all()?.to_vec1::<f32>()?)
        } else {
            None
        };
        let conv = Conv::new(&weight, None, side)?;
        Ok(Self { conv, modulation: Linear::new(vb.pp("modulation"), style, cin)?, wsq, upsample })
    }

    /// Input scaled by the style (fused into the padding copy and upsampling), the shared
    /// convolution, then `epi` with the demodulation factors times `gain` as its scale.
    fn forward(&self, x: &Act, style: &[f32], gain: f32, epi: Epilogue) -> Act {
        let b = x.n;
        let s = self.modulation.forward(style, b);
        let demod: Option<Vec<f32>> = self.wsq.as_ref().map(|wsq| {
            let (ci, co) = (self.conv.cin, self.conv.cout);
            let mut d = vec![0.0f32; b * co];
            for img in 0..b {
                let acc = &mut d[img * co..(img + 1) * co];
                for (i, row) in wsq.chunks_exact(co).enumerate() {
                    let s2 = s[img * ci + i] * s[img * ci + i];
                    acc.iter_mut().zip(row).for_each(|(a, w)| *a += s2 * w);
                }
                acc.iter_mut().for_each(|a| *a = gain / (*a + 1e-8).sqrt());
            }
            d
        });
        let epi = Epilogue { scale: demod.as_deref(), ..epi };
        let mode = if self.upsample { Resample::Up } else { Resample::Keep };
        self.conv.forward(&Input::new(x, Some(&s), mode), &epi)
    }
}

struct StyleConv {
    modulated: ModulatedConv,
    noise_strength: f32,
    bias: Vec<f32>,
}

impl StyleConv {
    fn new(vb: VarBuilder, (cin, cout): (usize, usize), style: usize, upsample: bool, side: usize) -> Result<Self> {
        Ok(Self {
            modulated: ModulatedConv::new(vb.pp("modulated_conv"), (cin, cout, 3), style, true, upsample, side)?,
            noise_strength: vb.get(1, "weight")?.to_vec1::<f32>()?[0],
            bias: vb.get((1, cout, 1, 1), "bias")?.flatten_all()?.to_vec1()?,
        })
    }

    fn forward(&self, x: &Act, style: &[f32], noise: &[f32]) -> Act {
        let epi = Epilogue {
            noise: Some((noise, self.noise_strength)),
            bias: Some(&self.bias),
            lrelu: true,
            ..Default::default()
        };
        self.modulated.forward(x, style, std::f32::consts::SQRT_2, epi)
    }
}

struct ToRgb {
    modulated: ModulatedConv,
    bias: Vec<f32>,
}

impl ToRgb {
    fn new(vb: VarBuilder, cin: usize, style: usize, side: usize) -> Result<Self> {
        Ok(Self {
            modulated: ModulatedConv::new(vb.pp("modulated_conv"), (cin, 3, 1), style, false, false, side)?,
            bias: vb.get((1, 3, 1, 1), "bias")?.flatten_all()?.to_vec1()?,
        })
    }

    fn forward(&self, x: &Act, style: &[f32], skip: Option<&Act>) -> Act {
        let up = skip.map(|s| resample(s, Resample::Up));
        let epi = Epilogue { bias: Some(&self.bias), residual: up.as_ref(), ..Default::default() };
        self.modulated.forward(x, style, 1.0, epi)
    }
}

/// What one forward pass returns; see `crate::model::Forward`.
pub struct Output {
    pub image: Act,
    /// `(n, num_latent or 1, style)` flattened.
    pub style_code: Vec<f32>,
    pub conditions: Vec<Act>,
}

pub struct Network {
    cfg: Config,
    conv_body_first: Conv,
    conv_body_down: Vec<ResBlock>,
    final_conv: Conv,
    conv_body_up: Vec<ResBlock>,
    /// `final_linear` with its input columns reordered from NCHW to NHWC flattening.
    final_linear: Linear,
    condition_scale: Vec<[Conv; 2]>,
    condition_shift: Vec<[Conv; 2]>,
    constant_input: Act,
    style_conv1: StyleConv,
    to_rgb1: ToRgb,
    style_convs: Vec<StyleConv>,
    to_rgbs: Vec<ToRgb>,
    /// Keeps the recycled activation buffers while the network lives.
    _buffers: pool::User,
}

impl Network {
    /// Builds from f32 CPU tensors (already checked against the configuration).
    pub fn new(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let size = cfg.out_size;
        let conv_body_first = conv(&vb, "conv_body_first", (3, cfg.unet_channels(size), 1), true, size)?;
        let conv_body_down = (cfg.down_blocks().into_iter().enumerate())
            .map(|(i, (cin, cout))| {
                ResBlock::new(&vb.pp(format!("conv_body_down.{i}")), cin, cout, Resample::Down, size >> i)
            })
            .collect::<Result<Vec<_>>>()?;
        let c4 = cfg.unet_channels(4);
        let final_conv = conv(&vb, "final_conv", (c4, c4, 3), true, 4)?;
        let (mut conv_body_up, mut condition_scale, mut condition_shift) = (Vec::new(), Vec::new(), Vec::new());
        for (i, (cin, cout)) in cfg.up_blocks().into_iter().enumerate() {
            let side = 8 << i;
            conv_body_up.push(ResBlock::new(&vb.pp(format!("conv_body_up.{i}")), cin, cout, Resample::Up, side / 2)?);
            let sft_out = cfg.sft_channels(cout);
            let branch = |name: &str| -> Result<[Conv; 2]> {
                let vb = vb.pp(format!("{name}.{i}"));
                Ok([conv(&vb, "0", (cout, cout, 3), true, side)?, conv(&vb, "2", (cout, sft_out, 3), true, side)?])
            };
            condition_scale.push(branch("condition_scale")?);
            condition_shift.push(branch("condition_shift")?);
        }
        let lin = vb.pp("final_linear");
        let w = lin.get((cfg.style_code_len(), c4 * 16), "weight")?;
        // PyTorch flattens (c, y, x); our activations flatten (y, x, c).
        let w = w.reshape((cfg.style_code_len(), c4, 16))?.transpose(1, 2)?.reshape((cfg.style_code_len(), c4 * 16))?;
        let final_linear = Linear::from_weight(&w, &lin.get(cfg.style_code_len(), "bias")?)?;

        let d = vb.pp("stylegan_decoder");
        let s = cfg.num_style_feat;
        let c4 = cfg.decoder_channels(4);
        let constant_input = Act::from_nchw(&d.get((1, c4, 4, 4), "constant_input.weight")?)?;
        let style_conv1 = StyleConv::new(d.pp("style_conv1"), (c4, c4), s, false, 4)?;
        let to_rgb1 = ToRgb::new(d.pp("to_rgb1"), c4, s, 4)?;
        let (mut style_convs, mut to_rgbs) = (Vec::new(), Vec::new());
        for (i, (cin, cout)) in cfg.decoder_levels().into_iter().enumerate() {
            let side = 8 << i;
            style_convs.push(StyleConv::new(d.pp(format!("style_convs.{}", 2 * i)), (cin, cout), s, true, side)?);
            style_convs.push(StyleConv::new(d.pp(format!("style_convs.{}", 2 * i + 1)), (cout, cout), s, false, side)?);
            to_rgbs.push(ToRgb::new(d.pp(format!("to_rgbs.{i}")), cout, s, side)?);
        }
        Ok(Self {
            cfg: cfg.clone(),
            conv_body_first,
            conv_body_down,
            final_conv,
            conv_body_up,
            final_linear,
            condition_scale,
            condition_shift,
            constant_input,
            style_conv1,
            to_rgb1,
            style_convs,
            to_rgbs,
            _buffers: pool::User::new(),
        })
    }

    /// Floating-point operations of the multiplications one face costs in this engine
    /// (Winograd's quarter on most 3x3 layers; the linear layers in full).
    pub fn executed_flops_per_face(&self) -> f64 {
        let blocks = self.conv_body_down.iter().chain(&self.conv_body_up);
        let mut convs: Vec<&Conv> = blocks.flat_map(|b| [&b.conv1, &b.conv2, &b.skip]).collect();
        convs.extend([&self.conv_body_first, &self.final_conv]);
        convs.extend(self.condition_scale.iter().chain(&self.condition_shift).flatten());
        let styled = self.style_convs.iter().map(|s| &s.modulated).chain(self.to_rgbs.iter().map(|t| &t.modulated));
        let styled: Vec<&ModulatedConv> =
            styled.chain([&self.style_conv1.modulated, &self.to_rgb1.modulated]).collect();
        convs.extend(styled.iter().map(|m| &m.conv));
        let linears = styled.iter().map(|m| &m.modulation).chain([&self.final_linear]);
        convs.iter().map(|c| c.executed_flops()).sum::<f64>() + linears.map(|l| 2.0 * l.w_t.len() as f64).sum::<f64>()
    }

    /// `x`: faces `(n, size, size, 3)`, RGB in [-1, 1]; `noises`: one `(1 or n, r, r)` map per
    /// decoder layer.
    pub fn forward(&self, x: &Act, noises: &[Vec<f32>]) -> Output {
        let n = x.n;
        let relu = Epilogue { lrelu: true, ..Default::default() };
        let mut feat = self.conv_body_first.forward(&Input::plain(x), &relu);
        let mut skips = Vec::with_capacity(self.conv_body_down.len());
        for block in &self.conv_body_down {
            feat = block.forward(&feat);
            skips.push(feat.clone());
        }
        feat = self.final_conv.forward(&Input::plain(&feat), &relu);
        let style_code = self.final_linear.forward(&feat.data, n);

        let mut conditions = Vec::with_capacity(2 * self.conv_body_up.len());
        for (i, block) in self.conv_body_up.iter().enumerate() {
            feat.add_assign(&skips[skips.len() - 1 - i]);
            feat = block.forward(&feat);
            for [c0, c2] in [&self.condition_scale[i], &self.condition_shift[i]] {
                let hidden = c0.forward(&Input::plain(&feat), &relu);
                conditions.push(c2.forward(&Input::plain(&hidden), &Epilogue::default()));
            }
        }

        let latent = &style_code;
        let s = self.cfg.num_style_feat;
        let per_image = latent.len() / n;
        // Rows (one per image) of latent code `i`; a shared code serves every layer.
        let code = |i: usize| -> Vec<f32> {
            let off = if self.cfg.different_w { i * s } else { 0 };
            (0..n).flat_map(|b| latent[b * per_image + off..][..s].iter().copied()).collect()
        };
        let mut out = self.constant_input.repeat(n);
        out = self.style_conv1.forward(&out, &code(0), &noises[0]);
        let mut skip = self.to_rgb1.forward(&out, &code(1), None);
        for (level, to_rgb) in self.to_rgbs.iter().enumerate() {
            let i = 1 + 2 * level;
            out = self.style_convs[2 * level].forward(&out, &code(i), &noises[i]);
            if let (Some(scale), Some(shift)) = (conditions.get(2 * level), conditions.get(2 * level + 1)) {
                apply_sft(&mut out, scale, shift, self.cfg.sft_half);
            }
            out = self.style_convs[2 * level + 1].forward(&out, &code(i + 1), &noises[i + 1]);
            skip = to_rgb.forward(&out, &code(i + 2), Some(&skip));
        }
        Output { image: skip, style_code, conditions }
    }
}

/// `x * scale + shift` on the last `scale.c` channels of every pixel (all of them without
/// `sft_half`).
fn apply_sft(x: &mut Act, scale: &Act, shift: &Act, sft_half: bool) {
    use rayon::prelude::*;
    let (c, cs) = (x.c, scale.c);
    let first = if sft_half { c - cs } else { 0 };
    debug_assert_eq!(c - first, cs);
    x.data.par_chunks_mut(c).zip(scale.data.par_chunks(cs).zip(shift.data.par_chunks(cs))).for_each(
        |(px, (sc, sh))| {
            for k in 0..cs {
                px[first + k] = px[first + k] * sc[k] + sh[k];
            }
        },
    );
}
