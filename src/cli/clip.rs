//! `gfpgan clip`: a synthetic test clip (faces from photos on a grid, drifting, camera shake,
//! degraded) as numbered PNG frames.

use std::path::{Path, PathBuf};

use gfpgan::Result;
use gfpgan::synth::{Clip, ClipSpec};

use super::common::Inputs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    clip: ClipArgs,
    /// Output folder for 00000.png, 00001.png, ...
    #[arg(short, long)]
    output: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    write_clip(&args.clip, &args.output)
}

/// What a clip looks like.
#[derive(clap::Args, Clone)]
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
    // Negative numbers are taken as values (not flags) so that the check in the library
    // reports them like any other bad value.
    /// Amplitude of the faces' slow drift, pixels.
    #[arg(long, allow_negative_numbers = true, default_value_t = 20.0)]
    pub motion: f32,
    /// Largest camera shake per frame, whole pixels.
    #[arg(long, allow_negative_numbers = true, default_value_t = 2)]
    pub jitter: i32,
    /// Leave the faces sharp (no blur, downscale, noise, JPEG).
    #[arg(long)]
    pub clean: bool,
    /// Faces this many pixels across, "MIN-MAX" or one size (default: as large as the grid
    /// allows); the whole picture is then noised and compressed instead of the faces.
    #[arg(long, value_parser = parse_size_range)]
    pub face_size: Option<(f32, f32)>,
    /// Frames per second (how far the faces drift from one frame to the next).
    #[arg(long, default_value_t = 25.0)]
    pub fps: f32,
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
            face_size: self.face_size,
            fps: self.fps,
            seed: self.seed,
        };
        let photos: Vec<&Path> = self.photos.iter().map(PathBuf::as_path).collect();
        Clip::new(&photos, spec)
    }
}

/// `"16-40"` or `"20"`: a range of sizes in pixels (checked against the clip's limits later).
fn parse_size_range(text: &str) -> std::result::Result<(f32, f32), String> {
    let number =
        |t: &str| t.trim().parse::<f32>().map_err(|_| format!("{text:?} is not MIN-MAX or one size in pixels"));
    match text.split_once('-') {
        Some((lo, hi)) => Ok((number(lo)?, number(hi)?)),
        None => number(text).map(|v| (v, v)),
    }
}

/// Writes the clip's frames as `DIR/00000.png`, ... (gst-launch's multifilesrc reads them).
fn write_clip(args: &ClipArgs, out: &Path) -> Result<()> {
    let clip = args.build()?;
    // A photo may sit in the output folder under a frame's name.
    let inputs = Inputs::new(args.photos.iter().map(PathBuf::as_path));
    (0..args.frames).try_for_each(|i| inputs.check(&out.join(format!("{i:05}.png"))))?;
    clip.write_frames(out)?;
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
