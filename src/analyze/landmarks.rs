//! Step: landmarks. A face box becomes a square crop around it, resized to the landmark net's
//! input; the net's 68 points come back in frame coordinates, and GFP-GAN's five alignment
//! points are taken from them.

use candle_core::{Device, Tensor};

use super::detect::Detection;
use crate::align::{Similarity, warp, warp_cubic};
use crate::error::Result;
use crate::faceapi::{LANDMARK_INPUT_SIZE, Landmarks68};
use crate::frame::Rgb;

/// The square a face's landmarks are looked for in, frame pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LandmarkBox {
    pub x0: f32,
    pub y0: f32,
    pub side: f32,
}

/// Where rustface finds the face in faces aligned to the 512 FFHQ template (median of the 20
/// faces of the face-api demo photos: a square of side 312 around (262, 281)).
pub const ALIGNED_FACE_BOX_512: LandmarkBox = LandmarkBox { x0: 106.0, y0: 125.0, side: 312.0 };
/// The landmark square of an aligned face: the face box enlarged 1.2x on its centre, as the
/// analysis step enlarges detection boxes.
pub const ALIGNED_LANDMARK_BOX_512: LandmarkBox = LandmarkBox { x0: 74.8, y0: 93.8, side: 374.4 };

impl LandmarkBox {
    /// A box of the 512 template scaled to an aligned face of `side` pixels.
    pub fn scaled_to(&self, side: usize) -> Self {
        let k = side as f32 / 512.0;
        Self { x0: self.x0 * k, y0: self.y0 * k, side: self.side * k }
    }

    /// A square `scale` times the box's larger side, on the box's centre.
    pub fn around(d: &Detection, scale: f32) -> Self {
        let side = d.w.max(d.h) * scale;
        let [cx, cy] = d.center();
        Self { x0: cx - side / 2.0, y0: cy - side / 2.0, side }
    }
}

/// The crops of `boxes` as the landmark and expression nets take them: `(n, 112, 112, 3)`,
/// 0..255. Faces under half the net's input are enlarged bicubically: bilinear enlargement is a
/// blur the net was not trained on, and on 16-20 px faces it sends more landmarks astray
/// (BENCHMARKS.md, "Small faces").
pub fn crops(frame: &Rgb, boxes: &[LandmarkBox]) -> Result<Tensor> {
    sampled_crops(boxes.iter().map(|b| (frame, b)), boxes.len(), LANDMARK_INPUT_SIZE, warp_cubic)
}

/// Square crops (`count` of them, each from its own frame) resized to `size`, bilinear: an
/// `(n, size, size, 3)` batch, 0..255, the input of every face-api net (as face-api.js makes it,
/// which the evaluation's metrics follow).
pub fn square_crops<'a>(
    crops: impl Iterator<Item = (&'a Rgb, &'a LandmarkBox)>,
    count: usize,
    size: usize,
) -> Result<Tensor> {
    sampled_crops(crops, count, size, warp)
}

/// Below this ratio of box side to crop side (a face enlarged more than twice) `crops` enlarges
/// bicubically; above, bilinear sampling is as good and stays what it was.
const CUBIC_BELOW: f32 = 0.5;

/// Square crops, those enlarged more than twice made with `enlarge`.
fn sampled_crops<'a>(
    crops: impl Iterator<Item = (&'a Rgb, &'a LandmarkBox)>,
    count: usize,
    size: usize,
    enlarge: fn(&Rgb, &Similarity, usize) -> Rgb,
) -> Result<Tensor> {
    let mut data = Vec::with_capacity(count * size * size * 3);
    for (frame, b) in crops {
        let s = b.side / size as f32;
        let to_src = Similarity { a: s, b: 0.0, tx: b.x0, ty: b.y0 };
        let crop = if s < CUBIC_BELOW { enlarge(frame, &to_src, size) } else { warp(frame, &to_src, size) };
        data.extend(crop.data);
    }
    let n = data.len() / (size * size * 3);
    Ok(Tensor::from_vec(data, (n, size, size, 3), &Device::Cpu)?)
}

/// The point of the 68 (iBUG 300-W layout) that each point becomes in a mirror image: jaw,
/// brows, nostrils, eyes and mouth swap sides; the nose bridge and the mouth's middle stay.
const MIRROR: [usize; 68] = [
    16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, // jaw
    26, 25, 24, 23, 22, 21, 20, 19, 18, 17, // brows
    27, 28, 29, 30, 35, 34, 33, 32, 31, // nose
    45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40, // eyes
    54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, // outer lips
    64, 63, 62, 61, 60, 67, 66, 65, // inner lips
];

/// A batch of `(n, s, s, 3)` crops mirrored left to right.
pub fn mirrored(batch: &Tensor) -> Result<Tensor> {
    let (n, h, w, c) = batch.dims4()?;
    let data = batch.flatten_all()?.to_vec1::<f32>()?;
    let mut out = Vec::with_capacity(data.len());
    for row in data.chunks_exact(w * c) {
        for x in (0..w).rev() {
            out.extend_from_slice(&row[x * c..][..c]);
        }
    }
    Ok(Tensor::from_vec(out, (n, h, w, c), batch.device())?)
}

