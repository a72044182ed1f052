//! The layers of StyleGAN2's discriminator (basicsr's stylegan2_arch.py: `EqualConv2d`,
//! `EqualLinear`, `UpFirDnSmooth`, `FusedLeakyReLU`/`ScaledLeakyReLU`, `ConvLayer`, `ResBlock`),
//! each with its forward pass and the adjoint of that pass with respect to its input.
//!
//! The adjoints exist for the R1 penalty: it needs the gradient of the discriminator's output
//! with respect to the input image, and then the gradient of that with respect to the weights.
//! candle differentiates once only, so the input gradient is written out here as ordinary
//! candle operations on the weights; candle's backward through them then gives R1's weight
//! gradient. Every weight is read from its `Var` at call time and never cached, because the
//! optimiser updates the `Var`s in place.

use std::collections::HashMap;
use std::f64::consts::SQRT_2;
use std::sync::Mutex;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::model::ops::{conv2d, conv2d_adjoint};

/// The negative slope of every activation.
const SLOPE: f64 = 0.2;

/// Weights start as N(0, 1) and biases as 0, as the official layers initialise them: the
/// equalised learning rate moves the He scale out of the weights into the forward pass.
const WEIGHT_INIT: Init = Init::Randn { mean: 0.0, stdev: 1.0 };

/// `leaky_relu(z, 0.2) * sqrt(2)`, the official fused activation once the bias is in `z`.
fn scaled_lrelu(z: &Tensor) -> Result<Tensor> {
    candle_nn::ops::leaky_relu(z, SLOPE)? * SQRT_2
}

/// The derivative of [`scaled_lrelu`] at `z`: `sqrt(2)` where `z > 0`, `0.2 sqrt(2)` elsewhere
/// (PyTorch's choice at 0). It is piecewise constant in `z`, so its own derivative is zero
/// almost everywhere: detaching it is exact for the second-order gradient, not a shortcut.
fn scaled_lrelu_slope(z: &Tensor) -> Result<Tensor> {
    z.detach().gt(0.0)?.to_dtype(z.dtype())?.affine((1.0 - SLOPE) * SQRT_2, SLOPE * SQRT_2)
}

/// The activation of `z` and, when `trace`, its slope.
fn activate(z: &Tensor, trace: bool) -> Result<(Tensor, Option<Tensor>)> {
    let slope = if trace { Some(scaled_lrelu_slope(z)?) } else { None };
    Ok((scaled_lrelu(z)?, slope))
}

/// Reshapes a `(c,)` vector to broadcast over NCHW maps.
fn per_channel(v: &Tensor) -> Result<Tensor> {
    v.reshape((1, (), 1, 1))
}

/// A convolution with the equalised learning rate: the weight is multiplied by
/// `1 / sqrt(fan_in)` at every call.
pub(crate) struct EqualConv2d {
    /// `(out, in, k, k)`.
    weight: Tensor,
    /// `(out,)`.
    bias: Option<Tensor>,
    scale: f64,
    stride: usize,
    padding: usize,
}

impl EqualConv2d {
    pub(crate) fn new(
        vb: VarBuilder,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        padding: usize,
        bias: bool,
    ) -> Result<Self> {
        let weight = vb.get_with_hints((cout, cin, k, k), "weight", WEIGHT_INIT)?;
        let bias = if bias { Some(vb.get_with_hints(cout, "bias", Init::Const(0.0))?) } else { None };
        Ok(Self { weight, bias, scale: 1.0 / ((cin * k * k) as f64).sqrt(), stride, padding })
    }

    fn scaled_weight(&self) -> Result<Tensor> {
        self.weight.affine(self.scale, 0.0)
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = conv2d(x, &self.scaled_weight()?, self.padding, self.stride)?;
        match &self.bias {
            Some(b) => y.broadcast_add(&per_channel(b)?),
            None => Ok(y),
        }
    }

    /// The transpose of the convolution (the bias plays no part), giving a map of the input's
    /// size `in_hw`: [`conv2d_adjoint`], ordinary convolutions whose backward is fast.
    pub(crate) fn adjoint(&self, g: &Tensor, in_hw: (usize, usize)) -> Result<Tensor> {
        conv2d_adjoint(g, &self.scaled_weight()?, self.padding, self.stride, in_hw)
    }
}

/// A linear layer with the equalised learning rate (`lr_mul` 1, the only value the
/// discriminator uses), optionally followed by the fused activation.
pub(crate) struct EqualLinear {
    /// `(out, in)`.
    weight: Tensor,
    /// `(out,)`.
    bias: Tensor,
    scale: f64,
    activate: bool,
}

