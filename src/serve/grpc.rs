//! The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`), on tonic: the
//! same model and errors as HTTP, tensors in `raw_input_contents` or typed `contents`, results
//! always in `raw_output_contents`.

use std::sync::Arc;
use std::time::Instant;

use tonic::{Request, Response, Status};

use super::AppState;
use super::error::ServeError;
use super::model::{ModelMetadata, OUTPUT, VERSION};
use super::proto::grpc_inference_service_server::GrpcInferenceService;
use super::proto::model_infer_request::InferInputTensor;
use super::proto::model_metadata_response::TensorMetadata;
use super::proto::*;
use super::tensor::{Datatype, Elements, Tensor};

pub struct Service {
    pub state: Arc<AppState>,
}

impl Service {
    /// Counts the answer of `endpoint` in `/metrics` (with the HTTP status Triton maps the
    /// gRPC code to) and passes it on.
    fn count<T>(&self, endpoint: &str, start: Instant, r: Result<T, ServeError>) -> Result<Response<T>, Status> {
        let code = r.as_ref().map_or_else(|e| e.http_status().as_u16(), |_| 200);
        self.state.metrics.observe("grpc", endpoint, code, start.elapsed().as_secs_f64());
        r.map(Response::new).map_err(|e| e.grpc_status())
    }
}

fn metadata_message(m: ModelMetadata) -> ModelMetadataResponse {
    let tensors = |specs: Vec<super::model::TensorSpec>| {
        specs.into_iter().map(|t| TensorMetadata { name: t.name, datatype: t.datatype, shape: t.shape }).collect()
    };
    ModelMetadataResponse {
        name: m.name,
        versions: m.versions,
        platform: m.platform,
        inputs: tensors(m.inputs),
        outputs: tensors(m.outputs),
    }
}

/// An input from its raw bytes, or else from the typed list of its datatype.
fn input_tensor(input: &InferInputTensor, raw: Option<&[u8]>) -> Result<Tensor, ServeError> {
    if let Some(raw) = raw {
        return Tensor::from_raw(&input.name, &input.datatype, &input.shape, raw);
    }
    let c = input.contents.clone().unwrap_or_default();
    let data = match Datatype::parse(&input.datatype)? {
        Datatype::Uint8 => Elements::U8(
            c.uint_contents
                .iter()
                .map(|&v| u8::try_from(v).ok())
                .collect::<Option<_>>()
                .ok_or_else(|| ServeError::bad(format!("input {:?}: UINT8 contents above 255", input.name)))?,
        ),
        Datatype::Uint64 => Elements::U64(c.uint64_contents),
        Datatype::Fp32 => Elements::F32(c.fp32_contents),
    };
    Tensor::from_elements(&input.name, &input.shape, data)
}

impl Service {
    async fn infer(&self, r: ModelInferRequest) -> Result<ModelInferResponse, ServeError> {
        self.state.model.check_name(&r.model_name, &r.model_version)?;
        if !r.raw_input_contents.is_empty() && r.raw_input_contents.len() != r.inputs.len() {
            return Err(ServeError::bad(format!(
                "{} raw_input_contents for {} inputs (one each, in order)",
                r.raw_input_contents.len(),
                r.inputs.len()
            )));
        }
        for o in &r.outputs {
            if o.name != OUTPUT {
                return Err(ServeError::bad(format!(
                    "model {:?} has no output {:?} (it has {OUTPUT:?})",
                    r.model_name, o.name
                )));
            }
        }
        let inputs = r
            .inputs
            .iter()
            .enumerate()
            .map(|(i, input)| input_tensor(input, r.raw_input_contents.get(i).map(|b| b.as_slice())))
            .collect::<Result<Vec<_>, _>>()?;
        let out = self.state.model.infer(inputs).await?;
        Ok(ModelInferResponse {
            model_name: self.state.model.name.clone(),
            model_version: VERSION.into(),
            id: r.id,
            parameters: Default::default(),
            outputs: vec![model_infer_response::InferOutputTensor {
                name: out.name.clone(),
                datatype: out.datatype().name().into(),
                shape: out.wire_shape(),
                parameters: Default::default(),
                contents: None,
            }],
            raw_output_contents: vec![out.to_raw()],
        })
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for Service {
    async fn server_live(&self, _: Request<ServerLiveRequest>) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(&self, _: Request<ServerReadyRequest>) -> Result<Response<ServerReadyResponse>, Status> {
        Ok(Response::new(ServerReadyResponse { ready: self.state.is_ready() }))
    }

    async fn model_ready(&self, r: Request<ModelReadyRequest>) -> Result<Response<ModelReadyResponse>, Status> {
        let r = r.into_inner();
        let ready = self.state.model.answers_to(&r.name, &r.version) && self.state.is_ready();
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        let (name, version, extensions) = super::server_identity();
        Ok(Response::new(ServerMetadataResponse {
            name: name.into(),
            version: version.into(),
            extensions: extensions.iter().map(|e| e.to_string()).collect(),
        }))
    }

    async fn model_metadata(
        &self,
        r: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let start = Instant::now();
        let r = r.into_inner();
        let answer =
            self.state.model.check_name(&r.name, &r.version).map(|()| metadata_message(self.state.model.metadata()));
        self.count("ModelMetadata", start, answer)
    }

    async fn model_infer(&self, r: Request<ModelInferRequest>) -> Result<Response<ModelInferResponse>, Status> {
        let start = Instant::now();
        let answer = self.infer(r.into_inner()).await;
        self.count("ModelInfer", start, answer)
    }
}
