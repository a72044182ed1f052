//! `gfpgan convert`: a checked checkpoint re-saved as `.safetensors`.

use std::path::PathBuf;

use candle_core::DType;
use gfpgan::{Checkpoint, Result};

use super::common::Precision;

#[derive(clap::Args)]
pub struct Args {
    input: PathBuf,
    output: PathBuf,
    #[arg(long, value_enum, default_value = "f32")]
    dtype: Precision,
}

pub fn run(args: Args) -> Result<()> {
    let ckpt = Checkpoint::load(&args.input)?;
    ckpt.save_safetensors(&args.output, args.dtype.into())?;
    eprintln!("wrote {} ({} tensors, {:?})", args.output.display(), ckpt.tensors.len(), DType::from(args.dtype));
    Ok(())
}
