//! Face detection with rustface (SeetaFace's funnel-structured cascade), its model embedded
//! from the crate.
//!
//! Facts of rustface 0.1.7 that shape this module: `Box<dyn Detector>` is not `Send` (each
//! thread builds its own detector from a clone of the shared model); `set_min_face_size` has no
//! effect and the smallest faces found are about 40 px, so smaller faces are reached by
//! upscaling the image; scores are unbounded sums (3.85 is its own default threshold); its
//! setters panic on out-of-range values, so options are checked here first.

use std::sync::OnceLock;

use image::{GrayImage, imageops::FilterType};
use rustface::{Detector, ImageData, Model};

use super::search::{Rect, Window, WindowKind};
use crate::error::{Error, Result};
use crate::frame::Rgb;

static MODEL_BYTES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/seeta_fd_frontal_v1.0.bin"));

/// Smallest face rustface finds at scale 1, in pixels (measured).
pub const NATIVE_MIN_FACE: f32 = 40.0;

fn model() -> Result<Model> {
    static MODEL: OnceLock<std::result::Result<Model, String>> = OnceLock::new();
    MODEL
        .get_or_init(|| rustface::read_model(std::io::Cursor::new(MODEL_BYTES)).map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| Error::Format { path: "seeta_fd_frontal_v1.0.bin".into(), msg: e })
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorOptions {
    /// Faces smaller than this (box side, frame pixels) are not reported; below about 40 px the
    /// image is upscaled for detection, which costs time.
    pub min_face_size: f32,
    /// rustface score threshold (unbounded; 3.85 is rustface's default).
    pub score_threshold: f64,
    /// Resize factor applied before detection (0.5 halves the work on large frames).
    pub scale: f32,
    /// Ratio between pyramid levels, in (0.1, 0.99).
    pub pyramid_scale_factor: f32,
    /// Sliding-window step in pixels.
    pub window_step: u32,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        Self { min_face_size: 40.0, score_threshold: 3.85, scale: 1.0, pyramid_scale_factor: 0.8, window_step: 4 }
    }
}

impl DetectorOptions {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Input(m));
        if !(self.min_face_size.is_finite() && self.min_face_size > 0.0) {
            return bad(format!("min face size must be positive, got {}", self.min_face_size));
        }
        if !(self.score_threshold.is_finite() && self.score_threshold > 0.0) {
            return bad(format!("score threshold must be positive, got {}", self.score_threshold));
        }
        if !(self.scale.is_finite() && self.scale > 0.0 && self.scale <= 8.0) {
            return bad(format!("detection scale must be in (0, 8], got {}", self.scale));
        }
        if !(0.1..0.99).contains(&self.pyramid_scale_factor) {
            return bad(format!("pyramid scale factor must be in (0.1, 0.99), got {}", self.pyramid_scale_factor));
        }
        if self.window_step == 0 {
            return bad("window step must be at least 1".into());
        }
        Ok(())
    }

    /// The resize actually applied: the user's scale, raised so that `min_face_size` becomes
    /// the detector's native minimum.
    pub fn effective_scale(&self) -> f32 {
        self.scale.max(NATIVE_MIN_FACE / self.min_face_size)
    }
}

/// A face box in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    pub score: f64,
}

impl Detection {
    pub fn center(&self) -> [f32; 2] {
        [self.x + self.w / 2.0, self.y + self.h / 2.0]
    }
}

/// One detector per thread (rustface detectors are not `Send`).
pub struct FaceDetector {
    detector: Box<dyn Detector>,
    opts: DetectorOptions,
}

impl FaceDetector {
    pub fn new(opts: DetectorOptions) -> Result<Self> {
        opts.validate()?;
        let mut detector = rustface::create_detector_with_model(model()?);
        detector.set_score_thresh(opts.score_threshold);
        detector.set_pyramid_scale_factor(opts.pyramid_scale_factor);
        detector.set_slide_window_step(opts.window_step, opts.window_step);
        Ok(Self { detector, opts })
    }

    pub fn options(&self) -> &DetectorOptions {
        &self.opts
    }

    /// Faces in `frame`, largest first.
    pub fn detect(&mut self, frame: &Rgb) -> Vec<Detection> {
        let whole = Window {
            rect: Rect::of_frame(frame),
            min_face: self.opts.min_face_size,
            max_face: None,
            kind: WindowKind::Scan,
        };
        let mut found = self.detect_window_at(frame, &whole, self.opts.effective_scale());
        sort_largest_first(&mut found);
        found
    }

    /// Faces in one window of `frame` with sizes in the window's range (frame pixels), the
    /// window resized so that its smallest face fills the detector's window (downscaled for
    /// large faces: [`DetectorOptions::scale`] is for whole photos).
    pub fn detect_window(&mut self, frame: &Rgb, window: &Window) -> Vec<Detection> {
        let min_face = window.min_face.max(self.opts.min_face_size);
        self.detect_window_at(frame, window, NATIVE_MIN_FACE / min_face)
    }

