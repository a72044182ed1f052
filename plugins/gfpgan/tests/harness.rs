//! The element in a gstreamer-check Harness: frames in equal frames out, in order, with their
//! timestamps and flags; face-free frames untouched; EOS drains; flushes drop work and wake a
//! push waiting for a result; caps may change; odd caps and bad weights are refused with clear
//! errors; no threads outlive it. Also the properties: defaults (the library's where they map)
//! and the log of every change.

mod common;

use common::*;
use gst::prelude::GstValueExt;
use gst::prelude::*;
use gst_check::Harness;
use gst_video::VideoFormat;

fn harness(props: &[(&str, gst::glib::Value)], format: VideoFormat, width: u32, height: u32) -> Harness {
    init();
    let mut h = Harness::with_element(&element(props), Some("sink"), Some("src"));
    h.set_src_caps(caps(format, width, height));
    h
}

fn stamp(mut b: gst::Buffer, i: u64) -> gst::Buffer {
    let r = b.make_mut();
    r.set_pts(gst::ClockTime::from_mseconds(40 * i));
    r.set_dts(gst::ClockTime::from_mseconds(40 * i + 1));
    r.set_duration(gst::ClockTime::from_mseconds(40));
    r.set_offset(1000 + i);
    if i % 3 == 0 {
        r.set_flags(gst::BufferFlags::DELTA_UNIT);
    }
    if i == 0 {
        r.set_flags(gst::BufferFlags::DISCONT);
    }
    b
}

/// Held for reading by every test whose element starts worker threads, and for writing by the
/// test that counts them.
static THREADS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Pushes EOS and pulls every buffer that comes out before it.
fn finish(h: &mut Harness) -> Vec<gst::Buffer> {
    assert!(h.push_event(gst::event::Eos::new()));
    let mut out = Vec::new();
    while let Some(b) = h.try_pull() {
        out.push(b);
    }
    out
}

#[test]
fn every_frame_leaves_in_order_with_timestamps_flags_and_face_metadata() {
    let _threads = THREADS.read().unwrap_or_else(|e| e.into_inner());
    let clip = clip(480, 270, 2, 12);
    let mut h = harness(&[], VideoFormat::Rgbx, 480, 270);
    let inputs: Vec<gst::Buffer> =
        (0..12).map(|i| stamp(buffer(&clip.frame(i), VideoFormat::Rgbx), i as u64)).collect();
    let mut out = Vec::new();
    for b in &inputs {
        assert_eq!(h.push(b.clone()), Ok(gst::FlowSuccess::Ok));
        while let Some(b) = h.try_pull() {
            out.push(b);
        }
    }
    out.extend(finish(&mut h));
    assert_eq!(out.len(), 12, "N frames in, N out");
    for (i, (o, b)) in out.iter().zip(&inputs).enumerate() {
        assert_eq!(
            (o.pts(), o.dts(), o.duration(), o.offset()),
            (b.pts(), b.dts(), b.duration(), b.offset()),
            "frame {i}"
        );
        assert_eq!(o.flags() & !gst::BufferFlags::TAG_MEMORY, b.flags(), "frame {i} flags");
        let faces = faces(o);
        assert_eq!(faces.len(), 2, "frame {i}: two tracked faces, got {faces:?}");
        let mut ids: Vec<i32> = faces.iter().map(|f| f.0).collect();
        ids.sort();
        assert_eq!(ids, [1, 2], "frame {i}: stable track ids");
        assert_ne!(bytes(o), bytes(b), "frame {i}: the faces were restored (random weights change them)");
        let meta = o.meta::<gst_video::VideoRegionOfInterestMeta>().unwrap();
        let p = meta.param("face").expect("face parameters");
        assert!(p.get::<f64>("score").unwrap() > 0.0);
        assert_eq!(p.get::<gst::Array>("landmarks").unwrap().len(), 10);
        assert!(p.get::<bool>("restored").unwrap());
    }
}

#[test]
fn frames_without_faces_leave_bit_identical_in_every_format_and_odd_sizes() {
    let _threads = THREADS.read().unwrap_or_else(|e| e.into_inner());
    // A smooth gradient: no face, rows padded (odd width), alpha and padding bytes set.
    let (w, h) = (161, 97);
    let mut img = gfpgan::Rgb::new(w, h);
    for (i, p) in img.data.chunks_exact_mut(3).enumerate() {
        let (x, y) = ((i % w) as f32, (i / w) as f32);
        p.copy_from_slice(&[x, y * 2.0, (x + y) / 2.0]);
    }
    use VideoFormat as F;
    for format in [F::Rgb, F::Rgba, F::Bgr, F::Bgra, F::Rgbx, F::Bgrx, F::Xrgb, F::Xbgr] {
        let mut hs = harness(&[], format, w as u32, h as u32);
        let input = buffer(&img, format);
        for i in 0..3 {
            hs.push(stamp(input.clone(), i)).unwrap();
        }
        let out = finish(&mut hs);
        assert_eq!(out.len(), 3, "{format:?}");
        for o in &out {
            assert_eq!(bytes(o), bytes(&input), "{format:?}: a face-free frame changed");
            assert!(faces(o).is_empty());
        }
    }
}

