//! `gfpgan bench-streams`: several camera streams restored in one process, each on a thread of
//! its own feeding a `StreamRestorer` the way the element does (at most batch size + 1 frames in
//! flight), either all through one shared network (one set of weights, passes mixing streams)
//! or each through a network of its own (what every element loading its own copy amounted to).
//! Reports faces per second, the passes the network ran and the process's peak memory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use gfpgan::pipeline::{FrameJob, StreamRestorer, Tuning};
use gfpgan::restore::{SharedRestorer, SharedStats};
use gfpgan::{Error, Result};

use super::clip::ClipArgs;
use super::common::{RunArgs, check_arg};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Networks {
    /// One network for every stream.
    Shared,
    /// A network loaded for each stream.
    PerStream,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    clip: ClipArgs,
    #[arg(long)]
    weights: PathBuf,
    #[command(flatten)]
    run: RunArgs,
    /// Camera streams, each with its own clip (the clip's seed plus its number).
    #[arg(long, default_value_t = 2)]
    streams: usize,
    #[arg(long, value_enum, default_value = "shared")]
    networks: Networks,
    /// Faces per network pass (each stream's batch size).
    #[arg(long, default_value_t = Tuning::DEFAULT.batch_size)]
    batch_size: usize,
    /// Milliseconds a pass may wait for other streams' faces.
    #[arg(long, default_value_t = 0)]
    batch_wait: u64,
    #[arg(long, default_value = "weights/face-api/model")]
    face_models: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    check_arg((1..=64).contains(&args.streams), "streams", "in 1..=64", args.streams)?;
    check_arg((1..=64).contains(&args.batch_size), "batch-size", "in 1..=64", args.batch_size)?;
    let tuning = Tuning {
        batch_size: args.batch_size,
        batch_wait: Duration::from_millis(args.batch_wait),
        // Every frame detected: the faces restored do not depend on the tracker's timing.
        detection_interval: 1,
        ..Tuning::DEFAULT
    };
    let clips = (0..args.streams)
        .map(|k| {
            let mut clip = args.clip.clone();
            clip.seed += k as u64;
            let clip = clip.build()?;
            Ok((0..clip.spec.frames).map(|i| Arc::new(clip.frame(i))).collect::<Vec<_>>())
        })
        .collect::<Result<Vec<_>>>()?;
    let start = Instant::now();
    let networks = match args.networks {
        Networks::Shared => vec![SharedRestorer::new(Arc::new(args.run.load(&args.weights)?))?; args.streams],
        Networks::PerStream => (0..args.streams)
            .map(|_| SharedRestorer::new(Arc::new(args.run.load(&args.weights)?)))
            .collect::<Result<_>>()?,
    };
    let load_secs = start.elapsed().as_secs_f64();
    let streams = networks
        .iter()
        .map(|n| StreamRestorer::start(args.face_models.clone(), Some(n.clone()), tuning))
        .collect::<Result<Vec<_>>>()?;
    let start = Instant::now();
    let fps = args.clip.fps;
    let faces: Vec<usize> = std::thread::scope(|scope| {
        let feeders: Vec<_> = streams
            .iter()
            .zip(&clips)
            .map(|(stream, frames)| scope.spawn(move || feed(stream, frames, tuning, fps)))
            .collect();
        feeders
            .into_iter()
            .map(|f| f.join().unwrap_or_else(|_| Err(Error::worker("feeder", "panicked"))))
            .collect::<Result<Vec<_>>>()
    })?;
    let secs = start.elapsed().as_secs_f64();
    let total: usize = faces.iter().sum();
    let mut stats = SharedStats::default();
    let mut seen = Vec::new();
    for n in &networks {
        if !seen.contains(&n.id()) {
            seen.push(n.id());
            let s = n.stats();
            stats.passes += s.passes;
            stats.faces += s.faces;
            stats.mixed_passes += s.mixed_passes;
            stats.largest_pass = stats.largest_pass.max(s.largest_pass);
        }
    }
    let peak_mib = peak_rss_kib().map(|k| k as f64 / 1024.0);
    let report = serde_json::json!({
        "streams": args.streams,
        "networks": seen.len(),
        "device": args.run.device,
        "frame": [args.clip.width, args.clip.height],
        "frames_per_stream": args.clip.frames,
        "batch_size": args.batch_size,
        "batch_wait_ms": args.batch_wait,
        "faces_restored": total,
        "seconds": secs,
        "faces_per_s": total as f64 / secs,
        "frames_per_s": (args.streams * args.clip.frames) as f64 / secs,
        "load_s": load_secs,
        "passes": stats.passes,
        "mean_pass": stats.faces as f64 / stats.passes.max(1) as f64,
        "largest_pass": stats.largest_pass,
        "mixed_passes": stats.mixed_passes,
        "peak_rss_mib": peak_mib,
    });
    println!("{report}");
    eprintln!(
        "{} stream(s), {} network(s) on {}: {total} faces in {secs:.1} s = {:.2} faces/s; {} passes of {:.2} faces \
         ({} mixing streams); peak RSS {}",
        args.streams,
        seen.len(),
        args.run.device,
        total as f64 / secs,
        stats.passes,
        stats.faces as f64 / stats.passes.max(1) as f64,
        stats.mixed_passes,
        peak_mib.map_or("unknown".into(), |m| format!("{m:.0} MiB")),
    );
    Ok(())
}

/// Submits `frames` keeping at most batch size + 1 in flight (as the element holds them) and
/// counts the faces restored.
fn feed(stream: &StreamRestorer, frames: &[Arc<gfpgan::Rgb>], tuning: Tuning, fps: f32) -> Result<usize> {
    let in_flight = tuning.batch_size + 1;
    let mut restored = 0;
    for (i, frame) in frames.iter().enumerate() {
        if i >= in_flight {
            restored += stream.next_result()?.faces.iter().filter(|f| f.restored.is_some()).count();
        }
        let time = i as f64 / f64::from(fps);
        stream.submit(FrameJob { seq: i as u64, time, frame: frame.clone(), tuning, restore: true })?;
    }
    for _ in 0..frames.len().min(in_flight) {
        restored += stream.next_result()?.faces.iter().filter(|f| f.restored.is_some()).count();
    }
    Ok(restored)
}

/// The process's peak resident set (Linux `VmHWM`), KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
