//! The `gfpgan` command line: forward, inspect, convert.

mod common;

use std::process::Command;

use candle_core::{DType, Tensor};
use common::{checkpoint, io, max_abs, max_abs_diff};

fn gfpgan(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gfpgan")).args(args).output().unwrap()
}

/// `forward --weights W --input I --output O` plus `extra`.
fn forward_args<'a>(weights: &'a str, input: &'a str, output: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["forward", "--weights", weights, "--input", input, "--output", output];
    args.extend_from_slice(extra);
    args
}

fn ok(args: &[&str]) -> String {
    let out = gfpgan(args);
    assert!(out.status.success(), "gfpgan {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn forward_writes_the_official_output() {
    let dir = tempfile::tempdir().unwrap();
    let io = io("b128");
    let input = dir.path().join("in.npy");
    let output = dir.path().join("out.npy");
    io["input"].write_npy(&input).unwrap();
    let weights = checkpoint("b128");
    // batch size 1 on a batch of two: the CLI splits and reassembles in order.
    ok(&forward_args(
        weights.to_str().unwrap(),
        input.to_str().unwrap(),
        output.to_str().unwrap(),
        &["--batch-size", "1"],
    ));
    let got = Tensor::read_npy(&output).unwrap();
    let want = &io["output"];
    assert!(max_abs_diff(&got, want) <= 1e-4 * max_abs(want));
}

#[test]
fn forward_rejects_wrong_arrays_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let weights = checkpoint("a64");
    let cases = [
        (Tensor::zeros((1, 3, 32, 32), DType::F32, &candle_core::Device::Cpu).unwrap(), "(N, 3, 64, 64)"),
        (Tensor::zeros((1, 3, 64, 64), DType::F64, &candle_core::Device::Cpu).unwrap(), "expected float32"),
    ];
    for (i, (t, needle)) in cases.iter().enumerate() {
        let input = dir.path().join(format!("bad{i}.npy"));
        t.write_npy(&input).unwrap();
        let out = gfpgan(&forward_args(
            weights.to_str().unwrap(),
            input.to_str().unwrap(),
            dir.path().join("o.npy").to_str().unwrap(),
            &[],
        ));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains(needle) && stderr.contains(input.to_str().unwrap()), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
    let garbage = dir.path().join("garbage.npy");
    std::fs::write(&garbage, b"not numpy").unwrap();
    let out = gfpgan(&forward_args(
        weights.to_str().unwrap(),
        garbage.to_str().unwrap(),
        dir.path().join("o.npy").to_str().unwrap(),
        &[],
    ));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a readable .npy array"));
}

#[test]
fn device_errors_are_clear() {
    let weights = checkpoint("a64");
    let out = gfpgan(&forward_args(weights.to_str().unwrap(), "x.npy", "y.npy", &["--device", "quantum"]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown device `quantum`"));
}

#[test]
fn inspect_prints_the_inferred_configuration() {
    let text = ok(&["inspect", checkpoint("c256").to_str().unwrap()]);
    for line in [
        "out_size: 256",
        "channel_multiplier: 2",
        "narrow: 0.03125",
        "sft_half: true",
        "different_w: true",
        "num_style_feat: 32",
        "tensors: ",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
    let params: usize = text.lines().find_map(|l| l.strip_prefix("parameters: ")).unwrap().parse().unwrap();
    assert_eq!(params, 121_250); // what PyTorch counted when writing the fixture
}

#[test]
fn convert_round_trips_and_f16_stays_close() {
    let dir = tempfile::tempdir().unwrap();
    let io = io("a64");
    let input = dir.path().join("in.npy");
    io["input"].write_npy(&input).unwrap();
    let pth = checkpoint("a64");
    for (dtype, tol) in [("f32", 1e-4f32), ("f16", 2e-2)] {
        let st = dir.path().join(format!("a64-{dtype}.safetensors"));
        ok(&["convert", pth.to_str().unwrap(), st.to_str().unwrap(), "--dtype", dtype]);
        assert!(ok(&["inspect", st.to_str().unwrap()]).contains(if dtype == "f16" { "F16" } else { "F32" }));
        let output = dir.path().join(format!("out-{dtype}.npy"));
        ok(&forward_args(st.to_str().unwrap(), input.to_str().unwrap(), output.to_str().unwrap(), &[]));
        let got = Tensor::read_npy(&output).unwrap();
        let err = max_abs_diff(&got, &io["output"]) / max_abs(&io["output"]);
        assert!(err <= tol, "{dtype} weights: relative error {err}");
    }
}

#[test]
fn init_random_writes_a_loadable_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.safetensors");
    ok(&["init-random", path.to_str().unwrap(), "--out-size", "64", "--num-style-feat", "16", "--narrow", "0.0625"]);
    let text = ok(&["inspect", path.to_str().unwrap()]);
    assert!(text.contains("out_size: 64") && text.contains("narrow: 0.0625"), "{text}");
    let out = gfpgan(&["init-random", dir.path().join("bad.safetensors").to_str().unwrap(), "--out-size", "100"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a power of two"));
}

#[test]
fn degrade_writes_a_degraded_image_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    // A small crop of rustface's group photo keeps the 41x41 blur quick in debug builds.
    let photo = gfpgan::Rgb::open(&std::path::Path::new(env!("RUSTFACE_SRC_DIR")).join("test.png")).unwrap();
    let src = dir.path().join("src.png");
    let face_area = gfpgan::align::warp(&photo, &gfpgan::align::Similarity { a: 1.0, b: 0.0, tx: 200.0, ty: 20.0 }, 96);
    face_area.save(&src).unwrap();
    let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
    for out in [&a, &b] {
        let o = gfpgan(&["degrade", src.to_str().unwrap(), out.to_str().unwrap(), "--seed", "4"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stderr).contains("JPEG"));
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let bad = gfpgan(&["degrade", "/nonexistent.png", dir.path().join("c.png").to_str().unwrap()]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent.png"));
}
