//! One network per process for everyone who restores with the same weights on the same device:
//! [`SharedRestorer::open`] loads it the first time and hands the same one to every later caller
//! (GStreamer elements, pipelines, the server), and it is let go when the last of them drops it.
//! Its one worker thread runs every pass, gathering faces from all the streams that wait into
//! batches (see `queue` for the order), so two cameras cost one set of weights and activations,
//! and a pass can hold faces of several cameras.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use candle_core::DType;
use crossbeam_channel::{RecvTimeoutError, Sender, unbounded};

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
    restorer: Arc<Restorer>,
    requests: Option<Sender<Request>>,
    worker: Option<JoinHandle<()>>,
    stats: Arc<Mutex<SharedStats>>,
    streams: AtomicUsize,
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
        let (tx, rx) = unbounded::<Request>();
        let stats = Arc::new(Mutex::new(SharedStats::default()));
        let (net, counts) = (restorer.clone(), stats.clone());
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
                    run_pass(&net, &mut scheduler, &counts);
                }
            })
            .map_err(|e| Error::worker(WORKER, format!("cannot start: {e}")))?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(Self {
            id,
            restorer,
            requests: Some(tx),
            worker: Some(worker),
            stats,
            streams: AtomicUsize::new(0),
        }))
    }

    /// Tells this network apart from others in the process (numbers are never reused).
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn restorer(&self) -> &Arc<Restorer> {
        &self.restorer
    }

    pub fn stats(&self) -> SharedStats {
        *lock(&self.stats)
    }

    /// Streams attached now (see `attach`).
    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::SeqCst)
    }

    /// A new stream of faces: its number for `restore`, counted in `streams` until dropped.
    pub fn attach(self: &Arc<Self>) -> StreamSlot {
        static NEXT_STREAM: AtomicU64 = AtomicU64::new(1);
        self.streams.fetch_add(1, Ordering::SeqCst);
        StreamSlot { network: self.clone(), stream: NEXT_STREAM.fetch_add(1, Ordering::Relaxed) }
    }

    /// The loaded networks of this process that someone holds.
    pub fn loaded() -> usize {
        registry().values().filter(|slot| lock(slot).strong_count() > 0).count()
    }

    /// Restores `faces` of `stream` and waits for them: in passes of at most `max_batch` faces
    /// (the largest of the waiting streams' batch sizes), a pass waiting up to `max_wait` for
    /// faces of other streams to fill it. Faces of frames below `cancel_below` come back `None`.
    pub fn restore(
        &self,
        stream: u64,
        faces: Vec<QueuedFace>,
        max_batch: usize,
        max_wait: Duration,
        cancel_below: Option<Arc<AtomicU64>>,
    ) -> Result<Vec<Option<Rgb>>> {
        let stopped = || Error::worker(WORKER, "stopped");
        let (reply, answer) = crossbeam_channel::bounded(1);
        let deadline = Instant::now() + max_wait;
        let request = Request { stream, faces, max_batch, deadline, cancel_below, reply };
        self.requests.as_ref().ok_or_else(stopped)?.send(request).map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }
}

impl Drop for SharedRestorer {
    fn drop(&mut self) {
        self.requests = None;
        if let Some(worker) = self.worker.take() {
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

    /// `SharedRestorer::restore` for this stream.
    pub fn restore(
        &self,
        faces: Vec<QueuedFace>,
        max_batch: usize,
        max_wait: Duration,
        cancel_below: Option<Arc<AtomicU64>>,
    ) -> Result<Vec<Option<Rgb>>> {
        self.network.restore(self.stream, faces, max_batch, max_wait, cancel_below)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.network.streams.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs the next pass; a panic in the network fails that pass's requests, not the worker.
fn run_pass(restorer: &Restorer, scheduler: &mut Scheduler, stats: &Mutex<SharedStats>) {
    let picks = scheduler.next_pass();
    if picks.is_empty() {
        return;
    }
    let (crops, seeds) = scheduler.inputs(&picks);
    let restored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        restore_crops(restorer, &crops, picks.len(), FaceNoise::PerFace(&seeds))
    }))
    .unwrap_or_else(|p| Err(Error::worker(WORKER, format!("panicked: {}", panic_message(p.as_ref())))));
    {
        let mut s = lock(stats);
        s.passes += 1;
        s.faces += picks.len() as u64;
        s.mixed_passes += u64::from(picks.iter().any(|p| p.stream != picks[0].stream));
        s.largest_pass = s.largest_pass.max(picks.len());
    }
    scheduler.finish_pass(&picks, restored);
}