#[test]
fn blend_zero_tracks_faces_but_changes_no_pixel() {
    let _threads = THREADS.read().unwrap_or_else(|e| e.into_inner());
    let clip = clip(320, 240, 1, 4);
    let mut h = harness(&[("blend", 0.0f32.to_value())], VideoFormat::Bgrx, 320, 240);
    let inputs: Vec<gst::Buffer> = (0..4).map(|i| stamp(buffer(&clip.frame(i), VideoFormat::Bgrx), i as u64)).collect();
    for b in &inputs {
        h.push(b.clone()).unwrap();
    }
    let out = finish(&mut h);
    assert_eq!(out.len(), 4);
    for (o, b) in out.iter().zip(&inputs) {
        assert_eq!(bytes(o), bytes(b));
        assert_eq!(faces(o).len(), 1, "still tracked and reported");
    }
}

#[test]
fn expressions_and_messages_are_reported_when_asked_for() {
    let _threads = THREADS.read().unwrap_or_else(|e| e.into_inner());
    let clip = clip(320, 240, 1, 2);
    let props = [("expression", true.to_value()), ("post-messages", true.to_value())];
    let mut h = harness(&props, VideoFormat::Rgbx, 320, 240);
    let bus = gst::Bus::new();
    h.element().unwrap().set_bus(Some(&bus));
    // A segment whose stream time starts at 10 s: messages carry stream time beside the PTS.
    let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
    segment.set_time(gst::ClockTime::from_seconds(10));
    assert!(h.push_event(gst::event::Segment::new(&segment)));
    for i in 0..2 {
        h.push(stamp(buffer(&clip.frame(i), VideoFormat::Rgbx), i as u64)).unwrap();
    }
    let out = finish(&mut h);
    let meta = out[0].meta::<gst_video::VideoRegionOfInterestMeta>().expect("a face");
    let p = meta.param("face").unwrap();
    let label = p.get::<String>("expression").expect("an expression");
    assert!(gfpgan::faceapi::EXPRESSION_LABELS.contains(&label.as_str()), "{label}");
    let confidence = p.get::<f64>("expression-confidence").unwrap();
    assert!((0.0..=1.0).contains(&confidence));
    let messages: Vec<gst::Message> = std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Element])).collect();
    assert_eq!(messages.len(), 2, "one message per frame with faces");
    let s = messages[1].structure().unwrap();
    assert_eq!(s.name(), "facerestore");
    assert_eq!(s.get::<Option<gst::ClockTime>>("timestamp").unwrap(), Some(gst::ClockTime::from_mseconds(40)));
    assert_eq!(s.get::<Option<gst::ClockTime>>("stream-time").unwrap(), Some(gst::ClockTime::from_mseconds(10_040)));
    assert_eq!(s.get::<gst::Array>("faces").unwrap().len(), 1);
}

#[test]
fn eos_drains_every_held_frame_then_forwards_eos() {
    let _threads = THREADS.read().unwrap_or_else(|e| e.into_inner());
    let clip = clip(320, 240, 1, 3);
    let mut h = harness(&[("batch-size", 8u32.to_value())], VideoFormat::Rgb, 320, 240);
    for i in 0..3 {
        h.push(stamp(buffer(&clip.frame(i), VideoFormat::Rgb), i as u64)).unwrap();
    }
    assert!(h.push_event(gst::event::Eos::new()));
    let mut pts = Vec::new();
    while let Some(b) = h.try_pull() {
        pts.push(b.pts().unwrap().mseconds());
    }
    assert_eq!(pts, [0, 40, 80]);
    let mut saw_eos = false;
    while let Some(e) = h.try_pull_event() {
        saw_eos |= e.type_() == gst::EventType::Eos;
    }
    assert!(saw_eos, "EOS goes downstream after the frames");
}

