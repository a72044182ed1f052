//! The identity loss. The official recipe compares ArcFace embeddings of the restored face and
//! the ground truth; ArcFace cannot be fetched here, so face-api's recognition net (frozen) takes
//! its place, looking at the face square that evaluation uses (`deg_faceapi`).

use std::path::Path;

use candle_core::{DType, Tensor};

use super::losses::l1;
use super::roi::roi_align;
use crate::analyze::landmarks::ALIGNED_FACE_BOX_512;
use crate::error::Result;
use crate::faceapi::{RECOGNITION_INPUT_SIZE, RecognitionNet};

pub struct IdentityLoss {
    net: RecognitionNet,
}

impl IdentityLoss {
    /// `face_models`: face-api's model folder.
    pub fn load(face_models: &Path) -> Result<Self> {
        Ok(Self { net: RecognitionNet::load(face_models)? })
    }

    /// The loss computed in `dtype` (f64 for finite-difference checks; training uses f32).
    pub fn to_dtype(&self, dtype: DType) -> Result<Self> {
        Ok(Self { net: self.net.to_dtype(dtype)? })
    }

    /// Descriptors of aligned faces `(b, 3, s, s)` in [-1, 1]: the template's face square cut
    /// and resized to 150 by area-averaged bilinear sampling (differentiable), 0..255, NHWC.
    pub fn descriptors(&self, faces: &Tensor) -> Result<Tensor> {
        let (b, _, s, _) = faces.dims4()?;
        let face = ALIGNED_FACE_BOX_512.scaled_to(s);
        let square = [face.x0 as f64, face.y0 as f64, (face.x0 + face.side) as f64, (face.y0 + face.side) as f64];
        let crops = roi_align(&faces.to_dtype(self.net.dtype())?, &vec![square; b], RECOGNITION_INPUT_SIZE)?;
        let rgb255 = ((crops + 1.0)? * 127.5)?.permute((0, 2, 3, 1))?;
        self.net.forward(&rgb255)
    }

    /// Mean absolute difference of the two faces' descriptors (the truth's detached).
    pub fn loss(&self, restored: &Tensor, truth: &Tensor) -> Result<Tensor> {
        let out = self.descriptors(restored)?;
        let want = self.descriptors(truth)?.detach();
        Ok(l1(&out, &want)?.to_dtype(restored.dtype())?)
    }
}
