//! Losses comparing predicted trajectories with observations, and regularizers on the
//! parameter vector.
//!
//! A [`TrajectoryLoss`] sees the predictions at the observation times flattened
//! (`K × n_obs`, row-major, the layout of [`crate::Trajectory::values`]), the targets in the same
//! layout and an optional mask of present values; it returns the value and writes `∂L/∂pred`.
//! Losses with parameters of their own ([`GaussianNll`]'s log σ) take them from a slice the
//! caller appends to the model's parameters, and accumulate their gradient.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::calibrate::sigmoid;
use crate::error::{HybridError, Result};

/// A loss between predictions and observations.
pub trait TrajectoryLoss {
    /// Parameters of the loss itself (e.g. [`GaussianNll`]'s log σ). Default 0.
    fn n_params(&self) -> usize {
        0
    }

    /// The value. `grad_pred` (same length as `pred`) is OVERWRITTEN with `∂L/∂pred` (zero at
    /// masked entries); `grad_params` (length [`n_params`](Self::n_params)) is ACCUMULATED
    /// (`+=`). `mask[i] == false` marks a missing observation, which contributes nothing.
    fn evaluate(
        &self,
        pred: &[f64],
        target: &[f64],
        mask: Option<&[bool]>,
        params: &[f64],
        grad_pred: &mut [f64],
        grad_params: &mut [f64],
    ) -> f64;
}

fn present(mask: Option<&[bool]>, i: usize) -> bool {
    mask.is_none_or(|m| m[i])
}

fn count_present(n: usize, mask: Option<&[bool]>) -> usize {
    mask.map_or(n, |m| m.iter().filter(|&&b| b).count())
}

/// Mean squared error over the present observations, `(1/N) Σ (pred − target)²`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Mse;

impl TrajectoryLoss for Mse {
    fn evaluate(
        &self,
        pred: &[f64],
        target: &[f64],
        mask: Option<&[bool]>,
        _params: &[f64],
        grad_pred: &mut [f64],
        _grad_params: &mut [f64],
    ) -> f64 {
        let n = count_present(pred.len(), mask).max(1) as f64;
        let mut v = 0.0;
        for i in 0..pred.len() {
            if present(mask, i) {
                let r = pred[i] - target[i];
                v += r * r;
                grad_pred[i] = 2.0 * r / n;
            } else {
                grad_pred[i] = 0.0;
            }
        }
        v / n
    }
}

/// Relative L2 error `‖pred − target‖ / ‖target‖` over the present observations: scale-free,
/// so trajectories of very different magnitude weigh alike. `eps` keeps an all-zero target
/// finite (the denominator is `max(‖target‖, eps)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RelativeL2 {
    /// Smallest denominator.
    pub eps: f64,
}

impl Default for RelativeL2 {
    fn default() -> Self {
        RelativeL2 { eps: 1e-12 }
    }
}

impl TrajectoryLoss for RelativeL2 {
    fn evaluate(
        &self,
        pred: &[f64],
        target: &[f64],
        mask: Option<&[bool]>,
        _params: &[f64],
        grad_pred: &mut [f64],
        _grad_params: &mut [f64],
    ) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for i in 0..pred.len() {
            if present(mask, i) {
                num += (pred[i] - target[i]).powi(2);
                den += target[i] * target[i];
            }
        }
        let den = den.sqrt().max(self.eps);
        let num = num.sqrt();
        for i in 0..pred.len() {
            // d‖e‖/de = e/‖e‖; at e = 0 the subgradient 0 is taken.
            grad_pred[i] = if present(mask, i) && num > 0.0 {
                (pred[i] - target[i]) / (num * den)
            } else {
                0.0
            };
        }
        num / den
    }
}

/// Soft Dice loss `1 − 2 Σ s·m / (Σ s + Σ m)` between a predicted density thresholded softly,
/// `s = σ(k (pred − threshold))`, and a binary mask `m` (targets > 0.5 count as inside): the
/// segmentation overlap of imaging (a tumour's enhancing core as `density > threshold`),
/// made differentiable (Milletari et al. 2016, V-Net, eq. 1). `sharpness` `k` sets how soft the
/// threshold is, in units of 1/density.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SoftDice {
    /// Slope `k` of the sigmoid threshold.
    pub sharpness: f64,
    /// The density at which a voxel counts as inside.
    pub threshold: f64,
}

impl SoftDice {
    /// A soft threshold at `threshold` with slope `sharpness`.
    pub fn new(sharpness: f64, threshold: f64) -> Self {
        SoftDice { sharpness, threshold }
    }
}

