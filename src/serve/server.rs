//! `gfpgan serve`'s server: both protocols on their own ports, one runtime on a thread of its
//! own (so that the CLI, tests and benchmarks start and stop it like any other handle), and a
//! graceful shutdown: new requests are refused, accepted ones are answered, then it stops.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use axum::serve::ListenerExt;
use tokio::sync::watch;

use super::batcher::{BatchOptions, Batcher};
use super::grpc::Service;
use super::metrics::Metrics;
use super::model::FaceModel;
use super::photos::Photos;
use super::proto::grpc_inference_service_server::GrpcInferenceServiceServer;
use super::{AppState, http};
use crate::error::{Error, Result};
use crate::restore::SharedRestorer;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// HTTP/REST address (port 0: any free port).
    pub http: SocketAddr,
    /// gRPC address (`None`: no gRPC).
    pub grpc: Option<SocketAddr>,
    pub model_name: String,
    pub batch: BatchOptions,
    /// Largest HTTP body or gRPC message, bytes.
    pub max_body: usize,
    /// The face-api models for `/v1/restore` and `/v1/analyze`.
    pub face_models: PathBuf,
    /// Threads answering requests (the network runs on its own).
    pub threads: usize,
    /// Threads finding faces for `/v1` (each loads the face models once).
    pub analysis_threads: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([127, 0, 0, 1], 8000)),
            grpc: Some(SocketAddr::from(([127, 0, 0, 1], 8001))),
            model_name: "gfpgan".into(),
            batch: BatchOptions::default(),
            // 16 faces of 512 as FP32 (3 MiB each), with room for the JSON.
            max_body: 64 << 20,
            face_models: PathBuf::from("weights/face-api/model"),
            threads: 2,
            analysis_threads: 1,
        }
    }
}

pub struct Server {
    http_addr: SocketAddr,
    grpc_addr: Option<SocketAddr>,
    state: Arc<AppState>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

fn bind(addr: SocketAddr, what: &str) -> Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| Error::Input(format!("cannot listen for {what} on {addr}: {e}")))?;
    listener.set_nonblocking(true).map_err(|e| Error::Input(format!("{what} listener on {addr}: {e}")))?;
    Ok(listener)
}

impl Server {
    /// Binds the addresses and starts answering; returns once both listeners are open.
    pub fn start(network: Arc<SharedRestorer>, opts: ServeOptions) -> Result<Self> {
        let metrics = Arc::new(Metrics::new(opts.batch.max_batch));
        let batcher = Batcher::new(network, opts.batch, metrics.clone());
        let model = FaceModel { name: opts.model_name.clone(), batcher };
        let state = Arc::new(AppState::new(
            model,
            Photos::new(opts.face_models.clone(), opts.analysis_threads),
            metrics,
            opts.max_body,
        ));
        let http_listener = bind(opts.http, "HTTP")?;
        let grpc_listener = opts.grpc.map(|a| bind(a, "gRPC")).transpose()?;
        let http_addr = http_listener.local_addr().map_err(|e| Error::Input(format!("HTTP listener: {e}")))?;
        let grpc_addr = grpc_listener.as_ref().and_then(|l| l.local_addr().ok());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(opts.threads.max(1))
            .thread_name("gfpgan-serve")
            .enable_all()
            .build()
            .map_err(|e| Error::worker("server", format!("cannot start the runtime: {e}")))?;
        let (stop, stopped) = watch::channel(false);
        let app = http::router(state.clone());
        let service = Service { state: state.clone() };
        let max_body = opts.max_body;
        let thread = std::thread::Builder::new()
            .name("gfpgan-serve".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let until = |mut rx: watch::Receiver<bool>| async move {
                        let _ = rx.wait_for(|stop| *stop).await;
                    };
                    let http_listener = tokio::net::TcpListener::from_std(http_listener)?.tap_io(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    });
                    let http = axum::serve(http_listener, app).with_graceful_shutdown(until(stopped.clone()));
                    let grpc = async {
                        let Some(listener) = grpc_listener else { return Ok(()) };
                        // Without TCP_NODELAY an answer's last segment can wait for the client's
                        // delayed ACK (tens of ms a request).
                        let incoming =
                            tonic::transport::server::TcpIncoming::from(tokio::net::TcpListener::from_std(listener)?)
                                .with_nodelay(Some(true));
                        let service = GrpcInferenceServiceServer::new(service)
                            .max_decoding_message_size(max_body)
                            .max_encoding_message_size(usize::MAX);
                        tonic::transport::Server::builder()
                            .add_service(service)
                            .serve_with_incoming_shutdown(incoming, until(stopped.clone()))
                            .await
                            .map_err(std::io::Error::other)
                    };
                    let (h, g) = tokio::join!(http, grpc);
                    h.and(g)
                })
            })
            .map_err(|e| Error::worker("server", format!("cannot start: {e}")))?;
        Ok(Self { http_addr, grpc_addr, state, stop, thread: Some(thread) })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Refuses new requests (503 / UNAVAILABLE, not ready), answers those accepted, closes the
    /// listeners and returns when all is done.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<()> {
        self.state.model.batcher.stop_accepting();
        let _ = self.stop.send(true);
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(Error::worker("server", e.to_string())),
            Some(Err(_)) => Err(Error::worker("server", "panicked")),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}
