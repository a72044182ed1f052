//! `gfpgan forward`: the network on an array of aligned faces.

use std::path::PathBuf;

use gfpgan::restore::restore_tensor;
use gfpgan::{NoiseMode, Result};

use super::common::{Inputs, RunArgs, check_arg, read_faces};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    weights: PathBuf,
    #[arg(long)]
    input: PathBuf,
    #[arg(long)]
    output: PathBuf,
    #[command(flatten)]
    run: RunArgs,
    /// Use seeded random noise instead of the checkpoint's stored noise maps.
    #[arg(long)]
    noise_seed: Option<u64>,
    /// Faces per forward pass.
    #[arg(long, default_value_t = 4)]
    batch_size: usize,
}

pub fn run(args: Args) -> Result<()> {
    check_arg(args.batch_size >= 1, "batch-size", "at least 1", args.batch_size)?;
    Inputs::new([args.input.as_path(), args.weights.as_path()]).check(&args.output)?;
    let restorer = args.run.load(&args.weights)?;
    let faces = read_faces(&args.input, &restorer)?;
    let noise = args.noise_seed.map_or(NoiseMode::Stored, |seed| NoiseMode::Random { seed });
    let restored = restore_tensor(&restorer, &faces, args.batch_size, noise.into())?;
    gfpgan::npy::write(&args.output, &restored)?;
    eprintln!("restored {} face(s) -> {}", faces.dim(0)?, args.output.display());
    Ok(())
}
