//! One training iteration's losses, as gfpgan_model.py's `optimize_parameters` composes them:
//! the generator's terms (pixel, pyramid, adversarial, facial-component adversarial and style,
//! identity), the whole-face discriminator's (with lazy R1) and the component discriminators'.
//! Each term is returned on its own, weighted, so the trainer sums them and the gradient
//! fixtures check them one by one.

use candle_core::Tensor;

use super::discriminator::{FacialComponentDiscriminator, StyleGan2Discriminator};
use super::identity::IdentityLoss;
use super::losses::{component_style, discriminator_gan, generator_gan, image_pyramid, l1, pyramid_l1};
use super::perceptual::PerceptualLoss;
use super::roi::roi_align;
use crate::error::{Error, Result};
use crate::model::gfpgan::{Forward, GfpGanV1Clean};

/// Names of the facial components, in the order of [`Batch::boxes`] and the discriminators.
pub const COMPONENTS: [&str; 3] = ["left_eye", "right_eye", "mouth"];

/// Side of the eye and mouth crops the component discriminators see: the official 80 and 120
/// at 512, scaled with the face (the official code's integer ratio is 0 below 512).
pub fn crop_sizes(out_size: usize) -> [usize; 3] {
    let scaled = |s: f64| ((s * out_size as f64 / 512.0).round() as usize).max(1);
    [scaled(80.0), scaled(80.0), scaled(120.0)]
}

/// One batch: degraded inputs, ground truths (`(b, 3, s, s)` in [-1, 1]) and per component
/// one box per face, `[x1, y1, x2, y2]` in pixels.
pub struct Batch {
    pub lq: Tensor,
    pub gt: Tensor,
    pub boxes: [Vec<[f64; 4]>; 3],
}

/// Loss weights as one iteration applies them (the pyramid weight already switched off after
/// its last iteration; R1's factor already including `r1 / 2 * r1_every`, or 0 when this
/// iteration does not regularise).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub pixel: f64,
    pub pyramid: f64,
    pub gan: f64,
    pub r1: f64,
    pub component_gan: f64,
    pub component_style: f64,
    pub identity: f64,
    pub perceptual: f64,
    pub perceptual_style: f64,
}

impl Weights {
    /// Every term at weight 1 (the gradient fixtures' convention).
    pub fn ones() -> Self {
        Self {
            pixel: 1.0,
            pyramid: 1.0,
            gan: 1.0,
            r1: 1.0,
            component_gan: 1.0,
            component_style: 1.0,
            identity: 1.0,
            perceptual: 1.0,
            perceptual_style: 1.0,
        }
    }
}

/// The networks one iteration uses; the discriminators and the identity net are optional
/// (their loss weight 0 leaves them out).
pub struct Nets<'a> {
    pub g: &'a GfpGanV1Clean,
    pub d: Option<&'a StyleGan2Discriminator>,
    pub components: Option<[&'a FacialComponentDiscriminator; 3]>,
    pub identity: Option<&'a IdentityLoss>,
    pub perceptual: Option<&'a PerceptualLoss>,
}

