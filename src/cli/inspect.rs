//! `gfpgan inspect`: what a checkpoint holds.

use std::path::PathBuf;

use gfpgan::{Checkpoint, Result};

#[derive(clap::Args)]
pub struct Args {
    weights: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let ckpt = Checkpoint::load(&args.weights)?;
    let c = &ckpt.config;
    println!("file: {}", args.weights.display());
    println!("architecture: GFPGANv1Clean");
    println!("out_size: {}", c.out_size);
    println!("num_style_feat: {}", c.num_style_feat);
    println!("channel_multiplier: {}", c.channel_multiplier);
    println!("narrow: {}", c.narrow);
    println!("sft_half: {}", c.sft_half);
    println!("different_w: {}", c.different_w);
    println!("num_mlp: {}", c.num_mlp);
    println!("tensors: {}", ckpt.tensors.len());
    println!("parameters: {}", c.num_parameters());
    println!("GFLOP per face: {:.1}", c.flops_per_face() / 1e9);
    let dtypes: std::collections::BTreeSet<String> =
        ckpt.tensors.values().map(|t| format!("{:?}", t.dtype())).collect();
    println!("stored dtype: {}", dtypes.into_iter().collect::<Vec<_>>().join(", "));
    Ok(())
}
