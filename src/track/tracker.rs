//! Faces followed from frame to frame. Detection (slow) runs every `detection_interval` frames
//! and its boxes are matched to tracks by overlap; in between, and on detection frames too, each
//! track's landmarks are found again in a box placed from its previous landmarks, so a face is
//! located in every frame. The five alignment points go through a One-Euro filter so that the
//! aligned crop does not jitter when the face is still.

use super::one_euro::OneEuro;
use crate::analyze::detect::iou;
use crate::analyze::{Detection, Face, five_points};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerOptions {
    /// Frames from one detection to the next (1: every frame).
    pub detection_interval: u32,
    /// Detection passes a track may go unmatched before it ends.
    pub max_missed: u32,
    /// Overlap (intersection over union) for a detection to continue a track.
    pub min_iou: f32,
    /// Most faces followed at once (the largest win).
    pub max_faces: usize,
    /// Landmark smoothing: `None` follows the raw landmarks.
    pub smoothing: Option<(f32, f32)>,
}

impl Default for TrackerOptions {
    fn default() -> Self {
        Self { detection_interval: 5, max_missed: 2, min_iou: 0.3, max_faces: 16, smoothing: Some((1.0, 2.0)) }
    }
}

/// A face in the current frame with the id of its track.
#[derive(Debug, Clone)]
pub struct TrackedFace {
    pub track_id: u64,
    /// `five` is the smoothed five points; `detection` the track's current box (its score is
    /// the last detection's).
    pub face: Face,
    /// Whether a detection matched the track on this frame.
    pub detected: bool,
}

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    bbox: Detection,
    missed: u32,
    detected: bool,
    /// Offset from the landmarks' centre to the box centre, in box sides, measured when a
    /// detection matched.
    box_from_marks: [f32; 2],
    filters: [OneEuro; 10],
    face: Option<Face>,
}

