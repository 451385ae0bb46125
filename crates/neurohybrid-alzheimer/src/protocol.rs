//! The evaluation protocol "mechanistic vs neural vs hybrid" on a cohort: fit on the early
//! visits, predict the later ones, score concentration RMSE and abnormality Dice on the
//! held-out visits (and staging), per subject and model.

use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::cohort::{Cohort, Subject};
use crate::error::Result;
use crate::fit::{FitConfig, SubjectFit, fit_subject};
use crate::models::NetworkFkpp;
use crate::observe::{dice, rmse, stage};
use crate::simulate::trajectory;
use crate::train::{
    TrainConfig, TrainedModel, neural_mlp, neural_start, neural_system, parallel_system,
    residual_mlp, series_mlp, series_system, train_neural, train_parallel, train_series,
};

/// Protocol settings. Configuration only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtocolConfig {
    /// Mechanistic fit settings (seed candidates are filled in from the cohort if empty).
    pub fit: FitConfig,
    /// Neural / hybrid training settings.
    pub train: TrainConfig,
    /// Also train the series hybrid (network maps covariates to κ, α).
    pub series: bool,
}

impl ProtocolConfig {
    /// Defaults for a cohort: its seed candidates, Laplace intervals on.
    pub fn for_cohort(cohort: &Cohort) -> Self {
        let seeds =
            cohort.config.seeds.iter().filter_map(|(l, _)| cohort.brain.region(l).ok()).collect();
        Self { fit: FitConfig::new(seeds), train: TrainConfig::default(), series: true }
    }
}

/// The scores of one model on one subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelScore {
    /// Concentration RMSE over the held-out visits and all regions.
    pub heldout_rmse: f64,
    /// Abnormality Dice over the held-out visits (pooled).
    pub heldout_dice: f64,
    /// Concentration RMSE on the early (training) visits.
    pub train_rmse: f64,
    /// Predicted stage at each visit.
    pub stages: Vec<usize>,
    /// Predicted concentrations at every visit (`visits × regions`).
    pub prediction: Vec<f64>,
}

/// One subject's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectOutcome {
    /// Subject id.
    pub id: usize,
    /// True stage at each visit.
    pub true_stages: Vec<usize>,
    /// Mechanistic fit (with intervals).
    pub mechanistic_fit: SubjectFit,
    /// Scores by model name (`"mechanistic"`, `"neural"`, `"hybrid"`, `"series"`).
    pub scores: Vec<(String, ModelScore)>,
}

impl SubjectOutcome {
    /// The score of model `name`.
    pub fn score(&self, name: &str) -> Option<&ModelScore> {
        self.scores.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }
}

/// Wall times of the protocol's phases (s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Mechanistic fits (all subjects).
    pub mechanistic: f64,
    /// Parallel hybrid training.
    pub hybrid: f64,
    /// Neural ODE training.
    pub neural: f64,
    /// Series hybrid training.
    pub series: f64,
}

/// Everything the protocol measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtocolReport {
    /// Per-subject outcomes.
    pub subjects: Vec<SubjectOutcome>,
    /// The trained parallel hybrid.
    pub hybrid: TrainedModel,
    /// The trained neural ODE.
    pub neural: TrainedModel,
    /// The trained series hybrid, if asked for.
    pub series: Option<TrainedModel>,
    /// Phase wall times.
    pub timings: Timings,
}

impl Phase {
    /// A short label (`"mechanistic fits"`, …).
    pub fn label(self) -> &'static str {
        match self {
            Phase::Mechanistic => "mechanistic fits",
            Phase::Hybrid => "train hybrid",
            Phase::Neural => "train neural",
            Phase::Series => "train series",
            Phase::Scoring => "predict + score",
        }
    }
}

impl ProtocolReport {
    /// Mean held-out RMSE of `model` over subjects.
    pub fn mean_heldout_rmse(&self, model: &str) -> f64 {
        mean(self.subjects.iter().filter_map(|s| s.score(model)).map(|s| s.heldout_rmse))
    }

    /// Mean held-out Dice of `model` over subjects.
    pub fn mean_heldout_dice(&self, model: &str) -> f64 {
        mean(self.subjects.iter().filter_map(|s| s.score(model)).map(|s| s.heldout_dice))
    }

    /// Fraction of subjects where the hybrid's held-out RMSE is below both the mechanistic
    /// and the neural model's.
    pub fn hybrid_win_fraction(&self) -> f64 {
        let wins = self
            .subjects
            .iter()
            .filter(|s| {
                let h = s.score("hybrid").map_or(f64::INFINITY, |x| x.heldout_rmse);
                ["mechanistic", "neural"]
                    .iter()
                    .all(|m| s.score(m).is_some_and(|x| h < x.heldout_rmse))
            })
            .count();
        wins as f64 / self.subjects.len().max(1) as f64
    }
}

fn mean(it: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = it.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { f64::NAN } else { s / n as f64 }
}

/// Which protocol phase is running (for progress reporting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Per-subject mechanistic fits.
    Mechanistic,
    /// Parallel hybrid training.
    Hybrid,
    /// Neural ODE training.
    Neural,
    /// Series hybrid training.
    Series,
    /// Predictions and scores.
    Scoring,
}

/// Fits every subject's mechanistic model, in parallel over subjects.
///
/// # Errors
/// A failed fit.
pub fn fit_mechanistic(cohort: &Cohort, config: &FitConfig) -> Result<Vec<SubjectFit>> {
    let fkpp = NetworkFkpp::new(cohort.brain.diffusion());
    let obs = cohort.config.observation;
    cohort.subjects.par_iter().map(|s| fit_subject(&fkpp, &[], s, &obs, config)).collect()
}

