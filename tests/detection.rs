//! Face detection on the group photo that ships with the rustface crate: the 1927 Solvay
//! conference, 29 people, all facing the camera (counted by hand from the names printed under
//! the photo; the copy in the crate has rustface's own example boxes drawn on it).

use std::path::Path;

use gfpgan::Rgb;
use gfpgan::analyze::{DetectorOptions, FaceDetector};

const FACES_IN_PHOTO: usize = 29;

fn group_photo() -> Rgb {
    Rgb::open(&Path::new(env!("RUSTFACE_SRC_DIR")).join("test.png")).unwrap()
}

/// Detections whose centres fall in distinct places (a face found twice counts once).
fn distinct(dets: &[gfpgan::analyze::Detection]) -> usize {
    let mut kept: Vec<[f32; 2]> = Vec::new();
    for d in dets {
        let c = d.center();
        if kept.iter().all(|k| (k[0] - c[0]).hypot(k[1] - c[1]) > d.w * 0.5) {
            kept.push(c);
        }
    }
    kept.len()
}

#[test]
fn finds_the_faces_of_the_group_photo() {
    let photo = group_photo();
    let mut det = FaceDetector::new(DetectorOptions::default()).unwrap();
    let start = std::time::Instant::now();
    let found = det.detect(&photo);
    eprintln!("{} detections in {:?} ({}x{})", found.len(), start.elapsed(), photo.w, photo.h);
    let n = distinct(&found);
    eprintln!("{n} distinct faces of {FACES_IN_PHOTO}");
    // Recall at least 90%, and no more boxes than people (the background is busy).
    assert!(n * 10 >= FACES_IN_PHOTO * 9, "found {n} of {FACES_IN_PHOTO} faces");
    assert!(found.len() <= FACES_IN_PHOTO, "{} detections for {FACES_IN_PHOTO} faces", found.len());
    // Largest first, sizes plausible for this photo (faces are 40-60 px).
    assert!(found.windows(2).all(|w| w[0].w * w[0].h >= w[1].w * w[1].h));
    assert!(found.iter().all(|d| (30.0..120.0).contains(&d.w)));
}

#[test]
fn a_minimum_face_size_above_every_face_finds_none() {
    let mut det = FaceDetector::new(DetectorOptions { min_face_size: 200.0, ..Default::default() }).unwrap();
    assert!(det.detect(&group_photo()).is_empty());
}

#[test]
fn half_scale_detection_reports_frame_coordinates() {
    let photo = group_photo();
    let full = FaceDetector::new(DetectorOptions::default()).unwrap().detect(&photo);
    let half = DetectorOptions { scale: 0.75, ..Default::default() };
    let found = FaceDetector::new(half).unwrap().detect(&photo);
    // Every face found at 0.75 matches a full-scale face within a few pixels.
    let matched = found
        .iter()
        .filter(|d| {
            full.iter().any(|f| (f.center()[0] - d.center()[0]).hypot(f.center()[1] - d.center()[1]) < 0.3 * f.w)
        })
        .count();
    assert!(matched * 10 >= found.len() * 9, "{matched} of {} matched", found.len());
}

#[test]
fn unreadable_images_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, b"not an image").unwrap();
    let msg = Rgb::open(&bad).unwrap_err().to_string();
    assert!(msg.contains("bad.png") && msg.contains("cannot decode"), "{msg}");
    assert!(Rgb::open(&dir.path().join("missing.png")).unwrap_err().to_string().contains("missing.png"));
}
