use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use gfpgan::analyze::Rect;
use gfpgan::blend::{PasteOptions, frame_box};
use gfpgan::frame::Rgb;
use gfpgan::pipeline::{FaceResult, FrameJob, FrameResult, StreamRestorer, Tuning};
use gfpgan::restore::{FaceNetwork, NetworkKey, SharedRestorer};
use gfpgan::serve::RemoteNetwork;
use gfpgan::{Restorer, device};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_transform::GenerateOutputSuccess;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use super::{EngineChoice, LivePolicy, NoiseChoice, packed_layout};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("facerestore", gst::DebugColorFlags::empty(), Some("GFP-GAN face restoration"))
});

const DEFAULT_DEVICE: &str = "cpu";
const DEFAULT_ENGINE: EngineChoice = EngineChoice::Auto;
// The knobs of the library's stream take its defaults, so that the element and the library
// cannot disagree.
const DEFAULT_BATCH_SIZE: u32 = Tuning::DEFAULT.batch_size as u32;
const DEFAULT_DETECTION_INTERVAL: u32 = Tuning::DEFAULT.detection_interval;
const DEFAULT_MIN_FACE_SIZE: f32 = Tuning::DEFAULT.min_face_size;
const DEFAULT_MAX_FACES: u32 = Tuning::DEFAULT.max_faces as u32;
const DEFAULT_TEMPORAL_SMOOTHING: f32 = Tuning::DEFAULT.temporal_smoothing;
const DEFAULT_EXPRESSION: bool = Tuning::DEFAULT.expression;
const DEFAULT_MIRROR_LANDMARKS: bool = Tuning::DEFAULT.mirror_landmarks;
const DEFAULT_FULL_FRAME_SEARCH: bool = Tuning::DEFAULT.full_frame_search;
const DEFAULT_BATCH_WAIT_MS: u32 = Tuning::DEFAULT.batch_wait.as_millis() as u32;
const DEFAULT_BLEND: f32 = 1.0;
const DEFAULT_LIVE_POLICY: LivePolicy = LivePolicy::Block;
const DEFAULT_POST_MESSAGES: bool = false;
const DEFAULT_NOISE: NoiseChoice = NoiseChoice::Track;
const DEFAULT_MODEL_NAME: &str = "gfpgan";
/// Two requests outstanding: one answered while the next is on the wire and in the server.
const DEFAULT_MAX_IN_FLIGHT: u32 = 2;
const MAX_IN_FLIGHT_RANGE: RangeInclusive<u32> = 1..=32;
const DEFAULT_SERVER_TIMEOUT_MS: u32 = 10_000;
/// The frame rate assumed for the latency of a variable-rate stream (`framerate=0/1`, as from
/// RTSP) until its caps' `max-framerate` or its first buffers tell the frame duration.
const ASSUMED_FRAMERATE: gst::Fraction = gst::Fraction::from_integer(30);

const BATCH_SIZE_RANGE: RangeInclusive<u32> = 1..=64;
const DETECTION_INTERVAL_RANGE: RangeInclusive<u32> = 1..=1000;
const MIN_FACE_SIZE_RANGE: RangeInclusive<f32> = 10.0..=4096.0;
const MAX_FACES_RANGE: RangeInclusive<u32> = 1..=256;
const BATCH_WAIT_MS_RANGE: RangeInclusive<u32> = 0..=1000;
/// Blend and temporal smoothing are weights.
const WEIGHT_RANGE: RangeInclusive<f32> = 0.0..=1.0;

// A library default outside its property's range would only show when the ParamSpecs are built
// (a GLib critical): make it a build error instead.
const _: () = {
    assert!(*BATCH_SIZE_RANGE.start() <= DEFAULT_BATCH_SIZE && DEFAULT_BATCH_SIZE <= *BATCH_SIZE_RANGE.end());
    assert!(
        *DETECTION_INTERVAL_RANGE.start() <= DEFAULT_DETECTION_INTERVAL
            && DEFAULT_DETECTION_INTERVAL <= *DETECTION_INTERVAL_RANGE.end()
    );
    assert!(
        *MIN_FACE_SIZE_RANGE.start() <= DEFAULT_MIN_FACE_SIZE && DEFAULT_MIN_FACE_SIZE <= *MIN_FACE_SIZE_RANGE.end()
    );
    assert!(*MAX_FACES_RANGE.start() <= DEFAULT_MAX_FACES && DEFAULT_MAX_FACES <= *MAX_FACES_RANGE.end());
    assert!(*WEIGHT_RANGE.start() <= DEFAULT_TEMPORAL_SMOOTHING && DEFAULT_TEMPORAL_SMOOTHING <= *WEIGHT_RANGE.end());
    assert!(*WEIGHT_RANGE.start() <= DEFAULT_BLEND && DEFAULT_BLEND <= *WEIGHT_RANGE.end());
    // The usize knobs narrowed to u32 above.
    assert!(DEFAULT_BATCH_SIZE as usize == Tuning::DEFAULT.batch_size);
    assert!(DEFAULT_MAX_FACES as usize == Tuning::DEFAULT.max_faces);
};

/// The `noise` property's value for the stream's setting.
fn noise_of(tuning: &Tuning) -> NoiseChoice {
    if tuning.stored_noise { NoiseChoice::Stored } else { NoiseChoice::Track }
}

/// The tuning knobs, read once per buffer; all may change while PLAYING.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Settings {
    tuning: Tuning,
    blend: f32,
    live_policy: LivePolicy,
    post_messages: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            // Every field spelled out (no `..Tuning::DEFAULT`): a new knob in the library does not
            // build here until it has a property.
            tuning: Tuning {
                detection_interval: DEFAULT_DETECTION_INTERVAL,
                min_face_size: DEFAULT_MIN_FACE_SIZE,
                max_faces: DEFAULT_MAX_FACES as usize,
                batch_size: DEFAULT_BATCH_SIZE as usize,
                batch_wait: Duration::from_millis(DEFAULT_BATCH_WAIT_MS as u64),
                temporal_smoothing: DEFAULT_TEMPORAL_SMOOTHING,
                expression: DEFAULT_EXPRESSION,
                mirror_landmarks: DEFAULT_MIRROR_LANDMARKS,
                region: None,
                full_frame_search: DEFAULT_FULL_FRAME_SEARCH,
                // Set at start from `max-in-flight` when the network is a server's.
                max_in_flight: 1,
                stored_noise: DEFAULT_NOISE == NoiseChoice::Stored,
            },
            blend: DEFAULT_BLEND,
            live_policy: DEFAULT_LIVE_POLICY,
            post_messages: DEFAULT_POST_MESSAGES,
        }
    }
}

