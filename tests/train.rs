//! `gfpgan train` on a tiny configuration (32 px, narrow networks): the loss falls in 20 steps;
//! a run saved and resumed continues exactly as an uninterrupted one; Ctrl-C saves a
//! resumable checkpoint; unusable faces are skipped and counted; what a run writes loads as an
//! inference checkpoint; an existing run is not overwritten; the identity loss's gradient.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use candle_core::{DType, Device, Tensor};
use gfpgan::Rgb;
use gfpgan::train::config::TrainConfig;
use gfpgan::train::data::{COMPONENTS_FILE, Component, ComponentFile, Components, FACES_DIR};
use gfpgan::train::run::{Ending, Progress, train};
use gfpgan::train::trainer::StepReport;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

const SIZE: usize = 32;

fn dataset(dir: &Path) -> PathBuf {
    dataset_of(dir, SIZE)
}

/// Six smooth synthetic "faces" (a bright oval, two dark eyes, a mouth) with their components.
fn dataset_of(dir: &Path, size: usize) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(data.join(FACES_DIR)).unwrap();
    let mut faces = BTreeMap::new();
    for k in 0..6 {
        let s = size as f32;
        let shift = k as f32 * 0.6 - 1.5;
        let eyes = [(0.35 * s + shift, 0.45 * s), (0.65 * s + shift, 0.45 * s)];
        let mouth = (0.5 * s + shift, 0.75 * s);
        let mut data_px = Vec::with_capacity(size * size * 3);
        for y in 0..size {
            for x in 0..size {
                let (fx, fy) = (x as f32, y as f32);
                let oval =
                    (((fx - 0.5 * s - shift) / (0.38 * s)).powi(2) + ((fy - 0.55 * s) / (0.45 * s)).powi(2)).sqrt();
                let mut v = if oval < 1.0 { 200.0 - 40.0 * oval } else { 60.0 + 2.0 * k as f32 };
                for (ex, ey) in eyes {
                    v -= 120.0 * (-((fx - ex).powi(2) + (fy - ey).powi(2)) / 3.0).exp();
                }
                v -= 90.0 * (-((fx - mouth.0).powi(2) / 12.0 + (fy - mouth.1).powi(2) / 1.5)).exp();
                data_px.extend([v, v * 0.8 + 10.0 * k as f32, v * 0.7]);
            }
        }
        let name = format!("{k:03}.png");
        Rgb { w: size, h: size, data: data_px }.save(&data.join(FACES_DIR).join(&name)).unwrap();
        let c = |(x, y): (f32, f32), half: f32| Component([x, y, half]);
        faces.insert(name, Components { left_eye: c(eyes[0], 2.0), right_eye: c(eyes[1], 2.0), mouth: c(mouth, 3.0) });
    }
    let file = ComponentFile { size, faces };
    std::fs::write(data.join(COMPONENTS_FILE), serde_json::to_string(&file).unwrap()).unwrap();
    data
}

fn config_text(total_iter: u64, save_every: u64) -> String {
    format!(
        r#"
output = "run"
[data]
train = "data"
batch_size = 2
[data.degradation]
blur_sigma = [0.2, 1.5]
downsample_range = [1.0, 2.0]
noise_range = [0.0, 5.0]
jpeg_range = [80, 100]
[network_g]
out_size = {SIZE}
num_style_feat = 16
channel_multiplier = 1
narrow = 0.0625
[network_d]
narrow = 0.0625
[losses]
identity = 0
r1_every = 4
[schedule]
total_iter = {total_iter}
log_every = 1
save_every = {save_every}
val_every = 0
seed = 7
"#
    )
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("train.toml");
    std::fs::write(&path, text).unwrap();
    path
}

struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: u64, _: u64) {}
    fn step(&self, _: &StepReport) {}
    fn message(&self, _: &str) {}
}

fn run(config: &Path, resume: bool) -> gfpgan::Result<gfpgan::train::run::Summary> {
    train(TrainConfig::load(config)?, &Device::Cpu, resume, &AtomicBool::new(false), &Quiet)
}

fn checkpoint(out: &Path, iteration: u64, stem: &str) -> HashMap<String, Tensor> {
    let path = out.join("checkpoints").join(format!("iter_{iteration:08}")).join(format!("{stem}.safetensors"));
    candle_core::safetensors::load(&path, &Device::Cpu).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn losses(out: &Path, name: &str) -> Vec<f64> {
    // Empty while the run has not logged yet.
    let text = std::fs::read_to_string(out.join("train.jsonl")).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["losses"][name].as_f64()).collect()
}

