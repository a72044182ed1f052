//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use gfpgan::{Engine, Restorer};

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The checkpoint file of a parity configuration (see tests/parity/make_fixtures.py).
pub fn checkpoint(config: &str) -> PathBuf {
    ["pth", "safetensors"]
        .iter()
        .map(|ext| fixture(&format!("{config}.{ext}")))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no checkpoint fixture for {config}"))
}

/// Inputs and official outputs of a parity configuration.
pub fn io(config: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture(&format!("{config}_io.safetensors")), &Device::Cpu).unwrap()
}

pub fn max_abs(t: &Tensor) -> f32 {
    t.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    max_abs(&(a - b).unwrap())
}

pub const CONFIGS: [&str; 3] = ["a64", "b128", "c256"];

/// The face-api models that tests/faceapi/run.sh fetches.
pub fn face_models() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/face-api/model");
    assert!(p.is_dir(), "{} missing: run tests/faceapi/run.sh", p.display());
    p
}

/// face-api's six demo photos (fetched by tests/faceapi/run.sh).
pub fn demo_photos() -> Vec<PathBuf> {
    (1..=6)
        .map(|i| Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("weights/face-api/demo/sample{i}.jpg")))
        .collect()
}

/// The 64 px test checkpoint, ready to run on the CPU.
pub fn a64_restorer() -> Arc<Restorer> {
    Arc::new(Restorer::load(&fixture("a64.pth"), &Device::Cpu, DType::F32, Engine::Auto).unwrap())
}

/// `a64_restorer` with a batching worker of its own (what a stream restores through).
pub fn a64_network() -> Arc<gfpgan::restore::SharedRestorer> {
    gfpgan::restore::SharedRestorer::new(a64_restorer()).unwrap()
}
