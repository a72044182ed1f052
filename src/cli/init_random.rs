//! `gfpgan init-random`: a checkpoint with random weights.

use std::path::PathBuf;

use candle_core::DType;
use gfpgan::files::write_atomically;
use gfpgan::{Checkpoint, Result};

use super::common::check_arg;

#[derive(clap::Args)]
pub struct Args {
    output: PathBuf,
    #[arg(long, default_value_t = 512)]
    out_size: usize,
    #[arg(long, default_value_t = 512)]
    num_style_feat: usize,
    #[arg(long, allow_negative_numbers = true, default_value_t = 2.0)]
    channel_multiplier: f64,
    #[arg(long, allow_negative_numbers = true, default_value_t = 1.0)]
    narrow: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(args: Args) -> Result<()> {
    let Args { output, out_size, num_style_feat, channel_multiplier, narrow, seed } = args;
    // Wider networks than these would take more memory than a machine has (and NaN none at all).
    let (cm, n) = (channel_multiplier, narrow);
    check_arg((1..=1024).contains(&num_style_feat), "num-style-feat", "in 1..=1024", num_style_feat)?;
    check_arg(cm > 0.0 && cm <= 4.0, "channel-multiplier", "in (0, 4]", cm)?;
    check_arg(n > 0.0 && n <= 1.0, "narrow", "in (0, 1]", n)?;
    let config = gfpgan::model::Config { out_size, num_style_feat, channel_multiplier, narrow, ..Default::default() };
    let ckpt = Checkpoint::random(&config, seed)?;
    write_atomically(&output, |tmp| ckpt.save_safetensors(tmp, DType::F32))?;
    eprintln!("wrote {} (random weights, {} parameters)", output.display(), config.num_parameters());
    Ok(())
}
