//! Small tensor operations shared by the face-api nets: input checks and normalisation, TF
//! "SAME" padding, the NHWC depthwise convolution and the 1x1 (pointwise) convolution.

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};

/// Per-channel mean (R, G, B) that every face-api net subtracts before dividing by 255.
pub const MEAN_RGB: [f32; 3] = [122.782, 117.001, 104.298];

/// Checks a batch of `size`x`size` RGB faces laid out `(n, size, size, 3)` (NHWC, 0..255) and
/// returns it as contiguous `dtype` (f32 as face-api runs; f64 for gradient checks). face-api
/// zero-pads and resizes other sizes first; we leave that to the caller rather than guess.
pub fn check_input(x: &Tensor, size: usize, net: &str, dtype: DType) -> Result<Tensor> {
    let ok = matches!(x.dims(), &[n, h, w, 3] if n > 0 && h == size && w == size);
    if !ok {
        return Err(Error::Input(format!(
            "{net} takes a batch of {size}x{size} RGB faces shaped (n, {size}, {size}, 3), got {:?}",
            x.dims()
        )));
    }
    Ok(x.to_dtype(dtype)?.contiguous()?)
}

/// `(x - MEAN_RGB) / 255` on NHWC, as face-api's `normalize(x, meanRgb).div(255)` computes it
/// (a true division, not a multiplication by 1/255, so the rounding is the same).
pub fn normalize(x: &Tensor) -> Result<Tensor> {
    let mean = Tensor::new(&MEAN_RGB, x.device())?.reshape((1, 1, 1, 3))?.to_dtype(x.dtype())?;
    let d255 = Tensor::new(&[255f32], x.device())?.reshape((1, 1, 1, 1))?.to_dtype(x.dtype())?;
    Ok(x.broadcast_sub(&mean)?.broadcast_div(&d255)?)
}

/// TF "SAME" padding for one axis: `(before, after)`. The smaller half goes first, so a 3x3
/// stride-2 convolution on an even size pads 0 before and 1 after (not 1 and 1).
pub fn same_padding(size: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(size);
    (total / 2, total - total / 2)
}

/// Zero-pads an NCHW tensor to TF "SAME" for a square `kernel` and `stride`, so that a
/// convolution with padding 0 gives TF's output.
pub fn pad_same_nchw(x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let (top, bottom) = same_padding(h, kernel, stride);
    let (left, right) = same_padding(w, kernel, stride);
    Ok(x.pad_with_zeros(2, top, bottom)?.pad_with_zeros(3, left, right)?)
}

/// Average pooling 2x2, stride 2, VALID (an odd last row or column is dropped), on NCHW. The
/// odd edge is cut off before pooling: candle's pooling gives the same values on odd sizes, but
/// its backward pass assumes even ones and returns a wrong gradient (training's identity loss).
pub fn avg_pool_2x2(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if h % 2 == 0 && w % 2 == 0 {
        return Ok(x.avg_pool2d(2)?);
    }
    Ok(x.narrow(2, 0, h / 2 * 2)?.narrow(3, 0, w / 2 * 2)?.contiguous()?.avg_pool2d(2)?)
}

/// Max pooling 3x3, stride 2, VALID, on NCHW. candle's pooling has a backward pass only when
/// the kernel equals the stride, so while gradients are tracked (the identity loss of training)
/// it is the maximum of the nine shifted stride-2 views instead.
pub fn max_pool_3x3_stride2(x: &Tensor) -> Result<Tensor> {
    if !x.track_op() {
        return Ok(x.max_pool2d_with_stride(3, 2)?);
    }
    let (n, c, h, w) = x.dims4()?;
    let (oh, ow) = ((h - 3) / 2 + 1, (w - 3) / 2 + 1);
    // Rows dy, dy + 2, ..., dy + 2 (oh - 1): take 2 * oh rows from dy, pair them, keep the first.
    let every_other = |t: &Tensor, axis: usize, start: usize, count: usize| -> Result<Tensor> {
        let len = t.dim(axis)?;
        let t = if start + 2 * count > len {
            t.narrow(axis, start, len - start)?.pad_with_zeros(axis, 0, start + 2 * count - len)?
        } else {
            t.narrow(axis, start, 2 * count)?
        };
        let mut dims = t.dims().to_vec();
        dims[axis] = count;
        dims.insert(axis + 1, 2);
        Ok(t.reshape(dims)?.narrow(axis + 1, 0, 1)?.squeeze(axis + 1)?)
    };
    let mut out: Option<Tensor> = None;
    for dy in 0..3 {
        let rows = every_other(x, 2, dy, oh)?;
        for dx in 0..3 {
            let view = every_other(&rows, 3, dx, ow)?;
            out = Some(match out {
                Some(m) => m.maximum(&view)?,
                None => view,
            });
        }
    }
    let out = out.expect("nine views");
    debug_assert_eq!(out.dims4()?, (n, c, oh, ow));
    Ok(out)
}