#[test]
fn a_flush_drops_queued_work_and_the_stream_goes_on() {
    let _threads = THREADS.read().unwrap_or_else(|e| e.into_inner());
    let clip = clip(320, 240, 1, 10);
    let mut h = harness(&[("batch-size", 8u32.to_value())], VideoFormat::Rgbx, 320, 240);
    let mut before = 0;
    for i in 0..5 {
        h.push(stamp(buffer(&clip.frame(i as usize), VideoFormat::Rgbx), i)).unwrap();
    }
    while h.try_pull().is_some() {
        before += 1;
    }
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    assert!(h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new())));
    for i in 100..104 {
        h.push(stamp(buffer(&clip.frame(i as usize % 10), VideoFormat::Rgbx), i)).unwrap();
    }
    let out = finish(&mut h);
    let pts: Vec<u64> = out.iter().map(|b| b.pts().unwrap().mseconds() / 40).collect();
    assert!(before <= 5);
    assert_eq!(pts, [100, 101, 102, 103], "only frames after the flush come out");
    assert!(out.iter().all(|b| faces(b).len() == 1), "tracking restarts after the flush");
}

#[test]
fn caps_may_change_size_and_format_mid_stream() {
    let _threads = THREADS.read().unwrap_or_else(|e| e.into_inner());
    let (big, small) = (clip(320, 240, 1, 3), clip(256, 192, 1, 3));
    let mut h = harness(&[], VideoFormat::Rgbx, 320, 240);
    for i in 0..3 {
        h.push(stamp(buffer(&big.frame(i), VideoFormat::Rgbx), i as u64)).unwrap();
    }
    h.set_src_caps(caps(VideoFormat::Bgr, 256, 192));
    for i in 3..6 {
        h.push(stamp(buffer(&small.frame(i - 3), VideoFormat::Bgr), i as u64)).unwrap();
    }
    let out = finish(&mut h);
    let sizes: Vec<usize> = out.iter().map(|b| b.size()).collect();
    let bgr = gst_video::VideoInfo::builder(VideoFormat::Bgr, 256, 192).build().unwrap().size();
    assert_eq!(sizes, [320 * 240 * 4, 320 * 240 * 4, 320 * 240 * 4, bgr, bgr, bgr]);
    assert!(out.iter().all(|b| faces(b).len() == 1), "faces found at both sizes");
    let inside = |b: &gst::Buffer, w: u32, h: u32| faces(b).iter().all(|(_, r)| r.0 + r.2 <= w && r.1 + r.3 <= h);
    assert!(out[3..].iter().all(|b| inside(b, 256, 192)));
}

#[test]
fn latency_query_adds_the_frames_held() {
    let _threads = THREADS.read().unwrap_or_else(|e| e.into_inner());
    let mut h = harness(&[("batch-size", 3u32.to_value())], VideoFormat::Rgbx, 320, 240);
    let clip = clip(320, 240, 1, 1);
    h.push(stamp(buffer(&clip.frame(0), VideoFormat::Rgbx), 0)).unwrap();
    h.set_upstream_latency(gst::ClockTime::from_mseconds(10));
    // batch-size 3: four frames of 40 ms held at most, plus upstream's 10 ms.
    assert_eq!(h.query_latency(), Some(gst::ClockTime::from_mseconds(170)));
    // A pass may also wait batch-wait for other elements' faces.
    h.element().unwrap().set_property("batch-wait", 15u32);
    assert_eq!(h.query_latency(), Some(gst::ClockTime::from_mseconds(185)));
}

#[test]
fn live_passthrough_lets_late_frames_go_unrestored_but_never_drops_one() {
    let _threads = THREADS.read().unwrap_or_else(|e| e.into_inner());
    let clip = clip(640, 480, 2, 12);
    let props = [
        ("batch-size", 1u32.to_value()),
        ("detection-interval", 1u32.to_value()),
        ("live-policy", gstgfpgan::LivePolicy::Passthrough.to_value()),
    ];
    // The harness's source reports itself live.
    let mut h = harness(&props, VideoFormat::Rgbx, 640, 480);
    let inputs: Vec<gst::Buffer> =
        (0..12).map(|i| stamp(buffer(&clip.frame(i), VideoFormat::Rgbx), i as u64)).collect();
    let mut out = Vec::new();
    for b in &inputs {
        h.push(b.clone()).unwrap();
        while let Some(b) = h.try_pull() {
            out.push(b);
        }
    }
    out.extend(finish(&mut h));
    assert_eq!(out.len(), 12);
    let pts: Vec<_> = out.iter().map(|b| b.pts()).collect();
    assert_eq!(pts, inputs.iter().map(|b| b.pts()).collect::<Vec<_>>());
    let unrestored = out.iter().zip(&inputs).filter(|(o, b)| bytes(o) == bytes(b) && faces(o).is_empty()).count();
    assert!(unrestored > 0, "frames pushed faster than they are restored leave unrestored");
}