#[test]
fn twenty_steps_lower_the_loss_and_write_a_loadable_generator() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path());
    let summary = run(&write_config(dir.path(), &config_text(20, 0)), false).unwrap();
    assert_eq!((summary.iteration, summary.ending), (20, Ending::Finished));
    let out = dir.path().join("run");
    for name in ["l1", "pyramid"] {
        let l = losses(&out, name);
        assert_eq!(l.len(), 20, "{name}: one logged value per iteration");
        let (first, last) = (l[..3].iter().sum::<f64>() / 3.0, l[17..].iter().sum::<f64>() / 3.0);
        assert!(last < 0.8 * first, "{name} did not fall: {l:?}");
    }
    assert!(losses(&out, "d_r1").len() == 5, "R1 every 4 iterations");
    assert!(out.join("loss.png").is_file());
    // The averaged generator is an inference checkpoint under the official names.
    let path = out.join("checkpoints/iter_00000020/net_g.safetensors");
    let ck = gfpgan::Checkpoint::load(&path).unwrap();
    assert_eq!(ck.config.out_size, SIZE);
    let restorer =
        gfpgan::Restorer::with_engine(&ck, &Device::Cpu, candle_core::DType::F32, gfpgan::Engine::Auto).unwrap();
    let faces = Tensor::zeros((1, 3, SIZE, SIZE), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert_eq!(restorer.restore(&faces, gfpgan::NoiseMode::Stored).unwrap().dims(), [1, 3, SIZE, SIZE]);
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path());
    // Uninterrupted: 6 iterations, checkpoints at 3 and 6.
    let whole = tempfile::tempdir().unwrap();
    dataset(whole.path());
    run(&write_config(whole.path(), &config_text(6, 3)), false).unwrap();
    // Interrupted: stops at 3 (the config said 3), resumed with 6.
    let parts = dir;
    run(&write_config(parts.path(), &config_text(3, 3)), false).unwrap();
    let summary = run(&write_config(parts.path(), &config_text(6, 3)), true).unwrap();
    assert_eq!(summary.iteration, 6);
    for stem in ["net_g", "net_g_raw", "net_d", "net_d_mouth", "optimizers"] {
        let (a, b) = (checkpoint(&whole.path().join("run"), 6, stem), checkpoint(&parts.path().join("run"), 6, stem));
        assert_eq!(a.len(), b.len(), "{stem}");
        for (name, t) in &a {
            let f64s = |t: &Tensor| {
                t.to_dtype(candle_core::DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap()
            };
            let (x, y) = (f64s(t), f64s(&b[name]));
            let differ = x.iter().zip(&y).filter(|(p, q)| p != q).count();
            assert_eq!(differ, 0, "{stem} {name}: {differ} of {} values differ", x.len());
        }
    }
    // The log holds each iteration once.
    assert_eq!(losses(&parts.path().join("run"), "l1").len(), 6);
    // Without --resume an existing run is refused, not overwritten.
    let err = run(&write_config(parts.path(), &config_text(6, 3)), false).expect_err("refused");
    assert!(err.one_line().contains("--resume"), "{}", err.one_line());
}

#[test]
fn unusable_faces_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(dir.path());
    std::fs::write(data.join(FACES_DIR).join("001.png"), b"not a png").unwrap();
    Rgb { w: 20, h: 20, data: vec![0.0; 1200] }.save(&data.join(FACES_DIR).join("002.png")).unwrap();
    let summary = run(&write_config(dir.path(), &config_text(8, 0)), false).unwrap();
    assert_eq!(summary.iteration, 8);
    assert!(summary.skipped > 0, "8 batches of 2 from 6 faces meet the two bad ones");
}

#[test]
fn bad_configs_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path());
    let cases = [
        (config_text(5, 0).replace("batch_size = 2", "batch_size = 2\nbatchsize = 3"), "batchsize"),
        (config_text(5, 0).replace("out_size = 32", "out_size = 48"), "out_size"),
        (config_text(5, 0).replace("identity = 0", "identity = 1"), "identity_model"),
        (config_text(5, 0).replace("out_size = 32", "out_size = 64"), "32x32"),
    ];
    for (text, want) in cases {
        let err = run(&write_config(dir.path(), &text), false).expect_err("refused");
        assert!(err.one_line().contains(want), "{want}: {}", err.one_line());
    }
}

