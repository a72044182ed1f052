//! `FaceRecognitionNet`: dlib's ResNet-34-like face recognition net as ported to face-api,
//! 150x150 RGB in, a 128-D descriptor out (not L2-normalised; face-api compares descriptors by
//! Euclidean distance, 0.6 being its usual "same person" threshold).
//!
//! Runs NCHW on candle's convolutions: the net has no depthwise layers, and its VALID stride-2
//! convolutions and SAME stride-1 3x3 ones both map onto candle's symmetric padding.

use std::path::Path;

use candle_core::{DType, Tensor};

use super::ops::{avg_pool_2x2, check_input, max_pool_3x3_stride2, normalize};
use super::tfjs::WeightMap;
use crate::error::Result;
use crate::model::ops::conv2d;

/// Input side of the recognition net.
pub const INPUT_SIZE: usize = 150;
/// Length of a face descriptor.
pub const DESCRIPTOR_LEN: usize = 128;

/// `conv -> + bias -> * scale/weights + scale/biases -> [relu]` (batch norm folded into a
/// per-channel scale), face-api's recognition `convLayer`.
struct ConvLayer {
    /// OIHW, contiguous.
    filters: Tensor,
    /// `bias`, `scale/weights`, `scale/biases`, each `(1, C, 1, 1)`.
    bias: Tensor,
    scale: Tensor,
    shift: Tensor,
}

impl ConvLayer {
    fn load(w: &WeightMap, prefix: &str, k: usize, cin: usize, cout: usize) -> Result<Self> {
        let per_channel = |name: &str| -> Result<Tensor> {
            Ok(w.get(&format!("{prefix}/{name}"), &[cout])?.reshape((1, cout, 1, 1))?)
        };
        let filters = w.get(&format!("{prefix}/conv/filters"), &[k, k, cin, cout])?;
        Ok(ConvLayer {
            filters: filters.permute((3, 2, 0, 1))?.contiguous()?,
            bias: per_channel("conv/bias")?,
            scale: per_channel("scale/weights")?,
            shift: per_channel("scale/biases")?,
        })
    }

    fn to_dtype(&self, dtype: DType) -> Result<Self> {
        Ok(ConvLayer {
            filters: self.filters.to_dtype(dtype)?,
            bias: self.bias.to_dtype(dtype)?,
            scale: self.scale.to_dtype(dtype)?,
            shift: self.shift.to_dtype(dtype)?,
        })
    }

    /// `padding` is symmetric: 1 gives TF SAME for the 3x3 stride-1 convolutions, 0 is VALID.
    fn forward(&self, x: &Tensor, padding: usize, stride: usize, relu: bool) -> Result<Tensor> {
        let y = conv2d(x, &self.filters, padding, stride)?.broadcast_add(&self.bias)?;
        // Three separate steps rather than a folded affine: tfjs rounds after each.
        let y = y.broadcast_mul(&self.scale)?.broadcast_add(&self.shift)?;
        Ok(if relu { y.relu()? } else { y })
    }
}

/// face-api's `residual` (same size) or `residualDown` (stride 2) block.
struct Residual {
    conv1: ConvLayer,
    conv2: ConvLayer,
    down: bool,
}

impl Residual {
    fn load(w: &WeightMap, prefix: &str, cin: usize, cout: usize, down: bool) -> Result<Self> {
        Ok(Residual {
            conv1: ConvLayer::load(w, &format!("{prefix}/conv1"), 3, cin, cout)?,
            conv2: ConvLayer::load(w, &format!("{prefix}/conv2"), 3, cout, cout)?,
            down,
        })
    }

    fn to_dtype(&self, dtype: DType) -> Result<Self> {
        Ok(Residual { conv1: self.conv1.to_dtype(dtype)?, conv2: self.conv2.to_dtype(dtype)?, down: self.down })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !self.down {
            let out = self.conv1.forward(x, 1, 1, true)?;
            let out = self.conv2.forward(&out, 1, 1, false)?;
            return Ok((out + x)?.relu()?);
        }
        // conv1 is 3x3 stride 2 VALID (35 -> 17, 17 -> 8, 8 -> 3, 4 -> 1); the shortcut is a 2x2
        // average pool (35 -> 17, 17 -> 8, 8 -> 4, 4 -> 2).
        let mut out = self.conv1.forward(x, 0, 2, true)?;
        out = self.conv2.forward(&out, 1, 1, false)?;
        let mut pooled = avg_pool_2x2(x)?;
        let (n, c, ph, pw) = pooled.dims4()?;
        let (_, cout, oh, ow) = out.dims4()?;
        if (ph, pw) != (oh, ow) {
            // face-api appends one zero row (bottom) and one zero column (right) to the smaller
            // residual branch, whatever the actual difference (always 1 here).
            out = out.pad_with_zeros(2, 0, 1)?.pad_with_zeros(3, 0, 1)?;
        }
        if c != cout {
            // The shortcut gets zero channels appended: [pooled, zeros like pooled].
            pooled = Tensor::cat(&[&pooled, &pooled.zeros_like()?], 1)?;
            debug_assert_eq!(pooled.dims4()?, (n, cout, ph, pw));
        }
        Ok((pooled + out)?.relu()?)
    }
}

