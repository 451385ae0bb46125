//! # neurohybrid-solve-explicit
//!
//! Explicit Runge–Kutta steppers from Butcher tableaus. One generic stepper ([`ExplicitRk`])
//! runs any [`ButcherTableau`]; the method structs fix the tableau:
//!
//! | method | order | error estimate | dense output | FSAL |
//! |---|---|---|---|---|
//! | [`Euler`] | 1 | — | cubic Hermite | no |
//! | [`Heun`] | 2 | — | cubic Hermite | no |
//! | [`Rk4`] | 4 | — | cubic Hermite | no |
//! | [`Bosh3`] | 3 | 2 | cubic Hermite (free) | yes |
//! | [`Dopri5`] | 5 | 4 | Shampine's order 4 | yes |
//! | [`Tsit5`] | 5 | 4 | Tsitouras' order 4 | yes |
//!
//! Methods without an error estimate run under `ConstantStep` only; asking an adaptive
//! controller to drive them is a `SolveError::MissingCapability`. Adding a method means adding a
//! tableau (with its coefficient source) in [`tableau`].
//!
//! ```
//! use neurohybrid_solve::{PiController, Problem, SaveAt, solve};
//! use neurohybrid_solve_explicit::Tsit5;
//! use neurohybrid_system::OdeSystem;
//!
//! /// Harmonic oscillator x'' = −x.
//! struct Oscillator;
//! impl OdeSystem for Oscillator {
//!     fn n_states(&self) -> usize { 2 }
//!     fn n_params(&self) -> usize { 0 }
//!     fn rhs(&self, _t: f64, y: &[f64], _p: &[f64], dy: &mut [f64]) {
//!         dy[0] = y[1];
//!         dy[1] = -y[0];
//!     }
//! }
//!
//! let problem = Problem::new(Oscillator, [1.0, 0.0], [], (0.0, 10.0));
//! let sol = solve(&problem, &Tsit5, &PiController::new(1e-8, 1e-8), &SaveAt::Dense)?;
//! assert!(sol.is_success());
//! let mut y = [0.0; 2];
//! sol.interpolate(3.3, &mut y)?; // Tsit5's own continuous extension
//! assert!((y[0] - 3.3f64.cos()).abs() < 1e-6);
//! # Ok::<(), neurohybrid_solve::SolveError>(())
//! ```
#![warn(missing_docs)]

mod methods;
mod rk;
mod step_vjp;
pub mod tableau;

pub use methods::{Bosh3, Dopri5, Euler, ExplicitRk, Heun, Rk4, Tsit5};
pub use rk::RkState;
pub use step_vjp::RkVjpWork;
pub use tableau::ButcherTableau;
