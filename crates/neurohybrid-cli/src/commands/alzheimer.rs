//! `neurohybrid demo alzheimer` and `neurohybrid validate --disease alzheimer`: rendering and
//! writing only — the computation is `neurohybrid_alzheimer::demo::run` and
//! `neurohybrid_alzheimer::protocol::run`.

use neurohybrid_alzheimer::demo::{DemoConfig, DemoReport, ParameterReport};
use neurohybrid_alzheimer::protocol::{Phase, ProtocolConfig, run as run_protocol};
use neurohybrid_alzheimer::{Brain, CohortConfig, generate};
use serde_json::json;

use super::{Case, Ctx};
use crate::error::{CliError, Result};
use crate::metrics::{MODEL_NAMES, Metrics, ModelMetrics, Models, Parameter};
use crate::output::OutputDir;
use crate::plot::{BLACK, BarChart, Figure, GraphPlot, LinePlot, LineStyle, Series, palette};
use crate::progress::StageBars;

/// `neurohybrid demo alzheimer`.
pub fn demo(ctx: &Ctx) -> Result<()> {
    let config = DemoConfig { seed: ctx.seed, ..DemoConfig::default() };
    let mut bars = StageBars::new(&ctx.progress);
    let report = neurohybrid_alzheimer::demo::run(&config, &mut |phase, done, total| {
        bars.update(phase.label(), done as u64, total as u64, None);
    });
    bars.finish_all();
    let report = report.map_err(CliError::model)?;
    let m = metrics(ctx, &report);
    let mut out = OutputDir::create(&ctx.out)?;
    figures(&mut out, &report)?;
    out.write_json("report.json", &report)?;
    out.write_metrics(&m)?;
    let p = &report.parameters;
    let intro = [
        format!(
            "Synthetic Alzheimer's subject on the {} ({} regions), seeded in {} and scanned at {} visits; the models are fitted on the first {} (SUVR-like regional signal) and predict the later ones. A training cohort of {} subjects shares the networks.",
            report.connectome,
            report.n_regions,
            p.true_seed_region,
            report.figures.visit_times.len(),
            report.figures.n_early,
            report.cohort.n_subjects
        ),
        "The truth has a mechanism plain network Fisher–KPP lacks: a load-activated clearance −γc²/(c_s + c). Mechanistic = network FKPP fitted per subject (L-BFGS, adjoint gradients, Laplace intervals); neural = a pointwise neural ODE on the regional signal; hybrid = FKPP + a pointwise residual c·g(c) shared by the cohort.".to_string(),
        format!(
            "Cohort: hybrid beats both other models on {:.0}% of the {} subjects.",
            100.0 * report.cohort.hybrid_win_fraction,
            report.cohort.n_subjects
        ),
    ];
    let intro: Vec<&str> = intro.iter().map(String::as_str).collect();
    out.write_index("neurohybrid demo: Alzheimer's disease", &intro, Some(&m))?;
    ctx.println(&m.table());
    ctx.println(&format!(
        "wrote {} files to {}: {}",
        out.files().len(),
        out.root().display(),
        out.files().join(", ")
    ));
    Ok(())
}

fn parameter(p: &ParameterReport, unit: &str) -> Parameter {
    // Non-identifiable estimates carry NaN std; report the point as its own interval then.
    let (lower, upper) = if p.ci95.iter().all(|v| v.is_finite()) {
        (p.ci95[0], p.ci95[1])
    } else {
        (p.value, p.value)
    };
    Parameter {
        estimate: p.value,
        lower,
        upper,
        truth: Some(p.truth),
        unit: unit.into(),
        level: 0.95,
    }
}

fn metrics(ctx: &Ctx, report: &DemoReport) -> Metrics {
    let model = |m: &neurohybrid_alzheimer::demo::ModelMetrics| {
        ModelMetrics::new(m.heldout_rmse, Some(m.heldout_dice))
            .extra("train_rmse", m.train_rmse)
            .extra("heldout_stage_error", m.heldout_stage_error)
    };
    let models = Models {
        mechanistic: model(&report.models.mechanistic),
        neural: model(&report.models.neural),
        hybrid: model(&report.models.hybrid),
    };
    let p = &report.parameters;
    Metrics::new("alzheimer", ctx.seed, models, ctx.elapsed_s())
        .parameter("kappa", parameter(&p.kappa, "1/year"))
        .parameter("alpha", parameter(&p.alpha, "1/year"))
        .parameter("seed_amount", parameter(&p.seed_amount, "concentration"))
        .extra("seed_region", json!({ "fitted": p.seed_region, "truth": p.true_seed_region }))
        .extra(
            "series_hybrid",
            json!({
                "heldout_rmse": report.models.series.heldout_rmse,
                "heldout_dice": report.models.series.heldout_dice,
            }),
        )
        .extra(
            "cohort",
            json!({
                "n_subjects": report.cohort.n_subjects,
                "mean_heldout_rmse": report.cohort.mean_heldout_rmse.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "hybrid_win_fraction": report.cohort.hybrid_win_fraction,
            }),
        )
        .extra("connectome", json!(report.connectome))
        .extra("compute_seconds", json!(report.wall_time_s))
}

