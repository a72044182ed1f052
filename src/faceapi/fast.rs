//! The feature extractor for inference on the CPU, on plain NHWC arrays: the pointwise and the
//! first plain convolution run through the NHWC engine's packed matrix product (weights packed
//! once at load, the depthwise step writing its output straight into the layout the product
//! reads), biases, sums and ReLUs are loops over the arrays, and the faces of a batch run in
//! parallel, one per thread. The candle version (`feature_extractor`) stays the reference, and
//! the one gradients flow through; this one computes the same operations in the same order but
//! for the matrix products' summation order.

use rayon::prelude::*;

use super::feature_extractor::{FEATURES, INPUT_SIZE};
use super::ops::{MEAN_RGB, same_padding};
use super::tfjs::WeightMap;
use crate::error::Result;
use crate::nhwc::kernel::{KC, PackedB, a_offset, matmul_packed, padded_k, padded_rows};

/// One face's activations, `h x w x c`.
#[derive(Clone)]
struct Map {
    h: usize,
    w: usize,
    c: usize,
    data: Vec<f32>,
}

/// A convolution as a matrix product: `k x cout` packed weights and a bias.
struct Product {
    weights: PackedB,
    k: usize,
    cout: usize,
    bias: Vec<f32>,
}

impl Product {
    fn load(w: &WeightMap, prefix: &str, filter: &str, shape: &[usize]) -> Result<Self> {
        let (k, cout) = (shape[..3].iter().product(), shape[3]);
        let weights = PackedB::new(&w.get_vec(&format!("{prefix}/{filter}"), shape)?, k, cout);
        Ok(Product { weights, k, cout, bias: w.get_vec(&format!("{prefix}/bias"), &[cout])? })
    }

    /// `a` (the blocked left-hand matrix of `rows` rows) times the weights, plus the bias.
    fn apply(&self, a: &[f32], rows: usize, oh: usize, ow: usize) -> Map {
        let mut data = vec![0.0f32; rows * self.cout];
        matmul_packed(&mut data, self.cout, rows, a, &self.weights);
        for px in data.chunks_exact_mut(self.cout) {
            for (v, b) in px.iter_mut().zip(&self.bias) {
                *v += b;
            }
        }
        Map { h: oh, w: ow, c: self.cout, data }
    }
}

