//! NIQE (Mittal et al., "Making a completely blind image quality analyzer"), no reference
//! needed, lower is better: computed as BasicSR's `calculate_niqe` computes it (on the Y
//! channel, rounded; 96x96 blocks at two scales, the second made with MATLAB-style bicubic
//! `imresize`; 36 natural-scene features per block fitted against the pristine model).
//!
//! The pristine model (`niqe_pris_params.npz`: mean, covariance and the 7x7 Gaussian window)
//! ships in BasicSR's source distribution (Apache-2.0); `weights/fetch-niqe.sh` fetches it.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::frame::Rgb;
use crate::npy;

/// Side of NIQE's blocks: the smallest image it measures.
pub const BLOCK: usize = 96;
const FEATURES: usize = 36;
const MAX_WINDOW: usize = 15;

/// The pristine model: what the features of natural, undistorted images look like.
#[derive(Debug, Clone)]
pub struct NiqeModel {
    mu: Vec<f64>,
    /// `FEATURES x FEATURES`, row-major.
    cov: Vec<f64>,
    /// 7x7 (odd side), row-major.
    window: Vec<f64>,
    window_side: usize,
}

impl NiqeModel {
    /// Reads BasicSR's `niqe_pris_params.npz`.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |msg: String| Error::format(path, msg);
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
            .map_err(|e| bad(format!("not an .npz archive: {e}")))?;
        let mut array = |name: &str| -> Result<(Vec<usize>, Vec<f64>)> {
            let entry = format!("{name}.npy");
            let index = zip.index_for_name(&entry).ok_or_else(|| bad(format!("has no array `{name}`")))?;
            let bytes = crate::weights::torch_zip::read_entry(&mut zip, index, file_len).map_err(&bad)?;
            npy::read_f64(&mut bytes.as_slice().by_ref(), bytes.len() as u64).map_err(|e| bad(format!("`{name}`: {e}")))
        };
        let (mu_shape, mu) = array("mu_pris_param")?;
        let (cov_shape, cov) = array("cov_pris_param")?;
        let (w_shape, window) = array("gaussian_window")?;
        let square = |s: &[usize]| s.len() == 2 && s[0] == s[1];
        if mu.len() != FEATURES || !square(&cov_shape) || cov_shape[0] != FEATURES {
            return Err(bad(format!("a model of {FEATURES} features is expected, got {mu_shape:?} and {cov_shape:?}")));
        }
        // BasicSR's is 7x7; a larger one would cost its area per pixel.
        if !square(&w_shape) || w_shape[0] % 2 == 0 || w_shape[0] > MAX_WINDOW {
            return Err(bad(format!(
                "the Gaussian window must be square with an odd side up to {MAX_WINDOW}, got {w_shape:?}"
            )));
        }
        Ok(Self { mu, cov, window, window_side: w_shape[0] })
    }

    /// The NIQE of an image. NaN when the image has fewer than two 96x96 blocks with finite
    /// features (BasicSR's covariance is undefined then too); an error below 96x96.
    pub fn score(&self, img: &Rgb) -> Result<f64> {
        if img.w < BLOCK || img.h < BLOCK {
            return Err(Error::Input(format!(
                "NIQE needs images of at least {BLOCK}x{BLOCK}, got {}x{}",
                img.w, img.h
            )));
        }
        Ok(self.quality(&y_channel(img)))
    }

    /// [`NiqeModel::score`], NaN for images smaller than a block (evaluation of small models,
    /// e.g. training's validation at 64 px: the other metrics still mean something there).
    pub fn score_or_nan(&self, img: &Rgb) -> Result<f64> {
        if img.w < BLOCK || img.h < BLOCK { Ok(f64::NAN) } else { self.score(img) }
    }

    fn quality(&self, y: &Plane) -> f64 {
        let (bw, bh) = (y.w / BLOCK, y.h / BLOCK);
        let mut img = y.crop(bw * BLOCK, bh * BLOCK);
        let mut rows = vec![Vec::with_capacity(FEATURES); bw * bh];
        for scale in [1, 2] {
            let normalized = self.normalize(&img);
            let side = BLOCK / scale;
            for bx in 0..bw {
                for by in 0..bh {
                    rows[bx * bh + by].extend(block_features(&normalized.crop_at(bx * side, by * side, side, side)));
                }
            }
            if scale == 1 {
                img = imresize_half(&img.map(|v| v / 255.0)).map(|v| v * 255.0);
            }
        }
        let mu: Vec<f64> = (0..FEATURES).map(|k| nanmean(rows.iter().map(|r| r[k]))).collect();
        let finite: Vec<&Vec<f64>> = rows.iter().filter(|r| r.iter().all(|v| !v.is_nan())).collect();
        if finite.len() < 2 {
            return f64::NAN;
        }
        let cov = covariance(&finite);
        let a: Vec<f64> = self.cov.iter().zip(&cov).map(|(p, d)| (p + d) / 2.0).collect();
        let d: Vec<f64> = self.mu.iter().zip(&mu).map(|(p, m)| p - m).collect();
        // BasicSR takes the pseudo-inverse; the averaged covariance is positive definite (the
        // pristine one is), where the pseudo-inverse is the inverse: solve with Cholesky.
        match cholesky_solve(&a, &d) {
            Some(x) => d.iter().zip(&x).map(|(p, q)| p * q).sum::<f64>().sqrt(),
            None => f64::NAN,
        }
    }

    /// `(img - mu) / (sigma + 1)` with local mean and deviation from the Gaussian window
    /// (scipy's `convolve`, mode "nearest"), in float32 as BasicSR's arrays are.
    fn normalize(&self, img: &Plane) -> Plane {
        let mu = self.convolve(img);
        let sq = img.map(|v| v * v);
        let mu_sq = self.convolve(&sq);
        let data = img
            .data
            .iter()
            .zip(&mu.data)
            .zip(&mu_sq.data)
            .map(|((&v, &m), &m2)| {
                let sigma = (m2 - m * m).abs().sqrt();
                (v - m) / (sigma + 1.0)
            })
            .collect();
        Plane { w: img.w, h: img.h, data }
    }

    fn convolve(&self, img: &Plane) -> Plane {
        let (k, r) = (self.window_side, (self.window_side / 2) as isize);
        let clamp = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
        let mut data = vec![0f32; img.data.len()];
        for y in 0..img.h {
            for x in 0..img.w {
                let mut acc = 0f64;
                for i in 0..k {
                    let sy = clamp(y as isize + i as isize - r, img.h);
                    for j in 0..k {
                        let sx = clamp(x as isize + j as isize - r, img.w);
                        // Convolution flips the window; the Gaussian is symmetric, so the flip
                        // is spelled out only for exactness with another window.
                        acc += self.window[(k - 1 - i) * k + (k - 1 - j)] * f64::from(img.data[sy * img.w + sx]);
                    }
                }
                data[y * img.w + x] = acc as f32;
            }
        }
        Plane { w: img.w, h: img.h, data }
    }
}

