//! Identity and shape kept: face-api.js's 128-D descriptor and 68 landmarks of a restored face
//! against those of its ground truth (photos) or of the previous frame (video). The paper's
//! Deg. and LMD use ArcFace and another landmark model, which cannot be fetched here; these use
//! face-api's nets and carry their own names (`deg_faceapi`, `lmd_faceapi`), so they are not
//! comparable with the paper's figures.
//!
//! Aligned faces have the face at the same place in every image, so both nets look at fixed
//! boxes of the template (no detection, which would fail on a badly restored face and make the
//! two sides see different crops).

use std::path::Path;

use crate::analyze::landmarks::{ALIGNED_FACE_BOX_512, ALIGNED_LANDMARK_BOX_512, LandmarkBox, square_crops};
use crate::error::Result;
use crate::faceapi::{LANDMARK_INPUT_SIZE, LandmarkNet, RECOGNITION_INPUT_SIZE, RecognitionNet};
use crate::frame::Rgb;

/// What the nets say about one face: its descriptor and its landmarks (in the pixels of the
/// image the face was taken from).
#[derive(Debug, Clone, PartialEq)]
pub struct FaceSignature {
    pub descriptor: Vec<f32>,
    pub landmarks: [[f32; 2]; 68],
}

/// The landmark and recognition nets of face-api.js, loaded once.
pub struct FaceMetrics {
    landmarks: LandmarkNet,
    recognition: RecognitionNet,
}

impl FaceMetrics {
    /// `face_models`: the face-api model folder (weights/face-api/model).
    pub fn load(face_models: &Path) -> Result<Self> {
        Ok(Self { landmarks: LandmarkNet::load(face_models)?, recognition: RecognitionNet::load(face_models)? })
    }

    /// The signatures of square aligned faces (any size, the template scaled to it); the
    /// landmarks in 512-template pixels.
    pub fn aligned_signatures(&self, faces: &[&Rgb]) -> Result<Vec<FaceSignature>> {
        let boxes: Vec<[LandmarkBox; 2]> = faces
            .iter()
            .map(|f| [ALIGNED_FACE_BOX_512.scaled_to(f.w), ALIGNED_LANDMARK_BOX_512.scaled_to(f.w)])
            .collect();
        let mut sigs = self.signatures(faces, &boxes)?;
        for (sig, f) in sigs.iter_mut().zip(faces) {
            let k = 512.0 / f.w as f32;
            sig.landmarks = sig.landmarks.map(|[x, y]| [x * k, y * k]);
        }
        Ok(sigs)
    }

    /// The signature of each face: `boxes[i][0]` is the square the recognition net sees,
    /// `boxes[i][1]` the one the landmark net sees, in the pixels of `frames[i]`.
    pub fn signatures(&self, frames: &[&Rgb], boxes: &[[LandmarkBox; 2]]) -> Result<Vec<FaceSignature>> {
        if frames.is_empty() {
            return Ok(Vec::new());
        }
        let n = frames.len();
        let pick = |k: usize| frames.iter().copied().zip(boxes.iter().map(move |b| &b[k]));
        let descriptors =
            self.recognition.forward(&square_crops(pick(0), n, RECOGNITION_INPUT_SIZE)?)?.to_vec2::<f32>()?;
        let marks = self.landmarks.landmarks(&square_crops(pick(1), n, LANDMARK_INPUT_SIZE)?)?;
        Ok(descriptors
            .into_iter()
            .zip(marks)
            .zip(boxes)
            .map(|((descriptor, m), b)| FaceSignature {
                descriptor,
                landmarks: m.in_frame(b[1].x0, b[1].y0, b[1].side),
            })
            .collect())
    }
}

/// The cosine between two descriptors.
pub fn cosine(a: &FaceSignature, b: &FaceSignature) -> f64 {
    let dot: f64 = a.descriptor.iter().zip(&b.descriptor).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    (dot / (norm(&a.descriptor) * norm(&b.descriptor)).max(f64::MIN_POSITIVE)).clamp(-1.0, 1.0)
}

/// `deg_faceapi`: the angle between two descriptors, in degrees (0 for the same direction).
pub fn identity_angle(a: &FaceSignature, b: &FaceSignature) -> f64 {
    cosine(a, b).acos().to_degrees()
}

/// `lmd_faceapi`: the mean distance between corresponding landmarks.
pub fn landmark_distance(a: &FaceSignature, b: &FaceSignature) -> f64 {
    let d: f64 = a.landmarks.iter().zip(&b.landmarks).map(|(p, q)| f64::from((p[0] - q[0]).hypot(p[1] - q[1]))).sum();
    d / a.landmarks.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signature(descriptor: Vec<f32>, shift: f32) -> FaceSignature {
        FaceSignature { descriptor, landmarks: std::array::from_fn(|i| [i as f32 + shift, 2.0 * i as f32]) }
    }

    #[test]
    fn angle_and_landmark_distance() {
        let a = signature(vec![1.0, 0.0, 0.0], 0.0);
        let b = signature(vec![1.0, 1.0, 0.0], 3.0);
        assert!((identity_angle(&a, &b) - 45.0).abs() < 1e-9);
        assert_eq!(identity_angle(&a, &a), 0.0);
        assert!((landmark_distance(&a, &b) - 3.0).abs() < 1e-9);
    }
}
