//! A matrix product for the Winograd stage, whose right-hand matrices (the transformed weights)
//! are fixed: they are packed once at load into the layout the micro-kernel reads, and the
//! left-hand matrices (the transformed input tiles) are written by the input transform directly
//! in the layout the micro-kernel reads, so no call packs anything.
//!
//! The micro-kernel keeps a 6 x 16 block of the product in twelve AVX registers: per step of
//! the inner dimension it loads 16 weights and broadcasts 6 left-hand values (12 fused
//! multiply-adds). On the 2-core development VM it sustains 72-85 GFLOP/s per core against a
//! measured FMA peak of 88-90, where the general `gemm` crate reached 47-60 on the same shapes
//! (it packs both operands on every call). Without AVX2 and FMA a portable version of the same
//! loop runs.
//!
//! Layouts, with the inner dimension `k` padded to a multiple of `KC` and rows to one of `MR`:
//! - left-hand `m x k`: blocks of `MR` rows, each as `k / KC` chunks of `MR x KC` (row-major
//!   within the chunk), see `a_offset`;
//! - right-hand `k x n`: panels of `NR` columns, each `k` rows of `NR` floats.
//!
//! Padded columns of the left-hand matrix must be zero (they meet zero rows of the right-hand
//! one); padded rows may hold anything, their products are computed and dropped.

use super::cpu;

/// Rows and columns of the block the micro-kernel computes, and the inner dimension's chunk.
const MR: usize = 6;
const NR: usize = 16;
pub const KC: usize = 8;

/// `k` rounded up to whole chunks.
pub fn padded_k(k: usize) -> usize {
    k.div_ceil(KC) * KC
}

/// `m` rounded up to whole row blocks.
pub fn padded_rows(m: usize) -> usize {
    m.div_ceil(MR) * MR
}

/// Where element `(row, col)` of a left-hand matrix with `kp` (padded) columns lives. Elements
/// `col .. col + KC` of a row are contiguous when `col` is a multiple of `KC`.
#[inline(always)]
pub fn a_offset(row: usize, col: usize, kp: usize) -> usize {
    (row / MR) * MR * kp + (col / KC) * (MR * KC) + (row % MR) * KC + col % KC
}

/// A `k x n` right-hand matrix in panels of `NR` columns, zero-padded to `padded_k(k)` rows
/// and whole panels.
pub struct PackedB {
    kp: usize,
    n: usize,
    data: Vec<f32>,
}

impl PackedB {
    /// From a row-major `k x n` matrix.
    pub fn new(b: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(b.len(), k * n);
        let (kp, panels) = (padded_k(k), n.div_ceil(NR));
        let mut data = vec![0.0f32; panels * kp * NR];
        for (p, panel) in data.chunks_exact_mut(kp * NR).enumerate() {
            let cols = NR.min(n - p * NR);
            for (row, dst) in panel.chunks_exact_mut(NR).take(k).enumerate() {
                dst[..cols].copy_from_slice(&b[row * n + p * NR..][..cols]);
            }
        }
        Self { kp, n, data }
    }
}

/// `dst (m x n, row stride ldc) = a * b`, `a` in the blocked left-hand layout with
/// `padded_rows(m)` rows; on the calling thread.
pub fn matmul_packed(dst: &mut [f32], ldc: usize, m: usize, a: &[f32], b: &PackedB) {
    let n = b.n;
    assert!(m > 0 && ldc >= n && a.len() >= padded_rows(m) * b.kp && dst.len() >= (m - 1) * ldc + n);
    // Not declared through `cpu::avx2_fma!`: the AVX2 path is its own code (intrinsics, whole
    // blocks kept in registers), not the portable loop compiled for wider instructions.
    #[cfg(target_arch = "x86_64")]
    if cpu::has_avx2_fma() {
        // SAFETY: the CPU has the features; the sizes were checked above.
        unsafe { avx2::matmul(dst, ldc, m, a, b) };
        return;
    }
    portable(dst, ldc, m, a, b);
}

/// Copies the valid `rows x cols` part of a computed block into `dst`.
fn store_block(dst: &mut [f32], ldc: usize, block: &[[f32; NR]; MR], rows: usize, cols: usize) {
    for (r, vals) in block.iter().enumerate().take(rows) {
        dst[r * ldc..][..cols].copy_from_slice(&vals[..cols]);
    }
}

