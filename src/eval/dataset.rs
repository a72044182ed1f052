//! The faces an evaluation runs on: aligned ground-truth faces and their degraded versions,
//! given in a folder or made with the training degradation from a seed.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;

use crate::error::{Error, Result};
use crate::frame::Rgb;
use crate::synth::degrade::{DegradeOptions, back_to_size, degrade_small};

/// Where the degraded faces come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Degraded {
    /// A folder with one image per ground truth, found by file stem (any size and extension).
    Folder(PathBuf),
    /// GFP-GAN's training degradation with these ranges (the official ones by default, a
    /// training run's own in its validation), drawn for face `i` (in name order) from `seed + i`.
    Seeded { seed: u64, ranges: DegradeOptions },
}

/// One face, all at the model's size: the ground truth, the network's input, and the
/// degraded face upscaled bicubically from its own resolution (the baseline).
#[derive(Debug, Clone)]
pub struct Pair {
    pub name: String,
    pub gt: Rgb,
    pub input: Rgb,
    pub bicubic: Rgb,
}

/// The images of a folder (png, jpg, webp), sorted by name; an error when there are none.
pub fn images_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let files = crate::files::images_in(dir)?;
    if files.is_empty() {
        return Err(Error::Input(format!("{}: no images (png, jpg, webp) in this folder", dir.display())));
    }
    Ok(files)
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The pair of ground-truth face `index` (file `gt`), resized to `size`.
pub fn load_pair(gt: &Path, index: usize, degraded: &Degraded, size: usize) -> Result<Pair> {
    let name = stem(gt);
    let truth = Rgb::open(gt)?;
    if truth.w != truth.h {
        return Err(Error::format(gt, format!("is {}x{}: ground-truth faces are aligned squares", truth.w, truth.h)));
    }
    let truth = if truth.w == size { truth } else { truth.resized(size, size) };
    let (input, bicubic) = match degraded {
        Degraded::Folder(dir) => {
            let lq = find_by_stem(dir, &name)?;
            let low = Rgb::open(&lq)?;
            if low.w != low.h {
                return Err(Error::format(&lq, format!("is {}x{}: degraded faces are aligned squares", low.w, low.h)));
            }
            (resize(&low, size, FilterType::Triangle), resize(&low, size, FilterType::CatmullRom))
        }
        Degraded::Seeded { seed, ranges } => {
            let (small, d) = degrade_small(&truth, ranges, seed.wrapping_add(index as u64))?;
            (
                back_to_size(&small, size, size, FilterType::Triangle, &d),
                back_to_size(&small, size, size, FilterType::CatmullRom, &d),
            )
        }
    };
    Ok(Pair { name, gt: truth, input, bicubic })
}

fn resize(img: &Rgb, size: usize, filter: FilterType) -> Rgb {
    if img.w == size && img.h == size {
        return img.clone();
    }
    img.resized_with(size, size, filter)
}

/// The image in `dir` whose stem is `name`.
fn find_by_stem(dir: &Path, name: &str) -> Result<PathBuf> {
    crate::files::IMAGE_EXTENSIONS
        .iter()
        .flat_map(|e| [e.to_string(), e.to_ascii_uppercase()])
        .map(|e| dir.join(format!("{name}.{e}")))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::Input(format!("{}: no degraded face named {name} (png, jpg, webp)", dir.display())))
}
