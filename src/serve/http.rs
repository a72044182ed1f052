//! The Open Inference Protocol over HTTP/REST (KServe v2, with Triton's binary tensor data
//! extension), the plain `/v1` endpoints and `/metrics`, on axum.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::error::{Kind, ServeError};
use super::model::{ModelMetadata, OUTPUT, VERSION};
use super::photos::{AnalyzeQuery, RestoreQuery};
use super::tensor::Tensor;

/// The header that splits a binary request or response into its JSON and its tensor bytes.
const HEADER_LENGTH: &str = "inference-header-content-length";

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        (self.http_status(), axum::Json(json!({ "error": self.message }))).into_response()
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let max_body = state.max_body;
    Router::new()
        .route("/v2/health/live", get(|| async { "" }))
        .route("/v2/health/ready", get(ready))
        .route("/v2", get(server_metadata))
        .route("/v2/models/{model}", get(model_metadata))
        .route("/v2/models/{model}/versions/{version}", get(model_metadata_version))
        .route("/v2/models/{model}/ready", get(model_ready))
        .route("/v2/models/{model}/versions/{version}/ready", get(model_ready_version))
        .route("/v2/models/{model}/infer", post(infer))
        .route("/v2/models/{model}/versions/{version}/infer", post(infer_version))
        .route("/v1/restore", post(restore_photo))
        .route("/v1/analyze", post(analyze_photo))
        .route("/metrics", get(|State(s): State<Arc<AppState>>| async move { s.metrics.render() }))
        .fallback(|| async { ServeError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .with_state(state)
}

/// Counts every answer in `/metrics`, labelled with its route.
async fn count_requests(State(s): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("other".to_string(), |p| p.as_str().to_string());
    let start = Instant::now();
    let response = next.run(request).await;
    if route != "/metrics" {
        s.metrics.observe("http", &route, response.status().as_u16(), start.elapsed().as_secs_f64());
    }
    response
}

async fn ready(State(s): State<Arc<AppState>>) -> StatusCode {
    if s.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

async fn server_metadata() -> axum::Json<Value> {
    axum::Json(super::server_metadata_json())
}

async fn model_metadata(
    s: State<Arc<AppState>>,
    Path(model): Path<String>,
) -> Result<axum::Json<ModelMetadata>, ServeError> {
    model_metadata_version(s, Path((model, String::new()))).await
}

async fn model_metadata_version(
    State(s): State<Arc<AppState>>,
    Path((model, version)): Path<(String, String)>,
) -> Result<axum::Json<ModelMetadata>, ServeError> {
    s.model.check_name(&model, &version)?;
    Ok(axum::Json(s.model.metadata()))
}

async fn model_ready(s: State<Arc<AppState>>, Path(model): Path<String>) -> Result<StatusCode, ServeError> {
    model_ready_version(s, Path((model, String::new()))).await
}

async fn model_ready_version(
    State(s): State<Arc<AppState>>,
    Path((model, version)): Path<(String, String)>,
) -> Result<StatusCode, ServeError> {
    s.model.check_name(&model, &version)?;
    Ok(if s.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE })
}

#[derive(Deserialize)]
struct InferRequest {
    id: Option<String>,
    #[serde(default)]
    parameters: Map<String, Value>,
    inputs: Vec<InputJson>,
    #[serde(default)]
    outputs: Vec<OutputJson>,
}

#[derive(Deserialize)]
struct InputJson {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    data: Option<Value>,
}

#[derive(Deserialize)]
struct OutputJson {
    name: String,
    #[serde(default)]
    parameters: Map<String, Value>,
}

/// A body over the size limit is a 413 naming the limit; other read failures a 400.
fn body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ServeError> {
    body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ServeError::new(Kind::TooLarge, format!("request body larger than the server's limit of {limit} bytes"))
        }
        _ => ServeError::bad(format!("cannot read the request body: {e}")),
    })
}

