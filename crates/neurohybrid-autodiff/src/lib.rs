//! Differentiable tensor graphs, compiled once into allocation-free tapes.
//!
//! Solvers evaluate the same right-hand side — and its VJPs and JVPs — millions of times. A
//! define-by-run tape re-records and re-allocates on every call; this crate instead records a
//! [`Graph`] once, [`compile`](Graph::compile)s it into an immutable [`Tape`] (a fixed
//! instruction order over the nodes the outputs need, plus a buffer plan) and replays it into a
//! [`Workspace`] that owns every mutable buffer. After `tape.workspace()` the three replays —
//! [`forward`](Tape::forward), [`vjp`](Tape::vjp) (reverse mode) and [`jvp`](Tape::jvp)
//! (forward mode) — allocate nothing, and never panic on bad input: a wrong slice length is an
//! [`AutodiffError::LengthMismatch`]. Shape errors are caught earlier, when the graph is built.
//!
//! Data is `f64`, flat and row-major; shapes are rank 0 (`&[]`), 1 or 2 (any rank for
//! elementwise ops, reshape and reductions).
//!
//! # Ops
//!
//! - elementwise unary: [`neg`](Graph::neg), [`exp`](Graph::exp), [`ln`](Graph::ln),
//!   [`sqrt`](Graph::sqrt), [`square`](Graph::square), [`powi`](Graph::powi),
//!   [`tanh`](Graph::tanh), [`sigmoid`](Graph::sigmoid), [`relu`](Graph::relu),
//!   [`softplus`](Graph::softplus), [`sin`](Graph::sin), [`cos`](Graph::cos),
//!   [`scale`](Graph::scale), [`add_scalar`](Graph::add_scalar);
//! - elementwise binary with broadcasting (equal shapes, scalar, `[m,n]∘[n]` row,
//!   `[m,n]∘[m,1]` column): [`add`](Graph::add), [`sub`](Graph::sub), [`mul`](Graph::mul),
//!   [`div`](Graph::div);
//! - linear algebra: [`matmul`](Graph::matmul) (faer, a hand loop for tiny products; at
//!   compile time `matmul → bias add → tanh/sigmoid/relu` fuses into one instruction, see
//!   [`Graph::compile_unfused`]), [`spmv`](Graph::spmv) (constant [`Csr`]) and
//!   [`spmv_values`](Graph::spmv_values) (differentiable values on a fixed pattern), both for
//!   a vector or a `[n,k]` block;
//! - reductions: [`sum`](Graph::sum), [`mean`](Graph::mean), [`dot`](Graph::dot),
//!   [`sum_axis`](Graph::sum_axis);
//! - data movement: [`slice`](Graph::slice), [`concat`](Graph::concat),
//!   [`reshape`](Graph::reshape) (free: it shares buffers), [`gather`](Graph::gather),
//!   [`scatter_add`](Graph::scatter_add);
//! - extension: [`custom`](Graph::custom) with a [`CustomOp`].
//!
//! # Example
//!
//! ```
//! use neurohybrid_autodiff::{Graph, Result};
//!
//! # fn main() -> Result<()> {
//! // f(y, p) = Σ tanh(y ∘ p)
//! let mut g = Graph::new();
//! let y = g.input("y", &[3])?;
//! let p = g.input("p", &[3])?;
//! let yp = g.mul(y, p)?;
//! let t = g.tanh(yp)?;
//! let f = g.sum(t)?;
//! let tape = g.compile(&[f])?;
//!
//! let mut ws = tape.workspace(); // the only allocation
//! let (y0, p0) = ([0.1, 0.2, 0.3], [1.0, -2.0, 0.5]);
//! tape.forward(&mut ws, &[&y0, &p0])?;
//! let f0 = ws.output(0)[0];
//!
//! // Reverse mode: ∂f/∂y; the empty slot says ∂f/∂p is not needed.
//! let mut w_y = [0.0; 3];
//! tape.vjp(&mut ws, &[&[1.0]], &mut [&mut w_y, &mut []])?;
//! for i in 0..3 {
//!     let sech2 = 1.0 - (y0[i] * p0[i]).tanh().powi(2);
//!     assert!((w_y[i] - p0[i] * sech2).abs() < 1e-15);
//! }
//!
//! // Forward mode: directional derivative along v_y (zero tangent for p).
//! let v_y = [1.0, 0.0, 0.0];
//! let mut df = [0.0];
//! tape.jvp(&mut ws, &[&v_y, &[]], &mut [&mut df])?;
//! assert!((df[0] - w_y[0]).abs() < 1e-15);
//!
//! // Bad lengths are errors, not panics.
//! assert!(tape.forward(&mut ws, &[&y0]).is_err());
//! # let _ = f0;
//! # Ok(())
//! # }
//! ```
//!
//! # Checking derivatives
//!
//! [`check::check_vjp`] compares a tape's VJP with central finite differences (step
//! [`check::fd_step`]); [`check::check_jvp_vjp_dot`] runs the dot-product test
//! `⟨w, J v⟩ = ⟨Jᵀ w, v⟩`. Use both on every new [`CustomOp`].
#![warn(missing_docs)]

pub mod check;
mod error;
mod graph;
mod ops;
mod replay;
mod tape;

pub use error::{AutodiffError, Result};
pub use graph::{Graph, Var};
pub use ops::custom::{CustomOp, MAX_CUSTOM_OPERANDS};
pub use tape::{Tape, Workspace};

/// Compressed sparse row matrix (nalgebra-sparse storage), the operand of
/// [`Graph::spmv`] and the pattern of [`Graph::spmv_values`].
pub type Csr = nalgebra_sparse::CsrMatrix<f64>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tape_and_workspace_are_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Tape>();
        assert_send_sync::<Workspace>();
        assert_send_sync::<Graph>();
    }
}
