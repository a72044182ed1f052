//! Step (video): follow faces from frame to frame. [`FaceTracker`] runs the analysis step on a
//! stream: a detection pass every few frames, which looks where faces can be
//! ([`crate::analyze::search`]: around the tracks, where the picture changed, a share of a
//! rolling scan), landmarks every frame in boxes carried over by [`tracker::Tracker`]
//! (association by overlap, stable ids, One-Euro smoothing of the five alignment points,
//! [`one_euro`]).

pub mod one_euro;
pub mod tracker;

use std::path::Path;

pub use one_euro::OneEuro;
pub use tracker::{TrackedFace, Tracker, TrackerOptions};

use crate::analyze::{AnalyzerOptions, DetectorOptions, FaceAnalyzer, FaceSearch, SearchOptions};
use crate::error::Result;
use crate::frame::Rgb;

/// Tracking with the networks: detection every few frames, landmarks every frame.
pub struct FaceTracker {
    analyzer: FaceAnalyzer,
    pub tracker: Tracker,
    /// Where detection passes look (may change from frame to frame).
    pub search_opts: SearchOptions,
    search: FaceSearch,
    frames: u64,
    pub stats: TrackingStats,
}

/// What tracking has done so far, in total (for benchmarks and tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct TrackingStats {
    /// Detection passes and the windows they searched.
    pub passes: u64,
    pub windows: u64,
    /// Pixels the detector looked at (at its scale).
    pub searched: f64,
    /// Seconds spent searching (planning and detecting) and locating landmarks.
    pub search_secs: f64,
    pub locate_secs: f64,
}

impl FaceTracker {
    pub fn new(
        face_models: &Path,
        detector: DetectorOptions,
        tracker: TrackerOptions,
        expressions: bool,
    ) -> Result<Self> {
        let opts = AnalyzerOptions { detector, expressions, ..Default::default() };
        Ok(Self {
            analyzer: FaceAnalyzer::new(face_models, opts)?,
            tracker: Tracker::new(tracker),
            search_opts: SearchOptions::DEFAULT,
            search: FaceSearch::default(),
            frames: 0,
            stats: TrackingStats::default(),
        })
    }

    pub fn analyzer_mut(&mut self) -> &mut FaceAnalyzer {
        &mut self.analyzer
    }

    /// The faces of the next frame, shown at `t` seconds.
    pub fn step(&mut self, frame: &Rgb, t: f64) -> Result<Vec<TrackedFace>> {
        let start = std::time::Instant::now();
        if self.frames % u64::from(self.tracker.opts.detection_interval.max(1)) == 0 {
            let min_face = self.analyzer.detector_options().min_face_size;
            let windows = self.search.plan(frame, &self.tracker.boxes(), min_face, &self.search_opts);
            let mut dets = self.analyzer.detect_windows(frame, &windows)?;
            if let Some(region) = self.search_opts.region {
                dets.retain(|d| region.contains(d.center()));
            }
            self.tracker.match_detections(&dets);
            self.stats.passes += 1;
            self.stats.windows += windows.len() as u64;
            self.stats.searched += windows.iter().map(|w| w.cost()).sum::<f64>();
        }
        self.frames += 1;
        let searched = std::time::Instant::now();
        self.stats.search_secs += (searched - start).as_secs_f64();
        let faces = self.analyzer.locate(frame, &self.tracker.boxes())?;
        self.stats.locate_secs += searched.elapsed().as_secs_f64();
        Ok(self.tracker.update(faces, t))
    }

    /// Starts over: the next frame is detected.
    pub fn reset(&mut self) {
        self.tracker.reset();
        self.search.reset();
        self.frames = 0;
    }
}
