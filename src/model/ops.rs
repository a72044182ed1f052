//! The small tensor operations shared by the U-Net and the StyleGAN2 decoder, and the
//! differentiable convolution every trained network uses.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor, WithDType};

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

/// `x.conv2d(w, padding, stride, 1, 1)` (`x`: `(b, cin, h, w)`, `w`: `(cout, cin, k, k)`) with a
/// fast backward pass on the CPU.
///
/// candle's own conv2d backward computes the input gradient with `conv_transpose2d`, whose CPU
/// kernel is a direct loop, and the kernel gradient with its tiled conv2d, whose im2col gathers
/// element by element. While gradients are tracked on the CPU (f32 or f64, square kernels), this
/// runs candle's conv2d inside a custom op whose backward builds one im2col matrix with row
/// copies and gets both gradients from GEMMs ([`Conv2dOp`]). Otherwise (inference, CUDA, other
/// dtypes) it is candle's conv2d itself, so results are unchanged.
pub fn conv2d(x: &Tensor, w: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
    let cpu_float = x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64);
    let square = w.rank() == 4 && w.dim(2)? == w.dim(3)?;
    if cpu_float && square && (x.track_op() || w.track_op()) {
        x.apply_op2(w, Conv2dOp { padding, stride })
    } else {
        x.conv2d(w, padding, stride, 1, 1)
    }
}

/// The transpose of `x -> x.conv2d(w, padding, stride, 1, 1)` applied to `g`, the gradient of
/// the convolution's output: a map of the input's size `in_hw`. Written with ordinary conv2d
/// (im2col + GEMM on the CPU), where candle's `conv_transpose2d` is a direct loop, and
/// differentiable in `g` and `w` through [`conv2d`]. Requires `padding < k` (square kernels).
///
/// Stride 1: the convolution of `g`, padded by `k - 1 - padding`, with the flipped, in/out-swapped
/// kernel. Stride `s > 1`, polyphase: input sample `j = q s + r` (padded coordinates) receives
/// `sum_u w[r + s u] g[q - u]`, a stride-1 convolution of `g` with the taps `r, r + s, ...`; the
/// `s * s` phase maps are interleaved. This does the forward pass's work, where inserting zeros
/// between the samples of `g` would do `s * s` times as much.
pub fn conv2d_adjoint(g: &Tensor, w: &Tensor, padding: usize, stride: usize, in_hw: (usize, usize)) -> Result<Tensor> {
    let (_, _, kh, kw) = w.dims4()?;
    if kh != kw || padding >= kh || stride == 0 {
        candle_core::bail!("conv adjoint: padding {padding}, stride {stride} of a {kh}x{kw} kernel is not supported")
    }
    let k = kh;
    let (b, _, ho, wo) = g.dims4()?;
    for (n_in, n_out) in [(in_hw.0, ho), (in_hw.1, wo)] {
        if n_out == 0 || (n_in + 2 * padding).checked_sub(k).map(|span| span / stride + 1) != Some(n_out) {
            candle_core::bail!("conv adjoint: {n_out} outputs do not come from {n_in} inputs")
        }
    }
    // (cin, cout, k, k), flipped: a true convolution as candle's correlation.
    let flipped = |w: &Tensor| -> Result<Tensor> {
        let w = if w.dim(2)? > 1 || w.dim(3)? > 1 { w.contiguous()?.flip(&[2, 3])? } else { w.clone() };
        w.transpose(0, 1)?.contiguous()
    };
    if stride == 1 {
        return conv2d(g, &flipped(w)?, k - 1 - padding, 1);
    }
    let s = stride;
    // Phase outputs cover q in [q0, q0 + len) on each axis: j = q s + r from q0 s <= padding
    // to past padding + n_in - 1.
    let q0 = padding / s;
    let len = |n_in: usize| (padding + n_in).div_ceil(s) - q0;
    let (lh, lw) = (len(in_hw.0), len(in_hw.1));
    let cin = w.dim(1)?;
    let mut rows = Vec::with_capacity(s);
    for rh in 0..s {
        let mut phases = Vec::with_capacity(s);
        for rw in 0..s {
            // Taps rh, rh + s, ... (and likewise for the width).
            let (th, tw) = ((k - rh.min(k)).div_ceil(s), (k - rw.min(k)).div_ceil(s));
            if th == 0 || tw == 0 {
                phases.push(Tensor::zeros((b, cin, lh, lw), g.dtype(), g.device())?);
                continue;
            }
            let taps = |t: &Tensor, dim: usize, r: usize, n: usize| -> Result<Tensor> {
                if n == 1 || s == 1 {
                    t.narrow(dim, r, 1)
                } else {
                    let idx: Vec<u32> = (0..n).map(|u| (r + s * u) as u32).collect();
                    t.contiguous()?.index_select(&Tensor::new(idx, t.device())?, dim)
                }
            };
            let sub = taps(&taps(w, 2, rh, th)?, 3, rw, tw)?;
            // z[q] = sum_u sub[u] g[q - u] = sum_v flip(sub)[v] g[q - (t - 1) + v]: g's window
            // from q0 - (t - 1), zero outside, convolved without padding.
            let gw = window(g, 2, q0 as isize - (th as isize - 1), lh + th - 1)?;
            let gw = window(&gw, 3, q0 as isize - (tw as isize - 1), lw + tw - 1)?;
            phases.push(conv2d(&gw, &flipped(&sub)?, 0, 1)?);
        }
        // Interleave along the width: (b, cin, lh, lw, s) -> (b, cin, lh, lw s).
        rows.push(Tensor::stack(&phases, 4)?.reshape((b, cin, lh, lw * s))?);
    }
    let full = Tensor::stack(&rows, 3)?.reshape((b, cin, lh * s, lw * s))?;
    let start = padding - q0 * s;
    full.narrow(2, start, in_hw.0)?.narrow(3, start, in_hw.1)
}

