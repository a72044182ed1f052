//! `gfpgan bench`: time the forward pass.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::Tensor;
use gfpgan::{Error, NoiseMode, Restorer, Result};

use super::common::{Inputs, RunArgs, check_arg, read_faces};

/// Most faces per timed pass (each 512 face takes about 0.45 GB on the CPU, see BENCHMARKS.md).
const MAX_BATCH: usize = 256;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    weights: PathBuf,
    /// Faces per forward pass.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Timed passes (after one untimed warm-up pass).
    #[arg(long, default_value_t = 3)]
    iters: usize,
    #[command(flatten)]
    run: RunArgs,
    /// Faces to run instead of random ones: an (N, 3, S, S) float32 .npy; the first
    /// `--batch` faces are used.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Also measure this machine's matrix-product peak (the engine's micro-kernel in cache,
    /// and the `gemm` crate on 2048^3) and report the engine's speed against it.
    #[arg(long)]
    peak: bool,
    /// Write the restored faces of the last pass here (to compare with another engine).
    #[arg(long)]
    output: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    // The random faces are allocated up front: a wild --batch would abort on allocation.
    check_arg((1..=MAX_BATCH).contains(&args.batch), "batch", &format!("in 1..={MAX_BATCH}"), args.batch)?;
    check_arg(args.iters >= 1, "iters", "at least 1", args.iters)?;
    if let Some(output) = &args.output {
        let reads = [Some(args.weights.as_path()), args.input.as_deref()];
        Inputs::new(reads.into_iter().flatten()).check(output)?;
    }
    let restorer = args.run.load(&args.weights)?;
    let batch = args.batch;
    let faces = bench_faces(&restorer, args.input.as_deref(), batch)?;
    let mut restored = restorer.restore(&faces, NoiseMode::Stored)?; // warm-up
    let mut times = Vec::with_capacity(args.iters);
    for _ in 0..args.iters {
        let start = Instant::now();
        restored = restorer.restore(&faces, NoiseMode::Stored)?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let per_face = median / batch as f64;
    let gflop = restorer.config().flops_per_face() / 1e9;
    println!(
        "gfpgan-rs {:?} engine, {:?} {:?}, batch {batch}: {per_face:.3} s/face (median of {}; min {:.3}, max {:.3} s/pass), \
         {:.2} faces/s, {:.1} GFLOP/face, {:.1} GFLOP/s",
        restorer.engine(),
        restorer.device().location(),
        restorer.dtype(),
        times.len(),
        times[0],
        times[times.len() - 1],
        1.0 / per_face,
        gflop,
        gflop / per_face
    );
    if args.peak {
        print_peak(&restorer, per_face);
    }
    if let Some(output) = args.output {
        gfpgan::npy::write(&output, &restored)?;
    }
    Ok(())
}

/// The first `batch` faces of `input`, or random ones.
fn bench_faces(restorer: &Restorer, input: Option<&std::path::Path>, batch: usize) -> Result<Tensor> {
    let size = restorer.config().out_size;
    match input {
        Some(path) => {
            let all = read_faces(path, restorer)?;
            if all.dim(0)? < batch {
                return Err(Error::format(path, format!("has {} faces, --batch is {batch}", all.dim(0)?)));
            }
            Ok(all.narrow(0, 0, batch)?)
        }
        None => Ok(Tensor::rand(-1f32, 1f32, (batch, 3, size, size), &candle_core::Device::Cpu)?),
    }
}

fn print_peak(restorer: &Restorer, per_face: f64) {
    let executed_gflop = restorer.executed_flops_per_face() / 1e9;
    let executed = executed_gflop / per_face;
    let kernel = gfpgan::nhwc::kernel_peak_gflops(2.0);
    let sgemm = gfpgan::nhwc::sgemm_gflops();
    println!(
        "peak on {} threads: engine micro-kernel in cache {kernel:.1} GFLOP/s, gemm crate 2048^3 {sgemm:.1} \
         GFLOP/s; this pass executed {:.1} GFLOP/face of multiplications at {executed:.1} GFLOP/s \
         ({:.0}% of the micro-kernel's peak)",
        rayon::current_num_threads(),
        executed_gflop,
        100.0 * executed / kernel
    );
}
