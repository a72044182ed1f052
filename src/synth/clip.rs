//! Synthetic test clips from still photos: faces cut from the photos (around their detections)
//! are laid out on a grid over a background, drift slowly, and the whole picture shakes by a
//! few whole pixels like a hand-held camera. Knowing every face's position and the shake of
//! every frame makes flicker measurable (undo the shake, compare frames) and the face count
//! controllable for benchmarks.

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::degrade::{Degradation, apply};
use crate::align::{Similarity, warp};
use crate::analyze::detect::{DetectorOptions, FaceDetector};
use crate::error::{Error, Result};
use crate::frame::Rgb;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipSpec {
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    pub fps: f32,
    pub faces: usize,
    /// Amplitude of each face's slow circular drift, pixels (0: still faces).
    pub motion: f32,
    /// Largest camera shake, whole pixels, drawn per frame.
    pub jitter: i32,
    /// Blur, downscale, noise and JPEG the faces (GFP-GAN's degradation, fixed parameters);
    /// with `face_size`, noise and JPEG the whole picture instead, as a surveillance camera does.
    pub degrade: bool,
    /// Faces this many pixels across (the detector's box), each drawn from the range; `None`:
    /// as large as the grid allows.
    pub face_size: Option<(f32, f32)>,
    pub seed: u64,
}

impl Default for ClipSpec {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 720,
            frames: 100,
            fps: 25.0,
            faces: 4,
            motion: 20.0,
            jitter: 2,
            degrade: true,
            face_size: None,
            seed: 0,
        }
    }
}

impl ClipSpec {
    /// Sizes a frame can be built from (each frame is allocated whole, so the size is capped as
    /// for decoded images) and numbers that draw sensible random values (NaN draws nothing).
    pub fn validate(&self) -> Result<()> {
        let check = |ok: bool, name: &str, want: &str, got: &dyn std::fmt::Display| {
            if ok { Ok(()) } else { Err(Error::Input(format!("clip {name} must be {want}, got {got}"))) }
        };
        let side = 64..=crate::frame::MAX_SIDE as usize;
        check(side.contains(&self.width), "width", "in 64..=16384", &self.width)?;
        check(side.contains(&self.height), "height", "in 64..=16384", &self.height)?;
        check((1..=MAX_FRAMES).contains(&self.frames), "frames", &format!("in 1..={MAX_FRAMES}"), &self.frames)?;
        check((1..=MAX_FACES).contains(&self.faces), "faces", &format!("in 1..={MAX_FACES}"), &self.faces)?;
        check(self.fps.is_finite() && self.fps > 0.0, "fps", "positive", &self.fps)?;
        check((0.0..=16384.0).contains(&self.motion), "motion", "in 0..=16384 pixels", &self.motion)?;
        check((0..=1024).contains(&self.jitter), "jitter", "in 0..=1024 pixels", &self.jitter)?;
        if let Some((lo, hi)) = self.face_size {
            let ok = (8.0..=4096.0).contains(&lo) && (lo..=4096.0).contains(&hi);
            check(ok, "face size", "a range within 8..=4096 pixels", &format!("{lo}-{hi}"))?;
        }
        Ok(())
    }
}

/// Most frames and faces of a clip (each frame's camera shake and each face's sprite are made
/// up front).
pub const MAX_FRAMES: usize = 1_000_000;
pub const MAX_FACES: usize = 1024;

/// A face placed in the clip: its sprite (face and surroundings, about twice the face box) and
/// where its centre sits on the grid.
struct Placed {
    sprite: Rgb,
    center: [f32; 2],
    phase: f32,
}

pub struct Clip {
    pub spec: ClipSpec,
    background: Rgb,
    faces: Vec<Placed>,
    shake: Vec<(i32, i32)>,
}

/// Cuts a square of side `side` centred at `(cx, cy)` (edge pixels repeat outside).
fn cut(img: &Rgb, cx: f32, cy: f32, side: usize) -> Rgb {
    let corner = Similarity { a: 1.0, b: 0.0, tx: cx - side as f32 / 2.0, ty: cy - side as f32 / 2.0 };
    warp(img, &corner, side)
}

