//! Sparse Cholesky against dense LU, symbolic reuse, allocation, error paths, and (ignored)
//! timings against sparse LU on the 256² implicit-diffusion matrix of the Fisher–KPP benchmark.

use nalgebra_sparse::{CooMatrix, CsrMatrix};
use neurohybrid_linalg::{
    CsrRef, LinalgError, LinearSolver, SparseCholesky, SparseLu, SparseMatrix,
};
use proptest::prelude::*;
use std::time::Instant;

use crate::alloc_count::allocations_in;
use crate::common::{
    dense_solve, laplacian_2d, laplacian_3d, random_spd, rel_err, rel_residual, test_vector,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn sparse_cholesky_matches_dense_lu((a, b) in random_spd()) {
        let mut c = SparseCholesky::new();
        c.factorize(&a).unwrap();
        let mut x = b.clone();
        c.solve_in_place(&mut x).unwrap();
        let mut xt = b.clone();
        c.solve_transpose_in_place(&mut xt).unwrap();
        let reference = dense_solve(&a.to_dense(), &b);
        prop_assert!(rel_err(&x, &reference) < 1e-10);
        prop_assert_eq!(&x, &xt);
        prop_assert!(rel_residual(&a, &x, &b, false) < 1e-12);
    }

    #[test]
    fn refactorization_reuses_the_symbolic_analysis((a, b) in random_spd(), shift in 0.0..5.0f64) {
        let mut c = SparseCholesky::new();
        c.factorize(&a).unwrap();
        let mut a2 = a.clone();
        a2.values_mut().iter_mut().for_each(|v| *v *= 1.5);
        a2.add_to_diagonal(shift).unwrap();
        c.factorize(&a2).unwrap();
        let mut x = b.clone();
        c.solve_in_place(&mut x).unwrap();
        prop_assert!(rel_err(&x, &dense_solve(&a2.to_dense(), &b)) < 1e-10);
        let s = c.stats();
        prop_assert_eq!((s.symbolic_factorizations, s.numeric_factorizations), (1, 2));
    }
}

#[test]
fn steady_state_refactorize_and_solve_do_not_allocate() {
    for (lap, simplicial) in
        [(laplacian_2d(15, 0.0), false), (laplacian_3d(12), false), (laplacian_3d(12), true)]
    {
        let n = lap.nrows();
        let mut w = lap.clone();
        let mut c = SparseCholesky::new().force_simplicial(simplicial);
        c.factorize(&w).unwrap();
        let mut x = test_vector(n);
        let allocs = allocations_in(|| {
            for k in 0..3 {
                w.add_to_diagonal(0.1 * k as f64).unwrap();
                c.factorize(&w).unwrap();
                c.solve_in_place(&mut x).unwrap();
                c.solve_transpose_in_place(&mut x).unwrap();
            }
        });
        assert_eq!(
            allocs,
            0,
            "n = {n}, simplicial = {simplicial}, supernodal = {}",
            c.is_supernodal()
        );
        let b = x.clone();
        c.solve_in_place(&mut x).unwrap();
        assert!(rel_residual(&w, &x, &b, false) < 1e-12);
        assert_eq!(c.stats().symbolic_factorizations, 1);
    }
}

#[test]
fn nalgebra_csr_agrees_and_errors_are_named() {
    let a = laplacian_2d(6, 0.5);
    let mut coo = CooMatrix::new(a.nrows(), a.ncols());
    let d = a.to_dense();
    for i in 0..a.nrows() {
        for j in 0..a.ncols() {
            if d[(i, j)] != 0.0 {
                coo.push(i, j, d[(i, j)]);
            }
        }
    }
    let csr = CsrMatrix::from(&coo);
    let mut c = SparseCholesky::new();
    c.factorize_csr(CsrRef::from_nalgebra(&csr)).unwrap();
    let b = test_vector(a.nrows());
    let mut x = b.clone();
    c.solve_in_place(&mut x).unwrap();
    assert!(rel_residual(&a, &x, &b, false) < 1e-12);
    // −Δ − 10 I is indefinite on a 6×6 grid (largest eigenvalue of −Δ < 8).
    assert!(matches!(
        c.factorize(&laplacian_2d(6, -10.0)),
        Err(LinalgError::NotPositiveDefinite { .. })
    ));
    let mut bad = laplacian_2d(4, 0.0);
    bad.values_mut()[1] = f64::NAN;
    assert!(matches!(c.factorize(&bad), Err(LinalgError::NonFinite { .. })));
    assert!(!c.is_factorized());
}

