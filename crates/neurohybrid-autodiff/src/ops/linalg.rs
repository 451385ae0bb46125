//! Dense matrix products (faer, or a hand loop for small sizes) and CSR products.

use std::sync::Arc;

use faer::{Accum, MatMut, MatRef, Par};

use crate::Csr;
use crate::error::{AutodiffError, Result};
use crate::graph::{Graph, Var};
use crate::ops::Op;
use crate::ops::vmath::multiversion;

// Dense products go through faer except the tiniest. Measured on the 2-core dev machine under
// load (best of 30×200 calls, release, ns per product; hand = the loops below under the
// runtime AVX2 dispatch; nn = A·B forward, nt = W·Bᵀ (∂A), tn = Aᵀ·W (∂B)):
//
//   m×k×n      madds   nn hand / faer   nt hand / faer   tn hand / faer
//   1×2×16        32        7 /   26        10 /   26        11 /   25
//   1×16×2        32       52 /   65        14 /   59        19 /   49
//   1×16×16      256       57 /   90        52 /   42        27 /   46
//   4×16×16     1024      136 /   57       206 /  151       108 /   68
//   20×2×50     2000      308 /  149       338 /  280       246 /  155
//   20×50×2     2000     2959 /  223       647 /  234      1119 /  209
//   20×50×50   50000     5956 / 1101     23503 / 1229      4530 / 1232
//
// faer's fixed cost is only ~25 ns and its AVX2/AVX-512 FMA micro-kernels win from a few
// hundred multiply-adds on — including the MLP's 2→50 layer with inner dimension 2, forward
// and reverse — so the hand loops only take products of at most `SMALL_MADDS` (a Neural-ODE
// layer at batch 1), where they are 1.2–4× faster. `Par::Seq`: tapes are replayed inside
// solvers that parallelise at a coarser level (over patients, over samples), and nested rayon
// inside a 20×50 product only costs synchronisation (see shared/CRATES.md, faer pitfall).
//
// Cost: faer initialises thread-local scratch on its first call in each thread (a few hundred
// small allocations, once); replays after that allocate nothing (tests/alloc.rs).

fn view(s: &[f64], rows: usize, cols: usize) -> MatRef<'_, f64> {
    MatRef::from_row_major_slice(s, rows, cols)
}

fn view_mut(s: &mut [f64], rows: usize, cols: usize) -> MatMut<'_, f64> {
    MatMut::from_row_major_slice_mut(s, rows, cols)
}

fn accum(add: bool) -> Accum {
    if add { Accum::Add } else { Accum::Replace }
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
    if small(m, k, n) {
        return nn_small(add, a, b, c, k, n);
    }
    let dst = view_mut(c, m, n);
    faer::linalg::matmul::matmul(dst, accum(add), view(a, m, k), view(b, k, n), 1.0, Par::Seq);
}

/// `c (=|+=) a · bᵀ` with `a: [m,n]`, `b: [k,n]`, `c: [m,k]` (the `∂A` of a matmul).
pub(crate) fn gemm_nt(
    add: bool,
    a: &[f64],
    b: &[f64],
    c: &mut [f64],
    m: usize,
    n: usize,
    k: usize,
) {
    if small(m, k, n) {
        return nt_small(add, a, b, c, n, k);
    }
    let dst = view_mut(c, m, k);
    let bt = view(b, k, n).transpose();
    faer::linalg::matmul::matmul(dst, accum(add), view(a, m, n), bt, 1.0, Par::Seq);
}

/// `c (=|+=) aᵀ · b` with `a: [m,k]`, `b: [m,n]`, `c: [k,n]` (the `∂B` of a matmul).
pub(crate) fn gemm_tn(
    add: bool,
    a: &[f64],
    b: &[f64],
    c: &mut [f64],
    m: usize,
    k: usize,
    n: usize,
) {
    if small(m, k, n) {
        return tn_small(add, a, b, c, k, n);
    }
    let dst = view_mut(c, k, n);
    let at = view(a, m, k).transpose();
    faer::linalg::matmul::matmul(dst, accum(add), at, view(b, m, n), 1.0, Par::Seq);
}

/// Products with at most this many multiply-adds run in the hand loops below (under the
/// runtime AVX2 dispatch); larger ones go to faer. See the measurements at the top.
const SMALL_MADDS: usize = 128;

multiversion! {
    fn nn_small(add: bool, a: &[f64], b: &[f64], c: &mut [f64], k: usize, n: usize) {
        nn_hand(add, a, b, c, k, n)
    }
    fn nt_small(add: bool, a: &[f64], b: &[f64], c: &mut [f64], n: usize, k: usize) {
        nt_hand(add, a, b, c, n, k)
    }
    fn tn_small(add: bool, a: &[f64], b: &[f64], c: &mut [f64], k: usize, n: usize) {
        tn_hand(add, a, b, c, k, n)
    }
}

