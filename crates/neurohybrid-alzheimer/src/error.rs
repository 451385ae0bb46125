//! The crate's one error type; lower crates' errors pass through with `#[from]`.

use neurohybrid_hybrid::HybridError;
use neurohybrid_mesh::{GraphError, IoError};
use neurohybrid_nn::NnError;
use neurohybrid_solve::SolveError;

/// Everything that can go wrong building, simulating or fitting an Alzheimer's model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlzheimerError {
    /// A connectome graph could not be built (bad weights, wrong lengths).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A connectome file could not be read.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A solve or a gradient failed.
    #[error(transparent)]
    Solve(#[from] SolveError),
    /// A network or an optimizer failed.
    #[error(transparent)]
    Nn(#[from] NnError),
    /// A hybrid composition, training or calibration failed.
    #[error(transparent)]
    Hybrid(#[from] HybridError),
    /// A model or cohort parameter is out of its domain (negative rate, NaN, …).
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name (`"kappa"`, `"noise_sd"`, …).
        name: &'static str,
        /// The value given.
        value: f64,
        /// What it must satisfy.
        reason: &'static str,
    },
    /// A region label is not in the connectome.
    #[error("unknown region {label:?} (the connectome has {n_regions} regions)")]
    UnknownRegion {
        /// The label asked for.
        label: String,
        /// Regions in the connectome.
        n_regions: usize,
    },
    /// Two things that must agree in size do not.
    #[error("{what}: expected length {expected}, got {got}")]
    LengthMismatch {
        /// What was measured.
        what: &'static str,
        /// The length required.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A forward solve stopped before the last visit (its status says why).
    #[error("simulation stopped early: {status}")]
    SolveFailed {
        /// The solver's status, as text.
        status: String,
    },
    /// The connectome data are not where they were looked for.
    #[error("connectome not found at {path} (run `cargo xtask fetch-data tvb68`)")]
    DataMissing {
        /// The path tried.
        path: String,
    },
}

/// `Result` with [`AlzheimerError`].
pub type Result<T> = std::result::Result<T, AlzheimerError>;

pub(crate) fn check_finite_nonneg(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(AlzheimerError::InvalidParameter { name, value, reason: "must be finite and >= 0" })
    }
}
