//! LPIPS (Zhang et al., "The unreasonable effectiveness of deep features as a perceptual
//! metric", 2018), version 0.1 with the AlexNet backbone, lower is better: the distance between
//! unit-normalised AlexNet activations at five depths, weighted per channel by learned linear
//! heads and averaged over the image.
//!
//! The linear heads ship with the `lpips` package (BSD-2-Clause, Richard Zhang et al.) and are
//! embedded here (6 KB). The backbone is torchvision's ImageNet AlexNet, which cannot be fetched
//! here: the user passes it (`features.{0,3,6,8,10}.{weight,bias}`, `.pth` or `.safetensors`),
//! and without it LPIPS is not computed. Parity with the `lpips` package is tested on a backbone
//! made from a formula (tests/eval/lpips_reference.py).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::frame::{Rgb, to_u8};

/// lpips 0.1.4's `weights/v0.1/alex.pth`, converted to safetensors.
const HEADS: &[u8] = include_bytes!("lpips_alex_lin.safetensors");

/// AlexNet's convolutions as torchvision numbers them: index, stride, padding, and whether a
/// 3x3 stride-2 max pool comes before it.
const CONVS: [(usize, usize, usize, bool); 5] =
    [(0, 4, 2, false), (3, 1, 2, true), (6, 1, 1, true), (8, 1, 1, false), (10, 1, 1, false)];

/// The input scaling LPIPS applies to images in [-1, 1] (ImageNet statistics, restated).
const SHIFT: [f32; 3] = [-0.030, -0.088, -0.188];
const SCALE: [f32; 3] = [0.458, 0.448, 0.450];
/// Added to the channel norm before dividing by it.
const EPS: f64 = 1e-10;

pub struct Lpips {
    convs: Vec<(Tensor, Tensor)>,
    heads: Vec<Tensor>,
}

impl Lpips {
    /// Loads the AlexNet backbone from `backbone` (torchvision's state dict, `.pth` or
    /// `.safetensors`) with the embedded heads.
    pub fn load(backbone: &Path) -> Result<Self> {
        let tensors = crate::weights::read_tensors(backbone)?;
        Self::new(&tensors).map_err(|e| Error::format(backbone, e))
    }

    /// From a backbone state dict (names as torchvision's `alexnet().features`, with or without
    /// the `features.` prefix).
    pub fn new(backbone: &HashMap<String, Tensor>) -> std::result::Result<Self, String> {
        let heads = candle_core::safetensors::load_buffer(HEADS, &Device::Cpu).map_err(|e| e.to_string())?;
        let mut convs = Vec::new();
        let mut channels = 3;
        for (i, _, _, _) in CONVS {
            let get = |what: &str| {
                [format!("features.{i}.{what}"), format!("{i}.{what}")]
                    .iter()
                    .find_map(|k| backbone.get(k))
                    .ok_or_else(|| format!("not an AlexNet state dict: no `features.{i}.{what}`"))
            };
            let (w, b) = (get("weight")?, get("bias")?);
            let dims = w.dims();
            if dims.len() != 4 || dims[1] != channels || b.dims() != [dims[0]] {
                return Err(format!("AlexNet layer {i}: weight {dims:?} and bias {:?} do not fit", b.dims()));
            }
            channels = dims[0];
            let f32 = |t: &Tensor| t.to_dtype(DType::F32).map_err(|e| e.to_string());
            convs.push((f32(w)?, f32(b)?.reshape((1, dims[0], 1, 1)).map_err(|e| e.to_string())?));
        }
        let heads = (0..5)
            .map(|k| {
                let h = heads.get(&format!("lin{k}.model.1.weight")).ok_or("embedded LPIPS heads incomplete")?;
                let c = convs[k].0.dim(0).map_err(|e| e.to_string())?;
                if h.dims() != [1, c, 1, 1] {
                    return Err(format!("AlexNet layer {} has {c} channels, LPIPS expects {:?}", CONVS[k].0, h.dims()));
                }
                h.to_dtype(DType::F32).map_err(|e| e.to_string())
            })
            .collect::<std::result::Result<Vec<_>, String>>()?;
        Ok(Self { convs, heads })
    }

    /// The distance between two images of the same size (at least 32x32: AlexNet's first
    /// layers reduce by 16).
    pub fn distance(&self, a: &Rgb, b: &Rgb) -> Result<f64> {
        if (a.w, a.h) != (b.w, b.h) {
            return Err(Error::Input(format!("images of different sizes: {}x{} and {}x{}", a.w, a.h, b.w, b.h)));
        }
        if a.w < 32 || a.h < 32 {
            return Err(Error::Input(format!("LPIPS needs images of at least 32x32, got {}x{}", a.w, a.h)));
        }
        Ok(self.layer_distances(a, b)?.iter().sum())
    }

    /// The five layers' contributions, whose sum is the distance.
    pub fn layer_distances(&self, a: &Rgb, b: &Rgb) -> Result<Vec<f64>> {
        let (fa, fb) = (self.features(&input(a)?)?, self.features(&input(b)?)?);
        fa.iter()
            .zip(&fb)
            .zip(&self.heads)
            .map(|((x, y), head)| {
                let d = (unit(x)? - unit(y)?)?.sqr()?;
                let weighted = d.conv2d(head, 0, 1, 1, 1)?;
                Ok(f64::from(weighted.mean_all()?.to_scalar::<f32>()?))
            })
            .collect()
    }

    /// The activations after each of the five ReLUs.
    fn features(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(5);
        let mut x = x.clone();
        for ((w, b), (_, stride, pad, pool)) in self.convs.iter().zip(CONVS) {
            if pool {
                x = x.max_pool2d_with_stride(3, 2)?;
            }
            x = x.conv2d(w, pad, stride, 1, 1)?.broadcast_add(b)?.relu()?;
            out.push(x.clone());
        }
        Ok(out)
    }
}

/// An 8-bit image as LPIPS takes it: `(1, 3, h, w)`, scaled to [-1, 1], then shifted and scaled.
fn input(img: &Rgb) -> Result<Tensor> {
    let (w, h) = (img.w, img.h);
    let mut data = vec![0f32; 3 * w * h];
    for (i, p) in img.data.chunks_exact(3).enumerate() {
        for c in 0..3 {
            let v = f32::from(to_u8(p[c])) / 127.5 - 1.0;
            data[c * w * h + i] = (v - SHIFT[c]) / SCALE[c];
        }
    }
    Ok(Tensor::from_vec(data, (1, 3, h, w), &Device::Cpu)?)
}

/// Each position's channel vector divided by its length (plus `EPS`).
fn unit(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(1)?.sqrt()?;
    Ok(x.broadcast_div(&(norm + EPS)?)?)
}
