//! The computation behind `neurohybrid demo alzheimer`: one synthetic subject (inside a small
//! training cohort), mechanistic vs neural vs hybrid fitted on the early visits, predictions of
//! the later ones, everything the CLI needs to draw and write, as one serializable report.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::cohort::{CohortConfig, generate};
use crate::connectome::{Brain, STAGE_NAMES};
use crate::error::Result;
use crate::models::ClearanceFkpp;
use crate::observe::stage;
use crate::protocol::{Phase, ProtocolConfig, ProtocolReport, predict, run as run_protocol};
use crate::simulate::{linspace, trajectory};
use crate::train::residual_curve;

/// Demo settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoConfig {
    /// Subjects in the training cohort (the demo subject is the one whose stage advances most).
    pub n_subjects: usize,
    /// Random seed of the cohort.
    pub seed: u64,
    /// L-BFGS iterations of the joint neural / hybrid fits.
    pub max_iterations: usize,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self { n_subjects: 12, seed: 2026, max_iterations: 150 }
    }
}

/// A parameter estimate with its Laplace interval and the truth.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ParameterReport {
    /// Estimate.
    pub value: f64,
    /// Standard deviation (Laplace, delta method); NaN when not identifiable.
    pub std: f64,
    /// 95 % interval.
    pub ci95: [f64; 2],
    /// The synthetic truth.
    pub truth: f64,
}

/// Recovered mechanistic parameters of the demo subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameters {
    /// Transport rate κ (1/yr).
    pub kappa: ParameterReport,
    /// Production rate α (1/yr).
    pub alpha: ParameterReport,
    /// Seeded amount at t = 0.
    pub seed_amount: ParameterReport,
    /// Fitted seed region.
    pub seed_region: String,
    /// True seed region.
    pub true_seed_region: String,
}

/// Held-out metrics of one model on the demo subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetrics {
    /// Concentration RMSE on the held-out visits.
    pub heldout_rmse: f64,
    /// Abnormality (staging) Dice on the held-out visits.
    pub heldout_dice: f64,
    /// Concentration RMSE on the early visits.
    pub train_rmse: f64,
    /// Mean |predicted − true| stage over the held-out visits.
    pub heldout_stage_error: f64,
    /// Predicted stage at each visit.
    pub stages: Vec<usize>,
}

/// The three models of the protocol, in the order of the glioma demo's schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Models {
    /// Network Fisher–KPP fitted per subject.
    pub mechanistic: ModelMetrics,
    /// Neural ODE on the regional signal.
    pub neural: ModelMetrics,
    /// Parallel hybrid (FKPP + pointwise residual).
    pub hybrid: ModelMetrics,
    /// Series hybrid (covariates → κ, α).
    pub series: ModelMetrics,
}

/// Trajectories and other arrays for the figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FigureData {
    /// Region labels.
    pub labels: Vec<String>,
    /// Region centres (mm).
    pub centres: Vec<[f64; 3]>,
    /// Stage group of each region (`None` outside the DK set).
    pub stage_groups: Vec<Option<usize>>,
    /// Edges `(i, j, weight)` with `i < j` of the normalized connectome.
    pub edges: Vec<(usize, usize, f64)>,
    /// Names of the stages 1..=5.
    pub stage_names: Vec<String>,
    /// Dense time grid (years since seeding).
    pub times: Vec<f64>,
    /// True concentrations on the grid (`times × regions`).
    pub truth: Vec<f64>,
    /// Predictions on the grid by model name.
    pub predictions: Vec<(String, Vec<f64>)>,
    /// Visit times.
    pub visit_times: Vec<f64>,
    /// Early visits used for fitting.
    pub n_early: usize,
    /// Observed concentrations at the visits (`visits × regions`).
    pub observed: Vec<f64>,
    /// True stage at each visit.
    pub true_stages: Vec<usize>,
    /// Regions whose trajectories are drawn (seed, then one per stage group).
    pub highlight_regions: Vec<usize>,
    /// Times of the brain-graph snapshots.
    pub snapshot_times: Vec<f64>,
    /// Objective history of the hybrid's and neural model's joint fits.
    pub loss_history: Vec<(String, Vec<f64>)>,
    /// Concentrations at which the learned residual is tabulated.
    pub residual_c: Vec<f64>,
    /// The learned residual `g(c)`.
    pub residual_learned: Vec<f64>,
    /// The truth's missing term `−γ c / (1 + c/c_s)`.
    pub residual_true_clearance: Vec<f64>,
}

