//! Tissue fate per voxel: alive → injured → dead, driven by the perfusion deficit.
//!
//! A hypoxia-driven three-state model in the spirit of Xue et al. 2021 (shared/REFERENCES.md),
//! with fractions `A + I + D = 1` per voxel (alive, injured, dead) and `A = 1 − I − D`:
//!
//! ```text
//! dI/dt = k_inj h A − k_rec (1 − h) I − k_death (γ h² + q) I
//! dD/dt =                                k_death (γ h² + q) I
//! h = σ((θ_I − CBF)/w_I),   q = σ((θ_D − CBF)/w_D)
//! ```
//!
//! `h` is the hypoperfusion indicator (CBF below the *penumbra* threshold `θ_I = 20`
//! ml/100 g/min: electrical failure, reversible), `q` the severe-ischemia indicator (below the
//! *core* threshold `θ_D = 12`: energy failure). Injured tissue dies slowly (rate
//! `k_death γ`, `γ = 0.1`) while merely hypoperfused, quickly below the core threshold, and
//! recovers (rate `k_rec`) once perfusion returns above `θ_I`. The slow death carries `h²`
//! so that oligemic tissue (CBF a little above `θ_I`, in the sigmoid's tail) does not die
//! over days: benign oligemia stays benign, and the timing curve can reach a plateau. Thresholds and the idea of a
//! duration-dependent threshold are from Astrup et al. 1981 (Stroke 12) and Jones et al. 1981
//! (J Neurosurg 54: infarction below ≈ 10–12 ml/100 g/min within 2–3 h, below ≈ 17–18 with
//! permanent occlusion); the sigmoid widths (1.5 and 2 ml/100 g/min), `γ` and `k_rec` are this
//! crate's **assumptions**, chosen so that core tissue dies within ~1–2 h and penumbra over
//! ~6–10 h ("time is brain": Saver 2006).
//!
//! Perfusion enters as two fixed maps per voxel, the healthy `P_n` and the occluded
//! without-collateral `P_0` ([`crate::perfusion`]): while occluded,
//! `CBF(t) = P_0 + c(t) (P_n − P_0)` with collateral strength `c(t) = c e^{−λ_c t}`; after
//! reperfusion `CBF = P_n`. The plain model has `λ_c = 0` (collaterals hold); the synthetic
//! truth lets them fail ([`crate::patient`]). Reperfusion is a scheduled change of the
//! right-hand side at the treatment time `T`: the state is continuous across `T` (the jump map
//! is the identity), so solving `[0, T]` and then `[T, t_end]` with the other phase's
//! right-hand side differentiates through it like an identity impulse.
//!
//! State layout: channel-major, `y = [I_0, …, I_{n−1}, D_0, …, D_{n−1}]` (two fields, the
//! layout of `neurohybrid_hybrid::NetworkRhs::pointwise`). Parameters `p = [k_inj, k_death, c]`
//! (1/h, 1/h, –). Time in hours from onset.

use neurohybrid_system::{Jvp, OdeSystem, Vjp};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StrokeError, check_len};

/// Number of mechanistic parameters (`k_inj`, `k_death`, `c`).
pub const N_FATE_PARAMS: usize = 3;
/// Names of the mechanistic parameters in order.
pub const FATE_PARAM_NAMES: [&str; N_FATE_PARAMS] = ["k_inj", "k_death", "collateral"];

/// Fixed constants of the fate model (thresholds from the literature, the rest assumed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FateConstants {
    /// Penumbra threshold `θ_I` (ml/100 g/min).
    pub cbf_injury: f64,
    /// Width of the penumbra sigmoid (ml/100 g/min).
    pub width_injury: f64,
    /// Core threshold `θ_D` (ml/100 g/min).
    pub cbf_core: f64,
    /// Width of the core sigmoid (ml/100 g/min).
    pub width_core: f64,
    /// Death rate of merely hypoperfused injured tissue relative to `k_death`.
    pub gamma: f64,
    /// Recovery rate of injured tissue after reperfusion (1/h).
    pub k_rec: f64,
}

impl Default for FateConstants {
    fn default() -> Self {
        FateConstants {
            cbf_injury: 20.0,
            width_injury: 1.5,
            cbf_core: 12.0,
            width_core: 2.0,
            gamma: 0.1,
            k_rec: 0.5,
        }
    }
}

/// Mechanistic fate parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FateParams {
    /// Injury rate of alive tissue under hypoperfusion (1/h).
    pub k_inj: f64,
    /// Death rate of injured tissue under severe ischemia (1/h).
    pub k_death: f64,
    /// Collateral strength at onset, `c ∈ [0, 1]`.
    pub collateral: f64,
}

impl FateParams {
    /// As the parameter vector `[k_inj, k_death, c]`.
    pub fn to_vec(&self) -> Vec<f64> {
        vec![self.k_inj, self.k_death, self.collateral]
    }

