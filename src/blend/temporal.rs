//! Temporal blending of restored faces in aligned space: each track's output is mixed with its
//! previous output, so that what changes little between frames (the aligned crop, once the
//! landmarks are smoothed) stays still instead of shimmering with the network's small reactions
//! to noise in the input.

use std::collections::HashMap;

use crate::frame::Rgb;

#[derive(Debug, Default)]
pub struct TemporalBlender {
    previous: HashMap<u64, Rgb>,
}

impl TemporalBlender {
    /// `restored = (1 - weight) * restored + weight * previous` for this track (nothing on its
    /// first frame or after a size change), then remembers the result.
    pub fn blend(&mut self, track: u64, restored: &mut Rgb, weight: f32) {
        let weight = weight.clamp(0.0, 1.0);
        if let Some(prev) = self.previous.get(&track).filter(|p| (p.w, p.h) == (restored.w, restored.h)) {
            if weight > 0.0 {
                restored.data.iter_mut().zip(&prev.data).for_each(|(r, p)| *r += weight * (p - *r));
            }
        }
        self.previous.insert(track, restored.clone());
    }

    /// Forgets the tracks `keep` rejects (ended tracks).
    pub fn retain(&mut self, keep: impl Fn(u64) -> bool) {
        self.previous.retain(|id, _| keep(*id));
    }

    pub fn clear(&mut self) {
        self.previous.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(v: f32) -> Rgb {
        Rgb { w: 2, h: 2, data: vec![v; 12] }
    }

    #[test]
    fn blends_with_the_previous_output_of_the_same_track_only() {
        let mut b = TemporalBlender::default();
        let mut first = flat(100.0);
        b.blend(1, &mut first, 0.5);
        assert_eq!(first, flat(100.0), "nothing to blend with on a track's first frame");
        let mut second = flat(0.0);
        b.blend(1, &mut second, 0.5);
        assert_eq!(second, flat(50.0));
        let mut other = flat(0.0);
        b.blend(2, &mut other, 0.5);
        assert_eq!(other, flat(0.0), "another track starts fresh");
        let mut unsmoothed = flat(10.0);
        b.blend(1, &mut unsmoothed, 0.0);
        assert_eq!(unsmoothed, flat(10.0));
        b.retain(|id| id == 2);
        assert_eq!(b.len(), 1);
    }
}
