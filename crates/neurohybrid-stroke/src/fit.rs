//! The inverse problem and the three model families fitted to one patient's early imaging.
//!
//! - **Mechanistic**: collateral strength and injury rates `θ = [k_inj, k_death, c]` from the
//!   admission perfusion map and the early lesion masks, by `neurohybrid-hybrid`'s
//!   [`Calibrator`] (L-BFGS in log / logit space, Laplace intervals from the Gauss–Newton
//!   Hessian). The residuals are the perfusion misfit `(CBF_obs − P_0 − c (P_n − P_0))/σ_cbf`
//!   (which depends on `c` only, in closed form) stacked on the lesion misfit
//!   `(D(t_k; θ) − mask_k)/σ_mask` from [`OdeResiduals`] (forward sensitivities of the fate
//!   ODE). A binary mask is treated as a Gaussian measurement of the dead fraction with
//!   `σ_mask = 0.3` — an assumption that makes the Laplace intervals approximate.
//! - **Neural**: a pointwise network `d[I, D]/dt = g(I, D, CBF/60, t/10; w)` (a neural ODE
//!   conditioned on the perfusion map; `NetworkRhs::pointwise` with the perfusion as a
//!   feature and the time input), trained on the masks with no mechanistic structure.
//! - **Hybrid (parallel)**: the calibrated mechanistic model plus the same network as a
//!   residual on the fate rates, `Parallel::new(mech, net)`; the mechanistic block is frozen at
//!   its calibrated value and only the network is trained (a staged fit: the mechanism explains
//!   what it can, the network learns what is missing).
//!
//! Networks are trained with Adam on the mean squared misfit of the dead fraction to the
//! masks, gradients by the discrete adjoint through the Tsit5 steps
//! (`neurohybrid_solve::sensitivity`).

use neurohybrid_hybrid::{
    Calibration, Calibrator, NetworkRhs, OdeResiduals, Parallel, ResidualModel, Transform,
};
use neurohybrid_nn::optim::{Adam, Optimizer};
use neurohybrid_nn::{Activation, Init, Layer, Mlp, initialize};
use neurohybrid_solve::sensitivity::{DiscreteAdjoint, SquaredMisfit, gradient};
use neurohybrid_solve::{Problem, SaveAt};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_system::{OdeSystem, Vjp};
use serde::{Deserialize, Serialize};

use crate::anatomy::OccludedPerfusion;
use crate::error::{Result, StrokeError};
use crate::fate::{FATE_PARAM_NAMES, FateConstants, FateParams, FateSystem, Phase};
use crate::patient::{MechanisticModel, Observation, Protocol};
use crate::sim::{Phased, controller};

/// Noise assumed for a binary lesion mask as a measurement of the dead fraction.
pub const SIGMA_MASK: f64 = 0.3;

/// The perfusion rows stacked on an ODE's lesion rows.
struct StrokeResiduals<R> {
    lesion: R,
    /// `(CBF_obs, P_0, P_n − P_0)` of the voxels where the occlusion changes perfusion.
    perf: Vec<(f64, f64, f64)>,
    inv_sigma_cbf: f64,
    /// Index of `c` in θ.
    c_index: usize,
}

impl<R: ResidualModel> ResidualModel for StrokeResiduals<R> {
    fn n_params(&self) -> usize {
        self.lesion.n_params()
    }
    fn n_residuals(&self) -> usize {
        self.perf.len() + self.lesion.n_residuals()
    }
    fn residuals(&self, theta: &[f64], r: &mut [f64]) -> neurohybrid_hybrid::Result<()> {
        let c = theta[self.c_index];
        let np = self.perf.len();
        for (ri, &(obs, p0, span)) in r[..np].iter_mut().zip(&self.perf) {
            *ri = (p0 + c * span - obs) * self.inv_sigma_cbf;
        }
        self.lesion.residuals(theta, &mut r[np..])
    }
    fn jacobian(
        &self,
        theta: &[f64],
        r: &mut [f64],
        jac: &mut [f64],
    ) -> neurohybrid_hybrid::Result<()> {
        let c = theta[self.c_index];
        let (np, m) = (self.perf.len(), theta.len());
        for (k, &(obs, p0, span)) in self.perf.iter().enumerate() {
            r[k] = (p0 + c * span - obs) * self.inv_sigma_cbf;
            let row = &mut jac[k * m..(k + 1) * m];
            row.fill(0.0);
            row[self.c_index] = span * self.inv_sigma_cbf;
        }
        self.lesion.jacobian(theta, &mut r[np..], &mut jac[np * m..])
    }
}