impl TrajectoryLoss for SoftDice {
    fn evaluate(
        &self,
        pred: &[f64],
        target: &[f64],
        mask: Option<&[bool]>,
        _params: &[f64],
        grad_pred: &mut [f64],
        _grad_params: &mut [f64],
    ) -> f64 {
        let k = self.sharpness;
        let (mut inter, mut sum_s, mut sum_m) = (0.0, 0.0, 0.0);
        for i in 0..pred.len() {
            if present(mask, i) {
                let s = sigmoid(k * (pred[i] - self.threshold));
                let m = if target[i] > 0.5 { 1.0 } else { 0.0 };
                inter += s * m;
                sum_s += s;
                sum_m += m;
            }
        }
        // 1e-12 keeps an empty prediction against an empty mask finite (Dice of two empty
        // sets is taken as a loss of 1 − 0 = 1 with zero gradient, never NaN).
        let den = sum_s + sum_m + 1e-12;
        let dice = 2.0 * inter / den;
        for i in 0..pred.len() {
            grad_pred[i] = if present(mask, i) {
                let s = sigmoid(k * (pred[i] - self.threshold));
                let m = if target[i] > 0.5 { 1.0 } else { 0.0 };
                // d dice / d s_i = 2 (m_i den − inter) / den²
                let dd_ds = 2.0 * (m * den - inter) / (den * den);
                -dd_ds * k * s * (1.0 - s)
            } else {
                0.0
            };
        }
        1.0 - dice
    }
}

/// Gaussian negative log-likelihood with a learnable noise level: one parameter `log σ`
/// (taken from `params[0]`), `L = Σ [ (pred − target)² / (2σ²) + log σ ] / N` over present
/// observations (the constant `½ log 2π` is dropped). Learning `log σ` (not `σ`) keeps σ
/// positive with an unconstrained parameter; the mean over N keeps the scale independent of
/// the amount of data, like [`Mse`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GaussianNll;

impl TrajectoryLoss for GaussianNll {
    fn n_params(&self) -> usize {
        1
    }
    fn evaluate(
        &self,
        pred: &[f64],
        target: &[f64],
        mask: Option<&[bool]>,
        params: &[f64],
        grad_pred: &mut [f64],
        grad_params: &mut [f64],
    ) -> f64 {
        let log_sigma = params[0];
        let inv_var = (-2.0 * log_sigma).exp();
        let n = count_present(pred.len(), mask).max(1) as f64;
        let mut sq = 0.0;
        for i in 0..pred.len() {
            if present(mask, i) {
                let r = pred[i] - target[i];
                sq += r * r;
                grad_pred[i] = r * inv_var / n;
            } else {
                grad_pred[i] = 0.0;
            }
        }
        let n_present = count_present(pred.len(), mask) as f64;
        // ∂/∂logσ [r²/(2σ²) + logσ] = −r²/σ² + 1
        grad_params[0] += (-sq * inv_var + n_present) / n;
        (0.5 * sq * inv_var + n_present * log_sigma) / n
    }
}

/// A penalty on a range of the parameter vector, added to the training objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Regularizer {
    /// `weight · Σ p_i²` over `range` (weight decay on a network block).
    L2 {
        /// Indices into the parameter vector.
        range: Range<usize>,
        /// Multiplier (≥ 0).
        weight: f64,
    },
    /// `Σ (p_i − mean_i)² / (2 std_i²)` over `range`: the negative log-density of an
    /// independent Gaussian prior (mechanistic parameters with literature values).
    GaussianPrior {
        /// Indices into the parameter vector.
        range: Range<usize>,
        /// Prior means, one per index.
        mean: Vec<f64>,
        /// Prior standard deviations (> 0), one per index.
        std: Vec<f64>,
    },
}

impl Regularizer {
    /// Check the configuration against a parameter vector of length `n_params`.
    pub fn validate(&self, n_params: usize) -> Result<()> {
        let bad =
            |message: String| HybridError::InvalidConfig { what: "regularizer".into(), message };
        let range = match self {
            Regularizer::L2 { range, weight } => {
                if !(weight.is_finite() && *weight >= 0.0) {
                    return Err(bad(format!("L2 weight {weight} must be finite and non-negative")));
                }
                range
            }
            Regularizer::GaussianPrior { range, mean, std } => {
                if mean.len() != range.len() || std.len() != range.len() {
                    return Err(HybridError::LengthMismatch {
                        what: "Gaussian prior mean/std".into(),
                        expected: range.len(),
                        got: mean.len().min(std.len()),
                    });
                }
                if let Some(s) = std.iter().find(|s| !(**s > 0.0 && s.is_finite())) {
                    return Err(bad(format!("prior std {s} must be positive and finite")));
                }
                range
            }
        };
        if range.end > n_params || range.start > range.end {
            return Err(bad(format!("range {range:?} does not fit {n_params} parameters")));
        }
        Ok(())
    }

    /// The penalty; its gradient is ACCUMULATED into `grad` (length of `params`).
    pub fn evaluate(&self, params: &[f64], grad: &mut [f64]) -> f64 {
        match self {
            Regularizer::L2 { range, weight } => {
                let mut v = 0.0;
                for i in range.clone() {
                    v += params[i] * params[i];
                    grad[i] += 2.0 * weight * params[i];
                }
                weight * v
            }
            Regularizer::GaussianPrior { range, mean, std } => {
                let mut v = 0.0;
                for (k, i) in range.clone().enumerate() {
                    let d = (params[i] - mean[k]) / std[k];
                    v += 0.5 * d * d;
                    grad[i] += d / std[k];
                }
                v
            }
        }
    }
}
