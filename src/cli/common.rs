//! Arguments and helpers that several subcommands share.

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use clap::ValueEnum;

use gfpgan::analyze::{AnalyzerOptions, Face};
use gfpgan::faceapi::EXPRESSION_LABELS;
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

/// Input photos and face-finding options shared by `restore` and `analyze`.
#[derive(clap::Args)]
pub struct PhotoArgs {
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Smallest face, in pixels (below 40 the detector works on an upscaled copy, slower).
    #[arg(long, default_value_t = 40.0)]
    pub min_face_size: f32,
    /// rustface score threshold (unbounded sums; higher finds fewer, surer faces).
    #[arg(long, default_value_t = 3.85)]
    pub score_threshold: f64,
    /// Resize factor for detection (0.5 halves the work on large photos).
    #[arg(long, default_value_t = 1.0)]
    pub detection_scale: f32,
    /// Only the face nearest the image centre.
    #[arg(long)]
    pub only_center_face: bool,
    /// The face-api.js model folder (weights/fetch-face-models.sh fetches it).
    #[arg(long, default_value = "weights/face-api/model")]
    pub face_models: PathBuf,
}

impl PhotoArgs {
    pub fn analysis(&self) -> AnalyzerOptions {
        let mut opts = AnalyzerOptions { only_center_face: self.only_center_face, ..Default::default() };
        opts.detector.min_face_size = self.min_face_size;
        opts.detector.score_threshold = self.score_threshold;
        opts.detector.scale = self.detection_scale;
        opts
    }
}

/// Runs `job` on every photo among `inputs` (a progress bar when there are many), printing its
/// summary line; a failing photo is reported and the others still run; the result says how many
/// failed.
pub fn for_each_photo(inputs: &[PathBuf], mut job: impl FnMut(&Path, &str) -> Result<String>) -> Result<()> {
    let files = image_files(inputs)?;
    let bar = if files.len() > 3 {
        indicatif::ProgressBar::new(files.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut failed = 0;
    for file in &files {
        let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        match job(file, &name) {
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
        return Err(Error::Input(format!("{failed} of {} file(s) failed", files.len())));
    }
    Ok(())
}

/// The image files among `inputs`, folders expanded (jpg, jpeg, png, webp; sorted).
fn image_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let is_image = |p: &Path| {
        p.extension()
            .map(|e| e.to_ascii_lowercase())
            .is_some_and(|e| ["jpg", "jpeg", "png", "webp"].iter().any(|x| e == *x))
    };
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| Error::io(input, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_image(p))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            // Named files are taken as they are, so that a wrong one gets its own error.
            files.push(input.clone());
        }
    }
    Ok(files)
}

/// One photo's faces as JSON: box, score, five points, expression.
pub fn photo_json(file: &Path, faces: &[&Face], seconds: f64) -> serde_json::Value {
    let faces: Vec<serde_json::Value> = faces
        .iter()
        .map(|f| {
            let d = f.detection;
            let expression = f.expression.map(|p| {
                let probs: serde_json::Map<String, serde_json::Value> =
                    EXPRESSION_LABELS.iter().zip(p).map(|(l, v)| (l.to_string(), serde_json::json!(v))).collect();
                serde_json::json!({ "label": f.top_expression().map(|t| t.0), "probabilities": probs })
            });
            serde_json::json!({
                "box": [d.x, d.y, d.w, d.h],
                "score": d.score,
                "landmarks5": f.five,
                "expression": expression,
            })
        })
        .collect();
    serde_json::json!({ "file": file.display().to_string(), "faces": faces, "seconds": seconds })
}

/// An `(N, 3, S, S)`-style float32 `.npy` array.
pub fn read_npy(path: &Path) -> Result<Tensor> {
    if !path.exists() {
        return Err(Error::io(path, std::io::Error::from(std::io::ErrorKind::NotFound)));
    }
    let t = Tensor::read_npy(path)
        .map_err(|e| Error::format(path, format!("not a readable .npy array: {}", gfpgan::error::first_line(&e))))?;
    if t.dtype() != DType::F32 {
        return Err(Error::format(path, format!("array has dtype {:?}, expected float32", t.dtype())));
    }
    Ok(t)
}

/// `(N, 3, S, S)` faces for `restorer`, read from `path`.
pub fn read_faces(path: &Path, restorer: &Restorer) -> Result<Tensor> {
    let faces = read_npy(path)?;
    restorer.check_input(faces.dims()).map_err(|e| Error::format(path, e.to_string()))?;
    Ok(faces)
}

pub fn write_npy(t: &Tensor, path: &Path) -> Result<()> {
    t.write_npy(path).map_err(|e| Error::format(path, format!("cannot write: {}", gfpgan::error::first_line(&e))))
}
