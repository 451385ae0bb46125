//! Hybrid models: mechanistic systems and neural networks composed into one differentiable
//! system, trained and calibrated end to end.
//!
//! The API contract is `docs/contracts/hybrid-api.md`; the design choices are in
//! `docs/decisions/0010-hybrid-compositions.md` (compositions) and
//! `docs/decisions/0011-training-and-calibration.md` (training, calibration).
//!
//! # Compositions
//!
//! Every composition is a `neurohybrid_system::OdeSystem` with exact `Vjp` and `Jvp` (and
//! `Jacobian` where its parts have one), so every stepper and every sensitivity method of
//! `neurohybrid-solve` works on it unchanged, and compositions nest:
//!
//! | type | model | parameters |
//! |---|---|---|
//! | [`Parallel`] | `f = f_mech(y; θ) + g(y; w)` (residual model, UDE) | `[θ \| w]`, `"mech.*"`, `"nn.*"` |
//! | [`Series`] | `f_mech(y; θ)` with `θ[..k] = g(features; w)` (network → parameters) | `[w \| rest of θ]` |
//! | [`Readout`] | `obs = g(y; w)` (mechanistic state → observation; for losses) | `w` |
//! | [`NeuralOde`] | `f = g(y (, t); w)` | `w` |
//! | [`SolverInTheLoop`] | `y_{n+1} = z + c(z; w)`, `z = Φ_Δt(y_n; p)` (a discrete map) | `[p \| w]` |
//!
//! The network parts are [`DiffMap`]s — [`TapeMap`] compiles any `neurohybrid_nn::Layer` (or
//! any recorded graph, e.g. an MLP on `y³`) once into a tape — or [`NetworkRhs`], a network as a
//! right-hand side: dense on the whole state, or pointwise (the same MLP on every voxel or graph
//! node, channel-major state, optional static features and time input, block-diagonal Jacobian
//! pattern). [`StencilCorrector`] is the grid corrector for [`SolverInTheLoop`]: a
//! translation-invariant stencil over powers of the coarse state (ADR 0021). Calls replay compiled tapes in workspaces kept in `RefCell`s: nothing is allocated
//! per call, and the types are `Send` but not `Sync` (clone per thread). [`Series`] re-evaluates
//! its map only when `w` changes, so a per-voxel parameter map costs one network evaluation per
//! parameter update, not per right-hand side. [`Parameterized`] gives each part's named
//! `ParamLayout`.
//!
//! A UDE (Lotka–Volterra with a network in place of the interaction terms) and its gradient by
//! the discrete adjoint, checked against a finite difference:
//!
//! ```
//! use neurohybrid_hybrid::{NetworkRhs, Parallel};
//! use neurohybrid_nn::{Activation, Init, Mlp, initialize};
//! use neurohybrid_solve::sensitivity::{DiscreteAdjoint, SquaredMisfit, gradient};
//! use neurohybrid_solve::{PiController, Problem, SaveAt, solve};
//! use neurohybrid_solve_explicit::Tsit5;
//! use neurohybrid_system::OdeSystem;
//! use neurohybrid_testkit::LotkaVolterra;
//!
//! let net = Mlp::new(&[2, 8, 2], Activation::Tanh)?;
//! let ude = Parallel::new(LotkaVolterra::default(), NetworkRhs::dense(&net, 2)?)?;
//! assert_eq!(ude.layout().range("nn.layer0.weight")?, 4..20);
//!
//! let mut p = vec![1.3, 0.9, 0.8, 1.8]; // θ, then the network's w
//! p.extend(initialize(&net, Init::GlorotUniform, 7));
//! let problem = Problem::new(ude, [0.44, 4.63], p.clone(), (0.0, 1.0));
//! let save = SaveAt::Times(vec![0.5, 1.0]);
//! let loss = SquaredMisfit::new(vec![0.3, 3.0, 0.25, 2.0]);
//! let ctrl = PiController::new(1e-10, 1e-10);
//! let g = gradient(&problem, &Tsit5, &ctrl, &save, &loss, &DiscreteAdjoint::default())?;
//! assert_eq!(g.dl_dp.len(), problem.system().n_params());
//!
//! // ∂L/∂w₀ by a central difference of two solves.
//! let value = |p: &[f64]| -> neurohybrid_solve::Result<f64> {
//!     let mut pr = problem.clone();
//!     pr.params_mut().copy_from_slice(p);
//!     let sol = solve(&pr, &Tsit5, &ctrl, &save)?;
//!     Ok(sol.ys().iter().zip(loss.targets()).map(|(y, t)| (y - t).powi(2)).sum())
//! };
//! let (mut a, mut b) = (p.clone(), p.clone());
//! a[4] += 1e-6;
//! b[4] -= 1e-6;
//! let fd = (value(&a)? - value(&b)?) / 2e-6;
//! assert!((g.dl_dp[4] - fd).abs() < 1e-5 * fd.abs().max(1.0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
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
//!
//! # Sparse identification of learned terms
//!
//! A trained UDE network is turned into equations (the second step of Rackauckas et al. 2020)
//! by sparse regression of its output on a [`PolynomialLibrary`]: [`Stlsq`] (SINDy's
//! sequentially thresholded least squares, with normalized columns, a relative threshold and a
//! ridge in the thresholding fits), [`Stlsq::path`] over a threshold sweep, [`pareto_front`]
//! (the best support of each size) and [`bic`] / [`aicc`] to choose; [`PolynomialRhs`] is the recovered
//! model as an ODE system whose coefficients calibrate with [`OdeResiduals`]. Why:
//! `docs/decisions/0020-sparse-regression.md`.
//!
//! ```
//! use neurohybrid_hybrid::{PolynomialLibrary, Stlsq};
//!
//! // y' = 2 − 0.5·x·y sampled at 20 states, with a little noise.
//! let lib = PolynomialLibrary::new(2, 2)?; // [1, x, y, x², xy, y²]
//! let states: Vec<f64> =
//!     (0..20).flat_map(|k| [0.1 * k as f64, 1.0 + (0.3 * k as f64).sin()]).collect();
//! let noise = |k: usize| 1e-4 * ((k * 7919 % 13) as f64 - 6.0);
//! let target: Vec<f64> =
//!     states.chunks(2).enumerate().map(|(k, u)| 2.0 - 0.5 * u[0] * u[1] + noise(k)).collect();
//! let fit = Stlsq::new(0.05).fit(&lib.matrix(&states)?, lib.n_terms(), &target)?;
//! assert_eq!(fit.support, [0, 4]);
//! assert!((fit.coefficients[4] + 0.5).abs() < 1e-3);
//! assert_eq!(lib.names(&["x", "y"])?[4], "x*y");
//! # Ok::<(), neurohybrid_hybrid::HybridError>(())
//! ```
#![warn(missing_docs)]

