//! `FaceExpressionNet`: seven facial expression probabilities, 112x112 RGB in. Same feature
//! extractor architecture as the landmark net, with its own weights.

use std::path::Path;

use candle_core::Tensor;

use super::feature_extractor::{FEATURES, FeatureExtractor, Linear};
use super::tfjs::WeightMap;
use crate::error::Result;

/// The classes, in the order of the net's outputs (face-api's `FACE_EXPRESSION_LABELS`).
pub const EXPRESSION_LABELS: [&str; 7] = ["neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"];

/// The expression net's outputs for a batch of faces.
pub struct Expressions {
    /// `(n, 7)`: the fully connected layer's output.
    pub logits: Tensor,
    /// `(n, 7)`: `softmax(logits)`, what face-api reports.
    pub probabilities: Tensor,
}

/// The facial expression net (`face_expression_model`).
pub struct ExpressionNet {
    features: FeatureExtractor,
    fc: Linear,
}

impl ExpressionNet {
    /// File name stem of the model in face-api's `model/` folder.
    pub const MODEL: &'static str = "face_expression_model";

    /// Loads `<model_dir>/face_expression_model-weights_manifest.json` and its shard.
    pub fn load(model_dir: impl AsRef<Path>) -> Result<Self> {
        Self::from_weights(&WeightMap::load_model(model_dir, Self::MODEL)?)
    }

    pub fn from_weights(w: &WeightMap) -> Result<Self> {
        Ok(ExpressionNet {
            features: FeatureExtractor::load(w, "the expression net")?,
            fc: Linear::load(w, "fc", FEATURES, EXPRESSION_LABELS.len())?,
        })
    }

    /// Faces `(n, 112, 112, 3)`, RGB 0..255 (NHWC, any float or u8 dtype) -> logits and
    /// probabilities, `(n, 7)` each, in [`EXPRESSION_LABELS`] order.
    pub fn forward(&self, faces: &Tensor) -> Result<Expressions> {
        self.head(&self.features(faces)?)
    }

    /// The feature extractor's output, `(n, 256)`.
    pub fn features(&self, faces: &Tensor) -> Result<Tensor> {
        self.features.forward(faces)
    }

    /// The classifier on `(n, 256)` features.
    pub fn head(&self, features: &Tensor) -> Result<Expressions> {
        let logits = self.fc.forward(features)?;
        // Max-subtracted exp / sum, as tfjs' CPU softmax.
        let probabilities = candle_nn::ops::softmax_last_dim(&logits)?;
        Ok(Expressions { logits, probabilities })
    }
}
