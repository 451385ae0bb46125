//! The spreading models as [`OdeSystem`]s with exact VJPs and JVPs.
//!
//! | model | state | parameters | equation |
//! |---|---|---|---|
//! | network diffusion (Raj et al. 2012) | `x` (n) | `[β]` | `dx/dt = −β L x` — [`GraphDiffusion`] from `neurohybrid-mesh`, used as is |
//! | [`NetworkFkpp`] (Weickenmeier et al. 2019; Fornari et al. 2019) | `c` (n) | `[κ, α]` | `dc/dt = −κ L c + α c (1 − c/K)` |
//! | [`Heterodimer`] (Thompson et al. 2020) | `[p, q]` (2n) | `[ρ, ρ̃, k0, k1, k̃1, k12]` | `dp/dt = −ρLp + k0 − k1 p − k12 p q`, `dq/dt = −ρ̃Lq − k̃1 q + k12 p q` |
//! | [`ClearanceFkpp`] (the synthetic truth) | `c` (n) | `[κ, α]` | FKPP `− γ c² / (c_s + c)` |
//!
//! `L = diag(W1) − W` is the combinatorial Laplacian of the max-normalized connectome; time is
//! in years, concentrations are normalized so the FKPP carrying capacity is 1 (or `K_i`).
//!
//! [`GraphDiffusion`]: neurohybrid_mesh::GraphDiffusion

use neurohybrid_mesh::GraphDiffusion;
use neurohybrid_system::{CsrMatrix, Jacobian, Jvp, OdeSystem, SparsityPattern, Vjp};

use crate::error::{AlzheimerError, Result};

/// `(L x)_i` for the CSR Laplacian.
#[inline]
fn lap_row(l: &CsrMatrix, x: &[f64], i: usize) -> f64 {
    let (offsets, cols, vals) = l.csr_data();
    let mut acc = 0.0;
    for k in offsets[i]..offsets[i + 1] {
        acc += vals[k] * x[cols[k]];
    }
    acc
}

/// Network Fisher–KPP: `dc_i/dt = −κ (L c)_i + α c_i (1 − c_i / K_i)`, parameters `[κ, α]`
/// (1/yr). `K_i = 1` unless a regional carrying capacity is given.
#[derive(Debug, Clone)]
pub struct NetworkFkpp {
    op: GraphDiffusion,
    capacity: Option<Vec<f64>>,
    diag: Vec<usize>,
}

impl NetworkFkpp {
    /// Fisher–KPP on the graph of `op` with unit carrying capacity.
    pub fn new(op: &GraphDiffusion) -> Self {
        let l = op.laplacian();
        let (offsets, cols, _) = l.csr_data();
        // The Laplacian's pattern always holds the diagonal (mesh's `Graph::laplacian`).
        let diag = (0..l.nrows())
            .map(|i| (offsets[i]..offsets[i + 1]).find(|&k| cols[k] == i).expect("diagonal stored"))
            .collect();
        Self { op: op.clone(), capacity: None, diag }
    }

    /// With a regional carrying capacity `K_i > 0` (one per region).
    ///
    /// # Errors
    /// [`AlzheimerError::LengthMismatch`], [`AlzheimerError::InvalidParameter`] for `K_i ≤ 0`.
    pub fn with_capacity(mut self, capacity: Vec<f64>) -> Result<Self> {
        if capacity.len() != self.op.n() {
            return Err(AlzheimerError::LengthMismatch {
                what: "carrying capacity",
                expected: self.op.n(),
                got: capacity.len(),
            });
        }
        if let Some(&k) = capacity.iter().find(|k| !(k.is_finite() && **k > 0.0)) {
            return Err(AlzheimerError::InvalidParameter {
                name: "capacity",
                value: k,
                reason: "must be finite and > 0",
            });
        }
        self.capacity = Some(capacity);
        Ok(self)
    }

    #[inline]
    fn inv_k(&self, i: usize) -> f64 {
        self.capacity.as_ref().map_or(1.0, |k| 1.0 / k[i])
    }

    fn l(&self) -> &CsrMatrix {
        self.op.laplacian()
    }
}

impl OdeSystem for NetworkFkpp {
    fn n_states(&self) -> usize {
        self.op.n()
    }
    fn n_params(&self) -> usize {
        2
    }
    fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        let (kappa, alpha) = (p[0], p[1]);
        for (i, d) in dy.iter_mut().enumerate() {
            let c = y[i];
            *d = -kappa * lap_row(self.l(), y, i) + alpha * c * (1.0 - c * self.inv_k(i));
        }
    }
}

