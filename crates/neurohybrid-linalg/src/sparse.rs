//! Compressed-sparse-row matrices with a fixed pattern.
//!
//! Implicit solvers assemble `W = M − hγJ` thousands of times with the same sparsity, so the
//! pattern ([`SparsePattern`]) is immutable and shared (`Arc`), and the values of a
//! [`SparseMatrix`] are refilled in place. [`CsrRef`] is a borrowed view with the same layout,
//! which is how a nalgebra-sparse `CsrMatrix<f64>` reaches the solvers without a copy.

use std::sync::Arc;

use faer::Mat;
use nalgebra_sparse::CsrMatrix;

use crate::error::{LinalgError, Result, check_finite, check_len};

/// Marks a row without a stored diagonal entry.
const NO_DIAG: usize = usize::MAX;

/// Checks the CSR invariants: `row_ptr` has `nrows + 1` non-decreasing entries starting at 0 and
/// ending at `col_idx.len()`, and column indices are strictly increasing and `< ncols` in each row.
pub(crate) fn validate_csr(
    nrows: usize,
    ncols: usize,
    row_ptr: &[usize],
    col_idx: &[usize],
) -> Result<()> {
    let bad = |reason, row| Err(LinalgError::InvalidPattern { reason, row });
    if row_ptr.len() != nrows + 1 {
        return bad("row pointer length must be nrows + 1", nrows);
    }
    if row_ptr[0] != 0 {
        return bad("row pointer must start at 0", 0);
    }
    if row_ptr[nrows] != col_idx.len() {
        return bad("row pointer must end at the number of column indices", nrows);
    }
    for i in 0..nrows {
        let (start, end) = (row_ptr[i], row_ptr[i + 1]);
        if start > end {
            return bad("row pointer must be non-decreasing", i);
        }
        let row = &col_idx[start..end];
        if row.windows(2).any(|w| w[0] >= w[1]) {
            return bad("column indices must be strictly increasing within a row", i);
        }
        if row.last().is_some_and(|&j| j >= ncols) {
            return bad("column index out of range", i);
        }
    }
    Ok(())
}

/// `y = A x` for a CSR matrix (no checks; callers validate sizes).
fn csr_matvec(row_ptr: &[usize], col_idx: &[usize], values: &[f64], x: &[f64], y: &mut [f64]) {
    for (i, yi) in y.iter_mut().enumerate() {
        let range = row_ptr[i]..row_ptr[i + 1];
        *yi = col_idx[range.clone()].iter().zip(&values[range]).map(|(&j, &a)| a * x[j]).sum();
    }
}

