//! Step: blend restored faces back. [`paste`] puts a restored aligned face into its frame as a
//! feathered change; [`temporal`] mixes each video track's restored face with its previous one,
//! in aligned space, before it is pasted.

pub mod paste;
pub mod temporal;

pub use paste::{PasteOptions, frame_box, paste};
pub use temporal::TemporalBlender;
