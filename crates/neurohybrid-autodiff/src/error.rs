//! The crate's one error type.
//!
//! Build-time errors (shapes, names, indices) come from [`Graph`](crate::Graph) builders and
//! [`Graph::compile`](crate::Graph::compile); replay errors (slice lengths, call order) come from
//! [`Tape::forward`](crate::Tape::forward), [`Tape::vjp`](crate::Tape::vjp) and
//! [`Tape::jvp`](crate::Tape::jvp). Replays never panic on bad input: they return one of these.

/// Everything that can go wrong while building, compiling or replaying a graph.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AutodiffError {
    /// Two operands (or an operand and a requested shape) do not fit together.
    #[error("{op}: shapes {left:?} and {right:?} do not fit")]
    ShapeMismatch {
        /// The builder that rejected the shapes (`"add"`, `"matmul"`, `"reshape"`, ...).
        op: &'static str,
        /// Shape of the left operand (or of the operand being reshaped).
        left: Vec<usize>,
        /// Shape of the right operand (or the requested shape).
        right: Vec<usize>,
    },
    /// An operand has the wrong rank for the op.
    #[error("{op}: expected rank {expected}, got shape {shape:?}")]
    RankMismatch {
        /// The builder that rejected the operand.
        op: &'static str,
        /// The rank the op needs.
        expected: usize,
        /// The operand's shape.
        shape: Vec<usize>,
    },
    /// An input with this name was already declared in the graph.
    #[error("input {name:?} declared twice")]
    DuplicateInput {
        /// The repeated name.
        name: String,
    },
    /// No input with this name exists.
    #[error("no input named {name:?}")]
    UnknownInput {
        /// The name that was looked up.
        name: String,
    },
    /// A [`Var`](crate::Var) does not belong to the graph it was used with.
    #[error("variable #{index} does not belong to this graph")]
    ForeignVar {
        /// The variable's index in the graph that created it.
        index: usize,
    },
    /// A slice (or a list of slices) handed to a replay has the wrong length.
    #[error("{what}: expected length {expected}, got {got}")]
    LengthMismatch {
        /// What was measured (`"input values"`, `"number of inputs"`, `"output cotangent"`, ...).
        what: &'static str,
        /// The length the tape needs.
        expected: usize,
        /// The length it was given.
        got: usize,
    },
    /// An index (gather/scatter index, slice range) lies outside its operand.
    #[error("{op}: index {index} out of bounds for length {len}")]
    IndexOutOfBounds {
        /// The builder that rejected the index.
        op: &'static str,
        /// The offending index (for a slice: its end).
        index: usize,
        /// The length it indexes into.
        len: usize,
    },
    /// An axis number is not below the operand's rank.
    #[error("{op}: axis {axis} invalid for rank {rank}")]
    InvalidAxis {
        /// The builder that rejected the axis.
        op: &'static str,
        /// The requested axis.
        axis: usize,
        /// The operand's rank.
        rank: usize,
    },
    /// An op got the wrong number of operands (e.g. an empty `concat`, or a custom op with more
    /// operands than [`MAX_CUSTOM_OPERANDS`](crate::MAX_CUSTOM_OPERANDS)).
    #[error("{op}: expected {expected} operands, got {got}")]
    ArityMismatch {
        /// The op.
        op: &'static str,
        /// A description of the accepted count, e.g. `"1..=32"`.
        expected: &'static str,
        /// The number given.
        got: usize,
    },
    /// A constant's data length does not match its shape.
    #[error("constant of shape {shape:?} needs {expected} values, got {got}")]
    ConstantLength {
        /// The declared shape.
        shape: Vec<usize>,
        /// Product of the shape.
        expected: usize,
        /// Number of values given.
        got: usize,
    },
    /// `compile` was called with no outputs.
    #[error("compile needs at least one output")]
    NoOutputs,
    /// A custom op rejected its operand shapes.
    #[error("custom op {op}: {message}")]
    Custom {
        /// The custom op's [`name`](crate::CustomOp::name).
        op: String,
        /// Why it rejected the shapes.
        message: String,
    },
    /// `vjp` or `jvp` was called on a workspace before any successful `forward`.
    #[error("vjp/jvp called before forward on this workspace")]
    ForwardNotRun,
    /// The workspace was created by a different tape.
    #[error("workspace belongs to a different tape")]
    WorkspaceMismatch,
}

/// Shorthand for `std::result::Result<T, AutodiffError>`.
pub type Result<T> = std::result::Result<T, AutodiffError>;
