//! Batching: aligned faces go through the network `batch_size` at a time, whoever asks (the
//! photo pipeline, the stream restorer, the CLI's `.npy` arrays, a single already-aligned face).

use candle_core::{Device, Tensor};

use super::noise::NoiseMode;
use super::restorer::Restorer;
use crate::error::{Error, Result};
use crate::frame::Rgb;

/// The decoder noise of the faces being restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceNoise<'a> {
    /// One noise set for every face of a pass (the stored maps, or drawn from a seed per pass).
    Shared(NoiseMode),
    /// Each face its own noise drawn from its own seed, one seed per face (video: a track keeps
    /// its noise from frame to frame, whatever batch its face lands in); `None`: the stored maps.
    PerFace(&'a [Option<u64>]),
}

impl From<NoiseMode> for FaceNoise<'_> {
    fn from(mode: NoiseMode) -> Self {
        FaceNoise::Shared(mode)
    }
}

/// Restores aligned RGB crops (all the model's size) in passes of at most `batch_size`.
pub fn restore_crops(restorer: &Restorer, crops: &[Rgb], batch_size: usize, noise: FaceNoise) -> Result<Vec<Rgb>> {
    check_seeds(noise, crops.len())?;
    let batch_size = batch_size.max(1);
    let mut restored = Vec::with_capacity(crops.len());
    for (i, chunk) in crops.chunks(batch_size).enumerate() {
        let out = restore_pass(restorer, &faces_to_tensor(chunk)?, noise, i * batch_size)?;
        restored.extend(tensor_to_faces(&out)?);
    }
    Ok(restored)
}

/// Restores an `(n, 3, s, s)` array of faces in [-1, 1] in passes of at most `batch_size`;
/// the result is `(n, 3, s, s)` f32 on the CPU.
pub fn restore_tensor(restorer: &Restorer, faces: &Tensor, batch_size: usize, noise: FaceNoise) -> Result<Tensor> {
    restorer.check_input(faces.dims())?;
    let n = faces.dim(0)?;
    check_seeds(noise, n)?;
    let batch_size = batch_size.max(1);
    let passes = (0..n)
        .step_by(batch_size)
        .map(|start| restore_pass(restorer, &faces.narrow(0, start, batch_size.min(n - start))?, noise, start))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&passes, 0)?)
}

/// One pass over `x`, the faces from number `first` on.
fn restore_pass(restorer: &Restorer, x: &Tensor, noise: FaceNoise, first: usize) -> Result<Tensor> {
    match noise {
        FaceNoise::Shared(mode) => restorer.restore(x, mode),
        FaceNoise::PerFace(seeds) => {
            let noises = restorer.noises_for_faces(&seeds[first..first + x.dim(0)?])?;
            restorer.restore_with_noises(x, &noises)
        }
    }
}

fn check_seeds(noise: FaceNoise, faces: usize) -> Result<()> {
    match noise {
        FaceNoise::PerFace(seeds) if seeds.len() != faces => {
            Err(Error::Input(format!("{} noise seeds for {faces} faces", seeds.len())))
        }
        _ => Ok(()),
    }
}

/// Square RGB faces to the network's input: `(n, 3, s, s)` with values in [-1, 1].
pub fn faces_to_tensor(faces: &[Rgb]) -> Result<Tensor> {
    let s = faces.first().map(|f| f.w).ok_or_else(|| Error::Input("no faces".into()))?;
    Ok(Tensor::from_vec(faces_to_nchw(faces, s)?, (faces.len(), 3, s, s), &Device::Cpu)?)
}

/// `s`-square RGB faces (0..255) as the network's planes, `n x 3 x s x s` values in [-1, 1]
/// (also what the server and its client send as FP32).
pub fn faces_to_nchw(faces: &[Rgb], s: usize) -> Result<Vec<f32>> {
    let mut data = Vec::with_capacity(faces.len() * 3 * s * s);
    for face in faces {
        if face.w != s || face.h != s {
            return Err(Error::Input(format!("faces must all be {s}x{s}, got {}x{}", face.w, face.h)));
        }
        for k in 0..3 {
            data.extend(face.data.chunks_exact(3).map(|p| p[k] / 127.5 - 1.0));
        }
    }
    Ok(data)
}

/// Planes of `h x w` faces (`n x 3 x h x w` values about [-1, 1]) back to RGB faces on the
/// 0..255 scale; `clamp`: to that range first, as the official code clamps its output.
pub fn nchw_to_faces(planes: &[f32], (h, w): (usize, usize), clamp: bool) -> Vec<Rgb> {
    planes
        .chunks_exact(3 * h * w)
        .map(|face| {
            let plane = |k: usize| &face[k * h * w..(k + 1) * h * w];
            let (r, g, b) = (plane(0), plane(1), plane(2));
            let level = |v: f32| (if clamp { v.clamp(-1.0, 1.0) } else { v } + 1.0) * 127.5;
            let data = (0..h * w).flat_map(|p| [r[p], g[p], b[p]]).map(level).collect();
            Rgb { w, h, data }
        })
        .collect()
}

/// The network's output back to RGB faces on the 0..255 scale (clamped to that range, as the
/// official code clamps to [-1, 1]).
pub fn tensor_to_faces(t: &Tensor) -> Result<Vec<Rgb>> {
    let (_, c, h, w) = t.dims4()?;
    if c != 3 {
        return Err(Error::Input(format!("expected 3 channels, got {c}")));
    }
    let planes = t.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(nchw_to_faces(&planes, (h, w), true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::PixelLayout;

    #[test]
    fn u8_round_trips_through_the_network_range() {
        let pixels: Vec<u8> = (0..=255u8).flat_map(|v| [v, 255 - v, v / 2]).collect();
        let img = Rgb::from_u8(&pixels, 16, 16, PixelLayout::Rgb).unwrap();
        let t = faces_to_tensor(&[img.clone()]).unwrap();
        let max = t.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(max <= 1.0);
        let back = tensor_to_faces(&t).unwrap().remove(0);
        let mut out = vec![0u8; pixels.len()];
        back.write_u8(&mut out, PixelLayout::Rgb).unwrap();
        assert_eq!(out, pixels);
    }

    #[test]
    fn network_output_is_clamped_and_rounded() {
        let t = Tensor::from_vec(vec![-2.0f32, 0.0, 2.0], (1, 3, 1, 1), &Device::Cpu).unwrap();
        let face = tensor_to_faces(&t).unwrap().remove(0);
        let mut out = [0u8; 3];
        face.write_u8(&mut out, PixelLayout::Rgb).unwrap();
        assert_eq!(out, [0, 128, 255]);
    }
}
