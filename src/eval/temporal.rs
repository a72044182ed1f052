//! Steadiness of restored video, measured inside the faces tracked on the input clip:
//!
//! - `flicker`: the mean absolute change of the output from one frame to the next inside each
//!   face's box, minus the same change of the input (what the restoration adds; motion and
//!   camera shake change both alike);
//! - `landmark_jitter`: how much the output's 68 landmarks move from frame to frame beyond the
//!   face's own motion (the best similarity from one frame's points to the next is taken out),
//!   as a fraction of the distance between the eyes;
//! - `identity_consistency`: the cosine between the face-api descriptors of a face in
//!   consecutive output frames (1: the same person throughout).
//!
//! The same numbers for the input are given beside them, as the reference of a clip that was
//! not processed.

use std::path::Path;

use serde::Serialize;

use super::identity::{FaceMetrics, FaceSignature, cosine};
use crate::align::Similarity;
use crate::analyze::landmarks::{LandmarkBox, eye_distance};
use crate::analyze::{AnalyzerOptions, DetectorOptions};
use crate::error::{Error, Result};
use crate::frame::Rgb;
use crate::track::{FaceTracker, TrackerOptions};

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TemporalScores {
    /// Output's frame-to-frame change minus the input's, 0..255 scale.
    pub flicker: f64,
    pub input_change: f64,
    pub output_change: f64,
    pub landmark_jitter: f64,
    pub input_landmark_jitter: f64,
    pub identity_consistency: f64,
    pub input_identity_consistency: f64,
    pub frames: usize,
    /// Consecutive-frame pairs of one tracked face that were measured.
    pub face_pairs: usize,
}

/// Tracks faces on an input clip and measures an output clip inside them, a frame at a time
/// (only the previous frame is kept).
pub struct TemporalEvaluator {
    tracker: FaceTracker,
    nets: FaceMetrics,
    previous: Option<Measured>,
    frames: usize,
    sums: Sums,
}

/// One tracked face on one frame: its track, its box (frame pixels) and what the nets say of
/// it on the input and on the output.
struct FaceAt {
    track: u64,
    face_box: LandmarkBox,
    input: FaceSignature,
    output: FaceSignature,
}

/// A frame pair and its faces.
struct Measured {
    input: Rgb,
    output: Rgb,
    faces: Vec<FaceAt>,
}

impl TemporalEvaluator {
    pub fn new(face_models: &Path) -> Result<Self> {
        // Detection of the whole frame, every frame, and raw landmarks: the regions follow the
        // input as it is, whatever the element's search would have looked at.
        let tracking = TrackerOptions { detection_interval: 1, smoothing: None, ..Default::default() };
        let mut tracker = FaceTracker::new(face_models, DetectorOptions::default(), tracking, false)?;
        tracker.search_opts.full_frame = true;
        Ok(Self { tracker, nets: FaceMetrics::load(face_models)?, previous: None, frames: 0, sums: Sums::default() })
    }

    /// The next frame of the input clip and the output made from it (same size).
    pub fn push(&mut self, input: Rgb, output: Rgb) -> Result<()> {
        if (input.w, input.h) != (output.w, output.h) {
            return Err(Error::Input(format!(
                "frame {}: the input is {}x{}, the output {}x{}",
                self.frames, input.w, input.h, output.w, output.h
            )));
        }
        let tracked = self.tracker.step(&input, self.frames as f64)?;
        let boxes: Vec<[LandmarkBox; 2]> = tracked
            .iter()
            .map(|t| {
                let d = &t.face.detection;
                [LandmarkBox::around(d, 1.0), LandmarkBox::around(d, AnalyzerOptions::default().landmark_box_scale)]
            })
            .collect();
        // The faces of both frames in one batch: inputs first, then outputs.
        let n = boxes.len();
        let frames: Vec<&Rgb> = std::iter::repeat_n(&input, n).chain(std::iter::repeat_n(&output, n)).collect();
        let mut sig_in = self.nets.signatures(&frames, &boxes.repeat(2))?;
        let sig_out = sig_in.split_off(n);
        let faces = tracked
            .iter()
            .zip(&boxes)
            .zip(sig_in.into_iter().zip(sig_out))
            .map(|((t, b), (i, o))| FaceAt { track: t.track_id, face_box: b[0], input: i, output: o })
            .collect();
        let now = Measured { input, output, faces };
        if let Some(prev) = &self.previous {
            self.sums.add(prev, &now);
        }
        self.previous = Some(now);
        self.frames += 1;
        Ok(())
    }

    /// The scores of the frames pushed so far.
    pub fn scores(&self) -> TemporalScores {
        self.sums.scores(self.frames)
    }

    /// Scores a whole clip: `output[i]` made from `input[i]`.
    pub fn evaluate(face_models: &Path, input: &[Rgb], output: &[Rgb]) -> Result<TemporalScores> {
        if input.len() != output.len() {
            return Err(Error::Input(format!("{} input frames but {} output frames", input.len(), output.len())));
        }
        let mut e = Self::new(face_models)?;
        for (i, o) in input.iter().zip(output) {
            e.push(i.clone(), o.clone())?;
        }
        Ok(e.scores())
    }
}

