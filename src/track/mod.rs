//! Step (video): follow faces from frame to frame. [`FaceTracker`] runs the analysis step on a
//! stream: full detection every few frames, landmarks every frame in boxes carried over by
//! [`tracker::Tracker`] (association by overlap, stable ids, One-Euro smoothing of the five
//! alignment points, [`one_euro`]).

pub mod one_euro;
pub mod tracker;

use std::path::Path;

pub use one_euro::OneEuro;
pub use tracker::{TrackedFace, Tracker, TrackerOptions};

use crate::analyze::{AnalyzerOptions, DetectorOptions, FaceAnalyzer};
use crate::error::Result;
use crate::frame::Rgb;

/// Tracking with the networks: detection every few frames, landmarks every frame.
pub struct FaceTracker {
    analyzer: FaceAnalyzer,
    pub tracker: Tracker,
    frames: u64,
}

impl FaceTracker {
    pub fn new(
        face_models: &Path,
        detector: DetectorOptions,
        tracker: TrackerOptions,
        expressions: bool,
    ) -> Result<Self> {
        let opts = AnalyzerOptions { detector, expressions, ..Default::default() };
        Ok(Self { analyzer: FaceAnalyzer::new(face_models, opts)?, tracker: Tracker::new(tracker), frames: 0 })
    }

    pub fn analyzer_mut(&mut self) -> &mut FaceAnalyzer {
        &mut self.analyzer
    }

    /// The faces of the next frame, shown at `t` seconds.
    pub fn step(&mut self, frame: &Rgb, t: f64) -> Result<Vec<TrackedFace>> {
        if self.frames % u64::from(self.tracker.opts.detection_interval.max(1)) == 0 {
            let dets = self.analyzer.detect(frame);
            self.tracker.match_detections(&dets);
        }
        self.frames += 1;
        let faces = self.analyzer.locate(frame, &self.tracker.boxes())?;
        Ok(self.tracker.update(faces, t))
    }

    /// Starts over: the next frame is detected.
    pub fn reset(&mut self) {
        self.tracker.reset();
        self.frames = 0;
    }
}
