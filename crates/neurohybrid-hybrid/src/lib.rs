//! Hybrid models: mechanistic systems and neural networks composed into one differentiable
//! system, trained and calibrated end to end.
//!
//! The API contract is `docs/contracts/hybrid-api.md`; this guide grows with the crate.
//!
//! # Training
//!
//! A [`Trainer`] minimizes an [`Objective`] — usually an [`OdeObjective`]: a problem template
//! (system and parameters), a stepper, a step-size controller, a sensitivity method from
//! `neurohybrid_solve::sensitivity` (forward for a few parameters, the discrete adjoint for
//! networks), a [`TrajectoryLoss`] ([`Mse`], [`RelativeL2`], [`SoftDice`] for segmentations,
//! [`GaussianNll`] with a learnable log σ) and [`Regularizer`]s, against a [`Dataset`] of
//! [`Trajectory`]s with masks for missing values. The parameter vector is
//! `[model | loss | shooting states]`; with [`Shooting`] each trajectory is cut into segments
//! whose initial states are learned, tied by a continuity penalty.
//!
//! The trainer draws minibatches by a seeded shuffle per epoch, clips gradients, follows a
//! [`Curriculum`] over the horizon, stops early on the validation loss, reports every
//! iteration to a callback that may return [`Control::Stop`], and writes checkpoints atomically
//! (temp file + rename, length + checksum) from which [`Trainer::resume`] continues
//! bit-identically. Damaged files are [`HybridError::Checkpoint`] errors.
//!
//! ```
//! use neurohybrid_hybrid::{Control, Dataset, Mse, OdeObjective, Trainer, Trajectory};
//! use neurohybrid_solve::sensitivity::ForwardSensitivity;
//! use neurohybrid_solve::{PiController, Problem};
//! use neurohybrid_solve_explicit::Tsit5;
//! use neurohybrid_testkit::ExponentialDecay;
//!
//! // Three decays y0·e^{−0.8 t}, observed at t = 0.5, 1, 1.5, 2.
//! let times = vec![0.5, 1.0, 1.5, 2.0];
//! let data = Dataset::new(
//!     [1.0, 2.0, 3.0]
//!         .iter()
//!         .map(|&y0: &f64| {
//!             let v = times.iter().map(|t: &f64| y0 * (-0.8 * t).exp()).collect();
//!             Trajectory::new(0.0, vec![y0], times.clone(), v)
//!         })
//!         .collect(),
//! );
//! let problem = Problem::new(ExponentialDecay::default(), [1.0], [0.3], (0.0, 2.0));
//! let objective = OdeObjective::new(
//!     problem, Tsit5, PiController::new(1e-8, 1e-10), ForwardSensitivity::params(), Mse, data,
//! )?;
//! let report = Trainer::adam(0.05, 200).train(&objective, &[0.3], &mut |_| Control::Continue)?;
//! assert!((report.params[0] - 0.8).abs() < 1e-2);
//! # Ok::<(), neurohybrid_hybrid::HybridError>(())
//! ```
//!
//! # Calibration and uncertainty
//!
//! For a handful of mechanistic parameters (a tumour's `D` and `ρ`, initial-state components)
//! the [`Calibrator`] fits a [`ResidualModel`] — typically [`OdeResiduals`]: an ODE observed at
//! fixed times, residuals divided by σ, Jacobians from forward sensitivities (through impulses
//! too) — by L-BFGS with a strong-Wolfe line search in a transformed space ([`Transform::Log`]
//! for positive parameters, [`Transform::Logit`] for bounded ones), with optional Gaussian
//! [`Prior`]s and the noise level known or estimated ([`Noise`]). Its [`Calibration`] carries
//! the Laplace approximation: the Gauss–Newton Hessian `JᵀJ` (+ prior precision) at the
//! optimum, inverted in the transformed space, standard deviations by the delta method and
//! 95 % intervals mapped back through the transform (so positive parameters keep positive
//! intervals). Why these choices: `docs/decisions/0011-training-and-calibration.md`.
//!
//! ```
//! use neurohybrid_hybrid::{Calibrator, OdeResiduals, Transform};
//! use neurohybrid_solve::{PiController, Problem};
//! use neurohybrid_solve_explicit::Tsit5;
//! use neurohybrid_testkit::Logistic;
//!
//! // Logistic growth u' = r u (1 − u): recover r and u(0) from 8 observations with σ = 0.01.
//! let (r, u0) = (1.3, 0.05);
//! let times: Vec<f64> = (1..=8).map(|k| k as f64).collect();
//! let noise = [0.004, -0.011, 0.007, 0.002, -0.006, 0.009, -0.003, 0.001];
//! let data: Vec<f64> = times
//!     .iter()
//!     .zip(noise)
//!     .map(|(&t, e)| u0 * (r * t).exp() / (1.0 - u0 + u0 * (r * t).exp()) + e)
//!     .collect();
//! let problem = Problem::new(Logistic::default(), [0.2], [0.5], (0.0, 8.0));
//! let model = OdeResiduals::new(problem, Tsit5, PiController::new(1e-9, 1e-11), times, data)?
//!     .sigma(0.01)?
//!     .calibrate(vec![0], vec![0])?; // θ = [r, u(0)]
//! let fit = Calibrator::new(vec![Transform::Log, Transform::Logit { lo: 0.0, hi: 1.0 }])
//!     .calibrate(&model, &[0.5, 0.2])?;
//! assert!(fit.converged);
//! for (i, truth) in [r, u0].into_iter().enumerate() {
//!     let (lo, hi) = fit.ci95[i];
//!     assert!(lo > 0.0 && lo < truth && truth < hi, "{i}: {lo} {hi}");
//! }
//! # Ok::<(), neurohybrid_hybrid::HybridError>(())
//! ```
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
