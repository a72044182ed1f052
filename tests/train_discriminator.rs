//! The discriminators for training (StyleGAN2's and the facial-component one), the explicit
//! input gradient behind the R1 penalty, and RoIAlign.
//!
//! The figures marked "PyTorch" come from basicsr 1.4.2 / gfpgan 1.3.8 / torchvision 0.29 in
//! float64, with the weights of [`fill`] and the inputs of [`wave`] (the same formulas written
//! in Python), the fused CUDA activation replaced by its definition.

use std::collections::BTreeMap;

use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use gfpgan::train::discriminator::{DiscriminatorConfig, FacialComponentDiscriminator, StyleGan2Discriminator};
use gfpgan::train::roi::roi_align;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CPU: Device = Device::Cpu;

/// The network whose key list is pasted below: 64 px, channel multiplier 1, narrow 1/16.
fn small_cfg() -> DiscriminatorConfig {
    DiscriminatorConfig { channel_multiplier: 1.0, narrow: 0.0625, ..DiscriminatorConfig::new(64) }
}

/// A quicker one for the numeric checks: 32 px, 16 channels throughout.
fn tiny_cfg() -> DiscriminatorConfig {
    DiscriminatorConfig { channel_multiplier: 1.0, narrow: 1.0 / 32.0, ..DiscriminatorConfig::new(32) }
}

fn discriminator(cfg: &DiscriminatorConfig, dtype: DType) -> (VarMap, StyleGan2Discriminator) {
    let vm = VarMap::new();
    let d = StyleGan2Discriminator::new(VarBuilder::from_varmap(&vm, dtype, &CPU), cfg).unwrap();
    (vm, d)
}