/// Calls `visit(row, taps)` for each output pixel of a 3x3 window with TF "SAME" padding and
/// stride `stride`: `row` is the pixel's index, `taps` the window's pixels inside the input as
/// (tap index `ky * 3 + kx`, channels), in (ky, kx) order.
fn for_each_window<'a>(x: &'a Map, stride: usize, mut visit: impl FnMut(usize, &[(usize, &'a [f32])])) {
    let (top, _) = same_padding(x.h, 3, stride);
    let (left, _) = same_padding(x.w, 3, stride);
    let (oh, ow) = (x.h.div_ceil(stride), x.w.div_ceil(stride));
    let mut taps = Vec::with_capacity(9);
    for oy in 0..oh {
        for ox in 0..ow {
            taps.clear();
            for ky in 0..3 {
                let Some(iy) = (oy * stride + ky).checked_sub(top).filter(|&y| y < x.h) else { continue };
                for kx in 0..3 {
                    let Some(ix) = (ox * stride + kx).checked_sub(left).filter(|&v| v < x.w) else { continue };
                    taps.push((ky * 3 + kx, &x.data[(iy * x.w + ix) * x.c..][..x.c]));
                }
            }
            visit(oy * ow + ox, &taps);
        }
    }
}

/// A row of `values` into row `row` of a blocked left-hand matrix with `kp` columns: whole
/// chunks of `KC` contiguous values (`values` is zero-padded to `kp` by the caller or shorter).
fn put_row(a: &mut [f32], row: usize, kp: usize, values: &[f32]) {
    for (chunk, v) in values.chunks(KC).enumerate() {
        let at = a_offset(row, chunk * KC, kp);
        a[at..at + v.len()].copy_from_slice(v);
    }
}

/// `dense0/conv0`: a plain 3x3 convolution, stride 2, as a product on the 3x3 windows.
struct Plain(Product);

impl Plain {
    fn forward(&self, x: &Map) -> Map {
        let (oh, ow) = (x.h.div_ceil(2), x.w.div_ceil(2));
        let (rows, kp) = (oh * ow, padded_k(self.0.k));
        // Taps outside the input and the padded columns stay zero.
        let mut a = vec![0.0f32; padded_rows(rows) * kp];
        let mut window = vec![0.0f32; self.0.k];
        for_each_window(x, 2, |row, taps| {
            window.iter_mut().for_each(|v| *v = 0.0);
            for &(k, px) in taps {
                window[k * x.c..][..x.c].copy_from_slice(px);
            }
            put_row(&mut a, row, kp, &window);
        });
        self.0.apply(&a, rows, oh, ow)
    }
}

/// A separable convolution: the depthwise 3x3 step written into the product's layout, then the
/// pointwise product and the bias.
struct Separable {
    depthwise: Vec<f32>,
    pointwise: Product,
}

impl Separable {
    fn load(w: &WeightMap, prefix: &str, cin: usize, cout: usize) -> Result<Self> {
        Ok(Separable {
            depthwise: w.get_vec(&format!("{prefix}/depthwise_filter"), &[3, 3, cin, 1])?,
            pointwise: Product::load(w, prefix, "pointwise_filter", &[1, 1, cin, cout])?,
        })
    }

    fn forward(&self, x: &Map, stride: usize) -> Map {
        let (oh, ow) = (x.h.div_ceil(stride), x.w.div_ceil(stride));
        let (rows, kp) = (oh * ow, padded_k(x.c));
        let mut a = vec![0.0f32; padded_rows(rows) * kp];
        let mut acc = vec![0.0f32; x.c];
        for_each_window(x, stride, |row, taps| {
            // Taps summed in (ky, kx) order from zero, as the tfjs kernel (and `depthwise3x3`).
            acc.iter_mut().for_each(|v| *v = 0.0);
            for &(k, px) in taps {
                for ((a, &v), &f) in acc.iter_mut().zip(px).zip(&self.depthwise[k * x.c..][..x.c]) {
                    *a += v * f;
                }
            }
            put_row(&mut a, row, kp, &acc);
        });
        self.pointwise.apply(&a, rows, oh, ow)
    }
}

enum First {
    Plain(Plain),
    Separable(Separable),
}

struct Block {
    conv0: First,
    convs: [Separable; 3],
}

/// `relu(a + b)` and friends, element by element, grouped as the candle version groups them.
fn relu(mut m: Map) -> Map {
    m.data.iter_mut().for_each(|v| *v = v.max(0.0));
    m
}

fn sum(a: &Map, b: &Map) -> Map {
    Map { data: a.data.iter().zip(&b.data).map(|(x, y)| x + y).collect(), ..*a }
}

impl Block {
    fn forward(&self, x: &Map) -> Map {
        let out1 = relu(match &self.conv0 {
            First::Plain(c) => c.forward(x),
            First::Separable(c) => c.forward(x, 2),
        });
        let [c1, c2, c3] = &self.convs;
        let out2 = c1.forward(&out1, 1);
        let out3 = c2.forward(&relu(sum(&out1, &out2)), 1);
        let out4 = c3.forward(&relu(sum(&out1, &sum(&out2, &out3))), 1);
        relu(sum(&out1, &sum(&out2, &sum(&out3, &out4))))
    }
}

/// The four dense blocks and the average pool.
pub struct FastExtractor {
    blocks: Vec<Block>,
}

impl FastExtractor {
    pub fn load(w: &WeightMap) -> Result<Self> {
        let channels = [(3, 32), (32, 64), (64, 128), (128, 256)];
        let blocks = channels
            .iter()
            .enumerate()
            .map(|(i, &(cin, cout))| {
                let p = |name: &str| format!("dense{i}/{name}");
                let conv0 = if i == 0 {
                    First::Plain(Plain(Product::load(w, &p("conv0"), "filters", &[3, 3, cin, cout])?))
                } else {
                    First::Separable(Separable::load(w, &p("conv0"), cin, cout)?)
                };
                let sep = |k: usize| Separable::load(w, &p(&format!("conv{k}")), cout, cout);
                Ok(Block { conv0, convs: [sep(1)?, sep(2)?, sep(3)?] })
            })
            .collect::<Result<_>>()?;
        Ok(FastExtractor { blocks })
    }

    /// `n` faces of `INPUT_SIZE`² RGB pixels 0..255, NHWC in one slice -> `n x FEATURES`.
    pub fn forward(&self, faces: &[f32], n: usize) -> Vec<f32> {
        let face_len = INPUT_SIZE * INPUT_SIZE * 3;
        assert_eq!(faces.len(), n * face_len);
        let mut out = vec![0.0f32; n * FEATURES];
        out.par_chunks_exact_mut(FEATURES).zip(faces.par_chunks_exact(face_len)).for_each(|(dst, face)| {
            self.face(face, dst);
        });
        out
    }

    fn face(&self, face: &[f32], dst: &mut [f32]) {
        // (x - mean) / 255, a true division as face-api does.
        let data = face.chunks_exact(3).flat_map(|p| (0..3).map(move |k| (p[k] - MEAN_RGB[k]) / 255.0)).collect();
        let mut x = Map { h: INPUT_SIZE, w: INPUT_SIZE, c: 3, data };
        for block in &self.blocks {
            x = block.forward(&x);
        }
        // The 7x7 average pool: the sum over the pixels, divided by their count.
        let count = (x.h * x.w) as f32;
        dst.iter_mut().for_each(|v| *v = 0.0);
        for px in x.data.chunks_exact(x.c) {
            for (d, v) in dst.iter_mut().zip(px) {
                *d += v;
            }
        }
        dst.iter_mut().for_each(|v| *v /= count);
    }
}