#[test]
fn odd_caps_are_refused() {
    let _threads = THREADS.read().unwrap_or_else(|e| e.into_inner());
    init();
    let mut h = Harness::with_element(&element(&[]), Some("sink"), Some("src"));
    h.set_src_caps(caps(VideoFormat::I420, 64, 64));
    let info = gst_video::VideoInfo::builder(VideoFormat::I420, 64, 64).build().unwrap();
    assert_eq!(h.push(gst::Buffer::with_size(info.size()).unwrap()), Err(gst::FlowError::NotNegotiated));
}

fn start_error(props: &[(&str, gst::glib::Value)]) -> String {
    init();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("videotestsrc").property("num-buffers", 2).build().unwrap();
    let filter = element(props);
    let sink = gst::ElementFactory::make("fakesink").build().unwrap();
    pipeline.add_many([&src, &filter, &sink]).unwrap();
    gst::Element::link_many([&src, &filter, &sink]).unwrap();
    let started = pipeline.set_state(gst::State::Paused);
    let bus = pipeline.bus().unwrap();
    let msg = bus.timed_pop_filtered(gst::ClockTime::from_seconds(30), &[gst::MessageType::Error]);
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(started.is_err() || msg.is_some(), "the pipeline must fail");
    match msg.expect("an error message").view() {
        gst::MessageView::Error(e) => format!("{} {:?}", e.error(), e.debug()),
        _ => unreachable!(),
    }
}

#[test]
fn missing_or_corrupt_weights_and_missing_face_models_are_named() {
    let _threads = THREADS.read().unwrap_or_else(|e| e.into_inner());
    let missing = start_error(&[("weights", "/no/such/GFPGANv1.4.pth".to_value())]);
    assert!(missing.contains("/no/such/GFPGANv1.4.pth"), "{missing}");
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.pth");
    std::fs::write(&corrupt, b"PK\x03\x04 not really a checkpoint").unwrap();
    let msg = start_error(&[("weights", corrupt.display().to_string().to_value())]);
    assert!(msg.contains("corrupt.pth"), "{msg}");
    let msg = start_error(&[("face-models", "/no/face/models".to_value())]);
    assert!(msg.contains("/no/face/models"), "{msg}");
    let msg = start_error(&[("device", "tpu".to_value())]);
    assert!(msg.contains("tpu"), "{msg}");
}

#[test]
fn twenty_null_playing_null_cycles_leave_no_threads() {
    // Alone: the count would see the worker threads of elements in other tests.
    let _threads = THREADS.write().unwrap_or_else(|e| e.into_inner());
    init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=4 ! video/x-raw,format=RGBx,width=160,height=120 ! facerestore weights={} face-models={} ! fakesink",
        weights(),
        face_models()
    ))
    .unwrap();
    for cycle in 0..20 {
        pipeline.set_state(gst::State::Playing).unwrap();
        if cycle % 2 == 0 {
            // Every other cycle runs to EOS; the others stop mid-stream.
            let msg = pipeline.bus().unwrap().timed_pop_filtered(
                gst::ClockTime::from_seconds(60),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            );
            assert!(matches!(msg.map(|m| m.type_()), Some(gst::MessageType::Eos)), "cycle {cycle}");
        }
        pipeline.set_state(gst::State::Null).unwrap();
        assert_eq!(element_threads_left(), 0, "cycle {cycle}: worker threads left running");
    }
}

#[test]
fn model_properties_are_fixed_while_playing_and_knobs_are_not() {
    let _threads = THREADS.read().unwrap_or_else(|e| e.into_inner());
    init();
    let e = element(&[]);
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("videotestsrc").property("is-live", true).build().unwrap();
    let sink = gst::ElementFactory::make("fakesink").build().unwrap();
    pipeline.add_many([&src, &e, &sink]).unwrap();
    gst::Element::link_many([&src, &e, &sink]).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let _ = pipeline.state(gst::ClockTime::from_seconds(30));
    e.set_property("weights", "/other.pth");
    assert_eq!(e.property::<Option<String>>("weights"), Some(weights()));
    e.set_property("blend", 0.25f32);
    assert_eq!(e.property::<f32>("blend"), 0.25);
    pipeline.set_state(gst::State::Null).unwrap();
    e.set_property("weights", "/other.pth");
    assert_eq!(e.property::<Option<String>>("weights").as_deref(), Some("/other.pth"));
}

