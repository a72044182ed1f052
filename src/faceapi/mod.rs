//! The face-api.js networks (68-point landmarks, expressions, 128-D identity) in candle, loaded
//! from the TF.js manifests and weight files of `@vladmandic/face-api`.
//!
//! All three nets take a batch of square RGB faces, NHWC `(n, size, size, 3)` with values
//! 0..255 (112 for landmarks and expressions, 150 for recognition), exactly what face-api feeds
//! them once a face is cropped, zero-padded to a square and resized: that preparation is the
//! caller's. [`rgb_batch`] builds such a tensor from images. They run on the CPU and follow
//! face-api's float32 computation step for step (see `tests/faceapi/NOTES.md`).

mod expressions;
mod fast;
mod feature_extractor;
mod landmarks;
mod ops;
mod recognition;
pub mod tfjs;

use candle_core::{Device, Tensor};

pub use expressions::{EXPRESSION_LABELS, ExpressionNet, Expressions};
pub use landmarks::{LandmarkNet, Landmarks68};
pub use ops::MEAN_RGB;
pub use recognition::{DESCRIPTOR_LEN, INPUT_SIZE as RECOGNITION_INPUT_SIZE, RecognitionNet};
pub use tfjs::WeightMap;

use crate::error::{Error, Result};

/// Input side of the landmark and expression nets.
pub const LANDMARK_INPUT_SIZE: usize = feature_extractor::INPUT_SIZE;

/// Stacks same-sized RGB images into an `(n, h, w, 3)` f32 tensor with values 0..255, the
/// input layout of every net here.
pub fn rgb_batch(images: &[&image::RgbImage]) -> Result<Tensor> {
    let Some(first) = images.first() else {
        return Err(Error::Input("no images to batch".into()));
    };
    let (w, h) = first.dimensions();
    let mut data = Vec::with_capacity(images.len() * (w * h * 3) as usize);
    for im in images {
        if im.dimensions() != (w, h) {
            return Err(Error::Input(format!(
                "images of different sizes in one batch: {w}x{h} and {}x{}",
                im.width(),
                im.height()
            )));
        }
        data.extend(im.as_raw().iter().map(|&v| v as f32));
    }
    Ok(Tensor::from_vec(data, (images.len(), h as usize, w as usize, 3), &Device::Cpu)?)
}
