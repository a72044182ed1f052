//! The element through `gst-launch-1.0`, found by GST_PLUGIN_PATH: a clip rendered from the
//! bundled photos (drifting, shaken, degraded faces) decoded, restored and encoded to mp4, and a
//! live source with live-policy=passthrough into a synchronising, QoS-sending sink.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use gst::prelude::*;

/// A folder holding only this build's libgstgfpgan.so, for GST_PLUGIN_PATH. `cargo test` builds
/// the plugin's cdylib into target/<profile>/deps/ (beside every other crate's artifacts, which
/// GStreamer should not scan) without copying it up, so it is linked into a folder of its own.
fn plugin_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
        let built = [deps.join("libgstgfpgan.so"), deps.parent().unwrap().join("libgstgfpgan.so")]
            .into_iter()
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("no libgstgfpgan.so in {} or above it", deps.display()));
        let dir = deps.parent().unwrap().join("facerestore-test-plugin");
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("libgstgfpgan.so");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&built, &link).unwrap();
        dir
    })
    .clone()
}

fn gst_launch(pipeline: &str) -> String {
    let out = Command::new("gst-launch-1.0")
        .arg("-e")
        .args(pipeline.split_whitespace())
        .env("GST_PLUGIN_PATH", plugin_dir())
        .env("GST_REGISTRY", plugin_dir().join("gst-registry-tests.bin"))
        .output()
        .expect("gst-launch-1.0 runs (apt install gstreamer1.0-tools)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "gst-launch-1.0 {pipeline}\n{text}");
    text
}

/// Decodes a video file in-process and returns its frame count and size.
fn probe(path: &Path) -> (usize, u32, u32) {
    init();
    let p = gst::parse::launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGBx ! fakesink name=sink",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let count = std::sync::Arc::new(std::sync::Mutex::new((0usize, 0u32, 0u32)));
    let c = count.clone();
    let pad = p.by_name("sink").unwrap().static_pad("sink").unwrap();
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, _| {
        let mut c = c.lock().unwrap();
        c.0 += 1;
        if let Some(info) = pad.current_caps().and_then(|caps| gst_video::VideoInfo::from_caps(&caps).ok()) {
            (c.1, c.2) = (info.width(), info.height());
        }
        gst::PadProbeReturn::Ok
    });
    p.set_state(gst::State::Playing).unwrap();
    let msg = p
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(120), &[gst::MessageType::Eos, gst::MessageType::Error]);
    p.set_state(gst::State::Null).unwrap();
    assert_eq!(msg.map(|m| m.type_()), Some(gst::MessageType::Eos), "{} decodes", path.display());
    *count.lock().unwrap()
}

/// Renders a 24-frame 480x270 clip with two drifting, degraded faces and encodes it to
/// `dir/in.mp4` with gst-launch.
fn clip_mp4(dir: &Path) -> PathBuf {
    let (frames, input) = (dir.join("frames"), dir.join("in.mp4"));
    clip(480, 270, 2, 24).write_frames(&frames).unwrap();
    gst_launch(&format!(
        "multifilesrc location={}/%05d.png caps=image/png,framerate=25/1 ! pngdec ! videoconvert ! x264enc ! h264parse ! mp4mux ! filesink location={}",
        frames.display(),
        input.display()
    ));
    input
}

#[test]
fn a_degraded_clip_is_decoded_restored_and_encoded_to_mp4() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (clip_mp4(dir.path()), dir.path().join("out.mp4"));
    let log = gst_launch(&format!(
        "-m filesrc location={} ! decodebin ! videoconvert ! facerestore weights={} face-models={} post-messages=true ! videoconvert ! x264enc ! h264parse ! mp4mux ! filesink location={}",
        input.display(),
        weights(),
        face_models(),
        output.display()
    ));
    assert_eq!(probe(&output), (24, 480, 270), "every frame restored and encoded");
    let messages = log.lines().filter(|l| l.contains("facerestore, timestamp")).count();
    assert!(messages >= 20, "face messages for (nearly) every frame, got {messages}:\n{log}");
    assert!(log.contains("track-id") && log.contains("restored\\=\\(boolean\\)true"), "{log}");
}

