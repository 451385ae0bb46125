//! Simplified Newton iteration for the stage equations of implicit ODE solvers.
//!
//! Implicit Runge–Kutta, SDIRK and BDF steps all solve a nonlinear system `F(z) = 0` whose
//! Jacobian is approximated by an *iteration matrix* `W ≈ ∂F/∂z` (e.g. `W = M − hγJ`). The
//! iteration
//!
//! ```text
//! W Δₖ = −F(zₖ),   zₖ₊₁ = zₖ + Δₖ
//! ```
//!
//! uses one factorization of `W` for every iteration, every stage and — as long as it keeps
//! converging — every step ("simplified Newton"). The convergence test follows Hairer & Wanner,
//! *Solving Ordinary Differential Equations II*, 2nd ed., §IV.8 (eqs. 8.10–8.13): with the
//! observed contraction rate `θₖ = ‖Δₖ‖/‖Δₖ₋₁‖` and `ηₖ = θₖ/(1 − θₖ)`, the error after the
//! update is bounded by `ηₖ‖Δₖ‖`, so the iteration stops when `ηₖ‖Δₖ‖ ≤ κ·tol`. It gives up
//! as soon as `θₖ ≥ 1` (divergence) or when the rate predicts that the remaining iterations
//! cannot reach the tolerance, `θₖ^(kmax−k)/(1 − θₖ)·‖Δₖ‖ > κ·tol` (eq. 8.13, `k` counted
//! from 0) — the caller
//! should then refresh `W` or shrink `h`, not waste more iterations.

use crate::error::{LinalgError, Result, check_len};
use crate::solver::LinearSolver;

/// Configuration of the simplified Newton iteration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Newton {
    /// Maximum iterations per solve (Hairer–Wanner's RADAU5 uses 7).
    pub max_iters: usize,
    /// Safety factor `κ` on the tolerance, `0.01 ≤ κ ≤ 0.1` recommended (HW §IV.8); the
    /// Newton error should be well below the local truncation error the step controller sees.
    pub kappa: f64,
    /// Tolerance in the weighted RMS norm given by the caller's `scale` (with the usual
    /// ODE scale `atol + rtol·|y|`, `tol = 1` means "at the integration tolerance").
    pub tol: f64,
}

impl Default for Newton {
    fn default() -> Self {
        Self { max_iters: 7, kappa: 0.03, tol: 1.0 }
    }
}

impl Newton {
    /// Sets `max_iters`.
    pub fn max_iters(mut self, max_iters: usize) -> Self {
        self.max_iters = max_iters;
        self
    }
    /// Sets `kappa`.
    pub fn kappa(mut self, kappa: f64) -> Self {
        self.kappa = kappa;
        self
    }
    /// Sets `tol`.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// Rejects `max_iters = 0` and non-positive or non-finite `kappa`, `tol`.
    pub fn validate(&self) -> Result<()> {
        let bad = |what| Err(LinalgError::InvalidConfig { what });
        if self.max_iters == 0 {
            return bad("Newton max_iters must be >= 1");
        }
        if !(self.kappa > 0.0 && self.kappa.is_finite()) {
            return bad("Newton kappa must be finite and > 0");
        }
        if !(self.tol > 0.0 && self.tol.is_finite()) {
            return bad("Newton tol must be finite and > 0");
        }
        Ok(())
    }
}

/// The nonlinear function `F(z)` whose root Newton seeks. Closures `FnMut(&[f64], &mut [f64])`
/// implement it.
pub trait Residual {
    /// Writes `F(z)` into `out` (same length as `z`).
    fn residual(&mut self, z: &[f64], out: &mut [f64]);
}

impl<F: FnMut(&[f64], &mut [f64])> Residual for F {
    fn residual(&mut self, z: &[f64], out: &mut [f64]) {
        self(z, out);
    }
}

/// How a Newton solve ended.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum NewtonStatus {
    /// `η‖Δ‖ ≤ κ·tol` after `iters` iterations.
    Converged {
        /// Iterations (linear solves) performed.
        iters: usize,
    },
    /// The contraction rate reached `θ ≥ 1`: the iteration matrix is too far from the Jacobian
    /// (or `h` too large). Refresh `W` or reduce the step.
    Diverged {
        /// The offending rate.
        theta: f64,
    },
    /// `θ < 1`, but too slow to reach the tolerance within `max_iters` (HW eq. 8.13).
    SlowConvergence {
        /// The observed rate.
        theta: f64,
    },
    /// `max_iters` iterations without meeting the tolerance.
    MaxIterations,
    /// `F(z)` or the Newton increment contained NaN or infinity.
    NonFinite,
    /// The linear solve with the iteration matrix failed (for example a Krylov solver that did
    /// not converge).
    LinearSolveFailed(LinalgError),
}

