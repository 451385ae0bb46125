//! The glioma commands, on the public API of `neurohybrid-glioma` (its `API.md`):
//! `demo` runs `demo::run` on the embedded 2D phantom, `simulate` / `fit` take a scenario
//! file, `validate` runs the protocol over a small synthetic cohort.
//!
//! Inputs are parsed and validated by the glioma crate (its `GliomaError` messages are the
//! one-line errors the user sees) before the output folder is created.

use std::path::Path;

use neurohybrid_glioma::{self as glioma, DemoConfig, DemoReport, Estimate, GridInfo, Scenario};
use serde_json::{Value, json};

use super::{Case, Ctx};
use crate::error::{CliError, Result};
use crate::metrics::{Metrics, ModelMetrics, Models, Parameter};
use crate::output::OutputDir;
use crate::plot::{
    BarChart, Field2d, Figure, Heatmap, Legend, LinePlot, LineStyle, Panel, RED, Series, WHITE,
    palette,
};
use crate::progress::StageBars;

/// Runs `work` with a progress callback that drives one bar per glioma stage.
fn with_bars<T>(
    ctx: &Ctx,
    work: impl FnOnce(&mut dyn FnMut(glioma::Progress)) -> glioma::Result<T>,
) -> Result<T> {
    let mut bars = StageBars::new(&ctx.progress);
    let result = work(&mut |p: glioma::Progress| {
        bars.update(p.stage, p.done as u64, p.total as u64, p.loss);
    });
    bars.finish_all();
    result.map_err(CliError::model)
}

/// `neurohybrid demo glioma`.
pub fn demo(ctx: &Ctx) -> Result<()> {
    let config = DemoConfig { random_seed: ctx.seed, ..DemoConfig::default() };
    let report = with_bars(ctx, |cb| glioma::demo::run(&config, cb))?;
    let mut out = OutputDir::create(&ctx.out)?;
    let metrics = demo_metrics(ctx, &report)?;
    write_demo_figures(&mut out, &report)?;
    out.write_metrics(&metrics)?;
    let intro = [
        format!(
            "Synthetic glioma patient on the embedded {}×{} phantom (seed {}). The truth has \
             physics the plain Fisher–Kolmogorov model lacks: {}.",
            report.grid.shape[0], report.grid.shape[1], ctx.seed, report.missing_physics
        ),
        format!(
            "The models are fitted on the scans of days {:?} and predict the held-out scans of \
             days {:?}.",
            &report.days[..report.n_training],
            &report.days[report.n_training..]
        ),
        format!(
            "Held-out density RMSE: hybrid below both others: {}.",
            if report.hybrid_wins { "yes" } else { "no" }
        ),
    ];
    let intro: Vec<&str> = intro.iter().map(String::as_str).collect();
    out.write_index("neurohybrid demo: glioma", &intro, Some(&metrics))?;
    print_summary(ctx, &metrics, &out);
    ctx.println(&format!(
        "hybrid beats mechanistic and neural on held-out RMSE: {}",
        if report.hybrid_wins { "yes" } else { "no" }
    ));
    Ok(())
}

fn print_summary(ctx: &Ctx, metrics: &Metrics, out: &OutputDir) {
    ctx.println(&metrics.table());
    ctx.println(&format!(
        "wrote {} files to {}: {}",
        out.files().len(),
        out.root().display(),
        out.files().join(", ")
    ));
}

fn estimate(e: &Estimate, unit: &str) -> Parameter {
    // The glioma crate maps log-parameter intervals back, so they are asymmetric but ordered;
    // clamp the estimate into its own interval only against rounding (never by more).
    Parameter {
        estimate: e.value,
        lower: e.ci95[0].min(e.value),
        upper: e.ci95[1].max(e.value),
        truth: e.truth,
        unit: unit.into(),
        level: 0.95,
    }
}

