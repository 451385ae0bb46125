//! Restarted GMRES(m), right-preconditioned.

use crate::error::{Result, check_finite, check_len};
use crate::krylov::operator::{LinearOperator, Preconditioner, Transposed, norm2};
use crate::krylov::{KrylovConfig, KrylovOutcome, KrylovStatus};

/// Restarted GMRES(m) with modified Gram–Schmidt and Givens rotations (Saad, *Iterative
/// Methods for Sparse Linear Systems*, 2nd ed., Algorithm 6.9 with right preconditioning,
/// Algorithm 9.5).
///
/// *Why right preconditioning:* GMRES then minimizes the true residual `‖b − A x‖` rather than
/// the preconditioned one, so the stopping test means the same thing with every
/// preconditioner — an ODE solver's Newton tolerance is stated in the unpreconditioned norm.
///
/// *Why MGS + Givens:* modified Gram–Schmidt is the cheap, sufficiently stable orthogonalizer
/// for GMRES (Saad §6.5.1); Givens rotations keep the Hessenberg least-squares problem
/// triangular as it grows, so the residual norm is known at every inner iteration for free.
///
/// The workspace (Krylov basis, Hessenberg matrix, rotations) is sized on first use and reused,
/// so repeated solves of one size allocate nothing.
#[derive(Debug, Clone, Default)]
pub struct Gmres {
    config: KrylovConfig,
    n: usize,
    /// Krylov basis, `(m + 1)` vectors of length `n`, contiguous.
    v: Vec<f64>,
    /// Hessenberg matrix, column-major `(m + 1) × m`.
    h: Vec<f64>,
    cs: Vec<f64>,
    sn: Vec<f64>,
    g: Vec<f64>,
    y: Vec<f64>,
    w: Vec<f64>,
    r: Vec<f64>,
}

impl Gmres {
    /// A solver with the given configuration (validated at solve time).
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

    fn ensure_workspace(&mut self, n: usize) {
        let m = self.config.restart;
        if self.n == n && self.g.len() == m + 1 {
            return;
        }
        self.n = n;
        self.v = vec![0.0; (m + 1) * n];
        self.h = vec![0.0; (m + 1) * m];
        self.cs = vec![0.0; m];
        self.sn = vec![0.0; m];
        self.g = vec![0.0; m + 1];
        self.y = vec![0.0; m];
        self.w = vec![0.0; n];
        self.r = vec![0.0; n];
    }

