//! Step: find the faces of a frame and what they look like. Detection boxes ([`detect`]), the
//! 68 landmarks in each box and the five alignment points ([`landmarks`]), and optionally the
//! expression, computed in one place for photos, video (through the tracker) and any other
//! front end.

pub mod detect;
pub mod landmarks;
pub mod motion;
pub mod search;

use std::path::{Path, PathBuf};

pub use detect::{Detection, DetectorOptions, FaceDetector};
pub use landmarks::{LandmarkBox, five_points};
pub use search::{FaceSearch, Rect, SearchOptions, Window};

use crate::error::Result;
use crate::faceapi::{EXPRESSION_LABELS, ExpressionNet, LANDMARK_INPUT_SIZE, LandmarkNet};
use crate::frame::Rgb;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnalyzerOptions {
    pub detector: DetectorOptions,
    /// Side of the landmark crop relative to the detection box's larger side.
    pub landmark_box_scale: f32,
    /// Keep only the face nearest the image centre.
    pub only_center_face: bool,
    /// Run the expression net on every face.
    pub expressions: bool,
    /// Also locate every face in its mirror image and average the two sets of points: the
    /// net's left-right errors cancel (on 20 px faces the alignment points' drift from their
    /// full-size place falls from 5.2% to 4.7% of the eye distance), for twice the landmark time.
    pub mirror_landmarks: bool,
}

impl Default for AnalyzerOptions {
    fn default() -> Self {
        Self {
            detector: DetectorOptions::default(),
            landmark_box_scale: 1.2,
            only_center_face: false,
            expressions: false,
            mirror_landmarks: false,
        }
    }
}

/// What analysis found about one face.
#[derive(Debug, Clone)]
pub struct Face {
    pub detection: Detection,
    /// The 68 face-api landmarks in frame coordinates.
    pub landmarks: [[f32; 2]; 68],
    /// Eye centres, nose tip, mouth corners (the template's order), frame coordinates.
    pub five: [[f32; 2]; 5],
    /// Expression probabilities in the order of [`EXPRESSION_LABELS`], when asked for.
    pub expression: Option<[f32; 7]>,
}

impl Face {
    /// Its box, detection score, five points and expression (when analysed), as the CLI's
    /// `analyze` and the server's `/v1/analyze` write them.
    pub fn to_json(&self) -> serde_json::Value {
        let d = self.detection;
        let expression = self.expression.map(|p| {
            let probs: serde_json::Map<String, serde_json::Value> =
                EXPRESSION_LABELS.iter().zip(p).map(|(l, v)| (l.to_string(), serde_json::json!(v))).collect();
            serde_json::json!({ "label": self.top_expression().map(|t| t.0), "probabilities": probs })
        });
        serde_json::json!({
            "box": [d.x, d.y, d.w, d.h],
            "score": d.score,
            "landmarks5": self.five,
            "expression": expression,
        })
    }

    /// The most probable expression and its probability.
    pub fn top_expression(&self) -> Option<(&'static str, f32)> {
        let p = self.expression?;
        let (i, v) = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
        Some((EXPRESSION_LABELS[i], *v))
    }
}

/// The detector and the face-api nets, loaded once.
pub struct FaceAnalyzer {
    detector: FaceDetector,
    landmarks: LandmarkNet,
    expressions: Option<ExpressionNet>,
    face_models: PathBuf,
    opts: AnalyzerOptions,
}

impl FaceAnalyzer {
    /// `face_models`: the face-api model folder (weights/face-api/model).
    pub fn new(face_models: &Path, opts: AnalyzerOptions) -> Result<Self> {
        let expressions = if opts.expressions { Some(ExpressionNet::load(face_models)?) } else { None };
        Ok(Self {
            detector: FaceDetector::new(opts.detector)?,
            landmarks: LandmarkNet::load(face_models)?,
            expressions,
            face_models: face_models.to_path_buf(),
            opts,
        })
    }

    /// Detects the faces of a frame and locates their landmarks.
    pub fn analyze(&mut self, frame: &Rgb) -> Result<Vec<Face>> {
        let dets = self.detect(frame);
        self.locate(frame, &dets)
    }

