//! The loss terms of GFP-GAN's training (gfpgan_model.py and BasicSR's losses), each a function
//! of tensors, composed only from operations candle can differentiate.

use candle_core::{Result, Tensor};

use crate::model::ops::downsample2x;

/// Mean absolute difference (`L1Loss`, reduction mean).
pub fn l1(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    (a - b)?.abs()?.mean_all()
}

/// `log(1 + exp(x))` written so that it neither overflows nor loses precision for large |x|
/// (candle has no softplus): `max(x, 0) + log(1 + exp(-|x|))`.
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?
}

/// The generator's adversarial loss: the discriminator should call the fakes real. For both
/// `wgan_softplus` and `vanilla` (logits against label 1) it is `mean softplus(-pred)`.
pub fn generator_gan(fake_pred: &Tensor) -> Result<Tensor> {
    softplus(&fake_pred.neg()?)?.mean_all()
}

/// The discriminator's loss: `mean softplus(-real) + mean softplus(fake)` (`wgan_softplus`;
/// also `vanilla` real with `wgan_softplus` fake, as the official component losses mix them).
pub fn discriminator_gan(real_pred: &Tensor, fake_pred: &Tensor) -> Result<Tensor> {
    softplus(&real_pred.neg()?)?.mean_all()? + softplus(fake_pred)?.mean_all()?
}

/// The ground truth at each resolution of the generator's intermediate RGB images, lowest first
/// (`construct_img_pyramid`: repeated bilinear halving, which is a 2x2 mean).
pub fn image_pyramid(gt: &Tensor, levels: usize) -> Result<Vec<Tensor>> {
    let mut pyramid = vec![gt.clone()];
    for _ in 1..levels {
        let smaller = downsample2x(&pyramid[0])?;
        pyramid.insert(0, smaller);
    }
    Ok(pyramid)
}

/// Pyramid restoration loss: L1 of every intermediate image against the ground truth at its size.
pub fn pyramid_l1(rgbs: &[Tensor], pyramid: &[Tensor]) -> Result<Tensor> {
    let mut total: Option<Tensor> = None;
    for (rgb, gt) in rgbs.iter().zip(pyramid) {
        let term = l1(rgb, gt)?;
        total = Some(match total {
            Some(t) => (t + term)?,
            None => term,
        });
    }
    total.ok_or_else(|| candle_core::Error::Msg("pyramid loss of no images".into()))
}

/// Gram matrix of `(n, c, h, w)` features, normalised by `c * h * w` (`_gram_mat`).
pub fn gram(features: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = features.dims4()?;
    let f = features.reshape((n, c, h * w))?;
    f.matmul(&f.transpose(1, 2)?.contiguous()?)? / (c * h * w) as f64
}

/// The component style loss (`_comp_style`): L1 between the Gram matrices of the component
/// discriminator's two feature maps on the fake and the (detached) real crop, the first
/// weighted 0.5.
pub fn component_style(fake_feats: &[Tensor], real_feats: &[Tensor]) -> Result<Tensor> {
    let term = |i: usize| l1(&gram(&fake_feats[i])?, &gram(&real_feats[i].detach())?);
    (term(0)? * 0.5)? + term(1)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn softplus_is_stable_at_both_ends() -> Result<()> {
        let x = Tensor::new(&[-1000.0f64, -1.0, 0.0, 1.0, 1000.0], &Device::Cpu)?;
        let got = softplus(&x)?.to_vec1::<f64>()?;
        let want = [0.0, (1.0 + (-1f64).exp()).ln(), 2f64.ln(), (1.0 + 1f64.exp()).ln(), 1000.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
        Ok(())
    }

    #[test]
    fn gram_of_one_channel_is_its_mean_square() -> Result<()> {
        let f = Tensor::new(&[1.0f64, 2.0, 3.0, 4.0], &Device::Cpu)?.reshape((1, 1, 2, 2))?;
        assert_eq!(gram(&f)?.flatten_all()?.to_vec1::<f64>()?, [30.0 / 4.0]);
        Ok(())
    }
}
