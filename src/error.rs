//! One error type for the library; every variant renders as a single line that names the problem,
//! so the CLI and the GStreamer element can print it as is ([`Error::one_line`]).

use std::path::PathBuf;
use std::sync::Arc;

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
    /// An inference server could not be reached, or refused or failed a request.
    #[error("inference server: {0}")]
    Remote(String),
    /// A worker thread could not start, stopped, or panicked.
    #[error("{thread} thread: {msg}")]
    Worker { thread: &'static str, msg: String },
    /// Restoring a video frame failed. `source` keeps the error's kind; the frames of one
    /// failed batch share it.
    #[error("frame {frame}: {source}")]
    Frame {
        frame: u64,
        #[source]
        source: Arc<Error>,
    },
    /// One error that several callers get (a network pass that held faces of several streams).
    #[error(transparent)]
    Shared(Arc<Error>),
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
    pub fn worker(thread: &'static str, msg: impl Into<String>) -> Self {
        Error::Worker { thread, msg: msg.into() }
    }

    /// The message on one line (candle's errors may carry a backtrace after the first line).
    pub fn one_line(&self) -> String {
        first_line(self)
    }

    /// The error behind `Frame` and `Shared` wrappers: what actually went wrong.
    pub fn root(&self) -> &Error {
        match self {
            Error::Frame { source, .. } | Error::Shared(source) => source.root(),
            e => e,
        }
    }
}

/// The first line of any error's message (third-party errors included).
pub fn first_line(e: &impl std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// The message of a caught panic (`&str` or `String` payloads; others say so).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panicked (no message)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_error_keeps_its_kind_and_reads_as_one_line() {
        let inner = Arc::new(Error::Input("faces must be 64x64".into()));
        let e = Error::Frame { frame: 7, source: inner };
        assert_eq!(e.one_line(), "frame 7: bad input: faces must be 64x64");
        assert!(matches!(e.root(), Error::Input(_)));
    }

    #[test]
    fn only_the_first_line_is_kept() {
        assert_eq!(first_line(&"cannot open\nbacktrace:\n  0: main"), "cannot open");
        let p = std::panic::catch_unwind(|| panic!("worker {} broke", 3)).unwrap_err();
        assert_eq!(panic_message(p.as_ref()), "worker 3 broke");
    }
}
