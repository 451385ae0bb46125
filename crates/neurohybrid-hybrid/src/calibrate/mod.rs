//! Calibration of a few mechanistic parameters (and initial-state components) from noisy
//! observations, with Laplace uncertainty.
//!
//! The model is a vector of weighted residuals `r(θ)` ([`ResidualModel`], already divided by
//! the noise σ), so the negative log-likelihood is `½‖r(θ)‖²` (Gaussian noise). [`Calibrator`]
//! minimizes it — plus optional Gaussian priors — with L-BFGS in a transformed, unconstrained
//! space `z = T(θ)` ([`Transform`]), then approximates the posterior by a Gaussian at the optimum
//! (Laplace) with the Gauss–Newton Hessian `H = J_zᵀJ_z + P` (`J_z` the Jacobian in `z`, `P` the
//! prior precision). Working in `z` keeps the optimizer away from impossible values (a negative
//! diffusivity) and makes the Gaussian approximation better for positive, skewed parameters;
//! intervals are mapped back through `T⁻¹`, so they respect the constraints.
//!
//! [`OdeResiduals`] is the residual model of an ODE `Problem` observed at fixed times, with
//! the Jacobian from forward sensitivities (one tangent column per calibrated quantity).

use neurohybrid_nn::optim::{Lbfgs, LbfgsStatus, StrongWolfe};
use serde::{Deserialize, Serialize};

use crate::error::{HybridError, Result};

mod ode;

pub use ode::{OdeResiduals, TangentSystem};

/// The two-sided 97.5 % quantile of the standard normal distribution.
const Z975: f64 = 1.959_963_984_540_054;

/// A bijection between a constrained parameter `θ` and an unconstrained `z = T(θ)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Transform {
    /// `z = θ`.
    Identity,
    /// `z = ln θ`, for `θ > 0` (diffusivities, rates, noise levels).
    Log,
    /// `z = ln((θ − lo)/(hi − θ))`, for `lo < θ < hi` (fractions, bounded coefficients).
    Logit {
        /// Lower bound (exclusive).
        lo: f64,
        /// Upper bound (exclusive).
        hi: f64,
    },
}

impl Transform {
    /// `z = T(θ)`; `Err` when `θ` lies outside the transform's domain.
    pub fn to_free(&self, theta: f64) -> Result<f64> {
        let bad = |message: String| HybridError::InvalidConfig {
            what: "parameter for its transform".into(),
            message,
        };
        match *self {
            Transform::Identity if theta.is_finite() => Ok(theta),
            Transform::Identity => Err(bad(format!("{theta} is not finite"))),
            Transform::Log if theta > 0.0 && theta.is_finite() => Ok(theta.ln()),
            Transform::Log => Err(bad(format!("{theta} must be positive for a Log transform"))),
            Transform::Logit { lo, hi } if lo < theta && theta < hi => {
                Ok(((theta - lo) / (hi - theta)).ln())
            }
            Transform::Logit { lo, hi } => {
                Err(bad(format!("{theta} must lie strictly inside ({lo}, {hi})")))
            }
        }
    }

    /// `θ = T⁻¹(z)`.
    pub fn to_param(&self, z: f64) -> f64 {
        match *self {
            Transform::Identity => z,
            Transform::Log => z.exp(),
            Transform::Logit { lo, hi } => lo + (hi - lo) * sigmoid(z),
        }
    }

    /// `dθ/dz` at `z`.
    pub fn derivative(&self, z: f64) -> f64 {
        match *self {
            Transform::Identity => 1.0,
            Transform::Log => z.exp(),
            Transform::Logit { lo, hi } => {
                let s = sigmoid(z);
                (hi - lo) * s * (1.0 - s)
            }
        }
    }

    fn validate(&self) -> Result<()> {
        match *self {
            Transform::Logit { lo, hi } if !(lo.is_finite() && hi.is_finite() && lo < hi) => {
                Err(HybridError::InvalidConfig {
                    what: "Logit transform".into(),
                    message: format!("bounds ({lo}, {hi}) must be finite with lo < hi"),
                })
            }
            _ => Ok(()),
        }
    }
}

