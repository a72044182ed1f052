//! Small faces at surveillance distance, on clips made from face-api's demo photos: 18-24 px
//! faces drifting over a still, noisy, compressed picture. The window search finds them all
//! while looking at a fraction of what detecting whole frames looks at; the old default size
//! finds none; a region keeps the faces outside it out.

mod common;

use std::path::{Path, PathBuf};

use gfpgan::analyze::{DetectorOptions, Rect, SearchOptions};
use gfpgan::eval::recall::{RecallCounter, RecallScores};
use gfpgan::synth::{Clip, ClipSpec};
use gfpgan::track::{FaceTracker, TrackerOptions};

const FRAMES: usize = 30;

fn clip() -> Clip {
    let photos = common::demo_photos();
    let refs: Vec<&Path> = photos.iter().map(PathBuf::as_path).collect();
    let spec = ClipSpec {
        width: 640,
        height: 360,
        frames: FRAMES,
        fps: 30.0,
        faces: 3,
        motion: 10.0,
        jitter: 0,
        face_size: Some((18.0, 24.0)),
        ..Default::default()
    };
    Clip::new(&refs, spec).unwrap()
}

/// Tracks the clip; returns the recall scores, the faces reported per frame and the pixels the
/// detector looked at.
fn track(clip: &Clip, min_face_size: f32, search: SearchOptions) -> (RecallScores, Vec<Vec<[f32; 4]>>, f64) {
    let detector = DetectorOptions { min_face_size, ..Default::default() };
    let mut tracker = FaceTracker::new(&common::face_models(), detector, TrackerOptions::default(), false).unwrap();
    tracker.search_opts = search;
    let mut recall = RecallCounter::new(clip.spec.faces, 10);
    let mut reported = Vec::new();
    for i in 0..FRAMES {
        let faces = tracker.step(&clip.frame(i), i as f64 / 30.0).unwrap();
        let boxes: Vec<[f32; 4]> = faces.iter().map(|f| f.face.detection).map(|d| [d.x, d.y, d.w, d.h]).collect();
        recall.add(&clip.face_boxes(i), &boxes);
        reported.push(boxes);
    }
    (recall.scores(), reported, tracker.stats.searched)
}

#[test]
fn the_window_search_finds_small_faces_looking_at_a_fraction_of_the_frame() {
    let clip = clip();
    // A small budget for this small frame, as the default is for 720p and 1080p.
    let search = SearchOptions { scan_budget: 200_000.0, ..SearchOptions::DEFAULT };
    let (windows, _, searched) = track(&clip, 16.0, search);
    assert_eq!(windows.never_found, 0, "{windows:?}");
    assert!(windows.steady_recall.unwrap() >= 0.9, "{windows:?}");
    assert!(windows.false_per_frame <= 0.5, "{windows:?}");
    let (full, _, searched_full) = track(&clip, 16.0, SearchOptions { full_frame: true, ..SearchOptions::DEFAULT });
    assert_eq!(full.never_found, 0, "{full:?}");
    assert!(searched < 0.5 * searched_full, "windows {searched:.0} px, whole frames {searched_full:.0} px");
    // The old default finds nothing this small.
    let (old, _, _) = track(&clip, 40.0, SearchOptions::DEFAULT);
    assert_eq!(old.never_found, 3, "{old:?}");
}

#[test]
fn a_region_keeps_the_faces_outside_it_out() {
    let clip = clip();
    let region = Rect { x: 0, y: 0, w: 320, h: 360 };
    let inside: Vec<bool> = clip.face_boxes(0).iter().map(|b| b[0] + b[2] < 300.0).collect();
    assert!(inside.iter().any(|&i| i) && inside.iter().any(|&i| !i), "the clip has faces on both sides: {inside:?}");
    let (_, reported, _) = track(&clip, 16.0, SearchOptions { region: Some(region), ..SearchOptions::DEFAULT });
    for (i, boxes) in reported.iter().enumerate() {
        for b in boxes {
            assert!(region.contains([b[0] + b[2] / 2.0, b[1] + b[3] / 2.0]), "frame {i}: {b:?} outside {region:?}");
        }
    }
    let found = reported.iter().skip(10).filter(|b| !b.is_empty()).count();
    assert!(found >= 15, "the faces inside were found in only {found} of 20 frames");
}