fn score(cohort: &Cohort, subject: &Subject, prediction: Vec<f64>) -> ModelScore {
    let brain = &cohort.brain;
    let obs = &cohort.config.observation;
    let n = brain.n_regions();
    let k = subject.n_early;
    let truth = &subject.true_concentration;
    let split = k * n;
    let (ab_pred, ab_true) = (obs.abnormal(&prediction[split..]), obs.abnormal(&truth[split..]));
    let stages = prediction.chunks(n).map(|c| stage(brain, &obs.abnormal(c))).collect();
    ModelScore {
        heldout_rmse: rmse(&prediction[split..], &truth[split..]),
        heldout_dice: dice(&ab_pred, &ab_true),
        train_rmse: rmse(&prediction[..split], &truth[..split]),
        stages,
        prediction,
    }
}

/// Predicted concentrations of every model at `times` for subject `index` (row-major
/// `times × regions`): `[mechanistic, neural, hybrid, series?]`.
///
/// # Errors
/// A failed solve.
pub fn predict(
    cohort: &Cohort,
    report_parts: (&[SubjectFit], &TrainedModel, &TrainedModel, Option<&TrainedModel>),
    config: &ProtocolConfig,
    index: usize,
    times: &[f64],
) -> Result<Vec<(String, Vec<f64>)>> {
    let (mech, hybrid, neural, series) = report_parts;
    let brain = &cohort.brain;
    let subject = &cohort.subjects[index];
    let obs = &cohort.config.observation;
    let n = brain.n_regions();
    let fit = &mech[index];
    let fkpp = NetworkFkpp::new(brain.diffusion());
    let mut out = Vec::new();
    out.push(("mechanistic".to_string(), trajectory(&fkpp, &fit.y0(n), &fit.params, 0.0, times)?));
    // The neural ODE starts at the first visit; before it, it has no prediction: hold the
    // first visit's state.
    let (t0, y0, _) = neural_start(subject, obs);
    let nsys = neural_system(brain, &neural_mlp(config.train.hidden)?)?;
    let after: Vec<f64> = times.iter().copied().filter(|&t| t > t0).collect();
    let mut neural_pred: Vec<f64> =
        times.iter().filter(|&&t| t <= t0).flat_map(|_| y0.clone()).collect();
    neural_pred.extend(trajectory(&nsys, &y0, &neural.weights, t0, &after)?);
    out.push(("neural".to_string(), neural_pred));
    let psys = parallel_system(brain, &residual_mlp(config.train.hidden)?)?;
    let hp = &hybrid.subject_params[index];
    let mut p = vec![hp[0], hp[1]];
    p.extend_from_slice(&hybrid.weights);
    let mut hy0 = vec![0.0; n];
    hy0[fit.seed_region] = hp[2];
    out.push(("hybrid".to_string(), trajectory(&psys, &hy0, &p, 0.0, times)?));
    if let Some(series) = series {
        let ssys = series_system(brain, &series_mlp(config.train.hidden)?, subject)?;
        let mut sy0 = vec![0.0; n];
        sy0[fit.seed_region] = series.subject_params[index][0];
        out.push(("series".to_string(), trajectory(&ssys, &sy0, &series.weights, 0.0, times)?));
    }
    Ok(out)
}

/// Runs the protocol on a cohort; `on_progress(phase, done, total)` reports each phase's
/// progress (subjects fitted, or objective evaluations of a joint fit).
///
/// # Errors
/// A failed fit, training run or solve.
pub fn run(
    cohort: &Cohort,
    config: &ProtocolConfig,
    on_progress: &mut dyn FnMut(Phase, usize, usize),
) -> Result<ProtocolReport> {
    let n_subjects = cohort.subjects.len();
    let mut timings = Timings::default();
    on_progress(Phase::Mechanistic, 0, n_subjects);
    let t = Instant::now();
    let mech = fit_mechanistic(cohort, &config.fit)?;
    on_progress(Phase::Mechanistic, n_subjects, n_subjects);
    timings.mechanistic = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let hybrid =
        train_parallel(cohort, &mech, &config.train, &mut |d, n| on_progress(Phase::Hybrid, d, n))?;
    timings.hybrid = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let neural = train_neural(cohort, &config.train, &mut |d, n| on_progress(Phase::Neural, d, n))?;
    timings.neural = t.elapsed().as_secs_f64();
    let series = if config.series {
        let t = Instant::now();
        let s = train_series(cohort, &mech, &config.train, &mut |d, n| {
            on_progress(Phase::Series, d, n)
        })?;
        timings.series = t.elapsed().as_secs_f64();
        Some(s)
    } else {
        None
    };
    on_progress(Phase::Scoring, 0, n_subjects);
    let subjects = (0..cohort.subjects.len())
        .into_par_iter()
        .map(|i| {
            let subject = &cohort.subjects[i];
            let preds = predict(
                cohort,
                (&mech, &hybrid, &neural, series.as_ref()),
                config,
                i,
                &subject.times,
            )?;
            let n = cohort.brain.n_regions();
            let obs = &cohort.config.observation;
            let true_stages = subject
                .true_concentration
                .chunks(n)
                .map(|c| stage(&cohort.brain, &obs.abnormal(c)))
                .collect();
            Ok(SubjectOutcome {
                id: subject.id,
                true_stages,
                mechanistic_fit: mech[i].clone(),
                scores: preds.into_iter().map(|(m, p)| (m, score(cohort, subject, p))).collect(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    on_progress(Phase::Scoring, n_subjects, n_subjects);
    Ok(ProtocolReport { subjects, hybrid, neural, series, timings })
}
