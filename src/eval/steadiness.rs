//! The steadiness comparison the evaluation asks of video: the same clip restored by the
//! element's engine with and without temporal smoothing, and by the official per-frame recipe
//! (detect and align every frame afresh, fresh random noise), each scored with
//! [`TemporalEvaluator`].

use std::path::Path;
use std::sync::Arc;

use super::temporal::{TemporalEvaluator, TemporalScores};
use crate::blend::PasteOptions;
use crate::error::Result;
use crate::frame::Rgb;
use crate::pipeline::{FrameJob, PhotoOptions, PhotoPipeline, StreamRestorer, Tuning};
use crate::restore::{NoiseMode, Restorer, SharedRestorer};

/// How a clip was restored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Recipe {
    /// The element's engine (tracking, stored noise, temporal blending) at this smoothing.
    Element { temporal_smoothing: f32 },
    /// The official recipe run on every frame as if it were a photo, with fresh noise.
    PerFrame,
}

impl Recipe {
    pub fn name(&self) -> String {
        match self {
            Recipe::Element { temporal_smoothing } => format!("element, temporal-smoothing={temporal_smoothing}"),
            Recipe::PerFrame => "per-frame recipe (detect + align every frame, random noise)".into(),
        }
    }

    /// The clip restored this way, frame for frame.
    pub fn restore(&self, frames: &[Rgb], face_models: &Path, restorer: &Arc<Restorer>, fps: f64) -> Result<Vec<Rgb>> {
        match *self {
            Recipe::Element { temporal_smoothing } => {
                let tuning = Tuning { temporal_smoothing, ..Tuning::default() };
                let network = SharedRestorer::new(restorer.clone())?;
                let stream = StreamRestorer::start(face_models.to_path_buf(), Some(network), tuning)?;
                for (i, f) in frames.iter().enumerate() {
                    let time = i as f64 / fps;
                    stream.submit(FrameJob {
                        seq: i as u64,
                        time,
                        frame: Arc::new(f.clone()),
                        tuning,
                        restore: true,
                    })?;
                }
                frames
                    .iter()
                    .map(|f| {
                        let mut frame = f.clone();
                        stream.next_result()?.paste_into(&mut frame, PasteOptions::default());
                        Ok(frame)
                    })
                    .collect()
            }
            Recipe::PerFrame => {
                let mut pipeline = PhotoPipeline::new(face_models, PhotoOptions::default())?;
                frames
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        pipeline.set_noise(NoiseMode::Random { seed: i as u64 });
                        let mut frame = f.clone();
                        pipeline.restore(&mut frame, restorer)?;
                        Ok(frame)
                    })
                    .collect()
            }
        }
    }
}

/// The recipes the evaluation compares, steadiest expected first.
pub const RECIPES: [Recipe; 3] =
    [Recipe::Element { temporal_smoothing: 0.5 }, Recipe::Element { temporal_smoothing: 0.0 }, Recipe::PerFrame];

/// Each recipe's scores on `frames`, with the restored clips.
pub fn compare(
    frames: &[Rgb],
    face_models: &Path,
    restorer: &Arc<Restorer>,
    fps: f64,
) -> Result<Vec<(Recipe, TemporalScores, Vec<Rgb>)>> {
    RECIPES
        .iter()
        .map(|r| {
            let out = r.restore(frames, face_models, restorer, fps)?;
            let scores = TemporalEvaluator::evaluate(face_models, frames, &out)?;
            Ok((*r, scores, out))
        })
        .collect()
}