    /// Face boxes of a frame, largest first (only the most central one with `only_center_face`).
    pub fn detect(&mut self, frame: &Rgb) -> Vec<Detection> {
        let mut dets = self.detector.detect(frame);
        if self.opts.only_center_face && dets.len() > 1 {
            let c = [frame.w as f32 / 2.0, frame.h as f32 / 2.0];
            let dist = |d: &Detection| (d.center()[0] - c[0]).hypot(d.center()[1] - c[1]);
            dets.sort_by(|a, b| dist(a).total_cmp(&dist(b)));
            dets.truncate(1);
        }
        dets
    }

    /// Face boxes in the windows of a search pass (on the worker threads), largest first.
    pub fn detect_windows(&self, frame: &Rgb, windows: &[Window]) -> Result<Vec<Detection>> {
        detect::detect_windows(frame, windows, *self.detector.options())
    }

    /// The detector's options (the smallest face size among them).
    pub fn detector_options(&self) -> &DetectorOptions {
        self.detector.options()
    }

    /// Landmarks (and expressions, when enabled) of the faces in the given boxes, one batch.
    pub fn locate(&self, frame: &Rgb, dets: &[Detection]) -> Result<Vec<Face>> {
        if dets.is_empty() {
            return Ok(Vec::new());
        }
        let boxes: Vec<LandmarkBox> =
            dets.iter().map(|d| LandmarkBox::around(d, self.opts.landmark_box_scale)).collect();
        let batch = landmarks::crops(frame, &boxes)?;
        let mut marks = self.landmarks.landmarks(&batch)?;
        if self.opts.mirror_landmarks {
            let mirrored = self.landmarks.landmarks(&landmarks::mirrored(&batch)?)?;
            for (m, mirror) in marks.iter_mut().zip(&mirrored) {
                *m = landmarks::average_with_mirrored(m, mirror);
            }
        }
        let expressions: Vec<Option<[f32; 7]>> = match &self.expressions {
            Some(net) => {
                net.forward(&batch)?.probabilities.to_vec2::<f32>()?.into_iter().map(|p| p.try_into().ok()).collect()
            }
            None => vec![None; marks.len()],
        };
        Ok(dets
            .iter()
            .zip(marks)
            .zip(boxes)
            .zip(expressions)
            .map(|(((&detection, m), b), expression)| {
                let landmarks = m.in_frame(b.x0, b.y0, b.side);
                Face { detection, landmarks, five: five_points(&landmarks), expression }
            })
            .collect())
    }

    /// The 68 landmarks of faces aligned to the FFHQ template (any size, the template scaled
    /// to it), found in the template's fixed landmark box: no detection needed. Aligned-face
    /// pixels.
    pub fn aligned_landmarks(&self, faces: &[&Rgb]) -> Result<Vec<[[f32; 2]; 68]>> {
        if faces.is_empty() {
            return Ok(Vec::new());
        }
        let boxes: Vec<LandmarkBox> =
            faces.iter().map(|f| landmarks::ALIGNED_LANDMARK_BOX_512.scaled_to(f.w)).collect();
        let batch = landmarks::square_crops(faces.iter().copied().zip(&boxes), faces.len(), LANDMARK_INPUT_SIZE)?;
        let marks = self.landmarks.landmarks(&batch)?;
        Ok(marks.iter().zip(&boxes).map(|(m, b)| m.in_frame(b.x0, b.y0, b.side)).collect())
    }

    /// Mirrored landmarks on or off (`AnalyzerOptions::mirror_landmarks`).
    pub fn set_mirror_landmarks(&mut self, on: bool) {
        self.opts.mirror_landmarks = on;
    }

    /// Turns the expression net on (loading it the first time) or off.
    pub fn set_expressions(&mut self, on: bool) -> Result<()> {
        if on && self.expressions.is_none() {
            self.expressions = Some(ExpressionNet::load(&self.face_models)?);
        } else if !on {
            self.expressions = None;
        }
        self.opts.expressions = on;
        Ok(())
    }

    /// New detector options (a new detector when they differ).
    pub fn set_detector_options(&mut self, opts: DetectorOptions) -> Result<()> {
        if opts != *self.detector.options() {
            self.detector = FaceDetector::new(opts)?;
            self.opts.detector = opts;
        }
        Ok(())
    }
}
