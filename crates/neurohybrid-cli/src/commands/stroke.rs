//! The stroke commands on the public API of `neurohybrid-stroke`: `demo` renders
//! `neurohybrid_stroke::demo::run` (all computation lives there), `validate` runs the models
//! protocol over a small cohort.

use neurohybrid_stroke::demo::{DemoConfig, DemoReport, Image};
use neurohybrid_stroke::evaluate::{MODEL_NAMES, run_patient};
use neurohybrid_stroke::fit::Estimate;
use serde_json::json;

use super::{Case, Ctx};
use crate::error::{CliError, Result};
use crate::metrics::{Metrics, ModelMetrics, Models, Parameter};
use crate::output::OutputDir;
use crate::plot::{
    Colormap, Field2d, Figure, Heatmap, Legend, LinePlot, LineStyle, RED, Series, WHITE,
};
use crate::progress::StageBars;

fn field(img: &Image) -> Result<(Field2d, Vec<bool>)> {
    let mask: Vec<bool> = img.values.iter().map(|v| v.is_finite()).collect();
    let values = img.values.iter().map(|v| if v.is_finite() { *v } else { 0.0 }).collect();
    let f = Field2d::new(img.nx, img.ny, values)
        .map_err(|source| CliError::Plot { name: "stroke field".into(), source })?;
    Ok((f, mask))
}

fn heat(title: &str, img: &Image, lo: f64, hi: f64, cmap: Colormap) -> Result<Heatmap> {
    let (f, mask) = field(img)?;
    Ok(Heatmap::new(title, f).mask(mask).range(lo, hi).colormap(cmap))
}

fn estimate(e: &Estimate, unit: &str) -> Parameter {
    Parameter {
        estimate: e.value,
        lower: e.ci95.0.min(e.value),
        upper: e.ci95.1.max(e.value),
        truth: e.truth,
        unit: unit.into(),
        level: 0.95,
    }
}

fn model_metrics(r: &DemoReport, name: &str) -> Result<ModelMetrics> {
    let m = r
        .models
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| CliError::Metrics(format!("no `{name}` model")))?;
    let s = &m.score;
    let mut mm = ModelMetrics::new(s.heldout_rmse, Some(s.heldout_dice.clamp(0.0, 1.0)))
        .extra("final_infarct_ml", s.final_ml)
        .extra("true_final_infarct_ml", s.true_final_ml)
        .extra("volume_error_ml", s.final_ml - s.true_final_ml)
        .extra("training_dice", s.train_dice)
        .extra("expected_mrs", m.outcome.expected)
        .extra("p_independent", m.outcome.independent)
        .extra("fit_seconds", s.fit_s);
    if name != "neural" {
        let units = ["1/h", "1/h", "1"];
        for (e, u) in r.parameters.iter().zip(units) {
            mm = mm.parameter(e.name.clone(), estimate(e, u));
        }
    }
    Ok(mm)
}

fn metrics(ctx: &Ctx, r: &DemoReport) -> Result<Metrics> {
    let get = |name: &str| model_metrics(r, name);
    let models =
        Models { mechanistic: get("mechanistic")?, neural: get("neural")?, hybrid: get("hybrid")? };
    let mut m = Metrics::new("stroke", ctx.seed, models, ctx.elapsed_s())
        .extra(
            "patient",
            serde_json::to_value(&r.patient).map_err(|e| CliError::Metrics(e.to_string()))?,
        )
        .extra(
            "missing_physics",
            "collateral failure: c(t) = c0 exp(-lambda_c t); the plain model holds c constant",
        )
        .extra("scan_times_h", r.config.protocol.t_scans.clone())
        .extra("final_time_h", r.config.protocol.t_final)
        .extra(
            "timing_curve",
            json!({
                "onset_to_reperfusion_h": r.timing.treat_times,
                "truth_ml": r.timing.truth_ml,
                "mechanistic_ml": r.timing.mechanistic_ml,
                "mechanistic_lower95_ml": r.timing.lower_ml,
                "mechanistic_upper95_ml": r.timing.upper_ml,
                "hybrid_ml": r.timing.hybrid_ml,
                "series_ml": r.timing.series_ml,
                "mechanistic_slope_ml_per_h": r.timing.mechanistic_slope_ml_per_h,
                "expected_mrs": r.timing.expected_mrs,
            }),
        )
        .extra(
            "series",
            serde_json::to_value(get("series")?).map_err(|e| CliError::Metrics(e.to_string()))?,
        )
        .extra("true_expected_mrs", r.outcome_truth.expected)
        .extra("tissue_voxels", r.n_voxels);
    for (e, u) in r.parameters.iter().zip(["1/h", "1/h", "1"]) {
        m = m.parameter(e.name.clone(), estimate(e, u));
    }
    Ok(m)
}

