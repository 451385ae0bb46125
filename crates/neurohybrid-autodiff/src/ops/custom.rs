//! The extension hook: user ops with their own forward, VJP and JVP rules.

use std::sync::Arc;

use crate::error::{AutodiffError, Result};
use crate::graph::{Graph, Var};
use crate::ops::Op;

/// Most operands a [`CustomOp`] node may take. Replays hand the operand slices over in a
/// fixed-size array on the stack (that is how they stay allocation-free), hence a bound.
pub const MAX_CUSTOM_OPERANDS: usize = 32;

/// A user-defined op. All slices are flat row-major data in operand order.
///
/// Replays call these methods with exactly the lengths promised by
/// [`output_shape`](CustomOp::output_shape) and the operand shapes, so implementations may
/// index freely. They must not allocate if the tape is to stay allocation-free.
pub trait CustomOp: Send + Sync {
    /// A short name for error messages and debugging.
    fn name(&self) -> &str;
    /// The output shape for these operand shapes, or an error (checked once, at build time).
    fn output_shape(&self, input_shapes: &[&[usize]]) -> Result<Vec<usize>>;
    /// Writes the op's value into `out` (overwrite).
    fn forward(&self, inputs: &[&[f64]], out: &mut [f64]);
    /// Accumulate (+=) `wᵀ ∂out/∂input_i` into `in_cot[i]`; an empty slot is not needed.
    fn vjp(&self, inputs: &[&[f64]], out: &[f64], w: &[f64], in_cot: &mut [&mut [f64]]);
    /// `out_tan = Σ_i ∂out/∂input_i · tangents[i]`; an empty tangent is zero.
    fn jvp(&self, inputs: &[&[f64]], out: &[f64], tangents: &[&[f64]], out_tan: &mut [f64]);
}

impl Graph {
    /// Applies a [`CustomOp`] to `args` (1 to [`MAX_CUSTOM_OPERANDS`] operands).
    pub fn custom(&mut self, op: Arc<dyn CustomOp>, args: &[Var]) -> Result<Var> {
        if args.is_empty() || args.len() > MAX_CUSTOM_OPERANDS {
            return Err(AutodiffError::ArityMismatch {
                op: "custom",
                expected: "1..=32",
                got: args.len(),
            });
        }
        let mut ids = Vec::with_capacity(args.len());
        for &a in args {
            ids.push(self.check(a)?);
        }
        let shapes: Vec<&[usize]> = ids.iter().map(|&i| self.nodes[i].shape.as_slice()).collect();
        let shape = op.output_shape(&shapes)?;
        Ok(self.push(shape, Op::Custom { op, args: ids }))
    }
}