/// What the model is loaded from; changes take effect at the next start (READY to PAUSED).
#[derive(Debug, Clone, PartialEq)]
struct ModelSettings {
    weights: Option<PathBuf>,
    face_models: Option<PathBuf>,
    device: String,
    engine: EngineChoice,
    /// An inference server to restore on instead of `weights`.
    server: Option<String>,
    model_name: String,
    max_in_flight: u32,
    server_timeout_ms: u32,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            weights: None,
            face_models: None,
            device: DEFAULT_DEVICE.into(),
            engine: DEFAULT_ENGINE,
            server: None,
            model_name: DEFAULT_MODEL_NAME.into(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            server_timeout_ms: DEFAULT_SERVER_TIMEOUT_MS,
        }
    }
}

impl ModelSettings {
    /// The face-api models: the property, else `GFPGAN_FACE_MODELS`, else `face-api/model`
    /// beside the weights (the layout `weights/fetch.sh` makes), else `weights/face-api/model`.
    fn face_models(&self) -> PathBuf {
        if let Some(p) = &self.face_models {
            return p.clone();
        }
        if let Some(p) = std::env::var_os("GFPGAN_FACE_MODELS") {
            return p.into();
        }
        let beside = self.weights.as_ref().and_then(|w| w.parent()).map(|d| d.join("face-api/model"));
        beside.filter(|p| p.is_dir()).unwrap_or_else(|| PathBuf::from("weights/face-api/model"))
    }
}

/// A frame waiting for its result.
struct Pending {
    seq: u64,
    buffer: gst::Buffer,
    /// The pixels the workers have (`None`: not given to them, see `State::in_workers`).
    frame: Option<Arc<Rgb>>,
}

/// Stream state, built in `start` and `set_info`.
struct State {
    stream: StreamRestorer,
    info: Option<gst_video::VideoInfo>,
    pending: VecDeque<Pending>,
    results: BTreeMap<u64, FrameResult>,
    next_seq: u64,
    /// Whether upstream is live (asked on the first buffer).
    live: Option<bool>,
    /// Frames given to the workers whose results have not come back, those that left or were
    /// flushed included (they hold pixels and aligned faces until the workers reach them).
    /// With `live-policy=passthrough` on a live source at most `in_workers_max` are, whatever
    /// the network's speed: beyond that a frame leaves unrestored without being analysed.
    in_workers: usize,
    /// The workers failed (a thread stopped): buffers are refused, none held.
    broken: bool,
    /// The server failed the last frame (warned once until a frame is restored again).
    server_failing: bool,
    /// For `framerate=0/1`: the caps' `max-framerate`, else the duration learnt from the first
    /// buffers (their duration, else the gap between the first two timestamps).
    variable_frame_duration: Option<gst::ClockTime>,
    first_pts: Option<gst::ClockTime>,
    counts: Counts,
}

/// What the `stats` property reports.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    restored: u64,
    passed_through: u64,
    not_analysed: u64,
    failed: u64,
}

/// Wakes the streaming thread out of its wait for a result when a flush starts or the element
/// stops. Nothing is ever sent: dropping the sender disconnects the channel, which wakes the
/// wait at once and every later wait on it too, until `rearm` (at flush-stop and start) puts a
/// fresh channel in place. So a wait that begins after the signal, but before the flush is
/// over, also returns, and one flush's signal cannot end a wait after it.
struct Unblock {
    armed: Option<Sender<Infallible>>,
    woken: Receiver<Infallible>,
}

impl Default for Unblock {
    fn default() -> Self {
        let (armed, woken) = crossbeam_channel::bounded(0);
        Self { armed: Some(armed), woken }
    }
}

impl Unblock {
    fn signal(&mut self) {
        self.armed = None;
    }

    fn rearm(&mut self) {
        *self = Self::default();
    }
}

#[derive(Default)]
pub struct FaceRestore {
    settings: Mutex<Settings>,
    model_settings: Mutex<ModelSettings>,
    /// The network, shared with every element of the process that uses the same weights on the
    /// same device; kept across restarts while they stay the same, let go in the NULL state.
    model: Mutex<Option<(ModelSettings, Option<Arc<SharedRestorer>>)>>,
    state: Mutex<Option<State>>,
    unblock: Mutex<Unblock>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A path property's value for the log.
/// A region as the property reads: `"x,y,width,height"`, empty for the whole frame.
fn shown_region(r: Option<Rect>) -> String {
    r.map(|r| r.to_string()).unwrap_or_default()
}

fn shown(p: &Option<PathBuf>) -> Cow<'_, str> {
    p.as_ref().map_or(Cow::Borrowed("none"), |p| p.to_string_lossy())
}

impl FaceRestore {
    /// Every property change goes to the debug log, as "Changing NAME from OLD to NEW".
    fn log_change(&self, name: &str, old: impl std::fmt::Display, new: impl std::fmt::Display) {
        gst::info!(CAT, imp = self, "Changing {name} from {old} to {new}");
    }

    fn stats(&self) -> gst::Structure {
        let guard = lock(&self.state);
        let (c, held, in_workers) =
            guard.as_ref().map_or((Counts::default(), 0, 0), |s| (s.counts, s.pending.len(), s.in_workers));
        let network = lock(&self.model).as_ref().and_then(|(_, n)| n.clone());
        let (id, streams, shared) = network.map_or((0, 0, Default::default()), |n| (n.id(), n.streams(), n.stats()));
        gst::Structure::builder("application/x-facerestore-stats")
            .field("restored", c.restored)
            .field("passed-through", c.passed_through)
            .field("not-analysed", c.not_analysed)
            .field("failed", c.failed)
            .field("held", held as u32)
            .field("in-workers", in_workers as u32)
            .field("network", id)
            .field("network-streams", streams as u32)
            .field("network-passes", shared.passes)
            .field("network-faces", shared.faces)
            .field("network-mixed-passes", shared.mixed_passes)
            .build()
    }

    /// Frames held at most before the oldest must leave: one batch being restored and one
    /// being gathered.
    fn frames_in_flight(settings: &Settings) -> usize {
        settings.tuning.batch_size.max(1) * settings.tuning.max_in_flight.max(1) + 1
    }