fn figures(out: &mut OutputDir, r: &DemoReport) -> Result<()> {
    // Perfusion: healthy, admission (occluded), territory.
    let perf = Figure::new(3)
        .title("Perfusion (CBF, ml/100 g/min) and the occluded territory")
        .with(heat("healthy CBF", &r.cbf_normal, 0.0, 65.0, Colormap::Inferno)?)
        .with(
            heat("admission CBF (occluded)", &r.cbf_admission, 0.0, 65.0, Colormap::Inferno)?
                .contour(20.0, WHITE),
        )
        .with(heat(
            &format!("{} territory", r.patient.territory.name()),
            &r.territory,
            0.0,
            1.0,
            Colormap::Viridis,
        )?);
    out.write_figure("perfusion.png", "Healthy and admission perfusion (white: penumbra threshold 20 ml/100 g/min), occluded territory weight", &perf)?;

    // Lesion growth snapshots (truth) with the observed masks.
    let mut growth = Figure::new(3).title("True dead fraction (red: lesion > 0.5)");
    for (t, img) in &r.snapshots {
        growth.push(
            heat(&format!("t = {t:.1} h"), img, 0.0, 1.0, Colormap::Viridis)?.contour(0.5, RED),
        );
    }
    out.write_figure(
        "lesion_growth.png",
        "Lesion growth of the synthetic truth; reperfusion at the treatment time stops it",
        &growth,
    )?;

    // Final infarct: truth vs models.
    let (truth_f, _) = field(&r.truth_final)?;
    let mut fin =
        Figure::new(5).title("Final infarct at follow-up: dead fraction, truth contour red");
    fin.push(heat("truth", &r.truth_final, 0.0, 1.0, Colormap::Viridis)?.contour(0.5, RED));
    for m in &r.models {
        fin.push(
            heat(
                &format!("{} (Dice {:.2})", m.name, m.score.heldout_dice),
                &m.final_dead,
                0.0,
                1.0,
                Colormap::Viridis,
            )?
            .contour(0.5, WHITE)
            .contour_of(truth_f.clone(), 0.5, RED, "truth"),
        );
    }
    out.write_figure(
        "final_infarct.png",
        "Predicted final infarct of each model against the held-out truth",
        &fin,
    )?;

    // Timing curve and volumes.
    let tc = &r.timing;
    let timing = LinePlot::new(
        "Final infarct vs onset-to-reperfusion time",
        "onset to reperfusion (h)",
        "final infarct (ml)",
    )
    .series(Series::new("truth", tc.treat_times.clone(), tc.truth_ml.clone()))
    .series(
        Series::new(
            "mechanistic (95% Laplace band)",
            tc.treat_times.clone(),
            tc.mechanistic_ml.clone(),
        )
        .band(tc.lower_ml.clone(), tc.upper_ml.clone()),
    )
    .series(
        Series::new("hybrid", tc.treat_times.clone(), tc.hybrid_ml.clone())
            .style(LineStyle::Dashed),
    )
    .series(
        Series::new("series hybrid", tc.treat_times.clone(), tc.series_ml.clone())
            .style(LineStyle::Dashed),
    )
    .vline(r.patient.t_treat, "actual treatment")
    // The curves rise to a plateau: the lower right is empty.
    .legend(Legend::LowerRight);
    let vt = &r.volumes_truth;
    let vf = &r.volumes_fitted;
    let vols = LinePlot::new("Core and penumbra over time", "time since onset (h)", "volume (ml)")
        .series(Series::new("core (truth)", vt.t.clone(), vt.core_ml.clone()))
        .series(Series::new("penumbra (truth)", vt.t.clone(), vt.penumbra_ml.clone()))
        .series(
            Series::new("core (fitted)", vf.t.clone(), vf.core_ml.clone()).style(LineStyle::Dashed),
        )
        .series(
            Series::new("penumbra (fitted)", vf.t.clone(), vf.penumbra_ml.clone())
                .style(LineStyle::Dashed),
        )
        .vline(r.patient.t_treat, "reperfusion");
    let mut loss = LinePlot::new("Training loss", "iteration", "mean squared misfit").log_y();
    for m in r.models.iter().filter(|m| !m.loss_history.is_empty()) {
        let xs = (0..m.loss_history.len()).map(|k| k as f64).collect();
        loss = loss.series(Series::new(m.name.clone(), xs, m.loss_history.clone()));
    }
    let curves = Figure::new(3)
        .panel_size(420, 320)
        .title("Treatment timing")
        .with(timing)
        .with(vols)
        .with(loss);
    out.write_figure(
        "timing.png",
        "Treatment-timing curve with uncertainty band; core/penumbra volumes; training losses",
        &curves,
    )?;
    Ok(())
}

