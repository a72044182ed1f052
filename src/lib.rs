//! GFP-GAN blind face restoration in Rust: the GFPGANv1Clean network in candle, checkpoint
//! loading and checking, and the devices it runs on.

pub mod device;
pub mod error;
pub mod face;
pub mod faceapi;
pub mod model;
pub mod nhwc;
pub mod noise;
pub mod restorer;
pub mod video;
pub mod weights;

pub use candle_core as candle;
pub use error::{Error, Result};
pub use noise::NoiseMode;
pub use restorer::{Engine, Restorer};
pub use weights::Checkpoint;
