//! `gfpgan convert`: a checked checkpoint re-saved as `.safetensors`.

use std::path::PathBuf;

use candle_core::DType;
use gfpgan::files::write_atomically;
use gfpgan::{Checkpoint, Result};

use super::common::{Inputs, Precision};

#[derive(clap::Args)]
pub struct Args {
    input: PathBuf,
    output: PathBuf,
    #[arg(long, value_enum, default_value = "f32")]
    dtype: Precision,
}

pub fn run(args: Args) -> Result<()> {
    // `convert X X` (or `./X`) would replace the checkpoint with its own conversion.
    Inputs::new([args.input.as_path()]).check(&args.output)?;
    let ckpt = Checkpoint::load(&args.input)?;
    write_atomically(&args.output, |tmp| ckpt.save_safetensors(tmp, args.dtype.into()))?;
    eprintln!("wrote {} ({} tensors, {:?})", args.output.display(), ckpt.tensors.len(), DType::from(args.dtype));
    Ok(())
}