/// A run whose losses stop being finite stops there and saves nothing after it, instead of
/// training on NaN weights until its time runs out.
#[test]
fn a_diverging_run_stops_without_saving_its_broken_weights() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path());
    // Sound up to iteration 5, where the learning rate jumps by 1e12.
    let text = config_text(40, 2).replace("seed = 7", "seed = 7\nmilestones = [5]\ngamma = 1e12");
    let summary = run(&write_config(dir.path(), &text), false).unwrap();
    let Ending::Diverged { iteration, why } = summary.ending.clone() else {
        panic!("not stopped as diverged: {:?}", summary.ending)
    };
    assert!(iteration < 40 && summary.iteration == iteration, "{summary:?}");
    assert!(why.contains("l1") || why.contains("g_total"), "{why}");
    let saved: Vec<String> = std::fs::read_dir(dir.path().join("run").join("checkpoints"))
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let newest = saved.iter().filter_map(|n| n.strip_prefix("iter_")?.parse::<u64>().ok()).max().unwrap_or(0);
    assert!(newest < iteration, "a checkpoint at or after the divergence: {saved:?}");
    assert!(newest >= 4, "the checkpoints before it are kept: {saved:?}");
    for t in checkpoint(&dir.path().join("run"), newest, "net_g_raw").values() {
        let sum = t.to_dtype(DType::F64).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap();
        assert!(sum.is_finite(), "a saved checkpoint holds non-finite weights");
    }
}

/// Ctrl-C (SIGINT) stops the CLI between iterations with a checkpoint that resumes.
#[test]
fn ctrl_c_saves_a_resumable_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path());
    let config = write_config(dir.path(), &config_text(100_000, 0));
    let child = Command::new(env!("CARGO_BIN_EXE_gfpgan"))
        .args(["train", "--config", config.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while losses(&dir.path().join("run"), "l1").len() < 2 {
        assert!(start.elapsed().as_secs() < 300, "no iteration logged");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("interrupted"), "{stdout}");
    let summary = run(&write_config(dir.path(), &config_text(0, 0).replace("total_iter = 0", "total_iter = 1")), true);
    // Resuming with a total already reached trains nothing more and keeps the checkpoint.
    let summary = summary.unwrap();
    assert!(summary.iteration >= 2, "resumed at {}", summary.iteration);
}

/// The identity loss (face-api's recognition net on the face square): a training run uses it,
/// and its gradient with respect to the restored faces matches finite differences.
#[test]
fn identity_loss_trains_and_its_gradient_matches_finite_differences() {
    use gfpgan::train::identity::IdentityLoss;
    let models = common::face_models();
    let id = IdentityLoss::load(&models).unwrap();
    // In f64: the net is piecewise linear (ReLU, max pooling) with kinks so dense that in f32,
    // where the step must be large enough to beat rounding, central differences of random faces
    // cross them and miss by tens of percent; a step of 1e-7 in f64 stays between them.
    let id64 = id.to_dtype(DType::F64).unwrap();
    let mut rng = StdRng::seed_from_u64(11);
    let mut tensor = |shape: &[usize], normal: bool| {
        let n = shape.iter().product();
        let v: Vec<f64> =
            (0..n).map(|_| if normal { rng.sample(StandardNormal) } else { rng.random_range(-1.0..1.0) }).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    };
    let truth = tensor(&[1, 3, 64, 64], false);
    let x = tensor(&[1, 3, 64, 64], false);
    // The descriptors projected on a fixed vector (the loss itself, an L1, has a kink per
    // descriptor component).
    let v = tensor(&[1, 128], true);
    let dir = tensor(&[1, 3, 64, 64], true);
    let f = |x: &Tensor| (id64.descriptors(x).unwrap() * &v).unwrap().sum_all().unwrap();
    let var = candle_core::Var::from_tensor(&x).unwrap();
    let grad = f(var.as_tensor()).backward().unwrap().get(var.as_tensor()).expect("gradient").clone();
    let predicted = (&grad * &dir).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap();
    let eps = 1e-7;
    let at = |k: f64| f(&(&x + (&dir * k).unwrap()).unwrap()).to_scalar::<f64>().unwrap();
    let measured = (at(eps) - at(-eps)) / (2.0 * eps);
    assert!(predicted.abs() > 1e-3, "no gradient: {predicted}");
    assert!((predicted - measured).abs() < 1e-3 * measured.abs(), "{predicted} vs {measured}");
    let (x32, truth32) = (x.to_dtype(DType::F32).unwrap(), truth.to_dtype(DType::F32).unwrap());
    assert!(id.loss(&x32, &truth32).unwrap().to_scalar::<f32>().unwrap() > 0.0);

    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path());
    let text = config_text(2, 0)
        .replace("identity = 0", &format!("identity = 1\nidentity_model = {:?}", models.to_str().unwrap()));
    run(&write_config(dir.path(), &text), false).unwrap();
    let l = losses(&dir.path().join("run"), "identity");
    assert!(l.len() == 2 && l.iter().all(|v| v.is_finite() && *v > 0.0), "{l:?}");
}

