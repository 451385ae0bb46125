//! Discretizations for neurohybrid (under construction: grids, tissue, finite volumes, phantom).
#![warn(missing_docs)]

pub mod error;

pub use error::{MeshError, Result};
