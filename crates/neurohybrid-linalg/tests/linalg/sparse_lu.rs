//! Sparse LU against dense LU, symbolic reuse, error paths, interop.

use faer::Mat;
use nalgebra_sparse::{CooMatrix, CsrMatrix};
use neurohybrid_linalg::{CsrRef, DenseLu, LinalgError, LinearSolver, SparseLu, SparseMatrix};
use proptest::prelude::*;

use crate::alloc_count::allocations_in;
use crate::common::{
    convection_diffusion_2d, laplacian_2d, laplacian_3d, rel_err, rel_residual, test_vector,
};

/// Random diagonally dominant sparse matrices, `1 ≤ n < 60`, random pattern and signs, plus a
/// right-hand side.
fn diag_dominant() -> impl Strategy<Value = (SparseMatrix, Vec<f64>)> {
    (1usize..60).prop_flat_map(|n| {
        (
            prop::collection::vec((0..n, 0..n, -1.0..1.0f64), 0..=4 * n),
            prop::collection::vec(prop::bool::ANY, n),
            prop::collection::vec(-10.0..10.0f64, n),
        )
            .prop_map(move |(off, signs, b)| {
                let mut t: Vec<(usize, usize, f64)> =
                    off.into_iter().filter(|&(i, j, _)| i != j).collect();
                let mut row_abs = vec![0.0; n];
                for &(i, _, v) in &t {
                    row_abs[i] += f64::abs(v);
                }
                for i in 0..n {
                    let d = row_abs[i] + 1.0;
                    t.push((i, i, if signs[i] { d } else { -d }));
                }
                (SparseMatrix::from_triplets(n, n, &t).expect("valid triplets"), b)
            })
    })
}

fn dense_solve(a: &Mat<f64>, b: &[f64], transpose: bool) -> Vec<f64> {
    let mut lu = DenseLu::new(a.nrows());
    lu.factorize(a).expect("dense factorization");
    let mut x = b.to_vec();
    if transpose {
        lu.solve_transpose_in_place(&mut x).expect("dense solve");
    } else {
        lu.solve_in_place(&mut x).expect("dense solve");
    }
    x
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn sparse_lu_matches_dense_lu((a, b) in diag_dominant()) {
        let dense = a.to_dense();
        let mut lu = SparseLu::new();
        lu.factorize(&a).unwrap();
        let mut x = b.clone();
        lu.solve_in_place(&mut x).unwrap();
        let mut xt = b.clone();
        lu.solve_transpose_in_place(&mut xt).unwrap();
        prop_assert!(rel_err(&x, &dense_solve(&dense, &b, false)) < 1e-10);
        prop_assert!(rel_err(&xt, &dense_solve(&dense, &b, true)) < 1e-10);
        // And both are actual solutions.
        prop_assert!(rel_residual(&a, &x, &b, false) < 1e-12);
        prop_assert!(rel_residual(&a, &xt, &b, true) < 1e-12);
    }

    #[test]
    fn refactorization_with_new_values_matches_fresh_factorization(
        (a, b) in diag_dominant(),
        factor in 0.5..2.0f64,
    ) {
        let mut lu = SparseLu::new();
        lu.factorize(&a).unwrap();
        let mut a2 = a.clone();
        // Perturb off-diagonals differently from diagonals (still dominant).
        for (k, (i, j)) in a.pattern().coordinates().enumerate() {
            if i != j {
                a2.values_mut()[k] *= factor;
            } else {
                a2.values_mut()[k] *= 2.0;
            }
        }
        lu.factorize(&a2).unwrap();
        prop_assert_eq!(lu.stats().symbolic_factorizations, 1);
        let mut x = b.clone();
        lu.solve_in_place(&mut x).unwrap();
        prop_assert!(rel_err(&x, &dense_solve(&a2.to_dense(), &b, false)) < 1e-10);
    }
}

#[test]
fn one_symbolic_factorization_for_many_numeric_ones() {
    let lap = laplacian_2d(20, 0.0);
    let mut w = SparseMatrix::zeros(lap.pattern().clone());
    let mut lu = SparseLu::new();
    let b = test_vector(400);
    for step in 0..12 {
        // W = I + h·(−Δ) with a different h each time, refilled in place.
        let h = 0.01 * (step + 1) as f64;
        w.fill(0.0);
        w.add_scaled(h, &lap).unwrap();
        w.add_to_diagonal(1.0).unwrap();
        lu.factorize(&w).unwrap();
        let mut x = b.clone();
        lu.solve_in_place(&mut x).unwrap();
        assert!(rel_residual(&w, &x, &b, false) < 1e-13, "step {step}");
    }
    let s = lu.stats();
    assert_eq!(s.symbolic_factorizations, 1);
    assert_eq!(s.numeric_factorizations, 12);
    assert_eq!(s.solves, 12);

    // A *copy* of the pattern (not the same Arc) is recognized by value for borrowed views...
    let coo = {
        let mut coo = CooMatrix::new(400, 400);
        for ((i, j), &v) in w.pattern().coordinates().zip(w.values()) {
            coo.push(i, j, v);
        }
        coo
    };
    let csr = CsrMatrix::from(&coo);
    lu.factorize_csr(CsrRef::from_nalgebra(&csr)).unwrap();
    assert_eq!(lu.stats().symbolic_factorizations, 1);
    // ...and a different pattern triggers a new symbolic analysis.
    lu.factorize(&convection_diffusion_2d(5, 0.0, 1.0)).unwrap();
    assert_eq!(lu.stats().symbolic_factorizations, 2);
    assert_eq!(lu.dim(), 25);
}

