//! Stroke on the real ICBM152 2009a anatomy at 2 mm (`data/mni152/`, or
//! `$NEUROHYBRID_DATA/mni152/`, from `cargo xtask fetch-data`): the 3D perfusion problem with a
//! left-MCA occlusion — flux balance, territory and lesion volumes in real millilitres, and the
//! treatment-timing curve (≈ 30 s) — and, in a full run only, the models protocol on an axial
//! slice through the basal ganglia (≈ 7000 tissue voxels; the network training makes it take
//! several minutes per patient). Skipped with a message when the maps are absent.

use std::path::PathBuf;
use std::time::Instant;

use neurohybrid_stroke::StrokeError;
use neurohybrid_stroke::anatomy::{StrokeAnatomy, axial_slice, load_mni152};
use neurohybrid_stroke::fate::FateConstants;
use neurohybrid_stroke::outcome::{timing_curve, volumes};
use neurohybrid_stroke::patient::{Patient, truth_model};
use neurohybrid_stroke::perfusion::{Occlusion, PerfusionParams, Territory};

use crate::Case;

fn data_dir() -> PathBuf {
    match std::env::var_os("NEUROHYBRID_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data"),
    }
    .join("mni152")
}

/// 2 mm axial index of MNI z ≈ +10 mm (basal ganglia, all three territories in plane).
const Z_INDEX: usize = 41;

fn three_d(
    grid: neurohybrid_mesh::Grid,
    tissue: &neurohybrid_mesh::TissueMaps,
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
    Ok(Case::new("data", "stroke_mni152_3d/left_mca", imbalance < 1e-10 && monotone)
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
        .with_f64("fate_s", fate_s))
}

/// Every case of the stroke part of the suite.
pub fn run(fast: bool) -> Vec<Case> {
    let (grid, tissue) = match load_mni152(&data_dir(), 2) {
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
    match three_d(grid.clone(), &tissue) {
        Ok(c) => cases.push(c),
        Err(e) => {
            cases.push(Case::new("data", "stroke_mni152_3d", false).with("error", e.to_string()))
        }
    }
    if fast {
        return cases;
    }
    let slice = axial_slice(&grid, &tissue, Z_INDEX)
        .and_then(|(g, t)| StrokeAnatomy::new(g, &t, PerfusionParams::default()));
    match slice {
        Ok(mut a) => {
            let mut settings = super::super::models::stroke::Settings::new(fast);
            settings.patients = 2;
            cases.extend(super::super::models::stroke::protocol_cases(
                "data",
                "stroke_mni152_z41",
                &mut a,
                &settings,
            ));
        }
        Err(e) => cases.push(
            Case::new("data", "stroke_mni152_z41/anatomy", false).with("error", e.to_string()),
        ),
    }
    if !fast {
        match three_d(grid, &tissue) {
            Ok(c) => cases.push(c),
            Err(e) => cases
                .push(Case::new("data", "stroke_mni152_3d", false).with("error", e.to_string())),
        }
    }
    cases
}