    /// Frames given to the workers at most under `live-policy=passthrough`: those held, and as
    /// many again that left or were cancelled and that the workers have yet to skip.
    fn in_workers_max(settings: &Settings) -> usize {
        2 * Self::frames_in_flight(settings)
    }

    /// `frames_in_flight` frame durations: the caps' frame rate; for a variable rate
    /// (`framerate=0/1`) the duration learnt (see `State::variable_frame_duration`), else
    /// `ASSUMED_FRAMERATE`'s; nothing before caps.
    fn added_latency(&self) -> gst::ClockTime {
        let settings = *lock(&self.settings);
        let guard = lock(&self.state);
        let Some(state) = guard.as_ref() else { return gst::ClockTime::ZERO };
        let Some(info) = state.info.as_ref() else { return gst::ClockTime::ZERO };
        let frames = Self::frames_in_flight(&settings) as u64;
        let fps = info.fps();
        let per_frame = |fps: gst::Fraction| {
            gst::ClockTime::SECOND.mul_div_floor(fps.denom() as u64, fps.numer() as u64).unwrap_or(gst::ClockTime::ZERO)
        };
        let duration = match (fps.numer() > 0, state.variable_frame_duration) {
            (true, _) => per_frame(fps),
            (false, Some(d)) => d,
            (false, None) => per_frame(ASSUMED_FRAMERATE),
        };
        duration * frames + gst::ClockTime::from_nseconds(settings.tuning.batch_wait.as_nanos() as u64)
    }

    fn load_model(&self, wanted: &ModelSettings) -> Result<Option<Arc<SharedRestorer>>, gst::ErrorMessage> {
        let mut model = lock(&self.model);
        if let Some((loaded, restorer)) = model.as_ref() {
            // Only the face models may differ: they are loaded by the stream, not here.
            if *loaded == (ModelSettings { face_models: loaded.face_models.clone(), ..wanted.clone() }) {
                return Ok(restorer.clone());
            }
        }
        let restorer = match (&wanted.server, &wanted.weights) {
            (Some(server), _) => {
                let timeout = Duration::from_millis(wanted.server_timeout_ms as u64);
                let remote = RemoteNetwork::connect(server, &wanted.model_name, timeout)
                    .map_err(|e| gst::error_msg!(gst::ResourceError::OpenReadWrite, ("{}", e.one_line())))?;
                if !remote.takes_seeds() && !lock(&self.settings).tuning.stored_noise {
                    gst::warning!(
                        CAT,
                        imp = self,
                        "model {} on {server} takes no noise_seed: faces get the server's noise (noise=stored matches it locally)",
                        wanted.model_name
                    );
                }
                let size = remote.face_size();
                let network = SharedRestorer::concurrent(Arc::new(remote), wanted.max_in_flight as usize)
                    .map_err(|e| gst::error_msg!(gst::LibraryError::Init, ("{}", e.one_line())))?;
                gst::info!(
                    CAT,
                    imp = self,
                    "restoring on {server}, model {} ({size} px faces), up to {} requests in flight",
                    wanted.model_name,
                    wanted.max_in_flight
                );
                Some(network)
            }
            (None, None) => {
                gst::warning!(CAT, imp = self, "no weights set: faces are tracked but not restored");
                None
            }
            (None, Some(path)) => {
                let dtype = gfpgan::candle::DType::F32;
                let key = NetworkKey::new(path, &wanted.device, wanted.engine.into(), dtype);
                let shared = SharedRestorer::open(&key, || {
                    let dev = device::open(&wanted.device)?;
                    Restorer::with_engine(&gfpgan::Checkpoint::load(path)?, &dev, dtype, wanted.engine.into())
                })
                .map_err(|e| {
                    let msg = e.one_line();
                    match e.root() {
                        gfpgan::Error::Io { .. } | gfpgan::Error::Format { .. } | gfpgan::Error::Checkpoint { .. } => {
                            gst::error_msg!(gst::ResourceError::OpenRead, ("{msg}"))
                        }
                        _ => gst::error_msg!(gst::LibraryError::Settings, ("{msg}")),
                    }
                })?;
                gst::info!(
                    CAT,
                    imp = self,
                    "network #{} for {} ({} px faces) on {}, used by {} stream(s) so far",
                    shared.id(),
                    path.display(),
                    shared.face_size(),
                    wanted.device,
                    shared.streams()
                );
                Some(shared)
            }
        };
        *model = Some((wanted.clone(), restorer.clone()));
        Ok(restorer)
    }

    /// The oldest held buffer once it may leave: ready, or forced out (`force`, or more frames
    /// in flight than allowed). Blocks for the result unless the live policy lets it go out
    /// unrestored. `None`: nothing may leave yet.
    fn next_output(&self, force: bool) -> Result<Option<gst::Buffer>, gst::FlowError> {
        loop {
            let settings = *lock(&self.settings);
            let mut guard = lock(&self.state);
            let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
            while let Ok(r) = state.stream.results().try_recv() {
                self.take_result(state, r, &settings)?;
            }
            let Some(front) = state.pending.front() else { return Ok(None) };
            let front_seq = front.seq;
            if let Some(result) = state.results.remove(&front_seq) {
                let pending = state.pending.pop_front().expect("front exists");
                if result.faces.iter().any(|f| f.restored.is_some()) {
                    state.counts.restored += 1;
                }
                let info = state.info.clone().ok_or(gst::FlowError::NotNegotiated)?;
                drop(guard);
                return self.finish(pending, &result, &info, &settings).map(Some);
            }
            if !force && state.pending.len() <= Self::frames_in_flight(&settings) {
                return Ok(None);
            }
            if !force && settings.live_policy == LivePolicy::Passthrough && state.live == Some(true) {
                let pending = state.pending.pop_front().expect("front exists");
                state.stream.cancel_below(pending.seq + 1);
                state.counts.passed_through += 1;
                gst::debug!(CAT, imp = self, "restoration behind: frame {} leaves unrestored", pending.seq);
                return Ok(Some(pending.buffer));
            }
            let results = state.stream.results().clone();
            let woken = lock(&self.unblock).woken.clone();
            drop(guard);
            // Sleep until the next result arrives, or a flush-start or a stop (PAUSED to READY)
            // wakes us: the stream lock must be let go of for either to go on.
            crossbeam_channel::select! {
                recv(results) -> r => match r {
                    Ok(r) => {
                        let mut guard = lock(&self.state);
                        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
                        self.take_result(state, r, &settings)?;
                    }
                    Err(_) => {
                        if let Some(state) = lock(&self.state).as_mut() {
                            self.break_stream(state);
                        }
                        gst::element_imp_error!(self, gst::StreamError::Failed, ("face restoration threads stopped"));
                        return Err(gst::FlowError::Error);
                    }
                },
                recv(woken) -> _ => {
                    gst::debug!(CAT, imp = self, "flushing or stopping: no longer waiting for frame {}", front_seq);
                    return Err(gst::FlowError::Flushing);
                }
            }
        }
    }

