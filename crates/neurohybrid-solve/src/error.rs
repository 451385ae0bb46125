//! The crate's error type: misuse detected before a solve starts.

use crate::stats::Status;
use neurohybrid_system::SystemError;

/// Why a solve (or a query on its solution) was refused. A run that starts and then fails is
/// not an error: it returns a `Solution` whose `Status` says what happened.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SolveError {
    /// A slice had the wrong length for the system.
    #[error("{what}: expected length {expected}, found {found}")]
    LengthMismatch {
        /// Which input (`"y0"`, `"parameters"`, `"atol"`, …).
        what: &'static str,
        /// Length the system expects.
        expected: usize,
        /// Length that was passed.
        found: usize,
    },
    /// An input contained NaN or ±∞.
    #[error("{what}[{index}] is not finite ({value})")]
    NonFiniteInput {
        /// Which input.
        what: &'static str,
        /// Index of the first offending entry.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A tolerance is negative, non-finite, or both tolerances are zero.
    #[error("tolerance {name} = {value} is invalid ({reason})")]
    InvalidTolerance {
        /// `"rtol"` or `"atol"`.
        name: &'static str,
        /// The offending value.
        value: f64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The time span `[t0, t1]` is empty or not finite.
    #[error("invalid time span [{t0}, {t1}]: {reason}")]
    InvalidTimeSpan {
        /// Start time.
        t0: f64,
        /// End time.
        t1: f64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A requested save time lies outside the span or breaks the ordering.
    #[error("save time #{index} = {t} {reason} (span [{t0}, {t1}])")]
    InvalidSaveTime {
        /// Position in the list of save times.
        index: usize,
        /// The offending time.
        t: f64,
        /// Start of the span.
        t0: f64,
        /// End of the span.
        t1: f64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An impulse time is not finite.
    #[error("impulse #{index} has non-finite time {t}")]
    InvalidImpulseTime {
        /// Position in the problem's impulse list.
        index: usize,
        /// The offending time.
        t: f64,
    },
    /// A step size (constant step, `h_min`, `h_max`) is zero, negative or not finite.
    #[error("invalid step size {name} = {value}")]
    InvalidStepSize {
        /// Which setting.
        name: &'static str,
        /// The offending value.
        value: f64,
    },
    /// The stepper lacks a capability the chosen controller or output needs.
    #[error("stepper {stepper} lacks {capability}")]
    MissingCapability {
        /// The stepper's name.
        stepper: String,
        /// The missing capability, e.g. "an error estimate (needed by an adaptive controller)".
        capability: &'static str,
    },
    /// A dense-output query outside the solved interval, or on a solution without dense output.
    #[error("cannot interpolate at t = {t}: {reason}")]
    Interpolation {
        /// The queried time.
        t: f64,
        /// Why not.
        reason: &'static str,
    },
    /// A sensitivity method cannot handle this request (e.g. `SaveAt::Steps` for a loss, a
    /// non-finite loss).
    #[error("sensitivity method {method}: {reason}")]
    SensitivityUnsupported {
        /// The method's name.
        method: String,
        /// What it cannot do.
        reason: &'static str,
    },
    /// The forward solve of a gradient computation did not reach the end of its span.
    #[error("the forward solve of a gradient ended with {status:?}")]
    ForwardSolveFailed {
        /// How the forward solve ended.
        status: Status,
    },
    /// A step recomputed from a checkpoint (discrete adjoint) could not be computed again.
    #[error("recomputing step #{step} at t = {t} from a checkpoint failed")]
    ReplayFailed {
        /// Index of the step among the accepted steps.
        step: usize,
        /// Start time of the step.
        t: f64,
    },
    /// A backsolve adjoint's state, re-integrated backward, no longer matches the forward
    /// solution: the backward problem is unstable (diffusion PDEs, stiff decay) and the
    /// gradient would be wrong. Use an interpolating, quadrature or discrete adjoint.
    #[error(
        "backsolve adjoint unstable at t = {t}: the backward-reconstructed state differs from \
         the forward solution by {reconstruction_error:e} (relative, max norm); use the \
         interpolating, quadrature or discrete adjoint"
    )]
    BacksolveUnstable {
        /// Where the mismatch was detected (a save, impulse or the initial time).
        t: f64,
        /// `‖y_back − y_fwd‖∞ / ‖y_fwd‖∞` there (`∞` if the state is no longer finite).
        reconstruction_error: f64,
    },
    /// The backward (adjoint) solve of a continuous adjoint did not reach `t0`. For the
    /// backsolve adjoint on a diffusion problem this is its instability (the peers' backsolve
    /// adjoints end the same way on Fisher–KPP).
    #[error("the backward solve of the {method} ended with {status:?}")]
    AdjointSolveFailed {
        /// The method's name.
        method: String,
        /// How the backward solve ended.
        status: Status,
    },
    /// An error from the system layer.
    #[error(transparent)]
    System(#[from] SystemError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, SolveError>;
