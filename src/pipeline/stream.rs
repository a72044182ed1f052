//! Restoring a stream of frames on worker threads: an analysis thread tracks the faces of each
//! frame and aligns them; a restoration thread gathers the faces of the frames waiting for it
//! into batches, has the network restore them (a `SharedRestorer`, whose worker may put them in
//! one pass with other streams' faces), and blends each face with its track's previous result. The
//! two threads and the caller are connected by channels, so that the analysis of the next frame
//! overlaps the restoration of this one. Every submitted frame gets exactly one result, in
//! submission order; pasting it into the frame is left to the caller, who owns the pixels.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::align::{AlignedFace, align};
use crate::analyze::{DetectorOptions, Face, Rect};
use crate::blend::{PasteOptions, TemporalBlender, paste};
use crate::error::{Error, Result, panic_message};
use crate::frame::Rgb;
use crate::restore::{PendingFaces, QueuedFace, SharedRestorer, StreamSlot};
use crate::track::{FaceTracker, TrackerOptions};

/// Knobs that may change from one frame to the next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    pub detection_interval: u32,
    pub min_face_size: f32,
    pub max_faces: usize,
    /// Faces per network pass (a shared network's pass takes the largest of its streams').
    pub batch_size: usize,
    /// How long a pass may wait for other streams' faces to fill it (shared networks).
    pub batch_wait: Duration,
    /// Requests of `batch_size` faces this stream may have outstanding at once (a remote
    /// network answers them side by side; 1 for a network in this process).
    pub max_in_flight: usize,
    /// Every face gets the checkpoint's stored noise maps (the official code's
    /// `randomize_noise=False`) instead of noise drawn from its track's id.
    pub stored_noise: bool,
    /// 0..1: landmark smoothing on (above 0) and the weight of a face's previous result.
    pub temporal_smoothing: f32,
    pub expression: bool,
    /// Locate landmarks in each face and its mirror image and average (`AnalyzerOptions`).
    pub mirror_landmarks: bool,
    /// Look for faces only here (`None`: the whole frame).
    pub region: Option<Rect>,
    /// Detect whole frames on each pass instead of searching windows (`SearchOptions`).
    pub full_frame_search: bool,
}

impl Tuning {
    /// The defaults, as constants (the element's property defaults are read from them).
    pub const DEFAULT: Tuning = Tuning {
        detection_interval: 5,
        // Surveillance distance; the window search keeps it affordable (BENCHMARKS.md).
        min_face_size: 16.0,
        max_faces: 16,
        batch_size: 4,
        // Under load faces queue up during a pass and the next one takes them all; waiting
        // only helps when the network is idle, where it costs latency and gains nothing.
        batch_wait: Duration::ZERO,
        max_in_flight: 1,
        stored_noise: false,
        temporal_smoothing: 0.5,
        expression: false,
        // Twice the landmark time per face; the One-Euro filter already steadies the points.
        mirror_landmarks: false,
        region: None,
        full_frame_search: false,
    };
}

impl Default for Tuning {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One frame to process.
#[derive(Debug, Clone)]
pub struct FrameJob {
    /// Increasing frame number, chosen by the caller.
    pub seq: u64,
    /// Presentation time in seconds (drives the landmark filter).
    pub time: f64,
    pub frame: Arc<Rgb>,
    pub tuning: Tuning,
    /// Run the network (false: track only).
    pub restore: bool,
}

#[derive(Debug, Clone)]
pub struct FaceResult {
    pub track_id: u64,
    pub face: Face,
    /// A detection matched the track on this frame.
    pub detected: bool,
    pub aligned: Option<AlignedFace>,
    /// The restored aligned face, after temporal blending.
    pub restored: Option<Rgb>,
}

#[derive(Debug, Clone)]
pub struct FrameResult {
    pub seq: u64,
    pub faces: Vec<FaceResult>,
    /// Skipped because the caller cancelled it (no tracking, no restoration).
    pub cancelled: bool,
}

impl FrameResult {
    /// Pastes the restored faces into `frame`; whether anything was pasted.
    pub fn paste_into(&self, frame: &mut Rgb, opts: PasteOptions) -> bool {
        let mut any = false;
        for f in &self.faces {
            if let (Some(aligned), Some(restored)) = (&f.aligned, &f.restored) {
                paste(frame, aligned, restored, opts);
                any = true;
            }
        }
        any && opts.weight > 0.0
    }
}

enum Job {
    Frame(FrameJob),
    Reset,
}

/// What the network thread needs of a frame once it is analysed: not its pixels, which are let
/// go of as soon as the faces are aligned (frames waiting for a slow network hold their aligned
/// faces only).
struct Analysed {
    seq: u64,
    tuning: Tuning,
}

enum Analyzed {
    Frame(Analysed, Result<Vec<FaceResult>>),
    Reset,
    /// The analysis thread failed (a panic); passed on to the caller.
    Failed(Error),
}

/// Called on the network thread before each pass with the frame number of each face in it; an
/// error fails the pass as the network's own would. For tests that need a pass to fail, panic or
/// wait at a known point; `None` (what `start` passes) costs one branch per pass.
#[doc(hidden)]
pub type PassHook = Arc<dyn Fn(&[u64]) -> Result<()> + Send + Sync>;

/// The worker threads, as their errors name them.
const ANALYSIS: &str = "face analysis";
const NETWORK: &str = "face restoration";

/// Starts a named thread running `body`; a panic in it becomes an `Error::Worker` given to
/// `on_panic` (the thread's way to tell the caller).
fn spawn_worker(
    thread: &'static str,
    name: &str,
    on_panic: impl FnOnce(Error) + Send + 'static,
    body: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
                on_panic(Error::worker(thread, format!("panicked: {}", panic_message(payload.as_ref()))));
            }
        })
        .map_err(|e| Error::worker(thread, format!("cannot start: {e}")))
}