#[test]
fn nalgebra_csr_is_factorized_without_copy_and_agrees() {
    let a = convection_diffusion_2d(8, 0.1, 2.0);
    let mut coo = CooMatrix::new(64, 64);
    for ((i, j), &v) in a.pattern().coordinates().zip(a.values()) {
        coo.push(i, j, v);
    }
    let csr = CsrMatrix::from(&coo);
    let mut lu = SparseLu::new();
    lu.factorize_csr(CsrRef::from_nalgebra(&csr)).unwrap();
    let b = test_vector(64);
    let (mut x, mut xt) = (b.clone(), b.clone());
    lu.solve_in_place(&mut x).unwrap();
    lu.solve_transpose_in_place(&mut xt).unwrap();
    assert!(rel_residual(&a, &x, &b, false) < 1e-13);
    assert!(rel_residual(&a, &xt, &b, true) < 1e-13);
}

#[test]
fn steady_state_refactorize_and_solve_do_not_allocate() {
    // (matrix, force simplicial, whether refactorization must be allocation-free): the 2D grid
    // takes faer's simplicial path by itself, the 3D grid its supernodal one unless forced.
    let cases = [
        (laplacian_2d(15, 0.0), false, true),
        (laplacian_3d(12), false, false),
        (laplacian_3d(12), true, true),
    ];
    for (lap, simplicial, refactor_free) in cases {
        let n = lap.nrows();
        let mut w = lap.clone();
        let mut lu = SparseLu::new().force_simplicial(simplicial);
        lu.factorize(&w).unwrap(); // first call: symbolic analysis and storage
        lu.factorize(&w).unwrap();
        let mut x = test_vector(n);
        let solve_allocs = allocations_in(|| {
            for _ in 0..3 {
                lu.solve_in_place(&mut x).unwrap();
                lu.solve_transpose_in_place(&mut x).unwrap();
            }
        });
        assert_eq!(solve_allocs, 0, "n = {n}");
        let refactor_allocs = allocations_in(|| {
            for k in 0..3 {
                w.add_to_diagonal(0.1 * k as f64).unwrap();
                lu.factorize(&w).unwrap();
            }
        });
        if refactor_free {
            assert_eq!(refactor_allocs, 0, "n = {n}, simplicial = {simplicial}");
        }
        let b = x.clone();
        lu.solve_in_place(&mut x).unwrap();
        assert!(rel_residual(&w, &x, &b, false) < 1e-12);
        assert_eq!(lu.stats().symbolic_factorizations, 1);
    }

    let mut dense = DenseLu::new(3);
    let m = faer::mat![[3.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 3.0]];
    dense.factorize(&m).unwrap();
    let mut y = vec![1.0, 2.0, 3.0];
    let allocs = allocations_in(|| {
        dense.factorize(&m).unwrap();
        dense.solve_in_place(&mut y).unwrap();
        dense.solve_transpose_in_place(&mut y).unwrap();
    });
    assert_eq!(allocs, 0);
}

#[test]
fn singular_and_non_finite_matrices_are_named_errors() {
    // Two identical rows: numerically singular, structurally fine.
    let a = SparseMatrix::from_triplets(
        3,
        3,
        &[
            (0, 0, 1.0),
            (0, 1, 2.0),
            (1, 0, 1.0),
            (1, 1, 2.0),
            (2, 2, 5.0),
            (1, 2, 0.0),
            (0, 2, 0.0),
        ],
    )
    .unwrap();
    let mut lu = SparseLu::new();
    assert!(matches!(lu.factorize(&a), Err(LinalgError::Singular { .. })));
    assert_eq!(lu.solve_in_place(&mut [1.0; 3]), Err(LinalgError::NotFactorized));
    // The zero matrix with a full pattern.
    let z = SparseMatrix::zeros(laplacian_2d(3, 0.0).pattern().clone());
    assert!(matches!(lu.factorize(&z), Err(LinalgError::Singular { .. })));
    // NaN in the values.
    let mut nan = laplacian_2d(3, 0.0);
    nan.values_mut()[4] = f64::NAN;
    assert_eq!(lu.factorize(&nan), Err(LinalgError::NonFinite { what: "matrix values", index: 4 }));
    // A good factorization after the failures still works, and wrong lengths are errors.
    lu.factorize(&laplacian_2d(3, 0.0)).unwrap();
    assert!(matches!(
        lu.solve_in_place(&mut [1.0; 4]),
        Err(LinalgError::DimensionMismatch { expected: 9, got: 4, .. })
    ));
    // Non-square.
    let rect = SparseMatrix::from_triplets(2, 3, &[(0, 0, 1.0), (1, 2, 1.0)]).unwrap();
    assert!(matches!(lu.factorize(&rect), Err(LinalgError::NotSquare { nrows: 2, ncols: 3 })));
}
