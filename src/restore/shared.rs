//! One network per process for everyone who restores with the same weights on the same device:
//! [`SharedRestorer::open`] loads it the first time and hands the same one to every later caller
//! (GStreamer elements, pipelines, the server), and it is let go when the last of them drops it.
//! Its one worker thread runs every pass, gathering faces from all the streams that wait into
//! batches (see `queue` for the order), so two cameras cost one set of weights and activations,
//! and a pass can hold faces of several cameras. The network may also be another machine's
//! ([`FaceNetwork`], `serve::RemoteNetwork`): then a few workers send requests side by side and
//! the server does the batching.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use candle_core::DType;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};

use super::batch::{FaceNoise, restore_crops};
use super::queue::{QueuedFace, Request, Scheduler};
use super::restorer::{Engine, Restorer};
use crate::error::{Error, Result, panic_message};
use crate::frame::Rgb;

/// What makes two loads the same network: the same file (by its canonical path, size and
/// modification time, so a replaced file is loaded afresh), device, engine and precision.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NetworkKey {
    weights: PathBuf,
    file_stamp: Option<(u64, SystemTime)>,
    device: String,
    engine: Engine,
    dtype: DType,
}

impl NetworkKey {
    /// `device` as `device::open` reads it (`cpu`, `cuda`, `cuda:N`).
    pub fn new(weights: &Path, device: &str, engine: Engine, dtype: DType) -> Self {
        let weights = weights.canonicalize().unwrap_or_else(|_| weights.to_path_buf());
        let file_stamp = std::fs::metadata(&weights).ok().and_then(|m| Some((m.len(), m.modified().ok()?)));
        let device = match device.trim().to_ascii_lowercase().as_str() {
            "cuda" | "gpu" => "cuda:0".to_string(),
            d => d.to_string(),
        };
        Self { weights, file_stamp, device, engine, dtype }
    }
}

/// What restores the faces behind a [`SharedRestorer`]: a network in this process, or one on a
/// server.
pub trait FaceNetwork: Send + Sync {
    /// Side of the aligned faces it takes (and gives back).
    fn face_size(&self) -> usize;
    /// Restores aligned crops (0..255, `face_size` square), each with its noise seed (`None`:
    /// the stored maps), in one pass.
    fn restore_faces(&self, crops: &[Rgb], seeds: &[Option<u64>]) -> Result<Vec<Rgb>>;
}

impl FaceNetwork for Restorer {
    fn face_size(&self) -> usize {
        self.config().out_size
    }

    fn restore_faces(&self, crops: &[Rgb], seeds: &[Option<u64>]) -> Result<Vec<Rgb>> {
        restore_crops(self, crops, crops.len(), FaceNoise::PerFace(seeds))
    }
}

/// Counts of what the worker did, for tests, the element's `stats` and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SharedStats {
    pub passes: u64,
    pub faces: u64,
    /// Passes that held faces of more than one stream.
    pub mixed_passes: u64,
    pub largest_pass: usize,
}

/// A network with its batching worker. Dropping the last handle stops the worker after the
/// pass in progress; requests still queued then are answered with an error.
pub struct SharedRestorer {
    id: u64,
    network: Arc<dyn FaceNetwork>,
    requests: Option<Sender<Request>>,
    workers: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
    streams: AtomicUsize,
}

/// What the workers count, and who else wants to hear of each pass.
#[derive(Default)]
struct Counters {
    stats: Mutex<SharedStats>,
    on_pass: OnceLock<Box<dyn Fn(usize) + Send + Sync>>,
}

const WORKER: &str = "shared face restoration";

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The networks loaded, by key. Each key has its own slot, so that loading one network (seconds
/// at full size) holds up only those who want the same one.
type Slot = Arc<Mutex<Weak<SharedRestorer>>>;
fn registry() -> MutexGuard<'static, HashMap<NetworkKey, Slot>> {
    static REGISTRY: OnceLock<Mutex<HashMap<NetworkKey, Slot>>> = OnceLock::new();
    lock(REGISTRY.get_or_init(Default::default))
}

impl SharedRestorer {
    /// The network for `key`: the one already loaded in this process, else one loaded now with
    /// `load` and kept for later callers while anyone holds it.
    pub fn open(key: &NetworkKey, load: impl FnOnce() -> Result<Restorer>) -> Result<Arc<Self>> {
        let slot = {
            let mut all = registry();
            all.retain(|_, slot| Arc::strong_count(slot) > 1 || lock(slot).strong_count() > 0);
            all.entry(key.clone()).or_default().clone()
        };
        let mut slot = lock(&slot);
        if let Some(shared) = slot.upgrade() {
            return Ok(shared);
        }
        let shared = Self::new(Arc::new(load()?))?;
        *slot = Arc::downgrade(&shared);
        Ok(shared)
    }

