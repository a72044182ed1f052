//! Evaluation: how well a checkpoint restores faces, measured as the paper measures it, beside
//! two baselines that restore nothing (the degraded face upscaled bicubically, and the degraded
//! face as the network sees it). Used by `gfpgan eval` and by training's validation.
//!
//! Per face: PSNR and SSIM against the ground truth ([`quality`], BasicSR's definitions), NIQE
//! without reference ([`niqe`]), identity and landmark distances with face-api.js's nets
//! ([`identity`]), and LPIPS when the user gives its AlexNet backbone ([`lpips`]). Every metric
//! sees the 8-bit images that would be saved.
//!
//! Beside restoration, the analysis step is measured too: how many faces tracking finds in clips
//! whose faces are known ([`recall`]), and how far small faces' landmarks drift ([`small_faces`]).

pub mod dataset;
pub mod identity;
pub mod lpips;
pub mod niqe;
pub mod quality;
pub mod recall;
pub mod report;
pub mod small_faces;
pub mod steadiness;
pub mod temporal;

use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::frame::Rgb;
use crate::restore::{FaceNoise, NoiseMode, Restorer, restore_crops};
pub use dataset::{Degraded, Pair};
pub use identity::{FaceMetrics, FaceSignature};
pub use lpips::Lpips;
pub use niqe::NiqeModel;
pub use temporal::{TemporalEvaluator, TemporalScores};

/// The methods of a report, in its order: the network, then the two baselines.
pub const METHODS: [&str; 3] = ["gfpgan", "bicubic", "input"];

/// The scores of one face. `psnr` is infinite for a perfect output; `niqe` is NaN where it is
/// undefined and `lpips` where it was not computed (both `null` in JSON, as is an infinite PSNR).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scores {
    pub psnr: f64,
    pub ssim: f64,
    pub niqe: f64,
    pub deg_faceapi: f64,
    pub lmd_faceapi: f64,
    pub lpips: f64,
}

/// Metric names and whether higher is better, in the order of [`Scores::values`].
pub const METRICS: [(&str, bool); 6] =
    [("psnr", true), ("ssim", true), ("niqe", false), ("deg_faceapi", false), ("lmd_faceapi", false), ("lpips", false)];

impl Scores {
    pub fn values(&self) -> [f64; 6] {
        [self.psnr, self.ssim, self.niqe, self.deg_faceapi, self.lmd_faceapi, self.lpips]
    }

    fn from_values(v: [f64; 6]) -> Self {
        Scores { psnr: v[0], ssim: v[1], niqe: v[2], deg_faceapi: v[3], lmd_faceapi: v[4], lpips: v[5] }
    }

    /// The mean of each metric over faces, NaN values left out (NaN when all are).
    pub fn mean(all: &[Scores]) -> Scores {
        Scores::from_values(std::array::from_fn(|k| {
            let (s, n) =
                all.iter().map(|s| s.values()[k]).filter(|v| !v.is_nan()).fold((0.0, 0), |(s, n), v| (s + v, n + 1));
            s / n as f64
        }))
    }
}

/// The models the metrics need, loaded once.
pub struct Evaluator {
    niqe: NiqeModel,
    faces: FaceMetrics,
    lpips: Option<Lpips>,
}

/// The scores of one face for every method, and its NIQE of the ground truth.
#[derive(Debug, Clone, Serialize)]
pub struct FaceScores {
    pub name: String,
    /// In [`METHODS`] order.
    pub methods: [Scores; 3],
    pub gt_niqe: f64,
}

impl Evaluator {
    /// `niqe_params`: BasicSR's `niqe_pris_params.npz`; `face_models`: face-api's model folder.
    pub fn new(niqe_params: &Path, face_models: &Path) -> Result<Self> {
        Ok(Self { niqe: NiqeModel::load(niqe_params)?, faces: FaceMetrics::load(face_models)?, lpips: None })
    }

    /// Also computes LPIPS.
    pub fn with_lpips(self, lpips: Lpips) -> Self {
        Self { lpips: Some(lpips), ..self }
    }

    pub fn niqe(&self) -> &NiqeModel {
        &self.niqe
    }

    /// Scores several methods against the same truths: `methods[m][i]` is method `m`'s output
    /// for `truths[i]` (same size). Each truth is read by the face-api nets once, and all the
    /// images go through them in one batch.
    pub fn score(&self, truths: &[&Rgb], methods: &[Vec<&Rgb>]) -> Result<Vec<Vec<Scores>>> {
        let truths: Vec<Rgb> = truths.iter().map(|t| quantized(t)).collect();
        let outputs: Vec<Rgb> = methods.iter().flatten().map(|o| quantized(o)).collect();
        let sigs = self.faces.aligned_signatures(&truths.iter().chain(&outputs).collect::<Vec<_>>())?;
        let (gt_sigs, out_sigs) = sigs.split_at(truths.len());
        outputs
            .chunks(truths.len().max(1))
            .zip(out_sigs.chunks(truths.len().max(1)))
            .map(|(outs, sigs)| {
                outs.iter()
                    .zip(sigs)
                    .zip(truths.iter().zip(gt_sigs))
                    .map(|((o, so), (t, st))| {
                        Ok(Scores {
                            psnr: quality::psnr(o, t)?,
                            ssim: quality::ssim(o, t)?,
                            niqe: self.niqe.score_or_nan(o)?,
                            deg_faceapi: identity::identity_angle(so, st),
                            lmd_faceapi: identity::landmark_distance(so, st),
                            lpips: match &self.lpips {
                                Some(l) => l.distance(o, t)?,
                                None => f64::NAN,
                            },
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// Restores the pairs' inputs (`batch_size` faces a pass) and scores the network and the
    /// two baselines; returns the restored faces too (8-bit values).
    pub fn evaluate_batch(
        &self,
        restorer: &Restorer,
        pairs: &[Pair],
        batch_size: usize,
        noise: NoiseMode,
    ) -> Result<(Vec<FaceScores>, Vec<Rgb>)> {
        let inputs: Vec<Rgb> = pairs.iter().map(|p| p.input.clone()).collect();
        let restored: Vec<Rgb> =
            restore_crops(restorer, &inputs, batch_size, FaceNoise::Shared(noise))?.iter().map(quantized).collect();
        let truths: Vec<&Rgb> = pairs.iter().map(|p| &p.gt).collect();
        let methods = [
            restored.iter().collect(),
            pairs.iter().map(|p| &p.bicubic).collect(),
            pairs.iter().map(|p| &p.input).collect(),
        ];
        let scores = self.score(&truths, &methods)?;
        let faces = pairs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Ok(FaceScores {
                    name: p.name.clone(),
                    methods: [scores[0][i], scores[1][i], scores[2][i]],
                    gt_niqe: self.niqe.score_or_nan(&quantized(&p.gt))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((faces, restored))
    }
}

/// The image as an 8-bit file would hold it.
pub fn quantized(img: &Rgb) -> Rgb {
    Rgb::from_rgb8(&img.to_rgb8())
}