impl EqualLinear {
    pub(crate) fn new(vb: VarBuilder, cin: usize, cout: usize, activate: bool) -> Result<Self> {
        let weight = vb.get_with_hints((cout, cin), "weight", WEIGHT_INIT)?;
        let bias = vb.get_with_hints(cout, "bias", Init::Const(0.0))?;
        Ok(Self { weight, bias, scale: 1.0 / (cin as f64).sqrt(), activate })
    }

    /// `x`: `(b, in)`. Returns the output and, when `trace`, the activation's slope.
    pub(crate) fn forward(&self, x: &Tensor, trace: bool) -> Result<(Tensor, Option<Tensor>)> {
        let z = x.matmul(&self.weight.affine(self.scale, 0.0)?.t()?)?.broadcast_add(&self.bias.unsqueeze(0)?)?;
        if self.activate { activate(&z, trace) } else { Ok((z, None)) }
    }

    pub(crate) fn adjoint(&self, g: &Tensor, slope: Option<&Tensor>) -> Result<Tensor> {
        let g = match slope {
            Some(s) => (g * s)?,
            None => g.clone(),
        };
        g.matmul(&self.weight.affine(self.scale, 0.0)?)
    }
}

/// `UpFirDnSmooth` without resampling: `upfirdn2d` with a fixed separable FIR kernel and zero
/// padding `(pad0, pad1)` on both axes. Along one axis that is a banded matrix (the padding
/// included), so the blur is `Bh @ x @ Bw^T`: two matrix products, whose adjoint is the same
/// with the matrices transposed. On the CPU this is about 20 times faster than the
/// one-channel convolution over the `(b*c, 1, h, w)` reshape (candle's convolutions are slow
/// with one channel), and on CUDA it is batched GEMM with GEMM backward passes.
pub(crate) struct Blur {
    /// The normalised 1-D kernel, flipped: upfirdn2d convolves, a matrix row correlates.
    taps: Vec<f64>,
    pad: (usize, usize),
    dtype: DType,
    device: Device,
    /// Per input length: the band matrix `(out, in)` and its transpose, both contiguous. Fixed
    /// numbers, not weights, so they may be kept.
    bands: Mutex<HashMap<usize, (Tensor, Tensor)>>,
}

impl Blur {
    /// `k1d`: the separable 1-D kernel (official `resample_kernel`; its outer product,
    /// normalised to sum 1, is `make_resample_kernel`'s 2-D kernel); `pad`: the official
    /// `(pad0, pad1)`.
    pub(crate) fn new(k1d: &[f64], pad: (usize, usize), dtype: DType, device: &Device) -> Result<Self> {
        let total: f64 = k1d.iter().sum();
        if k1d.is_empty() || total == 0.0 {
            candle_core::bail!("blur: kernel {k1d:?} is empty or sums to zero")
        }
        let taps = k1d.iter().rev().map(|v| v / total).collect();
        Ok(Self { taps, pad, dtype, device: device.clone(), bands: Mutex::new(HashMap::new()) })
    }

    /// Row `i` of the band holds the taps at input `j = i + t - pad0`.
    fn band(&self, n: usize) -> Result<(Tensor, Tensor)> {
        let mut cache = self.bands.lock().expect("blur band cache");
        if let Some(b) = cache.get(&n) {
            return Ok(b.clone());
        }
        let k = self.taps.len();
        let Some(m) = (n + self.pad.0 + self.pad.1 + 1).checked_sub(k).filter(|&m| m > 0) else {
            candle_core::bail!("blur: {n} samples are too few for a {k}-tap kernel")
        };
        let mut v = vec![0.0; m * n];
        for i in 0..m {
            for (t, tap) in self.taps.iter().enumerate() {
                if let Some(j) = (i + t).checked_sub(self.pad.0).filter(|&j| j < n) {
                    v[i * n + j] = *tap;
                }
            }
        }
        let band = Tensor::from_vec(v, (m, n), &Device::Cpu)?.to_dtype(self.dtype)?.to_device(&self.device)?;
        let entry = (band.clone(), band.t()?.contiguous()?);
        cache.insert(n, entry.clone());
        Ok(entry)
    }

    /// `left @ x @ right` over the last two axes of `x` `(b, c, h, w)`: `left` `(h', h)`,
    /// `right` `(w, w')`.
    fn sandwich(x: &Tensor, left: &Tensor, right: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let (hl, wr) = (left.dim(0)?, right.dim(1)?);
        let y = x.reshape((b * c * h, w))?.matmul(right)?.reshape((b * c, h, wr))?;
        // The broadcast `left` has batch stride 0, which candle's batched GEMM takes as it is
        // (broadcast_matmul would copy it b*c times).
        left.broadcast_as((b * c, hl, h))?.matmul(&y)?.reshape((b, c, hl, wr))
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let ((bh, _), (_, bw_t)) = (self.band(h)?, self.band(w)?);
        Self::sandwich(x, &bh, &bw_t)
    }

