//! Sparse LU (faer) with the symbolic analysis done once per sparsity pattern.

use faer::dyn_stack::{MemBuffer, StackReq};
use faer::sparse::linalg::lu::{
    LuRef, LuSymbolicParams, NumericLu, SymbolicLu, factorize_symbolic_lu,
};
use faer::sparse::linalg::{LuError, SupernodalThreshold};
use faer::sparse::{SparseColMatRef, SymbolicSparseColMatRef};
use faer::{Conj, MatMut, Par};

use crate::error::{LinalgError, Result, check_finite, check_len};
use crate::solver::{LinearSolver, LinearSolverStats, Scratch};
use crate::sparse::{CsrRef, SparseMatrix, SparsePattern};

/// Sparse LU of a CSR matrix with a fixed pattern.
///
/// *Why the transpose trick:* a CSR matrix `A` is, byte for byte, the CSC matrix `Aᵀ`. faer
/// factorizes CSC, so we hand it `Aᵀ` without copying or sorting anything and swap the roles of
/// faer's `solve` and `solve_transpose`: `A x = b` is faer's transpose solve of `Aᵀ`, and the
/// adjoint's `Aᵀ x = b` is faer's plain solve. Both directions reuse one factorization.
///
/// *Why symbolic reuse:* the symbolic phase (COLAMD fill-reducing ordering, elimination tree,
/// supernode detection) depends only on the pattern, and implicit solvers refactorize
/// `W = M − hγJ` with the same pattern at every Jacobian refresh. The symbolic factorization is
/// computed on the first `factorize` and whenever the pattern changes (compared by pointer for
/// [`SparseMatrix`], by value for a borrowed [`CsrRef`]); [`LinearSolverStats`] counts both
/// phases so tests can assert the reuse.
///
/// *Singularity:* faer's numeric LU reports structurally singular matrices but continues past a
/// numerically zero pivot (dividing by it). After each numeric factorization we therefore solve
/// once with a probe right-hand side (all ones, into preallocated storage); a zero pivot always
/// leaves a non-finite entry in that solution, and the factorization is refused with
/// [`LinalgError::Singular`]. The probe costs one triangular solve pair, small next to the
/// factorization itself.
///
/// Scratch memory for factorization and solves is allocated once per pattern; faer's
/// `NumericLu` keeps its factor storage between refactorizations. All work uses `Par::Seq`
/// (shared/CRATES.md: rayon made small sparse solves ~20× slower).
///
/// *Allocation:* solves never allocate. Refactorizations allocate nothing on faer's
/// simplicial path (chosen automatically for low fill: 2D grids, connectomes); faer's
/// supernodal path (chosen for heavy fill, e.g. 3D grids) allocates per-supernode work blocks
/// inside faer on every numeric factorization. [`SparseLu::force_simplicial`] trades the
/// supernodal path's dense-kernel speed for strictly allocation-free refactorizations.
#[derive(Debug)]
pub struct SparseLu {
    pattern: Option<SparsePattern>,
    symbolic: Option<SymbolicLu<usize>>,
    numeric: NumericLu<usize, f64>,
    scratch: Scratch,
    probe: Vec<f64>,
    factorized: bool,
    simplicial: bool,
    stats: LinearSolverStats,
}

impl Default for SparseLu {
    fn default() -> Self {
        Self::new()
    }
}

fn map_lu_error(e: LuError) -> LinalgError {
    match e {
        LuError::SymbolicSingular { index } => LinalgError::Singular { pivot: Some(index) },
        LuError::Generic(_) => LinalgError::OutOfMemory,
    }
}

impl SparseLu {
    /// An empty solver; the first `factorize` does the symbolic analysis.
    pub fn new() -> Self {
        Self {
            pattern: None,
            symbolic: None,
            numeric: NumericLu::new(),
            scratch: Scratch(MemBuffer::new(StackReq::EMPTY)),
            probe: Vec::new(),
            factorized: false,
            simplicial: false,
            stats: LinearSolverStats::default(),
        }
    }

    /// A solver whose symbolic analysis for `pattern` is done up front.
    pub fn with_pattern(pattern: &SparsePattern) -> Result<Self> {
        let mut lu = Self::new();
        lu.analyze(pattern.clone())?;
        Ok(lu)
    }

