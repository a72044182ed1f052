//! Arguments and helpers that several subcommands share.

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use clap::ValueEnum;

use gfpgan::analyze::{AnalyzerOptions, Face};
use gfpgan::files::write_atomically;
use gfpgan::serve::BatchOptions;
use gfpgan::{Engine, Error, Restorer, Result};

#[derive(Clone, Copy, ValueEnum)]
pub enum Precision {
    F32,
    F16,
    Bf16,
}

impl From<Precision> for DType {
    fn from(p: Precision) -> DType {
        match p {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum EngineArg {
    /// The NHWC engine on the CPU in f32, candle otherwise.
    Auto,
    /// candle tensor operations (the reference port; any device and dtype).
    Candle,
    /// The NHWC CPU engine (f32).
    Nhwc,
}

impl From<EngineArg> for Engine {
    fn from(e: EngineArg) -> Engine {
        match e {
            EngineArg::Auto => Engine::Auto,
            EngineArg::Candle => Engine::Candle,
            EngineArg::Nhwc => Engine::Nhwc,
        }
    }
}

/// Where and how the network runs.
#[derive(clap::Args)]
pub struct RunArgs {
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Compute precision (f16/bf16 are meant for CUDA; see BENCHMARKS.md for their error).
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: Precision,
    #[arg(long, value_enum, default_value = "auto")]
    pub engine: EngineArg,
}

impl RunArgs {
    pub fn load(&self, weights: &Path) -> Result<Restorer> {
        let device = gfpgan::device::open(&self.device)?;
        Restorer::load(weights, &device, self.dtype.into(), self.engine.into())
    }
}

/// The server's dynamic batching, for `serve` and `bench-serve`.
#[derive(clap::Args)]
pub struct BatchArgs {
    /// Most faces per network pass, gathered across concurrent requests.
    #[arg(long, default_value_t = BatchOptions::default().max_batch)]
    pub max_batch: usize,
    /// Milliseconds a pass may wait for more faces before running with those it has.
    #[arg(long, default_value_t = BatchOptions::default().max_delay.as_millis() as u64)]
    pub max_delay: u64,
    /// Faces accepted and not yet restored; beyond it requests get 503 / UNAVAILABLE.
    #[arg(long, default_value_t = BatchOptions::default().max_queue)]
    pub max_queue: usize,
}

impl BatchArgs {
    pub fn options(&self) -> Result<BatchOptions> {
        check_arg(self.max_batch >= 1, "max-batch", "at least 1", self.max_batch)?;
        check_arg(self.max_queue >= self.max_batch, "max-queue", "at least max-batch", self.max_queue)?;
        check_arg(self.max_delay <= 10_000, "max-delay", "at most 10000 ms", self.max_delay)?;
        Ok(BatchOptions {
            max_batch: self.max_batch,
            max_delay: std::time::Duration::from_millis(self.max_delay),
            max_queue: self.max_queue,
            ..Default::default()
        })
    }
}

/// Input photos and face-finding options shared by `restore` and `analyze`.
#[derive(clap::Args)]
pub struct PhotoArgs {
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Smallest face, in pixels (below 40 the detector works on an upscaled copy, slower).
    #[arg(long, allow_negative_numbers = true, default_value_t = 40.0)]
    pub min_face_size: f32,
    /// rustface score threshold (unbounded sums; higher finds fewer, surer faces).
    #[arg(long, allow_negative_numbers = true, default_value_t = 3.85)]
    pub score_threshold: f64,
    /// Resize factor for detection (0.5 halves the work on large photos).
    #[arg(long, allow_negative_numbers = true, default_value_t = 1.0)]
    pub detection_scale: f32,
    /// Only the face nearest the image centre.
    #[arg(long)]
    pub only_center_face: bool,
    /// Also locate each face's landmarks in its mirror image and average (steadier alignment
    /// of small faces, twice the landmark time).
    #[arg(long)]
    pub mirror_landmarks: bool,
    /// The face-api.js model folder (weights/fetch-face-models.sh fetches it).
    #[arg(long, default_value = "weights/face-api/model")]
    pub face_models: PathBuf,
}

impl PhotoArgs {
    /// The analyzer's options, after checking the numbers (NaN included).
    pub fn analysis(&self) -> Result<AnalyzerOptions> {
        let (m, t, s) = (self.min_face_size, self.score_threshold, self.detection_scale);
        // Below 10 px the detector would work on an image upscaled more than 4x (40 / 10).
        check_arg(m.is_finite() && m >= 10.0, "min-face-size", "a number of pixels >= 10", m)?;
        check_arg(t.is_finite() && t > 0.0, "score-threshold", "a positive number", t)?;
        check_arg(s.is_finite() && s > 0.0 && s <= 8.0, "detection-scale", "in (0, 8]", s)?;
        let mut opts = AnalyzerOptions {
            only_center_face: self.only_center_face,
            mirror_landmarks: self.mirror_landmarks,
            ..Default::default()
        };
        opts.detector.min_face_size = self.min_face_size;
        opts.detector.score_threshold = self.score_threshold;
        opts.detector.scale = self.detection_scale;
        Ok(opts)
    }
}

/// An input photo and the name its outputs take (its stem, made unique among the inputs).
pub struct Photo {
    pub path: PathBuf,
    pub name: String,
}

/// The photos among `inputs` (folders expanded) with distinct output names: two inputs with the
/// same stem (`a.jpg` and `a.png`, or `x/a.jpg` and `y/a.jpg`) would otherwise write the same
/// `a.png`, so the second becomes `a-2`, and so on (compared without case, for file systems
/// that ignore it).
pub fn photos(inputs: &[PathBuf]) -> Result<Vec<Photo>> {
    let mut used = std::collections::HashSet::new();
    let files = image_files(inputs)?;
    Ok(files
        .into_iter()
        .map(|path| {
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let name = std::iter::once(stem.clone())
                .chain((2..).map(|i| format!("{stem}-{i}")))
                .find(|n| used.insert(n.to_lowercase()))
                .expect("an unused name");
            Photo { path, name }
        })
        .collect())
}

/// Runs `job` on every photo (a progress bar when there are many), printing its summary line;
/// a failing photo is reported and the others still run; the result says how many failed.
pub fn for_each_photo(photos: &[Photo], mut job: impl FnMut(&Photo) -> Result<String>) -> Result<()> {
    let bar = if photos.len() > 3 {
        indicatif::ProgressBar::new(photos.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut failed = 0;
    for photo in photos {
        match job(photo) {
            Ok(line) => bar.suspend(|| println!("{line}")),
            Err(e) => {
                failed += 1;
                bar.suspend(|| eprintln!("error: {}", e.one_line()));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if failed > 0 {
        return Err(Error::Input(format!("{failed} of {} file(s) failed", photos.len())));
    }
    Ok(())
}

/// The image files among `inputs`, folders expanded (jpg, jpeg, png, webp; sorted).
pub fn image_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            files.extend(gfpgan::files::images_in(input)?);
        } else {
            // Named files are taken as they are, so that a wrong one gets its own error.
            files.push(input.clone());
        }
    }
    Ok(files)
}

/// One photo's faces as JSON: box, score, five points, expression.
pub fn photo_json(file: &Path, faces: &[&Face], seconds: f64) -> serde_json::Value {
    let faces: Vec<serde_json::Value> = faces.iter().map(|f| f.to_json()).collect();
    serde_json::json!({ "file": file.display().to_string(), "faces": faces, "seconds": seconds })
}

/// `(N, 3, S, S)` faces for `restorer`, read from `path` (a float32 `.npy`; see `gfpgan::npy`).
pub fn read_faces(path: &Path, restorer: &Restorer) -> Result<Tensor> {
    let faces = gfpgan::npy::read(path)?;
    restorer.check_input(faces.dims()).map_err(|e| Error::format(path, e.to_string()))?;
    Ok(faces)
}

/// A number argument outside what the command can use: a one-line error naming the option.
/// (Checked here rather than by clap so that the error reads like every other and exits 1.)
pub fn check_arg(ok: bool, option: &str, want: &str, got: impl std::fmt::Display) -> Result<()> {
    if ok { Ok(()) } else { Err(Error::Input(format!("--{option} must be {want}, got {got}"))) }
}

/// Writes `text` to `path` atomically.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomically(path, |tmp| std::fs::write(tmp, text).map_err(|e| Error::io(path, e)))
}

/// The files a command reads, so that none of its outputs replaces one of them: paths are
/// compared resolved (`./x.png`, `x.png` and a link to it are the same file).
pub struct Inputs(Vec<PathBuf>);

impl Inputs {
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Self {
        Self(paths.into_iter().filter_map(resolved).collect())
    }

    /// An error when writing `output` would replace one of the inputs.
    pub fn check(&self, output: &Path) -> Result<()> {
        match resolved(output) {
            Some(out) if self.0.contains(&out) => Err(Error::Input(format!(
                "{} would replace an input file ({}); choose another output",
                output.display(),
                out.display()
            ))),
            _ => Ok(()),
        }
    }
}

/// `path` with links and `.`/`..` resolved; for a file that does not exist yet, its folder is
/// resolved instead (it cannot be an input then, but a folder written differently can match).
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Some(p);
    }
    let name = path.file_name()?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Some(dir.canonicalize().ok()?.join(name))
}
