//! `gfpgan init-random`: a checkpoint with random weights.

use std::path::PathBuf;

use candle_core::DType;
use gfpgan::{Checkpoint, Result};

#[derive(clap::Args)]
pub struct Args {
    output: PathBuf,
    #[arg(long, default_value_t = 512)]
    out_size: usize,
    #[arg(long, default_value_t = 512)]
    num_style_feat: usize,
    #[arg(long, default_value_t = 2.0)]
    channel_multiplier: f64,
    #[arg(long, default_value_t = 1.0)]
    narrow: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(args: Args) -> Result<()> {
    let Args { output, out_size, num_style_feat, channel_multiplier, narrow, seed } = args;
    let config = gfpgan::model::Config { out_size, num_style_feat, channel_multiplier, narrow, ..Default::default() };
    let ckpt = Checkpoint::random(&config, seed)?;
    ckpt.save_safetensors(&output, DType::F32)?;
    eprintln!("wrote {} (random weights, {} parameters)", output.display(), config.num_parameters());
    Ok(())
}
