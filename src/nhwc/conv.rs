//! Convolutions as matrix products on NHWC activations, with weights packed once at load.
//!
//! A 3x3 convolution reads a zero-padded input. Laid out as rows of pixels with a pitch of
//! `w + 2`, output pixel `r` of the padded grid needs, for kernel row `kh`, the three pixels
//! starting at `r + kh * (w + 2)`: `3 * c` consecutive floats. So each kernel row is one GEMM
//! whose left matrix is the padded input itself with a row stride of `c` (rows overlap): three
//! accumulating GEMMs and no im2col buffer. The two extra columns of each output row are
//! computed and dropped; the epilogue that drops them also applies bias, demodulation, noise,
//! activation and residual in the same pass.

use candle_core::{Result, Tensor};
use gemm::{Parallelism, gemm};
use rayon::prelude::*;

use super::act::{Act, Padded, lrelu};
use super::winograd::Winograd;

/// `GFPGAN_NO_WINOGRAD=1` computes every 3x3 convolution directly (for comparisons).
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

/// `dst (m x n) = lhs (m x k) * rhs (k x n)`, contiguous, on the calling thread (for work that
/// is already split across threads).
pub fn matmul_serial(dst: &mut [f32], m: usize, n: usize, k: usize, lhs: &[f32], rhs: &[f32]) {
    assert!(lhs.len() >= m * k);
    // SAFETY: lhs holds m rows of k floats.
    unsafe { matmul(dst, false, m, n, k, lhs.as_ptr(), k, rhs, Parallelism::None) };
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

/// Per-pixel work done while copying the product out of its padded grid.
#[derive(Default)]
pub struct Epilogue<'a> {
    /// Multiplier per (image, output channel): the demodulation factors.
    pub scale: Option<&'a [f32]>,
    /// Noise map `(1 or n, h, w)` and its strength.
    pub noise: Option<(&'a [f32], f32)>,
    /// Per output channel, added after scale and noise.
    pub bias: Option<&'a [f32]>,
    pub lrelu: bool,
    /// Added last (after the activation): a residual branch.
    pub residual: Option<&'a Act>,
}

impl Epilogue<'_> {
    /// Finishes output pixel `(b, y, x)` of an `h x w` map: `src` holds the raw products of
    /// its channels, `dst` receives the result.
    #[inline]
    pub fn pixel(
        &self,
        conv_bias: Option<&[f32]>,
        (b, y, x): (usize, usize, usize),
        (h, w): (usize, usize),
        src: &[f32],
        dst: &mut [f32],
    ) {
        let co = dst.len();
        let scale = self.scale.map(|s| &s[b * co..(b + 1) * co]);
        let nz = self.noise.map_or(0.0, |(map, strength)| {
            let per_image = map.len() / (h * w);
            strength * map[((b % per_image) * h + y) * w + x]
        });
        let residual = self.residual.map(|r| &r.data[((b * h + y) * w + x) * co..][..co]);
        // One simple pass per term, so that each vectorises.
        match scale {
            Some(sc) => dst.iter_mut().zip(src).zip(sc).for_each(|((d, v), k)| *d = v * k + nz),
            None => dst.iter_mut().zip(src).for_each(|(d, v)| *d = v + nz),
        }
        for bias in [conv_bias, self.bias].into_iter().flatten() {
            dst.iter_mut().zip(bias).for_each(|(d, b)| *d += b);
        }
        if self.lrelu {
            dst.iter_mut().for_each(|d| *d = lrelu(*d));
        }
        if let Some(r) = residual {
            dst.iter_mut().zip(r).for_each(|(d, r)| *d += r);
        }
    }
}

/// A convolution with stride 1 and "same" padding, kernel 1 or 3.
pub struct Conv {
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    /// `[kh][kw * cin + ci][co]`: one `(k * cin) x cout` matrix per kernel row.
    packed: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    /// The Winograd form of 3x3 kernels.
    winograd: Option<Winograd>,
}

impl Conv {
    /// From an OIHW weight (`(cout, cin, k, k)`, or `(1, cout, cin, k, k)` for modulated ones).
    pub fn new(weight: &Tensor, bias: Option<&Tensor>) -> Result<Self> {
        let dims = weight.dims();
        let (cout, cin, k) = (dims[dims.len() - 4], dims[dims.len() - 3], dims[dims.len() - 1]);
        let w = weight.reshape((cout, cin, k, k))?.permute((2, 3, 1, 0))?; // (kh, kw, ci, co)
        let packed = w.flatten_all()?.to_vec1::<f32>()?;
        let bias = bias.map(|b| b.flatten_all()?.to_vec1::<f32>()).transpose()?;
        let winograd = (k == 3).then(|| Winograd::new(&packed, cin, cout));
        Ok(Self { cin, cout, k, packed, bias, winograd })
    }

    /// Sum over the kernel taps of the squared weights, `(cin x cout)`: the demodulation
    /// factor of output `o` for input scales `s` is `1 / sqrt(sum_i s_i^2 wsq[i][o] + eps)`.
    pub fn squared_taps(&self) -> Vec<f32> {
        let mut wsq = vec![0.0f32; self.cin * self.cout];
        for tap in self.packed.chunks_exact(self.cin * self.cout) {
            wsq.iter_mut().zip(tap).for_each(|(a, w)| *a += w * w);
        }
        wsq
    }

    /// Convolves a padded input (`pad == k / 2`) and finishes each output pixel.
    pub fn forward(&self, x: &Padded, epi: &Epilogue) -> Act {
        assert_eq!((x.c, x.pad), (self.cin, self.k / 2), "conv input channels / padding");
        if let Some(wino) = self.winograd.as_ref().filter(|_| use_winograd() && Winograd::applies(x)) {
            return wino.forward(x, self.bias.as_deref(), epi);
        }
        let (n, h, w, c) = (x.n, x.h, x.w, x.c);
        let pitch = x.row_pixels();
        let rows_per_image = (h + 2 * x.pad) * pitch;
        // Last output pixel of the padded grid that is a real output, plus one.
        let m = (n - 1) * rows_per_image + (h - 1) * pitch + w;
        let kk = self.k * c;
        let mut q = vec![0.0f32; m * self.cout];
        for kh in 0..self.k {
            let rhs = &self.packed[kh * kk * self.cout..(kh + 1) * kk * self.cout];
            // SAFETY: the last row read starts at pixel (m - 1) + kh * pitch and spans k pixels,
            // which ends at the last pixel of the padded buffer for kh = k - 1.
            unsafe {
                matmul(&mut q, kh > 0, m, self.cout, kk, x.data.as_ptr().add(kh * pitch * c), c, rhs, parallelism())
            };
        }
        self.finish(&q, n, h, w, pitch, rows_per_image, epi)
    }

    fn finish(
        &self,
        q: &[f32],
        n: usize,
        h: usize,
        w: usize,
        pitch: usize,
        rows_per_image: usize,
        epi: &Epilogue,
    ) -> Act {
        let co = self.cout;
        let mut out = Act::zeros(n, h, w, co);
        let conv_bias = self.bias.as_deref();
        out.data.par_chunks_mut(w * co).enumerate().for_each(|(row, dst)| {
            let (b, y) = (row / h, row % h);
            let src = &q[(b * rows_per_image + y * pitch) * co..][..w * co];
            for (x, (s, d)) in src.chunks_exact(co).zip(dst.chunks_exact_mut(co)).enumerate() {
                epi.pixel(conv_bias, (b, y, x), (h, w), s, d);
            }
        });
        out
    }
}
