//! The crate's one error type. Lower crates' errors pass through with `#[from]`.

use neurohybrid_hybrid::HybridError;
use neurohybrid_linalg::LinalgError;
use neurohybrid_mesh::MeshError;
use neurohybrid_nn::NnError;
use neurohybrid_solve::SolveError;

/// Everything that can go wrong in `neurohybrid-stroke`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StrokeError {
    /// From the grid, tissue maps or the finite-volume operator.
    #[error(transparent)]
    Mesh(#[from] MeshError),
    /// From the sparse factorization of the perfusion matrix.
    #[error(transparent)]
    Linalg(#[from] LinalgError),
    /// From a time integration or a sensitivity computation.
    #[error(transparent)]
    Solve(#[from] SolveError),
    /// From a network or an optimizer.
    #[error(transparent)]
    Nn(#[from] NnError),
    /// From a hybrid composition or the calibrator.
    #[error(transparent)]
    Hybrid(#[from] HybridError),
    /// A model parameter is outside its admissible range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name (`"k"`, `"beta"`, `"collateral"`, ...).
        name: &'static str,
        /// The offending value.
        value: f64,
        /// What the admissible range is.
        reason: &'static str,
    },
    /// Two things that must agree in length do not.
    #[error("length mismatch for {what}: expected {expected}, got {got}")]
    LengthMismatch {
        /// What was checked.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// A time integration started but did not reach its end.
    #[error("tissue-fate integration stopped early: {status}")]
    IntegrationFailed {
        /// The solver's status, formatted.
        status: String,
    },
    /// A data file (fetched by `cargo xtask fetch-data`) is not there.
    #[error("{path} not found: run `cargo xtask fetch-data`")]
    DataMissing {
        /// The missing file.
        path: String,
    },
    /// A data file is there but cannot be used.
    #[error("{path}: line {line}: {reason}")]
    BadDataFile {
        /// The file.
        path: String,
        /// 1-based line (0: the file as a whole).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The anatomy has no brain tissue for the model to act on.
    #[error("no brain tissue in the mask ({what})")]
    NoTissue {
        /// Which anatomy.
        what: String,
    },
}

/// `Result` with [`StrokeError`].
pub type Result<T, E = StrokeError> = std::result::Result<T, E>;

/// Checks `len == expected`.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got { Ok(()) } else { Err(StrokeError::LengthMismatch { what, expected, got }) }
}

/// Checks a finite value with a lower bound.
pub(crate) fn check_at_least(name: &'static str, value: f64, lo: f64) -> Result<()> {
    if value.is_finite() && value >= lo {
        Ok(())
    } else {
        Err(StrokeError::InvalidParameter {
            name,
            value,
            reason: "must be finite and not below its lower bound",
        })
    }
}