/// The logistic function, written so neither branch overflows.
pub(crate) fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Weighted residuals `r(θ)` (already divided by the noise σ): the negative log-likelihood of
/// Gaussian noise is `½‖r‖²`.
pub trait ResidualModel {
    /// Number of calibrated quantities.
    fn n_params(&self) -> usize;
    /// Number of residuals.
    fn n_residuals(&self) -> usize;
    /// `r = r(θ)` (overwritten).
    fn residuals(&self, theta: &[f64], r: &mut [f64]) -> Result<()>;
    /// `r = r(θ)` and `jac = ∂r/∂θ` (`n_residuals × n_params`, row-major), both overwritten.
    fn jacobian(&self, theta: &[f64], r: &mut [f64], jac: &mut [f64]) -> Result<()>;
}

/// A Gaussian prior `z ~ N(mean, std²)` on one parameter in the *transformed* space
/// `z = T(θ)`: with [`Transform::Log`] it is a log-normal prior on `θ` (`mean = ln median`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prior {
    /// Mean of `z`.
    pub mean: f64,
    /// Standard deviation of `z`; `f64::INFINITY` means no prior on this parameter.
    pub std: f64,
}

impl Prior {
    /// No prior information (infinite variance).
    pub fn flat() -> Self {
        Prior { mean: 0.0, std: f64::INFINITY }
    }
}

/// How the noise level behind the residuals is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Noise {
    /// The σ the residuals were divided by is the true one.
    Known,
    /// The residuals were divided by a guess `σ₀`; the true level `s·σ₀` is estimated from the
    /// residual variance at the optimum, `s² = ‖r‖² / (N − p)` (the unbiased estimate of linear
    /// regression), and the data term is weighted by `1/s²`.
    Estimated,
}

/// Maximum a-posteriori fit with a Laplace approximation. Configuration only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibrator {
    /// One transform per parameter; empty means all [`Transform::Identity`].
    pub transforms: Vec<Transform>,
    /// Most L-BFGS iterations.
    pub max_iterations: usize,
    /// Stop when the infinity norm of the gradient in the transformed space is at most this.
    pub gtol: f64,
    /// Also stop when an iteration lowers the objective by at most `ftol · max(1, |f|)`. The
    /// objective is a log-posterior, whose meaningful scale is 1 (a change of ½ is one σ), and
    /// residuals computed by an adaptive solver carry its tolerance as noise, so a gradient
    /// test alone may never be met; the default 1e-12 is far below any statistical effect.
    pub ftol: f64,
    /// Gaussian priors in the transformed space (one per parameter), or none.
    pub priors: Option<Vec<Prior>>,
    /// Known or estimated noise level.
    pub noise: Noise,
}

impl Default for Calibrator {
    fn default() -> Self {
        Calibrator {
            transforms: Vec::new(),
            max_iterations: 200,
            gtol: 1e-9,
            ftol: 1e-12,
            priors: None,
            noise: Noise::Known,
        }
    }
}

/// What [`Calibrator::calibrate`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The estimate `θ̂ = T⁻¹(ẑ)`.
    pub theta: Vec<f64>,
    /// Standard deviations of `θ` by the delta method, `|dθ/dz| · std(z)`.
    pub std: Vec<f64>,
    /// 95 % intervals `T⁻¹(ẑ ± 1.96 std(z))`: Gaussian in the transformed space, so a `Log`
    /// parameter gets a positive, asymmetric interval.
    pub ci95: Vec<(f64, f64)>,
    /// Covariance of `θ` by the delta method, `D H⁻¹ D` with `D = diag(dθ/dz)` (row-major).
    pub covariance: Vec<f64>,
    /// Covariance of `z` (`H⁻¹`, row-major): the Laplace posterior itself.
    pub covariance_free: Vec<f64>,
    /// The minimized objective `½‖r‖²/s² + ½ Σ ((z − μ)/τ)²`.
    pub cost: f64,
    /// L-BFGS iterations.
    pub iterations: usize,
    /// Whether L-BFGS met its gradient tolerance (or stalled in the line search with the
    /// gradient already at `√gtol`, the precision a residual computed by a solver allows).
    pub converged: bool,
    /// Why L-BFGS stopped.
    pub status: LbfgsStatus,
    /// The noise scale factor `s` (1 with [`Noise::Known`]).
    pub noise_scale: f64,
}

