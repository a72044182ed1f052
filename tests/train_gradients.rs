//! Training numerics against the official PyTorch code: the fixtures (tests/fixtures/train/,
//! made by tests/train/make_grad_fixtures.py from GFPGANv1Clean, BasicSR's StyleGAN2
//! discriminator and GFP-GAN's component discriminator, in float64) hold, for two small
//! configurations, every loss term's value and a summary of its gradient with respect to every
//! parameter, and the parameters after three Adam steps. Parameters are not stored: both sides
//! compute them from a formula and two stored numbers per tensor.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use gfpgan::model::Config;
use gfpgan::model::gfpgan::GfpGanV1Clean;
use gfpgan::train::discriminator::{DiscriminatorConfig, FacialComponentDiscriminator, StyleGan2Discriminator};
use gfpgan::train::nets::Params;
use gfpgan::train::optim::{Adam, AdamParams};
use gfpgan::train::perceptual::PerceptualLoss;
use gfpgan::train::step::{Batch, COMPONENTS, Nets, Weights, crops, total};

struct Fixture {
    tensors: HashMap<String, Tensor>,
    meta: HashMap<String, String>,
}

impl Fixture {
    fn load(name: &str) -> Self {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train").join(format!("{name}.safetensors"));
        let bytes = std::fs::read(&path).expect("fixture");
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).expect("header");
        let meta = meta.metadata().clone().unwrap_or_default();
        let tensors = candle_core::safetensors::load(&path, &Device::Cpu).expect("tensors");
        Self { tensors, meta }
    }

    fn get(&self, key: &str) -> Tensor {
        self.tensors.get(key).unwrap_or_else(|| panic!("fixture lacks {key}")).to_dtype(DType::F64).unwrap()
    }

    fn vec(&self, key: &str) -> Vec<f64> {
        self.get(key).flatten_all().unwrap().to_vec1::<f64>().unwrap()
    }

    fn json(&self, key: &str) -> serde_json::Value {
        serde_json::from_str(&self.meta[key]).unwrap()
    }

    fn boxes(&self, c: &str) -> Vec<[f64; 4]> {
        self.vec(&format!("boxes.{c}")).chunks(4).map(|b| [b[0], b[1], b[2], b[3]]).collect()
    }

    /// A tensor of `shape` from the formula and `init.{net}.{key}`.
    fn formula(&self, net: &str, key: &str, shape: &[usize]) -> Tensor {
        let [amp, off] = self.vec(&format!("init.{net}.{key}"))[..] else { panic!("init.{net}.{key}") };
        let phase = formula_phase(key);
        let n: usize = shape.iter().product();
        let values: Vec<f64> =
            (0..n).map(|i| off + amp * std::f64::consts::SQRT_2 * (0.37 * i as f64 + phase).sin()).collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    /// The frozen VGG19 of the perceptual loss, when the fixture has one.
    fn vgg(&self) -> Option<PerceptualLoss> {
        let keys = self.meta.get("keys.vgg")?;
        let widths = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512];
        let convs = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34];
        let mut tensors = HashMap::new();
        let mut cin = 3;
        for (i, cout) in convs.iter().zip(widths) {
            for (name, shape) in [("weight", vec![cout, cin, 3, 3]), ("bias", vec![cout])] {
                let key = format!("features.{i}.{name}");
                assert!(keys.split(',').any(|k| k == key), "keys.vgg lacks {key}");
                tensors.insert(key.clone(), self.formula("vgg", &key, &shape));
            }
            cin = cout;
        }
        Some(PerceptualLoss::from_tensors(&tensors, Path::new("formula"), &Device::Cpu, DType::F64).unwrap())
    }

    /// Sets every parameter of `net` from the formula; the key set must be the fixture's.
    fn set_params(&self, params: &Params, net: &str) {
        let mut want: Vec<&str> = self.meta[&format!("keys.{net}")].split(',').collect();
        let mut have: Vec<String> = params.named(|_| true).into_iter().map(|(k, _)| k).collect();
        want.sort();
        have.sort();
        assert_eq!(have, want, "{net}: parameter names");
        for (key, var) in params.named(|_| true) {
            var.set(&self.formula(net, &key, var.dims())).unwrap();
        }
    }
}

/// `2 pi ((sum_j (j + 1) byte_j) mod 997) / 997`.
fn formula_phase(key: &str) -> f64 {
    let s: u64 = key.bytes().enumerate().map(|(j, b)| (j as u64 + 1) * b as u64).sum();
    2.0 * std::f64::consts::PI * (s % 997) as f64 / 997.0
}