/// Elements `start .. start + len` of `t` along `dim`, zero where that leaves `t`.
fn window(t: &Tensor, dim: usize, start: isize, len: usize) -> Result<Tensor> {
    let n = t.dim(dim)? as isize;
    let end = start + len as isize;
    let (lo, hi) = (start.clamp(0, n), end.clamp(0, n));
    if lo >= hi {
        let mut dims = t.dims().to_vec();
        dims[dim] = len;
        return Tensor::zeros(dims, t.dtype(), t.device());
    }
    let inner = if (lo, hi) == (0, n) { t.clone() } else { t.narrow(dim, lo as usize, (hi - lo) as usize)? };
    let (left, right) = ((lo - start) as usize, (end - hi) as usize);
    if left == 0 && right == 0 { Ok(inner) } else { inner.pad_with_zeros(dim, left, right) }
}

/// [`conv2d`] as a candle custom op (CPU only).
#[derive(Clone, Copy)]
struct Conv2dOp {
    padding: usize,
    stride: usize,
}

/// The elements of `data` that `layout` addresses, in row-major order.
fn gather<T: Copy>(data: &[T], layout: &Layout) -> Vec<T> {
    if let Some((start, end)) = layout.contiguous_offsets() {
        return data[start..end].to_vec();
    }
    let (dims, strides) = (layout.dims(), layout.stride());
    let mut out = Vec::with_capacity(layout.shape().elem_count());
    let mut index = vec![0usize; dims.len()];
    let mut offset = layout.start_offset();
    if dims.contains(&0) {
        return out;
    }
    loop {
        out.push(data[offset]);
        // Advance the multi-index, last axis fastest.
        let mut d = dims.len();
        loop {
            if d == 0 {
                return out;
            }
            d -= 1;
            index[d] += 1;
            offset += strides[d];
            if index[d] < dims[d] {
                break;
            }
            offset -= strides[d] * dims[d];
            index[d] = 0;
        }
    }
}

