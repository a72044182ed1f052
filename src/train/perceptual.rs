//! The perceptual and style losses of the official recipe (BasicSR's `PerceptualLoss` with a
//! VGG19 feature extractor): L1 between VGG19 features of the restored face and the ground truth
//! before the ReLUs of conv1_2, conv2_2, conv3_4, conv4_4 and conv5_4 (weights 0.1, 0.1, 1, 1,
//! 1), and L1 between their Gram matrices. The VGG19 weights cannot be fetched here: users give
//! torchvision's `vgg19` state dict (`features.N.weight` / `.bias`) as `.safetensors` or `.pth`;
//! without it the loss is off.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::losses::{gram, l1};
use crate::error::{Error, Result};

/// VGG19's 16 convolutions (torchvision's `features` indices), max pooling after the 2nd, 4th,
/// 8th and 12th.
const CONVS: [usize; 16] = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34];
const POOL_AFTER: [usize; 4] = [2, 7, 16, 25];
/// The features compared and their weights: conv1_2, conv2_2, conv3_4, conv4_4, conv5_4.
const LAYERS: [(usize, f64); 5] = [(2, 0.1), (7, 0.1), (16, 1.0), (25, 1.0), (34, 1.0)];
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

pub struct PerceptualLoss {
    /// `(weight, bias)` per convolution, frozen (constants, not trained).
    convs: Vec<(usize, Tensor, Tensor)>,
}

impl PerceptualLoss {
    pub fn load(path: &Path, device: &Device, dtype: DType) -> Result<Self> {
        let tensors = crate::weights::read_tensors(path)?;
        Self::from_tensors(&tensors, path, device, dtype)
    }

    pub fn from_tensors(t: &HashMap<String, Tensor>, path: &Path, device: &Device, dtype: DType) -> Result<Self> {
        let mut convs = Vec::new();
        let mut cin = 3;
        for &i in &CONVS {
            let get = |name: &str| {
                let key = format!("features.{i}.{name}");
                t.get(&key).ok_or_else(|| Error::checkpoint(path, format!("not torchvision's VGG19: no `{key}`")))
            };
            let (w, b) = (get("weight")?, get("bias")?);
            let cout = w.dim(0)?;
            if w.dims() != [cout, cin, 3, 3] || b.dims() != [cout] {
                return Err(Error::checkpoint(
                    path,
                    format!("`features.{i}`: weight {:?} and bias {:?} are not VGG19's", w.dims(), b.dims()),
                ));
            }
            let to = |x: &Tensor| -> Result<Tensor> { Ok(x.to_dtype(dtype)?.to_device(device)?.contiguous()?) };
            convs.push((i, to(w)?, to(&b.reshape((1, cout, 1, 1))?)?));
            cin = cout;
        }
        Ok(Self { convs })
    }

    /// The five compared feature maps of faces in [-1, 1] (range-normalised to [0, 1], then
    /// ImageNet mean and std, as BasicSR's extractor with `range_norm` and `use_input_norm`).
    pub fn features(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let stat = |v: [f32; 3]| -> Result<Tensor> {
            Ok(Tensor::new(&v, x.device())?.to_dtype(x.dtype())?.reshape((1, 3, 1, 1))?)
        };
        let mut h = ((x + 1.0)? / 2.0)?.broadcast_sub(&stat(MEAN)?)?.broadcast_div(&stat(STD)?)?;
        let mut out = Vec::with_capacity(LAYERS.len());
        for (i, w, b) in &self.convs {
            let pre = crate::model::ops::conv2d(&h, w, 1, 1)?.broadcast_add(b)?;
            if LAYERS.iter().any(|(l, _)| l == i) {
                out.push(pre.clone());
            }
            if *i == 34 {
                break;
            }
            h = pre.relu()?;
            if POOL_AFTER.contains(i) {
                h = max_pool_2x2(&h)?;
            }
        }
        Ok(out)
    }

    /// `(perceptual, style)`: the weighted L1 of the features and of their Gram matrices, the
    /// ground truth's detached.
    pub fn losses(&self, restored: &Tensor, truth: &Tensor) -> Result<(Tensor, Tensor)> {
        let ours = self.features(restored)?;
        let theirs = self.features(&truth.detach())?;
        let mut percep = Vec::new();
        let mut style = Vec::new();
        for ((a, b), (_, w)) in ours.iter().zip(&theirs).zip(LAYERS) {
            percep.push((l1(a, b)? * w)?);
            style.push((l1(&gram(a)?, &gram(&b.detach())?)? * w)?);
        }
        Ok((Tensor::stack(&percep, 0)?.sum_all()?, Tensor::stack(&style, 0)?.sum_all()?))
    }
}

/// Max pooling 2x2, stride 2, as the maximum over the two pixel pairs of each axis. candle
/// 0.11.1's `max_pool2d` backward multiplies the gradient by the window's share of maxima (1/4
/// for a single maximum) instead of dividing by their count, so it cannot train.
fn max_pool_2x2(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    Ok(x.reshape((n, c, h / 2, 2, w / 2, 2))?.max(5)?.max(3)?)
}
