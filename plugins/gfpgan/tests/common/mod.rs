//! Shared test setup: the plugin registered in-process, the tiny random checkpoint, the face
//! models, and frames with faces rendered from the bundled photos.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Once;

use gfpgan::frame::Rgb;
use gfpgan::synth::{Clip, ClipSpec};
use gst::prelude::*;
use gst_video::prelude::*;

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initialises");
        gstgfpgan::plugin_register_static().expect("the plugin registers");
    });
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A 64 px GFPGANv1Clean checkpoint with random weights (fast; restores nothing useful).
pub fn weights() -> String {
    repo().join("tests/fixtures/a64.pth").display().to_string()
}

pub fn face_models() -> String {
    let dir = repo().join("weights/face-api/model");
    assert!(dir.is_dir(), "{} is missing: run tests/faceapi/run.sh", dir.display());
    dir.display().to_string()
}

pub fn photos() -> Vec<PathBuf> {
    (1..=6).map(|i| repo().join(format!("weights/face-api/demo/sample{i}.jpg"))).collect()
}

/// A clip of `faces` drifting faces at `width x height`.
pub fn clip(width: usize, height: usize, faces: usize, frames: usize) -> Clip {
    let photos = photos();
    let refs: Vec<&std::path::Path> = photos.iter().map(PathBuf::as_path).collect();
    let spec = ClipSpec { width, height, frames, faces, motion: 6.0, jitter: 1, ..Default::default() };
    Clip::new(&refs, spec).expect("the clip renders")
}

/// `facerestore` with the test checkpoint and face models, plus extra properties.
pub fn element(props: &[(&str, gst::glib::Value)]) -> gst::Element {
    let e = gst::ElementFactory::make("facerestore")
        .property("weights", weights())
        .property("face-models", face_models())
        .build()
        .expect("facerestore exists");
    for (k, v) in props {
        e.set_property_from_value(k, v);
    }
    e
}

pub fn caps(format: gst_video::VideoFormat, w: u32, h: u32) -> gst::Caps {
    gst_video::VideoInfo::builder(format, w, h).fps(gst::Fraction::new(25, 1)).build().unwrap().to_caps().unwrap()
}

/// An RGB image as a buffer of the given format (padding bytes and alpha set to 0x5a).
pub fn buffer(img: &Rgb, format: gst_video::VideoFormat) -> gst::Buffer {
    let info = gst_video::VideoInfo::builder(format, img.w as u32, img.h as u32).build().unwrap();
    let mut buffer = gst::Buffer::with_size(info.size()).unwrap();
    {
        let b = buffer.get_mut().unwrap();
        b.map_writable().unwrap().iter_mut().for_each(|v| *v = 0x5a);
        let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(b, &info).unwrap();
        let layout = gstgfpgan::packed_layout(&info, frame.plane_stride()[0] as usize);
        img.write_packed(frame.plane_data_mut(0).unwrap(), &layout, 0..img.h).unwrap();
    }
    buffer
}

pub fn bytes(b: &gst::Buffer) -> Vec<u8> {
    b.map_readable().unwrap().to_vec()
}

/// The `face` region-of-interest metas of a buffer: (track id, rect).
pub fn faces(b: &gst::BufferRef) -> Vec<(i32, (u32, u32, u32, u32))> {
    b.iter_meta::<gst_video::VideoRegionOfInterestMeta>()
        .filter(|m| m.roi_type() == "face")
        .map(|m| (m.id(), m.rect()))
        .collect()
}

/// How many of this process's threads belong to the element, once joined threads are gone:
/// `join` returns when the kernel wakes the joiner, a moment before the thread leaves
/// `/proc/self/task`, so a count taken at once can still see it. Waits (10 s at most) for the
/// count to reach zero; a thread really left running is still counted then.
pub fn element_threads_left() -> usize {
    let count = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with("facerestore"))
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let n = count();
        if n == 0 || std::time::Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
