//! # neurohybrid-system
//!
//! The vocabulary every layer speaks. A model is an [`OdeSystem`] — `dy/dt = f(t, y, p)` on
//! flat `f64` slices — plus whichever capabilities it can offer:
//!
//! | trait | provides | used by |
//! |---|---|---|
//! | [`OdeSystem`] | `rhs` | every stepper |
//! | [`Vjp`] | `wᵀ∂f/∂y`, `wᵀ∂f/∂p` | adjoint sensitivities |
//! | [`Jvp`] | `∂f/∂y·v_y + ∂f/∂p·v_p` | forward sensitivities, Newton–Krylov |
//! | [`Jacobian`] | sparse `∂f/∂y` with a fixed pattern | implicit steppers |
//!
//! A system that only knows its JVP gets a [`Jacobian`] from [`ColoredJacobian`]: the caller
//! hands over the sparsity pattern, columns are colored (greedy distance-2) and one JVP per color
//! fills the matrix. [`Sum`] adds two systems (mechanistic + neural residual), [`Split`] marks
//! the stiff and non-stiff parts for IMEX methods, and [`ParamLayout`] names the blocks of the
//! shared flat parameter vector. [`TapeSystem`] replays a right-hand side recorded once as a
//! `neurohybrid-autodiff` graph, with exact VJP/JVP/Jacobian and no allocation per call.
//!
//! This crate knows nothing of solvers, meshes or networks.
//!
//! ```
//! use neurohybrid_system::{ColoredJacobian, Jacobian, Jvp, OdeSystem, Sum, tridiagonal_pattern};
//!
//! /// 1D diffusion `dy_i/dt = p₀ (y_{i-1} - 2 y_i + y_{i+1})` with zero boundary values.
//! struct Diffusion(usize);
//! impl OdeSystem for Diffusion {
//!     fn n_states(&self) -> usize { self.0 }
//!     fn n_params(&self) -> usize { 1 }
//!     fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
//!         let n = self.0;
//!         for i in 0..n {
//!             let l = if i > 0 { y[i - 1] } else { 0.0 };
//!             let r = if i + 1 < n { y[i + 1] } else { 0.0 };
//!             dy[i] = p[0] * (l - 2.0 * y[i] + r);
//!         }
//!     }
//! }
//! impl Jvp for Diffusion {
//!     fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
//!         self.rhs(t, v_y, p, out); // linear in y
//!         if let Some(&dp) = v_p.first() {
//!             let mut f = vec![0.0; self.0];
//!             self.rhs(t, y, &[1.0], &mut f);
//!             out.iter_mut().zip(&f).for_each(|(o, f)| *o += dp * f);
//!         }
//!     }
//! }
//!
//! let n = 6;
//! let sys = ColoredJacobian::new(Diffusion(n), tridiagonal_pattern(n))?;
//! assert_eq!(sys.n_colors(), 3); // 3 JVPs per Jacobian, whatever n is
//! let mut jac = sys.jacobian_matrix();
//! sys.jacobian(0.0, &[0.0; 6], &[2.0], &mut jac);
//! assert_eq!(jac.get_entry(2, 2).unwrap().into_value(), -4.0);
//! assert_eq!(jac.get_entry(2, 3).unwrap().into_value(), 2.0);
//!
//! // Two diffusions summed: parameters are concatenated, [p_first; p_second].
//! let both = Sum::new(Diffusion(n), Diffusion(n))?;
//! let mut dy = vec![0.0; n];
//! both.rhs(0.0, &[1.0; 6], &[1.0, 2.0], &mut dy);
//! assert_eq!(dy[0], -3.0);
//! # Ok::<(), neurohybrid_system::SystemError>(())
//! ```
#![warn(missing_docs)]

mod combinators;
mod error;
mod params;
mod sparsity;
mod tape_system;
mod traits;

pub use combinators::{Split, Sum};
pub use error::{Result, SystemError};
pub use nalgebra_sparse::pattern::SparsityPattern;
pub use params::{ParamBlock, ParamLayout};
pub use sparsity::{
    ColoredJacobian, ColumnColoring, CsrMatrix, JacobianColoring, dense_pattern, entry_index,
    pattern_from_rows, pattern_union, tridiagonal_pattern, zeros_with_pattern,
};
pub use tape_system::TapeSystem;
pub use traits::{Jacobian, Jvp, OdeSystem, Vjp};
