//! The hyper-parameters of a GFPGANv1Clean network, the tensor names and shapes they imply, and
//! their inference from a checkpoint's own tensors.

use std::collections::BTreeMap;

/// Tensor name -> shape, sorted by name.
pub type ShapeMap = BTreeMap<String, Vec<usize>>;

/// Constructor arguments of the official `GFPGANv1Clean` (gfpgan/archs/gfpganv1_clean_arch.py).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Side of the square input and output faces (a power of two).
    pub out_size: usize,
    /// Width of the StyleGAN2 latent code.
    pub num_style_feat: usize,
    pub channel_multiplier: f64,
    pub narrow: f64,
    /// Apply the SFT conditions to half of the decoder channels only.
    pub sft_half: bool,
    /// One latent code per decoder layer instead of one shared code.
    pub different_w: bool,
    /// Number of style-MLP layers (stored in the checkpoint, unused when `input_is_latent`).
    pub num_mlp: usize,
    /// The U-Net's `final_linear` output is used as the latent directly (true for every release).
    pub input_is_latent: bool,
}

impl Default for Config {
    /// The configuration of the released GFPGAN v1.2, v1.3 and v1.4 models.
    fn default() -> Self {
        Self {
            out_size: 512,
            num_style_feat: 512,
            channel_multiplier: 2.0,
            narrow: 1.0,
            sft_half: true,
            different_w: true,
            num_mlp: 8,
            input_is_latent: true,
        }
    }
}

/// Python's `int(x)` for the positive channel products of the official code.
fn py_int(x: f64) -> usize {
    x.max(0.0) as usize
}

impl Config {
    /// `log2(out_size)`, the number of resolution levels from 4x4 up, plus two.
    pub fn log_size(&self) -> usize {
        (self.out_size as f64).log2().floor() as usize
    }

    /// Number of U-Net levels (down blocks, up blocks, SFT levels, decoder upsampling levels).
    pub fn num_levels(&self) -> usize {
        self.log_size() - 2
    }

    /// Number of noise maps / style convolutions in the decoder.
    pub fn num_noises(&self) -> usize {
        self.num_levels() * 2 + 1
    }

    /// Number of latent codes the decoder consumes.
    pub fn num_latent(&self) -> usize {
        self.log_size() * 2 - 2
    }

    /// Channels at a resolution for a given narrow ratio, as in the official channel tables
    /// (same evaluation order, so the same rounding).
    fn channels_with(&self, resolution: usize, narrow: f64) -> usize {
        let cm = self.channel_multiplier;
        match resolution {
            4 | 8 | 16 | 32 => py_int(512.0 * narrow),
            64 => py_int(256.0 * cm * narrow),
            128 => py_int(128.0 * cm * narrow),
            256 => py_int(64.0 * cm * narrow),
            512 => py_int(32.0 * cm * narrow),
            1024 => py_int(16.0 * cm * narrow),
            _ => 0,
        }
    }

    /// StyleGAN2 decoder channels at a resolution.
    pub fn decoder_channels(&self, resolution: usize) -> usize {
        self.channels_with(resolution, self.narrow)
    }

    /// U-Net channels at a resolution (the official code halves the narrow ratio).
    pub fn unet_channels(&self, resolution: usize) -> usize {
        self.channels_with(resolution, self.narrow * 0.5)
    }

    /// U-Net down blocks `(cin, cout)`, from the input resolution down to 4x4; block `i` reads
    /// maps of side `out_size >> i`.
    pub fn down_blocks(&self) -> Vec<(usize, usize)> {
        (3..=self.log_size()).rev().map(|l| (self.unet_channels(1 << l), self.unet_channels(1 << (l - 1)))).collect()
    }

    /// U-Net up blocks `(cin, cout)`, from 4x4 up; block `i` writes maps of side `8 << i`, which
    /// its SFT branches read (`cout` wide).
    pub fn up_blocks(&self) -> Vec<(usize, usize)> {
        (3..=self.log_size()).map(|l| (self.unet_channels(1 << (l - 1)), self.unet_channels(1 << l))).collect()
    }

    /// StyleGAN2 decoder levels `(cin, cout)`, from 8x8 up.
    pub fn decoder_levels(&self) -> Vec<(usize, usize)> {
        (3..=self.log_size()).map(|l| (self.decoder_channels(1 << (l - 1)), self.decoder_channels(1 << l))).collect()
    }

