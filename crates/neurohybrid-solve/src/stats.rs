//! Work counters and the outcome of a run.

/// Work done by a solve. Steppers increment the evaluation counters; the solve loop counts
/// steps. Implicit steppers and sensitivity methods fill the JVP/VJP/Jacobian/factorization
/// counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Accepted steps.
    pub accepted_steps: usize,
    /// Steps rejected by the error controller (including non-finite trial results).
    pub rejected_steps: usize,
    /// Steps the stepper could not compute (e.g. Newton failed), retried with a smaller h.
    pub failed_steps: usize,
    /// Right-hand side evaluations (including the initial-step heuristic).
    pub rhs_evals: usize,
    /// Jacobian–vector products.
    pub jvp_evals: usize,
    /// Vector–Jacobian products.
    pub vjp_evals: usize,
    /// Jacobian evaluations.
    pub jacobian_evals: usize,
    /// Matrix factorizations.
    pub factorizations: usize,
    /// Linear solves with a factorization.
    pub linear_solves: usize,
    /// Iterations of the Krylov (CG/GMRES) linear solves, summed over all of them (each such
    /// solve also counts once in `linear_solves`); 0 for direct solvers.
    pub krylov_iterations: usize,
    /// Impulses applied.
    pub impulses: usize,
}

impl std::ops::AddAssign for Stats {
    /// Every counter summed (work of consecutive or nested solves).
    fn add_assign(&mut self, b: Stats) {
        self.accepted_steps += b.accepted_steps;
        self.rejected_steps += b.rejected_steps;
        self.failed_steps += b.failed_steps;
        self.rhs_evals += b.rhs_evals;
        self.jvp_evals += b.jvp_evals;
        self.vjp_evals += b.vjp_evals;
        self.jacobian_evals += b.jacobian_evals;
        self.factorizations += b.factorizations;
        self.linear_solves += b.linear_solves;
        self.krylov_iterations += b.krylov_iterations;
        self.impulses += b.impulses;
    }
}

impl Stats {
    /// Attempted steps: accepted + rejected + failed.
    pub fn attempted_steps(&self) -> usize {
        self.accepted_steps + self.rejected_steps + self.failed_steps
    }
}

/// How a run ended. Every variant except `Success` carries the time reached.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Status {
    /// The end of the span was reached.
    Success,
    /// The controller's step budget was spent at time `t`.
    MaxSteps {
        /// Time reached.
        t: f64,
    },
    /// The step size fell below `h_min` (or below the resolution of `t`).
    StepSizeTooSmall {
        /// Time reached.
        t: f64,
    },
    /// The state became NaN/∞ and shrinking the step did not help.
    NonFinite {
        /// Time reached.
        t: f64,
    },
    /// An implicit stepper's Newton iteration kept failing.
    NewtonDivergence {
        /// Time reached.
        t: f64,
    },
    /// An implicit stepper's iteration matrix kept being singular.
    SingularMatrix {
        /// Time reached.
        t: f64,
    },
}

impl Status {
    /// Whether the run reached the end of its span.
    pub fn is_success(&self) -> bool {
        matches!(self, Status::Success)
    }
}