    /// From `[k_inj, k_death, c]`.
    pub fn from_slice(p: &[f64]) -> Self {
        FateParams { k_inj: p[0], k_death: p[1], collateral: p[2] }
    }
}

impl Default for FateParams {
    fn default() -> Self {
        FateParams { k_inj: 2.0, k_death: 1.0, collateral: 0.3 }
    }
}

/// Phase of the vessel: occluded (collateral supply only) or reperfused.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Phase {
    /// Occluded; collaterals decay at `decay` (1/h, 0 = constant).
    Occluded {
        /// Collateral decay rate `λ_c` (1/h).
        decay: f64,
    },
    /// Flow restored: `CBF = P_n`.
    Reperfused,
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The fate system on the brain-tissue voxels: `OdeSystem + Vjp + Jvp`, exact derivatives.
#[derive(Debug, Clone)]
pub struct FateSystem {
    p_normal: Vec<f64>,
    p_zero: Vec<f64>,
    constants: FateConstants,
    phase: Phase,
}

/// Rates and their partial derivatives at one voxel.
struct Local {
    di: f64,
    dd: f64,
    /// `∂(dI, dD)/∂I`, `∂/∂D`.
    j_i: [f64; 2],
    j_d: [f64; 2],
    /// `∂(dI, dD)/∂[k_inj, k_death, c]`.
    j_p: [[f64; 2]; 3],
}

impl FateSystem {
    /// A fate system for voxels with healthy perfusion `p_normal` and occluded
    /// no-collateral perfusion `p_zero` (ml/100 g/min, equal lengths), in `phase`.
    ///
    /// # Errors
    /// Unequal lengths, non-finite perfusion, a negative decay rate.
    pub fn new(
        p_normal: Vec<f64>,
        p_zero: Vec<f64>,
        constants: FateConstants,
        phase: Phase,
    ) -> Result<Self> {
        check_len("p_zero", p_normal.len(), p_zero.len())?;
        if let Some(&x) = p_normal.iter().chain(&p_zero).find(|x| !x.is_finite()) {
            return Err(StrokeError::InvalidParameter {
                name: "perfusion",
                value: x,
                reason: "must be finite",
            });
        }
        if let Phase::Occluded { decay } = phase
            && !(decay.is_finite() && decay >= 0.0)
        {
            return Err(StrokeError::InvalidParameter {
                name: "collateral_decay",
                value: decay,
                reason: "must be ≥ 0",
            });
        }
        Ok(FateSystem { p_normal, p_zero, constants, phase })
    }

    /// The same voxels in another phase.
    pub fn with_phase(&self, phase: Phase) -> Self {
        FateSystem { phase, ..self.clone() }
    }

    /// Number of voxels.
    pub fn n_voxels(&self) -> usize {
        self.p_normal.len()
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The constants.
    pub fn constants(&self) -> &FateConstants {
        &self.constants
    }

    /// Perfusion of voxel `j` at time `t` for collateral strength `c`, and `∂CBF/∂c`.
    pub fn cbf(&self, j: usize, t: f64, c: f64) -> (f64, f64) {
        match self.phase {
            Phase::Occluded { decay } => {
                let e = (-decay * t).exp();
                let span = self.p_normal[j] - self.p_zero[j];
                (self.p_zero[j] + c * e * span, e * span)
            }
            Phase::Reperfused => (self.p_normal[j], 0.0),
        }
    }

    /// Perfusion map at time `t`.
    pub fn cbf_map(&self, t: f64, c: f64) -> Vec<f64> {
        (0..self.n_voxels()).map(|j| self.cbf(j, t, c).0).collect()
    }

    fn local(&self, j: usize, t: f64, i: f64, d: f64, p: &[f64]) -> Local {
        let k = &self.constants;
        let (k_inj, k_death, c) = (p[0], p[1], p[2]);
        let (cbf, dcbf_dc) = self.cbf(j, t, c);
        let h = sigmoid((k.cbf_injury - cbf) / k.width_injury);
        let q = sigmoid((k.cbf_core - cbf) / k.width_core);
        let dh = -h * (1.0 - h) / k.width_injury;
        let dq = -q * (1.0 - q) / k.width_core;
        let a = 1.0 - i - d;
        let death = k_death * (k.gamma * h * h + q);
        let ddeath_dcbf = k_death * (2.0 * k.gamma * h * dh + dq);
        let di = k_inj * h * a - k.k_rec * (1.0 - h) * i - death * i;
        let dd = death * i;
        let ddi_dcbf = k_inj * dh * a + k.k_rec * dh * i - ddeath_dcbf * i;
        let ddd_dcbf = ddeath_dcbf * i;
        Local {
            di,
            dd,
            j_i: [-k_inj * h - k.k_rec * (1.0 - h) - death, death],
            j_d: [-k_inj * h, 0.0],
            j_p: [
                [h * a, 0.0],
                [-(k.gamma * h * h + q) * i, (k.gamma * h * h + q) * i],
                [ddi_dcbf * dcbf_dc, ddd_dcbf * dcbf_dc],
            ],
        }
    }
}

impl OdeSystem for FateSystem {
    fn n_states(&self) -> usize {
        2 * self.n_voxels()
    }
    fn n_params(&self) -> usize {
        N_FATE_PARAMS
    }
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        let n = self.n_voxels();
        for j in 0..n {
            let l = self.local(j, t, y[j], y[n + j], p);
            dy[j] = l.di;
            dy[n + j] = l.dd;
        }
    }
}

