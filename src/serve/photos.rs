//! The plain endpoints' work: a whole photo in, its faces found, aligned, restored through the
//! same batcher as the protocol's requests, and pasted back (`/v1/restore`); or only found
//! (`/v1/analyze`). The steps are the library's photo pipeline, with the network call made
//! asynchronous so that a photo's faces are batched with everybody else's.

use std::path::PathBuf;
use std::time::Instant;

use super::batcher::Batcher;
use super::error::ServeError;
use crate::analyze::{AnalyzerOptions, FaceAnalyzer};
use crate::blend::{PasteOptions, paste};
use crate::frame::Rgb;
use crate::pipeline::{aligned_crop, find_and_align};

/// Largest side of a photo the server decodes (16 Mpx, about 200 MB as floats).
pub const MAX_PHOTO_SIDE: u32 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestoreQuery {
    /// Strength of the restoration, 0 (original) to 1.
    pub weight: f32,
    /// The photo is an aligned face already: restore it whole.
    pub aligned: bool,
}

impl Default for RestoreQuery {
    fn default() -> Self {
        Self { weight: 1.0, aligned: false }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyzeQuery {
    /// Also classify each face's expression.
    pub expressions: bool,
}

/// A job for an analysis thread: runs with its analyzer (`None` when the models failed to load).
type Job = Box<dyn FnOnce(Result<&mut FaceAnalyzer, ServeError>) + Send>;

/// Threads that each own a face analyzer (its detector cannot move between threads), loaded
/// when the first photo comes, and take the photos' analysis in turn.
pub struct Photos {
    jobs: crossbeam_channel::Sender<Job>,
}

impl Photos {
    /// `threads` analysis threads over the face-api models in `face_models`.
    pub fn new(face_models: PathBuf, threads: usize) -> Self {
        let (jobs, rx) = crossbeam_channel::unbounded::<Job>();
        for i in 0..threads.max(1) {
            let (rx, models) = (rx.clone(), face_models.clone());
            let _ = std::thread::Builder::new().name(format!("gfpgan-serve-analysis-{i}")).spawn(move || {
                let mut analyzer: Option<Result<FaceAnalyzer, ServeError>> = None;
                for job in rx {
                    let a = analyzer.get_or_insert_with(|| {
                        FaceAnalyzer::new(&models, AnalyzerOptions::default())
                            .map_err(|e| ServeError::internal(format!("cannot load the face models: {}", e.one_line())))
                    });
                    job(a.as_mut().map_err(|e| e.clone()));
                }
            });
        }
        Self { jobs }
    }

    /// Runs `f` on an analysis thread and waits for it without blocking the runtime.
    async fn with_analyzer<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut FaceAnalyzer) -> Result<T, ServeError> + Send + 'static,
    ) -> Result<T, ServeError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |analyzer| drop(tx.send(analyzer.and_then(f))));
        self.jobs.send(job).map_err(|_| ServeError::internal("the analysis threads stopped"))?;
        rx.await.map_err(|_| ServeError::internal("an analysis thread stopped"))?
    }

    /// The faces of a photo (`bytes`: PNG, JPEG or WebP) as JSON, as `gfpgan analyze` writes them.
    pub async fn analyze(&self, bytes: bytes::Bytes, q: AnalyzeQuery) -> Result<serde_json::Value, ServeError> {
        self.with_analyzer(move |analyzer| {
            let start = Instant::now();
            let frame = decode(&bytes)?;
            analyzer.set_expressions(q.expressions)?;
            let faces = analyzer.analyze(&frame)?;
            let faces: Vec<serde_json::Value> = faces.iter().map(|f| f.to_json()).collect();
            Ok(serde_json::json!({
                "width": frame.w, "height": frame.h, "faces": faces, "seconds": start.elapsed().as_secs_f64()
            }))
        })
        .await
    }

    /// The photo with its faces restored, as PNG, and the number of faces.
    pub async fn restore(
        &self,
        batcher: &Batcher,
        bytes: bytes::Bytes,
        q: RestoreQuery,
    ) -> Result<(Vec<u8>, usize), ServeError> {
        if !(0.0..=1.0).contains(&q.weight) {
            return Err(ServeError::bad(format!("weight must be in 0..1, got {}", q.weight)));
        }
        let size = batcher.face_size();
        let (frame, aligned) = if q.aligned {
            let frame = blocking(move || decode(&bytes)).await?;
            let face = aligned_crop(&frame, size)?;
            (frame, vec![face])
        } else {
            self.with_analyzer(move |analyzer| {
                let frame = decode(&bytes)?;
                let aligned = find_and_align(analyzer, &frame, size)?.into_iter().map(|(_, a)| a).collect();
                Ok((frame, aligned))
            })
            .await?
        };
        let crops: Vec<Rgb> = aligned.iter().map(|a| a.crop.clone()).collect();
        let n = crops.len();
        let restored = if n == 0 { Vec::new() } else { batcher.restore(crops, vec![None; n]).await? };
        let feather = if q.aligned { 0.0 } else { PasteOptions::default().feather };
        let png = blocking(move || {
            let mut frame = frame;
            for (face, restored) in aligned.iter().zip(&restored) {
                paste(&mut frame, face, restored, PasteOptions { weight: q.weight, feather });
            }
            Ok(frame.encode_png()?)
        })
        .await?;
        Ok((png, n))
    }
}

fn decode(bytes: &[u8]) -> Result<Rgb, ServeError> {
    Rgb::decode(bytes, "request body", MAX_PHOTO_SIDE).map_err(|e| ServeError::bad(e.one_line()))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServeError> + Send + 'static,
) -> Result<T, ServeError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ServeError::internal(format!("task failed: {e}")))?
}