fn portable(dst: &mut [f32], ldc: usize, m: usize, a: &[f32], b: &PackedB) {
    let (kp, n) = (b.kp, b.n);
    for (p, panel) in b.data.chunks_exact(kp * NR).enumerate() {
        for (blk, a) in a.chunks_exact(kp * MR).take(m.div_ceil(MR)).enumerate() {
            let mut acc = [[0.0f32; NR]; MR];
            for (chunk, bv) in a.chunks_exact(MR * KC).zip(panel.chunks_exact(KC * NR)) {
                for kk in 0..KC {
                    for r in 0..MR {
                        let av = chunk[r * KC + kk];
                        for j in 0..NR {
                            acc[r][j] += av * bv[kk * NR + j];
                        }
                    }
                }
            }
            let (rows, cols) = (MR.min(m - blk * MR), NR.min(n - p * NR));
            store_block(&mut dst[blk * MR * ldc + p * NR..], ldc, &acc, rows, cols);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{KC, MR, NR, PackedB, store_block};

    /// # Safety
    /// The CPU must support AVX2 and FMA; `dst` must hold the `m x n` product at stride `ldc`,
    /// `a` the blocked left-hand matrix of `m` rows (see `matmul_packed`).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn matmul(dst: &mut [f32], ldc: usize, m: usize, a: &[f32], b: &PackedB) {
        let (kp, n) = (b.kp, b.n);
        for (p, panel) in b.data.chunks_exact(kp * NR).enumerate() {
            let cols = NR.min(n - p * NR);
            for (blk, a) in a.chunks_exact(kp * MR).take(m.div_ceil(MR)).enumerate() {
                let rows = MR.min(m - blk * MR);
                let out = &mut dst[blk * MR * ldc + p * NR..];
                // SAFETY: `a` holds kp / KC chunks of MR x KC floats, `panel` kp rows of NR.
                let acc = unsafe { block(kp / KC, a.as_ptr(), panel.as_ptr()) };
                if rows == MR && cols == NR {
                    for (r, v) in acc.iter().enumerate() {
                        // SAFETY: a full block lies inside `dst` (checked by the caller).
                        unsafe {
                            _mm256_storeu_ps(out.as_mut_ptr().add(r * ldc), v[0]);
                            _mm256_storeu_ps(out.as_mut_ptr().add(r * ldc + 8), v[1]);
                        }
                    }
                } else {
                    let mut vals = [[0.0f32; NR]; MR];
                    for (r, v) in acc.iter().enumerate() {
                        // SAFETY: each row of `vals` holds 16 floats.
                        unsafe {
                            _mm256_storeu_ps(vals[r].as_mut_ptr(), v[0]);
                            _mm256_storeu_ps(vals[r].as_mut_ptr().add(8), v[1]);
                        }
                    }
                    store_block(out, ldc, &vals, rows, cols);
                }
            }
        }
    }

    /// One `MR x NR` block over the whole inner dimension, `chunks` steps of `KC`.
    #[inline(always)]
    unsafe fn block(chunks: usize, mut a: *const f32, mut b: *const f32) -> [[__m256; 2]; MR] {
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); 2]; MR];
            for _ in 0..chunks {
                for kk in 0..KC {
                    let (b0, b1) = (_mm256_loadu_ps(b), _mm256_loadu_ps(b.add(8)));
                    for (r, row) in acc.iter_mut().enumerate() {
                        let ar = _mm256_broadcast_ss(&*a.add(r * KC + kk));
                        row[0] = _mm256_fmadd_ps(ar, b0, row[0]);
                        row[1] = _mm256_fmadd_ps(ar, b1, row[1]);
                    }
                    b = b.add(NR);
                }
                a = a.add(MR * KC);
            }
            acc
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_match_a_plain_triple_loop_on_ragged_shapes() {
        for (m, k, n) in [(1, 1, 1), (5, 3, 7), (6, 16, 16), (13, 37, 35), (64, 64, 48)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 31.0).collect();
            let kp = padded_k(k);
            // Padded rows hold garbage, padded columns zeros.
            let mut blocked = vec![f32::NAN; padded_rows(m) * kp];
            for r in 0..padded_rows(m) {
                for col in 0..kp {
                    if col >= k {
                        blocked[a_offset(r, col, kp)] = 0.0;
                    } else if r < m {
                        blocked[a_offset(r, col, kp)] = a[r * k + col];
                    }
                }
            }
            let packed = PackedB::new(&b, k, n);
            // A wider destination (stride n + 3) whose extra columns must stay untouched.
            let ldc = n + 3;
            let mut got = vec![-9.0f32; m * ldc];
            matmul_packed(&mut got, ldc, m, &blocked, &packed);
            let mut got_portable = vec![-9.0f32; m * ldc];
            portable(&mut got_portable, ldc, m, &blocked, &packed);
            for i in 0..m {
                for j in 0..ldc {
                    let (g, gp) = (got[i * ldc + j], got_portable[i * ldc + j]);
                    if j < n {
                        let w: f32 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                        assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{m}x{k}x{n} [{i},{j}]: {g} vs {w}");
                        assert!((gp - w).abs() <= 1e-4 * (1.0 + w.abs()), "portable [{i},{j}]: {gp} vs {w}");
                    } else {
                        assert_eq!((g, gp), (-9.0, -9.0), "column {j} beyond n was written");
                    }
                }
            }
        }
    }
}