/// `y = Aᵀ x` for a CSR matrix, by scattering rows (no checks).
fn csr_matvec_transpose(
    row_ptr: &[usize],
    col_idx: &[usize],
    values: &[f64],
    x: &[f64],
    y: &mut [f64],
) {
    y.fill(0.0);
    for (i, &xi) in x.iter().enumerate() {
        let range = row_ptr[i]..row_ptr[i + 1];
        for (&j, &a) in col_idx[range.clone()].iter().zip(&values[range]) {
            y[j] += a * xi;
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct PatternInner {
    nrows: usize,
    ncols: usize,
    row_ptr: Vec<usize>,
    col_idx: Vec<usize>,
    /// Storage position of entry `(i, i)`, or [`NO_DIAG`].
    diag: Vec<usize>,
}

/// An immutable CSR sparsity pattern, cheap to clone (reference counted).
///
/// Column indices are sorted and unique within each row (the same invariant as
/// nalgebra-sparse), which is what faer's sparse LU needs.
#[derive(Debug, Clone)]
pub struct SparsePattern {
    inner: Arc<PatternInner>,
}

impl PartialEq for SparsePattern {
    fn eq(&self, other: &Self) -> bool {
        self.same_as(other)
    }
}

impl SparsePattern {
    /// Builds a pattern from CSR arrays, validating the invariants.
    pub fn new(
        nrows: usize,
        ncols: usize,
        row_ptr: Vec<usize>,
        col_idx: Vec<usize>,
    ) -> Result<Self> {
        validate_csr(nrows, ncols, &row_ptr, &col_idx)?;
        let diag = (0..nrows)
            .map(|i| {
                let start = row_ptr[i];
                col_idx[start..row_ptr[i + 1]].binary_search(&i).map_or(NO_DIAG, |k| start + k)
            })
            .collect();
        Ok(Self { inner: Arc::new(PatternInner { nrows, ncols, row_ptr, col_idx, diag }) })
    }

    /// Builds a pattern from `(row, col)` coordinates in any order; duplicates are merged.
    pub fn from_coordinates(nrows: usize, ncols: usize, coords: &[(usize, usize)]) -> Result<Self> {
        if let Some(&(i, _)) = coords.iter().find(|&&(i, j)| i >= nrows || j >= ncols) {
            return Err(LinalgError::InvalidPattern {
                reason: if i >= nrows {
                    "row index out of range"
                } else {
                    "column index out of range"
                },
                row: i,
            });
        }
        let mut sorted = coords.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut row_ptr = vec![0; nrows + 1];
        for &(i, _) in &sorted {
            row_ptr[i + 1] += 1;
        }
        for i in 0..nrows {
            row_ptr[i + 1] += row_ptr[i];
        }
        let col_idx = sorted.iter().map(|&(_, j)| j).collect();
        Self::new(nrows, ncols, row_ptr, col_idx)
    }

    /// The pattern of `A` with every diagonal entry added (square patterns only). Implicit
    /// solvers need it: `W = M − hγJ` has a diagonal even where `J` does not.
    pub fn with_diagonal(&self) -> Result<Self> {
        if self.nrows() != self.ncols() {
            return Err(LinalgError::NotSquare { nrows: self.nrows(), ncols: self.ncols() });
        }
        if self.has_full_diagonal() {
            return Ok(self.clone());
        }
        let mut coords: Vec<(usize, usize)> = self.coordinates().collect();
        coords.extend((0..self.nrows()).map(|i| (i, i)));
        Self::from_coordinates(self.nrows(), self.ncols(), &coords)
    }

    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.inner.nrows
    }

    /// Number of columns.
    pub fn ncols(&self) -> usize {
        self.inner.ncols
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.inner.col_idx.len()
    }

    /// Row pointer (`nrows + 1` offsets into [`Self::col_idx`]).
    pub fn row_ptr(&self) -> &[usize] {
        &self.inner.row_ptr
    }

    /// Column index of every stored entry, row by row.
    pub fn col_idx(&self) -> &[usize] {
        &self.inner.col_idx
    }

    /// Column indices of row `i` (panics if `i >= nrows`, like slice indexing).
    pub fn row(&self, i: usize) -> &[usize] {
        &self.inner.col_idx[self.inner.row_ptr[i]..self.inner.row_ptr[i + 1]]
    }

    /// Storage position of entry `(i, j)`, if stored.
    pub fn position(&self, i: usize, j: usize) -> Option<usize> {
        if i >= self.nrows() {
            return None;
        }
        let start = self.inner.row_ptr[i];
        self.row(i).binary_search(&j).ok().map(|k| start + k)
    }

    /// Storage position of the diagonal entry of row `i`, if stored.
    pub fn diagonal_position(&self, i: usize) -> Option<usize> {
        self.inner.diag.get(i).copied().filter(|&p| p != NO_DIAG)
    }

    /// Whether the matrix is square and every diagonal entry is stored.
    pub fn has_full_diagonal(&self) -> bool {
        self.nrows() == self.ncols() && self.inner.diag.iter().all(|&p| p != NO_DIAG)
    }

    /// `(row, col)` of every stored entry in storage order.
    pub fn coordinates(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.nrows()).flat_map(move |i| self.row(i).iter().map(move |&j| (i, j)))
    }

    /// Whether two patterns are identical (pointer equality first, then by value).
    pub fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) || self.inner == other.inner
    }

    /// Whether the pattern equals the CSR arrays of `view`.
    pub(crate) fn matches(&self, view: &CsrRef<'_>) -> bool {
        self.nrows() == view.nrows
            && self.ncols() == view.ncols
            && self.row_ptr() == view.row_ptr
            && self.col_idx() == view.col_idx
    }

    /// Positions of the diagonal entries (`usize::MAX` where absent), for preconditioners.
    pub(crate) fn diag_positions(&self) -> &[usize] {
        &self.inner.diag
    }

    /// `mirror[k]` = storage position of the transpose partner `(j, i)` of the `k`-th stored
    /// entry `(i, j)`; [`LinalgError::NotSymmetric`] (first entry without a partner) if the
    /// pattern is not symmetric.
    pub(crate) fn mirror_positions(&self) -> Result<Vec<usize>> {
        let mut mirror = Vec::with_capacity(self.nnz());
        for (i, j) in self.coordinates() {
            match self.position(j, i) {
                Some(k) => mirror.push(k),
                None => return Err(LinalgError::NotSymmetric { row: i, col: j }),
            }
        }
        Ok(mirror)
    }
}

