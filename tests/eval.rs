//! Photo evaluation: the metrics equal BasicSR's own numbers on committed image pairs
//! (tests/eval/golden.py made them), and the evaluation ranks what it should.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{checkpoint, face_models, fixture};
use gfpgan::Rgb;
use gfpgan::eval::quality::{psnr, ssim};
use gfpgan::eval::{Evaluator, NiqeModel};

/// BasicSR's NIQE model, fetched by weights/fetch-niqe.sh (setup.sh and CI run it).
fn niqe_params() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("weights/niqe_pris_params.npz");
    assert!(p.is_file(), "{} missing: run weights/fetch-niqe.sh", p.display());
    p
}

fn pair(name: &str) -> (Rgb, Rgb) {
    let open = |which: &str| Rgb::open(&fixture(&format!("eval/{name}_{which}.png"))).unwrap();
    (open("gt"), open("lq"))
}

fn golden() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("eval/golden.json")).unwrap()).unwrap()
}

#[test]
fn psnr_ssim_and_niqe_equal_basicsr_on_the_committed_pairs() {
    let golden = golden();
    let niqe = NiqeModel::load(&niqe_params()).unwrap();
    let pairs = golden["pairs"].as_object().unwrap();
    assert_eq!(pairs.len(), 6);
    let mut worst = std::collections::BTreeMap::<&str, f64>::new();
    for (name, want) in pairs {
        let (gt, lq) = pair(name);
        let f = |key: &str| want[key].as_f64().unwrap();
        let checks = [
            ("psnr", psnr(&lq, &gt).unwrap(), f("psnr_lq_gt"), 1e-3),
            ("ssim", ssim(&lq, &gt).unwrap(), f("ssim_lq_gt"), 1e-4),
            ("ssim gt", ssim(&gt, &gt).unwrap(), f("ssim_gt_gt"), 1e-4),
            ("niqe gt", niqe.score(&gt).unwrap(), f("niqe_gt"), 1e-3),
            ("niqe lq", niqe.score(&lq).unwrap(), f("niqe_lq"), 1e-3),
        ];
        for (what, got, want, tol) in checks {
            assert!((got - want).abs() <= tol, "pair {name} {what}: {got} vs BasicSR's {want}");
            let w = worst.entry(what).or_default();
            *w = w.max((got - want).abs());
        }
        assert_eq!(want["psnr_gt_gt"], "inf");
        assert_eq!(psnr(&gt, &gt).unwrap(), f64::INFINITY);
    }
    eprintln!("largest differences from BasicSR: {worst:?}");
}

#[test]
fn the_ground_truth_scores_best_and_a_blurred_face_worse() {
    let evaluator = Evaluator::new(&niqe_params(), &face_models()).unwrap();
    let (gt, lq) = pair("01");
    let noisy = {
        let mut n = gt.clone();
        for (i, v) in n.data.iter_mut().enumerate() {
            *v = (*v + ((i * 7919) % 61) as f32 - 30.0).clamp(0.0, 255.0);
        }
        n
    };
    // 01_lq is 01_gt blurred (sigma 2).
    let s = evaluator.score(&[&gt], &[vec![&gt], vec![&lq], vec![&noisy]]).unwrap();
    let (perfect, blurred, noise) = (s[0][0], s[1][0], s[2][0]);
    assert_eq!((perfect.psnr, perfect.ssim), (f64::INFINITY, 1.0));
    assert_eq!((perfect.deg_faceapi, perfect.lmd_faceapi), (0.0, 0.0));
    assert!(blurred.psnr < 40.0 && blurred.ssim < 0.95, "{blurred:?}");
    assert!(blurred.deg_faceapi > 0.0 && blurred.lmd_faceapi > 0.0, "{blurred:?}");
    // NIQE has no reference: a clean face is more natural than a blurred or noisy one.
    assert!(perfect.niqe < blurred.niqe && perfect.niqe < noise.niqe, "{perfect:?} {blurred:?} {noise:?}");
}

#[test]
fn the_niqe_model_file_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("niqe.npz");
    std::fs::write(&bad, b"PK\x03\x04 not an archive").unwrap();
    let e = NiqeModel::load(&bad).unwrap_err().to_string();
    assert!(e.contains("niqe.npz") && e.contains("not an .npz archive"), "{e}");
    let small = Rgb::new(95, 200);
    let e = NiqeModel::load(&niqe_params()).unwrap().score(&small).unwrap_err().to_string();
    assert!(e.contains("96x96"), "{e}");
}

fn gfpgan(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gfpgan")).args(args).output().unwrap()
}

