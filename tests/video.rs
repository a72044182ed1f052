//! The video library on clips rendered from face-api's demo photos: the stream restorer keeps
//! one result per frame in order with stable track ids, skips cancelled frames, and the same
//! face gets the same restoration whatever batch it lands in; clips hold the faces asked for.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gfpgan::blend::PasteOptions;
use gfpgan::frame::Rgb;
use gfpgan::pipeline::{FrameJob, FrameResult, StreamRestorer, Tuning};
use gfpgan::synth::{Clip, ClipSpec, flicker};

fn clip(faces: usize, frames: usize, motion: f32) -> Clip {
    let photos = common::demo_photos();
    let refs: Vec<&Path> = photos.iter().map(PathBuf::as_path).collect();
    let spec = ClipSpec { width: 480, height: 270, frames, faces, motion, jitter: 2, ..Default::default() };
    Clip::new(&refs, spec).unwrap()
}

fn run(stream: &StreamRestorer, frames: &[Rgb], tuning: Tuning) -> Vec<FrameResult> {
    for (i, f) in frames.iter().enumerate() {
        let job = FrameJob { seq: i as u64, time: i as f64 / 25.0, frame: Arc::new(f.clone()), tuning, restore: true };
        stream.submit(job).unwrap();
    }
    (0..frames.len()).map(|_| stream.results().recv().unwrap().unwrap()).collect()
}

#[test]
fn every_frame_gets_one_result_in_order_with_stable_track_ids() {
    let clip = clip(2, 10, 10.0);
    let frames: Vec<Rgb> = (0..10).map(|i| clip.frame(i)).collect();
    let stream = StreamRestorer::start(common::face_models(), Some(common::a64_network()), Tuning::default()).unwrap();
    let results = run(&stream, &frames, Tuning { batch_size: 3, ..Default::default() });
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.seq, i as u64);
        let mut ids: Vec<u64> = r.faces.iter().map(|f| f.track_id).collect();
        ids.sort();
        assert_eq!(ids, [1, 2], "frame {i}");
        assert!(r.faces.iter().all(|f| f.restored.is_some() && f.aligned.is_some()));
    }
    // Each track stays on its face: the two faces sit in the left and right halves.
    let side = |f: &gfpgan::pipeline::FaceResult| f.face.detection.center()[0] < 240.0;
    let first: Vec<(u64, bool)> = results[0].faces.iter().map(|f| (f.track_id, side(f))).collect();
    for r in &results {
        for f in &r.faces {
            assert!(first.contains(&(f.track_id, side(f))), "track {} changed sides", f.track_id);
        }
    }
}

#[test]
fn the_same_faces_restore_the_same_whatever_the_batching() {
    let clip = clip(2, 6, 0.0);
    let frames: Vec<Rgb> = (0..6).map(|i| clip.frame(i)).collect();
    let tuning = Tuning { temporal_smoothing: 0.0, ..Default::default() };
    let restored = |batch_size| {
        let stream = StreamRestorer::start(common::face_models(), Some(common::a64_network()), tuning).unwrap();
        run(&stream, &frames, Tuning { batch_size, ..tuning })
            .into_iter()
            .map(|r| {
                let mut frame = frames[r.seq as usize].clone();
                r.paste_into(&mut frame, PasteOptions::default());
                frame
            })
            .collect::<Vec<_>>()
    };
    let (one, four) = (restored(1), restored(4));
    for (a, b) in one.iter().zip(&four) {
        let worst = a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-2, "batching changed a pixel by {worst}");
    }
}

#[test]
fn cancelled_frames_come_back_empty_and_marked() {
    let clip = clip(1, 4, 0.0);
    let stream = StreamRestorer::start(common::face_models(), Some(common::a64_network()), Tuning::default()).unwrap();
    stream.cancel_below(2);
    let frames: Vec<Rgb> = (0..4).map(|i| clip.frame(i)).collect();
    let results = run(&stream, &frames, Tuning::default());
    assert!(results[..2].iter().all(|r| r.cancelled && r.faces.is_empty()));
    assert!(results[2..].iter().all(|r| !r.cancelled && r.faces.len() == 1));
}

#[test]
fn missing_face_models_fail_at_start() {
    let err = StreamRestorer::start("/no/models".into(), None, Tuning::default()).err().expect("an error");
    assert!(err.to_string().contains("/no/models"), "{err}");
}

#[test]
fn unprocessed_clips_do_not_flicker_and_hold_the_faces_asked_for() {
    let clip = clip(3, 5, 0.0);
    let frames: Vec<Rgb> = (0..5).map(|i| clip.frame(i)).collect();
    assert_eq!(flicker(&clip, &frames), 0.0, "undoing the shake makes the still clip still");
    assert!(frames.windows(2).any(|w| w[0] != w[1]), "the camera shakes");
    let mut detector = gfpgan::analyze::FaceDetector::new(Default::default()).unwrap();
    assert_eq!(detector.detect(&frames[0]).len(), 3);
}