#[test]
fn a_live_source_with_passthrough_keeps_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let still = dir.path().join("still.png");
    clip(640, 360, 2, 1).frame(0).save(&still).unwrap();
    let log = gst_launch(&format!(
        "-v filesrc location={} ! pngdec ! imagefreeze is-live=true num-buffers=30 ! video/x-raw,framerate=25/1 ! videoconvert ! facerestore weights={} face-models={} live-policy=passthrough batch-size=1 detection-interval=1 ! identity name=out silent=false ! videoconvert ! fakesink sync=true qos=true",
        still.display(),
        weights(),
        face_models()
    ));
    // Every timestamp leaves the element once. (Counted at an identity after it: the sink
    // itself may drop late frames, which is its own QoS, not the element losing them.)
    let mut pts: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("/GstIdentity:out: last-message = chain"))
        .filter_map(|l| l.split("pts: ").nth(1)?.split(',').next())
        .collect();
    pts.dedup();
    assert_eq!(pts.len(), 30, "30 frames in, 30 out: {pts:?}");
}

#[test]
fn gst_inspect_finds_the_element_and_documents_every_property() {
    let out = Command::new("gst-inspect-1.0")
        .arg("facerestore")
        .env("GST_PLUGIN_PATH", plugin_dir())
        .env("GST_REGISTRY", plugin_dir().join("gst-registry-tests.bin"))
        .output()
        .expect("gst-inspect-1.0 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("libgstgfpgan.so") && text.contains("Face restoration (GFP-GAN)"), "{text}");
    for prop in [
        "weights",
        "face-models",
        "device",
        "engine",
        "batch-size",
        "detection-interval",
        "min-face-size",
        "region",
        "full-frame-search",
        "max-faces",
        "blend",
        "temporal-smoothing",
        "expression",
        "live-policy",
        "post-messages",
    ] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{prop} ")))
            .unwrap_or_else(|| panic!("{prop} missing:\n{text}"));
        let blurb = line.split_once(':').map(|x| x.1.trim()).unwrap_or_default();
        assert!(blurb.len() > 20, "{prop} is not documented: {line}");
    }
    for format in ["RGB", "RGBA", "BGR", "BGRA", "RGBx", "BGRx", "xRGB", "xBGR"] {
        assert!(text.contains(&format!("(string){format}")), "{format} missing from the caps");
    }
    // The defaults it prints (a fresh element's values) are the library's for the stream's knobs.
    let printed_default = |prop: &str| -> String {
        let block: Vec<&str> =
            text.lines().skip_while(|l| !l.trim_start().starts_with(&format!("{prop} "))).take(4).collect();
        let line = block.iter().find(|l| l.contains("Default:")).unwrap_or_else(|| panic!("{prop}: no default"));
        line.split("Default:").nth(1).unwrap().trim().to_string()
    };
    let t = gfpgan::pipeline::Tuning::DEFAULT;
    for (prop, library) in [
        ("batch-size", t.batch_size as f64),
        ("detection-interval", t.detection_interval as f64),
        ("min-face-size", t.min_face_size as f64),
        ("max-faces", t.max_faces as f64),
        ("temporal-smoothing", t.temporal_smoothing as f64),
    ] {
        let printed = printed_default(prop);
        assert_eq!(printed.parse::<f64>().ok(), Some(library), "{prop}: gst-inspect says {printed}");
    }
    assert_eq!(printed_default("expression"), t.expression.to_string());
}

#[test]
fn the_pipeline_scripts_restore_a_file_and_compose_a_side_by_side_view() {
    let dir = tempfile::tempdir().unwrap();
    let input = clip_mp4(dir.path());
    let scripts = repo().join("pipelines");
    for (script, output, width) in [("restore-file.sh", "restored.mp4", 480), ("side-by-side.sh", "sbs.mp4", 960)] {
        let output = dir.path().join(output);
        let out = Command::new(scripts.join(script))
            .arg(&input)
            .arg(&output)
            .env("GST_PLUGIN_PATH", plugin_dir())
            .env("GST_REGISTRY", plugin_dir().join("gst-registry-tests.bin"))
            .env("WEIGHTS", weights())
            .env("FACE_MODELS", face_models())
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(probe(&output), (24, width, 270), "{script}");
    }
}
