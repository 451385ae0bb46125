//! Sparse Cholesky `A = LLᵀ` (faer) for symmetric positive definite matrices, with the
//! symbolic analysis (AMD ordering, elimination tree, supernodes) done once per pattern.

use faer::dyn_stack::{MemBuffer, StackReq};
use faer::linalg::cholesky::llt::factor::{LltError, LltRegularization};
use faer::sparse::linalg::SupernodalThreshold;
use faer::sparse::linalg::cholesky::{
    CholeskySymbolicParams, LltRef, SymbolicCholesky, SymbolicCholeskyRaw, SymmetricOrdering,
    factorize_symbolic_cholesky,
};
use faer::sparse::{SparseColMatRef, SymbolicSparseColMatRef};
use faer::{Conj, MatMut, Par, Side};

use crate::error::{LinalgError, Result, check_finite, check_len};
use crate::solver::{LinearSolver, LinearSolverStats, Scratch};
use crate::sparse::{CsrRef, SparseMatrix, SparsePattern};

/// Relative tolerance of the symmetry check: `|a_ij − a_ji| ≤ SYMMETRY_RTOL·max(|a_ij|, |a_ji|)`.
/// Eight ulps: values computed by the same formula from the same operands in another order
/// pass, a genuinely non-symmetric matrix does not.
pub const SYMMETRY_RTOL: f64 = 8.0 * f64::EPSILON;

/// Sparse Cholesky factorization of a symmetric positive definite CSR matrix with a fixed
/// pattern.
///
/// *Why:* for SPD matrices (implicit diffusion `I − hγ DΔ` on a uniform grid, mass matrices,
/// graph Laplacians) Cholesky stores and touches one triangle, needs no pivoting, and faer
/// orders it with AMD on the symmetric pattern — on a 2D 5-point grid far less fill than the
/// COLAMD ordering of [`crate::SparseLu`] (see ADR 0003 for measured numbers).
///
/// *Input:* a CSR matrix whose pattern and values are symmetric. Both are checked: the pattern
/// once per symbolic analysis (with a precomputed mirror map `k ↦ position of (j, i)`), the
/// values at every `factorize` (`O(nnz)`, tolerance [`SYMMETRY_RTOL`]); a violation is
/// [`LinalgError::NotSymmetric`]. A symmetric matrix that is not positive definite is
/// [`LinalgError::NotPositiveDefinite`] (faer reports the first non-positive pivot; no
/// regularization is applied). Either way the solver is left unfactorized, so a caller can fall
/// back to [`crate::SparseLu`].
///
/// *Reuse:* the symbolic phase runs on the first `factorize` and when the pattern changes
/// (pointer comparison for [`SparseMatrix`], value comparison for [`CsrRef`]);
/// [`LinearSolverStats`] counts both phases. Factor storage and one scratch buffer (numeric
/// factorization and solves) are allocated at symbolic time; refactorizations and solves
/// allocate nothing afterwards, on faer's simplicial and supernodal paths alike. Everything
/// runs with `Par::Seq` (shared/CRATES.md: rayon made sparse solves ~20× slower).
///
/// `solve_transpose_in_place` is the same solve (`A = Aᵀ`), counted separately.
#[derive(Debug)]
pub struct SparseCholesky {
    pattern: Option<SparsePattern>,
    symbolic: Option<SymbolicCholesky<usize>>,
    /// `mirror[k]`: storage position of the transpose partner of the `k`-th stored entry.
    mirror: Vec<usize>,
    l_values: Vec<f64>,
    scratch: Scratch,
    factorized: bool,
    simplicial: bool,
    stats: LinearSolverStats,
}

impl Default for SparseCholesky {
    fn default() -> Self {
        Self::new()
    }
}

impl SparseCholesky {
    /// An empty solver; the first `factorize` does the symbolic analysis.
    pub fn new() -> Self {
        Self {
            pattern: None,
            symbolic: None,
            mirror: Vec::new(),
            l_values: Vec::new(),
            scratch: Scratch(MemBuffer::new(StackReq::EMPTY)),
            factorized: false,
            simplicial: false,
            stats: LinearSolverStats::default(),
        }
    }

    /// A solver whose symbolic analysis for `pattern` is done up front. Fails with
    /// [`LinalgError::NotSymmetric`] for a non-symmetric pattern.
    pub fn with_pattern(pattern: &SparsePattern) -> Result<Self> {
        let mut c = Self::new();
        c.analyze(pattern.clone())?;
        Ok(c)
    }

    /// Always use faer's simplicial (column-by-column) Cholesky instead of letting faer pick
    /// the supernodal one for high-fill patterns; takes effect at the next symbolic analysis.
    pub fn force_simplicial(mut self, yes: bool) -> Self {
        if self.simplicial != yes {
            self.simplicial = yes;
            self.pattern = None;
            self.symbolic = None;
            self.factorized = false;
        }
        self
    }

    /// The pattern of the current symbolic factorization, if any.
    pub fn pattern(&self) -> Option<&SparsePattern> {
        self.pattern.as_ref()
    }