impl NewtonStatus {
    /// Whether the iteration converged.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Converged { .. })
    }
}

/// Result of [`NewtonSolver::solve`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewtonOutcome {
    /// How it ended.
    pub status: NewtonStatus,
    /// Iterations (linear solves) performed.
    pub iters: usize,
    /// The last observed contraction rate `θ` (`None` if fewer than two iterations ran). The
    /// ODE solver uses it to decide whether to refresh the Jacobian (e.g. RADAU5 refreshes
    /// when `θ > 0.001`).
    pub theta: Option<f64>,
    /// Weighted RMS norm of the last increment `‖Δ‖`.
    pub last_increment_norm: f64,
}

/// Simplified Newton solver with reusable workspace and memory of the last convergence rate.
///
/// The rate `η` from the previous solve seeds the first iteration's stopping test
/// (`η₀ = max(η_old, ε)^0.8`, HW §IV.8), so a well-converging step sequence can stop after a
/// single iteration. A solve that does not converge forgets the rate; call
/// [`NewtonSolver::reset_rate`] yourself after refactorizing `W` with a new `h`.
#[derive(Debug, Clone)]
pub struct NewtonSolver {
    config: Newton,
    f: Vec<f64>,
    eta: f64,
}

impl NewtonSolver {
    /// A solver with the given configuration.
    pub fn new(config: Newton) -> Result<Self> {
        config.validate()?;
        Ok(Self { config, f: Vec::new(), eta: 1.0 })
    }

    /// The configuration.
    pub fn config(&self) -> &Newton {
        &self.config
    }

    /// Forgets the remembered rate (the next solve cannot stop after one iteration).
    pub fn reset_rate(&mut self) {
        self.eta = 1.0;
    }

    /// Solves `F(z) = 0` from the initial guess in `z` (overwritten with the iterate), using
    /// `w`, a solver holding a factorization of the iteration matrix. `scale` gives the
    /// positive weights of the RMS norm `‖v‖ = sqrt(mean((vᵢ/scaleᵢ)²))`.
    ///
    /// Returns `Err` only for misuse (lengths, a non-factorized `w`, a non-positive scale);
    /// everything that can happen to a started iteration is a [`NewtonStatus`].
    pub fn solve<R, S>(
        &mut self,
        residual: &mut R,
        w: &mut S,
        z: &mut [f64],
        scale: &[f64],
    ) -> Result<NewtonOutcome>
    where
        R: Residual + ?Sized,
        S: LinearSolver + ?Sized,
    {
        if !w.is_factorized() {
            return Err(LinalgError::NotFactorized);
        }
        check_len("Newton iterate", w.dim(), z.len())?;
        // Generic shell, non-generic core: the iteration is compiled once.
        self.solve_inner(
            &mut |z: &[f64], out: &mut [f64]| residual.residual(z, out),
            &mut |b: &mut [f64]| w.solve_in_place(b),
            z,
            scale,
        )
    }