#[test]
fn eval_writes_a_report_that_compares_with_the_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let gt = dir.path().join("gt");
    std::fs::create_dir(&gt).unwrap();
    for name in ["01", "02", "03"] {
        std::fs::copy(fixture(&format!("eval/{name}_gt.png")), gt.join(format!("face{name}.png"))).unwrap();
    }
    let report = dir.path().join("report");
    let weights = checkpoint("c256");
    let niqe = niqe_params();
    let models = face_models();
    let alexnet = dir.path().join("alexnet.safetensors");
    candle_core::safetensors::save(&formula_alexnet(), &alexnet).unwrap();
    let args = |seed: &str, extra: &[&str]| {
        let mut a = vec!["eval", "--weights", weights.to_str().unwrap(), "--gt", gt.to_str().unwrap()];
        a.extend(["--degrade-seed", seed, "-o", report.to_str().unwrap(), "--batch-size", "2"]);
        a.extend(["--niqe-params", niqe.to_str().unwrap(), "--face-models", models.to_str().unwrap()]);
        a.extend(["--lpips-alexnet", alexnet.to_str().unwrap()]);
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run_with = |seed: &str, extra: &[&str]| {
        let a = args(seed, extra);
        let out = gfpgan(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(report.join("metrics.json")).unwrap()).unwrap();
        json
    };
    let run = |seed: &str| run_with(seed, &[]);
    let first = run("5");
    assert_eq!(first["faces"].as_array().unwrap().len(), 3);
    let means = first["means"].as_array().unwrap();
    let names: Vec<&str> = means.iter().map(|m| m[0].as_str().unwrap()).collect();
    assert_eq!(names, ["gfpgan", "bicubic", "input"]);
    for m in means {
        assert!(m[1]["psnr"].as_f64().unwrap() > 5.0 && m[1]["niqe"].as_f64().is_some(), "{m}");
        assert!(m[1]["lpips"].as_f64().unwrap() > 0.0, "{m}");
    }
    // Random weights restore nothing: the report must say the baselines were not beaten.
    assert!(!first["not_beaten"].as_array().unwrap().is_empty());
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.contains("| gfpgan |") && md.contains("| bicubic |") && md.contains("does not beat"), "{md}");
    let grid = image::open(report.join("grid.png")).unwrap();
    assert_eq!((grid.width(), grid.height()), (3 * 256 + 16, 3 * 260 + 4));
    // The same seed gives the same numbers; another seed other degradations.
    assert_eq!(run("5")["faces"], first["faces"]);
    assert_ne!(run("6")["faces"], first["faces"]);
    // A training config's degradation ranges replace the official ones: nearly none here, so
    // the network's input comes close to the truth.
    let config = dir.path().join("mild.toml");
    std::fs::write(
        &config,
        "output = \"run\"\n[data]\ntrain = \"faces\"\n[data.degradation]\nblur_sigma = [0.1, 0.1]\n\
         downsample_range = [1.0, 1.0]\nnoise_range = [0.0, 0.0]\njpeg_range = [100, 100]\n\
         color_jitter_prob = 0.0\ngray_prob = 0.0\n[losses]\nidentity = 0\n",
    )
    .unwrap();
    let input_psnr = |json: &serde_json::Value| json["means"][2][1]["psnr"].as_f64().unwrap();
    let mild = run_with("5", &["--degradation-of", config.to_str().unwrap()]);
    assert!(input_psnr(&mild) > 40.0 && input_psnr(&first) < 35.0, "{} vs {}", input_psnr(&mild), input_psnr(&first));
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.contains("mild.toml"), "{md}");
}

#[test]
fn eval_refuses_what_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let gt = dir.path().join("gt");
    std::fs::create_dir(&gt).unwrap();
    std::fs::copy(fixture("eval/05_gt.png"), gt.join("wide.png")).unwrap();
    let w = checkpoint("c256");
    let base = ["eval", "--weights", w.to_str().unwrap(), "--gt", gt.to_str().unwrap(), "-o"];
    let out_dir = dir.path().join("r");
    let err = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.push(out_dir.to_str().unwrap());
        a.extend_from_slice(extra);
        let out = gfpgan(&a);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = err(&["--degrade-seed", "1"]);
    assert!(e.contains("wide.png") && e.contains("200x150"), "{e}");
    let e = err(&["--lq", dir.path().join("nowhere").to_str().unwrap()]);
    assert!(e.contains("nowhere"), "{e}");
    let e = err(&[]);
    assert!(e.contains("--degrade-seed") || e.contains("--lq"), "{e}");
}

