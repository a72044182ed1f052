//! The model the server offers, `gfpgan` by default: aligned faces in, restored faces out.
//!
//! - `input`: `UINT8 [N, S, S, 3]` (RGB pixels, what a camera pipeline has) or `FP32 [N, 3, S, S]`
//!   in [-1, 1] (the network's own input, what GFP-GAN's PyTorch code takes); the metadata
//!   lists the first, both are accepted;
//! - `noise_seed` (optional): `UINT64 [N]`, a seed per face for the decoder's noise (a video
//!   track keeps its noise across frames); without it every face gets the checkpoint's stored
//!   noise maps, as the official code with `randomize_noise=False`;
//! - `output`: the restored faces in the input's datatype and layout (FP32 clamped to [-1, 1]).

use super::batcher::Batcher;
use super::error::ServeError;
use super::tensor::{Datatype, Elements, Tensor};
use crate::frame::{PackedLayout, Rgb};
use crate::restore::{faces_to_nchw, nchw_to_faces};

pub const INPUT: &str = "input";
pub const NOISE_SEED: &str = "noise_seed";
pub const OUTPUT: &str = "output";
pub const VERSION: &str = "1";

/// A tensor as metadata describes it (-1: any size).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TensorSpec {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelMetadata {
    pub name: String,
    pub versions: Vec<String>,
    pub platform: String,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
}

pub struct FaceModel {
    pub name: String,
    pub batcher: Batcher,
}

fn spec(name: &str, datatype: Datatype, shape: Vec<i64>) -> TensorSpec {
    TensorSpec { name: name.into(), datatype: datatype.name().into(), shape }
}

impl FaceModel {
    pub fn size(&self) -> usize {
        self.batcher.face_size()
    }

    /// Whether `name` and `version` (empty: any) designate this model.
    pub fn answers_to(&self, name: &str, version: &str) -> bool {
        name == self.name && (version.is_empty() || version == VERSION)
    }

    /// The model named so, or a 404 / NOT_FOUND naming what exists.
    pub fn check_name(&self, name: &str, version: &str) -> Result<(), ServeError> {
        if self.answers_to(name, version) {
            return Ok(());
        }
        let what = if version.is_empty() { format!("{name:?}") } else { format!("{name:?} version {version:?}") };
        Err(ServeError::not_found(format!("unknown model {what}; this server has {:?} version {VERSION}", self.name)))
    }

    pub fn metadata(&self) -> ModelMetadata {
        let s = self.size() as i64;
        ModelMetadata {
            name: self.name.clone(),
            versions: vec![VERSION.into()],
            platform: "gfpgan_candle".into(),
            inputs: vec![spec(INPUT, Datatype::Uint8, vec![-1, s, s, 3]), spec(NOISE_SEED, Datatype::Uint64, vec![-1])],
            outputs: vec![spec(OUTPUT, Datatype::Uint8, vec![-1, s, s, 3])],
        }
    }

    /// Checks the inputs, restores the faces through the batcher and returns `output`.
    pub async fn infer(&self, inputs: Vec<Tensor>) -> Result<Tensor, ServeError> {
        let mut faces = None;
        let mut seeds = None;
        for t in inputs {
            match t.name.as_str() {
                INPUT if faces.is_none() => faces = Some(t),
                NOISE_SEED if seeds.is_none() => seeds = Some(t),
                INPUT | NOISE_SEED => return Err(ServeError::bad(format!("input {:?} given twice", t.name))),
                other => {
                    return Err(ServeError::bad(format!(
                        "model {:?} has no input {other:?} (it takes {INPUT:?} and optionally {NOISE_SEED:?})",
                        self.name
                    )));
                }
            }
        }
        let faces = faces.ok_or_else(|| ServeError::bad(format!("input {INPUT:?} is missing")))?;
        let (crops, layout) = self.crops(&faces)?;
        let seeds = match seeds {
            None => vec![None; crops.len()],
            Some(Tensor { data: Elements::U64(v), shape, .. }) if shape == [crops.len()] => {
                v.into_iter().map(Some).collect()
            }
            Some(t) => {
                return Err(ServeError::bad(format!(
                    "input {NOISE_SEED:?} must be UINT64 [{}] (one seed per face), got {} {:?}",
                    crops.len(),
                    t.datatype().name(),
                    t.shape
                )));
            }
        };
        let restored = self.batcher.restore(crops, seeds).await?;
        Ok(output(&restored, layout, self.size()))
    }

    /// The faces of `input` as crops on the 0..255 scale, and the datatype they came in.
    fn crops(&self, t: &Tensor) -> Result<(Vec<Rgb>, Datatype), ServeError> {
        let s = self.size();
        let wrong = || {
            ServeError::bad(format!(
                "input {INPUT:?} must be UINT8 [N, {s}, {s}, 3] or FP32 [N, 3, {s}, {s}] with N >= 1, got {} {:?}",
                t.datatype().name(),
                t.shape
            ))
        };
        let n = t.shape.first().copied().filter(|&n| n > 0).ok_or_else(wrong)?;
        match &t.data {
            Elements::U8(v) if t.shape == [n, s, s, 3] => {
                let crops = v.chunks_exact(s * s * 3).map(|face| Rgb::from_packed(face, s, s, &PackedLayout::rgb(s)));
                Ok((crops.collect::<crate::Result<_>>()?, Datatype::Uint8))
            }
            Elements::F32(v) if t.shape == [n, 3, s, s] => {
                if v.iter().any(|x| !x.is_finite()) {
                    return Err(ServeError::bad(format!("input {INPUT:?} holds NaN or infinite values")));
                }
                Ok((nchw_to_faces(v, (s, s), false), Datatype::Fp32))
            }
            _ => Err(wrong()),
        }
    }
}

/// Restored faces as `output` in the datatype and layout the faces came in.
fn output(faces: &[Rgb], layout: Datatype, s: usize) -> Tensor {
    let n = faces.len();
    let (shape, data) = match layout {
        Datatype::Fp32 => (vec![n, 3, s, s], Elements::F32(faces_to_nchw(faces, s).expect("restored faces are s x s"))),
        _ => (vec![n, s, s, 3], Elements::U8(faces.iter().flat_map(|f| f.to_rgb8().into_raw()).collect())),
    };
    Tensor { name: OUTPUT.into(), shape, data }
}
