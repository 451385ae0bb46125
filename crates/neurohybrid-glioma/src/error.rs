//! The crate's error type.

use std::path::PathBuf;

use neurohybrid_autodiff::AutodiffError;
use neurohybrid_hybrid::HybridError;
use neurohybrid_mesh::MeshError;
use neurohybrid_nn::NnError;
use neurohybrid_solve::SolveError;
use neurohybrid_system::SystemError;

/// `Result` with [`GliomaError`].
pub type Result<T> = std::result::Result<T, GliomaError>;

/// Everything that can go wrong loading a scenario, simulating or fitting a glioma model.
///
/// Each bad-input case the CLI must report in one line has its own variant, naming the
/// offending file, key or value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GliomaError {
    /// A file named in the scenario (or the scenario itself) does not exist.
    #[error("{what} file {path} does not exist")]
    MissingFile {
        /// The path as given.
        path: PathBuf,
        /// What the file was for (`"scenario"`, `"white-matter map"`, ...).
        what: &'static str,
    },
    /// A file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The scenario is not valid TOML, has an unknown key, or a value of the wrong type.
    /// `message` is the parser's, which names the key and its line.
    #[error("invalid scenario{}: {message}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Parse {
        /// The scenario file, when loaded from one.
        path: Option<PathBuf>,
        /// The TOML parser's message (unknown keys are rejected: `deny_unknown_fields`).
        message: String,
    },
    /// Tissue maps (or the brain mask) do not share one shape.
    #[error(
        "tissue maps of different shapes: {first} has {first_shape:?} voxels, {second} has {second_shape:?}"
    )]
    TissueShapeMismatch {
        /// The reference map.
        first: String,
        /// Its voxels per axis.
        first_shape: Vec<usize>,
        /// The disagreeing map.
        second: String,
        /// Its voxels per axis.
        second_shape: Vec<usize>,
    },
    /// The tumour seed lies outside the brain (in no active voxel, or in pure CSF).
    #[error("seed at {location_mm:?} mm is outside the brain ({reason})")]
    SeedOutsideBrain {
        /// The seed centre (world coordinates, mm).
        location_mm: Vec<f64>,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A diffusivity (D_w, or an R that would make one) is negative, zero where it must not
    /// be, or not finite.
    #[error("negative or invalid diffusivity {name} = {value} (mm²/day; must be finite and > 0)")]
    NegativeDiffusivity {
        /// Which key (`"tumor.d_w"`).
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// Any other number out of its range (named key, value, the range).
    #[error("invalid value {name} = {value}: {expected}")]
    InvalidValue {
        /// The key (`"tumor.rho"`, `"imaging.t1_threshold"`).
        name: String,
        /// The value given.
        value: f64,
        /// What is required.
        expected: String,
    },
    /// A structural problem with the scenario that is not a single number (unsorted scan
    /// times, a 2D seed on a 3D grid, ...).
    #[error("invalid scenario: {0}")]
    Invalid(String),
    /// A solve did not reach its end time.
    #[error("solve failed ({what}): {status}")]
    SolveFailed {
        /// Which solve.
        what: String,
        /// The solver's status.
        status: String,
    },
    /// From the mesh layer (grids, tissue maps, NIfTI).
    #[error(transparent)]
    Mesh(#[from] MeshError),
    /// From the solve layer.
    #[error(transparent)]
    Solve(#[from] SolveError),
    /// From the system layer.
    #[error(transparent)]
    System(#[from] SystemError),
    /// From the autodiff layer.
    #[error(transparent)]
    Autodiff(#[from] AutodiffError),
    /// From the neural-network layer.
    #[error(transparent)]
    Nn(#[from] NnError),
    /// From the hybrid layer.
    #[error(transparent)]
    Hybrid(#[from] HybridError),
}
