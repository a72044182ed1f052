//! One network shared by several streams: `SharedRestorer::open` loads a network once per key
//! and again only after its last user let go; faces of different streams restored in shared
//! passes come out as each stream's faces restored alone; one stream stopping, cancelling or
//! failing leaves another's frames whole and in order.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use candle_core::DType;
use gfpgan::frame::Rgb;
use gfpgan::pipeline::stream::PassHook;
use gfpgan::pipeline::{FrameJob, FrameResult, StreamRestorer, Tuning};
use gfpgan::restore::{NetworkKey, SharedRestorer};
use gfpgan::synth::{Clip, ClipSpec};
use gfpgan::{Engine, Restorer};

fn clip(seed: u64, frames: usize) -> Vec<Rgb> {
    let photos = common::demo_photos();
    let refs: Vec<&Path> = photos.iter().map(PathBuf::as_path).collect();
    let spec =
        ClipSpec { width: 480, height: 270, frames, faces: 1, motion: 8.0, jitter: 1, seed, ..Default::default() };
    let clip = Clip::new(&refs, spec).unwrap();
    (0..frames).map(|i| clip.frame(i)).collect()
}

fn job(seq: usize, frame: &Rgb, tuning: Tuning) -> FrameJob {
    FrameJob { seq: seq as u64, time: seq as f64 / 25.0, frame: Arc::new(frame.clone()), tuning, restore: true }
}

/// Every restored face of a run, frame by frame.
fn faces(results: &[FrameResult]) -> Vec<Vec<Rgb>> {
    results.iter().map(|r| r.faces.iter().filter_map(|f| f.restored.clone()).collect()).collect()
}

fn largest_difference(a: &[Vec<Rgb>], b: &[Vec<Rgb>]) -> f32 {
    assert_eq!(a.iter().map(Vec::len).collect::<Vec<_>>(), b.iter().map(Vec::len).collect::<Vec<_>>());
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .flat_map(|(x, y)| x.data.iter().zip(&y.data))
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f32::max)
}

fn a64_key(dir: &Path) -> NetworkKey {
    // A copy of its own: other tests of this binary open the fixture's key.
    let path = dir.join("a64.pth");
    std::fs::copy(common::fixture("a64.pth"), &path).unwrap();
    NetworkKey::new(&path, "cpu", Engine::Auto, DType::F32)
}

#[test]
fn one_load_per_key_while_anyone_holds_it_and_a_new_load_after() {
    let dir = tempfile::tempdir().unwrap();
    let key = a64_key(dir.path());
    let loads = AtomicUsize::new(0);
    let load = || {
        loads.fetch_add(1, Ordering::SeqCst);
        Restorer::load(&dir.path().join("a64.pth"), &candle_core::Device::Cpu, DType::F32, Engine::Auto)
    };
    let first = SharedRestorer::open(&key, load).unwrap();
    let second = SharedRestorer::open(&key, load).unwrap();
    assert!(Arc::ptr_eq(&first, &second), "the same key gives the same network");
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    let other =
        SharedRestorer::open(&NetworkKey::new(&dir.path().join("a64.pth"), "cpu", Engine::Candle, DType::F32), load)
            .unwrap();
    assert_ne!(other.id(), first.id(), "another engine is another network");
    let id = first.id();
    drop((first, second));
    let again = SharedRestorer::open(&key, load).unwrap();
    assert_ne!(again.id(), id, "released when its last user let go, loaded afresh after");
    assert_eq!(loads.load(Ordering::SeqCst), 3);
    let failed =
        SharedRestorer::open(&a64_key(tempfile::tempdir().unwrap().path()), || Err(gfpgan::Error::Input("no".into())));
    assert!(failed.is_err(), "a failed load is reported and not kept");
}

/// Runs `clips` as streams of `network`, submitting their frames interleaved (frame 0 of each,
/// then frame 1 of each, ...), and gathers each stream's results.
fn run_streams(network: &Arc<SharedRestorer>, clips: &[Vec<Rgb>], tuning: Tuning) -> Vec<Vec<FrameResult>> {
    let streams: Vec<StreamRestorer> = clips
        .iter()
        .map(|_| StreamRestorer::start(common::face_models(), Some(network.clone()), tuning).unwrap())
        .collect();
    for i in 0..clips[0].len() {
        for (stream, frames) in streams.iter().zip(clips) {
            stream.submit(job(i, &frames[i], tuning)).unwrap();
        }
    }
    streams.iter().zip(clips).map(|(s, frames)| (0..frames.len()).map(|_| s.next_result().unwrap()).collect()).collect()
}