/// `[sum, sum of squares, dot with sin(1.1 i + 0.5), max |x|, x[0..8]]`.
fn summary(t: &Tensor) -> Vec<f64> {
    let v = t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let dot: f64 = v.iter().enumerate().map(|(i, x)| x * (1.1 * i as f64 + 0.5).sin()).sum();
    let mut out =
        vec![v.iter().sum(), v.iter().map(|x| x * x).sum(), dot, v.iter().fold(0.0, |m: f64, x| m.max(x.abs()))];
    out.extend((0..8).map(|k| v.get(k).copied().unwrap_or(0.0)));
    out
}

/// Checks a summary against the reference within `tol` of the tensor's magnitude: sums and dot
/// products relative to the norm times the square root of the count, elements relative to the
/// largest magnitude. Returns the worst relative error.
fn compare(what: &str, got: &[f64], want: &[f64], n: usize, tol: f64) -> f64 {
    let norm = want[1].sqrt();
    let big = want[3];
    let scale_sum = (norm * (n as f64).sqrt()).max(1e-300);
    let mut worst: f64 = 0.0;
    let mut check = |label: &str, g: f64, w: f64, scale: f64| {
        let err = if scale > 0.0 { (g - w).abs() / scale } else { (g - w).abs() };
        worst = worst.max(err);
        assert!(err <= tol, "{what}: {label} {g:e} vs {w:e} (error {err:.2e} of the magnitude)");
    };
    check("sum", got[0], want[0], scale_sum);
    check("sum of squares", got[1], want[1], want[1].max(1e-300));
    check("dot", got[2], want[2], scale_sum);
    check("max", got[3], want[3], big);
    for k in 0..8.min(n) {
        check(&format!("[{k}]"), got[4 + k], want[4 + k], big);
    }
    worst
}

struct Setup {
    fx: Fixture,
    g: (Params, GfpGanV1Clean),
    d: (Params, StyleGan2Discriminator),
    comps: Vec<(Params, FacialComponentDiscriminator)>,
    vgg: Option<PerceptualLoss>,
    batch: Batch,
    noises: Vec<Tensor>,
}

fn setup(name: &str) -> Setup {
    let fx = Fixture::load(name);
    let dev = Device::Cpu;
    let gj = fx.json("g_config");
    let gcfg = Config {
        out_size: gj["out_size"].as_u64().unwrap() as usize,
        num_style_feat: gj["num_style_feat"].as_u64().unwrap() as usize,
        channel_multiplier: gj["channel_multiplier"].as_f64().unwrap(),
        narrow: gj["narrow"].as_f64().unwrap(),
        sft_half: gj["sft_half"].as_bool().unwrap(),
        different_w: gj["different_w"].as_bool().unwrap(),
        num_mlp: gj["num_mlp"].as_u64().unwrap() as usize,
        input_is_latent: true,
    };
    let gp = Params::empty(&dev, DType::F64);
    let g = GfpGanV1Clean::new(gp.builder(), &gcfg).unwrap();
    fx.set_params(&gp, "g");

    let dj = fx.json("d_config");
    let dcfg = DiscriminatorConfig {
        channel_multiplier: dj["channel_multiplier"].as_f64().unwrap(),
        narrow: dj["narrow"].as_f64().unwrap(),
        stddev_group: dj["stddev_group"].as_u64().unwrap() as usize,
        ..DiscriminatorConfig::new(gcfg.out_size)
    };
    let dp = Params::empty(&dev, DType::F64);
    let d = StyleGan2Discriminator::new(dp.builder(), &dcfg).unwrap();
    fx.set_params(&dp, "d");
    let comps = COMPONENTS
        .iter()
        .map(|c| {
            let p = Params::empty(&dev, DType::F64);
            let net = FacialComponentDiscriminator::new(p.builder()).unwrap();
            fx.set_params(&p, &format!("d_{c}"));
            (p, net)
        })
        .collect();
    let batch = Batch {
        lq: fx.get("lq"),
        gt: fx.get("gt"),
        boxes: [fx.boxes("left_eye"), fx.boxes("right_eye"), fx.boxes("mouth")],
    };
    // randomize_noise=False: the decoder's stored noise buffers.
    let noises = g.decoder().stored_noises().iter().map(|t| t.detach()).collect();
    let vgg = fx.vgg();
    Setup { fx, g: (gp, g), d: (dp, d), comps, vgg, batch, noises }
}

