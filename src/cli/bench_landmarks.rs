//! `gfpgan bench-landmarks`: how far the landmarks of small faces drift from those of the same
//! faces at full size (photos' faces shrunk to a few pixels), in eye distances.

use std::path::PathBuf;

use gfpgan::analyze::{AnalyzerOptions, DetectorOptions, FaceAnalyzer};
use gfpgan::eval::small_faces::landmark_drift;
use gfpgan::{Result, Rgb};

use super::common::{check_arg, image_files};

#[derive(clap::Args)]
pub struct Args {
    /// Photos (files or folders) whose faces are found at full size with the default detector.
    #[arg(required = true)]
    photos: Vec<PathBuf>,
    /// Face sizes to shrink to, pixels.
    #[arg(long, value_delimiter = ',', default_value = "16,20,24,32,40")]
    face_sizes: Vec<f32>,
    #[arg(long, default_value = "weights/face-api/model")]
    face_models: PathBuf,
    /// Also locate every face (at both sizes) in its mirror image and average.
    #[arg(long)]
    mirror_landmarks: bool,
}

/// A drift below this share of the eye distance counts as holding.
const GOOD: f32 = 0.05;

pub fn run(args: Args) -> Result<()> {
    for &s in &args.face_sizes {
        check_arg(s.is_finite() && (12.0..=512.0).contains(&s), "face-sizes", "each in 12..=512 pixels", s)?;
    }
    let photos: Vec<Rgb> = image_files(&args.photos)?.iter().map(|p| Rgb::open(p)).collect::<Result<_>>()?;
    let options = AnalyzerOptions { mirror_landmarks: args.mirror_landmarks, ..Default::default() };
    let mut full = FaceAnalyzer::new(&args.face_models, options)?;
    println!("drift from the full-size landmarks, % of the eye distance: median, mean, max, share under 5%");
    println!("{:>5} {:>6} {:>6} | {:^30} | {:^30}", "size", "faces", "found", "68 points", "5 alignment points");
    for &size in &args.face_sizes {
        // Small enough for the shrunk face, whose box may come out a little smaller.
        let detector = DetectorOptions { min_face_size: (0.75 * size).max(10.0), ..Default::default() };
        let mut small = FaceAnalyzer::new(&args.face_models, AnalyzerOptions { detector, ..options })?;
        let mut drifts = Vec::new();
        for photo in &photos {
            drifts.extend(landmark_drift(&mut full, &mut small, photo, size)?);
        }
        let found: Vec<_> = drifts.iter().flatten().collect();
        let stats = |mut v: Vec<f32>| {
            v.sort_by(f32::total_cmp);
            let n = v.len().max(1) as f32;
            let median = v.get(v.len() / 2).copied().unwrap_or(0.0);
            let mean = v.iter().sum::<f32>() / n;
            let max = v.last().copied().unwrap_or(0.0);
            let good = v.iter().filter(|&&d| d < GOOD).count() as f32 / n;
            format!("{:>6.1} {:>6.1} {:>6.1} {:>7.0}%", 100.0 * median, 100.0 * mean, 100.0 * max, 100.0 * good)
        };
        println!(
            "{:>5} {:>6} {:>6} | {:>30} | {:>30}",
            size,
            drifts.len(),
            found.len(),
            stats(found.iter().map(|d| d.all_68).collect()),
            stats(found.iter().map(|d| d.five).collect())
        );
    }
    Ok(())
}
