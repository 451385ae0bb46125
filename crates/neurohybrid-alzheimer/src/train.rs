//! Cohort-level training of the neural and hybrid variants on the early visits.
//!
//! Every variant is an `OdeSystem` built from `neurohybrid-hybrid` compositions:
//!
//! | variant | system | shared parameters | per-subject parameters |
//! |---|---|---|---|
//! | parallel hybrid | `Parallel(NetworkFkpp, LoadScaled(NetworkRhs::pointwise(g)))`: `dc_i/dt = −κ(Lc)_i + αc_i(1−c_i) + c_i g(c_i; w)` | `w` | `ln κ, ln α, logit s` (seed region from the mechanistic fit) |
//! | series hybrid | `Series(TapeMap(h), covariates, NetworkFkpp)`: `(κ, α) = h(amyloid, age; w)` | `w` | `ln s` |
//! | neural ODE | `NetworkRhs::pointwise(g)` with region features (degree, stage group): `dc_i/dt = g(c_i, d_i, s_i; w)` | `w` | none (starts from the first visit) |
//!
//! Shared and per-subject parameters are fitted jointly by L-BFGS on the summed Gaussian
//! negative log-likelihood of the early visits (plus an L2 penalty on `w`); each subject's
//! term and gradient is one discrete-adjoint solve, and subjects run in parallel with rayon.
//! The systems replay compiled tapes with `RefCell` workspaces (`Send`, not `Sync`), so each
//! subject owns its system behind a `Mutex` that only its own task ever locks.

use std::sync::Mutex;

use neurohybrid_hybrid::{NetworkRhs, Parallel, Series, TapeMap};
use neurohybrid_nn::optim::Lbfgs;
use neurohybrid_nn::{Activation, Init, Layer, Mlp, initialize};
use neurohybrid_solve::sensitivity::{SquaredMisfit, gradient};
use neurohybrid_solve::{Problem, SaveAt};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_system::{OdeSystem, Vjp};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::cohort::{Cohort, Subject};
use crate::connectome::Brain;
use crate::error::{AlzheimerError, Result};
use crate::fit::{EarlyData, SubjectFit, early_data, from_free, joint_transforms, to_free};
use crate::models::NetworkFkpp;
use crate::residual::LoadScaled;
use crate::simulate::{adjoint, controller};

/// The parallel hybrid system.
pub type ParallelHybrid = Parallel<NetworkFkpp, LoadScaled>;
/// The series hybrid system.
pub type SeriesHybrid = Series<TapeMap, NetworkFkpp>;

/// Training settings. Configuration only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Hidden width of the residual and neural networks.
    pub hidden: usize,
    /// L-BFGS iterations of a joint fit.
    pub max_iterations: usize,
    /// L2 penalty on the network weights (in units of the negative log-likelihood).
    pub weight_decay: f64,
    /// Seed of the weight initialization.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self { hidden: 8, max_iterations: 150, weight_decay: 1.0, seed: 7 }
    }
}

/// What a joint fit found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedModel {
    /// Shared network weights.
    pub weights: Vec<f64>,
    /// Per-subject parameters (natural scale): `[κ, α, s]` (parallel), `[s]` (series), empty
    /// (neural).
    pub subject_params: Vec<Vec<f64>>,
    /// Objective after each L-BFGS iteration.
    pub history: Vec<f64>,
    /// L-BFGS iterations.
    pub iterations: usize,
}

/// The residual network `g(c)`: 1 → hidden → hidden → 1, tanh.
///
/// # Errors
/// Only for a zero width.
pub fn residual_mlp(hidden: usize) -> Result<Mlp> {
    Ok(Mlp::new(&[1, hidden, hidden, 1], Activation::Tanh)?)
}

/// The neural-ODE network: `(c, degree, stage group)` → `dc/dt`.
///
/// # Errors
/// Only for a zero width.
pub fn neural_mlp(hidden: usize) -> Result<Mlp> {
    Ok(Mlp::new(&[3, hidden, hidden, 1], Activation::Tanh)?)
}

/// The series network: `(amyloid, (age − 70)/10)` → `(κ, α)`, softplus output (positive rates).
///
/// # Errors
/// Only for a zero width.
pub fn series_mlp(hidden: usize) -> Result<Mlp> {
    Ok(Mlp::new(&[2, hidden, 2], Activation::Tanh)?.with_output_activation(Activation::Softplus))
}