impl Vjp for NetworkFkpp {
    fn vjp(&self, _t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        let (kappa, alpha) = (p[0], p[1]);
        let (mut gk, mut ga) = (0.0, 0.0);
        for i in 0..y.len() {
            let (c, ik) = (y[i], self.inv_k(i));
            // L is symmetric, so (Lᵀ w)_i = (L w)_i.
            w_y[i] = -kappa * lap_row(self.l(), w, i) + alpha * (1.0 - 2.0 * c * ik) * w[i];
            gk -= w[i] * lap_row(self.l(), y, i);
            ga += w[i] * c * (1.0 - c * ik);
        }
        if w_p.len() == 2 {
            w_p[0] = gk;
            w_p[1] = ga;
        }
    }
}

impl Jvp for NetworkFkpp {
    fn jvp(&self, _t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        let (kappa, alpha) = (p[0], p[1]);
        let (vk, va) = match v_p {
            [a, b] => (*a, *b),
            _ => (0.0, 0.0),
        };
        for (i, o) in out.iter_mut().enumerate() {
            let (c, ik) = (y[i], self.inv_k(i));
            *o = -kappa * lap_row(self.l(), v_y, i) + alpha * (1.0 - 2.0 * c * ik) * v_y[i];
            if vk != 0.0 {
                *o -= vk * lap_row(self.l(), y, i);
            }
            *o += va * c * (1.0 - c * ik);
        }
    }
}

impl Jacobian for NetworkFkpp {
    fn sparsity(&self) -> &SparsityPattern {
        self.op.sparsity()
    }
    fn jacobian(&self, _t: f64, y: &[f64], p: &[f64], out: &mut CsrMatrix) {
        for (v, l) in out.values_mut().iter_mut().zip(self.l().values()) {
            *v = -p[0] * l;
        }
        for (i, &k) in self.diag.iter().enumerate() {
            out.values_mut()[k] += p[1] * (1.0 - 2.0 * y[i] * self.inv_k(i));
        }
    }
}

/// The synthetic truth: network Fisher–KPP with a concentration-dependent clearance
/// `− γ c² / (c_s + c)`: the clearance rate per unit of protein, `γ c / (c_s + c)`, rises with
/// the load (Michaelis–Menten-type activation of clearance — microglial uptake recruited by
/// aggregates; cf. Hansen, Hanson & Sheng 2018, J Cell Biol 217:459 — so it is negligible
/// early and approaches `γ` at high load). Plain FKPP lacks it: early it is invisible, later it
/// lowers the regional plateau from 1 to the root of `α(1 − c) = γ c/(c_s + c)` — the
/// mechanism the hybrid's residual must learn. Parameters `[κ, α]`.
#[derive(Debug, Clone)]
pub struct ClearanceFkpp {
    fkpp: NetworkFkpp,
    /// Clearance rate at high load γ (1/yr).
    pub gamma: f64,
    /// Half-activation load `c_s` (concentration units).
    pub c_half: f64,
}

impl ClearanceFkpp {
    /// The truth model on `op` with clearance `γ` (1/yr) and half-saturation `c_s`.
    ///
    /// # Errors
    /// [`AlzheimerError::InvalidParameter`] for negative or non-finite values, `c_s = 0`.
    pub fn new(op: &GraphDiffusion, gamma: f64, c_half: f64) -> Result<Self> {
        crate::error::check_finite_nonneg("gamma", gamma)?;
        if !(c_half.is_finite() && c_half > 0.0) {
            return Err(AlzheimerError::InvalidParameter {
                name: "c_half",
                value: c_half,
                reason: "must be finite and > 0",
            });
        }
        Ok(Self { fkpp: NetworkFkpp::new(op), gamma, c_half })
    }

    /// The clearance flux `γ c² / (c_s + c)` at load `c ≥ 0`.
    pub fn clearance(&self, c: f64) -> f64 {
        let c = c.max(0.0);
        self.gamma * c * c / (self.c_half + c)
    }
}

impl OdeSystem for ClearanceFkpp {
    fn n_states(&self) -> usize {
        self.fkpp.n_states()
    }
    fn n_params(&self) -> usize {
        2
    }
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        self.fkpp.rhs(t, y, p, dy);
        for (d, &c) in dy.iter_mut().zip(y) {
            *d -= self.clearance(c);
        }
    }
}

