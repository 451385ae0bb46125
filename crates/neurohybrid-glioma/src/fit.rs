//! The inverse problem: estimate `D_w`, `ρ` and the seed centre from a few scans, with
//! Laplace intervals.
//!
//! Residuals are the observed densities of the training scans minus the model's, over every
//! active cell, divided by the imaging noise σ ([`neurohybrid_hybrid::OdeResiduals`], whose
//! Jacobian comes from forward sensitivities through the seed and treatment impulses).
//! [`neurohybrid_hybrid::Calibrator`] minimizes `½‖r‖²` plus log-normal priors on `D_w` and
//! `ρ` (the literature ranges, REFERENCES.md: D 0.02–1.5 mm²/day, ρ 0.002–0.2 /day, taken as
//! ±2 standard deviations in log space) by L-BFGS in `(ln D_w, ln ρ, x_s)`, and takes the
//! Laplace approximation at the optimum with the Gauss–Newton Hessian. The noise level is
//! *estimated* from the residuals (`Noise::Estimated`), so a misspecified model gets honestly
//! wider intervals than the imaging noise alone would give.

use neurohybrid_hybrid::{Calibration, Calibrator, Noise, OdeResiduals, Prior, Transform};
use neurohybrid_solve::{PiController, Problem};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_system::Sum;

use crate::anatomy::Anatomy;
use crate::config::Scenario;
use crate::error::Result;
use crate::metrics::equivalent_radius;
use crate::model::{PARAM_SEED, T_START, add_impulses, parts};
use crate::report::{Estimate, RecoveredParameters};

/// Literature prior ranges `(lo, hi)`, read as the ±2σ band of a log-normal prior.
pub const D_W_RANGE: (f64, f64) = (0.02, 1.5);
/// See [`D_W_RANGE`] (1/day).
pub const RHO_RANGE: (f64, f64) = (0.002, 0.2);

fn log_prior((lo, hi): (f64, f64)) -> Prior {
    Prior { mean: 0.5 * (lo.ln() + hi.ln()), std: 0.25 * (hi.ln() - lo.ln()) }
}

/// A starting point from the data: the seed at the density-weighted centroid of the first
/// scan, the front speed from the growth of the equivalent radius between the first and last
/// training scans (`v = 2√(D ρ)`), `ρ` at its prior median, `D_w = v² / (4ρ)`.
pub fn initial_guess(
    anatomy: &Anatomy,
    scenario: &Scenario,
    days: &[f64],
    data: &[Vec<f64>],
) -> Vec<f64> {
    let centres = anatomy.centres();
    let dim = anatomy.grid.dim();
    let first = &data[0];
    let thr = scenario.imaging.flair_threshold;
    let (mut w, mut x) = (0.0, [0.0; 3]);
    for (a, &c) in first.iter().enumerate() {
        if c >= thr {
            w += c;
            (0..3).for_each(|k| x[k] += c * centres[a][k]);
        }
    }
    let seed: Vec<f64> = if w > 0.0 {
        (0..dim).map(|k| x[k] / w).collect()
    } else {
        scenario.seed.location_mm.clone()
    };
    let rho0 = (RHO_RANGE.0 * RHO_RANGE.1).sqrt();
    let mut d0 = scenario.tumor.d_w.clamp(D_W_RANGE.0, D_W_RANGE.1);
    if days.len() >= 2 {
        let mask = |c: &[f64]| c.iter().map(|&v| v >= thr).collect::<Vec<bool>>();
        let r0 = equivalent_radius(anatomy, &mask(first));
        let r1 = equivalent_radius(anatomy, &mask(data.last().expect("two scans")));
        let v = (r1 - r0) / (days[days.len() - 1] - days[0]);
        if v > 0.0 {
            d0 = (v * v / (4.0 * rho0)).clamp(D_W_RANGE.0, D_W_RANGE.1);
        }
    }
    let mut theta = vec![d0, rho0];
    theta.extend(seed);
    theta
}

/// Fits `[D_w, ρ, seed…]` of the plain model to observed densities `data` (one active-cell
/// vector per day of `days`), starting from `theta0`.
///
/// # Errors
/// Solve and calibration errors (e.g. a non-identifiable problem).
pub fn fit_mechanistic(
    scenario: &Scenario,
    anatomy: &Anatomy,
    days: &[f64],
    data: &[Vec<f64>],
    theta0: &[f64],
    max_iterations: usize,
) -> Result<(Calibration, RecoveredParameters)> {
    let (diff, react) = parts(scenario, anatomy, None)?;
    let sys = Sum::new(diff, react)?;
    let n = anatomy.n();
    let mut problem =
        Problem::new(sys, vec![0.0; n], theta0.to_vec(), (T_START, days[days.len() - 1]));
    add_impulses(&mut problem, scenario, anatomy, PARAM_SEED);
    let flat: Vec<f64> = data.iter().flatten().copied().collect();
    let ctrl =
        PiController::new(scenario.solver.rtol, scenario.solver.atol).with_max_steps(100_000);
    let sigma = scenario.imaging.noise_std.max(1e-3);
    let residuals = OdeResiduals::new(problem, Tsit5, ctrl, days.to_vec(), flat)?.sigma(sigma)?;
    let dim = anatomy.grid.dim();
    let mut transforms = vec![Transform::Log, Transform::Log];
    transforms.extend(std::iter::repeat_n(Transform::Identity, dim));
    let mut priors = vec![log_prior(D_W_RANGE), log_prior(RHO_RANGE)];
    priors.extend(std::iter::repeat_n(Prior::flat(), dim));
    let mut cal = Calibrator::new(transforms).with_priors(priors).with_noise(Noise::Estimated);
    cal.max_iterations = max_iterations;
    cal.gtol = 1e-6;
    cal.ftol = 1e-10;
    let c = cal.calibrate(&residuals, theta0)?;
    let est = |i: usize, truth: Option<f64>| Estimate {
        value: c.theta[i],
        std: c.std[i],
        ci95: [c.ci95[i].0, c.ci95[i].1],
        truth,
    };
    let rec = RecoveredParameters {
        d_w: est(0, None),
        rho: est(1, None),
        seed_mm: (0..dim).map(|k| est(2 + k, None)).collect(),
        front_speed_mm_per_day: 2.0 * (c.theta[0] * c.theta[1]).sqrt(),
        sigma: sigma * c.noise_scale,
        iterations: c.iterations,
        converged: c.converged,
    };
    Ok((c, rec))
}

/// Attaches the truth `[D_w, ρ, seed…]` to recovered parameters.
pub fn with_truth(mut rec: RecoveredParameters, truth: &[f64]) -> RecoveredParameters {
    rec.d_w.truth = Some(truth[0]);
    rec.rho.truth = Some(truth[1]);
    for (k, e) in rec.seed_mm.iter_mut().enumerate() {
        e.truth = truth.get(2 + k).copied();
    }
    rec
}