    fn detect_window_at(&mut self, frame: &Rgb, window: &Window, s: f32) -> Vec<Detection> {
        let Rect { x: x0, y: y0, w: rw, h: rh } = window.rect;
        let min_face = window.min_face.max(self.opts.min_face_size);
        let (w, h) = (((rw as f32) * s).round() as u32, ((rh as f32) * s).round() as u32);
        // rustface panics on empty images and finds nothing below its 20 px window anyway.
        if w < 20 || h < 20 || x0 + rw > frame.w || y0 + rh > frame.h {
            return Vec::new();
        }
        let gray = GrayImage::from_fn(rw as u32, rh as u32, |x, y| {
            let p = frame.pixel(x0 + x as usize, y0 + y as usize);
            image::Luma([crate::frame::to_u8(crate::frame::luma(p))])
        });
        // Enlarged bicubically: more of the smallest faces are found (BENCHMARKS.md, "Small
        // faces").
        let gray = match (w, h) == (gray.width(), gray.height()) {
            true => gray,
            false if w > gray.width() => image::imageops::resize(&gray, w, h, FilterType::CatmullRom),
            false => image::imageops::resize(&gray, w, h, FilterType::Triangle),
        };
        // A tracked face needs less evidence to be confirmed than a new one to be believed: at
        // 16-24 px rustface's scores on a face it found hover around its threshold, and a track
        // that misses three passes in a row ends while its face is still there.
        let threshold = match window.kind {
            WindowKind::Track => self.opts.score_threshold * TRACK_CONFIRM_FACTOR,
            _ => self.opts.score_threshold,
        };
        self.detector.set_score_thresh(threshold);
        // Stops the pyramid early: the smaller levels only hold larger faces.
        self.detector.set_max_face_size(window.max_face.map_or(0, |m| (m * s).ceil() as u32));
        let faces = self.detector.detect(&ImageData::new(gray.as_raw(), w, h));
        faces
            .iter()
            .map(|f| {
                let b = f.bbox();
                Detection {
                    x: x0 as f32 + b.x() as f32 / s,
                    y: y0 as f32 + b.y() as f32 / s,
                    w: b.width() as f32 / s,
                    h: b.height() as f32 / s,
                    score: f.score(),
                }
            })
            .filter(|d| d.w.min(d.h) >= min_face)
            .collect()
    }
}

fn sort_largest_first(found: &mut [Detection]) {
    found.sort_by(|a, b| (b.w * b.h).total_cmp(&(a.w * a.h)));
}

/// Overlap (intersection over union) of two boxes.
pub fn iou(a: &Detection, b: &Detection) -> f32 {
    let ix = ((a.x + a.w).min(b.x + b.w) - a.x.max(b.x)).max(0.0);
    let iy = ((a.y + a.h).min(b.y + b.h) - a.y.max(b.y)).max(0.0);
    let inter = ix * iy;
    inter / (a.w * a.h + b.w * b.h - inter).max(1e-6)
}

/// The share of the score threshold that confirms a tracked face in its own window (measured on
/// the small-face clips: recall of 4 faces 0.79 at 1, 0.86 at 0.5, 0.94 at 0.25, with no more
/// false faces).
const TRACK_CONFIRM_FACTOR: f64 = 0.25;

/// Above this overlap two detections from different windows are one face.
const SAME_FACE_IOU: f32 = 0.3;

thread_local! {
    /// One detector per worker thread (rustface's are not `Send`), rebuilt when the options change.
    static THREAD_DETECTOR: std::cell::RefCell<Option<FaceDetector>> = const { std::cell::RefCell::new(None) };
}

/// Faces in all `windows` of `frame`, the windows spread over the worker threads; a face found
/// in several windows is reported once (its best-scoring box). Largest first.
pub fn detect_windows(frame: &Rgb, windows: &[Window], opts: DetectorOptions) -> Result<Vec<Detection>> {
    use rayon::prelude::*;
    opts.validate()?;
    // The costliest first, so that the threads finish together.
    let mut order: Vec<&Window> = windows.iter().collect();
    order.sort_by(|a, b| b.cost().total_cmp(&a.cost()));
    let found: Vec<Detection> = order
        .par_iter()
        .map(|w| {
            THREAD_DETECTOR.with(|cell| -> Result<Vec<Detection>> {
                let mut cell = cell.borrow_mut();
                if cell.as_ref().is_none_or(|d| *d.options() != opts) {
                    *cell = Some(FaceDetector::new(opts)?);
                }
                Ok(cell.as_mut().map(|d| d.detect_window(frame, w)).unwrap_or_default())
            })
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let mut by_score = found;
    by_score.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in by_score {
        if kept.iter().all(|k| iou(k, &d) <= SAME_FACE_IOU) {
            kept.push(d);
        }
    }
    sort_largest_first(&mut kept);
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_options_are_errors_not_panics() {
        for opts in [
            DetectorOptions { min_face_size: 0.0, ..Default::default() },
            DetectorOptions { score_threshold: -1.0, ..Default::default() },
            DetectorOptions { scale: f32::NAN, ..Default::default() },
            DetectorOptions { pyramid_scale_factor: 1.5, ..Default::default() },
            DetectorOptions { window_step: 0, ..Default::default() },
        ] {
            assert!(FaceDetector::new(opts).is_err(), "{opts:?}");
        }
    }

    #[test]
    fn tiny_and_blank_frames_have_no_faces() {
        let mut det = FaceDetector::new(DetectorOptions::default()).unwrap();
        assert!(det.detect(&Rgb::new(10, 10)).is_empty());
        assert!(det.detect(&Rgb::new(200, 150)).is_empty());
    }

    #[test]
    fn small_minimum_face_sizes_upscale() {
        let o = DetectorOptions { min_face_size: 20.0, ..Default::default() };
        assert_eq!(o.effective_scale(), 2.0);
        assert_eq!(DetectorOptions::default().effective_scale(), 1.0);
    }
}
