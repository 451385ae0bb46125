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
//! - **Hybrid (parallel)**: the calibrated mechanistic model plus a network residual on the
//!   fate rates, `Parallel::new(mech, Gated(net))`: gated by the alive / injured state, the
//!   relative perfusion deficit and the time since admission ([`Gated`]), started at a zero
//!   output layer (so it *is* the calibrated model before training) and trained with an L2
//!   penalty towards that start; the mechanistic block is frozen at its calibrated value (a
//!   staged fit: the mechanism explains what it can, the network learns what is missing).
//! - **Hybrid (series)**: `Series::new(map, features, CollateralField)` — a pointwise network
//!   from imaging features (admission CBF, healthy CBF as the tissue type, the territory's
//!   relative perfusion deficit) to every voxel's collateral strength and its decay rate
//!   ([`crate::collateral`]); zero output layer = the calibrated plain model.
//!
//! Why the parallel hybrid is built this way (the first version lost to the plain model on
//! 10/10 patients): `docs/decisions/0023-stroke-hybrids.md`.
//!
//! Networks are trained with Adam on the mean squared misfit of the dead fraction to the
//! masks, gradients by the discrete adjoint through the Tsit5 steps
//! (`neurohybrid_solve::sensitivity`).

use neurohybrid_hybrid::{
    Calibration, Calibrator, NetworkRhs, OdeResiduals, Parallel, ResidualModel, Series, TapeMap,
    Transform,
};
use neurohybrid_nn::optim::{Adam, Optimizer};
use neurohybrid_nn::{Activation, Init, Layer, Mlp, Pointwise, initialize};
use neurohybrid_solve::sensitivity::{DiscreteAdjoint, SquaredMisfit, gradient};
use neurohybrid_solve::{Problem, SaveAt};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_system::{OdeSystem, Vjp};
use serde::{Deserialize, Serialize};

use crate::anatomy::OccludedPerfusion;
use crate::collateral::CollateralField;
use crate::error::{Result, StrokeError};
use crate::fate::{FATE_PARAM_NAMES, FateConstants, FateParams, FateSystem, N_FATE_PARAMS, Phase};
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
    /// model always does: it has no other clock). The parallel residual is multiplied by the
    /// time since admission whatever this says (see [`Gated`]).
    pub hybrid_time_input: bool,
    /// Weight of the L2 penalty `(l2/2) |w|²` on the hybrids' network weights (both start at
    /// `w_last = 0`, the calibrated plain model; the penalty pulls them back towards it).
    pub l2: f64,
    /// Decay rate (1/h) that one unit of the series network's second output means.
    pub series_decay_scale: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            hidden: 12,
            iterations: 50,
            learning_rate: 2e-2,
            seed: 7,
            hybrid_time_input: false,
            l2: 1e-3,
            series_decay_scale: 0.1,
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

/// The network residual on the fate *rates*, switched on only where and while the occlusion
/// starves tissue: with the network's two outputs `(g₁, g₂)` per voxel,
///
/// ```text
/// r_I = a g₁ − b g₂,   r_D = b g₂,   a = κ_j(t) (1 − I − D),   b = κ_j(t) I,
/// κ_j(t) = s_j (t − t_adm) / τ,   s_j = clamp(1 − CBF_j / P_n,j, 0, 1)
/// ```
///
/// — an extra injury rate `g₁` acting on alive tissue and an extra death rate `g₂` acting on
/// injured tissue. What the residual keeps of the mechanism:
/// - tissue is conserved (`r_I + r_D` moves only alive or injured tissue);
/// - it acts only in proportion to the relative perfusion deficit `s_j` of the phase
///   (healthy tissue, `CBF = P_n`, gets none; after reperfusion `s ≡ 0`, so reperfusion
///   stops it exactly, whatever the network would extrapolate);
/// - it vanishes at the admission time `t_adm`, where the calibrated model's perfusion
///   matches the measured map: whatever the plain model misses about perfusion has to build
///   up (or, before admission, down) from there, so the residual is scaled by the time since
///   admission (`τ = 10 h`). This is what lets a residual trained on `t ≤ 3 h` extrapolate to
///   the treatment time: the network learns a rate *per hour since admission*, not a function
///   of absolute time that a tanh network would extrapolate arbitrarily.
///
/// The gate is wider than the penumbra indicator `h` of the fate model, which is ≈ 0 above
/// `CBF ≈ 25`: tissue that the plain model holds at 25–30 ml/100 g/min but whose collaterals
/// fail must be reachable by the residual. Exact VJP/JVP by the product rule around the
/// network's.
#[derive(Debug, Clone)]
pub struct Gated {
    net: NetworkRhs,
    /// `s_j` per voxel.
    gate: Vec<f64>,
    /// `t_adm`.
    t_ref: f64,
    /// Network outputs and their cotangents (scratch, `n_states` each).
    scratch: std::cell::RefCell<(Vec<f64>, Vec<f64>)>,
}

