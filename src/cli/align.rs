//! `gfpgan align`: the faces of photos aligned to the FFHQ template, one PNG each (what
//! `restore --aligned`, `eval --gt` and training take).

use std::path::PathBuf;

use gfpgan::analyze::FaceAnalyzer;
use gfpgan::pipeline::find_and_align;
use gfpgan::{Error, Result, Rgb};

use super::common::{Inputs, PhotoArgs, check_arg, for_each_photo, photos};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    photos: PhotoArgs,
    /// Output folder: NAME_face0.png, NAME_face1.png, ... (largest face first).
    #[arg(short, long)]
    output: PathBuf,
    /// Side of the aligned faces, pixels.
    #[arg(long, default_value_t = 512)]
    size: usize,
}

pub fn run(args: Args) -> Result<()> {
    check_arg((16..=4096).contains(&args.size), "size", "in 16..=4096", args.size)?;
    let mut analyzer = FaceAnalyzer::new(&args.photos.face_models, args.photos.analysis()?)?;
    let photos = photos(&args.photos.inputs)?;
    let inputs = Inputs::new(photos.iter().map(|p| p.path.as_path()));
    std::fs::create_dir_all(&args.output).map_err(|e| Error::io(&args.output, e))?;
    for_each_photo(&photos, |photo| {
        let frame = Rgb::open(&photo.path)?;
        let faces = find_and_align(&mut analyzer, &frame, args.size)?;
        for (i, (_, aligned)) in faces.iter().enumerate() {
            let path = args.output.join(format!("{}_face{i}.png", photo.name));
            inputs.check(&path)?;
            aligned.crop.save(&path)?;
        }
        Ok(format!("{}: {} face(s) aligned", photo.path.display(), faces.len()))
    })
}
