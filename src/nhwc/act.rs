//! Activations in NHWC layout and the resampling passes that write them (fused with a
//! per-channel scale and zero padding, so each costs one pass over memory).

use candle_core::{Device, Result, Tensor};
use rayon::prelude::*;

use super::pool::Buf;

/// A batch of feature maps, `(n, h, w, c)` row-major.
#[derive(Debug, Clone)]
pub struct Act {
    pub(super) n: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) c: usize,
    pub(super) data: Buf,
}

impl Act {
    /// An activation every value of which the caller writes.
    pub(super) fn for_overwrite(n: usize, h: usize, w: usize, c: usize) -> Self {
        Self { n, h, w, c, data: Buf::for_overwrite(n * h * w * c) }
    }

    /// `n` copies of a single image.
    pub(super) fn repeat(&self, n: usize) -> Self {
        let mut out = Self::for_overwrite(n * self.n, self.h, self.w, self.c);
        out.data.chunks_exact_mut(self.data.len()).for_each(|d| d.copy_from_slice(&self.data));
        out
    }

    /// From an NCHW candle tensor.
    pub fn from_nchw(t: &Tensor) -> Result<Self> {
        let (n, c, h, w) = t.dims4()?;
        let data = t.to_dtype(candle_core::DType::F32)?.permute((0, 2, 3, 1))?.flatten_all()?.to_vec1()?;
        Ok(Self { n, h, w, c, data: Buf::from_vec(data) })
    }

    /// To an NCHW candle tensor on the CPU.
    pub fn to_nchw(&self) -> Result<Tensor> {
        Tensor::from_slice(&self.data, (self.n, self.h, self.w, self.c), &Device::Cpu)?
            .permute((0, 3, 1, 2))?
            .contiguous()
    }

    pub(super) fn add_assign(&mut self, other: &Act) {
        debug_assert_eq!(self.data.len(), other.data.len());
        self.data.par_iter_mut().zip(other.data.par_iter()).for_each(|(a, b)| *a += b);
    }
}

/// How a pass changes the spatial size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    Keep,
    /// Bilinear x2, `align_corners=False`: every output is 0.75 of its nearest input plus 0.25
    /// of the next one away (clamped at the border).
    Up,
    /// Bilinear x0.5, `align_corners=False`: exactly the mean of each 2x2 block.
    Down,
}

impl Resample {
    pub fn side(self, s: usize) -> usize {
        match self {
            Resample::Keep => s,
            Resample::Up => s * 2,
            Resample::Down => s / 2,
        }
    }
}

/// The two inputs of x2 bilinear output `o` along an axis of `len`: `0.75 * x[i] + 0.25 * x[j]`.
fn up_taps(o: usize, len: usize) -> (usize, usize) {
    let i = o / 2;
    let j = if o % 2 == 0 { i.saturating_sub(1) } else { (i + 1).min(len - 1) };
    (i, j)
}

/// What a convolution reads: `resample(src) * scale[b, c]`, zero outside the image. Reading
/// through this view resamples and scales on the way, so the resampled map need not exist in
/// memory as a whole.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    pub src: &'a Act,
    /// A factor per image and channel (`n * c`), or none.
    pub scale: Option<&'a [f32]>,
    pub mode: Resample,
}

impl<'a> Input<'a> {
    pub fn new(src: &'a Act, scale: Option<&'a [f32]>, mode: Resample) -> Self {
        Self { src, scale, mode }
    }

    pub fn plain(src: &'a Act) -> Self {
        Self::new(src, None, Resample::Keep)
    }

    pub fn h(&self) -> usize {
        self.mode.side(self.src.h)
    }

    pub fn w(&self) -> usize {
        self.mode.side(self.src.w)
    }

