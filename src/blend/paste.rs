//! Putting restored faces back into the frame.
//!
//! The restored face is not pasted as an image: what goes back is the change the restorer made,
//! `restored - crop`, warped back into the frame and added with a feathered mask defined in the
//! aligned square. Warping a crop out and back blurs it (two bilinear resamplings); pasting the
//! change instead leaves every pixel the restorer did not change exactly as it was, so no seam
//! or blur can appear where the face meets its surroundings, and an identity restorer is a
//! no-op down to the bit.

use crate::align::AlignedFace;
use crate::frame::Rgb;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PasteOptions {
    /// Strength of the restoration, 0 (original) to 1 (fully restored).
    pub weight: f32,
    /// Width of the mask's soft edge as a fraction of the crop side.
    pub feather: f32,
}

impl Default for PasteOptions {
    fn default() -> Self {
        Self { weight: 1.0, feather: 0.1 }
    }
}

/// Mask weight at aligned position `(u, v)` of a `size` square: 1 inside, falling smoothly to 0
/// at the square's edge over `feather * size` pixels, 0 outside.
pub fn mask_at(u: f32, v: f32, size: usize, feather: f32) -> f32 {
    let last = (size - 1) as f32;
    let margin = (feather * size as f32).max(1.0);
    let ramp = |d: f32| {
        let t = (d / margin).clamp(0.0, 1.0);
        t * t * (3.0 - 2.0 * t)
    };
    ramp(u.min(last - u)) * ramp(v.min(last - v))
}

/// Frame pixels `(x0..x1, y0..y1)` that can be inside the face's square.
pub fn frame_box(frame: &Rgb, face: &AlignedFace) -> (usize, usize, usize, usize) {
    let last = (face.crop.w - 1) as f32;
    let back = face.to_crop.inverse();
    let corners = [[0.0, 0.0], [last, 0.0], [0.0, last], [last, last]].map(|p| back.apply(p));
    let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
    for c in corners {
        for k in 0..2 {
            lo[k] = lo[k].min(c[k]);
            hi[k] = hi[k].max(c[k]);
        }
    }
    let clamp = |v: f32, n: usize| v.clamp(0.0, n as f32) as usize;
    (
        clamp(lo[0].floor(), frame.w),
        clamp(lo[1].floor(), frame.h),
        clamp(hi[0].ceil() + 1.0, frame.w),
        clamp(hi[1].ceil() + 1.0, frame.h),
    )
}

/// Adds `weight * mask * (restored - face.crop)`, warped back, to the frame.
pub fn paste(frame: &mut Rgb, face: &AlignedFace, restored: &Rgb, opts: PasteOptions) {
    assert_eq!((restored.w, restored.h), (face.crop.w, face.crop.h), "restored face size");
    if opts.weight <= 0.0 {
        return;
    }
    let size = face.crop.w;
    let (x0, y0, x1, y1) = frame_box(frame, face);
    for y in y0..y1 {
        for x in x0..x1 {
            let [u, v] = face.to_crop.apply([x as f32, y as f32]);
            let m = mask_at(u, v, size, opts.feather) * opts.weight.min(1.0);
            if m <= 0.0 {
                continue;
            }
            let (r, c) = (restored.sample(u, v), face.crop.sample(u, v));
            let i = (y * frame.w + x) * 3;
            for k in 0..3 {
                frame.data[i + k] += m * (r[k] - c[k]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::{FFHQ_512, Similarity, align};

    /// A textured frame and a rotated, scaled face position inside it.
    fn scene() -> (Rgb, [[f32; 2]; 5]) {
        let (w, h) = (160, 120);
        let mut frame = Rgb::new(w, h);
        for (i, v) in frame.data.iter_mut().enumerate() {
            *v = ((i * 37 + (i / 480) * 11) % 256) as f32;
        }
        let t = Similarity { a: 0.15 * 0.2f32.cos(), b: 0.15 * 0.2f32.sin(), tx: 40.0, ty: 20.0 };
        (frame, FFHQ_512.map(|p| t.apply(p)))
    }

    #[test]
    fn an_identity_restorer_changes_nothing() {
        let (mut frame, points) = scene();
        let before = frame.clone();
        let face = align(&frame, &points, 128).unwrap();
        let restored = face.crop.clone();
        paste(&mut frame, &face, &restored, PasteOptions::default());
        assert_eq!(frame, before);
    }

    #[test]
    fn only_the_face_region_changes_and_weight_scales_the_change() {
        let (frame, points) = scene();
        let face = align(&frame, &points, 128).unwrap();
        let mut brighter = face.crop.clone();
        brighter.data.iter_mut().for_each(|v| *v += 40.0);
        let pasted = |weight| {
            let mut f = frame.clone();
            paste(&mut f, &face, &brighter, PasteOptions { weight, ..Default::default() });
            f
        };
        let (full, half, none) = (pasted(1.0), pasted(0.5), pasted(0.0));
        assert_eq!(none, frame);
        // The nose tip is deep inside the mask: full change there, half with weight 0.5.
        let [nx, ny] = points[2].map(|v| v.round() as usize);
        let i = (ny * frame.w + nx) * 3;
        assert!((full.data[i] - frame.data[i] - 40.0).abs() < 1e-3);
        assert!((half.data[i] - frame.data[i] - 20.0).abs() < 1e-3);
        // Every changed pixel lies inside the face's square, and the change fades out towards
        // its edge instead of stopping at a seam.
        for y in 0..frame.h {
            for x in 0..frame.w {
                let i = (y * frame.w + x) * 3;
                let delta = full.data[i] - frame.data[i];
                let [u, v] = face.to_crop.apply([x as f32, y as f32]);
                let m = mask_at(u, v, 128, 0.1);
                if m == 0.0 {
                    assert_eq!(delta, 0.0, "pixel {x},{y} outside the mask changed");
                } else {
                    assert!((delta - 40.0 * m).abs() < 1e-3, "pixel {x},{y}: {delta} vs mask {m}");
                }
            }
        }
    }

    #[test]
    fn mask_is_one_inside_and_fades_to_zero_at_the_edge() {
        assert_eq!(mask_at(64.0, 64.0, 128, 0.1), 1.0);
        assert_eq!(mask_at(0.0, 64.0, 128, 0.1), 0.0);
        assert_eq!(mask_at(-3.0, 64.0, 128, 0.1), 0.0);
        let (a, b) = (mask_at(2.0, 64.0, 128, 0.1), mask_at(6.0, 64.0, 128, 0.1));
        assert!(0.0 < a && a < b && b < 1.0);
    }
}