impl Vjp for FateSystem {
    fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        let want_p = !w_p.is_empty();
        w_p.fill(0.0);
        let n = self.n_voxels();
        for j in 0..n {
            let l = self.local(j, t, y[j], y[n + j], p);
            let (wi, wd) = (w[j], w[n + j]);
            if !w_y.is_empty() {
                w_y[j] = wi * l.j_i[0] + wd * l.j_i[1];
                w_y[n + j] = wi * l.j_d[0] + wd * l.j_d[1];
            }
            if want_p {
                for (wp, jp) in w_p.iter_mut().zip(&l.j_p) {
                    *wp += wi * jp[0] + wd * jp[1];
                }
            }
        }
    }
}

impl Jvp for FateSystem {
    fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        let n = self.n_voxels();
        for j in 0..n {
            let l = self.local(j, t, y[j], y[n + j], p);
            let (vi, vd) = if v_y.is_empty() { (0.0, 0.0) } else { (v_y[j], v_y[n + j]) };
            let mut o = [vi * l.j_i[0] + vd * l.j_d[0], vi * l.j_i[1] + vd * l.j_d[1]];
            for (vp, jp) in v_p.iter().zip(&l.j_p) {
                o[0] += vp * jp[0];
                o[1] += vp * jp[1];
            }
            out[j] = o[0];
            out[n + j] = o[1];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system(phase: Phase) -> FateSystem {
        FateSystem::new(
            vec![60.0, 24.0, 50.0],
            vec![5.0, 3.0, 30.0],
            FateConstants::default(),
            phase,
        )
        .unwrap()
    }

    #[test]
    fn vjp_and_jvp_agree_with_finite_differences() {
        let y = [0.2, 0.1, 0.4, 0.3, 0.05, 0.0];
        let p = [2.0, 1.0, 0.3];
        for phase in [Phase::Occluded { decay: 0.2 }, Phase::Reperfused] {
            let s = system(phase);
            let t = 1.7;
            let (v_y, v_p) = ([0.3, -0.2, 0.5, 0.1, -0.4, 0.2], [0.7, -0.3, 0.9]);
            let mut jv = [0.0; 6];
            s.jvp(t, &y, &p, &v_y, &v_p, &mut jv);
            let eps = 1e-6;
            let f = |sgn: f64| {
                let yy: Vec<f64> = y.iter().zip(&v_y).map(|(a, b)| a + sgn * eps * b).collect();
                let pp: Vec<f64> = p.iter().zip(&v_p).map(|(a, b)| a + sgn * eps * b).collect();
                let mut d = [0.0; 6];
                s.rhs(t, &yy, &pp, &mut d);
                d
            };
            let (fp, fm) = (f(1.0), f(-1.0));
            for k in 0..6 {
                let fd = (fp[k] - fm[k]) / (2.0 * eps);
                assert!((fd - jv[k]).abs() < 1e-7 * (1.0 + fd.abs()), "{k}: {fd} vs {}", jv[k]);
            }
            // ⟨w, J v⟩ = ⟨Jᵀ w, v⟩.
            let w = [0.4, 0.9, -0.6, 0.2, 0.3, -0.8];
            let (mut w_y, mut w_p) = ([0.0; 6], [0.0; 3]);
            s.vjp(t, &y, &p, &w, &mut w_y, &mut w_p);
            let lhs: f64 = w.iter().zip(&jv).map(|(a, b)| a * b).sum();
            let rhs: f64 = w_y.iter().zip(&v_y).map(|(a, b)| a * b).sum::<f64>()
                + w_p.iter().zip(&v_p).map(|(a, b)| a * b).sum::<f64>();
            assert!((lhs - rhs).abs() < 1e-12 * (1.0 + lhs.abs()));
        }
    }

    #[test]
    fn fractions_are_conserved_and_reperfusion_stops_death() {
        let s = system(Phase::Reperfused);
        let mut dy = [0.0; 6];
        // d(I + D)/dt + dA/dt = 0 holds by construction; after reperfusion to healthy flow
        // (CBF 60, far above θ_I) death is negligible and injured tissue recovers.
        let y = [0.5, 0.5, 0.5, 0.2, 0.2, 0.2];
        s.rhs(0.0, &y, &[2.0, 1.0, 0.3], &mut dy);
        assert!(dy[3] < 1e-6 && dy[0] < -0.2);
        assert!(
            FateSystem::new(vec![1.0], vec![], FateConstants::default(), Phase::Reperfused)
                .is_err()
        );
    }
}
