//! 3x3 convolutions by Winograd's F(4x4, 3x3): each 4x4 output tile costs 36 multiplications per
//! input/output channel pair instead of 144, as 36 independent matrix products between the
//! transformed input tiles and the transformed weights (computed and packed once at load). The
//! transforms are those of Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks"
//! (2016), written out as the few additions they need.
//!
//! The work is split into blocks of tiles small enough to stay in cache. Each block reads its
//! input through `Input` (so upsampling, style scaling and zero padding happen on the way in,
//! into a small band buffer), transforms it, multiplies, transforms back and finishes every
//! output pixel with the epilogue, writing the output once.

use std::cell::RefCell;

use rayon::prelude::*;

use super::act::{Act, Input};
use super::cpu;
use super::epilogue::Epilogue;
use super::kernel::{KC, PackedB, a_offset, matmul_packed, padded_k, padded_rows};

const G: [[f32; 3]; 6] = [
    [0.25, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// Tiles one block transforms and multiplies: enough rows for efficient products, few enough for
/// the buffers to stay in cache.
const BLOCK_TILES: usize = 64;
/// Channels the transforms handle at once (one AVX register; the product's chunk).
const LANES: usize = KC;

/// Per-thread buffers, reused across blocks and layers.
#[derive(Default)]
struct Scratch {
    band: Vec<f32>,
    v: Vec<f32>,
    m: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The first `n` floats of `buf`, grown if needed; contents left over from earlier use.
fn prefix(buf: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if buf.len() < n {
        buf.resize(n, 0.0);
    }
    &mut buf[..n]
}

type Lanes<const L: usize> = [f32; L];

/// # Safety
/// `p` must be valid for reads of `L` floats.
#[inline(always)]
unsafe fn load<const L: usize>(p: *const f32) -> Lanes<L> {
    unsafe { p.cast::<Lanes<L>>().read_unaligned() }
}

/// # Safety
/// `p` must be valid for writes of `L` floats.
#[inline(always)]
unsafe fn store<const L: usize>(p: *mut f32, v: Lanes<L>) {
    unsafe { p.cast::<Lanes<L>>().write_unaligned(v) }
}

#[inline(always)]
fn lanes<const L: usize>(f: impl Fn(usize) -> f32) -> Lanes<L> {
    std::array::from_fn(f)
}

/// `B^T d` for six values (one column or row of an input tile), lane by lane.
#[inline(always)]
fn input_1d<const L: usize>(d: &[Lanes<L>; 6]) -> [Lanes<L>; 6] {
    let [d0, d1, d2, d3, d4, d5] = d;
    [
        lanes(|l| 4.0 * d0[l] - 5.0 * d2[l] + d4[l]),
        lanes(|l| (d4[l] + d3[l]) - 4.0 * (d1[l] + d2[l])),
        lanes(|l| (d4[l] - d3[l]) + 4.0 * (d1[l] - d2[l])),
        lanes(|l| (d4[l] - d2[l]) + 2.0 * (d3[l] - d1[l])),
        lanes(|l| (d4[l] - d2[l]) - 2.0 * (d3[l] - d1[l])),
        lanes(|l| 4.0 * d1[l] - 5.0 * d3[l] + d5[l]),
    ]
}

/// `A^T m` for six values, giving four.
#[inline(always)]
fn output_1d<const L: usize>(m: &[Lanes<L>; 6]) -> [Lanes<L>; 4] {
    let [m0, m1, m2, m3, m4, m5] = m;
    let sum12: Lanes<L> = lanes(|l| m1[l] + m2[l]);
    let dif12: Lanes<L> = lanes(|l| m1[l] - m2[l]);
    let sum34: Lanes<L> = lanes(|l| m3[l] + m4[l]);
    let dif34: Lanes<L> = lanes(|l| m3[l] - m4[l]);
    [
        lanes(|l| m0[l] + sum12[l] + sum34[l]),
        lanes(|l| dif12[l] + 2.0 * dif34[l]),
        lanes(|l| sum12[l] + 4.0 * sum34[l]),
        lanes(|l| dif12[l] + 8.0 * dif34[l] + m5[l]),
    ]
}

/// `V = B^T d B` for `L` channels of one tile: input pixel `(i, j)` of the tile at
/// `d + i * pitch + j * c`, element `xi` of the result to `v + xi * plane`.
///
/// # Safety
/// Those reads and writes must be in bounds.
#[inline(always)]
unsafe fn input_tile<const L: usize>(d: *const f32, pitch: usize, c: usize, v: *mut f32, plane: usize) {
    let mut t = [[[0.0f32; L]; 6]; 6];
    for j in 0..6 {
        // SAFETY: in bounds by the caller's guarantee.
        let column = std::array::from_fn(|i| unsafe { load(d.add(i * pitch + j * c)) });
        for (a, val) in input_1d(&column).into_iter().enumerate() {
            t[a][j] = val;
        }
    }
    for (a, row) in t.iter().enumerate() {
        for (bb, val) in input_1d(row).into_iter().enumerate() {
            // SAFETY: as above.
            unsafe { store(v.add((a * 6 + bb) * plane), val) };
        }
    }
}

/// `Y = A^T M A` for `L` channels of one tile: element `xi` of the products at
/// `m + xi * plane`, output pixel `(a, b)` to `out + a * pitch + b * co`.
///
/// # Safety
/// Those reads and writes must be in bounds.
#[inline(always)]
unsafe fn output_tile<const L: usize>(m: *const f32, plane: usize, out: *mut f32, pitch: usize, co: usize) {
    let mut s = [[[0.0f32; L]; 6]; 4];
    for j in 0..6 {
        // SAFETY: in bounds by the caller's guarantee.
        let column = std::array::from_fn(|i| unsafe { load(m.add((i * 6 + j) * plane)) });
        for (a, val) in output_1d(&column).into_iter().enumerate() {
            s[a][j] = val;
        }
    }
    for (a, row) in s.iter().enumerate() {
        for (bb, val) in output_1d(row).into_iter().enumerate() {
            // SAFETY: as above.
            unsafe { store(out.add(a * pitch + bb * co), val) };
        }
    }
}

/// Where the channels stop being handled `LANES` at a time (the rest go one by one).
fn full_lanes(c: usize) -> usize {
    c / LANES * LANES
}

pub struct Winograd {
    cin: usize,
    cout: usize,
    /// `G g G^T` for every channel pair, one packed `cin x cout` matrix per element.
    u: Vec<PackedB>,
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
        let u = u.chunks_exact(cin * cout).map(|m| PackedB::new(m, cin, cout)).collect();
        Self { cin, cout, u }
    }

    /// Whether an output of this size suits this path: whole tiles, and rows long enough to give
    /// the products some height.
    pub fn applies(h: usize, w: usize) -> bool {
        h % 4 == 0 && w % 4 == 0 && w >= 16
    }

    pub fn forward(&self, x: &Input, conv_bias: Option<&[f32]>, epi: &Epilogue) -> Act {
        let (n, h, w, co) = (x.src.n, x.h(), x.w(), self.cout);
        assert!(Self::applies(h, w) && x.src.c == self.cin, "winograd input");
        let (th, tw) = (h / 4, w / 4);
        // A task is `rows` tile rows of one image (a contiguous part of the output): about a
        // block's worth, fewer where that leaves fewer than four tasks per thread.
        let threads = rayon::current_num_threads();
        let mut rows = (BLOCK_TILES / tw).clamp(1, th).min((n * th / (4 * threads)).max(1));
        while th % rows != 0 {
            rows -= 1;
        }
        let tasks_per_image = th / rows;
        let mut out = Act::for_overwrite(n, h, w, co);
        out.data.par_chunks_mut(4 * rows * w * co).enumerate().for_each(|(task, dst)| {
            let (b, ty0) = (task / tasks_per_image, (task % tasks_per_image) * rows);
            let cols = (BLOCK_TILES / rows).clamp(1, tw);
            SCRATCH.with_borrow_mut(|scratch| {
                for tx0 in (0..tw).step_by(cols) {
                    let block = Block { b, ty0, rows, tx0, cols: cols.min(tw - tx0) };
                    block_tiles(&Layer { wino: self, x, bias: conv_bias, epi }, &block, scratch, dst);
                }
            });
        });
        out
    }
}

cpu::avx2_fma! {
    /// Computes one block of tiles into `dst`, the task's output rows (the AVX2 copy vectorises
    /// the transforms and the epilogue 8 wide).
    fn block_tiles(layer: &Layer, blk: &Block, s: &mut Scratch, dst: &mut [f32]) {
        let Layer { wino, x, bias, epi } = *layer;
        let (c, co, h, w) = (wino.cin, wino.cout, x.h(), x.w());
        let tiles = blk.rows * blk.cols;
        // The block's input: 4 rows + 2 per tile row, 4 pixels + 2 per tile column, starting one
        // pixel above and left of its first output pixel (zero padding included).
        let (band_h, band_w) = (4 * blk.rows + 2, 4 * blk.cols + 2);
        let pitch = band_w * c;
        let band = prefix(&mut s.band, band_h * pitch);
        for (r, row) in band.chunks_exact_mut(pitch).enumerate() {
            x.read_row(blk.b, (4 * blk.ty0 + r) as isize - 1, (4 * blk.tx0) as isize - 1, row);
        }
        // The transformed tiles, one blocked left-hand matrix (tiles x c) per element.
        let cp = padded_k(c);
        let plane = padded_rows(tiles) * cp;
        let v = prefix(&mut s.v, 36 * plane);
        for t in 0..tiles {
            let origin = 4 * (t / blk.cols) * pitch + 4 * (t % blk.cols) * c;
            // Bounds of every access below: the tile's last input pixel, its last element.
            assert!(origin + 5 * pitch + 6 * c <= band.len() && 35 * plane + a_offset(t, cp - 1, cp) < v.len());
            let (d, vt) = (band[origin..].as_ptr(), v.as_mut_ptr());
            // SAFETY: checked above; a chunk of KC channels from a multiple of KC is contiguous.
            unsafe {
                for k in (0..full_lanes(c)).step_by(LANES) {
                    input_tile::<LANES>(d.add(k), pitch, c, vt.add(a_offset(t, k, cp)), plane);
                }
                for k in full_lanes(c)..c {
                    input_tile::<1>(d.add(k), pitch, c, vt.add(a_offset(t, k, cp)), plane);
                }
            }
            // Padded channels must be zero (they meet the zero rows of the packed weights).
            for k in c..cp {
                (0..36).for_each(|xi| v[xi * plane + a_offset(t, k, cp)] = 0.0);
            }
        }
        let m = prefix(&mut s.m, 36 * tiles * co);
        for (xi, u) in wino.u.iter().enumerate() {
            matmul_packed(&mut m[xi * tiles * co..][..tiles * co], co, tiles, &v[xi * plane..][..plane], u);
        }
        let out_pitch = w * co;
        for t in 0..tiles {
            let (tr, tc) = (t / blk.cols, t % blk.cols);
            let (oy, ox) = (4 * tr, 4 * (blk.tx0 + tc));
            let out = &mut dst[oy * out_pitch + ox * co..];
            let plane = tiles * co;
            assert!(3 * out_pitch + 4 * co <= out.len() && 35 * plane + (t + 1) * co <= m.len());
            let (mt, o) = (m[t * co..].as_ptr(), out.as_mut_ptr());
            // SAFETY: checked above.
            unsafe {
                for k in (0..full_lanes(co)).step_by(LANES) {
                    output_tile::<LANES>(mt.add(k), plane, o.add(k), out_pitch, co);
                }
                for k in full_lanes(co)..co {
                    output_tile::<1>(mt.add(k), plane, o.add(k), out_pitch, co);
                }
            }
            for a in 0..4 {
                for bb in 0..4 {
                    let px = &mut out[a * out_pitch + bb * co..][..co];
                    epi.apply(bias, (blk.b, 4 * blk.ty0 + oy + a, ox + bb), (h, w), px);
                }
            }
        }
    }
}

/// What every block of one convolution reads: its weights, its input, the convolution's own
/// bias, the epilogue.
#[derive(Clone, Copy)]
struct Layer<'a> {
    wino: &'a Winograd,
    x: &'a Input<'a>,
    bias: Option<&'a [f32]>,
    epi: &'a Epilogue<'a>,
}

/// `rows x cols` tiles of image `b` from tile `(ty0, tx0)`.
struct Block {
    b: usize,
    ty0: usize,
    rows: usize,
    tx0: usize,
    cols: usize,
}
