//! Dense matrix products (faer, or a hand loop for small sizes) and CSR products.

use std::sync::Arc;

use faer::{Accum, MatMut, MatRef, Par};

use crate::Csr;
use crate::error::{AutodiffError, Result};
use crate::graph::{Graph, Var};
use crate::ops::Op;

// Dense products always go through faer. Measured on the 2-core dev machine (best of 30×200
// replays, release profile, forward / VJP of one matmul node):
//
//   shape m×k×n   hand loop (fwd / vjp)   faer Par::Seq (fwd / vjp)
//   20×2×50         391 /   1065 ns          166 /   636 ns
//   20×50×50       8288 /  21117 ns         1381 /  3418 ns
//   20×50×2        2434 /   1953 ns          288 /   595 ns
//   64×64×64      58328 / 148978 ns         5149 / 12464 ns
//
// The simple i-k-j loops only get baseline SSE2 (the workspace does not build with
// `target-cpu=native`), while faer dispatches at runtime to AVX2/AVX-512 FMA micro-kernels, so
// faer wins even at the MLP's smallest shapes. `Par::Seq`: tapes are replayed inside solvers
// that parallelise at a coarser level (over patients, over samples), and nested rayon inside a
// 20×50 product only costs synchronisation (see shared/CRATES.md, faer pitfall).
//
// Cost: faer initialises thread-local scratch on its first call in each thread (a few hundred
// small allocations, once); replays after that allocate nothing (tests/alloc.rs).

fn view(s: &[f64], rows: usize, cols: usize) -> MatRef<'_, f64> {
    MatRef::from_row_major_slice(s, rows, cols)
}

fn view_mut(s: &mut [f64], rows: usize, cols: usize) -> MatMut<'_, f64> {
    MatMut::from_row_major_slice_mut(s, rows, cols)
}

/// `c (=|+=) a · b` with `a: [m,k]`, `b: [k,n]`, `c: [m,n]`, all row-major.
pub(crate) fn gemm_nn(
    add: bool,
    a: &[f64],
    b: &[f64],
    c: &mut [f64],
    m: usize,
    k: usize,
    n: usize,
) {
    let beta = if add { Accum::Add } else { Accum::Replace };
    let dst = view_mut(c, m, n);
    faer::linalg::matmul::matmul(dst, beta, view(a, m, k), view(b, k, n), 1.0, Par::Seq);
}

/// `c += a · bᵀ` with `a: [m,n]`, `b: [k,n]`, `c: [m,k]` (the `∂A` of a matmul).
pub(crate) fn gemm_nt_add(a: &[f64], b: &[f64], c: &mut [f64], m: usize, n: usize, k: usize) {
    let dst = view_mut(c, m, k);
    let bt = view(b, k, n).transpose();
    faer::linalg::matmul::matmul(dst, Accum::Add, view(a, m, n), bt, 1.0, Par::Seq);
}

/// `c += aᵀ · b` with `a: [m,k]`, `b: [m,n]`, `c: [k,n]` (the `∂B` of a matmul).
pub(crate) fn gemm_tn_add(a: &[f64], b: &[f64], c: &mut [f64], m: usize, k: usize, n: usize) {
    let dst = view_mut(c, k, n);
    let at = view(a, m, k).transpose();
    faer::linalg::matmul::matmul(dst, Accum::Add, at, view(b, m, n), 1.0, Par::Seq);
}

/// `y (=|+=) A · x` for CSR `A` (`offsets`, `cols`, `vals`) and `x: [ncols, k]`.
pub(crate) fn csr_mul(
    add: bool,
    offsets: &[usize],
    cols: &[usize],
    vals: &[f64],
    x: &[f64],
    k: usize,
    y: &mut [f64],
) {
    if !add {
        y.fill(0.0);
    }
    if k == 1 {
        for (i, yi) in y.iter_mut().enumerate() {
            let r = offsets[i]..offsets[i + 1];
            *yi += cols[r.clone()].iter().zip(&vals[r]).map(|(&j, &v)| v * x[j]).sum::<f64>();
        }
        return;
    }
    for (i, yrow) in y.chunks_exact_mut(k).enumerate() {
        for p in offsets[i]..offsets[i + 1] {
            let (v, j) = (vals[p], cols[p]);
            for (yv, &xv) in yrow.iter_mut().zip(&x[j * k..j * k + k]) {
                *yv += v * xv;
            }
        }
    }
}

/// `cx += Aᵀ · w`, without forming `Aᵀ`: scatter each row of `A` into the rows of `cx` it
/// touches (`cx[col(p)] += val(p) · w[row]`). Same flops as the forward product, no allocation.
pub(crate) fn csr_mul_t_add(
    offsets: &[usize],
    cols: &[usize],
    vals: &[f64],
    w: &[f64],
    k: usize,
    cx: &mut [f64],
) {
    let rows = offsets.len() - 1;
    for i in 0..rows {
        let wrow = &w[i * k..i * k + k];
        for p in offsets[i]..offsets[i + 1] {
            let (v, j) = (vals[p], cols[p]);
            for (c, &wv) in cx[j * k..j * k + k].iter_mut().zip(wrow) {
                *c += v * wv;
            }
        }
    }
}