/// A single-channel float32 image.
#[derive(Debug, Clone, PartialEq)]
struct Plane {
    w: usize,
    h: usize,
    data: Vec<f32>,
}

impl Plane {
    fn map(&self, f: impl Fn(f32) -> f32) -> Plane {
        Plane { w: self.w, h: self.h, data: self.data.iter().map(|&v| f(v)).collect() }
    }

    fn crop(&self, w: usize, h: usize) -> Plane {
        self.crop_at(0, 0, w, h)
    }

    fn crop_at(&self, x0: usize, y0: usize, w: usize, h: usize) -> Plane {
        let data = (y0..y0 + h).flat_map(|y| self.data[y * self.w + x0..][..w].iter().copied()).collect();
        Plane { w, h, data }
    }

    fn at(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.w + x]
    }
}

/// BasicSR's `to_y_channel` on the 8-bit image, then rounded (half to even, as numpy): ITU-R
/// BT.601 luma on the studio range, `16 + (65.481 R + 128.553 G + 24.966 B) / 255`, with the
/// float32 and float64 steps of its `bgr2ycbcr`.
fn y_channel(img: &Rgb) -> Plane {
    let data = img
        .data
        .chunks_exact(3)
        .map(|p| {
            let [r, g, b] = [0, 1, 2].map(|c| f64::from(f32::from(crate::frame::to_u8(p[c])) / 255.0));
            let y = (b * 24.966 + g * 128.553 + r * 65.481 + 16.0) / 255.0;
            ((y as f32) * 255.0).round_ties_even()
        })
        .collect();
    Plane { w: img.w, h: img.h, data }
}

/// The 18 features of one block at one scale: the generalised Gaussian fit of the normalised
/// values, then an asymmetric fit of the products with each of four neighbours.
fn block_features(block: &Plane) -> [f64; 18] {
    let values: Vec<f64> = block.data.iter().map(|&v| f64::from(v)).collect();
    let mut f = [0f64; 18];
    let (alpha, left, right) = aggd_fit(&values);
    f[0] = alpha;
    f[1] = (left + right) / 2.0;
    // numpy's roll by (dy, dx): the neighbour at (y - dy, x - dx), wrapping around.
    let shifts: [(isize, isize); 4] = [(0, 1), (1, 0), (1, 1), (1, -1)];
    for (n, (dy, dx)) in shifts.into_iter().enumerate() {
        let (w, h) = (block.w as isize, block.h as isize);
        let products: Vec<f64> = (0..h)
            .flat_map(|y| (0..w).map(move |x| (y, x)))
            .map(|(y, x)| {
                let (sy, sx) = ((y - dy).rem_euclid(h) as usize, (x - dx).rem_euclid(w) as usize);
                f64::from(block.at(x as usize, y as usize) * block.at(sx, sy))
            })
            .collect();
        let (alpha, left, right) = aggd_fit(&products);
        let mean = (right - left) * (gamma(2.0 / alpha) / gamma(1.0 / alpha));
        f[2 + 4 * n..][..4].copy_from_slice(&[alpha, mean, left, right]);
    }
    f
}