/// Row `k` of a row-major `rows × n` array.
fn row(a: &[f64], n: usize, k: usize) -> &[f64] {
    &a[k * n..(k + 1) * n]
}

fn column(a: &[f64], n: usize, i: usize) -> Vec<f64> {
    a.chunks(n).map(|r| r[i]).collect()
}

fn figures(out: &mut OutputDir, r: &DemoReport) -> Result<()> {
    let f = &r.figures;
    let n = r.n_regions;
    let t_train = f.visit_times[f.n_early - 1];

    // Regional trajectories: truth, each model, observations.
    let mut traj = Figure::new(3).title("Regional concentration: truth vs models");
    for &reg in &f.highlight_regions {
        let group = f.stage_groups[reg].map_or("", |g| f.stage_names[g].as_str());
        let mut plot = LinePlot::new(
            format!("{} ({group})", f.labels[reg]),
            "years since seeding",
            "concentration",
        )
        .series(Series::new("truth", f.times.clone(), column(&f.truth, n, reg)).color(BLACK))
        .vline(t_train, "last training visit");
        for (k, (name, pred)) in f.predictions.iter().enumerate() {
            plot = plot.series(
                Series::new(name.clone(), f.times.clone(), column(pred, n, reg)).color(palette(k)),
            );
        }
        plot = plot.series(
            Series::new("observed", f.visit_times.clone(), column(&f.observed, n, reg))
                .color(BLACK)
                .style(LineStyle::Markers),
        );
        traj.push(plot);
    }
    out.write_figure("trajectories.png", "Regional trajectories of the seed region and one region per stage group; markers are the noisy visits, the line marks the last training visit.", &traj)?;

    // Brain graph at several times: truth and each model, axial projection of the centres.
    let positions: Vec<[f64; 2]> = f.centres.iter().map(|c| [c[0], c[1]]).collect();
    let nearest = |t: f64| {
        f.times
            .iter()
            .enumerate()
            .min_by(|a, b| (a.1 - t).abs().total_cmp(&(b.1 - t).abs()))
            .map_or(0, |(k, _)| k)
    };
    let mut graph = Figure::new(f.snapshot_times.len())
        .title("Connectome coloured by concentration (axial view)");
    let mut rows = vec![("truth".to_string(), &f.truth)];
    rows.extend(f.predictions.iter().map(|(m, p)| (m.clone(), p)));
    for (name, data) in rows {
        for &t in &f.snapshot_times {
            let k = nearest(t);
            graph.push(
                GraphPlot::new(
                    format!("{name}, t = {t:.1} yr"),
                    positions.clone(),
                    row(data, n, k).to_vec(),
                    f.edges.clone(),
                )
                .range(0.0, 1.0),
            );
        }
    }
    out.write_figure("brain_graph.png", "Brain graph from region centres coloured by concentration at the first visit, the last training visit and the last visit; rows: truth, mechanistic, neural, hybrid.", &graph)?;

    // Staging: true vs predicted at each visit.
    let stages = |s: &[usize]| s.iter().map(|&v| v as f64).collect::<Vec<_>>();
    let mut staging =
        LinePlot::new("Stage (Braak-like groups abnormal)", "years since seeding", "stage")
            .series(
                Series::new("truth", f.visit_times.clone(), stages(&f.true_stages))
                    .color(BLACK)
                    .style(LineStyle::LineMarkers),
            )
            .vline(t_train, "last training visit")
            .y_range(-0.2, 5.2);
    for (k, (name, m)) in [
        ("mechanistic", &r.models.mechanistic),
        ("neural", &r.models.neural),
        ("hybrid", &r.models.hybrid),
    ]
    .into_iter()
    .enumerate()
    {
        staging = staging.series(
            Series::new(name, f.visit_times.clone(), stages(&m.stages))
                .color(palette(k))
                .style(LineStyle::LineMarkers),
        );
    }
    let mut residual =
        LinePlot::new("Missing term: learned vs true", "concentration c", "dc/dt contribution")
            .series(
                Series::new(
                    "true −γc²/(c_s+c)",
                    f.residual_c.clone(),
                    f.residual_true_clearance.clone(),
                )
                .color(BLACK),
            )
            .series(
                Series::new("hybrid c·g(c)", f.residual_c.clone(), f.residual_learned.clone())
                    .color(palette(2)),
            );
    residual = residual.y_range(
        f.residual_true_clearance.iter().chain(&f.residual_learned).copied().fold(0.0, f64::min)
            * 1.1
            - 0.01,
        f.residual_true_clearance.iter().chain(&f.residual_learned).copied().fold(0.0, f64::max)
            * 1.1
            + 0.01,
    );
    out.write_figure("staging.png", "Predicted vs true stage at each visit, and the hybrid's learned residual against the truth's missing clearance.", &Figure::new(2).with(staging).with(residual))?;

    // Loss curves and metric bars.
    let mut loss =
        LinePlot::new("Joint fit objective (negative log-likelihood)", "improvement", "objective")
            .log_y();
    for (k, (name, h)) in f.loss_history.iter().enumerate() {
        let xs = (0..h.len()).map(|i| i as f64).collect();
        loss = loss.series(Series::new(name.clone(), xs, h.clone()).color(palette(if k == 0 {
            2
        } else {
            1
        })));
    }
    let ms = [&r.models.mechanistic, &r.models.neural, &r.models.hybrid];
    let mut bars = BarChart::new(
        "Held-out metrics",
        "value",
        vec!["RMSE".into(), "Dice".into(), "stage error / 5".into()],
    );
    for (name, m) in MODEL_NAMES.iter().zip(ms) {
        bars =
            bars.series(*name, vec![m.heldout_rmse, m.heldout_dice, m.heldout_stage_error / 5.0]);
    }
    out.write_figure(
        "metrics.png",
        "Training objective of the cohort fits, and held-out metrics of the demo subject.",
        &Figure::new(2).with(loss).with(bars),
    )?;
    Ok(())
}