#[test]
fn every_default_is_the_fresh_value_and_the_library_default() {
    init();
    let e = gst::ElementFactory::make("facerestore").build().unwrap();
    let ours: Vec<gst::glib::ParamSpec> =
        e.list_properties().iter().filter(|p| p.owner_type() == e.type_()).cloned().collect();
    assert_eq!(ours.len(), 23, "the element's own properties");
    // Every one but the read-only `stats`.
    for pspec in ours.iter().filter(|p| p.flags().contains(gst::glib::ParamFlags::WRITABLE)) {
        let (default, value) = (pspec.default_value(), e.property_value(pspec.name()));
        assert!(
            GstValueExt::eq(default, &value),
            "{}: ParamSpec default {default:?}, fresh value {value:?}",
            pspec.name()
        );
    }
    // The stream's knobs: the library's defaults are the element's.
    let t = gfpgan::pipeline::Tuning::DEFAULT;
    assert_eq!(gfpgan::pipeline::Tuning::default(), t);
    let library = [
        ("batch-size", (t.batch_size as u32).to_value()),
        ("batch-wait", (t.batch_wait.as_millis() as u32).to_value()),
        ("detection-interval", t.detection_interval.to_value()),
        ("min-face-size", t.min_face_size.to_value()),
        ("max-faces", (t.max_faces as u32).to_value()),
        ("temporal-smoothing", t.temporal_smoothing.to_value()),
        ("expression", t.expression.to_value()),
        ("mirror-landmarks", t.mirror_landmarks.to_value()),
        ("full-frame-search", t.full_frame_search.to_value()),
        ("region", "".to_value()),
        (
            "noise",
            if t.stored_noise { gstgfpgan::NoiseChoice::Stored } else { gstgfpgan::NoiseChoice::Track }.to_value(),
        ),
    ];
    assert_eq!(t.region, None);
    for (name, expected) in library {
        let default = e.find_property(name).unwrap().default_value().clone();
        assert!(GstValueExt::eq(&default, &expected), "{name}: element default {default:?}, library {expected:?}");
    }
}

#[test]
fn every_property_change_is_logged() {
    init();
    let e = gst::ElementFactory::make("facerestore").build().unwrap();
    let ptr = e.upcast_ref::<gst::glib::Object>().as_ptr() as usize;
    let logged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = logged.clone();
    gst::log::set_active(true);
    gst::log::set_threshold_for_name("facerestore", gst::DebugLevel::Info);
    let f = gst::log::add_log_function(move |cat, level, _, _, _, obj, msg| {
        if cat.name() == "facerestore"
            && level == gst::DebugLevel::Info
            && obj.is_some_and(|o| o.as_ptr() as usize == ptr)
        {
            sink.lock().unwrap().push(msg.get().map(|m| m.to_string()).unwrap_or_default());
        }
    });
    let changes = [
        ("weights", "/a.pth".to_value(), "Changing weights from none to /a.pth"),
        ("face-models", "/models".to_value(), "Changing face-models from none to /models"),
        ("device", "cuda:1".to_value(), "Changing device from cpu to cuda:1"),
        ("engine", gstgfpgan::EngineChoice::Nhwc.to_value(), "Changing engine from Auto to Nhwc"),
        ("server", "127.0.0.1:8001".to_value(), "Changing server from None to Some(\"127.0.0.1:8001\")"),
        ("model-name", "faces".to_value(), "Changing model-name from gfpgan to faces"),
        ("max-in-flight", 4u32.to_value(), "Changing max-in-flight from 2 to 4"),
        ("server-timeout", 500u32.to_value(), "Changing server-timeout from 10000 ms to 500 ms"),
        ("noise", gstgfpgan::NoiseChoice::Stored.to_value(), "Changing noise from Track to Stored"),
        ("batch-size", 8u32.to_value(), "Changing batch-size from 4 to 8"),
        ("batch-wait", 20u32.to_value(), "Changing batch-wait from 0 ms to 20 ms"),
        ("detection-interval", 2u32.to_value(), "Changing detection-interval from 5 to 2"),
        ("min-face-size", 20f32.to_value(), "Changing min-face-size from 16 to 20"),
        ("region", "0,0,640,360".to_value(), "Changing region from the whole frame to 0,0,640,360"),
        ("full-frame-search", true.to_value(), "Changing full-frame-search from false to true"),
        ("max-faces", 3u32.to_value(), "Changing max-faces from 16 to 3"),
        ("blend", 0.25f32.to_value(), "Changing blend from 1 to 0.25"),
        ("temporal-smoothing", 0.75f32.to_value(), "Changing temporal-smoothing from 0.5 to 0.75"),
        ("expression", true.to_value(), "Changing expression from false to true"),
        ("mirror-landmarks", true.to_value(), "Changing mirror-landmarks from false to true"),
        (
            "live-policy",
            gstgfpgan::LivePolicy::Passthrough.to_value(),
            "Changing live-policy from Block to Passthrough",
        ),
        ("post-messages", true.to_value(), "Changing post-messages from false to true"),
    ];
    for (name, value, _) in &changes {
        e.set_property_from_value(name, value);
    }
    gst::log::remove_log_function(f);
    // Back to the default log level (the default log function prints what passes it).
    gst::log::unset_threshold_for_name("facerestore");
    let logged = logged.lock().unwrap().clone();
    for (name, _, line) in &changes {
        assert!(logged.iter().any(|l| l == line), "{name}: no {line:?} in {logged:#?}");
    }
}

