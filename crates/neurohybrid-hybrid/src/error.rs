//! The crate's one error type. Lower crates' errors pass through with `#[from]`.

use neurohybrid_autodiff::AutodiffError;
use neurohybrid_nn::NnError;
use neurohybrid_solve::SolveError;
use neurohybrid_system::SystemError;

/// Everything that can go wrong while composing, training or calibrating a hybrid model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HybridError {
    /// From the autodiff graph (recording a network or a composition).
    #[error(transparent)]
    Autodiff(#[from] AutodiffError),
    /// From a neural layer or an optimizer.
    #[error(transparent)]
    Nn(#[from] NnError),
    /// From the system layer (parameter layouts, combinators).
    #[error(transparent)]
    System(#[from] SystemError),
    /// From a solve or a sensitivity computation.
    #[error(transparent)]
    Solve(#[from] SolveError),
    /// Two things that must agree in size do not.
    #[error("{what}: expected length {expected}, got {got}")]
    LengthMismatch {
        /// What was measured (`"features"`, `"observations of trajectory 3"`, ...).
        what: String,
        /// The length required.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A configuration value is impossible (negative learning rate, empty dataset, ...).
    #[error("invalid {what}: {message}")]
    InvalidConfig {
        /// The offending option.
        what: String,
        /// Why it is invalid.
        message: String,
    },
    /// Data contain a NaN or an infinity where numbers are required.
    #[error("{what} contains a non-finite value at index {index}")]
    NonFinite {
        /// Which data.
        what: String,
        /// The first offending index.
        index: usize,
    },
    /// Reading or writing a training checkpoint failed.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The Gauss–Newton Hessian of a calibration is not positive definite: the data (and the
    /// priors) do not determine this parameter, or it is perfectly correlated with others.
    #[error(
        "parameter {parameter} is not identifiable: the Gauss–Newton Hessian is singular there"
    )]
    NotIdentifiable {
        /// Index of the first parameter where the Cholesky factorization broke down.
        parameter: usize,
    },
}

/// `Result` with [`HybridError`].
pub type Result<T> = std::result::Result<T, HybridError>;