/// Depthwise 3x3 convolution, channel multiplier 1, TF "SAME" padding, on NHWC.
///
/// Hand-written because candle's grouped convolution runs one convolution per channel. `filter`
/// is TF's `[3, 3, C, 1]` flattened (index `(ky * 3 + kx) * C + c`); every output sums its taps
/// in (ky, kx) order, starting from zero, like the tfjs CPU kernel.
pub fn depthwise3x3(x: &Tensor, filter: &[f32], stride: usize) -> Result<Tensor> {
    let (n, h, w, c) = x.dims4()?;
    if filter.len() != 9 * c || stride == 0 {
        return Err(Error::Input(format!(
            "depthwise 3x3: {} filter values and stride {stride} for {c} channels",
            filter.len()
        )));
    }
    let (top, _) = same_padding(h, 3, stride);
    let (left, _) = same_padding(w, 3, stride);
    let (oh, ow) = (h.div_ceil(stride), w.div_ceil(stride));
    let input = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let mut out = vec![0f32; n * oh * ow * c];
    for (src, dst) in input.chunks_exact(h * w * c).zip(out.chunks_exact_mut(oh * ow * c)) {
        for oy in 0..oh {
            for ox in 0..ow {
                let acc = &mut dst[(oy * ow + ox) * c..][..c];
                for ky in 0..3 {
                    // Row in the unpadded input; outside it the padding contributes zero.
                    let Some(iy) = (oy * stride + ky).checked_sub(top).filter(|&y| y < h) else { continue };
                    for kx in 0..3 {
                        let Some(ix) = (ox * stride + kx).checked_sub(left).filter(|&x| x < w) else { continue };
                        let px = &src[(iy * w + ix) * c..][..c];
                        let k = &filter[(ky * 3 + kx) * c..][..c];
                        for ((a, &v), &f) in acc.iter_mut().zip(px).zip(k) {
                            *a += v * f;
                        }
                    }
                }
            }
        }
    }
    Ok(Tensor::from_vec(out, (n, oh, ow, c), &Device::Cpu)?.to_device(x.device())?)
}

/// 1x1 convolution on NHWC: one matrix product `(n*h*w, cin) @ (cin, cout)`; `weight` is the
/// TF `[1, 1, cin, cout]` filter reshaped to `(cin, cout)`.
pub fn pointwise(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let (n, h, w, c) = x.dims4()?;
    let cout = weight.dim(1)?;
    Ok(x.reshape((n * h * w, c))?.matmul(weight)?.reshape((n, h, w, cout))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The differentiable form (taken while a gradient is tracked) equals candle's pooling, on
    /// odd and even sizes, and its gradient reaches each window's maximum.
    #[test]
    fn tracked_max_pool_equals_the_plain_one() -> Result<()> {
        for side in [72usize, 9, 8] {
            let x = Tensor::randn(0f32, 1.0, (2, 3, side, side), &Device::Cpu)?;
            let plain = max_pool_3x3_stride2(&x)?;
            let var = candle_core::Var::from_tensor(&x)?;
            let tracked = max_pool_3x3_stride2(var.as_tensor())?;
            assert_eq!(plain.dims(), tracked.dims());
            let diff = (plain - &tracked)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert_eq!(diff, 0.0, "side {side}");
            let grad = tracked.sum_all()?.backward()?.get(var.as_tensor()).expect("gradient").clone();
            let total = grad.sum_all()?.to_scalar::<f32>()?;
            assert!((total - tracked.elem_count() as f32).abs() < 1e-3, "one unit of gradient per output, got {total}");
        }
        Ok(())
    }

    /// Both pools' gradients against central finite differences (f64), on odd sizes.
    #[test]
    fn pool_gradients_match_finite_differences() -> Result<()> {
        let dev = Device::Cpu;
        let pools: [(&str, fn(&Tensor) -> Result<Tensor>, usize); 2] =
            [("avg", avg_pool_2x2, 17), ("max", max_pool_3x3_stride2, 19)];
        for (name, pool, side) in pools {
            let x = Tensor::rand(-1f64, 1.0, (1, 2, side, side), &dev)?;
            let v = Tensor::randn(0f64, 1.0, pool(&x)?.shape(), &dev)?;
            let f = |x: &Tensor| -> Result<f64> { Ok((pool(x)? * &v)?.sum_all()?.to_scalar::<f64>()?) };
            let var = candle_core::Var::from_tensor(&x)?;
            let tracked = (pool(var.as_tensor())? * &v)?.sum_all()?;
            let grad = tracked.backward()?.get(var.as_tensor()).expect("gradient").clone();
            let dir = Tensor::randn(0f64, 1.0, x.shape(), &dev)?;
            let predicted = (grad * &dir)?.sum_all()?.to_scalar::<f64>()?;
            let eps = 1e-6;
            let measured = (f(&(&x + (&dir * eps)?)?)? - f(&(&x - (&dir * eps)?)?)?) / (2.0 * eps);
            assert!((predicted - measured).abs() < 1e-6 * measured.abs().max(1.0), "{name}: {predicted} vs {measured}");
        }
        Ok(())
    }

    #[test]
    fn same_padding_matches_tensorflow() {
        assert_eq!(same_padding(112, 3, 2), (0, 1));
        assert_eq!(same_padding(7, 3, 2), (1, 1));
        assert_eq!(same_padding(35, 3, 1), (1, 1));
        assert_eq!(same_padding(4, 3, 2), (0, 1));
    }

    #[test]
    fn stride2_depthwise_uses_tensorflow_windows() {
        // The NOTES.md check: all-ones 3x3, stride 2, SAME on 4x4 holding 1..16 -> 54 45 72 54.
        let x = Tensor::arange(1f32, 17., &Device::Cpu).unwrap().reshape((1, 4, 4, 1)).unwrap();
        let y = depthwise3x3(&x, &[1.0; 9], 2).unwrap();
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), vec![54., 45., 72., 54.]);
        // Stride 1 equals candle's (symmetric padding 1) convolution.
        let k = Tensor::arange(0f32, 9., &Device::Cpu).unwrap();
        let y1 = depthwise3x3(&x, &k.to_vec1::<f32>().unwrap(), 1).unwrap();
        let want = x
            .permute((0, 3, 1, 2))
            .unwrap()
            .conv2d(&k.reshape((1, 1, 3, 3)).unwrap(), 1, 1, 1, 1)
            .unwrap()
            .permute((0, 2, 3, 1))
            .unwrap();
        let d = (y1 - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(d, 0.0);
    }
}