fn model_metrics(m: &glioma::metrics::ModelMetrics, n_params: usize, seconds: f64) -> ModelMetrics {
    let dice = m.heldout_dice.is_finite().then_some(m.heldout_dice.clamp(0.0, 1.0));
    let mut mm = ModelMetrics::new(m.heldout_rmse, dice);
    for (k, v) in [
        ("heldout_dice_core", m.heldout_dice_core),
        ("heldout_volume_error", m.heldout_volume_error),
        ("heldout_front_error_mm", m.heldout_front_error_mm),
        ("training_rmse", m.training_rmse),
        ("n_params", n_params as f64),
        ("fit_seconds", seconds),
    ] {
        // Undefined numbers (e.g. a front error when a model predicts no tumour) are left
        // out rather than written as NaN, which JSON cannot hold.
        if v.is_finite() {
            mm.extra.insert(k.into(), v);
        }
    }
    mm
}

fn parameters(rec: &glioma::RecoveredParameters) -> Vec<(String, Parameter)> {
    let mut ps = vec![
        ("D_w".to_owned(), estimate(&rec.d_w, "mm^2/day")),
        ("rho".to_owned(), estimate(&rec.rho, "1/day")),
    ];
    for (e, axis) in rec.seed_mm.iter().zip(["x", "y", "z"]) {
        ps.push((format!("seed_{axis}"), estimate(e, "mm")));
    }
    ps
}

fn demo_metrics(ctx: &Ctx, r: &DemoReport) -> Result<Metrics> {
    let get = |name: &str| {
        r.model(name).map(|m| model_metrics(&m.metrics, m.n_params, m.wall_time_s)).ok_or_else(
            || CliError::Metrics(format!("the glioma demo report has no `{name}` model")),
        )
    };
    let mut hybrid = get("hybrid")?;
    for (k, v) in &r.hybrid_mechanistic {
        if v.is_finite() {
            hybrid.extra.insert(format!("mechanistic_{k}"), *v);
        }
    }
    let models = Models { mechanistic: get("mechanistic")?, neural: get("neural")?, hybrid };
    let mut m = Metrics::new("glioma", ctx.seed, models, ctx.elapsed_s())
        .extra("days", r.days.clone())
        .extra("n_training", r.n_training)
        .extra("hybrid_wins", r.hybrid_wins)
        .extra("missing_physics", r.missing_physics.clone())
        .extra("front_speed_mm_per_day", finite_or_null(r.parameters.front_speed_mm_per_day))
        .extra("fit_converged", r.parameters.converged)
        .extra("grid_shape", r.grid.shape.to_vec());
    for (k, p) in parameters(&r.parameters) {
        m = m.parameter(k, p);
    }
    Ok(m)
}