/// A calibrated parameter with its Laplace interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Name (`"k_inj"`, `"k_death"`, `"collateral"`).
    pub name: String,
    /// Point estimate.
    pub value: f64,
    /// Standard deviation (delta method).
    pub std: f64,
    /// 95 % interval.
    pub ci95: (f64, f64),
    /// The synthetic truth, when known. For `collateral` this is the value at admission,
    /// `c₀ e^{−λ_c t_adm}` (what a constant-collateral model can recover).
    pub truth: Option<f64>,
}

/// The mechanistic fit.
#[derive(Debug, Clone)]
pub struct MechanisticFit {
    /// The calibration (θ, intervals, covariance in the transformed space).
    pub calibration: Calibration,
    /// Transforms used (for sampling the Laplace posterior).
    pub transforms: Vec<Transform>,
}

impl MechanisticFit {
    /// The fitted parameters.
    pub fn params(&self) -> FateParams {
        FateParams::from_slice(&self.calibration.theta)
    }

    /// The estimates with their intervals.
    pub fn estimates(&self, truth: Option<&[f64]>) -> Vec<Estimate> {
        let c = &self.calibration;
        (0..c.theta.len())
            .map(|i| Estimate {
                name: FATE_PARAM_NAMES[i].to_owned(),
                value: c.theta[i],
                std: c.std[i],
                ci95: c.ci95[i],
                truth: truth.map(|t| t[i]),
            })
            .collect()
    }

    /// Draws `n` parameter vectors from the Laplace posterior (Gaussian in the transformed
    /// space), deterministic in `seed`.
    pub fn sample(&self, n: usize, seed: u64) -> Vec<Vec<f64>> {
        let c = &self.calibration;
        let m = c.theta.len();
        let z: Vec<f64> = c
            .theta
            .iter()
            .zip(&self.transforms)
            .map(|(t, tr)| tr.to_free(*t).unwrap_or(0.0))
            .collect();
        // Cholesky of the m × m covariance (m = 3), with a tiny jitter for safety.
        let mut l = vec![0.0; m * m];
        for i in 0..m {
            for j in 0..=i {
                let mut s = c.covariance_free[i * m + j];
                for k in 0..j {
                    s -= l[i * m + k] * l[j * m + k];
                }
                l[i * m + j] = if i == j { s.max(1e-300).sqrt() } else { s / l[j * m + j] };
            }
        }
        let mut rng = crate::patient::Rng::new(seed);
        (0..n)
            .map(|_| {
                let e: Vec<f64> = (0..m).map(|_| rng.normal()).collect();
                (0..m)
                    .map(|i| {
                        let zi = z[i] + (0..=i).map(|k| l[i * m + k] * e[k]).sum::<f64>();
                        self.transforms[i].to_param(zi)
                    })
                    .collect()
            })
            .collect()
    }
}