/// Internal: the objective in `z` with its data weight.
struct Objective<'a> {
    model: &'a dyn ResidualModel,
    transforms: Vec<Transform>,
    priors: Vec<Prior>,
    weight: f64,
    /// `Some(N − p)`: minimize the σ-profiled objective `((N − p)/2)·ln‖r‖² + prior` instead
    /// of `½‖r‖²·weight + prior` (estimated noise with priors, see `Calibrator::calibrate`).
    profile_dof: Option<f64>,
    theta: Vec<f64>,
    r: Vec<f64>,
    jac: Vec<f64>,
}

impl Objective<'_> {
    fn theta_of(&mut self, z: &[f64]) {
        for ((t, tr), &zi) in self.theta.iter_mut().zip(&self.transforms).zip(z) {
            *t = tr.to_param(zi);
        }
    }

    fn prior_term(&self, z: &[f64], grad: Option<&mut [f64]>) -> f64 {
        let mut v = 0.0;
        let mut g = grad;
        for (i, (pr, &zi)) in self.priors.iter().zip(z).enumerate() {
            if pr.std.is_finite() {
                let d = (zi - pr.mean) / pr.std;
                v += 0.5 * d * d;
                if let Some(g) = g.as_deref_mut() {
                    g[i] += d / pr.std;
                }
            }
        }
        v
    }

    /// Value and gradient in `z` (gradient overwritten).
    fn value_grad(&mut self, z: &[f64], grad: &mut [f64]) -> Result<f64> {
        self.theta_of(z);
        let theta = std::mem::take(&mut self.theta);
        let res = self.model.jacobian(&theta, &mut self.r, &mut self.jac);
        self.theta = theta;
        res?;
        let p = z.len();
        grad.fill(0.0);
        let mut v = 0.0;
        for (row, &ri) in self.jac.chunks_exact(p).zip(&self.r) {
            v += ri * ri;
            for (g, &j) in grad.iter_mut().zip(row) {
                *g += j * ri;
            }
        }
        // d/dz [(dof/2) ln‖r‖²] = (dof/‖r‖²)·Jᵀr: the weighted gradient with 1/s² = dof/‖r‖².
        let (weight, data_term) = match self.profile_dof {
            None => (self.weight, 0.5 * self.weight * v),
            Some(dof) => {
                let rss = v.max(f64::MIN_POSITIVE);
                (dof / rss, 0.5 * dof * rss.ln())
            }
        };
        for ((g, tr), &zi) in grad.iter_mut().zip(&self.transforms).zip(z) {
            *g *= weight * tr.derivative(zi);
        }
        Ok(data_term + self.prior_term(z, Some(grad)))
    }
}

impl Calibrator {
    /// Calibrator with the given transforms, otherwise default.
    pub fn new(transforms: Vec<Transform>) -> Self {
        Calibrator { transforms, ..Calibrator::default() }
    }

    /// Gaussian priors in the transformed space.
    pub fn with_priors(mut self, priors: Vec<Prior>) -> Self {
        self.priors = Some(priors);
        self
    }

    /// Known or estimated noise.
    pub fn with_noise(mut self, noise: Noise) -> Self {
        self.noise = noise;
        self
    }

