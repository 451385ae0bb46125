//! The crate's one error type.

use neurohybrid_linalg::LinalgError;

/// Everything that can go wrong when configuring or setting up an implicit stepper.
///
/// Failures *during* a solve are not errors: a singular `W` or a diverging Newton iteration is
/// a `StepOutcome::Failed` that shrinks the step, and ends the run with
/// `Status::SingularMatrix` / `Status::NewtonDivergence` when shrinking does not help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ImplicitError {
    /// A configuration value is out of its valid range.
    #[error("invalid configuration: {what} = {value} ({reason})")]
    InvalidConfig {
        /// Which setting (for example `"max_order"`).
        what: &'static str,
        /// The offending value.
        value: f64,
        /// The valid range.
        reason: &'static str,
    },
    /// The system's Jacobian pattern is not `n × n`.
    #[error("Jacobian pattern is {nrows}x{ncols}, expected {n}x{n}")]
    JacobianShape {
        /// Number of states.
        n: usize,
        /// Rows of the pattern.
        nrows: usize,
        /// Columns of the pattern.
        ncols: usize,
    },
    /// A linear-algebra setup error (pattern handling, Newton configuration).
    #[error(transparent)]
    Linalg(#[from] LinalgError),
}

/// `Result` with [`ImplicitError`].
pub type Result<T> = std::result::Result<T, ImplicitError>;
