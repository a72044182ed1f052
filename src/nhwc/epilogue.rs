//! The per-pixel work fused into every convolution's output pass: demodulation, noise, biases,
//! activation and residual, applied to each output pixel as it is written.

use rayon::prelude::*;

use super::act::{Act, lrelu};
use super::cpu;

/// Per-pixel work done on each output pixel as it is written.
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
    /// Finishes output pixel `(b, y, x)` of an `h x w` map in place: `px` holds the raw products
    /// of its channels and receives the result.
    #[inline(always)]
    pub fn apply(
        &self,
        conv_bias: Option<&[f32]>,
        (b, y, x): (usize, usize, usize),
        (h, w): (usize, usize),
        px: &mut [f32],
    ) {
        let co = px.len();
        let nz = self.noise.map_or(0.0, |(map, strength)| {
            let per_image = map.len() / (h * w);
            strength * map[((b % per_image) * h + y) * w + x]
        });
        // One simple pass per term, so that each vectorises.
        match self.scale.map(|s| &s[b * co..(b + 1) * co]) {
            Some(sc) => px.iter_mut().zip(sc).for_each(|(d, k)| *d = *d * k + nz),
            None if self.noise.is_some() => px.iter_mut().for_each(|d| *d += nz),
            None => {}
        }
        for bias in [conv_bias, self.bias].into_iter().flatten() {
            px.iter_mut().zip(bias).for_each(|(d, b)| *d += b);
        }
        if self.lrelu {
            px.iter_mut().for_each(|d| *d = lrelu(*d));
        }
        if let Some(r) = self.residual {
            let r = &r.data[((b * h + y) * w + x) * co..][..co];
            px.iter_mut().zip(r).for_each(|(d, r)| *d += r);
        }
    }

    /// Finishes every pixel of `out`, which holds the raw products, in place (a convolution's
    /// own `conv_bias` added with the epilogue's).
    pub fn finish(&self, out: &mut Act, conv_bias: Option<&[f32]>) {
        let (h, w, co) = (out.h, out.w, out.c);
        out.data.par_chunks_mut(w * co).enumerate().for_each(|(row, dst)| {
            finish_row(self, conv_bias, (row / h, row % h), (h, w), dst);
        });
    }
}

cpu::avx2_fma! {
    /// The epilogue over output row `y` of image `b` (`by`) of an `h x w` map (`hw`).
    fn finish_row(epi: &Epilogue, conv_bias: Option<&[f32]>, by: (usize, usize), hw: (usize, usize), row: &mut [f32]) {
        let ((b, y), (h, w)) = (by, hw);
        let co = row.len() / w;
        for (x, px) in row.chunks_exact_mut(co).enumerate() {
            epi.apply(conv_bias, (b, y, x), (h, w), px);
        }
    }
}
