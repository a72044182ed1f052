//! The discriminators GFP-GAN trains against: basicsr's `StyleGAN2Discriminator` for the whole
//! face, with the R1 penalty, and gfpgan's `FacialComponentDiscriminator` for the eyes and mouth
//! ([`component`]). The state-dict keys are the official ones, so the official pretrained
//! discriminators load and what is trained here loads in PyTorch.

mod component;
mod layers;

use candle_core::Tensor;
use candle_nn::VarBuilder;

pub use component::FacialComponentDiscriminator;
use layers::{ConvLayer, ConvTrace, EqualLinear, ResBlock, ResTrace};

use crate::error::{Error, Result};

/// The arguments of basicsr's `StyleGAN2Discriminator`.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscriminatorConfig {
    /// The input's side, a power of two from 8.
    pub out_size: usize,
    pub channel_multiplier: f64,
    /// The separable 1-D FIR kernel of the downsampling blur.
    pub resample_kernel: Vec<f64>,
    /// At most this many samples share one standard-deviation statistic.
    pub stddev_group: usize,
    /// Scales every channel count.
    pub narrow: f64,
}

impl DiscriminatorConfig {
    /// The official defaults at `out_size` (channel multiplier 2, full width).
    pub fn new(out_size: usize) -> Self {
        Self {
            out_size,
            channel_multiplier: 2.0,
            resample_kernel: vec![1.0, 3.0, 3.0, 1.0],
            stddev_group: 4,
            narrow: 1.0,
        }
    }

    /// GFP-GAN v1's training options (train_gfpgan_v1.yml): 512 px, channel multiplier 1.
    pub fn gfpgan_v1() -> Self {
        Self { channel_multiplier: 1.0, ..Self::new(512) }
    }

    /// The channel count at resolution `res`, with the official truncation to an integer.
    pub fn channels(&self, res: usize) -> usize {
        let base = match res {
            4..=32 => 512.0,
            64 => 256.0 * self.channel_multiplier,
            128 => 128.0 * self.channel_multiplier,
            256 => 64.0 * self.channel_multiplier,
            512 => 32.0 * self.channel_multiplier,
            _ => 16.0 * self.channel_multiplier,
        };
        (base * self.narrow) as usize
    }

    fn validate(&self) -> Result<()> {
        let s = self.out_size;
        if !(8..=1024).contains(&s) || !s.is_power_of_two() {
            return Err(Error::Input(format!("discriminator out_size {s}: must be a power of two from 8 to 1024")));
        }
        if self.resample_kernel.len() < 2 || self.stddev_group == 0 || self.channels(4) == 0 {
            return Err(Error::Input(format!("discriminator config {self:?}: empty kernel, group or channels")));
        }
        Ok(())
    }
}

/// What [`StyleGan2Discriminator::input_gradient`] needs from the forward pass.
struct Trace {
    first: ConvTrace,
    blocks: Vec<ResTrace>,
    final_conv: ConvTrace,
    linear_slope: Tensor,
    /// The body's output `(b, c, 4, 4)`, for the adjoint of the stddev statistic.
    body: Tensor,
}

/// basicsr's `StyleGAN2Discriminator`: `(b, 3, out_size, out_size)` images to `(b, 1)` logits.
pub struct StyleGan2Discriminator {
    /// `conv_body.0`: 1x1 from RGB.
    first: ConvLayer,
    /// `conv_body.1..`: one block per halving, down to 4x4.
    blocks: Vec<ResBlock>,
    final_conv: ConvLayer,
    final_linear: [EqualLinear; 2],
    cfg: DiscriminatorConfig,
}

impl StyleGan2Discriminator {
    /// Weights under `vb` with the official names. From a `VarMap`, new weights are N(0, 1) and
    /// biases 0, the official initialisation.
    pub fn new(vb: VarBuilder, cfg: &DiscriminatorConfig) -> Result<Self> {
        cfg.validate()?;
        let k = &cfg.resample_kernel;
        let body = vb.pp("conv_body");
        let mut cin = cfg.channels(cfg.out_size);
        let first = ConvLayer::new(body.pp(0), 3, cin, 1, false, k, true, true)?;
        let mut blocks = Vec::new();
        let mut res = cfg.out_size;
        while res > 4 {
            let cout = cfg.channels(res / 2);
            blocks.push(ResBlock::new(body.pp(blocks.len() + 1), cin, cout, k)?);
            cin = cout;
            res /= 2;
        }
        let c4 = cfg.channels(4);
        // The stddev statistic is one extra channel.
        let final_conv = ConvLayer::new(vb.pp("final_conv"), cin + 1, c4, 3, false, k, true, true)?;
        let lin = vb.pp("final_linear");
        let final_linear =
            [EqualLinear::new(lin.pp(0), c4 * 4 * 4, c4, true)?, EqualLinear::new(lin.pp(1), c4, 1, false)?];
        Ok(Self { first, blocks, final_conv, final_linear, cfg: cfg.clone() })
    }

    pub fn config(&self) -> &DiscriminatorConfig {
        &self.cfg
    }