    /// Fit `model` from `theta0` and return the estimate with its Laplace uncertainty.
    ///
    /// `Err` for misuse (lengths, `theta0` outside a transform's domain, a failed evaluation at
    /// `theta0`) and when the Gauss–Newton Hessian at the optimum is not positive definite (a
    /// parameter the data do not determine and no prior constrains:
    /// [`HybridError::NotIdentifiable`]). Failed evaluations at trial points of the line search
    /// (a solver that diverges for an extreme trial value) only shorten the step.
    pub fn calibrate(&self, model: &dyn ResidualModel, theta0: &[f64]) -> Result<Calibration> {
        let p = model.n_params();
        let nr = model.n_residuals();
        check_len("theta0", p, theta0.len())?;
        let transforms = if self.transforms.is_empty() {
            vec![Transform::Identity; p]
        } else {
            self.transforms.clone()
        };
        check_len("transforms", p, transforms.len())?;
        transforms.iter().try_for_each(Transform::validate)?;
        let priors = match &self.priors {
            None => vec![Prior::flat(); p],
            Some(pr) => {
                check_len("priors", p, pr.len())?;
                if let Some(bad) =
                    pr.iter().position(|q| q.std.is_nan() || q.std <= 0.0 || !q.mean.is_finite())
                {
                    return Err(HybridError::InvalidConfig {
                        what: format!("prior {bad}"),
                        message: "std must be positive and mean finite".into(),
                    });
                }
                pr.clone()
            }
        };
        let n_constrained_by_prior = priors.iter().filter(|q| q.std.is_finite()).count();
        if self.noise == Noise::Estimated && nr <= p {
            return Err(HybridError::InvalidConfig {
                what: "noise".into(),
                message: format!("estimating σ needs more residuals ({nr}) than parameters ({p})"),
            });
        }
        let mut z: Vec<f64> =
            theta0.iter().zip(&transforms).map(|(&t, tr)| tr.to_free(t)).collect::<Result<_>>()?;
        let mut obj = Objective {
            model,
            transforms,
            priors,
            weight: 1.0,
            profile_dof: None,
            theta: vec![0.0; p],
            r: vec![0.0; nr],
            jac: vec![0.0; nr * p],
        };
        // Evaluate once at the start so misuse surfaces as the model's own error.
        let mut g = vec![0.0; p];
        obj.value_grad(&z, &mut g)?;

        let lbfgs = Lbfgs {
            max_iters: self.max_iterations,
            grad_tol: self.gtol,
            f_tol: self.ftol,
            line_search: StrongWolfe::default(),
            ..Lbfgs::default()
        };
        // Known noise, or estimated noise without priors: one pass, the optimum of ‖r‖²/s²
        // does not depend on s. Estimated noise with priors: the data weight 1/s² moves the
        // optimum, and the MAP with s² = ‖r‖²/(N − p) is a fixed point. Its condition,
        // (N − p)/‖r‖² · Jᵀr + ∇prior = 0, is exactly the stationarity of the σ-profiled
        // objective ((N − p)/2)·ln‖r‖² + prior, so one L-BFGS pass on that objective replaces
        // the alternation of fits and σ updates (3 passes, 26 iterations on the glioma fit;
        // ADR 0011).
        let dof = (nr - p) as f64;
        let profiled = self.noise == Noise::Estimated && n_constrained_by_prior > 0;
        if profiled {
            obj.profile_dof = Some(dof);
        }
        let report = lbfgs.minimize(&mut z, |zz, gg| obj.value_grad(zz, gg).unwrap_or(f64::NAN))?;
        let iterations = report.iterations;
        let status = report.status;
        obj.profile_dof = None;
        let mut noise_scale = 1.0;
        if self.noise == Noise::Estimated {
            obj.theta_of(&z);
            let theta = obj.theta.clone();
            model.residuals(&theta, &mut obj.r)?;
            let rss: f64 = obj.r.iter().map(|r| r * r).sum();
            let s2 = rss / dof;
            obj.weight = 1.0 / s2;
            noise_scale = s2.sqrt();
        }

        // Laplace approximation at ẑ: Gauss–Newton Hessian in z. GN (not the exact Hessian)
        // is the standard choice for least squares (Bates & Watts 1988, §2.3): positive
        // semidefinite by construction, needs only J, and equals the Fisher information.
        let cost = obj.value_grad(&z, &mut g)?;
        let grad_norm = g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let mut h = vec![0.0; p * p];
        let dz: Vec<f64> = obj.transforms.iter().zip(&z).map(|(t, &zi)| t.derivative(zi)).collect();
        for row in obj.jac.chunks_exact(p) {
            for a in 0..p {
                let ja = row[a] * dz[a];
                for b in 0..p {
                    h[a * p + b] += obj.weight * ja * row[b] * dz[b];
                }
            }
        }
        for (i, pr) in obj.priors.iter().enumerate() {
            if pr.std.is_finite() {
                h[i * p + i] += 1.0 / (pr.std * pr.std);
            }
        }
        let cov_z = spd_inverse(&h, p)?;
        let theta: Vec<f64> =
            obj.transforms.iter().zip(&z).map(|(t, &zi)| t.to_param(zi)).collect();
        let mut std = vec![0.0; p];
        let mut ci95 = vec![(0.0, 0.0); p];
        let mut covariance = vec![0.0; p * p];
        for i in 0..p {
            let sz = cov_z[i * p + i].sqrt();
            std[i] = dz[i].abs() * sz;
            let tr = obj.transforms[i];
            let (a, b) = (tr.to_param(z[i] - Z975 * sz), tr.to_param(z[i] + Z975 * sz));
            ci95[i] = (a.min(b), a.max(b));
            for j in 0..p {
                covariance[i * p + j] = dz[i] * cov_z[i * p + j] * dz[j];
            }
        }
        let converged = status.is_success()
            || (status == LbfgsStatus::LineSearchFailed && grad_norm <= self.gtol.sqrt());
        Ok(Calibration {
            theta,
            std,
            ci95,
            covariance,
            covariance_free: cov_z,
            cost,
            iterations,
            converged,
            status,
            noise_scale,
        })
    }
}