pub struct StreamRestorer {
    jobs: Option<Sender<Job>>,
    results: Receiver<Result<FrameResult>>,
    cancel_below: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl StreamRestorer {
    /// Starts the threads. `network: None` tracks without restoring. Fails (with the threads
    /// stopped) when the face models cannot be loaded.
    pub fn start(face_models: PathBuf, network: Option<Arc<SharedRestorer>>, tuning: Tuning) -> Result<Self> {
        Self::start_with_pass_hook(face_models, network, tuning, None)
    }

    /// `start` with a hook run before every network pass (tests only).
    #[doc(hidden)]
    pub fn start_with_pass_hook(
        face_models: PathBuf,
        network: Option<Arc<SharedRestorer>>,
        tuning: Tuning,
        hook: Option<PassHook>,
    ) -> Result<Self> {
        let (job_tx, job_rx) = unbounded::<Job>();
        let (analyzed_tx, analyzed_rx) = unbounded::<Analyzed>();
        let (result_tx, result_rx) = unbounded();
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let cancel_below = Arc::new(AtomicU64::new(0));
        let size = network.as_ref().map(|n| n.face_size());
        let slot = network.as_ref().map(SharedRestorer::attach);
        let cancel = cancel_below.clone();
        let failed = analyzed_tx.clone();
        let analysis = spawn_worker(
            ANALYSIS,
            "facerestore-analysis",
            move |e| drop(failed.send(Analyzed::Failed(e))),
            move || {
                let detector = DetectorOptions { min_face_size: tuning.min_face_size, ..Default::default() };
                match FaceTracker::new(&face_models, detector, TrackerOptions::default(), tuning.expression) {
                    Ok(tracker) => {
                        let _ = ready_tx.send(Ok(()));
                        analysis_loop(tracker, size, &cancel, job_rx, analyzed_tx);
                    }
                    Err(e) => drop(ready_tx.send(Err(e))),
                }
            },
        )?;
        let cancel = cancel_below.clone();
        let failed = result_tx.clone();
        let restoration = spawn_worker(
            NETWORK,
            "facerestore-network",
            move |e| drop(failed.send(Err(e))),
            move || restoration_loop(slot, hook, cancel, analyzed_rx, result_tx),
        )?;
        let this = Self { jobs: Some(job_tx), results: result_rx, cancel_below, threads: vec![analysis, restoration] };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(this),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::worker(ANALYSIS, "stopped while loading the face models")),
        }
    }

    pub fn submit(&self, job: FrameJob) -> Result<()> {
        self.send(Job::Frame(job))
    }

    /// Forgets tracks and temporal state (after a seek or a new stream); frames submitted
    /// before still get their results.
    pub fn reset(&self) -> Result<()> {
        self.send(Job::Reset)
    }

    fn send(&self, job: Job) -> Result<()> {
        let stopped = || Error::worker(ANALYSIS, "stopped; no more frames are taken");
        self.jobs.as_ref().ok_or_else(stopped)?.send(job).map_err(|_| stopped())
    }

    /// Frames numbered below `seq` are skipped from the next step on (their results come back
    /// empty and marked cancelled): the analysis thread skips them, and the network thread
    /// checks before every pass, so a frame with many faces stops after the pass in progress.
    pub fn cancel_below(&self, seq: u64) {
        self.cancel_below.fetch_max(seq, Ordering::SeqCst);
    }

    /// Results, one per submitted frame, in order (a worker's failure comes as an `Err`).
    pub fn results(&self) -> &Receiver<Result<FrameResult>> {
        &self.results
    }

    /// Waits for the next result.
    pub fn next_result(&self) -> Result<FrameResult> {
        self.results.recv().map_err(|_| Error::worker(NETWORK, "stopped before every frame had its result"))?
    }
}

