//! Dense LU with partial pivoting (faer), allocation-free after the first factorization.

use faer::dyn_stack::{MemBuffer, StackReq};
use faer::linalg::lu::partial_pivoting::{factor, solve};
use faer::perm::PermRef;
use faer::{Mat, MatMut, MatRef, Par};

use crate::error::{LinalgError, Result, check_finite, check_len};
use crate::solver::{LinearSolver, LinearSolverStats, Scratch};

/// Dense `PA = LU` through faer's in-place kernels.
///
/// faer's convenience `partial_piv_lu()` allocates a new factorization per call; the in-place
/// kernels with a scratch buffer kept here do not, which matters when an implicit solver
/// refactorizes `W` on every step of a small stiff system. Parallelism is `Par::Seq`: the
/// systems that reach a dense LU are small, and threads only add latency
/// (shared/CRATES.md measured a 20× slowdown from rayon on small sparse solves).
#[derive(Debug)]
pub struct DenseLu {
    lu: Mat<f64>,
    perm: Vec<usize>,
    perm_inv: Vec<usize>,
    scratch: Scratch,
    factorized: bool,
    stats: LinearSolverStats,
}

impl Default for DenseLu {
    fn default() -> Self {
        Self::new(0)
    }
}

fn scratch_req(n: usize) -> StackReq {
    StackReq::any_of(&[
        factor::lu_in_place_scratch::<usize, f64>(n, n, Par::Seq, Default::default()),
        solve::solve_in_place_scratch::<usize, f64>(n, 1, Par::Seq),
        solve::solve_transpose_in_place_scratch::<usize, f64>(n, 1, Par::Seq),
    ])
}

impl DenseLu {
    /// A solver with workspace for `n × n` matrices (it resizes itself if given another size).
    pub fn new(n: usize) -> Self {
        Self {
            lu: Mat::zeros(n, n),
            perm: vec![0; n],
            perm_inv: vec![0; n],
            scratch: Scratch(MemBuffer::new(scratch_req(n))),
            factorized: false,
            stats: LinearSolverStats::default(),
        }
    }

    /// Factorizes a borrowed dense matrix (any strides).
    pub fn factorize_ref(&mut self, a: MatRef<'_, f64>) -> Result<()> {
        self.factorized = false;
        let (nrows, ncols) = (a.nrows(), a.ncols());
        if nrows != ncols {
            return Err(LinalgError::NotSquare { nrows, ncols });
        }
        for j in 0..ncols {
            for i in 0..nrows {
                if !a[(i, j)].is_finite() {
                    return Err(LinalgError::NonFinite {
                        what: "matrix values (column-major)",
                        index: j * nrows + i,
                    });
                }
            }
        }
        let n = nrows;
        if self.lu.nrows() != n {
            // Only on a size change: steady state reuses everything.
            *self = Self { stats: self.stats, ..Self::new(n) };
        }
        self.lu.copy_from(a);
        factor::lu_in_place(
            self.lu.as_mut(),
            &mut self.perm,
            &mut self.perm_inv,
            Par::Seq,
            self.scratch.stack(),
            Default::default(),
        );
        // faer keeps going past a zero pivot (dividing by it); we refuse such a factorization
        // instead of letting infinities reach the caller's Newton iteration.
        if let Some(k) = (0..n).find(|&k| {
            let u = self.lu[(k, k)];
            u == 0.0 || !u.is_finite()
        }) {
            return Err(LinalgError::Singular { pivot: Some(k) });
        }
        self.stats.numeric_factorizations += 1;
        self.factorized = true;
        Ok(())
    }

    fn solve_impl(&mut self, b: &mut [f64], transpose: bool) -> Result<()> {
        if !self.factorized {
            return Err(LinalgError::NotFactorized);
        }
        let n = self.lu.nrows();
        check_len("right-hand side", n, b.len())?;
        check_finite("right-hand side", b)?;
        if n == 0 {
            return Ok(());
        }
        let rhs = MatMut::from_column_major_slice_mut(b, n, 1);
        let perm = PermRef::new_checked(&self.perm, &self.perm_inv, n);
        let stack = self.scratch.stack();
        // faer stores L (unit lower) and U in the same matrix; it reads only its half of each.
        let lu = self.lu.as_ref();
        if transpose {
            solve::solve_transpose_in_place(lu, lu, perm, rhs, Par::Seq, stack);
            self.stats.transpose_solves += 1;
        } else {
            solve::solve_in_place(lu, lu, perm, rhs, Par::Seq, stack);
            self.stats.solves += 1;
        }
        Ok(())
    }
}

impl LinearSolver for DenseLu {
    type Matrix = Mat<f64>;

    fn factorize(&mut self, a: &Mat<f64>) -> Result<()> {
        self.factorize_ref(a.as_ref())
    }

    fn is_factorized(&self) -> bool {
        self.factorized
    }

    fn dim(&self) -> usize {
        self.lu.nrows()
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
    use faer::mat;

    #[test]
    fn solves_and_transpose_solves() {
        let a = mat![[4.0, 1.0, 0.0], [2.0, 5.0, 1.0], [0.0, 3.0, 6.0]];
        let mut lu = DenseLu::new(3);
        lu.factorize(&a).unwrap();
        let x_true = [1.0, -2.0, 3.0];
        let mut b = [0.0; 3];
        let mut bt = [0.0; 3];
        for i in 0..3 {
            for j in 0..3 {
                b[i] += a[(i, j)] * x_true[j];
                bt[i] += a[(j, i)] * x_true[j];
            }
        }
        lu.solve_in_place(&mut b).unwrap();
        lu.solve_transpose_in_place(&mut bt).unwrap();
        for i in 0..3 {
            assert!((b[i] - x_true[i]).abs() < 1e-13);
            assert!((bt[i] - x_true[i]).abs() < 1e-13);
        }
        assert_eq!(lu.stats().solves, 1);
        assert_eq!(lu.stats().transpose_solves, 1);
    }

    #[test]
    fn singular_and_nan_are_errors() {
        let mut lu = DenseLu::new(2);
        let err = lu.factorize(&mat![[1.0, 2.0], [2.0, 4.0]]).unwrap_err();
        assert_eq!(err, LinalgError::Singular { pivot: Some(1) });
        assert!(!lu.is_factorized());
        assert_eq!(lu.solve_in_place(&mut [1.0, 1.0]), Err(LinalgError::NotFactorized));
        let err = lu.factorize(&mat![[1.0, f64::NAN], [2.0, 4.0]]).unwrap_err();
        assert!(matches!(err, LinalgError::NonFinite { index: 2, .. }), "{err}");
        let err = lu.factorize(&Mat::zeros(2, 3)).unwrap_err();
        assert_eq!(err, LinalgError::NotSquare { nrows: 2, ncols: 3 });
    }

    #[test]
    fn resizes_and_rejects_wrong_rhs() {
        let mut lu = DenseLu::default();
        lu.factorize(&mat![[2.0]]).unwrap();
        let mut b = [4.0];
        lu.solve_in_place(&mut b).unwrap();
        assert_eq!(b, [2.0]);
        assert!(matches!(
            lu.solve_in_place(&mut [1.0, 2.0]),
            Err(LinalgError::DimensionMismatch { expected: 1, got: 2, .. })
        ));
    }
}
