//! Number-for-number parity with the official PyTorch GFPGANv1Clean on random weights.
//! Fixtures: tests/parity/make_fixtures.py (the official forward in float64).

mod common;

use candle_core::{DType, Device, Tensor};
use common::{CONFIGS, checkpoint, io, max_abs, max_abs_diff};
use gfpgan::model::Config;
use gfpgan::restore::{FaceNoise, restore_tensor};
use gfpgan::{Checkpoint, Engine, NoiseMode, Restorer};

const ENGINES: [Engine; 2] = [Engine::Candle, Engine::Nhwc];

fn load(config: &str, engine: Engine) -> Restorer {
    let ckpt = Checkpoint::load(&checkpoint(config)).unwrap();
    Restorer::with_engine(&ckpt, &Device::Cpu, DType::F32, engine).unwrap()
}

/// The bound: max abs error at most 1e-4 of the output's magnitude, in f32.
const REL_TOL: f32 = 1e-4;

fn assert_close(name: &str, got: &Tensor, want: &Tensor) {
    let got = got.to_dtype(DType::F32).unwrap();
    let err = max_abs_diff(&got, want);
    let scale = max_abs(want);
    assert!(err <= REL_TOL * scale, "{name}: max abs error {err} > {REL_TOL} * {scale}");
    eprintln!("{name}: max abs error {err:.3e} (relative {:.3e})", err / scale);
}

#[test]
fn output_style_code_and_conditions_match_the_official_forward() {
    for (config, engine) in CONFIGS.iter().flat_map(|c| ENGINES.map(|e| (*c, e))) {
        let restorer = load(config, engine);
        assert_eq!(restorer.engine(), engine);
        let io = io(config);
        let out = restorer.forward_detailed(&io["input"], NoiseMode::Stored).unwrap();
        assert_close(&format!("{config} {engine:?} output"), &out.image, &io["output"]);
        assert_close(&format!("{config} {engine:?} style code"), &out.style_code, &io["style_code"]);
        let mut checked = 0;
        for (k, cond) in out.conditions.iter().enumerate() {
            if let Some(want) = io.get(&format!("cond.{k}")) {
                assert_close(&format!("{config} {engine:?} condition {k}"), cond, want);
                checked += 1;
            }
        }
        assert!(checked >= 4, "{config}: only {checked} conditions in the fixture");
    }
}

#[test]
fn fixture_configurations_are_inferred() {
    let get = |c: &str| gfpgan::Checkpoint::load(&checkpoint(c)).unwrap().config;
    let a = get("a64");
    assert_eq!((a.out_size, a.channel_multiplier, a.narrow, a.sft_half, a.different_w), (64, 1.0, 0.0625, true, false));
    let b = get("b128");
    assert_eq!(
        (b.out_size, b.channel_multiplier, b.narrow, b.sft_half, b.different_w),
        (128, 2.0, 0.0625, false, true)
    );
    let c = get("c256");
    assert_eq!(
        (c.out_size, c.channel_multiplier, c.narrow, c.sft_half, c.different_w),
        (256, 2.0, 0.03125, true, true)
    );
    assert_eq!((a.num_style_feat, a.num_mlp, c.num_mlp), (32, 2, 8));
}

#[test]
fn released_512_configuration_has_the_official_285_tensors() {
    let text = std::fs::read_to_string(common::fixture("gfpganv1_clean_512_keys.txt")).unwrap();
    let official: Vec<(String, Vec<usize>)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, shape) = l.split_once(' ').unwrap();
            (name.to_string(), shape.split(',').map(|d| d.parse().unwrap()).collect())
        })
        .collect();
    assert_eq!(official.len(), 285);
    let ours = Config::default().expected_shapes();
    assert_eq!(ours.len(), 285);
    for (name, shape) in &official {
        assert_eq!(ours.get(name), Some(shape), "tensor {name}");
    }
    assert_eq!(Config::infer(&ours).unwrap(), Config::default());
}

