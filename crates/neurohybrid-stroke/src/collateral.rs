//! The fate model with a per-voxel collateral trajectory — the mechanistic half of the series
//! hybrid ([`crate::fit::fit_series`]).
//!
//! The plain model has one collateral strength `ĉ` held constant in time. Here every voxel has
//! its own trajectory
//!
//! ```text
//! c_j(t) = ĉ (1 + g_j0) · exp(−s g_j1 t)
//! ```
//!
//! where `(g_j0, g_j1)` are the first `2n` parameters (voxel-interleaved: `p[2j + k]`, the
//! row-major layout of a pointwise network's `[n, 2]` output) and `k_inj`, `k_death` the last
//! two. `ĉ` (the calibrated strength) and `s` (the decay rate one unit of `g_j1` means, 1/h)
//! are constants of the system. With `g = 0` the trajectory is `ĉ · 1 · e^0 = ĉ` exactly, so
//! the system *is* the calibrated plain model, bit for bit: each voxel is evaluated by the
//! plain [`FateSystem`] of that one voxel at `p = [k_inj, k_death, c_j(t)]`.
//! After reperfusion the perfusion is the healthy one whatever the collaterals, so the
//! reperfused system ignores `g` (zero sensitivity).
//!
//! Derivatives: `∂c_j/∂g_j0 = ĉ e`, `∂c_j/∂g_j1 = −s t c_j`, chained onto the plain model's
//! exact `∂/∂c` (VJP and JVP); FD-tested below.

use neurohybrid_system::{Jvp, OdeSystem, Vjp};

use crate::error::{Result, StrokeError};
use crate::fate::{FateConstants, FateSystem, Phase};

/// Per-voxel collateral outputs of the series network (`g_j0`, `g_j1`).
pub const N_COLLATERAL_OUTPUTS: usize = 2;

/// The fate system with per-voxel collateral strengths and decay rates (see the module docs).
#[derive(Debug, Clone)]
pub struct CollateralField {
    /// One single-voxel plain fate system per voxel (`decay = 0` while occluded).
    voxels: Vec<FateSystem>,
    c_hat: f64,
    decay_scale: f64,
}

impl CollateralField {
    /// The field on voxels with healthy / no-collateral perfusion `p_normal`, `p_zero`, around
    /// the calibrated collateral strength `c_hat`; one unit of `g_j1` is a decay of
    /// `decay_scale` per hour. `reperfused` selects the phase.
    ///
    /// # Errors
    /// As [`FateSystem::new`]; a non-finite `c_hat` or `decay_scale`.
    pub fn new(
        p_normal: &[f64],
        p_zero: &[f64],
        constants: FateConstants,
        c_hat: f64,
        decay_scale: f64,
        reperfused: bool,
    ) -> Result<Self> {
        for (name, value) in [("c_hat", c_hat), ("decay_scale", decay_scale)] {
            if !value.is_finite() {
                return Err(StrokeError::InvalidParameter {
                    name,
                    value,
                    reason: "must be finite",
                });
            }
        }
        crate::error::check_len("p_zero", p_normal.len(), p_zero.len())?;
        let phase = if reperfused { Phase::Reperfused } else { Phase::Occluded { decay: 0.0 } };
        let voxels = p_normal
            .iter()
            .zip(p_zero)
            .map(|(&pn, &p0)| FateSystem::new(vec![pn], vec![p0], constants, phase))
            .collect::<Result<_>>()?;
        Ok(CollateralField { voxels, c_hat, decay_scale })
    }

    /// Number of voxels.
    pub fn n_voxels(&self) -> usize {
        self.voxels.len()
    }

    /// `(c_j(t), ∂c_j/∂g_j0, ∂c_j/∂g_j1)`.
    fn collateral(&self, t: f64, g: &[f64], j: usize) -> (f64, f64, f64) {
        let e = (-(self.decay_scale * g[2 * j + 1]) * t).exp();
        let m = self.c_hat * (1.0 + g[2 * j]);
        let c = m * e;
        (c, self.c_hat * e, -self.decay_scale * t * c)
    }

    /// The collateral strength of every voxel at time `t` for parameters `p` (inspection).
    pub fn collateral_map(&self, t: f64, p: &[f64]) -> Vec<f64> {
        (0..self.n_voxels()).map(|j| self.collateral(t, p, j).0).collect()
    }

    fn rates(&self, p: &[f64]) -> (f64, f64) {
        let n = self.n_voxels();
        (p[2 * n], p[2 * n + 1])
    }
}

impl OdeSystem for CollateralField {
    fn n_states(&self) -> usize {
        2 * self.n_voxels()
    }
    fn n_params(&self) -> usize {
        N_COLLATERAL_OUTPUTS * self.n_voxels() + 2
    }
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        let n = self.n_voxels();
        let (k_inj, k_death) = self.rates(p);
        for (j, sys) in self.voxels.iter().enumerate() {
            let (c, _, _) = self.collateral(t, p, j);
            let mut d = [0.0; 2];
            sys.rhs(t, &[y[j], y[n + j]], &[k_inj, k_death, c], &mut d);
            dy[j] = d[0];
            dy[n + j] = d[1];
        }
    }
}

