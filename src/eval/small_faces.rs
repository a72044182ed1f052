//! How well landmarks hold up on small faces: each face of a photo is found and located at
//! full size, then the same face is shrunk (with its surroundings) to a few pixels across,
//! found and located again, and the small landmarks, scaled back, are compared with the full
//! size ones in units of the face's eye distance. Aligning a 20 px face to the 512 template
//! magnifies it 25x, so these errors are what alignment inherits.

use serde::Serialize;

use crate::align::{Similarity, warp};
use crate::analyze::landmarks::eye_distance;
use crate::analyze::{Face, FaceAnalyzer};
use crate::error::Result;
use crate::frame::Rgb;

/// The surroundings cut with each face, in face-box sides (the detector needs some context).
const CONTEXT: f32 = 4.0;

#[derive(Debug, Clone, Serialize)]
pub struct LandmarkDrift {
    /// The face's box side at full size and in the small copy, pixels.
    pub full_size: f32,
    pub small_size: f32,
    /// Mean distance over the 68 landmarks, and over the five alignment points, over the eye
    /// distance at full size.
    pub all_68: f32,
    pub five: f32,
}

fn mean_distance(a: &[[f32; 2]], b: &[[f32; 2]]) -> f32 {
    a.iter().zip(b).map(|(p, q)| (p[0] - q[0]).hypot(p[1] - q[1])).sum::<f32>() / a.len() as f32
}

/// Every face `full` finds in `photo`, shrunk so that its box is `face_size` pixels and looked
/// for again with `small` (whose smallest face size must allow it): one entry per face, `None`
/// where the small face was not found.
pub fn landmark_drift(
    full: &mut FaceAnalyzer,
    small: &mut FaceAnalyzer,
    photo: &Rgb,
    face_size: f32,
) -> Result<Vec<Option<LandmarkDrift>>> {
    let faces = full.analyze(photo)?;
    let mut out = Vec::with_capacity(faces.len());
    for face in &faces {
        let d = face.detection;
        let side = d.w.max(d.h);
        let k = face_size / side;
        let crop_side = (CONTEXT * side * k).round() as usize;
        let [cx, cy] = d.center();
        let (x0, y0) = (cx - CONTEXT * side / 2.0, cy - CONTEXT * side / 2.0);
        // The surroundings at full size, then shrunk with a filter as wide as the shrink (no
        // aliasing), as a camera further away would see them.
        let context = warp(photo, &Similarity { a: 1.0, b: 0.0, tx: x0, ty: y0 }, (CONTEXT * side).round() as usize);
        let shrunk = context.resized(crop_side, crop_side);
        let scale = context.w as f32 / crop_side as f32;
        let centre = crop_side as f32 / 2.0;
        let found = small.analyze(&shrunk)?.into_iter().min_by(|a, b| {
            let dist = |f: &Face| (f.detection.center()[0] - centre).hypot(f.detection.center()[1] - centre);
            dist(a).total_cmp(&dist(b))
        });
        let drift = found
            .filter(|f| {
                let [fx, fy] = f.detection.center();
                (fx - centre).hypot(fy - centre) < face_size / 2.0
            })
            .map(|f| {
                // Pixel centres sit at whole coordinates in both images; the shrink maps the
                // centre of small pixel u to (u + 0.5) * scale - 0.5 in the surroundings.
                let back = |p: &[f32; 2]| [x0 + (p[0] + 0.5) * scale - 0.5, y0 + (p[1] + 0.5) * scale - 0.5];
                let marks: Vec<[f32; 2]> = f.landmarks.iter().map(back).collect();
                let five: Vec<[f32; 2]> = f.five.iter().map(back).collect();
                let e = eye_distance(&face.landmarks).max(1.0);
                LandmarkDrift {
                    full_size: side,
                    small_size: f.detection.w.max(f.detection.h),
                    all_68: mean_distance(&marks, &face.landmarks) / e,
                    five: mean_distance(&five, &face.five) / e,
                }
            });
        out.push(drift);
    }
    Ok(out)
}
