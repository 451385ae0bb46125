//! Jacobi and ILU(0) preconditioners on a fixed-pattern sparse matrix.

use crate::error::{LinalgError, Result, check_finite};
use crate::krylov::operator::Preconditioner;
use crate::sparse::{SparseMatrix, SparsePattern};

/// Diagonal (Jacobi) preconditioner `M = diag(A)`.
#[derive(Debug, Clone)]
pub struct Jacobi {
    inv_diag: Vec<f64>,
}

impl Jacobi {
    /// Builds `M⁻¹ = diag(A)⁻¹`; a missing or zero diagonal entry is
    /// [`LinalgError::Singular`] naming the row.
    pub fn new(a: &SparseMatrix) -> Result<Self> {
        let mut j = Self { inv_diag: Vec::new() };
        j.update(a)?;
        Ok(j)
    }

    /// Refreshes from new values (reusing storage).
    pub fn update(&mut self, a: &SparseMatrix) -> Result<()> {
        if a.nrows() != a.ncols() {
            return Err(LinalgError::NotSquare { nrows: a.nrows(), ncols: a.ncols() });
        }
        a.check_finite()?;
        self.inv_diag.clear();
        for i in 0..a.nrows() {
            let d = a.pattern().diagonal_position(i).map_or(0.0, |p| a.values()[p]);
            if d == 0.0 {
                return Err(LinalgError::Singular { pivot: Some(i) });
            }
            self.inv_diag.push(1.0 / d);
        }
        Ok(())
    }
}

impl Preconditioner for Jacobi {
    fn apply(&mut self, r: &[f64], z: &mut [f64]) {
        for ((zi, ri), di) in z.iter_mut().zip(r).zip(&self.inv_diag) {
            *zi = ri * di;
        }
    }
    fn apply_transpose(&mut self, r: &[f64], z: &mut [f64]) {
        self.apply(r, z);
    }
}

/// Incomplete LU with zero fill-in, ILU(0): `A ≈ LU` with `L` unit lower and `U` upper
/// triangular, both restricted to the pattern of `A` (Saad, *Iterative Methods for Sparse
/// Linear Systems*, 2nd ed., §10.3.2, Algorithm 10.4, the IKJ variant on CSR rows).
///
/// The factors are stored in one value array over `A`'s pattern (strictly lower part = `L`,
/// the rest = `U`), so a refresh with new values of the same pattern allocates nothing.
/// Every diagonal entry must be in the pattern.
#[derive(Debug, Clone)]
pub struct Ilu0 {
    pattern: SparsePattern,
    lu: Vec<f64>,
    /// Column → storage position in the row being eliminated (Saad's `iw`), `usize::MAX` if absent.
    marker: Vec<usize>,
}

impl Ilu0 {
    /// Factorizes `a`.
    pub fn new(a: &SparseMatrix) -> Result<Self> {
        if !a.pattern().has_full_diagonal() {
            return Err(LinalgError::PatternMismatch {
                reason: "ILU(0) needs a square pattern containing every diagonal entry",
            });
        }
        let mut ilu = Self {
            pattern: a.pattern().clone(),
            lu: vec![0.0; a.pattern().nnz()],
            marker: vec![usize::MAX; a.nrows()],
        };
        ilu.update(a)?;
        Ok(ilu)
    }

    /// Refactorizes with new values in the same pattern.
    // Storage-position loops mirror Saad's Algorithm 10.4 one to one; iterator chains would hide it.
    #[allow(clippy::needless_range_loop)]
    pub fn update(&mut self, a: &SparseMatrix) -> Result<()> {
        if !self.pattern.same_as(a.pattern()) {
            return Err(LinalgError::PatternMismatch {
                reason: "ILU(0) refresh needs the pattern it was built with",
            });
        }
        a.check_finite()?;
        self.lu.copy_from_slice(a.values());
        let p = &self.pattern;
        let (row_ptr, col_idx, diag) = (p.row_ptr(), p.col_idx(), p.diag_positions());
        for i in 0..p.nrows() {
            let row = row_ptr[i]..row_ptr[i + 1];
            for k in row.clone() {
                self.marker[col_idx[k]] = k;
            }
            // Eliminate with every earlier row k that row i references (columns < i, in order).
            for pos in row_ptr[i]..diag[i] {
                let k = col_idx[pos];
                let l_ik = self.lu[pos] / self.lu[diag[k]];
                self.lu[pos] = l_ik;
                // Drop fill-in: update only entries (i, j) already in the pattern.
                for kj in diag[k] + 1..row_ptr[k + 1] {
                    let target = self.marker[col_idx[kj]];
                    if target != usize::MAX {
                        self.lu[target] -= l_ik * self.lu[kj];
                    }
                }
            }
            for k in row {
                self.marker[col_idx[k]] = usize::MAX;
            }
            let u_ii = self.lu[diag[i]];
            if u_ii == 0.0 || !u_ii.is_finite() {
                return Err(LinalgError::Singular { pivot: Some(i) });
            }
        }
        check_finite("ILU(0) factors", &self.lu)
    }
}

