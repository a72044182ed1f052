//! Synthetic data, apart from the production path: GFP-GAN's training degradation
//! ([`degrade`]), test clips of moving, shaken, degraded faces cut from photos ([`clip`]), and
//! the flicker measured on them ([`flicker`]).

pub mod clip;
pub mod degrade;
pub mod flicker;

pub use clip::{Clip, ClipSpec};
pub use degrade::{Degradation, DegradeOptions, degrade};
pub use flicker::flicker;
