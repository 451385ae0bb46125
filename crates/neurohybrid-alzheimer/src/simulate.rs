//! Forward solves shared by the cohort generator, the fits and the demo.

use neurohybrid_solve::sensitivity::{Checkpointing, DiscreteAdjoint};
use neurohybrid_solve::{PiController, Problem, SaveAt, solve};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_system::OdeSystem;

use crate::error::{AlzheimerError, Result};

/// Relative tolerance of every solve in this crate: 1e-6 keeps the solver error four orders
/// below the observation noise (SUVR noise 0.03 ≈ 0.02 in concentration), so fits see data,
/// not integration error.
pub const RTOL: f64 = 1e-6;
/// Absolute tolerance (concentrations are O(1)).
pub const ATOL: f64 = 1e-8;

/// The step-size controller used for every solve: PI control at [`RTOL`] / [`ATOL`].
pub fn controller() -> PiController {
    PiController::new(RTOL, ATOL)
}

/// The gradient method of every fit: the discrete adjoint keeping every step's state (a few
/// hundred states of 68 values — no recomputation is worth saving that memory).
pub fn adjoint() -> DiscreteAdjoint {
    DiscreteAdjoint::new(Checkpointing::All)
}

/// Solves `system` from `y0` at `t0` and returns the states at `times` (row-major,
/// `times.len() × n`). Tsit5: the spreading models are non-stiff at connectome sizes
/// (`κ λ_max` of a few per year over decades), so an explicit method beats an implicit one.
///
/// # Errors
/// [`AlzheimerError::Solve`] for misuse, [`AlzheimerError::SolveFailed`] if the solve stops.
pub fn trajectory<S: OdeSystem>(
    system: S,
    y0: &[f64],
    p: &[f64],
    t0: f64,
    times: &[f64],
) -> Result<Vec<f64>> {
    let t1 = *times.last().unwrap_or(&t0);
    if times.is_empty() || t1 <= t0 {
        return Ok(times.iter().flat_map(|_| y0.iter().copied()).collect());
    }
    let problem = Problem::new(system, y0.to_vec(), p.to_vec(), (t0, t1));
    let sol = solve(&problem, &Tsit5, &controller(), &SaveAt::Times(times.to_vec()))?;
    if !sol.is_success() {
        return Err(AlzheimerError::SolveFailed { status: format!("{:?}", sol.status()) });
    }
    Ok(sol.ys().to_vec())
}

/// `n` equally spaced times from `t0` to `t1` inclusive.
pub fn linspace(t0: f64, t1: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![t1],
        _ => (0..n).map(|k| t0 + (t1 - t0) * k as f64 / (n - 1) as f64).collect(),
    }
}