fn finite_or_null(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

/// The axial slice shown for 3D grids: the one with the most tumour in the last field.
fn slice_index(grid: &GridInfo, fields: &[Vec<f32>]) -> usize {
    let [nx, ny, nz] = grid.shape;
    let Some(last) = fields.last() else { return nz / 2 };
    (0..nz)
        .max_by(|&a, &b| {
            let sum = |z: usize| {
                last[z * nx * ny..(z + 1) * nx * ny].iter().map(|&v| v as f64).sum::<f64>()
            };
            sum(a).total_cmp(&sum(b))
        })
        .unwrap_or(nz / 2)
}

/// One axial slice of a full-box field as a plot field.
fn slice_field(grid: &GridInfo, z: usize, field: &[f32]) -> Field2d {
    let [nx, ny, _] = grid.shape;
    let off = z * nx * ny;
    Field2d::from_fn(nx, ny, |x, y| field[off + x + nx * y] as f64)
}

fn slice_mask(grid: &GridInfo, z: usize) -> Vec<bool> {
    let [nx, ny, _] = grid.shape;
    grid.mask[z * nx * ny..(z + 1) * nx * ny].to_vec()
}

/// Truth (and observed) vs each model at every scan, with segmentation contours: own
/// contours white, the truth's red.
#[allow(clippy::too_many_arguments)]
fn snapshots(
    title: &str,
    grid: &GridInfo,
    days: &[f64],
    n_training: usize,
    observed: &[Vec<f32>],
    truth: &[Vec<f32>],
    models: &[(&str, &[Vec<f32>])],
    levels: (f64, f64),
) -> Figure {
    let z = slice_index(grid, truth);
    let mask = slice_mask(grid, z);
    let (flair, t1) = levels;
    let mut fig = Figure::new(days.len()).title(title).panel_size(250, 240);
    // Without models (a plain simulation) the field is the simulation, not a "truth".
    let truth_name = if models.is_empty() { "simulated" } else { "truth" };
    let phase = |i: usize| match (models.is_empty(), i < n_training) {
        (true, _) => String::new(),
        (false, true) => " (fit)".into(),
        (false, false) => " (held out)".into(),
    };
    if !observed.is_empty() {
        for (i, d) in days.iter().enumerate() {
            match observed.get(i) {
                Some(o) => fig.push(
                    Heatmap::new(format!("observed, day {d:.0}"), slice_field(grid, z, o))
                        .mask(mask.clone())
                        .range(0.0, 1.0),
                ),
                None => fig.push(Panel::Empty),
            };
        }
    }
    for (i, d) in days.iter().enumerate() {
        fig.push(
            Heatmap::new(
                format!("{truth_name}, day {d:.0}{}", phase(i)),
                slice_field(grid, z, &truth[i]),
            )
            .mask(mask.clone())
            .range(0.0, 1.0)
            .contour(flair, WHITE)
            .contour(t1, WHITE),
        );
    }
    for (name, pred) in models {
        for (i, d) in days.iter().enumerate() {
            let tf = slice_field(grid, z, &truth[i]);
            fig.push(
                Heatmap::new(format!("{name}, day {d:.0}"), slice_field(grid, z, &pred[i]))
                    .mask(mask.clone())
                    .range(0.0, 1.0)
                    .contour(flair, WHITE)
                    .contour(t1, WHITE)
                    .contour_of(tf.clone(), flair, RED, "truth")
                    .contour_of(tf, t1, RED, ""),
            );
        }
    }
    fig
}

/// Tumour size per scan from a segmentation (voxels with label ≥ 1): area in cm² on a 2D
/// slice, volume in mL in 3D.
fn tumour_size(grid: &GridInfo, seg: &[u8]) -> f64 {
    let n = seg.iter().filter(|&&s| s >= 1).count() as f64;
    let [sx, sy, sz] = grid.spacing_mm;
    if grid.dim == 2 { n * sx * sy / 100.0 } else { n * sx * sy * sz / 1000.0 }
}

fn size_label(grid: &GridInfo) -> &'static str {
    if grid.dim == 2 { "tumour area (cm²)" } else { "tumour volume (mL)" }
}

