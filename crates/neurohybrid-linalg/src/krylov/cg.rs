//! Preconditioned conjugate gradients.

use crate::error::{Result, check_finite, check_len};
use crate::krylov::operator::{LinearOperator, Preconditioner, Transposed, dot, lanes_sum, norm2};
use crate::krylov::{KrylovConfig, KrylovOutcome, KrylovStatus};

/// Preconditioned conjugate gradients for symmetric positive definite operators (Saad,
/// *Iterative Methods for Sparse Linear Systems*, 2nd ed., Algorithm 9.1).
///
/// The preconditioner must be symmetric positive definite too (Jacobi on an SPD matrix; ILU(0)
/// of a symmetric M-matrix, which equals IC(0) up to a diagonal scaling). A non-positive
/// curvature `pᵀAp ≤ 0` or `rᵀz ≤ 0` means the operator or the preconditioner is not SPD and is
/// reported as [`KrylovStatus::Breakdown`] rather than silently producing garbage.
///
/// Workspace is sized on first use and reused.
#[derive(Debug, Clone, Default)]
pub struct Cg {
    config: KrylovConfig,
    r: Vec<f64>,
    z: Vec<f64>,
    p: Vec<f64>,
    q: Vec<f64>,
}

impl Cg {
    /// A solver with the given configuration (`restart` is ignored).
    pub fn new(config: KrylovConfig) -> Self {
        Self { config, ..Self::default() }
    }

    /// The configuration.
    pub fn config(&self) -> &KrylovConfig {
        &self.config
    }

    /// The same solver (and workspace) with another configuration.
    pub fn with_config(mut self, config: KrylovConfig) -> Self {
        self.config = config;
        self
    }

    /// Solves `A x = b` from the given initial `x`.
    pub fn solve(
        &mut self,
        a: &mut dyn LinearOperator,
        pc: &mut dyn Preconditioner,
        b: &[f64],
        x: &mut [f64],
    ) -> Result<KrylovOutcome> {
        self.config.validate()?;
        let n = a.dim();
        check_len("right-hand side", n, b.len())?;
        check_len("initial guess", n, x.len())?;
        check_finite("right-hand side", b)?;
        check_finite("initial guess", x)?;
        for v in [&mut self.r, &mut self.z, &mut self.p, &mut self.q] {
            v.resize(n, 0.0);
        }
        let tol = self.config.threshold(norm2(b));
        // Without a preconditioner z = r: no copy, and rᵀz = ‖r‖² comes out of the update
        // loop. With one, ‖r‖² is still fused into the update (one pass fewer per iteration).
        let identity = pc.is_identity();
        // A zero initial guess (the usual one for Newton increments) needs no product.
        if x.iter().all(|&v| v == 0.0) {
            self.r.copy_from_slice(b);
        } else {
            a.apply(x, &mut self.r);
            self.r.iter_mut().zip(b).for_each(|(ri, bi)| *ri = bi - *ri);
        }
        let rr0 = dot(&self.r, &self.r);
        let mut rr = rr0;
        let mut rz = if identity {
            self.p.copy_from_slice(&self.r);
            rr
        } else {
            pc.apply(&self.r, &mut self.z);
            self.p.copy_from_slice(&self.z);
            dot(&self.r, &self.z)
        };
        let mut iterations = 0;
        loop {
            let res = rr.sqrt();
            if !res.is_finite() || !rz.is_finite() {
                return Ok(KrylovOutcome::new(KrylovStatus::NonFinite, iterations, res));
            }
            if res <= tol {
                return Ok(KrylovOutcome::new(KrylovStatus::Converged, iterations, res));
            }
            if iterations >= self.config.max_iters {
                return Ok(KrylovOutcome::new(KrylovStatus::MaxIterations, iterations, res));
            }
            a.apply(&self.p, &mut self.q);
            let pq = dot(&self.p, &self.q);
            if !pq.is_finite() {
                return Ok(KrylovOutcome::new(KrylovStatus::NonFinite, iterations, res));
            }
            if pq <= 0.0 || rz <= 0.0 {
                return Ok(KrylovOutcome::new(KrylovStatus::Breakdown, iterations, res));
            }
            let alpha = rz / pq;
            rr = update_and_norm(alpha, &self.p, &self.q, x, &mut self.r);
            let rz_new = if identity {
                rr
            } else {
                pc.apply(&self.r, &mut self.z);
                dot(&self.r, &self.z)
            };
            let beta = rz_new / rz;
            rz = rz_new;
            let z = if identity { &self.r } else { &self.z };
            for (pi, zi) in self.p.iter_mut().zip(z) {
                *pi = zi + beta * *pi;
            }
            iterations += 1;
        }
    }

