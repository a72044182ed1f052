//! `gfpgan bench-serve`: a bounded load test of the server on loopback. Starts `gfpgan serve`
//! in this process (or uses one already running on a loopback address, with the same weights),
//! has N clients send requests of random aligned faces over gRPC for a fixed time, checks each
//! answer against the library's restoration of that request, and reports throughput, latency
//! percentiles and the network passes the dynamic batching formed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gfpgan::frame::{PackedLayout, Rgb};
use gfpgan::restore::{FaceNoise, SharedRestorer, restore_crops};
use gfpgan::serve::load::{self, Case, LoadOptions};
use gfpgan::serve::{ServeOptions, Server};
use gfpgan::{Error, Result};

use super::common::{BatchArgs, RunArgs, check_arg};

#[derive(clap::Args)]
pub struct Args {
    /// The checkpoint (the expected answers are computed with it here).
    #[arg(long)]
    weights: PathBuf,
    #[command(flatten)]
    run: RunArgs,
    /// A running server's gRPC address on loopback (default: start one in this process).
    #[arg(long)]
    server: Option<SocketAddr>,
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// At most this many requests in all.
    #[arg(long, default_value_t = 100_000)]
    max_requests: u64,
    #[arg(long, default_value_t = 1)]
    faces_per_request: usize,
    /// Different requests the clients cycle through.
    #[arg(long, default_value_t = 8)]
    distinct: usize,
    /// The in-process server's batching.
    #[command(flatten)]
    batch: BatchArgs,
    /// Print the report as one JSON line.
    #[arg(long)]
    json: bool,
}

/// Random faces for request `k`, and what the library makes of them (stored noise, as the
/// server gives without seeds).
fn case(restorer: &gfpgan::Restorer, k: usize, n: usize) -> Result<Case> {
    let s = restorer.config().out_size;
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ (k as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
    let faces: Vec<u8> = (0..n * s * s * 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let crops: Vec<Rgb> =
        faces.chunks(s * s * 3).map(|c| Rgb::from_packed(c, s, s, &PackedLayout::rgb(s))).collect::<Result<_>>()?;
    let restored = restore_crops(restorer, &crops, n, FaceNoise::PerFace(&vec![None; n]))?;
    let expected = restored.iter().flat_map(|f| f.to_rgb8().into_raw()).collect();
    Ok(Case { faces, count: n, size: s, expected })
}

pub fn run(args: Args) -> Result<()> {
    check_arg(args.clients >= 1, "clients", "at least 1", args.clients)?;
    check_arg(args.seconds > 0.0 && args.seconds <= 3600.0, "seconds", "in (0, 3600]", args.seconds)?;
    check_arg(args.faces_per_request >= 1, "faces-per-request", "at least 1", args.faces_per_request)?;
    check_arg(args.distinct >= 1, "distinct", "at least 1", args.distinct)?;
    let restorer = Arc::new(args.run.load(&args.weights)?);
    eprintln!("computing the expected answers of {} requests", args.distinct);
    let cases = (0..args.distinct).map(|k| case(&restorer, k, args.faces_per_request)).collect::<Result<Vec<_>>>()?;
    let batch = args.batch.options()?;
    let server = match args.server {
        Some(_) => None,
        None => {
            let opts = ServeOptions {
                http: "127.0.0.1:0".parse().expect("an address"),
                grpc: Some("127.0.0.1:0".parse().expect("an address")),
                batch,
                ..Default::default()
            };
            Some(Server::start(SharedRestorer::new(restorer.clone())?, opts)?)
        }
    };
    let addr = match (&server, args.server) {
        (Some(s), _) => s.grpc_addr().expect("gRPC is on"),
        (None, Some(a)) => a,
        (None, None) => unreachable!("a server either way"),
    };
    let opts = LoadOptions {
        clients: args.clients,
        duration: Duration::from_secs_f64(args.seconds),
        max_requests: args.max_requests,
        model: "gfpgan".into(),
        timeout: Duration::from_secs(120),
    };
    eprintln!("{} clients for {} s against {addr}", args.clients, args.seconds);
    let report = load::run(addr, cases, &opts)?;
    let passes = server.as_ref().map(|s| s.state().model.batcher.stats());
    if let Some(s) = server {
        s.shutdown()?;
    }
    let mut json = serde_json::to_value(&report).map_err(|e| Error::Input(e.to_string()))?;
    if let Some(p) = passes {
        json["passes"] = p.passes.into();
        json["mean_pass_faces"] = (p.faces as f64 / p.passes.max(1) as f64).into();
        json["largest_pass"] = p.largest_pass.into();
    }
    if args.json {
        println!("{json}");
    } else {
        println!(
            "{} requests ({} faces) in {:.1} s: {:.2} requests/s, {:.2} faces/s",
            report.requests, report.faces, report.seconds, report.requests_per_second, report.faces_per_second
        );
        println!(
            "latency ms: p50 {:.1}, p90 {:.1}, p99 {:.1}, max {:.1}",
            report.latency_ms_p50, report.latency_ms_p90, report.latency_ms_p99, report.latency_ms_max
        );
        if let Some(p) = passes {
            println!(
                "passes: {}, mean {:.2} faces, largest {}",
                p.passes,
                p.faces as f64 / p.passes.max(1) as f64,
                p.largest_pass
            );
        }
        println!("mismatched {}, lost {}, errors {:?}", report.mismatched, report.lost, report.errors);
    }
    if report.mismatched + report.lost > 0 {
        return Err(Error::Remote(format!("{} answers mismatched and {} lost", report.mismatched, report.lost)));
    }
    Ok(())
}