fn vars(vm: &VarMap) -> BTreeMap<String, Var> {
    vm.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Deterministic weights, as in the Python script: the k-th name in sorted order gets
/// `amp * sin(12.9898 i + 78.233 k)` at flat index i (amp 1.4 for weights, 0.2 for biases).
fn fill(vm: &VarMap) {
    for (k, (name, var)) in vars(vm).into_iter().enumerate() {
        let amp = if name.ends_with("weight") { 1.4 } else { 0.2 };
        let n = var.elem_count();
        let v: Vec<f64> = (0..n).map(|i| amp * (12.9898 * i as f64 + 78.233 * k as f64).sin()).collect();
        var.set(&Tensor::from_vec(v, var.shape(), &CPU).unwrap().to_dtype(var.dtype()).unwrap()).unwrap();
    }
}

/// Random weights N(0, 1) and biases N(0, 0.3^2), seeded (biases nonzero so that they move the
/// activations' kinks).
fn randomize(vm: &VarMap, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for (name, var) in vars(vm) {
        let sd = if name.ends_with("weight") { 1.0 } else { 0.3 };
        let v: Vec<f64> = (0..var.elem_count()).map(|_| sd * normal(&mut rng)).collect();
        var.set(&Tensor::from_vec(v, var.shape(), &CPU).unwrap().to_dtype(var.dtype()).unwrap()).unwrap();
    }
}

fn normal(rng: &mut StdRng) -> f64 {
    let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// `sin(7.31 i + 0.5)` over the flat index, the Python script's input.
fn wave(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec((0..n).map(|i| (7.31 * i as f64 + 0.5).sin()).collect::<Vec<_>>(), shape, &CPU).unwrap()
}

fn random_input(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    Tensor::from_vec((0..n).map(|_| normal(&mut rng)).collect::<Vec<_>>(), shape, &CPU).unwrap()
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1().unwrap()
}

fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar().unwrap()
}

fn sum(t: &Tensor) -> f64 {
    flat(t).iter().sum()
}

fn sum_sq(t: &Tensor) -> f64 {
    flat(t).iter().map(|v| v * v).sum()
}

fn close(got: f64, want: f64, rel: f64, what: &str) {
    assert!((got - want).abs() <= rel * want.abs().max(1e-12), "{what}: {got} vs {want}");
}

/// Largest difference relative to the largest magnitude of `want`.
fn rel_diff(got: &Tensor, want: &Tensor) -> f64 {
    let (g, w) = (flat(got), flat(want));
    assert_eq!(g.len(), w.len());
    let scale = w.iter().fold(0f64, |m, v| m.max(v.abs()));
    g.iter().zip(&w).fold(0f64, |m, (a, b)| m.max((a - b).abs())) / scale
}

#[test]
fn state_dict_keys_and_shapes_are_the_official_ones() {
    // PyTorch: StyleGAN2Discriminator(64, channel_multiplier=1, narrow=0.0625).state_dict().
    let official: &[(&str, &[usize])] = &[
        ("conv_body.0.0.weight", &[16, 3, 1, 1]),
        ("conv_body.0.1.bias", &[16]),
        ("conv_body.1.conv1.0.weight", &[16, 16, 3, 3]),
        ("conv_body.1.conv1.1.bias", &[16]),
        ("conv_body.1.conv2.1.weight", &[32, 16, 3, 3]),
        ("conv_body.1.conv2.2.bias", &[32]),
        ("conv_body.1.skip.1.weight", &[32, 16, 1, 1]),
        ("conv_body.2.conv1.0.weight", &[32, 32, 3, 3]),
        ("conv_body.2.conv1.1.bias", &[32]),
        ("conv_body.2.conv2.1.weight", &[32, 32, 3, 3]),
        ("conv_body.2.conv2.2.bias", &[32]),
        ("conv_body.2.skip.1.weight", &[32, 32, 1, 1]),
        ("conv_body.3.conv1.0.weight", &[32, 32, 3, 3]),
        ("conv_body.3.conv1.1.bias", &[32]),
        ("conv_body.3.conv2.1.weight", &[32, 32, 3, 3]),
        ("conv_body.3.conv2.2.bias", &[32]),
        ("conv_body.3.skip.1.weight", &[32, 32, 1, 1]),
        ("conv_body.4.conv1.0.weight", &[32, 32, 3, 3]),
        ("conv_body.4.conv1.1.bias", &[32]),
        ("conv_body.4.conv2.1.weight", &[32, 32, 3, 3]),
        ("conv_body.4.conv2.2.bias", &[32]),
        ("conv_body.4.skip.1.weight", &[32, 32, 1, 1]),
        ("final_conv.0.weight", &[32, 33, 3, 3]),
        ("final_conv.1.bias", &[32]),
        ("final_linear.0.weight", &[32, 512]),
        ("final_linear.0.bias", &[32]),
        ("final_linear.1.weight", &[1, 32]),
        ("final_linear.1.bias", &[1]),
    ];
    let shapes = |vm: &VarMap| -> BTreeMap<String, Vec<usize>> {
        vars(vm).into_iter().map(|(k, v)| (k, v.dims().to_vec())).collect()
    };
    let (vm, _) = discriminator(&small_cfg(), DType::F32);
    let want: BTreeMap<String, Vec<usize>> = official.iter().map(|(k, s)| (k.to_string(), s.to_vec())).collect();
    assert_eq!(shapes(&vm), want);

    // PyTorch: FacialComponentDiscriminator().state_dict().
    let official: &[(&str, &[usize])] = &[
        ("conv1.0.weight", &[64, 3, 3, 3]),
        ("conv1.1.bias", &[64]),
        ("conv2.1.weight", &[128, 64, 3, 3]),
        ("conv2.2.bias", &[128]),
        ("conv3.0.weight", &[128, 128, 3, 3]),
        ("conv3.1.bias", &[128]),
        ("conv4.1.weight", &[256, 128, 3, 3]),
        ("conv4.2.bias", &[256]),
        ("conv5.0.weight", &[256, 256, 3, 3]),
        ("conv5.1.bias", &[256]),
        ("final_conv.0.weight", &[1, 256, 3, 3]),
        ("final_conv.0.bias", &[1]),
    ];
    let vm = VarMap::new();
    FacialComponentDiscriminator::new(VarBuilder::from_varmap(&vm, DType::F32, &CPU)).unwrap();
    let want: BTreeMap<String, Vec<usize>> = official.iter().map(|(k, s)| (k.to_string(), s.to_vec())).collect();
    assert_eq!(shapes(&vm), want);

    // PyTorch: 43 tensors at 512 px; 24,030,753 numbers with multiplier 1 (GFP-GAN's),
    // 28,982,849 with 2 (the default).
    for (cfg, count) in [(DiscriminatorConfig::gfpgan_v1(), 24_030_753), (DiscriminatorConfig::new(512), 28_982_849)] {
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
        StyleGan2Discriminator::new(vb, &cfg).unwrap();
        let v = vars(&vm);
        assert_eq!(v.len(), 43);
        assert_eq!(v.values().map(|t| t.elem_count()).sum::<usize>(), count);
        assert_eq!(v["conv_body.7.skip.1.weight"].dims(), &[512, 512, 1, 1]);
    }
}

#[test]
fn forward_and_r1_match_pytorch_on_fixed_weights() {
    let (vm, d) = discriminator(&tiny_cfg(), DType::F64);
    fill(&vm);
    let v = vars(&vm);
    // PyTorch, per batch size: D(x); sum and sum of squares of d sum(D(x)) / dx; R1; the first
    // element and the sum of R1's gradient for three tensors.
    struct Want {
        out: &'static [f64],
        gsum: f64,
        gsq: f64,
        r1: f64,
        first: [f64; 3],
        sums: [f64; 3],
    }
    let cases = [
        (
            4,
            Want {
                out: &[-0.22726692051347963, -0.22723709100497275, -0.22723786918708194, -0.22724946382279204],
                gsum: 0.012371628421724075,
                gsq: 0.0003013136355912315,
                r1: 7.532840889780786e-05,
                first: [-3.744948220797233e-08, -2.8005386074024665e-07, 4.430266659753226e-06],
                sums: [2.427284232473233e-05, 3.744055404880285e-06, -0.001388401525245712],
            },
        ),
        (
            8,
            Want {
                out: &[
                    -0.22726291458470177,
                    -0.2272333156944648,
                    -0.2272338632583042,
                    -0.22724568851228405,
                    -0.22723573719059476,
                    -0.22721687604034368,
                    -0.2272292535262787,
                    -0.22725152657565012,
                ],
                gsum: 0.03347976071321407,
                gsq: 0.0005951661251250244,
                r1: 7.439576564062807e-05,
                first: [1.5329570051726287e-07, 3.892699191459832e-06, 4.344112518393619e-06],
                sums: [7.04199548465153e-05, 2.1065528824558866e-05, -0.0013798870412749756],
            },
        ),
    ];
    let names = ["conv_body.1.conv2.1.weight", "conv_body.2.conv1.1.bias", "final_linear.0.weight"];
    for (b, want) in cases {
        let x = wave(&[b, 3, 32, 32]);
        let (out, g) = d.forward_and_input_gradient(&x).unwrap();
        assert_eq!(out.dims(), &[b, 1]);
        for (got, want) in flat(&out).iter().zip(want.out) {
            close(*got, *want, 1e-11, "D(x)");
        }
        assert_eq!(flat(&d.forward(&x).unwrap()), flat(&out));
        close(sum(&g), want.gsum, 1e-9, "sum of the input gradient");
        close(sum_sq(&g), want.gsq, 1e-9, "sum of squares of the input gradient");
        let r1 = d.r1_penalty(&x).unwrap();
        close(scalar(&r1), want.r1, 1e-9, "R1");
        let grads = r1.backward().unwrap();
        for (i, name) in names.iter().enumerate() {
            let gw = grads.get(v[*name].as_tensor()).unwrap();
            close(flat(gw)[0], want.first[i], 1e-8, name);
            close(sum(gw), want.sums[i], 1e-8, name);
        }
    }
}

#[test]
fn component_discriminator_matches_pytorch_on_fixed_weights() {
    let vm = VarMap::new();
    let d = FacialComponentDiscriminator::new(VarBuilder::from_varmap(&vm, DType::F64, &CPU)).unwrap();
    fill(&vm);
    let (out, feats) = d.forward(&wave(&[2, 3, 20, 20]), true).unwrap();
    // PyTorch: sum, sum of squares, first element of the logits; sum and sum of squares of the
    // two feature maps.
    assert_eq!(out.dims(), &[2, 1, 5, 5]);
    close(sum(&out), -1.3327087309814218, 1e-10, "logits sum");
    close(sum_sq(&out), 0.040453961622112816, 1e-10, "logits sum of squares");
    close(flat(&out)[0], -0.015589879590338107, 1e-10, "first logit");
    assert_eq!(feats.len(), 2);
    assert_eq!(feats[0].dims(), &[2, 128, 10, 10]);
    assert_eq!(feats[1].dims(), &[2, 256, 5, 5]);
    close(sum(&feats[0]), 1827.1461173964326, 1e-10, "conv3 features");
    close(sum_sq(&feats[0]), 550.1888698522228, 1e-10, "conv3 features");
    close(sum(&feats[1]), 951.1119468032912, 1e-10, "conv5 features");
    close(sum_sq(&feats[1]), 275.6805929839958, 1e-10, "conv5 features");
    let (_, none) = d.forward(&wave(&[2, 3, 20, 20]), false).unwrap();
    assert!(none.is_empty());
}

#[test]
fn component_discriminator_shapes_at_the_crop_sizes() {
    // PyTorch gives the same shapes: each downsampling floors (s // 2), odd sizes included.
    let vm = VarMap::new();
    let d = FacialComponentDiscriminator::new(VarBuilder::from_varmap(&vm, DType::F32, &CPU)).unwrap();
    for (s, half, quarter) in [(10, 5, 2), (15, 7, 3), (20, 10, 5), (30, 15, 7), (80, 40, 20), (120, 60, 30)] {
        let x = random_input(&[2, 3, s, s], s as u64).to_dtype(DType::F32).unwrap();
        let (out, feats) = d.forward(&x, true).unwrap();
        assert_eq!(out.dims(), &[2, 1, quarter, quarter], "size {s}");
        assert_eq!(feats[0].dims(), &[2, 128, half, half], "size {s}");
        assert_eq!(feats[1].dims(), &[2, 256, quarter, quarter], "size {s}");
    }
}

/// candle's own gradient of `sum(D(x))` with respect to `x`.
fn autograd_input_gradient(d: &StyleGan2Discriminator, x: &Tensor) -> Tensor {
    let xv = Var::from_tensor(x).unwrap();
    let grads = d.forward(xv.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap();
    grads.get(xv.as_tensor()).unwrap().clone()
}

#[test]
fn input_gradient_equals_candle_autograd() {
    let (vm, d) = discriminator(&tiny_cfg(), DType::F64);
    randomize(&vm, 7);
    // Batch 2 and 4: one group of all samples; 8: groups of 4 over two slots (the interleaving
    // of the official view); 1: the statistic of a single sample.
    for b in [1, 2, 4, 8] {
        let x = random_input(&[b, 3, 32, 32], b as u64);
        let want = autograd_input_gradient(&d, &x);
        let got = d.input_gradient(&x).unwrap();
        let diff = rel_diff(&got, &want);
        assert!(diff < 1e-10, "batch {b}: relative difference {diff:e}");
    }
}

#[test]
fn input_gradient_in_f32_follows_f64() {
    let (vm, d64) = discriminator(&tiny_cfg(), DType::F64);
    randomize(&vm, 3);
    let vm32 = VarMap::new();
    let d32 = StyleGan2Discriminator::new(VarBuilder::from_varmap(&vm32, DType::F32, &CPU), &tiny_cfg()).unwrap();
    let src = vars(&vm);
    for (name, var) in vars(&vm32) {
        var.set(&src[&name].as_tensor().to_dtype(DType::F32).unwrap()).unwrap();
    }
    let x = random_input(&[4, 3, 32, 32], 11);
    let g64 = d64.input_gradient(&x).unwrap();
    let g32 = d32.input_gradient(&x.to_dtype(DType::F32).unwrap()).unwrap();
    assert_eq!(g32.dtype(), DType::F32);
    assert!(rel_diff(&g32, &g64) < 1e-4);
    assert!(rel_diff(&d32.forward(&x.to_dtype(DType::F32).unwrap()).unwrap(), &d64.forward(&x).unwrap()) < 1e-4);
}

#[test]
fn r1_weight_gradient_matches_finite_differences() {
    let (vm, d) = discriminator(&tiny_cfg(), DType::F64);
    randomize(&vm, 5);
    let x = random_input(&[4, 3, 32, 32], 9);
    let grads = d.r1_penalty(&x).unwrap().backward().unwrap();
    let v = vars(&vm);
    // One element of each kind of tensor: the first conv, a blur-and-stride conv, a skip, an
    // activation bias inside the body (it reaches R1 through the stddev statistic), the final
    // conv, both linear layers. The last linear bias has no influence at all.
    let probes = [
        ("conv_body.0.0.weight", 4),
        ("conv_body.1.conv1.0.weight", 100),
        ("conv_body.1.conv2.1.weight", 1000),
        ("conv_body.2.skip.1.weight", 17),
        ("conv_body.2.conv1.1.bias", 3),
        ("final_conv.0.weight", 333),
        ("final_linear.0.weight", 77),
        ("final_linear.0.bias", 5),
        ("final_linear.1.weight", 2),
        ("final_linear.1.bias", 0),
    ];
    let eps = 1e-5;
    for (name, i) in probes {
        let var = &v[name];
        // No gradient at all: R1 does not depend on the tensor.
        let analytic = grads.get(var.as_tensor()).map_or(0.0, |g| flat(g)[i]);
        let base = var.as_tensor().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let r1_at = |delta: f64| {
            let mut w = base.clone();
            w[i] += delta;
            var.set(&Tensor::from_vec(w, var.shape(), &CPU).unwrap()).unwrap();
            scalar(&d.r1_penalty(&x).unwrap())
        };
        let numeric = (r1_at(eps) - r1_at(-eps)) / (2.0 * eps);
        var.set(&Tensor::from_vec(base, var.shape(), &CPU).unwrap()).unwrap();
        let scale = analytic.abs().max(numeric.abs()).max(1e-3);
        assert!(
            (analytic - numeric).abs() < 1e-5 * scale,
            "{name}[{i}]: backward {analytic}, finite differences {numeric}"
        );
        if name == "final_linear.1.bias" {
            assert_eq!(analytic, 0.0);
        }
    }
}

#[test]
fn inputs_the_official_network_rejects_are_errors() {
    let (_, d) = discriminator(&tiny_cfg(), DType::F32);
    let x = |b: usize, s: usize| Tensor::zeros((b, 3, s, s), DType::F32, &CPU).unwrap();
    // 6 samples do not split into groups of 4 (the official view fails too).
    assert!(d.forward(&x(6, 32)).is_err());
    assert!(d.input_gradient(&x(6, 32)).is_err());
    assert!(d.forward(&x(3, 32)).is_ok());
    assert!(d.forward(&x(2, 64)).is_err());
    let bad = DiscriminatorConfig { out_size: 48, ..tiny_cfg() };
    assert!(StyleGan2Discriminator::new(VarBuilder::from_varmap(&VarMap::new(), DType::F32, &CPU), &bad).is_err());
}

/// torchvision's `bilinear_interpolate` at one point of one channel, written plainly.
fn bilinear(img: &[f64], h: usize, w: usize, y: f64, x: f64) -> f64 {
    if y < -1.0 || y > h as f64 || x < -1.0 || x > w as f64 {
        return 0.0;
    }
    let (mut y, mut x) = (y.max(0.0), x.max(0.0));
    let (mut y0, mut x0) = (y as usize, x as usize);
    let (y1, x1);
    if y0 >= h - 1 {
        y0 = h - 1;
        y1 = h - 1;
        y = y0 as f64;
    } else {
        y1 = y0 + 1;
    }
    if x0 >= w - 1 {
        x0 = w - 1;
        x1 = w - 1;
        x = x0 as f64;
    } else {
        x1 = x0 + 1;
    }
    let (ly, lx) = (y - y0 as f64, x - x0 as f64);
    let (hy, hx) = (1.0 - ly, 1.0 - lx);
    let at = |r: usize, c: usize| img[r * w + c];
    hy * hx * at(y0, x0) + hy * lx * at(y0, x1) + ly * hx * at(y1, x0) + ly * lx * at(y1, x1)
}

/// torchvision's RoIAlign forward (aligned=False, sampling_ratio=-1) for one box and channel.
fn roi_align_plain(img: &[f64], h: usize, w: usize, bx: [f64; 4], out: usize) -> Vec<f64> {
    let [x1, y1, x2, y2] = bx;
    let (rw, rh) = ((x2 - x1).max(1.0), (y2 - y1).max(1.0));
    let (bw, bh) = (rw / out as f64, rh / out as f64);
    let (gw, gh) = ((rw / out as f64).ceil() as usize, (rh / out as f64).ceil() as usize);
    let mut res = Vec::new();
    for ph in 0..out {
        for pw in 0..out {
            let mut acc = 0.0;
            for iy in 0..gh {
                let y = y1 + ph as f64 * bh + (iy as f64 + 0.5) * bh / gh as f64;
                for ix in 0..gw {
                    let x = x1 + pw as f64 * bw + (ix as f64 + 0.5) * bw / gw as f64;
                    acc += bilinear(img, h, w, y, x);
                }
            }
            res.push(acc / (gh * gw) as f64);
        }
    }
    res
}

#[test]
fn roi_align_matches_torchvision() {
    let (b, c, h, w) = (3, 2, 16, 24);
    let img = wave(&[b, c, h, w]);
    // Partly outside on every side, non-integer, a box thinner than a pixel, one reaching past
    // the bottom.
    let boxes = [[-3.3, 5.7, 12.2, 20.9], [20.5, -0.7, 23.4, 2.1], [7.25, 3.5, 7.75, 30.0]];
    // PyTorch: per image sum and sum of squares, then out[0, 1, 2, 3] and out[2, 0, 4, 0].
    let pytorch = [
        (
            5,
            [0.17058852495857174, -0.8751296552008981, 0.2711851372976656],
            [3.925793777022542, 20.924395430540564, 5.026749517388458],
            0.11449552273381006,
        ),
        (
            7,
            [0.49563733620405176, -2.0747386942232806, 0.3000225501352505],
            [14.348312692735522, 40.87491148177555, 13.207405018923662],
            -0.6539300674977365,
        ),
    ];
    let pixels = flat(&img);
    for (out, sums, sqs, probe) in pytorch {
        let got = roi_align(&img, &boxes, out).unwrap();
        assert_eq!(got.dims(), &[b, c, out, out]);
        for i in 0..b {
            let item = got.get(i).unwrap();
            close(sum(&item), sums[i], 1e-12, "roi sum");
            close(sum_sq(&item), sqs[i], 1e-12, "roi sum of squares");
            for ch in 0..c {
                let plane = &pixels[(i * c + ch) * h * w..(i * c + ch + 1) * h * w];
                let want = roi_align_plain(plane, h, w, boxes[i], out);
                let have = flat(&item.get(ch).unwrap());
                for (a, e) in have.iter().zip(&want) {
                    assert!((a - e).abs() < 1e-12, "image {i} channel {ch}: {a} vs {e}");
                }
            }
        }
        close(flat(&got.get(0).unwrap().get(1).unwrap())[2 * out + 3], probe, 1e-12, "out[0, 1, 2, 3]");
        assert_eq!(flat(&got.get(2).unwrap().get(0).unwrap())[4 * out], 0.0);
    }
}

#[test]
fn roi_align_is_differentiable_and_keeps_dtype() {
    let img = Var::from_tensor(&random_input(&[2, 3, 20, 20], 1).to_dtype(DType::F32).unwrap()).unwrap();
    let boxes = [[2.5, 3.0, 12.5, 13.0], [-1.5, 8.0, 6.0, 15.5]];
    let crop = roi_align(img.as_tensor(), &boxes, 8).unwrap();
    assert_eq!(crop.dtype(), DType::F32);
    let grads = crop.sum_all().unwrap().backward().unwrap();
    let g = grads.get(img.as_tensor()).unwrap();
    assert_eq!(g.dims(), &[2, 3, 20, 20]);
    // Every output is a weighted mean of pixels: the gradient of the sum is 64 per channel for
    // a box inside the image, less for one reaching outside it.
    let per = g.sum(D::Minus1).unwrap().sum(D::Minus1).unwrap();
    let per = per.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap();
    for v in &per[0] {
        close(*v, 64.0, 1e-5, "inner box");
    }
    for v in &per[1] {
        assert!(*v < 64.0 && *v > 32.0, "box partly outside: {v}");
    }
    assert!(roi_align(img.as_tensor(), &boxes[..1], 8).is_err());
}