    fn take_result(
        &self,
        state: &mut State,
        r: gfpgan::Result<FrameResult>,
        settings: &Settings,
    ) -> Result<(), gst::FlowError> {
        match r {
            // Results of frames that already left (cancelled, or flushed) are dropped.
            Ok(r) => {
                state.in_workers = state.in_workers.saturating_sub(1);
                state.server_failing &= r.faces.iter().all(|f| f.restored.is_none());
                if state.pending.iter().any(|p| p.seq == r.seq) {
                    state.results.insert(r.seq, r);
                }
                Ok(())
            }
            // A frame's failure names the frame, which leaves unrestored (the stream goes on if
            // the application lets it: nothing is kept for the failed frame).
            Err(e @ gfpgan::Error::Frame { .. }) => {
                state.in_workers = state.in_workers.saturating_sub(1);
                state.counts.failed += 1;
                if let gfpgan::Error::Frame { frame, .. } = e
                    && state.pending.iter().any(|p| p.seq == frame)
                {
                    state.results.insert(frame, FrameResult { seq: frame, faces: Vec::new(), cancelled: true });
                }
                // A live stream that may drop restoration outlives a server's failures: the
                // frames leave unrestored, on time, with one warning until the server is back.
                let remote = matches!(e.root(), gfpgan::Error::Remote(_));
                if remote && settings.live_policy == LivePolicy::Passthrough && state.live == Some(true) {
                    if !state.server_failing {
                        state.server_failing = true;
                        gst::element_imp_warning!(
                            self,
                            gst::ResourceError::Read,
                            ("frames leave unrestored while the server fails: {}", e.one_line())
                        );
                    }
                    return Ok(());
                }
                gst::element_imp_error!(self, gst::StreamError::Failed, ("face restoration failed: {}", e.one_line()));
                Err(gst::FlowError::Error)
            }
            // A worker thread's failure names the thread (and a panic its message); no frame
            // will get a result any more.
            Err(e) => {
                self.break_stream(state);
                gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", e.one_line()));
                Err(gst::FlowError::Error)
            }
        }
    }

    /// The workers are gone: the held buffers are let go of and later ones refused, so that
    /// nothing piles up behind a stream that will not move.
    fn break_stream(&self, state: &mut State) {
        state.broken = true;
        state.pending.clear();
        state.results.clear();
    }

    /// Pastes a frame's restored faces into its buffer and attaches the face metadata. A frame
    /// without faces leaves untouched.
    fn finish(
        &self,
        pending: Pending,
        result: &FrameResult,
        info: &gst_video::VideoInfo,
        settings: &Settings,
    ) -> Result<gst::Buffer, gst::FlowError> {
        let mut buffer = pending.buffer;
        let Some(frame) = pending.frame.filter(|_| !result.faces.is_empty()) else { return Ok(buffer) };
        let paste_opts = PasteOptions { weight: settings.blend, ..Default::default() };
        let mut frame = Arc::try_unwrap(frame).unwrap_or_else(|f| (*f).clone());
        let pasted = result.paste_into(&mut frame, paste_opts);
        let buf = buffer.make_mut();
        if pasted {
            // Only the rows the faces can reach are written back.
            let (mut y0, mut y1) = (frame.h, 0);
            for a in result.faces.iter().filter_map(|f| f.aligned.as_ref()) {
                let (_, top, _, bottom) = frame_box(&frame, a);
                (y0, y1) = (y0.min(top), y1.max(bottom));
            }
            let mut vframe = gst_video::VideoFrameRef::from_buffer_ref_writable(buf, info).map_err(|_| {
                gst::element_imp_error!(self, gst::CoreError::Failed, ("cannot map the buffer writable"));
                gst::FlowError::Error
            })?;
            let layout = packed_layout(info, vframe.plane_stride()[0] as usize);
            let data = vframe.plane_data_mut(0).map_err(|_| gst::FlowError::Error)?;
            frame.write_packed(data, &layout, y0..y1).map_err(|e| {
                gst::element_imp_error!(self, gst::CoreError::Failed, ("{}", e.one_line()));
                gst::FlowError::Error
            })?;
        }
        let mut faces = Vec::with_capacity(result.faces.len());
        for f in &result.faces {
            let params = face_structure(f, pasted);
            let d = f.face.detection;
            let clamp = |v: f32, n: u32| v.round().clamp(0.0, n as f32) as u32;
            let (x0, y0) = (clamp(d.x, info.width()), clamp(d.y, info.height()));
            let (x1, y1) = (clamp(d.x + d.w, info.width()), clamp(d.y + d.h, info.height()));
            let mut meta = gst_video::VideoRegionOfInterestMeta::add(buf, "face", (x0, y0, x1 - x0, y1 - y0));
            meta.set_id(f.track_id as i32);
            meta.add_param(params.clone());
            faces.push(params);
        }
        if settings.post_messages {
            // Stream time through the input segment (what `stream-time` means elsewhere in
            // GStreamer), beside the raw timestamp.
            let segment = self.obj().segment();
            let stream_time =
                segment.downcast_ref::<gst::ClockTime>().zip(buf.pts()).and_then(|(seg, pts)| seg.to_stream_time(pts));
            let s = gst::Structure::builder("facerestore")
                .field("timestamp", buf.pts())
                .field("stream-time", stream_time)
                .field("faces", gst::Array::new(faces.iter().map(|s| s.to_send_value())))
                .build();
            let _ = self.obj().post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
        }
        Ok(buffer)
    }

    /// For a variable frame rate without `max-framerate`: the frame duration from the first
    /// buffer with a duration, else from the first two timestamps. Whether it was learnt now.
    fn learn_frame_duration(&self, state: &mut State, info: &gst_video::VideoInfo, buffer: &gst::Buffer) -> bool {
        if info.fps().numer() > 0 || state.variable_frame_duration.is_some() {
            return false;
        }
        let learnt = buffer.duration().filter(|d| !d.is_zero()).or_else(|| {
            let gap = state.first_pts.zip(buffer.pts()).and_then(|(a, b)| b.checked_sub(a));
            state.first_pts = state.first_pts.or(buffer.pts());
            gap.filter(|d| !d.is_zero())
        });
        if let Some(d) = learnt {
            gst::info!(CAT, imp = self, "variable frame rate: {d} per frame for the latency");
        }
        state.variable_frame_duration = learnt;
        learnt.is_some()
    }

