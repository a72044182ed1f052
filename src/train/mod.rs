//! Training material: face datasets made from photos or aligned faces, with the facial
//! components (eyes, mouth) the component discriminators look at ([`data`]).

pub mod data;

pub use data::{Component, Components, FaceDataset, Sample};
