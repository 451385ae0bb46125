//! The crate's error type.

/// Errors raised while building systems, layouts and sparsity patterns.
///
/// Evaluating a system (`rhs`, `vjp`, …) never returns an error: shapes are checked once when a
/// system is built and once when a solve starts, so the hot path stays branch-free.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SystemError {
    /// A slice or dimension did not have the length the receiver expects.
    #[error("{what}: expected length {expected}, found {found}")]
    LengthMismatch {
        /// Which argument or dimension was wrong.
        what: &'static str,
        /// The expected length.
        expected: usize,
        /// The length that was passed.
        found: usize,
    },
    /// Two systems that must agree on their state dimension do not.
    #[error("{combinator}: state dimensions differ ({left} vs {right})")]
    StateMismatch {
        /// The combinator being built (`"Sum"`, `"Split"`).
        combinator: &'static str,
        /// State dimension of the first system.
        left: usize,
        /// State dimension of the second system.
        right: usize,
    },
    /// A sparsity pattern was malformed (unsorted, duplicate or out-of-range indices, wrong shape).
    #[error("invalid sparsity pattern: {reason}")]
    InvalidPattern {
        /// What is wrong with the pattern.
        reason: String,
    },
    /// A parameter block name is unknown to the layout.
    #[error("unknown parameter block {name:?}")]
    UnknownParam {
        /// The name that was looked up.
        name: String,
    },
    /// A parameter block name was registered twice.
    #[error("duplicate parameter block {name:?}")]
    DuplicateParam {
        /// The name registered twice.
        name: String,
    },
    /// An error from the autodiff layer (building or compiling a graph).
    #[error(transparent)]
    Autodiff(#[from] neurohybrid_autodiff::AutodiffError),
    /// A graph handed to `TapeSystem` does not have the `f(t, y, p)` signature.
    #[error("tape signature: {reason}")]
    TapeSignature {
        /// What does not match.
        reason: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, SystemError>;
