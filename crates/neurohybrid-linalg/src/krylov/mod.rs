//! Krylov methods (GMRES, CG) on matrix-free operators, with preconditioners.

mod adaptor;
mod cg;
mod gmres;
mod operator;
mod precond;

pub use adaptor::{KrylovMethod, KrylovSolver, PreconditionerKind};
pub use cg::Cg;
pub use gmres::Gmres;
pub use operator::{IdentityPreconditioner, LinearOperator, Preconditioner, Transposed};
pub use precond::{Ilu0, Jacobi};

use crate::error::{LinalgError, Result};

/// Stopping rule and limits of a Krylov solve: stop when `‖b − A x‖₂ ≤ max(rtol·‖b‖₂, atol)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KrylovConfig {
    /// Relative tolerance on the residual 2-norm (dimensionless).
    pub rtol: f64,
    /// Absolute tolerance on the residual 2-norm (units of `b`).
    pub atol: f64,
    /// Maximum total iterations (matrix-vector products with `A`, not counting residual checks).
    pub max_iters: usize,
    /// GMRES restart length `m` (Krylov basis size); ignored by CG.
    pub restart: usize,
}

impl Default for KrylovConfig {
    fn default() -> Self {
        Self { rtol: 1e-10, atol: 0.0, max_iters: 1000, restart: 30 }
    }
}

impl KrylovConfig {
    /// Sets `rtol`.
    pub fn rtol(mut self, rtol: f64) -> Self {
        self.rtol = rtol;
        self
    }
    /// Sets `atol`.
    pub fn atol(mut self, atol: f64) -> Self {
        self.atol = atol;
        self
    }
    /// Sets `max_iters`.
    pub fn max_iters(mut self, max_iters: usize) -> Self {
        self.max_iters = max_iters;
        self
    }
    /// Sets the GMRES restart length.
    pub fn restart(mut self, restart: usize) -> Self {
        self.restart = restart;
        self
    }

    /// Rejects negative or non-finite tolerances and a zero restart length.
    pub fn validate(&self) -> Result<()> {
        let bad = |what| Err(LinalgError::InvalidConfig { what });
        if !(self.rtol >= 0.0 && self.rtol.is_finite()) {
            return bad("Krylov rtol must be finite and >= 0");
        }
        if !(self.atol >= 0.0 && self.atol.is_finite()) {
            return bad("Krylov atol must be finite and >= 0");
        }
        if self.restart == 0 {
            return bad("GMRES restart length must be >= 1");
        }
        Ok(())
    }

    pub(crate) fn threshold(&self, b_norm: f64) -> f64 {
        (self.rtol * b_norm).max(self.atol)
    }
}

/// How a Krylov solve ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KrylovStatus {
    /// The residual met the tolerance.
    Converged,
    /// `max_iters` was reached first.
    MaxIterations,
    /// The method cannot continue (GMRES: singular least-squares system; CG: operator or
    /// preconditioner not positive definite).
    Breakdown,
    /// A NaN or infinity appeared (from the operator or the preconditioner).
    NonFinite,
}

/// Result of a Krylov solve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KrylovOutcome {
    /// How it ended.
    pub status: KrylovStatus,
    /// Iterations performed.
    pub iterations: usize,
    /// Final residual 2-norm `‖b − A x‖₂`, recomputed from `x` (not the recurrence's
    /// estimate) for both methods' convergence decisions in GMRES, and the recursively updated
    /// residual in CG.
    pub residual_norm: f64,
}

impl KrylovOutcome {
    pub(crate) fn new(status: KrylovStatus, iterations: usize, residual_norm: f64) -> Self {
        Self { status, iterations, residual_norm }
    }

    /// Whether the solve converged.
    pub fn is_converged(&self) -> bool {
        self.status == KrylovStatus::Converged
    }
}
