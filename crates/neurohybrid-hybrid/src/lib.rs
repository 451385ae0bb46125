//! Hybrid models: mechanistic systems and neural networks composed into one differentiable
//! system, trained and calibrated end to end.
//!
//! The API contract is `docs/contracts/hybrid-api.md`; this guide grows with the crate.
#![warn(missing_docs)]

mod calibrate;
mod compose;
mod data;
mod error;
mod loss;
mod map;
mod network;
mod neural_ode;
mod sitl;
mod train;

pub use calibrate::{
    Calibration, Calibrator, Noise, OdeResiduals, Prior, ResidualModel, TangentSystem, Transform,
};
pub use compose::{Parallel, Readout, Series};
pub use data::{Dataset, Trajectory};
pub use error::{HybridError, Result};
pub use loss::{GaussianNll, Mse, Regularizer, RelativeL2, SoftDice, TrajectoryLoss};
pub use map::{DiffMap, TapeMap};
pub use network::{NetworkRhs, Parameterized};
pub use neural_ode::NeuralOde;
pub use train::{
    Batch, CHECKPOINT_MAGIC, CheckpointConfig, CheckpointInfo, Control, Curriculum, EarlyStopping,
    Objective, OdeObjective, OptimizerState, Progress, Shooting, TrainOptimizer, TrainReport,
    Trainer, read_checkpoint,
};
pub use sitl::SolverInTheLoop;