impl Conv2dOp {
    fn forward<T: WithDType>(&self, x: &[T], lx: &Layout, w: &[T], lw: &Layout) -> Result<(Vec<T>, Shape)> {
        let dev = candle_core::Device::Cpu;
        let x = Tensor::from_vec(gather(x, lx), lx.shape(), &dev)?;
        let w = Tensor::from_vec(gather(w, lw), lw.shape(), &dev)?;
        let y = x.conv2d(&w, self.padding, self.stride, 1, 1)?;
        Ok((y.flatten_all()?.to_vec1::<T>()?, y.shape().clone()))
    }
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "gfpgan-conv2d"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(w)) => {
                let (y, shape) = self.forward(x, l1, w, l2)?;
                Ok((CpuStorage::F32(y), shape))
            }
            (CpuStorage::F64(x), CpuStorage::F64(w)) => {
                let (y, shape) = self.forward(x, l1, w, l2)?;
                Ok((CpuStorage::F64(y), shape))
            }
            _ => candle_core::bail!("gfpgan-conv2d: f32 or f64 input and kernel of one dtype expected"),
        }
    }

    /// Both gradients from one im2col matrix of the input `(b, cin k k, ho wo)`: the kernel
    /// gradient is `sum_b g_b cols_b^T`, the input gradient the col2im of `w^T g_b` (GEMMs and
    /// row copies; candle's own backward uses `conv_transpose2d`, a direct loop, and its tiled
    /// conv2d, whose im2col gathers element by element).
    fn bwd(&self, x: &Tensor, w: &Tensor, _y: &Tensor, g: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // Detached: the gradients are plain numbers, not graphs (candle differentiates once).
        let (x, w, g) = (x.detach().contiguous()?, w.detach(), g.detach().contiguous()?);
        let geo = Geometry::new(&x, &w, &g, self.padding, self.stride)?;
        let (b, cout, cols_k, p) = (geo.b, w.dim(0)?, geo.c * geo.k * geo.k, geo.ho * geo.wo);
        let cols = match x.dtype() {
            DType::F32 => geo.im2col::<f32>(&x)?,
            DType::F64 => geo.im2col::<f64>(&x)?,
            dt => candle_core::bail!("gfpgan-conv2d: unsupported dtype {dt:?}"),
        };
        let g = g.reshape((b, cout, p))?;
        let grad_w = g.matmul(&cols.transpose(1, 2)?)?.sum(0)?.reshape(w.shape())?;
        let w_t = w.reshape((cout, cols_k))?.t()?.broadcast_as((b, cols_k, cout))?;
        let dcols = w_t.matmul(&g)?;
        let grad_x = match x.dtype() {
            DType::F32 => geo.col2im::<f32>(&dcols)?,
            _ => geo.col2im::<f64>(&dcols)?,
        };
        Ok((Some(grad_x), Some(grad_w)))
    }
}

/// The sizes of one convolution, for [`Geometry::im2col`] and [`Geometry::col2im`].
struct Geometry {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    padding: usize,
    ho: usize,
    wo: usize,
}

impl Geometry {
    fn new(x: &Tensor, w: &Tensor, g: &Tensor, padding: usize, stride: usize) -> Result<Self> {
        let (b, c, h, wd) = x.dims4()?;
        let (_, cin, kh, kw) = w.dims4()?;
        let (_, _, ho, wo) = g.dims4()?;
        if kh != kw || cin != c {
            candle_core::bail!("gfpgan-conv2d: kernel {:?} for input {:?}", w.dims(), x.dims())
        }
        Ok(Self { b, c, h, w: wd, k: kh, stride, padding, ho, wo })
    }

    /// The outputs `ox` whose input column `ox s + kw - padding` lies in `0..n`.
    fn span(&self, offset: usize, n: usize, n_out: usize) -> (usize, usize) {
        let (s, p) = (self.stride, self.padding);
        let lo = p.saturating_sub(offset).div_ceil(s);
        let hi = if n + p > offset { ((n + p - offset - 1) / s + 1).min(n_out) } else { 0 };
        (lo, hi.max(lo))
    }