/// The heterodimer model of healthy (`p`) and misfolded (`q`) protein, state `[p | q]`,
/// parameters `[ρ, ρ̃, k0, k1, k̃1, k12]` (transport 1/yr, production, clearances,
/// conversion). Healthy equilibrium `p = k0/k1, q = 0`; misfolded protein invades when
/// `k12 k0 / k1 > k̃1` (Thompson et al. 2020, PLoS Comput Biol 16:e1008267).
#[derive(Debug, Clone)]
pub struct Heterodimer {
    op: GraphDiffusion,
}

impl Heterodimer {
    /// The heterodimer model on the graph of `op`.
    pub fn new(op: &GraphDiffusion) -> Self {
        Self { op: op.clone() }
    }
}

impl OdeSystem for Heterodimer {
    fn n_states(&self) -> usize {
        2 * self.op.n()
    }
    fn n_params(&self) -> usize {
        6
    }
    fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        let n = self.op.n();
        let l = self.op.laplacian();
        let (pp, q) = y.split_at(n);
        let [rho, rho_t, k0, k1, k1t, k12] = [p[0], p[1], p[2], p[3], p[4], p[5]];
        for i in 0..n {
            let conv = k12 * pp[i] * q[i];
            dy[i] = -rho * lap_row(l, pp, i) + k0 - k1 * pp[i] - conv;
            dy[n + i] = -rho_t * lap_row(l, q, i) - k1t * q[i] + conv;
        }
    }
}

impl Vjp for Heterodimer {
    fn vjp(&self, _t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        let n = self.op.n();
        let l = self.op.laplacian();
        let (pp, q) = y.split_at(n);
        let (a, b) = w.split_at(n);
        let [rho, rho_t, _k0, k1, k1t, k12] = [p[0], p[1], p[2], p[3], p[4], p[5]];
        let mut g = [0.0; 6];
        for i in 0..n {
            let d = b[i] - a[i];
            w_y[i] = -rho * lap_row(l, a, i) - k1 * a[i] + k12 * q[i] * d;
            w_y[n + i] = -rho_t * lap_row(l, b, i) - k1t * b[i] + k12 * pp[i] * d;
            g[0] -= a[i] * lap_row(l, pp, i);
            g[1] -= b[i] * lap_row(l, q, i);
            g[2] += a[i];
            g[3] -= a[i] * pp[i];
            g[4] -= b[i] * q[i];
            g[5] += d * pp[i] * q[i];
        }
        if w_p.len() == 6 {
            w_p.copy_from_slice(&g);
        }
    }
}

