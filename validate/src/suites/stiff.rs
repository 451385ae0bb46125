//! Suite `stiff`: accuracy and work of every stiff stepper on the classical stiff test problems
//! against published references (Hairer & Wanner II; Mazzia & Magherini, "Test Set for IVP
//! Solvers", release 2.4).
//!
//! Problems and references (shared/REFERENCES.md):
//! - Robertson to `t = 40` and `t = 1e11` (Test Set reference values),
//! - van der Pol, `μ = 1000`, to `t = 2000`.
//!
//! Accuracy is the Test Set's *mixed* significant-digit count
//! `mescd = −log10 max_i |y_i − ref_i| / (atol/rtol + |ref_i|)`: relative where a component is
//! large, absolute (scaled by `rtol/atol`) where it is below `atol/rtol`, so Robertson's tiny
//! `y₂ ≈ 8e-14` at `t = 1e11` is judged at the accuracy the tolerances asked for.
//!
//! Acceptance: `mescd ≥ 6` at `rtol = 1e-8` with `atol = 1e-14` (Robertson, whose components
//! span 14 decades) or `atol = 1e-10` (van der Pol). Every case records steps, rejected and
//! failed steps, rhs / Jacobian / LU / linear-solve counts and wall time.
//!
//! Methods: BDF (variable order 1–5), Rodas4, Rodas5P, TR-BDF2, ESDIRK4, Kvaerno5. Implicit Euler is
//! exempt (first order: 6 digits would take ~10⁸ steps); KenCarp4 is an IMEX method for
//! `Split` systems and on an unsplit problem is just its implicit ESDIRK part, so it is not
//! run here.
//!
//! `fast` runs Robertson to `t = 40` only.

use crate::Case;
use neurohybrid_solve::{PiController, Problem, SaveAt, Stepper, solve};
use neurohybrid_solve_implicit::{Bdf, Esdirk4, Kvaerno5, Rodas4, Rodas5P, Tolerances, TrBdf2};
use neurohybrid_system::OdeSystem;
use neurohybrid_testkit::{RefProblem, robertson, van_der_pol_stiff};
use std::time::Instant;

const SUITE: &str = "stiff";
const RTOL: f64 = 1e-8;
const MIN_DIGITS: f64 = 6.0;
/// Van der Pol's `atol` (see the module docs).
const VDP_ATOL: f64 = 1e-10;

/// The Test Set's mixed significant digits (see the module docs).
pub fn mescd(y: &[f64], reference: &[f64], rtol: f64, atol: f64) -> f64 {
    let worst = y
        .iter()
        .zip(reference)
        .map(|(a, r)| (a - r).abs() / (atol / rtol + r.abs()))
        .fold(0.0, f64::max);
    -worst.log10()
}

/// One (method, problem) case: solve to `t1`, compare with `reference`.
fn case<S, St>(
    method: &str,
    stepper: &St,
    rp: &RefProblem<S>,
    label: &str,
    t1: f64,
    atol: f64,
) -> Case
where
    S: OdeSystem + Clone,
    St: Stepper<S>,
{
    let name = format!("{method}/{label}");
    let Some(reference) = rp.reference_at(t1) else {
        return Case::new(SUITE, name, false).with("error", "no reference at t1");
    };
    let problem = Problem::new(rp.system.clone(), rp.y0.clone(), rp.p.clone(), (rp.t_span.0, t1));
    let controller = PiController::new(RTOL, atol);
    let start = Instant::now();
    let sol = match solve(&problem, stepper, &controller, &SaveAt::Final) {
        Ok(sol) => sol,
        Err(e) => return Case::new(SUITE, name, false).with("error", e.to_string()),
    };
    let wall = start.elapsed().as_secs_f64();
    let st = *sol.stats();
    let digits = match sol.last() {
        Some(y) if sol.is_success() => mescd(y, reference, RTOL, atol),
        _ => f64::NAN,
    };
    Case::new(SUITE, name, sol.is_success() && digits >= MIN_DIGITS)
        .with("status", format!("{:?}", sol.status()))
        .with_f64("mescd", digits)
        .with_f64("rtol", RTOL)
        .with_f64("atol", atol)
        .with("steps", st.accepted_steps)
        .with("rejected", st.rejected_steps)
        .with("failed", st.failed_steps)
        .with("rhs", st.rhs_evals)
        .with("jacobians", st.jacobian_evals)
        .with("lu", st.factorizations)
        .with("linear_solves", st.linear_solves)
        .with_f64("wall_s", wall)
}

/// Every (method, problem) pair that applies to `S`.
fn all_methods<S>(rp: &RefProblem<S>, label: &str, t1: f64, atol: f64) -> Vec<Case>
where
    S: OdeSystem + neurohybrid_system::Jacobian + Clone,
{
    let tol = Tolerances::new(RTOL, atol);
    vec![
        case("bdf", &Bdf::new(tol.clone()), rp, label, t1, atol),
        case("rodas4", &Rodas4::new(), rp, label, t1, atol),
        case("rodas5p", &Rodas5P::new(), rp, label, t1, atol),
        case("trbdf2", &TrBdf2::with_tolerances(RTOL, atol), rp, label, t1, atol),
        case("esdirk4", &Esdirk4::with_tolerances(RTOL, atol), rp, label, t1, atol),
        case("kvaerno5", &Kvaerno5::with_tolerances(RTOL, atol), rp, label, t1, atol),
    ]
}

/// Runs the suite (`fast`: Robertson to t = 40 only).
pub fn run(fast: bool) -> Vec<Case> {
    let rob = robertson();
    let mut cases = all_methods(&rob, "robertson_t40", 40.0, 1e-14);
    if !fast {
        cases.extend(all_methods(&rob, "robertson_t1e11", 1e11, 1e-14));
        let vdp = van_der_pol_stiff();
        cases.extend(all_methods(&vdp, "vanderpol_mu1000_t2000", vdp.t_span.1, VDP_ATOL));
    }
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_digits_follow_the_test_set_definition() {
        // Relative for large components, scaled absolute below atol/rtol = 1e-2.
        // |err| = 1e-7 against a scale of atol/rtol + |ref| = 1.01.
        assert!((mescd(&[1.0 + 1e-7], &[1.0], 1e-2, 1e-4) - (7.0 + 1.01f64.log10())).abs() < 1e-6);
        assert!((mescd(&[1e-5], &[0.0], 1e-2, 1e-4) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn fast_subset_passes() {
        let cases = run(true);
        assert!(cases.len() >= 2);
        for c in &cases {
            assert!(c.passed, "{}", c.to_json_line());
        }
    }
}
