//! Suite `convergence`: observed order of every explicit stepper on problems with exact
//! solutions, tolerance proportionality of every adaptive stepper, step-count parity of Dopri5
//! with scipy's RK45, and the second-order spatial convergence of the Fisher method of lines.
//!
//! Acceptance criteria:
//! - fixed steps: the least-squares slope of log(error) vs log(h) over 4 halvings is within
//!   ±0.2 of the method's order (two exact problems for every method, three for the
//!   fixed-step-only methods). Step ranges sit in each method's asymptotic regime and above
//!   round-off;
//! - adaptive: the global error falls strictly at every tolerance decade from rtol 1e-3 to 1e-10
//!   (atol = rtol), and the log–log slope error/tolerance lies in [0.6, 1.4];
//! - Dopri5 on Lotka–Volterra at 1e-6 takes within 15 % of scipy's 82 RK45 steps.

use crate::Case;
use neurohybrid_solve::{ConstantStep, PiController, Problem, SaveAt, Stepper, solve};
use neurohybrid_solve_explicit::{Bosh3, Dopri5, Euler, Heun, Rk4, RkState, Tsit5};
use neurohybrid_system::OdeSystem;
use neurohybrid_testkit::{
    ExactSolution, RefProblem, estimate_order, exponential_decay, fisher_wave, harmonic_oscillator,
    log_log_fit, logistic, lotka_volterra, max_abs_diff,
};
use std::time::Instant;

const SUITE: &str = "convergence";

fn problem<S: OdeSystem + Clone>(rp: &RefProblem<S>) -> Problem<S> {
    Problem::new(rp.system.clone(), rp.y0.clone(), rp.p.clone(), rp.t_span)
}

/// One case: observed order from `n0, 2n0, 4n0, 8n0` constant steps.
fn fixed_order<S, St>(rp: &RefProblem<S>, stepper: &St, n0: usize) -> Case
where
    S: ExactSolution + Clone,
    St: Stepper<S, State = RkState>,
{
    let name = format!("{}/{}/fixed", stepper.name().to_lowercase(), rp.name);
    let expected = stepper.order() as f64;
    let span = rp.t_span.1 - rp.t_span.0;
    let start = Instant::now();
    let mut hs = Vec::new();
    let mut errs = Vec::new();
    for k in 0..4 {
        let n = n0 << k;
        let sol =
            solve(&problem(rp), stepper, &ConstantStep::with_steps(rp.t_span, n), &SaveAt::Final);
        match sol {
            Ok(sol) if sol.is_success() => {
                hs.push(span / n as f64);
                errs.push(max_abs_diff(
                    sol.last().expect("final state saved"),
                    rp.final_reference(),
                ));
            }
            _ => return Case::new(SUITE, name, false).with("error", "solve failed"),
        }
    }
    let wall = start.elapsed().as_secs_f64();
    match estimate_order(&hs, &errs) {
        Ok(fit) => Case::new(SUITE, name, (fit.slope - expected).abs() <= 0.2)
            .with_f64("observed_order", fit.slope)
            .with_f64("expected_order", expected)
            .with_f64("r_squared", fit.r_squared)
            .with_f64("h_max", hs[0])
            .with_f64("error_at_h_max", errs[0])
            .with_f64("wall_s", wall),
        Err(e) => Case::new(SUITE, name, false).with("error", e.to_string()),
    }
}

/// One case: global error against rtol = atol over `tols`.
fn proportionality<S, St>(rp: &RefProblem<S>, stepper: &St, tols: &[f64]) -> Case
where
    S: OdeSystem + Clone,
    St: Stepper<S, State = RkState>,
{
    let name = format!("{}/{}/tolerance", stepper.name().to_lowercase(), rp.name);
    let start = Instant::now();
    let mut errs = Vec::new();
    let mut steps = Vec::new();
    for &tol in tols {
        match solve(&problem(rp), stepper, &PiController::new(tol, tol), &SaveAt::Final) {
            Ok(sol) if sol.is_success() => {
                errs.push(max_abs_diff(
                    sol.last().expect("final state saved"),
                    rp.final_reference(),
                ));
                steps.push(sol.stats().accepted_steps);
            }
            _ => return Case::new(SUITE, name, false).with("error", "solve failed"),
        }
    }
    let falls = errs.windows(2).all(|w| w[1] < w[0]);
    let fit = log_log_fit(tols, &errs);
    let slope = fit.as_ref().map_or(f64::NAN, |f| f.slope);
    Case::new(SUITE, name, falls && (0.6..=1.4).contains(&slope))
        .with("monotone", falls)
        .with_f64("slope", slope)
        .with_f64("rtol_min", tols[tols.len() - 1])
        .with_f64("error_at_rtol_min", errs[errs.len() - 1])
        .with("steps", steps)
        .with_f64("wall_s", start.elapsed().as_secs_f64())
}