fn small(m: usize, k: usize, n: usize) -> bool {
    m.saturating_mul(k).saturating_mul(n) <= SMALL_MADDS
}

/// `c[i,:] (=|+=) Σ_p a[i,p] b[p,:]`: axpys over contiguous rows (vectorise over `n`).
#[inline(always)]
fn nn_hand(add: bool, a: &[f64], b: &[f64], c: &mut [f64], k: usize, n: usize) {
    if n == 0 {
        return;
    }
    for (i, crow) in c.chunks_exact_mut(n).enumerate() {
        if !add {
            crow.fill(0.0);
        }
        for (p, &aip) in a[i * k..][..k].iter().enumerate() {
            for (c, &b) in crow.iter_mut().zip(&b[p * n..][..n]) {
                *c += aip * b;
            }
        }
    }
}

/// `c[i,p] (=|+=) ⟨a[i,:], b[p,:]⟩`: dot products of contiguous rows, with 4 independent
/// partial sums so the reduction vectorises (a fixed order: results do not depend on the
/// lane width).
#[inline(always)]
fn nt_hand(add: bool, a: &[f64], b: &[f64], c: &mut [f64], n: usize, k: usize) {
    if k == 0 {
        return;
    }
    for (i, crow) in c.chunks_exact_mut(k).enumerate() {
        let arow = &a[i * n..][..n];
        for (p, cv) in crow.iter_mut().enumerate() {
            let d = dot4(arow, &b[p * n..][..n]);
            *cv = if add { *cv + d } else { d };
        }
    }
}

#[inline(always)]
fn dot4(x: &[f64], y: &[f64]) -> f64 {
    let (xc, xr) = x.as_chunks::<4>();
    let (yc, yr) = y.as_chunks::<4>();
    let mut acc = [0.0; 4];
    for (xa, ya) in xc.iter().zip(yc) {
        for l in 0..4 {
            acc[l] += xa[l] * ya[l];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (&p, &q) in xr.iter().zip(yr) {
        s += p * q;
    }
    s
}

/// `c[p,:] (=|+=) Σ_i a[i,p] b[i,:]`: axpys over contiguous rows.
#[inline(always)]
fn tn_hand(add: bool, a: &[f64], b: &[f64], c: &mut [f64], k: usize, n: usize) {
    if !add {
        c.fill(0.0);
    }
    if n == 0 || k == 0 {
        return;
    }
    for (arow, brow) in a.chunks_exact(k).zip(b.chunks_exact(n)) {
        for (crow, &aip) in c.chunks_exact_mut(n).zip(arow) {
            for (c, &b) in crow.iter_mut().zip(brow) {
                *c += aip * b;
            }
        }
    }
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
        for &(m, k, n) in &[
            (3, 4, 5),
            (1, 1, 1),
            (1, 2, 16),
            (1, 16, 2),
            (7, 0, 3),
            (20, 2, 50),
            (20, 50, 50),
            (100, 97, 99),
        ] {
            let a: Vec<f64> = (0..m * k).map(|i| ((i * 7) % 11) as f64 - 5.0).collect();
            let b: Vec<f64> = (0..k * n).map(|i| ((i * 5) % 13) as f64 - 6.0).collect();
            let mut c = vec![1.0; m * n];
            gemm_nn(false, &a, &b, &mut c, m, k, n);
            assert_eq!(c, naive(&a, &b, m, k, n));
            // ∂A = W Bᵀ and ∂B = Aᵀ W against naive products of explicit transposes.
            let w: Vec<f64> = (0..m * n).map(|i| ((i * 3) % 7) as f64 - 3.0).collect();
            let bt: Vec<f64> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let at: Vec<f64> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
            // Small integers: every summation order is exact, so hand loops and faer agree.
            for add in [false, true] {
                let mut da = vec![if add { 0.0 } else { 7.0 }; m * k];
                gemm_nt(add, &w, &b, &mut da, m, n, k);
                assert_eq!(da, naive(&w, &bt, m, n, k));
                let mut db = vec![if add { 0.0 } else { -3.0 }; k * n];
                gemm_tn(add, &a, &w, &mut db, m, k, n);
                assert_eq!(db, naive(&at, &w, k, m, n));
            }
            let mut c2 = naive(&a, &b, m, k, n);
            gemm_nn(true, &a, &b, &mut c2, m, k, n);
            assert_eq!(c2, naive(&a, &b, m, k, n).iter().map(|v| 2.0 * v).collect::<Vec<_>>());
        }
    }
}