mod calibrate;
mod compose;
mod corrector;
mod data;
mod error;
mod loss;
mod map;
mod network;
mod neural_ode;
mod sitl;
mod sparse;
mod train;

pub use calibrate::{
    Calibration, Calibrator, Noise, OdeResiduals, Prior, ResidualModel, TangentSystem, Transform,
};
pub use compose::{Parallel, Readout, Series};
pub use corrector::{StencilBoundary, StencilCorrector};
pub use data::{Dataset, Trajectory};
pub use error::{HybridError, Result};
pub use loss::{GaussianNll, Mse, Regularizer, RelativeL2, SoftDice, TrajectoryLoss};
pub use map::{DiffMap, TapeMap};
pub use network::{NetworkRhs, Parameterized};
pub use neural_ode::NeuralOde;
pub use sitl::SolverInTheLoop;
pub use sparse::{PolynomialLibrary, PolynomialRhs, SparseFit, Stlsq, aicc, bic, pareto_front};
pub use train::{
    Batch, CHECKPOINT_MAGIC, CheckpointConfig, CheckpointInfo, Control, Curriculum, EarlyStopping,
    Objective, OdeObjective, OptimizerState, Progress, Shooting, TrainOptimizer, TrainReport,
    Trainer, read_checkpoint,
};

/// The README's example, compiled and run as a doctest so it cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;