impl Preconditioner for Ilu0 {
    fn apply(&mut self, r: &[f64], z: &mut [f64]) {
        let p = &self.pattern;
        let (row_ptr, col_idx, diag) = (p.row_ptr(), p.col_idx(), p.diag_positions());
        let n = p.nrows();
        // L y = r (unit lower), in place in z.
        for i in 0..n {
            let mut s = r[i];
            for k in row_ptr[i]..diag[i] {
                s -= self.lu[k] * z[col_idx[k]];
            }
            z[i] = s;
        }
        // U z = y.
        for i in (0..n).rev() {
            let mut s = z[i];
            for k in diag[i] + 1..row_ptr[i + 1] {
                s -= self.lu[k] * z[col_idx[k]];
            }
            z[i] = s / self.lu[diag[i]];
        }
    }

    fn apply_transpose(&mut self, r: &[f64], z: &mut [f64]) {
        // (LU)ᵀ = Uᵀ Lᵀ: solve Uᵀ w = r (lower triangular, by column scatter over U's rows),
        // then Lᵀ z = w (unit upper, scatter in reverse).
        let p = &self.pattern;
        let (row_ptr, col_idx, diag) = (p.row_ptr(), p.col_idx(), p.diag_positions());
        let n = p.nrows();
        z.copy_from_slice(r);
        for i in 0..n {
            z[i] /= self.lu[diag[i]];
            let zi = z[i];
            for k in diag[i] + 1..row_ptr[i + 1] {
                z[col_idx[k]] -= self.lu[k] * zi;
            }
        }
        for i in (0..n).rev() {
            let zi = z[i];
            for k in row_ptr[i]..diag[i] {
                z[col_idx[k]] -= self.lu[k] * zi;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ilu0_is_exact_for_tridiagonal() {
        // No fill-in for a tridiagonal matrix, so ILU(0) = LU and M⁻¹ A x = x.
        let n = 8;
        let mut t = Vec::new();
        for i in 0..n {
            t.push((i, i, 3.0 + i as f64));
            if i + 1 < n {
                t.push((i, i + 1, -1.0));
                t.push((i + 1, i, -0.5 * i as f64));
            }
        }
        let a = SparseMatrix::from_triplets(n, n, &t).unwrap();
        let mut ilu = Ilu0::new(&a).unwrap();
        let x: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
        let (mut b, mut z) = (vec![0.0; n], vec![0.0; n]);
        a.matvec(&x, &mut b).unwrap();
        ilu.apply(&b, &mut z);
        a.matvec_transpose(&x, &mut b).unwrap();
        let mut zt = vec![0.0; n];
        ilu.apply_transpose(&b, &mut zt);
        for i in 0..n {
            assert!((z[i] - x[i]).abs() < 1e-13, "{i}");
            assert!((zt[i] - x[i]).abs() < 1e-13, "{i}");
        }
    }

    #[test]
    fn zero_pivots_are_named() {
        let a =
            SparseMatrix::from_triplets(2, 2, &[(0, 0, 1.0), (1, 1, 0.0), (1, 0, 1.0)]).unwrap();
        assert_eq!(Jacobi::new(&a).unwrap_err(), LinalgError::Singular { pivot: Some(1) });
        assert_eq!(Ilu0::new(&a).unwrap_err(), LinalgError::Singular { pivot: Some(1) });
        let no_diag = SparseMatrix::from_triplets(2, 2, &[(0, 1, 1.0), (1, 0, 1.0)]).unwrap();
        assert!(matches!(Ilu0::new(&no_diag), Err(LinalgError::PatternMismatch { .. })));
    }
}