/// Initial weights with the last layer scaled by `last_scale` (a residual that starts near 0).
fn init_weights(mlp: &Mlp, seed: u64, last_scale: f64) -> Vec<f64> {
    let mut w = initialize(mlp, Init::GlorotUniform, seed);
    let blocks = mlp.param_blocks();
    let layer_of = |name: &str| name.split('.').next().unwrap_or("").to_string();
    let last = blocks.last().map(|b| layer_of(&b.name));
    for b in &blocks {
        if Some(layer_of(&b.name)) == last {
            w[b.offset..b.offset + b.len()].iter_mut().for_each(|v| *v *= last_scale);
        }
    }
    w
}

/// Static region features of the neural ODE: normalized weighted degree and stage group / 4.
pub fn region_features(brain: &Brain) -> Vec<f64> {
    let deg = brain.connectome().graph().degrees();
    let dmax = deg.iter().copied().fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    let mut f = Vec::with_capacity(2 * deg.len());
    for (d, g) in deg.iter().zip(brain.stage_groups()) {
        f.push(d / dmax);
        f.push(g.map_or(0.5, |g| g as f64 / 4.0));
    }
    f
}

/// The parallel hybrid on `brain` with residual network `mlp`.
///
/// # Errors
/// From the composition.
pub fn parallel_system(brain: &Brain, mlp: &Mlp) -> Result<ParallelHybrid> {
    let nn = LoadScaled::new(NetworkRhs::pointwise(mlp, brain.n_regions(), 1)?);
    Ok(Parallel::new(NetworkFkpp::new(brain.diffusion()), nn)?)
}

/// The neural ODE on `brain`.
///
/// # Errors
/// From the network component.
pub fn neural_system(brain: &Brain, mlp: &Mlp) -> Result<NetworkRhs> {
    Ok(NetworkRhs::pointwise(mlp, brain.n_regions(), 1)?.with_features(region_features(brain))?)
}

/// The series hybrid of one subject.
///
/// # Errors
/// From the composition.
pub fn series_system(brain: &Brain, mlp: &Mlp, subject: &Subject) -> Result<SeriesHybrid> {
    let map = TapeMap::new(mlp, &[2])?;
    Ok(Series::new(map, subject.covariates().to_vec(), NetworkFkpp::new(brain.diffusion()))?)
}

/// One subject's term of a joint objective: value, `∂/∂(shared p)`, `∂/∂y0`.
struct Term {
    value: f64,
    dl_dp: Vec<f64>,
    dl_dy0: Vec<f64>,
}

fn adjoint_term<S: Vjp>(
    system: &S,
    y0: Vec<f64>,
    p: Vec<f64>,
    t0: f64,
    data: &EarlyData,
) -> Result<Term> {
    let t1 = *data.times.last().expect("early visits");
    let problem = Problem::new(system, y0, p, (t0, t1));
    let loss =
        SquaredMisfit::new(data.targets.clone()).with_weight(0.5 / (data.sigma * data.sigma));
    let save = SaveAt::Times(data.times.clone());
    let g = gradient(&problem, &Tsit5, &controller(), &save, &loss, &adjoint())?;
    Ok(Term { value: g.value, dl_dp: g.dl_dp, dl_dy0: g.dl_dy0 })
}

/// A subject's value with its gradients (shared block, own block).
type SubjectTerm = (f64, Vec<f64>, Vec<f64>);

