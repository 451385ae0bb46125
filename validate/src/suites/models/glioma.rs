//! Glioma part of the `models` suite: the demo protocol of `neurohybrid-glioma` over a
//! synthetic cohort on the 2D phantom. Each patient's truth proliferates faster in white
//! matter (`ρ(x) = ρ (1 + κ p_wm)`), physics the plain Fisher–Kolmogorov model lacks; the
//! mechanistic model (calibrated `D_w`, `ρ`, seed with Laplace intervals), the neural ODE and
//! the parallel hybrid are fitted on the first 3 scans and predict the last 2.
//!
//! A last case runs the series hybrid (a network mapping tissue features to the diffusivity
//! field) against the mechanistic model on a patient with a wrong white/gray ratio.
//!
//! One JSON line per (patient, model), then a summary line with the means and the fraction of
//! patients where the hybrid's held-out RMSE is below both others'. Full: 10 patients on the
//! demo's grid; `fast`: 2 patients on the coarse test grid with short training.

use std::time::Instant;

use neurohybrid_glioma::demo::{DemoConfig, run_protocol, run_series_protocol};
use neurohybrid_glioma::hybrid::TrainOptions;
use neurohybrid_glioma::synthetic::cohort;
use neurohybrid_glioma::{Anatomy, DemoReport};

use crate::Case;

const SUITE: &str = "models";

/// Fraction of patients in which the hybrid must beat both other models (full run).
const MIN_WIN_FRACTION: f64 = 0.8;

/// Every case of the glioma part.
pub fn run(fast: bool) -> Vec<Case> {
    let (config, n) = if fast {
        (DemoConfig { iterations: 40, ..DemoConfig::fast() }, 2)
    } else {
        (DemoConfig::default(), 10)
    };
    let base = config.scenario();
    let anatomy = match Anatomy::build(&base.anatomy) {
        Ok(a) => a,
        Err(e) => {
            return vec![Case::new(SUITE, "glioma/anatomy", false).with("error", e.to_string())];
        }
    };
    let patients = cohort(&base, &anatomy, n, 2026);
    let mut cases = Vec::new();
    let mut reports: Vec<DemoReport> = Vec::new();
    for (i, scenario) in patients.iter().enumerate() {
        let start = Instant::now();
        match run_protocol(scenario, &config.train_options(), config.fit_iterations, &mut |_| {}) {
            Ok(r) => {
                cases.extend(patient_cases(i, &r, start.elapsed().as_secs_f64()));
                reports.push(r);
            }
            Err(e) => cases.push(
                Case::new(SUITE, format!("glioma/patient{i}"), false).with("error", e.to_string()),
            ),
        }
    }
    cases.push(summary(&reports, n, fast));
    cases.push(series_case(&config, fast));
    cases
}

/// The series hybrid (network → diffusivity field) on a patient whose true white/gray
/// diffusivity ratio is 2 while the models assume the scenario's `R` (10): passes when its
/// held-out RMSE is below the calibrated mechanistic model's.
fn series_case(config: &DemoConfig, fast: bool) -> Case {
    let train = TrainOptions {
        iterations: if fast { 15 } else { 40 },
        hidden: 6,
        learning_rate: 3e-2,
        seed: config.random_seed,
    };
    let mut scenario = config.scenario();
    scenario.truth = None;
    match run_series_protocol(&scenario, 2.0, &train, config.fit_iterations, &mut |_| {}) {
        Ok(r) => Case::new(
            SUITE,
            "glioma/series_wrong_tissue_ratio",
            r.series_heldout_rmse < r.mechanistic_heldout_rmse,
        )
        .with_f64("true_r", r.true_r)
        .with_f64("model_r", r.model_r)
        .with_f64("mechanistic_heldout_rmse", r.mechanistic_heldout_rmse)
        .with_f64("series_heldout_rmse", r.series_heldout_rmse)
        .with("iterations", train.iterations)
        .with_f64("wall_s", r.wall_time_s),
        Err(e) => {
            Case::new(SUITE, "glioma/series_wrong_tissue_ratio", false).with("error", e.to_string())
        }
    }
}

fn patient_cases(i: usize, r: &DemoReport, wall: f64) -> Vec<Case> {
    let p = &r.parameters;
    r.models
        .iter()
        .map(|m| {
            let x = &m.metrics;
            let mut c = Case::new(SUITE, format!("glioma/patient{i}/{}", m.name), true)
                .with_f64("heldout_rmse", x.heldout_rmse)
                .with_f64("heldout_dice", x.heldout_dice)
                .with_f64("heldout_dice_core", x.heldout_dice_core)
                .with_f64("heldout_volume_error", x.heldout_volume_error)
                .with_f64("heldout_front_error_mm", x.heldout_front_error_mm)
                .with_f64("training_rmse", x.training_rmse)
                .with("n_params", m.n_params)
                .with_f64("fit_wall_s", m.wall_time_s);
            if m.name == "mechanistic" {
                let rel = |e: &neurohybrid_glioma::Estimate| {
                    e.truth.map_or(f64::NAN, |t| (e.value - t).abs() / t)
                };
                let seed_err = p
                    .seed_mm
                    .iter()
                    .map(|e| (e.value - e.truth.unwrap_or(f64::NAN)).powi(2))
                    .sum::<f64>()
                    .sqrt();
                c = c
                    .with_f64("d_w", p.d_w.value)
                    .with("d_w_ci95", vec![p.d_w.ci95[0], p.d_w.ci95[1]])
                    .with_f64("d_w_rel_error", rel(&p.d_w))
                    .with_f64("rho", p.rho.value)
                    .with("rho_ci95", vec![p.rho.ci95[0], p.rho.ci95[1]])
                    .with_f64("rho_rel_error", rel(&p.rho))
                    .with_f64("seed_error_mm", seed_err)
                    .with("note", "truth ρ is the gray-matter value; white matter proliferates (1+κ)× faster, so the plain model's ρ is a compromise");
            }
            if m.name == "hybrid" {
                c = c.with("wins", r.hybrid_wins).with_f64("patient_wall_s", wall);
            }
            c
        })
        .collect()
}

fn summary(reports: &[DemoReport], n: usize, fast: bool) -> Case {
    let mean = |name: &str, f: &dyn Fn(&neurohybrid_glioma::ModelResult) -> f64| {
        let v: Vec<f64> = reports.iter().filter_map(|r| r.model(name)).map(f).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let wins = reports.iter().filter(|r| r.hybrid_wins).count();
    let frac = wins as f64 / n as f64;
    let threshold = if fast { 0.5 } else { MIN_WIN_FRACTION };
    let mut c = Case::new(SUITE, "glioma/summary", reports.len() == n && frac >= threshold)
        .with("patients", n)
        .with_f64("hybrid_win_fraction", frac)
        .with_f64("required_win_fraction", threshold);
    for name in ["mechanistic", "neural", "hybrid"] {
        c = c
            .with_f64(&format!("{name}_mean_heldout_rmse"), mean(name, &|m| m.metrics.heldout_rmse))
            .with_f64(&format!("{name}_mean_heldout_dice"), mean(name, &|m| m.metrics.heldout_dice))
            .with_f64(
                &format!("{name}_mean_front_error_mm"),
                mean(name, &|m| m.metrics.heldout_front_error_mm),
            );
    }
    c.with_f64("mean_patient_wall_s", reports.iter().map(|r| r.wall_time_s).sum::<f64>() / n as f64)
}
