//! gfpgan 1.3.8's `FacialComponentDiscriminator`: a small VGG-style patch discriminator for the
//! eye and mouth crops, whose two intermediate feature maps also feed the Gram-matrix style loss.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::layers::ConvLayer;
use crate::error::Result;

const RESAMPLE_KERNEL: [f64; 4] = [1.0, 3.0, 3.0, 1.0];

pub struct FacialComponentDiscriminator {
    conv1: ConvLayer,
    conv2: ConvLayer,
    conv3: ConvLayer,
    conv4: ConvLayer,
    conv5: ConvLayer,
    final_conv: ConvLayer,
}

impl FacialComponentDiscriminator {
    /// The fixed official architecture; weights under `vb` with the official names.
    pub fn new(vb: VarBuilder) -> Result<Self> {
        let k = &RESAMPLE_KERNEL;
        let layer = |name: &str, cin, cout, down, act| ConvLayer::new(vb.pp(name), cin, cout, 3, down, k, true, act);
        Ok(Self {
            conv1: layer("conv1", 3, 64, false, true)?,
            conv2: layer("conv2", 64, 128, true, true)?,
            conv3: layer("conv3", 128, 128, false, true)?,
            conv4: layer("conv4", 128, 256, true, true)?,
            conv5: layer("conv5", 256, 256, false, true)?,
            final_conv: layer("final_conv", 256, 1, false, false)?,
        })
    }

    /// `x`: `(b, 3, s, s)` crops. Returns the patch logits `(b, 1, s/4, s/4)` (each downsampling
    /// floors: `s // 2` twice) and, when `return_feats`, the feature maps after `conv3`
    /// `(b, 128, s/2, s/2)` and after `conv5` `(b, 256, s/4, s/4)`; otherwise an empty list.
    pub fn forward(&self, x: &Tensor, return_feats: bool) -> Result<(Tensor, Vec<Tensor>)> {
        let mut feats = Vec::new();
        let feat = self.conv3.forward(&self.conv2.forward(&self.conv1.forward(x)?)?)?;
        if return_feats {
            feats.push(feat.clone());
        }
        let feat = self.conv5.forward(&self.conv4.forward(&feat)?)?;
        if return_feats {
            feats.push(feat.clone());
        }
        Ok((self.final_conv.forward(&feat)?, feats))
    }
}
