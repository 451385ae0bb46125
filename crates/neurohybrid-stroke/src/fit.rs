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

use neurohybrid_hybrid::{Calibration, Calibrator, NetworkRhs, OdeResiduals, Parallel, ResidualModel, Transform};
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
    fn jacobian(&self, theta: &[f64], r: &mut [f64], jac: &mut [f64]) -> neurohybrid_hybrid::Result<()> {
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
        let z: Vec<f64> = c.theta.iter().zip(&self.transforms).map(|(t, tr)| tr.to_free(*t).unwrap_or(0.0)).collect();
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
    let system = FateSystem::new(perf.p_normal.clone(), perf.p_zero.clone(), constants, Phase::Occluded { decay: 0.0 })?;
    let t_last = protocol.t_scans.last().copied().unwrap_or(protocol.t_admission);
    let problem = Problem::new(system, vec![0.0; 2 * n], theta0.to_vec(), (0.0, t_last));
    let observed: Vec<usize> = (0..n).map(|j| 2 * j + 1).collect();
    let data: Vec<f64> = obs.masks.iter().flatten().copied().collect();
    let lesion = OdeResiduals::new(problem, Tsit5, controller(), protocol.t_scans.clone(), vec![0.0; protocol.t_scans.len() * 2 * n])?
        .observed(observed, data)?
        .sigma(SIGMA_MASK)?;
    let perf_rows = (0..n)
        .filter(|&j| perf.p_normal[j] - perf.p_zero[j] > 1.0)
        .map(|j| (obs.cbf_admission[j], perf.p_zero[j], perf.p_normal[j] - perf.p_zero[j]))
        .collect();
    let model = StrokeResiduals { lesion, perf: perf_rows, inv_sigma_cbf: 1.0 / protocol.cbf_noise, c_index: 2 };
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
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig { hidden: 12, iterations: 80, learning_rate: 2e-2, seed: 7 }
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
/// The parallel hybrid: mechanistic fate + network residual.
pub type HybridModel = NetModel<Parallel<FateSystem, NetworkRhs>>;

/// The pointwise network and its initial weights (last layer scaled down so the initial
/// residual is small and the hybrid starts at its mechanistic fit).
fn network(cfg: &TrainConfig) -> Result<(Mlp, Vec<f64>)> {
    let mlp = Mlp::new(&[4, cfg.hidden, cfg.hidden, 2], Activation::Tanh)?;
    let mut w = initialize(&mlp, Init::GlorotUniform, cfg.seed);
    let blocks = mlp.param_blocks();
    for b in &blocks[blocks.len().saturating_sub(2)..] {
        w[b.range()].iter_mut().for_each(|x| *x *= 0.05);
    }
    Ok((mlp, w))
}

fn net_rhs(mlp: &Mlp, cbf: &[f64]) -> Result<NetworkRhs> {
    let feat: Vec<f64> = cbf.iter().map(|c| c / 60.0).collect();
    Ok(NetworkRhs::pointwise(mlp, cbf.len(), 2)?.with_features(feat)?.with_time_input()?)
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
            targets[s * 2 * n + 2 * j + 1] = mask[j];
        }
    }
    let observed: Vec<usize> = (0..n).map(|j| 2 * j + 1).collect();
    let loss = SquaredMisfit::new(targets).observed(observed).with_weight(1.0 / (k * n) as f64);
    let t_last = protocol.t_scans.last().copied().unwrap_or(1.0);
    let save = SaveAt::Times(protocol.t_scans.clone());
    let adam = Adam::new(cfg.learning_rate);
    let mut state = adam.init(params.len() - trainable)?;
    let mut grad_w = vec![0.0; params.len() - trainable];
    for _ in 0..cfg.iterations {
        let problem = Problem::new(system.clone(), vec![0.0; 2 * n], params.to_vec(), (0.0, t_last));
        let g = gradient(&problem, &Tsit5, &controller(), &save, &loss, &DiscreteAdjoint::default())?;
        history.push(g.value);
        grad_w.copy_from_slice(&g.dl_dp[trainable..]);
        if grad_w.iter().any(|x| !x.is_finite()) {
            return Err(StrokeError::IntegrationFailed { status: "non-finite training gradient".into() });
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
pub fn fit_neural(perf: &OccludedPerfusion, obs: &Observation, protocol: &Protocol, cfg: &TrainConfig) -> Result<Trained<NeuralModel>> {
    let (mlp, mut w) = network(cfg)?;
    let occluded = net_rhs(&mlp, &obs.cbf_admission)?;
    let reperfused = net_rhs(&mlp, &perf.p_normal)?;
    let mut history = Vec::new();
    train(&occluded, &mut w, 0, obs, protocol, cfg, &mut history)?;
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
    let (mlp, w) = network(cfg)?;
    let base = MechanisticModel::new(perf, constants, 0.0)?;
    let cbf_occ = base.occluded().cbf_map(0.0, mech.collateral);
    let occluded = Parallel::new(base.occluded().clone(), net_rhs(&mlp, &cbf_occ)?)?;
    let reperfused = Parallel::new(base.reperfused().clone(), net_rhs(&mlp, &perf.p_normal)?)?;
    let mut params = mech.to_vec();
    params.extend(w);
    let mut history = Vec::new();
    train(&occluded, &mut params, 3, obs, protocol, cfg, &mut history)?;
    Ok(Trained { model: NetModel { occluded, reperfused }, params, history })
}
