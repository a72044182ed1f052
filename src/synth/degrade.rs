//! The synthetic degradation GFP-GAN is trained with (blur, downscale, noise, JPEG, back to
//! size, colour jitter, grey), to make test and evaluation material from clean faces.

use image::imageops::FilterType;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use crate::error::{Error, Result};
use crate::frame::{Rgb, luma};

/// Ranges of the official training configuration (train_gfpgan_v1.yml).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DegradeOptions {
    pub kernel_size: usize,
    pub blur_sigma: (f32, f32),
    pub downscale: (f32, f32),
    pub noise_sigma: (f32, f32),
    pub jpeg_quality: (u8, u8),
    /// Probability of a per-channel shift of up to `color_shift` levels.
    pub color_jitter_prob: f32,
    pub color_shift: f32,
    pub gray_prob: f32,
}

impl Default for DegradeOptions {
    fn default() -> Self {
        Self {
            kernel_size: 41,
            blur_sigma: (0.1, 10.0),
            downscale: (0.8, 8.0),
            noise_sigma: (0.0, 20.0),
            jpeg_quality: (60, 100),
            color_jitter_prob: 0.0,
            color_shift: 20.0,
            gray_prob: 0.0,
        }
    }
}

/// The parameters drawn for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Degradation {
    /// Gaussian blur: sigmas along its two axes and the axes' rotation (isotropic when equal).
    pub sigma: (f32, f32),
    pub angle: f32,
    pub downscale: f32,
    pub noise_sigma: f32,
    pub jpeg_quality: u8,
    pub color_shift: Option<[f32; 3]>,
    pub gray: bool,
}

impl Degradation {
    /// A fixed degradation: isotropic blur, no colour change.
    pub fn fixed(sigma: f32, downscale: f32, noise_sigma: f32, jpeg_quality: u8) -> Self {
        Self { sigma: (sigma, sigma), angle: 0.0, downscale, noise_sigma, jpeg_quality, color_shift: None, gray: false }
    }

    pub fn sample(opts: &DegradeOptions, rng: &mut StdRng) -> Self {
        let uni = |rng: &mut StdRng, (lo, hi): (f32, f32)| if hi > lo { rng.random_range(lo..=hi) } else { lo };
        let s1 = uni(rng, opts.blur_sigma);
        // Half the kernels isotropic, half anisotropic with a random orientation.
        let (sigma, angle) = if rng.random_bool(0.5) {
            ((s1, s1), 0.0)
        } else {
            ((s1, uni(rng, opts.blur_sigma)), rng.random_range(-std::f32::consts::PI..std::f32::consts::PI))
        };
        let color_shift = (rng.random::<f32>() < opts.color_jitter_prob)
            .then(|| std::array::from_fn(|_| rng.random_range(-opts.color_shift..=opts.color_shift)));
        Self {
            sigma,
            angle,
            downscale: uni(rng, opts.downscale),
            noise_sigma: uni(rng, opts.noise_sigma),
            jpeg_quality: rng.random_range(opts.jpeg_quality.0..=opts.jpeg_quality.1),
            color_shift,
            gray: rng.random::<f32>() < opts.gray_prob,
        }
    }
}

/// A normalised `size x size` Gaussian kernel with the given axis sigmas and rotation.
fn gaussian_kernel(size: usize, (sx, sy): (f32, f32), angle: f32) -> Vec<f32> {
    let (c, s) = (angle.cos(), angle.sin());
    let r = (size / 2) as f32;
    let mut k: Vec<f32> = (0..size * size)
        .map(|i| {
            let (x, y) = ((i % size) as f32 - r, (i / size) as f32 - r);
            let (u, v) = (c * x + s * y, -s * x + c * y);
            (-0.5 * (u * u / (sx * sx) + v * v / (sy * sy))).exp()
        })
        .collect();
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    k
}

/// Index with reflection about the border pixel (OpenCV's BORDER_REFLECT_101). A one-pixel
/// row or column has nothing to reflect (its period would be 0): every index is that pixel.
fn reflect(i: isize, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let i = i.rem_euclid(period);
    (if i < n as isize { i } else { period - i }) as usize
}

fn blur(img: &Rgb, kernel: &[f32], size: usize) -> Rgb {
    let r = (size / 2) as isize;
    let taps: Vec<(isize, isize, f32)> = (0..size * size)
        .filter(|&i| kernel[i] > 1e-7)
        .map(|i| ((i % size) as isize - r, (i / size) as isize - r, kernel[i]))
        .collect();
    let mut out = Rgb::new(img.w, img.h);
    use rayon::prelude::*;
    out.data.par_chunks_mut(img.w * 3).enumerate().for_each(|(y, row)| {
        for x in 0..img.w {
            let mut acc = [0.0f32; 3];
            for &(dx, dy, w) in &taps {
                let p = img.pixel(reflect(x as isize + dx, img.w), reflect(y as isize + dy, img.h));
                acc.iter_mut().zip(p).for_each(|(a, v)| *a += w * v);
            }
            row[x * 3..x * 3 + 3].copy_from_slice(&acc);
        }
    });
    out
}

/// Applies one degradation; the output has the input's size.
pub fn apply(img: &Rgb, d: &Degradation, kernel_size: usize, rng: &mut StdRng) -> Result<Rgb> {
    let small = apply_small(img, d, kernel_size, rng)?;
    Ok(back_to_size(&small, img.w, img.h, FilterType::Triangle, d))
}

