//! The client side: a [`FaceNetwork`] on another machine, any server of the Open Inference
//! Protocol over gRPC (`gfpgan serve`, Triton, KServe) with a model that takes aligned faces as
//! `FP32 [N, 3, S, S]` in [-1, 1] (the network's own input, sent without rounding, so that a
//! remote restoration equals a local one) and answers in the same layout. The face size comes
//! from the model's metadata (its first input, `[-1, 3, S, S]` or `[-1, S, S, 3]`). Faces carry
//! their noise seeds only to a model that declares a `noise_seed` input; others use their own.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use super::model::NOISE_SEED;
use super::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use super::proto::model_infer_request::InferInputTensor;
use super::proto::{ModelInferRequest, ModelMetadataRequest, ModelReadyRequest};
use super::tensor::Tensor;
use crate::error::{Error, Result};
use crate::frame::Rgb;
use crate::restore::{FaceNetwork, faces_to_nchw, nchw_to_faces};

pub struct RemoteNetwork {
    url: String,
    model: String,
    input: String,
    size: usize,
    takes_seeds: bool,
    timeout: Duration,
    client: GrpcInferenceServiceClient<Channel>,
    /// Drives the connection; requests block on it from the callers' threads.
    runtime: tokio::runtime::Runtime,
}

/// `host:port` or a URL; plain `http://` (h2c) is what inference servers listen on.
fn endpoint_url(server: &str) -> String {
    if server.contains("://") { server.to_string() } else { format!("http://{server}") }
}

impl RemoteNetwork {
    /// Connects to `server` and reads `model`'s metadata, all within `timeout` (which also
    /// bounds every request later). Errors say which of reaching the server, finding the model
    /// or understanding its inputs failed.
    pub fn connect(server: &str, model: &str, timeout: Duration) -> Result<Self> {
        let url = endpoint_url(server);
        let remote = |msg: String| Error::Remote(format!("{url}: {msg}"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gfpgan-client")
            .enable_all()
            .build()
            .map_err(|e| remote(format!("cannot start the client runtime: {e}")))?;
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| remote(format!("not a server address: {e}")))?
            .connect_timeout(timeout)
            .timeout(timeout)
            .tcp_nodelay(true);
        let channel = runtime
            .block_on(endpoint.connect())
            .map_err(|e| remote(format!("cannot connect: {}", source_chain(&e))))?;
        let client = GrpcInferenceServiceClient::new(channel)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        let mut c = client.clone();
        let request = ModelMetadataRequest { name: model.into(), version: String::new() };
        let metadata = runtime
            .block_on(c.model_metadata(request))
            .map_err(|e| remote(format!("model {model:?}: {} ({:?})", e.message(), e.code())))?
            .into_inner();
        let ready = runtime
            .block_on(c.model_ready(ModelReadyRequest { name: model.into(), version: String::new() }))
            .map_err(|e| remote(format!("model {model:?}: {}", e.message())))?
            .into_inner()
            .ready;
        if !ready {
            return Err(remote(format!("model {model:?} is not ready")));
        }
        let input = metadata
            .inputs
            .iter()
            .find(|t| t.name != NOISE_SEED)
            .ok_or_else(|| remote(format!("model {model:?} declares no input")))?;
        let size = match input.shape.as_slice() {
            [_, 3, h, w] | [_, h, w, 3] if h == w && *h > 0 => *h as usize,
            other => {
                return Err(remote(format!(
                    "model {model:?} input {:?} has shape {other:?}, not faces [N, 3, S, S] or [N, S, S, 3]",
                    input.name
                )));
            }
        };
        let takes_seeds = metadata.inputs.iter().any(|t| t.name == NOISE_SEED);
        Ok(Self { url, model: model.into(), input: input.name.clone(), size, takes_seeds, timeout, client, runtime })
    }

    /// Whether the model takes each face's noise seed (else it uses noise of its own choice).
    pub fn takes_seeds(&self) -> bool {
        self.takes_seeds
    }

    fn request(&self, crops: &[Rgb], seeds: &[Option<u64>]) -> Result<ModelInferRequest> {
        let s = self.size;
        let faces: Vec<u8> = faces_to_nchw(crops, s)?.iter().flat_map(|v| v.to_le_bytes()).collect();
        let n = crops.len() as i64;
        let tensor = |name: &str, datatype: &str, shape: Vec<i64>| InferInputTensor {
            name: name.into(),
            datatype: datatype.into(),
            shape,
            parameters: Default::default(),
            contents: None,
        };
        let mut inputs = vec![tensor(&self.input, "FP32", vec![n, 3, s as i64, s as i64])];
        let mut raw = vec![faces];
        // A stream's faces are all seeded or none is (the element's `noise`); in a mixed pass
        // a face without a seed would get seed 0.
        if self.takes_seeds && seeds.iter().any(Option::is_some) {
            inputs.push(tensor(NOISE_SEED, "UINT64", vec![n]));
            raw.push(seeds.iter().flat_map(|s| s.unwrap_or(0).to_le_bytes()).collect());
        }
        Ok(ModelInferRequest { model_name: self.model.clone(), inputs, raw_input_contents: raw, ..Default::default() })
    }
}

/// An error with its causes, for connection failures whose first line says little.
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    msg
}

impl FaceNetwork for RemoteNetwork {
    fn face_size(&self) -> usize {
        self.size
    }

    fn restore_faces(&self, crops: &[Rgb], seeds: &[Option<u64>]) -> Result<Vec<Rgb>> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        let remote = |msg: String| Error::Remote(format!("{}: {msg}", self.url));
        let mut request = tonic::Request::new(self.request(crops, seeds)?);
        request.set_timeout(self.timeout);
        let mut client = self.client.clone();
        let call = async move { tokio::time::timeout(self.timeout, client.model_infer(request)).await };
        let response = self
            .runtime
            .block_on(call)
            .map_err(|_| remote(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| remote(format!("{} ({:?})", e.message(), e.code())))?
            .into_inner();
        let out = response.outputs.first().ok_or_else(|| remote("the answer has no output".into()))?;
        let tensor = match response.raw_output_contents.first() {
            Some(raw) => Tensor::from_raw(&out.name, &out.datatype, &out.shape, raw),
            None => {
                let values = out.contents.clone().unwrap_or_default().fp32_contents;
                Tensor::from_elements(&out.name, &out.shape, super::tensor::Elements::F32(values))
            }
        }
        .map_err(|e| remote(format!("bad answer: {e}")))?;
        let (n, s) = (crops.len(), self.size);
        match (&tensor.data, tensor.shape.as_slice()) {
            (super::tensor::Elements::F32(v), shape) if shape == [n, 3, s, s] => Ok(nchw_to_faces(v, (s, s), true)),
            _ => Err(remote(format!(
                "the answer is {} {:?}, expected FP32 [{n}, 3, {s}, {s}]",
                tensor.datatype().name(),
                tensor.shape
            ))),
        }
    }
}
