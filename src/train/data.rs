//! A face dataset for training: aligned faces (`faces/*.png`) and, per face, the squares of its
//! eyes and mouth (`components.json`), as GFP-GAN's official component file records them.
//! Training reads it with the training degradation made on the fly and random horizontal flips,
//! both drawn from a seed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::Rgb;
use crate::synth::degrade::{DegradeOptions, degrade};

/// The smallest half side of a component square, at 512 (the official rule).
const MIN_HALF_512: f32 = 16.0;
/// How much larger the eye squares are cropped than recorded (the official dataset's ratio).
pub const EYE_ENLARGE: f32 = 1.4;

/// A component square: centre `[x, y]` and half side, in the aligned face's pixels (the
/// official file's `[x, y, half_len]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Component(pub [f32; 3]);

/// The three components of a face. "Left eye" is landmarks 36-41, the eye on the image's left.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Components {
    pub left_eye: Component,
    pub right_eye: Component,
    pub mouth: Component,
}

impl Components {
    /// From the 68 landmarks of a face aligned at `size`: each component's centre is the mean
    /// of its points, its half side half the larger extent of its points, at least 16 at 512.
    pub fn from_landmarks(l: &[[f32; 2]; 68], size: usize) -> Self {
        let min_half = MIN_HALF_512 * size as f32 / 512.0;
        let square = |points: &[[f32; 2]]| {
            let n = points.len() as f32;
            let (mut lo, mut hi, mut sum) = ([f32::MAX; 2], [f32::MIN; 2], [0.0f32; 2]);
            for p in points {
                for a in 0..2 {
                    lo[a] = lo[a].min(p[a]);
                    hi[a] = hi[a].max(p[a]);
                    sum[a] += p[a];
                }
            }
            let extent = (hi[0] - lo[0]).max(hi[1] - lo[1]);
            Component([sum[0] / n, sum[1] / n, (extent / 2.0).max(min_half)])
        };
        Self { left_eye: square(&l[36..42]), right_eye: square(&l[42..48]), mouth: square(&l[48..68]) }
    }

    /// The components of the face mirrored left to right: the eyes change places and every
    /// centre's x becomes `size - x`, as the official dataset does.
    pub fn flipped(&self, size: usize) -> Self {
        let mirror = |c: Component| Component([size as f32 - c.0[0], c.0[1], c.0[2]]);
        Self { left_eye: mirror(self.right_eye), right_eye: mirror(self.left_eye), mouth: mirror(self.mouth) }
    }

    /// The boxes the component discriminators crop, `[x0, y0, x1, y1]` for left eye, right eye
    /// and mouth: `centre - half + 1` to `centre + half`, the eyes' half side enlarged by
    /// [`EYE_ENLARGE`].
    pub fn boxes(&self) -> [[f32; 4]; 3] {
        let b = |c: Component, k: f32| {
            let h = c.0[2] * k;
            [c.0[0] - h + 1.0, c.0[1] - h + 1.0, c.0[0] + h, c.0[1] + h]
        };
        [b(self.left_eye, EYE_ENLARGE), b(self.right_eye, EYE_ENLARGE), b(self.mouth, 1.0)]
    }
}

/// `components.json`: the faces' side and each face file's components.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentFile {
    pub size: usize,
    pub faces: BTreeMap<String, Components>,
}

/// The file names of a dataset folder.
pub const FACES_DIR: &str = "faces";
pub const COMPONENTS_FILE: &str = "components.json";

/// One training example: the clean face, its degraded version and its components, flipped
/// together or not.
#[derive(Debug, Clone)]
pub struct Sample {
    pub gt: Rgb,
    pub lq: Rgb,
    pub components: Components,
    pub flipped: bool,
}

/// A dataset folder made by `gfpgan prepare-data`.
pub struct FaceDataset {
    dir: PathBuf,
    file: ComponentFile,
    names: Vec<String>,
    /// `pair_color_jitter` of the training options: 0 leaves colours alone.
    color_jitter: f32,
}

impl FaceDataset {
    /// Opens `dir` (its `components.json`; the face files are read when sampled).
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(COMPONENTS_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let file: ComponentFile =
            serde_json::from_str(&text).map_err(|e| Error::format(&path, format!("not a component file: {e}")))?;
        if file.faces.is_empty() || !(16..=4096).contains(&file.size) {
            return Err(Error::format(
                &path,
                format!("{} faces of size {}: nothing to train on", file.faces.len(), file.size),
            ));
        }
        let names = file.faces.keys().cloned().collect();
        Ok(Self { dir: dir.to_path_buf(), file, names, color_jitter: 0.0 })
    }

