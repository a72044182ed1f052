//! The small tensor operations shared by the U-Net and the StyleGAN2 decoder.

use candle_core::{Result, Tensor};

/// LeakyReLU with the slope every activation of GFP-GAN uses.
pub fn lrelu(x: &Tensor) -> Result<Tensor> {
    candle_nn::ops::leaky_relu(x, 0.2)
}

/// `F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)`.
pub fn upsample2x(x: &Tensor) -> Result<Tensor> {
    x.upsample_bilinear2d_with_scale(2.0, 2.0, false)
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
