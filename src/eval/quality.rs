//! Full-reference quality as BasicSR computes it for GFP-GAN's validation
//! (`calculate_psnr` / `calculate_ssim` with `crop_border=0` on RGB, not Y): on the 8-bit
//! images that would be saved, in float64.

use crate::error::{Error, Result};
use crate::frame::{Rgb, to_u8};

/// The 8-bit values of an image as float64 planes, one per channel (what BasicSR's metrics
/// read from a saved PNG).
fn planes(img: &Rgb) -> [Vec<f64>; 3] {
    std::array::from_fn(|c| img.data.iter().skip(c).step_by(3).map(|&v| f64::from(to_u8(v))).collect())
}

fn same_size(a: &Rgb, b: &Rgb) -> Result<()> {
    if (a.w, a.h) != (b.w, b.h) {
        return Err(Error::Input(format!("images of different sizes: {}x{} and {}x{}", a.w, a.h, b.w, b.h)));
    }
    Ok(())
}

/// Peak signal-to-noise ratio in dB over the three channels; infinite for equal images.
pub fn psnr(a: &Rgb, b: &Rgb) -> Result<f64> {
    same_size(a, b)?;
    let (pa, pb) = (planes(a), planes(b));
    let n = (a.data.len()) as f64;
    let sum: f64 = pa.iter().zip(&pb).flat_map(|(x, y)| x.iter().zip(y).map(|(u, v)| (u - v) * (u - v))).sum();
    let mse = sum / n;
    Ok(if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0 * 255.0 / mse).log10() })
}

/// Side of SSIM's Gaussian window (sigma 1.5), as in BasicSR and the original SSIM paper.
const WINDOW: usize = 11;
const SIGMA: f64 = 1.5;

/// Structural similarity: per channel, the mean SSIM map over the positions where the 11x11
/// window fits whole ("valid"), then the mean of the three channels.
pub fn ssim(a: &Rgb, b: &Rgb) -> Result<f64> {
    same_size(a, b)?;
    if a.w < WINDOW || a.h < WINDOW {
        return Err(Error::Input(format!("SSIM needs images of at least {WINDOW}x{WINDOW}, got {}x{}", a.w, a.h)));
    }
    let (pa, pb) = (planes(a), planes(b));
    let per_channel: Vec<f64> = pa.iter().zip(&pb).map(|(x, y)| ssim_plane(x, y, a.w, a.h)).collect();
    Ok(per_channel.iter().sum::<f64>() / 3.0)
}

/// The normalised 1-D Gaussian (OpenCV's `getGaussianKernel(11, 1.5)`); the 2-D window is its
/// outer product, so filtering is separable.
fn gaussian() -> [f64; WINDOW] {
    let r = (WINDOW / 2) as f64;
    let g: [f64; WINDOW] = std::array::from_fn(|i| (-((i as f64 - r).powi(2)) / (2.0 * SIGMA * SIGMA)).exp());
    let sum: f64 = g.iter().sum();
    g.map(|v| v / sum)
}

/// `img` filtered with the window at every valid position: `(h - 10) x (w - 10)` values.
fn filter_valid(img: &[f64], w: usize, h: usize, g: &[f64; WINDOW]) -> Vec<f64> {
    let (ow, oh) = (w - WINDOW + 1, h - WINDOW + 1);
    let mut rows = vec![0.0; ow * h];
    for y in 0..h {
        for x in 0..ow {
            rows[y * ow + x] = (0..WINDOW).map(|k| g[k] * img[y * w + x + k]).sum();
        }
    }
    let mut out = vec![0.0; ow * oh];
    for y in 0..oh {
        for x in 0..ow {
            out[y * ow + x] = (0..WINDOW).map(|k| g[k] * rows[(y + k) * ow + x]).sum();
        }
    }
    out
}

fn ssim_plane(x: &[f64], y: &[f64], w: usize, h: usize) -> f64 {
    let (c1, c2) = ((0.01 * 255.0f64).powi(2), (0.03 * 255.0f64).powi(2));
    let g = gaussian();
    let f = |v: &[f64]| filter_valid(v, w, h, &g);
    let product = |p: &[f64], q: &[f64]| p.iter().zip(q).map(|(a, b)| a * b).collect::<Vec<f64>>();
    let (mu1, mu2) = (f(x), f(y));
    let (xx, yy, xy) = (f(&product(x, x)), f(&product(y, y)), f(&product(x, y)));
    let n = mu1.len();
    let total: f64 = (0..n)
        .map(|i| {
            let (m1, m2) = (mu1[i], mu2[i]);
            let (s1, s2, s12) = (xx[i] - m1 * m1, yy[i] - m2 * m2, xy[i] - m1 * m2);
            ((2.0 * m1 * m2 + c1) * (2.0 * s12 + c2)) / ((m1 * m1 + m2 * m2 + c1) * (s1 + s2 + c2))
        })
        .sum();
    total / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> Rgb {
        let mut img = Rgb::new(w, h);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = ((i * 37) % 251) as f32;
        }
        img
    }

    #[test]
    fn equal_images_score_infinite_psnr_and_ssim_one() {
        let a = ramp(20, 16);
        assert_eq!(psnr(&a, &a).unwrap(), f64::INFINITY);
        assert!((ssim(&a, &a).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn psnr_of_a_constant_error_of_one_level() {
        let a = ramp(20, 16);
        let mut b = a.clone();
        b.data.iter_mut().for_each(|v| *v = if *v < 255.0 { *v + 1.0 } else { *v - 1.0 });
        assert!((psnr(&a, &b).unwrap() - 10.0 * (255.0f64 * 255.0).log10()).abs() < 1e-9);
    }

    #[test]
    fn sizes_must_match_and_fit_the_window() {
        assert!(psnr(&ramp(20, 16), &ramp(16, 20)).is_err());
        assert!(ssim(&ramp(10, 30), &ramp(10, 30)).unwrap_err().to_string().contains("11x11"));
    }
}
