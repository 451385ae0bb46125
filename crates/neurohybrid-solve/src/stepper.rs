//! How one step is taken: the [`Stepper`] trait and its working state.

use crate::stats::{Stats, Status};
use neurohybrid_system::OdeSystem;

/// The step being attempted: from `t` to `t + h` (`h < 0` when integrating backwards).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Start of the step.
    pub t: f64,
    /// Signed step size.
    pub h: f64,
}

/// Why a stepper could not compute a step. The solve loop shrinks `h` and retries; if failures
/// persist the run ends with the matching [`Status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepFailure {
    /// The Newton iteration of an implicit stage diverged or did not converge in time.
    NewtonDivergence,
    /// The iteration matrix `I − hγJ` was singular.
    SingularMatrix,
}

impl StepFailure {
    /// The run status reported when this failure persists at time `t`.
    pub fn status(self, t: f64) -> Status {
        match self {
            StepFailure::NewtonDivergence => Status::NewtonDivergence { t },
            StepFailure::SingularMatrix => Status::SingularMatrix { t },
        }
    }
}

/// Result of [`Stepper::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepOutcome {
    /// A trial solution (and, for adaptive steppers, an error estimate) is in the state.
    Computed,
    /// No trial solution could be computed; retry with a smaller step.
    Failed(StepFailure),
}

/// The part of a stepper's working state the solve loop reads.
///
/// Everything else (stages, history, factorizations) is private to the stepper but should stay
/// reachable through the concrete state type, so a discrete adjoint (`StepVjp`) can reverse
/// through accepted steps.
pub trait StepState {
    /// The accepted state `y_n` at the current time.
    fn y(&self) -> &[f64];

    /// The accepted state, mutably. The solve loop writes it only to apply an impulse, and then
    /// calls [`Stepper::restart`].
    fn y_mut(&mut self) -> &mut [f64];

    /// The trial solution `y_{n+1}` of the last [`Stepper::step`].
    fn y_proposed(&self) -> &[f64];

    /// The local error estimate of the last step (adaptive steppers; zeros otherwise).
    fn error_estimate(&self) -> &[f64];

    /// `f(t_n, y_n)` if the stepper already holds it (first-same-as-last methods after `init`);
    /// the initial-step heuristic then saves one evaluation.
    fn dydt(&self) -> Option<&[f64]> {
        None
    }
}

/// One step method. The struct implementing it holds configuration only; all working memory is
/// created by [`Stepper::init`] and reused, so a step does not allocate.
///
/// The trait is generic over the system so that method families can demand capabilities:
/// explicit methods implement `Stepper<S>` for every `S: OdeSystem`, implicit ones only for
/// `S: OdeSystem + Jacobian`.
///
/// # Contract (the solve loop calls, in this order)
///
/// 1. `init(system, p, t0, y0)` once. Allocate everything here.
/// 2. Repeatedly `step(system, p, state, Step { t, h })`: compute a trial solution into
///    `y_proposed()` and, if adaptive, an error-estimate *vector* into `error_estimate()`. `y()`
///    must stay untouched. `h` may differ from what `accept`/`reject` returned (the loop clips it
///    to hit save, impulse and end times); a stepper with history must detect the change and
///    rescale itself. Return [`StepOutcome::Failed`] when the step cannot be computed (Newton
///    failure): the loop then shrinks `h` and calls `reject`.
/// 3. The controller turns the error estimate into a weighted RMS norm and decides.
///    - On rejection the loop calls `reject(state, h_next)`; the stepper may return its own
///      next step size (e.g. a BDF lowering its order), otherwise `h_next`.
///    - On acceptance the loop may first call `dense(…)` (only if it needs values inside the
///      step), then `accept(system, p, state, t_new, h_next)`, which makes the trial solution
///      the current state (`y() ← y_proposed()`), updates history, and returns the step size
///      the stepper wants next (usually `h_next`). Stage values of the accepted step should stay
///      in the state until the next `step`.
/// 4. After an impulse has overwritten `y_mut()` at time `t`, `restart(system, p, state, t)`
///    drops anything derived from the old state (FSAL derivative, multistep history).
///
/// Step sizes passed to and returned from `accept`/`reject` are magnitudes; `Step::h` is signed.
/// Steppers count their own work in `stats` (`rhs_evals`, `jvp_evals`, `factorizations`, …);
/// the loop counts steps.
pub trait Stepper<S: OdeSystem + ?Sized> {
    /// Working memory of a solve.
    type State: StepState;

    /// Human-readable name ("Tsit5").
    fn name(&self) -> &str;

    /// Classical order `p` of the propagated solution (global error `O(h^p)`).
    fn order(&self) -> usize;

    /// Order `q` of the embedded solution used for the error estimate (local error
    /// `O(h^{q+1})`), or `None` if the method has no error estimate.
    fn error_order(&self) -> Option<usize> {
        None
    }

    /// Whether the method has an error estimate, i.e. can run under an adaptive controller.
    fn is_adaptive(&self) -> bool {
        self.error_order().is_some()
    }

    /// Degree `d` of the dense-output polynomial of one step (3 for cubic Hermite).
    fn dense_degree(&self) -> usize {
        3
    }

    /// The order the controller should use for the current step's error exponent
    /// `1/(q+1)`; variable-order methods override this with their current order.
    fn control_order(&self, state: &Self::State) -> usize {
        let _ = state;
        self.error_order().unwrap_or_else(|| self.order())
    }

    /// Allocate the working state for a solve starting at `(t0, y0)`.
    fn init(&self, system: &S, p: &[f64], t0: f64, y0: &[f64], stats: &mut Stats) -> Self::State;

    /// Attempt a step; see the trait documentation.
    fn step(
        &self,
        system: &S,
        p: &[f64],
        state: &mut Self::State,
        step: Step,
        stats: &mut Stats,
    ) -> StepOutcome;

    /// Write the dense output of the step just computed (before `accept`) as power-basis
    /// coefficients: `y(t + θh) = Σ_{j=0..=d} θʲ c_j`, `coeffs[j*n..(j+1)*n] = c_j`,
    /// `d = dense_degree()`. May evaluate the right-hand side (cubic Hermite needs
    /// `f(t+h, y_{n+1})`), hence `&mut` state and `stats`.
    fn dense(
        &self,
        system: &S,
        p: &[f64],
        state: &mut Self::State,
        step: Step,
        coeffs: &mut [f64],
        stats: &mut Stats,
    );

    /// Make the trial solution current; return the magnitude of the next step size.
    fn accept(
        &self,
        system: &S,
        p: &[f64],
        state: &mut Self::State,
        t_new: f64,
        h_next: f64,
        stats: &mut Stats,
    ) -> f64;

    /// The trial solution was rejected; return the magnitude of the step to retry with.
    fn reject(&self, state: &mut Self::State, h_next: f64) -> f64 {
        let _ = state;
        h_next
    }

    /// The current state was changed from outside (impulse) at time `t`.
    fn restart(&self, system: &S, p: &[f64], state: &mut Self::State, t: f64, stats: &mut Stats);
}