    /// The transpose of [`Self::forward`]; `in_hw`: the forward input's size.
    pub(crate) fn adjoint(&self, g: &Tensor, in_hw: (usize, usize)) -> Result<Tensor> {
        let ((_, bh_t), (bw, _)) = (self.band(in_hw.0)?, self.band(in_hw.1)?);
        Self::sandwich(g, &bh_t, &bw)
    }
}

enum Activation {
    None,
    /// `FusedLeakyReLU`: its own bias `(c,)`, then the scaled LeakyReLU.
    Fused(Tensor),
    /// `ScaledLeakyReLU`: no parameters.
    Scaled,
}

/// What [`ConvLayer::adjoint`] needs from the forward pass.
pub(crate) struct ConvTrace {
    in_hw: (usize, usize),
    blurred_hw: (usize, usize),
    /// The activation's slope at each output element (detached), if the layer activates.
    slope: Option<Tensor>,
}

/// basicsr's `ConvLayer`: optional blur + stride-2 downsampling, equalised convolution, and
/// the activation. Its `nn.Sequential` indices give the state-dict keys: the blur takes index
/// 0 when present (it has no parameters), so the convolution is `0.` or `1.` and the
/// activation's bias the next index.
pub(crate) struct ConvLayer {
    blur: Option<Blur>,
    conv: EqualConv2d,
    act: Activation,
}

impl ConvLayer {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        vb: VarBuilder,
        cin: usize,
        cout: usize,
        k: usize,
        downsample: bool,
        resample_kernel: &[f64],
        bias: bool,
        activate: bool,
    ) -> Result<Self> {
        let (blur, stride, padding, idx) = if downsample {
            // UpFirDnSmooth with downsample_factor 2: pad = (taps - 2) + (k - 1), split as
            // ((pad + 1) // 2, pad // 2), so that the stride-2 convolution halves the size.
            let pad = resample_kernel.len() - 2 + k - 1;
            let blur = Blur::new(resample_kernel, (pad.div_ceil(2), pad / 2), vb.dtype(), vb.device())?;
            (Some(blur), 2, 0, 1)
        } else {
            (None, 1, k / 2, 0)
        };
        let conv = EqualConv2d::new(vb.pp(idx), cin, cout, k, stride, padding, bias && !activate)?;
        let act = match (activate, bias) {
            (false, _) => Activation::None,
            (true, true) => Activation::Fused(vb.pp(idx + 1).get_with_hints(cout, "bias", Init::Const(0.0))?),
            (true, false) => Activation::Scaled,
        };
        Ok(Self { blur, conv, act })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_traced(x, false)?.0)
    }

    /// The forward pass and, when `trace`, what the adjoint needs.
    pub(crate) fn forward_traced(&self, x: &Tensor, trace: bool) -> Result<(Tensor, Option<ConvTrace>)> {
        let (_, _, h, w) = x.dims4()?;
        let blurred = match &self.blur {
            Some(blur) => blur.forward(x)?,
            None => x.clone(),
        };
        let (_, _, bh, bw) = blurred.dims4()?;
        let z = self.conv.forward(&blurred)?;
        let (y, slope) = match &self.act {
            Activation::None => (z, None),
            Activation::Fused(bias) => activate(&z.broadcast_add(&per_channel(bias)?)?, trace)?,
            Activation::Scaled => activate(&z, trace)?,
        };
        Ok((y, trace.then_some(ConvTrace { in_hw: (h, w), blurred_hw: (bh, bw), slope })))
    }

    pub(crate) fn adjoint(&self, g: &Tensor, trace: &ConvTrace) -> Result<Tensor> {
        let g = match &trace.slope {
            Some(s) => (g * s)?,
            None => g.clone(),
        };
        let g = self.conv.adjoint(&g, trace.blurred_hw)?;
        let g = match &self.blur {
            Some(blur) => blur.adjoint(&g, trace.in_hw)?,
            None => g,
        };
        debug_assert_eq!(g.dims4()?.2, trace.in_hw.0);
        Ok(g)
    }
}

/// What [`ResBlock::adjoint`] needs from the forward pass.
pub(crate) struct ResTrace {
    conv1: ConvTrace,
    conv2: ConvTrace,
    skip: ConvTrace,
}

/// basicsr's `ResBlock`: two convolutions (the second downsampling) beside a downsampling 1x1
/// skip, summed and divided by sqrt(2).
pub(crate) struct ResBlock {
    conv1: ConvLayer,
    conv2: ConvLayer,
    skip: ConvLayer,
}