    /// `(b, c k k, ho wo)`: row `(ci, kh, kw)` of sample `bi` holds the padded input at
    /// `(oy s + kh, ox s + kw)` for every output `(oy, ox)`.
    fn im2col<T: WithDType + Default>(&self, x: &Tensor) -> Result<Tensor> {
        use rayon::prelude::*;
        let (k, s, p) = (self.k, self.stride, self.padding);
        if k == 1 && s == 1 && p == 0 {
            return x.reshape((self.b, self.c, self.h * self.w));
        }
        let src = x.flatten_all()?.to_vec1::<T>()?;
        let (hw, plane) = (self.h * self.w, self.ho * self.wo);
        let mut cols = vec![T::default(); self.b * self.c * k * k * plane];
        cols.par_chunks_mut(plane).enumerate().for_each(|(row, dst)| {
            let (kw, kh, channel) = (row % k, (row / k) % k, row / (k * k));
            let src = &src[channel * hw..(channel + 1) * hw];
            let (x_lo, x_hi) = self.span(kw, self.w, self.wo);
            let (y_lo, y_hi) = self.span(kh, self.h, self.ho);
            for oy in y_lo..y_hi {
                let srow = &src[(oy * s + kh - p) * self.w..][..self.w];
                let drow = &mut dst[oy * self.wo..][..self.wo];
                if s == 1 {
                    drow[x_lo..x_hi].copy_from_slice(&srow[x_lo + kw - p..x_hi + kw - p]);
                } else {
                    for ox in x_lo..x_hi {
                        drow[ox] = srow[ox * s + kw - p];
                    }
                }
            }
        });
        Tensor::from_vec(cols, (self.b, self.c * k * k, plane), &candle_core::Device::Cpu)
    }

    /// The transpose of [`Self::im2col`]: sums `(b, c k k, ho wo)` back into `(b, c, h, w)`.
    fn col2im<T: WithDType + Default + std::ops::AddAssign>(&self, cols: &Tensor) -> Result<Tensor> {
        use rayon::prelude::*;
        let (k, s, p) = (self.k, self.stride, self.padding);
        let shape = (self.b, self.c, self.h, self.w);
        if k == 1 && s == 1 && p == 0 {
            return cols.reshape(shape);
        }
        let cols = cols.flatten_all()?.to_vec1::<T>()?;
        let (hw, plane) = (self.h * self.w, self.ho * self.wo);
        let mut out = vec![T::default(); self.b * self.c * hw];
        out.par_chunks_mut(hw).enumerate().for_each(|(channel, dst)| {
            for kh in 0..k {
                let (y_lo, y_hi) = self.span(kh, self.h, self.ho);
                for kw in 0..k {
                    let (x_lo, x_hi) = self.span(kw, self.w, self.wo);
                    let src = &cols[((channel * k + kh) * k + kw) * plane..][..plane];
                    for oy in y_lo..y_hi {
                        let drow = &mut dst[(oy * s + kh - p) * self.w..][..self.w];
                        let srow = &src[oy * self.wo..][..self.wo];
                        if s == 1 {
                            let d = &mut drow[x_lo + kw - p..x_hi + kw - p];
                            for (d, v) in d.iter_mut().zip(&srow[x_lo..x_hi]) {
                                *d += *v;
                            }
                        } else {
                            for ox in x_lo..x_hi {
                                drow[ox * s + kw - p] += srow[ox];
                            }
                        }
                    }
                }
            }
        });
        Tensor::from_vec(out, shape, &candle_core::Device::Cpu)
    }
}

#[cfg(test)]
mod conv_tests {
    use super::*;
    use candle_core::{Device, Var};

