//! Convolutions as matrix products on NHWC activations, with weights packed once at load.
//!
//! A 3x3 convolution reads a zero-padded input. Laid out as rows of pixels with a pitch of
//! `w + 2`, output pixel `r` of the padded grid needs, for kernel row `kh`, the three pixels
//! starting at `r + kh * (w + 2)`: `3 * c` consecutive floats. So each kernel row is one GEMM
//! whose left matrix is the padded input itself with a row stride of `c` (rows overlap): three
//! accumulating GEMMs and no im2col buffer. The two extra columns of each output row are
//! computed and dropped; the epilogue that drops them also applies bias, demodulation, noise,
//! activation and residual in the same pass. 3x3 convolutions on larger maps go to `winograd`.

use candle_core::{Result, Tensor};
use gemm::{Parallelism, gemm};
use rayon::prelude::*;

use super::act::{Act, Input, Padded, Resample};
use super::epilogue::Epilogue;
use super::pool::Buf;
use super::winograd::Winograd;

/// `GFPGAN_NO_WINOGRAD=1` computes every 3x3 convolution directly (for comparisons; read when a
/// network loads).
fn use_winograd() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("GFPGAN_NO_WINOGRAD").is_none())
}

fn parallelism() -> Parallelism {
    Parallelism::Rayon(rayon::current_num_threads())
}

