//! `gfpgan flicker`: how steady restored faces are on a synthetic clip (faces from photos,
//! drifting, camera shake): the element's engine with and without temporal smoothing, and the
//! official per-frame recipe, scored as `eval-video` scores them.

use std::path::PathBuf;
use std::sync::Arc;

use gfpgan::eval::steadiness::compare;
use gfpgan::synth::flicker;
use gfpgan::{Result, Rgb};

use super::clip::ClipArgs;
use super::common::RunArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    clip: ClipArgs,
    #[arg(long)]
    weights: PathBuf,
    #[command(flatten)]
    run: RunArgs,
    #[arg(long, default_value = "weights/face-api/model")]
    face_models: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let restorer = Arc::new(args.run.load(&args.weights)?);
    let c = &args.clip;
    let clip = c.build()?;
    let frames: Vec<Rgb> = (0..c.frames).map(|i| clip.frame(i)).collect();
    println!(
        "clip: {} frames {}x{}, {} face(s), drift {} px, shake up to {} px",
        c.frames, c.width, c.height, c.faces, c.motion, c.jitter
    );
    // The clip-aware flicker undoes the shake and needs still faces to mean anything.
    let still = c.motion == 0.0;
    let results = compare(&frames, &args.face_models, &restorer, f64::from(clip.spec.fps))?;
    println!(
        "{:<62} {:>8} {:>9} {:>9}{}",
        "",
        "flicker",
        "lm jitter",
        "identity",
        if still { "  clip flicker" } else { "" }
    );
    let line = |name: &str, (flick, jitter, identity): (f64, f64, f64), out: &[Rgb]| {
        let clip_flicker = if still { format!("  {:>12.3}", flicker(&clip, out)) } else { String::new() };
        println!("{name:<62} {flick:>8.3} {jitter:>9.4} {identity:>9.4}{clip_flicker}");
    };
    // Every recipe was scored on the same tracked input: its input figures are the reference.
    let input = results[0].1;
    line("input (no processing)", (0.0, input.input_landmark_jitter, input.input_identity_consistency), &frames);
    for (recipe, s, out) in &results {
        line(&recipe.name(), (s.flicker, s.landmark_jitter, s.identity_consistency), out);
    }
    println!(
        "flicker: frame-to-frame change inside the tracked faces, output minus input (0..255); lm jitter: \
         landmark motion beyond the face's own, over the eye distance; identity: cosine of consecutive \
         face-api descriptors. Random weights restore nothing: these numbers measure steadiness only."
    );
    Ok(())
}
