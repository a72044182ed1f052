//! `gfpgan serve` on loopback: the Open Inference Protocol over HTTP (JSON and binary tensors)
//! and gRPC gives what the library gives locally; concurrent requests share passes; every kind
//! of bad input is a 4xx with a message; a full queue is a 503; a request past the timeout is
//! a 504; a client that vanishes mid-request leaves the server healthy; shutting down answers
//! the requests accepted. (The official `tritonclient` against this server, and the element
//! against Triton, are in tests/serve/, run by benches/serve_interop.sh.)

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use gfpgan::frame::{PackedLayout, Rgb};
use gfpgan::restore::{FaceNetwork, FaceNoise, SharedRestorer, restore_crops};
use gfpgan::serve::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use gfpgan::serve::proto::model_infer_request::InferInputTensor;
use gfpgan::serve::proto::{ModelInferRequest, ServerReadyRequest};
use gfpgan::serve::{BatchOptions, RemoteNetwork, ServeOptions, Server};
use serde_json::{Value, json};

const S: usize = 64;

fn start(batch: BatchOptions, max_body: usize) -> Server {
    let opts = ServeOptions {
        http: "127.0.0.1:0".parse().unwrap(),
        grpc: Some("127.0.0.1:0".parse().unwrap()),
        batch,
        max_body,
        face_models: face_models(),
        ..Default::default()
    };
    Server::start(SharedRestorer::new(a64_restorer()).unwrap(), opts).unwrap()
}

