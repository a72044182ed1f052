//! `gfpgan flicker`: how much restored faces flicker on a clip of still faces under camera
//! shake: the element's engine with and without temporal smoothing, and the official per-frame
//! recipe.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use gfpgan::blend::PasteOptions;
use gfpgan::pipeline::{FrameJob, PhotoOptions, PhotoPipeline, StreamRestorer, Tuning};
use gfpgan::synth::flicker;
use gfpgan::{NoiseMode, Restorer, Result, Rgb};

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
    measure_flicker(&args.clip, &args.face_models, args.run.load(&args.weights)?)
}

/// Restores every frame with the stream restorer (the element's engine) and pastes the faces.
fn restore_stream(frames: &[Rgb], face_models: &Path, restorer: &Arc<Restorer>, tuning: Tuning) -> Result<Vec<Rgb>> {
    let stream = StreamRestorer::start(face_models.to_path_buf(), Some(restorer.clone()), tuning)?;
    for (i, f) in frames.iter().enumerate() {
        let job = FrameJob { seq: i as u64, time: i as f64 / 25.0, frame: Arc::new(f.clone()), tuning, restore: true };
        stream.submit(job)?;
    }
    let mut out = Vec::with_capacity(frames.len());
    for f in frames {
        let result = stream.next_result()?;
        let mut frame = f.clone();
        result.paste_into(&mut frame, PasteOptions::default());
        out.push(frame);
    }
    Ok(out)
}

/// Flicker of the element's engine with and without temporal smoothing, and of the official
/// per-frame recipe (fresh detection and alignment, fresh random noise, every frame).
fn measure_flicker(args: &ClipArgs, face_models: &Path, restorer: Restorer) -> Result<()> {
    let clip = args.build()?;
    let frames: Vec<Rgb> = (0..args.frames).map(|i| clip.frame(i)).collect();
    let restorer = Arc::new(restorer);
    println!(
        "clip: {} frames {}x{}, {} still face(s), shake up to {} px",
        args.frames, args.width, args.height, args.faces, args.jitter
    );
    println!("input (no processing): flicker {:.3}", flicker(&clip, &frames));
    let tuning = Tuning::default();
    for (name, smoothing) in
        [("element, temporal-smoothing=0.5", tuning.temporal_smoothing), ("element, temporal-smoothing=0", 0.0)]
    {
        let start = Instant::now();
        let out = restore_stream(&frames, face_models, &restorer, Tuning { temporal_smoothing: smoothing, ..tuning })?;
        println!(
            "{name}: flicker {:.3} ({:.2} s/frame)",
            flicker(&clip, &out),
            start.elapsed().as_secs_f64() / frames.len() as f64
        );
    }
    let start = Instant::now();
    let mut pipeline = PhotoPipeline::new(face_models, PhotoOptions::default())?;
    let mut out = Vec::with_capacity(frames.len());
    for (i, f) in frames.iter().enumerate() {
        pipeline.set_noise(NoiseMode::Random { seed: i as u64 });
        let mut frame = f.clone();
        pipeline.restore(&mut frame, &restorer)?;
        out.push(frame);
    }
    println!(
        "official per-frame recipe (detect + align every frame, random noise): flicker {:.3} ({:.2} s/frame)",
        flicker(&clip, &out),
        start.elapsed().as_secs_f64() / frames.len() as f64
    );
    Ok(())
}
