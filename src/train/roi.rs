//! `torchvision.ops.roi_align` for one box per image, as GFP-GAN crops the eyes and mouth out
//! of the restored and ground-truth faces for the component discriminators.
//!
//! RoIAlign averages, over a regular grid of points in each output bin, the bilinear sample of
//! the image at the point. Both the point grid and the bilinear weights factor into a row part
//! and a column part, and so does torchvision's "outside the image" rule (a point counts as
//! zero when its row or its column is out of range). The crop is therefore `Ay @ image @ Ax^T`
//! with two fixed matrices per box, built on the CPU: two matrix products, differentiable with
//! respect to the image on any device.

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};

/// `torchvision.ops.roi_align(images, [box_i per image], output_size=out, spatial_scale=1,
/// sampling_ratio=-1, aligned=False)`. `images`: `(b, c, h, w)`; `boxes`: one `[x1, y1, x2, y2]`
/// per image, in pixels. Returns `(b, c, out, out)` in the images' dtype and device.
pub fn roi_align(images: &Tensor, boxes: &[[f64; 4]], out: usize) -> Result<Tensor> {
    let (b, _, h, w) = images.dims4()?;
    if boxes.len() != b || out == 0 || h == 0 || w == 0 {
        return Err(Error::Input(format!(
            "roi_align: {} boxes for {b} images of {h}x{w}, output {out}: need one box per image",
            boxes.len()
        )));
    }
    if let Some(bad) = boxes.iter().find(|bx| bx.iter().any(|v| !v.is_finite())) {
        return Err(Error::Input(format!("roi_align: box {bad:?} is not finite")));
    }
    let (mut ay, mut ax) = (Vec::with_capacity(b * out * h), Vec::with_capacity(b * out * w));
    for &[x1, y1, x2, y2] in boxes {
        ay.extend(axis_weights(y1, y2, h, out));
        ax.extend(axis_weights(x1, x2, w, out));
    }
    let to_images = |v: Vec<f64>, n: usize| -> Result<Tensor> {
        Ok(Tensor::from_vec(v, (b, 1, out, n), &Device::Cpu)?.to_dtype(images.dtype())?.to_device(images.device())?)
    };
    let ay = to_images(ay, h)?;
    let ax_t = to_images(ax, w)?.transpose(2, 3)?;
    Ok(ay.broadcast_matmul(images)?.broadcast_matmul(&ax_t)?)
}

/// The `(out, n)` weights, row-major, that take an axis of `n` pixels to the `out` bins of the
/// box side `[start, end]`: per bin, the mean over its sample points of the points' linear
/// interpolation weights, with torchvision's rules (aligned=False): the side is at least 1
/// pixel; `ceil(side / out)` points per bin, at the centres of equal sub-bins; a point below -1
/// or beyond `n` contributes zero (but still counts in the mean); a point in [-1, 0] reads pixel
/// 0, one at or beyond `n - 1` reads pixel `n - 1`.
fn axis_weights(start: f64, end: f64, n: usize, out: usize) -> Vec<f64> {
    let side = (end - start).max(1.0);
    let bin = side / out as f64;
    let grid = (side / out as f64).ceil().max(1.0) as usize;
    let mut m = vec![0.0; out * n];
    for p in 0..out {
        let row = &mut m[p * n..(p + 1) * n];
        for i in 0..grid {
            let y = start + p as f64 * bin + (i as f64 + 0.5) * bin / grid as f64;
            if y < -1.0 || y > n as f64 {
                continue;
            }
            let y = y.max(0.0);
            let lo = y as usize;
            if lo >= n - 1 {
                row[n - 1] += 1.0 / grid as f64;
            } else {
                let frac = y - lo as f64;
                row[lo] += (1.0 - frac) / grid as f64;
                row[lo + 1] += frac / grid as f64;
            }
        }
    }
    m
}