fn write_demo_figures(out: &mut OutputDir, r: &DemoReport) -> Result<()> {
    let preds: Vec<(&str, &[Vec<f32>])> =
        r.models.iter().map(|m| (m.name.as_str(), m.predicted.as_slice())).collect();
    let levels = (r.imaging.flair_threshold, r.imaging.t1_threshold);
    let fig = snapshots(
        "tumour cell density: truth vs models (white: model segmentation, red: true segmentation)",
        &r.grid,
        &r.days,
        r.n_training,
        &r.observed,
        &r.truth,
        &preds,
        levels,
    );
    out.write_figure(
        "density_snapshots.png",
        "Observed training scans, the truth and each model's prediction at every scan, with edema / enhancing-core contours",
        &fig,
    )?;

    // Loss curves (the mechanistic fit reports its final misfit: drawn as a level).
    let mut loss = LinePlot::new("training loss", "iteration", "mean squared misfit").log_y();
    let n_iter = r.models.iter().map(|m| m.loss_curve.len()).max().unwrap_or(1).max(2);
    for (i, m) in r.models.iter().enumerate() {
        if m.loss_curve.len() > 1 {
            let xs = (0..m.loss_curve.len()).map(|k| k as f64).collect();
            loss = loss.series(Series::new(&m.name, xs, m.loss_curve.clone()).color(palette(i)));
        } else if let Some(&v) = m.loss_curve.first() {
            loss = loss.series(
                Series::new(
                    format!("{} (final fit)", m.name),
                    vec![0.0, (n_iter - 1) as f64],
                    vec![v, v],
                )
                .color(palette(i))
                .style(LineStyle::Dashed),
            );
        }
    }
    out.write_figure(
        "loss_curves.png",
        "Training loss of the neural and hybrid models (the mechanistic calibration's final misfit dashed)",
        &Figure::new(1).panel_size(560, 360).with(loss),
    )?;

    // Metrics per model.
    let groups = vec![
        "density RMSE".into(),
        "1 − Dice".into(),
        "1 − Dice core".into(),
        "volume error".into(),
    ];
    let mut bars = BarChart::new("held-out scans", "value (lower is better)", groups);
    for m in &r.models {
        let x = &m.metrics;
        bars = bars.series(
            &m.name,
            vec![
                x.heldout_rmse,
                1.0 - x.heldout_dice,
                1.0 - x.heldout_dice_core,
                x.heldout_volume_error,
            ],
        );
    }
    let mut front =
        BarChart::new("held-out front error", "mm", vec!["front position error".into()]);
    for m in &r.models {
        front = front.series(&m.name, vec![m.metrics.heldout_front_error_mm]);
    }
    out.write_figure(
        "metrics.png",
        "Held-out metrics per model (lower is better)",
        &Figure::new(2).panel_size(520, 360).with(bars).with(front),
    )?;

    // Per-scan trajectories.
    let last_fit = r.days[r.n_training.saturating_sub(1).min(r.days.len() - 1)];
    let mut size = LinePlot::new("tumour size", "day", size_label(&r.grid))
        .legend(Legend::UpperLeft)
        .vline(last_fit, "last fitted scan");
    let truth_size: Vec<f64> =
        r.truth_segmentation.iter().map(|s| tumour_size(&r.grid, s)).collect();
    size = size.series(
        Series::new("truth", r.days.clone(), truth_size).color(RED).style(LineStyle::LineMarkers),
    );
    let mut rmse = LinePlot::new("density RMSE per scan", "day", "RMSE")
        .legend(Legend::UpperLeft)
        .vline(last_fit, "last fitted scan");
    let mut dice = LinePlot::new("Dice per scan", "day", "Dice")
        .legend(Legend::LowerLeft)
        .y_range(0.0, 1.0)
        .vline(last_fit, "last fitted scan");
    for (i, m) in r.models.iter().enumerate() {
        let s: Vec<f64> = m.segmentation.iter().map(|s| tumour_size(&r.grid, s)).collect();
        size = size.series(
            Series::new(&m.name, r.days.clone(), s).color(palette(i)).style(LineStyle::Dashed),
        );
        let days: Vec<f64> = m.metrics.per_scan.iter().map(|p| p.day).collect();
        rmse = rmse.series(
            Series::new(&m.name, days.clone(), m.metrics.per_scan.iter().map(|p| p.rmse).collect())
                .color(palette(i))
                .style(LineStyle::LineMarkers),
        );
        dice = dice.series(
            Series::new(&m.name, days, m.metrics.per_scan.iter().map(|p| p.dice).collect())
                .color(palette(i))
                .style(LineStyle::LineMarkers),
        );
    }
    out.write_figure(
        "trajectories.png",
        "Tumour size, density RMSE and Dice per scan; scans after the dashed line are held out",
        &Figure::new(3).panel_size(420, 340).with(size).with(rmse).with(dice),
    )?;
    Ok(())
}

/// Reads and validates a scenario file; `--seed` replaces its noise seed when given.
fn load_scenario(ctx: &Ctx, path: &Path) -> Result<Scenario> {
    let mut s = Scenario::from_path(path).map_err(CliError::model)?;
    if ctx.seed_given {
        s.imaging.noise_seed = ctx.seed;
    }
    Ok(s)
}