    fn solve_inner(
        &mut self,
        residual: &mut dyn FnMut(&[f64], &mut [f64]),
        solve: &mut dyn FnMut(&mut [f64]) -> Result<()>,
        z: &mut [f64],
        scale: &[f64],
    ) -> Result<NewtonOutcome> {
        let n = z.len();
        check_len("Newton scale", n, scale.len())?;
        if let Some(index) = scale.iter().position(|&s| !(s > 0.0 && s.is_finite())) {
            return Err(LinalgError::NonFinite {
                what: "Newton scale (must be finite and > 0)",
                index,
            });
        }
        self.f.resize(n, 0.0);
        let norm = |v: &[f64]| -> f64 {
            if n == 0 {
                return 0.0;
            }
            (v.iter().zip(scale).map(|(x, s)| (x / s).powi(2)).sum::<f64>() / n as f64).sqrt()
        };
        let Newton { max_iters, kappa, tol } = self.config;
        let target = kappa * tol;
        let mut eta = self.eta.max(f64::EPSILON).powf(0.8);
        // Only a converged solve leaves a rate behind; a failed one leaves the safe default.
        self.eta = 1.0;
        let mut prev_norm = f64::NAN;
        let mut theta = None;
        let outcome = |status, iters, theta, last| NewtonOutcome {
            status,
            iters,
            theta,
            last_increment_norm: last,
        };
        for k in 0..max_iters {
            residual(z, &mut self.f);
            if self.f.iter().any(|v| !v.is_finite()) {
                return Ok(outcome(NewtonStatus::NonFinite, k, theta, prev_norm));
            }
            self.f.iter_mut().for_each(|v| *v = -*v);
            if let Err(e) = solve(&mut self.f) {
                return Ok(outcome(NewtonStatus::LinearSolveFailed(e), k, theta, prev_norm));
            }
            let dz_norm = norm(&self.f);
            if !dz_norm.is_finite() {
                return Ok(outcome(NewtonStatus::NonFinite, k + 1, theta, dz_norm));
            }
            if k > 0 {
                let th = dz_norm / prev_norm;
                theta = Some(th);
                if th >= 1.0 {
                    return Ok(outcome(
                        NewtonStatus::Diverged { theta: th },
                        k + 1,
                        theta,
                        dz_norm,
                    ));
                }
                eta = th / (1.0 - th);
            }
            for (zi, di) in z.iter_mut().zip(&self.f) {
                *zi += di;
            }
            // An exactly zero increment has converged regardless of the rate estimate.
            if eta * dz_norm <= target || dz_norm == 0.0 {
                self.eta = eta;
                return Ok(outcome(
                    NewtonStatus::Converged { iters: k + 1 },
                    k + 1,
                    theta,
                    dz_norm,
                ));
            }
            // HW eq. 8.13: even at this rate the remaining iterations cannot get there. After
            // the increment Δₖ (k from 0) the error is ≈ θ/(1−θ)‖Δₖ‖, and each of the
            // `max_iters − k − 1` iterations left multiplies it by θ: exponent `max_iters − k`.
            let remaining = max_iters - 1 - k;
            if let Some(th) = theta.filter(|_| k > 0 && remaining > 0) {
                let exponent = i32::try_from(max_iters - k).unwrap_or(i32::MAX);
                if th.powi(exponent) / (1.0 - th) * dz_norm > target {
                    return Ok(outcome(
                        NewtonStatus::SlowConvergence { theta: th },
                        k + 1,
                        theta,
                        dz_norm,
                    ));
                }
            }
            prev_norm = dz_norm;
        }
        Ok(outcome(NewtonStatus::MaxIterations, max_iters, theta, prev_norm))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DenseLu;

    fn scalar_lu(w: f64) -> DenseLu {
        let mut lu = DenseLu::new(1);
        lu.factorize(&faer::mat![[w]]).unwrap();
        lu
    }

    #[test]
    fn remembered_rate_lets_the_next_solve_stop_after_one_iteration() {
        // F(z) = z − c with exact W = 1: converges in two iterations (no rate on the first),
        // leaving η ≈ 0 behind, so an already-solved next call stops after one.
        let mut lu = scalar_lu(1.0);
        let mut newton = NewtonSolver::new(Newton::default().tol(1e-12)).unwrap();
        let mut f = |z: &[f64], out: &mut [f64]| out[0] = z[0] - 3.0;
        let mut z = [0.0];
        let first = newton.solve(&mut f, &mut lu, &mut z, &[1.0]).unwrap();
        assert_eq!(first.status, NewtonStatus::Converged { iters: 2 });
        let again = newton.solve(&mut f, &mut lu, &mut [3.0 + 1e-15], &[1.0]).unwrap();
        assert_eq!(again.status, NewtonStatus::Converged { iters: 1 });
        newton.reset_rate();
        let reset = newton.solve(&mut f, &mut lu, &mut [3.0 + 1e-9], &[1.0]).unwrap();
        assert_eq!(reset.status, NewtonStatus::Converged { iters: 2 });
    }

    #[test]
    fn configuration_is_validated() {
        assert!(Newton::default().validate().is_ok());
        for bad in [
            Newton::default().max_iters(0),
            Newton::default().kappa(-1.0),
            Newton::default().tol(f64::NAN),
        ] {
            assert!(matches!(NewtonSolver::new(bad), Err(LinalgError::InvalidConfig { .. })));
        }
    }
}
