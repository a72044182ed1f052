//! GFP-GAN blind face restoration in Rust.
//!
//! The data path, one module a step, shared by photos, video (the GStreamer element) and every
//! other front end:
//!
//! ```text
//! frame ──► analyze ──► track ──► align ──► restore ──► blend ──► frame
//!          (detect,    (video:   (FFHQ     (network,   (temporal,
//!          landmarks,  ids,      template)  batches,    paste back)
//!          5 points)   smoothing)           noise)
//! ```
//!
//! - [`frame`]: the RGB frame every step works on;
//! - [`analyze`]: face boxes (rustface), 68 landmarks and five points (face-api.js's net), expressions;
//! - [`track`]: faces followed across video frames;
//! - [`align`]: the similarity to the FFHQ template and the aligned crop;
//! - [`restore`]: the network ready to run ([`Restorer`]) and the one batching routine;
//! - [`blend`]: temporal blending of a track's faces, and the paste back into the frame;
//! - [`pipeline`]: the steps put together for photos, streams and already-aligned faces.
//!
//! Below them: [`model`] (the GFPGANv1Clean network in candle), [`nhwc`] (the fast CPU engine),
//! [`faceapi`] (face-api.js's networks in candle), [`weights`] (checkpoints) and [`device`].
//! Apart from the production path: [`synth`] (degradation, test clips, flicker), [`eval`]
//! (restoration quality as the paper measures it, and video steadiness) and [`train`] (training
//! data).

pub mod align;
pub mod analyze;
pub mod blend;
pub mod device;
pub mod error;
pub mod eval;
pub mod faceapi;
pub mod files;
pub mod frame;
pub mod model;
pub mod nhwc;
pub mod npy;
pub mod pipeline;
pub mod restore;
pub mod serve;
pub mod synth;
pub mod track;
pub mod train;
pub mod weights;

pub use candle_core as candle;
pub use error::{Error, Result};
pub use frame::Rgb;
pub use restore::{Engine, NoiseMode, Restorer};
pub use weights::Checkpoint;