/// Dopri5 step count against scipy 1.17.1's RK45 (82 steps, nfev 620; `solve_ivp(lv, (0, 10),
/// [1, 1], method='RK45', rtol=1e-6, atol=1e-6)`).
fn scipy_parity() -> Case {
    const SCIPY_STEPS: f64 = 82.0;
    let rp = lotka_volterra();
    match solve(&problem(&rp), &Dopri5, &PiController::new(1e-6, 1e-6), &SaveAt::Final) {
        Ok(sol) => {
            let s = sol.stats();
            let steps = s.accepted_steps as f64;
            Case::new(
                SUITE,
                "dopri5/lotka_volterra/steps_vs_scipy_rk45",
                (steps / SCIPY_STEPS - 1.0).abs() <= 0.15,
            )
            .with("steps", s.accepted_steps)
            .with("rejected", s.rejected_steps)
            .with("rhs_evals", s.rhs_evals)
            .with_f64("scipy_steps", SCIPY_STEPS)
            .with_f64("ratio", steps / SCIPY_STEPS)
        }
        Err(e) => Case::new(SUITE, "dopri5/lotka_volterra/steps_vs_scipy_rk45", false)
            .with("error", e.to_string()),
    }
}

/// Method of lines for the Fisher wave: error against the exact PDE wave at t = 5 falls as dx²
/// (time error made negligible with Tsit5 at 1e-11).
fn fisher_space_order() -> Case {
    let ns = [29, 59, 119, 239]; // dx = 2, 1, 0.5, 0.25 on [−20, 40]
    let mut dxs = Vec::new();
    let mut errs = Vec::new();
    let start = Instant::now();
    for n in ns {
        let rp = fisher_wave(n);
        let Ok(sol) =
            solve(&problem(&rp), &Tsit5, &PiController::new(1e-11, 1e-11), &SaveAt::Final)
        else {
            return Case::new(SUITE, "tsit5/fisher_wave/space", false)
                .with("error", "solve failed");
        };
        dxs.push(rp.system.dx());
        errs.push(max_abs_diff(sol.last().expect("final state saved"), rp.final_reference()));
    }
    let slope = estimate_order(&dxs, &errs).map_or(f64::NAN, |f| f.slope);
    Case::new(SUITE, "tsit5/fisher_wave/space", (slope - 2.0).abs() <= 0.2)
        .with_f64("observed_order", slope)
        .with_f64("expected_order", 2.0)
        .with_f64("error_at_dx_min", errs[errs.len() - 1])
        .with_f64("wall_s", start.elapsed().as_secs_f64())
}

/// Run the suite; `fast` keeps one exact problem per method and four tolerances.
pub fn run(fast: bool) -> Vec<Case> {
    let osc = harmonic_oscillator();
    let lgs = logistic();
    let dec = exponential_decay();
    let lv = lotka_volterra();
    // Starting step counts per method (see the module docs for how they were chosen).
    let mut cases = vec![
        fixed_order(&osc, &Euler, 640),
        fixed_order(&osc, &Heun, 80),
        fixed_order(&osc, &Rk4, 40),
        fixed_order(&osc, &Bosh3, 40),
        fixed_order(&osc, &Dopri5, 20),
        fixed_order(&osc, &Tsit5, 80),
    ];
    if !fast {
        cases.extend([
            fixed_order(&lgs, &Euler, 100),
            fixed_order(&lgs, &Heun, 40),
            fixed_order(&lgs, &Rk4, 20),
            fixed_order(&lgs, &Bosh3, 20),
            fixed_order(&lgs, &Dopri5, 20),
            fixed_order(&lgs, &Tsit5, 20),
            // Tsit5 is left out on y' = −y: on linear problems its stability polynomial matches
            // e^z nearly to sixth order, so practical step sizes show ≈ 5.3 (pre-asymptotic).
            fixed_order(&dec, &Euler, 100),
            fixed_order(&dec, &Heun, 50),
            fixed_order(&dec, &Rk4, 10),
        ]);
    }
    let tols: Vec<f64> = if fast {
        vec![1e-3, 1e-5, 1e-7, 1e-9]
    } else {
        (3..=10).map(|k| 10f64.powi(-k)).collect()
    };
    cases.push(proportionality(&lv, &Bosh3, &tols));
    cases.push(proportionality(&lv, &Dopri5, &tols));
    cases.push(proportionality(&lv, &Tsit5, &tols));
    if !fast {
        cases.push(proportionality(&osc, &Bosh3, &tols));
        cases.push(proportionality(&osc, &Dopri5, &tols));
        cases.push(proportionality(&osc, &Tsit5, &tols));
        cases.push(fisher_space_order());
    }
    cases.push(scipy_parity());
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_subset_passes() {
        let cases = run(true);
        assert!(cases.len() >= 10);
        for c in &cases {
            assert!(c.passed, "{}", c.to_json_line());
        }
    }
}
