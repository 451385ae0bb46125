//! # neurohybrid-linalg
//!
//! The linear algebra under every implicit solver of neurohybrid, behind one trait:
//!
//! | type | method | matrix |
//! |---|---|---|
//! | [`DenseLu`] | LU with partial pivoting (faer) | [`faer::Mat<f64>`] |
//! | [`SparseLu`] | sparse LU (faer), symbolic analysis once per pattern | [`SparseMatrix`] |
//! | [`SparseCholesky`] | sparse `LLᵀ` (faer, AMD) for SPD matrices, symbolic once per pattern | [`SparseMatrix`] |
//! | [`KrylovSolver`] | GMRES(m) or CG with none / Jacobi / ILU(0) / smoothed-aggregation AMG ([`Amg`]) | [`SparseMatrix`] |
//!
//! All implement [`LinearSolver`]: `factorize`, `solve_in_place` and
//! `solve_transpose_in_place` (adjoints need `Aᵀ`). Singular or non-finite matrices are
//! [`LinalgError`]s, never panics. [`LinearSolverStats`] counts symbolic and numeric
//! factorizations and solves.
//!
//! Sparse matrices keep a fixed CSR [`SparsePattern`] and refillable values, because an implicit
//! solver rebuilds `W = M − hγJ` with the same pattern at every Jacobian refresh
//! ([`SparseMatrix::add_scaled`], [`SparseMatrix::add_to_diagonal`]). nalgebra-sparse matrices
//! enter without a copy through [`CsrRef::from_nalgebra`] and [`SparseLu::factorize_csr`].
//!
//! The Krylov methods ([`Gmres`], [`Cg`]) also work matrix-free on any [`LinearOperator`] with
//! any [`Preconditioner`] ([`Jacobi`], [`Ilu0`], [`IdentityPreconditioner`]), and report
//! non-convergence as a [`KrylovStatus`].
//!
//! [`NewtonSolver`] runs the simplified Newton iteration of implicit stages with
//! Hairer–Wanner's rate-based stopping test and reports a [`NewtonStatus`]
//! (converged / diverged / slow / non-finite / linear solve failed) with the rate `θ`.
//!
//! ## Example: one implicit Euler step with a reused factorization
//!
//! ```
//! use neurohybrid_linalg::{LinearSolver, Newton, NewtonSolver, SparseLu, SparseMatrix};
//!
//! # fn main() -> neurohybrid_linalg::Result<()> {
//! // y' = J y − y³ with J a 1D Laplacian (tridiagonal), one implicit Euler step of size h.
//! let n = 5;
//! let mut triplets = Vec::new();
//! for i in 0..n {
//!     triplets.push((i, i, -2.0));
//!     if i + 1 < n {
//!         triplets.push((i, i + 1, 1.0));
//!         triplets.push((i + 1, i, 1.0));
//!     }
//! }
//! let jac = SparseMatrix::from_triplets(n, n, &triplets)?;
//! let h = 0.1;
//! // W = I − h ∂f/∂y at y0 = 1, where ∂f/∂y = J − 3 diag(y0²), in J's pattern (+ diagonal).
//! let mut w = SparseMatrix::zeros(jac.pattern().with_diagonal()?);
//! w.add_scaled(-h, &jac)?;
//! w.add_to_diagonal(1.0 + 3.0 * h)?;
//! let mut lu = SparseLu::new();
//! lu.factorize(&w)?;
//!
//! let y0 = vec![1.0; n];
//! let mut jy = vec![0.0; n];
//! // F(y) = y − y0 − h (J y − y³); W stays frozen at y0: simplified Newton.
//! let mut residual = |y: &[f64], out: &mut [f64]| {
//!     jac.matvec(y, &mut jy).expect("sizes match");
//!     for i in 0..n {
//!         out[i] = y[i] - y0[i] - h * (jy[i] - y[i].powi(3));
//!     }
//! };
//! // Weighted norm with the ODE solver's scale atol + rtol·|y| (here rtol = 1e-6), tol = 1.
//! let scale = vec![1e-6; n];
//! let mut newton = NewtonSolver::new(Newton::default())?;
//! let mut y = y0.clone();
//! let outcome = newton.solve(&mut residual, &mut lu, &mut y, &scale)?;
//! assert!(outcome.status.is_success(), "{outcome:?}");
//! assert!(outcome.theta.unwrap() < 0.1); // contraction rate, for the Jacobian-refresh policy
//!
//! // The same factorization solves with Wᵀ for the adjoint.
//! let mut lambda = vec![1.0; n];
//! lu.solve_transpose_in_place(&mut lambda)?;
//! assert_eq!(lu.stats().numeric_factorizations, 1);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod amg;
mod dense;
mod error;
mod krylov;
mod newton;
mod solver;
mod sparse;
mod sparse_cholesky;
mod sparse_lu;

pub use amg::{Amg, AmgConfig, AmgSmoother};
pub use dense::DenseLu;
pub use error::{LinalgError, Result};
pub use krylov::{
    Cg, Gmres, IdentityPreconditioner, Ilu0, Jacobi, KrylovConfig, KrylovMethod, KrylovOutcome,
    KrylovSolver, KrylovStatus, LinearOperator, Preconditioner, PreconditionerKind, Transposed,
};
pub use newton::{Newton, NewtonOutcome, NewtonSolver, NewtonStatus, Residual};
pub use solver::{LinearSolver, LinearSolverStats};
pub use sparse::{CsrRef, SparseMatrix, SparsePattern};
pub use sparse_cholesky::{SYMMETRY_RTOL, SparseCholesky};
pub use sparse_lu::SparseLu;

/// The README's example, compiled and run as a doctest so it cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;
