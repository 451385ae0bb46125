//! The crate's error type.

/// Everything that can go wrong in `neurohybrid-mesh`.
///
/// Variants carry the offending values so a message names what was wrong. The enum is
/// `#[non_exhaustive]`: the file-format and graph modules add their own variants (wrapping
/// their error types with `#[from]`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeshError {
    /// A slice or array had the wrong length or shape.
    #[error("shape mismatch for {what}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// What was being checked (e.g. `"u"`, `"mask"`).
        what: &'static str,
        /// The expected length.
        expected: usize,
        /// The length found.
        got: usize,
    },
    /// A diffusivity (or tissue-derived diffusivity) was negative.
    #[error("negative diffusivity {value} at index {index}")]
    NegativeDiffusivity {
        /// The offending value (mm²/day).
        value: f64,
        /// Where it was found (active-cell or voxel index, as documented by the caller).
        index: usize,
    },
    /// A value that must be finite was NaN or infinite.
    #[error("non-finite value in {what} at index {index}")]
    NonFinite {
        /// Which input held it.
        what: &'static str,
        /// Its index in that input.
        index: usize,
    },
    /// The mask selects no cell.
    #[error("the mask has no active cell")]
    EmptyMask,
    /// A grid spacing was not strictly positive and finite.
    #[error("invalid spacing {value} mm on axis {axis}")]
    InvalidSpacing {
        /// The axis (0 = x, 1 = y, 2 = z).
        axis: usize,
        /// The offending spacing (mm).
        value: f64,
    },
    /// A grid dimension was zero or the grid is too large to index.
    #[error("invalid grid shape {shape:?}: {reason}")]
    InvalidShape {
        /// The shape given.
        shape: Vec<usize>,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A parameter was outside its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// The parameter's name (e.g. `"R"`).
        name: &'static str,
        /// Its value.
        value: f64,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A tissue fraction was outside [0, 1] or fractions summed to more than 1.
    #[error("invalid tissue fraction at voxel {index}: {reason}")]
    InvalidTissue {
        /// The voxel (linear, all voxels) index.
        index: usize,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An index was out of range.
    #[error("{what} index {index} out of range (len {len})")]
    OutOfRange {
        /// What was indexed.
        what: &'static str,
        /// The index given.
        index: usize,
        /// The valid length.
        len: usize,
    },
    /// Reading or writing a file failed (NIfTI, connectome formats).
    #[error(transparent)]
    Io(#[from] crate::io::IoError),
    /// A graph could not be built or analysed.
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
}

/// `Result` with [`MeshError`].
pub type Result<T> = std::result::Result<T, MeshError>;
