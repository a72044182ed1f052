//! Parity of the face-api nets (candle, and the CPU inference path of the landmark and
//! expression feature extractor) with `@vladmandic/face-api@1.7.15` itself: every fixture
//! face goes through the landmark, expression and recognition nets in one batch each, and the
//! outputs are compared with what face-api.js (tfjs CPU backend) produced for the same pixels,
//! recorded in `tests/faceapi/fixtures/reference.json` by `tests/faceapi/run.sh`.
//!
//! Tolerances are absolute: the compared outputs are all of order 1 (landmarks ~0..1,
//! probabilities 0..1, descriptor components |v| < 0.4), so an absolute bound is also a bound
//! relative to their magnitude. The 256-D features and the logits (up to ~20) are compared
//! relative to their largest magnitude, to locate a mismatch before the heads.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Tensor;
use gfpgan::faceapi::{EXPRESSION_LABELS, ExpressionNet, LandmarkNet, RecognitionNet, rgb_batch};
use serde::Deserialize;

/// Max abs difference allowed on landmarks (136 raw values), probabilities (7), descriptor (128).
const TOL: f32 = 1e-4;
/// Max abs difference on features and logits, relative to the largest reference magnitude.
const REL_TOL_INTERNAL: f32 = 1e-4;

#[derive(Deserialize)]
struct Reference {
    expression_labels: Vec<String>,
    faces: Vec<Face>,
}

#[derive(Deserialize)]
struct Face {
    id: String,
    crop_112: String,
    crop_150: String,
    landmarks68: Landmarks,
    expression: Expression,
    descriptor: Vec<f32>,
}

#[derive(Deserialize)]
struct Landmarks {
    raw: Vec<f32>,
    features: Vec<f32>,
}

#[derive(Deserialize)]
struct Expression {
    probabilities: Vec<f32>,
    logits: Vec<f32>,
    features: Vec<f32>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model_dir() -> PathBuf {
    root().join("weights/face-api/model")
}

fn fixtures() -> PathBuf {
    root().join("tests/faceapi/fixtures")
}

/// Fails (never skips) when the git-ignored inputs are missing.
fn require(path: &Path) {
    assert!(
        path.is_file(),
        "{} is missing: run tests/faceapi/run.sh first (it fetches @vladmandic/face-api into \
         weights/face-api/ and regenerates the fixture crops)",
        path.display()
    );
}

fn reference() -> Reference {
    let path = fixtures().join("reference.json");
    require(&path);
    let r: Reference = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(!r.faces.is_empty(), "no faces in {}", path.display());
    r
}

/// The named crops as one `(n, s, s, 3)` batch.
fn batch(names: &[&str]) -> Tensor {
    let images: Vec<_> = names
        .iter()
        .map(|name| {
            let path = fixtures().join(name);
            require(&path);
            image::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8()
        })
        .collect();
    rgb_batch(&images.iter().collect::<Vec<_>>()).unwrap()
}

fn load<T>(model: &str, f: impl FnOnce(PathBuf) -> gfpgan::Result<T>) -> T {
    require(&model_dir().join(format!("{model}-weights_manifest.json")));
    require(&model_dir().join(format!("{model}.bin")));
    f(model_dir()).unwrap_or_else(|e| panic!("loading {model}: {e}"))
}

fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    t.to_vec2::<f32>().unwrap()
}

/// Max abs difference between `got` rows and the reference rows, and the worst face's id.
fn max_err<'a>(got: &[Vec<f32>], want: impl Iterator<Item = (&'a str, &'a [f32])>) -> (f32, String) {
    let mut worst = (0f32, String::new());
    for (g, (id, w)) in got.iter().zip(want) {
        assert_eq!(g.len(), w.len(), "{id}: length");
        let e = g.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(e.is_finite(), "{id}: non-finite output");
        if e > worst.0 || worst.1.is_empty() {
            worst = (e, id.to_string());
        }
    }
    worst
}

fn max_abs<'a>(want: impl Iterator<Item = &'a [f32]>) -> f32 {
    want.flat_map(|w| w.iter()).fold(0f32, |m, v| m.max(v.abs()))
}

