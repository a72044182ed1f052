//! The subcommands, one module each: its arguments and its `run`.

pub mod align;
pub mod analyze;
pub mod bench;
pub mod bench_landmarks;
pub mod bench_serve;
pub mod bench_streams;
pub mod bench_tracking;
pub mod clip;
mod common;
pub mod convert;
pub mod degrade;
pub mod eval;
pub mod eval_video;
pub mod flicker;
pub mod forward;
pub mod init_random;
pub mod inspect;
pub mod prepare_data;
pub mod restore;
pub mod serve;
pub mod train;
