//! Finite-volume `∇·(D(x)∇u)` on masked grids, no flux at the mask boundary.
//!
//! [`operator`] holds the stencil and the row kernels (the maths, with its citations);
//! [`matrix_free`] the three parameterizations (fixed D, tissue `[D_w, R]`, per-cell D field);
//! [`assembled`] the CSR matrix; [`tape`] the autodiff graph nodes; `system` the
//! `neurohybrid-system` trait impls.

pub mod assembled;
pub mod matrix_free;
pub mod operator;
mod system;
pub mod tape;

pub use assembled::AssembledDiffusion;
pub use matrix_free::{DiffusionOperator, FieldDiffusion, TissueDiffusion};
pub use operator::{Parallelism, Stencil};
pub use tape::{DiffusionOp, FieldDiffusionOp, TissueDiffusionOp};