/// First storage position `k` whose value differs from its mirror's by more than
/// [`crate::SYMMETRY_RTOL`] relative, if any.
pub(crate) fn first_asymmetry(mirror: &[usize], values: &[f64]) -> Option<usize> {
    mirror.iter().enumerate().position(|(k, &m)| {
        let (a, b) = (values[k], values[m]);
        (a - b).abs() > crate::SYMMETRY_RTOL * a.abs().max(b.abs())
    })
}

/// A borrowed CSR matrix: the zero-copy way into the solvers.
#[derive(Debug, Clone, Copy)]
pub struct CsrRef<'a> {
    nrows: usize,
    ncols: usize,
    row_ptr: &'a [usize],
    col_idx: &'a [usize],
    values: &'a [f64],
}

impl<'a> CsrRef<'a> {
    /// Wraps CSR arrays after validating the invariants (`O(nnz)`).
    pub fn new(
        nrows: usize,
        ncols: usize,
        row_ptr: &'a [usize],
        col_idx: &'a [usize],
        values: &'a [f64],
    ) -> Result<Self> {
        validate_csr(nrows, ncols, row_ptr, col_idx)?;
        check_len("CSR values", col_idx.len(), values.len())?;
        Ok(Self { nrows, ncols, row_ptr, col_idx, values })
    }

    /// Borrows a nalgebra-sparse matrix without copying. nalgebra-sparse already guarantees
    /// sorted, unique column indices, so nothing needs checking.
    pub fn from_nalgebra(csr: &'a CsrMatrix<f64>) -> Self {
        Self {
            nrows: csr.nrows(),
            ncols: csr.ncols(),
            row_ptr: csr.row_offsets(),
            col_idx: csr.col_indices(),
            values: csr.values(),
        }
    }

    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.nrows
    }

    /// Number of columns.
    pub fn ncols(&self) -> usize {
        self.ncols
    }

    /// Row pointer.
    pub fn row_ptr(&self) -> &'a [usize] {
        self.row_ptr
    }

    /// Column indices.
    pub fn col_idx(&self) -> &'a [usize] {
        self.col_idx
    }

    /// Stored values.
    pub fn values(&self) -> &'a [f64] {
        self.values
    }

    /// `y = A x`.
    pub fn matvec(&self, x: &[f64], y: &mut [f64]) -> Result<()> {
        check_len("matvec input", self.ncols, x.len())?;
        check_len("matvec output", self.nrows, y.len())?;
        csr_matvec(self.row_ptr, self.col_idx, self.values, x, y);
        Ok(())
    }

    /// `y = Aᵀ x`.
    pub fn matvec_transpose(&self, x: &[f64], y: &mut [f64]) -> Result<()> {
        check_len("transpose matvec input", self.nrows, x.len())?;
        check_len("transpose matvec output", self.ncols, y.len())?;
        csr_matvec_transpose(self.row_ptr, self.col_idx, self.values, x, y);
        Ok(())
    }

    /// Dense copy (for tests and small problems).
    pub fn to_dense(&self) -> Mat<f64> {
        let mut m = Mat::zeros(self.nrows, self.ncols);
        for i in 0..self.nrows {
            for k in self.row_ptr[i]..self.row_ptr[i + 1] {
                m[(i, self.col_idx[k])] = self.values[k];
            }
        }
        m
    }
}

/// A CSR matrix with a fixed, shared pattern and refillable values.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseMatrix {
    pattern: SparsePattern,
    values: Vec<f64>,
}

impl SparseMatrix {
    /// Pairs a pattern with values (one per stored entry, in storage order).
    pub fn new(pattern: SparsePattern, values: Vec<f64>) -> Result<Self> {
        check_len("sparse matrix values", pattern.nnz(), values.len())?;
        Ok(Self { pattern, values })
    }

    /// All stored entries zero.
    pub fn zeros(pattern: SparsePattern) -> Self {
        let values = vec![0.0; pattern.nnz()];
        Self { pattern, values }
    }

    /// The `n × n` identity.
    pub fn identity(n: usize) -> Self {
        let pattern = SparsePattern::new(n, n, (0..=n).collect(), (0..n).collect())
            .expect("the identity pattern is valid CSR");
        Self { pattern, values: vec![1.0; n] }
    }

    /// Builds a matrix from `(row, col, value)` triplets in any order; duplicates are summed.
    pub fn from_triplets(
        nrows: usize,
        ncols: usize,
        triplets: &[(usize, usize, f64)],
    ) -> Result<Self> {
        let coords: Vec<(usize, usize)> = triplets.iter().map(|&(i, j, _)| (i, j)).collect();
        let pattern = SparsePattern::from_coordinates(nrows, ncols, &coords)?;
        let mut m = Self::zeros(pattern);
        for &(i, j, v) in triplets {
            let p = m.pattern.position(i, j).expect("coordinate is in the pattern built from it");
            m.values[p] += v;
        }
        Ok(m)
    }