    /// Solves `A x = b`, starting from the given `x`. Non-convergence is a status in the
    /// outcome; `Err` only for wrong lengths, non-finite input or an invalid configuration.
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
        self.ensure_workspace(n);
        let tol = self.config.threshold(norm2(b));
        let m = self.config.restart;
        let mut iterations = 0;
        loop {
            // r = b − A x (recomputed each cycle: the true residual, not the recurrence).
            a.apply(x, &mut self.r);
            for (ri, bi) in self.r.iter_mut().zip(b) {
                *ri = bi - *ri;
            }
            let beta = norm2(&self.r);
            if !beta.is_finite() {
                return Ok(KrylovOutcome::new(KrylovStatus::NonFinite, iterations, beta));
            }
            if beta <= tol {
                return Ok(KrylovOutcome::new(KrylovStatus::Converged, iterations, beta));
            }
            if iterations >= self.config.max_iters {
                return Ok(KrylovOutcome::new(KrylovStatus::MaxIterations, iterations, beta));
            }
            for (vi, ri) in self.v[..n].iter_mut().zip(&self.r) {
                *vi = ri / beta;
            }
            self.g.fill(0.0);
            self.g[0] = beta;
            let mut k = 0; // columns in this cycle
            let mut breakdown = false;
            while k < m && iterations < self.config.max_iters {
                let j = k;
                // w = A M⁻¹ v_j (r serves as the z = M⁻¹ v_j scratch).
                pc.apply(&self.v[j * n..(j + 1) * n], &mut self.r);
                a.apply(&self.r, &mut self.w);
                // Modified Gram–Schmidt against v_0..v_j.
                for i in 0..=j {
                    let vi = &self.v[i * n..(i + 1) * n];
                    let hij: f64 = vi.iter().zip(&self.w).map(|(p, q)| p * q).sum();
                    for (wk, vk) in self.w.iter_mut().zip(vi) {
                        *wk -= hij * vk;
                    }
                    self.h[j * (m + 1) + i] = hij;
                }
                let h_next = norm2(&self.w);
                self.h[j * (m + 1) + j + 1] = h_next;
                // Apply the previous rotations to the new column, then a new one to zero h_next.
                let col = &mut self.h[j * (m + 1)..(j + 1) * (m + 1)];
                for i in 0..j {
                    let (c, s) = (self.cs[i], self.sn[i]);
                    let (hi, hi1) = (col[i], col[i + 1]);
                    col[i] = c * hi + s * hi1;
                    col[i + 1] = -s * hi + c * hi1;
                }
                let denom = col[j].hypot(col[j + 1]);
                if !denom.is_finite() {
                    return Ok(KrylovOutcome::new(KrylovStatus::NonFinite, iterations, f64::NAN));
                }
                let (c, s) =
                    if denom == 0.0 { (1.0, 0.0) } else { (col[j] / denom, col[j + 1] / denom) };
                self.cs[j] = c;
                self.sn[j] = s;
                col[j] = c * col[j] + s * col[j + 1];
                col[j + 1] = 0.0;
                self.g[j + 1] = -s * self.g[j];
                self.g[j] *= c;
                iterations += 1;
                k += 1;
                // A zero diagonal after rotation means the Krylov space stopped growing while
                // the least-squares system is singular: no progress is possible.
                if col[j] == 0.0 {
                    breakdown = true;
                    k -= 1;
                    break;
                }
                // Lucky breakdown (h_next ≈ 0): the solution lies in the current space.
                let lucky = h_next <= f64::EPSILON * denom;
                if !lucky {
                    for (vk, wk) in self.v[(j + 1) * n..(j + 2) * n].iter_mut().zip(&self.w) {
                        *vk = wk / h_next;
                    }
                }
                if self.g[j + 1].abs() <= tol || lucky {
                    break;
                }
            }
            self.update_solution(pc, x, k);
            if breakdown {
                a.apply(x, &mut self.r);
                for (ri, bi) in self.r.iter_mut().zip(b) {
                    *ri = bi - *ri;
                }
                let res = norm2(&self.r);
                let status =
                    if res <= tol { KrylovStatus::Converged } else { KrylovStatus::Breakdown };
                return Ok(KrylovOutcome::new(status, iterations, res));
            }
        }
    }

    /// `x ← x + M⁻¹ V_k y` with `y` from the `k × k` triangular system `H y = g`.
    fn update_solution(&mut self, pc: &mut dyn Preconditioner, x: &mut [f64], k: usize) {
        let (n, m) = (self.n, self.config.restart);
        for i in (0..k).rev() {
            let mut s = self.g[i];
            for l in i + 1..k {
                s -= self.h[l * (m + 1) + i] * self.y[l];
            }
            self.y[i] = s / self.h[i * (m + 1) + i];
        }
        self.w.fill(0.0);
        for (l, &yl) in self.y[..k].iter().enumerate() {
            for (wi, vi) in self.w.iter_mut().zip(&self.v[l * n..(l + 1) * n]) {
                *wi += yl * vi;
            }
        }
        pc.apply(&self.w, &mut self.r);
        for (xi, zi) in x.iter_mut().zip(&self.r) {
            *xi += zi;
        }
    }

    /// Solves `Aᵀ x = b` (with `M⁻ᵀ` as right preconditioner).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IdentityPreconditioner, SparseMatrix};

    fn nonsymmetric_tridiagonal(n: usize) -> SparseMatrix {
        let mut t = Vec::new();
        for i in 0..n {
            t.push((i, i, 3.0));
            if i + 1 < n {
                t.push((i, i + 1, -1.5));
                t.push((i + 1, i, -0.5));
            }
        }
        SparseMatrix::from_triplets(n, n, &t).unwrap()
    }

    #[test]
    fn short_restarts_still_converge() {
        let mut a = nonsymmetric_tridiagonal(20);
        let b: Vec<f64> = (0..20).map(|i| (i as f64).cos()).collect();
        let mut x = vec![0.0; 20];
        let cfg = KrylovConfig::default().restart(2).rtol(1e-12).max_iters(2000);
        let out = Gmres::new(cfg).solve(&mut a, &mut IdentityPreconditioner, &b, &mut x).unwrap();
        assert!(out.is_converged(), "{out:?}");
        assert!(out.iterations > 2, "must have restarted");
        let mut ax = vec![0.0; 20];
        a.matvec(&x, &mut ax).unwrap();
        let res: f64 = ax.iter().zip(&b).map(|(p, q)| (p - q).powi(2)).sum::<f64>().sqrt();
        assert!((res - out.residual_norm).abs() < 1e-12 && res < 1e-11);
    }

    #[test]
    fn identity_converges_in_one_iteration_and_zero_rhs_in_none() {
        let mut a = SparseMatrix::identity(5);
        let b = [1.0, 2.0, 3.0, 4.0, 5.0];
        let mut x = [0.0; 5];
        let mut g = Gmres::new(KrylovConfig::default());
        let out = g.solve(&mut a, &mut IdentityPreconditioner, &b, &mut x).unwrap();
        assert_eq!((out.status, out.iterations), (KrylovStatus::Converged, 1));
        assert_eq!(x, b);
        let out = g.solve(&mut a, &mut IdentityPreconditioner, &[0.0; 5], &mut [0.0; 5]).unwrap();
        assert_eq!((out.status, out.iterations), (KrylovStatus::Converged, 0));
    }
}
