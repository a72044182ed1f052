//! 3x3 convolutions by Winograd's F(4x4, 3x3): each 4x4 output tile costs 36 multiplications per
//! input/output channel pair instead of 144, as 36 independent matrix products between the
//! transformed input tiles and the transformed weights (computed once at load). Used where the
//! feature maps are large enough to give each thread many tiles; the transforms are those of
//! Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2016).

use rayon::prelude::*;

use super::act::{Act, Padded};
use super::conv::{Epilogue, matmul_serial};

const BT: [[f32; 6]; 6] = [
    [4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
    [0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
    [0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
    [0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
    [0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
    [0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
];
const G: [[f32; 3]; 6] = [
    [0.25, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];
const AT: [[f32; 6]; 4] = [
    [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
    [0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
    [0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
];

/// Tiles one task transforms and multiplies: enough rows for efficient products, few enough for
/// the buffers to stay in cache.
const TILES_PER_TASK: usize = 64;

/// A growable per-thread buffer.
#[derive(Default)]
struct Scratch(Vec<f32>);

impl Scratch {
    /// The first `n` floats, contents left over from earlier use.
    fn get(&mut self, n: usize) -> &mut [f32] {
        if self.0.len() < n {
            self.0.resize(n, 0.0);
        }
        &mut self.0[..n]
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// `dst += k * src`, the inner loop of every transform (vectorised over channels).
#[inline]
fn axpy(dst: &mut [f32], k: f32, src: &[f32]) {
    dst.iter_mut().zip(src).for_each(|(d, s)| *d += k * s);
}

pub struct Winograd {
    cin: usize,
    cout: usize,
    /// `[36][cin][cout]`: `G g G^T` for every channel pair.
    u: Vec<f32>,
}

impl Winograd {
    /// From 3x3 weights packed as `[kh][kw][ci][co]`.
    pub fn new(packed: &[f32], cin: usize, cout: usize) -> Self {
        let mut u = vec![0.0f32; 36 * cin * cout];
        for ci in 0..cin {
            for co in 0..cout {
                let g = |kh: usize, kw: usize| packed[((kh * 3 + kw) * cin + ci) * cout + co];
                for i in 0..6 {
                    let row: [f32; 3] = std::array::from_fn(|kw| (0..3).map(|kh| G[i][kh] * g(kh, kw)).sum());
                    for j in 0..6 {
                        u[((i * 6 + j) * cin + ci) * cout + co] = (0..3).map(|kw| row[kw] * G[j][kw]).sum();
                    }
                }
            }
        }
        Self { cin, cout, u }
    }

    /// Whether a padded input suits this path.
    pub fn applies(x: &Padded) -> bool {
        x.pad == 1 && x.h % 4 == 0 && x.w % 4 == 0 && x.w >= 16
    }

    pub fn forward(&self, x: &Padded, conv_bias: Option<&[f32]>, epi: &Epilogue) -> Act {
        assert!(Self::applies(x) && x.c == self.cin, "winograd input");
        let (n, h, w, c, co) = (x.n, x.h, x.w, x.c, self.cout);
        let (th, tw) = (h / 4, w / 4);
        // Whole rows of tiles per task, a divisor of the tile rows of one image, and at least
        // four tasks per image where the image has that many tile rows (two cores kept busy
        // even at batch 1).
        let mut rows = (TILES_PER_TASK / tw).clamp(1, (th / 4).max(1));
        while th % rows != 0 {
            rows -= 1;
        }
        let tasks_per_image = th / rows;
        let t = rows * tw;
        let pitch = w + 2;
        let mut out = Act::zeros(n, h, w, co);
        out.data.par_chunks_mut(rows * 4 * w * co).enumerate().for_each(|(task, dst)| {
            let (b, ty0) = (task / tasks_per_image, (task % tasks_per_image) * rows);
            let input = |py: usize, px: usize| &x.data[((b * (h + 2) + py) * pitch + px) * c..][..c];
            // Per-thread scratch, reused across tasks and layers: no allocation or page faults
            // per task.
            SCRATCH.with_borrow_mut(|scratch| {
                let buf = scratch.get(36 * t * c + 36 * c + 36 * t * co + 24 * co + co);
                let (v, rest) = buf.split_at_mut(36 * t * c);
                let (tmp, rest) = rest.split_at_mut(36 * c);
                let (m, rest) = rest.split_at_mut(36 * t * co);
                let (tmp_out, y) = rest.split_at_mut(24 * co);
                v.fill(0.0);
                // Input transform: V = B^T d B for every tile, stored as 36 matrices (t x c).
                for tile in 0..t {
                    let (py, px) = (4 * (ty0 + tile / tw), 4 * (tile % tw));
                    tmp.fill(0.0);
                    for a in 0..6 {
                        for j in 0..6 {
                            let acc = &mut tmp[(a * 6 + j) * c..][..c];
                            for i in 0..6 {
                                if BT[a][i] != 0.0 {
                                    axpy(acc, BT[a][i], input(py + i, px + j));
                                }
                            }
                        }
                    }
                    for a in 0..6 {
                        for bb in 0..6 {
                            let acc = &mut v[((a * 6 + bb) * t + tile) * c..][..c];
                            for j in 0..6 {
                                if BT[bb][j] != 0.0 {
                                    axpy(acc, BT[bb][j], &tmp[(a * 6 + j) * c..][..c]);
                                }
                            }
                        }
                    }
                }
                // 36 products (t x c) * (c x co).
                for xi in 0..36 {
                    let (mv, vv) = (&mut m[xi * t * co..][..t * co], &v[xi * t * c..][..t * c]);
                    matmul_serial(mv, t, co, c, vv, &self.u[xi * c * co..][..c * co]);
                }
                // Output transform: Y = A^T M A, then the epilogue per pixel.
                let tmp = tmp_out;
                for tile in 0..t {
                    let (tr, tx) = (tile / tw, tile % tw);
                    tmp.fill(0.0);
                    for a in 0..4 {
                        for j in 0..6 {
                            let acc = &mut tmp[(a * 6 + j) * co..][..co];
                            for i in 0..6 {
                                if AT[a][i] != 0.0 {
                                    axpy(acc, AT[a][i], &m[((i * 6 + j) * t + tile) * co..][..co]);
                                }
                            }
                        }
                    }
                    for a in 0..4 {
                        for bb in 0..4 {
                            y.fill(0.0);
                            for j in 0..6 {
                                if AT[bb][j] != 0.0 {
                                    axpy(y, AT[bb][j], &tmp[(a * 6 + j) * co..][..co]);
                                }
                            }
                            let (oy, ox) = (4 * (ty0 + tr) + a, 4 * tx + bb);
                            let local = ((4 * tr + a) * w + ox) * co;
                            epi.pixel(conv_bias, (b, oy, ox), (h, w), y, &mut dst[local..local + co]);
                        }
                    }
                }
            });
        });
        out
    }
}
