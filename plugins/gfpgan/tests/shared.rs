//! Elements of one process share their network: elements with the same weights, device and
//! engine use one loaded network (checked through the `stats` property and the library's
//! registry, not timing), elements with other weights keep their own, and the network is let go
//! when the last of them goes to NULL. One element's joining, caps change, flush, failure, EOS
//! or leaving never changes, reorders or drops another's frames.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use gfpgan::candle::DType;
use gfpgan::restore::{NetworkKey, SharedRestorer};
use gst::prelude::*;
use gst_check::Harness;
use gst_video::VideoFormat;

/// A copy of the test checkpoint in `dir`: a network key no other test of this binary uses.
fn weights_in(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::copy(weights(), &path).unwrap();
    path.display().to_string()
}

fn stats(e: &gst::Element) -> gst::Structure {
    e.property::<gst::Structure>("stats")
}

fn network_of(e: &gst::Element) -> u64 {
    stats(e).get::<u64>("network").unwrap()
}

#[test]
fn elements_with_the_same_weights_share_one_network_until_the_last_goes_to_null() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (shared, other) = (weights_in(dir.path(), "a.pth"), weights_in(dir.path(), "b.pth"));
    let branch = |w: &str, name: &str| {
        format!(
            "videotestsrc is-live=true ! video/x-raw,format=RGBx,width=160,height=120 ! facerestore name={name} weights={w} face-models={} ! fakesink",
            face_models()
        )
    };
    let pipeline =
        gst::parse::launch(&[branch(&shared, "a"), branch(&shared, "b"), branch(&other, "c")].join("  ")).unwrap();
    let pipeline = pipeline.downcast::<gst::Pipeline>().unwrap();
    let [a, b, c] = ["a", "b", "c"].map(|n| pipeline.by_name(n).unwrap());
    pipeline.set_state(gst::State::Playing).unwrap();
    let _ = pipeline.state(gst::ClockTime::from_seconds(60));
    assert_ne!(network_of(&a), 0);
    assert_eq!(network_of(&a), network_of(&b), "same weights: one network");
    assert_ne!(network_of(&a), network_of(&c), "other weights: a network of their own");
    assert_eq!(stats(&a).get::<u32>("network-streams").unwrap(), 2);
    assert_eq!(stats(&c).get::<u32>("network-streams").unwrap(), 1);
    // The library hands the elements' network to anyone else who asks for it, without loading.
    let loads = AtomicUsize::new(0);
    let key = NetworkKey::new(Path::new(&shared), "cpu", gfpgan::Engine::Auto, DType::F32);
    let load = || {
        loads.fetch_add(1, Ordering::SeqCst);
        gfpgan::Restorer::load(Path::new(&shared), &gfpgan::candle::Device::Cpu, DType::F32, gfpgan::Engine::Auto)
    };
    let id = SharedRestorer::open(&key, load).unwrap().id();
    assert_eq!((id, loads.load(Ordering::SeqCst)), (network_of(&a), 0));
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(network_of(&a), 0, "an element in NULL holds no network");
    // Released with its last user: asking again loads it again.
    assert_ne!(SharedRestorer::open(&key, load).unwrap().id(), id);
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

fn harness(weights: &str, face_models: &str) -> Harness {
    let props =
        [("weights", weights.to_value()), ("face-models", face_models.to_value()), ("batch-size", 1u32.to_value())];
    let e = element(&props);
    let mut h = Harness::with_element(&e, Some("sink"), Some("src"));
    h.set_src_caps(caps(VideoFormat::Rgbx, 320, 240));
    h
}

fn stamped(b: gst::Buffer, i: u64) -> gst::Buffer {
    let mut b = b;
    let r = b.make_mut();
    r.set_pts(gst::ClockTime::from_mseconds(40 * i));
    r.set_duration(gst::ClockTime::from_mseconds(40));
    b
}

fn frames(seed_faces: usize, n: usize) -> Vec<gst::Buffer> {
    let clip = clip(320, 240, seed_faces, n);
    (0..n).map(|i| stamped(buffer(&clip.frame(i), VideoFormat::Rgbx), i as u64)).collect()
}

