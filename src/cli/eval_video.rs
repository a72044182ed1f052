//! `gfpgan eval-video`: how steady a restored clip is (flicker, landmark jitter, identity
//! consistency inside the faces tracked on the input), from video files or frame folders.

use std::path::{Path, PathBuf};
use std::process::Command;

use gfpgan::eval::TemporalEvaluator;
use gfpgan::eval::dataset::images_in;
use gfpgan::{Error, Result, Rgb};

use super::common::{Inputs, write_text};

#[derive(clap::Args)]
pub struct Args {
    /// The clip before restoration: a video file (decoded with GStreamer) or a folder of
    /// frames (images, in name order).
    input: PathBuf,
    /// The restored clip, frame for frame.
    output: PathBuf,
    /// Also write the scores as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The face-api.js model folder (tracking, landmarks, descriptors).
    #[arg(long, default_value = "weights/face-api/model")]
    face_models: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    if let Some(json) = &args.json {
        Inputs::new([args.input.as_path(), args.output.as_path()]).check(json)?;
    }
    let (input, output) = (Frames::open(&args.input)?, Frames::open(&args.output)?);
    if input.files.len() != output.files.len() {
        return Err(Error::Input(format!(
            "{} has {} frames, {} has {}: the clips must match frame for frame",
            args.input.display(),
            input.files.len(),
            args.output.display(),
            output.files.len()
        )));
    }
    let mut evaluator = TemporalEvaluator::new(&args.face_models)?;
    let bar = indicatif::ProgressBar::new(input.files.len() as u64);
    for (a, b) in input.files.iter().zip(&output.files) {
        evaluator.push(Rgb::open(a)?, Rgb::open(b)?)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let s = evaluator.scores();
    println!("{} frames, {} face pairs measured", s.frames, s.face_pairs);
    println!("{:<22} {:>10} {:>10}", "", "input", "output");
    println!(
        "{:<22} {:>10.3} {:>10.3}   flicker (output - input): {:.3}",
        "frame-to-frame change", s.input_change, s.output_change, s.flicker
    );
    println!("{:<22} {:>10.4} {:>10.4}", "landmark jitter", s.input_landmark_jitter, s.landmark_jitter);
    println!("{:<22} {:>10.4} {:>10.4}", "identity consistency", s.input_identity_consistency, s.identity_consistency);
    if let Some(json) = &args.json {
        write_text(json, &serde_json::to_string_pretty(&s).expect("scores serialise"))?;
    }
    Ok(())
}

/// The frames of a clip as image files; a video is decoded into a temporary folder first,
/// removed when done.
struct Frames {
    files: Vec<PathBuf>,
    temporary: Option<PathBuf>,
}

impl Frames {
    fn open(path: &Path) -> Result<Self> {
        if path.is_dir() {
            return Ok(Self { files: images_in(path)?, temporary: None });
        }
        if !path.is_file() {
            return Err(Error::Input(format!("{}: no such video file or frame folder", path.display())));
        }
        let dir = std::env::temp_dir().join(format!("gfpgan-eval-video-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut this = Self { files: Vec::new(), temporary: Some(dir.clone()) };
        decode(path, &dir)?;
        this.files = gfpgan::files::images_in(&dir)?;
        if this.files.is_empty() {
            return Err(Error::format(path, "no video frames decoded"));
        }
        Ok(this)
    }
}

impl Drop for Frames {
    fn drop(&mut self) {
        if let Some(dir) = &self.temporary {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Every frame of `video` as numbered PNG files in `dir`, with gst-launch-1.0.
fn decode(video: &Path, dir: &Path) -> Result<()> {
    let location = |p: &Path| format!("location={}", p.display());
    let out = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(["filesrc", &location(video), "!", "decodebin", "!", "videoconvert", "!", "video/x-raw,format=RGB"])
        .args(["!", "pngenc", "compression-level=1", "!", "multifilesink", &location(&dir.join("%06d.png"))])
        .output()
        .map_err(|e| Error::Input(format!("cannot run gst-launch-1.0 to decode {}: {e}", video.display())))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        let why = why.lines().find(|l| l.contains("ERROR")).unwrap_or("decoding failed").trim().to_string();
        return Err(Error::format(video, format!("cannot be decoded: {why}")));
    }
    Ok(())
}