fn gamma(x: f64) -> f64 {
    libm::tgamma(x)
}

/// The shape grid BasicSR searches, `np.arange(0.2, 10.001, 0.001)` as numpy makes it (its step
/// is `(0.2 + 0.001) - 0.2`, a hair above 0.001), with the ratio `Γ(2r)² / (Γ(r) Γ(3r))`,
/// `r = 1/a`, at each shape `a`.
fn shape_grid() -> &'static [(f64, f64)] {
    static GRID: std::sync::OnceLock<Vec<(f64, f64)>> = std::sync::OnceLock::new();
    GRID.get_or_init(|| {
        let (start, stop, step) = (0.2f64, 10.001f64, 0.001f64);
        let n = ((stop - start) / step).ceil() as usize;
        let delta = (start + step) - start;
        (0..n)
            .map(|i| {
                let a = start + i as f64 * delta;
                let r = 1.0 / a;
                (a, gamma(r * 2.0).powi(2) / (gamma(r) * gamma(r * 3.0)))
            })
            .collect()
    })
}

/// Asymmetric generalised Gaussian fit by moment matching: shape, left and right scales. The
/// scales are NaN when one side has no values (BasicSR's empty mean).
fn aggd_fit(v: &[f64]) -> (f64, f64, f64) {
    let mean_sq = |f: &dyn Fn(f64) -> bool| {
        let (s, n) = v.iter().filter(|&&x| f(x)).fold((0.0, 0usize), |(s, n), &x| (s + x * x, n + 1));
        s / n as f64
    };
    let left = mean_sq(&|x| x < 0.0).sqrt();
    let right = mean_sq(&|x| x > 0.0).sqrt();
    let gammahat = left / right;
    let n = v.len() as f64;
    let mean_abs = v.iter().map(|x| x.abs()).sum::<f64>() / n;
    let rhat = mean_abs * mean_abs / (v.iter().map(|x| x * x).sum::<f64>() / n);
    let rhatnorm = rhat * (gammahat.powi(3) + 1.0) * (gammahat + 1.0) / (gammahat * gammahat + 1.0).powi(2);
    // argmin of the squared difference; the first of equal ones, NaN never smaller (numpy's
    // argmin returns the first NaN, which happens only when rhatnorm is NaN: shape 0.2).
    let mut best = (0usize, f64::INFINITY);
    if rhatnorm.is_finite() {
        for (i, &(_, r)) in shape_grid().iter().enumerate() {
            let d = (r - rhatnorm).powi(2);
            if d < best.1 {
                best = (i, d);
            }
        }
    }
    let alpha = shape_grid()[best.0].0;
    let k = (gamma(1.0 / alpha) / gamma(3.0 / alpha)).sqrt();
    (alpha, left * k, right * k)
}

fn nanmean(values: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = values.filter(|v| !v.is_nan()).fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    s / n as f64
}

/// Sample covariance of the rows (numpy's `cov(rowvar=False)`, normalised by n - 1).
fn covariance(rows: &[&Vec<f64>]) -> Vec<f64> {
    let n = rows.len() as f64;
    let mean: Vec<f64> = (0..FEATURES).map(|k| rows.iter().map(|r| r[k]).sum::<f64>() / n).collect();
    let mut cov = vec![0.0; FEATURES * FEATURES];
    for i in 0..FEATURES {
        for j in 0..FEATURES {
            cov[i * FEATURES + j] = rows.iter().map(|r| (r[i] - mean[i]) * (r[j] - mean[j])).sum::<f64>() / (n - 1.0);
        }
    }
    cov
}

/// Solves `a x = b` for a symmetric positive definite `a` (row-major, `b.len()` square);
/// `None` when `a` is not positive definite.
fn cholesky_solve(a: &[f64], b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = a[i * n + j] - (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum::<f64>();
            if i == j {
                if !(s > 0.0) {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| l[i * n + k] * y[k]).sum::<f64>()) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| l[k * n + i] * x[k]).sum::<f64>()) / l[i * n + i];
    }
    Some(x)
}