    /// A network of its own (not shared through `open`), with its own worker.
    pub fn new(restorer: Arc<Restorer>) -> Result<Arc<Self>> {
        Self::batching(restorer)
    }

    /// One worker that gathers the waiting streams' faces into passes (see `queue`).
    pub fn batching(network: Arc<dyn FaceNetwork>) -> Result<Arc<Self>> {
        let (tx, rx) = unbounded::<Request>();
        let counters = Arc::new(Counters::default());
        let (net, counts) = (network.clone(), counters.clone());
        let worker = std::thread::Builder::new()
            .name("facerestore-shared".into())
            .spawn(move || {
                let mut scheduler = Scheduler::default();
                loop {
                    if scheduler.is_empty() {
                        match rx.recv() {
                            Ok(r) => scheduler.push(r),
                            Err(_) => return,
                        }
                    }
                    // Gather until a pass is full or the earliest request may wait no longer.
                    let mut open = true;
                    while open && scheduler.faces_waiting() < scheduler.batch_size() {
                        let deadline = scheduler.deadline().unwrap_or_else(Instant::now);
                        match rx.recv_deadline(deadline) {
                            Ok(r) => scheduler.push(r),
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => open = false,
                        }
                    }
                    while let Ok(r) = rx.try_recv() {
                        scheduler.push(r);
                    }
                    run_pass(net.as_ref(), &mut scheduler, &counts);
                }
            })
            .map_err(|e| Error::worker(WORKER, format!("cannot start: {e}")))?;
        Ok(Self::assemble(network, tx, vec![worker], counters))
    }