impl Setup {
    fn nets(&self) -> Nets<'_> {
        Nets {
            g: &self.g.1,
            d: Some(&self.d.1),
            components: Some([&self.comps[0].1, &self.comps[1].1, &self.comps[2].1]),
            identity: None,
            perceptual: self.vgg.as_ref(),
        }
    }

    /// Checks the gradient of `loss` (the fixture's term `term`) for every parameter of `net`.
    fn check_grads(&self, term: &str, loss: &Tensor, net: &str, params: &Params, tol: f64) -> f64 {
        let want_loss = self.fx.vec(&format!("loss.{term}"))[0];
        let got_loss = loss.to_scalar::<f64>().unwrap();
        assert!(
            (got_loss - want_loss).abs() <= 1e-9 * want_loss.abs().max(1.0),
            "{term}: loss {got_loss} vs {want_loss}"
        );
        let grads = loss.backward().unwrap();
        let nograd: Vec<&str> = self.fx.meta.get(&format!("nograd.{term}")).map_or(vec![], |s| s.split(',').collect());
        let mut worst: f64 = 0.0;
        for (key, var) in params.named(|_| true) {
            let Some(want) = self
                .fx
                .tensors
                .contains_key(&format!("grad.{term}.{net}.{key}"))
                .then(|| self.fx.vec(&format!("grad.{term}.{net}.{key}")))
            else {
                assert!(key.contains(".noises."), "fixture lacks grad.{term}.{net}.{key}");
                continue;
            };
            let got = match grads.get(var.as_tensor()) {
                Some(g) => summary(g),
                None => {
                    assert!(
                        nograd.contains(&format!("{net}.{key}").as_str()) || want[1] == 0.0,
                        "{term}: no gradient for {net}.{key}, PyTorch has one"
                    );
                    continue;
                }
            };
            if want[1] == 0.0 {
                assert!(got[1] <= 1e-20, "{term}: {net}.{key} should have a zero gradient, got {got:?}");
                continue;
            }
            worst = worst.max(compare(&format!("{term} {net}.{key}"), &got, &want, var.elem_count(), tol));
        }
        worst
    }
}

const TOL: f64 = 1e-4;

fn forward_and_generator_terms(name: &str) {
    let s = setup(name);
    // Forward values first: a wrong formula or architecture shows here before any gradient.
    // Every term at weight 1, but the style part of the perceptual loss, which BasicSR's
    // PerceptualLoss weighs itself (50, the official option) and the fixture includes.
    let w = Weights { perceptual_style: 50.0, ..Weights::ones() };
    let (fwd, terms) = s.nets().generator_terms(&s.batch, &s.noises, &w).unwrap();
    compare("image", &summary(&fwd.image), &s.fx.vec("fwdsum.image"), fwd.image.elem_count(), 1e-9);
    for (i, rgb) in fwd.rgbs.iter().enumerate() {
        compare(
            &format!("out_rgb.{i}"),
            &summary(rgb),
            &s.fx.vec(&format!("fwdsum.out_rgb.{i}")),
            rgb.elem_count(),
            1e-9,
        );
    }
    let size = s.g.1.config().out_size;
    for (c, crop) in COMPONENTS.iter().zip(crops(&s.batch.gt, &s.batch.boxes, size).unwrap()) {
        let key = format!("fwdsum.crop.{c}.real");
        compare(&key, &summary(&crop), &s.fx.vec(&key), crop.elem_count(), 1e-9);
    }
    let names: Vec<&str> = terms.iter().map(|(n, _)| *n).collect();
    let mut want = vec!["l1", "pyramid"];
    if let Some(vgg) = &s.vgg {
        want.extend(["perceptual", "percep_style"]);
        let feats = vgg.features(&fwd.image).unwrap();
        for (f, layer) in feats.iter().zip(["conv1_2", "conv2_2", "conv3_4", "conv4_4", "conv5_4"]) {
            let key = format!("fwdsum.vgg.{layer}");
            compare(&key, &summary(f), &s.fx.vec(&key), f.elem_count(), 1e-7);
        }
    }
    want.extend(["g_gan", "comp_gan", "comp_style"]);
    assert_eq!(names, want);
    for (term, loss) in &terms {
        let worst = s.check_grads(term, loss, "g", &s.g.0, TOL);
        eprintln!("{name} {term}: worst gradient error {worst:.1e} of the magnitude");
    }
}

