//! The small tensor operations shared by the U-Net and the StyleGAN2 decoder.

use candle_core::{Result, Tensor};

/// LeakyReLU with the slope every activation of GFP-GAN uses.
pub fn lrelu(x: &Tensor) -> Result<Tensor> {
    candle_nn::ops::leaky_relu(x, 0.2)
}

/// `F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)`.
///
/// candle's bilinear upsampling has no backward pass, so while gradients are being tracked
/// (training) the same interpolation is composed from differentiable operations instead.
pub fn upsample2x(x: &Tensor) -> Result<Tensor> {
    if x.track_op() { upsample2x_composed(x) } else { x.upsample_bilinear2d_with_scale(2.0, 2.0, false) }
}

/// Bilinear x2 (align_corners=False) from slices: output pixel `2i` is `3/4 x[i] + 1/4 x[i-1]`
/// and `2i+1` is `3/4 x[i] + 1/4 x[i+1]`, the neighbours clamped at the border. One axis at a
/// time; the even and odd results are interleaved by stacking and reshaping.
pub fn upsample2x_composed(x: &Tensor) -> Result<Tensor> {
    let along = |x: &Tensor, axis: usize| -> Result<Tensor> {
        let n = x.dim(axis)?;
        let prev = Tensor::cat(&[x.narrow(axis, 0, 1)?, x.narrow(axis, 0, n - 1)?], axis)?;
        let next = Tensor::cat(&[x.narrow(axis, 1, n - 1)?, x.narrow(axis, n - 1, 1)?], axis)?;
        let even = ((x * 0.75)? + (prev * 0.25)?)?;
        let odd = ((x * 0.75)? + (next * 0.25)?)?;
        let mut dims = x.dims().to_vec();
        dims[axis] *= 2;
        Tensor::stack(&[even, odd], axis + 1)?.reshape(dims)
    };
    along(&along(x, 2)?, 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The composed upsampling equals candle's own (the inference path), including at the
    /// borders, and passes gradient back (each input pixel feeds four outputs per axis pair,
    /// weights summing to 4).
    #[test]
    fn composed_upsampling_equals_candle_and_differentiates() -> Result<()> {
        let x = Tensor::randn(0f64, 1.0, (2, 3, 5, 4), &Device::Cpu)?;
        let want = x.upsample_bilinear2d_with_scale(2.0, 2.0, false)?;
        let var = Var::from_tensor(&x)?;
        let got = upsample2x(var.as_tensor())?;
        let diff = (got.clone() - want)?.abs()?.max_all()?.to_scalar::<f64>()?;
        assert!(diff < 1e-12, "{diff}");
        let grad = got.sum_all()?.backward()?.get(var.as_tensor()).expect("gradient").clone();
        let g = grad.flatten_all()?.to_vec1::<f64>()?;
        assert!(g.iter().all(|v| (v - 4.0).abs() < 1e-12), "{g:?}");
        Ok(())
    }
}

/// `F.interpolate(x, scale_factor=0.5, mode='bilinear', align_corners=False)`: every output
/// sample sits exactly between four inputs, so it is a 2x2 average.
pub fn downsample2x(x: &Tensor) -> Result<Tensor> {
    x.avg_pool2d(2)
}

/// Reshapes a per-(batch, channel) matrix `(b, c)` to broadcast over NCHW maps.
pub fn per_channel(v: &Tensor) -> Result<Tensor> {
    let (b, c) = v.dims2()?;
    v.reshape((b, c, 1, 1))
}
