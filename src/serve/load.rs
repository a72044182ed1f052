//! A bounded load test of an Open Inference Protocol server over gRPC, on loopback only:
//! `clients` concurrent clients send requests of aligned faces for a fixed time (and at most
//! `max_requests` in all), each answer checked against the expected restoration of its own
//! request, so that a batching bug that mixed requests shows as mismatches, not as speed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::proto::ModelInferRequest;
use super::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use super::proto::model_infer_request::InferInputTensor;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub clients: usize,
    pub duration: Duration,
    /// A bound on the requests of the whole run, whatever the time.
    pub max_requests: u64,
    pub model: String,
    pub timeout: Duration,
}

/// One request's faces (UINT8 `[N, S, S, 3]`) and the answer expected for them.
#[derive(Debug, Clone)]
pub struct Case {
    pub faces: Vec<u8>,
    pub count: usize,
    pub size: usize,
    pub expected: Vec<u8>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoadReport {
    pub clients: usize,
    pub seconds: f64,
    pub requests: u64,
    pub faces: u64,
    pub requests_per_second: f64,
    pub faces_per_second: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p90: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
    /// Answers that differ from the expected restoration by more than one level.
    pub mismatched: u64,
    /// Answers without the output, or of the wrong shape.
    pub lost: u64,
    /// Failed requests by gRPC status code.
    pub errors: BTreeMap<String, u64>,
}

/// Runs the load against `server` (a loopback address: anything else is refused).
pub fn run(server: SocketAddr, cases: Vec<Case>, opts: &LoadOptions) -> Result<LoadReport> {
    if !server.ip().is_loopback() {
        return Err(Error::Input(format!("load tests run on loopback only, not against {server}")));
    }
    if cases.is_empty() || opts.clients == 0 {
        return Err(Error::Input("a load test needs at least one client and one request".into()));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::worker("load test", e.to_string()))?;
    let cases = Arc::new(cases);
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + opts.duration;
    let results: Vec<ClientTally> = runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{server}"))
            .map_err(|e| Error::Remote(e.to_string()))?
            .connect()
            .await
            .map_err(|e| Error::Remote(format!("{server}: cannot connect: {e}")))?;
        let client = GrpcInferenceServiceClient::new(channel)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        let tasks: Vec<_> = (0..opts.clients)
            .map(|c| {
                let (client, cases, sent, opts) = (client.clone(), cases.clone(), sent.clone(), opts.clone());
                tokio::spawn(async move { client_loop(c, client, &cases, &sent, deadline, &opts).await })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.push(t.await.map_err(|e| Error::worker("load test", e.to_string()))?);
        }
        Ok::<_, Error>(all)
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let mut latencies: Vec<f64> = results.iter().flat_map(|t| t.latencies_ms.iter().copied()).collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
    let mut report = LoadReport { clients: opts.clients, seconds, ..Default::default() };
    for t in &results {
        report.requests += t.requests;
        report.faces += t.faces;
        report.mismatched += t.mismatched;
        report.lost += t.lost;
        for (k, v) in &t.errors {
            *report.errors.entry(k.clone()).or_default() += v;
        }
    }
    report.requests_per_second = report.requests as f64 / seconds;
    report.faces_per_second = report.faces as f64 / seconds;
    report.latency_ms_p50 = pct(0.5);
    report.latency_ms_p90 = pct(0.9);
    report.latency_ms_p99 = pct(0.99);
    report.latency_ms_max = latencies.last().copied().unwrap_or(0.0);
    Ok(report)
}

#[derive(Default)]
struct ClientTally {
    requests: u64,
    faces: u64,
    mismatched: u64,
    lost: u64,
    errors: BTreeMap<String, u64>,
    latencies_ms: Vec<f64>,
}

async fn client_loop(
    id: usize,
    mut client: GrpcInferenceServiceClient<tonic::transport::Channel>,
    cases: &[Case],
    sent: &AtomicU64,
    deadline: Instant,
    opts: &LoadOptions,
) -> ClientTally {
    let mut tally = ClientTally::default();
    let mut k = id;
    while Instant::now() < deadline && sent.fetch_add(1, Ordering::SeqCst) < opts.max_requests {
        let case = &cases[k % cases.len()];
        k += opts.clients;
        let s = case.size as i64;
        let input = InferInputTensor {
            name: "input".into(),
            datatype: "UINT8".into(),
            shape: vec![case.count as i64, s, s, 3],
            ..Default::default()
        };
        let mut request = tonic::Request::new(ModelInferRequest {
            model_name: opts.model.clone(),
            inputs: vec![input],
            raw_input_contents: vec![case.faces.clone()],
            ..Default::default()
        });
        request.set_timeout(opts.timeout);
        let t = Instant::now();
        let answer = client.model_infer(request).await;
        tally.latencies_ms.push(t.elapsed().as_secs_f64() * 1e3);
        tally.requests += 1;
        match answer {
            Err(status) => *tally.errors.entry(format!("{:?}", status.code())).or_default() += 1,
            Ok(r) => {
                let r = r.into_inner();
                match r.raw_output_contents.first() {
                    Some(out) if out.len() == case.expected.len() => {
                        tally.faces += case.count as u64;
                        let worst = out.iter().zip(&case.expected).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
                        tally.mismatched += u64::from(worst > 1);
                    }
                    _ => tally.lost += 1,
                }
            }
        }
    }
    tally
}
