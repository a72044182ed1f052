//! `gfpgan forward`: the network on an array of aligned faces.

use std::path::PathBuf;

use gfpgan::restore::restore_tensor;
use gfpgan::{NoiseMode, Result};

use super::common::{RunArgs, read_faces, write_npy};

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
    let restorer = args.run.load(&args.weights)?;
    let faces = read_faces(&args.input, &restorer)?;
    let noise = args.noise_seed.map_or(NoiseMode::Stored, |seed| NoiseMode::Random { seed });
    let restored = restore_tensor(&restorer, &faces, args.batch_size, noise.into())?;
    write_npy(&restored, &args.output)?;
    eprintln!("restored {} face(s) -> {}", faces.dim(0)?, args.output.display());
    Ok(())
}