/// Calibrates the plain mechanistic model (constant collaterals) to `obs`.
///
/// # Errors
/// From the solves or the calibrator.
pub fn fit_mechanistic(
    perf: &OccludedPerfusion,
    obs: &Observation,
    protocol: &Protocol,
    constants: FateConstants,
    theta0: FateParams,
) -> Result<MechanisticFit> {
    let n = perf.p_normal.len();
    let system = FateSystem::new(
        perf.p_normal.clone(),
        perf.p_zero.clone(),
        constants,
        Phase::Occluded { decay: 0.0 },
    )?;
    let t_last = protocol.t_scans.last().copied().unwrap_or(protocol.t_admission);
    let problem = Problem::new(system, vec![0.0; 2 * n], theta0.to_vec(), (0.0, t_last));
    let observed: Vec<usize> = (n..2 * n).collect();
    let data: Vec<f64> = obs.masks.iter().flatten().copied().collect();
    let lesion = OdeResiduals::new(
        problem,
        Tsit5,
        controller(),
        protocol.t_scans.clone(),
        vec![0.0; protocol.t_scans.len() * 2 * n],
    )?
    .observed(observed, data)?
    .sigma(SIGMA_MASK)?;
    let perf_rows = (0..n)
        .filter(|&j| perf.p_normal[j] - perf.p_zero[j] > 1.0)
        .map(|j| (obs.cbf_admission[j], perf.p_zero[j], perf.p_normal[j] - perf.p_zero[j]))
        .collect();
    let model = StrokeResiduals {
        lesion,
        perf: perf_rows,
        inv_sigma_cbf: 1.0 / protocol.cbf_noise,
        c_index: 2,
    };
    let transforms = vec![Transform::Log, Transform::Log, Transform::Logit { lo: 0.0, hi: 1.0 }];
    let calibrator = Calibrator { max_iterations: 60, ..Calibrator::new(transforms.clone()) };
    let calibration = calibrator.calibrate(&model, &theta0.to_vec())?;
    Ok(MechanisticFit { calibration, transforms })
}

/// Training settings for the networks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Hidden width of the pointwise MLP.
    pub hidden: usize,
    /// Adam iterations.
    pub iterations: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Initialization seed.
    pub seed: u64,
    /// Whether the hybrid's residual network also sees the time since onset (the neural-only
    /// model always does: it has no other clock).
    pub hybrid_time_input: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            hidden: 12,
            iterations: 50,
            learning_rate: 2e-2,
            seed: 7,
            hybrid_time_input: false,
        }
    }
}

/// A model in both phases built from networks (neural-only or hybrid).
#[derive(Debug, Clone)]
pub struct NetModel<S> {
    occluded: S,
    reperfused: S,
}

impl<S: OdeSystem + Clone> Phased for NetModel<S> {
    type System = S;
    fn occluded(&self) -> &S {
        &self.occluded
    }
    fn reperfused(&self) -> &S {
        &self.reperfused
    }
}

/// The neural-only model.
pub type NeuralModel = NetModel<NetworkRhs>;
/// The parallel hybrid: mechanistic fate + gated network residual.
pub type HybridModel = NetModel<Parallel<FateSystem, Gated>>;

/// The network residual on the fate *rates*, switched on only where tissue is hypoperfused:
/// with the network's two outputs `(g₁, g₂)` per voxel,
///
/// ```text
/// r_I = a g₁ − b g₂,   r_D = b g₂,   a = h (1 − I − D),   b = h I
/// ```
///
/// — an extra injury rate `g₁` acting on alive tissue and an extra death rate `g₂` acting on
/// injured tissue, both multiplied by the phase's penumbra indicator
/// `h_j = σ((θ_I − CBF_j)/w_I)`. This is the mechanistic knowledge the residual keeps: tissue
/// is conserved (`r_I + r_D` moves only alive or injured tissue), and reperfusion stops
/// progression (after reperfusion `h ≈ 0`, whatever the network would extrapolate). Exact
/// VJP/JVP by the product rule around the network's.
#[derive(Debug, Clone)]
pub struct Gated {
    net: NetworkRhs,
    /// `h` per voxel.
    gate: Vec<f64>,
    /// Network outputs and their cotangents (scratch, `n_states` each).
    scratch: std::cell::RefCell<(Vec<f64>, Vec<f64>)>,
}

impl Gated {
    /// Gates `net` with the penumbra indicator of perfusion `cbf`.
    pub fn new(net: NetworkRhs, cbf: &[f64], constants: &FateConstants) -> Self {
        let gate: Vec<f64> = cbf
            .iter()
            .map(|c| 1.0 / (1.0 + ((c - constants.cbf_injury) / constants.width_injury).exp()))
            .collect();
        let m = 2 * gate.len();
        Gated { net, gate, scratch: std::cell::RefCell::new((vec![0.0; m], vec![0.0; m])) }
    }
}

impl neurohybrid_hybrid::Parameterized for Gated {
    fn param_layout(&self) -> neurohybrid_hybrid::Result<neurohybrid_system::ParamLayout> {
        self.net.param_layout()
    }
}

