//! The photo pipeline end to end on face-api's demo photos (fetched by tests/faceapi/run.sh)
//! with a small random-weights checkpoint from the parity fixtures.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use gfpgan::Rgb;
use gfpgan::align::template;
use gfpgan::analyze::{AnalyzerOptions, FaceAnalyzer};

fn demo(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/face-api/demo").join(name);
    assert!(p.exists(), "{} is missing: run tests/faceapi/run.sh first", p.display());
    p
}

#[test]
fn landmarks_give_five_points_that_align_onto_the_template() {
    let frame = Rgb::open(&demo("sample3.jpg")).unwrap();
    let mut analyzer = FaceAnalyzer::new(&common::face_models(), AnalyzerOptions::default()).unwrap();
    let faces = analyzer.analyze(&frame).unwrap();
    assert!(!faces.is_empty());
    for f in &faces {
        let d = f.detection;
        // Eyes above the nose above the mouth, all inside the (enlarged) detection box.
        let [le, re, nose, lm, rm] = f.five;
        assert!(le[0] < re[0] && lm[0] < rm[0], "{:?}", f.five);
        assert!(le[1].max(re[1]) < nose[1] && nose[1] < lm[1].max(rm[1]), "{:?}", f.five);
        for p in f.five {
            assert!(
                p[0] > d.x - 0.2 * d.w && p[0] < d.x + 1.2 * d.w && p[1] > d.y - 0.2 * d.h && p[1] < d.y + 1.2 * d.h
            );
        }
        // After alignment the five points sit within a few pixels of the template (512 scale).
        // After alignment the five points sit close to the template: a least-squares fit of a
        // real face (turned a little) leaves residuals of a few percent of the 512 crop.
        let face = gfpgan::align::align(&frame, &f.five, 512).unwrap();
        let residuals: Vec<f32> = f
            .five
            .iter()
            .zip(template(512))
            .map(|(p, t)| {
                let q = face.to_crop.apply(*p);
                (q[0] - t[0]).hypot(q[1] - t[1])
            })
            .collect();
        let rms = (residuals.iter().map(|r| r * r).sum::<f32>() / 5.0).sqrt();
        eprintln!("face at {:.0},{:.0}: residuals {residuals:.1?} px, rms {rms:.1}", d.x, d.y);
        assert!(rms < 15.0, "{residuals:?}");
    }
}

#[test]
fn landmarks_follow_the_image_when_it_is_mirrored() {
    let frame = Rgb::open(&demo("sample3.jpg")).unwrap();
    let mut mirrored = frame.clone();
    for y in 0..frame.h {
        for x in 0..frame.w {
            let (s, d) = ((y * frame.w + x) * 3, (y * frame.w + frame.w - 1 - x) * 3);
            mirrored.data[d..d + 3].copy_from_slice(&frame.data[s..s + 3]);
        }
    }
    let mut analyzer = FaceAnalyzer::new(&common::face_models(), AnalyzerOptions::default()).unwrap();
    let (a, b) = (analyzer.analyze(&frame).unwrap(), analyzer.analyze(&mirrored).unwrap());
    // The nose tip of the largest face moves to the mirrored position (within a few pixels).
    let nose = a[0].five[2];
    let expected = [frame.w as f32 - 1.0 - nose[0], nose[1]];
    let found = b.iter().map(|f| f.five[2]).min_by(|p, q| {
        let dp = (p[0] - expected[0]).hypot(p[1] - expected[1]);
        let dq = (q[0] - expected[0]).hypot(q[1] - expected[1]);
        dp.total_cmp(&dq)
    });
    let found = found.unwrap();
    assert!(
        (found[0] - expected[0]).hypot(found[1] - expected[1]) < 0.05 * a[0].detection.w,
        "{found:?} vs {expected:?}"
    );
}

#[test]
fn cli_restores_a_folder_and_reports_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(demo("sample1.jpg"), input.join("a.jpg")).unwrap();
    std::fs::write(input.join("b.png"), b"not a png").unwrap();
    let out = dir.path().join("out");
    let run = |weight: &str| {
        Command::new(env!("CARGO_BIN_EXE_gfpgan"))
            .args(["restore", input.to_str().unwrap(), "-o", out.to_str().unwrap()])
            .args(["--weights", common::checkpoint("a64").to_str().unwrap(), "--weight", weight])
            .args(["--face-models", common::face_models().to_str().unwrap()])
            .output()
            .unwrap()
    };
    let o = run("1");
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(!o.status.success(), "a corrupt file must make the run fail");
    assert!(stdout.contains("a.jpg: 2 face(s) restored"), "{stdout}");
    assert!(stderr.contains("b.png: cannot decode image"), "{stderr}");
    let original = Rgb::open(&demo("sample1.jpg")).unwrap();
    let restored = Rgb::open(&out.join("a.png")).unwrap();
    assert_eq!((restored.w, restored.h), (original.w, original.h));
    assert_ne!(restored, original);
    // Weight 0 leaves the photo exactly as it was.
    run("0");
    assert_eq!(Rgb::open(&out.join("a.png")).unwrap(), original);
}

