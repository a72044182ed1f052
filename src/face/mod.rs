//! The photo pipeline around the network: frames and colour conversion, alignment to the FFHQ
//! template, and pasting restored faces back.

pub mod align;
pub mod degrade;
pub mod detect;
pub mod image;
pub mod paste;
pub mod pipeline;

pub use align::{AlignedFace, Similarity, align, template};
pub use detect::{Detection, DetectorOptions, FaceDetector};
pub use image::{PackedLayout, PixelLayout, Rgb};
pub use paste::{PasteOptions, paste};
