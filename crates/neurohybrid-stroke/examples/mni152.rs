//! The stroke model on the fetched MNI152 anatomy at 2 mm (`data/mni152/`): an axial slice
//! through the protocol, then the 3D perfusion problem and timing curve.

use std::path::PathBuf;
use std::time::Instant;

use neurohybrid_stroke::anatomy::{StrokeAnatomy, axial_slice, load_mni152};
use neurohybrid_stroke::evaluate::{MODEL_NAMES, run_patient};
use neurohybrid_stroke::fate::FateConstants;
use neurohybrid_stroke::fit::TrainConfig;
use neurohybrid_stroke::outcome::timing_curve;
use neurohybrid_stroke::patient::{Protocol, cohort, truth_model};
use neurohybrid_stroke::perfusion::{Occlusion, PerfusionParams, Territory};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/mni152");
    let t = Instant::now();
    let (grid, tissue) = load_mni152(&dir, 2)?;
    println!(
        "loaded {:?}, {} active ({:.1} s)",
        grid.shape(),
        grid.n_active(),
        t.elapsed().as_secs_f64()
    );
    let slice_too = std::env::args().nth(1).as_deref() != Some("3d");
    if slice_too {
        let (g2, t2) = axial_slice(&grid, &tissue, 41)?;
        let mut slice = StrokeAnatomy::new(g2, &t2, PerfusionParams::default())?;
        let run = run_patient(
            &mut slice,
            &cohort(1)[0],
            &Protocol::default(),
            FateConstants::default(),
            &TrainConfig::default(),
        )?;
        for (n, s) in MODEL_NAMES.iter().zip(&run.scores) {
            println!(
                "slice {n}: dice {:.3} rmse {:.3} final {:.2} ml (truth {:.2})",
                s.heldout_dice, s.heldout_rmse, s.final_ml, s.true_final_ml
            );
        }
    }
    let t = Instant::now();
    let mut a = StrokeAnatomy::new(grid, &tissue, PerfusionParams::default())?;
    let setup = t.elapsed().as_secs_f64();
    let occ = Occlusion { territory: Territory::LeftMca, severity: 1.0, collateral: 0.3 };
    let f = a.perfusion().source(Some(&occ))?;
    let t = Instant::now();
    let map = a.perfusion().solve(Some(&occ))?;
    println!(
        "3D: {} tissue voxels, setup+factorize {setup:.1} s, solve {:.2} s, flux imbalance {:.1e}, tissue {:.0} ml",
        a.n_voxels(),
        t.elapsed().as_secs_f64(),
        map.flux_imbalance(&f),
        a.tissue_ml()
    );
    let p = &cohort(1)[0];
    let perf = a.occlude(Territory::LeftMca)?;
    println!("left MCA territory {:.0} ml", a.volume_ml(&perf.weight));
    let truth = truth_model(p, &perf, FateConstants::default())?;
    let t = Instant::now();
    let curve = timing_curve(&a, &truth, &p.fate_params().to_vec(), &[2.0, 4.5, 8.0], 24.0)?;
    println!(
        "3D timing (reperfusion at 2, 4.5, 8 h): {curve:.1?} ml ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