    /// `x`: `(b, 3, out_size, out_size)`, `b` a multiple of `min(b, stddev_group)` (the
    /// official view fails otherwise). Returns `(b, 1)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.run(x, false)?.0)
    }

    /// The gradient of `sum(D(x))` with respect to `x`, as candle operations on the weights
    /// (see [`layers`]), so that candle's backward through it reaches the weights.
    pub fn input_gradient(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_and_input_gradient(x)?.1)
    }

    /// `D(x)` and its input gradient from one forward pass.
    pub fn forward_and_input_gradient(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (out, trace) = self.run(x, true)?;
        let trace = trace.expect("traced run");
        let b = out.dim(0)?;
        let g = Tensor::ones((b, 1), out.dtype(), out.device())?;
        let g = self.final_linear[1].adjoint(&g, None)?;
        let g = self.final_linear[0].adjoint(&g, Some(&trace.linear_slope))?;
        let (_, _, h, w) = trace.body.dims4()?;
        let g = g.reshape((b, (), h, w))?;
        let g = self.final_conv.adjoint(&g, &trace.final_conv)?;
        let mut g = self.stddev_adjoint(&trace.body, &g)?;
        for (block, t) in self.blocks.iter().zip(&trace.blocks).rev() {
            g = block.adjoint(&g, t)?;
        }
        Ok((out, self.first.adjoint(&g, &trace.first)?))
    }

    /// basicsr's `r1_penalty`: the squared input gradient summed per sample, averaged over the
    /// batch. A scalar whose candle backward gives R1's gradient for the weights.
    pub fn r1_penalty(&self, real: &Tensor) -> Result<Tensor> {
        Ok(self.input_gradient(real)?.sqr()?.flatten_from(1)?.sum(1)?.mean(0)?)
    }

    fn run(&self, x: &Tensor, trace: bool) -> Result<(Tensor, Option<Trace>)> {
        let (b, c, h, w) = x.dims4()?;
        let s = self.cfg.out_size;
        if (c, h, w) != (3, s, s) {
            return Err(Error::Input(format!("discriminator input {:?}: expected (b, 3, {s}, {s})", x.dims())));
        }
        if b == 0 || !b.is_multiple_of(self.cfg.stddev_group.min(b)) {
            return Err(Error::Input(format!(
                "discriminator batch {b}: must be a multiple of the stddev group {}",
                self.cfg.stddev_group.min(b.max(1))
            )));
        }
        let (mut out, first) = self.first.forward_traced(x, trace)?;
        let mut blocks = Vec::new();
        for block in &self.blocks {
            let (y, t) = block.forward_traced(&out, trace)?;
            out = y;
            blocks.extend(t);
        }
        let body = out;
        let out = Tensor::cat(&[&body, &self.stddev(&body)?], 1)?;
        let (out, final_conv) = self.final_conv.forward_traced(&out, trace)?;
        let (out, linear_slope) = self.final_linear[0].forward(&out.flatten_from(1)?, trace)?;
        let (out, _) = self.final_linear[1].forward(&out, false)?;
        let trace = match (first, final_conv, linear_slope) {
            (Some(first), Some(final_conv), Some(linear_slope)) => {
                Some(Trace { first, blocks, final_conv, linear_slope, body })
            }
            _ => None,
        };
        Ok((out, trace))
    }

    /// The sample groups of the stddev statistic: the official `view(group, -1, ...)` puts sample
    /// `i` in member `i / n` of group slot `i % n`, `n = b / group`.
    fn grouped(&self, body: &Tensor) -> Result<(Tensor, usize, usize)> {
        let (b, c, h, w) = body.dims4()?;
        let group = self.cfg.stddev_group.min(b);
        Ok((body.reshape((group, b / group, c, h, w))?, group, b / group))
    }

    /// The minibatch-stddev channel `(b, 1, h, w)`: per group slot, the standard deviation over
    /// the group's members (biased, + 1e-8 inside the root) averaged over (c, h, w).
    fn stddev(&self, body: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = body.dims4()?;
        let (x, group, n) = self.grouped(body)?;
        let dev = x.broadcast_sub(&x.mean_keepdim(0)?)?;
        let sd = (dev.sqr()?.mean(0)? + 1e-8)?.sqrt()?; // (n, c, h, w)
        let stat = sd.flatten_from(1)?.mean(1)?; // (n,)
        Ok(stat.reshape((1, n, 1, 1, 1))?.broadcast_as((group, n, 1, h, w))?.reshape(((), 1, h, w))?)
    }

    /// The gradient with respect to the body's output, given `g` `(b, c + 1, h, w)` for the
    /// concatenation of body and stddev channel. For member `x_j` of a group of `G` with mean
    /// `m` and deviation `sd`, `d stat / d x_j = (x_j - m) / (G sd c h w)` per element.
    fn stddev_adjoint(&self, body: &Tensor, g: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = body.dims4()?;
        let (x, group, n) = self.grouped(body)?;
        let dev = x.broadcast_sub(&x.mean_keepdim(0)?)?;
        let sd = (dev.sqr()?.mean_keepdim(0)? + 1e-8)?.sqrt()?; // (1, n, c, h, w)
        // The statistic's total incoming gradient per group slot.
        let g_stat = g.narrow(1, c, 1)?.reshape((group, n, h * w))?.sum(2)?.sum_keepdim(0)?; // (1, n)
        let factor = (g_stat.reshape((1, n, 1, 1, 1))? / (group * c * h * w) as f64)?;
        let g_body = dev.broadcast_div(&sd)?.broadcast_mul(&factor)?.reshape((b, c, h, w))?;
        Ok((g.narrow(1, 0, c)? + g_body)?)
    }
}

impl std::fmt::Debug for StyleGan2Discriminator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StyleGan2Discriminator({:?}, {} blocks)", self.cfg, self.blocks.len())
    }
}
