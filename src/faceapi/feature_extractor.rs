//! face-api's `FaceFeatureExtractor`: four dense blocks and a global average pool, 112x112 RGB
//! in, 256 features out. The landmark and expression nets both use it, each with its own
//! weights (under the same tensor names).
//!
//! Activations stay NHWC throughout, as in tfjs: the depthwise convolutions are a direct loop on
//! channel-contiguous rows and the pointwise ones a single matrix product.

use candle_core::{DType, Tensor};

use super::fast::FastExtractor;
use super::ops::{check_input, depthwise3x3, normalize, pad_same_nchw, pointwise};
use super::tfjs::WeightMap;
use crate::error::Result;

/// Input side of the feature extractor.
pub const INPUT_SIZE: usize = 112;
/// Number of features it produces.
pub const FEATURES: usize = 256;

/// A plain convolution + bias (`dense0/conv0`: 3x3, stride 2, SAME).
struct Conv {
    /// OIHW, contiguous, for candle's conv2d.
    filters: Tensor,
    bias: Tensor,
}

impl Conv {
    fn load(w: &WeightMap, prefix: &str, cin: usize, cout: usize) -> Result<Self> {
        let filters = w.get(&format!("{prefix}/filters"), &[3, 3, cin, cout])?;
        Ok(Conv {
            filters: filters.permute((3, 2, 0, 1))?.contiguous()?,
            bias: w.get(&format!("{prefix}/bias"), &[cout])?,
        })
    }

    /// NHWC in and out; candle convolves NCHW, with TF's asymmetric SAME padding made explicit.
    fn forward(&self, x: &Tensor, stride: usize) -> Result<Tensor> {
        let x = pad_same_nchw(&x.permute((0, 3, 1, 2))?.contiguous()?, 3, stride)?;
        let y = x.conv2d(&self.filters, 0, stride, 1, 1)?.permute((0, 2, 3, 1))?.contiguous()?;
        Ok(y.broadcast_add(&self.bias)?)
    }
}

/// `tf.separableConv2d(x, depthwise_filter, pointwise_filter, stride, 'same') + bias`; nothing
/// between the depthwise and the pointwise step.
struct SeparableConv {
    /// `[3, 3, cin, 1]` flattened.
    depthwise: Vec<f32>,
    /// `(cin, cout)`.
    pointwise: Tensor,
    bias: Tensor,
}

impl SeparableConv {
    fn load(w: &WeightMap, prefix: &str, cin: usize, cout: usize) -> Result<Self> {
        Ok(SeparableConv {
            depthwise: w.get_vec(&format!("{prefix}/depthwise_filter"), &[3, 3, cin, 1])?,
            pointwise: w.get(&format!("{prefix}/pointwise_filter"), &[1, 1, cin, cout])?.reshape((cin, cout))?,
            bias: w.get(&format!("{prefix}/bias"), &[cout])?,
        })
    }

    fn forward(&self, x: &Tensor, stride: usize) -> Result<Tensor> {
        let y = pointwise(&depthwise3x3(x, &self.depthwise, stride)?, &self.pointwise)?;
        Ok(y.broadcast_add(&self.bias)?)
    }
}

/// The down-sampling first convolution of a dense block: plain in `dense0`, separable after.
enum Conv0 {
    Plain(Conv),
    Separable(SeparableConv),
}

/// face-api's `denseBlock4`: a stride-2 convolution, then three separable convolutions each fed
/// the ReLU of the sum of all previous outputs.
struct DenseBlock4 {
    conv0: Conv0,
    conv1: SeparableConv,
    conv2: SeparableConv,
    conv3: SeparableConv,
}

