//! Dense LU: factorizations and solves do not allocate, on both sides of the small-matrix
//! kernel's size threshold (n ≤ 24).

use crate::alloc_count::allocations_in;
use faer::Mat;
use neurohybrid_linalg::{DenseLu, LinearSolver};

fn test_matrix(n: usize) -> Mat<f64> {
    Mat::from_fn(n, n, |i, j| {
        ((i * 7 + j * 13) % 11) as f64 / 11.0 - 0.5 + if i == j { n as f64 } else { 0.0 }
    })
}

fn refactor_and_solve(lu: &mut DenseLu, a: &mut Mat<f64>, x: &mut [f64]) {
    for k in 0..3 {
        a[(0, 0)] += 0.1 * k as f64;
        lu.factorize(a).unwrap();
        lu.solve_in_place(x).unwrap();
        lu.solve_transpose_in_place(x).unwrap();
    }
}

#[test]
fn small_kernel_does_not_allocate_after_construction() {
    for n in [1, 2, 3, 8, 16, 24] {
        let mut a = test_matrix(n);
        let mut x = vec![1.0; n];
        let mut lu = DenseLu::new(n);
        let allocs = allocations_in(|| refactor_and_solve(&mut lu, &mut a, &mut x));
        assert_eq!(allocs, 0, "n = {n}");
        assert!(x.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn steady_state_refactorize_and_solve_do_not_allocate() {
    for n in [3, 24, 25, 32, 40] {
        let mut a = test_matrix(n);
        let mut x = vec![1.0; n];
        let mut lu = DenseLu::new(n);
        // faer (n > 32 here) allocates once on its first call.
        lu.factorize(&a).unwrap();
        let allocs = allocations_in(|| refactor_and_solve(&mut lu, &mut a, &mut x));
        assert_eq!(allocs, 0, "n = {n}");
        assert!(x.iter().all(|v| v.is_finite()));
    }
}
