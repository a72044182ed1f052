//! Where the picture changed: a background model for static cameras. The frame's luma is
//! averaged over cells of `CELL x CELL` pixels (which also averages sensor noise away), each
//! cell keeps a slowly updated background value, and cells that differ from it by more than a
//! threshold are "moving". Neighbouring moving cells are grouped into rectangles: the places a
//! person who just walked into view can be.

use super::search::Rect;
use crate::frame::{Rgb, luma};

/// Side of a cell, pixels.
pub const CELL: usize = 8;
/// Luma difference (0..255, cell mean) above which a cell moved.
const THRESHOLD: f32 = 6.0;
/// How fast the background follows the picture (per update): slow enough that a person
/// standing still stays "moving" for a few seconds at 6 updates a second.
const LEARNING_RATE: f32 = 0.05;
/// Above this fraction of moving cells the whole picture changed (light switched, camera
/// moved): nothing is reported and the background starts over from this frame.
const GLOBAL_CHANGE: f32 = 0.3;

#[derive(Debug, Clone, Default)]
pub struct BackgroundModel {
    cols: usize,
    rows: usize,
    background: Vec<f32>,
}

impl BackgroundModel {
    /// Forgets the background (a new stream, a seek).
    pub fn reset(&mut self) {
        self.background.clear();
    }

    /// Takes a frame and returns the rectangles (frame pixels) of the groups of cells that
    /// differ from the background, leaving out cells that touch `known` (places already looked
    /// at, such as tracked faces). The first frame only sets the background.
    pub fn update(&mut self, frame: &Rgb, known: &[Rect]) -> Vec<Rect> {
        let means = cell_means(frame);
        let (cols, rows) = (frame.w / CELL, frame.h / CELL);
        if self.background.len() != means.len() || (self.cols, self.rows) != (cols, rows) {
            *self = Self { cols, rows, background: means };
            return Vec::new();
        }
        let mut moving: Vec<bool> =
            means.iter().zip(&self.background).map(|(m, b)| (m - b).abs() > THRESHOLD).collect();
        let count = moving.iter().filter(|&&m| m).count();
        if count as f32 > GLOBAL_CHANGE * moving.len() as f32 {
            self.background = means;
            return Vec::new();
        }
        for (b, m) in self.background.iter_mut().zip(&means) {
            *b += LEARNING_RATE * (m - *b);
        }
        for r in known {
            let (c0, r0) = (r.x / CELL, r.y / CELL);
            let (c1, r1) = (((r.x + r.w).div_ceil(CELL)).min(cols), ((r.y + r.h).div_ceil(CELL)).min(rows));
            for row in r0..r1 {
                moving[row * cols + c0.min(c1)..row * cols + c1].fill(false);
            }
        }
        groups(&moving, cols, rows)
            .into_iter()
            .map(|[c0, r0, c1, r1]| Rect {
                x: c0 * CELL,
                y: r0 * CELL,
                w: (c1 - c0 + 1) * CELL,
                h: (r1 - r0 + 1) * CELL,
            })
            .collect()
    }
}

/// Mean luma of each whole cell, row by row (a partial cell at the right or bottom edge is
/// left out).
fn cell_means(frame: &Rgb) -> Vec<f32> {
    let (cols, rows) = (frame.w / CELL, frame.h / CELL);
    let mut sums = vec![0.0f32; cols * rows];
    for y in 0..rows * CELL {
        let row = &frame.data[y * frame.w * 3..][..cols * CELL * 3];
        let sums = &mut sums[(y / CELL) * cols..][..cols];
        for (x, p) in row.chunks_exact(3).enumerate() {
            sums[x / CELL] += luma(p);
        }
    }
    let n = (CELL * CELL) as f32;
    sums.iter_mut().for_each(|s| *s /= n);
    sums
}

/// Bounding boxes `[c0, r0, c1, r1]` (inclusive cells) of the groups of moving cells, cells
/// one apart counted as touching (so a face whose inside matches the background, and changes
/// only at its edge, is one group).
fn groups(moving: &[bool], cols: usize, rows: usize) -> Vec<[usize; 4]> {
    let mut seen = vec![false; moving.len()];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..moving.len() {
        if !moving[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut b = [start % cols, start / cols, start % cols, start / cols];
        while let Some(i) = stack.pop() {
            let (c, r) = (i % cols, i / cols);
            b = [b[0].min(c), b[1].min(r), b[2].max(c), b[3].max(r)];
            for nr in r.saturating_sub(2)..(r + 3).min(rows) {
                for nc in c.saturating_sub(2)..(c + 3).min(cols) {
                    let j = nr * cols + nc;
                    if moving[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_with_square(x0: usize, y0: usize, side: usize, noise_seed: u32) -> Rgb {
        let mut f = Rgb::new(320, 240);
        let mut s = noise_seed.wrapping_mul(2654435761).max(1);
        for (i, v) in f.data.iter_mut().enumerate() {
            // Sensor noise of +-10 levels, different in every frame.
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let (x, y) = ((i / 3) % 320, (i / 3) / 320);
            let inside = (x0..x0 + side).contains(&x) && (y0..y0 + side).contains(&y);
            *v = if inside { 200.0 } else { 60.0 } + (s % 21) as f32 - 10.0;
        }
        f
    }

    #[test]
    fn a_moving_square_is_found_and_noise_is_not() {
        let mut m = BackgroundModel::default();
        assert!(m.update(&frame_with_square(40, 40, 24, 1), &[]).is_empty(), "the first frame sets the background");
        assert!(m.update(&frame_with_square(40, 40, 24, 2), &[]).is_empty(), "noise alone is no motion");
        let mut again = m.clone();
        let rects = m.update(&frame_with_square(200, 120, 24, 3), &[]);
        // The square appeared at (200, 120) and left (40, 40): two groups, each covering one.
        assert_eq!(rects.len(), 2, "{rects:?}");
        let covers = |r: &Rect, x: usize, y: usize| r.x <= x && r.y <= y && r.x + r.w >= x + 24 && r.y + r.h >= y + 24;
        assert!(rects.iter().any(|r| covers(r, 200, 120)), "{rects:?}");
        assert!(rects.iter().any(|r| covers(r, 40, 40)), "{rects:?}");
        assert!(rects.iter().all(|r| r.w <= 40 && r.h <= 40), "groups stay tight: {rects:?}");
        // What is already known (a tracked face) is left out.
        let known = Rect { x: 190, y: 110, w: 50, h: 50 };
        let rects = again.update(&frame_with_square(200, 120, 24, 3), &[known]);
        assert_eq!(rects.len(), 1, "{rects:?}");
        assert!(covers(&rects[0], 40, 40), "{rects:?}");
    }

    #[test]
    fn a_global_change_restarts_the_background() {
        let mut m = BackgroundModel::default();
        m.update(&frame_with_square(40, 40, 24, 1), &[]);
        let mut bright = frame_with_square(40, 40, 24, 2);
        bright.data.iter_mut().for_each(|v| *v += 40.0);
        assert!(m.update(&bright, &[]).is_empty(), "lights on: no motion reported");
        assert!(m.update(&bright, &[]).is_empty(), "and the new picture is the background");
    }
}
