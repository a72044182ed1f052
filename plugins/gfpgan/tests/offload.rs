//! The element restoring on an inference server (`server`): against `gfpgan serve` started in
//! this process on loopback, its frames equal the element's local restoration and leave in
//! order; an unreachable server fails the start with the reason, quickly; a server that goes
//! away mid-stream fails the stream with the reason (never a hang), or, on a live stream with
//! `live-policy=passthrough`, lets frames leave unrestored with a warning.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use gfpgan::restore::SharedRestorer;
use gfpgan::serve::{ServeOptions, Server};
use gst::prelude::*;
use gst_check::Harness;
use gst_video::VideoFormat;

fn server() -> Server {
    let restorer = gfpgan::Restorer::load(
        std::path::Path::new(&weights()),
        &gfpgan::candle::Device::Cpu,
        gfpgan::candle::DType::F32,
        gfpgan::Engine::Auto,
    )
    .unwrap();
    let opts = ServeOptions {
        http: "127.0.0.1:0".parse().unwrap(),
        grpc: Some("127.0.0.1:0".parse().unwrap()),
        face_models: face_models().into(),
        ..Default::default()
    };
    Server::start(SharedRestorer::new(Arc::new(restorer)).unwrap(), opts).unwrap()
}

fn frames(n: usize) -> Vec<gst::Buffer> {
    let clip = clip(320, 240, 2, n);
    (0..n)
        .map(|i| {
            let mut b = buffer(&clip.frame(i), VideoFormat::Rgbx);
            let r = b.make_mut();
            r.set_pts(gst::ClockTime::from_mseconds(40 * i as u64));
            r.set_duration(gst::ClockTime::from_mseconds(40));
            b
        })
        .collect()
}

fn harness(props: &[(&str, gst::glib::Value)]) -> Harness {
    let mut all = vec![("batch-size", 1u32.to_value())];
    all.extend(props.iter().cloned());
    let e = element(&all);
    let mut h = Harness::with_element(&e, Some("sink"), Some("src"));
    h.set_src_caps(caps(VideoFormat::Rgbx, 320, 240));
    h
}

fn run(h: &mut Harness, input: &[gst::Buffer]) -> Vec<gst::Buffer> {
    let mut out = Vec::new();
    for b in input {
        h.push(b.clone()).unwrap();
        out.extend(std::iter::from_fn(|| h.try_pull()));
    }
    assert!(h.push_event(gst::event::Eos::new()));
    out.extend(std::iter::from_fn(|| h.try_pull()));
    out
}

fn restored(h: &Harness) -> u64 {
    h.element().unwrap().property::<gst::Structure>("stats").get::<u64>("restored").unwrap()
}

#[test]
fn frames_restored_on_the_server_equal_local_ones_and_keep_their_order() {
    init();
    let server = server();
    let url = format!("http://{}", server.grpc_addr().unwrap());
    let input = frames(8);
    for noise in [gstgfpgan::NoiseChoice::Track, gstgfpgan::NoiseChoice::Stored] {
        let mut local = harness(&[("noise", noise.to_value())]);
        let local_out = run(&mut local, &input);
        let mut remote =
            harness(&[("server", url.to_value()), ("max-in-flight", 3u32.to_value()), ("noise", noise.to_value())]);
        let remote_out = run(&mut remote, &input);
        let pts = |o: &[gst::Buffer]| o.iter().map(|b| b.pts().unwrap().mseconds() / 40).collect::<Vec<_>>();
        assert_eq!(pts(&remote_out), (0..8).collect::<Vec<_>>(), "every frame, in order");
        assert!(restored(&local) >= 6, "{noise:?}: faces found and restored locally");
        assert_eq!(restored(&remote), restored(&local), "{noise:?}: the same frames restored");
        let worst = local_out
            .iter()
            .zip(&remote_out)
            .flat_map(|(a, b)| bytes(a).into_iter().zip(bytes(b)))
            .map(|(p, q)| p.abs_diff(q))
            .max()
            .unwrap();
        assert!(worst <= 1, "{noise:?}: remote frames differ from local ones by {worst} levels");
        assert!(
            local_out.iter().zip(&input).any(|(o, i)| bytes(o) != bytes(i)),
            "{noise:?}: the frames were changed at all"
        );
    }
    let served = server.state().metrics.faces.get();
    assert!(served >= 12, "the server restored the remote faces: {served}");
    server.shutdown().unwrap();
}