impl OdeSystem for Gated {
    fn n_states(&self) -> usize {
        self.net.n_states()
    }
    fn n_params(&self) -> usize {
        self.net.n_params()
    }
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        self.net.rhs(t, y, p, dy);
        let n = self.gate.len();
        for (j, &h) in self.gate.iter().enumerate() {
            let (i, d) = (y[j], y[n + j]);
            let (a, b) = (h * (1.0 - i - d), h * i);
            let (g1, g2) = (dy[j], dy[n + j]);
            dy[j] = a * g1 - b * g2;
            dy[n + j] = b * g2;
        }
    }
}

impl Vjp for Gated {
    fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        let mut guard = self.scratch.borrow_mut();
        let (g, c) = &mut *guard;
        self.net.rhs(t, y, p, g);
        let n = self.gate.len();
        for (j, &h) in self.gate.iter().enumerate() {
            let (i, d) = (y[j], y[n + j]);
            let (a, b) = (h * (1.0 - i - d), h * i);
            c[j] = a * w[j];
            c[n + j] = b * (w[n + j] - w[j]);
        }
        self.net.vjp(t, y, p, c, w_y, w_p);
        if w_y.is_empty() {
            return;
        }
        for (j, &h) in self.gate.iter().enumerate() {
            let (g1, g2) = (g[j], g[n + j]);
            let (wi, wd) = (w[j], w[n + j]);
            // ∂a/∂I = ∂a/∂D = −h, ∂b/∂I = h.
            w_y[j] += -h * g1 * wi - h * g2 * wi + h * g2 * wd;
            w_y[n + j] += -h * g1 * wi;
        }
    }
}

impl neurohybrid_system::Jvp for Gated {
    fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        let mut guard = self.scratch.borrow_mut();
        let (g, _) = &mut *guard;
        self.net.rhs(t, y, p, g);
        self.net.jvp(t, y, p, v_y, v_p, out);
        let n = self.gate.len();
        for (j, &h) in self.gate.iter().enumerate() {
            let (i, d) = (y[j], y[n + j]);
            let (a, b) = (h * (1.0 - i - d), h * i);
            let (vi, vd) = if v_y.is_empty() { (0.0, 0.0) } else { (v_y[j], v_y[n + j]) };
            let (da, db) = (-h * (vi + vd), h * vi);
            let (g1, g2, dg1, dg2) = (g[j], g[n + j], out[j], out[n + j]);
            out[j] = da * g1 + a * dg1 - db * g2 - b * dg2;
            out[n + j] = db * g2 + b * dg2;
        }
    }
}

/// The voxels the networks are trained on: hypoperfused at admission or lesioned in a scan
/// (everywhere else the data are healthy tissue that stays healthy, which the gate or the
/// zero initial state already explains; training on them only costs time).
fn training_voxels(perf: &OccludedPerfusion, obs: &Observation) -> Vec<usize> {
    (0..perf.p_normal.len())
        .filter(|&j| {
            obs.cbf_admission[j] < 0.8 * perf.p_normal[j] || obs.masks.iter().any(|m| m[j] > 0.5)
        })
        .collect()
}

fn pick(x: &[f64], idx: &[usize]) -> Vec<f64> {
    idx.iter().map(|&j| x[j]).collect()
}

/// The observation restricted to voxels `idx`.
fn restrict(obs: &Observation, idx: &[usize]) -> Observation {
    Observation {
        cbf_admission: pick(&obs.cbf_admission, idx),
        masks: obs.masks.iter().map(|m| pick(m, idx)).collect(),
        dead_scans: obs.dead_scans.iter().map(|m| pick(m, idx)).collect(),
        dead_final: pick(&obs.dead_final, idx),
        mask_final: pick(&obs.mask_final, idx),
    }
}

fn restrict_perfusion(perf: &OccludedPerfusion, idx: &[usize]) -> OccludedPerfusion {
    OccludedPerfusion {
        territory: perf.territory,
        p_normal: pick(&perf.p_normal, idx),
        p_zero: pick(&perf.p_zero, idx),
        weight: pick(&perf.weight, idx),
    }
}

