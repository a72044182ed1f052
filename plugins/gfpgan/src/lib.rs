//! GStreamer plugin `gfpgan`: the `facerestore` element, face restoration with GFP-GAN on video.

use gst::glib;

mod facerestore;

pub use facerestore::{EngineChoice, FaceRestore, LivePolicy, NoiseChoice, packed_layout};

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    facerestore::register(plugin)
}

gst::plugin_define!(
    gfpgan,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "unknown",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    "https://github.com/TencentARC/GFPGAN",
    env!("BUILD_REL_DATE")
);
