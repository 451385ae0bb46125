//! # neurohybrid-mesh
//!
//! Discretizations on brain anatomy (placeholder guide; see the full guide below once written).
#![warn(missing_docs)]

pub mod error;
pub mod fv;
pub mod grid;
pub mod phantom;
pub mod tissue;

pub use error::{MeshError, Result};
pub use fv::{
    AssembledDiffusion, DiffusionOp, DiffusionOperator, FieldDiffusion, FieldDiffusionOp,
    Parallelism, Stencil, TissueDiffusion, TissueDiffusionOp,
};
pub use grid::{Grid, MaskRule, Plane};
pub use phantom::Phantom;
pub use tissue::{TissueMaps, TissueModel};