/// Named loss terms, already weighted.
pub type Terms = Vec<(&'static str, Tensor)>;

/// The sum of the terms (for one backward pass).
pub fn total(terms: &Terms) -> Result<Tensor> {
    let mut sum = terms.first().map(|(_, t)| t.clone()).ok_or_else(|| Error::Input("no loss terms".into()))?;
    for (_, t) in &terms[1..] {
        sum = (sum + t)?;
    }
    Ok(sum)
}

/// The component crops of `images` (one box list per component).
pub fn crops(images: &Tensor, boxes: &[Vec<[f64; 4]>; 3], out_size: usize) -> Result<Vec<Tensor>> {
    let sizes = crop_sizes(out_size);
    (0..3).map(|c| roi_align(images, &boxes[c], sizes[c])).collect()
}

impl Nets<'_> {
    /// The generator's forward and its loss terms (terms with weight 0 are not computed).
    pub fn generator_terms(&self, batch: &Batch, noises: &[Tensor], w: &Weights) -> Result<(Forward, Terms)> {
        let fwd = self.g.forward_train(&batch.lq, noises)?;
        let out = &fwd.image;
        let mut terms = Terms::new();
        if w.pixel > 0.0 {
            terms.push(("l1", (l1(out, &batch.gt)? * w.pixel)?));
        }
        if w.pyramid > 0.0 {
            let pyramid = image_pyramid(&batch.gt, fwd.rgbs.len())?;
            terms.push(("pyramid", (pyramid_l1(&fwd.rgbs, &pyramid)? * w.pyramid)?));
        }
        if let (Some(p), true) = (self.perceptual, w.perceptual > 0.0 || w.perceptual_style > 0.0) {
            let (percep, style) = p.losses(out, &batch.gt)?;
            if w.perceptual > 0.0 {
                terms.push(("perceptual", (percep * w.perceptual)?));
            }
            if w.perceptual_style > 0.0 {
                terms.push(("percep_style", (style * w.perceptual_style)?));
            }
        }
        if let (Some(d), true) = (self.d, w.gan > 0.0) {
            terms.push(("g_gan", (generator_gan(&d.forward(out)?)? * w.gan)?));
        }
        if let (Some(comps), true) = (&self.components, w.component_gan > 0.0 || w.component_style > 0.0) {
            let size = self.g.config().out_size;
            let fakes = crops(out, &batch.boxes, size)?;
            let reals = crops(&batch.gt, &batch.boxes, size)?;
            let (mut gan, mut style) = (Vec::new(), Vec::new());
            for ((dc, fake), real) in comps.iter().zip(&fakes).zip(&reals) {
                let (pred, fake_feats) = dc.forward(fake, true)?;
                gan.push(generator_gan(&pred)?);
                if w.component_style > 0.0 {
                    let (_, real_feats) = dc.forward(real, true)?;
                    style.push(component_style(&fake_feats, &real_feats)?);
                }
            }
            if w.component_gan > 0.0 {
                terms.push(("comp_gan", (Tensor::stack(&gan, 0)?.sum_all()? * w.component_gan)?));
            }
            if w.component_style > 0.0 {
                terms.push(("comp_style", (Tensor::stack(&style, 0)?.sum_all()? * w.component_style)?));
            }
        }
        if let (Some(id), true) = (self.identity, w.identity > 0.0) {
            terms.push(("identity", (id.loss(out, &batch.gt)? * w.identity)?));
        }
        Ok((fwd, terms))
    }

    /// The whole-face discriminator's terms on the ground truth and the (detached) restored
    /// faces: `d_gan`, and `d_r1` when `w.r1 > 0`.
    pub fn discriminator_terms(&self, batch: &Batch, fake: &Tensor, w: &Weights) -> Result<Terms> {
        let Some(d) = self.d else { return Ok(Terms::new()) };
        let mut terms = vec![("d_gan", discriminator_gan(&d.forward(&batch.gt)?, &d.forward(&fake.detach())?)?)];
        if w.r1 > 0.0 {
            terms.push(("d_r1", (d.r1_penalty(&batch.gt)? * w.r1)?));
        }
        Ok(terms)
    }

    /// Each component discriminator's loss on the real and the (detached) restored crops.
    pub fn component_terms(&self, batch: &Batch, fake: &Tensor) -> Result<Vec<Tensor>> {
        let Some(comps) = &self.components else { return Ok(Vec::new()) };
        let size = self.g.config().out_size;
        let fakes = crops(&fake.detach(), &batch.boxes, size)?;
        let reals = crops(&batch.gt, &batch.boxes, size)?;
        comps
            .iter()
            .zip(fakes.iter().zip(&reals))
            .map(|(dc, (f, r))| Ok(discriminator_gan(&dc.forward(r, false)?.0, &dc.forward(f, false)?.0)?))
            .collect()
    }
}
