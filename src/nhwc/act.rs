//! Activations in NHWC layout and the resampling passes that write them (fused with a
//! per-channel scale and zero padding, so each costs one pass over memory).

use candle_core::{Device, Result, Tensor};
use rayon::prelude::*;

/// A batch of feature maps, `(n, h, w, c)` row-major.
#[derive(Debug, Clone)]
pub struct Act {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub data: Vec<f32>,
}

impl Act {
    pub fn zeros(n: usize, h: usize, w: usize, c: usize) -> Self {
        Self { n, h, w, c, data: vec![0.0; n * h * w * c] }
    }

    /// From an NCHW candle tensor.
    pub fn from_nchw(t: &Tensor) -> Result<Self> {
        let (n, c, h, w) = t.dims4()?;
        let data = t.to_dtype(candle_core::DType::F32)?.permute((0, 2, 3, 1))?.flatten_all()?.to_vec1()?;
        Ok(Self { n, h, w, c, data })
    }

    /// To an NCHW candle tensor on the CPU.
    pub fn to_nchw(&self) -> Result<Tensor> {
        Tensor::from_slice(&self.data, (self.n, self.h, self.w, self.c), &Device::Cpu)?
            .permute((0, 3, 1, 2))?
            .contiguous()
    }

    pub fn add_assign(&mut self, other: &Act) {
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

/// A resampled, per-channel scaled copy of `src` surrounded by `pad` zero pixels: the input of a
/// convolution, `(n, h + 2 pad, w + 2 pad, c)`.
pub struct Padded {
    pub n: usize,
    /// Size of the image inside the padding.
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub pad: usize,
    pub data: Vec<f32>,
}

impl Padded {
    pub fn row_pixels(&self) -> usize {
        self.w + 2 * self.pad
    }

    /// Writes `resample(src) * scale[b, c]` inside `pad` zero pixels. `scale`: `n * c` or none.
    pub fn fill(src: &Act, scale: Option<&[f32]>, mode: Resample, pad: usize) -> Self {
        let (n, c) = (src.n, src.c);
        let (h, w) = (mode.side(src.h), mode.side(src.w));
        let (ph, pw) = (h + 2 * pad, w + 2 * pad);
        let mut data = vec![0.0f32; n * ph * pw * c];
        data.par_chunks_mut(pw * c).enumerate().for_each(|(row, dst)| {
            let (b, py) = (row / ph, row % ph);
            if py < pad || py >= pad + h {
                return;
            }
            let y = py - pad;
            let dst = &mut dst[pad * c..(pad + w) * c];
            write_row(src, b, y, mode, dst);
            if let Some(s) = scale {
                let s = &s[b * c..(b + 1) * c];
                for px in dst.chunks_exact_mut(c) {
                    px.iter_mut().zip(s).for_each(|(v, k)| *v *= k);
                }
            }
        });
        Self { n, h, w, c, pad, data }
    }

    /// Without padding the buffer is a plain activation.
    pub fn into_act(self) -> Act {
        debug_assert_eq!(self.pad, 0);
        Act { n: self.n, h: self.h, w: self.w, c: self.c, data: self.data }
    }
}

/// Output row `y` of image `b` of `resample(src)` into `dst` (`w_out * c` values).
fn write_row(src: &Act, b: usize, y: usize, mode: Resample, dst: &mut [f32]) {
    let (c, sw) = (src.c, src.w);
    let row = |yy: usize| {
        let start = ((b * src.h + yy) * sw) * c;
        &src.data[start..start + sw * c]
    };
    match mode {
        Resample::Keep => dst.copy_from_slice(row(y)),
        Resample::Down => {
            let (r0, r1) = (row(2 * y), row(2 * y + 1));
            for (x, out) in dst.chunks_exact_mut(c).enumerate() {
                let (a, bb) = (2 * x * c, (2 * x + 1) * c);
                for k in 0..c {
                    out[k] = 0.25 * ((r0[a + k] + r0[bb + k]) + (r1[a + k] + r1[bb + k]));
                }
            }
        }
        Resample::Up => {
            let (i, j) = up_taps(y, src.h);
            let (ri, rj) = (row(i), row(j));
            // Vertical blend first, then the horizontal one.
            let blended: Vec<f32> = ri.iter().zip(rj).map(|(a, b)| 0.75 * a + 0.25 * b).collect();
            for (x, out) in dst.chunks_exact_mut(c).enumerate() {
                let (xi, xj) = up_taps(x, sw);
                let (a, bb) = (&blended[xi * c..(xi + 1) * c], &blended[xj * c..(xj + 1) * c]);
                for k in 0..c {
                    out[k] = 0.75 * a[k] + 0.25 * bb[k];
                }
            }
        }
    }
}

/// `resample(src)` as a new activation.
pub fn resample(src: &Act, mode: Resample) -> Act {
    Padded::fill(src, None, mode, 0).into_act()
}

pub fn lrelu(v: f32) -> f32 {
    if v >= 0.0 { v } else { 0.2 * v }
}