    /// Solves `Aᵀ x = b`. For a symmetric operator this is the same system; it goes through
    /// `apply_transpose` anyway so that a slightly non-symmetric operator is handled honestly.
    pub fn solve_transpose(
        &mut self,
        a: &mut dyn LinearOperator,
        pc: &mut dyn Preconditioner,
        b: &[f64],
        x: &mut [f64],
    ) -> Result<KrylovOutcome> {
        self.solve(&mut Transposed(a), &mut Transposed(pc), b, x)
    }
}

/// `x += αp`, `r −= αq` and the new `‖r‖²` in one pass, with the reduction in eight lanes
/// (see [`dot`]).
fn update_and_norm(alpha: f64, p: &[f64], q: &[f64], x: &mut [f64], r: &mut [f64]) -> f64 {
    const L: usize = 8;
    let n = x.len();
    let full = n - n % L;
    let (x_body, x_tail) = x.split_at_mut(full);
    let (r_body, r_tail) = r.split_at_mut(full);
    let mut acc = [0.0; L];
    for ((xc, pc), (rc, qc)) in x_body
        .chunks_exact_mut(L)
        .zip(p[..full].chunks_exact(L))
        .zip(r_body.chunks_exact_mut(L).zip(q[..full].chunks_exact(L)))
    {
        for l in 0..L {
            xc[l] += alpha * pc[l];
            rc[l] -= alpha * qc[l];
            acc[l] += rc[l] * rc[l];
        }
    }
    let mut rr = lanes_sum(&acc);
    for ((xi, pi), (ri, qi)) in
        x_tail.iter_mut().zip(&p[full..]).zip(r_tail.iter_mut().zip(&q[full..]))
    {
        *xi += alpha * pi;
        *ri -= alpha * qi;
        rr += *ri * *ri;
    }
    rr
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IdentityPreconditioner, SparseMatrix};

    #[test]
    fn lane_reductions_match_the_sequential_ones_for_every_tail_length() {
        for n in [0, 1, 7, 8, 9, 19, 64, 67] {
            let v = |k: f64| (0..n).map(|i| ((i as f64 + k) * 0.37).sin()).collect::<Vec<_>>();
            let (p, q) = (v(1.0), v(2.0));
            let (mut x, mut r) = (v(3.0), v(4.0));
            let (mut x2, mut r2) = (x.clone(), r.clone());
            let alpha = 0.3;
            let rr = update_and_norm(alpha, &p, &q, &mut x, &mut r);
            let mut rr2 = 0.0;
            for i in 0..n {
                x2[i] += alpha * p[i];
                r2[i] -= alpha * q[i];
                rr2 += r2[i] * r2[i];
            }
            assert_eq!((x, &r), (x2, &r2), "n = {n}");
            assert!((rr - rr2).abs() <= 1e-14 * rr2.max(1.0), "n = {n}: {rr} vs {rr2}");
            let d: f64 = p.iter().zip(&r).map(|(a, b)| a * b).sum();
            assert!((dot(&p, &r) - d).abs() <= 1e-14 * n as f64, "n = {n}");
        }
    }

    #[test]
    fn spd_2x2_converges_in_at_most_two_iterations() {
        let mut a = SparseMatrix::from_triplets(
            2,
            2,
            &[(0, 0, 4.0), (0, 1, 1.0), (1, 0, 1.0), (1, 1, 3.0)],
        )
        .unwrap();
        let mut x = [0.0; 2];
        let out = Cg::new(KrylovConfig::default().rtol(1e-14))
            .solve(&mut a, &mut IdentityPreconditioner, &[1.0, 2.0], &mut x)
            .unwrap();
        assert!(out.is_converged() && out.iterations <= 2, "{out:?}");
        assert!((x[0] - 1.0 / 11.0).abs() < 1e-14 && (x[1] - 7.0 / 11.0).abs() < 1e-14);
    }
}