/// The pointwise network and its initial weights (last layer scaled down so the initial
/// residual is small and the hybrid starts at its mechanistic fit).
fn network(cfg: &TrainConfig, time: bool) -> Result<(Mlp, Vec<f64>)> {
    let mlp = Mlp::new(&[3 + time as usize, cfg.hidden, cfg.hidden, 2], Activation::Tanh)?;
    let mut w = initialize(&mlp, Init::GlorotUniform, cfg.seed);
    let blocks = mlp.param_blocks();
    for b in &blocks[blocks.len().saturating_sub(2)..] {
        w[b.range()].iter_mut().for_each(|x| *x *= 0.05);
    }
    Ok((mlp, w))
}

fn net_rhs(mlp: &Mlp, cbf: &[f64]) -> Result<NetworkRhs> {
    let feat: Vec<f64> = cbf.iter().map(|c| c / 60.0).collect();
    let net = NetworkRhs::pointwise(mlp, cbf.len(), 2)?.with_features(feat)?;
    Ok(if mlp.inputs() == 4 { net.with_time_input()? } else { net })
}

/// Adam on the mean squared misfit of the dead fraction at the scan times; only the
/// parameters from `trainable` on are updated.
fn train<S: Vjp + Clone>(
    system: &S,
    params: &mut [f64],
    trainable: usize,
    obs: &Observation,
    protocol: &Protocol,
    cfg: &TrainConfig,
    history: &mut Vec<f64>,
) -> Result<()> {
    let n = system.n_states() / 2;
    let k = protocol.t_scans.len();
    let mut targets = vec![0.0; k * 2 * n];
    for (s, mask) in obs.masks.iter().enumerate() {
        for j in 0..n {
            targets[s * 2 * n + n + j] = mask[j];
        }
    }
    let observed: Vec<usize> = (n..2 * n).collect();
    let loss = SquaredMisfit::new(targets).observed(observed).with_weight(1.0 / (k * n) as f64);
    let t_last = protocol.t_scans.last().copied().unwrap_or(1.0);
    let save = SaveAt::Times(protocol.t_scans.clone());
    // Training tolerance: looser than the forward model's; the discrete adjoint is the exact
    // gradient of the discrete map whatever the tolerance, and the fit error is far larger.
    let ctrl = neurohybrid_solve::PiController::new(1e-4, 1e-6).with_max_steps(100_000);
    let adam = Adam::new(cfg.learning_rate);
    let mut state = adam.init(params.len() - trainable)?;
    let mut grad_w = vec![0.0; params.len() - trainable];
    for _ in 0..cfg.iterations {
        let problem =
            Problem::new(system.clone(), vec![0.0; 2 * n], params.to_vec(), (0.0, t_last));
        let g = gradient(&problem, &Tsit5, &ctrl, &save, &loss, &DiscreteAdjoint::default())?;
        history.push(g.value);
        grad_w.copy_from_slice(&g.dl_dp[trainable..]);
        if grad_w.iter().any(|x| !x.is_finite()) {
            return Err(StrokeError::IntegrationFailed {
                status: "non-finite training gradient".into(),
            });
        }
        adam.step(&mut state, &mut params[trainable..], &grad_w)?;
    }
    Ok(())
}

/// A trained network model with its parameters and loss history.
#[derive(Debug, Clone)]
pub struct Trained<M> {
    /// The model in both phases.
    pub model: M,
    /// Its parameter vector.
    pub params: Vec<f64>,
    /// Training loss per iteration.
    pub history: Vec<f64>,
}

/// Trains the neural-only model. The occluded phase sees the observed admission perfusion,
/// the reperfused phase the healthy perfusion.
///
/// # Errors
/// From the network, the solves or the optimizer.
pub fn fit_neural(
    perf: &OccludedPerfusion,
    obs: &Observation,
    protocol: &Protocol,
    cfg: &TrainConfig,
) -> Result<Trained<NeuralModel>> {
    let (mlp, mut w) = network(cfg, true)?;
    let idx = training_voxels(perf, obs);
    let sub = restrict(obs, &idx);
    let mut history = Vec::new();
    train(&net_rhs(&mlp, &sub.cbf_admission)?, &mut w, 0, &sub, protocol, cfg, &mut history)?;
    // The network is pointwise: the weights trained on the subset apply to every voxel.
    let occluded = net_rhs(&mlp, &obs.cbf_admission)?;
    let reperfused = net_rhs(&mlp, &perf.p_normal)?;
    Ok(Trained { model: NetModel { occluded, reperfused }, params: w, history })
}