async fn infer(
    s: State<Arc<AppState>>,
    Path(model): Path<String>,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Response {
    infer_version(s, Path((model, String::new())), headers, b).await
}

async fn infer_version(
    State(s): State<Arc<AppState>>,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Response {
    match run_infer(&s, &model, &version, &headers, b).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn run_infer(
    s: &AppState,
    model: &str,
    version: &str,
    headers: &HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ServeError> {
    s.model.check_name(model, version)?;
    let bytes = body(b, s.max_body)?;
    // With the binary extension the JSON is the first `Inference-Header-Content-Length` bytes.
    let json_len = match headers.get(HEADER_LENGTH) {
        None => bytes.len(),
        Some(v) => {
            v.to_str().ok().and_then(|v| v.trim().parse::<usize>().ok()).filter(|&n| n <= bytes.len()).ok_or_else(
                || {
                    ServeError::bad(format!(
                        "{HEADER_LENGTH} must be a number of bytes within the body ({} bytes)",
                        bytes.len()
                    ))
                },
            )?
        }
    };
    let request: InferRequest = serde_json::from_slice(&bytes[..json_len])
        .map_err(|e| ServeError::bad(format!("malformed inference request JSON: {e}")))?;
    let mut binary = &bytes[json_len..];
    let mut inputs = Vec::with_capacity(request.inputs.len());
    for input in &request.inputs {
        let tensor = match (input.parameters.get("binary_data_size"), &input.data) {
            (Some(size), _) => {
                let size = size.as_u64().and_then(|n| usize::try_from(n).ok()).ok_or_else(|| {
                    ServeError::bad(format!("input {:?}: binary_data_size must be a number of bytes", input.name))
                })?;
                if size > binary.len() {
                    return Err(ServeError::bad(format!(
                        "truncated binary data: input {:?} declares {size} bytes, {} are left in the body",
                        input.name,
                        binary.len()
                    )));
                }
                let (mine, rest) = binary.split_at(size);
                binary = rest;
                Tensor::from_raw(&input.name, &input.datatype, &input.shape, mine)?
            }
            (None, Some(data)) => Tensor::from_json(&input.name, &input.datatype, &input.shape, data)?,
            (None, None) => {
                return Err(ServeError::bad(format!("input {:?} has neither data nor binary_data_size", input.name)));
            }
        };
        inputs.push(tensor);
    }
    if !binary.is_empty() {
        return Err(ServeError::bad(format!("{} bytes of binary data after the declared inputs", binary.len())));
    }
    let wants_binary =
        |params: &Map<String, Value>, key: &str| params.get(key).and_then(Value::as_bool).unwrap_or(false);
    let mut binary_out = wants_binary(&request.parameters, "binary_data_output");
    for o in &request.outputs {
        if o.name != OUTPUT {
            return Err(ServeError::bad(format!("model {model:?} has no output {:?} (it has {OUTPUT:?})", o.name)));
        }
        binary_out |= wants_binary(&o.parameters, "binary_data");
    }
    let out = s.model.infer(inputs).await?;
    let mut output = json!({ "name": out.name, "datatype": out.datatype().name(), "shape": out.wire_shape() });
    let raw = if binary_out {
        let raw = out.to_raw();
        output["parameters"] = json!({ "binary_data_size": raw.len() });
        Some(raw)
    } else {
        output["data"] = out.to_json_data();
        None
    };
    let mut response = json!({ "model_name": s.model.name, "model_version": VERSION, "outputs": [output] });
    if let Some(id) = request.id {
        response["id"] = json!(id);
    }
    let header = serde_json::to_vec(&response).map_err(|e| ServeError::internal(e.to_string()))?;
    Ok(match raw {
        None => ([(header::CONTENT_TYPE, "application/json")], header).into_response(),
        Some(raw) => {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            headers.insert(HEADER_LENGTH, HeaderValue::from(header.len()));
            let mut body = header;
            body.extend_from_slice(&raw);
            (headers, body).into_response()
        }
    })
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ServeError> {
    q.map(|Query(q)| q).map_err(|e| ServeError::bad(format!("bad query: {}", e.body_text())))
}

async fn restore_photo(
    State(s): State<Arc<AppState>>,
    q: Result<Query<RestoreQuery>, QueryRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ServeError> {
    let (q, bytes) = (query(q)?, body(b, s.max_body)?);
    let (png, faces) = s.photos.restore(&s.model.batcher, bytes, q).await?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
            (header::HeaderName::from_static("x-faces"), HeaderValue::from(faces)),
        ],
        png,
    )
        .into_response())
}

async fn analyze_photo(
    State(s): State<Arc<AppState>>,
    q: Result<Query<AnalyzeQuery>, QueryRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>, ServeError> {
    let (q, bytes) = (query(q)?, body(b, s.max_body)?);
    Ok(axum::Json(s.photos.analyze(bytes, q).await?))
}
