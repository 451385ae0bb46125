//! The report structs the CLI renders and serializes (`metrics.json`): estimates with
//! intervals, per-model results, the demo report and its summary.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::anatomy::GridInfo;
use crate::config::Imaging;
use crate::metrics::ModelMetrics;

/// A recovered parameter with its Laplace (Gauss–Newton) uncertainty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The estimate (the optimum).
    pub value: f64,
    /// Standard deviation (in the parameter's own units, delta method for log-parameters).
    pub std: f64,
    /// 95 % interval `[lo, hi]` (for log-transformed parameters, mapped back: asymmetric and
    /// positive).
    pub ci95: [f64; 2],
    /// The true value, when known (synthetic patients).
    pub truth: Option<f64>,
}

impl Estimate {
    /// Whether the truth (if known) is inside the 95 % interval.
    pub fn covers_truth(&self) -> Option<bool> {
        self.truth.map(|t| self.ci95[0] <= t && t <= self.ci95[1])
    }
}

/// The mechanistic parameters recovered from the training scans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveredParameters {
    /// White-matter diffusivity `D_w` (mm²/day).
    pub d_w: Estimate,
    /// Proliferation rate `ρ` (1/day).
    pub rho: Estimate,
    /// Seed centre, one estimate per coordinate (mm).
    pub seed_mm: Vec<Estimate>,
    /// Front speed `2√(D_w ρ)` in white matter (mm/day) at the estimate — the identifiable
    /// combination.
    pub front_speed_mm_per_day: f64,
    /// Residual noise level used for the intervals (`max(noise_std, RMS residual)`).
    pub sigma: f64,
    /// Gauss–Newton iterations.
    pub iterations: usize,
    /// Whether the fit met its tolerance.
    pub converged: bool,
}

/// One model's results in the demo protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResult {
    /// `"mechanistic"`, `"neural"` or `"hybrid"`.
    pub name: String,
    /// One line on what the model is.
    pub description: String,
    /// Trainable parameters.
    pub n_params: usize,
    /// Predicted density at every scan (training and held-out), full box, x fastest.
    pub predicted: Vec<Vec<f32>>,
    /// Predicted segmentation at every scan (0 none, 1 edema, 2 core), full box.
    pub segmentation: Vec<Vec<u8>>,
    /// Training loss per iteration (mean squared density misfit on the training scans).
    pub loss_curve: Vec<f64>,
    /// Metrics (held-out means and per scan).
    pub metrics: ModelMetrics,
    /// Fitting / training wall time (s).
    pub wall_time_s: f64,
}

/// Everything the CLI renders for `neurohybrid demo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoReport {
    /// The grid, its mask and tissue background.
    pub grid: GridInfo,
    /// Scan times (days since onset).
    pub days: Vec<f64>,
    /// The first `n_training` scans are for fitting; the rest are held out.
    pub n_training: usize,
    /// Segmentation thresholds and noise.
    pub imaging: Imaging,
    /// The true density at every scan (full box).
    pub truth: Vec<Vec<f32>>,
    /// The observed (noisy) density of the training scans (full box).
    pub observed: Vec<Vec<f32>>,
    /// The true segmentation at every scan (full box).
    pub truth_segmentation: Vec<Vec<u8>>,
    /// Mechanistic, neural, hybrid — in that order.
    pub models: Vec<ModelResult>,
    /// The mechanistic fit's parameters with 95 % intervals (truth attached).
    pub parameters: RecoveredParameters,
    /// The hybrid's mechanistic part after joint training: `D_w`, `ρ` (point values).
    pub hybrid_mechanistic: BTreeMap<String, f64>,
    /// What the truth has that the plain model lacks (one sentence).
    pub missing_physics: String,
    /// Whether the hybrid's held-out RMSE is below both others'.
    pub hybrid_wins: bool,
    /// Total wall time (s).
    pub wall_time_s: f64,
}

/// One model's line of [`DemoSummary`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// Mean density RMSE on the held-out scans.
    pub heldout_rmse: f64,
    /// Mean whole-tumour Dice on the held-out scans.
    pub heldout_dice: f64,
    /// Mean enhancing-core Dice on the held-out scans.
    pub heldout_dice_core: f64,
    /// Mean relative volume error on the held-out scans.
    pub heldout_volume_error: f64,
    /// Mean front position error on the held-out scans (mm).
    pub heldout_front_error_mm: f64,
    /// Mean RMSE on the training scans.
    pub training_rmse: f64,
    /// Trainable parameters.
    pub n_params: usize,
    /// Fitting wall time (s).
    pub wall_time_s: f64,
}

/// The compact, field-free view of a [`DemoReport`]: what `metrics.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoSummary {
    /// `"mechanistic"`, `"neural"`, `"hybrid"` → metrics.
    pub models: BTreeMap<String, ModelSummary>,
    /// Recovered mechanistic parameters with intervals.
    pub parameters: RecoveredParameters,
    /// Scan days, and how many were for training.
    pub days: Vec<f64>,
    /// Training scans.
    pub n_training: usize,
    /// Whether the hybrid's held-out RMSE is below both others'.
    pub hybrid_wins: bool,
    /// Total wall time (s).
    pub wall_time_s: f64,
}

impl DemoReport {
    /// The result of the model called `name`.
    pub fn model(&self, name: &str) -> Option<&ModelResult> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The `metrics.json` view.
    pub fn summary(&self) -> DemoSummary {
        let models = self
            .models
            .iter()
            .map(|m| {
                let x = &m.metrics;
                (
                    m.name.clone(),
                    ModelSummary {
                        heldout_rmse: x.heldout_rmse,
                        heldout_dice: x.heldout_dice,
                        heldout_dice_core: x.heldout_dice_core,
                        heldout_volume_error: x.heldout_volume_error,
                        heldout_front_error_mm: x.heldout_front_error_mm,
                        training_rmse: x.training_rmse,
                        n_params: m.n_params,
                        wall_time_s: m.wall_time_s,
                    },
                )
            })
            .collect();
        DemoSummary {
            models,
            parameters: self.parameters.clone(),
            days: self.days.clone(),
            n_training: self.n_training,
            hybrid_wins: self.hybrid_wins,
            wall_time_s: self.wall_time_s,
        }
    }
}

/// What [`crate::fit`] returns: the mechanistic inverse problem on one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// The grid.
    pub grid: GridInfo,
    /// Scan days; the first `n_training` were fitted.
    pub days: Vec<f64>,
    /// Training scans.
    pub n_training: usize,
    /// The scenario's (true) density at every scan (full box).
    pub truth: Vec<Vec<f32>>,
    /// Observed (noisy) training scans (full box).
    pub observed: Vec<Vec<f32>>,
    /// The fitted model's density at every scan (full box).
    pub predicted: Vec<Vec<f32>>,
    /// Recovered parameters with 95 % intervals (truth = the scenario's values).
    pub parameters: RecoveredParameters,
    /// Metrics of the prediction against the truth.
    pub metrics: ModelMetrics,
    /// Cost per Gauss–Newton iteration.
    pub loss_curve: Vec<f64>,
    /// Wall time (s).
    pub wall_time_s: f64,
}
