//! `gfpgan serve`: the network on the Open Inference Protocol (HTTP and gRPC), with `/v1`
//! endpoints for photos and Prometheus metrics, until Ctrl-C or SIGTERM, which let the requests
//! accepted finish.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gfpgan::Result;
use gfpgan::restore::SharedRestorer;
use gfpgan::serve::{BatchOptions, ServeOptions, Server};

use super::common::{BatchArgs, RunArgs, check_arg};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    weights: PathBuf,
    #[command(flatten)]
    run: RunArgs,
    /// HTTP/REST address (KServe v2, /v1/restore, /v1/analyze, /metrics).
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// gRPC address (inference.GRPCInferenceService).
    #[arg(long, default_value = "127.0.0.1:8001")]
    grpc_listen: SocketAddr,
    /// The model's name on the protocol.
    #[arg(long, default_value = "gfpgan")]
    model_name: String,
    #[command(flatten)]
    batch: BatchArgs,
    /// Seconds a request may wait for its faces (504 / DEADLINE_EXCEEDED after).
    #[arg(long, default_value_t = BatchOptions::default().timeout.as_secs())]
    timeout: u64,
    /// Largest HTTP body or gRPC message, in MiB.
    #[arg(long, default_value_t = (ServeOptions::default().max_body >> 20) as u64)]
    max_body_mib: u64,
    /// The face-api.js model folder (for /v1/restore and /v1/analyze).
    #[arg(long, default_value = "weights/face-api/model")]
    face_models: PathBuf,
    /// Threads answering requests.
    #[arg(long, default_value_t = ServeOptions::default().threads)]
    threads: usize,
}

pub fn run(args: Args) -> Result<()> {
    check_arg(args.timeout >= 1, "timeout", "at least 1 second", args.timeout)?;
    check_arg((1..=4096).contains(&args.max_body_mib), "max-body-mib", "in 1..4096", args.max_body_mib)?;
    check_arg(args.threads >= 1, "threads", "at least 1", args.threads)?;
    let restorer = Arc::new(args.run.load(&args.weights)?);
    let size = restorer.config().out_size;
    let network = SharedRestorer::new(restorer)?;
    let opts = ServeOptions {
        http: args.listen,
        grpc: Some(args.grpc_listen),
        model_name: args.model_name,
        batch: BatchOptions { timeout: Duration::from_secs(args.timeout), ..args.batch.options()? },
        max_body: (args.max_body_mib as usize) << 20,
        face_models: args.face_models,
        threads: args.threads,
        ..Default::default()
    };
    let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
    ctrlc::set_handler(move || {
        let _ = stop_tx.try_send(());
    })
    .map_err(|e| gfpgan::Error::worker("server", format!("cannot catch Ctrl-C: {e}")))?;
    let model = opts.model_name.clone();
    let server = Server::start(network, opts)?;
    eprintln!(
        "serving model {model:?} ({size}x{size} faces) on http://{} and grpc://{}; Ctrl-C stops",
        server.http_addr(),
        server.grpc_addr().expect("gRPC is on")
    );
    // One line for scripts that wait for the server.
    println!("READY http={} grpc={}", server.http_addr(), server.grpc_addr().expect("gRPC is on"));
    let _ = stop_rx.recv();
    eprintln!("stopping: answering the requests accepted");
    server.shutdown()
}
