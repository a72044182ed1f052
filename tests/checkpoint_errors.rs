//! Every kind of bad weights file gets a one-line error that names the problem, from the library
//! and from the CLI (non-zero exit), never a panic or a partial load.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{DType, Device, Tensor};
use common::checkpoint;
use gfpgan::Checkpoint;

fn load_err(path: &Path) -> String {
    match Checkpoint::load(path) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e.to_string(),
    }
}

fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gfpgan")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// Asserts that both the library and `gfpgan inspect` reject `path` with a message containing
/// `needle`, the CLI on a single line.
fn assert_rejected(path: &Path, needle: &str) {
    let msg = load_err(path);
    assert!(msg.contains(needle), "library said: {msg}");
    assert_eq!(msg.lines().count(), 1, "multi-line error: {msg}");
    let (ok, _, stderr) = cli(&["inspect", path.to_str().unwrap()]);
    assert!(!ok, "inspect accepted {}", path.display());
    assert!(stderr.contains(needle), "CLI said: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "multi-line CLI error: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn good_tensors() -> HashMap<String, Tensor> {
    Checkpoint::load(&checkpoint("a64")).unwrap().tensors
}

fn write_safetensors(dir: &Path, name: &str, tensors: &HashMap<String, Tensor>) -> PathBuf {
    let path = dir.join(name);
    candle_core::safetensors::save(tensors, &path).unwrap();
    path
}

#[test]
fn missing_file() {
    assert_rejected(Path::new("/nonexistent/GFPGANv1.4.pth"), "/nonexistent/GFPGANv1.4.pth: No such file");
}

#[test]
fn empty_file_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pth");
    std::fs::write(&empty, b"").unwrap();
    assert_rejected(&empty, "file is empty");
    assert_rejected(dir.path(), "is a directory");
}

#[test]
fn random_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("random.pth");
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(&path, bytes).unwrap();
    assert_rejected(&path, "not a PyTorch checkpoint or a safetensors file");
}

#[test]
fn truncated_files() {
    let dir = tempfile::tempdir().unwrap();
    for (src, needle) in
        [(checkpoint("a64"), "invalid PyTorch checkpoint"), (checkpoint("c256"), "invalid safetensors file")]
    {
        let bytes = std::fs::read(&src).unwrap();
        for cut in [bytes.len() / 2, bytes.len() - 10] {
            let path = dir.path().join(format!("cut{cut}-{}", src.file_name().unwrap().to_str().unwrap()));
            std::fs::write(&path, &bytes[..cut]).unwrap();
            assert_rejected(&path, needle);
        }
    }
}

#[test]
fn corrupt_tensor_data_inside_a_valid_zip_is_caught() {
    // Flip bytes in the middle of the archive: the zip CRC check or the pickle reader must object.
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(checkpoint("a64")).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5a;
    }
    let path = dir.path().join("flipped.pth");
    std::fs::write(&path, bytes).unwrap();
    assert_rejected(&path, "invalid PyTorch checkpoint");
}

#[test]
fn legacy_torch_format_says_how_to_convert() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legacy.pth");
    std::fs::write(&path, [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19])
        .unwrap();
    assert_rejected(&path, "legacy (pre-1.6, non-zip) checkpoint; re-save it");
}

#[test]
fn missing_extra_and_misshaped_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = good_tensors();
    t.remove("final_conv.bias");
    assert_rejected(&write_safetensors(dir.path(), "missing.safetensors", &t), "missing tensor `final_conv.bias`");

    let mut t = good_tensors();
    t.insert("extra.weight".into(), Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap());
    assert_rejected(&write_safetensors(dir.path(), "extra.safetensors", &t), "unexpected tensor `extra.weight`");

    let mut t = good_tensors();
    t.insert("toRGB.0.weight".into(), Tensor::zeros((3, 5, 1, 1), DType::F32, &Device::Cpu).unwrap());
    assert_rejected(&write_safetensors(dir.path(), "shape.safetensors", &t), "`toRGB.0.weight` has shape [3, 5, 1, 1]");

    let mut t = good_tensors();
    t.remove("stylegan_decoder.noises.noise4");
    assert_rejected(
        &write_safetensors(dir.path(), "nonoise.safetensors", &t),
        "missing tensor `stylegan_decoder.noises.noise4`",
    );
}

#[test]
fn another_network() {
    let dir = tempfile::tempdir().unwrap();
    let t: HashMap<String, Tensor> = [
        ("model.0.weight".to_string(), Tensor::zeros((64, 3, 3, 3), DType::F32, &Device::Cpu).unwrap()),
        ("model.0.bias".to_string(), Tensor::zeros(64, DType::F32, &Device::Cpu).unwrap()),
    ]
    .into();
    assert_rejected(&write_safetensors(dir.path(), "esrgan.safetensors", &t), "not a GFPGANv1Clean checkpoint");
}

#[test]
fn integer_tensors_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = good_tensors();
    t.insert("final_conv.bias".into(), t["final_conv.bias"].to_dtype(DType::U8).unwrap());
    assert_rejected(&write_safetensors(dir.path(), "int.safetensors", &t), "`final_conv.bias` has dtype U8");
}

/// Rebuilds the a64 archive with its pickle replaced, keeping the tensor entries.
fn with_pickle(dir: &Path, name: &str, pickle: &[u8]) -> PathBuf {
    use std::io::{Read, Write};
    let mut src = zip::ZipArchive::new(std::fs::File::open(checkpoint("a64")).unwrap()).unwrap();
    let path = dir.join(name);
    let mut dst = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..src.len() {
        let mut entry = src.by_index(i).unwrap();
        let entry_name = entry.name().unwrap().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        dst.start_file(entry_name.as_str(), opts).unwrap();
        dst.write_all(if entry_name.ends_with("data.pkl") { pickle } else { &bytes }).unwrap();
    }
    dst.finish().unwrap();
    path
}

#[test]
fn damaged_pickles_give_errors_not_panics() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let mut src = zip::ZipArchive::new(std::fs::File::open(checkpoint("a64")).unwrap()).unwrap();
    let name = src.file_names().map(|n| n.unwrap().to_string()).find(|n| n.ends_with("data.pkl")).unwrap();
    let mut pickle = Vec::new();
    src.by_name(&name).unwrap().read_to_end(&mut pickle).unwrap();
    let mut cases: Vec<Vec<u8>> = vec![Vec::new(), b"garbage".to_vec()];
    for frac in [1, 3, 5, 7, 9] {
        cases.push(pickle[..pickle.len() * frac / 10].to_vec());
    }
    for step in [97usize, 211, 509] {
        let mut mutated = pickle.clone();
        for i in (step..mutated.len()).step_by(step) {
            mutated[i] = mutated[i].wrapping_add(37);
        }
        cases.push(mutated);
    }
    for (i, case) in cases.iter().enumerate() {
        let path = with_pickle(dir.path(), &format!("case{i}.pth"), case);
        // Any error will do; what matters is a clean one-line message instead of a panic.
        let msg = load_err(&path);
        assert_eq!(msg.lines().count(), 1, "case {i}: {msg}");
    }
}
