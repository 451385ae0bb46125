//! The crate's one error type.
//!
//! Graph-building errors from `neurohybrid-autodiff` pass through unchanged
//! ([`NnError::Autodiff`]); everything else names the layer, block, file section or option that
//! was wrong. Nothing in this crate panics on user input (bad files, bad shapes, bad options).

use neurohybrid_autodiff::AutodiffError;

/// Everything that can go wrong while building layers, optimizing, or reading checkpoints.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum NnError {
    /// An error from the autodiff graph (shape mismatch while recording a layer, ...).
    #[error(transparent)]
    Autodiff(#[from] AutodiffError),
    /// A layer or optimizer was configured with an impossible value.
    #[error("invalid {what}: {message}")]
    InvalidConfig {
        /// The offending option (`"Mlp widths"`, `"Adam beta1"`, ...).
        what: &'static str,
        /// Why it is invalid.
        message: String,
    },
    /// A layer got an input whose shape it cannot take.
    #[error("{layer}: input shape {got:?} does not fit (expected {expected})")]
    InputShape {
        /// The layer (`"Dense"`, `"Conv"`, ...).
        layer: &'static str,
        /// A description of the shapes the layer accepts.
        expected: String,
        /// The shape it got.
        got: Vec<usize>,
    },
    /// A flat slice (parameters, gradient, state) has the wrong length.
    #[error("{what}: expected length {expected}, got {got}")]
    LengthMismatch {
        /// What was measured (`"gradient"`, `"parameters"`, ...).
        what: &'static str,
        /// The length required.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A frozen range reaches past the end of the parameter vector.
    #[error("frozen range {start}..{end} out of bounds for {n_params} parameters")]
    FrozenOutOfBounds {
        /// Start of the range.
        start: usize,
        /// End of the range (exclusive).
        end: usize,
        /// Length of the parameter vector.
        n_params: usize,
    },
    /// A value that must be finite is not (an objective value, a parameter to be saved, ...).
    #[error("{what} is not finite (index {index})")]
    NonFinite {
        /// What was checked.
        what: &'static str,
        /// Position of the first non-finite value.
        index: usize,
    },
    /// A binary checkpoint ended before a section it announces.
    #[error("checkpoint truncated: {section} needs {needed} bytes, only {available} left")]
    Truncated {
        /// The section being read (`"header"`, `"parameters"`, ...).
        section: &'static str,
        /// Bytes the section needs.
        needed: u64,
        /// Bytes that were left.
        available: u64,
    },
    /// A binary checkpoint does not start with the magic bytes `NHNN`.
    #[error("not a neurohybrid-nn checkpoint: magic bytes {found:?}")]
    BadMagic {
        /// The first bytes found.
        found: Vec<u8>,
    },
    /// A checkpoint was written by an unknown format version.
    #[error("checkpoint format version {found} unsupported (this build reads {supported})")]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// A binary checkpoint's checksum does not match its contents.
    #[error("checkpoint corrupt: checksum {found:#018x}, contents hash to {computed:#018x}")]
    ChecksumMismatch {
        /// The checksum stored in the file.
        found: u64,
        /// The checksum of the bytes read.
        computed: u64,
    },
    /// Bytes follow the end of a binary checkpoint.
    #[error("checkpoint has {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// How many.
        extra: u64,
    },
    /// The parameter count stored in a checkpoint differs from its architecture's.
    #[error("checkpoint holds {got} parameters, its architecture needs {expected}")]
    ParamCountMismatch {
        /// Parameters the architecture needs.
        expected: usize,
        /// Parameters in the file.
        got: usize,
    },
    /// A checkpoint's architecture is not the one the caller expected.
    #[error("checkpoint architecture differs: expected {expected}, found {found}")]
    ArchitectureMismatch {
        /// The expected architecture (JSON).
        expected: String,
        /// The architecture in the file (JSON).
        found: String,
    },
    /// A JSON checkpoint (or a binary checkpoint's architecture section) does not parse.
    #[error("checkpoint JSON invalid: {message}")]
    Json {
        /// serde_json's message, with line and column.
        message: String,
    },
    /// Reading or writing a checkpoint file failed.
    #[error("i/o error on {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's message.
        message: String,
    },
    /// The dfdx adaptor was asked for something dfdx cannot provide.
    #[error("dfdx adaptor: {message}")]
    Dfdx {
        /// What is unsupported or went wrong.
        message: String,
    },
}

/// Shorthand for `std::result::Result<T, NnError>`.
pub type Result<T> = std::result::Result<T, NnError>;

impl NnError {
    pub(crate) fn config(what: &'static str, message: impl Into<String>) -> Self {
        NnError::InvalidConfig { what, message: message.into() }
    }
}

/// Checks a slice length, naming it in the error.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got { Ok(()) } else { Err(NnError::LengthMismatch { what, expected, got }) }
}