fn check(what: &str, got: &Tensor, r: &Reference, pick: impl Fn(&Face) -> &[f32], tol: f32) {
    let got = rows(got);
    assert_eq!(got.len(), r.faces.len(), "{what}: batch size");
    let (err, id) = max_err(&got, r.faces.iter().map(|f| (f.id.as_str(), pick(f))));
    eprintln!("{what}: max abs error {err:.3e} (worst {id}; bound {tol:.1e})");
    assert!(err <= tol, "{what}: max abs error {err:e} on {id} > {tol:e}");
}

/// For features and logits: the bound is relative to the reference's largest magnitude.
fn check_rel(what: &str, got: &Tensor, r: &Reference, pick: impl Fn(&Face) -> &[f32]) {
    let scale = max_abs(r.faces.iter().map(&pick));
    check(&format!("{what} (max |ref| {scale:.3})"), got, r, pick, REL_TOL_INTERNAL * scale);
}

#[test]
fn landmark_net_matches_face_api() {
    let r = reference();
    let net = load(LandmarkNet::MODEL, LandmarkNet::load);
    let faces = batch(&r.faces.iter().map(|f| f.crop_112.as_str()).collect::<Vec<_>>());
    let t = Instant::now();
    let features = net.features(&faces).unwrap();
    let raw = net.head(&features).unwrap();
    eprintln!("landmark net: {} faces in {:.2?}", r.faces.len(), t.elapsed());
    check_rel("landmark features", &features, &r, |f| &f.landmarks68.features);
    check("landmarks (136 raw)", &raw, &r, |f| &f.landmarks68.raw, TOL);
    // The candle operations (what gradients flow through) match face-api too.
    let t = Instant::now();
    let reference_path = net.features_candle(&faces).unwrap();
    eprintln!("landmark net, candle operations: {} faces in {:.2?}", r.faces.len(), t.elapsed());
    check_rel("landmark features (candle operations)", &reference_path, &r, |f| &f.landmarks68.features);

    // One face alone gives the same as in the batch, and `landmarks` splits the output.
    let one = net.landmarks(&faces.narrow(0, 1, 1).unwrap()).unwrap();
    assert_eq!(one.len(), 1);
    let in_batch = &rows(&raw)[1];
    for (i, p) in one[0].points.iter().enumerate() {
        assert!((p[0] - in_batch[2 * i]).abs() <= 1e-6 && (p[1] - in_batch[2 * i + 1]).abs() <= 1e-6);
    }
}

#[test]
fn expression_net_matches_face_api() {
    let r = reference();
    assert_eq!(r.expression_labels, EXPRESSION_LABELS);
    let net = load(ExpressionNet::MODEL, ExpressionNet::load);
    let faces = batch(&r.faces.iter().map(|f| f.crop_112.as_str()).collect::<Vec<_>>());
    let t = Instant::now();
    let features = net.features(&faces).unwrap();
    let out = net.head(&features).unwrap();
    eprintln!("expression net: {} faces in {:.2?}", r.faces.len(), t.elapsed());
    check_rel("expression features", &features, &r, |f| &f.expression.features);
    check_rel("expression logits", &out.logits, &r, |f| &f.expression.logits);
    check("expression probabilities", &out.probabilities, &r, |f| &f.expression.probabilities, TOL);
}

#[test]
fn recognition_net_matches_face_api() {
    let r = reference();
    let net = load(RecognitionNet::MODEL, RecognitionNet::load);
    let faces = batch(&r.faces.iter().map(|f| f.crop_150.as_str()).collect::<Vec<_>>());
    let t = Instant::now();
    let descriptors = net.forward(&faces).unwrap();
    eprintln!("recognition net: {} faces in {:.2?}", r.faces.len(), t.elapsed());
    check("descriptor (128)", &descriptors, &r, |f| &f.descriptor, TOL);
}

#[test]
fn wrong_input_sizes_are_errors() {
    let net = load(LandmarkNet::MODEL, LandmarkNet::load);
    let nchw = Tensor::zeros((1, 3, 112, 112), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    let msg = net.forward(&nchw).err().unwrap().to_string();
    assert!(msg.contains("(n, 112, 112, 3)"), "{msg}");
    let rec = load(RecognitionNet::MODEL, RecognitionNet::load);
    let small = Tensor::zeros((2, 112, 112, 3), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    let msg = rec.forward(&small).err().unwrap().to_string();
    assert!(msg.contains("(n, 150, 150, 3)"), "{msg}");
}
