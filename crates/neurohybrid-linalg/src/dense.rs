//! Dense LU with partial pivoting, allocation-free after the first factorization: an
//! unblocked hand-written kernel for small matrices, faer's in-place kernels for larger ones.

use faer::dyn_stack::{MemBuffer, StackReq};
use faer::linalg::lu::partial_pivoting::{factor, solve};
use faer::perm::PermRef;
use faer::{Mat, MatMut, MatRef, Par};

use crate::error::{LinalgError, Result, check_finite, check_len};
use crate::solver::{LinearSolver, LinearSolverStats, Scratch};

/// Largest `n` factorized by the unblocked small-matrix kernel instead of faer.
///
/// faer's kernels pay a fixed cost per call (permutation objects, triangular-solve dispatch,
/// SIMD setup) that dominates for tiny matrices: on a 3 × 3 `W` it was a third of a BDF
/// step. `crossover_timing` (tests below; factorize + solve + transpose solve, release, 2-core
/// x86-64) measured faer/small = 2.5× at n = 3, 2.0× at 8, 1.45× at 16, 1.1× at 24, parity at
/// n ≈ 28 and 0.9× at 32; 24 keeps a margin below the crossover.
const SMALL_MAX: usize = 24;

/// Dense `PA = LU`.
///
/// For `n ≤ SMALL_MAX` an unblocked right-looking elimination with partial pivoting (the
/// algorithm of LAPACK's `getf2`: pick the largest `|a_ik|` in column `k`, swap rows, scale,
/// rank-1 update) runs in preallocated column-major storage. Larger matrices go through faer's
/// in-place kernels with a scratch buffer kept here: faer's convenience `partial_piv_lu()`
/// allocates a new factorization per call, which matters when an implicit solver refactorizes
/// `W` on every step. Parallelism is `Par::Seq`: the systems that reach a dense LU are small,
/// and threads only add latency (shared/CRATES.md measured a 20× slowdown from rayon on small
/// sparse solves).
#[derive(Debug)]
pub struct DenseLu {
    n: usize,
    /// faer's factorization (`n > SMALL_MAX`; empty otherwise).
    lu: Mat<f64>,
    /// Small path: `L` (unit, strictly lower) and `U` in one column-major `n × n` array.
    small: Vec<f64>,
    /// faer: the row permutation. Small path: LAPACK-style pivots, row `k` swapped with
    /// `perm[k]` at step `k`.
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

/// Unblocked `PA = LU` of the column-major `n × n` array `a` in place; `piv[k]` is the row
/// swapped with row `k` at step `k`. Stops at the first zero or non-finite pivot.
fn small_factor(a: &mut [f64], piv: &mut [usize], n: usize) -> Result<()> {
    debug_assert!(a.len() == n * n && piv.len() == n);
    for k in 0..n {
        let col = &a[k * n..(k + 1) * n];
        let mut p = k;
        let mut best = col[k].abs();
        for (i, v) in col.iter().enumerate().skip(k + 1) {
            // A NaN (from overflow in the updates) is picked too, so that it is reported below.
            if v.abs() > best || v.is_nan() {
                best = v.abs();
                p = i;
            }
        }
        if best == 0.0 || !best.is_finite() {
            return Err(LinalgError::Singular { pivot: Some(k) });
        }
        piv[k] = p;
        if p != k {
            for j in 0..n {
                a.swap(j * n + k, j * n + p);
            }
        }
        let (left, right) = a.split_at_mut((k + 1) * n);
        let colk = &mut left[k * n..];
        let r = 1.0 / colk[k];
        for l in &mut colk[k + 1..] {
            *l *= r;
        }
        let lk = &colk[k + 1..];
        for colj in right.chunks_exact_mut(n) {
            let ukj = colj[k];
            if ukj != 0.0 {
                for (x, &l) in colj[k + 1..].iter_mut().zip(lk) {
                    *x -= l * ukj;
                }
            }
        }
    }
    Ok(())
}

/// Solves `A x = b` (or `Aᵀ x = b`) in place from [`small_factor`]'s output.
fn small_solve(lu: &[f64], piv: &[usize], n: usize, b: &mut [f64], transpose: bool) {
    debug_assert!(lu.len() == n * n && piv.len() == n && b.len() == n);
    if !transpose {
        // x = U⁻¹ L⁻¹ P b.
        for (k, &p) in piv.iter().enumerate() {
            b.swap(k, p);
        }
        for k in 0..n {
            let bk = b[k];
            if bk != 0.0 {
                for (x, &l) in b[k + 1..].iter_mut().zip(&lu[k * n + k + 1..(k + 1) * n]) {
                    *x -= l * bk;
                }
            }
        }
        for k in (0..n).rev() {
            let col = &lu[k * n..k * n + k + 1];
            let bk = b[k] / col[k];
            b[k] = bk;
            if bk != 0.0 {
                for (x, &u) in b[..k].iter_mut().zip(&col[..k]) {
                    *x -= u * bk;
                }
            }
        }
    } else {
        // Aᵀ = Uᵀ Lᵀ P, so x = Pᵀ L⁻ᵀ U⁻ᵀ b; column k of U is row k of Uᵀ.
        for k in 0..n {
            let col = &lu[k * n..k * n + k + 1];
            let dot: f64 = b[..k].iter().zip(&col[..k]).map(|(x, u)| x * u).sum();
            b[k] = (b[k] - dot) / col[k];
        }
        for k in (0..n).rev() {
            let dot: f64 =
                b[k + 1..].iter().zip(&lu[k * n + k + 1..(k + 1) * n]).map(|(x, l)| x * l).sum();
            b[k] -= dot;
        }
        for (k, &p) in piv.iter().enumerate().rev() {
            b.swap(k, p);
        }
    }
}

impl DenseLu {
    /// A solver with workspace for `n × n` matrices (it resizes itself if given another size).
    pub fn new(n: usize) -> Self {
        let small = n <= SMALL_MAX;
        Self {
            n,
            lu: if small { Mat::new() } else { Mat::zeros(n, n) },
            small: if small { vec![0.0; n * n] } else { Vec::new() },
            perm: vec![0; n],
            perm_inv: if small { Vec::new() } else { vec![0; n] },
            scratch: Scratch(MemBuffer::new(if small { StackReq::EMPTY } else { scratch_req(n) })),
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
        if self.n != n {
            // Only on a size change: steady state reuses everything.
            *self = Self { stats: self.stats, ..Self::new(n) };
        }
        if n <= SMALL_MAX {
            for (j, col) in self.small.chunks_exact_mut(n.max(1)).enumerate().take(n) {
                for (i, x) in col.iter_mut().enumerate() {
                    *x = a[(i, j)];
                }
            }
            small_factor(&mut self.small, &mut self.perm, n)?;
        } else {
            self.lu.copy_from(a);
            factor::lu_in_place(
                self.lu.as_mut(),
                &mut self.perm,
                &mut self.perm_inv,
                Par::Seq,
                self.scratch.stack(),
                Default::default(),
            );
            // faer keeps going past a zero pivot (dividing by it); we refuse such a
            // factorization instead of letting infinities reach the caller's Newton iteration.
            if let Some(k) = (0..n).find(|&k| {
                let u = self.lu[(k, k)];
                u == 0.0 || !u.is_finite()
            }) {
                return Err(LinalgError::Singular { pivot: Some(k) });
            }
        }
        self.stats.numeric_factorizations += 1;
        self.factorized = true;
        Ok(())
    }

    fn solve_impl(&mut self, b: &mut [f64], transpose: bool) -> Result<()> {
        if !self.factorized {
            return Err(LinalgError::NotFactorized);
        }
        let n = self.n;
        check_len("right-hand side", n, b.len())?;
        check_finite("right-hand side", b)?;
        if n == 0 {
            return Ok(());
        }
        if transpose {
            self.stats.transpose_solves += 1;
        } else {
            self.stats.solves += 1;
        }
        if n <= SMALL_MAX {
            small_solve(&self.small, &self.perm, n, b, transpose);
            return Ok(());
        }
        let rhs = MatMut::from_column_major_slice_mut(b, n, 1);
        let perm = PermRef::new_checked(&self.perm, &self.perm_inv, n);
        let stack = self.scratch.stack();
        // faer stores L (unit lower) and U in the same matrix; it reads only its half of each.
        let lu = self.lu.as_ref();
        if transpose {
            solve::solve_transpose_in_place(lu, lu, perm, rhs, Par::Seq, stack);
        } else {
            solve::solve_in_place(lu, lu, perm, rhs, Par::Seq, stack);
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
        self.n
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
    use proptest::prelude::*;

    /// The faer path (the only one before the small-`n` kernel), for any `n`.
    fn faer_solve(a: &Mat<f64>, b: &[f64], transpose: bool) -> Vec<f64> {
        let n = a.nrows();
        let mut lu = a.clone();
        let (mut perm, mut perm_inv) = (vec![0usize; n], vec![0usize; n]);
        let mut buf = MemBuffer::new(scratch_req(n));
        let stack = faer::dyn_stack::MemStack::new(&mut buf);
        factor::lu_in_place(
            lu.as_mut(),
            &mut perm,
            &mut perm_inv,
            Par::Seq,
            stack,
            Default::default(),
        );
        let mut x = b.to_vec();
        let rhs = MatMut::from_column_major_slice_mut(&mut x, n, 1);
        let p = PermRef::new_checked(&perm, &perm_inv, n);
        let stack = faer::dyn_stack::MemStack::new(&mut buf);
        if transpose {
            solve::solve_transpose_in_place(lu.as_ref(), lu.as_ref(), p, rhs, Par::Seq, stack);
        } else {
            solve::solve_in_place(lu.as_ref(), lu.as_ref(), p, rhs, Par::Seq, stack);
        }
        x
    }

    /// Random `n × n` matrices `P (R + n I)` with `R` uniform in `[-1, 1]` and `P` a random row
    /// permutation: well conditioned, yet partial pivoting has to undo `P`.
    fn well_conditioned() -> impl Strategy<Value = (Mat<f64>, Vec<f64>)> {
        (1..=SMALL_MAX).prop_flat_map(|n| {
            (
                proptest::collection::vec(-1.0..1.0f64, n * n),
                Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
                proptest::collection::vec(-10.0..10.0f64, n),
            )
                .prop_map(move |(r, p, b)| {
                    let a = Mat::from_fn(n, n, |i, j| {
                        let i = p[i];
                        r[j * n + i] + if i == j { n as f64 } else { 0.0 }
                    });
                    (a, b)
                })
        })
    }

    fn rel_diff(x: &[f64], y: &[f64]) -> f64 {
        let scale = y.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(f64::MIN_POSITIVE);
        x.iter().zip(y).fold(0.0f64, |m, (a, b)| m.max((a - b).abs())) / scale
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn small_path_matches_faer((a, b) in well_conditioned()) {
            let n = a.nrows();
            let mut lu = DenseLu::new(n);
            lu.factorize(&a).unwrap();
            for transpose in [false, true] {
                let mut x = b.clone();
                if transpose {
                    lu.solve_transpose_in_place(&mut x).unwrap();
                } else {
                    lu.solve_in_place(&mut x).unwrap();
                }
                let reference = faer_solve(&a, &b, transpose);
                let d = rel_diff(&x, &reference);
                prop_assert!(d <= 1e-12, "n = {n}, transpose = {transpose}: rel diff {d:e}");
            }
        }
    }

    #[test]
    fn small_path_singular_matrices() {
        // Rank 2 of 3 (row 1 = 2 × row 0, so elimination is exact), a zero first column, and a
        // zero matrix; the pivot index is the elimination step, as faer's path reports it.
        let cases = [
            (mat![[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 1.0, 1.0]], 2),
            (mat![[0.0, 2.0, 3.0], [0.0, 5.0, 6.0], [0.0, 7.0, 1.0]], 0),
            (Mat::zeros(3, 3), 0),
        ];
        for (a, pivot) in cases {
            let mut lu = DenseLu::new(3);
            let err = lu.factorize(&a).unwrap_err();
            assert_eq!(err, LinalgError::Singular { pivot: Some(pivot) }, "{a:?}");
            assert!(!lu.is_factorized());
            assert_eq!(lu.solve_in_place(&mut [1.0; 3]), Err(LinalgError::NotFactorized));
            // A good matrix afterwards factorizes again.
            lu.factorize(&Mat::<f64>::identity(3, 3)).unwrap();
        }
        // Both sides of the size threshold report the same singular step.
        for n in [SMALL_MAX, SMALL_MAX + 1] {
            let a = Mat::from_fn(n, n, |i, j| if i == j && i != 5 { 1.0 } else { 0.0 });
            let err = DenseLu::new(n).factorize(&a).unwrap_err();
            assert_eq!(err, LinalgError::Singular { pivot: Some(5) }, "n = {n}");
        }
    }

    /// Factorize + solve + transpose solve, small kernel vs faer, n = 1..=32:
    /// `cargo test --release -p neurohybrid-linalg crossover_timing -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, not a check"]
    fn crossover_timing() {
        use std::hint::black_box;
        use std::time::Instant;
        for n in 1..=32 {
            let a = Mat::from_fn(n, n, |i, j| {
                ((i * 7 + j * 13) % 11) as f64 / 11.0 - 0.5 + if i == j { n as f64 } else { 0.0 }
            });
            let reps = 200_000 / n;
            let mut b = vec![1.0; n];
            let mut small = vec![0.0; n * n];
            let mut piv = vec![0usize; n];
            let t = Instant::now();
            for _ in 0..reps {
                for j in 0..n {
                    for i in 0..n {
                        small[j * n + i] = a[(i, j)];
                    }
                }
                small_factor(black_box(&mut small), &mut piv, n).unwrap();
                small_solve(&small, &piv, n, black_box(&mut b), false);
                small_solve(&small, &piv, n, black_box(&mut b), true);
            }
            let ts = t.elapsed().as_nanos() as f64 / reps as f64;
            let mut lu = Mat::zeros(n, n);
            let (mut perm, mut perm_inv) = (vec![0usize; n], vec![0usize; n]);
            let mut buf = MemBuffer::new(scratch_req(n));
            let t = Instant::now();
            for _ in 0..reps {
                lu.copy_from(&a);
                let stack = faer::dyn_stack::MemStack::new(&mut buf);
                factor::lu_in_place(
                    black_box(lu.as_mut()),
                    &mut perm,
                    &mut perm_inv,
                    Par::Seq,
                    stack,
                    Default::default(),
                );
                let p = PermRef::new_checked(&perm, &perm_inv, n);
                for transpose in [false, true] {
                    let rhs = MatMut::from_column_major_slice_mut(black_box(&mut b), n, 1);
                    let stack = faer::dyn_stack::MemStack::new(&mut buf);
                    if transpose {
                        solve::solve_transpose_in_place(
                            lu.as_ref(),
                            lu.as_ref(),
                            p,
                            rhs,
                            Par::Seq,
                            stack,
                        );
                    } else {
                        solve::solve_in_place(lu.as_ref(), lu.as_ref(), p, rhs, Par::Seq, stack);
                    }
                }
            }
            let tf = t.elapsed().as_nanos() as f64 / reps as f64;
            println!("n = {n:2}: small {ts:8.1} ns, faer {tf:8.1} ns, faer/small {:.2}", tf / ts);
        }
    }

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