/// `neurohybrid demo stroke`.
pub fn demo(ctx: &Ctx) -> Result<()> {
    let config = DemoConfig { seed: ctx.seed, ..DemoConfig::default() };
    let mut bars = StageBars::new(&ctx.progress);
    let report = neurohybrid_stroke::demo::run(&config, &mut |stage, done, total| {
        bars.update(stage, done as u64, total as u64, None);
    });
    bars.finish_all();
    let report = report.map_err(CliError::model)?;
    let m = metrics(ctx, &report)?;
    let mut out = OutputDir::create(&ctx.out)?;
    figures(&mut out, &report)?;
    out.write_json("report.json", &report)?;
    out.write_metrics(&m)?;
    let p = &report.patient;
    let intro = [
        format!(
            "Synthetic ischemic stroke on the embedded {}×{} phantom at {} mm: {} occlusion, collateral strength {:.2} at onset, reperfusion at {:.1} h. The truth has a mechanism the plain model lacks: collaterals fail, c(t) = c0·exp(−{:.2} t/h).",
            config.nx,
            config.ny,
            config.spacing,
            p.territory.name(),
            p.collateral,
            p.t_treat,
            p.collateral_decay
        ),
        format!(
            "Models are fitted on the admission perfusion map ({} h) and the lesion masks at {:?} h, and predict the final infarct at {} h.",
            config.protocol.t_admission, config.protocol.t_scans, config.protocol.t_final
        ),
        format!(
            "Timing curve: every 30 minutes of delay from 0.5 h to {:.0} h; true final infarct {:.2} ml (reperfused at 0.5 h) to {:.2} ml (at {:.0} h).",
            report.timing.treat_times.last().copied().unwrap_or(0.0),
            report.timing.truth_ml.first().copied().unwrap_or(0.0),
            report.timing.truth_ml.last().copied().unwrap_or(0.0),
            report.timing.treat_times.last().copied().unwrap_or(0.0),
        ),
    ];
    let intro: Vec<&str> = intro.iter().map(String::as_str).collect();
    out.write_index("neurohybrid demo: stroke", &intro, Some(&m))?;
    ctx.println(&m.table());
    let series = model_metrics(&report, "series")?;
    ctx.println(&format!(
        "series hybrid (imaging features -> collateral trajectory): heldout_rmse {:.4}, heldout_dice {:.4}",
        series.heldout_rmse,
        series.heldout_dice.unwrap_or(f64::NAN)
    ));
    ctx.println(&format!(
        "wrote {} files to {}: {}",
        out.files().len(),
        out.root().display(),
        out.files().join(", ")
    ));
    Ok(())
}

/// `neurohybrid validate --disease stroke`: the models protocol on a small phantom cohort.
pub fn validate(ctx: &Ctx, fast: bool) -> Result<Vec<Case>> {
    use neurohybrid_stroke::anatomy::StrokeAnatomy;
    use neurohybrid_stroke::fate::FateConstants;
    use neurohybrid_stroke::fit::TrainConfig;
    use neurohybrid_stroke::patient::{Protocol, cohort};
    let (mut anatomy, n, train) = if fast {
        (
            StrokeAnatomy::phantom_2d(28, 34, 5.6),
            2,
            TrainConfig { iterations: 12, hidden: 8, ..TrainConfig::default() },
        )
    } else {
        (StrokeAnatomy::phantom_2d(40, 48, 4.0), 10, TrainConfig::default())
    };
    let anatomy = anatomy.as_mut().map_err(|e| CliError::Metrics(e.to_string()))?;
    let bar = ctx.progress.bar("stroke cohort", n as u64);
    let mut cases = Vec::new();
    for (k, patient) in cohort(n).iter().enumerate() {
        let run =
            run_patient(anatomy, patient, &Protocol::default(), FateConstants::default(), &train)
                .map_err(CliError::model)?;
        for (name, s) in MODEL_NAMES.iter().zip(&run.scores) {
            let mut detail = serde_json::Map::new();
            detail.insert("heldout_rmse".into(), json!(s.heldout_rmse));
            detail.insert("heldout_dice".into(), json!(s.heldout_dice));
            detail.insert("final_ml".into(), json!(s.final_ml));
            detail.insert("true_final_ml".into(), json!(s.true_final_ml));
            let passed = s.heldout_rmse.is_finite() && s.heldout_dice.is_finite();
            cases.push(Case {
                disease: "stroke".into(),
                case: format!("{}/{name}", patient.id),
                passed,
                detail,
            });
        }
        bar.set(k as u64 + 1);
    }
    bar.finish();
    Ok(cases)
}
