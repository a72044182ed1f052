//! `gfpgan restore`: the faces of photos, or photos that are aligned faces already.

use std::path::{Path, PathBuf};
use std::time::Instant;

use gfpgan::analyze::{AnalyzerOptions, Face};
use gfpgan::pipeline::{PhotoOptions, PhotoPipeline, Restored, restore_aligned_face};
use gfpgan::{Error, Result, Rgb};

use super::common::{Inputs, Photo, PhotoArgs, RunArgs, check_arg, for_each_photo, photo_json, photos, write_text};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    photos: PhotoArgs,
    /// Output folder (restored photos are written as PNG).
    #[arg(short, long)]
    output: PathBuf,
    #[arg(long)]
    weights: PathBuf,
    #[command(flatten)]
    run: RunArgs,
    /// Strength of the restoration, 0 (original) to 1.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1.0)]
    weight: f32,
    /// Most faces per network pass (all faces of a photo go together up to this many; lower it
    /// to save memory: each 512 face adds about 0.45 GB on the CPU, see BENCHMARKS.md).
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// The inputs are aligned faces already: restore them whole (resized to the model's size).
    #[arg(long)]
    aligned: bool,
    /// Also write each face's aligned crop before and after restoration (OUTPUT/faces/).
    #[arg(long)]
    save_faces: bool,
    /// Draw the detection boxes and five landmarks on the output.
    #[arg(long)]
    draw_boxes: bool,
    /// Write OUTPUT/NAME.json per image: each face's box, score, five points, expression.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let w = args.weight;
    check_arg((0.0..=1.0).contains(&w), "weight", "in 0..1", w)?;
    check_arg(args.batch_size >= 1, "batch-size", "at least 1", args.batch_size)?;
    let mut opts = PhotoOptions {
        analysis: AnalyzerOptions { expressions: args.json, ..args.photos.analysis()? },
        batch_size: args.batch_size,
        ..Default::default()
    };
    opts.paste.weight = args.weight;
    // Every output is checked against every input before any work: `restore x.png -o .`
    // would write ./x.png over its own input.
    let photos = photos(&args.photos.inputs)?;
    let inputs = Inputs::new(photos.iter().map(|p| p.path.as_path()));
    let outputs =
        |p: &Photo| [args.output.join(format!("{}.png", p.name)), args.output.join(format!("{}.json", p.name))];
    photos.iter().flat_map(outputs).try_for_each(|o| inputs.check(&o))?;
    let restorer = args.run.load(&args.weights)?;
    let mut pipeline = if args.aligned { None } else { Some(PhotoPipeline::new(&args.photos.face_models, opts)?) };
    create_dir(&args.output)?;
    let faces_dir = args.output.join("faces");
    if args.save_faces {
        create_dir(&faces_dir)?;
    }
    for_each_photo(&photos, |photo| {
        let (file, name) = (photo.path.as_path(), photo.name.as_str());
        let start = Instant::now();
        let mut frame = Rgb::open(file)?;
        let restored = match pipeline.as_mut() {
            None => {
                restore_aligned_face(&mut frame, &restorer, opts.noise, args.weight)
                    .map_err(|e| Error::format(file, e.one_line()))?;
                Vec::new()
            }
            Some(p) => p.restore(&mut frame, &restorer)?,
        };
        if args.save_faces {
            save_faces(&faces_dir, name, &restored, &inputs)?;
        }
        let faces: Vec<&Face> = restored.iter().map(|r| &r.face).collect();
        if args.draw_boxes {
            draw_faces(&mut frame, &faces);
        }
        let [dst, json] = outputs(photo);
        frame.save(&dst)?;
        let secs = start.elapsed().as_secs_f64();
        if args.json {
            let text = serde_json::to_string_pretty(&photo_json(file, &faces, secs)).expect("JSON values serialise");
            write_text(&json, &text)?;
        }
        // Say so when the name is not the file's own: another input has the same stem.
        let renamed = if file.file_stem().is_some_and(|s| s.to_string_lossy() != name) {
            " (renamed: another input has the same name)"
        } else {
            ""
        };
        Ok(format!("{}: {} face(s) restored in {secs:.1} s -> {}{renamed}", file.display(), faces.len(), dst.display()))
    })
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

fn save_faces(dir: &Path, name: &str, restored: &[Restored], inputs: &Inputs) -> Result<()> {
    for (i, r) in restored.iter().enumerate() {
        for (img, which) in [(&r.aligned.crop, "in"), (&r.restored, "out")] {
            let path = dir.join(format!("{name}_face{i}_{which}.png"));
            inputs.check(&path)?;
            img.save(&path)?;
        }
    }
    Ok(())
}

fn draw_faces(frame: &mut Rgb, faces: &[&Face]) {
    for f in faces {
        let d = f.detection;
        let t = (d.w / 60.0).ceil().max(1.0) as usize;
        frame.draw_box(d.x, d.y, d.w, d.h, [255.0, 40.0, 40.0], t);
        for p in f.five {
            frame.draw_dot(p, t as isize, [40.0, 255.0, 40.0]);
        }
    }
}