    /// Tells the pipeline to query the latency again (once the state lock is let go of).
    fn post_latency_if(&self, changed: bool) {
        if changed {
            let _ = self.obj().post_message(gst::message::Latency::builder().src(&*self.obj()).build());
        }
    }

    /// Pushes every held buffer downstream, in order (before EOS and other serialized events).
    fn drain(&self) -> Result<(), gst::FlowError> {
        loop {
            match self.next_output(true) {
                Ok(Some(buffer)) => {
                    gst::log!(CAT, imp = self, "drained {:?}", buffer.pts());
                    self.obj().src_pad().push(buffer)?;
                }
                Ok(None) => return Ok(()),
                // A failed frame (reported already) leaves unrestored with the others.
                Err(gst::FlowError::Error) if lock(&self.state).as_ref().is_some_and(|s| !s.broken) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// The per-face parameters of the ROI meta and of element messages.
fn face_structure(f: &FaceResult, pasted: bool) -> gst::Structure {
    let five: Vec<glib::SendValue> = f.face.five.iter().flat_map(|p| p.map(|v| (v as f64).to_send_value())).collect();
    let mut s = gst::Structure::builder("face")
        .field("track-id", f.track_id)
        .field("score", f.face.detection.score)
        .field("detected", f.detected)
        .field("landmarks", gst::Array::from_values(five))
        .field("restored", pasted && f.restored.is_some())
        .build();
    if let Some((label, p)) = f.face.top_expression() {
        s.set("expression", label);
        s.set("expression-confidence", p as f64);
    }
    s
}

#[glib::object_subclass]
impl ObjectSubclass for FaceRestore {
    const NAME: &'static str = "GstFaceRestore";
    type Type = super::FaceRestore;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for FaceRestore {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("weights")
                    .nick("Weights")
                    .blurb("GFP-GAN checkpoint (.pth or .safetensors, GFPGANv1Clean of any output size); unset: track faces without restoring them")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("face-models")
                    .nick("Face models")
                    .blurb("Folder of the face-api.js landmark and expression models (default: $GFPGAN_FACE_MODELS, else face-api/model beside the weights, else weights/face-api/model)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("device")
                    .nick("Device")
                    .blurb("Where the network runs: cpu, cuda or cuda:N")
                    .default_value(Some(DEFAULT_DEVICE))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("engine", DEFAULT_ENGINE)
                    .nick("Engine")
                    .blurb("Implementation of the network: auto (the NHWC engine on the CPU, candle on CUDA), candle (the reference port), nhwc (CPU only)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("server")
                    .nick("Server")
                    .blurb("Restore on this inference server instead of with weights: host:port or http://host:port of any Open Inference Protocol (KServe v2) gRPC endpoint (gfpgan serve, Triton, KServe); its model takes FP32 [N,3,S,S] faces")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("model-name")
                    .nick("Model name")
                    .blurb("The model to ask on the server")
                    .default_value(Some(DEFAULT_MODEL_NAME))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-in-flight")
                    .nick("Requests in flight")
                    .blurb("Requests of batch-size faces outstanding at the server at once (frames held: batch-size x max-in-flight + 1)")
                    .minimum(*MAX_IN_FLIGHT_RANGE.start())
                    .maximum(*MAX_IN_FLIGHT_RANGE.end())
                    .default_value(DEFAULT_MAX_IN_FLIGHT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("server-timeout")
                    .nick("Server timeout")
                    .blurb("Milliseconds to connect to the server, and for each request's answer; past it the frames fail (or, with live-policy=passthrough, leave unrestored)")
                    .minimum(1)
                    .default_value(DEFAULT_SERVER_TIMEOUT_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("noise", DEFAULT_NOISE)
                    .nick("Noise")
                    .blurb("The decoder noise of each face: track (drawn from its track id, steady across frames) or stored (the checkpoint's maps, as the official code without random noise)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("batch-size")
                    .nick("Batch size")
                    .blurb("Most faces per network pass, gathered from the frames in flight (frames held: batch-size + 1)")
                    .minimum(*BATCH_SIZE_RANGE.start())
                    .maximum(*BATCH_SIZE_RANGE.end())
                    .default_value(DEFAULT_BATCH_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("batch-wait")
                    .nick("Batch wait")
                    .blurb("Milliseconds a network pass may wait for faces from other elements sharing the network (same weights, device and engine in this process) to fill it; 0: take what has queued")
                    .minimum(*BATCH_WAIT_MS_RANGE.start())
                    .maximum(*BATCH_WAIT_MS_RANGE.end())
                    .default_value(DEFAULT_BATCH_WAIT_MS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("detection-interval")
                    .nick("Detection interval")
                    .blurb("Frames from one face detection pass to the next; tracked faces are followed by their landmarks in between")
                    .minimum(*DETECTION_INTERVAL_RANGE.start())
                    .maximum(*DETECTION_INTERVAL_RANGE.end())
                    .default_value(DEFAULT_DETECTION_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("min-face-size")
                    .nick("Minimum face size")
                    .blurb("Smallest face detected, in pixels (below 40 the detector works on upscaled parts of the frame; see full-frame-search for the cost)")
                    .minimum(*MIN_FACE_SIZE_RANGE.start())
                    .maximum(*MIN_FACE_SIZE_RANGE.end())
                    .default_value(DEFAULT_MIN_FACE_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("region")
                    .nick("Region")
                    .blurb("Look for faces only inside this rectangle, \"x,y,width,height\" in frame pixels (empty: the whole frame)")
                    .default_value(Some(""))
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("full-frame-search")
                    .nick("Full-frame search")
                    .blurb("Detect whole frames on every detection pass instead of looking around tracked faces, where the picture changed and in a rolling scan (slow for small faces; for cameras whose whole picture keeps moving)")
                    .default_value(DEFAULT_FULL_FRAME_SEARCH)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-faces")
                    .nick("Maximum faces")
                    .blurb("Most faces tracked and restored per frame (the largest are kept)")
                    .minimum(*MAX_FACES_RANGE.start())
                    .maximum(*MAX_FACES_RANGE.end())
                    .default_value(DEFAULT_MAX_FACES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("blend")
                    .nick("Blend")
                    .blurb("Strength of the restored face over the original: 0 leaves the frame as it is, 1 pastes the restored face fully")
                    .minimum(*WEIGHT_RANGE.start())
                    .maximum(*WEIGHT_RANGE.end())
                    .default_value(DEFAULT_BLEND)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("temporal-smoothing")
                    .nick("Temporal smoothing")
                    .blurb("0 to 1: weight of each face's previous restored result (in aligned space); above 0 the alignment landmarks are also smoothed (One-Euro)")
                    .minimum(*WEIGHT_RANGE.start())
                    .maximum(*WEIGHT_RANGE.end())
                    .default_value(DEFAULT_TEMPORAL_SMOOTHING)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("expression")
                    .nick("Expression")
                    .blurb("Run the 7-class expression net on every tracked face (reported in the metadata)")
                    .default_value(DEFAULT_EXPRESSION)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("mirror-landmarks")
                    .nick("Mirror landmarks")
                    .blurb("Also locate each face's landmarks in its mirror image and average: steadier alignment of small faces (20 px: 4.7% of the eye distance from the full-size points instead of 5.2%), for twice the landmark time")
                    .default_value(DEFAULT_MIRROR_LANDMARKS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("live-policy", DEFAULT_LIVE_POLICY)
                    .nick("Live policy")
                    .blurb("On a live source, when restoration falls behind: block (wait) or passthrough (late frames leave unrestored, on time)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("Frames restored, passed through unrestored (live-policy=passthrough), left unanalysed because the workers were behind, failed; frames held and given to the workers now; the network shared in this process (its number, 0 without weights), the elements' streams using it, its passes, faces and passes holding faces of several streams")
                    .read_only()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post an element message 'facerestore' per frame with faces (track ids, scores, landmarks, expressions)")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn constructed(&self) {
        self.parent_constructed();
        // Late frames are restored anyway: QoS dropping would lose frames.
        self.obj().set_qos(false);
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let name = pspec.name();
        if matches!(
            name,
            "weights"
                | "face-models"
                | "device"
                | "engine"
                | "server"
                | "model-name"
                | "max-in-flight"
                | "server-timeout"
        ) {
            if self.obj().current_state() > gst::State::Ready {
                gst::warning!(CAT, imp = self, "{name} can only change in the NULL or READY state; ignored");
                return;
            }
            let mut m = lock(&self.model_settings);
            let path = || value.get::<Option<String>>().expect("type checked upstream").map(PathBuf::from);
            match name {
                "weights" => {
                    let weights = path();
                    self.log_change(name, shown(&m.weights), shown(&weights));
                    m.weights = weights;
                }
                "face-models" => {
                    let face_models = path();
                    self.log_change(name, shown(&m.face_models), shown(&face_models));
                    m.face_models = face_models;
                }
                "device" => {
                    let device = value.get::<Option<String>>().expect("type checked upstream");
                    let device = device.unwrap_or_else(|| DEFAULT_DEVICE.into());
                    self.log_change(name, &m.device, &device);
                    m.device = device;
                }
                "engine" => {
                    let engine = value.get().expect("type checked upstream");
                    self.log_change(name, format_args!("{:?}", m.engine), format_args!("{engine:?}"));
                    m.engine = engine;
                }
                "server" => {
                    let server =
                        value.get::<Option<String>>().expect("type checked upstream").filter(|s| !s.is_empty());
                    self.log_change(name, format_args!("{:?}", m.server), format_args!("{server:?}"));
                    m.server = server;
                }
                "model-name" => {
                    let model = value.get::<Option<String>>().expect("type checked upstream");
                    let model = model.unwrap_or_else(|| DEFAULT_MODEL_NAME.into());
                    self.log_change(name, &m.model_name, &model);
                    m.model_name = model;
                }
                "max-in-flight" => {
                    let n = value.get().expect("type checked upstream");
                    self.log_change(name, m.max_in_flight, n);
                    m.max_in_flight = n;
                }
                "server-timeout" => {
                    let ms = value.get().expect("type checked upstream");
                    self.log_change(name, format_args!("{} ms", m.server_timeout_ms), format_args!("{ms} ms"));
                    m.server_timeout_ms = ms;
                }
                _ => unreachable!(),
            }
            return;
        }
        let mut s = lock(&self.settings);
        let before = *s;
        match name {
            "batch-size" => {
                let batch_size = value.get::<u32>().expect("type checked upstream") as usize;
                self.log_change(name, s.tuning.batch_size, batch_size);
                s.tuning.batch_size = batch_size;
            }
            "batch-wait" => {
                let ms = value.get::<u32>().expect("type checked upstream");
                self.log_change(name, format_args!("{} ms", s.tuning.batch_wait.as_millis()), format_args!("{ms} ms"));
                s.tuning.batch_wait = Duration::from_millis(ms as u64);
            }
            "detection-interval" => {
                let interval = value.get().expect("type checked upstream");
                self.log_change(name, s.tuning.detection_interval, interval);
                s.tuning.detection_interval = interval;
            }
            "min-face-size" => {
                let size = value.get().expect("type checked upstream");
                self.log_change(name, s.tuning.min_face_size, size);
                s.tuning.min_face_size = size;
            }
            "region" => {
                let text = value.get::<Option<String>>().expect("type checked upstream").unwrap_or_default();
                match Rect::parse(&text) {
                    Ok(region) => {
                        let logged = |r: Option<Rect>| r.map_or("the whole frame".into(), |r| r.to_string());
                        self.log_change(name, logged(s.tuning.region), logged(region));
                        s.tuning.region = region;
                    }
                    // A property cannot fail: the bad value is reported and the old one kept.
                    Err(e) => {
                        gst::element_imp_warning!(self, gst::LibraryError::Settings, ["{e}; region left as it was"])
                    }
                }
            }
            "full-frame-search" => {
                let full = value.get().expect("type checked upstream");
                self.log_change(name, s.tuning.full_frame_search, full);
                s.tuning.full_frame_search = full;
            }
            "max-faces" => {
                let max_faces = value.get::<u32>().expect("type checked upstream") as usize;
                self.log_change(name, s.tuning.max_faces, max_faces);
                s.tuning.max_faces = max_faces;
            }
            "blend" => {
                let blend = value.get().expect("type checked upstream");
                self.log_change(name, s.blend, blend);
                s.blend = blend;
            }
            "temporal-smoothing" => {
                let smoothing = value.get().expect("type checked upstream");
                self.log_change(name, s.tuning.temporal_smoothing, smoothing);
                s.tuning.temporal_smoothing = smoothing;
            }
            "expression" => {
                let expression = value.get().expect("type checked upstream");
                self.log_change(name, s.tuning.expression, expression);
                s.tuning.expression = expression;
            }
            "mirror-landmarks" => {
                let mirror = value.get().expect("type checked upstream");
                self.log_change(name, s.tuning.mirror_landmarks, mirror);
                s.tuning.mirror_landmarks = mirror;
            }
            "noise" => {
                let noise: NoiseChoice = value.get().expect("type checked upstream");
                self.log_change(name, format_args!("{:?}", noise_of(&s.tuning)), format_args!("{noise:?}"));
                s.tuning.stored_noise = noise == NoiseChoice::Stored;
            }
            "live-policy" => {
                let policy = value.get().expect("type checked upstream");
                self.log_change(name, format_args!("{:?}", s.live_policy), format_args!("{policy:?}"));
                s.live_policy = policy;
            }
            "post-messages" => {
                let post = value.get().expect("type checked upstream");
                self.log_change(name, s.post_messages, post);
                s.post_messages = post;
            }
            _ => unimplemented!("property {name}"),
        }
        let latency_changed = s.tuning.batch_size != before.tuning.batch_size;
        drop(s);
        if latency_changed {
            self.post_latency_if(true);
            // More or fewer buffers held: let upstream renegotiate its pool.
            let _ = self.obj().sink_pad().push_event(gst::event::Reconfigure::new());
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = *lock(&self.settings);
        let m = lock(&self.model_settings);
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        match pspec.name() {
            "weights" => path(&m.weights).to_value(),
            "face-models" => path(&m.face_models).to_value(),
            "device" => m.device.to_value(),
            "engine" => m.engine.to_value(),
            "server" => m.server.to_value(),
            "model-name" => m.model_name.to_value(),
            "max-in-flight" => m.max_in_flight.to_value(),
            "server-timeout" => m.server_timeout_ms.to_value(),
            "noise" => noise_of(&s.tuning).to_value(),
            "batch-size" => (s.tuning.batch_size as u32).to_value(),
            "batch-wait" => (s.tuning.batch_wait.as_millis() as u32).to_value(),
            "detection-interval" => s.tuning.detection_interval.to_value(),
            "min-face-size" => s.tuning.min_face_size.to_value(),
            "region" => shown_region(s.tuning.region).to_value(),
            "full-frame-search" => s.tuning.full_frame_search.to_value(),
            "max-faces" => (s.tuning.max_faces as u32).to_value(),
            "blend" => s.blend.to_value(),
            "temporal-smoothing" => s.tuning.temporal_smoothing.to_value(),
            "expression" => s.tuning.expression.to_value(),
            "mirror-landmarks" => s.tuning.mirror_landmarks.to_value(),
            "live-policy" => s.live_policy.to_value(),
            "post-messages" => s.post_messages.to_value(),
            "stats" => self.stats().to_value(),
            name => unimplemented!("property {name}"),
        }
    }
}

impl GstObjectImpl for FaceRestore {}

impl ElementImpl for FaceRestore {
    fn change_state(&self, transition: gst::StateChange) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::PausedToReady {
            // Deactivating the sink pad waits for the streaming thread to let go of the stream
            // lock (and only then calls `stop`): wake it first if it waits for a result.
            lock(&self.unblock).signal();
        }
        let result = self.parent_change_state(transition);
        if transition == gst::StateChange::ReadyToNull {
            // Let go of the shared network: the last element to do so frees it.
            lock(&self.model).take();
        }
        result
    }

    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face restoration (GFP-GAN)",
                "Filter/Effect/Video",
                "Detects and tracks faces, restores them with GFP-GAN in batches and blends them back with temporal smoothing; attaches a 'face' region-of-interest meta per face",
                "gfpgan-rs developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            use gst_video::VideoFormat as F;
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list([F::Rgb, F::Rgba, F::Bgr, F::Bgra, F::Rgbx, F::Bgrx, F::Xrgb, F::Xbgr])
                .build();
            [gst::PadDirection::Src, gst::PadDirection::Sink]
                .into_iter()
                .map(|dir| {
                    let name = if dir == gst::PadDirection::Src { "src" } else { "sink" };
                    gst::PadTemplate::new(name, dir, gst::PadPresence::Always, &caps).expect("valid template")
                })
                .collect()
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for FaceRestore {
    const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let model = lock(&self.model_settings).clone();
        let network = self.load_model(&model)?;
        let face_models = model.face_models();
        let tuning = {
            let mut s = lock(&self.settings);
            s.tuning.max_in_flight = if model.server.is_some() { model.max_in_flight as usize } else { 1 };
            s.tuning
        };
        let stream = StreamRestorer::start(face_models.clone(), network, tuning).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenRead,
                (
                    "cannot load the face models from {} (run tests/faceapi/run.sh or set face-models): {}",
                    face_models.display(),
                    e.one_line()
                )
            )
        })?;
        lock(&self.unblock).rearm();
        *lock(&self.state) = Some(State {
            stream,
            info: None,
            pending: VecDeque::new(),
            results: BTreeMap::new(),
            next_seq: 0,
            live: None,
            in_workers: 0,
            broken: false,
            server_failing: false,
            variable_frame_duration: None,
            first_pts: None,
            counts: Counts::default(),
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // Dropping the stream stops and joins its threads.
        let state = lock(&self.state).take();
        drop(state);
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        gst::log!(CAT, imp = self, "sink event {:?}", event.type_());
        match event.view() {
            // Not serialized: comes on another thread while ours may be waiting for a result. The
            // workers stop after the network pass in progress.
            gst::EventView::FlushStart(_) => {
                lock(&self.unblock).signal();
                if let Some(state) = lock(&self.state).as_ref() {
                    state.stream.cancel_below(state.next_seq);
                }
            }
            gst::EventView::FlushStop(_) => {
                if let Some(state) = lock(&self.state).as_mut() {
                    state.stream.cancel_below(state.next_seq);
                    let _ = state.stream.reset();
                    state.pending.clear();
                    state.results.clear();
                }
                lock(&self.unblock).rearm();
            }
            // Held buffers go out before any serialized event (caps, segment, EOS, ...).
            _ if event.is_serialized() => {
                if let Err(e) = self.drain() {
                    gst::debug!(CAT, imp = self, "drain before {:?} stopped: {e:?}", event.type_());
                }
            }
            _ => {}
        }
        self.parent_sink_event(event)
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        // Serialized like an event: every held frame goes out before the answer.
        if direction == gst::PadDirection::Sink
            && let gst::QueryViewMut::Drain(_) = query.view_mut()
            && let Err(e) = self.drain()
        {
            gst::debug!(CAT, imp = self, "drain query: draining stopped: {e:?}");
        }
        if direction == gst::PadDirection::Src {
            if let gst::QueryViewMut::Latency(q) = query.view_mut() {
                if !self.obj().sink_pad().peer_query(q.query_mut()) {
                    return false;
                }
                let (live, min, max) = q.result();
                let ours = self.added_latency();
                gst::debug!(CAT, imp = self, "adding {ours} of latency");
                q.set(live, min + ours, max.map(|m| m + ours));
                return true;
            }
        }
        BaseTransformImplExt::parent_query(self, direction, query)
    }

    /// Upstream's buffers stay with us for up to `frames_in_flight` buffers beyond the one being
    /// pushed: add that many to the minimum of every pool downstream proposes (or propose one).
    fn propose_allocation(
        &self,
        decide_query: Option<&gst::query::Allocation>,
        query: &mut gst::query::Allocation,
    ) -> Result<(), gst::LoggableError> {
        let downstream = self.parent_propose_allocation(decide_query, query);
        let held = Self::frames_in_flight(&lock(&self.settings)) as u32;
        let pools: Vec<_> = query.allocation_pools().collect();
        if pools.is_empty() {
            let info = query.caps().and_then(|c| gst_video::VideoInfo::from_caps(c).ok());
            let Some(info) = info else { return downstream };
            gst::debug!(CAT, imp = self, "proposing {held} buffers of {} bytes", info.size());
            query.add_allocation_pool(None::<&gst::BufferPool>, info.size() as u32, held, 0);
        }
        for (i, (pool, size, min, max)) in pools.into_iter().enumerate() {
            let (min, max) = (min + held, if max == 0 { 0 } else { max + held });
            gst::debug!(CAT, imp = self, "pool {i}: {held} more buffers held here: min {min}, max {max}");
            query.set_nth_allocation_pool(i as u32, pool.as_ref(), size, min, max);
        }
        Ok(())
    }

    fn submit_input_buffer(&self, _is_discont: bool, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = *lock(&self.settings);
        let live = {
            let known = lock(&self.state).as_ref().and_then(|s| s.live);
            match known {
                Some(l) => l,
                None => {
                    let mut q = gst::query::Latency::new();
                    let l = self.obj().sink_pad().peer_query(&mut q) && q.result().0;
                    l
                }
            }
        };
        let mut guard = lock(&self.state);
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        if state.broken {
            gst::debug!(CAT, imp = self, "the workers stopped: refusing {:?}", buffer.pts());
            return Err(gst::FlowError::Error);
        }
        state.live = Some(live);
        let info = state.info.clone().ok_or(gst::FlowError::NotNegotiated)?;
        let learnt = self.learn_frame_duration(state, &info, &buffer);
        let seq = state.next_seq;
        state.next_seq += 1;
        let passthrough = settings.live_policy == LivePolicy::Passthrough && live;
        if passthrough && state.in_workers >= Self::in_workers_max(&settings) {
            // The workers are that far behind: this frame will not be restored in time, and
            // giving it to them would only queue its pixels.
            gst::debug!(CAT, imp = self, "workers behind: frame {seq} leaves unanalysed");
            state.counts.not_analysed += 1;
            state.results.insert(seq, FrameResult { seq, faces: Vec::new(), cancelled: true });
            state.pending.push_back(Pending { seq, buffer, frame: None });
            drop(guard);
            self.post_latency_if(learnt);
            return Ok(gst::FlowSuccess::Ok);
        }
        let frame = {
            let vframe = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), &info).map_err(|_| {
                gst::element_imp_error!(self, gst::CoreError::Failed, ("cannot map the input buffer"));
                gst::FlowError::Error
            })?;
            let layout = packed_layout(&info, vframe.plane_stride()[0] as usize);
            let data = vframe.plane_data(0).map_err(|_| gst::FlowError::Error)?;
            Rgb::from_packed(data, info.width() as usize, info.height() as usize, &layout).map_err(|e| {
                gst::element_imp_error!(self, gst::StreamError::Format, ("{}", e.one_line()));
                gst::FlowError::Error
            })?
        };
        let frame = Arc::new(frame);
        let time = buffer.pts().map_or(seq as f64 / 30.0, |t| t.nseconds() as f64 / 1e9);
        let job = FrameJob { seq, time, frame: frame.clone(), tuning: settings.tuning, restore: settings.blend > 0.0 };
        if let Err(e) = state.stream.submit(job) {
            // The analysis thread is gone (its panic, if any, comes as a result).
            self.break_stream(state);
            gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", e.one_line()));
            return Err(gst::FlowError::Error);
        }
        state.in_workers += 1;
        state.pending.push_back(Pending { seq, buffer, frame: Some(frame) });
        drop(guard);
        self.post_latency_if(learnt);
        Ok(gst::FlowSuccess::Ok)
    }

    fn generate_output(&self) -> Result<GenerateOutputSuccess, gst::FlowError> {
        Ok(match self.next_output(false)? {
            Some(buffer) => GenerateOutputSuccess::Buffer(buffer),
            None => GenerateOutputSuccess::NoOutput,
        })
    }
}

impl VideoFilterImpl for FaceRestore {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        _outcaps: &gst::Caps,
        _out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        let mut guard = lock(&self.state);
        let state = guard.as_mut().ok_or_else(|| gst::loggable_error!(CAT, "caps before start"))?;
        let resized =
            state.info.as_ref().is_some_and(|i| (i.width(), i.height()) != (in_info.width(), in_info.height()));
        if resized {
            // Track positions mean nothing at the new size.
            state.stream.reset().map_err(|e| gst::loggable_error!(CAT, "{}", e.one_line()))?;
        }
        state.info = Some(in_info.clone());
        // A variable rate's bound, where the caps give one.
        let max_rate = incaps.structure(0).and_then(|s| s.get::<gst::Fraction>("max-framerate").ok());
        state.variable_frame_duration = max_rate
            .filter(|r| r.numer() > 0 && r.denom() > 0)
            .and_then(|r| gst::ClockTime::SECOND.mul_div_floor(r.denom() as u64, r.numer() as u64));
        state.first_pts = None;
        Ok(())
    }
}
