//! Dynamic batching for the server: every request's faces go to the process's shared network
//! (`restore::SharedRestorer`), whose worker gathers faces of concurrent requests into passes
//! of up to `max_batch`, waiting up to `max_delay` for a pass to fill. In front of it, a bound
//! on the faces accepted and not yet restored (beyond it a request is refused at once, 503 /
//! UNAVAILABLE, rather than queued without end) and a timeout per request (its faces not yet
//! in a pass are then dropped).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use super::error::{Kind, ServeError};
use super::metrics::Metrics;
use crate::frame::Rgb;
use crate::restore::{QueuedFace, SharedRestorer};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchOptions {
    pub max_batch: usize,
    pub max_delay: Duration,
    /// Faces accepted and not yet restored, all requests together.
    pub max_queue: usize,
    pub timeout: Duration,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self { max_batch: 8, max_delay: Duration::from_millis(5), max_queue: 64, timeout: Duration::from_secs(60) }
    }
}

pub struct Batcher {
    network: Arc<SharedRestorer>,
    opts: BatchOptions,
    queued: Arc<AtomicUsize>,
    stopping: AtomicBool,
    metrics: Arc<Metrics>,
}

/// Releases a request's place in the queue when its faces are done (or dropped).
struct Place {
    faces: usize,
    queued: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.queued.fetch_sub(self.faces, Ordering::SeqCst);
        self.metrics.queue_faces.sub(self.faces as i64);
    }
}

impl Batcher {
    pub fn new(network: Arc<SharedRestorer>, opts: BatchOptions, metrics: Arc<Metrics>) -> Self {
        let histogram = metrics.batch_faces.clone();
        network.on_pass(move |faces| histogram.observe(faces as f64));
        Self { network, opts, queued: Arc::new(AtomicUsize::new(0)), stopping: AtomicBool::new(false), metrics }
    }

    pub fn face_size(&self) -> usize {
        self.network.face_size()
    }

    /// The passes the network ran (for every user of it, not only this server).
    pub fn stats(&self) -> crate::restore::SharedStats {
        self.network.stats()
    }

    /// From now on requests are refused (the server is shutting down); those accepted go on.
    pub fn stop_accepting(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Taking requests (not shutting down).
    pub fn is_accepting(&self) -> bool {
        !self.stopping.load(Ordering::SeqCst)
    }

    /// Restores `crops` (each with its noise seed, `None`: the stored maps) in whatever passes
    /// the shared worker forms, and waits for them.
    pub async fn restore(&self, crops: Vec<Rgb>, seeds: Vec<Option<u64>>) -> Result<Vec<Rgb>, ServeError> {
        if !self.is_accepting() {
            return Err(ServeError::new(Kind::ShuttingDown, "the server is shutting down"));
        }
        let n = crops.len();
        let before = self.queued.fetch_add(n, Ordering::SeqCst);
        self.metrics.queue_faces.add(n as i64);
        let place = Place { faces: n, queued: self.queued.clone(), metrics: self.metrics.clone() };
        if before + n > self.opts.max_queue {
            return Err(ServeError::new(
                Kind::Busy,
                format!(
                    "queue full: {before} faces waiting, {n} more would pass the limit of {}; retry later",
                    self.opts.max_queue
                ),
            ));
        }
        let faces = crops.into_iter().zip(seeds).map(|(crop, seed)| QueuedFace { crop, seed, seq: 1 }).collect();
        // Raised past every face's number on timeout, so that faces not yet in a pass are dropped.
        let cancel = Arc::new(AtomicU64::new(0));
        // Each request a stream of its own: the worker takes faces of waiting requests in turn.
        let pending =
            self.network.attach().submit(faces, self.opts.max_batch, self.opts.max_delay, Some(cancel.clone()))?;
        let waiting = tokio::task::spawn_blocking(move || {
            let answer = pending.wait();
            drop(place);
            answer
        });
        let restored = match tokio::time::timeout(self.opts.timeout, waiting).await {
            Err(_) => {
                cancel.store(u64::MAX, Ordering::SeqCst);
                return Err(ServeError::new(
                    Kind::Timeout,
                    format!("not restored within the server's timeout of {:?}", self.opts.timeout),
                ));
            }
            Ok(Err(join)) => return Err(ServeError::internal(format!("restoration task failed: {join}"))),
            Ok(Ok(answer)) => answer?,
        };
        self.metrics.faces.inc_by(n as u64);
        restored.into_iter().collect::<Option<Vec<Rgb>>>().ok_or_else(|| ServeError::internal("a face was dropped"))
    }
}