impl Drop for StreamRestorer {
    /// Closing the job channel ends both threads (after the batch in progress).
    fn drop(&mut self) {
        self.cancel_below(u64::MAX);
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn analysis_loop(
    mut tracker: FaceTracker,
    size: Option<usize>,
    cancel_below: &AtomicU64,
    jobs: Receiver<Job>,
    out: Sender<Analyzed>,
) {
    for job in jobs {
        let msg = match job {
            Job::Reset => {
                tracker.reset();
                Analyzed::Reset
            }
            Job::Frame(job) if job.seq < cancel_below.load(Ordering::SeqCst) => {
                Analyzed::Frame(Analysed { seq: job.seq, tuning: job.tuning }, Ok(Vec::new()))
            }
            Job::Frame(job) => {
                let faces =
                    analyze(&mut tracker, &job, size).map_err(|e| Error::Frame { frame: job.seq, source: Arc::new(e) });
                Analyzed::Frame(Analysed { seq: job.seq, tuning: job.tuning }, faces)
            }
        };
        if out.send(msg).is_err() {
            return;
        }
    }
}

fn analyze(tracker: &mut FaceTracker, job: &FrameJob, size: Option<usize>) -> Result<Vec<FaceResult>> {
    let t = job.tuning;
    let opts = &mut tracker.tracker.opts;
    opts.detection_interval = t.detection_interval.max(1);
    opts.max_faces = t.max_faces;
    opts.smoothing = (t.temporal_smoothing > 0.0).then_some(TrackerOptions::default().smoothing).flatten();
    let detector = DetectorOptions { min_face_size: t.min_face_size, ..Default::default() };
    tracker.analyzer_mut().set_detector_options(detector)?;
    tracker.analyzer_mut().set_expressions(t.expression)?;
    tracker.analyzer_mut().set_mirror_landmarks(t.mirror_landmarks);
    tracker.search_opts.region = t.region;
    tracker.search_opts.full_frame = t.full_frame_search;
    let faces = tracker.step(&job.frame, job.time)?;
    Ok(faces
        .into_iter()
        .map(|f| {
            let aligned = size.filter(|_| job.restore).and_then(|s| align(&job.frame, &f.face.five, s));
            FaceResult { track_id: f.track_id, face: f.face, detected: f.detected, aligned, restored: None }
        })
        .collect())
}

fn restoration_loop(
    network: Option<StreamSlot>,
    hook: Option<PassHook>,
    cancel_below: Arc<AtomicU64>,
    analyzed: Receiver<Analyzed>,
    out: Sender<Result<FrameResult>>,
) {
    let mut blender = TemporalBlender::default();
    let faces_of = |a: &Analyzed| match a {
        Analyzed::Frame(_, Ok(f)) => f.len(),
        _ => 0,
    };
    while let Ok(first) = analyzed.recv() {
        // Whatever has queued up meanwhile joins the group, up to the faces of the requests
        // that may be in flight together.
        let (batch_size, in_flight) = match &first {
            Analyzed::Frame(job, _) => (job.tuning.batch_size.max(1), job.tuning.max_in_flight.max(1)),
            Analyzed::Reset | Analyzed::Failed(_) => (1, 1),
        };
        let mut group = vec![first];
        let mut faces = faces_of(&group[0]);
        while faces < batch_size * in_flight && matches!(group.last(), Some(Analyzed::Frame(..))) {
            match analyzed.try_recv() {
                Ok(a) => {
                    faces += faces_of(&a);
                    group.push(a);
                }
                Err(_) => break,
            }
        }
        let mut frames: Vec<(Analysed, Result<Vec<FaceResult>>)> = Vec::new();
        let (mut reset_after, mut failure) = (false, None);
        for a in group {
            match a {
                Analyzed::Frame(job, faces) => frames.push((job, faces)),
                Analyzed::Reset => reset_after = true,
                Analyzed::Failed(e) => failure = Some(e),
            }
        }
        if let Some(network) = &network
            && let Err(e) = restore_frames(
                network,
                hook.as_ref(),
                &mut frames,
                &cancel_below,
                (batch_size, in_flight),
                &mut blender,
            )
        {
            // Every frame of the batch failed with it, each told so with its number.
            let source = Arc::new(e);
            for (job, faces) in &mut frames {
                *faces = Err(Error::Frame { frame: job.seq, source: source.clone() });
            }
        }
        for (job, faces) in frames {
            // A cancelled frame comes back empty, whatever happened to it (nobody waits for it,
            // nor for its error).
            let cancelled = job.seq < cancel_below.load(Ordering::SeqCst);
            let faces = if cancelled { Ok(Vec::new()) } else { faces };
            let result = faces.map(|faces| FrameResult { seq: job.seq, faces, cancelled });
            if out.send(result).is_err() {
                return;
            }
        }
        if let Some(e) = failure {
            let _ = out.send(Err(e));
        }
        if reset_after {
            blender.clear();
        }
    }
}

/// Runs the aligned faces of `frames` through the network, one track's noise per face, in
/// requests of `batch_size` faces (up to `in_flight` of them outstanding), and blends each with
/// its track's previous result. Before every request, and in the shared queue before every
/// pass, the faces of frames cancelled meanwhile are dropped, so a stop or a flushing seek
/// waits for the pass in progress only.
fn restore_frames(
    network: &StreamSlot,
    hook: Option<&PassHook>,
    frames: &mut [(Analysed, Result<Vec<FaceResult>>)],
    cancel_below: &Arc<AtomicU64>,
    (batch_size, in_flight): (usize, usize),
    blender: &mut TemporalBlender,
) -> Result<()> {
    let mut slots: Vec<(usize, usize)> = Vec::new();
    for (i, (_, faces)) in frames.iter().enumerate() {
        if let Ok(faces) = faces {
            slots.extend((0..faces.len()).filter(|&k| faces[k].aligned.is_some()).map(|k| (i, k)));
        }
    }
    let (mut next, mut newest) = (0, None);
    // Requests sent and not yet answered, oldest first: their faces' range in `slots`.
    let mut outstanding: VecDeque<(std::ops::Range<usize>, PendingFaces)> = VecDeque::new();
    loop {
        // Frames come in order and cancelling raises a threshold: the cancelled faces are the
        // first ones left.
        let threshold = cancel_below.load(Ordering::SeqCst);
        while next < slots.len() && frames[slots[next].0].0.seq < threshold {
            next += 1;
        }
        let end = (next + batch_size).min(slots.len());
        if outstanding.len() == in_flight || next == end {
            let Some((range, pending)) = outstanding.pop_front() else { break };
            let pass: &[(usize, usize)] = &slots[range];
            let restored = pending.wait()?;
            // Blend in frame order so that each track's history runs forwards in time.
            for (&(i, k), face) in pass.iter().zip(restored) {
                let (job, faces) = &mut frames[i];
                if let (Ok(faces), Some(mut face)) = (faces, face) {
                    blender.blend(faces[k].track_id, &mut face, job.tuning.temporal_smoothing);
                    faces[k].restored = Some(face);
                    newest = Some(i);
                }
            }
            continue;
        }
        let pass = &slots[next..end];
        let range = next..end;
        next = end;
        let mut queued = Vec::new();
        for &(i, k) in pass {
            let (job, faces) = &frames[i];
            if let Ok(faces) = faces {
                let face = &faces[k];
                let crop = face.aligned.as_ref().expect("slots have aligned faces").crop.clone();
                queued.push(QueuedFace {
                    crop,
                    seed: (!job.tuning.stored_noise).then_some(face.track_id),
                    seq: job.seq,
                });
            }
        }
        if let Some(hook) = hook {
            hook(&queued.iter().map(|f| f.seq).collect::<Vec<_>>())?;
        }
        let wait = frames[pass[0].0].0.tuning.batch_wait;
        outstanding.push_back((range, network.submit(queued, batch_size, wait, Some(cancel_below.clone()))?));
    }
    // Tracks absent from the newest restored frame have ended.
    if let Some((_, Ok(faces))) = newest.map(|i| &frames[i]) {
        let live: Vec<u64> = faces.iter().map(|f| f.track_id).collect();
        blender.retain(|id| live.contains(&id));
    }
    Ok(())
}
