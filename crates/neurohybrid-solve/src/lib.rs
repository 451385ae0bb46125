//! # neurohybrid-solve
//!
//! The solve loop, following diffrax's separation of concerns:
//!
//! | object | role |
//! |---|---|
//! | [`Problem`] | what is integrated: an `OdeSystem`, `y0`, `p`, `(t0, t1)`, [`Impulse`]s |
//! | [`Stepper`] | how one step is taken (method families live in `neurohybrid-solve-explicit` / `-implicit`) |
//! | [`StepSizeController`] | how steps are chosen: [`PiController`], [`ConstantStep`] |
//! | [`SaveAt`] | what is returned: given times, every step, dense output, or the final state |
//! | [`solve`] | the only function that knows them all |
//!
//! [`solve`] returns `Err` only for misuse caught before the first step. A run that starts and
//! then fails returns a [`Solution`] whose [`Status`] says why, with the trajectory up to there
//! and [`Stats`]. Integration backwards in time (`t1 < t0`) works the same way.
//!
//! Steppers hold configuration only; their working memory comes from [`Stepper::init`] and is
//! reused, so steps do not allocate. See [`Stepper`] for the contract new method families
//! (implicit, BDF) implement, and `docs/decisions/0004-solve-core.md` for the reasons.
//!
//! ```
//! use neurohybrid_solve::{
//!     ConstantStep, Problem, SaveAt, Stats, Step, StepOutcome, StepState, Stepper, solve,
//! };
//! use neurohybrid_system::OdeSystem;
//!
//! /// y' = −p₀ y
//! struct Decay;
//! impl OdeSystem for Decay {
//!     fn n_states(&self) -> usize { 1 }
//!     fn n_params(&self) -> usize { 1 }
//!     fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) { dy[0] = -p[0] * y[0]; }
//! }
//!
//! /// Explicit Euler, written against the `Stepper` contract (real methods live in
//! /// `neurohybrid-solve-explicit`).
//! struct Euler;
//! struct EulerState { y: Vec<f64>, y_new: Vec<f64>, f: Vec<f64>, err: Vec<f64> }
//! impl StepState for EulerState {
//!     fn y(&self) -> &[f64] { &self.y }
//!     fn y_mut(&mut self) -> &mut [f64] { &mut self.y }
//!     fn y_proposed(&self) -> &[f64] { &self.y_new }
//!     fn error_estimate(&self) -> &[f64] { &self.err }
//! }
//! impl<S: OdeSystem> Stepper<S> for Euler {
//!     type State = EulerState;
//!     fn name(&self) -> &str { "Euler" }
//!     fn order(&self) -> usize { 1 }
//!     fn init(&self, s: &S, _p: &[f64], _t0: f64, y0: &[f64], _st: &mut Stats) -> EulerState {
//!         let n = s.n_states();
//!         EulerState { y: y0.to_vec(), y_new: vec![0.0; n], f: vec![0.0; n], err: vec![0.0; n] }
//!     }
//!     fn step(&self, s: &S, p: &[f64], st: &mut EulerState, step: Step, stats: &mut Stats)
//!         -> StepOutcome {
//!         s.rhs(step.t, &st.y, p, &mut st.f);
//!         stats.rhs_evals += 1;
//!         for i in 0..st.y.len() { st.y_new[i] = st.y[i] + step.h * st.f[i]; }
//!         StepOutcome::Computed
//!     }
//!     fn dense(&self, _s: &S, _p: &[f64], st: &mut EulerState, _step: Step, c: &mut [f64],
//!              _stats: &mut Stats) {
//!         // linear interpolation, written as a cubic in power basis
//!         let n = st.y.len();
//!         c.fill(0.0);
//!         c[..n].copy_from_slice(&st.y);
//!         for i in 0..n { c[n + i] = st.y_new[i] - st.y[i]; }
//!     }
//!     fn accept(&self, _s: &S, _p: &[f64], st: &mut EulerState, _t: f64, h_next: f64,
//!               _stats: &mut Stats) -> f64 {
//!         std::mem::swap(&mut st.y, &mut st.y_new);
//!         h_next
//!     }
//!     fn restart(&self, _s: &S, _p: &[f64], _st: &mut EulerState, _t: f64, _stats: &mut Stats) {}
//! }
//!
//! let problem = Problem::new(Decay, [1.0], [2.0], (0.0, 1.0));
//! let sol = solve(&problem, &Euler, &ConstantStep::with_steps((0.0, 1.0), 1000),
//!                 &SaveAt::Times(vec![0.5, 1.0]))?;
//! assert!(sol.is_success());
//! assert_eq!(sol.stats().accepted_steps, 1000);
//! assert!((sol.y(1)[0] - (-2.0f64).exp()).abs() < 1e-3);
//! # Ok::<(), neurohybrid_solve::SolveError>(())
//! ```
#![warn(missing_docs)]

mod controller;
mod dense;
mod error;
mod problem;
mod save;
pub mod sensitivity;
mod solution;
mod solve;
mod stats;
mod stepper;

pub use controller::{
    Atol, ConstantStep, Decision, InitialStep, PiController, PiState, RhsFn, StepSizeController,
    weighted_rms_norm,
};
pub use dense::{DenseOutput, eval_power_basis, hermite_coefficients};
pub use error::{Result, SolveError};
pub use problem::{Impulse, Problem, Scale, ScheduledImpulse};
pub use save::SaveAt;
pub use solution::Solution;
pub use solve::solve;
pub use stats::{Stats, Status};
pub use stepper::{Step, StepFailure, StepOutcome, StepState, Stepper};
