//! What `/metrics` shows Prometheus: requests by protocol, endpoint and status, their latency,
//! the faces waiting, and the size of every network pass (the dynamic batching at work).

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub queue_faces: IntGauge,
    pub faces: IntCounter,
    pub batch_faces: Histogram,
}

impl Metrics {
    pub fn new(max_batch: usize) -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("gfpgan_requests_total", "Requests answered, by protocol, endpoint and status code"),
            &["protocol", "endpoint", "code"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("gfpgan_request_seconds", "Time from a request's arrival to its answer")
                .buckets(prometheus::exponential_buckets(0.005, 2.0, 14).expect("valid buckets")),
            &["protocol", "endpoint"],
        )
        .expect("valid metric");
        let queue_faces = IntGauge::new("gfpgan_queue_faces", "Faces accepted and not yet restored").expect("valid");
        let faces = IntCounter::new("gfpgan_faces_total", "Faces restored").expect("valid metric");
        let buckets = (1..=max_batch.max(1)).map(|b| b as f64).collect();
        let batch_faces =
            Histogram::with_opts(HistogramOpts::new("gfpgan_batch_faces", "Faces per network pass").buckets(buckets))
                .expect("valid metric");
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(queue_faces.clone()),
            Box::new(faces.clone()),
            Box::new(batch_faces.clone()),
        ] {
            registry.register(m).expect("metric names are unique");
        }
        Self { registry, requests, latency, queue_faces, faces, batch_faces }
    }

    /// Counts one answered request and its time.
    pub fn observe(&self, protocol: &str, endpoint: &str, code: u16, seconds: f64) {
        self.requests.with_label_values(&[protocol, endpoint, &code.to_string()]).inc();
        self.latency.with_label_values(&[protocol, endpoint]).observe(seconds);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("text encoding");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}
