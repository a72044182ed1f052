//! Already-aligned faces (a crop made by another tool, a face from a training set): the whole
//! image is the face, resized to the model's size, restored, and its change resized back and
//! pasted, so that pixels the network leaves alone stay as they were.

use crate::align::{AlignedFace, Similarity, warp};
use crate::blend::{PasteOptions, paste};
use crate::error::{Error, Result};
use crate::frame::Rgb;
use crate::restore::{NoiseMode, Restorer, restore_crops};

/// Restores `frame`, a square aligned face of any size, in place; `weight` (0..1) scales the
/// change. Returns the crop as the network saw it.
pub fn restore_aligned_face(
    frame: &mut Rgb,
    restorer: &Restorer,
    noise: NoiseMode,
    weight: f32,
) -> Result<AlignedFace> {
    let face = aligned_crop(frame, restorer.config().out_size)?;
    let restored = restore_crops(restorer, std::slice::from_ref(&face.crop), 1, noise.into())?.remove(0);
    paste(frame, &face, &restored, PasteOptions { weight, feather: 0.0 });
    Ok(face)
}

/// `frame`, a square aligned face, resized to the network's `size`, and the way back.
pub fn aligned_crop(frame: &Rgb, size: usize) -> Result<AlignedFace> {
    if frame.w != frame.h || frame.w == 0 {
        return Err(Error::Input(format!("an aligned face must be square, this is {}x{}", frame.w, frame.h)));
    }
    let to_frame = Similarity { a: frame.w as f32 / size as f32, b: 0.0, tx: 0.0, ty: 0.0 };
    let crop = warp(frame, &to_frame, size);
    let to_crop = Similarity { a: size as f32 / frame.w as f32, b: 0.0, tx: 0.0, ty: 0.0 };
    Ok(AlignedFace { crop, to_crop })
}
