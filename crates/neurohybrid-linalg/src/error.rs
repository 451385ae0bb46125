//! The crate's one error type.

/// Everything that can go wrong in `neurohybrid-linalg`.
///
/// Misuse (wrong shapes, malformed patterns) and numerical failure of a *direct* method
/// (singular or non-finite matrices) are errors. Iterative methods that start and then fail
/// to converge report a status instead ([`crate::KrylovStatus`], [`crate::NewtonStatus`]);
/// only the [`crate::LinearSolver`] adaptor of a Krylov method turns non-convergence into
/// [`LinalgError::NotConverged`], because that trait promises a solution.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LinalgError {
    /// A vector or matrix has the wrong size.
    #[error("dimension mismatch in {what}: expected {expected}, got {got}")]
    DimensionMismatch {
        /// Which operand was wrong (for example `"right-hand side"`).
        what: &'static str,
        /// The size the operation needed.
        expected: usize,
        /// The size it was given.
        got: usize,
    },
    /// A square matrix was required.
    #[error("matrix must be square, got {nrows}x{ncols}")]
    NotSquare {
        /// Number of rows.
        nrows: usize,
        /// Number of columns.
        ncols: usize,
    },
    /// The matrix is singular (or numerically so: a zero pivot or a non-finite factor).
    #[error("singular matrix{}", match .pivot { Some(p) => format!(" (zero pivot at step {p})"), None => String::new() })]
    Singular {
        /// The elimination step (or row, for preconditioners) whose pivot vanished, when known.
        /// For the sparse LU a numerically zero pivot is detected by a probe solve and the step
        /// is not known (`None`); a structurally singular pattern reports the step.
        pivot: Option<usize>,
    },
    /// A symmetric positive definite matrix was required (sparse Cholesky) and a pivot of the
    /// factorization was not positive.
    #[error(
        "matrix is not positive definite (non-positive pivot at step {pivot} of the ordered factorization)"
    )]
    NotPositiveDefinite {
        /// Elimination step (in the fill-reducing order) whose pivot was `≤ 0`.
        pivot: usize,
    },
    /// A symmetric matrix was required and the pattern or the values are not symmetric.
    #[error("matrix is not symmetric at ({row}, {col})")]
    NotSymmetric {
        /// Row of the first offending entry (its mirror `(col, row)` is missing or differs).
        row: usize,
        /// Column of that entry.
        col: usize,
    },
    /// A compressed-row pattern violates the CSR invariants.
    #[error("invalid sparse pattern: {reason} (row {row})")]
    InvalidPattern {
        /// What is wrong.
        reason: &'static str,
        /// The first offending row (or `nrows` for a problem with the row pointer's end).
        row: usize,
    },
    /// Two sparse matrices that must share a pattern (or one that must contain the other) do not.
    #[error("sparsity pattern mismatch: {reason}")]
    PatternMismatch {
        /// What was expected of the pattern.
        reason: &'static str,
    },
    /// `solve` was called before a successful `factorize`.
    #[error("solve called before a successful factorization")]
    NotFactorized,
    /// An input contained NaN or infinity.
    #[error("non-finite value in {what} at index {index}")]
    NonFinite {
        /// Which input (for example `"matrix values"`).
        what: &'static str,
        /// Position of the first non-finite entry (storage order).
        index: usize,
    },
    /// An iterative linear solve behind the [`crate::LinearSolver`] trait did not converge.
    #[error("iterative solver did not converge in {iterations} iterations (residual {residual:e})")]
    NotConverged {
        /// Iterations performed.
        iterations: usize,
        /// Final residual 2-norm.
        residual: f64,
    },
    /// A configuration value is out of its valid range.
    #[error("invalid configuration: {what}")]
    InvalidConfig {
        /// Which setting and why.
        what: &'static str,
    },
    /// The factorization backend could not allocate its workspace.
    #[error("out of memory in the factorization backend")]
    OutOfMemory,
}

/// Result type of this crate.
pub type Result<T> = core::result::Result<T, LinalgError>;

/// Index of the first non-finite entry of `values`, as an error naming `what`.
pub(crate) fn check_finite(what: &'static str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(LinalgError::NonFinite { what, index }),
        None => Ok(()),
    }
}

/// Checks a slice length.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(LinalgError::DimensionMismatch { what, expected, got })
    }
}
