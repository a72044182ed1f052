//! `gfpgan restore`: the faces of photos, or photos that are aligned faces already.

use std::path::{Path, PathBuf};
use std::time::Instant;

use gfpgan::analyze::{AnalyzerOptions, Face};
use gfpgan::pipeline::{PhotoOptions, PhotoPipeline, Restored, restore_aligned_face};
use gfpgan::{Error, Result, Rgb};

use super::common::{PhotoArgs, RunArgs, for_each_photo, photo_json};

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
    #[arg(long, default_value_t = 1.0)]
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
    if !(0.0..=1.0).contains(&args.weight) {
        return Err(Error::Input(format!("--weight must be in 0..1, got {}", args.weight)));
    }
    let restorer = args.run.load(&args.weights)?;
    let mut opts = PhotoOptions {
        analysis: AnalyzerOptions { expressions: args.json, ..args.photos.analysis() },
        batch_size: args.batch_size,
        ..Default::default()
    };
    opts.paste.weight = args.weight;
    let mut pipeline = if args.aligned { None } else { Some(PhotoPipeline::new(&args.photos.face_models, opts)?) };
    create_dir(&args.output)?;
    let faces_dir = args.output.join("faces");
    if args.save_faces {
        create_dir(&faces_dir)?;
    }
    for_each_photo(&args.photos.inputs, |file, name| {
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
            save_faces(&faces_dir, name, &restored)?;
        }
        let faces: Vec<&Face> = restored.iter().map(|r| &r.face).collect();
        if args.draw_boxes {
            draw_faces(&mut frame, &faces);
        }
        let dst = args.output.join(format!("{name}.png"));
        frame.save(&dst)?;
        let secs = start.elapsed().as_secs_f64();
        if args.json {
            let path = args.output.join(format!("{name}.json"));
            let text = serde_json::to_string_pretty(&photo_json(file, &faces, secs)).expect("JSON values serialise");
            std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        }
        Ok(format!("{}: {} face(s) restored in {secs:.1} s -> {}", file.display(), faces.len(), dst.display()))
    })
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

fn save_faces(dir: &Path, name: &str, restored: &[Restored]) -> Result<()> {
    for (i, r) in restored.iter().enumerate() {
        r.aligned.crop.save(&dir.join(format!("{name}_face{i}_in.png")))?;
        r.restored.save(&dir.join(format!("{name}_face{i}_out.png")))?;
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
