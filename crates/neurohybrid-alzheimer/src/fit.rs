//! The inverse problem: per-subject `κ`, `α` and seed from the early visits.
//!
//! The objective is the Gaussian negative log-likelihood of the observed concentrations at the
//! early visits, `½ Σ (c_i(t_k) − ĉ_{k,i})² / σ²`, minimized over logit-transformed `(κ, α, s)`
//! (logit transforms keep the rates in `(0, 5)` /yr and the seeded amount in `(0, 1)`, and
//! make the problem better scaled) by L-BFGS with strong-Wolfe line search. Gradients come from the discrete adjoint
//! of the Tsit5 solve (the exact derivative of the computed trajectory, so line searches see
//! a consistent objective; Sandu 2006). The seed region is discrete: the candidates with the
//! highest concentration at the first visit are each fitted and the best kept. Uncertainty:
//! the Laplace approximation of `neurohybrid-hybrid`'s [`Calibrator`] (Gauss–Newton Hessian
//! from forward sensitivities) at the L-BFGS optimum, with 95 % intervals mapped back
//! through the log transform.
//!
//! The same machinery fits any system whose parameters start with `[κ, α]` — the hybrid's
//! parameters after them (network weights) are passed as a frozen tail.

use neurohybrid_hybrid::{Calibrator, OdeResiduals, Transform};
use neurohybrid_nn::optim::Lbfgs;
use neurohybrid_solve::sensitivity::{SquaredMisfit, gradient};
use neurohybrid_solve::{PiController, Problem};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_system::{Jvp, Vjp};
use serde::{Deserialize, Serialize};

use crate::cohort::Subject;
use crate::error::Result;
use crate::observe::ObservationModel;
use crate::simulate::{adjoint, controller};

/// Fit settings. Configuration only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    /// Candidate seed regions (indices).
    pub seed_candidates: Vec<usize>,
    /// How many candidates (highest first-visit concentration first) are fitted.
    pub seed_tries: usize,
    /// L-BFGS iterations per candidate.
    pub max_iterations: usize,
    /// Starting `[κ, α, s]`.
    pub start: [f64; 3],
    /// Whether to compute Laplace intervals (costs one forward-sensitivity calibration).
    pub intervals: bool,
}

impl FitConfig {
    /// Defaults for the given candidate seeds.
    pub fn new(seed_candidates: Vec<usize>) -> Self {
        Self {
            seed_candidates,
            seed_tries: 2,
            max_iterations: 80,
            start: [0.1, 0.5, 0.1],
            intervals: true,
        }
    }
}

/// A point estimate with its Laplace 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The estimate.
    pub value: f64,
    /// Standard deviation (delta method).
    pub std: f64,
    /// 95 % interval.
    pub ci95: (f64, f64),
}

/// One subject's fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectFit {
    /// `[κ, α]` (1/yr).
    pub params: [f64; 2],
    /// The chosen seed region.
    pub seed_region: usize,
    /// The seeded amount at `t = 0`.
    pub seed_amount: f64,
    /// Final objective `½ Σ r²`.
    pub cost: f64,
    /// L-BFGS iterations over all candidates.
    pub iterations: usize,
    /// Objective + gradient evaluations over all candidates.
    pub evaluations: usize,
    /// Laplace estimates of `κ`, `α`, `s` (when asked for and identifiable).
    pub intervals: Option<[Estimate; 3]>,
}

impl SubjectFit {
    /// Initial state of the fitted model.
    pub fn y0(&self, n: usize) -> Vec<f64> {
        let mut y0 = vec![0.0; n];
        y0[self.seed_region] = self.seed_amount;
        y0
    }
}

/// Early-visit data of a subject: times, targets (concentrations) and their σ.
pub(crate) struct EarlyData {
    pub times: Vec<f64>,
    pub targets: Vec<f64>,
    pub sigma: f64,
}

pub(crate) fn early_data(subject: &Subject, obs: &ObservationModel) -> EarlyData {
    let n = subject.n_regions();
    let k = subject.n_early;
    let targets = subject.observed_concentration(obs)[..k * n].to_vec();
    EarlyData { times: subject.times[..k].to_vec(), targets, sigma: obs.concentration_sd() }
}

/// The transforms of `(κ, α, s)`: rates in `(0, 5)` /yr, the seeded amount in `(0, 1)` (the
/// carrying capacity; without the bound a misspecified model can trade an impossible seed of
/// several capacities against a smaller α). The rate bound (ten times any published regional
/// rate) keeps line-search trial points from rates so large that the explicit solver crawls.
pub fn transforms() -> [Transform; 3] {
    let rate = Transform::Logit { lo: 0.0, hi: 5.0 };
    [rate, rate, Transform::Logit { lo: 0.0, hi: 1.0 }]
}

/// The transforms of the joint cohort fits (`train`): log rates, logit seed. The joint fits
/// start from the mechanistic optimum, so they need no guard against huge trial rates, and
/// measured on the 24-subject protocol the bounded rates of [`transforms`] made the joint
/// L-BFGS converge much worse (hybrid held-out RMSE 0.27 vs 0.055 with log rates).
pub fn joint_transforms() -> [Transform; 3] {
    [Transform::Log, Transform::Log, Transform::Logit { lo: 0.0, hi: 1.0 }]
}