/// `neurohybrid validate --disease alzheimer`: the models protocol on a synthetic cohort on the
/// embedded connectome (4 subjects with short training when `fast`, else 24).
pub fn validate(ctx: &Ctx, fast: bool) -> Result<Vec<Case>> {
    let brain = Brain::synthetic_dk68();
    let n = if fast { 4 } else { 24 };
    let cohort = generate(
        &brain,
        &CohortConfig { n_subjects: n, seed: ctx.seed, ..CohortConfig::default() },
    )
    .map_err(CliError::model)?;
    let mut config = ProtocolConfig::for_cohort(&cohort);
    if fast {
        config.train.max_iterations = 25;
    }
    let mut bars = StageBars::new(&ctx.progress);
    let report = run_protocol(&cohort, &config, &mut |phase: Phase, done, total| {
        bars.update(phase.label(), done as u64, total as u64, None);
    });
    bars.finish_all();
    let report = report.map_err(CliError::model)?;
    let mut cases = Vec::new();
    for s in &report.subjects {
        for (model, score) in &s.scores {
            let mut detail = serde_json::Map::new();
            detail.insert("heldout_rmse".into(), json!(score.heldout_rmse));
            detail.insert("heldout_dice".into(), json!(score.heldout_dice));
            detail.insert("train_rmse".into(), json!(score.train_rmse));
            let ok = score.heldout_rmse.is_finite() && score.heldout_dice.is_finite();
            cases.push(Case {
                disease: "alzheimer".into(),
                case: format!("subject_{:02}/{model}", s.id),
                passed: ok,
                detail,
            });
        }
    }
    let mut detail = serde_json::Map::new();
    for m in ["mechanistic", "neural", "hybrid", "series"] {
        detail.insert(format!("mean_heldout_rmse_{m}"), json!(report.mean_heldout_rmse(m)));
    }
    let win = report.hybrid_win_fraction();
    detail.insert("hybrid_win_fraction".into(), json!(win));
    let best = report.mean_heldout_rmse("hybrid") < report.mean_heldout_rmse("mechanistic")
        && report.mean_heldout_rmse("hybrid") < report.mean_heldout_rmse("neural");
    cases.push(Case {
        disease: "alzheimer".into(),
        case: "summary".into(),
        passed: fast || (best && win >= 0.5),
        detail,
    });
    Ok(cases)
}
