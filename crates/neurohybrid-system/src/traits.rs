//! The system trait and its capability traits.
//!
//! Conventions shared by every trait here:
//! - all numbers are `f64`; state `y` has length [`OdeSystem::n_states`], parameters `p` have
//!   length [`OdeSystem::n_params`]; outputs are written (overwritten, never accumulated);
//! - methods take `&self` so a system can be shared by a stepper, a sensitivity method and a
//!   combinator at once; systems that need scratch memory keep it in a `RefCell` (see
//!   `docs/decisions/0004-solve-core.md`);
//! - lengths are checked once, when a solve starts; implementations may panic on wrong slice
//!   lengths (that is a bug in the caller, not user input).

use crate::sparsity::CsrMatrix;
use nalgebra_sparse::pattern::SparsityPattern;

/// An ODE right-hand side `dy/dt = f(t, y, p)`.
pub trait OdeSystem {
    /// Number of state components `n`.
    fn n_states(&self) -> usize;

    /// Number of parameters `m` (may be zero).
    fn n_params(&self) -> usize;

    /// Evaluate `dy = f(t, y, p)`. Must not allocate in implementations meant for hot loops.
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]);
}

/// Vector–Jacobian products of the right-hand side, the building block of every adjoint.
pub trait Vjp: OdeSystem {
    /// Write `w_y = wᵀ ∂f/∂y` (length `n`) and `w_p = wᵀ ∂f/∂p` (length `m`).
    ///
    /// `w_p` may be empty even when `m > 0`: the parameter cotangent is then not needed and
    /// implementations should skip computing it.
    fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]);
}

/// Jacobian–vector products of the right-hand side (forward sensitivities, Newton–Krylov).
pub trait Jvp: OdeSystem {
    /// Write `out = ∂f/∂y · v_y + ∂f/∂p · v_p` (length `n`).
    ///
    /// `v_p` may be empty, meaning a zero parameter tangent.
    fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]);
}

/// The state Jacobian `∂f/∂y` as a sparse matrix with a fixed pattern.
///
/// The pattern never changes during a solve, so implicit solvers analyse it (symbolic
/// factorization) once and refactor only the values. Systems that know a JVP but not their
/// Jacobian get this trait from [`crate::ColoredJacobian`] (graph coloring + one JVP per color).
pub trait Jacobian: OdeSystem {
    /// The structural nonzeros of `∂f/∂y` (`n × n`, CSR, sorted unique column indices).
    fn sparsity(&self) -> &SparsityPattern;

    /// Fill the values of `out` (whose pattern must be [`Jacobian::sparsity`]) with `∂f/∂y` at
    /// `(t, y, p)`. Only `out.values_mut()` is written; the pattern is not touched.
    fn jacobian(&self, t: f64, y: &[f64], p: &[f64], out: &mut CsrMatrix);

    /// A matrix with this system's pattern and zero values, to be filled by
    /// [`Jacobian::jacobian`]. Allocates; call once per solve.
    fn jacobian_matrix(&self) -> CsrMatrix {
        crate::sparsity::zeros_with_pattern(self.sparsity())
    }
}

// Forwarding impls, so `&S`, `Box<S>` and `Arc<S>` can be handed to combinators and solvers.
macro_rules! forward_impls {
    ($($ptr:ty),*) => {$(
        impl<S: OdeSystem + ?Sized> OdeSystem for $ptr {
            fn n_states(&self) -> usize { (**self).n_states() }
            fn n_params(&self) -> usize { (**self).n_params() }
            fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) { (**self).rhs(t, y, p, dy) }
        }
        impl<S: Vjp + ?Sized> Vjp for $ptr {
            fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
                (**self).vjp(t, y, p, w, w_y, w_p)
            }
        }
        impl<S: Jvp + ?Sized> Jvp for $ptr {
            fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
                (**self).jvp(t, y, p, v_y, v_p, out)
            }
        }
        impl<S: Jacobian + ?Sized> Jacobian for $ptr {
            fn sparsity(&self) -> &SparsityPattern { (**self).sparsity() }
            fn jacobian(&self, t: f64, y: &[f64], p: &[f64], out: &mut CsrMatrix) {
                (**self).jacobian(t, y, p, out)
            }
        }
    )*};
}
forward_impls!(&S, Box<S>, std::sync::Arc<S>, std::rc::Rc<S>);
