//! How well tracking finds faces whose true boxes are known (synthetic clips): the share of
//! (face, frame) pairs found, faces reported where there is none, and how long each face took
//! to be found the first time.

use serde::Serialize;

/// A box `[x, y, w, h]`, frame pixels.
pub type BoxXywh = [f32; 4];

/// A reported box finds a true face when its centre lies in the face's box and its size is
/// within this factor of the face's.
const SIZE_FACTOR: f32 = 2.0;

fn finds(found: &BoxXywh, truth: &BoxXywh) -> bool {
    let (cx, cy) = (found[0] + found[2] / 2.0, found[1] + found[3] / 2.0);
    let inside = cx >= truth[0] && cy >= truth[1] && cx < truth[0] + truth[2] && cy < truth[1] + truth[3];
    let ratio = found[2].max(found[3]) / truth[2].max(truth[3]);
    inside && (1.0 / SIZE_FACTOR..=SIZE_FACTOR).contains(&ratio)
}

#[derive(Debug, Clone, Default)]
pub struct RecallCounter {
    frames: usize,
    /// Per face: frames where it was found, and the first one.
    found: Vec<usize>,
    first: Vec<Option<usize>>,
    /// From `steady_from` on: (face, frame) pairs and those found.
    steady_from: usize,
    steady: (usize, usize),
    false_faces: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecallScores {
    pub frames: usize,
    /// Found (face, frame) pairs over all pairs.
    pub recall: f64,
    /// The same from frame `steady_from` on (once the search had time to look everywhere);
    /// `None` for a clip that ends before.
    pub steady_recall: Option<f64>,
    pub steady_from: usize,
    /// Faces never found.
    pub never_found: usize,
    /// The latest first finding, frames (`None` when a face was never found).
    pub slowest_first_find: Option<usize>,
    /// Reported faces that are no true face, per frame.
    pub false_per_frame: f64,
    /// Per face, the share of frames it was found in.
    pub per_face: Vec<f64>,
}

impl RecallCounter {
    /// Counts `faces` true faces; "steady" recall counts from frame `steady_from` on.
    pub fn new(faces: usize, steady_from: usize) -> Self {
        Self { found: vec![0; faces], first: vec![None; faces], steady_from, ..Default::default() }
    }

    /// One frame: the true boxes (one per face, in a fixed order) and the boxes reported.
    pub fn add(&mut self, truth: &[BoxXywh], reported: &[BoxXywh]) {
        let mut used = vec![false; reported.len()];
        for (i, t) in truth.iter().enumerate().take(self.found.len()) {
            let hit = reported.iter().enumerate().find(|(j, r)| !used[*j] && finds(r, t)).map(|(j, _)| j);
            if let Some(j) = hit {
                used[j] = true;
                self.found[i] += 1;
                self.first[i].get_or_insert(self.frames);
            }
            if self.frames >= self.steady_from {
                self.steady.0 += 1;
                self.steady.1 += usize::from(hit.is_some());
            }
        }
        self.false_faces += used.iter().filter(|u| !**u).count();
        self.frames += 1;
    }

    pub fn scores(&self) -> RecallScores {
        let pairs = (self.frames * self.found.len()).max(1);
        RecallScores {
            frames: self.frames,
            recall: self.found.iter().sum::<usize>() as f64 / pairs as f64,
            steady_recall: (self.steady.0 > 0).then(|| self.steady.1 as f64 / self.steady.0 as f64),
            steady_from: self.steady_from,
            never_found: self.first.iter().filter(|f| f.is_none()).count(),
            slowest_first_find: self.first.iter().try_fold(0, |m, f| f.map(|f| m.max(f))),
            false_per_frame: self.false_faces as f64 / self.frames.max(1) as f64,
            per_face: self.found.iter().map(|&f| f as f64 / self.frames.max(1) as f64).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_hits_misses_and_false_faces() {
        let truth = [[100.0, 100.0, 20.0, 20.0], [300.0, 100.0, 20.0, 20.0]];
        let mut c = RecallCounter::new(2, 1);
        c.add(&truth, &[]);
        // Face 0 found; a box on face 1 four times too large does not count; one box far away.
        c.add(&truth, &[[102.0, 98.0, 22.0, 22.0], [280.0, 80.0, 80.0, 80.0], [600.0, 10.0, 20.0, 20.0]]);
        c.add(&truth, &[[298.0, 101.0, 19.0, 19.0], [101.0, 101.0, 20.0, 20.0]]);
        let s = c.scores();
        assert_eq!(s.frames, 3);
        assert!((s.recall - 3.0 / 6.0).abs() < 1e-9, "{s:?}");
        assert!((s.steady_recall.unwrap() - 3.0 / 4.0).abs() < 1e-9, "{s:?}");
        assert_eq!((s.never_found, s.slowest_first_find), (0, Some(2)));
        assert!((s.false_per_frame - 2.0 / 3.0).abs() < 1e-9, "{s:?}");
        let mut never = RecallCounter::new(1, 0);
        never.add(&truth[..1], &[]);
        assert_eq!((never.scores().never_found, never.scores().slowest_first_find), (1, None));
        assert_eq!(RecallCounter::new(1, 5).scores().steady_recall, None, "no frame counted");
    }
}