impl Vjp for CollateralField {
    fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        let n = self.n_voxels();
        let (k_inj, k_death) = self.rates(p);
        let want_p = !w_p.is_empty();
        if want_p {
            w_p[2 * n] = 0.0;
            w_p[2 * n + 1] = 0.0;
        }
        for (j, sys) in self.voxels.iter().enumerate() {
            let (c, dc0, dc1) = self.collateral(t, p, j);
            let (mut wy, mut wp) = ([0.0; 2], [0.0; 3]);
            let wp_slice: &mut [f64] = if want_p { &mut wp } else { &mut [] };
            sys.vjp(
                t,
                &[y[j], y[n + j]],
                &[k_inj, k_death, c],
                &[w[j], w[n + j]],
                &mut wy,
                wp_slice,
            );
            if !w_y.is_empty() {
                w_y[j] = wy[0];
                w_y[n + j] = wy[1];
            }
            if want_p {
                w_p[2 * j] = wp[2] * dc0;
                w_p[2 * j + 1] = wp[2] * dc1;
                w_p[2 * n] += wp[0];
                w_p[2 * n + 1] += wp[1];
            }
        }
    }
}

impl Jvp for CollateralField {
    fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        let n = self.n_voxels();
        let (k_inj, k_death) = self.rates(p);
        for (j, sys) in self.voxels.iter().enumerate() {
            let (c, dc0, dc1) = self.collateral(t, p, j);
            let vy = if v_y.is_empty() { [0.0; 2] } else { [v_y[j], v_y[n + j]] };
            let vp = if v_p.is_empty() {
                [0.0; 3]
            } else {
                [v_p[2 * n], v_p[2 * n + 1], dc0 * v_p[2 * j] + dc1 * v_p[2 * j + 1]]
            };
            let mut o = [0.0; 2];
            sys.jvp(t, &[y[j], y[n + j]], &[k_inj, k_death, c], &vy, &vp, &mut o);
            out[j] = o[0];
            out[n + j] = o[1];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_finite_differences_and_zero_is_the_plain_model() {
        let (pn, p0) = ([60.0, 24.0, 50.0], [5.0, 3.0, 30.0]);
        let k = FateConstants::default();
        let f = CollateralField::new(&pn, &p0, k, 0.3, 0.2, false).unwrap();
        let plain =
            FateSystem::new(pn.to_vec(), p0.to_vec(), k, Phase::Occluded { decay: 0.0 }).unwrap();
        let y = [0.2, 0.1, 0.4, 0.3, 0.05, 0.0];
        let t = 2.3;
        // Zero network output: the plain model, bit for bit.
        let mut p = vec![0.0; 8];
        p[6] = 2.0;
        p[7] = 1.0;
        let (mut a, mut b) = ([0.0; 6], [0.0; 6]);
        f.rhs(t, &y, &p, &mut a);
        plain.rhs(t, &y, &[2.0, 1.0, 0.3], &mut b);
        assert!(a.iter().zip(&b).all(|(x, z)| x.to_bits() == z.to_bits()));
        // FD of the JVP, and the VJP as its adjoint.
        let p: Vec<f64> = vec![0.1, 0.5, -0.2, 1.0, 0.3, -0.4, 2.0, 1.0];
        let (v_y, v_p) =
            ([0.3, -0.2, 0.5, 0.1, -0.4, 0.2], [0.7, -0.3, 0.9, 0.2, -0.5, 0.4, 0.6, -0.8]);
        let mut jv = [0.0; 6];
        f.jvp(t, &y, &p, &v_y, &v_p, &mut jv);
        let eps = 1e-6;
        let ev = |s: f64| {
            let yy: Vec<f64> = y.iter().zip(&v_y).map(|(a, b)| a + s * eps * b).collect();
            let pp: Vec<f64> = p.iter().zip(&v_p).map(|(a, b)| a + s * eps * b).collect();
            let mut d = [0.0; 6];
            f.rhs(t, &yy, &pp, &mut d);
            d
        };
        let (fp, fm) = (ev(1.0), ev(-1.0));
        for k in 0..6 {
            let fd = (fp[k] - fm[k]) / (2.0 * eps);
            assert!((fd - jv[k]).abs() < 1e-7 * (1.0 + fd.abs()), "{k}: {fd} vs {}", jv[k]);
        }
        let w = [0.4, 0.9, -0.6, 0.2, 0.3, -0.8];
        let (mut w_y, mut w_p) = ([0.0; 6], [0.0; 8]);
        f.vjp(t, &y, &p, &w, &mut w_y, &mut w_p);
        let lhs: f64 = w.iter().zip(&jv).map(|(a, b)| a * b).sum();
        let rhs: f64 = w_y.iter().zip(&v_y).map(|(a, b)| a * b).sum::<f64>()
            + w_p.iter().zip(&v_p).map(|(a, b)| a * b).sum::<f64>();
        assert!((lhs - rhs).abs() < 1e-12 * (1.0 + lhs.abs()), "{lhs} vs {rhs}");
    }
}