#[test]
fn an_unreachable_server_fails_the_start_with_the_reason() {
    init();
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = element(&[("server", format!("127.0.0.1:{port}").to_value()), ("server-timeout", 2000u32.to_value())]);
    let bus = gst::Bus::new();
    e.set_bus(Some(&bus));
    assert!(e.set_state(gst::State::Paused).is_err(), "the start fails");
    let msg =
        bus.timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error]).expect("an error message");
    let gst::MessageView::Error(err) = msg.view() else { unreachable!() };
    let text = err.error().to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")) && text.contains("cannot connect"), "{text}");
    e.set_state(gst::State::Null).unwrap();
}

#[test]
fn a_server_that_goes_away_fails_the_stream_with_the_reason_or_is_passed_through_when_live() {
    init();
    let input = frames(6);
    for passthrough in [false, true] {
        let server = server();
        let url = server.grpc_addr().unwrap().to_string();
        let mut props = vec![("server", url.to_value()), ("server-timeout", 3000u32.to_value())];
        if passthrough {
            props.push(("live-policy", gstgfpgan::LivePolicy::Passthrough.to_value()));
        }
        let mut h = harness(&props);
        if passthrough {
            // A live source: the element answers the latency query as live.
            h.set_upstream_latency(gst::ClockTime::ZERO);
            h.set_live(true);
        }
        let bus = gst::Bus::new();
        h.element().unwrap().set_bus(Some(&bus));
        h.push(input[0].clone()).unwrap();
        server.shutdown().unwrap();
        let mut flows = Vec::new();
        let mut out = std::iter::from_fn(|| h.try_pull()).collect::<Vec<_>>();
        for b in &input[1..] {
            flows.push(h.push(b.clone()));
            out.extend(std::iter::from_fn(|| h.try_pull()));
        }
        h.push_event(gst::event::Eos::new());
        out.extend(std::iter::from_fn(|| h.try_pull()));
        let kind = if passthrough { gst::MessageType::Warning } else { gst::MessageType::Error };
        let msg = bus.timed_pop_filtered(gst::ClockTime::from_seconds(10), &[kind]).expect("a message with the reason");
        let text = match msg.view() {
            gst::MessageView::Error(e) => e.error().to_string(),
            gst::MessageView::Warning(w) => w.error().to_string(),
            _ => unreachable!(),
        };
        assert!(text.contains("inference server") && text.contains(&url), "{text}");
        if passthrough {
            assert!(flows.iter().all(Result::is_ok), "the live stream goes on: {flows:?}");
            assert_eq!(out.len(), input.len(), "every frame leaves");
        } else {
            assert!(flows.iter().any(Result::is_err), "the stream stops: {flows:?}");
        }
        let _ = Duration::ZERO;
    }
}

/// The element against a real Triton serving the official PyTorch GFPGANv1Clean on the same
/// checkpoint (tests/serve/run.sh starts it and sets `GFPGAN_TRITON_GRPC`), with the stored
/// noise the official model uses: the frames equal the element's local restoration.
#[test]
#[ignore = "needs Triton: tests/serve/run.sh"]
fn frames_restored_on_triton_equal_local_ones() {
    init();
    let addr = std::env::var("GFPGAN_TRITON_GRPC").expect("GFPGAN_TRITON_GRPC=host:port of Triton's gRPC");
    let input = frames(8);
    let stored = ("noise", gstgfpgan::NoiseChoice::Stored.to_value());
    let mut local = harness(&[stored.clone()]);
    let local_out = run(&mut local, &input);
    let mut remote = harness(&[("server", addr.to_value()), stored]);
    let remote_out = run(&mut remote, &input);
    assert_eq!(remote_out.len(), input.len());
    assert!(restored(&local) >= 6);
    assert_eq!(restored(&remote), restored(&local));
    let diffs: Vec<u8> = local_out
        .iter()
        .zip(&remote_out)
        .flat_map(|(a, b)| bytes(a).into_iter().zip(bytes(b)))
        .map(|(p, q)| p.abs_diff(q))
        .collect();
    let worst = diffs.iter().copied().max().unwrap();
    let differing = diffs.iter().filter(|&&d| d > 0).count();
    eprintln!("element on Triton against local: worst {worst} level, {differing} of {} bytes differ", diffs.len());
    assert!(worst <= 1, "{worst} levels apart");
}