fn drain(h: &mut Harness) -> Vec<gst::Buffer> {
    assert!(h.push_event(gst::event::Eos::new()));
    std::iter::from_fn(|| h.try_pull()).collect()
}

/// The steady stream's frames: `(pts in frames, bytes)`.
fn contents(out: &[gst::Buffer]) -> Vec<(u64, Vec<u8>)> {
    out.iter().map(|b| (b.pts().unwrap().mseconds() / 40, bytes(b))).collect()
}

fn largest_difference(a: &[(u64, Vec<u8>)], b: &[(u64, Vec<u8>)]) -> u8 {
    a.iter().zip(b).flat_map(|((_, x), (_, y))| x.iter().zip(y)).map(|(p, q)| p.abs_diff(*q)).max().unwrap_or(0)
}

#[test]
fn a_neighbours_flush_eos_failure_and_leaving_leave_a_stream_whole() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let w = weights_in(dir.path(), "shared.pth");
    let steady_frames = frames(1, 12);
    let other_frames = frames(2, 12);
    // The steady stream alone (its network released after: a fresh one below).
    let restored = |h: &Harness| stats(&h.element().unwrap()).get::<u64>("restored").unwrap();
    let (alone, restored_alone) = {
        let mut h = harness(&w, &face_models());
        for b in &steady_frames {
            h.push(b.clone()).unwrap();
        }
        (contents(&drain(&mut h)), restored(&h))
    };
    assert!(restored_alone >= 10, "the clip's face is found: {restored_alone} frames restored");
    // Face models without the expression net: the neighbour's frame that asks for expressions
    // fails.
    let partial = tempfile::tempdir().unwrap();
    for f in ["face_landmark_68_model-weights_manifest.json", "face_landmark_68_model.bin"] {
        std::os::unix::fs::symlink(Path::new(&face_models()).join(f), partial.path().join(f)).unwrap();
    }
    let mut steady = harness(&w, &face_models());
    let mut steady_out = Vec::new();
    let mut neighbour: Option<Harness> = None;
    for (i, b) in steady_frames.iter().enumerate() {
        match i {
            // A neighbour joins while the steady stream plays.
            2 => neighbour = Some(harness(&w, &partial.path().display().to_string())),
            // It changes caps mid-stream ...
            4 => neighbour.as_mut().unwrap().set_src_caps(caps(VideoFormat::Bgrx, 320, 240)),
            // ... is flushed (a seek) ...
            5 => {
                let n = neighbour.as_mut().unwrap();
                assert!(n.push_event(gst::event::FlushStart::new()));
                assert!(n.push_event(gst::event::FlushStop::new(true)));
                assert!(n.push_event(gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new())));
            }
            // ... fails a frame ...
            6 | 7 => neighbour.as_ref().unwrap().element().unwrap().set_property("expression", i == 6),
            // ... ends its stream, and leaves while the steady stream goes on.
            8 => {
                let mut n = neighbour.take().unwrap();
                assert!(!drain(&mut n).is_empty());
                assert_eq!(
                    stats(&n.element().unwrap()).get::<u64>("failed").unwrap(),
                    1,
                    "the neighbour's frame 6 failed"
                );
                n.element().unwrap().set_state(gst::State::Null).unwrap();
            }
            _ => {}
        }
        if let Some(n) = neighbour.as_mut() {
            let _ = n.push(other_frames[i].clone());
            let e = n.element().unwrap();
            assert_eq!(network_of(&e), network_of(&steady.element().unwrap()), "the two share a network");
        }
        steady.push(b.clone()).unwrap();
        steady_out.extend(std::iter::from_fn(|| steady.try_pull()));
    }
    steady_out.extend(drain(&mut steady));
    let got = contents(&steady_out);
    assert_eq!(
        got.iter().map(|(pts, _)| *pts).collect::<Vec<_>>(),
        (0..12).collect::<Vec<_>>(),
        "every frame, in order"
    );
    assert_eq!(restored(&steady), restored_alone, "the steady stream's frames restored as alone");
    let worst = largest_difference(&alone, &got);
    assert!(worst <= 1, "the neighbour changed the steady stream's pixels by {worst} levels");
}