impl Clip {
    /// Builds a clip from photos (faces are taken in order, photo after photo, and reused
    /// when the photos hold fewer than `spec.faces`).
    pub fn new(photos: &[&Path], spec: ClipSpec) -> Result<Self> {
        spec.validate()?;
        if photos.is_empty() {
            return Err(Error::Input("a clip needs at least one photo".into()));
        }
        let mut detector = FaceDetector::new(DetectorOptions::default())?;
        let mut sources = Vec::new();
        let mut first = None;
        for path in photos {
            let img = Rgb::open(path)?;
            for d in detector.detect(&img) {
                let [cx, cy] = d.center();
                sources.push(cut(&img, cx, cy, (2.0 * d.w.max(d.h)) as usize));
            }
            first.get_or_insert(img);
        }
        if sources.is_empty() {
            return Err(Error::Input("no faces found in the clip's photos".into()));
        }
        // A grid with cells as square as the frame allows.
        let cols = (1..=spec.faces)
            .min_by_key(|&c| {
                let rows = spec.faces.div_ceil(c);
                let (cw, ch) = (spec.width as f32 / c as f32, spec.height as f32 / rows as f32);
                ((cw / ch).ln().abs() * 1000.0) as i64
            })
            .unwrap_or(1);
        let rows = spec.faces.div_ceil(cols);
        let (cw, ch) = (spec.width as f32 / cols as f32, spec.height as f32 / rows as f32);
        let grid_side = ((cw.min(ch) - 2.0 * (spec.motion + spec.jitter as f32)) * 0.9).max(16.0) as usize;
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let degradation = Degradation::fixed(1.5, 3.0, 4.0, 60);
        let mut faces = Vec::with_capacity(spec.faces);
        for i in 0..spec.faces {
            // A sprite is twice its face's box.
            let side = match spec.face_size {
                Some((lo, hi)) => (2.0 * if hi > lo { rng.random_range(lo..=hi) } else { lo }).round() as usize,
                None => grid_side,
            };
            let mut sprite = sources[i % sources.len()].resized(side, side);
            if spec.degrade && spec.face_size.is_none() {
                sprite = apply(&sprite, &degradation, 11, &mut rng)?;
            }
            let (c, r) = (i % cols, i / cols);
            let center = [(c as f32 + 0.5) * cw, (r as f32 + 0.5) * ch];
            faces.push(Placed { sprite, center, phase: rng.random_range(0.0..std::f32::consts::TAU) });
        }
        let first = first.expect("one photo at least");
        // Blurred beyond recognition, so that the clip holds exactly `spec.faces` faces.
        let background = first.resized(32, 18).resized(spec.width, spec.height);
        let shake = (0..spec.frames)
            .map(|_| (rng.random_range(-spec.jitter..=spec.jitter), rng.random_range(-spec.jitter..=spec.jitter)))
            .collect();
        Ok(Self { spec, background, faces, shake })
    }

    /// Writes every frame as `dir/00000.png`, `dir/00001.png`, ... (what gst-launch's
    /// multifilesrc reads).
    pub fn write_frames(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
        (0..self.spec.frames).try_for_each(|i| self.frame(i).save(&dir.join(format!("{i:05}.png"))))
    }

    /// The camera shake of frame `i`: the picture is moved by this many pixels.
    pub fn shake(&self, i: usize) -> (i32, i32) {
        self.shake[i % self.shake.len()]
    }

    /// Top-left corner and side of each face's sprite in frame `i`, before the shake.
    pub fn sprites(&self, i: usize) -> Vec<(i32, i32, usize)> {
        let t = i as f32 / self.spec.fps;
        self.faces
            .iter()
            .map(|f| {
                let a = f.phase + t * std::f32::consts::TAU / 8.0;
                let side = f.sprite.w;
                let x = f.center[0] + self.spec.motion * a.cos() - side as f32 / 2.0;
                let y = f.center[1] + self.spec.motion * a.sin() - side as f32 / 2.0;
                (x.round() as i32, y.round() as i32, side)
            })
            .collect()
    }

    /// Each face's box in frame `i` (`[x, y, w, h]`): the middle half of its sprite, shaken.
    pub fn face_boxes(&self, i: usize) -> Vec<[f32; 4]> {
        let (dx, dy) = self.shake(i);
        self.sprites(i)
            .into_iter()
            .map(|(x, y, side)| {
                let s = side as f32;
                [(x + dx) as f32 + s / 4.0, (y + dy) as f32 + s / 4.0, s / 2.0, s / 2.0]
            })
            .collect()
    }

    pub fn frame(&self, i: usize) -> Rgb {
        let (w, h) = (self.spec.width, self.spec.height);
        let mut scene = self.background.clone();
        for (f, (x0, y0, side)) in self.faces.iter().zip(self.sprites(i)) {
            // A soft round edge so the sprite blends into the background.
            let r = side as f32 / 2.0;
            for y in 0..side {
                let fy = y0 + y as i32;
                if fy < 0 || fy >= h as i32 {
                    continue;
                }
                for x in 0..side {
                    let fx = x0 + x as i32;
                    if fx < 0 || fx >= w as i32 {
                        continue;
                    }
                    let d = ((x as f32 + 0.5 - r).hypot(y as f32 + 0.5 - r)) / r;
                    let m = ((1.0 - d) / 0.15).clamp(0.0, 1.0);
                    if m > 0.0 {
                        let (si, di) = ((y * side + x) * 3, (fy as usize * w + fx as usize) * 3);
                        for k in 0..3 {
                            scene.data[di + k] += m * (f.sprite.data[si + k] - scene.data[di + k]);
                        }
                    }
                }
            }
        }
        let shaken = shift(&scene, self.shake(i));
        if !(self.spec.degrade && self.spec.face_size.is_some()) {
            return shaken;
        }
        // Sensor noise and compression over the whole picture, different in every frame. (The
        // JPEG round trip of a valid in-memory image cannot fail; if it did, the frame would
        // stay clean rather than the clip stop.)
        let camera = Degradation::fixed(0.5, 1.0, 3.0, 75);
        let mut rng = StdRng::seed_from_u64(self.spec.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        apply(&shaken, &camera, 3, &mut rng).unwrap_or(shaken)
    }
}

/// Moves a picture by whole pixels; the uncovered border repeats the edge.
pub fn shift(img: &Rgb, (dx, dy): (i32, i32)) -> Rgb {
    let mut out = Rgb::new(img.w, img.h);
    for y in 0..img.h {
        let sy = (y as i32 - dy).clamp(0, img.h as i32 - 1) as usize;
        for x in 0..img.w {
            let sx = (x as i32 - dx).clamp(0, img.w as i32 - 1) as usize;
            out.data[(y * img.w + x) * 3..][..3].copy_from_slice(&img.data[(sy * img.w + sx) * 3..][..3]);
        }
    }
    out
}
