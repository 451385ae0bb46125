//! Hybrid models: mechanistic systems and neural networks composed into one differentiable
//! system, trained and calibrated end to end.
//!
//! The API contract is `docs/contracts/hybrid-api.md`; this guide grows with the crate.
#![warn(missing_docs)]

mod calibrate;
mod error;
mod loss;

pub use calibrate::{
    Calibration, Calibrator, Noise, OdeResiduals, Prior, ResidualModel, TangentSystem, Transform,
};
pub use error::{HybridError, Result};
pub use loss::{GaussianNll, Mse, Regularizer, RelativeL2, SoftDice, TrajectoryLoss};