    /// Output channels of the SFT branches of an up block `c` wide: all of the decoder's `2c`
    /// channels, or half of them with `sft_half`.
    pub fn sft_channels(&self, c: usize) -> usize {
        if self.sft_half { c } else { 2 * c }
    }

    /// Output width of `final_linear`.
    pub fn style_code_len(&self) -> usize {
        if self.different_w { self.num_latent() * self.num_style_feat } else { self.num_style_feat }
    }

    /// Side of the noise map of decoder layer `idx`.
    pub fn noise_size(idx: usize) -> usize {
        1 << ((idx + 5) / 2)
    }

    /// Checks what the official constructor would reject or build degenerate.
    pub fn validate(&self) -> Result<(), String> {
        if !self.out_size.is_power_of_two() || !(8..=1024).contains(&self.out_size) {
            return Err(format!("out_size {} is not a power of two in 8..=1024", self.out_size));
        }
        if self.num_style_feat == 0 {
            return Err("num_style_feat is 0".into());
        }
        for level in 2..=self.log_size() {
            let r = 1 << level;
            if self.unet_channels(r) == 0 || self.decoder_channels(r) == 0 {
                return Err(format!(
                    "narrow {} and channel_multiplier {} leave no channels at {r}x{r}",
                    self.narrow, self.channel_multiplier
                ));
            }
        }
        Ok(())
    }

    /// Every tensor of the official state dict (parameters and noise buffers) with its shape.
    pub fn expected_shapes(&self) -> ShapeMap {
        let mut m = ShapeMap::new();
        let mut add = |name: String, shape: &[usize]| {
            m.insert(name, shape.to_vec());
        };
        let conv = |add: &mut dyn FnMut(String, &[usize]), name: &str, cin: usize, cout: usize, k: usize| {
            add(format!("{name}.weight"), &[cout, cin, k, k]);
            add(format!("{name}.bias"), &[cout]);
        };
        let res_block = |add: &mut dyn FnMut(String, &[usize]), name: &str, cin: usize, cout: usize| {
            conv(add, &format!("{name}.conv1"), cin, cin, 3);
            conv(add, &format!("{name}.conv2"), cin, cout, 3);
            add(format!("{name}.skip.weight"), &[cout, cin, 1, 1]);
        };
        let s = self.num_style_feat;
        let mod_conv = |add: &mut dyn FnMut(String, &[usize]), name: &str, cin: usize, cout: usize, k: usize| {
            add(format!("{name}.modulated_conv.weight"), &[1, cout, cin, k, k]);
            add(format!("{name}.modulated_conv.modulation.weight"), &[cin, s]);
            add(format!("{name}.modulated_conv.modulation.bias"), &[cin]);
        };
        let style_conv = |add: &mut dyn FnMut(String, &[usize]), name: &str, cin: usize, cout: usize| {
            mod_conv(add, name, cin, cout, 3);
            add(format!("{name}.weight"), &[1]);
            add(format!("{name}.bias"), &[1, cout, 1, 1]);
        };
        let to_rgb = |add: &mut dyn FnMut(String, &[usize]), name: &str, cin: usize| {
            mod_conv(add, name, cin, 3, 1);
            add(format!("{name}.bias"), &[1, 3, 1, 1]);
        };

        // U-Net encoder.
        conv(&mut add, "conv_body_first", 3, self.unet_channels(self.out_size), 1);
        for (i, (cin, cout)) in self.down_blocks().into_iter().enumerate() {
            res_block(&mut add, &format!("conv_body_down.{i}"), cin, cout);
        }
        let c4 = self.unet_channels(4);
        conv(&mut add, "final_conv", c4, c4, 3);
        // U-Net decoder, its RGB heads and the SFT condition branches.
        for (i, (cin, cout)) in self.up_blocks().into_iter().enumerate() {
            res_block(&mut add, &format!("conv_body_up.{i}"), cin, cout);
            conv(&mut add, &format!("toRGB.{i}"), cout, 3, 1);
            for branch in ["condition_scale", "condition_shift"] {
                conv(&mut add, &format!("{branch}.{i}.0"), cout, cout, 3);
                conv(&mut add, &format!("{branch}.{i}.2"), cout, self.sft_channels(cout), 3);
            }
        }
        add("final_linear.weight".into(), &[self.style_code_len(), self.unet_channels(4) * 16]);
        add("final_linear.bias".into(), &[self.style_code_len()]);
        // StyleGAN2 decoder.
        let d = "stylegan_decoder";
        for j in 0..self.num_mlp {
            add(format!("{d}.style_mlp.{}.weight", 2 * j + 1), &[s, s]);
            add(format!("{d}.style_mlp.{}.bias", 2 * j + 1), &[s]);
        }
        let c4 = self.decoder_channels(4);
        add(format!("{d}.constant_input.weight"), &[1, c4, 4, 4]);
        style_conv(&mut add, &format!("{d}.style_conv1"), c4, c4);
        to_rgb(&mut add, &format!("{d}.to_rgb1"), c4);
        for (i, (cin, cout)) in self.decoder_levels().into_iter().enumerate() {
            style_conv(&mut add, &format!("{d}.style_convs.{}", 2 * i), cin, cout);
            style_conv(&mut add, &format!("{d}.style_convs.{}", 2 * i + 1), cout, cout);
            to_rgb(&mut add, &format!("{d}.to_rgbs.{i}"), cout);
        }
        for idx in 0..self.num_noises() {
            let r = Self::noise_size(idx);
            add(format!("{d}.noises.noise{idx}"), &[1, 1, r, r]);
        }
        m
    }

