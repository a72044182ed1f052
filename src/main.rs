//! `gfpgan`: the command line. This file parses and dispatches; each subcommand lives in
//! `cli/`, and everything that is not about the command line lives in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(name = "gfpgan", version, about = "GFP-GAN blind face restoration")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the network on an (N, 3, S, S) float32 .npy array of aligned faces, RGB in [-1, 1].
    Forward(cli::forward::Args),
    /// Time the forward pass on random faces: seconds per face, faces per second, GFLOP/s.
    Bench(cli::bench::Args),
    /// Print the configuration inferred from a checkpoint and its parameter count.
    Inspect(cli::inspect::Args),
    /// Write a checkpoint with random weights (for benchmarks and offline demos; restores nothing).
    InitRandom(cli::init_random::Args),
    /// Restore the faces of photos (files or folders of jpg/png/webp): detect, align, restore, paste.
    Restore(cli::restore::Args),
    /// Detect faces, their landmarks and expressions, without restoring; one JSON line per image.
    Analyze(cli::analyze::Args),
    /// Align the faces of photos to the FFHQ template, one PNG each (for eval, restore --aligned).
    Align(cli::align::Args),
    /// Make a training dataset: faces aligned from photos (or taken aligned), and the squares of
    /// their eyes and mouth (components.json).
    PrepareData(cli::prepare_data::Args),
    /// Train GFPGANv1Clean (or fine-tune a checkpoint) from a TOML config: losses, checkpoints,
    /// validation, loss curve; --resume continues a run.
    Train(cli::train::Args),
    /// Degrade a clean image the way GFP-GAN's training does (blur, downscale, noise, JPEG).
    Degrade(cli::degrade::Args),
    /// Render a synthetic test clip from photos (faces on a grid, drifting, camera shake,
    /// degraded) as numbered PNG frames.
    Clip(cli::clip::Args),
    /// Measure flicker on a clip of still faces under camera shake: the element's engine with
    /// and without temporal smoothing, and the official per-frame recipe.
    Flicker(cli::flicker::Args),
    /// Measure restoration quality on aligned faces with ground truth (PSNR, SSIM, NIQE, identity
    /// and landmark distances), beside two baselines; writes metrics.json, report.md, grid.png.
    Eval(cli::eval::Args),
    /// Measure how steady a restored clip is against its input (flicker, landmark jitter,
    /// identity consistency inside the tracked faces); video files or frame folders.
    EvalVideo(cli::eval_video::Args),
    /// Time the video analysis step (detection, landmarks, tracking) on a synthetic clip of
    /// faces of known size and place, and measure how many of them it finds.
    BenchTracking(cli::bench_tracking::Args),
    /// Measure how far the landmarks of small faces drift from those of the same faces at full
    /// size (the photos' faces shrunk), in eye distances.
    BenchLandmarks(cli::bench_landmarks::Args),
    /// Restore several camera streams in one process, through one shared network or a network
    /// each: faces per second, the passes run and peak memory.
    BenchStreams(cli::bench_streams::Args),
    /// Serve the network on the Open Inference Protocol (KServe v2, Triton's): HTTP and gRPC,
    /// dynamic batching across requests, /v1/restore and /v1/analyze for photos, /metrics.
    Serve(cli::serve::Args),
    /// Load-test `gfpgan serve` on loopback: N gRPC clients for a fixed time, every answer
    /// checked against its request; throughput, latency percentiles, the passes formed.
    BenchServe(cli::bench_serve::Args),
    /// Convert a checkpoint (.pth or .safetensors) to .safetensors after checking it.
    Convert(cli::convert::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Forward(args) => cli::forward::run(args),
        Command::Bench(args) => cli::bench::run(args),
        Command::Inspect(args) => cli::inspect::run(args),
        Command::InitRandom(args) => cli::init_random::run(args),
        Command::Restore(args) => cli::restore::run(args),
        Command::Analyze(args) => cli::analyze::run(args),
        Command::Align(args) => cli::align::run(args),
        Command::PrepareData(args) => cli::prepare_data::run(args),
        Command::Train(args) => cli::train::run(args),
        Command::Degrade(args) => cli::degrade::run(args),
        Command::Clip(args) => cli::clip::run(args),
        Command::Flicker(args) => cli::flicker::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::EvalVideo(args) => cli::eval_video::run(args),
        Command::Convert(args) => cli::convert::run(args),
        Command::BenchTracking(args) => cli::bench_tracking::run(args),
        Command::BenchLandmarks(args) => cli::bench_landmarks::run(args),
        Command::BenchStreams(args) => cli::bench_streams::run(args),
        Command::Serve(args) => cli::serve::run(args),
        Command::BenchServe(args) => cli::bench_serve::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.one_line());
            ExitCode::FAILURE
        }
    }
}