impl Jvp for Heterodimer {
    fn jvp(&self, _t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        let n = self.op.n();
        let l = self.op.laplacian();
        let (pp, q) = y.split_at(n);
        let (vp, vq) = v_y.split_at(n);
        let [rho, rho_t, _k0, k1, k1t, k12] = [p[0], p[1], p[2], p[3], p[4], p[5]];
        let t = if v_p.len() == 6 {
            [v_p[0], v_p[1], v_p[2], v_p[3], v_p[4], v_p[5]]
        } else {
            [0.0; 6]
        };
        for i in 0..n {
            let dconv = k12 * (vp[i] * q[i] + pp[i] * vq[i]) + t[5] * pp[i] * q[i];
            out[i] = -rho * lap_row(l, vp, i) - t[0] * lap_row(l, pp, i) + t[2]
                - k1 * vp[i]
                - t[3] * pp[i]
                - dconv;
            out[n + i] =
                -rho_t * lap_row(l, vq, i) - t[1] * lap_row(l, q, i) - k1t * vq[i] - t[4] * q[i]
                    + dconv;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectome::Brain;

    fn check_derivatives<S: Vjp + Jvp>(s: &S, y: &[f64], p: &[f64]) {
        let (n, m) = (s.n_states(), s.n_params());
        let v: Vec<f64> = (0..n).map(|i| ((i * 7 % 11) as f64 - 5.0) * 0.1).collect();
        let vp: Vec<f64> = (0..m).map(|j| 0.3 - 0.1 * j as f64).collect();
        let w: Vec<f64> = (0..n).map(|i| ((i * 5 % 13) as f64 - 6.0) * 0.07).collect();
        let mut jv = vec![0.0; n];
        s.jvp(0.0, y, p, &v, &vp, &mut jv);
        let eps = 1e-6;
        let f_at = |sgn: f64| {
            let yy: Vec<f64> = y.iter().zip(&v).map(|(a, b)| a + sgn * eps * b).collect();
            let pp: Vec<f64> = p.iter().zip(&vp).map(|(a, b)| a + sgn * eps * b).collect();
            let mut out = vec![0.0; n];
            s.rhs(0.0, &yy, &pp, &mut out);
            out
        };
        let (fp, fm) = (f_at(1.0), f_at(-1.0));
        for i in 0..n {
            let fd = (fp[i] - fm[i]) / (2.0 * eps);
            assert!((jv[i] - fd).abs() < 1e-7 * (1.0 + fd.abs()), "jvp[{i}] {} vs fd {fd}", jv[i]);
        }
        let (mut wy, mut wp) = (vec![0.0; n], vec![0.0; m]);
        s.vjp(0.0, y, p, &w, &mut wy, &mut wp);
        let lhs: f64 = w.iter().zip(&jv).map(|(a, b)| a * b).sum();
        let rhs: f64 = wy.iter().zip(&v).map(|(a, b)| a * b).sum::<f64>()
            + wp.iter().zip(&vp).map(|(a, b)| a * b).sum::<f64>();
        assert!((lhs - rhs).abs() < 1e-12 * (1.0 + lhs.abs()), "<w,Jv> {lhs} vs <J^T w,v> {rhs}");
    }

    #[test]
    fn fkpp_and_heterodimer_derivatives_match_finite_differences() {
        let b = Brain::synthetic_dk68();
        let n = b.n_regions();
        let y: Vec<f64> = (0..n).map(|i| 0.5 + 0.4 * ((i as f64) * 0.37).sin()).collect();
        let k: Vec<f64> = (0..n).map(|i| 0.8 + 0.01 * i as f64).collect();
        check_derivatives(&NetworkFkpp::new(b.diffusion()), &y, &[0.3, 0.7]);
        let cap = NetworkFkpp::new(b.diffusion()).with_capacity(k).unwrap();
        check_derivatives(&cap, &y, &[0.3, 0.7]);
        let yy: Vec<f64> = y.iter().chain(y.iter().rev()).copied().collect();
        check_derivatives(&Heterodimer::new(b.diffusion()), &yy, &[0.2, 0.1, 1.0, 0.9, 0.5, 1.3]);
    }

    #[test]
    fn jacobian_matches_jvp_columns() {
        let b = Brain::synthetic_dk68();
        let s = NetworkFkpp::new(b.diffusion());
        let n = b.n_regions();
        let y: Vec<f64> = (0..n).map(|i| (i as f64 / n as f64).powi(2)).collect();
        let p = [0.4, 0.9];
        let mut jac = s.jacobian_matrix();
        s.jacobian(0.0, &y, &p, &mut jac);
        let mut e = vec![0.0; n];
        let mut col = vec![0.0; n];
        for j in [0, 17, 40] {
            e.fill(0.0);
            e[j] = 1.0;
            s.jvp(0.0, &y, &p, &e, &[], &mut col);
            for (i, &want) in col.iter().enumerate() {
                let got = jac.get_entry(i, j).map_or(0.0, |v| v.into_value());
                assert!((got - want).abs() < 1e-14, "J[{i},{j}]");
            }
        }
    }

    #[test]
    fn heterodimer_healthy_state_is_stationary_and_bad_capacity_is_an_error() {
        let b = Brain::synthetic_dk68();
        let s = Heterodimer::new(b.diffusion());
        let n = b.n_regions();
        let (k0, k1) = (1.0, 0.5);
        let mut y = vec![k0 / k1; n];
        y.extend(vec![0.0; n]);
        let mut dy = vec![1.0; 2 * n];
        s.rhs(0.0, &y, &[0.3, 0.2, k0, k1, 0.4, 0.6], &mut dy);
        assert!(dy.iter().all(|d| d.abs() < 1e-14));
        let err = NetworkFkpp::new(b.diffusion()).with_capacity(vec![0.0; n]);
        assert!(matches!(err, Err(AlzheimerError::InvalidParameter { name: "capacity", .. })));
        assert!(ClearanceFkpp::new(b.diffusion(), -1.0, 0.1).is_err());
    }
}
