//! Photos: analyze the faces of a frame, align each to the FFHQ template, restore them together
//! in batches, and paste them back.

use std::path::Path;

use crate::align::{AlignedFace, align};
use crate::analyze::{AnalyzerOptions, Face, FaceAnalyzer};
use crate::blend::{PasteOptions, paste};
use crate::error::{Error, Result};
use crate::frame::Rgb;
use crate::restore::{NoiseMode, Restorer, restore_crops};

#[derive(Debug, Clone, Copy)]
pub struct PhotoOptions {
    pub analysis: AnalyzerOptions,
    pub paste: PasteOptions,
    /// Faces per network pass.
    pub batch_size: usize,
    pub noise: NoiseMode,
}

impl Default for PhotoOptions {
    fn default() -> Self {
        Self {
            analysis: AnalyzerOptions::default(),
            paste: PasteOptions::default(),
            batch_size: 8,
            noise: NoiseMode::Stored,
        }
    }
}

/// A face that went through the network: its aligned crop before and after.
pub struct Restored {
    pub face: Face,
    pub aligned: AlignedFace,
    pub restored: Rgb,
}

pub struct PhotoPipeline {
    analyzer: FaceAnalyzer,
    opts: PhotoOptions,
}

impl PhotoPipeline {
    /// `face_models`: the face-api model folder (weights/face-api/model).
    pub fn new(face_models: &Path, opts: PhotoOptions) -> Result<Self> {
        if opts.batch_size == 0 {
            return Err(Error::Input("batch size must be at least 1".into()));
        }
        Ok(Self { analyzer: FaceAnalyzer::new(face_models, opts.analysis)?, opts })
    }

    /// The noise of the next `restore` calls.
    pub fn set_noise(&mut self, noise: NoiseMode) {
        self.opts.noise = noise;
    }

    /// Restores every face of `frame` in place; returns the faces with their aligned crops
    /// before and after restoration.
    pub fn restore(&mut self, frame: &mut Rgb, restorer: &Restorer) -> Result<Vec<Restored>> {
        let aligned = find_and_align(&mut self.analyzer, frame, restorer.config().out_size)?;
        let crops: Vec<Rgb> = aligned.iter().map(|(_, a)| a.crop.clone()).collect();
        let restored = restore_crops(restorer, &crops, self.opts.batch_size, self.opts.noise.into())?;
        let mut out = Vec::with_capacity(aligned.len());
        for ((face, aligned), restored) in aligned.into_iter().zip(restored) {
            paste(frame, &aligned, &restored, self.opts.paste);
            out.push(Restored { face, aligned, restored });
        }
        Ok(out)
    }
}

/// The faces of a photo and their crops aligned at `size` (faces whose points give no
/// alignment are left out): the photo pipeline's first steps, also what `align` and
/// `prepare-data` write.
pub fn find_and_align(analyzer: &mut FaceAnalyzer, frame: &Rgb, size: usize) -> Result<Vec<(Face, AlignedFace)>> {
    let faces = analyzer.analyze(frame)?;
    Ok(faces.into_iter().filter_map(|f| align(frame, &f.five, size).map(|a| (f, a))).collect())
}
