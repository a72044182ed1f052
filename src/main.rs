//! `gfpgan`: command-line access to the GFP-GAN network.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod cli_video;

use candle_core::{DType, Tensor};
use clap::{Parser, Subcommand, ValueEnum};

use gfpgan::face::align::warp;
use gfpgan::face::pipeline::{Face, PhotoPipeline, restore_aligned};
use gfpgan::face::{AlignedFace, PasteOptions, Rgb, Similarity, paste};
use gfpgan::faceapi::EXPRESSION_LABELS;
use gfpgan::{Checkpoint, Engine, Error, NoiseMode, Restorer, Result};

#[derive(Parser)]
#[command(name = "gfpgan", version, about = "GFP-GAN blind face restoration")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Precision {
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
enum EngineArg {
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
struct RunArgs {
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Compute precision (f16/bf16 are meant for CUDA; see BENCHMARKS.md for their error).
    #[arg(long, value_enum, default_value = "f32")]
    dtype: Precision,
    #[arg(long, value_enum, default_value = "auto")]
    engine: EngineArg,
}

impl RunArgs {
    fn load(&self, weights: &Path) -> Result<Restorer> {
        let device = gfpgan::device::open(&self.device)?;
        let ckpt = Checkpoint::load(weights)?;
        Restorer::with_engine(&ckpt, &device, self.dtype.into(), self.engine.into())
    }
}

/// Input photos and face-finding options shared by `restore` and `analyze`.
#[derive(clap::Args)]
struct PhotoArgs {
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Smallest face, in pixels (below 40 the detector works on an upscaled copy, slower).
    #[arg(long, default_value_t = 40.0)]
    min_face_size: f32,
    /// rustface score threshold (unbounded sums; higher finds fewer, surer faces).
    #[arg(long, default_value_t = 3.85)]
    score_threshold: f64,
    /// Resize factor for detection (0.5 halves the work on large photos).
    #[arg(long, default_value_t = 1.0)]
    detection_scale: f32,
    /// Only the face nearest the image centre.
    #[arg(long)]
    only_center_face: bool,
    /// The face-api.js model folder (weights/fetch-face-models.sh fetches it).
    #[arg(long, default_value = "weights/face-api/model")]
    face_models: PathBuf,
}

impl PhotoArgs {
    fn options(&self) -> gfpgan::face::pipeline::PipelineOptions {
        let mut opts =
            gfpgan::face::pipeline::PipelineOptions { only_center_face: self.only_center_face, ..Default::default() };
        opts.detector.min_face_size = self.min_face_size;
        opts.detector.score_threshold = self.score_threshold;
        opts.detector.scale = self.detection_scale;
        opts
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the network on an (N, 3, S, S) float32 .npy array of aligned faces, RGB in [-1, 1].
    Forward {
        #[arg(long)]
        weights: PathBuf,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
        #[command(flatten)]
        run: RunArgs,
        /// Use seeded random noise instead of the checkpoint's stored noise maps.
        #[arg(long)]
        noise_seed: Option<u64>,
        /// Faces per forward pass.
        #[arg(long, default_value_t = 4)]
        batch_size: usize,
    },
    /// Time the forward pass on random faces: seconds per face, faces per second, GFLOP/s.
    Bench {
        #[arg(long)]
        weights: PathBuf,
        /// Faces per forward pass.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Timed passes (after one untimed warm-up pass).
        #[arg(long, default_value_t = 3)]
        iters: usize,
        #[command(flatten)]
        run: RunArgs,
        /// Faces to run instead of random ones: an (N, 3, S, S) float32 .npy; the first
        /// `--batch` faces are used.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Also measure this machine's matrix-product peak (the engine's micro-kernel in cache,
        /// and the `gemm` crate on 2048^3) and report the engine's speed against it.
        #[arg(long)]
        peak: bool,
        /// Write the restored faces of the last pass here (to compare with another engine).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Print the configuration inferred from a checkpoint and its parameter count.
    Inspect { weights: PathBuf },
    /// Write a checkpoint with random weights (for benchmarks and offline demos; restores nothing).
    InitRandom {
        output: PathBuf,
        #[arg(long, default_value_t = 512)]
        out_size: usize,
        #[arg(long, default_value_t = 512)]
        num_style_feat: usize,
        #[arg(long, default_value_t = 2.0)]
        channel_multiplier: f64,
        #[arg(long, default_value_t = 1.0)]
        narrow: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Restore the faces of photos (files or folders of jpg/png/webp): detect, align, restore, paste.
    Restore {
        #[command(flatten)]
        photos: PhotoArgs,
        /// Output folder (restored photos are written as PNG).
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long)]
        weights: PathBuf,
        #[command(flatten)]
        run: RunArgs,
        /// Strength of the restoration, 0 (original) to 1.
        #[arg(long, default_value_t = 1.0)]
        weight: f32,
        /// Most faces per network pass (all faces of a photo go together up to this many; lower it
        /// to save memory: each 512 face adds about 0.45 GB on the CPU, see BENCHMARKS.md).
        #[arg(long, default_value_t = 8)]
        batch_size: usize,
        /// The inputs are aligned faces already: restore them whole (resized to the model's size).
        #[arg(long)]
        aligned: bool,
        /// Also write each face's aligned crop before and after restoration (OUTPUT/faces/).
        #[arg(long)]
        save_faces: bool,
        /// Draw the detection boxes and five landmarks on the output.
        #[arg(long)]
        draw_boxes: bool,
        /// Write OUTPUT/NAME.json per image: each face's box, score, five points, expression.
        #[arg(long)]
        json: bool,
    },
    /// Detect faces, their landmarks and expressions, without restoring; one JSON line per image.
    Analyze {
        #[command(flatten)]
        photos: PhotoArgs,
    },
    /// Degrade a clean image the way GFP-GAN's training does (blur, downscale, noise, JPEG).
    Degrade {
        input: PathBuf,
        output: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Probability of a random colour shift (up to 20 levels per channel).
        #[arg(long, default_value_t = 0.0)]
        color_jitter_prob: f32,
        /// Probability of turning the image grey.
        #[arg(long, default_value_t = 0.0)]
        gray_prob: f32,
    },
    /// Render a synthetic test clip from photos (faces on a grid, drifting, camera shake,
    /// degraded) as numbered PNG frames.
    Clip {
        #[command(flatten)]
        clip: cli_video::ClipArgs,
        /// Output folder for 00000.png, 00001.png, ...
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Measure flicker on a clip of still faces under camera shake: the element's engine with
    /// and without temporal smoothing, and the official per-frame recipe.
    Flicker {
        #[command(flatten)]
        clip: cli_video::ClipArgs,
        #[arg(long)]
        weights: PathBuf,
        #[command(flatten)]
        run: RunArgs,
        #[arg(long, default_value = "weights/face-api/model")]
        face_models: PathBuf,
    },
    /// Convert a checkpoint (.pth or .safetensors) to .safetensors after checking it.
    Convert {
        input: PathBuf,
        output: PathBuf,
        #[arg(long, value_enum, default_value = "f32")]
        dtype: Precision,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = e.to_string();
            eprintln!("error: {}", msg.lines().next().unwrap_or_default());
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Forward { weights, input, output, run, noise_seed, batch_size } => {
            let restorer = run.load(&weights)?;
            let faces = read_npy(&input)?;
            restorer.check_input(faces.dims()).map_err(|e| Error::format(&input, e.to_string()))?;
            let noise = noise_seed.map_or(NoiseMode::Stored, |seed| NoiseMode::Random { seed });
            let n = faces.dim(0)?;
            let batch_size = batch_size.max(1);
            let mut restored = Vec::new();
            for start in (0..n).step_by(batch_size) {
                let batch = faces.narrow(0, start, batch_size.min(n - start))?;
                restored.push(restorer.restore(&batch, noise)?);
            }
            let restored = Tensor::cat(&restored, 0)?;
            restored.write_npy(&output).map_err(|e| Error::format(&output, format!("cannot write: {e}")))?;
            eprintln!("restored {n} face(s) -> {}", output.display());
            Ok(())
        }
        Command::Bench { weights, batch, iters, run, input, output, peak } => {
            let restorer = run.load(&weights)?;
            let size = restorer.config().out_size;
            let batch = batch.max(1);
            let faces = match input {
                Some(path) => {
                    let all = read_npy(&path)?;
                    restorer.check_input(all.dims()).map_err(|e| Error::format(&path, e.to_string()))?;
                    if all.dim(0)? < batch {
                        return Err(Error::format(&path, format!("has {} faces, --batch is {batch}", all.dim(0)?)));
                    }
                    all.narrow(0, 0, batch)?
                }
                None => Tensor::rand(-1f32, 1f32, (batch, 3, size, size), &candle_core::Device::Cpu)?,
            };
            let mut restored = restorer.restore(&faces, NoiseMode::Stored)?; // warm-up
            let mut times = Vec::with_capacity(iters);
            for _ in 0..iters.max(1) {
                let start = std::time::Instant::now();
                restored = restorer.restore(&faces, NoiseMode::Stored)?;
                times.push(start.elapsed().as_secs_f64());
            }
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            let per_face = median / batch as f64;
            let gflop = restorer.config().flops_per_face() / 1e9;
            println!(
                "gfpgan-rs {:?} engine, {:?} {:?}, batch {batch}: {per_face:.3} s/face (median of {}; min {:.3}, max {:.3} s/pass), \
                 {:.2} faces/s, {:.1} GFLOP/face, {:.1} GFLOP/s",
                restorer.engine(),
                restorer.device().location(),
                restorer.dtype(),
                times.len(),
                times[0],
                times[times.len() - 1],
                1.0 / per_face,
                gflop,
                gflop / per_face
            );
            if peak {
                let executed_gflop = restorer.executed_flops_per_face() / 1e9;
                let executed = executed_gflop / per_face;
                let kernel = gfpgan::nhwc::kernel_peak_gflops(2.0);
                let sgemm = gfpgan::nhwc::sgemm_gflops();
                println!(
                    "peak on {} threads: engine micro-kernel in cache {kernel:.1} GFLOP/s, gemm crate 2048^3 {sgemm:.1} \
                     GFLOP/s; this pass executed {:.1} GFLOP/face of multiplications at {executed:.1} GFLOP/s \
                     ({:.0}% of the micro-kernel's peak)",
                    rayon::current_num_threads(),
                    executed_gflop,
                    100.0 * executed / kernel
                );
            }
            if let Some(output) = output {
                restored.write_npy(&output).map_err(|e| Error::format(&output, format!("cannot write: {e}")))?;
            }
            Ok(())
        }
        Command::Inspect { weights } => {
            let ckpt = Checkpoint::load(&weights)?;
            let c = &ckpt.config;
            println!("file: {}", weights.display());
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
        Command::InitRandom { output, out_size, num_style_feat, channel_multiplier, narrow, seed } => {
            let config =
                gfpgan::model::Config { out_size, num_style_feat, channel_multiplier, narrow, ..Default::default() };
            let ckpt = Checkpoint::random(&config, seed)?;
            ckpt.save_safetensors(&output, DType::F32)?;
            eprintln!("wrote {} (random weights, {} parameters)", output.display(), config.num_parameters());
            Ok(())
        }
        Command::Restore {
            photos,
            output,
            weights,
            run,
            weight,
            batch_size,
            aligned,
            save_faces,
            draw_boxes,
            json,
        } => {
            if !(0.0..=1.0).contains(&weight) {
                return Err(Error::Input(format!("--weight must be in 0..1, got {weight}")));
            }
            let restorer = run.load(&weights)?;
            let mut opts = photos.options();
            opts.paste.weight = weight;
            opts.batch_size = batch_size;
            opts.expressions = json;
            let mut pipeline = if aligned { None } else { Some(PhotoPipeline::new(&photos.face_models, opts)?) };
            std::fs::create_dir_all(&output).map_err(|e| Error::io(&output, e))?;
            let faces_dir = output.join("faces");
            if save_faces {
                std::fs::create_dir_all(&faces_dir).map_err(|e| Error::io(&faces_dir, e))?;
            }
            for_each_photo(&photos.inputs, |file, name| {
                let start = std::time::Instant::now();
                let mut frame = Rgb::open(file)?;
                let size = restorer.config().out_size;
                let restored = match pipeline.as_mut() {
                    None if frame.w != frame.h => {
                        return Err(Error::format(
                            file,
                            format!("an aligned face must be square, this is {}x{}", frame.w, frame.h),
                        ));
                    }
                    None => {
                        // A whole aligned face: resize to the model's size and back.
                        let to_src = Similarity { a: frame.w as f32 / size as f32, b: 0.0, tx: 0.0, ty: 0.0 };
                        let crop = warp(&frame, &to_src, size);
                        let out = restore_aligned(std::slice::from_ref(&crop), &restorer, 1, opts.noise)?.remove(0);
                        let back = Similarity { a: size as f32 / frame.w as f32, b: 0.0, tx: 0.0, ty: 0.0 };
                        let face = AlignedFace { crop, to_crop: back };
                        paste(&mut frame, &face, &out, PasteOptions { weight, feather: 0.0 });
                        Vec::new()
                    }
                    Some(p) => p.restore(&mut frame, &restorer)?,
                };
                if save_faces {
                    for (i, r) in restored.iter().enumerate() {
                        r.aligned.crop.save(&faces_dir.join(format!("{name}_face{i}_in.png")))?;
                        r.restored.save(&faces_dir.join(format!("{name}_face{i}_out.png")))?;
                    }
                }
                let faces: Vec<&Face> = restored.iter().map(|r| &r.face).collect();
                if draw_boxes {
                    draw_faces(&mut frame, &faces);
                }
                let dst = output.join(format!("{name}.png"));
                frame.save(&dst)?;
                let secs = start.elapsed().as_secs_f64();
                if json {
                    let path = output.join(format!("{name}.json"));
                    let text =
                        serde_json::to_string_pretty(&photo_json(file, &faces, secs)).expect("JSON values serialise");
                    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
                }
                Ok(format!("{}: {} face(s) restored in {secs:.1} s -> {}", file.display(), faces.len(), dst.display()))
            })
        }
        Command::Analyze { photos } => {
            let mut opts = photos.options();
            opts.expressions = true;
            let mut pipeline = PhotoPipeline::new(&photos.face_models, opts)?;
            for_each_photo(&photos.inputs, |file, _| {
                let start = std::time::Instant::now();
                let faces = pipeline.analyze(&Rgb::open(file)?)?;
                let refs: Vec<&Face> = faces.iter().collect();
                Ok(serde_json::to_string(&photo_json(file, &refs, start.elapsed().as_secs_f64()))
                    .expect("JSON values serialise"))
            })
        }
        Command::Degrade { input, output, seed, color_jitter_prob, gray_prob } => {
            use gfpgan::face::degrade::{DegradeOptions, degrade};
            let img = Rgb::open(&input)?;
            let opts = DegradeOptions { color_jitter_prob, gray_prob, ..Default::default() };
            let (out, d) = degrade(&img, &opts, seed)?;
            out.save(&output)?;
            eprintln!(
                "{} -> {}: blur sigma {:.2}/{:.2} at {:.0} deg, downscale {:.2}x, noise {:.1}, JPEG {}{}{}",
                input.display(),
                output.display(),
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
        Command::Clip { clip, output } => cli_video::write_clip(&clip, &output),
        Command::Flicker { clip, weights, run, face_models } => {
            cli_video::measure_flicker(&clip, &face_models, run.load(&weights)?)
        }
        Command::Convert { input, output, dtype } => {
            let ckpt = Checkpoint::load(&input)?;
            ckpt.save_safetensors(&output, dtype.into())?;
            eprintln!("wrote {} ({} tensors, {:?})", output.display(), ckpt.tensors.len(), DType::from(dtype));
            Ok(())
        }
    }
}

/// Runs `job` on every photo among `inputs` (a progress bar when there are many), printing its
/// summary line; a failing photo is reported and the others still run; the result says how many
/// failed.
fn for_each_photo(inputs: &[PathBuf], mut job: impl FnMut(&Path, &str) -> Result<String>) -> Result<()> {
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
                bar.suspend(|| eprintln!("error: {}", e.to_string().lines().next().unwrap_or_default()));
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

fn draw_faces(frame: &mut Rgb, faces: &[&Face]) {
    for f in faces {
        let d = f.detection;
        let t = (d.w / 60.0).ceil().max(1.0) as usize;
        frame.draw_box(d.x, d.y, d.w, d.h, [255.0, 40.0, 40.0], t);
        for p in f.five {
            frame.draw_dot(p, t as isize, [40.0, 255.0, 40.0]);
        }
    }
}

fn photo_json(file: &Path, faces: &[&Face], seconds: f64) -> serde_json::Value {
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

fn read_npy(path: &Path) -> Result<Tensor> {
    if !path.exists() {
        return Err(Error::io(path, std::io::Error::from(std::io::ErrorKind::NotFound)));
    }
    let t = Tensor::read_npy(path).map_err(|e| {
        Error::format(path, format!("not a readable .npy array: {}", e.to_string().lines().next().unwrap_or_default()))
    })?;
    if t.dtype() != DType::F32 {
        return Err(Error::format(path, format!("array has dtype {:?}, expected float32", t.dtype())));
    }
    Ok(t)
}