fn default_server() -> Server {
    start(BatchOptions::default(), 1 << 20)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn url(server: &Server, path: &str) -> String {
    format!("http://{}{path}", server.http_addr())
}

/// `n` aligned faces of random pixels, and as the UINT8 NHWC bytes of the protocol.
fn faces(n: usize, seed: u8) -> (Vec<Rgb>, Vec<u8>) {
    let bytes: Vec<u8> =
        (0..n * S * S * 3).map(|i| (i as u32).wrapping_mul(2654435761).rotate_left(seed as u32) as u8).collect();
    let crops = bytes.chunks(S * S * 3).map(|c| Rgb::from_packed(c, S, S, &PackedLayout::rgb(S)).unwrap()).collect();
    (crops, bytes)
}

/// What the library restores locally, as UINT8 NHWC.
fn local(crops: &[Rgb]) -> Vec<u8> {
    let out = restore_crops(&a64_restorer(), crops, crops.len(), FaceNoise::PerFace(&vec![None; crops.len()])).unwrap();
    out.iter().flat_map(|f| f.to_rgb8().into_raw()).collect()
}

/// Posts a binary-extension infer request; returns the status and (JSON, binary tail).
fn infer_binary(server: &Server, inputs: Value, binary: &[u8], outputs_binary: bool) -> (u16, Value, Vec<u8>) {
    let mut header = json!({ "inputs": inputs });
    if outputs_binary {
        header["outputs"] = json!([{ "name": "output", "parameters": { "binary_data": true } }]);
    }
    let header = serde_json::to_vec(&header).unwrap();
    let mut body = header.clone();
    body.extend_from_slice(binary);
    let mut r = agent()
        .post(&url(server, "/v2/models/gfpgan/infer"))
        .header("Inference-Header-Content-Length", &header.len().to_string())
        .send(&body[..])
        .unwrap();
    let status = r.status().as_u16();
    let json_len: Option<usize> =
        r.headers().get("inference-header-content-length").map(|v| v.to_str().unwrap().parse().unwrap());
    let bytes = r.body_mut().with_config().limit(64 << 20).read_to_vec().unwrap();
    let split = json_len.unwrap_or(bytes.len());
    (status, serde_json::from_slice(&bytes[..split]).unwrap(), bytes[split..].to_vec())
}

fn u8_input(n: usize, bytes: usize) -> Value {
    json!([{ "name": "input", "datatype": "UINT8", "shape": [n, S, S, 3], "parameters": { "binary_data_size": bytes } }])
}

#[test]
fn http_and_grpc_answers_equal_the_local_restoration() {
    let server = default_server();
    let (crops, bytes) = faces(2, 3);
    let want = local(&crops);
    // HTTP, binary tensors both ways.
    let (status, header, out) = infer_binary(&server, u8_input(2, bytes.len()), &bytes, true);
    assert_eq!(status, 200, "{header}");
    assert_eq!(header["outputs"][0]["datatype"], "UINT8");
    assert_eq!(header["outputs"][0]["shape"], json!([2, S, S, 3]));
    assert_eq!(out, want, "HTTP binary");
    // HTTP, JSON both ways.
    let body = json!({ "id": "r1", "inputs": [{ "name": "input", "datatype": "UINT8", "shape": [2, S, S, 3], "data": bytes }] });
    let mut r =
        agent().post(&url(&server, "/v2/models/gfpgan/infer")).send(&serde_json::to_vec(&body).unwrap()[..]).unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = serde_json::from_slice(&r.body_mut().with_config().limit(64 << 20).read_to_vec().unwrap()).unwrap();
    assert_eq!(v["id"], "r1");
    let data: Vec<u8> = serde_json::from_value(v["outputs"][0]["data"].clone()).unwrap();
    assert_eq!(data, want, "HTTP JSON");
    // gRPC with raw contents, on the generated client.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let grpc_out = rt.block_on(async {
        let mut c =
            GrpcInferenceServiceClient::connect(format!("http://{}", server.grpc_addr().unwrap())).await.unwrap();
        assert!(c.server_ready(ServerReadyRequest {}).await.unwrap().into_inner().ready);
        let input = InferInputTensor {
            name: "input".into(),
            datatype: "UINT8".into(),
            shape: vec![2, S as i64, S as i64, 3],
            ..Default::default()
        };
        let r = ModelInferRequest {
            model_name: "gfpgan".into(),
            inputs: vec![input],
            raw_input_contents: vec![bytes.clone()],
            ..Default::default()
        };
        c.model_infer(r).await.unwrap().into_inner()
    });
    assert_eq!(grpc_out.outputs[0].shape, [2, S as i64, S as i64, 3]);
    assert_eq!(grpc_out.raw_output_contents[0], want, "gRPC");
    // The client the element uses: FP32 NCHW, per-face seeds, equal to local within float error.
    let remote =
        RemoteNetwork::connect(&server.grpc_addr().unwrap().to_string(), "gfpgan", Duration::from_secs(30)).unwrap();
    assert_eq!(remote.face_size(), S);
    assert!(remote.takes_seeds());
    for seeds in [[Some(5), Some(9)], [None, None]] {
        let got = remote.restore_faces(&crops, &seeds).unwrap();
        let expected = restore_crops(&a64_restorer(), &crops, 2, FaceNoise::PerFace(&seeds)).unwrap();
        let worst = got
            .iter()
            .zip(&expected)
            .flat_map(|(a, b)| a.data.iter().zip(&b.data))
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-2, "{seeds:?}: remote and local differ by {worst} levels");
    }
    let metrics = agent().get(&url(&server, "/metrics")).call().unwrap().body_mut().read_to_string().unwrap();
    for name in
        ["gfpgan_requests_total", "gfpgan_request_seconds_bucket", "gfpgan_batch_faces_bucket", "gfpgan_queue_faces"]
    {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    assert!(
        metrics.contains(r#"gfpgan_requests_total{code="200",endpoint="/v2/models/{model}/infer",protocol="http"} 2"#),
        "{metrics}"
    );
    server.shutdown().unwrap();
}

#[test]
fn concurrent_requests_share_network_passes() {
    // A pass waits up to 2 s for 4 faces; four one-face requests sent together fill it.
    let batch = BatchOptions { max_batch: 4, max_delay: Duration::from_secs(2), ..Default::default() };
    let server = start(batch, 1 << 20);
    let answers: Vec<(Vec<u8>, Vec<u8>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|k| {
                let server = &server;
                s.spawn(move || {
                    let (crops, bytes) = faces(1, k as u8 * 7 + 1);
                    let (status, header, out) = infer_binary(server, u8_input(1, bytes.len()), &bytes, true);
                    assert_eq!(status, 200, "{header}");
                    (out, local(&crops))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (k, (got, want)) in answers.iter().enumerate() {
        assert_eq!(got, want, "request {k} got its own faces back");
    }
    let stats = server.state().model.batcher.stats();
    assert_eq!((stats.passes, stats.largest_pass), (1, 4), "one pass of the four requests' faces: {stats:?}");
    server.shutdown().unwrap();
}

fn expect_4xx(status: u16, body: &Value, code: u16, words: &str) {
    assert_eq!(status, code, "{body}");
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(msg.contains(words), "error {msg:?} should mention {words:?}");
}

fn post(server: &Server, path: &str, body: &[u8]) -> (u16, Value) {
    let mut r = agent().post(&url(server, path)).send(body).unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[test]
fn every_bad_input_is_a_4xx_with_a_message() {
    let server = start(BatchOptions::default(), 256 << 10);
    let (_, bytes) = faces(1, 1);
    let j = |v: Value| serde_json::to_vec(&v).unwrap();
    let input = |dt: &str, shape: Value, data: Value| {
        j(json!({ "inputs": [{ "name": "input", "datatype": dt, "shape": shape, "data": data }] }))
    };
    let infer = "/v2/models/gfpgan/infer";
    let (st, b) = post(&server, infer, &input("UINT8", json!([1, S, S, 4]), json!(vec![0; S * S * 4])));
    expect_4xx(st, &b, 400, "must be UINT8 [N, 64, 64, 3]");
    let (st, b) = post(&server, infer, &input("INT8", json!([1, S, S, 3]), json!(vec![0; S * S * 3])));
    expect_4xx(st, &b, 400, "INT8");
    let (st, b) = post(&server, infer, &input("FP32", json!([1, S, S, 3]), json!(vec![0; S * S * 3])));
    expect_4xx(st, &b, 400, "FP32 [N, 3, 64, 64]");
    let (st, b) = post(&server, infer, &input("UINT8", json!([1, S, S, 3]), json!([1, 2, 3])));
    expect_4xx(st, &b, 400, "3 elements");
    let (st, b) = post(&server, infer, b"{\"inputs\": [");
    expect_4xx(st, &b, 400, "malformed inference request JSON");
    let (st, b) = post(&server, "/v2/models/nope/infer", &input("UINT8", json!([1, S, S, 3]), json!([0])));
    expect_4xx(st, &b, 404, "unknown model \"nope\"");
    let (st, b, _) = infer_binary(&server, u8_input(1, bytes.len()), &bytes[..1000], true);
    expect_4xx(st, &b, 400, "truncated binary data");
    let seeds = json!([{ "name": "input", "datatype": "UINT8", "shape": [1, S, S, 3], "parameters": { "binary_data_size": bytes.len() } },
                       { "name": "noise_seed", "datatype": "UINT64", "shape": [2], "data": [1, 2] }]);
    let (st, b, _) = infer_binary(&server, seeds, &bytes, true);
    expect_4xx(st, &b, 400, "noise_seed");
    let nan = j(
        json!({ "inputs": [{ "name": "input", "datatype": "FP32", "shape": [1, 3, S, S], "parameters": { "binary_data_size": 3 * S * S * 4 } }] }),
    );
    let mut body = nan.clone();
    body.extend(std::iter::repeat_n(f32::NAN.to_le_bytes(), 3 * S * S).flatten());
    let mut r = agent()
        .post(&url(&server, infer))
        .header("Inference-Header-Content-Length", &nan.len().to_string())
        .send(&body[..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.body_mut().read_to_string().unwrap().contains("NaN"));
    // Over the 256 KiB limit: 413 naming it.
    let (st, b) = post(&server, infer, &vec![b' '; 300 << 10]);
    expect_4xx(st, &b, 413, "limit of 262144 bytes");
    let (st, b) = post(&server, "/v1/restore", b"\x89PNG\r\n\x1a\nnot really");
    expect_4xx(st, &b, 400, "cannot decode image");
    let (st, b) = post(&server, "/v1/restore?weight=2", b"");
    expect_4xx(st, &b, 400, "weight");
    let (st, b) = post(&server, "/v1/restore?sharpen=1", b"");
    expect_4xx(st, &b, 400, "sharpen");
    // gRPC: the same checks answer INVALID_ARGUMENT / NOT_FOUND with the message.
    let remote = RemoteNetwork::connect(&server.grpc_addr().unwrap().to_string(), "nope", Duration::from_secs(10));
    let e = remote.err().expect("no such model").to_string();
    assert!(e.contains("unknown model") && e.contains("NotFound"), "{e}");
    // After all that the server still answers.
    let (st, b, _) = infer_binary(&server, u8_input(1, bytes.len()), &bytes, true);
    assert_eq!(st, 200, "{b}");
    server.shutdown().unwrap();
}

#[test]
fn a_full_queue_is_refused_at_once_and_a_late_request_times_out() {
    let batch = BatchOptions { max_batch: 2, max_queue: 2, ..Default::default() };
    let server = start(batch, 1 << 20);
    let (_, bytes) = faces(3, 2);
    let (st, b, _) = infer_binary(&server, u8_input(3, bytes.len()), &bytes, true);
    expect_4xx(st, &b, 503, "queue full");
    server.shutdown().unwrap();
    // A pass that waits 5 s for company, and a request that may wait 50 ms.
    let batch = BatchOptions {
        max_batch: 4,
        max_delay: Duration::from_secs(5),
        timeout: Duration::from_millis(50),
        ..Default::default()
    };
    let server = start(batch, 1 << 20);
    let (_, bytes) = faces(1, 2);
    let (st, b, _) = infer_binary(&server, u8_input(1, bytes.len()), &bytes, true);
    expect_4xx(st, &b, 504, "timeout");
    server.shutdown().unwrap();
}

#[test]
fn a_client_that_vanishes_mid_request_leaves_the_server_healthy() {
    let server = default_server();
    let (_, bytes) = faces(2, 4);
    for cut in [10, 200, 20_000] {
        let mut sock = std::net::TcpStream::connect(server.http_addr()).unwrap();
        let header = serde_json::to_vec(&json!({ "inputs": u8_input(2, bytes.len()) })).unwrap();
        let head = format!(
            "POST /v2/models/gfpgan/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nInference-Header-Content-Length: {}\r\n\r\n",
            header.len() + bytes.len(),
            header.len()
        );
        let mut all = head.into_bytes();
        all.extend(header);
        all.extend(&bytes);
        sock.write_all(&all[..cut]).unwrap();
        drop(sock);
    }
    assert_eq!(agent().get(&url(&server, "/v2/health/ready")).call().unwrap().status().as_u16(), 200);
    let (st, b, out) = infer_binary(&server, u8_input(2, bytes.len()), &bytes, true);
    assert_eq!(st, 200, "{b}");
    assert_eq!(out.len(), bytes.len());
    server.shutdown().unwrap();
}

#[test]
fn shutting_down_answers_the_requests_accepted_and_then_refuses() {
    // The pass waits 1.5 s for company: the shutdown comes while the request is queued.
    let batch = BatchOptions { max_batch: 4, max_delay: Duration::from_millis(1500), ..Default::default() };
    let server = start(batch, 1 << 20);
    let addr = server.http_addr();
    let (crops, bytes) = faces(1, 9);
    let queued = server.state().clone();
    let client = std::thread::spawn({
        let bytes = bytes.clone();
        move || {
            let header = serde_json::to_vec(&json!({ "inputs": u8_input(1, bytes.len()), "outputs": [{"name": "output", "parameters": {"binary_data": true}}] })).unwrap();
            let mut body = header.clone();
            body.extend(&bytes);
            let mut r = agent()
                .post(&format!("http://{addr}/v2/models/gfpgan/infer"))
                .header("Inference-Header-Content-Length", &header.len().to_string())
                .send(&body[..])
                .unwrap();
            let status = r.status().as_u16();
            let all = r.body_mut().read_to_vec().unwrap();
            (status, all[all.len() - bytes.len()..].to_vec())
        }
    });
    while queued.metrics.queue_faces.get() == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.shutdown().unwrap();
    let (status, out) = client.join().unwrap();
    assert_eq!(status, 200, "the request accepted before the shutdown is answered");
    assert_eq!(out, local(&crops));
    assert!(std::net::TcpStream::connect(addr).is_err(), "the listener is closed");
}

#[test]
fn photos_are_restored_and_analysed_through_the_plain_endpoints() {
    let server = default_server();
    let photo = std::fs::read(&demo_photos()[0]).unwrap();
    let mut r = agent().post(&url(&server, "/v1/analyze?expressions=true")).send(&photo[..]).unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let n = v["faces"].as_array().unwrap().len();
    assert!(n >= 1, "{v}");
    assert!(v["faces"][0]["expression"]["label"].is_string(), "{v}");
    let mut r = agent().post(&url(&server, "/v1/restore")).send(&photo[..]).unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers().get("x-faces").unwrap().to_str().unwrap(), n.to_string());
    let png = r.body_mut().with_config().limit(64 << 20).read_to_vec().unwrap();
    let restored = Rgb::decode(&png, "answer", 8192).unwrap();
    let original = Rgb::decode(&photo, "photo", 8192).unwrap();
    assert_eq!((restored.w, restored.h), (original.w, original.h));
    let changed = restored.data.iter().zip(&original.data).filter(|(a, b)| (*a - *b).abs() > 2.0).count();
    assert!(changed > 100, "the faces were pasted back: {changed} values changed");
    // weight=0 gives the photo back.
    let mut r = agent().post(&url(&server, "/v1/restore?weight=0")).send(&photo[..]).unwrap();
    let png = r.body_mut().with_config().limit(64 << 20).read_to_vec().unwrap();
    let same = Rgb::decode(&png, "answer", 8192).unwrap();
    assert!(same.data.iter().zip(&original.data).all(|(a, b)| (a - b).abs() <= 1.0));
    server.shutdown().unwrap();
}

#[test]
fn a_bounded_load_test_gets_every_answer_right_and_batches_the_clients() {
    use gfpgan::serve::load::{Case, LoadOptions, run};
    let batch = BatchOptions { max_batch: 4, max_delay: Duration::from_millis(20), ..Default::default() };
    let server = start(batch, 1 << 20);
    let cases: Vec<Case> = (0..6)
        .map(|k| {
            let (crops, faces) = faces(1 + k % 2, k as u8 + 1);
            Case { faces, count: crops.len(), size: S, expected: local(&crops) }
        })
        .collect();
    let opts = LoadOptions {
        clients: 4,
        duration: Duration::from_secs(3),
        max_requests: 40,
        model: "gfpgan".into(),
        timeout: Duration::from_secs(60),
    };
    let report = run(server.grpc_addr().unwrap(), cases.clone(), &opts).unwrap();
    assert!(report.requests > 0 && report.requests <= 40, "{report:?}");
    assert_eq!((report.mismatched, report.lost), (0, 0), "{report:?}");
    assert!(report.errors.is_empty(), "{report:?}");
    let stats = server.state().model.batcher.stats();
    assert!(stats.largest_pass > 1, "concurrent clients shared passes: {stats:?}");
    // Loopback only: another address is refused before anything is sent.
    let e = run("192.0.2.1:8001".parse().unwrap(), cases, &opts).unwrap_err();
    assert!(e.to_string().contains("loopback only"), "{e}");
    server.shutdown().unwrap();
}

/// Against a real Triton serving the official PyTorch GFPGANv1Clean on the same checkpoint
/// (tests/serve/run.sh starts it and sets `GFPGAN_TRITON_GRPC`): the client the element uses
/// gets the faces the library restores here, within 1e-3 of the 8-bit range.
#[test]
#[ignore = "needs Triton: tests/serve/run.sh"]
fn triton_serving_the_official_model_answers_as_the_library() {
    let addr = std::env::var("GFPGAN_TRITON_GRPC").expect("GFPGAN_TRITON_GRPC=host:port of Triton's gRPC");
    let remote = RemoteNetwork::connect(&addr, "gfpgan", Duration::from_secs(60)).unwrap();
    assert_eq!(remote.face_size(), S);
    assert!(!remote.takes_seeds(), "the official model has no noise_seed input");
    let (crops, _) = faces(3, 11);
    let got = remote.restore_faces(&crops, &[None, None, None]).unwrap();
    let want = restore_crops(&a64_restorer(), &crops, 3, FaceNoise::PerFace(&[None, None, None])).unwrap();
    let worst = got
        .iter()
        .zip(&want)
        .flat_map(|(a, b)| a.data.iter().zip(&b.data))
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    eprintln!("Triton (official PyTorch) against the library: {worst:.6} levels");
    assert!(worst <= 0.255, "{worst} levels apart");
}