    /// Stored entries of the factor `L` (fill measure), 0 before the symbolic analysis.
    pub fn factor_nnz(&self) -> usize {
        self.l_values.len()
    }

    /// Whether faer chose (or was forced to) the supernodal factorization.
    pub fn is_supernodal(&self) -> bool {
        self.symbolic
            .as_ref()
            .is_some_and(|s| matches!(s.raw(), SymbolicCholeskyRaw::Supernodal(_)))
    }

    fn analyze(&mut self, pattern: SparsePattern) -> Result<()> {
        self.factorized = false;
        self.symbolic = None;
        self.pattern = None;
        let n = pattern.nrows();
        if n != pattern.ncols() {
            return Err(LinalgError::NotSquare { nrows: n, ncols: pattern.ncols() });
        }
        let (rp, ci) = (pattern.row_ptr(), pattern.col_idx());
        let mirror = pattern.mirror_positions()?;
        if n > 0 {
            // CSR of A is CSC of Aᵀ = A; faer reads the lower triangle of that view.
            let a = SymbolicSparseColMatRef::new_checked(n, n, rp, None, ci);
            let mut params = CholeskySymbolicParams::default();
            if self.simplicial {
                params.supernodal_flop_ratio_threshold = SupernodalThreshold::FORCE_SIMPLICIAL;
            }
            let symbolic =
                factorize_symbolic_cholesky(a, Side::Lower, SymmetricOrdering::Amd, params)
                    .map_err(|_| LinalgError::OutOfMemory)?;
            let req = StackReq::any_of(&[
                symbolic.factorize_numeric_llt_scratch::<f64>(Par::Seq, Default::default()),
                symbolic.solve_in_place_scratch::<f64>(1, Par::Seq),
            ]);
            self.scratch = Scratch(MemBuffer::try_new(req).map_err(|_| LinalgError::OutOfMemory)?);
            self.l_values = vec![0.0; symbolic.len_val()];
            self.symbolic = Some(symbolic);
        } else {
            self.l_values = Vec::new();
        }
        self.mirror = mirror;
        self.pattern = Some(pattern);
        self.stats.symbolic_factorizations += 1;
        Ok(())
    }

    /// Factorizes a borrowed CSR matrix (e.g. [`CsrRef::from_nalgebra`]) without copying it.
    /// The pattern is compared by value against the current symbolic factorization.
    pub fn factorize_csr(&mut self, a: CsrRef<'_>) -> Result<()> {
        self.factorized = false;
        if !self.pattern.as_ref().is_some_and(|p| p.matches(&a)) {
            let pattern = SparsePattern::new(
                a.nrows(),
                a.ncols(),
                a.row_ptr().to_vec(),
                a.col_idx().to_vec(),
            )?;
            self.analyze(pattern)?;
        }
        self.factorize_numeric(a.values())
    }

    fn factorize_numeric(&mut self, values: &[f64]) -> Result<()> {
        check_finite("matrix values", values)?;
        let Some(pattern) = &self.pattern else {
            return Err(LinalgError::NotFactorized);
        };
        if let Some(k) = crate::sparse::first_asymmetry(&self.mirror, values) {
            let row = pattern.row_ptr().partition_point(|&p| p <= k) - 1;
            return Err(LinalgError::NotSymmetric { row, col: pattern.col_idx()[k] });
        }
        let Some(symbolic) = &self.symbolic else {
            // 0 × 0: nothing to factorize.
            self.factorized = true;
            self.stats.numeric_factorizations += 1;
            return Ok(());
        };
        let n = pattern.nrows();
        let a = SparseColMatRef::new(
            SymbolicSparseColMatRef::new_checked(n, n, pattern.row_ptr(), None, pattern.col_idx()),
            values,
        );
        symbolic
            .factorize_numeric_llt(
                &mut self.l_values,
                a,
                Side::Lower,
                LltRegularization::default(),
                Par::Seq,
                self.scratch.stack(),
                Default::default(),
            )
            .map_err(|e| match e {
                LltError::NonPositivePivot { index } => {
                    LinalgError::NotPositiveDefinite { pivot: index }
                }
            })?;
        self.stats.numeric_factorizations += 1;
        self.factorized = true;
        Ok(())
    }

    fn solve_impl(&mut self, b: &mut [f64]) -> Result<()> {
        if !self.factorized {
            return Err(LinalgError::NotFactorized);
        }
        let n = self.dim();
        check_len("right-hand side", n, b.len())?;
        check_finite("right-hand side", b)?;
        let Some(symbolic) = &self.symbolic else {
            return Ok(()); // 0 × 0
        };
        LltRef::new(symbolic, &self.l_values).solve_in_place_with_conj(
            Conj::No,
            MatMut::from_column_major_slice_mut(b, n, 1),
            Par::Seq,
            self.scratch.stack(),
        );
        Ok(())
    }
}

impl LinearSolver for SparseCholesky {
    type Matrix = SparseMatrix;

