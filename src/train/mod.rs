//! Training GFP-GAN (`gfpgan train`), in the order a run uses the parts:
//!
//! - [`config`]: the options, a TOML file mirroring the official training options;
//! - [`data`]: face datasets made from photos or aligned faces, with the eye and mouth squares
//!   the component discriminators look at, degraded on the fly;
//! - [`nets`]: trainable parameters under the official state-dict names; the generator is the
//!   inference model itself ([`crate::model`]), the [`discriminator`]s are built here;
//! - [`step`]: one iteration's loss terms, from [`losses`], [`roi`] (eye and mouth crops) and
//!   [`identity`] (face-api's recognition net in place of ArcFace) and [`perceptual`] (VGG19);
//! - [`optim`]: Adam as PyTorch computes it, the schedule, the moving average;
//! - [`trainer`]: the networks, their optimisers and one iteration;
//! - [`run`]: the loop, checkpoints and resume, validation, [`log`] and the loss curve.

pub mod config;
pub mod data;
pub mod discriminator;
pub mod identity;
pub mod log;
pub mod losses;
pub mod nets;
pub mod optim;
pub mod perceptual;
pub mod roi;
pub mod run;
pub mod step;
pub mod trainer;

pub use data::{Component, Components, FaceDataset, Sample};