    /// Samples with each channel of the clean face scaled by a gain in [1 - x, 1 + x], drawn
    /// per sample before the degradation (see `DataOptions::pair_color_jitter`).
    pub fn with_pair_color_jitter(mut self, x: f32) -> Self {
        self.color_jitter = x;
        self
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn size(&self) -> usize {
        self.file.size
    }

    /// Face `index` as training sees it under `seed`: flipped with probability 1/2, degraded
    /// with `opts`, both drawn from the seed. A face file that cannot be read, or is not of
    /// the dataset's size, is an error naming it (the trainer skips and counts it).
    pub fn sample(&self, index: usize, seed: u64, opts: &DegradeOptions) -> Result<Sample> {
        let name = &self.names[index % self.names.len()];
        let path = self.dir.join(FACES_DIR).join(name);
        let face = Rgb::open(&path)?;
        let size = self.file.size;
        if (face.w, face.h) != (size, size) {
            return Err(Error::format(
                &path,
                format!("is {}x{}, the dataset's faces are {size}x{size}", face.w, face.h),
            ));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let flipped = rng.random_bool(0.5);
        let components = self.file.faces[name];
        let (mut gt, components) =
            if flipped { (face.flipped_horizontally(), components.flipped(size)) } else { (face, components) };
        // Drawn only when on, so that a run without it sees the same samples as before it existed.
        if self.color_jitter > 0.0 {
            let x = self.color_jitter;
            let gain: [f32; 3] = std::array::from_fn(|_| rng.random_range(1.0 - x..=1.0 + x));
            scale_channels(&mut gt, gain);
        }
        let (lq, _) = degrade(&gt, opts, rng.random())?;
        Ok(Sample { gt, lq, components, flipped })
    }
}

fn scale_channels(img: &mut Rgb, gain: [f32; 3]) {
    for p in img.data.chunks_exact_mut(3) {
        p.iter_mut().zip(gain).for_each(|(v, g)| *v = (*v * g).clamp(0.0, 255.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Landmarks with the eyes and mouth at known places and extents.
    fn landmarks() -> [[f32; 2]; 68] {
        let mut l = [[0.0f32; 2]; 68];
        for (i, p) in l.iter_mut().enumerate() {
            *p = match i {
                36..=41 => [180.0 + (i - 36) as f32 * 6.0, 240.0 + (i % 2) as f32 * 4.0], // 30 wide
                42..=47 => [300.0 + (i - 42) as f32 * 8.0, 240.0],                        // 40 wide
                48..=67 => [200.0 + (i - 48) as f32 * 6.0, 370.0 + (i % 3) as f32 * 10.0], // 114 wide
                _ => [0.0, 0.0],
            };
        }
        l
    }

    #[test]
    fn components_follow_the_official_rule() {
        let c = Components::from_landmarks(&landmarks(), 512);
        assert_eq!(c.left_eye.0[2], 16.0, "half of 30 is below the minimum of 16");
        assert_eq!(c.right_eye.0[2], 20.0);
        assert_eq!(c.mouth.0[2], 57.0);
        assert_eq!(c.left_eye.0[0], 195.0);
        // At 256 the minimum halves with the face.
        assert_eq!(Components::from_landmarks(&landmarks().map(|[x, y]| [x / 2.0, y / 2.0]), 256).left_eye.0[2], 8.0);
        let [left, _, mouth] = c.boxes();
        assert_eq!(left, [195.0 - 22.4 + 1.0, 242.0 - 22.4 + 1.0, 195.0 + 22.4, 242.0 + 22.4]);
        assert_eq!(mouth[2] - mouth[0], 2.0 * 57.0 - 1.0);
    }

    #[test]
    fn a_flip_swaps_the_eyes_and_mirrors_x() {
        let c = Components::from_landmarks(&landmarks(), 512);
        let f = c.flipped(512);
        assert_eq!(f.left_eye.0, [512.0 - c.right_eye.0[0], c.right_eye.0[1], c.right_eye.0[2]]);
        assert_eq!(f.right_eye.0, [512.0 - c.left_eye.0[0], c.left_eye.0[1], c.left_eye.0[2]]);
        assert_eq!(f.flipped(512), c);
    }

    /// A one-face dataset of a mid-grey 16x16 face in a temporary folder.
    fn grey_dataset() -> (tempfile::TempDir, FaceDataset) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(FACES_DIR)).unwrap();
        let mut face = Rgb::new(16, 16);
        face.data.fill(128.0);
        face.save(&dir.path().join(FACES_DIR).join("a.png")).unwrap();
        let c = Components::from_landmarks(&landmarks().map(|[x, y]| [x / 32.0, y / 32.0]), 16);
        let file = ComponentFile { size: 16, faces: [("a.png".to_string(), c)].into() };
        std::fs::write(dir.path().join(COMPONENTS_FILE), serde_json::to_string(&file).unwrap()).unwrap();
        let data = FaceDataset::open(dir.path()).unwrap();
        (dir, data)
    }

    #[test]
    fn pair_colour_jitter_recolours_the_clean_face_within_its_range() {
        let (_dir, data) = grey_dataset();
        let opts = DegradeOptions::default();
        let plain = data.sample(0, 7, &opts).unwrap();
        assert!(plain.gt.data.iter().all(|&v| v == 128.0), "off by default");
        let data = data.with_pair_color_jitter(0.2);
        let mut gains = Vec::new();
        for seed in 0..20 {
            let s = data.sample(0, seed, &opts).unwrap();
            let g: Vec<f32> = s.gt.pixel(3, 5).iter().map(|v| v / 128.0).collect();
            assert!(g.iter().all(|g| (0.8..=1.2).contains(g)), "gains {g:?} outside [0.8, 1.2]");
            assert!(s.gt.data.chunks_exact(3).all(|p| p == s.gt.pixel(0, 0)), "one gain per channel");
            gains.extend(g);
        }
        let spread = gains.iter().cloned().fold(f32::MIN, f32::max) - gains.iter().cloned().fold(f32::MAX, f32::min);
        assert!(spread > 0.2, "gains barely vary: spread {spread}");
    }
}