/// Fine-tuning: the generator starts from a released-style checkpoint (`params_ema` in a
/// `.pth`), its architecture read from the file; a config that contradicts the file is refused.
#[test]
fn fine_tuning_starts_from_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    dataset_of(dir.path(), 64);
    let a64 = common::fixture("a64.pth");
    let text = |extra: &str| {
        config_text(1, 0)
            .replace(
                "out_size = 32\nnum_style_feat = 16\nchannel_multiplier = 1\nnarrow = 0.0625",
                &format!("pretrain = {:?}{extra}", a64.to_str().unwrap()),
            )
            .replace("[optim]", "")
            + "[optim]\nlr_g = 1e-12\n"
    };
    run(&write_config(dir.path(), &text("")), false).unwrap();
    let start = gfpgan::Checkpoint::load(&a64).unwrap();
    let raw = checkpoint(&dir.path().join("run"), 1, "net_g_raw");
    assert_eq!(raw.len(), start.tensors.len());
    for (name, t) in &start.tensors {
        let diff = (t.to_dtype(candle_core::DType::F32).unwrap() - &raw[name]).unwrap().abs().unwrap();
        let diff = diff.flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-6, "{name}: {diff}");
    }
    let other = tempfile::tempdir().unwrap();
    dataset_of(other.path(), 64);
    let err = run(&write_config(other.path(), &text("\nsft_half = false")), false).expect_err("refused");
    assert!(err.one_line().contains("sft_half"), "{}", err.one_line());
}

/// Validation on held-out faces: a report like `gfpgan eval`'s per validation, the means in the
/// log, the best generator kept.
#[test]
fn validation_reports_and_keeps_the_best_generator() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path());
    let val = tempfile::tempdir().unwrap();
    let val_data = dataset(val.path());
    let niqe = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("weights/niqe_pris_params.npz");
    let text = config_text(4, 0).replace("val_every = 0", "val_every = 2").replace(
        "batch_size = 2",
        &format!(
            "batch_size = 2\nval = {:?}\nval_niqe = {:?}\nval_face_models = {:?}",
            val_data.to_str().unwrap(),
            niqe.to_str().unwrap(),
            common::face_models().to_str().unwrap()
        ),
    );
    let summary = run(&write_config(dir.path(), &text), false).unwrap();
    let (best_it, net, bicubic) = summary.best.expect("validated");
    assert!([2, 4].contains(&best_it) && net.is_finite() && bicubic.is_finite(), "{:?}", summary.best);
    let out = dir.path().join("run");
    for it in [2, 4] {
        let report = out.join(format!("val/iter_{it:08}"));
        for f in ["report.md", "metrics.json", "grid.png"] {
            assert!(report.join(f).is_file(), "{}", report.join(f).display());
        }
    }
    let text = std::fs::read_to_string(out.join("train.jsonl")).unwrap();
    let vals: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e.get("val").is_some())
        .collect();
    assert_eq!(vals.len(), 2);
    assert!(vals[0]["val"]["bicubic"]["psnr"].as_f64().unwrap() > 10.0, "{}", vals[0]);
    assert!(vals[0]["val"]["gfpgan"]["deg_faceapi"].as_f64().is_some(), "{}", vals[0]);
    gfpgan::Checkpoint::load(&out.join("net_g_best.safetensors")).unwrap();
}
