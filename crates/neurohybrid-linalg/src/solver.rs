//! The one trait behind which every linear solver sits.

use crate::error::Result;

/// Work counters of a linear solver, so tests and the ODE solvers' statistics can assert
/// efficiency ("one symbolic factorization for many numeric ones").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinearSolverStats {
    /// Symbolic analyses (fill-reducing ordering and elimination structure; for the Krylov
    /// adaptor: preconditioner pattern setups). Happens once per sparsity pattern.
    pub symbolic_factorizations: usize,
    /// Successful numeric factorizations (LU, or preconditioner refreshes for Krylov).
    pub numeric_factorizations: usize,
    /// Solves with `A`.
    pub solves: usize,
    /// Solves with `Aᵀ`.
    pub transpose_solves: usize,
    /// Krylov iterations summed over all solves (zero for direct solvers).
    pub krylov_iterations: usize,
}

/// A linear solver: factorize once, solve many times with `A` and with `Aᵀ`.
///
/// The transpose solve exists for adjoints: the discrete adjoint of an implicit step solves
/// with `Wᵀ` using the factorization the forward step already paid for.
///
/// Contract:
/// - `factorize` validates the matrix (square, finite) and returns
///   [`crate::LinalgError::Singular`] rather than producing a factorization full of infinities;
///   after any error the solver is *not* factorized.
/// - `solve_in_place` / `solve_transpose_in_place` overwrite `b` with the solution and allocate
///   nothing in steady state; they return [`crate::LinalgError::NotFactorized`] before a
///   successful factorization and [`crate::LinalgError::DimensionMismatch`] for a wrong length.
pub trait LinearSolver {
    /// The matrix type this solver factorizes.
    type Matrix: ?Sized;

    /// Factorizes `a` (replacing any previous factorization).
    fn factorize(&mut self, a: &Self::Matrix) -> Result<()>;

    /// Whether the last `factorize` succeeded.
    fn is_factorized(&self) -> bool;

    /// Dimension of the factorized matrix (0 before the first factorization).
    fn dim(&self) -> usize;

    /// Overwrites `b` with `A⁻¹ b`.
    fn solve_in_place(&mut self, b: &mut [f64]) -> Result<()>;

    /// Overwrites `b` with `A⁻ᵀ b`.
    fn solve_transpose_in_place(&mut self, b: &mut [f64]) -> Result<()>;

    /// Work counters.
    fn stats(&self) -> LinearSolverStats;

    /// `x = A⁻¹ b` without touching `b`.
    fn solve(&mut self, b: &[f64], x: &mut [f64]) -> Result<()> {
        crate::error::check_len("solution vector", b.len(), x.len())?;
        x.copy_from_slice(b);
        self.solve_in_place(x)
    }

    /// `x = A⁻ᵀ b` without touching `b`.
    fn solve_transpose(&mut self, b: &[f64], x: &mut [f64]) -> Result<()> {
        crate::error::check_len("solution vector", b.len(), x.len())?;
        x.copy_from_slice(b);
        self.solve_transpose_in_place(x)
    }
}

/// faer scratch memory, allocated once and reused by factorizations and solves.
pub(crate) struct Scratch(pub(crate) faer::dyn_stack::MemBuffer);

impl Scratch {
    pub(crate) fn stack(&mut self) -> &mut faer::dyn_stack::MemStack {
        faer::dyn_stack::MemStack::new(&mut self.0)
    }
}

impl core::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Scratch")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DenseLu, LinalgError};

    #[test]
    fn default_out_of_place_solves() {
        let mut lu = DenseLu::new(2);
        lu.factorize(&faer::mat![[2.0, 1.0], [0.0, 4.0]]).unwrap();
        let b = [3.0, 4.0];
        let mut x = [0.0; 2];
        lu.solve(&b, &mut x).unwrap();
        assert_eq!(x, [1.0, 1.0]);
        lu.solve_transpose(&b, &mut x).unwrap();
        assert_eq!(x, [1.5, 0.625]);
        assert!(matches!(lu.solve(&b, &mut [0.0; 3]), Err(LinalgError::DimensionMismatch { .. })));
    }
}