/// The first part of a degradation: blur, downscale, noise and JPEG, at the low resolution.
pub fn apply_small(img: &Rgb, d: &Degradation, kernel_size: usize, rng: &mut StdRng) -> Result<Rgb> {
    let size = kernel_size | 1;
    let x = blur(img, &gaussian_kernel(size, d.sigma, d.angle), size);
    let (w, h) = (img.w as f32, img.h as f32);
    let (sw, sh) = ((w / d.downscale).round().max(1.0) as usize, (h / d.downscale).round().max(1.0) as usize);
    let mut small = x.resized(sw, sh);
    if d.noise_sigma > 0.0 {
        let normal = Normal::new(0.0, d.noise_sigma).map_err(|e| Error::Input(e.to_string()))?;
        small.data.iter_mut().for_each(|v| *v += normal.sample(rng));
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, d.jpeg_quality)
        .encode_image(&small.to_rgb8())
        .map_err(|e| Error::Input(format!("JPEG encoding: {e}")))?;
    let decoded = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
        .map_err(|e| Error::Input(format!("JPEG decoding: {e}")))?
        .to_rgb8();
    Ok(Rgb::from_rgb8(&decoded))
}

/// The second part: the low-resolution image resized back to `w x h` with `filter` (training
/// uses bilinear; the evaluation's bicubic baseline, bicubic), then the colour shift and grey.
pub fn back_to_size(small: &Rgb, w: usize, h: usize, filter: FilterType, d: &Degradation) -> Rgb {
    let mut x = small.resized_with(w, h, filter);
    if let Some(shift) = d.color_shift {
        x.data
            .chunks_exact_mut(3)
            .for_each(|p| p.iter_mut().zip(shift).for_each(|(v, s)| *v = (*v + s).clamp(0.0, 255.0)));
    }
    if d.gray {
        x.data.chunks_exact_mut(3).for_each(|p| {
            let l = luma(p);
            p.fill(l);
        });
    }
    x
}

/// Draws a degradation from `seed` and applies it.
pub fn degrade(img: &Rgb, opts: &DegradeOptions, seed: u64) -> Result<(Rgb, Degradation)> {
    let (small, d) = degrade_small(img, opts, seed)?;
    Ok((back_to_size(&small, img.w, img.h, FilterType::Triangle, &d), d))
}

/// [`degrade`] stopped at the low resolution ([`apply_small`]): the same draw for the same seed.
pub fn degrade_small(img: &Rgb, opts: &DegradeOptions, seed: u64) -> Result<(Rgb, Degradation)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let d = Degradation::sample(opts, &mut rng);
    Ok((apply_small(img, &d, opts.kernel_size, &mut rng)?, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern() -> Rgb {
        let mut img = Rgb::new(64, 48);
        for y in 0..48 {
            for x in 0..64 {
                let v = if (x / 8 + y / 8) % 2 == 0 { 230.0 } else { 20.0 };
                img.data[(y * 64 + x) * 3..][..3].copy_from_slice(&[v, v * 0.5, 255.0 - v]);
            }
        }
        img
    }

    #[test]
    fn same_seed_same_result_and_parameters_in_range() {
        let img = pattern();
        let opts = DegradeOptions::default();
        let (a, da) = degrade(&img, &opts, 5).unwrap();
        let (b, db) = degrade(&img, &opts, 5).unwrap();
        assert_eq!((a.clone(), da.clone()), (b, db));
        assert_eq!((a.w, a.h), (img.w, img.h));
        assert!((0.1..=10.0).contains(&da.sigma.0) && (0.8..=8.0).contains(&da.downscale));
        assert!((0.0..=20.0).contains(&da.noise_sigma) && (60..=100).contains(&da.jpeg_quality));
        assert_ne!(degrade(&img, &opts, 6).unwrap().0, a);
    }

    #[test]
    fn blur_removes_detail_and_keeps_the_mean() {
        let img = pattern();
        let d = Degradation::fixed(4.0, 1.0, 0.0, 100);
        let out = apply(&img, &d, 41, &mut StdRng::seed_from_u64(0)).unwrap();
        let var = |i: &Rgb| {
            let m = i.data.iter().step_by(3).sum::<f32>() / (i.w * i.h) as f32;
            (m, i.data.iter().step_by(3).map(|v| (v - m).powi(2)).sum::<f32>() / (i.w * i.h) as f32)
        };
        let ((m0, v0), (m1, v1)) = (var(&img), var(&out));
        assert!((m0 - m1).abs() < 3.0, "mean {m0} -> {m1}");
        assert!(v1 < v0 * 0.2, "variance {v0} -> {v1}");
    }

    #[test]
    fn gray_makes_channels_equal() {
        let opts = DegradeOptions { gray_prob: 1.0, ..Default::default() };
        let (out, d) = degrade(&pattern(), &opts, 1).unwrap();
        assert!(d.gray);
        assert!(out.data.chunks_exact(3).all(|p| p[0] == p[1] && p[1] == p[2]));
    }

    #[test]
    fn reflection_matches_opencv_and_one_pixel_lines_terminate() {
        let got: Vec<usize> = (-5..9).map(|i| reflect(i, 4)).collect();
        assert_eq!(got, [1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2]);
        assert_eq!((reflect(-20, 1), reflect(7, 1), reflect(-41, 2)), (0, 0, 1));
        for (w, h) in [(1, 1), (1, 7), (7, 1)] {
            let (out, _) = degrade(&Rgb::new(w, h), &DegradeOptions::default(), 3).unwrap();
            assert_eq!((out.w, out.h), (w, h));
        }
    }
}