#[derive(Default)]
struct Sums {
    pairs: usize,
    pixels: usize,
    change_in: f64,
    change_out: f64,
    jitter_in: f64,
    jitter_out: f64,
    id_in: f64,
    id_out: f64,
}

impl Sums {
    /// Every face found on both frames (by its track).
    fn add(&mut self, prev: &Measured, now: &Measured) {
        for face in &now.faces {
            let Some(before) = prev.faces.iter().find(|f| f.track == face.track) else { continue };
            let (dc_in, n) = change(&prev.input, &now.input, &face.face_box);
            let (dc_out, _) = change(&prev.output, &now.output, &face.face_box);
            self.pairs += 1;
            self.pixels += n;
            self.change_in += dc_in;
            self.change_out += dc_out;
            self.jitter_in += jitter(&before.input, &face.input);
            self.jitter_out += jitter(&before.output, &face.output);
            self.id_in += cosine(&before.input, &face.input);
            self.id_out += cosine(&before.output, &face.output);
        }
    }

    fn scores(&self, frames: usize) -> TemporalScores {
        let per_pixel = |v: f64| if self.pixels == 0 { f64::NAN } else { v / self.pixels as f64 };
        let per_pair = |v: f64| if self.pairs == 0 { f64::NAN } else { v / self.pairs as f64 };
        TemporalScores {
            flicker: per_pixel(self.change_out - self.change_in),
            input_change: per_pixel(self.change_in),
            output_change: per_pixel(self.change_out),
            landmark_jitter: per_pair(self.jitter_out),
            input_landmark_jitter: per_pair(self.jitter_in),
            identity_consistency: per_pair(self.id_out),
            input_identity_consistency: per_pair(self.id_in),
            frames,
            face_pairs: self.pairs,
        }
    }
}

/// The summed absolute change (all three channels) between two frames inside `b` (clipped to
/// the frame), and how many values were summed.
fn change(a: &Rgb, b: &Rgb, area: &LandmarkBox) -> (f64, usize) {
    let x0 = area.x0.max(0.0) as usize;
    let y0 = area.y0.max(0.0) as usize;
    let x1 = ((area.x0 + area.side).max(0.0) as usize).min(a.w);
    let y1 = ((area.y0 + area.side).max(0.0) as usize).min(a.h);
    let (mut sum, mut n) = (0.0, 0);
    for y in y0..y1 {
        let row = (y * a.w + x0) * 3..(y * a.w + x1.max(x0)) * 3;
        sum += a.data[row.clone()].iter().zip(&b.data[row.clone()]).map(|(p, q)| f64::from((p - q).abs())).sum::<f64>();
        n += row.len();
    }
    (sum, n)
}

/// The landmarks' motion from `prev` to `now` that a similarity (the face moving, turning,
/// scaling as a whole) does not explain: mean residual distance over the eye distance.
fn jitter(prev: &FaceSignature, now: &FaceSignature) -> f64 {
    let Some(s) = Similarity::estimate(&prev.landmarks, &now.landmarks) else { return 0.0 };
    let residual: f64 = prev
        .landmarks
        .iter()
        .zip(&now.landmarks)
        .map(|(p, q)| {
            let m = s.apply(*p);
            f64::from((m[0] - q[0]).hypot(m[1] - q[1]))
        })
        .sum::<f64>()
        / 68.0;
    residual / f64::from(eye_distance(&now.landmarks).max(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(points: impl Fn(usize) -> [f32; 2]) -> FaceSignature {
        FaceSignature { descriptor: vec![1.0; 4], landmarks: std::array::from_fn(points) }
    }

    #[test]
    fn a_face_moving_as_a_whole_has_no_jitter_and_a_wobble_has_some() {
        let base = |i: usize| [(i % 9) as f32 * 10.0, (i / 9) as f32 * 12.0];
        let moved = sig(|i| {
            let [x, y] = base(i);
            [1.1 * x + 5.0, 1.1 * y - 3.0]
        });
        assert!(jitter(&sig(base), &moved) < 1e-4);
        let wobbled = sig(|i| {
            let [x, y] = base(i);
            [x + if i % 2 == 0 { 2.0 } else { -2.0 }, y]
        });
        assert!(jitter(&sig(base), &wobbled) > 0.01);
    }

    #[test]
    fn change_is_summed_inside_the_box_clipped_to_the_frame() {
        let a = Rgb::new(10, 10);
        let mut b = a.clone();
        b.data.iter_mut().for_each(|v| *v = 2.0);
        let (sum, n) = change(&a, &b, &LandmarkBox { x0: -2.0, y0: 6.0, side: 6.0 });
        assert_eq!(n, 4 * 4 * 3);
        assert_eq!(sum, 2.0 * n as f64);
    }
}
