//! The stream restorer under faults: a cancel is answered between network passes (one pass of
//! `batch_size` faces, not a frame's every face); a frame whose analysis or restoration fails is
//! reported with its number and the frames after it go on; a worker's panic comes back as an
//! `Error::Worker` with its message and the results end instead of hanging.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use gfpgan::Error;
use gfpgan::frame::Rgb;
use gfpgan::pipeline::stream::PassHook;
use gfpgan::pipeline::{FrameJob, StreamRestorer, Tuning};
use gfpgan::synth::{Clip, ClipSpec};

fn clip(faces: usize, frames: usize) -> Clip {
    let photos = common::demo_photos();
    let refs: Vec<&Path> = photos.iter().map(PathBuf::as_path).collect();
    let spec = ClipSpec { width: 640, height: 360, frames, faces, motion: 0.0, jitter: 0, ..Default::default() };
    Clip::new(&refs, spec).unwrap()
}

fn job(seq: u64, frame: &Rgb, tuning: Tuning) -> FrameJob {
    FrameJob { seq, time: seq as f64 / 25.0, frame: Arc::new(frame.clone()), tuning, restore: true }
}

/// A stream restoring one face per pass, each pass going through `hook` first.
fn one_per_pass_through(hook: PassHook) -> StreamRestorer {
    StreamRestorer::start_with_pass_hook(common::face_models(), Some(common::a64_network()), ONE_PER_PASS, Some(hook))
        .unwrap()
}

/// `one_per_pass_through(hook)` with frames 0, 1 and 2 of a one-face clip submitted.
fn three_one_face_frames_through(hook: PassHook) -> StreamRestorer {
    let clip = clip(1, 3);
    let stream = one_per_pass_through(hook);
    for seq in 0..3 {
        stream.submit(job(seq, &clip.frame(seq as usize), ONE_PER_PASS)).unwrap();
    }
    stream
}

const ONE_PER_PASS: Tuning = Tuning { batch_size: 1, detection_interval: 1, ..Tuning::DEFAULT };

#[test]
fn a_cancel_stops_a_frame_after_the_pass_in_progress() {
    let clip = clip(3, 2);
    let passes = Arc::new(AtomicUsize::new(0));
    let (started_tx, started) = crossbeam_channel::bounded::<()>(1);
    let (go, go_rx) = crossbeam_channel::bounded::<()>(1);
    let counter = passes.clone();
    // The first pass waits, once it has begun, until the test has cancelled its frame.
    let hook: PassHook = Arc::new(move |_seqs: &[u64]| {
        if counter.fetch_add(1, Ordering::SeqCst) == 0 {
            started_tx.send(()).unwrap();
            go_rx.recv().unwrap();
        }
        Ok(())
    });
    let stream = one_per_pass_through(hook);
    stream.submit(job(0, &clip.frame(0), ONE_PER_PASS)).unwrap();
    started.recv().unwrap();
    stream.cancel_below(1);
    go.send(()).unwrap();
    let r = stream.next_result().unwrap();
    assert!(r.cancelled && r.faces.is_empty(), "frame 0 comes back cancelled and empty");
    assert_eq!(passes.load(Ordering::SeqCst), 1, "the two passes left of frame 0's three faces were skipped");
    // The next frame, not cancelled, runs its three passes (one face each) and is restored.
    stream.submit(job(1, &clip.frame(1), ONE_PER_PASS)).unwrap();
    let r = stream.next_result().unwrap();
    assert!(!r.cancelled);
    assert_eq!(r.faces.len(), 3);
    assert!(r.faces.iter().all(|f| f.restored.is_some()));
    assert_eq!(passes.load(Ordering::SeqCst), 4);
}

#[test]
fn a_failed_analysis_is_reported_with_its_frame_and_the_next_frames_go_on() {
    // Face models without the expression net: asking for expressions fails on that frame.
    let dir = tempfile::tempdir().unwrap();
    for f in ["face_landmark_68_model-weights_manifest.json", "face_landmark_68_model.bin"] {
        std::os::unix::fs::symlink(common::face_models().join(f), dir.path().join(f)).unwrap();
    }
    let clip = clip(1, 3);
    let stream = StreamRestorer::start(dir.path().into(), Some(common::a64_network()), Tuning::DEFAULT).unwrap();
    let expressions = Tuning { expression: true, ..Tuning::DEFAULT };
    for (seq, tuning) in [(0, Tuning::DEFAULT), (1, expressions), (2, Tuning::DEFAULT)] {
        stream.submit(job(seq, &clip.frame(seq as usize), tuning)).unwrap();
    }
    assert_eq!(stream.next_result().unwrap().faces.len(), 1);
    let e = stream.next_result().expect_err("frame 1 fails");
    assert!(matches!(e, Error::Frame { frame: 1, .. }), "{e:?}");
    assert!(e.one_line().starts_with("frame 1: "), "{}", e.one_line());
    assert!(e.one_line().contains("face_expression_model"), "names what is missing: {}", e.one_line());
    let r = stream.next_result().unwrap();
    assert_eq!((r.seq, r.faces.len()), (2, 1), "the frame after the failure is restored");
    assert!(r.faces[0].restored.is_some());
}

#[test]
fn a_failed_pass_is_reported_with_its_frame_and_the_next_frames_go_on() {
    let hook: PassHook = Arc::new(|seqs: &[u64]| match seqs.contains(&1) {
        true => Err(Error::Input("the network broke".into())),
        false => Ok(()),
    });
    let stream = three_one_face_frames_through(hook);
    assert!(stream.next_result().unwrap().faces[0].restored.is_some());
    let e = stream.next_result().expect_err("frame 1 fails");
    assert_eq!(e.one_line(), "frame 1: bad input: the network broke");
    assert!(stream.next_result().unwrap().faces[0].restored.is_some(), "frame 2 is restored");
}

#[test]
fn a_worker_panic_comes_back_with_its_message_and_the_results_end() {
    let hook: PassHook = Arc::new(|seqs: &[u64]| match seqs.contains(&1) {
        true => panic!("pass of frame {} broke", seqs[0]),
        false => Ok(()),
    });
    let stream = three_one_face_frames_through(hook);
    assert!(stream.next_result().is_ok());
    let e = stream.next_result().expect_err("the network thread panicked");
    assert!(matches!(e, Error::Worker { .. }), "{e:?}");
    assert_eq!(e.one_line(), "face restoration thread: panicked: pass of frame 1 broke");
    // No result for frames 1 and 2, and no hang: the results end.
    assert!(stream.next_result().is_err());
}