    fn input(shape: &[usize], phase: f64) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|i| (7.31 * i as f64 + phase).sin()).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        assert_eq!(a.dims(), b.dims());
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f64>().unwrap()
    }

    /// The custom op's output and gradients equal candle's own conv2d's: stride 1 and 2,
    /// padding 0 and 1, kernel 1 and 3, odd and even sizes, and a non-contiguous input. candle's
    /// own backward applies the height's output padding to both axes, so its inputs are square.
    #[test]
    fn custom_conv_gradients_equal_candles() {
        for (k, stride, padding) in [(1, 1, 0), (3, 1, 1), (3, 1, 0), (1, 2, 0), (3, 2, 0), (3, 2, 1)] {
            for side in [7, 8, 9] {
                for transposed in [false, true] {
                    let mut x = input(&[2, 3, side, side], 0.3);
                    if transposed {
                        x = x.transpose(2, 3).unwrap();
                    }
                    let w = input(&[5, 3, k, k], 1.1);
                    let (xv, wv) = (Var::from_tensor(&x).unwrap(), Var::from_tensor(&w).unwrap());
                    let run = |f: &dyn Fn(&Tensor, &Tensor) -> Tensor| {
                        let y = f(xv.as_tensor(), wv.as_tensor());
                        let g = input(y.dims(), 0.7);
                        let grads = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
                        (y, grads.get(xv.as_tensor()).unwrap().clone(), grads.get(wv.as_tensor()).unwrap().clone())
                    };
                    let (y0, gx0, gw0) = run(&|x, w| x.conv2d(w, padding, stride, 1, 1).unwrap());
                    let (y1, gx1, gw1) = run(&|x, w| conv2d(x, w, padding, stride).unwrap());
                    let case = format!("k {k} stride {stride} padding {padding} side {side} transposed {transposed}");
                    assert_eq!(max_diff(&y0, &y1), 0.0, "{case}: output");
                    assert!(max_diff(&gx0, &gx1) < 1e-10, "{case}: input gradient");
                    assert!(max_diff(&gw0, &gw1) < 1e-10, "{case}: kernel gradient");
                }
            }
        }
    }

    /// Non-square inputs, where candle's own backward fails. The output is linear in each
    /// argument, so the reference gradients are exact element by element: the gradient at one
    /// element of `x` (or `w`) is `<g, conv>` with that element a one and every other zero.
    #[test]
    fn custom_conv_gradients_on_non_square_inputs() {
        let dev = Device::Cpu;
        for (k, stride, padding) in
            [(3, 2, 0), (3, 2, 1), (1, 2, 0), (3, 1, 1), (3, 1, 0), (4, 2, 1), (3, 2, 2), (5, 2, 2), (3, 3, 1)]
        {
            for (h, w) in [(9, 8), (8, 11), (6, 7)] {
                let (cin, cout) = (3, 4);
                let x = input(&[1, cin, h, w], 0.2);
                let kern = input(&[cout, cin, k, k], 0.4);
                let (xv, wv) = (Var::from_tensor(&x).unwrap(), Var::from_tensor(&kern).unwrap());
                let y = conv2d(xv.as_tensor(), wv.as_tensor(), padding, stride).unwrap();
                let g = input(y.dims(), 0.6);
                let grads = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
                let (gx, gw) = (grads.get(xv.as_tensor()).unwrap(), grads.get(wv.as_tensor()).unwrap());
                // All unit inputs at once, as a batch.
                let n = cin * h * w;
                let units = Tensor::eye(n, DType::F64, &dev).unwrap().reshape((n, cin, h, w)).unwrap();
                let ys = units.conv2d(&kern, padding, stride, 1, 1).unwrap();
                let want_x = ys.broadcast_mul(&g).unwrap().flatten_from(1).unwrap().sum(1).unwrap();
                let case = format!("k {k} stride {stride} padding {padding} {h}x{w}");
                assert!(max_diff(&gx.flatten_all().unwrap(), &want_x) < 1e-10, "{case}: input gradient");
                let m = cout * cin * k * k;
                let want_w: Vec<f64> = (0..m)
                    .map(|j| {
                        let mut unit = vec![0.0; m];
                        unit[j] = 1.0;
                        let unit = Tensor::from_vec(unit, (cout, cin, k, k), &dev).unwrap();
                        let y = x.conv2d(&unit, padding, stride, 1, 1).unwrap();
                        (y * &g).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap()
                    })
                    .collect();
                let want_w = Tensor::new(want_w, &dev).unwrap();
                assert!(max_diff(&gw.flatten_all().unwrap(), &want_w) < 1e-10, "{case}: kernel gradient");
            }
        }
    }
}