/// `dst (m x n) (+)= lhs (m x k, row stride lhs_rs) * rhs (k x n)`, all row-major.
///
/// # Safety
/// `lhs` must be valid for reads of `(m - 1) * lhs_rs + k` floats.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul(
    dst: &mut [f32],
    accumulate: bool,
    m: usize,
    n: usize,
    k: usize,
    lhs: *const f32,
    lhs_rs: usize,
    rhs: &[f32],
    parallelism: Parallelism,
) {
    assert!(dst.len() >= m * n && rhs.len() >= k * n);
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs,
            1,
            lhs_rs as isize,
            rhs.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `x (rows x k) * w_t (k x n) + bias`, for the linear layers.
pub fn linear(x: &[f32], rows: usize, w_t: &[f32], bias: Option<&[f32]>, n: usize) -> Vec<f32> {
    let k = w_t.len() / n;
    assert_eq!(x.len(), rows * k);
    let mut out = match bias {
        Some(b) => (0..rows).flat_map(|_| b.iter().copied()).collect(),
        None => vec![0.0; rows * n],
    };
    // SAFETY: x holds rows * k floats.
    unsafe { matmul(&mut out, true, rows, n, k, x.as_ptr(), k, w_t, parallelism()) };
    out
}

/// A convolution with stride 1 and "same" padding, kernel 1 or 3.
pub struct Conv {
    pub cin: usize,
    pub cout: usize,
    k: usize,
    /// The output size it was built for.
    side: usize,
    weights: Weights,
    bias: Option<Vec<f32>>,
}

/// The one form of the weights a convolution uses, decided at load by its output size.
enum Weights {
    /// `[kh][kw * cin + ci][co]`: one `(k * cin) x cout` matrix per kernel row.
    Direct(Vec<f32>),
    /// 3x3 kernels on maps `Winograd::applies` to (four times the size of the direct form).
    Winograd(Winograd),
}

impl Conv {
    /// From an OIHW weight (`(cout, cin, k, k)`, or `(1, cout, cin, k, k)` for modulated ones),
    /// for outputs of `side x side`.
    pub fn new(weight: &Tensor, bias: Option<&Tensor>, side: usize) -> Result<Self> {
        let dims = weight.dims();
        let (cout, cin, k) = (dims[dims.len() - 4], dims[dims.len() - 3], dims[dims.len() - 1]);
        let w = weight.reshape((cout, cin, k, k))?.permute((2, 3, 1, 0))?; // (kh, kw, ci, co)
        let packed = w.flatten_all()?.to_vec1::<f32>()?;
        let bias = bias.map(|b| b.flatten_all()?.to_vec1::<f32>()).transpose()?;
        let weights = if k == 3 && use_winograd() && Winograd::applies(side, side) {
            Weights::Winograd(Winograd::new(&packed, cin, cout))
        } else {
            Weights::Direct(packed)
        };
        Ok(Self { cin, cout, k, side, weights, bias })
    }

    /// Floating-point operations of the multiplications it performs per image: Winograd
    /// F(4x4, 3x3) does a quarter of the direct convolution's.
    pub fn executed_flops(&self) -> f64 {
        let direct = 2.0 * (self.cin * self.cout * self.k * self.k * self.side * self.side) as f64;
        match self.weights {
            Weights::Direct(_) => direct,
            Weights::Winograd(_) => direct / 4.0,
        }
    }

    /// Convolves `x` (zero padding of `k / 2`) and finishes each output pixel with `epi`.
    pub fn forward(&self, x: &Input, epi: &Epilogue) -> Act {
        assert_eq!(x.src.c, self.cin, "conv input channels");
        let packed = match &self.weights {
            Weights::Winograd(wino) => return wino.forward(x, self.bias.as_deref(), epi),
            Weights::Direct(packed) => packed,
        };
        if self.k == 1 && x.mode == Resample::Keep && x.scale.is_none() {
            // The input as it is: its pixels are the rows of the product, which is the output.
            let (n, h, w) = (x.src.n, x.src.h, x.src.w);
            let mut out = Act::for_overwrite(n, h, w, self.cout);
            // SAFETY: the input holds n * h * w rows of cin floats.
            unsafe { self.product(packed, &mut out.data, n * h * w, x.src.data.as_ptr(), w) };
            epi.finish(&mut out, self.bias.as_deref());
            return out;
        }
        let x = Padded::fill(x, self.k / 2);
        let (n, h, w) = (x.n, x.h, x.w);
        let pitch = x.row_pixels();
        let rows_per_image = (h + 2 * x.pad) * pitch;
        // Last output pixel of the padded grid that is a real output, plus one.
        let m = (n - 1) * rows_per_image + (h - 1) * pitch + w;
        let mut q = Buf::for_overwrite(m * self.cout);
        // SAFETY: the last row read starts at pixel (m - 1) + kh * pitch and spans k pixels,
        // which ends at the last pixel of the padded buffer for kh = k - 1.
        unsafe { self.product(packed, &mut q, m, x.data.as_ptr(), pitch) };
        let co = self.cout;
        let mut out = Act::for_overwrite(n, h, w, co);
        out.data.par_chunks_mut(w * co).enumerate().for_each(|(row, dst)| {
            let (b, y) = (row / h, row % h);
            dst.copy_from_slice(&q[(b * rows_per_image + y * pitch) * co..][..w * co]);
        });
        epi.finish(&mut out, self.bias.as_deref());
        out
    }

    /// `q (m x cout) = sum over kernel rows kh` of the input rows from pixel `kh * pitch` on
    /// (overlapping rows, `k * cin` floats each, one pixel apart) times that row's weights.
    ///
    /// # Safety
    /// `x` must be valid for reads of `(m - 1 + (k - 1) * pitch + k) * cin` floats.
    unsafe fn product(&self, packed: &[f32], q: &mut [f32], m: usize, x: *const f32, pitch: usize) {
        let (c, kk) = (self.cin, self.k * self.cin);
        for kh in 0..self.k {
            let rhs = &packed[kh * kk * self.cout..(kh + 1) * kk * self.cout];
            // SAFETY: guaranteed by the caller.
            unsafe { matmul(q, kh > 0, m, self.cout, kk, x.add(kh * pitch * c), c, rhs, parallelism()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    /// Deterministic values in about [-1, 1].
    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n).map(|i| (((i + seed) * 7919 % 1009) as f32 / 504.5) - 1.0).collect()
    }

    fn act(n: usize, h: usize, w: usize, c: usize, seed: usize) -> Act {
        Act { n, h, w, c, data: Buf::from_vec(values(n * h * w * c, seed)) }
    }

    /// The convolution written out: every output pixel as its sum over the 3x3 window of the
    /// padded input, then the epilogue's terms in order.
    fn reference(x: &Input, weight: &[f32], (cin, cout): (usize, usize), bias: &[f32], epi: &Epilogue) -> Vec<f32> {
        let padded = Padded::fill(x, 1);
        let (n, h, w) = (padded.n, padded.h, padded.w);
        let pw = w + 2;
        let mut out = vec![0.0f32; n * h * w * cout];
        for b in 0..n {
            for y in 0..h {
                for xx in 0..w {
                    let px = &mut out[((b * h + y) * w + xx) * cout..][..cout];
                    for (o, v) in px.iter_mut().enumerate() {
                        for kh in 0..3 {
                            for kw in 0..3 {
                                let src = &padded.data[((b * (h + 2) + y + kh) * pw + xx + kw) * cin..][..cin];
                                for (i, s) in src.iter().enumerate() {
                                    *v += s * weight[((o * cin + i) * 3 + kh) * 3 + kw];
                                }
                            }
                        }
                    }
                    epi.apply(Some(bias), (b, y, xx), (h, w), px);
                }
            }
        }
        out
    }

    #[test]
    fn winograd_and_direct_forms_match_the_written_out_convolution() {
        // Odd channel counts exercise the transforms' one-channel tail, the padded inner
        // dimension and the partial column panel of the product.
        let (n, cin, cout) = (2, 5, 19);
        let weight = values(cout * cin * 9, 3).iter().map(|v| v * 0.3).collect::<Vec<_>>();
        let w_t = Tensor::from_slice(&weight, (cout, cin, 3, 3), &Device::Cpu).unwrap();
        let bias_v = values(cout, 11);
        let bias = Tensor::from_slice(&bias_v, cout, &Device::Cpu).unwrap();
        let (h, w) = (16, 20);
        let scale = values(n * cin, 5).iter().map(|v| 1.0 + v).collect::<Vec<_>>();
        let demod = values(n * cout, 7);
        let noise = values(h * w, 13);
        let residual = act(n, h, w, cout, 17);
        let epi = Epilogue {
            scale: Some(&demod),
            noise: Some((&noise, 0.3)),
            bias: Some(&bias_v),
            lrelu: true,
            residual: Some(&residual),
        };
        let winograd = Conv::new(&w_t, Some(&bias), h).unwrap();
        let direct = Conv::new(&w_t, Some(&bias), 8).unwrap();
        assert!(matches!(winograd.weights, Weights::Winograd(_)) && matches!(direct.weights, Weights::Direct(_)));
        let sources = [
            (act(n, h, w, cin, 1), Resample::Keep),
            (act(n, h / 2, w / 2, cin, 2), Resample::Up),
            (act(n, 2 * h, 2 * w, cin, 3), Resample::Down),
        ];
        for (src, mode) in &sources {
            for scale in [None, Some(&scale[..])] {
                let x = Input::new(src, scale, *mode);
                let want = reference(&x, &weight, (cin, cout), &bias_v, &epi);
                for (name, conv) in [("winograd", &winograd), ("direct", &direct)] {
                    let got = conv.forward(&x, &epi);
                    assert_eq!((got.n, got.h, got.w, got.c), (n, h, w, cout));
                    let err = got.data.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
                    assert!(err < 1e-4, "{name} {mode:?} scaled {}: max error {err}", scale.is_some());
                }
            }
        }
    }
}