/// Trains the parallel hybrid on top of a mechanistic fit (mechanistic block frozen).
///
/// # Errors
/// From the network, the solves or the optimizer.
pub fn fit_hybrid(
    perf: &OccludedPerfusion,
    obs: &Observation,
    protocol: &Protocol,
    constants: FateConstants,
    mech: &FateParams,
    cfg: &TrainConfig,
) -> Result<Trained<HybridModel>> {
    let (mlp, w) = network(cfg, cfg.hybrid_time_input)?;
    let build = |perf: &OccludedPerfusion| -> Result<HybridModel> {
        let base = MechanisticModel::new(perf, constants, 0.0)?;
        let cbf_occ = base.occluded().cbf_map(0.0, mech.collateral);
        let occ_net = Gated::new(net_rhs(&mlp, &cbf_occ)?, &cbf_occ, &constants);
        let rep_net = Gated::new(net_rhs(&mlp, &perf.p_normal)?, &perf.p_normal, &constants);
        Ok(NetModel {
            occluded: Parallel::new(base.occluded().clone(), occ_net)?,
            reperfused: Parallel::new(base.reperfused().clone(), rep_net)?,
        })
    };
    let idx = training_voxels(perf, obs);
    let sub = build(&restrict_perfusion(perf, &idx))?;
    let mut params = mech.to_vec();
    params.extend(w);
    let mut history = Vec::new();
    train(sub.occluded(), &mut params, 3, &restrict(obs, &idx), protocol, cfg, &mut history)?;
    Ok(Trained { model: build(perf)?, params, history })
}

#[cfg(test)]
mod tests {
    use super::*;
    use neurohybrid_system::Jvp;

    #[test]
    fn gated_residual_derivatives_match_finite_differences() {
        let cfg = TrainConfig { hidden: 5, ..TrainConfig::default() };
        let (mlp, mut w) = network(&cfg, true).unwrap();
        w.iter_mut().enumerate().for_each(|(k, x)| *x += 0.1 * ((k as f64) * 0.7).sin());
        let cbf = [5.0, 15.0, 40.0];
        let g = Gated::new(net_rhs(&mlp, &cbf).unwrap(), &cbf, &FateConstants::default());
        let y = [0.2, 0.3, 0.1, 0.1, 0.4, 0.0];
        let (t, v_y) = (1.3, [0.3, -0.5, 0.2, 0.4, -0.1, 0.6]);
        let v_p: Vec<f64> = (0..w.len()).map(|k| ((k as f64) * 1.3).cos()).collect();
        let mut jv = [0.0; 6];
        g.jvp(t, &y, &w, &v_y, &v_p, &mut jv);
        let eps = 1e-6;
        let f = |s: f64| {
            let yy: Vec<f64> = y.iter().zip(&v_y).map(|(a, b)| a + s * eps * b).collect();
            let pp: Vec<f64> = w.iter().zip(&v_p).map(|(a, b)| a + s * eps * b).collect();
            let mut d = [0.0; 6];
            g.rhs(t, &yy, &pp, &mut d);
            d
        };
        let (fp, fm) = (f(1.0), f(-1.0));
        for k in 0..6 {
            let fd = (fp[k] - fm[k]) / (2.0 * eps);
            assert!((fd - jv[k]).abs() < 1e-7 * (1.0 + fd.abs()), "{k}: {fd} vs {}", jv[k]);
        }
        let wc = [0.5, -0.2, 0.9, 0.3, 0.7, -0.4];
        let (mut w_y, mut w_p) = (vec![0.0; 6], vec![0.0; w.len()]);
        g.vjp(t, &y, &w, &wc, &mut w_y, &mut w_p);
        let lhs: f64 = wc.iter().zip(&jv).map(|(a, b)| a * b).sum();
        let rhs: f64 = w_y.iter().zip(&v_y).map(|(a, b)| a * b).sum::<f64>()
            + w_p.iter().zip(&v_p).map(|(a, b)| a * b).sum::<f64>();
        assert!((lhs - rhs).abs() < 1e-12 * (1.0 + lhs.abs()), "{lhs} vs {rhs}");
    }
}
