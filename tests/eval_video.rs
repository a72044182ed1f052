//! Video evaluation: the temporal metrics respond to what they measure, and the element's
//! engine with temporal smoothing is the steadiest way to restore a clip.

mod common;

use std::sync::Arc;

use common::{a64_restorer, demo_photos, face_models};
use gfpgan::Rgb;
use gfpgan::eval::TemporalEvaluator;
use gfpgan::eval::steadiness::{Recipe, compare};
use gfpgan::synth::{Clip, ClipSpec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Two faces from the demo photos drifting under camera shake; `degrade`: blurred, downscaled,
/// noisy and JPEG'd as the faces a restorer gets.
fn clip(frames: usize, degrade: bool) -> (Clip, Vec<Rgb>) {
    let photos: Vec<_> = demo_photos().into_iter().take(2).collect();
    let photos: Vec<&std::path::Path> = photos.iter().map(|p| p.as_path()).collect();
    let spec = ClipSpec { width: 320, height: 240, frames, faces: 2, degrade, ..Default::default() };
    let clip = Clip::new(&photos, spec).unwrap();
    let frames = (0..frames).map(|i| clip.frame(i)).collect();
    (clip, frames)
}

/// Each face of each frame stretched sideways by its own random factor (a wobble no
/// similarity explains) and given fresh noise.
fn wobbled(clip: &Clip, frames: &[Rgb]) -> Vec<Rgb> {
    let mut rng = StdRng::seed_from_u64(7);
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut out = f.clone();
            let (dx, dy) = clip.shake(i);
            for (x0, y0, side) in clip.sprites(i) {
                let stretch: f32 = rng.random_range(0.9..1.1);
                let (x0, y0) = (x0 + dx, y0 + dy);
                let cx = x0 as f32 + side as f32 / 2.0;
                for y in y0.max(0)..(y0 + side as i32).min(f.h as i32) {
                    for x in x0.max(0)..(x0 + side as i32).min(f.w as i32) {
                        let p = f.sample(cx + (x as f32 - cx) * stretch, y as f32);
                        let k = (y as usize * f.w + x as usize) * 3;
                        for c in 0..3 {
                            out.data[k + c] = (p[c] + rng.random_range(-12.0..12.0)).clamp(0.0, 255.0);
                        }
                    }
                }
            }
            out
        })
        .collect()
}

#[test]
fn the_temporal_metrics_rise_when_a_clip_is_made_to_wobble() {
    let (clip, frames) = clip(10, false);
    let same = TemporalEvaluator::evaluate(&face_models(), &frames, &frames).unwrap();
    assert!(same.face_pairs >= 10, "faces tracked: {same:?}");
    assert_eq!(same.flicker, 0.0, "an unchanged clip adds no flicker");
    assert_eq!(same.landmark_jitter, same.input_landmark_jitter);
    let shaky = TemporalEvaluator::evaluate(&face_models(), &frames, &wobbled(&clip, &frames)).unwrap();
    assert!(shaky.flicker > 3.0, "{shaky:?}");
    assert!(shaky.landmark_jitter > 1.5 * same.landmark_jitter, "{same:?} {shaky:?}");
    assert!(shaky.identity_consistency < same.identity_consistency, "{same:?} {shaky:?}");
}

#[test]
fn clips_that_do_not_match_are_refused() {
    let (_, frames) = clip(3, false);
    let e = TemporalEvaluator::evaluate(&face_models(), &frames, &frames[..2]).unwrap_err();
    assert!(e.to_string().contains("3 input frames but 2 output frames"), "{e}");
    let small = vec![Rgb::new(64, 48); 3];
    let e = TemporalEvaluator::evaluate(&face_models(), &frames, &small).unwrap_err();
    assert!(e.to_string().contains("320x240") && e.to_string().contains("64x48"), "{e}");
}

#[test]
fn the_smoothed_element_flickers_least_and_keeps_identity_best() {
    let (_, frames) = clip(12, true);
    let restorer: Arc<_> = a64_restorer();
    let results = compare(&frames, &face_models(), &restorer, 25.0).unwrap();
    let get = |r: Recipe| results.iter().find(|x| x.0 == r).unwrap().1;
    let smooth = get(Recipe::Element { temporal_smoothing: 0.5 });
    let raw = get(Recipe::Element { temporal_smoothing: 0.0 });
    let per_frame = get(Recipe::PerFrame);
    assert!(smooth.flicker < raw.flicker && smooth.flicker < per_frame.flicker, "{smooth:?} {raw:?} {per_frame:?}");
    assert!(
        smooth.identity_consistency >= raw.identity_consistency.max(per_frame.identity_consistency),
        "{smooth:?} {raw:?} {per_frame:?}"
    );
}

#[test]
fn eval_video_reads_frame_folders_and_refuses_clips_that_differ() {
    let dir = tempfile::tempdir().unwrap();
    let (clip, frames) = clip(4, false);
    let (a, b) = (dir.path().join("in"), dir.path().join("out"));
    clip.write_frames(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    for (i, f) in wobbled(&clip, &frames).iter().enumerate() {
        f.save(&b.join(format!("{i:05}.png"))).unwrap();
    }
    let json = dir.path().join("scores.json");
    let models = face_models();
    let run = |x: &std::path::Path, y: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gfpgan"))
            .args(["eval-video", x.to_str().unwrap(), y.to_str().unwrap(), "--json", json.to_str().unwrap()])
            .args(["--face-models", models.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = run(&a, &b);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let scores: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(scores["frames"], 4);
    assert!(scores["flicker"].as_f64().unwrap() > 1.0, "{scores}");
    std::fs::remove_file(b.join("00003.png")).unwrap();
    let out = run(&a, &b);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("has 4 frames") && e.contains("has 3"), "{e}");
    let out = run(&a, &dir.path().join("missing.mp4"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.mp4"));
}