#[test]
fn a_bad_region_is_reported_and_the_region_kept() {
    init();
    let e = gst::ElementFactory::make("facerestore").build().unwrap();
    let bus = gst::Bus::new();
    e.set_bus(Some(&bus));
    e.set_property("region", "10, 20, 300, 200");
    assert_eq!(e.property::<String>("region"), "10,20,300,200");
    for bad in ["10,20,300", "a,b,c,d", "0,0,0,5", "-5,0,10,10"] {
        e.set_property("region", bad);
        assert_eq!(e.property::<String>("region"), "10,20,300,200", "{bad} changed the region");
        let msg = bus.pop_filtered(&[gst::MessageType::Warning]).unwrap_or_else(|| panic!("{bad}: no warning"));
        let gst::MessageView::Warning(w) = msg.view() else { unreachable!() };
        let text = format!("{} {:?}", w.error(), w.debug());
        assert!(text.contains("x,y,width,height"), "{bad}: {text}");
    }
    e.set_property("region", "");
    assert_eq!(e.property::<String>("region"), "", "empty: the whole frame again");
}

/// A 1920x1080 frame with a face, as RGBx. With min-face-size 10 and full-frame-search the
/// element detects on the whole frame upscaled 4x: seconds of work, so a push that must wait
/// for its result blocks that long.
fn slow_frame() -> gst::Buffer {
    static FRAME: std::sync::OnceLock<gst::Buffer> = std::sync::OnceLock::new();
    init();
    FRAME.get_or_init(|| buffer(&clip(1920, 1080, 1, 1).frame(0), VideoFormat::Rgbx)).clone()
}

/// A harness for `slow_frame`s holding two frames (batch-size 1), with frames 0 and 1 pushed;
/// the push of frame 2, on a thread of its own, waiting for frame 0's result (detection on the
/// 1080p frame down to 10 px faces takes seconds); and the element's bus, where every frame that
/// leaves with faces posts a `facerestore` message (`post-messages`).
fn waiting_push() -> (Harness, gst::Bus, std::thread::JoinHandle<Result<gst::FlowSuccess, gst::FlowError>>) {
    let frame = slow_frame();
    let props = [
        ("batch-size", 1u32.to_value()),
        ("min-face-size", 10f32.to_value()),
        ("full-frame-search", true.to_value()),
        ("post-messages", true.to_value()),
    ];
    let mut h = harness(&props, VideoFormat::Rgbx, 1920, 1080);
    let bus = gst::Bus::new();
    h.element().unwrap().set_bus(Some(&bus));
    for i in 0..2 {
        assert_eq!(h.push(stamp(frame.clone(), i)), Ok(gst::FlowSuccess::Ok));
    }
    let pad = h.srcpad().unwrap();
    let third = stamp(frame, 2);
    let pusher = std::thread::spawn(move || pad.push(third));
    // Give the push time to start waiting (not asserted: a push that has not started yet meets
    // the flush or the stop and returns Flushing just the same).
    std::thread::sleep(std::time::Duration::from_millis(500));
    (h, bus, pusher)
}

/// Frames that left the element with faces, by their `facerestore` messages.
fn finished_frames(bus: &gst::Bus) -> usize {
    std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Element])).count()
}

