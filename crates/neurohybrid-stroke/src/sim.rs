//! Time integration of a fate model through the reperfusion switch.
//!
//! Reperfusion changes the right-hand side at the treatment time `T` and leaves the state
//! unchanged, so a run is two solves: `[0, T]` with the occluded system and `[T, t_end]` from
//! `y(T)` with the reperfused one. Any model that has the two phases (mechanistic, neural,
//! hybrid) is simulated by the same code ([`Phased`]).

use neurohybrid_solve::{PiController, Problem, SaveAt, solve};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_system::OdeSystem;

use crate::error::{Result, StrokeError};

/// Relative tolerance of the fate integrations (the fractions are O(1)).
pub const RTOL: f64 = 1e-6;
/// Absolute tolerance of the fate integrations.
pub const ATOL: f64 = 1e-8;

/// A model with an occluded and a reperfused right-hand side sharing one parameter vector.
pub trait Phased {
    /// The system type of both phases.
    type System: OdeSystem + Clone;
    /// The system before reperfusion.
    fn occluded(&self) -> &Self::System;
    /// The system after reperfusion.
    fn reperfused(&self) -> &Self::System;
}

/// The controller used for every fate solve.
pub fn controller() -> PiController {
    PiController::new(RTOL, ATOL).with_max_steps(200_000)
}

/// Solves `system` from `y0` at `t0` and returns the states at `times` (all in `[t0, t1]`,
/// ascending) and at `t1`.
fn segment<S: OdeSystem + Clone>(
    system: &S,
    params: &[f64],
    y0: &[f64],
    (t0, t1): (f64, f64),
    times: &[f64],
) -> Result<(Vec<Vec<f64>>, Vec<f64>)> {
    if t1 <= t0 {
        return Ok((times.iter().map(|_| y0.to_vec()).collect(), y0.to_vec()));
    }
    let mut save: Vec<f64> = times.iter().copied().filter(|&t| t > t0).collect();
    let n_at_start = times.len() - save.len();
    save.push(t1);
    let problem = Problem::new(system.clone(), y0.to_vec(), params.to_vec(), (t0, t1));
    let sol = solve(&problem, &Tsit5, &controller(), &SaveAt::Times(save))?;
    if !sol.is_success() {
        return Err(StrokeError::IntegrationFailed { status: format!("{:?}", sol.status()) });
    }
    let mut out: Vec<Vec<f64>> = (0..n_at_start).map(|_| y0.to_vec()).collect();
    for k in 0..sol.len() - 1 {
        out.push(sol.y(k).to_vec());
    }
    let last = sol.y(sol.len() - 1).to_vec();
    Ok((out, last))
}

/// States of `model` at `times` (ascending, `≥ 0`) from onset with healthy tissue `y0`, with
/// reperfusion at `t_treat` (`f64::INFINITY`: never).
///
/// # Errors
/// Unsorted or negative times; an integration that does not finish.
pub fn simulate<M: Phased>(
    model: &M,
    params: &[f64],
    y0: &[f64],
    t_treat: f64,
    times: &[f64],
) -> Result<Vec<Vec<f64>>> {
    if times.windows(2).any(|w| w[1] < w[0]) || times.first().is_some_and(|&t| t < 0.0) {
        return Err(StrokeError::InvalidParameter {
            name: "times",
            value: times[0],
            reason: "must be ascending and ≥ 0",
        });
    }
    if t_treat.is_nan() || t_treat < 0.0 {
        return Err(StrokeError::InvalidParameter {
            name: "t_treat",
            value: t_treat,
            reason: "must be ≥ 0",
        });
    }
    let t_end = times.last().copied().unwrap_or(0.0);
    let split = times.partition_point(|&t| t <= t_treat);
    let t_switch = t_treat.min(t_end);
    let (mut out, y_t) = segment(model.occluded(), params, y0, (0.0, t_switch), &times[..split])?;
    if split < times.len() {
        let (after, _) =
            segment(model.reperfused(), params, &y_t, (t_treat, t_end), &times[split..])?;
        out.extend(after);
    }
    Ok(out)
}
