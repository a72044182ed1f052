//! Flicker: how much restored faces change from frame to frame where the input did not.

use super::clip::{Clip, shift};
use crate::frame::Rgb;

/// Flicker of a processed clip of still faces: the mean absolute change (0..255 scale) from
/// one frame to the next inside the faces' squares, after undoing each frame's camera shake, so
/// that the unprocessed clip scores 0 and everything measured is the processing's own doing.
pub fn flicker(clip: &Clip, frames: &[Rgb]) -> f32 {
    let margin = clip.spec.jitter.unsigned_abs() as i32;
    let (mut sum, mut n) = (0.0f64, 0usize);
    let steady: Vec<Rgb> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (dx, dy) = clip.shake(i);
            shift(f, (-dx, -dy))
        })
        .collect();
    for i in 1..steady.len() {
        for (x0, y0, side) in clip.sprites(i) {
            // The inner square (the face itself), away from the shaken border.
            let q = side as i32 / 4;
            for y in (y0 + q).max(margin)..(y0 + 3 * q).min(clip.spec.height as i32 - margin) {
                for x in (x0 + q).max(margin)..(x0 + 3 * q).min(clip.spec.width as i32 - margin) {
                    let k = (y as usize * clip.spec.width + x as usize) * 3;
                    for c in 0..3 {
                        sum += (steady[i].data[k + c] - steady[i - 1].data[k + c]).abs() as f64;
                        n += 1;
                    }
                }
            }
        }
    }
    if n == 0 { 0.0 } else { (sum / n as f64) as f32 }
}