    /// Always use faer's simplicial (column-by-column) LU instead of letting faer pick the
    /// supernodal one for high-fill patterns; takes effect at the next symbolic analysis.
    pub fn force_simplicial(mut self, yes: bool) -> Self {
        if self.simplicial != yes {
            self.simplicial = yes;
            self.pattern = None; // redo the analysis with the new choice
            self.symbolic = None;
            self.factorized = false;
        }
        self
    }

    /// The pattern of the current symbolic factorization, if any.
    pub fn pattern(&self) -> Option<&SparsePattern> {
        self.pattern.as_ref()
    }

    /// Symbolic analysis of a square pattern; allocates the scratch for everything after.
    fn analyze(&mut self, pattern: SparsePattern) -> Result<()> {
        self.factorized = false;
        self.symbolic = None;
        self.pattern = None;
        // faer's NumericLu grows its buffers but never shrinks them, and then trusts their
        // lengths: a factorization reused across a *smaller* pattern trips its assertions.
        // A new pattern therefore starts from fresh numeric storage.
        self.numeric = NumericLu::new();
        let n = pattern.nrows();
        if n != pattern.ncols() {
            return Err(LinalgError::NotSquare { nrows: n, ncols: pattern.ncols() });
        }
        if n > 0 {
            // CSR arrays of A read as CSC of Aᵀ (validated CSR, so these checks cannot fail).
            let at = SymbolicSparseColMatRef::new_checked(
                n,
                n,
                pattern.row_ptr(),
                None,
                pattern.col_idx(),
            );
            let mut params = LuSymbolicParams::default();
            if self.simplicial {
                params.supernodal_flop_ratio_threshold = SupernodalThreshold::FORCE_SIMPLICIAL;
            }
            let symbolic =
                factorize_symbolic_lu(at, params).map_err(|_| LinalgError::OutOfMemory)?;
            let req = StackReq::any_of(&[
                symbolic.factorize_numeric_lu_scratch::<f64>(Par::Seq, Default::default()),
                symbolic.solve_in_place_scratch::<f64>(1, Par::Seq),
                symbolic.solve_transpose_in_place_scratch::<f64>(1, Par::Seq),
            ]);
            self.scratch = Scratch(MemBuffer::try_new(req).map_err(|_| LinalgError::OutOfMemory)?);
            self.symbolic = Some(symbolic);
        }
        self.probe.resize(n, 0.0);
        self.pattern = Some(pattern);
        self.stats.symbolic_factorizations += 1;
        Ok(())
    }