/// `neurohybrid simulate SCENARIO.toml`.
pub fn simulate(ctx: &Ctx, path: &Path) -> Result<()> {
    let scenario = load_scenario(ctx, path)?;
    let sim = with_bars(ctx, |cb| glioma::simulate(&scenario, cb))?;
    let mut out = OutputDir::create(&ctx.out)?;
    let levels = (scenario.imaging.flair_threshold, scenario.imaging.t1_threshold);
    let fig = snapshots(
        "simulated tumour cell density (white: edema / enhancing-core segmentation)",
        &sim.grid,
        &sim.days,
        sim.days.len(),
        &[],
        &sim.density,
        &[],
        levels,
    );
    out.write_figure(
        "density_snapshots.png",
        "Simulated density at every scan with its segmentation",
        &fig,
    )?;
    let vol_label = if sim.grid.dim == 2 { "mL (mm² × 1e-3 per unit depth)" } else { "mL" };
    let volumes = LinePlot::new("tumour volume", "day", vol_label)
        .series(
            Series::new("edema + core", sim.days.clone(), sim.tumor_volume_ml.clone())
                .style(LineStyle::LineMarkers),
        )
        .series(
            Series::new("enhancing core", sim.days.clone(), sim.core_volume_ml.clone())
                .style(LineStyle::LineMarkers),
        );
    out.write_figure(
        "volumes.png",
        "Segmented tumour volumes over time",
        &Figure::new(1).panel_size(520, 340).with(volumes),
    )?;
    let summary = json!({
        "scenario": path.display().to_string(),
        "days": sim.days,
        "tumor_volume_ml": sim.tumor_volume_ml,
        "core_volume_ml": sim.core_volume_ml,
        "method": sim.method,
        "steps": sim.steps,
        "n_cells": sim.n_cells,
        "grid_shape": sim.grid.shape,
        "solve_wall_time_s": sim.wall_time_s,
        "wall_time_s": ctx.elapsed_s(),
    });
    out.write_json("simulation.json", &summary)?;
    out.write_index(
        &format!("neurohybrid simulate: {}", path.display()),
        &[&format!(
            "{} active cells, solved with {} in {} steps ({:.2} s).",
            sim.n_cells, sim.method, sim.steps, sim.wall_time_s
        )],
        None,
    )?;
    ctx.println(&format!("{:>8} {:>16} {:>16}", "day", "tumour (mL)", "core (mL)"));
    for ((d, v), c) in sim.days.iter().zip(&sim.tumor_volume_ml).zip(&sim.core_volume_ml) {
        ctx.println(&format!("{d:>8.1} {v:>16.4} {c:>16.4}"));
    }
    ctx.println(&format!(
        "{} cells, {} ({} steps, {:.2} s); wrote {} files to {}",
        sim.n_cells,
        sim.method,
        sim.steps,
        sim.wall_time_s,
        out.files().len(),
        out.root().display()
    ));
    Ok(())
}

/// `neurohybrid fit SCENARIO.toml`.
pub fn fit(ctx: &Ctx, path: &Path) -> Result<()> {
    let scenario = load_scenario(ctx, path)?;
    let rep = with_bars(ctx, |cb| glioma::fit(&scenario, cb))?;
    let mut out = OutputDir::create(&ctx.out)?;
    let levels = (scenario.imaging.flair_threshold, scenario.imaging.t1_threshold);
    let fig = snapshots(
        "mechanistic fit: truth vs prediction (white: prediction's segmentation, red: truth's)",
        &rep.grid,
        &rep.days,
        rep.n_training,
        &rep.observed,
        &rep.truth,
        &[("fitted", rep.predicted.as_slice())],
        levels,
    );
    out.write_figure(
        "density_snapshots.png",
        "Observed scans, truth and the fitted model's prediction",
        &fig,
    )?;
    let params: Vec<(String, Parameter)> = parameters(&rep.parameters);
    let summary = json!({
        "scenario": path.display().to_string(),
        "days": rep.days,
        "n_training": rep.n_training,
        "parameters": params.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "front_speed_mm_per_day": finite_or_null(rep.parameters.front_speed_mm_per_day),
        "converged": rep.parameters.converged,
        "iterations": rep.parameters.iterations,
        "metrics": model_metrics(&rep.metrics, params.len(), rep.wall_time_s),
        "wall_time_s": ctx.elapsed_s(),
    });
    out.write_json("fit.json", &summary)?;
    let lines: Vec<String> = params
        .iter()
        .map(|(k, p)| {
            let truth = p.truth.map(|t| format!(" (truth {t:.4})")).unwrap_or_default();
            format!("{k} = {:.4} [{:.4}, {:.4}] {}{truth}", p.estimate, p.lower, p.upper, p.unit)
        })
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    out.write_index(&format!("neurohybrid fit: {}", path.display()), &refs, None)?;
    ctx.println("recovered parameters (95 % Laplace intervals):");
    for l in &lines {
        ctx.println(&format!("  {l}"));
    }
    ctx.println(&format!(
        "held-out RMSE {:.4}, Dice {:.3}; wrote {} files to {}",
        rep.metrics.heldout_rmse,
        rep.metrics.heldout_dice,
        out.files().len(),
        out.root().display()
    ));
    Ok(())
}

