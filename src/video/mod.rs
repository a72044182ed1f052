//! Faces in video: tracking across frames with smoothed landmarks, and a threaded stream
//! restorer that batches faces of frames in flight and keeps each face stable over time. The
//! GStreamer element is glue around [`StreamRestorer`].

pub mod clip;
pub mod one_euro;
pub mod stream;
pub mod temporal;
pub mod tracker;

pub use one_euro::OneEuro;
pub use stream::{FaceResult, FrameJob, FrameResult, StreamRestorer, Tuning};
pub use tracker::{FaceTracker, TrackedFace, Tracker, TrackerOptions};
