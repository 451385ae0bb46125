//! The stroke model on the fetched MNI152 anatomy at 2 mm (`data/mni152/`): the models
//! protocol (mechanistic vs neural vs hybrid on early lesion masks; 10 synthetic patients in a
//! full run, 2 with short training under `--fast`) on an axial slice through the basal ganglia
//! (4696 tissue voxels); the 3D perfusion problem and treatment-timing curve with its exact
//! slope `d(infarct)/dT` (checked against a central difference of the curve); and, when
//! `cargo xtask fetch-data` has fetched `data/stroke-outcome/`, the outcome readout calibrated
//! to and compared with the `stroke-outcome` package's mRS distributions by treatment time.

use std::path::PathBuf;
use std::time::Instant;

use neurohybrid_stroke::StrokeError;
use neurohybrid_stroke::anatomy::{StrokeAnatomy, axial_slice, load_mni152};
use neurohybrid_stroke::fate::FateConstants;
use neurohybrid_stroke::outcome::{
    MrsReference, OutcomeModel, equivalent_ml, final_dead, timing_curve, timing_slope, volumes,
};
use neurohybrid_stroke::patient::{Patient, cohort, truth_model};
use neurohybrid_stroke::perfusion::{Occlusion, PerfusionParams, Territory};

use crate::Case;

fn data_root() -> PathBuf {
    match std::env::var_os("NEUROHYBRID_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data"),
    }
}

/// 2 mm axial index of MNI z ≈ +10 mm (basal ganglia, all three territories in plane).
const Z_INDEX: usize = 41;

fn three_d(
    grid: neurohybrid_mesh::Grid,
    tissue: &neurohybrid_mesh::TissueMaps,
    fast: bool,
) -> Result<Case, StrokeError> {
    let t = Instant::now();
    let mut anatomy = StrokeAnatomy::new(grid, tissue, PerfusionParams::default())?;
    let setup_s = t.elapsed().as_secs_f64();
    let occ = Occlusion { territory: Territory::LeftMca, severity: 1.0, collateral: 0.3 };
    let f = anatomy.perfusion().source(Some(&occ))?;
    let t1 = Instant::now();
    let map = anatomy.perfusion().solve(Some(&occ))?;
    let solve_s = t1.elapsed().as_secs_f64();
    let imbalance = map.flux_imbalance(&f);
    let patient = Patient {
        id: "mni152".into(),
        territory: Territory::LeftMca,
        collateral: 0.35,
        collateral_decay: 0.2,
        t_treat: 4.5,
        k_inj: 2.0,
        k_death: 1.0,
        seed: 1,
    };
    let perf = anatomy.occlude(patient.territory)?;
    let territory_ml = anatomy.volume_ml(&perf.weight);
    let truth = truth_model(&patient, &perf, FateConstants::default())?;
    let p = patient.fate_params().to_vec();
    let t2 = Instant::now();
    let vol = volumes(&anatomy, &truth, &p, f64::INFINITY, &[1.0, 3.0])?;
    let delays = [2.0, 4.5, 8.0];
    let curve = timing_curve(&anatomy, &truth, &p, &delays, 24.0)?;
    let fate_s = t2.elapsed().as_secs_f64();
    let monotone = curve.windows(2).all(|w| w[1] >= w[0] - 1e-9);
    // The exact slope (one forward solve and one discrete adjoint per delay) and, at 4.5 h, a
    // central difference of the curve (adaptive solves at rtol 1e-6: agreement to ~1e-3).
    let slope_at: &[f64] = if fast { &[4.5] } else { &delays };
    let t3 = Instant::now();
    let slopes = timing_slope(&anatomy, &truth, &p, slope_at, 24.0)?;
    let slope_s = t3.elapsed().as_secs_f64();
    let dt = 0.05;
    let fd = timing_curve(&anatomy, &truth, &p, &[4.5 - dt, 4.5 + dt], 24.0)?;
    let fd_slope = (fd[1] - fd[0]) / (2.0 * dt);
    let exact_45 = slopes[slopes.len() / 2].1;
    let slope_rel = (exact_45 - fd_slope).abs() / fd_slope.abs();
    let slope_positive = slopes.iter().all(|s| s.1 > 0.0);
    let mut case = Case::new(
        "data",
        "stroke_mni152_3d/left_mca",
        imbalance < 1e-10 && monotone && slope_positive && slope_rel < 1e-2,
    )
    .with("active_cells", anatomy.grid().n_active())
    .with("tissue_voxels", anatomy.n_voxels())
    .with_f64("setup_factorize_s", setup_s)
    .with_f64("solve_s", solve_s)
    .with_f64("flux_imbalance", imbalance)
    .with_f64("tissue_ml", anatomy.tissue_ml())
    .with_f64("territory_ml", territory_ml)
    .with_f64("core_ml_1h", vol.core_ml[0])
    .with_f64("penumbra_ml_1h", vol.penumbra_ml[0])
    .with_f64("core_ml_3h", vol.core_ml[1])
    .with_f64("infarct_ml_reperfused_2h", curve[0])
    .with_f64("infarct_ml_reperfused_4.5h", curve[1])
    .with_f64("infarct_ml_reperfused_8h", curve[2])
    .with_f64("fate_s", fate_s)
    .with_f64("slope_fd_ml_per_h_4.5h", fd_slope)
    .with_f64("slope_exact_vs_fd_rel", slope_rel)
    .with_f64("slope_s", slope_s);
    for (t, s) in slope_at.iter().zip(&slopes) {
        case = case.with_f64(&format!("dinfarct_dt_ml_per_h_{t}h"), s.1);
    }
    Ok(case)
}