/// Cohort-level summary of the same protocol over the demo's training cohort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortSummary {
    /// Subjects.
    pub n_subjects: usize,
    /// Mean held-out RMSE by model.
    pub mean_heldout_rmse: Vec<(String, f64)>,
    /// Fraction of subjects where the hybrid beats both the mechanistic and the neural model.
    pub hybrid_win_fraction: f64,
}

/// Everything the demo computed (`metrics.json` is its serialization minus `figures`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoReport {
    /// Connectome used.
    pub connectome: String,
    /// Regions.
    pub n_regions: usize,
    /// Held-out metrics of the demo subject by model.
    pub models: Models,
    /// Recovered mechanistic parameters with Laplace intervals.
    pub parameters: Parameters,
    /// Cohort summary.
    pub cohort: CohortSummary,
    /// Phase timings (s).
    pub timings: crate::protocol::Timings,
    /// Total wall time of the computation (s).
    pub wall_time_s: f64,
    /// Arrays for the figures.
    pub figures: FigureData,
}

/// Runs the demo; `on_progress(phase, done, total)` reports progress.
///
/// # Errors
/// A failed fit, training run or solve.
pub fn run(
    config: &DemoConfig,
    on_progress: &mut dyn FnMut(Phase, usize, usize),
) -> Result<DemoReport> {
    let start = Instant::now();
    let brain = Brain::synthetic_dk68();
    let cohort_cfg = CohortConfig {
        n_subjects: config.n_subjects.max(1),
        seed: config.seed,
        ..CohortConfig::default()
    };
    let cohort = generate(&brain, &cohort_cfg)?;
    let mut pcfg = ProtocolConfig::for_cohort(&cohort);
    pcfg.train.max_iterations = config.max_iterations;
    let report = run_protocol(&cohort, &pcfg, on_progress)?;
    // The demo subject: the one whose true stage advances most over its visits (the first such),
    // so the staging figure has something to show.
    let index = (0..report.subjects.len())
        .max_by_key(|&i| {
            let s = &report.subjects[i].true_stages;
            (s.last().copied().unwrap_or(0).saturating_sub(s[0]), std::cmp::Reverse(i))
        })
        .unwrap_or(0);
    let subject = &cohort.subjects[index];
    let outcome = &report.subjects[index];
    let n = brain.n_regions();
    let k = subject.n_early;

    let metrics = |name: &str| -> ModelMetrics {
        let s = outcome.score(name).expect("every model is scored");
        let held: Vec<f64> = s.stages[k..]
            .iter()
            .zip(&outcome.true_stages[k..])
            .map(|(a, b)| (*a as f64 - *b as f64).abs())
            .collect();
        ModelMetrics {
            heldout_rmse: s.heldout_rmse,
            heldout_dice: s.heldout_dice,
            train_rmse: s.train_rmse,
            heldout_stage_error: held.iter().sum::<f64>() / held.len().max(1) as f64,
            stages: s.stages.clone(),
        }
    };
    let models = Models {
        mechanistic: metrics("mechanistic"),
        neural: metrics("neural"),
        hybrid: metrics("hybrid"),
        series: metrics("series"),
    };

    let fit = &outcome.mechanistic_fit;
    let truth = &subject.truth;
    let est = |i: usize, value: f64, t: f64| -> ParameterReport {
        match &fit.intervals {
            Some(iv) => ParameterReport {
                value,
                std: iv[i].std,
                ci95: [iv[i].ci95.0, iv[i].ci95.1],
                truth: t,
            },
            None => ParameterReport { value, std: f64::NAN, ci95: [f64::NAN; 2], truth: t },
        }
    };
    let parameters = Parameters {
        kappa: est(0, fit.params[0], truth.kappa),
        alpha: est(1, fit.params[1], truth.alpha),
        seed_amount: est(2, fit.seed_amount, truth.seed_amount),
        seed_region: brain.labels()[fit.seed_region].clone(),
        true_seed_region: brain.labels()[truth.seed_region].clone(),
    };

    let t_end = *subject.times.last().expect("visits");
    let times = linspace(t_end / 80.0, t_end, 80);
    let truth_model = ClearanceFkpp::new(brain.diffusion(), cohort_cfg.gamma, cohort_cfg.c_half)?;
    let mut y0 = vec![0.0; n];
    y0[truth.seed_region] = truth.seed_amount;
    let truth_traj = trajectory(&truth_model, &y0, &[truth.kappa, truth.alpha], 0.0, &times)?;
    let mut pred_list = predict(
        &cohort,
        (
            &report.subjects.iter().map(|s| s.mechanistic_fit.clone()).collect::<Vec<_>>(),
            &report.hybrid,
            &report.neural,
            report.series.as_ref(),
        ),
        &pcfg,
        index,
        &times,
    )?;
    pred_list.retain(|(m, _)| m != "series");
    let mut highlight = vec![truth.seed_region];
    for g in 1..STAGE_NAMES.len() {
        // The region of group g with the highest true load at the end.
        let last = &truth_traj[(times.len() - 1) * n..];
        if let Some(r) = (0..n)
            .filter(|&r| brain.stage_groups()[r] == Some(g))
            .max_by(|&a, &b| last[a].total_cmp(&last[b]))
        {
            highlight.push(r);
        }
    }
    let residual_c = linspace(0.0, 1.0, 41);
    let residual_learned =
        residual_curve(&brain, &pcfg.train, &report.hybrid.weights, &residual_c)?;
    let residual_true_clearance = residual_c.iter().map(|&c| -truth_model.clearance(c)).collect();
    let obs = &cohort.config.observation;
    let figures = FigureData {
        labels: brain.labels().to_vec(),
        centres: brain.centres().to_vec(),
        stage_groups: brain.stage_groups().to_vec(),
        edges: brain
            .connectome()
            .graph()
            .weights()
            .triplet_iter()
            .filter(|(i, j, _)| i < j)
            .map(|(i, j, w)| (i, j, *w))
            .collect(),
        stage_names: STAGE_NAMES.iter().map(|s| s.to_string()).collect(),
        truth: truth_traj,
        predictions: pred_list,
        visit_times: subject.times.clone(),
        n_early: k,
        observed: subject.observed_concentration(obs),
        true_stages: outcome.true_stages.clone(),
        highlight_regions: highlight,
        snapshot_times: vec![subject.times[0], subject.times[k - 1], t_end],
        loss_history: vec![
            ("hybrid".into(), report.hybrid.history.clone()),
            ("neural".into(), report.neural.history.clone()),
        ],
        residual_c,
        residual_learned,
        residual_true_clearance,
        times,
    };
    let _ = stage; // staging of snapshots is recomputed by the CLI from `figures`
    Ok(DemoReport {
        connectome: "synthetic DK-68 (embedded)".into(),
        n_regions: n,
        models,
        parameters,
        cohort: summary(&report),
        timings: report.timings,
        wall_time_s: start.elapsed().as_secs_f64(),
        figures,
    })
}

fn summary(report: &ProtocolReport) -> CohortSummary {
    let names = ["mechanistic", "neural", "hybrid", "series"];
    CohortSummary {
        n_subjects: report.subjects.len(),
        mean_heldout_rmse: names
            .iter()
            .map(|m| (m.to_string(), report.mean_heldout_rmse(m)))
            .collect(),
        hybrid_win_fraction: report.hybrid_win_fraction(),
    }
}