#[test]
fn a_flush_start_wakes_a_push_waiting_for_a_slow_result_and_the_next_wait_waits_again() {
    let _threads = THREADS.read().unwrap_or_else(|e| e.into_inner());
    let (mut h, bus, pusher) = waiting_push();
    // A flushing seek from another thread: the waiting push must give up without waiting for
    // frame 0's result. Had it waited, frame 0 would have been finished (and its message posted)
    // before the push returned; a flushed frame is never finished.
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert_eq!(pusher.join().unwrap(), Err(gst::FlowError::Flushing));
    assert_eq!(finished_frames(&bus), 0, "the push waited for frame 0's result instead of leaving on flush-start");
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    assert!(h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new())));
    // After the flush, waits wait again: the third push blocks for frame 10's result (behind
    // frame 0's, which the workers finish first) and succeeds.
    h.element().unwrap().set_property("min-face-size", 40f32);
    let frame = slow_frame();
    for i in 10..13 {
        assert_eq!(h.push(stamp(frame.clone(), i)), Ok(gst::FlowSuccess::Ok), "frame {i} after the flush");
    }
    let out = finish(&mut h);
    let pts: Vec<u64> = out.iter().map(|b| b.pts().unwrap().mseconds() / 40).collect();
    assert_eq!(pts, [10, 11, 12], "only frames after the flush come out");
}

#[test]
fn stopping_wakes_a_push_waiting_for_a_slow_result() {
    let _threads = THREADS.read().unwrap_or_else(|e| e.into_inner());
    let (h, bus, pusher) = waiting_push();
    let element = h.element().unwrap();
    // The state change itself may take a while (it joins the worker threads, which finish the
    // frame in progress first); the push must not wait for frame 0's result (which would finish
    // frame 0 and post its message before the push returned).
    let stopping = std::thread::spawn(move || element.set_state(gst::State::Null));
    assert_eq!(pusher.join().unwrap(), Err(gst::FlowError::Flushing));
    assert_eq!(finished_frames(&bus), 0, "the push waited for frame 0's result instead of leaving on stop");
    assert!(stopping.join().unwrap().is_ok());
}

/// A `stats` field of the element.
fn stat(h: &Harness, field: &str) -> u64 {
    let s = h.element().unwrap().property::<gst::Structure>("stats");
    s.get::<u32>(field).map(u64::from).or_else(|_| s.get::<u64>(field)).unwrap()
}

#[test]
fn live_passthrough_keeps_the_frames_given_to_the_workers_bounded_however_slow_they_are() {
    let _threads = THREADS.read().unwrap_or_else(|e| e.into_inner());
    // Each slow frame takes the workers seconds; twelve are pushed far faster than that.
    let frame = slow_frame();
    let props = [
        ("batch-size", 1u32.to_value()),
        ("min-face-size", 10f32.to_value()),
        ("full-frame-search", true.to_value()),
        ("live-policy", gstgfpgan::LivePolicy::Passthrough.to_value()),
    ];
    let mut h = harness(&props, VideoFormat::Rgbx, 1920, 1080);
    let mut out = 0;
    for i in 0..12 {
        assert_eq!(h.push(stamp(frame.clone(), i)), Ok(gst::FlowSuccess::Ok));
        while h.try_pull().is_some() {
            out += 1;
        }
        // batch-size 1: two frames held, four given to the workers at most.
        assert!(stat(&h, "held") <= 2, "frame {i}: {} held", stat(&h, "held"));
        assert!(stat(&h, "in-workers") <= 4, "frame {i}: {} frames with the workers", stat(&h, "in-workers"));
    }
    out += finish(&mut h).len();
    assert_eq!(out, 12, "no frame is dropped");
}

#[test]
fn a_variable_frame_rate_flows_and_its_latency_comes_from_the_buffers() {
    let _threads = THREADS.read().unwrap_or_else(|e| e.into_inner());
    init();
    let clip = clip(320, 240, 1, 6);
    let props = [("batch-size", 1u32.to_value()), ("live-policy", gstgfpgan::LivePolicy::Passthrough.to_value())];
    let mut h = Harness::with_element(&element(&props), Some("sink"), Some("src"));
    // framerate=0/1, as RTSP sources negotiate.
    let info = gst_video::VideoInfo::builder(VideoFormat::Rgbx, 320, 240).fps(gst::Fraction::new(0, 1)).build();
    h.set_src_caps(info.unwrap().to_caps().unwrap());
    let bus = gst::Bus::new();
    h.element().unwrap().set_bus(Some(&bus));
    h.set_upstream_latency(gst::ClockTime::from_mseconds(10));
    assert!(h.query_latency().is_some(), "answered before any buffer (an assumed rate)");
    let mut out = Vec::new();
    for i in 0..6 {
        h.push(stamp(buffer(&clip.frame(i), VideoFormat::Rgbx), i as u64)).unwrap();
        while let Some(b) = h.try_pull() {
            out.push(b);
        }
    }
    // The buffers last 40 ms: two frames held (batch-size 1), plus upstream's 10 ms.
    assert_eq!(h.query_latency(), Some(gst::ClockTime::from_mseconds(90)));
    let latency_messages = std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Latency])).count();
    assert_eq!(latency_messages, 1, "the pipeline is told once the frame duration is known");
    out.extend(finish(&mut h));
    let pts: Vec<u64> = out.iter().map(|b| b.pts().unwrap().mseconds()).collect();
    assert_eq!(pts, [0, 40, 80, 120, 160, 200], "every frame leaves, in order");
}