    /// Factorizes a borrowed CSR matrix (e.g. [`CsrRef::from_nalgebra`]) without copying it.
    /// The pattern is compared by value against the current symbolic factorization.
    pub fn factorize_csr(&mut self, a: CsrRef<'_>) -> Result<()> {
        self.factorized = false;
        let same = self.pattern.as_ref().is_some_and(|p| p.matches(&a));
        if !same {
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

    /// Numeric factorization with the stored symbolic one; `values` are in the stored pattern.
    fn factorize_numeric(&mut self, values: &[f64]) -> Result<()> {
        check_finite("matrix values", values)?;
        let (Some(pattern), Some(symbolic)) = (&self.pattern, &self.symbolic) else {
            // 0 × 0: nothing to factorize.
            self.factorized = self.pattern.is_some();
            self.stats.numeric_factorizations += usize::from(self.factorized);
            return Ok(());
        };
        let n = pattern.nrows();
        let at = SparseColMatRef::new(
            SymbolicSparseColMatRef::new_checked(n, n, pattern.row_ptr(), None, pattern.col_idx()),
            values,
        );
        let stack = self.scratch.stack();
        let lu = symbolic
            .factorize_numeric_lu(&mut self.numeric, at, Par::Seq, stack, Default::default())
            .map_err(map_lu_error)?;
        // Probe solve A x = 1 (faer's transpose solve of Aᵀ) to catch zero pivots.
        self.probe.fill(1.0);
        lu.solve_transpose_in_place_with_conj(
            Conj::No,
            MatMut::from_column_major_slice_mut(&mut self.probe, n, 1),
            Par::Seq,
            self.scratch.stack(),
        );
        if self.probe.iter().any(|v| !v.is_finite()) {
            return Err(LinalgError::Singular { pivot: None });
        }
        self.stats.numeric_factorizations += 1;
        self.factorized = true;
        Ok(())
    }

    fn solve_impl(&mut self, b: &mut [f64], transpose: bool) -> Result<()> {
        if !self.factorized {
            return Err(LinalgError::NotFactorized);
        }
        let n = self.dim();
        check_len("right-hand side", n, b.len())?;
        check_finite("right-hand side", b)?;
        if transpose {
            self.stats.transpose_solves += 1;
        } else {
            self.stats.solves += 1;
        }
        let Some(symbolic) = &self.symbolic else {
            return Ok(()); // 0 × 0
        };
        let lu = LuRef::new_unchecked(symbolic, &self.numeric);
        let rhs = MatMut::from_column_major_slice_mut(b, n, 1);
        let stack = self.scratch.stack();
        // We factorized Aᵀ: A⁻¹ is faer's transpose solve, A⁻ᵀ its plain solve.
        if transpose {
            lu.solve_in_place_with_conj(Conj::No, rhs, Par::Seq, stack);
        } else {
            lu.solve_transpose_in_place_with_conj(Conj::No, rhs, Par::Seq, stack);
        }
        Ok(())
    }
}

impl LinearSolver for SparseLu {
    type Matrix = SparseMatrix;

    fn factorize(&mut self, a: &SparseMatrix) -> Result<()> {
        self.factorized = false;
        // Pointer-equal patterns (the common case: W refilled in place) skip the comparison.
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
        self.solve_impl(b, false)
    }

    fn solve_transpose_in_place(&mut self, b: &mut [f64]) -> Result<()> {
        self.solve_impl(b, true)
    }

    fn stats(&self) -> LinearSolverStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tridiag(n: usize, d: f64) -> SparseMatrix {
        let mut t = Vec::new();
        for i in 0..n {
            t.push((i, i, d));
            if i + 1 < n {
                t.push((i, i + 1, -1.0));
                t.push((i + 1, i, -2.0));
            }
        }
        SparseMatrix::from_triplets(n, n, &t).unwrap()
    }

    #[test]
    fn solve_matches_matvec_both_directions() {
        let a = tridiag(6, 4.0);
        let mut lu = SparseLu::new();
        lu.factorize(&a).unwrap();
        let x: Vec<f64> = (0..6).map(|i| i as f64 - 2.5).collect();
        let mut b = vec![0.0; 6];
        a.matvec(&x, &mut b).unwrap();
        lu.solve_in_place(&mut b).unwrap();
        for (u, v) in b.iter().zip(&x) {
            assert!((u - v).abs() < 1e-13);
        }
        let mut bt = vec![0.0; 6];
        a.matvec_transpose(&x, &mut bt).unwrap();
        lu.solve_transpose_in_place(&mut bt).unwrap();
        for (u, v) in bt.iter().zip(&x) {
            assert!((u - v).abs() < 1e-13);
        }
    }

    #[test]
    fn numerically_and_structurally_singular() {
        // Numerically singular: rows 0 and 1 equal.
        let a = SparseMatrix::from_triplets(
            2,
            2,
            &[(0, 0, 1.0), (0, 1, 2.0), (1, 0, 1.0), (1, 1, 2.0)],
        )
        .unwrap();
        let mut lu = SparseLu::new();
        assert!(matches!(lu.factorize(&a), Err(LinalgError::Singular { .. })));
        assert!(!lu.is_factorized());
        // Structurally singular: an empty row.
        let a =
            SparseMatrix::from_triplets(3, 3, &[(0, 0, 1.0), (0, 1, 1.0), (2, 2, 1.0)]).unwrap();
        assert!(matches!(lu.factorize(&a), Err(LinalgError::Singular { .. })));
        assert_eq!(lu.solve_in_place(&mut [0.0; 3]), Err(LinalgError::NotFactorized));
    }

    #[test]
    fn empty_matrix_is_fine() {
        let a = SparseMatrix::zeros(SparsePattern::new(0, 0, vec![0], vec![]).unwrap());
        let mut lu = SparseLu::new();
        lu.factorize(&a).unwrap();
        lu.solve_in_place(&mut []).unwrap();
    }
}