    /// Infers the configuration from a checkpoint's tensor shapes. It reads only a handful of
    /// tensors; the caller compares the full set against [`Config::expected_shapes`] afterwards.
    pub fn infer(shapes: &ShapeMap) -> Result<Self, String> {
        let get = |name: &str| -> Result<&Vec<usize>, String> {
            shapes.get(name).ok_or_else(|| format!("no tensor `{name}`"))
        };
        let dim = |name: &str, rank: usize, axis: usize| -> Result<usize, String> {
            let shape = get(name)?;
            if shape.len() != rank {
                return Err(format!("tensor `{name}` has shape {shape:?}, expected rank {rank}"));
            }
            Ok(shape[axis])
        };
        let d = "stylegan_decoder";
        let num_down = (0..).take_while(|i| shapes.contains_key(&format!("conv_body_down.{i}.conv1.weight"))).count();
        if num_down == 0 {
            return Err("no tensor `conv_body_down.0.conv1.weight`".into());
        }
        if num_down > 8 {
            return Err(format!("{num_down} U-Net down blocks: more than an output size of 1024 has"));
        }
        let out_size = 1usize << (num_down + 2);
        let num_mlp = (0..).take_while(|j| shapes.contains_key(&format!("{d}.style_mlp.{}.weight", 2 * j + 1))).count();
        let num_style_feat = dim(&format!("{d}.style_conv1.modulated_conv.modulation.weight"), 2, 1)?;
        let c4 = dim(&format!("{d}.constant_input.weight"), 4, 1)?;
        let narrow = c4 as f64 / 512.0;
        // The multiplier only shows from 64x64 up; smaller networks do not depend on it.
        let channel_multiplier = if out_size >= 64 {
            let c64 = dim(&format!("{d}.style_convs.6.modulated_conv.weight"), 5, 1)?;
            c64 as f64 / (256.0 * narrow)
        } else {
            1.0
        };
        let last = num_down - 1;
        let c_top = dim(&format!("conv_body_up.{last}.conv2.weight"), 4, 0)?;
        let sft_out = dim(&format!("condition_scale.{last}.2.weight"), 4, 0)?;
        let sft_half = sft_out == c_top;
        let linear_out = dim("final_linear.weight", 2, 0)?;
        let different_w = linear_out != num_style_feat;
        let cfg = Config {
            out_size,
            num_style_feat,
            channel_multiplier,
            narrow,
            sft_half,
            different_w,
            num_mlp,
            input_is_latent: true,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Compares a checkpoint's tensors with the full expected set; the message names the first
    /// few missing, unexpected and mis-shaped tensors and how many there are of each.
    pub fn check_shapes(&self, shapes: &ShapeMap) -> Result<(), String> {
        let expected = self.expected_shapes();
        let missing: Vec<&String> = expected.keys().filter(|k| !shapes.contains_key(*k)).collect();
        let extra: Vec<&String> = shapes.keys().filter(|k| !expected.contains_key(*k)).collect();
        let wrong: Vec<String> = expected
            .iter()
            .filter_map(|(k, want)| match shapes.get(k) {
                Some(got) if got != want => Some(format!("`{k}` has shape {got:?}, expected {want:?}")),
                _ => None,
            })
            .collect();
        let mut problems = Vec::new();
        let list = |names: &[&String]| {
            let shown: Vec<String> = names.iter().take(3).map(|n| format!("`{n}`")).collect();
            let more = if names.len() > 3 { format!(" and {} more", names.len() - 3) } else { String::new() };
            format!("{}{more}", shown.join(", "))
        };
        if !missing.is_empty() {
            problems.push(format!("missing tensor {}", list(&missing)));
        }
        if !extra.is_empty() {
            problems.push(format!("unexpected tensor {}", list(&extra)));
        }
        if !wrong.is_empty() {
            let more = if wrong.len() > 1 { format!(" (and {} more)", wrong.len() - 1) } else { String::new() };
            problems.push(format!("{}{more}", wrong[0]));
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }

    /// Multiply-adds x 2 of one face's forward pass (convolutions and linear layers; the
    /// auxiliary `toRGB` heads are not computed and not counted).
    pub fn flops_per_face(&self) -> f64 {
        let conv = |cin: usize, cout: usize, k: usize, side: usize| 2.0 * (cin * cout * k * k * side * side) as f64;
        let mut f = conv(3, self.unet_channels(self.out_size), 1, self.out_size);
        for (i, (cin, cout)) in self.down_blocks().into_iter().enumerate() {
            let side = self.out_size >> i;
            f += conv(cin, cin, 3, side) + conv(cin, cout, 3, side / 2) + conv(cin, cout, 1, side / 2);
        }
        let c4 = self.unet_channels(4);
        f += conv(c4, c4, 3, 4) + 2.0 * (c4 * 16 * self.style_code_len()) as f64;
        for (i, (cin, cout)) in self.up_blocks().into_iter().enumerate() {
            let side = 8 << i;
            f += conv(cin, cin, 3, side / 2) + conv(cin, cout, 3, side) + conv(cin, cout, 1, side);
            f += 2.0 * (conv(cout, cout, 3, side) + conv(cout, self.sft_channels(cout), 3, side));
        }
        let d4 = self.decoder_channels(4);
        f += conv(d4, d4, 3, 4) + conv(d4, 3, 1, 4);
        for (i, (cin, cout)) in self.decoder_levels().into_iter().enumerate() {
            let side = 8 << i;
            f += conv(cin, cout, 3, side) + conv(cout, cout, 3, side) + conv(cout, 3, 1, side);
        }
        f
    }

    /// Number of learned parameters (noise buffers excluded).
    pub fn num_parameters(&self) -> usize {
        self.expected_shapes()
            .iter()
            .filter(|(k, _)| !k.contains(".noises."))
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_config_round_trips_through_inference() {
        let cfg = Config::default();
        let shapes = cfg.expected_shapes();
        assert_eq!(Config::infer(&shapes).unwrap(), cfg);
        assert!(cfg.check_shapes(&shapes).is_ok());
    }

    #[test]
    fn small_configs_round_trip() {
        for (out_size, cm, narrow, sft_half, different_w) in [
            (64, 1.0, 0.0625, true, true),
            (128, 2.0, 0.125, false, false),
            (256, 1.0, 0.125, true, false),
            (32, 1.0, 0.25, false, true),
        ] {
            let cfg = Config {
                out_size,
                num_style_feat: 32,
                channel_multiplier: cm,
                narrow,
                sft_half,
                different_w,
                num_mlp: 2,
                input_is_latent: true,
            };
            assert_eq!(Config::infer(&cfg.expected_shapes()).unwrap(), cfg, "{cfg:?}");
        }
    }

    #[test]
    fn shape_check_names_the_problem() {
        let cfg = Config::default();
        let mut shapes = cfg.expected_shapes();
        shapes.remove("final_conv.bias");
        shapes.insert("final_conv.extra".into(), vec![1]);
        shapes.insert("toRGB.0.weight".into(), vec![3, 7, 1, 1]);
        let msg = cfg.check_shapes(&shapes).unwrap_err();
        assert!(msg.contains("missing tensor `final_conv.bias`"), "{msg}");
        assert!(msg.contains("unexpected tensor `final_conv.extra`"), "{msg}");
        assert!(msg.contains("`toRGB.0.weight` has shape [3, 7, 1, 1]"), "{msg}");
    }
}
