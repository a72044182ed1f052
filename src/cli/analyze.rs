//! `gfpgan analyze`: faces, five points and expressions of photos, one JSON line each.

use std::time::Instant;

use gfpgan::analyze::{Face, FaceAnalyzer};
use gfpgan::{Result, Rgb};

use super::common::{PhotoArgs, for_each_photo, photo_json, photos};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    photos: PhotoArgs,
}

pub fn run(args: Args) -> Result<()> {
    let opts = gfpgan::analyze::AnalyzerOptions { expressions: true, ..args.photos.analysis()? };
    let mut analyzer = FaceAnalyzer::new(&args.photos.face_models, opts)?;
    for_each_photo(&photos(&args.photos.inputs)?, |photo| {
        let file = photo.path.as_path();
        let start = Instant::now();
        let faces = analyzer.analyze(&Rgb::open(file)?)?;
        let refs: Vec<&Face> = faces.iter().collect();
        Ok(serde_json::to_string(&photo_json(file, &refs, start.elapsed().as_secs_f64()))
            .expect("JSON values serialise"))
    })
}