#[test]
fn faces_of_several_streams_in_shared_passes_restore_as_each_stream_alone() {
    let clips = [clip(1, 6), clip(2, 6), clip(3, 6)];
    // Passes of three faces, waiting for them (each stream has one face per frame, so the
    // waits end as soon as the three streams' faces are in).
    let tuning = Tuning { batch_size: 3, batch_wait: Duration::from_secs(5), detection_interval: 1, ..Tuning::DEFAULT };
    let alone: Vec<Vec<FrameResult>> = clips
        .iter()
        .map(|frames| run_streams(&common::a64_network(), std::slice::from_ref(frames), tuning).remove(0))
        .collect();
    let network = common::a64_network();
    let together = run_streams(&network, &clips, tuning);
    let stats = network.stats();
    assert!(stats.mixed_passes > 0, "no pass held faces of two streams: {stats:?}");
    assert_eq!(stats.faces, 18, "{stats:?}");
    for (k, (a, t)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(t.iter().map(|r| r.seq).collect::<Vec<_>>(), (0..6).collect::<Vec<_>>(), "stream {k} in order");
        assert!(t.iter().all(|r| r.faces.len() == 1 && r.faces[0].restored.is_some()), "stream {k} restored");
        let worst = largest_difference(&faces(a), &faces(t));
        assert!(worst < 1e-2, "stream {k}: sharing changed a restored pixel by {worst} (0..255)");
    }
}

#[test]
fn a_stream_that_cancels_stops_or_fails_leaves_the_others_whole() {
    let clips = [clip(4, 8), clip(5, 8), clip(6, 8)];
    let tuning = Tuning { batch_size: 2, detection_interval: 1, ..Tuning::DEFAULT };
    let expected = run_streams(&common::a64_network(), std::slice::from_ref(&clips[0]), tuning).remove(0);
    let network = common::a64_network();
    let steady = StreamRestorer::start(common::face_models(), Some(network.clone()), tuning).unwrap();
    let cancelling = StreamRestorer::start(common::face_models(), Some(network.clone()), tuning).unwrap();
    // The pass of this stream that holds frame 3 fails.
    let hook: PassHook = Arc::new(|seqs: &[u64]| match seqs.contains(&3) {
        true => Err(gfpgan::Error::Input("this stream broke".into())),
        false => Ok(()),
    });
    let failing =
        StreamRestorer::start_with_pass_hook(common::face_models(), Some(network.clone()), tuning, Some(hook)).unwrap();
    let stopping = StreamRestorer::start(common::face_models(), Some(network.clone()), tuning).unwrap();
    assert_eq!(network.streams(), 4);
    cancelling.cancel_below(6);
    for i in 0..8 {
        steady.submit(job(i, &clips[0][i], tuning)).unwrap();
        cancelling.submit(job(i, &clips[1][i], tuning)).unwrap();
        failing.submit(job(i, &clips[2][i], tuning)).unwrap();
        if i < 4 {
            stopping.submit(job(i, &clips[1][i], tuning)).unwrap();
        }
    }
    drop(stopping); // leaves mid-stream, its last frames not taken
    let failed: Vec<bool> = (0..8).map(|_| failing.next_result().is_err()).collect();
    assert!(failed[3] && !failed[0] && !failed[5..].iter().any(|&f| f), "{failed:?}");
    let cancelled: Vec<bool> = (0..8).map(|_| cancelling.next_result().unwrap().cancelled).collect();
    assert_eq!(cancelled, [true, true, true, true, true, true, false, false]);
    let got: Vec<FrameResult> = (0..8).map(|_| steady.next_result().unwrap()).collect();
    assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), (0..8).collect::<Vec<_>>());
    let worst = largest_difference(&faces(&expected), &faces(&got));
    assert!(worst < 1e-2, "the steady stream's faces changed by {worst}");
    drop((steady, cancelling, failing));
    assert_eq!(network.streams(), 0);
}