impl ResBlock {
    pub(crate) fn new(vb: VarBuilder, cin: usize, cout: usize, resample_kernel: &[f64]) -> Result<Self> {
        Ok(Self {
            conv1: ConvLayer::new(vb.pp("conv1"), cin, cin, 3, false, resample_kernel, true, true)?,
            conv2: ConvLayer::new(vb.pp("conv2"), cin, cout, 3, true, resample_kernel, true, true)?,
            skip: ConvLayer::new(vb.pp("skip"), cin, cout, 1, true, resample_kernel, false, false)?,
        })
    }

    pub(crate) fn forward_traced(&self, x: &Tensor, trace: bool) -> Result<(Tensor, Option<ResTrace>)> {
        let (out, t1) = self.conv1.forward_traced(x, trace)?;
        let (out, t2) = self.conv2.forward_traced(&out, trace)?;
        let (skip, ts) = self.skip.forward_traced(x, trace)?;
        let y = ((out + skip)? / SQRT_2)?;
        let trace = match (t1, t2, ts) {
            (Some(conv1), Some(conv2), Some(skip)) => Some(ResTrace { conv1, conv2, skip }),
            _ => None,
        };
        Ok((y, trace))
    }

    pub(crate) fn adjoint(&self, g: &Tensor, trace: &ResTrace) -> Result<Tensor> {
        let g = (g / SQRT_2)?;
        let main = self.conv1.adjoint(&self.conv2.adjoint(&g, &trace.conv2)?, &trace.conv1)?;
        main + self.skip.adjoint(&g, &trace.skip)?
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor, Var};
    use candle_nn::{VarBuilder, VarMap};

    use super::{Blur, EqualConv2d};

    fn input(shape: &[usize], phase: f64) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|i| (7.31 * i as f64 + phase).sin()).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// The adjoint `A^T g` must equal the gradient of `<g, A x>` with respect to `x`.
    fn check_adjoint(x: &Tensor, forward: impl Fn(&Tensor) -> Tensor, adjoint: impl Fn(&Tensor) -> Tensor) {
        let xv = Var::from_tensor(x).unwrap();
        let y = forward(xv.as_tensor());
        let g = input(y.dims(), 0.9);
        let want = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap().get(xv.as_tensor()).unwrap().clone();
        let got = adjoint(&g);
        assert_eq!(got.dims(), x.dims());
        let diff = (got - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
        assert!(diff < 1e-12, "adjoint off by {diff}");
    }

    #[test]
    fn conv_adjoint_is_the_transpose_for_every_stride_padding_and_parity() {
        for (k, stride, padding) in [(3, 1, 1), (3, 2, 0), (1, 2, 0), (3, 2, 1), (4, 2, 1), (1, 1, 0)] {
            // Heights and widths of one parity: candle's own conv2d backward, the reference
            // here, applies the height's output padding to both axes.
            for (h, w) in [(8, 8), (9, 7), (6, 10), (7, 7)] {
                let vm = VarMap::new();
                let vb = VarBuilder::from_varmap(&vm, DType::F64, &Device::Cpu);
                let conv = EqualConv2d::new(vb, 3, 5, k, stride, padding, true).unwrap();
                let x = input(&[2, 3, h, w], 0.5);
                check_adjoint(&x, |x| conv.forward(x).unwrap(), |g| conv.adjoint(g, (h, w)).unwrap());
            }
        }
    }

    #[test]
    fn blur_adjoint_is_the_transpose_with_symmetric_and_uneven_padding() {
        for (taps, pad) in
            [(vec![1.0, 3.0, 3.0, 1.0], (2, 2)), (vec![1.0, 3.0, 3.0, 1.0], (1, 1)), (vec![1.0, 2.0, 1.0], (2, 1))]
        {
            let blur = Blur::new(&taps, pad, DType::F64, &Device::Cpu).unwrap();
            for (h, w) in [(8, 8), (7, 10)] {
                let x = input(&[2, 3, h, w], 0.1);
                check_adjoint(&x, |x| blur.forward(x).unwrap(), |g| blur.adjoint(g, (h, w)).unwrap());
            }
        }
        // upfirdn2d's sizes: pad (2, 2) adds a row, pad (1, 1) removes one.
        let blur = Blur::new(&[1.0, 3.0, 3.0, 1.0], (2, 2), DType::F64, &Device::Cpu).unwrap();
        assert_eq!(blur.forward(&input(&[1, 1, 8, 6], 0.0)).unwrap().dims(), &[1, 1, 9, 7]);
        // A constant image stays constant away from the border (the kernel sums to 1); the corner
        // sees half of each axis's taps.
        let ones = Tensor::ones((1, 1, 8, 8), DType::F64, &Device::Cpu).unwrap();
        let y = blur.forward(&ones).unwrap().squeeze(0).unwrap().to_vec3::<f64>().unwrap();
        assert!((y[0][4][4] - 1.0).abs() < 1e-15 && (y[0][0][0] - 0.25).abs() < 1e-15);
    }
}