fn discriminator_terms(name: &str) {
    let s = setup(name);
    let fake = s.g.1.forward_train(&s.batch.lq, &s.noises).unwrap().image.detach();
    let w = Weights { r1: 1.0, ..Weights::ones() };
    let terms = s.nets().discriminator_terms(&s.batch, &fake, &w).unwrap();
    let got_r1 = s.d.1.input_gradient(&s.batch.gt).unwrap();
    compare("r1_grad", &summary(&got_r1), &s.fx.vec("fwdsum.r1_grad"), got_r1.elem_count(), 1e-9);
    for (term, loss) in &terms {
        let worst = s.check_grads(term, loss, "d", &s.d.0, TOL);
        eprintln!("{name} {term}: worst gradient error {worst:.1e} of the magnitude");
    }
    // The component discriminators' losses summed, as the fixture's d_comp; each net its own
    // gradient.
    let losses = s.nets().component_terms(&s.batch, &fake).unwrap();
    let d_comp = total(&COMPONENTS.iter().copied().zip(losses).collect()).unwrap();
    for (c, (p, _)) in COMPONENTS.iter().zip(&s.comps) {
        let worst = s.check_grads("d_comp", &d_comp, &format!("d_{c}"), p, TOL);
        eprintln!("{name} d_comp d_{c}: worst gradient error {worst:.1e} of the magnitude");
    }
}

/// Three Adam steps of the generator (on l1 + pyramid) and of the discriminator (on d_gan
/// against the first generator's output), with the official rates and betas.
fn adam_steps(name: &str) {
    let s = setup(name);
    let adam = |key: &str, params: &Params, only: &dyn Fn(&str) -> bool| {
        let j = s.fx.json(key);
        let betas = j["betas"].as_array().unwrap();
        let p = AdamParams {
            lr: j["lr"].as_f64().unwrap(),
            beta1: betas[0].as_f64().unwrap(),
            beta2: betas[1].as_f64().unwrap(),
            eps: j["eps"].as_f64().unwrap(),
        };
        Adam::new(params.named(only), p)
    };
    let g_only = Weights {
        gan: 0.0,
        component_gan: 0.0,
        component_style: 0.0,
        perceptual: 0.0,
        perceptual_style: 0.0,
        ..Weights::ones()
    };
    let fake = s.g.1.forward_train(&s.batch.lq, &s.noises).unwrap().image.detach();
    let mut opt_g = adam("adam_g", &s.g.0, &|k| !k.contains(".noises."));
    let mut opt_d = adam("adam_d", &s.d.0, &|_| true);
    let (g_losses, d_losses) = (s.fx.vec("adam3_loss.g"), s.fx.vec("adam3_loss.d"));
    for step in 0..3 {
        let (_, terms) = s.nets().generator_terms(&s.batch, &s.noises, &g_only).unwrap();
        let loss = total(&terms).unwrap();
        let got = loss.to_scalar::<f64>().unwrap();
        assert!(
            (got - g_losses[step]).abs() < 1e-8 * g_losses[step].abs(),
            "G step {step}: {got} vs {}",
            g_losses[step]
        );
        opt_g.step(&loss.backward().unwrap()).unwrap();
        let d_only = Weights { r1: 0.0, ..Weights::ones() };
        let loss = total(&s.nets().discriminator_terms(&s.batch, &fake, &d_only).unwrap()).unwrap();
        let got = loss.to_scalar::<f64>().unwrap();
        assert!(
            (got - d_losses[step]).abs() < 1e-8 * d_losses[step].abs(),
            "D step {step}: {got} vs {}",
            d_losses[step]
        );
        opt_d.step(&loss.backward().unwrap()).unwrap();
    }
    for (net, params) in [("g", &s.g.0), ("d", &s.d.0)] {
        for (key, var) in params.named(|k| !k.contains(".noises.")) {
            let want = s.fx.vec(&format!("adam3.{net}.{key}"));
            compare(&format!("adam3 {net}.{key}"), &summary(var.as_tensor()), &want, var.elem_count(), TOL);
        }
    }
}

#[test]
fn t64_generator_gradients_equal_pytorch() {
    forward_and_generator_terms("t64");
}

#[test]
fn t128_generator_gradients_equal_pytorch() {
    forward_and_generator_terms("t128");
}

#[test]
fn t64_discriminator_gradients_equal_pytorch() {
    discriminator_terms("t64");
}

#[test]
fn t128_discriminator_gradients_equal_pytorch() {
    discriminator_terms("t128");
}

#[test]
fn t64_three_adam_steps_equal_pytorch() {
    adam_steps("t64");
}

#[test]
fn t128_three_adam_steps_equal_pytorch() {
    adam_steps("t128");
}
