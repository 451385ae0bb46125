//! Hybrid models: mechanistic systems and neural networks composed into one differentiable
//! system, trained and calibrated end to end.
//!
//! The API contract is `docs/contracts/hybrid-api.md`; this guide grows with the crate.
#![warn(missing_docs)]

mod error;

pub use error::{HybridError, Result};