/// Centre of the landmarks' bounding box.
fn marks_center(l: &[[f32; 2]; 68]) -> (f32, f32) {
    let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
    for p in l {
        for k in 0..2 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    ((lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0)
}

/// The association and smoothing half of tracking, independent of the networks.
#[derive(Debug, Clone)]
pub struct Tracker {
    pub opts: TrackerOptions,
    tracks: Vec<Track>,
    next_id: u64,
    last_time: Option<f64>,
}

impl Tracker {
    pub fn new(opts: TrackerOptions) -> Self {
        Self { opts, tracks: Vec::new(), next_id: 1, last_time: None }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.tracks.len()
    }

    /// Matches a frame's detections to the tracks (greedy, best overlap first); unmatched
    /// detections start tracks, tracks unmatched too often end.
    pub fn match_detections(&mut self, dets: &[Detection]) {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, t) in self.tracks.iter().enumerate() {
            for (di, d) in dets.iter().enumerate() {
                let o = iou(&t.bbox, d);
                if o >= self.opts.min_iou {
                    pairs.push((o, ti, di));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut track_used, mut det_used) = (vec![false; self.tracks.len()], vec![false; dets.len()]);
        for (_, ti, di) in pairs {
            if !track_used[ti] && !det_used[di] {
                track_used[ti] = true;
                det_used[di] = true;
                let t = &mut self.tracks[ti];
                t.bbox = dets[di];
                t.missed = 0;
                t.detected = true;
            }
        }
        for (t, used) in self.tracks.iter_mut().zip(&track_used) {
            t.detected = *used;
            if !used {
                t.missed += 1;
            }
        }
        let max_missed = self.opts.max_missed;
        self.tracks.retain(|t| t.missed <= max_missed);
        // Detections come largest first: the largest faces take the free places.
        for (d, used) in dets.iter().zip(det_used) {
            if !used && self.tracks.len() < self.opts.max_faces {
                self.tracks.push(Track {
                    id: self.next_id,
                    bbox: *d,
                    missed: 0,
                    detected: true,
                    box_from_marks: [0.0, 0.0],
                    filters: [OneEuro::new(1.0, 0.0); 10],
                    face: None,
                });
                self.next_id += 1;
            }
        }
        self.tracks.truncate(self.opts.max_faces);
    }

    /// Where to look for each track's landmarks on this frame, in track order.
    pub fn boxes(&self) -> Vec<Detection> {
        self.tracks.iter().map(|t| t.bbox).collect()
    }

    /// Takes this frame's landmarks (one face per box of `boxes`, same order) at time `t`
    /// seconds: smooths the five points, moves each box with its landmarks, and drops a track
    /// that now covers the same face as an older one.
    pub fn update(&mut self, faces: Vec<Face>, t: f64) -> Vec<TrackedFace> {
        assert_eq!(faces.len(), self.tracks.len(), "one face per track");
        let dt = self.last_time.map_or(1.0 / 30.0, |last| (t - last).max(1e-4)) as f32;
        self.last_time = Some(t);
        for (track, mut face) in self.tracks.iter_mut().zip(faces) {
            // Between detections the box moves with the landmarks but keeps the detected size:
            // letting it follow the landmarks' spread feeds back (a slightly wrong crop gives a
            // smaller spread, a smaller box, a worse crop) until the box collapses.
            let (cx, cy) = marks_center(&face.landmarks);
            let b = track.bbox;
            let side = b.w.max(b.h);
            if track.detected {
                let [bx, by] = b.center();
                track.box_from_marks = [(bx - cx) / side, (by - cy) / side];
            } else {
                let [ox, oy] = track.box_from_marks;
                let (x, y) = (cx + ox * side - b.w / 2.0, cy + oy * side - b.h / 2.0);
                track.bbox = Detection { x, y, ..b };
            }
            let raw = five_points(&face.landmarks);
            face.five = raw;
            if let Some((min_cutoff, beta)) = self.opts.smoothing {
                // The face's position (the mean of all 68 points: little noise) is followed as
                // it is, so real motion, camera shake included, does not lag; the five points'
                // configuration around it (rotation, scale, shape: where the landmark net's
                // noise shows) is smoothed.
                let n = face.landmarks.len() as f32;
                let c = face.landmarks.iter().fold([0.0f32; 2], |a, p| [a[0] + p[0] / n, a[1] + p[1] / n]);
                for (k, f) in track.filters.iter_mut().enumerate() {
                    f.min_cutoff = min_cutoff;
                    f.beta = beta;
                    let (i, axis) = (k / 2, k % 2);
                    face.five[i][axis] = c[axis] + f.filter(raw[i][axis] - c[axis], dt, side);
                }
            }
            face.detection = track.bbox;
            track.face = Some(face);
        }
        // Two tracks on one face (a detection missed the match while its track drifted): keep
        // the older.
        let mut keep = vec![true; self.tracks.len()];
        for i in 0..self.tracks.len() {
            for j in i + 1..self.tracks.len() {
                if keep[i] && keep[j] && iou(&self.tracks[i].bbox, &self.tracks[j].bbox) > 0.6 {
                    keep[if self.tracks[i].id < self.tracks[j].id { j } else { i }] = false;
                }
            }
        }
        let mut k = keep.into_iter();
        self.tracks.retain(|_| k.next().unwrap_or(true));
        let out = self
            .tracks
            .iter()
            .filter_map(|t| Some(TrackedFace { track_id: t.id, face: t.face.clone()?, detected: t.detected }))
            .collect();
        self.tracks.iter_mut().for_each(|t| t.detected = false);
        out
    }

    /// Forgets every track (a seek or a new stream); ids keep counting up.
    pub fn reset(&mut self) {
        self.tracks.clear();
        self.last_time = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, y: f32, side: f32) -> Detection {
        Detection { x, y, w: side, h: side, score: 5.0 }
    }

    /// A face whose 68 landmarks fill its box (as far as the tracker cares).
    fn face_in(d: &Detection, jitter: f32) -> Face {
        let mut landmarks = [[0.0f32; 2]; 68];
        for (i, p) in landmarks.iter_mut().enumerate() {
            let (u, v) = ((i % 9) as f32 / 8.0, (i / 9) as f32 / 7.0);
            *p = [d.x + u * d.w + jitter, d.y + v * d.h - jitter];
        }
        Face { detection: *d, landmarks, five: five_points(&landmarks), expression: None }
    }

    #[test]
    fn ids_stay_with_moving_faces_and_new_faces_get_new_ids() {
        let mut t = Tracker::new(TrackerOptions { smoothing: None, ..Default::default() });
        t.match_detections(&[det(10.0, 10.0, 50.0), det(200.0, 10.0, 60.0)]);
        let faces: Vec<Face> = t.boxes().iter().map(|b| face_in(b, 0.0)).collect();
        let first = t.update(faces, 0.0);
        let ids: Vec<u64> = first.iter().map(|f| f.track_id).collect();
        assert_eq!(ids, [1, 2]);
        // Both move a little; a third face appears.
        t.match_detections(&[det(205.0, 12.0, 60.0), det(14.0, 11.0, 50.0), det(400.0, 50.0, 40.0)]);
        let faces: Vec<Face> = t.boxes().iter().map(|b| face_in(b, 0.0)).collect();
        let second = t.update(faces, 0.1);
        let by_id: Vec<(u64, f32)> = second.iter().map(|f| (f.track_id, f.face.detection.x)).collect();
        assert_eq!(by_id, [(1, 14.0), (2, 205.0), (3, 400.0)]);
    }

    #[test]
    fn unmatched_tracks_end_after_max_missed_detections() {
        let mut t = Tracker::new(TrackerOptions { max_missed: 2, ..Default::default() });
        t.match_detections(&[det(10.0, 10.0, 50.0)]);
        for round in 1..=2 {
            t.match_detections(&[]);
            assert_eq!(t.len(), 1, "still followed after {round} misses");
        }
        t.match_detections(&[]);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn max_faces_keeps_the_largest() {
        let mut t = Tracker::new(TrackerOptions { max_faces: 1, ..Default::default() });
        t.match_detections(&[det(0.0, 0.0, 90.0), det(200.0, 0.0, 40.0)]);
        assert_eq!(t.boxes(), [det(0.0, 0.0, 90.0)]);
    }

    #[test]
    fn boxes_follow_landmarks_between_detections() {
        let mut t = Tracker::new(TrackerOptions { smoothing: None, ..Default::default() });
        let d = det(100.0, 100.0, 80.0);
        t.match_detections(&[d]);
        t.update(vec![face_in(&d, 0.0)], 0.0);
        // No detection; the landmarks moved 12 px right.
        let moved = det(112.0, 100.0, 80.0);
        let out = t.update(vec![face_in(&moved, 0.0)], 1.0 / 30.0);
        let b = out[0].face.detection;
        assert!((b.x - 112.0).abs() < 1e-3 && (b.y - 100.0).abs() < 1e-3 && (b.w - 80.0).abs() < 1e-3, "{b:?}");
        assert!(!out[0].detected);
    }

    #[test]
    fn a_shrinking_landmark_spread_does_not_shrink_the_box() {
        let mut t = Tracker::new(TrackerOptions { smoothing: None, ..Default::default() });
        let d = det(100.0, 100.0, 80.0);
        t.match_detections(&[d]);
        t.update(vec![face_in(&d, 0.0)], 0.0);
        for i in 1..10 {
            // Landmarks found in a poor crop: the same centre, ever smaller.
            let s = 80.0 * 0.8f32.powi(i);
            let f = face_in(&det(140.0 - s / 2.0, 140.0 - s / 2.0, s), 0.0);
            let b = t.update(vec![f], i as f64 / 30.0)[0].face.detection;
            assert_eq!((b.w, b.h), (80.0, 80.0));
            assert!((b.center()[0] - 140.0).abs() < 1e-3 && (b.center()[1] - 140.0).abs() < 1e-3);
        }
    }

    /// The nose tip (x) of a still face over 60 frames whose landmarks get `noise(i)` on the
    /// nose and `shift(i)` on every point.
    fn nose_track(
        smoothing: Option<(f32, f32)>,
        noise: impl Fn(usize) -> f32,
        shift: impl Fn(usize) -> f32,
    ) -> Vec<f32> {
        let mut t = Tracker::new(TrackerOptions { smoothing, ..Default::default() });
        let d = det(100.0, 100.0, 100.0);
        t.match_detections(&[d]);
        (0..60)
            .map(|i| {
                let mut f = face_in(&d, shift(i));
                f.landmarks[30][0] += noise(i);
                t.update(vec![f], i as f64 / 30.0)[0].face.five[2][0]
            })
            .collect()
    }

    #[test]
    fn smoothing_damps_landmark_noise() {
        let jitter = |xs: &[f32]| xs[30..].windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f32>() / 29.0;
        let noise = |i: usize| if i % 2 == 0 { 1.5 } else { -1.5 };
        let raw = jitter(&nose_track(None, noise, |_| 0.0));
        let smooth = jitter(&nose_track(Some((1.0, 2.0)), noise, |_| 0.0));
        assert!((raw - 3.0).abs() < 0.1, "{raw}");
        assert!(smooth < raw / 4.0, "smoothed jitter {smooth} vs raw {raw}");
    }

    #[test]
    fn smoothing_follows_camera_shake_without_lag() {
        let shake = |i: usize| [0.0, 2.0, -1.0, 1.5][i % 4];
        let raw = nose_track(None, |_| 0.0, shake);
        let smooth = nose_track(Some((1.0, 2.0)), |_| 0.0, shake);
        for (i, (r, s)) in raw.iter().zip(&smooth).enumerate() {
            assert!((r - s).abs() < 1e-3, "frame {i}: {s} lags {r}");
        }
    }

    #[test]
    fn duplicate_tracks_on_one_face_merge_into_the_older() {
        let mut t = Tracker::new(TrackerOptions { min_iou: 0.9, ..Default::default() });
        t.match_detections(&[det(100.0, 100.0, 80.0)]);
        t.match_detections(&[det(110.0, 100.0, 80.0)]);
        assert_eq!(t.len(), 2);
        let faces: Vec<Face> = t.boxes().iter().map(|b| face_in(b, 0.0)).collect();
        let out = t.update(faces, 0.0);
        assert_eq!(out.iter().map(|f| f.track_id).collect::<Vec<_>>(), [1]);
    }
}
