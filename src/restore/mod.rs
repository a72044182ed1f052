//! Step: restore aligned faces in batches. [`Restorer`] is the network ready to run (a checkpoint
//! on a device, on the engine that suits it); [`batch`] turns aligned crops into batches and
//! back, the one routine every front end (photos, video, the CLI's arrays) restores through;
//! [`noise`] is what the decoder's noise-injection layers get; [`shared`] is one network per
//! process for every stream that uses the same weights, batching their faces together.

pub mod batch;
pub mod noise;
mod queue;
mod restorer;
pub mod shared;

pub use batch::{FaceNoise, faces_to_nchw, nchw_to_faces, restore_crops, restore_tensor};
pub use noise::NoiseMode;
pub use queue::QueuedFace;
pub use restorer::{Engine, Restorer};
pub use shared::{FaceNetwork, NetworkKey, PendingFaces, SharedRestorer, SharedStats, StreamSlot};