    /// `workers` threads that each take a whole request and run it as one pass, side by side:
    /// for a server, which batches what arrives together itself (`workers` is then the number
    /// of requests in flight).
    pub fn concurrent(network: Arc<dyn FaceNetwork>, workers: usize) -> Result<Arc<Self>> {
        let (tx, rx) = unbounded::<Request>();
        let counters = Arc::new(Counters::default());
        let threads = (0..workers.max(1))
            .map(|i| {
                let (net, counts, rx) = (network.clone(), counters.clone(), rx.clone());
                std::thread::Builder::new()
                    .name(format!("facerestore-request-{i}"))
                    .spawn(move || {
                        for request in rx {
                            run_request(net.as_ref(), request, &counts);
                        }
                    })
                    .map_err(|e| Error::worker(WORKER, format!("cannot start: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::assemble(network, tx, threads, counters))
    }

    fn assemble(
        network: Arc<dyn FaceNetwork>,
        requests: Sender<Request>,
        workers: Vec<JoinHandle<()>>,
        counters: Arc<Counters>,
    ) -> Arc<Self> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Arc::new(Self { id, network, requests: Some(requests), workers, counters, streams: AtomicUsize::new(0) })
    }

    /// Tells this network apart from others in the process (numbers are never reused).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Side of the aligned faces the network takes.
    pub fn face_size(&self) -> usize {
        self.network.face_size()
    }

    pub fn stats(&self) -> SharedStats {
        *lock(&self.counters.stats)
    }

    /// Calls `f` with the size of every pass from now on (the server's batch-size histogram).
    /// Only the first call takes effect.
    pub fn on_pass(&self, f: impl Fn(usize) + Send + Sync + 'static) {
        let _ = self.counters.on_pass.set(Box::new(f));
    }

    /// Streams attached now (see `attach`).
    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::SeqCst)
    }

    /// A new stream of faces: its number for `submit`, counted in `streams` until dropped.
    pub fn attach(self: &Arc<Self>) -> StreamSlot {
        static NEXT_STREAM: AtomicU64 = AtomicU64::new(1);
        self.streams.fetch_add(1, Ordering::SeqCst);
        StreamSlot { network: self.clone(), stream: NEXT_STREAM.fetch_add(1, Ordering::Relaxed) }
    }

    /// The loaded networks of this process that someone holds.
    pub fn loaded() -> usize {
        registry().values().filter(|slot| lock(slot).strong_count() > 0).count()
    }

    /// Sends `faces` of `stream` to be restored; the answer comes through the returned handle
    /// (so that a caller can keep several requests in flight). A batching worker runs passes of
    /// at most `max_batch` faces (the largest of the waiting streams' batch sizes), a pass
    /// waiting up to `max_wait` for faces of other streams to fill it. Faces of frames below
    /// `cancel_below` come back `None`.
    pub fn submit(
        &self,
        stream: u64,
        faces: Vec<QueuedFace>,
        max_batch: usize,
        max_wait: Duration,
        cancel_below: Option<Arc<AtomicU64>>,
    ) -> Result<PendingFaces> {
        let stopped = || Error::worker(WORKER, "stopped");
        let (reply, answer) = crossbeam_channel::bounded(1);
        let deadline = Instant::now() + max_wait;
        let request = Request { stream, faces, max_batch, deadline, cancel_below, reply };
        self.requests.as_ref().ok_or_else(stopped)?.send(request).map_err(|_| stopped())?;
        Ok(PendingFaces(answer))
    }
}

/// Faces submitted and not yet answered (see `SharedRestorer::submit`).
pub struct PendingFaces(Receiver<Result<Vec<Option<Rgb>>>>);

impl PendingFaces {
    /// Waits for the answer: one entry per face, `None` for faces of cancelled frames.
    pub fn wait(self) -> Result<Vec<Option<Rgb>>> {
        self.0.recv().map_err(|_| Error::worker(WORKER, "stopped"))?
    }
}

impl Drop for SharedRestorer {
    fn drop(&mut self) {
        self.requests = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// A stream's place at a shared network (see `SharedRestorer::attach`).
pub struct StreamSlot {
    network: Arc<SharedRestorer>,
    stream: u64,
}

impl StreamSlot {
    pub fn network(&self) -> &Arc<SharedRestorer> {
        &self.network
    }

    /// `SharedRestorer::submit` for this stream.
    pub fn submit(
        &self,
        faces: Vec<QueuedFace>,
        max_batch: usize,
        max_wait: Duration,
        cancel_below: Option<Arc<AtomicU64>>,
    ) -> Result<PendingFaces> {
        self.network.submit(self.stream, faces, max_batch, max_wait, cancel_below)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.network.streams.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs the next pass; a panic in the network fails that pass's requests, not the worker.
fn run_pass(network: &dyn FaceNetwork, scheduler: &mut Scheduler, stats: &Counters) {
    let picks = scheduler.next_pass();
    if picks.is_empty() {
        return;
    }
    let (crops, seeds) = scheduler.inputs(&picks);
    let restored = guarded_pass(network, &crops, &seeds);
    count_pass(stats, picks.len(), picks.iter().any(|p| p.stream != picks[0].stream));
    scheduler.finish_pass(&picks, restored);
}

/// Runs one request as a pass of its own, its cancelled faces left out.
fn run_request(network: &dyn FaceNetwork, request: Request, stats: &Counters) {
    let kept: Vec<usize> = (0..request.faces.len()).filter(|&i| !request.cancelled(i)).collect();
    let mut out = vec![None; request.faces.len()];
    if !kept.is_empty() {
        let crops: Vec<Rgb> = kept.iter().map(|&i| request.faces[i].crop.clone()).collect();
        let seeds: Vec<Option<u64>> = kept.iter().map(|&i| request.faces[i].seed).collect();
        let restored = guarded_pass(network, &crops, &seeds);
        count_pass(stats, kept.len(), false);
        match restored {
            Ok(faces) => kept.iter().zip(faces).for_each(|(&i, face)| out[i] = Some(face)),
            Err(e) => {
                let _ = request.reply.send(Err(e));
                return;
            }
        }
    }
    let _ = request.reply.send(Ok(out));
}

/// One pass; a panic in the network becomes that pass's error.
fn guarded_pass(network: &dyn FaceNetwork, crops: &[Rgb], seeds: &[Option<u64>]) -> Result<Vec<Rgb>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| network.restore_faces(crops, seeds)))
        .unwrap_or_else(|p| Err(Error::worker(WORKER, format!("panicked: {}", panic_message(p.as_ref())))))
}

fn count_pass(counters: &Counters, faces: usize, mixed: bool) {
    {
        let mut s = lock(&counters.stats);
        s.passes += 1;
        s.faces += faces as u64;
        s.mixed_passes += u64::from(mixed);
        s.largest_pass = s.largest_pass.max(faces);
    }
    if let Some(f) = counters.on_pass.get() {
        f(faces);
    }
}