/// `I − hγ D Δ` on an `m × m` grid with no-flux boundaries (the Fisher–KPP benchmark's `W`).
fn fisher_w(m: usize, hgamma_d_over_dx2: f64) -> SparseMatrix {
    let mut t = Vec::new();
    let c = hgamma_d_over_dx2;
    for r in 0..m {
        for col in 0..m {
            let i = r * m + col;
            let mut deg = 0.0;
            for (ok, j) in [
                (r > 0, i.wrapping_sub(m)),
                (col > 0, i.wrapping_sub(1)),
                (col + 1 < m, i + 1),
                (r + 1 < m, i + m),
            ] {
                if ok {
                    t.push((i, j, -c));
                    deg += 1.0;
                }
            }
            t.push((i, i, 1.0 + c * deg));
        }
    }
    SparseMatrix::from_triplets(m * m, m * m, &t).expect("valid grid")
}

/// Timings, run with `cargo test --release -p neurohybrid-linalg -- --ignored --nocapture
/// cholesky_vs_lu_timings` (`FISHER_W_M` sets the grid size, default 256).
#[test]
#[ignore = "timing, not a test"]
fn cholesky_vs_lu_timings() {
    let m: usize = std::env::var("FISHER_W_M").ok().and_then(|s| s.parse().ok()).unwrap_or(256);
    let w = fisher_w(m, 0.5 * 4.0); // hγ ≈ 0.5 day, D/dx² = 4/day
    let n = w.nrows();
    let b = test_vector(n);
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let reps = 5;
    for simplicial in [false, true] {
        let t = Instant::now();
        let mut lu = SparseLu::new().force_simplicial(simplicial);
        lu.factorize(&w).unwrap();
        let first = ms(t);
        let t = Instant::now();
        for _ in 0..reps {
            lu.factorize(&w).unwrap();
        }
        let numeric = ms(t) / reps as f64;
        let mut x = b.clone();
        let t = Instant::now();
        for _ in 0..reps {
            x.copy_from_slice(&b);
            lu.solve_in_place(&mut x).unwrap();
        }
        let solve = ms(t) / reps as f64;
        println!(
            "LU  m={m} simplicial={simplicial}: symbolic+numeric {first:.1} ms, numeric {numeric:.1} ms, solve {solve:.2} ms"
        );

        let t = Instant::now();
        let mut c = SparseCholesky::new().force_simplicial(simplicial);
        c.factorize(&w).unwrap();
        let first = ms(t);
        let t = Instant::now();
        for _ in 0..reps {
            c.factorize(&w).unwrap();
        }
        let numeric = ms(t) / reps as f64;
        let mut y = b.clone();
        let t = Instant::now();
        for _ in 0..reps {
            y.copy_from_slice(&b);
            c.solve_in_place(&mut y).unwrap();
        }
        let solve = ms(t) / reps as f64;
        println!(
            "LLT m={m} simplicial={simplicial} (supernodal: {}): symbolic+numeric {first:.1} ms, numeric {numeric:.1} ms, solve {solve:.2} ms, nnz(L) = {}, nnz(A) = {}",
            c.is_supernodal(),
            c.factor_nnz(),
            w.values().len()
        );
        assert!(rel_err(&x, &y) < 1e-10);
    }
}
