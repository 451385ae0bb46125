//! # neurohybrid-solve-implicit
//!
//! Stiff steppers for `neurohybrid-solve`'s loop. Every method here implements
//! `Stepper<S>` for `S: OdeSystem + Jacobian` and solves its linear systems with the shared
//! iteration matrix `W = I − hγJ` of [`wmatrix`]: dense LU for small systems, sparse LU with a
//! symbolic factorization reused for the whole solve otherwise, Jacobians reused across steps
//! until Newton slows down (Hairer & Wanner II, §IV.8).
//!
//! | method | kind | order | error est. | dense output |
//! |---|---|---|---|---|
//! | [`Bdf`] | variable-order NDF/BDF, quasi-constant step (Shampine & Reichelt 1997) | 1–5 | predictor–corrector | interpolating polynomial, degree ≤ 5 |
//! | [`Rodas4`] | Rosenbrock, stiffly accurate, L-stable (Hairer & Wanner II §IV.7) | 4 | embedded 3 | Rodas' own, degree 3 |
//! | [`Rodas5P`] | Rosenbrock, stiffly accurate, L-stable (Steinebach 2023) | 5 | embedded 4 | its own, degree 4 |
//! | [`ImplicitEuler`], [`TrBdf2`], [`Esdirk4`], [`Kvaerno5`], [`Sdirk`] | (E)SDIRK | 1–5 | embedded | Hermite |
//! | [`KenCarp4`], [`Ark`] | IMEX additive RK on `Split` systems | 4 | embedded | Hermite |
//!
//! Failures during a solve are statuses, not panics: a singular `W` or a diverging Newton
//! iteration makes the step fail, the loop shrinks `h`, and a run that cannot recover ends
//! with `Status::SingularMatrix` or `Status::NewtonDivergence`.
//!
//! Implicit steppers need the error weights `atol + rtol·|y|` for Newton's stopping test (and
//! BDF for its order selection), so they carry [`Tolerances`]; give them the controller's
//! ([`Tolerances::from_controller`]). BDF chooses its own step sizes and orders; the controller
//! still accepts or rejects on the same error vector. Design notes:
//! `docs/decisions/0007-bdf-and-rosenbrock.md`.
//!
//! ```
//! use neurohybrid_solve::{PiController, Problem, SaveAt, solve};
//! use neurohybrid_solve_implicit::{Bdf, Rodas4, Tolerances};
//! use neurohybrid_system::{CsrMatrix, Jacobian, OdeSystem, SparsityPattern, dense_pattern};
//!
//! /// Robertson's stiff kinetics with its analytic Jacobian.
//! struct Robertson(SparsityPattern);
//! impl OdeSystem for Robertson {
//!     fn n_states(&self) -> usize { 3 }
//!     fn n_params(&self) -> usize { 0 }
//!     fn rhs(&self, _t: f64, y: &[f64], _p: &[f64], dy: &mut [f64]) {
//!         dy[0] = -0.04 * y[0] + 1e4 * y[1] * y[2];
//!         dy[2] = 3e7 * y[1] * y[1];
//!         dy[1] = -dy[0] - dy[2];
//!     }
//! }
//! impl Jacobian for Robertson {
//!     fn sparsity(&self) -> &SparsityPattern { &self.0 }
//!     fn jacobian(&self, _t: f64, y: &[f64], _p: &[f64], out: &mut CsrMatrix) {
//!         let (a, b, c) = (1e4 * y[2], 1e4 * y[1], 6e7 * y[1]);
//!         out.values_mut().copy_from_slice(&[-0.04, a, b, 0.04, -a - c, -b, 0.0, c, 0.0]);
//!     }
//! }
//!
//! let problem = Problem::new(Robertson(dense_pattern(3)), [1.0, 0.0, 0.0], [], (0.0, 40.0));
//! let controller = PiController::new(1e-8, 1e-14);
//! let bdf = Bdf::new(Tolerances::from_controller(&controller));
//! let reference = [7.158270687194050e-01, 9.185534764557780e-06, 2.841637457458298e-01];
//! for sol in [
//!     solve(&problem, &bdf, &controller, &SaveAt::Final)?,
//!     solve(&problem, &Rodas4::new().autonomous(), &controller, &SaveAt::Final)?,
//! ] {
//!     assert!(sol.is_success());
//!     let y = sol.last().unwrap();
//!     assert!(((y[0] - reference[0]) / reference[0]).abs() < 1e-6);
//!     assert!(sol.stats().factorizations < sol.stats().rhs_evals);
//! }
//! # Ok::<(), neurohybrid_solve::SolveError>(())
//! ```
//!
//! The shared module can also be used directly, e.g. for one implicit Euler step through the
//! stage-Newton helper:
//!
//! ```
//! use neurohybrid_solve::Stats;
//! use neurohybrid_solve_implicit::{Tolerances, WConfig, WMatrix};
//! use neurohybrid_system::{CsrMatrix, Jacobian, OdeSystem, SparsityPattern, dense_pattern};
//!
//! /// y' = −50 (y − cos t): stiff relaxation onto cos t.
//! struct Relax(SparsityPattern);
//! impl OdeSystem for Relax {
//!     fn n_states(&self) -> usize { 1 }
//!     fn n_params(&self) -> usize { 0 }
//!     fn rhs(&self, t: f64, y: &[f64], _p: &[f64], dy: &mut [f64]) { dy[0] = -50.0 * (y[0] - t.cos()); }
//! }
//! impl Jacobian for Relax {
//!     fn sparsity(&self) -> &SparsityPattern { &self.0 }
//!     fn jacobian(&self, _t: f64, _y: &[f64], _p: &[f64], out: &mut CsrMatrix) {
//!         out.values_mut()[0] = -50.0;
//!     }
//! }
//!
//! // One implicit Euler step z = y0 + h f(t1, z) through the shared stage-Newton helper.
//! let sys = Relax(dense_pattern(1));
//! let mut w = WMatrix::new(&sys, WConfig::default())?;
//! let mut stats = Stats::default();
//! let (y0, h) = ([1.0], 0.1);
//! let mut scale = [0.0];
//! Tolerances::new(1e-8, 1e-10).scale(&y0, &mut scale);
//! let mut f = [0.0];
//! let mut residual = |z: &[f64], out: &mut [f64]| {
//!     sys.rhs(h, z, &[], &mut f);
//!     out[0] = z[0] - y0[0] - h * f[0];
//! };
//! let mut z = y0;
//! let solved = w.solve_stage(&sys, &[], 0.0, &y0, h, &mut residual, &mut z, &scale, &mut stats);
//! assert!(solved.is_ok());
//! let exact = (1.0 + 5.0 * 0.1f64.cos()) / 6.0; // linear: one Newton step is exact
//! assert!((z[0] - exact).abs() < 1e-12);
//! assert_eq!((stats.jacobian_evals, stats.factorizations), (1, 1));
//! # Ok::<(), neurohybrid_solve_implicit::ImplicitError>(())
//! ```
#![warn(missing_docs)]

mod bdf;
mod error;
mod imex;
mod rodas5p;
mod rosenbrock;
mod sdirk;
mod step_vjp;
pub mod tableaus;
pub mod wmatrix;

pub use bdf::{Bdf, BdfState};
pub use error::{ImplicitError, Result};
pub use imex::{Ark, ImexState, KenCarp4};
pub use rodas5p::{Rodas5P, Rodas5PState};
pub use rosenbrock::{Rodas4, RosenbrockState, TimeDerivative};
pub use sdirk::{DirkConfig, Esdirk4, ImplicitEuler, Kvaerno5, Sdirk, SdirkState, TrBdf2};
pub use step_vjp::{BdfVjpWork, DirkVjpWork, RosenbrockVjpWork};
pub use tableaus::{ArkTableau, DirkTableau, RosenbrockTableau};
pub use wmatrix::{FactorKind, KrylovW, LinearBackend, StageSolve, Tolerances, WConfig, WMatrix};

/// The README's example, compiled and run as a doctest so it cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;