/// The AlexNet backbone made from tests/eval/lpips_reference.py's formula: weight element k of
/// conv layer L is `sqrt(2 / fan_in) * sin(0.37 k + 1.3 L)`, bias element k `0.01 cos(0.5 k + L)`
/// (float64, then float32).
fn formula_alexnet() -> std::collections::HashMap<String, candle_core::Tensor> {
    let layers: [(usize, [usize; 4]); 5] = [
        (0, [64, 3, 11, 11]),
        (3, [192, 64, 5, 5]),
        (6, [384, 192, 3, 3]),
        (8, [256, 384, 3, 3]),
        (10, [256, 256, 3, 3]),
    ];
    let mut map = std::collections::HashMap::new();
    for (l, (index, shape)) in layers.into_iter().enumerate() {
        let fan_in = (shape[1] * shape[2] * shape[3]) as f64;
        let s = (2.0 / fan_in).sqrt();
        let n: usize = shape.iter().product();
        let w: Vec<f32> = (0..n).map(|k| (s * (0.37 * k as f64 + 1.3 * l as f64).sin()) as f32).collect();
        let b: Vec<f32> = (0..shape[0]).map(|k| (0.01 * (0.5 * k as f64 + l as f64).cos()) as f32).collect();
        let dev = &candle_core::Device::Cpu;
        map.insert(format!("features.{index}.weight"), candle_core::Tensor::from_vec(w, &shape, dev).unwrap());
        map.insert(format!("features.{index}.bias"), candle_core::Tensor::from_vec(b, shape[0], dev).unwrap());
    }
    map
}

#[test]
fn lpips_equals_the_lpips_package_on_a_formula_backbone() {
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("eval/lpips.json")).unwrap()).unwrap();
    let lpips = gfpgan::eval::Lpips::new(&formula_alexnet()).unwrap();
    let pairs = reference["pairs"].as_object().unwrap();
    assert_eq!(pairs.len(), 6);
    let mut worst = 0f64;
    for (name, want) in pairs {
        let (gt, lq) = pair(name);
        let want = want["distance"].as_f64().unwrap();
        let got = lpips.distance(&lq, &gt).unwrap();
        assert!((got - want).abs() <= 1e-5 + 1e-4 * want.abs(), "pair {name}: {got} vs lpips' {want}");
        worst = worst.max((got - want).abs());
        assert_eq!(lpips.distance(&gt, &gt).unwrap(), 0.0);
    }
    eprintln!("largest difference from the lpips package: {worst:e}");
    let mut broken = formula_alexnet();
    broken.remove("features.8.bias");
    let e = gfpgan::eval::Lpips::new(&broken).err().expect("a backbone without a bias is refused");
    assert!(e.contains("features.8.bias"), "{e}");
}

#[test]
fn eval_takes_given_degraded_faces_matched_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (gt, lq) = (dir.path().join("gt"), dir.path().join("lq"));
    std::fs::create_dir_all(&gt).unwrap();
    std::fs::create_dir_all(&lq).unwrap();
    for name in ["01", "03"] {
        std::fs::copy(fixture(&format!("eval/{name}_gt.png")), gt.join(format!("f{name}.png"))).unwrap();
        // Given at half size, as x2 super-resolution sets give them.
        let small = Rgb::open(&fixture(&format!("eval/{name}_lq.png"))).unwrap().resized(96, 96);
        small.save(&lq.join(format!("f{name}.png"))).unwrap();
    }
    let report = dir.path().join("report");
    let (w, niqe, models) = (checkpoint("c256"), niqe_params(), face_models());
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let args = [
        ("--weights", path(&w)),
        ("--gt", path(&gt)),
        ("--lq", path(&lq)),
        ("-o", path(&report)),
        ("--niqe-params", path(&niqe)),
        ("--face-models", path(&models)),
    ];
    let run = || {
        let mut a = vec!["eval"];
        a.extend(args.iter().flat_map(|(k, v)| [*k, v.as_str()]));
        gfpgan(&a)
    };
    let out = run();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("metrics.json")).unwrap()).unwrap();
    let names: Vec<&str> = json["faces"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["f01", "f03"]);
    assert!(json["setup"]["degraded"].as_str().unwrap().contains("given"), "{}", json["setup"]);
    // From 96 px the two upscalings differ: the baselines are not the same image.
    let face = &json["faces"][0]["methods"];
    assert_ne!(face[1]["psnr"], face[2]["psnr"], "{face}");
    // A ground truth without its degraded face is named.
    std::fs::remove_file(lq.join("f03.png")).unwrap();
    let out = run();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("no degraded face named f03"), "{e}");
}