/// Joint L-BFGS over `x = [w (m) | q per subject]`; `term(s, w, own, g_w, g_own)` adds subject
/// `s`'s value and writes its gradients.
fn joint_lbfgs<F>(
    x: &mut [f64],
    m: usize,
    q: usize,
    n_subjects: usize,
    config: &TrainConfig,
    progress: &mut dyn FnMut(usize, usize),
    term: F,
) -> Result<(Vec<f64>, usize)>
where
    F: Fn(usize, &[f64], &[f64], &mut [f64], &mut [f64]) -> Result<f64> + Sync,
{
    let lbfgs = Lbfgs {
        max_iters: config.max_iterations,
        grad_tol: 1e-6,
        f_tol: 1e-10,
        ..Lbfgs::default()
    };
    let mut history = Vec::new();
    let mut last_good = f64::INFINITY;
    let mut evaluations = 0;
    let report = lbfgs.minimize(x, |x, g| {
        evaluations += 1;
        progress(evaluations.min(config.max_iterations), config.max_iterations);
        let (w, own) = x.split_at(m);
        let parts: Vec<Result<SubjectTerm>> = (0..n_subjects)
            .into_par_iter()
            .map(|s| {
                let (mut gw, mut go) = (vec![0.0; m], vec![0.0; q]);
                let v = term(s, w, &own[s * q..(s + 1) * q], &mut gw, &mut go)?;
                Ok((v, gw, go))
            })
            .collect();
        g.fill(0.0);
        let mut value = 0.5 * config.weight_decay * w.iter().map(|v| v * v).sum::<f64>();
        for (gi, wi) in g[..m].iter_mut().zip(w) {
            *gi = config.weight_decay * wi;
        }
        for (s, part) in parts.into_iter().enumerate() {
            match part {
                Ok((v, gw, go)) => {
                    value += v;
                    g[..m].iter_mut().zip(&gw).for_each(|(a, b)| *a += b);
                    g[m + s * q..m + (s + 1) * q].copy_from_slice(&go);
                }
                // A trial point where a solve fails is "too far" for the line search.
                Err(_) => return f64::INFINITY,
            }
        }
        if value < last_good {
            last_good = value;
            history.push(value);
        }
        value
    })?;
    progress(config.max_iterations, config.max_iterations);
    Ok((history, report.iterations))
}