/// The outcome readout against `stroke-outcome`'s distributions, on the slice's timing curve
/// (brain-equivalent ml) of the first cohort patient.
fn outcome_reference(anatomy: &mut StrokeAnatomy) -> Case {
    let path = data_root().join("stroke-outcome/mrs_dist_probs_cumsum.csv");
    let reference = match MrsReference::load(&path) {
        Ok(r) => r,
        Err(StrokeError::DataMissing { path }) => {
            return Case::new("data", "stroke_outcome_reference/skipped", true).with(
                "message",
                format!(
                    "{path} not found (cargo xtask fetch-data); embedded outcome defaults used"
                ),
            );
        }
        Err(e) => {
            return Case::new("data", "stroke_outcome_reference", false)
                .with("error", e.to_string());
        }
    };
    let mut run = || -> Result<Case, StrokeError> {
        let patient = &cohort(1)[0];
        let perf = anatomy.occlude(patient.territory)?;
        let truth = truth_model(patient, &perf, FateConstants::default())?;
        let p = patient.fate_params().to_vec();
        let mut curve = Vec::new();
        for k in 0..=12 {
            let t = 0.5 + k as f64;
            let d = final_dead(&truth, &p, anatomy.n_voxels(), t, 24.0)?;
            curve.push((t, equivalent_ml(anatomy, &d)));
        }
        let model = OutcomeModel::calibrated(&reference, &curve)?;
        let default = OutcomeModel::default();
        let (mut dev, mut dev_default, mut ordered) = (0.0f64, 0.0f64, true);
        let mut prev = [1.0; 7];
        for &(t, v) in &curve {
            let (ours, refd, def) =
                (model.cumulative(v), reference.lvo_mt_at(t)?, default.cumulative(v));
            for k in 0..7 {
                dev = dev.max((ours[k] - refd[k]).abs());
                dev_default = dev_default.max((def[k] - refd[k]).abs());
                ordered &= ours[k] <= prev[k] + 1e-12;
            }
            prev = ours;
        }
        let mean = |c: [f64; 7]| 6.0 - c[..6].iter().sum::<f64>();
        let (first, last) = (curve[0], curve[curve.len() - 1]);
        Ok(Case::new("data", "stroke_outcome_reference/lvo_mt", ordered && dev < 0.1)
            .with_f64("max_abs_cumulative_dev_calibrated", dev)
            .with_f64("max_abs_cumulative_dev_embedded_default", dev_default)
            .with_f64("calibrated_slope_per_ml", model.slope)
            .with_f64("mean_mrs_ours_0.5h", mean(model.cumulative(first.1)))
            .with_f64("mean_mrs_reference_0.5h", mean(reference.lvo_mt_at(first.0)?))
            .with_f64("mean_mrs_ours_12.5h", mean(model.cumulative(last.1)))
            .with_f64("mean_mrs_reference_12.5h", mean(reference.lvo_mt_at(last.0)?)))
    };
    run().unwrap_or_else(|e| {
        Case::new("data", "stroke_outcome_reference", false).with("error", e.to_string())
    })
}

/// Every case of the stroke part of the suite.
pub fn run(fast: bool) -> Vec<Case> {
    let (grid, tissue) = match load_mni152(&data_root().join("mni152"), 2) {
        Ok(x) => x,
        Err(StrokeError::DataMissing { path }) => {
            return vec![
                Case::new("data", "stroke_mni152/skipped", fast)
                    .with("message", format!("{path} not found: run `cargo xtask fetch-data`")),
            ];
        }
        Err(e) => {
            return vec![
                Case::new("data", "stroke_mni152/load", false).with("error", e.to_string()),
            ];
        }
    };
    let mut cases = Vec::new();
    let slice = axial_slice(&grid, &tissue, Z_INDEX)
        .and_then(|(g, t)| StrokeAnatomy::new(g, &t, PerfusionParams::default()));
    match slice {
        Ok(mut a) => {
            let settings = super::super::models::stroke::Settings::new(fast);
            cases.extend(super::super::models::stroke::protocol_cases(
                "data",
                "stroke_mni152_z41",
                &mut a,
                &settings,
            ));
            cases.push(outcome_reference(&mut a));
        }
        Err(e) => cases.push(
            Case::new("data", "stroke_mni152_z41/anatomy", false).with("error", e.to_string()),
        ),
    }
    match three_d(grid, &tissue, fast) {
        Ok(c) => cases.push(c),
        Err(e) => {
            cases.push(Case::new("data", "stroke_mni152_3d", false).with("error", e.to_string()))
        }
    }
    cases
}
