//! Forward simulation of a scenario: the model solved from onset to each scan, with its
//! treatments, and the imaging observation of every scan.

use std::time::Instant;

use neurohybrid_solve::{PiController, Problem, SaveAt, Solution, solve};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_solve_implicit::KenCarp4;
use neurohybrid_system::{Split, Sum};
use serde::{Deserialize, Serialize};

use crate::anatomy::{Anatomy, GridInfo};
use crate::config::{Method, Scenario};
use crate::error::{GliomaError, Result};
use crate::model::{T_START, add_impulses, choose_method, parts};
use crate::observe::{Segmentation, segment};
use crate::progress::Progress;

/// The result of [`simulate`]: density and segmentation at every scan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Simulation {
    /// The grid (full box, mask, tissue background).
    pub grid: GridInfo,
    /// Scan times (days since onset).
    pub days: Vec<f64>,
    /// Cell density at each scan, on the full box (0 outside the mask), x fastest.
    pub density: Vec<Vec<f32>>,
    /// Segmentation at each scan on the full box: 0 none, 1 edema, 2 enhancing core.
    pub segmentation: Vec<Vec<u8>>,
    /// Whole-tumour (edema + core) volume at each scan (mL; mm² per unit depth ×1e-3 in 2D).
    pub tumor_volume_ml: Vec<f64>,
    /// Enhancing-core volume at each scan (mL).
    pub core_volume_ml: Vec<f64>,
    /// The integrator used (`"Tsit5"`, `"KenCarp4"`).
    pub method: String,
    /// Accepted steps over all scan intervals.
    pub steps: usize,
    /// Active cells (the state size).
    pub n_cells: usize,
    /// Wall time of the solve (s).
    pub wall_time_s: f64,
}

/// Solves the scenario (including its `truth` physics, if any) from onset through every scan
/// and observes each scan. Progress: stage `"simulate"`, one tick per scan.
///
/// # Errors
/// Invalid scenarios (see [`Scenario::validate`]) and [`GliomaError::SolveFailed`].
pub fn simulate(scenario: &Scenario, progress: &mut dyn FnMut(Progress)) -> Result<Simulation> {
    scenario.validate_numbers()?;
    let anatomy = Anatomy::build(&scenario.anatomy)?;
    anatomy.check_seed(&scenario.seed)?;
    let start = Instant::now();
    let growth = truth_growth(scenario, &anatomy);
    let params = crate::model::scenario_params(scenario);
    let (states, method, steps) =
        solve_at(scenario, &anatomy, growth, &params, &scenario.scans.days, progress)?;
    let wall_time_s = start.elapsed().as_secs_f64();
    let vol = anatomy.grid.cell_volume() * 1e-3;
    let mut sim = Simulation {
        grid: anatomy.info(),
        days: scenario.scans.days.clone(),
        density: Vec::new(),
        segmentation: Vec::new(),
        tumor_volume_ml: Vec::new(),
        core_volume_ml: Vec::new(),
        method: format!("{method:?}"),
        steps,
        n_cells: anatomy.n(),
        wall_time_s,
    };
    for c in &states {
        let seg = segment(c, &scenario.imaging);
        sim.tumor_volume_ml
            .push(seg.iter().filter(|&&s| s != Segmentation::None).count() as f64 * vol);
        sim.core_volume_ml
            .push(seg.iter().filter(|&&s| s == Segmentation::Core).count() as f64 * vol);
        sim.density.push(anatomy.to_box(c));
        let mut full = vec![0u8; anatomy.grid.n_voxels()];
        for (a, &v) in anatomy.grid.active_voxels().iter().enumerate() {
            full[v] = seg[a] as u8;
        }
        sim.segmentation.push(full);
    }
    Ok(sim)
}

/// The growth multiplier `g = 1 + κ p_wm` of a scenario's truth physics (`None`: plain model).
pub fn truth_growth(scenario: &Scenario, anatomy: &Anatomy) -> Option<Vec<f64>> {
    scenario.truth.map(|t| anatomy.wm.iter().map(|w| 1.0 + t.wm_proliferation_gain * w).collect())
}

/// Solves the mechanistic model (with growth multiplier `growth`) at parameters
/// `[D_w, ρ, seed…]` and returns the states at `days`, the method used and the accepted
/// steps. Each interval between scans is one solve, so progress ticks once per scan.
///
/// # Errors
/// [`GliomaError::SolveFailed`] if a solve does not reach its end.
pub fn solve_at(
    scenario: &Scenario,
    anatomy: &Anatomy,
    growth: Option<Vec<f64>>,
    params: &[f64],
    days: &[f64],
    progress: &mut dyn FnMut(Progress),
) -> Result<(Vec<Vec<f64>>, Method, usize)> {
    let t_end = days.last().copied().unwrap_or(1.0);
    let method = choose_method(scenario.solver.method, anatomy, params[0], scenario.tumor.r, t_end);
    let ctrl =
        PiController::new(scenario.solver.rtol, scenario.solver.atol).with_max_steps(200_000);
    let (diff, react) = parts(scenario, anatomy, growth)?;
    let n = anatomy.n();
    let mut y = vec![0.0; n];
    let mut out = Vec::with_capacity(days.len());
    let mut steps = 0;
    let mut t0 = T_START;
    let total = days.len();
    match method {
        Method::KenCarp4 => {
            let sys = Split::new(diff, react)?;
            let mut problem = Problem::new(sys, y.clone(), params.to_vec(), (t0, days[0]));
            add_impulses(&mut problem, scenario, anatomy, crate::model::PARAM_SEED);
            for (k, &d) in days.iter().enumerate() {
                problem.set_t_span((t0, d));
                problem.y0_mut().copy_from_slice(&y);
                let sol = solve(&problem, &KenCarp4::new(), &ctrl, &SaveAt::Final)?;
                steps += take(&sol, &mut y, d)?;
                out.push(y.clone());
                t0 = d;
                progress(Progress::new("simulate", k + 1, total));
            }
        }
        _ => {
            let sys = Sum::new(diff, react)?;
            let mut problem = Problem::new(sys, y.clone(), params.to_vec(), (t0, days[0]));
            add_impulses(&mut problem, scenario, anatomy, crate::model::PARAM_SEED);
            for (k, &d) in days.iter().enumerate() {
                problem.set_t_span((t0, d));
                problem.y0_mut().copy_from_slice(&y);
                let sol = solve(&problem, &Tsit5, &ctrl, &SaveAt::Final)?;
                steps += take(&sol, &mut y, d)?;
                out.push(y.clone());
                t0 = d;
                progress(Progress::new("simulate", k + 1, total));
            }
        }
    }
    let method = if method == Method::Auto { Method::Tsit5 } else { method };
    Ok((out, method, steps))
}

fn take(sol: &Solution, y: &mut [f64], day: f64) -> Result<usize> {
    if !sol.is_success() {
        return Err(GliomaError::SolveFailed {
            what: format!("model up to day {day}"),
            status: format!("{:?}", sol.status()),
        });
    }
    y.copy_from_slice(sol.last().expect("a successful solve has a final state"));
    Ok(sol.stats().accepted_steps)
}
