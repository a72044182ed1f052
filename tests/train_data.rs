//! Training data: `gfpgan prepare-data` and the dataset reader (flips, degradation, components).

mod common;

use std::path::Path;
use std::process::Command;

use common::{demo_photos, face_models};
use gfpgan::synth::DegradeOptions;
use gfpgan::train::data::{ComponentFile, FaceDataset};

fn prepare(inputs: &[&Path], out: &Path, extra: &[&str]) -> std::process::Output {
    let models = face_models();
    Command::new(env!("CARGO_BIN_EXE_gfpgan"))
        .arg("prepare-data")
        .args(inputs)
        .args(["-o", out.to_str().unwrap(), "--face-models", models.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap()
}

fn components(dir: &Path) -> ComponentFile {
    serde_json::from_str(&std::fs::read_to_string(dir.join("components.json")).unwrap()).unwrap()
}

#[test]
fn prepare_data_aligns_faces_finds_their_components_and_skips_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.png");
    std::fs::write(&junk, b"not a png").unwrap();
    let photos = demo_photos();
    let data = dir.path().join("data");
    let out = prepare(&[&photos[0], &junk, &photos[1]], &data, &["--size", "256"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 unreadable"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("junk.png"));
    let file = components(&data);
    assert_eq!(file.size, 256);
    assert_eq!(file.faces.len(), 4, "two faces in each photo: {:?}", file.faces.keys());
    for (name, c) in &file.faces {
        let face = image::open(data.join("faces").join(name)).unwrap();
        assert_eq!((face.width(), face.height()), (256, 256));
        // Aligned to the template: eyes left and right of the middle, the mouth below them.
        assert!(c.left_eye.0[0] < 128.0 && c.right_eye.0[0] > 128.0, "{name}: {c:?}");
        assert!(c.mouth.0[1] > c.left_eye.0[1] + 40.0, "{name}: {c:?}");
        assert!(c.left_eye.0[2] >= 8.0 && c.mouth.0[2] > c.left_eye.0[2], "{name}: {c:?}");
    }
    // The same faces taken as aligned ones: their landmarks found in the template's box give
    // nearly the same components as the landmarks carried over from the photos.
    let again = dir.path().join("again");
    let out = prepare(&[&data.join("faces")], &again, &["--size", "256", "--aligned"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let aligned = components(&again);
    for (name, c) in &file.faces {
        let a = aligned.faces[name];
        for (p, q) in [(c.left_eye, a.left_eye), (c.right_eye, a.right_eye), (c.mouth, a.mouth)] {
            let d = (p.0[0] - q.0[0]).hypot(p.0[1] - q.0[1]);
            assert!(d < 8.0, "{name}: {p:?} vs {q:?}");
        }
    }
    // A dataset is never mixed into an existing one.
    let out = prepare(&[&photos[0]], &data, &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
}

#[test]
fn samples_are_seeded_flipped_with_their_components_and_degraded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = prepare(&[&demo_photos()[0]], &data, &["--size", "128"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let set = FaceDataset::open(&data).unwrap();
    assert_eq!((set.len(), set.size()), (2, 128));
    let opts = DegradeOptions::default();
    let a = set.sample(0, 11, &opts).unwrap();
    let b = set.sample(0, 11, &opts).unwrap();
    assert_eq!((a.lq.data == b.lq.data, a.flipped), (true, b.flipped), "the same seed, the same sample");
    assert_ne!(a.lq.data, a.gt.data, "degraded");
    let seeds: Vec<bool> = (0..16).map(|s| set.sample(0, s, &opts).unwrap().flipped).collect();
    assert!(seeds.contains(&true) && seeds.contains(&false), "{seeds:?}");
    let flipped = (0..16).map(|s| set.sample(0, s, &opts).unwrap()).find(|s| s.flipped).unwrap();
    let plain = (0..16).map(|s| set.sample(0, s, &opts).unwrap()).find(|s| !s.flipped).unwrap();
    assert_eq!(flipped.gt, plain.gt.flipped_horizontally());
    assert_eq!(flipped.components, plain.components.flipped(128));
    assert!(flipped.components.left_eye.0[0] < 64.0, "the eye on the left after the flip: {:?}", flipped.components);
    // A face file replaced by one of another size is named.
    let name = components(&data).faces.keys().next().unwrap().clone();
    gfpgan::Rgb::new(64, 64).save(&data.join("faces").join(&name)).unwrap();
    let e = set.sample(0, 1, &opts).unwrap_err().to_string();
    assert!(e.contains(&name) && e.contains("64x64"), "{e}");
}
