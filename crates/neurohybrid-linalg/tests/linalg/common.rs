//! Shared test matrices.

use faer::Mat;
use neurohybrid_linalg::{DenseLu, LinearSolver, SparseMatrix};
use proptest::prelude::*;

/// 5-point Laplacian `-Δ` on a `k × k` grid with Dirichlet boundary, plus `shift·I`
/// (symmetric positive definite for `shift ≥ 0`).
pub fn laplacian_2d(k: usize, shift: f64) -> SparseMatrix {
    convection_diffusion_2d(k, shift, 0.0)
}

/// `-Δu + c ∂u/∂x` (first-order upwind, nonsymmetric for `c ≠ 0`) plus `shift·I`, grid spacing 1.
pub fn convection_diffusion_2d(k: usize, shift: f64, c: f64) -> SparseMatrix {
    let idx = |i: usize, j: usize| i * k + j;
    let mut t = Vec::new();
    for i in 0..k {
        for j in 0..k {
            let p = idx(i, j);
            t.push((p, p, 4.0 + shift + c));
            if i > 0 {
                t.push((p, idx(i - 1, j), -1.0));
            }
            if i + 1 < k {
                t.push((p, idx(i + 1, j), -1.0));
            }
            if j > 0 {
                t.push((p, idx(i, j - 1), -1.0 - c));
            }
            if j + 1 < k {
                t.push((p, idx(i, j + 1), -1.0));
            }
        }
    }
    SparseMatrix::from_triplets(k * k, k * k, &t).expect("valid grid triplets")
}

/// Relative 2-norm difference `‖a − b‖ / ‖b‖`.
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    num / den.max(f64::MIN_POSITIVE)
}

/// A deterministic, non-trivial vector.
pub fn test_vector(n: usize) -> Vec<f64> {
    (0..n).map(|i| ((i * 7919) % 113) as f64 / 56.0 - 1.0).collect()
}

/// `b − A x` 2-norm relative to `‖b‖`.
pub fn rel_residual(a: &SparseMatrix, x: &[f64], b: &[f64], transpose: bool) -> f64 {
    let mut ax = vec![0.0; b.len()];
    if transpose {
        a.matvec_transpose(x, &mut ax).expect("sizes match");
    } else {
        a.matvec(x, &mut ax).expect("sizes match");
    }
    rel_err(&ax, b)
}

/// 7-point Laplacian `-Δ` on a `k × k × k` grid (Dirichlet): fill-in large enough that faer
/// chooses its supernodal LU.
pub fn laplacian_3d(k: usize) -> SparseMatrix {
    let idx = |i: usize, j: usize, l: usize| (i * k + j) * k + l;
    let mut t = Vec::new();
    for i in 0..k {
        for j in 0..k {
            for l in 0..k {
                let p = idx(i, j, l);
                t.push((p, p, 6.0));
                for (di, dj, dl) in [(1, 0, 0), (0, 1, 0), (0, 0, 1)] {
                    if i + di < k && j + dj < k && l + dl < k {
                        let q = idx(i + di, j + dj, l + dl);
                        t.push((p, q, -1.0));
                        t.push((q, p, -1.0));
                    }
                }
            }
        }
    }
    SparseMatrix::from_triplets(k * k * k, k * k * k, &t).expect("valid grid triplets")
}

/// Random SPD sparse matrices, `1 ≤ n < 60`: a random symmetric off-diagonal pattern with
/// random values, made strictly diagonally dominant with a positive diagonal (hence SPD), plus
/// a right-hand side.
pub fn random_spd() -> impl Strategy<Value = (SparseMatrix, Vec<f64>)> {
    (1usize..60).prop_flat_map(|n| {
        (
            prop::collection::vec((0..n, 0..n, -1.0..1.0f64), 0..=3 * n),
            prop::collection::vec(0.0..2.0f64, n),
            prop::collection::vec(-10.0..10.0f64, n),
        )
            .prop_map(move |(off, extra, b)| {
                let mut t = Vec::new();
                let mut row_abs = vec![0.0; n];
                for (i, j, v) in off.into_iter().filter(|&(i, j, _)| i != j) {
                    t.push((i, j, v));
                    t.push((j, i, v));
                    row_abs[i] += f64::abs(v);
                    row_abs[j] += f64::abs(v);
                }
                for i in 0..n {
                    t.push((i, i, row_abs[i] + 0.1 + extra[i]));
                }
                (SparseMatrix::from_triplets(n, n, &t).expect("valid triplets"), b)
            })
    })
}

/// Random nonsymmetric sparse matrices, `1 ≤ n < 60`: independent random off-diagonal entries,
/// strictly diagonally dominant by rows with a positive diagonal (nonsingular, and `W = I − hγJ`
/// shaped: eigenvalues in the right half plane), plus a right-hand side.
pub fn random_nonsymmetric() -> impl Strategy<Value = (SparseMatrix, Vec<f64>)> {
    (2usize..60).prop_flat_map(|n| {
        (
            prop::collection::vec((0..n, 0..n, -1.0..1.0f64), 1..=3 * n),
            prop::collection::vec(-10.0..10.0f64, n),
        )
            .prop_map(move |(off, b)| {
                let mut t = Vec::new();
                let mut row_abs = vec![0.0; n];
                for (i, j, v) in off.into_iter().filter(|&(i, j, _)| i != j) {
                    t.push((i, j, v));
                    row_abs[i] += f64::abs(v);
                }
                for (i, r) in row_abs.iter().enumerate() {
                    t.push((i, i, r + 0.5));
                }
                (SparseMatrix::from_triplets(n, n, &t).expect("valid triplets"), b)
            })
    })
}

/// `A⁻¹ b` by dense LU (the reference for the sparse and iterative solvers).
pub fn dense_solve(a: &Mat<f64>, b: &[f64]) -> Vec<f64> {
    let mut lu = DenseLu::new(a.nrows());
    lu.factorize(a).expect("dense factorization");
    let mut x = b.to_vec();
    lu.solve_in_place(&mut x).expect("dense solve");
    x
}
