//! # neurohybrid-testkit
//!
//! A public catalogue of reference problems with reference solutions and their sources, reused
//! by tests, benchmarks, the `validate` suites and downstream users — plus a convergence-order
//! estimator. A dev-dependency only: no product crate depends on it.
//!
//! | constructor | system | reference |
//! |---|---|---|
//! | [`exponential_decay`] | [`ExponentialDecay`] | exact |
//! | [`harmonic_oscillator`] | [`HarmonicOscillator`] | exact |
//! | [`logistic`] | [`Logistic`] | exact |
//! | [`lotka_volterra`] | [`LotkaVolterra`] | tight solve (scipy DOP853, 1e-14) |
//! | [`fisher_wave`] | [`FisherWave`] (method of lines) | exact PDE wave (Ablowitz–Zeppetella) |
//! | [`robertson`] | [`Robertson`] (stiff) | Hairer–Wanner / Mazzia test set |
//! | [`van_der_pol_stiff`] | [`VanDerPol`], μ = 1000 (stiff) | Mazzia test set |
//!
//! Every system implements `OdeSystem`, `Vjp`, `Jvp` and `Jacobian` with hand-written
//! derivatives, so the same problems serve explicit, implicit and sensitivity tests.
//!
//! ```
//! use neurohybrid_testkit::{estimate_order, harmonic_oscillator};
//! use neurohybrid_system::OdeSystem;
//!
//! let rp = harmonic_oscillator();
//! let mut y = [0.0; 2];
//! rp.exact(std::f64::consts::PI, &mut y);
//! assert!((y[0] + 1.0).abs() < 1e-15); // half a period
//! assert_eq!(rp.system.n_states(), 2);
//!
//! // Explicit Euler on y' = −y at t = 1: error ≈ h/2 · e⁻¹, observed order 1.
//! let hs = [0.1, 0.05, 0.025];
//! let errs: Vec<f64> = hs
//!     .iter()
//!     .map(|&h: &f64| ((1.0 - h).powf(1.0 / h) - (-1.0f64).exp()).abs())
//!     .collect();
//! let fit = estimate_order(&hs, &errs)?;
//! assert!((fit.slope - 1.0).abs() < 0.1);
//! # Ok::<(), neurohybrid_testkit::TestkitError>(())
//! ```
#![warn(missing_docs)]

mod catalogue;
mod fisher_kpp;
mod gradcheck;
mod order;
mod oscillator_bank;
mod problems;

pub use catalogue::{
    RefPoint, RefProblem, exponential_decay, fisher_wave, harmonic_oscillator, logistic,
    lotka_volterra, robertson, van_der_pol_stiff,
};
pub use fisher_kpp::FisherKpp;
pub use gradcheck::{central_fd, rel_err};
pub use order::{PowerFit, Result, TestkitError, estimate_order, log_log_fit, max_abs_diff};
pub use oscillator_bank::OscillatorBank;
pub use problems::{
    ExactSolution, ExponentialDecay, FisherWave, HarmonicOscillator, Logistic, LotkaVolterra,
    Robertson, VanDerPol,
};
