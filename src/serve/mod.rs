//! Serving the network to other machines on the Open Inference Protocol (KServe v2), the one
//! Triton, KServe, Seldon MLServer and OpenVINO Model Server speak, and offloading to any such
//! server:
//!
//! - [`Server`]: `gfpgan serve`, the protocol over HTTP (axum, [`http`]) and gRPC (tonic,
//!   [`grpc`]) for the model `gfpgan` ([`model`]), plain `/v1/restore` and `/v1/analyze` for
//!   people and scripts ([`photos`]), and Prometheus `/metrics`;
//! - every request's faces go through one dynamic batcher ([`batcher`]) in front of the
//!   process's shared network, so concurrent requests share passes;
//! - [`RemoteNetwork`]: the client side, a `restore::FaceNetwork` that sends faces to a server
//!   (this one or Triton) over gRPC; the GStreamer element offloads through it.

pub mod batcher;
mod client;
pub mod error;
pub mod grpc;
pub mod http;
pub mod load;
pub mod metrics;
pub mod model;
pub mod photos;
mod server;
pub mod tensor;

/// The protocol's gRPC messages and service, generated from `proto/grpc_predict_v2.proto`.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("inference");
}

use std::sync::Arc;

pub use batcher::{BatchOptions, Batcher};
pub use client::RemoteNetwork;
pub use error::{Kind, ServeError};
pub use metrics::Metrics;
pub use model::FaceModel;
pub use photos::Photos;
pub use server::{ServeOptions, Server};

/// What every request handler reads.
pub struct AppState {
    pub model: FaceModel,
    pub photos: Arc<Photos>,
    pub metrics: Arc<Metrics>,
    /// Largest request body (HTTP) or message (gRPC), in bytes.
    pub max_body: usize,
}

impl AppState {
    pub fn new(model: FaceModel, photos: Photos, metrics: Arc<Metrics>, max_body: usize) -> Self {
        Self { model, photos: Arc::new(photos), metrics, max_body }
    }

    /// Ready for inference: up, and not shutting down.
    pub fn is_ready(&self) -> bool {
        self.model.batcher.is_accepting()
    }
}

/// Name, version and protocol extensions, as both protocols report them.
pub fn server_identity() -> (&'static str, &'static str, &'static [&'static str]) {
    ("gfpgan", env!("CARGO_PKG_VERSION"), &["binary_tensor_data"])
}

fn server_metadata_json() -> serde_json::Value {
    let (name, version, extensions) = server_identity();
    serde_json::json!({ "name": name, "version": version, "extensions": extensions })
}