/// MATLAB's `imresize(img, 0.5)` (bicubic, antialiased), as BasicSR's `imresize` computes it:
/// rows first, then columns, each a weighted sum over a symmetric-padded neighbourhood, in
/// float32 as its torch tensors (the weights are exact in float32).
fn imresize_half(img: &Plane) -> Plane {
    let (oh, ow) = (img.h.div_ceil(2), img.w.div_ceil(2));
    let rows = resize_weights(oh);
    let cols = resize_weights(ow);
    let mut tmp = Plane { w: img.w, h: oh, data: vec![0.0; oh * img.w] };
    for (oy, (taps, first)) in rows.iter().enumerate() {
        for x in 0..img.w {
            let at = |k: usize| img.at(x, symmetric(*first + k as isize, img.h));
            tmp.data[oy * img.w + x] = taps.iter().enumerate().fold(0f32, |acc, (k, &wt)| acc + wt as f32 * at(k));
        }
    }
    let mut out = Plane { w: ow, h: oh, data: vec![0.0; oh * ow] };
    for y in 0..oh {
        for (ox, (taps, first)) in cols.iter().enumerate() {
            let at = |k: usize| tmp.at(symmetric(*first + k as isize, img.w), y);
            out.data[y * ow + ox] = taps.iter().enumerate().fold(0f32, |acc, (k, &wt)| acc + wt as f32 * at(k));
        }
    }
    out
}

/// An index outside `0..n` mirrored back in, the edge repeated (MATLAB's "symmetric").
fn symmetric(i: isize, n: usize) -> usize {
    let n = n as isize;
    let period = 2 * n;
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - 1 - m }) as usize
}

/// For each of the `out` positions of a resize at scale 1/2: the normalised weights of
/// the antialiased cubic kernel and the input index of the first one (0-based, may be
/// negative). Zero weights at either end are dropped as BasicSR does.
fn resize_weights(out: usize) -> Vec<(Vec<f64>, isize)> {
    let scale = 0.5f64;
    let width = 4.0 / scale;
    let taps = width.ceil() as usize + 2;
    let mut all: Vec<(Vec<f64>, isize)> = (1..=out)
        .map(|x| {
            let u = x as f64 / scale + 0.5 * (1.0 - 1.0 / scale);
            let left = (u - width / 2.0).floor();
            let w: Vec<f64> = (0..taps).map(|k| scale * cubic((u - (left + k as f64)) * scale)).collect();
            let sum: f64 = w.iter().sum();
            // 1-based MATLAB index `left` is 0-based `left - 1`.
            (w.into_iter().map(|v| v / sum).collect(), left as isize - 1)
        })
        .collect();
    // BasicSR's trimming, to the letter: when any row has a zero first weight it keeps taps
    // 1..taps-1 (dropping the last one as well); when any has a zero last weight it then keeps
    // the first taps-2 of what is left (nothing more once the first rule has trimmed).
    let first_zero = all.iter().any(|(w, _)| w[0] == 0.0);
    let last_zero = all.iter().any(|(w, _)| w[taps - 1] == 0.0);
    for (w, first) in &mut all {
        if first_zero {
            *w = w[1..taps - 1].to_vec();
            *first += 1;
        }
        if last_zero {
            w.truncate(taps - 2);
        }
    }
    all
}

/// Keys' cubic kernel with a = -0.5 (MATLAB's "cubic").
fn cubic(x: f64) -> f64 {
    let a = x.abs();
    let (a2, a3) = (a * a, a * a * a);
    if a <= 1.0 {
        1.5 * a3 - 2.5 * a2 + 1.0
    } else if a <= 2.0 {
        -0.5 * a3 + 2.5 * a2 - 4.0 * a + 2.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_padding_repeats_the_edge() {
        let got: Vec<usize> = (-3..7).map(|i| symmetric(i, 4)).collect();
        assert_eq!(got, [2, 1, 0, 0, 1, 2, 3, 3, 2, 1]);
    }

    #[test]
    fn resize_weights_sum_to_one_and_halve_a_constant() {
        for (w, _) in resize_weights(19) {
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        let img = Plane { w: 37, h: 20, data: vec![3.0; 740] };
        let half = imresize_half(&img);
        assert_eq!((half.w, half.h), (19, 10));
        assert!(half.data.iter().all(|v| (v - 3.0).abs() < 1e-5));
    }

    #[test]
    fn cholesky_solves_a_small_system() {
        let a = [4.0, 2.0, 2.0, 3.0];
        let x = cholesky_solve(&a, &[2.0, 1.0]).unwrap();
        assert!((4.0 * x[0] + 2.0 * x[1] - 2.0).abs() < 1e-12 && (2.0 * x[0] + 3.0 * x[1] - 1.0).abs() < 1e-12);
        assert!(cholesky_solve(&[0.0, 0.0, 0.0, 1.0], &[1.0, 1.0]).is_none());
    }
}