/// Trains the parallel hybrid: residual weights shared by the cohort, `κ, α, s` per subject
/// (started from the mechanistic fits `mech`, seeds fixed at theirs).
///
/// # Errors
/// A failed composition, or a failed solve at the starting point.
pub fn train_parallel(
    cohort: &Cohort,
    mech: &[SubjectFit],
    config: &TrainConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<TrainedModel> {
    let brain = &cohort.brain;
    let n = brain.n_regions();
    let obs = &cohort.config.observation;
    let mlp = residual_mlp(config.hidden)?;
    let proto = parallel_system(brain, &mlp)?;
    let systems: Vec<Mutex<ParallelHybrid>> =
        cohort.subjects.iter().map(|_| Mutex::new(proto.clone())).collect();
    let data: Vec<EarlyData> = cohort.subjects.iter().map(|s| early_data(s, obs)).collect();
    let m = mlp.n_params();
    let mut x = init_weights(&mlp, config.seed, 0.01);
    for f in mech {
        x.extend(to_free(&joint_transforms(), &[f.params[0], f.params[1], f.seed_amount])?);
    }
    let (history, iterations) =
        joint_lbfgs(&mut x, m, 3, cohort.subjects.len(), config, progress, |s, w, z, gw, gz| {
            let sys = systems[s].lock().map_err(|_| poisoned())?;
            let (kappa, alpha, amount) = (z[0].exp(), z[1].exp(), z[2].exp());
            let mut p = vec![kappa, alpha];
            p.extend_from_slice(w);
            let mut y0 = vec![0.0; n];
            y0[mech[s].seed_region] = amount;
            let t = adjoint_term(&*sys, y0, p, 0.0, &data[s])?;
            gw.copy_from_slice(&t.dl_dp[2..]);
            gz[0] = t.dl_dp[0] * kappa;
            gz[1] = t.dl_dp[1] * alpha;
            gz[2] = t.dl_dy0[mech[s].seed_region] * amount;
            Ok(t.value)
        })?;
    let subject_params =
        x[m..].chunks(3).map(|z| from_free(&joint_transforms(), z).0.to_vec()).collect();
    Ok(TrainedModel { weights: x[..m].to_vec(), subject_params, history, iterations })
}

/// Trains the neural ODE: shared weights, each subject started from its observed first visit.
///
/// # Errors
/// A failed composition, or a failed solve at the starting point.
pub fn train_neural(
    cohort: &Cohort,
    config: &TrainConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<TrainedModel> {
    let brain = &cohort.brain;
    let obs = &cohort.config.observation;
    let mlp = neural_mlp(config.hidden)?;
    let proto = neural_system(brain, &mlp)?;
    let systems: Vec<Mutex<NetworkRhs>> =
        cohort.subjects.iter().map(|_| Mutex::new(proto.clone())).collect();
    let starts: Vec<(f64, Vec<f64>, EarlyData)> =
        cohort.subjects.iter().map(|s| neural_start(s, obs)).collect();
    let m = mlp.n_params();
    let mut x = init_weights(&mlp, config.seed, 0.1);
    let (history, iterations) =
        joint_lbfgs(&mut x, m, 0, cohort.subjects.len(), config, progress, |s, w, _, gw, _| {
            let sys = systems[s].lock().map_err(|_| poisoned())?;
            let (t0, y0, data) = &starts[s];
            let t = adjoint_term(&*sys, y0.clone(), w.to_vec(), *t0, data)?;
            gw.copy_from_slice(&t.dl_dp);
            Ok(t.value)
        })?;
    let subject_params = vec![Vec::new(); cohort.subjects.len()];
    Ok(TrainedModel { weights: x, subject_params, history, iterations })
}

/// The neural ODE's start (first visit, clipped at 0) and its targets (the other early visits).
pub(crate) fn neural_start(
    subject: &Subject,
    obs: &crate::ObservationModel,
) -> (f64, Vec<f64>, EarlyData) {
    let n = subject.n_regions();
    let c = subject.observed_concentration(obs);
    let y0: Vec<f64> = c[..n].iter().map(|v| v.max(0.0)).collect();
    let k = subject.n_early.max(2);
    let data = EarlyData {
        times: subject.times[1..k].to_vec(),
        targets: c[n..k * n].to_vec(),
        sigma: obs.concentration_sd(),
    };
    (subject.times[0], y0, data)
}

/// Trains the series hybrid: `(κ, α) = h(covariates; w)` shared, seeded amount per subject
/// (seed regions from the mechanistic fits).
///
/// # Errors
/// A failed composition, or a failed solve at the starting point.
pub fn train_series(
    cohort: &Cohort,
    mech: &[SubjectFit],
    config: &TrainConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<TrainedModel> {
    let brain = &cohort.brain;
    let n = brain.n_regions();
    let obs = &cohort.config.observation;
    let mlp = series_mlp(config.hidden)?;
    let systems: Vec<Mutex<SeriesHybrid>> = cohort
        .subjects
        .iter()
        .map(|s| series_system(brain, &mlp, s).map(Mutex::new))
        .collect::<Result<_>>()?;
    let data: Vec<EarlyData> = cohort.subjects.iter().map(|s| early_data(s, obs)).collect();
    let m = mlp.n_params();
    let mut x = init_weights(&mlp, config.seed, 0.1);
    for f in mech {
        x.push(f.seed_amount.ln());
    }
    let series_cfg = TrainConfig { weight_decay: 0.01 * config.weight_decay, ..config.clone() };
    let (history, iterations) = joint_lbfgs(
        &mut x,
        m,
        1,
        cohort.subjects.len(),
        &series_cfg,
        progress,
        |s, w, z, gw, gz| {
            let sys = systems[s].lock().map_err(|_| poisoned())?;
            let amount = z[0].exp();
            let mut y0 = vec![0.0; n];
            y0[mech[s].seed_region] = amount;
            let t = adjoint_term(&*sys, y0, w.to_vec(), 0.0, &data[s])?;
            gw.copy_from_slice(&t.dl_dp);
            gz[0] = t.dl_dy0[mech[s].seed_region] * amount;
            Ok(t.value)
        },
    )?;
    let subject_params = x[m..].iter().map(|z| vec![z.exp()]).collect();
    Ok(TrainedModel { weights: x[..m].to_vec(), subject_params, history, iterations })
}

fn poisoned() -> AlzheimerError {
    AlzheimerError::SolveFailed {
        status: "a worker panicked while holding a subject's system".into(),
    }
}

/// The residual `c · g(c)` of a trained parallel hybrid at concentrations `cs`.
///
/// # Errors
/// From the composition.
pub fn residual_curve(
    brain: &Brain,
    config: &TrainConfig,
    weights: &[f64],
    cs: &[f64],
) -> Result<Vec<f64>> {
    let mlp = residual_mlp(config.hidden)?;
    let nn = LoadScaled::new(NetworkRhs::pointwise(&mlp, brain.n_regions(), 1)?);
    let mut out = Vec::with_capacity(cs.len());
    let n = brain.n_regions();
    let mut y = vec![0.0; n];
    let mut dy = vec![0.0; n];
    for &c in cs {
        y.fill(c);
        nn.rhs(0.0, &y, weights, &mut dy);
        out.push(dy[0]);
    }
    Ok(out)
}