#[test]
fn detection_recall_on_the_demo_photos() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/face_counts.txt")).unwrap();
    let mut analyzer = FaceAnalyzer::new(&common::face_models(), AnalyzerOptions::default()).unwrap();
    let (mut total, mut found) = (0, 0);
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        let (name, count): (&str, usize) = (parts.next().unwrap(), parts.next().unwrap().parse().unwrap());
        let n = analyzer.analyze(&Rgb::open(&demo(name)).unwrap()).unwrap().len();
        assert!(n <= count, "{name}: {n} detections for {count} faces");
        eprintln!("{name}: {n} of {count}");
        total += count;
        found += n;
    }
    // Measured: 20 of 22 (the two misses are a full profile and a strongly tilted head).
    assert!(found * 10 >= total * 9, "recall {found}/{total}");
}

/// Nose tips of the faces found in `frame`.
fn noses(analyzer: &mut FaceAnalyzer, frame: &Rgb) -> Vec<[f32; 2]> {
    analyzer.analyze(frame).unwrap().iter().map(|f| f.five[2]).collect()
}

fn nearest(points: &[[f32; 2]], p: [f32; 2]) -> f32 {
    points.iter().map(|q| (q[0] - p[0]).hypot(q[1] - p[1])).fold(f32::MAX, f32::min)
}

#[test]
fn landmarks_follow_shifts_and_scaling() {
    let frame = Rgb::open(&demo("sample4.jpg")).unwrap();
    let mut analyzer = FaceAnalyzer::new(&common::face_models(), AnalyzerOptions::default()).unwrap();
    let base = noses(&mut analyzer, &frame);
    let width = analyzer.analyze(&frame).unwrap()[0].detection.w;
    // Shift by (37, 23) px: sample the frame at p - shift.
    let shift = gfpgan::align::Similarity { a: 1.0, b: 0.0, tx: -37.0, ty: -23.0 };
    let shifted = gfpgan::align::warp(&frame, &shift, frame.w.max(frame.h));
    for n in noses(&mut analyzer, &shifted) {
        assert!(nearest(&base, [n[0] - 37.0, n[1] - 23.0]) < 0.05 * width, "shifted nose {n:?}");
    }
    // Scale by 0.75.
    let scale = gfpgan::align::Similarity { a: 1.0 / 0.75, b: 0.0, tx: 0.0, ty: 0.0 };
    let small = gfpgan::align::warp(&frame, &scale, (frame.w as f32 * 0.75) as usize);
    let found = noses(&mut analyzer, &small);
    assert!(!found.is_empty());
    for n in found {
        assert!(nearest(&base, [n[0] / 0.75, n[1] / 0.75]) < 0.05 * width, "scaled nose {n:?}");
    }
}

#[test]
fn json_and_analyze_report_faces_with_expressions() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gfpgan"))
        .args([
            "analyze",
            demo("sample3.jpg").to_str().unwrap(),
            "--face-models",
            common::face_models().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let faces = v["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 3);
    for f in faces {
        assert_eq!(f["box"].as_array().unwrap().len(), 4);
        assert_eq!(f["landmarks5"].as_array().unwrap().len(), 5);
        let probs = f["expression"]["probabilities"].as_object().unwrap();
        assert_eq!(probs.len(), 7);
        let sum: f64 = probs.values().map(|p| p.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-3);
    }
    // The three women of sample3 smile or pout at the camera: face-api calls them happy or neutral.
    assert!(faces.iter().any(|f| f["expression"]["label"] == "happy"));
    let o = Command::new(env!("CARGO_BIN_EXE_gfpgan"))
        .args([
            "restore",
            demo("sample3.jpg").to_str().unwrap(),
            "-o",
            dir.path().to_str().unwrap(),
            "--json",
            "--save-faces",
            "--draw-boxes",
        ])
        .args([
            "--weights",
            common::checkpoint("a64").to_str().unwrap(),
            "--face-models",
            common::face_models().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("sample3.json")).unwrap()).unwrap();
    assert_eq!(j["faces"].as_array().unwrap().len(), 3);
    for i in 0..3 {
        for side in ["in", "out"] {
            let crop = Rgb::open(&dir.path().join(format!("faces/sample3_face{i}_{side}.png"))).unwrap();
            assert_eq!((crop.w, crop.h), (64, 64));
        }
    }
}

#[test]
fn aligned_inputs_are_restored_whole() {
    let dir = tempfile::tempdir().unwrap();
    let face = dir.path().join("face.png");
    let mut img = Rgb::new(128, 128);
    img.data.iter_mut().enumerate().for_each(|(i, v)| *v = (i % 255) as f32);
    img.save(&face).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_gfpgan"))
        .args(["restore", face.to_str().unwrap(), "-o", dir.path().join("o").to_str().unwrap(), "--aligned"])
        .args(["--weights", common::checkpoint("a64").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = Rgb::open(&dir.path().join("o/face.png")).unwrap();
    assert_eq!((out.w, out.h), (128, 128));
    assert_ne!(out, img);
}

#[test]
fn an_identity_restorer_leaves_real_photos_bit_identical() {
    let frame = Rgb::open(&demo("sample5.jpg")).unwrap();
    let mut analyzer = FaceAnalyzer::new(&common::face_models(), AnalyzerOptions::default()).unwrap();
    let faces = analyzer.analyze(&frame).unwrap();
    assert_eq!(faces.len(), 5);
    let mut out = frame.clone();
    for f in &faces {
        let aligned = gfpgan::align::align(&frame, &f.five, 512).unwrap();
        let identity = aligned.crop.clone();
        gfpgan::blend::paste(&mut out, &aligned, &identity, gfpgan::blend::PasteOptions::default());
    }
    assert_eq!(out, frame);
}