/// The face recognition net (`face_recognition_model`).
pub struct RecognitionNet {
    conv32_down: ConvLayer,
    blocks: Vec<Residual>,
    /// `(256, 128)`, no bias.
    fc: Tensor,
}

impl RecognitionNet {
    /// File name stem of the model in face-api's `model/` folder.
    pub const MODEL: &'static str = "face_recognition_model";

    /// Loads `<model_dir>/face_recognition_model-weights_manifest.json` and its shard.
    pub fn load(model_dir: impl AsRef<Path>) -> Result<Self> {
        Self::from_weights(&WeightMap::load_model(model_dir, Self::MODEL)?)
    }

    pub fn from_weights(w: &WeightMap) -> Result<Self> {
        // (name, in channels, out channels, down-sampling)
        const BLOCKS: [(&str, usize, usize, bool); 14] = [
            ("conv32_1", 32, 32, false),
            ("conv32_2", 32, 32, false),
            ("conv32_3", 32, 32, false),
            ("conv64_down", 32, 64, true),
            ("conv64_1", 64, 64, false),
            ("conv64_2", 64, 64, false),
            ("conv64_3", 64, 64, false),
            ("conv128_down", 64, 128, true),
            ("conv128_1", 128, 128, false),
            ("conv128_2", 128, 128, false),
            ("conv256_down", 128, 256, true),
            ("conv256_1", 256, 256, false),
            ("conv256_2", 256, 256, false),
            ("conv256_down_out", 256, 256, true),
        ];
        let blocks = BLOCKS
            .iter()
            .map(|&(name, cin, cout, down)| Residual::load(w, name, cin, cout, down))
            .collect::<Result<Vec<_>>>()?;
        Ok(RecognitionNet {
            conv32_down: ConvLayer::load(w, "conv32_down", 7, 3, 32)?,
            blocks,
            fc: w.get("fc", &[256, DESCRIPTOR_LEN])?,
        })
    }

    /// The net with its weights in `dtype` (f64: precise finite-difference checks of the
    /// identity loss's gradient; face-api itself runs in f32).
    pub fn to_dtype(&self, dtype: DType) -> Result<Self> {
        Ok(RecognitionNet {
            conv32_down: self.conv32_down.to_dtype(dtype)?,
            blocks: self.blocks.iter().map(|b| b.to_dtype(dtype)).collect::<Result<_>>()?,
            fc: self.fc.to_dtype(dtype)?,
        })
    }

    /// The dtype of the weights (f32 unless converted by [`Self::to_dtype`]).
    pub fn dtype(&self) -> DType {
        self.fc.dtype()
    }

    /// Faces `(n, 150, 150, 3)`, RGB 0..255 (NHWC, any float or u8 dtype) -> descriptors
    /// `(n, 128)`. No resizing happens here: crop and resize the faces to 150x150 first.
    pub fn forward(&self, faces: &Tensor) -> Result<Tensor> {
        let x = normalize(&check_input(faces, INPUT_SIZE, "the recognition net", self.dtype())?)?;
        let x = x.permute((0, 3, 1, 2))?.contiguous()?;
        // 7x7 stride 2 VALID: 150 -> 72; max pool 3x3 stride 2 VALID: 72 -> 35.
        let mut x = max_pool_3x3_stride2(&self.conv32_down.forward(&x, 0, 2, true)?)?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        // Global mean over H and W (2x2 here), then the linear projection.
        let (n, c, h, w) = x.dims4()?;
        let count = Tensor::new(&[(h * w) as f32], x.device())?.to_dtype(x.dtype())?;
        let pooled = x.reshape((n, c, h * w))?.sum(2)?.broadcast_div(&count)?;
        Ok(pooled.matmul(&self.fc)?)
    }
}
