//! `gfpgan prepare-data`: a training dataset from photos (faces detected and aligned) or from
//! faces that are aligned already: `faces/*.png` and `components.json` (eyes and mouth).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gfpgan::analyze::FaceAnalyzer;
use gfpgan::pipeline::find_and_align;
use gfpgan::train::data::{COMPONENTS_FILE, ComponentFile, Components, FACES_DIR};
use gfpgan::{Error, Result, Rgb};

use super::common::{PhotoArgs, check_arg, photos, write_text};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    photos: PhotoArgs,
    /// The dataset folder to create (it must not exist or be empty).
    #[arg(short, long)]
    output: PathBuf,
    /// Side of the aligned faces, pixels.
    #[arg(long, default_value_t = 512)]
    size: usize,
    /// The inputs are faces aligned to the FFHQ template already (FFHQ, CelebA-HQ): taken
    /// whole, resized to --size.
    #[arg(long)]
    aligned: bool,
}

/// Why an input gave no face.
#[derive(Default)]
struct Skipped {
    unreadable: usize,
    no_face: usize,
    not_square: usize,
}

pub fn run(args: Args) -> Result<()> {
    check_arg((64..=4096).contains(&args.size), "size", "in 64..=4096", args.size)?;
    refuse_existing(&args.output)?;
    let mut analyzer = FaceAnalyzer::new(&args.photos.face_models, args.photos.analysis()?)?;
    let photos = photos(&args.photos.inputs)?;
    let faces_dir = args.output.join(FACES_DIR);
    std::fs::create_dir_all(&faces_dir).map_err(|e| Error::io(&faces_dir, e))?;
    let mut file = ComponentFile { size: args.size, faces: BTreeMap::new() };
    let mut skipped = Skipped::default();
    let bar = indicatif::ProgressBar::new(photos.len() as u64);
    for photo in &photos {
        bar.inc(1);
        let frame = match Rgb::open(&photo.path) {
            Ok(f) => f,
            Err(e) => {
                bar.suspend(|| eprintln!("skipped: {}", e.one_line()));
                skipped.unreadable += 1;
                continue;
            }
        };
        let faces = if args.aligned {
            if frame.w != frame.h {
                bar.suspend(|| {
                    eprintln!("skipped: {}: {}x{} is not a square aligned face", photo.path.display(), frame.w, frame.h)
                });
                skipped.not_square += 1;
                continue;
            }
            aligned_face(&analyzer, frame, args.size)?
        } else {
            faces_of_photo(&mut analyzer, &frame, args.size)?
        };
        if faces.is_empty() {
            bar.suspend(|| eprintln!("skipped: {}: no face found", photo.path.display()));
            skipped.no_face += 1;
        }
        for (i, (crop, components)) in faces.into_iter().enumerate() {
            let name = if args.aligned { format!("{}.png", photo.name) } else { format!("{}_face{i}.png", photo.name) };
            crop.save(&faces_dir.join(&name))?;
            file.faces.insert(name, components);
        }
    }
    bar.finish_and_clear();
    let json = serde_json::to_string_pretty(&file).expect("components serialise");
    write_text(&args.output.join(COMPONENTS_FILE), &json)?;
    let Skipped { unreadable, no_face, not_square } = skipped;
    println!(
        "{} faces of {}x{} from {} input(s) -> {} (skipped: {unreadable} unreadable, {no_face} without a face, \
         {not_square} not square)",
        file.faces.len(),
        args.size,
        args.size,
        photos.len(),
        args.output.display()
    );
    if file.faces.is_empty() {
        return Err(Error::Input("no face in any input: the dataset is empty".into()));
    }
    Ok(())
}

/// A dataset is made whole, never mixed into files already there.
fn refuse_existing(dir: &Path) -> Result<()> {
    let busy = std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false);
    if busy {
        return Err(Error::Input(format!("{} exists and is not empty: choose a new dataset folder", dir.display())));
    }
    Ok(())
}

/// Every face of a photo aligned at `size`, with its components from the landmarks the
/// analysis found (carried into the crop by the alignment).
fn faces_of_photo(analyzer: &mut FaceAnalyzer, frame: &Rgb, size: usize) -> Result<Vec<(Rgb, Components)>> {
    Ok(find_and_align(analyzer, frame, size)?
        .into_iter()
        .map(|(face, aligned)| {
            let landmarks = face.landmarks.map(|p| aligned.to_crop.apply(p));
            (aligned.crop, Components::from_landmarks(&landmarks, size))
        })
        .collect())
}

/// An aligned face resized to `size`, with components from landmarks found in the template's
/// landmark box.
fn aligned_face(analyzer: &FaceAnalyzer, face: Rgb, size: usize) -> Result<Vec<(Rgb, Components)>> {
    let face = if face.w == size { face } else { face.resized(size, size) };
    let landmarks = analyzer.aligned_landmarks(&[&face])?.remove(0);
    Ok(vec![(face, Components::from_landmarks(&landmarks, size))])
}
