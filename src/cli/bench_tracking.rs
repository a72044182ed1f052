//! `gfpgan bench-tracking`: how fast and how completely the video analysis step (detection,
//! landmarks, tracking; no restoration) follows faces in a synthetic clip whose true face boxes
//! are known. Frames are made before each is timed; only the tracking step is timed.

use std::path::PathBuf;
use std::time::Instant;

use gfpgan::analyze::{DetectorOptions, Rect, SearchOptions};
use gfpgan::eval::recall::RecallCounter;
use gfpgan::track::{FaceTracker, TrackerOptions};
use gfpgan::{Error, Result};

use super::clip::ClipArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    clip: ClipArgs,
    /// Smallest face looked for, pixels.
    #[arg(long, default_value_t = 16.0)]
    min_face_size: f32,
    /// Frames from one detection pass to the next.
    #[arg(long, default_value_t = 5)]
    detection_interval: u32,
    /// Detect the whole frame on every pass (the simple way) instead of searching windows.
    #[arg(long)]
    full_frame: bool,
    /// Pixels (at the detector's scale) of the rolling scan per pass.
    #[arg(long, default_value_t = SearchOptions::DEFAULT.scan_budget)]
    scan_budget: f64,
    /// Locate landmarks in each face and its mirror image and average.
    #[arg(long)]
    mirror_landmarks: bool,
    /// Look only inside "x,y,width,height".
    #[arg(long, default_value = "")]
    region: String,
    /// Recall is also reported from this many seconds on, once the search has had time to
    /// look everywhere.
    #[arg(long, default_value_t = 2.0)]
    steady_after: f32,
    #[arg(long, default_value = "weights/face-api/model")]
    face_models: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    if !(args.scan_budget.is_finite() && args.scan_budget > 0.0) {
        return Err(Error::Input(format!("scan budget must be positive, got {}", args.scan_budget)));
    }
    let clip = args.clip.build()?;
    let detector = DetectorOptions { min_face_size: args.min_face_size, ..Default::default() };
    let tracking = TrackerOptions { detection_interval: args.detection_interval.max(1), ..Default::default() };
    let mut tracker = FaceTracker::new(&args.face_models, detector, tracking, false)?;
    tracker.analyzer_mut().set_mirror_landmarks(args.mirror_landmarks);
    tracker.search_opts = SearchOptions {
        region: Rect::parse(&args.region)?,
        scan_budget: args.scan_budget,
        full_frame: args.full_frame,
    };
    let fps = clip.spec.fps;
    let frames = clip.spec.frames;
    let mut recall = RecallCounter::new(clip.spec.faces, (args.steady_after * fps).round() as usize);
    let mut times = Vec::with_capacity(frames);
    for i in 0..frames {
        let frame = clip.frame(i);
        let start = Instant::now();
        let faces = tracker.step(&frame, i as f64 / f64::from(fps))?;
        times.push(start.elapsed().as_secs_f64());
        let reported: Vec<[f32; 4]> = faces.iter().map(|f| f.face.detection).map(|d| [d.x, d.y, d.w, d.h]).collect();
        recall.add(&clip.face_boxes(i), &reported);
    }
    let stats = tracker.stats;
    let total: f64 = times.iter().sum();
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let scores = recall.scores();
    // Detection passes run on every `interval`-th frame; the others only locate landmarks.
    let interval = args.detection_interval.max(1) as usize;
    let mean = |pass: bool| {
        let t: Vec<f64> =
            times.iter().enumerate().filter(|(i, _)| (i % interval == 0) == pass).map(|(_, t)| *t).collect();
        1e3 * t.iter().sum::<f64>() / t.len().max(1) as f64
    };
    let report = serde_json::json!({
        "width": clip.spec.width,
        "height": clip.spec.height,
        "faces": clip.spec.faces,
        "face_size": args.clip.face_size,
        "search": if args.full_frame { "full-frame" } else { "windows" },
        "min_face_size": args.min_face_size,
        "detection_interval": args.detection_interval,
        "fps": frames as f64 / total,
        "ms_per_frame": 1e3 * total / frames as f64,
        "ms_p95": 1e3 * sorted[(frames * 95 / 100).min(frames - 1)],
        "ms_max": 1e3 * sorted[frames - 1],
        "ms_detection_frame": mean(true),
        "ms_other_frame": mean(false),
        "detection_passes": stats.passes,
        "windows_per_pass": stats.windows as f64 / stats.passes.max(1) as f64,
        "ms_search_per_frame": 1e3 * stats.search_secs / frames as f64,
        "ms_landmarks_per_frame": 1e3 * stats.locate_secs / frames as f64,
        "megapixels_per_pass": stats.searched / 1e6 / stats.passes.max(1) as f64,
        "threads": rayon::current_num_threads(),
        "recall": scores,
    });
    println!("{report}");
    eprintln!(
        "{}x{}, {} face(s) of {:?} px, {}: {:.1} fps ({:.1} ms/frame, p95 {:.1}), recall {:.3} (from {} s: {}), \
         never found {}, false faces {:.2}/frame",
        clip.spec.width,
        clip.spec.height,
        clip.spec.faces,
        args.clip.face_size.unwrap_or((0.0, 0.0)),
        if args.full_frame { "full-frame detection" } else { "window search" },
        frames as f64 / total,
        1e3 * total / frames as f64,
        1e3 * sorted[(frames * 95 / 100).min(frames - 1)],
        scores.recall,
        args.steady_after,
        scores.steady_recall.map_or("n/a".into(), |r| format!("{r:.3}")),
        scores.never_found,
        scores.false_per_frame,
    );
    Ok(())
}
