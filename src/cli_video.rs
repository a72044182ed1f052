//! The video subcommands: `clip` renders a synthetic test clip, `flicker` measures how much
//! restored faces flicker on a clip of still faces under camera shake.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gfpgan::face::PasteOptions;
use gfpgan::face::image::Rgb;
use gfpgan::face::pipeline::{PhotoPipeline, PipelineOptions};
use gfpgan::video::clip::{Clip, ClipSpec, flicker};
use gfpgan::video::{FrameJob, StreamRestorer, Tuning};
use gfpgan::{Error, NoiseMode, Restorer, Result};

/// What a clip looks like.
#[derive(clap::Args)]
pub struct ClipArgs {
    /// Photos to take the faces from.
    #[arg(required = true)]
    pub photos: Vec<PathBuf>,
    #[arg(long, default_value_t = 1280)]
    pub width: usize,
    #[arg(long, default_value_t = 720)]
    pub height: usize,
    #[arg(long, default_value_t = 100)]
    pub frames: usize,
    #[arg(long, default_value_t = 4)]
    pub faces: usize,
    /// Amplitude of the faces' slow drift, pixels.
    #[arg(long, default_value_t = 20.0)]
    pub motion: f32,
    /// Largest camera shake per frame, whole pixels.
    #[arg(long, default_value_t = 2)]
    pub jitter: i32,
    /// Leave the faces sharp (no blur, downscale, noise, JPEG).
    #[arg(long)]
    pub clean: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl ClipArgs {
    pub fn build(&self) -> Result<Clip> {
        let spec = ClipSpec {
            width: self.width,
            height: self.height,
            frames: self.frames,
            faces: self.faces,
            motion: self.motion,
            jitter: self.jitter,
            degrade: !self.clean,
            seed: self.seed,
            ..Default::default()
        };
        let photos: Vec<&Path> = self.photos.iter().map(PathBuf::as_path).collect();
        Clip::new(&photos, spec)
    }
}

/// Writes the clip's frames as `DIR/00000.png`, ... (gst-launch's multifilesrc reads them).
pub fn write_clip(args: &ClipArgs, out: &Path) -> Result<()> {
    args.build()?.write_frames(out)?;
    eprintln!(
        "{} frames of {}x{} with {} face(s) -> {}",
        args.frames,
        args.width,
        args.height,
        args.faces,
        out.display()
    );
    Ok(())
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
        let result = stream.results().recv().map_err(|_| Error::Device("restoration threads stopped".into()))??;
        let mut frame = f.clone();
        result.paste_into(&mut frame, PasteOptions::default());
        out.push(frame);
    }
    Ok(out)
}

/// Flicker of the element's engine with and without temporal smoothing, and of the official
/// per-frame recipe (fresh detection and alignment, fresh random noise, every frame).
pub fn measure_flicker(args: &ClipArgs, face_models: &Path, restorer: Restorer) -> Result<()> {
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
        let start = std::time::Instant::now();
        let out = restore_stream(&frames, face_models, &restorer, Tuning { temporal_smoothing: smoothing, ..tuning })?;
        println!(
            "{name}: flicker {:.3} ({:.2} s/frame)",
            flicker(&clip, &out),
            start.elapsed().as_secs_f64() / frames.len() as f64
        );
    }
    let start = std::time::Instant::now();
    let mut pipeline = PhotoPipeline::new(face_models, PipelineOptions::default())?;
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