    /// Copies a nalgebra-sparse matrix (pattern and values).
    pub fn from_nalgebra(csr: &CsrMatrix<f64>) -> Self {
        let pattern = SparsePattern::new(
            csr.nrows(),
            csr.ncols(),
            csr.row_offsets().to_vec(),
            csr.col_indices().to_vec(),
        )
        .expect("nalgebra-sparse guarantees valid CSR");
        Self { pattern, values: csr.values().to_vec() }
    }

    /// The pattern.
    pub fn pattern(&self) -> &SparsePattern {
        &self.pattern
    }

    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.pattern.nrows()
    }

    /// Number of columns.
    pub fn ncols(&self) -> usize {
        self.pattern.ncols()
    }

    /// Stored values in storage order.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Stored values, writable in place (the pattern stays fixed).
    pub fn values_mut(&mut self) -> &mut [f64] {
        &mut self.values
    }

    /// Overwrites all stored values.
    pub fn set_values(&mut self, values: &[f64]) -> Result<()> {
        check_len("sparse matrix values", self.values.len(), values.len())?;
        self.values.copy_from_slice(values);
        Ok(())
    }

    /// The value at `(i, j)` (zero where not stored).
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.pattern.position(i, j).map_or(0.0, |p| self.values[p])
    }

    /// Sets every stored value to `v`.
    pub fn fill(&mut self, v: f64) {
        self.values.fill(v);
    }

    /// `A ← αA`.
    pub fn scale(&mut self, alpha: f64) {
        self.values.iter_mut().for_each(|v| *v *= alpha);
    }

    /// `A ← A + α B` where `B`'s pattern is contained in `A`'s (merged row by row, no
    /// allocation). This is how `W = M − hγJ` is assembled into a pattern with a diagonal.
    pub fn add_scaled(&mut self, alpha: f64, other: &SparseMatrix) -> Result<()> {
        check_len("add_scaled rows", self.nrows(), other.nrows())?;
        check_len("add_scaled columns", self.ncols(), other.ncols())?;
        if self.pattern.same_as(&other.pattern) {
            for (a, &b) in self.values.iter_mut().zip(&other.values) {
                *a += alpha * b;
            }
            return Ok(());
        }
        for i in 0..self.nrows() {
            let dst_start = self.pattern.row_ptr()[i];
            let dst = self.pattern.row(i);
            let mut k = 0;
            for p in other.pattern.row_ptr()[i]..other.pattern.row_ptr()[i + 1] {
                let j = other.pattern.col_idx()[p];
                while k < dst.len() && dst[k] < j {
                    k += 1;
                }
                if k == dst.len() || dst[k] != j {
                    return Err(LinalgError::PatternMismatch {
                        reason: "the added matrix has an entry outside the target pattern",
                    });
                }
                self.values[dst_start + k] += alpha * other.values[p];
            }
        }
        Ok(())
    }

    /// `A ← A + αI`; every diagonal entry must be stored.
    pub fn add_to_diagonal(&mut self, alpha: f64) -> Result<()> {
        if !self.pattern.has_full_diagonal() {
            return Err(LinalgError::PatternMismatch {
                reason: "add_to_diagonal needs a square pattern with every diagonal entry",
            });
        }
        for &p in self.pattern.diag_positions() {
            self.values[p] += alpha;
        }
        Ok(())
    }

    /// Borrowed view.
    pub fn as_csr(&self) -> CsrRef<'_> {
        CsrRef {
            nrows: self.nrows(),
            ncols: self.ncols(),
            row_ptr: self.pattern.row_ptr(),
            col_idx: self.pattern.col_idx(),
            values: &self.values,
        }
    }

    /// `y = A x`.
    pub fn matvec(&self, x: &[f64], y: &mut [f64]) -> Result<()> {
        self.as_csr().matvec(x, y)
    }

    /// `y = Aᵀ x`.
    pub fn matvec_transpose(&self, x: &[f64], y: &mut [f64]) -> Result<()> {
        self.as_csr().matvec_transpose(x, y)
    }

    /// Dense copy.
    pub fn to_dense(&self) -> Mat<f64> {
        self.as_csr().to_dense()
    }

    /// Writes the matrix into a dense `out` of the same shape (zeroing the rest), without
    /// allocating: how a sparse `W` reaches [`crate::DenseLu`] for small systems.
    pub fn write_dense(&self, mut out: faer::MatMut<'_, f64>) -> Result<()> {
        check_len("dense output rows", self.nrows(), out.nrows())?;
        check_len("dense output columns", self.ncols(), out.ncols())?;
        out.fill(0.0);
        for ((i, j), &v) in self.pattern.coordinates().zip(&self.values) {
            out[(i, j)] = v;
        }
        Ok(())
    }

    /// Index of the first non-finite value, as an error.
    pub(crate) fn check_finite(&self) -> Result<()> {
        check_finite("matrix values", &self.values)
    }

    /// Unchecked kernels for the Krylov operator impls (sizes validated by the caller).
    pub(crate) fn apply_unchecked(&self, x: &[f64], y: &mut [f64], transpose: bool) {
        let (rp, ci) = (self.pattern.row_ptr(), self.pattern.col_idx());
        if transpose {
            csr_matvec_transpose(rp, ci, &self.values, x, y);
        } else {
            csr_matvec(rp, ci, &self.values, x, y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_patterns_are_named() {
        let err = SparsePattern::new(2, 2, vec![0, 2, 3], vec![1, 0, 1]).unwrap_err();
        assert!(matches!(err, LinalgError::InvalidPattern { row: 0, .. }), "{err}");
        let err = SparsePattern::new(2, 2, vec![0, 1, 2], vec![0, 2]).unwrap_err();
        assert!(matches!(err, LinalgError::InvalidPattern { row: 1, .. }), "{err}");
        let err = SparsePattern::new(2, 2, vec![0, 1], vec![0]).unwrap_err();
        assert!(matches!(err, LinalgError::InvalidPattern { .. }));
        assert!(SparsePattern::from_coordinates(2, 2, &[(0, 2)]).is_err());
    }

    #[test]
    fn triplets_sum_duplicates_and_matvec_matches_dense() {
        let a = SparseMatrix::from_triplets(
            3,
            3,
            &[(0, 0, 1.0), (2, 1, 4.0), (0, 0, 2.0), (1, 2, -1.0)],
        )
        .unwrap();
        assert_eq!(a.get(0, 0), 3.0);
        assert_eq!(a.get(1, 1), 0.0);
        let x = [1.0, 2.0, 3.0];
        let mut y = [0.0; 3];
        a.matvec(&x, &mut y).unwrap();
        assert_eq!(y, [3.0, -3.0, 8.0]);
        a.matvec_transpose(&x, &mut y).unwrap();
        assert_eq!(y, [3.0, 12.0, -2.0]);
        assert!(a.matvec(&x[..2], &mut y).is_err());
    }

    #[test]
    fn assemble_w_into_pattern_with_diagonal() {
        // J has no (1,1) entry; W = I − 0.5 J needs one.
        let j =
            SparseMatrix::from_triplets(2, 2, &[(0, 0, 2.0), (0, 1, 1.0), (1, 0, 4.0)]).unwrap();
        let wp = j.pattern().with_diagonal().unwrap();
        assert!(wp.has_full_diagonal());
        let mut w = SparseMatrix::zeros(wp);
        w.add_scaled(-0.5, &j).unwrap();
        w.add_to_diagonal(1.0).unwrap();
        assert_eq!(w.to_dense(), faer::mat![[0.0, -0.5], [-2.0, 1.0]]);
        let mut dense = faer::Mat::from_fn(2, 2, |_, _| 9.0);
        w.write_dense(dense.as_mut()).unwrap();
        assert_eq!(dense, w.to_dense());
        assert!(w.write_dense(faer::Mat::zeros(3, 2).as_mut()).is_err());
        // The other direction is a pattern mismatch, not a panic.
        let mut j2 = j.clone();
        assert!(matches!(j2.add_scaled(1.0, &w), Err(LinalgError::PatternMismatch { .. })));
        assert!(j2.add_to_diagonal(1.0).is_err());
    }

    #[test]
    fn nalgebra_view_is_zero_copy() {
        let coo = nalgebra_sparse::CooMatrix::try_from_triplets(
            2,
            2,
            vec![0, 1],
            vec![1, 0],
            vec![5.0, 6.0],
        )
        .unwrap();
        let csr = CsrMatrix::from(&coo);
        let view = CsrRef::from_nalgebra(&csr);
        assert!(std::ptr::eq(view.values().as_ptr(), csr.values().as_ptr()));
        assert_eq!(SparseMatrix::from_nalgebra(&csr).get(1, 0), 6.0);
    }
}
