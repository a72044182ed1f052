//! The steps put together for each front end. [`photo`]: a still frame, all its faces at once.
//! [`stream`]: video frames on worker threads (tracking, batches across frames, temporal
//! blending), what the GStreamer element runs. [`aligned`]: a face that is aligned already.

pub mod aligned;
pub mod photo;
pub mod stream;

pub use aligned::{aligned_crop, restore_aligned_face};
pub use photo::{PhotoOptions, PhotoPipeline, Restored, find_and_align};
pub use stream::{FaceResult, FrameJob, FrameResult, StreamRestorer, Tuning};
