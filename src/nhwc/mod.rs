//! A faster CPU engine for GFPGANv1Clean: NHWC activations, convolutions as matrix products on
//! weights packed once at load (no im2col buffers), and bias, demodulation, noise, activation and
//! residual fused into one pass after each convolution. It mirrors `crate::model` module for
//! module and is checked against the same parity fixtures.
//!
//! Each module uses only those listed before it: `pool` and `cpu` (buffers, CPU features), `act`
//! (activations and resampling), `kernel` (the packed matrix product), `epilogue`, `winograd`,
//! `conv`, `network`; `peak` measures `kernel`. The face-api feature extractor's CPU path
//! (`faceapi::fast`) uses `kernel` too.

mod act;
mod conv;
mod cpu;
mod epilogue;
pub(crate) mod kernel;
mod network;
mod peak;
mod pool;
mod winograd;

pub use act::Act;
pub use network::{Network, Output};
pub use peak::{kernel_peak_gflops, sgemm_gflops};