    fn factorize(&mut self, a: &SparseMatrix) -> Result<()> {
        self.factorized = false;
        if !self.pattern.as_ref().is_some_and(|p| p.same_as(a.pattern())) {
            self.analyze(a.pattern().clone())?;
        }
        self.factorize_numeric(a.values())
    }

    fn is_factorized(&self) -> bool {
        self.factorized
    }

    fn dim(&self) -> usize {
        self.pattern.as_ref().map_or(0, SparsePattern::nrows)
    }

    fn solve_in_place(&mut self, b: &mut [f64]) -> Result<()> {
        self.solve_impl(b)?;
        self.stats.solves += 1;
        Ok(())
    }

    fn solve_transpose_in_place(&mut self, b: &mut [f64]) -> Result<()> {
        self.solve_impl(b)?;
        self.stats.transpose_solves += 1;
        Ok(())
    }

    fn stats(&self) -> LinearSolverStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1D Laplacian + shift: SPD for `d > 2`.
    fn spd_tridiag(n: usize, d: f64) -> SparseMatrix {
        let mut t = Vec::new();
        for i in 0..n {
            t.push((i, i, d));
            if i + 1 < n {
                t.push((i, i + 1, -1.0));
                t.push((i + 1, i, -1.0));
            }
        }
        SparseMatrix::from_triplets(n, n, &t).unwrap()
    }

    #[test]
    fn solve_matches_matvec() {
        let a = spd_tridiag(7, 3.0);
        let mut c = SparseCholesky::new();
        c.factorize(&a).unwrap();
        let x: Vec<f64> = (0..7).map(|i| i as f64 - 2.5).collect();
        let mut b = vec![0.0; 7];
        a.matvec(&x, &mut b).unwrap();
        let mut bt = b.clone();
        c.solve_in_place(&mut b).unwrap();
        c.solve_transpose_in_place(&mut bt).unwrap();
        for ((u, w), v) in b.iter().zip(&bt).zip(&x) {
            assert!((u - v).abs() < 1e-13 && (w - v).abs() < 1e-13);
        }
        let s = c.stats();
        assert_eq!((s.symbolic_factorizations, s.numeric_factorizations), (1, 1));
        assert_eq!((s.solves, s.transpose_solves), (1, 1));
    }

    #[test]
    fn indefinite_and_non_symmetric_are_named_errors() {
        let mut c = SparseCholesky::new();
        // Symmetric, eigenvalues 3 and −1.
        let a = SparseMatrix::from_triplets(
            2,
            2,
            &[(0, 0, 1.0), (0, 1, 2.0), (1, 0, 2.0), (1, 1, 1.0)],
        )
        .unwrap();
        assert!(matches!(c.factorize(&a), Err(LinalgError::NotPositiveDefinite { .. })));
        assert!(!c.is_factorized());
        assert_eq!(c.solve_in_place(&mut [0.0; 2]), Err(LinalgError::NotFactorized));
        // Non-symmetric values.
        let a = SparseMatrix::from_triplets(
            2,
            2,
            &[(0, 0, 4.0), (0, 1, 1.0), (1, 0, 2.0), (1, 1, 4.0)],
        )
        .unwrap();
        assert_eq!(c.factorize(&a), Err(LinalgError::NotSymmetric { row: 0, col: 1 }));
        // Non-symmetric pattern.
        let a =
            SparseMatrix::from_triplets(2, 2, &[(0, 0, 4.0), (0, 1, 1.0), (1, 1, 4.0)]).unwrap();
        assert_eq!(c.factorize(&a), Err(LinalgError::NotSymmetric { row: 0, col: 1 }));
        // And it recovers on a good matrix.
        c.factorize(&spd_tridiag(3, 4.0)).unwrap();
        assert!(c.is_factorized());
    }

    #[test]
    fn one_symbolic_for_many_numeric_and_forced_simplicial() {
        for simplicial in [false, true] {
            let mut a = spd_tridiag(50, 3.0);
            let mut c = SparseCholesky::new().force_simplicial(simplicial);
            for k in 0..5 {
                a.add_to_diagonal(0.1 * k as f64).unwrap();
                c.factorize(&a).unwrap();
            }
            let s = c.stats();
            assert_eq!((s.symbolic_factorizations, s.numeric_factorizations), (1, 5));
            assert!(c.factor_nnz() >= 50);
            if simplicial {
                assert!(!c.is_supernodal());
            }
            // A smaller pattern afterwards gets a fresh analysis.
            c.factorize(&spd_tridiag(10, 3.0)).unwrap();
            assert_eq!(c.stats().symbolic_factorizations, 2);
            let mut b = vec![1.0; 10];
            c.solve_in_place(&mut b).unwrap();
            assert!(b.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn empty_matrix_is_fine() {
        let a = SparseMatrix::zeros(SparsePattern::new(0, 0, vec![0], vec![]).unwrap());
        let mut c = SparseCholesky::new();
        c.factorize(&a).unwrap();
        c.solve_in_place(&mut []).unwrap();
    }
}