/// Time scale `τ` (h) of [`Gated`]'s factor `(t − t_adm)/τ`.
pub const GATE_TIME_SCALE: f64 = 10.0;

impl Gated {
    /// Gates `net` with the relative deficit of perfusion `cbf` against the healthy
    /// `p_normal`, and the time since `t_ref` (the admission).
    pub fn new(net: NetworkRhs, cbf: &[f64], p_normal: &[f64], t_ref: f64) -> Self {
        let gate: Vec<f64> = cbf
            .iter()
            .zip(p_normal)
            .map(|(c, pn)| if *pn > 0.0 { (1.0 - c / pn).clamp(0.0, 1.0) } else { 0.0 })
            .collect();
        let m = 2 * gate.len();
        Gated { net, gate, t_ref, scratch: std::cell::RefCell::new((vec![0.0; m], vec![0.0; m])) }
    }

    /// The time factor `(t − t_adm)/τ` of the gate `κ_j(t)`.
    fn kappa(&self, t: f64) -> f64 {
        (t - self.t_ref) / GATE_TIME_SCALE
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
        let tau = self.kappa(t);
        for (j, &s) in self.gate.iter().enumerate() {
            let h = tau * s;
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
        let tau = self.kappa(t);
        for (j, &s) in self.gate.iter().enumerate() {
            let h = tau * s;
            let (i, d) = (y[j], y[n + j]);
            let (a, b) = (h * (1.0 - i - d), h * i);
            c[j] = a * w[j];
            c[n + j] = b * (w[n + j] - w[j]);
        }
        self.net.vjp(t, y, p, c, w_y, w_p);
        if w_y.is_empty() {
            return;
        }
        for (j, &s) in self.gate.iter().enumerate() {
            let h = tau * s;
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
        let tau = self.kappa(t);
        for (j, &s) in self.gate.iter().enumerate() {
            let h = tau * s;
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

/// A `[inputs, hidden, hidden, 2]` tanh MLP and its initial weights: Glorot, with the last
/// layer scaled by `last` (0 for the hybrids: a zero output layer makes the network output
/// exactly 0, so a hybrid starts *at* the calibrated plain model, and the hidden layers still
/// receive gradient through the output weights).
fn mlp_init(cfg: &TrainConfig, inputs: usize, last: f64) -> Result<(Mlp, Vec<f64>)> {
    let mlp = Mlp::new(&[inputs, cfg.hidden, cfg.hidden, 2], Activation::Tanh)?;
    let mut w = initialize(&mlp, Init::GlorotUniform, cfg.seed);
    let blocks = mlp.param_blocks();
    for b in &blocks[blocks.len().saturating_sub(2)..] {
        w[b.range()].iter_mut().for_each(|x| *x *= last);
    }
    Ok((mlp, w))
}

/// The pointwise rate network on `(I, D, CBF/60[, t])`; `last` as in [`mlp_init`].
fn network(cfg: &TrainConfig, time: bool, last: f64) -> Result<(Mlp, Vec<f64>)> {
    mlp_init(cfg, 3 + time as usize, last)
}

fn net_rhs(mlp: &Mlp, cbf: &[f64]) -> Result<NetworkRhs> {
    let feat: Vec<f64> = cbf.iter().map(|c| c / 60.0).collect();
    let net = NetworkRhs::pointwise(mlp, cbf.len(), 2)?.with_features(feat)?;
    Ok(if mlp.inputs() == 4 { net.with_time_input()? } else { net })
}

/// Adam on the mean squared misfit of the dead fraction at the scan times, plus
/// `(l2/2) |p[trainable]|²`; only the parameters in `trainable` are updated. `history` gets
/// the misfit (without the penalty) per iteration.
#[allow(clippy::too_many_arguments)]
fn train<S: Vjp + Clone>(
    system: &S,
    params: &mut [f64],
    trainable: std::ops::Range<usize>,
    l2: f64,
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
    let mut state = adam.init(trainable.len())?;
    let mut grad_w = vec![0.0; trainable.len()];
    for _ in 0..cfg.iterations {
        let problem =
            Problem::new(system.clone(), vec![0.0; 2 * n], params.to_vec(), (0.0, t_last));
        let g = gradient(&problem, &Tsit5, &ctrl, &save, &loss, &DiscreteAdjoint::default())?;
        history.push(g.value);
        for ((gw, dl), w) in
            grad_w.iter_mut().zip(&g.dl_dp[trainable.clone()]).zip(&params[trainable.clone()])
        {
            *gw = dl + l2 * w;
        }
        if grad_w.iter().any(|x| !x.is_finite()) {
            return Err(StrokeError::IntegrationFailed {
                status: "non-finite training gradient".into(),
            });
        }
        adam.step(&mut state, &mut params[trainable.clone()], &grad_w)?;
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
    let (mlp, mut w) = network(cfg, true, 0.05)?;
    let idx = training_voxels(perf, obs);
    let sub = restrict(obs, &idx);
    let mut history = Vec::new();
    let sys = net_rhs(&mlp, &sub.cbf_admission)?;
    let all = 0..w.len();
    train(&sys, &mut w, all, 0.0, &sub, protocol, cfg, &mut history)?;
    // The network is pointwise: the weights trained on the subset apply to every voxel.
    let occluded = net_rhs(&mlp, &obs.cbf_admission)?;
    let reperfused = net_rhs(&mlp, &perf.p_normal)?;
    Ok(Trained { model: NetModel { occluded, reperfused }, params: w, history })
}

/// Builds the parallel hybrid on `perf` around the calibrated `mech` (for any network
/// weights: the network is pointwise).
fn hybrid_model(
    perf: &OccludedPerfusion,
    constants: FateConstants,
    mech: &FateParams,
    mlp: &Mlp,
    t_adm: f64,
) -> Result<HybridModel> {
    let base = MechanisticModel::new(perf, constants, 0.0)?;
    let cbf_occ = base.occluded().cbf_map(0.0, mech.collateral);
    let occ_net = Gated::new(net_rhs(mlp, &cbf_occ)?, &cbf_occ, &perf.p_normal, t_adm);
    // After reperfusion CBF = P_n: the gate is identically zero.
    let rep_net = Gated::new(net_rhs(mlp, &perf.p_normal)?, &perf.p_normal, &perf.p_normal, t_adm);
    Ok(NetModel {
        occluded: Parallel::new(base.occluded().clone(), occ_net)?,
        reperfused: Parallel::new(base.reperfused().clone(), rep_net)?,
    })
}

/// The parallel hybrid at its starting point: the calibrated mechanistic model plus a
/// zero-output-layer residual network (it equals the plain model exactly). Returns the model
/// and its parameters `[k_inj, k_death, c | w]`.
///
/// # Errors
/// From the network construction.
pub fn initial_hybrid(
    perf: &OccludedPerfusion,
    protocol: &Protocol,
    constants: FateConstants,
    mech: &FateParams,
    cfg: &TrainConfig,
) -> Result<(HybridModel, Vec<f64>)> {
    let (mlp, w) = network(cfg, cfg.hybrid_time_input, 0.0)?;
    let model = hybrid_model(perf, constants, mech, &mlp, protocol.t_admission)?;
    let mut params = mech.to_vec();
    params.extend(w);
    Ok((model, params))
}

/// Trains the parallel hybrid on top of a mechanistic fit: the mechanistic block is frozen
/// at its calibration and the residual network ([`Gated`], zero output layer at the start)
/// is trained with an L2 penalty towards zero (a staged fit).
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
    let (mlp, _) = network(cfg, cfg.hybrid_time_input, 0.0)?;
    let (_, mut params) = initial_hybrid(perf, protocol, constants, mech, cfg)?;
    let idx = training_voxels(perf, obs);
    let sub =
        hybrid_model(&restrict_perfusion(perf, &idx), constants, mech, &mlp, protocol.t_admission)?;
    let mut history = Vec::new();
    let range = N_FATE_PARAMS..params.len();
    train(
        sub.occluded(),
        &mut params,
        range,
        cfg.l2,
        &restrict(obs, &idx),
        protocol,
        cfg,
        &mut history,
    )?;
    let model = hybrid_model(perf, constants, mech, &mlp, protocol.t_admission)?;
    Ok(Trained { model, params, history })
}

/// The series system: a pointwise network on imaging features whose outputs are the
/// per-voxel collateral trajectory of a [`CollateralField`].
pub type SeriesSystem = Series<TapeMap, CollateralField>;
/// The series hybrid in both phases.
pub type SeriesModel = NetModel<SeriesSystem>;

/// Imaging features of the series network per voxel (row-major `[n, 3]`): the admission
/// perfusion `CBF/60` (local CBF), the healthy perfusion `P_n/60` (tissue type: gray matter
/// is perfused ~2.5× white matter) and the relative perfusion deficit `1 − CBF/P_n` of the
/// territory.
pub fn series_features(perf: &OccludedPerfusion, obs: &Observation) -> Vec<f64> {
    obs.cbf_admission
        .iter()
        .zip(&perf.p_normal)
        .flat_map(|(&c, &pn)| {
            let deficit = if pn > 0.0 { (1.0 - c / pn).clamp(0.0, 1.0) } else { 0.0 };
            [c / 60.0, pn / 60.0, deficit]
        })
        .collect()
}

/// Number of series features per voxel.
pub const N_SERIES_FEATURES: usize = 3;

fn series_model(
    perf: &OccludedPerfusion,
    obs: &Observation,
    constants: FateConstants,
    mech: &FateParams,
    mlp: &Mlp,
    cfg: &TrainConfig,
) -> Result<SeriesModel> {
    let n = perf.p_normal.len();
    let map = TapeMap::new(&Pointwise::new(mlp.clone()), &[n, N_SERIES_FEATURES])?;
    let feat = series_features(perf, obs);
    let field = |reperfused| {
        CollateralField::new(
            &perf.p_normal,
            &perf.p_zero,
            constants,
            mech.collateral,
            cfg.series_decay_scale,
            reperfused,
        )
    };
    Ok(NetModel {
        occluded: Series::new(map.clone(), feat.clone(), field(false)?)?,
        reperfused: Series::new(map, feat, field(true)?)?,
    })
}

/// The series hybrid at its starting point (zero output layer: the calibrated plain model
/// exactly) and its parameters `[w | k_inj, k_death]`.
///
/// # Errors
/// From the network construction.
pub fn initial_series(
    perf: &OccludedPerfusion,
    obs: &Observation,
    constants: FateConstants,
    mech: &FateParams,
    cfg: &TrainConfig,
) -> Result<(SeriesModel, Vec<f64>)> {
    let (mlp, mut params) = mlp_init(cfg, N_SERIES_FEATURES, 0.0)?;
    let model = series_model(perf, obs, constants, mech, &mlp, cfg)?;
    params.extend([mech.k_inj, mech.k_death]);
    Ok((model, params))
}

/// Trains the series hybrid: a pointwise network maps the imaging features
/// ([`series_features`]) to each voxel's collateral strength and its decay
/// ([`CollateralField`]); it starts at the calibrated plain model (zero output layer) and
/// only the network is trained (rates frozen at their calibration), with the L2 penalty.
///
/// # Errors
/// From the network, the solves or the optimizer.
pub fn fit_series(
    perf: &OccludedPerfusion,
    obs: &Observation,
    constants: FateConstants,
    mech: &FateParams,
    protocol: &Protocol,
    cfg: &TrainConfig,
) -> Result<Trained<SeriesModel>> {
    let (mlp, _) = mlp_init(cfg, N_SERIES_FEATURES, 0.0)?;
    let (_, mut params) = initial_series(perf, obs, constants, mech, cfg)?;
    let idx = training_voxels(perf, obs);
    let (sp, so) = (restrict_perfusion(perf, &idx), restrict(obs, &idx));
    let sub = series_model(&sp, &so, constants, mech, &mlp, cfg)?;
    let mut history = Vec::new();
    let range = 0..mlp.n_params();
    train(sub.occluded(), &mut params, range, cfg.l2, &so, protocol, cfg, &mut history)?;
    let model = series_model(perf, obs, constants, mech, &mlp, cfg)?;
    Ok(Trained { model, params, history })
}

#[cfg(test)]
mod tests {
    use super::*;
    use neurohybrid_system::Jvp;

    #[test]
    fn gated_residual_derivatives_match_finite_differences() {
        let cfg = TrainConfig { hidden: 5, ..TrainConfig::default() };
        let (mlp, mut w) = network(&cfg, true, 0.0).unwrap();
        w.iter_mut().enumerate().for_each(|(k, x)| *x += 0.1 * ((k as f64) * 0.7).sin());
        let cbf = [5.0, 15.0, 40.0];
        let g = Gated::new(net_rhs(&mlp, &cbf).unwrap(), &cbf, &[60.0, 50.0, 45.0], 1.0);
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

#[cfg(test)]
mod composition_tests {
    use super::*;
    use crate::perfusion::Territory;
    use crate::sim::simulate;
    use neurohybrid_system::Jvp;

    fn toy() -> (OccludedPerfusion, Observation, FateParams, Protocol) {
        let perf = OccludedPerfusion {
            territory: Territory::LeftMca,
            p_normal: vec![30.0, 55.0, 30.0, 24.0, 50.0, 45.0],
            p_zero: vec![0.0, 8.0, 5.0, 20.0, 49.0, 10.0],
            weight: vec![1.0, 0.8, 0.9, 0.2, 0.0, 0.6],
        };
        let mech = FateParams { k_inj: 1.8, k_death: 1.2, collateral: 0.3 };
        let cbf: Vec<f64> =
            perf.p_zero.iter().zip(&perf.p_normal).map(|(z, n)| z + 0.3 * (n - z)).collect();
        let obs = Observation {
            cbf_admission: cbf,
            masks: vec![vec![1.0, 0.0, 1.0, 0.0, 0.0, 0.0]; 2],
            dead_scans: vec![vec![0.0; 6]; 2],
            dead_final: vec![0.0; 6],
            mask_final: vec![0.0; 6],
        };
        (perf, obs, mech, Protocol::default())
    }

    /// Central-difference check of `J v` and the adjoint identity `⟨w, J v⟩ = ⟨Jᵀw, v⟩` of a
    /// composition's right-hand side at `(t, y, p)`.
    fn check_rhs_derivatives<S: Vjp + Jvp>(s: &S, t: f64, y: &[f64], p: &[f64]) {
        let (m, np) = (y.len(), p.len());
        let v_y: Vec<f64> = (0..m).map(|k| ((k as f64) * 0.9 + 0.3).sin()).collect();
        let v_p: Vec<f64> = (0..np).map(|k| ((k as f64) * 1.3).cos()).collect();
        let mut jv = vec![0.0; m];
        s.jvp(t, y, p, &v_y, &v_p, &mut jv);
        let eps = 1e-6;
        let f = |sg: f64| {
            let yy: Vec<f64> = y.iter().zip(&v_y).map(|(a, b)| a + sg * eps * b).collect();
            let pp: Vec<f64> = p.iter().zip(&v_p).map(|(a, b)| a + sg * eps * b).collect();
            let mut d = vec![0.0; m];
            s.rhs(t, &yy, &pp, &mut d);
            d
        };
        let (fp, fm) = (f(1.0), f(-1.0));
        for k in 0..m {
            let fd = (fp[k] - fm[k]) / (2.0 * eps);
            assert!((fd - jv[k]).abs() < 1e-6 * (1.0 + fd.abs()), "{k}: {fd} vs {}", jv[k]);
        }
        let w: Vec<f64> = (0..m).map(|k| ((k as f64) * 0.37 + 1.0).cos()).collect();
        let (mut w_y, mut w_p) = (vec![0.0; m], vec![0.0; np]);
        s.vjp(t, y, p, &w, &mut w_y, &mut w_p);
        let lhs: f64 = w.iter().zip(&jv).map(|(a, b)| a * b).sum();
        let rhs: f64 = w_y.iter().zip(&v_y).map(|(a, b)| a * b).sum::<f64>()
            + w_p.iter().zip(&v_p).map(|(a, b)| a * b).sum::<f64>();
        assert!((lhs - rhs).abs() < 1e-10 * (1.0 + lhs.abs()), "{lhs} vs {rhs}");
    }

    fn perturbed(p: &mut [f64], from: usize, to: usize) {
        for (k, x) in p[from..to].iter_mut().enumerate() {
            *x += 0.3 * ((k as f64) * 0.7 + 0.2).sin();
        }
    }

    #[test]
    fn hybrids_at_zero_output_layer_are_the_plain_model_bit_for_bit() {
        let (perf, obs, mech, protocol) = toy();
        let k = FateConstants::default();
        let cfg = TrainConfig { hidden: 5, ..TrainConfig::default() };
        let plain = MechanisticModel::new(&perf, k, 0.0).unwrap();
        let y0 = vec![0.0; 12];
        let times = [1.5, 3.0, 4.0, 24.0];
        let want = simulate(&plain, &mech.to_vec(), &y0, 3.5, &times).unwrap();
        let (hyb, hp) = initial_hybrid(&perf, &protocol, k, &mech, &cfg).unwrap();
        let (ser, sp) = initial_series(&perf, &obs, k, &mech, &cfg).unwrap();
        let got_h = simulate(&hyb, &hp, &y0, 3.5, &times).unwrap();
        let got_s = simulate(&ser, &sp, &y0, 3.5, &times).unwrap();
        for (a, (b, c)) in
            want.iter().flatten().zip(got_h.iter().flatten().zip(got_s.iter().flatten()))
        {
            assert_eq!(a.to_bits(), b.to_bits(), "parallel: {a} vs {b}");
            assert_eq!(a.to_bits(), c.to_bits(), "series: {a} vs {c}");
        }
        assert!(want.last().unwrap()[6..].iter().any(|&d| d > 0.5), "the toy must infarct");
    }

    #[test]
    fn composition_derivatives_match_finite_differences() {
        let (perf, obs, mech, protocol) = toy();
        let k = FateConstants::default();
        let cfg = TrainConfig { hidden: 5, ..TrainConfig::default() };
        let y = [0.2, 0.1, 0.3, 0.05, 0.0, 0.4, 0.1, 0.3, 0.05, 0.0, 0.0, 0.2];
        // Parallel: [k_inj, k_death, c | w], every block away from its starting point.
        let (hyb, mut hp) = initial_hybrid(&perf, &protocol, k, &mech, &cfg).unwrap();
        let len = hp.len();
        perturbed(&mut hp, N_FATE_PARAMS, len);
        check_rhs_derivatives(hyb.occluded(), 2.2, &y, &hp);
        check_rhs_derivatives(hyb.reperfused(), 5.0, &y, &hp);
        // Series: [w | k_inj, k_death].
        let (ser, mut sp) = initial_series(&perf, &obs, k, &mech, &cfg).unwrap();
        let nw = sp.len() - 2;
        perturbed(&mut sp, 0, nw);
        check_rhs_derivatives(ser.occluded(), 2.2, &y, &sp);
        check_rhs_derivatives(ser.reperfused(), 5.0, &y, &sp);
    }

    #[test]
    fn series_loss_gradient_through_the_solver_matches_finite_differences() {
        let (perf, obs, mech, _) = toy();
        let k = FateConstants::default();
        let cfg = TrainConfig { hidden: 4, ..TrainConfig::default() };
        let (ser, mut sp) = initial_series(&perf, &obs, k, &mech, &cfg).unwrap();
        let nw = sp.len() - 2;
        perturbed(&mut sp, 0, nw);
        let targets: Vec<f64> =
            (0..24).map(|i| if i % 12 >= 6 { obs.masks[0][i % 6] } else { 0.0 }).collect();
        let loss = SquaredMisfit::new(targets).observed((6..12).collect());
        let save = SaveAt::Times(vec![1.5, 3.0]);
        let ctrl = neurohybrid_solve::PiController::new(1e-10, 1e-12).with_max_steps(100_000);
        let value = |p: &[f64]| {
            let pr = Problem::new(ser.occluded().clone(), vec![0.0; 12], p.to_vec(), (0.0, 3.0));
            gradient(&pr, &Tsit5, &ctrl, &save, &loss, &DiscreteAdjoint::default()).unwrap()
        };
        let g = value(&sp);
        let v: Vec<f64> = (0..sp.len()).map(|k| ((k as f64) * 0.61).sin()).collect();
        let eps = 1e-6;
        let shift = |s: f64| sp.iter().zip(&v).map(|(a, b)| a + s * eps * b).collect::<Vec<_>>();
        let fd = (value(&shift(1.0)).value - value(&shift(-1.0)).value) / (2.0 * eps);
        let ad: f64 = g.dl_dp.iter().zip(&v).map(|(a, b)| a * b).sum();
        assert!((fd - ad).abs() < 1e-5 * (1e-8 + ad.abs()), "{fd} vs {ad}");
    }
}