#[test]
fn the_allocation_query_adds_the_buffers_held_to_the_pool() {
    let _threads = THREADS.read().unwrap_or_else(|e| e.into_inner());
    let h = harness(&[("batch-size", 3u32.to_value())], VideoFormat::Rgbx, 320, 240);
    let caps = caps(VideoFormat::Rgbx, 320, 240);
    let mut q = gst::query::Allocation::new(Some(&caps), true);
    assert!(h.srcpad().unwrap().peer_query(&mut q), "the element answers");
    // The harness downstream proposes no pool: the element proposes one holding its frames.
    let pools: Vec<_> = q.allocation_pools().map(|(_, size, min, max)| (size, min, max)).collect();
    assert_eq!(pools, [(320 * 240 * 4, 4, 0)], "batch-size 3: four buffers held");
}

#[test]
fn the_drain_query_pushes_out_every_held_frame_before_it_is_answered() {
    let _threads = THREADS.read().unwrap_or_else(|e| e.into_inner());
    // Slow frames, held (batch-size 8) while the workers take seconds over each.
    let frame = slow_frame();
    let props =
        [("batch-size", 8u32.to_value()), ("min-face-size", 10f32.to_value()), ("full-frame-search", true.to_value())];
    let mut h = harness(&props, VideoFormat::Rgbx, 1920, 1080);
    for i in 0..2 {
        assert_eq!(h.push(stamp(frame.clone(), i)), Ok(gst::FlowSuccess::Ok));
    }
    assert!(h.srcpad().unwrap().peer_query(&mut gst::query::Drain::new()));
    let mut pts = Vec::new();
    while let Some(b) = h.try_pull() {
        assert!(!faces(&b).is_empty(), "with their faces");
        pts.push(b.pts().unwrap().mseconds());
    }
    assert_eq!(pts, [0, 40], "both frames were out when the query returned");
    while let Some(e) = h.try_pull_event() {
        assert_ne!(e.type_(), gst::EventType::Eos, "a drain is not the end of the stream");
    }
}

#[test]
fn a_failed_frame_is_reported_with_its_number_and_the_stream_goes_on() {
    let _threads = THREADS.read().unwrap_or_else(|e| e.into_inner());
    // Face models without the expression net: the frame that asks for expressions fails.
    let dir = tempfile::tempdir().unwrap();
    for f in ["face_landmark_68_model-weights_manifest.json", "face_landmark_68_model.bin"] {
        std::os::unix::fs::symlink(std::path::Path::new(&face_models()).join(f), dir.path().join(f)).unwrap();
    }
    let props = [("face-models", dir.path().display().to_string().to_value()), ("batch-size", 1u32.to_value())];
    let mut h = harness(&props, VideoFormat::Rgbx, 320, 240);
    let bus = gst::Bus::new();
    let element = h.element().unwrap();
    element.set_bus(Some(&bus));
    let clip = clip(320, 240, 1, 6);
    let mut errors = 0;
    for i in 0..6 {
        element.set_property("expression", i == 2);
        errors += h.push(stamp(buffer(&clip.frame(i), VideoFormat::Rgbx), i as u64)).is_err() as usize;
    }
    let out = finish(&mut h);
    assert!(errors <= 1, "only the push that met the failure returns it");
    let pts: Vec<u64> = out.iter().map(|b| b.pts().unwrap().mseconds() / 40).collect();
    assert_eq!(pts, [0, 1, 2, 3, 4, 5], "the failed frame leaves too, in its place");
    assert!(faces(&out[2]).is_empty(), "the failed frame leaves untouched");
    assert!(out[3..].iter().all(|b| faces(b).len() == 1), "the frames after it are tracked again");
    let messages: Vec<String> = std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Error]))
        .map(|m| match m.view() {
            gst::MessageView::Error(e) => e.error().to_string(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].starts_with("face restoration failed: frame 2: "), "{}", messages[0]);
    assert!(messages[0].contains("face_expression_model"), "{}", messages[0]);
    assert_eq!(stat(&h, "failed"), 1);
    assert_eq!(stat(&h, "in-workers"), 0, "nothing left with the workers");
}
