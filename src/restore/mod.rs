//! Step: restore aligned faces in batches. [`Restorer`] is the network ready to run (a checkpoint
//! on a device, on the engine that suits it); [`batch`] turns aligned crops into batches and
//! back, the one routine every front end (photos, video, the CLI's arrays) restores through;
//! [`noise`] is what the decoder's noise-injection layers get.

pub mod batch;
pub mod noise;
mod restorer;

pub use batch::{FaceNoise, restore_crops, restore_tensor};
pub use noise::NoiseMode;
pub use restorer::{Engine, Restorer};
