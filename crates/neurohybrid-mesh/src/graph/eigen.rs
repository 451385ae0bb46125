//! Eigenvalues of small dense symmetric matrices by the cyclic Jacobi method.
//!
//! Why Jacobi: connectome Laplacians have tens to a few hundred nodes, where an `O(n³)`
//! sweep costs microseconds to milliseconds; the method is short, needs no tridiagonal
//! reduction, and computes small eigenvalues (the algebraic connectivity `λ₂`) to high
//! *relative* accuracy (Demmel & Veselić 1992) — exactly the eigenvalue a near-disconnected
//! connectome makes tiny. Algorithm: Golub & Van Loan, *Matrix Computations* (4th ed.),
//! §8.5.2–8.5.3 (Algorithms 8.5.1 `symSchur2` and 8.5.3, cyclic Jacobi). `neurohybrid-linalg`
//! has no symmetric eigen-solver, and this crate must not depend on faer directly.

use super::{GraphError, Result};

/// Upper bound on sweeps; cyclic Jacobi converges quadratically, typically in 6–12 sweeps.
const MAX_SWEEPS: usize = 100;

/// All eigenvalues of the symmetric `n × n` row-major matrix `a`, in ascending order.
///
/// Only the upper triangle is read (the matrix is symmetrized as `(A + Aᵀ)/2` first, so a
/// matrix symmetric up to rounding is fine). Iterates until the off-diagonal Frobenius norm is
/// below `n · ε · ‖A‖_F`.
///
/// # Errors
/// [`GraphError::LengthMismatch`] if `a.len() != n²`, [`GraphError::NonFinite`] for NaN/Inf,
/// [`GraphError::EigenNoConvergence`] after 100 sweeps (not expected for finite input).
pub fn symmetric_eigenvalues(n: usize, a: &[f64]) -> Result<Vec<f64>> {
    let expected = n.saturating_mul(n);
    if a.len() != expected {
        return Err(GraphError::LengthMismatch { what: "matrix entries", expected, got: a.len() });
    }
    if let Some(k) = a.iter().position(|v| !v.is_finite()) {
        return Err(GraphError::NonFinite { row: k / n, col: k % n });
    }
    let mut m = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            m[i * n + j] = 0.5 * (a[i * n + j] + a[j * n + i]);
        }
    }
    let norm = m.iter().map(|v| v * v).sum::<f64>().sqrt();
    let tol = (n as f64) * f64::EPSILON * norm;
    let off = |m: &[f64]| {
        let mut s = 0.0;
        for i in 0..n {
            for j in i + 1..n {
                s += 2.0 * m[i * n + j] * m[i * n + j];
            }
        }
        s.sqrt()
    };
    let mut sweeps = 0;
    while off(&m) > tol {
        if sweeps == MAX_SWEEPS {
            return Err(GraphError::EigenNoConvergence { sweeps });
        }
        sweeps += 1;
        for p in 0..n {
            for q in p + 1..n {
                rotate(&mut m, n, p, q);
            }
        }
    }
    let mut ev: Vec<f64> = (0..n).map(|i| m[i * n + i]).collect();
    ev.sort_by(f64::total_cmp);
    Ok(ev)
}

/// One Jacobi rotation `A ← Jᵀ A J` zeroing `A[p][q]` (Golub & Van Loan Alg. 8.5.1).
fn rotate(m: &mut [f64], n: usize, p: usize, q: usize) {
    let apq = m[p * n + q];
    if apq == 0.0 {
        return;
    }
    let (app, aqq) = (m[p * n + p], m[q * n + q]);
    let tau = (aqq - app) / (2.0 * apq);
    // t = tan θ, the smaller root of t² + 2τt − 1 = 0, so |θ| ≤ π/4; for huge τ use the
    // asymptote 1/(2τ) instead of squaring τ (which would overflow).
    let t = if tau.abs() > 1e150 {
        0.5 / tau
    } else {
        tau.signum() / (tau.abs() + (1.0 + tau * tau).sqrt())
    };
    let c = 1.0 / (1.0 + t * t).sqrt();
    let s = t * c;
    for k in 0..n {
        let (akp, akq) = (m[k * n + p], m[k * n + q]);
        m[k * n + p] = c * akp - s * akq;
        m[k * n + q] = s * akp + c * akq;
    }
    for k in 0..n {
        let (apk, aqk) = (m[p * n + k], m[q * n + k]);
        m[p * n + k] = c * apk - s * aqk;
        m[q * n + k] = s * apk + c * aqk;
    }
    // Exact zero for the annihilated pair (it is zero up to rounding after the update).
    m[p * n + q] = 0.0;
    m[q * n + p] = 0.0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigenvalues_of_known_matrices() {
        assert_eq!(symmetric_eigenvalues(1, &[4.0]).unwrap(), [4.0]);
        let ev = symmetric_eigenvalues(2, &[2.0, 1.0, 1.0, 2.0]).unwrap();
        assert!((ev[0] - 1.0).abs() < 1e-15 && (ev[1] - 3.0).abs() < 1e-15);
        // The path-graph Laplacian of n nodes has eigenvalues 2 − 2cos(kπ/n).
        let n = 12;
        let mut l = vec![0.0; n * n];
        for i in 0..n - 1 {
            l[i * n + i] += 1.0;
            l[(i + 1) * n + i + 1] += 1.0;
            l[i * n + i + 1] = -1.0;
            l[(i + 1) * n + i] = -1.0;
        }
        let ev = symmetric_eigenvalues(n, &l).unwrap();
        for (k, e) in ev.iter().enumerate() {
            let want = 2.0 - 2.0 * (k as f64 * std::f64::consts::PI / n as f64).cos();
            assert!((e - want).abs() < 1e-13, "k {k}: {e} vs {want}");
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(matches!(
            symmetric_eigenvalues(2, &[1.0; 3]),
            Err(GraphError::LengthMismatch { .. })
        ));
        assert!(matches!(
            symmetric_eigenvalues(1, &[f64::NAN]),
            Err(GraphError::NonFinite { row: 0, col: 0 })
        ));
    }
}