/// `cv[p] += ⟨w[row(p)], x[col(p)]⟩`: the cotangent of the stored values.
pub(crate) fn csr_values_vjp(
    offsets: &[usize],
    cols: &[usize],
    w: &[f64],
    x: &[f64],
    k: usize,
    cv: &mut [f64],
) {
    let rows = offsets.len() - 1;
    for i in 0..rows {
        let wrow = &w[i * k..i * k + k];
        for p in offsets[i]..offsets[i + 1] {
            let j = cols[p];
            cv[p] += wrow.iter().zip(&x[j * k..j * k + k]).map(|(a, b)| a * b).sum::<f64>();
        }
    }
}

impl Graph {
    /// Dense matrix product `a · b` with `a: [m,k]`, `b: [k,n]` → `[m,n]`.
    pub fn matmul(&mut self, a: Var, b: Var) -> Result<Var> {
        let (ia, ib) = (self.check(a)?, self.check(b)?);
        let (sa, sb) = (self.shape_of(a)?, self.shape_of(b)?);
        for s in [&sa, &sb] {
            if s.len() != 2 {
                return Err(AutodiffError::RankMismatch {
                    op: "matmul",
                    expected: 2,
                    shape: s.clone(),
                });
            }
        }
        if sa[1] != sb[0] {
            return Err(AutodiffError::ShapeMismatch { op: "matmul", left: sa, right: sb });
        }
        let (m, k, n) = (sa[0], sa[1], sb[1]);
        Ok(self.push(vec![m, n], Op::MatMul { a: ia, b: ib, m, k, n }))
    }

    /// Shape of `A · x` for `x: [ncols]` or `[ncols, k]`, and `k`.
    fn csr_result(&self, op: &'static str, mat: &Csr, x: Var) -> Result<(Vec<usize>, usize)> {
        let sx = self.shape_of(x)?;
        let bad = || AutodiffError::ShapeMismatch {
            op,
            left: vec![mat.nrows(), mat.ncols()],
            right: sx.clone(),
        };
        match sx.len() {
            1 if sx[0] == mat.ncols() => Ok((vec![mat.nrows()], 1)),
            2 if sx[0] == mat.ncols() => Ok((vec![mat.nrows(), sx[1]], sx[1])),
            1 | 2 => Err(bad()),
            _ => Err(AutodiffError::RankMismatch { op, expected: 1, shape: sx.clone() }),
        }
    }

    /// Constant sparse matrix times `x` (`[ncols]` → `[nrows]`, or `[ncols,k]` → `[nrows,k]`).
    pub fn spmv(&mut self, mat: Arc<Csr>, x: Var) -> Result<Var> {
        let ix = self.check(x)?;
        let (shape, k) = self.csr_result("spmv", &mat, x)?;
        Ok(self.push(shape, Op::Spmv { mat, x: ix, k }))
    }

    /// Sparse matrix with the sparsity `pattern` (its stored values are ignored) and
    /// differentiable `values` (`[nnz]`, in CSR order) times `x`.
    pub fn spmv_values(&mut self, pattern: Arc<Csr>, values: Var, x: Var) -> Result<Var> {
        let (iv, ix) = (self.check(values)?, self.check(x)?);
        let sv = self.shape_of(values)?;
        if sv != [pattern.nnz()] {
            return Err(AutodiffError::ShapeMismatch {
                op: "spmv_values",
                left: vec![pattern.nnz()],
                right: sv,
            });
        }
        let (shape, k) = self.csr_result("spmv_values", &pattern, x)?;
        Ok(self.push(shape, Op::SpmvValues { pattern, values: iv, x: ix, k }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    /// The row-major views, transposes and accumulation modes are wired correctly.
    #[test]
    fn products_match_a_naive_loop() {
        for &(m, k, n) in &[(3, 4, 5), (1, 1, 1), (20, 2, 50), (100, 97, 99)] {
            let a: Vec<f64> = (0..m * k).map(|i| ((i * 7) % 11) as f64 - 5.0).collect();
            let b: Vec<f64> = (0..k * n).map(|i| ((i * 5) % 13) as f64 - 6.0).collect();
            let mut c = vec![1.0; m * n];
            gemm_nn(false, &a, &b, &mut c, m, k, n);
            assert_eq!(c, naive(&a, &b, m, k, n));
            // ∂A = W Bᵀ and ∂B = Aᵀ W against naive products of explicit transposes.
            let w: Vec<f64> = (0..m * n).map(|i| ((i * 3) % 7) as f64 - 3.0).collect();
            let bt: Vec<f64> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let at: Vec<f64> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
            let mut da = vec![0.0; m * k];
            gemm_nt_add(&w, &b, &mut da, m, n, k);
            assert_eq!(da, naive(&w, &bt, m, n, k));
            let mut db = vec![0.0; k * n];
            gemm_tn_add(&a, &w, &mut db, m, k, n);
            assert_eq!(db, naive(&at, &w, k, m, n));
        }
    }
}