pub(crate) fn check_len(what: &str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(HybridError::LengthMismatch { what: what.into(), expected, got })
    }
}

/// Inverse of a small symmetric positive definite matrix by Cholesky (`p` is the number of
/// calibrated parameters, a handful, so a dense O(p³) factorization is the right tool).
fn spd_inverse(h: &[f64], p: usize) -> Result<Vec<f64>> {
    // Scale to unit diagonal first so the positivity test is relative (parameters may differ
    // by many orders of magnitude in their curvature).
    let d: Vec<f64> = (0..p).map(|i| h[i * p + i]).collect();
    if let Some(parameter) = d.iter().position(|&v| v <= 0.0 || !v.is_finite()) {
        return Err(HybridError::NotIdentifiable { parameter });
    }
    let s: Vec<f64> = d.iter().map(|v| 1.0 / v.sqrt()).collect();
    let mut l = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..=i {
            let mut sum = h[i * p + j] * s[i] * s[j];
            for k in 0..j {
                sum -= l[i * p + k] * l[j * p + k];
            }
            if i == j {
                if sum <= 1e-13 {
                    return Err(HybridError::NotIdentifiable { parameter: i });
                }
                l[i * p + i] = sum.sqrt();
            } else {
                l[i * p + j] = sum / l[j * p + j];
            }
        }
    }
    // Solve L Lᵀ X = I column by column, then undo the scaling.
    let mut inv = vec![0.0; p * p];
    let mut col = vec![0.0; p];
    for c in 0..p {
        for i in 0..p {
            let mut v = if i == c { 1.0 } else { 0.0 };
            for k in 0..i {
                v -= l[i * p + k] * col[k];
            }
            col[i] = v / l[i * p + i];
        }
        for i in (0..p).rev() {
            let mut v = col[i];
            for k in i + 1..p {
                v -= l[k * p + i] * col[k];
            }
            col[i] = v / l[i * p + i];
        }
        for i in 0..p {
            inv[i * p + c] = col[i] * s[i] * s[c];
        }
    }
    Ok(inv)
}