impl DenseBlock4 {
    fn load(w: &WeightMap, prefix: &str, cin: usize, cout: usize, first: bool) -> Result<Self> {
        let p = |name: &str| format!("{prefix}/{name}");
        let conv0 = if first {
            Conv0::Plain(Conv::load(w, &p("conv0"), cin, cout)?)
        } else {
            Conv0::Separable(SeparableConv::load(w, &p("conv0"), cin, cout)?)
        };
        Ok(DenseBlock4 {
            conv0,
            conv1: SeparableConv::load(w, &p("conv1"), cout, cout)?,
            conv2: SeparableConv::load(w, &p("conv2"), cout, cout)?,
            conv3: SeparableConv::load(w, &p("conv3"), cout, cout)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let out1 = match &self.conv0 {
            Conv0::Plain(c) => c.forward(x, 2)?,
            Conv0::Separable(c) => c.forward(x, 2)?,
        }
        .relu()?;
        let out2 = self.conv1.forward(&out1, 1)?;
        let out3 = self.conv2.forward(&(&out1 + &out2)?.relu()?, 1)?;
        // Sums grouped as tfjs does, `out1 + (out2 + out3)`, for the same rounding.
        let out4 = self.conv3.forward(&(&out1 + (&out2 + &out3)?)?.relu()?, 1)?;
        Ok((&out1 + (&out2 + (&out3 + &out4)?)?)?.relu()?)
    }
}

/// `FaceFeatureExtractor`: `dense0..dense3` (3 -> 32 -> 64 -> 128 -> 256 channels, 112 -> 7
/// pixels), then a 7x7 average pool.
pub struct FeatureExtractor {
    dense: [DenseBlock4; 4],
    /// The same weights for inference on the CPU (no gradient), several times faster.
    fast: FastExtractor,
    /// The net it belongs to, for error messages.
    net: &'static str,
}

impl FeatureExtractor {
    /// Reads `dense{0..3}/...` from a landmark or expression manifest; `net` names the net in
    /// error messages.
    pub fn load(w: &WeightMap, net: &'static str) -> Result<Self> {
        Ok(FeatureExtractor {
            dense: [
                DenseBlock4::load(w, "dense0", 3, 32, true)?,
                DenseBlock4::load(w, "dense1", 32, 64, false)?,
                DenseBlock4::load(w, "dense2", 64, 128, false)?,
                DenseBlock4::load(w, "dense3", 128, 256, false)?,
            ],
            fast: FastExtractor::load(w)?,
            net,
        })
    }

    /// `(n, 112, 112, 3)` RGB 0..255 -> `(n, 256)` bottleneck features: on the CPU without a
    /// gradient through `FastExtractor`, otherwise as candle operations (`forward_candle`).
    pub fn forward(&self, faces: &Tensor) -> Result<Tensor> {
        let x = check_input(faces, INPUT_SIZE, self.net, DType::F32)?;
        if !x.device().is_cpu() || x.track_op() {
            return self.candle_ops(&x);
        }
        let n = x.dim(0)?;
        let features = self.fast.forward(&x.flatten_all()?.to_vec1::<f32>()?, n);
        Ok(Tensor::from_vec(features, (n, FEATURES), x.device())?)
    }

    /// `forward` as candle operations (the reference; gradients flow through it).
    pub fn forward_candle(&self, faces: &Tensor) -> Result<Tensor> {
        self.candle_ops(&check_input(faces, INPUT_SIZE, self.net, DType::F32)?)
    }

    /// The candle operations on faces `check_input` has passed.
    fn candle_ops(&self, faces: &Tensor) -> Result<Tensor> {
        let mut x = normalize(faces)?;
        for block in &self.dense {
            x = block.forward(&x)?;
        }
        // avgPool(7x7, stride 2, VALID) on the 7x7 map: one window, the mean over H and W.
        let (n, h, w, c) = x.dims4()?;
        debug_assert_eq!((h, w, c), (7, 7, FEATURES));
        let count = Tensor::new(&[(h * w) as f32], x.device())?;
        Ok(x.reshape((n, h * w, c))?.sum(1)?.broadcast_div(&count)?)
    }
}

/// face-api's `fullyConnectedLayer`: `x @ weights + bias`.
pub(crate) struct Linear {
    weights: Tensor,
    bias: Tensor,
}

impl Linear {
    pub(crate) fn load(w: &WeightMap, prefix: &str, cin: usize, cout: usize) -> Result<Self> {
        Ok(Linear {
            weights: w.get(&format!("{prefix}/weights"), &[cin, cout])?,
            bias: w.get(&format!("{prefix}/bias"), &[cout])?,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.matmul(&self.weights)?.broadcast_add(&self.bias)?)
    }
}
