//! Alzheimer's protocol (issue 10): a synthetic cohort on the embedded DK-68-like connectome;
//! per subject, network Fisher–KPP (mechanistic), a neural ODE and the parallel hybrid
//! (FKPP + pointwise residual), plus the series hybrid (covariates → κ, α), all fitted on the
//! first 3 of 5 visits; error on the 2 later visits. The truth has a saturating clearance
//! that plain FKPP lacks. One JSON line per (subject, model), then a summary line.
//!
//! Pass criteria: every number finite; in the full run the hybrid's mean held-out RMSE is below
//! both the mechanistic and the neural model's and it wins on at least half the subjects.
//! `fast` runs 4 subjects with short training and only checks that everything is finite.

use std::time::Instant;

use neurohybrid_alzheimer::protocol::{ProtocolConfig, run as run_protocol};
use neurohybrid_alzheimer::{Brain, CohortConfig, generate};

use crate::Case;

/// Every case of the Alzheimer's part of the suite.
pub fn run(fast: bool) -> Vec<Case> {
    protocol_cases("models", "alzheimer", &Brain::synthetic_dk68(), fast)
}

/// The protocol on `brain` as cases of `suite` named `prefix/...` (shared with the `data`
/// suite, which runs it on the real connectome).
pub fn protocol_cases(suite: &str, prefix: &str, brain: &Brain, fast: bool) -> Vec<Case> {
    let n_subjects = if fast { 4 } else { 24 };
    let start = Instant::now();
    let cohort = match generate(brain, &CohortConfig { n_subjects, ..CohortConfig::default() }) {
        Ok(c) => c,
        Err(e) => {
            return vec![
                Case::new(suite, format!("{prefix}/cohort"), false).with("error", e.to_string()),
            ];
        }
    };
    let mut config = ProtocolConfig::for_cohort(&cohort);
    if fast {
        config.train.max_iterations = 25;
        config.fit.max_iterations = 40;
    }
    let report = match run_protocol(&cohort, &config, &mut |_, _, _| {}) {
        Ok(r) => r,
        Err(e) => {
            return vec![
                Case::new(suite, format!("{prefix}/protocol"), false).with("error", e.to_string()),
            ];
        }
    };
    let wall = start.elapsed().as_secs_f64();
    let mut cases = Vec::new();
    for (outcome, subject) in report.subjects.iter().zip(&cohort.subjects) {
        for (model, s) in &outcome.scores {
            let mut c =
                Case::new(suite, format!("{prefix}/subject{:02}/{model}", outcome.id), true)
                    .with_f64("heldout_rmse", s.heldout_rmse)
                    .with_f64("heldout_dice", s.heldout_dice)
                    .with_f64("train_rmse", s.train_rmse)
                    .with("stages", s.stages.clone())
                    .with("true_stages", outcome.true_stages.clone());
            if model == "mechanistic" {
                let f = &outcome.mechanistic_fit;
                c = c
                    .with_f64("kappa", f.params[0])
                    .with_f64("kappa_true", subject.truth.kappa)
                    .with_f64("alpha", f.params[1])
                    .with_f64("alpha_true", subject.truth.alpha)
                    .with("seed_correct", f.seed_region == subject.truth.seed_region);
                if let Some(iv) = &f.intervals {
                    c = c
                        .with("kappa_ci95", vec![iv[0].ci95.0, iv[0].ci95.1])
                        .with("alpha_ci95", vec![iv[1].ci95.0, iv[1].ci95.1]);
                }
            }
            if model == "hybrid" {
                let p = &report.hybrid.subject_params[outcome.id];
                c = c.with_f64("kappa", p[0]).with_f64("alpha", p[1]);
            }
            cases.push(c);
        }
    }
    let means: Vec<(&str, f64)> = ["mechanistic", "neural", "hybrid", "series"]
        .iter()
        .map(|m| (*m, report.mean_heldout_rmse(m)))
        .collect();
    let win = report.hybrid_win_fraction();
    let hybrid_best = means[2].1 < means[0].1 && means[2].1 < means[1].1;
    let passed = fast || (hybrid_best && win >= 0.5);
    let mut summary = Case::new(suite, format!("{prefix}/summary"), passed)
        .with("connectome", format!("{:?}", brain.source()))
        .with("n_subjects", n_subjects);
    for (m, v) in &means {
        summary = summary.with_f64(&format!("mean_heldout_rmse_{m}"), *v);
        summary = summary.with_f64(&format!("mean_heldout_dice_{m}"), report.mean_heldout_dice(m));
    }
    cases.push(
        summary
            .with_f64("hybrid_win_fraction", win)
            .with_f64("wall_s", wall)
            .with_f64("mechanistic_fit_s", report.timings.mechanistic)
            .with_f64("hybrid_train_s", report.timings.hybrid)
            .with_f64("neural_train_s", report.timings.neural)
            .with_f64("series_train_s", report.timings.series),
    );
    cases
}