/// `(κ, α, s)` from the free parameters `z` through `t`, and `dθ/dz`.
pub(crate) fn from_free(t: &[Transform; 3], z: &[f64]) -> ([f64; 3], [f64; 3]) {
    (std::array::from_fn(|i| t[i].to_param(z[i])), std::array::from_fn(|i| t[i].derivative(z[i])))
}

/// Free parameters of `(κ, α, s)` through `t`.
pub(crate) fn to_free(t: &[Transform; 3], theta: &[f64; 3]) -> Result<Vec<f64>> {
    Ok((0..3).map(|i| t[i].to_free(theta[i])).collect::<neurohybrid_hybrid::Result<_>>()?)
}

/// Objective and its gradient in the free parameters `z` for a fixed seed region.
fn objective<S: Vjp>(
    system: &S,
    tail: &[f64],
    seed: usize,
    data: &EarlyData,
    z: &[f64],
    grad: &mut [f64],
) -> Result<f64> {
    let n = system.n_states();
    let ([kappa, alpha, s], d) = from_free(&transforms(), z);
    let mut p = vec![kappa, alpha];
    p.extend_from_slice(tail);
    let mut y0 = vec![0.0; n];
    y0[seed] = s;
    let t1 = *data.times.last().expect("at least one early visit");
    let problem = Problem::new(system, y0, p, (0.0, t1));
    let loss =
        SquaredMisfit::new(data.targets.clone()).with_weight(0.5 / (data.sigma * data.sigma));
    let save = neurohybrid_solve::SaveAt::Times(data.times.clone());
    let g = gradient(&problem, &Tsit5, &controller(), &save, &loss, &adjoint())?;
    grad[0] = g.dl_dp[0] * d[0];
    grad[1] = g.dl_dp[1] * d[1];
    grad[2] = g.dl_dy0[seed] * d[2];
    Ok(g.value)
}

/// Fits `[κ, α]` and the seed of `system` (parameters `[κ, α, tail…]`) to a subject's early
/// visits.
///
/// # Errors
/// A failed solve at the starting point, or a failed Laplace step.
pub fn fit_subject<S: Vjp + Jvp>(
    system: &S,
    tail: &[f64],
    subject: &Subject,
    obs: &ObservationModel,
    config: &FitConfig,
) -> Result<SubjectFit> {
    let data = early_data(subject, obs);
    let n = system.n_states();
    let first = &data.targets[..n];
    let mut cands = config.seed_candidates.clone();
    cands.sort_by(|&a, &b| first[b].total_cmp(&first[a]));
    cands.truncate(config.seed_tries.max(1));
    let lbfgs = Lbfgs {
        max_iters: config.max_iterations,
        grad_tol: 1e-5,
        f_tol: 1e-10,
        ..Lbfgs::default()
    };
    let mut best: Option<(f64, usize, Vec<f64>)> = None;
    let (mut iterations, mut evaluations) = (0, 0);
    for &seed in &cands {
        let mut z = to_free(&transforms(), &config.start)?;
        let report = lbfgs.minimize(&mut z, |z, g| {
            objective(system, tail, seed, &data, z, g).unwrap_or(f64::INFINITY)
        })?;
        iterations += report.iterations;
        evaluations += report.evaluations;
        if best.as_ref().is_none_or(|b| report.value < b.0) {
            best = Some((report.value, seed, z));
        }
    }
    let (cost, seed_region, z) = best.expect("at least one candidate");
    let (theta, _) = from_free(&transforms(), &z);
    let intervals = if config.intervals {
        laplace(system, tail, seed_region, &data, &theta).ok()
    } else {
        None
    };
    Ok(SubjectFit {
        params: [theta[0], theta[1]],
        seed_region,
        seed_amount: theta[2],
        cost,
        iterations,
        evaluations,
        intervals,
    })
}

/// Laplace intervals at `theta = [κ, α, s]` through the hybrid crate's [`Calibrator`].
fn laplace<S: Jvp>(
    system: &S,
    tail: &[f64],
    seed: usize,
    data: &EarlyData,
    theta: &[f64; 3],
) -> Result<[Estimate; 3]> {
    let n = system.n_states();
    let mut p = vec![theta[0], theta[1]];
    p.extend_from_slice(tail);
    let mut y0 = vec![0.0; n];
    y0[seed] = theta[2];
    let t1 = *data.times.last().expect("at least one early visit");
    let problem = Problem::new(system, y0, p, (0.0, t1));
    let ctrl: PiController = controller();
    let model = OdeResiduals::new(problem, Tsit5, ctrl, data.times.clone(), data.targets.clone())?
        .sigma(data.sigma)?
        .calibrate(vec![0, 1], vec![seed])?;
    let cal = Calibrator { max_iterations: 10, ..Calibrator::new(transforms().to_vec()) };
    let c = cal.calibrate(&model, theta)?;
    Ok(std::array::from_fn(|i| Estimate { value: c.theta[i], std: c.std[i], ci95: c.ci95[i] }))
}
