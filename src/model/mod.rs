//! The GFPGANv1Clean network in candle: one struct per official PyTorch module, whose
//! `VarBuilder` prefixes mirror the state-dict keys.

pub mod config;
pub mod gfpgan;
pub mod ops;
pub mod stylegan2;

pub use config::Config;
pub use gfpgan::{Forward, GfpGanV1Clean};
