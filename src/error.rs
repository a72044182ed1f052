//! One error type for the library; every variant renders as a single line that names the problem,
//! so the CLI (and later the GStreamer element) can print it as is.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file exists but is not in a format we can read.
    #[error("{path}: {msg}")]
    Format { path: PathBuf, msg: String },
    /// The tensors do not describe a GFPGANv1Clean network.
    #[error("{path}: {msg}")]
    Checkpoint { path: PathBuf, msg: String },
    /// An input array or image does not fit the model.
    #[error("bad input: {0}")]
    Input(String),
    #[error("device: {0}")]
    Device(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format { path: path.into(), msg: msg.into() }
    }
    pub fn checkpoint(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Checkpoint { path: path.into(), msg: msg.into() }
    }
}
