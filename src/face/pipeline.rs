//! The photo pipeline: detect faces, find their landmarks, align each to the FFHQ template,
//! restore them together in batches, and paste them back.

use std::path::Path;

use candle_core::{Device, Tensor};

use super::align::{AlignedFace, Similarity, align, warp};
use super::detect::{Detection, DetectorOptions, FaceDetector};
use super::image::{Rgb, faces_to_tensor, tensor_to_faces};
use super::paste::{PasteOptions, paste};
use crate::error::{Error, Result};
use crate::faceapi::{EXPRESSION_LABELS, ExpressionNet, LANDMARK_INPUT_SIZE, LandmarkNet};
use crate::noise::NoiseMode;
use crate::restorer::Restorer;

#[derive(Debug, Clone, Copy)]
pub struct PipelineOptions {
    pub detector: DetectorOptions,
    /// Side of the landmark crop relative to the detection box's larger side.
    pub landmark_box_scale: f32,
    pub paste: PasteOptions,
    /// Keep only the face nearest the image centre.
    pub only_center_face: bool,
    /// Faces per network pass.
    pub batch_size: usize,
    pub noise: NoiseMode,
    /// Run the expression net on every face.
    pub expressions: bool,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            detector: DetectorOptions::default(),
            landmark_box_scale: 1.2,
            paste: PasteOptions::default(),
            only_center_face: false,
            batch_size: 8,
            noise: NoiseMode::Stored,
            expressions: false,
        }
    }
}

/// What the pipeline found about one face.
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
    /// The most probable expression and its probability.
    pub fn top_expression(&self) -> Option<(&'static str, f32)> {
        let p = self.expression?;
        let (i, v) = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
        Some((EXPRESSION_LABELS[i], *v))
    }
}

/// A face that went through the network: its aligned crop before and after.
pub struct Restored {
    pub face: Face,
    pub aligned: AlignedFace,
    pub restored: Rgb,
}

/// GFP-GAN's five points from the 68: eye centres (means of 36-41 and 42-47), nose tip (30),
/// mouth corners (48, 54).
pub fn five_points(l: &[[f32; 2]; 68]) -> [[f32; 2]; 5] {
    let mean = |r: std::ops::Range<usize>| {
        let n = r.len() as f32;
        let s = l[r].iter().fold([0.0, 0.0], |a, p| [a[0] + p[0], a[1] + p[1]]);
        [s[0] / n, s[1] / n]
    };
    [mean(36..42), mean(42..48), l[30], l[48], l[54]]
}

pub struct PhotoPipeline {
    detector: FaceDetector,
    landmarks: LandmarkNet,
    expressions: Option<ExpressionNet>,
    face_models: std::path::PathBuf,
    opts: PipelineOptions,
}

impl PhotoPipeline {
    /// `face_models`: the face-api model folder (weights/face-api/model).
    pub fn new(face_models: &Path, opts: PipelineOptions) -> Result<Self> {
        if opts.batch_size == 0 {
            return Err(Error::Input("batch size must be at least 1".into()));
        }
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

    /// Landmarks (and expressions, when enabled) of the faces in the given boxes, one batch.
    pub fn locate(&self, frame: &Rgb, dets: &[Detection]) -> Result<Vec<Face>> {
        if dets.is_empty() {
            return Ok(Vec::new());
        }
        let size = LANDMARK_INPUT_SIZE;
        let boxes: Vec<(f32, f32, f32)> = dets
            .iter()
            .map(|d| {
                let side = d.w.max(d.h) * self.opts.landmark_box_scale;
                let [cx, cy] = d.center();
                (cx - side / 2.0, cy - side / 2.0, side)
            })
            .collect();
        let mut data = Vec::with_capacity(dets.len() * size * size * 3);
        for &(x0, y0, side) in &boxes {
            let s = side / size as f32;
            data.extend(warp(frame, &Similarity { a: s, b: 0.0, tx: x0, ty: y0 }, size).data);
        }
        let batch = Tensor::from_vec(data, (dets.len(), size, size, 3), &Device::Cpu)?;
        let marks = self.landmarks.landmarks(&batch)?;
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
            .map(|(((&detection, m), (x0, y0, side)), expression)| {
                let landmarks = m.in_frame(x0, y0, side);
                Face { detection, landmarks, five: five_points(&landmarks), expression }
            })
            .collect())
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

    /// The noise of the next `restore` calls.
    pub fn set_noise(&mut self, noise: NoiseMode) {
        self.opts.noise = noise;
    }

    /// New detector options (a new detector when they differ).
    pub fn set_detector_options(&mut self, opts: DetectorOptions) -> Result<()> {
        if opts != *self.detector.options() {
            self.detector = FaceDetector::new(opts)?;
            self.opts.detector = opts;
        }
        Ok(())
    }

    /// Restores every face of `frame` in place; returns the faces with their aligned crops
    /// before and after restoration.
    pub fn restore(&mut self, frame: &mut Rgb, restorer: &Restorer) -> Result<Vec<Restored>> {
        let faces = self.analyze(frame)?;
        let size = restorer.config().out_size;
        let aligned: Vec<(Face, AlignedFace)> =
            faces.into_iter().filter_map(|f| align(frame, &f.five, size).map(|a| (f, a))).collect();
        let crops: Vec<Rgb> = aligned.iter().map(|(_, a)| a.crop.clone()).collect();
        let restored = restore_aligned(&crops, restorer, self.opts.batch_size, self.opts.noise)?;
        let mut out = Vec::with_capacity(aligned.len());
        for ((face, aligned), restored) in aligned.into_iter().zip(restored) {
            paste(frame, &aligned, &restored, self.opts.paste);
            out.push(Restored { face, aligned, restored });
        }
        Ok(out)
    }
}

/// Runs aligned faces through the network in batches of `batch_size`.
pub fn restore_aligned(crops: &[Rgb], restorer: &Restorer, batch_size: usize, noise: NoiseMode) -> Result<Vec<Rgb>> {
    let mut restored = Vec::with_capacity(crops.len());
    for chunk in crops.chunks(batch_size.max(1)) {
        restored.extend(tensor_to_faces(&restorer.restore(&faces_to_tensor(chunk)?, noise)?)?);
    }
    Ok(restored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_points_are_eye_centres_nose_and_mouth_corners() {
        let mut l = [[0.0f32; 2]; 68];
        for (i, p) in l.iter_mut().enumerate() {
            *p = [i as f32, 2.0 * i as f32];
        }
        let five = five_points(&l);
        assert_eq!(five, [[38.5, 77.0], [44.5, 89.0], [30.0, 60.0], [48.0, 96.0], [54.0, 108.0]]);
    }
}