    /// Pixels `x0 ..` (as many as `dst` holds) of row `y` of image `b`, in the coordinates of
    /// the resampled image; pixels outside it are zero.
    #[inline(always)]
    pub fn read_row(&self, b: usize, y: isize, x0: isize, dst: &mut [f32]) {
        let (c, h, w) = (self.src.c, self.h() as isize, self.w() as isize);
        let px = (dst.len() / c) as isize;
        if y < 0 || y >= h {
            dst.fill(0.0);
            return;
        }
        // Pixels [lo, hi) of dst lie inside the image.
        let lo = (-x0).clamp(0, px) as usize;
        let hi = (w - x0).clamp(lo as isize, px) as usize;
        dst[..lo * c].fill(0.0);
        dst[hi * c..].fill(0.0);
        if lo == hi {
            return;
        }
        let inside = &mut dst[lo * c..hi * c];
        write_segment(self.src, b, y as usize, self.mode, (x0 + lo as isize) as usize, inside);
        if let Some(s) = self.scale {
            let s = &s[b * c..(b + 1) * c];
            inside.chunks_exact_mut(c).for_each(|px| px.iter_mut().zip(s).for_each(|(v, k)| *v *= k));
        }
    }
}

/// Pixels `x0 ..` of output row `y` of image `b` of `resample(src)` into `dst`, all inside.
#[inline(always)]
fn write_segment(src: &Act, b: usize, y: usize, mode: Resample, x0: usize, dst: &mut [f32]) {
    let (c, sw) = (src.c, src.w);
    let row = |yy: usize| &src.data[(b * src.h + yy) * sw * c..][..sw * c];
    fn pixel(r: &[f32], x: usize, c: usize) -> &[f32] {
        &r[x * c..][..c]
    }
    match mode {
        Resample::Keep => dst.copy_from_slice(&row(y)[x0 * c..][..dst.len()]),
        Resample::Down => {
            let (r0, r1) = (row(2 * y), row(2 * y + 1));
            for (i, out) in dst.chunks_exact_mut(c).enumerate() {
                let x = 2 * (x0 + i);
                let (a, bb, cc, dd) = (pixel(r0, x, c), pixel(r0, x + 1, c), pixel(r1, x, c), pixel(r1, x + 1, c));
                for k in 0..c {
                    out[k] = 0.25 * ((a[k] + bb[k]) + (cc[k] + dd[k]));
                }
            }
        }
        Resample::Up => {
            // PyTorch's order: the horizontal blends of both rows, then the vertical one.
            let (i, j) = up_taps(y, src.h);
            let (ri, rj) = (row(i), row(j));
            for (o, out) in dst.chunks_exact_mut(c).enumerate() {
                let (xi, xj) = up_taps(x0 + o, sw);
                let (a, bb, cc, dd) = (pixel(ri, xi, c), pixel(ri, xj, c), pixel(rj, xi, c), pixel(rj, xj, c));
                for k in 0..c {
                    out[k] = 0.75 * (0.75 * a[k] + 0.25 * bb[k]) + 0.25 * (0.75 * cc[k] + 0.25 * dd[k]);
                }
            }
        }
    }
}

/// An input read in full into a buffer with `pad` zero pixels around it,
/// `(n, h + 2 pad, w + 2 pad, c)`: for the convolutions computed as plain matrix products.
pub struct Padded {
    pub n: usize,
    /// Size of the image inside the padding.
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub pad: usize,
    pub data: Buf,
}

impl Padded {
    pub fn row_pixels(&self) -> usize {
        self.w + 2 * self.pad
    }

    pub fn fill(x: &Input, pad: usize) -> Self {
        let (n, c, h, w) = (x.src.n, x.src.c, x.h(), x.w());
        let (ph, pw) = (h + 2 * pad, w + 2 * pad);
        let mut data = Buf::for_overwrite(n * ph * pw * c);
        data.par_chunks_mut(pw * c).enumerate().for_each(|(row, dst)| {
            let (b, py) = (row / ph, row % ph);
            x.read_row(b, py as isize - pad as isize, -(pad as isize), dst);
        });
        Self { n, h, w, c, pad, data }
    }
}

/// `resample(src)` as a new activation.
pub fn resample(src: &Act, mode: Resample) -> Act {
    let p = Padded::fill(&Input::new(src, None, mode), 0);
    Act { n: p.n, h: p.h, w: p.w, c: p.c, data: p.data }
}

/// LeakyReLU(0.2), as a multiplication by a selected factor: written as a plain select, the
/// compiler turns it into masked stores, which are slow on AMD processors.
#[inline(always)]
pub fn lrelu(v: f32) -> f32 {
    v * if v >= 0.0 { 1.0 } else { 0.2 }
}
