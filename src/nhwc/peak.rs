//! This machine's matrix-product peak, which the benchmark reports beside the engine's speed.

use std::time::{Duration, Instant};

use super::kernel::{PackedB, matmul_packed, padded_k, padded_rows};

/// GFLOP/s of the Winograd stage's micro-kernel on a product that stays in cache (66 x 256 x
/// 256, a block of tiles of a 256-channel layer), run on every thread of the current pool at
/// once for about `seconds`: the most the engine's multiplications can reach here.
pub fn kernel_peak_gflops(seconds: f64) -> f64 {
    let (m, k, n) = (66, 256, 256);
    let start = Instant::now();
    let flops: f64 = rayon::broadcast(|_| {
        let a = vec![0.5f32; padded_rows(m) * padded_k(k)];
        let b = PackedB::new(&vec![0.25f32; k * n], k, n);
        let mut c = vec![0.0f32; m * n];
        let (mut done, until) = (0.0, Instant::now() + Duration::from_secs_f64(seconds));
        while Instant::now() < until {
            matmul_packed(&mut c, n, m, &a, &b);
            done += 2.0 * (m * k * n) as f64;
        }
        std::hint::black_box(&c);
        done
    })
    .into_iter()
    .sum();
    flops / start.elapsed().as_secs_f64() / 1e9
}

/// GFLOP/s of the general `gemm` crate on one 2048^3 product over the current pool (the best of
/// three).
pub fn sgemm_gflops() -> f64 {
    let s = 2048;
    let (a, b, mut c) = (vec![0.5f32; s * s], vec![0.25f32; s * s], vec![0.0f32; s * s]);
    let best = (0..3)
        .map(|_| {
            let start = Instant::now();
            // SAFETY: every matrix is s x s, row-major.
            unsafe {
                gemm::gemm(
                    s,
                    s,
                    s,
                    c.as_mut_ptr(),
                    1,
                    s as isize,
                    false,
                    a.as_ptr(),
                    1,
                    s as isize,
                    b.as_ptr(),
                    1,
                    s as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::Rayon(rayon::current_num_threads()),
                )
            };
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    2.0 * (s * s * s) as f64 / best / 1e9
}
