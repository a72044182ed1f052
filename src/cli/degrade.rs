//! `gfpgan degrade`: GFP-GAN's training degradation on one image.

use std::path::PathBuf;

use gfpgan::synth::{DegradeOptions, degrade};
use gfpgan::{Result, Rgb};

use super::common::{Inputs, check_arg};

#[derive(clap::Args)]
pub struct Args {
    input: PathBuf,
    output: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Probability of a random colour shift (up to 20 levels per channel).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    color_jitter_prob: f32,
    /// Probability of turning the image grey.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    gray_prob: f32,
}

pub fn run(args: Args) -> Result<()> {
    let (jitter, gray) = (args.color_jitter_prob, args.gray_prob);
    check_arg((0.0..=1.0).contains(&jitter), "color-jitter-prob", "a probability in 0..1", jitter)?;
    check_arg((0.0..=1.0).contains(&gray), "gray-prob", "a probability in 0..1", gray)?;
    Inputs::new([args.input.as_path()]).check(&args.output)?;
    let img = Rgb::open(&args.input)?;
    let opts =
        DegradeOptions { color_jitter_prob: args.color_jitter_prob, gray_prob: args.gray_prob, ..Default::default() };
    let (out, d) = degrade(&img, &opts, args.seed)?;
    out.save(&args.output)?;
    eprintln!(
        "{} -> {}: blur sigma {:.2}/{:.2} at {:.0} deg, downscale {:.2}x, noise {:.1}, JPEG {}{}{}",
        args.input.display(),
        args.output.display(),
        d.sigma.0,
        d.sigma.1,
        d.angle.to_degrees(),
        d.downscale,
        d.noise_sigma,
        d.jpeg_quality,
        d.color_shift.map_or(String::new(), |s| format!(", colour shift {s:.1?}")),
        if d.gray { ", grey" } else { "" }
    );
    Ok(())
}