/// The synthetic cohort of `neurohybrid validate`: patient `i` varies the growth
/// parameters, the seed side and the noise / initialization seed around the demo's.
fn cohort(fast: bool, seed: u64) -> Vec<DemoConfig> {
    let n = if fast { 2 } else { 10 };
    let base = if fast { DemoConfig::fast() } else { DemoConfig::default() };
    (0..n)
        .map(|i| {
            let mut c = base.clone();
            c.random_seed = seed.wrapping_add(i as u64);
            c.tumor.d_w *= 0.8 + 0.1 * (i % 5) as f64;
            c.tumor.rho *= 0.85 + 0.1 * (i % 4) as f64;
            // Mirror the seed across the midline for odd patients (the phantom is symmetric).
            if i % 2 == 1 {
                c.seed_mm[0] = -c.seed_mm[0];
            }
            c
        })
        .collect()
}

/// `neurohybrid validate` for glioma: the demo protocol on every patient of [`cohort`]. A
/// patient's case passes when all three models produced finite held-out metrics; the
/// summary passes when the hybrid has the lowest held-out RMSE on more than half of the
/// patients.
pub fn validate(ctx: &Ctx, fast: bool) -> Result<Vec<Case>> {
    let patients = cohort(fast, ctx.seed);
    let mut cases = Vec::new();
    let mut wins = 0usize;
    let bar = ctx.progress.bar("glioma cohort", patients.len() as u64);
    for (i, config) in patients.iter().enumerate() {
        let r = glioma::demo::run(config, &mut |_| {}).map_err(CliError::model)?;
        bar.inc(1);
        wins += r.hybrid_wins as usize;
        let mut detail = serde_json::Map::new();
        let mut finite = true;
        for m in &r.models {
            let x = &m.metrics;
            finite &= x.heldout_rmse.is_finite() && x.heldout_dice.is_finite();
            detail.insert(format!("{}_heldout_rmse", m.name), finite_or_null(x.heldout_rmse));
            detail.insert(format!("{}_heldout_dice", m.name), finite_or_null(x.heldout_dice));
        }
        detail.insert("hybrid_wins".into(), json!(r.hybrid_wins));
        for (k, e) in [("d_w", &r.parameters.d_w), ("rho", &r.parameters.rho)] {
            detail.insert(k.into(), json!({"estimate": e.value, "ci95": e.ci95, "truth": e.truth}));
        }
        detail.insert("wall_time_s".into(), json!(r.wall_time_s));
        cases.push(Case {
            disease: "glioma".into(),
            case: format!("patient_{i:02}"),
            passed: finite,
            detail,
        });
    }
    bar.finish();
    let frac = wins as f64 / patients.len() as f64;
    let mut detail = serde_json::Map::new();
    detail.insert("patients".into(), json!(patients.len()));
    detail.insert("hybrid_win_fraction".into(), json!(frac));
    for name in ["mechanistic", "neural", "hybrid"] {
        let key = format!("{name}_heldout_rmse");
        let vals: Vec<f64> = cases.iter().filter_map(|c| c.detail.get(&key)?.as_f64()).collect();
        let mean = vals.iter().sum::<f64>() / vals.len().max(1) as f64;
        detail.insert(format!("mean_{key}"), finite_or_null(mean));
    }
    cases.push(Case {
        disease: "glioma".into(),
        case: "summary".into(),
        passed: frac > 0.5,
        detail,
    });
    Ok(cases)
}
