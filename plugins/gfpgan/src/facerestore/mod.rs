//! `facerestore`: detects, tracks and restores faces in raw RGB video, in place.
//!
//! A VideoFilter whose buffers are held while worker threads (the library's
//! `gfpgan::pipeline::StreamRestorer`) track and restore their faces; each buffer leaves, in
//! order, once its result is pasted in. See the properties for the knobs.
//!
//! Under faults and pressure:
//! - held buffers: at most `batch-size + 1` beyond the one being pushed; `propose_allocation`
//!   adds that many to the minimum of the pools downstream proposes (or proposes a pool of that
//!   many), and a batch-size change asks upstream to renegotiate (RECONFIGURE);
//! - latency: `batch-size + 1` frame durations. For `framerate=0/1` (variable rate, as from
//!   RTSP) the duration is the caps' `max-framerate`'s, else learnt from the first buffers (their
//!   duration, else the gap between the first two timestamps; a LATENCY message is posted when
//!   it is learnt), and 1/30 s until then;
//! - a stop or a flushing seek waits for the network pass in progress only (one batch), not for
//!   every face of the frames gathered; `live-policy=passthrough` cancels the same way;
//! - memory: with `live-policy=passthrough` on a live source at most `2 * (batch-size + 1)`
//!   frames are with the workers however slow they are (frames that left or were cancelled
//!   included, until the workers skip them); beyond that a frame leaves without analysis. The
//!   workers let go of a frame's pixels once its faces are aligned;
//! - a DRAIN query, like a serialized event, pushes every held frame out first;
//! - a frame whose analysis or restoration fails posts an element error "face restoration
//!   failed: frame N: ..." and leaves untouched in its place; the frames after it go on. A worker
//!   thread that panics or stops posts an error with its message (a panic's included); the held
//!   buffers are let go of and later ones refused;
//! - `stats` counts frames restored, passed through, not analysed and failed, and tells how many
//!   are held and with the workers now.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct FaceRestore(ObjectSubclass<imp::FaceRestore>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

/// What to do on a live source when restoration falls behind. (The element's default is its
/// `DEFAULT_LIVE_POLICY`, kept in one place: no `Default` here.)
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstFaceRestoreLivePolicy")]
pub enum LivePolicy {
    /// Wait for every frame's restoration (frames pile up when the network is slow).
    #[enum_value(name = "Block: wait for every frame's restoration", nick = "block")]
    Block = 0,
    /// Let a frame go out unrestored when holding it longer would exceed the reported latency.
    #[enum_value(name = "Passthrough: late frames leave unrestored, on time", nick = "passthrough")]
    Passthrough = 1,
}

/// The decoder noise each face gets (the element's default is its `DEFAULT_NOISE`).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstFaceRestoreNoise")]
pub enum NoiseChoice {
    /// Drawn from the face's track id: a face keeps its noise from frame to frame.
    #[enum_value(name = "Track: noise drawn from each track's id", nick = "track")]
    Track = 0,
    /// The checkpoint's stored maps for every face, as the official code without random noise
    /// (and what a server's model without a noise_seed input uses).
    #[enum_value(name = "Stored: the checkpoint's noise maps", nick = "stored")]
    Stored = 1,
}

/// Which implementation runs the network (see the library's `Engine`; the element's default is
/// its `DEFAULT_ENGINE`).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstFaceRestoreEngine")]
pub enum EngineChoice {
    /// The fast NHWC engine on the CPU, the candle port on CUDA.
    #[enum_value(name = "Auto: the fastest for the device", nick = "auto")]
    Auto = 0,
    /// The plain candle port (the reference; for comparisons on the CPU).
    #[enum_value(name = "Candle: the reference candle port", nick = "candle")]
    Candle = 1,
    /// The NHWC CPU engine.
    #[enum_value(name = "NHWC: the CPU engine (Winograd, packed weights)", nick = "nhwc")]
    Nhwc = 2,
}

impl From<EngineChoice> for gfpgan::Engine {
    fn from(e: EngineChoice) -> Self {
        match e {
            EngineChoice::Auto => gfpgan::Engine::Auto,
            EngineChoice::Candle => gfpgan::Engine::Candle,
            EngineChoice::Nhwc => gfpgan::Engine::Nhwc,
        }
    }
}

/// Where R, G and B sit in a pixel of a packed RGB video format, for rows `row_stride` bytes
/// apart.
pub fn packed_layout(info: &gst_video::VideoInfo, row_stride: usize) -> gfpgan::frame::PackedLayout {
    let f = info.format_info();
    let o = f.poffset();
    gfpgan::frame::PackedLayout {
        pixel_stride: f.pixel_stride()[0] as usize,
        offsets: [o[0] as usize, o[1] as usize, o[2] as usize],
        row_stride,
    }
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(Some(plugin), "facerestore", gst::Rank::NONE, FaceRestore::static_type())
}