/// The mean of a face's landmarks and those found in its mirror image, brought back (each
/// mirrored point to its own, x reflected about the crop's centre): averaging the two cancels
/// the net's left-right errors, which on faces enlarged several times are much of its error.
pub fn average_with_mirrored(direct: &Landmarks68, mirrored: &Landmarks68) -> Landmarks68 {
    let mut points = direct.points;
    for (k, p) in mirrored.points.iter().enumerate() {
        let own = &mut points[MIRROR[k]];
        *own = [(own[0] + 1.0 - p[0]) / 2.0, (own[1] + p[1]) / 2.0];
    }
    Landmarks68 { points }
}

/// GFP-GAN's five points from the 68: eye centres (means of 36-41 and 42-47), nose tip (30),
/// mouth corners (48, 54).
pub fn five_points(l: &[[f32; 2]; 68]) -> [[f32; 2]; 5] {
    let mean = |r: std::ops::Range<usize>| {
        let n = r.len() as f32;
        let s = l[r].iter().fold([0.0, 0.0], |a, p| [a[0] + p[0], a[1] + p[1]]);
        [s[0] / n, s[1] / n]
    };
    [mean(36..42), mean(42..48), l[30], l[48], l[54]]
}

/// The distance between the eye centres (the first two of the five points), the unit of
/// landmark errors.
pub fn eye_distance(l: &[[f32; 2]; 68]) -> f32 {
    let [left, right, ..] = five_points(l);
    (left[0] - right[0]).hypot(left[1] - right[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_points_are_eye_centres_nose_and_mouth_corners() {
        let mut l = [[0.0f32; 2]; 68];
        for (i, p) in l.iter_mut().enumerate() {
            *p = [i as f32, 2.0 * i as f32];
        }
        let five = five_points(&l);
        assert_eq!(five, [[38.5, 77.0], [44.5, 89.0], [30.0, 60.0], [48.0, 96.0], [54.0, 108.0]]);
    }

    #[test]
    fn the_aligned_landmark_box_is_the_face_box_enlarged_on_its_centre() {
        let c = |b: LandmarkBox| (b.x0 + b.side / 2.0, b.y0 + b.side / 2.0);
        let ((x1, y1), (x2, y2)) = (c(ALIGNED_FACE_BOX_512), c(ALIGNED_LANDMARK_BOX_512));
        assert!((x1 - x2).abs() < 1e-3 && (y1 - y2).abs() < 1e-3);
        assert!((ALIGNED_LANDMARK_BOX_512.side - 1.2 * ALIGNED_FACE_BOX_512.side).abs() < 1e-3);
        assert_eq!(ALIGNED_FACE_BOX_512.scaled_to(256), LandmarkBox { x0: 53.0, y0: 62.5, side: 156.0 });
    }

    #[test]
    fn mirroring_swaps_sides_and_a_symmetric_answer_averages_to_itself() {
        assert!((0..68).all(|k| MIRROR[MIRROR[k]] == k), "mirroring twice is the identity");
        assert_eq!((MIRROR[36], MIRROR[39], MIRROR[48], MIRROR[30], MIRROR[0]), (45, 42, 54, 30, 16));
        // The net answering a mirrored crop with exactly the mirrored points: the average is the
        // direct answer, points in their own places.
        let direct = Landmarks68 { points: std::array::from_fn(|k| [0.1 + 0.01 * k as f32, 0.2 + 0.005 * k as f32]) };
        let mirror = Landmarks68 {
            points: std::array::from_fn(|k| {
                let [x, y] = direct.points[MIRROR[k]];
                [1.0 - x, y]
            }),
        };
        let avg = average_with_mirrored(&direct, &mirror);
        for (a, d) in avg.points.iter().zip(&direct.points) {
            assert!((a[0] - d[0]).abs() < 1e-6 && (a[1] - d[1]).abs() < 1e-6);
        }
        // An error the mirror does not repeat (the net biased to its right) is halved.
        let biased = Landmarks68 { points: direct.points.map(|[x, y]| [x + 0.02, y]) };
        let mirror_biased = Landmarks68 { points: mirror.points.map(|[x, y]| [x + 0.02, y]) };
        let avg = average_with_mirrored(&biased, &mirror_biased);
        assert!(avg.points.iter().zip(&direct.points).all(|(a, d)| (a[0] - d[0]).abs() < 1e-6));
    }

    #[test]
    fn crops_mirror_left_to_right() {
        let t = Tensor::from_vec((0..12).map(|v| v as f32).collect::<Vec<_>>(), (1, 2, 2, 3), &Device::Cpu).unwrap();
        let m = mirrored(&t).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(m, [3., 4., 5., 0., 1., 2., 9., 10., 11., 6., 7., 8.]);
    }

    #[test]
    fn the_landmark_box_is_a_square_on_the_face_centre() {
        let d = Detection { x: 10.0, y: 20.0, w: 40.0, h: 60.0, score: 5.0 };
        assert_eq!(LandmarkBox::around(&d, 1.2), LandmarkBox { x0: -6.0, y0: 14.0, side: 72.0 });
    }
}
