//! `gfpgan eval`: restoration quality of a checkpoint on aligned faces with ground truth, beside
//! two baselines; writes a report folder (metrics.json, report.md, grid.png).

use std::path::{Path, PathBuf};

use gfpgan::eval::dataset::{images_in, load_pair};
use gfpgan::eval::report::{GRID_CELL, Report, Setup};
use gfpgan::eval::{Degraded, Evaluator, FaceScores, Lpips, Pair};
use gfpgan::synth::degrade::DegradeOptions;
use gfpgan::train::config::TrainConfig;
use gfpgan::{NoiseMode, Result, Rgb};

use super::common::{Inputs, RunArgs, check_arg};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    weights: PathBuf,
    /// Folder of aligned ground-truth faces (square, any size; resized to the model's).
    #[arg(long)]
    gt: PathBuf,
    /// Folder of their degraded versions, matched by file name (stem).
    #[arg(long, conflicts_with = "degrade_seed", required_unless_present = "degrade_seed")]
    lq: Option<PathBuf>,
    /// Make the degraded faces with GFP-GAN's training degradation instead, face i (in name
    /// order) drawn from seed N + i: a run is reproducible.
    #[arg(long, value_name = "N")]
    degrade_seed: Option<u64>,
    /// With --degrade-seed: the degradation ranges of this training config ([data.degradation])
    /// instead of the official ones, to score a run's checkpoint on the degradation it learned.
    #[arg(long, value_name = "CONFIG", requires = "degrade_seed")]
    degradation_of: Option<PathBuf>,
    /// Report folder (metrics.json, report.md, grid.png).
    #[arg(short, long)]
    output: PathBuf,
    /// Faces per network pass.
    #[arg(long, default_value_t = 4)]
    batch_size: usize,
    /// Faces shown in grid.png (the first ones in name order).
    #[arg(long, default_value_t = 8)]
    grid: usize,
    /// The face-api.js model folder (identity and landmark metrics).
    #[arg(long, default_value = "weights/face-api/model")]
    face_models: PathBuf,
    /// NIQE's pristine model from BasicSR (weights/fetch-niqe.sh fetches it).
    #[arg(long, default_value = "weights/niqe_pris_params.npz")]
    niqe_params: PathBuf,
    /// torchvision's ImageNet AlexNet (.pth or .safetensors): computes LPIPS with it.
    #[arg(long, value_name = "FILE")]
    lpips_alexnet: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

pub fn run(args: Args) -> Result<()> {
    check_arg(args.batch_size >= 1, "batch-size", "at least 1", args.batch_size)?;
    let files = images_in(&args.gt)?;
    let degraded = match (&args.lq, args.degrade_seed) {
        (Some(dir), _) => Degraded::Folder(dir.clone()),
        (None, Some(seed)) => Degraded::Seeded { seed, ranges: degradation_ranges(args.degradation_of.as_deref())? },
        (None, None) => unreachable!("clap requires one of --lq and --degrade-seed"),
    };
    let mut read: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let lq_files = match &args.lq {
        Some(dir) => gfpgan::files::images_in(dir)?,
        None => Vec::new(),
    };
    read.extend(lq_files.iter().map(PathBuf::as_path));
    read.push(&args.weights);
    let inputs = Inputs::new(read);
    for name in ["metrics.json", "report.md", "grid.png"] {
        inputs.check(&args.output.join(name))?;
    }
    let mut evaluator = Evaluator::new(&args.niqe_params, &args.face_models)?;
    if let Some(alexnet) = &args.lpips_alexnet {
        evaluator = evaluator.with_lpips(Lpips::load(alexnet)?);
    }
    let restorer = args.run.load(&args.weights)?;
    let size = restorer.config().out_size;
    let bar = indicatif::ProgressBar::new(files.len() as u64).with_message("faces");
    let mut faces: Vec<FaceScores> = Vec::with_capacity(files.len());
    let mut rows: Vec<[Rgb; 3]> = Vec::new();
    for (chunk, start) in files.chunks(args.batch_size).zip((0..).step_by(args.batch_size)) {
        let pairs: Vec<Pair> =
            chunk.iter().enumerate().map(|(i, f)| load_pair(f, start + i, &degraded, size)).collect::<Result<_>>()?;
        let (scores, restored) = evaluator.evaluate_batch(&restorer, &pairs, args.batch_size, NoiseMode::Stored)?;
        for (pair, out) in pairs.iter().zip(restored) {
            if rows.len() < args.grid {
                let cell = |img: &Rgb| if img.w > GRID_CELL { img.resized(GRID_CELL, GRID_CELL) } else { img.clone() };
                rows.push([cell(&pair.input), cell(&out), cell(&pair.gt)]);
            }
        }
        faces.extend(scores);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let setup = Setup {
        weights: args.weights.display().to_string(),
        ground_truth: args.gt.display().to_string(),
        degraded: match &degraded {
            Degraded::Folder(dir) => format!("given, `{}`", dir.display()),
            Degraded::Seeded { seed, .. } => match &args.degradation_of {
                None => format!("GFP-GAN's training degradation, seed {seed} (+ face index)"),
                Some(cfg) => format!("the training degradation of `{}`, seed {seed} (+ face index)", cfg.display()),
            },
        },
        size,
    };
    let report = Report::new(setup, faces);
    report.write(&args.output, &rows)?;
    print!("{}", report.table());
    if !report.not_beaten.is_empty() {
        println!("not better than the baselines on: {}", report.not_beaten.join(", "));
    }
    println!("report: {}", args.output.join("report.md").display());
    Ok(())
}

/// The official degradation ranges, or those of a training config.
fn degradation_ranges(config: Option<&Path>) -> Result<DegradeOptions> {
    Ok(match config {
        Some(path) => TrainConfig::load(path)?.data.degradation.options(),
        None => DegradeOptions::default(),
    })
}