#[test]
fn a_batch_equals_single_passes() {
    for engine in ENGINES {
        let restorer = load("a64", engine);
        let x = &io("a64")["input"];
        let n = x.dim(0).unwrap();
        let face = |i: usize| x.narrow(0, i, 1).unwrap();
        let check = |what: &str, i: usize, single: &Tensor, batched: &Tensor| {
            let err = max_abs_diff(single, &batched.narrow(0, i, 1).unwrap());
            assert!(err <= 1e-5 * max_abs(single), "{engine:?} {what}, face {i}: batch differs by {err}");
        };
        // The stored noise maps, shared by every face.
        let batched = restorer.restore(x, NoiseMode::Stored).unwrap();
        for i in 0..n {
            check("stored noise", i, &restorer.restore(&face(i), NoiseMode::Stored).unwrap(), &batched);
        }
        // Seeded random noise, one seed per face (what video uses): each face gets its own
        // noise whatever batch it is in.
        let seeds: Vec<u64> = (0..n as u64).map(|i| 100 + i).collect();
        let batched = restorer.restore_with_noises(x, &restorer.noises_for_seeds(&seeds).unwrap()).unwrap();
        for (i, &seed) in seeds.iter().enumerate() {
            let single = restorer.restore_with_noises(&face(i), &restorer.noises_for_seeds(&[seed]).unwrap()).unwrap();
            check("per-face seeded noise", i, &single, &batched);
            // The noise shows in the output, so this comparison could fail.
            let stored = restorer.restore(&face(i), NoiseMode::Stored).unwrap();
            assert!(max_abs_diff(&single, &stored) > 1e-3, "{engine:?} face {i}: seeded noise has no effect");
        }
        // The batching routine every front end uses gives the same, in passes of any size.
        for batch_size in [1, 2, n] {
            let routed = restore_tensor(
                &restorer,
                x,
                batch_size,
                FaceNoise::PerFace(&seeds.iter().copied().map(Some).collect::<Vec<_>>()),
            )
            .unwrap();
            for i in 0..n {
                check(
                    &format!("restore_tensor in passes of {batch_size}"),
                    i,
                    &routed.narrow(0, i, 1).unwrap(),
                    &batched,
                );
            }
        }
    }
}

#[test]
fn both_engines_agree_with_random_noise() {
    let x = &io("b128")["input"];
    let noise = NoiseMode::Random { seed: 11 };
    let a = load("b128", Engine::Candle).restore(x, noise).unwrap();
    let b = load("b128", Engine::Nhwc).restore(x, noise).unwrap();
    assert!(max_abs_diff(&a, &b) <= 1e-5 * max_abs(&a));
}

#[test]
fn stored_noise_is_deterministic_and_seeded_noise_is_reproducible() {
    let restorer = Restorer::load(&checkpoint("c256"), &Device::Cpu, DType::F32, Engine::Auto).unwrap();
    assert_eq!(restorer.engine(), Engine::Nhwc);
    let x = &io("c256")["input"];
    let run = |noise| restorer.restore(x, noise).unwrap();
    let stored = run(NoiseMode::Stored);
    assert_eq!(max_abs_diff(&stored, &run(NoiseMode::Stored)), 0.0);
    let seeded = run(NoiseMode::Random { seed: 7 });
    assert_eq!(max_abs_diff(&seeded, &run(NoiseMode::Random { seed: 7 })), 0.0);
    // The fixture's noise strengths are 0.1..0.5, so the noise must show in the output.
    assert!(max_abs_diff(&seeded, &stored) > 1e-3);
    assert!(max_abs_diff(&seeded, &run(NoiseMode::Random { seed: 8 })) > 1e-3);
}

#[test]
fn wrong_input_shapes_are_rejected() {
    for engine in ENGINES {
        let restorer = load("a64", engine);
        for dims in [(1, 3, 32, 32), (1, 4, 64, 64), (0, 3, 64, 64)] {
            let x = Tensor::zeros(dims, DType::F32, &Device::Cpu).unwrap();
            let msg = restorer.restore(&x, NoiseMode::Stored).unwrap_err().to_string();
            assert!(msg.contains("(N, 3, 64, 64)"), "{msg}");
        }
    }
}
