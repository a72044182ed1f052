//! `FaceLandmark68Net`: the 68-point face landmark net (iBUG 300-W layout), 112x112 RGB in.

use std::path::Path;

use candle_core::Tensor;

use super::feature_extractor::{FEATURES, FeatureExtractor, Linear};
use super::tfjs::WeightMap;
use crate::error::{Error, Result};

/// Number of landmarks, and of values the net outputs (x, y interleaved).
pub const POINTS: usize = 68;
const OUTPUTS: usize = 2 * POINTS;

/// The 68-point landmark net (`face_landmark_68_model`).
pub struct LandmarkNet {
    features: FeatureExtractor,
    fc: Linear,
}

impl LandmarkNet {
    /// File name stem of the model in face-api's `model/` folder.
    pub const MODEL: &'static str = "face_landmark_68_model";

    /// Loads `<model_dir>/face_landmark_68_model-weights_manifest.json` and its shard.
    pub fn load(model_dir: impl AsRef<Path>) -> Result<Self> {
        Self::from_weights(&WeightMap::load_model(model_dir, Self::MODEL)?)
    }

    pub fn from_weights(w: &WeightMap) -> Result<Self> {
        Ok(LandmarkNet {
            features: FeatureExtractor::load(w, "the landmark net")?,
            fc: Linear::load(w, "fc", FEATURES, OUTPUTS)?,
        })
    }

    /// Faces `(n, 112, 112, 3)`, RGB 0..255 (NHWC, any float or u8 dtype) -> `(n, 136)`:
    /// `x0, y0, x1, y1, ...` relative to the 112x112 input (about 0..1; multiply by 112 for
    /// pixels). No resizing happens here: crop and resize the faces to 112x112 first.
    pub fn forward(&self, faces: &Tensor) -> Result<Tensor> {
        self.head(&self.features(faces)?)
    }

    /// The feature extractor's output, `(n, 256)`.
    pub fn features(&self, faces: &Tensor) -> Result<Tensor> {
        self.features.forward(faces)
    }

    /// `features` as candle operations whatever the device (the reference, which gradients
    /// flow through; `features` takes a faster path for inference on the CPU).
    pub fn features_candle(&self, faces: &Tensor) -> Result<Tensor> {
        self.features.forward_candle(faces)
    }

    /// The fully connected layer on `(n, 256)` features: `(n, 136)`.
    pub fn head(&self, features: &Tensor) -> Result<Tensor> {
        self.fc.forward(features)
    }

    /// [`LandmarkNet::forward`] as one [`Landmarks68`] per face.
    pub fn landmarks(&self, faces: &Tensor) -> Result<Vec<Landmarks68>> {
        Landmarks68::from_output(&self.forward(faces)?)
    }
}

/// The 68 landmarks of one face, `[x, y]` relative to the square net input (0..1 inside it).
/// Points 0-16 jaw, 17-21 and 22-26 brows, 27-35 nose, 36-41 and 42-47 eyes, 48-67 mouth.
#[derive(Clone, Debug, PartialEq)]
pub struct Landmarks68 {
    pub points: [[f32; 2]; POINTS],
}

impl Landmarks68 {
    /// Splits a `(n, 136)` landmark net output into one value per face.
    pub fn from_output(raw: &Tensor) -> Result<Vec<Self>> {
        let (_, k) = raw.dims2()?;
        if k != OUTPUTS {
            return Err(Error::Input(format!("landmark output has {k} values per face, expected {OUTPUTS}")));
        }
        let rows = raw.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
        Ok(rows.iter().map(|r| Landmarks68 { points: std::array::from_fn(|i| [r[2 * i], r[2 * i + 1]]) }).collect())
    }

    /// The points in the frame of a square `size`x`size` crop whose top left corner is at
    /// (`x0`, `y0`) in that frame (e.g. the photo the face was cropped from).
    pub fn in_frame(&self, x0: f32, y0: f32, size: f32) -> [[f32; 2]; POINTS] {
        self.points.map(|[x, y]| [x0 + x * size, y0 + y * size])
    }
}
