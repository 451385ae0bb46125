//! BDF and Rodas4 through the real solve loop: stiff references, convergence orders, dense
//! output, sparse backend, failure statuses and a stats snapshot.

use neurohybrid_solve::{
    ConstantStep, PiController, Problem, SaveAt, Scale, Solution, Status, Stepper, solve,
};
use neurohybrid_solve_implicit::{Bdf, LinearBackend, Rodas4, Tolerances, WConfig};
use neurohybrid_system::{CsrMatrix, Jacobian, OdeSystem, SparsityPattern, dense_pattern};
use neurohybrid_testkit::{
    RefProblem, estimate_order, fisher_wave, harmonic_oscillator, log_log_fit, max_abs_diff,
    robertson, van_der_pol_stiff,
};

/// The Test Set's mixed significant digits `−log10 max |y − ref| / (atol/rtol + |ref|)`.
fn mescd(y: &[f64], r: &[f64], rtol: f64, atol: f64) -> f64 {
    let m =
        y.iter().zip(r).map(|(a, b)| (a - b).abs() / (atol / rtol + b.abs())).fold(0.0, f64::max);
    -m.log10()
}

fn problem<S: OdeSystem + Clone>(rp: &RefProblem<S>, t1: f64) -> Problem<S> {
    Problem::new(rp.system.clone(), rp.y0.clone(), rp.p.clone(), (rp.t_span.0, t1))
}

fn adaptive<S: OdeSystem, St: Stepper<S>>(
    p: &Problem<S>,
    st: &St,
    rtol: f64,
    atol: f64,
) -> Solution {
    solve(p, st, &PiController::new(rtol, atol), &SaveAt::Final).expect("valid problem")
}

fn bdf(rtol: f64, atol: f64) -> Bdf {
    Bdf::new(Tolerances::new(rtol, atol))
}

#[test]
fn robertson_and_van_der_pol_references_to_six_digits() {
    let (rtol, atol) = (1e-8, 1e-14);
    let rob = robertson();
    for t1 in [40.0, 1e11] {
        let r = rob.reference_at(t1).unwrap();
        let p = problem(&rob, t1);
        for sol in
            [adaptive(&p, &bdf(rtol, atol), rtol, atol), adaptive(&p, &Rodas4::new(), rtol, atol)]
        {
            assert!(sol.is_success(), "{:?}", sol.status());
            let d = mescd(sol.last().unwrap(), r, rtol, atol);
            assert!(d >= 6.0, "Robertson t={t1}: {d} digits");
        }
    }
    let vdp = van_der_pol_stiff();
    let p = problem(&vdp, vdp.t_span.1);
    let atol = 1e-10;
    for sol in
        [adaptive(&p, &bdf(rtol, atol), rtol, atol), adaptive(&p, &Rodas4::new(), rtol, atol)]
    {
        let d = mescd(sol.last().unwrap(), vdp.final_reference(), rtol, atol);
        assert!(d >= 6.0, "van der Pol: {d} digits");
    }
}

#[test]
fn bdf_stats_snapshot_on_robertson_t40() {
    // Pinned so that efficiency regressions (more steps, Jacobians or LUs) fail a test; a
    // deliberate change to the method updates these numbers in review.
    let (rtol, atol) = (1e-8, 1e-14);
    let sol = adaptive(&problem(&robertson(), 40.0), &bdf(rtol, atol), rtol, atol);
    let s = sol.stats();
    let got = (
        s.accepted_steps,
        s.rejected_steps,
        s.failed_steps,
        s.rhs_evals,
        s.jacobian_evals,
        s.factorizations,
        s.linear_solves,
    );
    assert_eq!(got, (401, 4, 0, 590, 9, 40, 588), "{s:?}");
}

/// Fixed-order BDF at tolerances 1e-4..1e-9: the error falls like N^{−k} in the number of
/// steps N (work-precision slope = order).
#[test]
fn fixed_order_bdf_has_its_order() {
    let rp = harmonic_oscillator();
    let p = problem(&rp, rp.t_span.1);
    for k in 1..=5 {
        let (mut steps, mut errs) = (Vec::new(), Vec::new());
        let tols: &[f64] =
            if k == 1 { &[1e-4, 1e-5, 1e-6, 1e-7] } else { &[1e-5, 1e-6, 1e-7, 1e-8, 1e-9] };
        for &tol in tols {
            let st = bdf(tol, tol).with_orders(k, k).unwrap().with_ndf(false);
            let sol = adaptive(&p, &st, tol, tol);
            assert!(sol.is_success());
            steps.push(sol.stats().accepted_steps as f64);
            errs.push(max_abs_diff(sol.last().unwrap(), rp.final_reference()));
        }
        let fit = log_log_fit(&steps, &errs).unwrap();
        assert!(
            (-fit.slope - k as f64).abs() < 0.5,
            "BDF{k}: slope {} ({steps:?}, {errs:?})",
            fit.slope
        );
    }
}

#[test]
fn variable_order_bdf_is_tolerance_proportional() {
    let rp = harmonic_oscillator();
    let p = problem(&rp, rp.t_span.1);
    let tols = [1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10];
    let errs: Vec<f64> = tols
        .iter()
        .map(|&tol| {
            max_abs_diff(
                adaptive(&p, &bdf(tol, tol), tol, tol).last().unwrap(),
                rp.final_reference(),
            )
        })
        .collect();
    let fit = log_log_fit(&tols, &errs).unwrap();
    assert!((0.7..=1.3).contains(&fit.slope), "slope {} {errs:?}", fit.slope);
    assert!(errs.windows(2).all(|w| w[1] < w[0]), "{errs:?}");
}

#[test]
fn rodas4_has_order_four_under_constant_steps() {
    let rp = harmonic_oscillator();
    let p = problem(&rp, rp.t_span.1);
    let (mut hs, mut errs) = (Vec::new(), Vec::new());
    for n in [40, 80, 160, 320] {
        let sol =
            solve(&p, &Rodas4::new(), &ConstantStep::with_steps(rp.t_span, n), &SaveAt::Final)
                .unwrap();
        hs.push(10.0 / n as f64);
        errs.push(max_abs_diff(sol.last().unwrap(), rp.final_reference()));
    }
    let fit = estimate_order(&hs, &errs).unwrap();
    assert!((fit.slope - 4.0).abs() < 0.25, "observed order {} {errs:?}", fit.slope);
}

/// `y' = −(y − cos t) · 50` has `∂f/∂t ≠ 0`: Rodas4 keeps order 4 only with the `∂f/∂t` term.
#[derive(Clone)]
struct Relax(SparsityPattern);
impl OdeSystem for Relax {
    fn n_states(&self) -> usize {
        1
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs(&self, t: f64, y: &[f64], _p: &[f64], dy: &mut [f64]) {
        dy[0] = -50.0 * (y[0] - t.cos());
    }
}
impl Jacobian for Relax {
    fn sparsity(&self) -> &SparsityPattern {
        &self.0
    }
    fn jacobian(&self, _t: f64, _y: &[f64], _p: &[f64], out: &mut CsrMatrix) {
        out.values_mut()[0] = -50.0;
    }
}

fn relax_exact(t: f64) -> f64 {
    // y(0) = 1: y = (2500 cos t + 50 sin t)/2501 + e^{−50t}/2501
    (2500.0 * t.cos() + 50.0 * t.sin() + (-50.0 * t).exp()) / 2501.0
}

#[test]
fn rodas4_non_autonomous_order_needs_the_time_derivative() {
    let p = Problem::new(Relax(dense_pattern(1)), [1.0], [], (0.0, 2.0));
    let order_of = |st: &Rodas4| {
        let (mut hs, mut errs) = (Vec::new(), Vec::new());
        for n in [50, 100, 200, 400] {
            let sol =
                solve(&p, st, &ConstantStep::with_steps((0.0, 2.0), n), &SaveAt::Final).unwrap();
            hs.push(2.0 / n as f64);
            errs.push((sol.last().unwrap()[0] - relax_exact(2.0)).abs());
        }
        estimate_order(&hs, &errs).unwrap().slope
    };
    let with_dt = order_of(&Rodas4::new());
    let without = order_of(&Rodas4::new().autonomous());
    assert!(with_dt > 3.6, "with ∂f/∂t: {with_dt}");
    assert!(without < with_dt - 0.5, "ignoring ∂f/∂t should lose order: {without} vs {with_dt}");
}

#[test]
fn dense_output_is_accurate_inside_steps() {
    let rp = harmonic_oscillator();
    let p = problem(&rp, rp.t_span.1);
    let ts: Vec<f64> = (1..198).map(|i| i as f64 * 0.0503).collect();
    let exact = |t: f64| [t.cos(), -t.sin()];
    let tol = 1e-8;
    let ctl = PiController::new(tol, tol);
    // The interpolant inside a step must be about as accurate as the solution at the step ends
    // (the global error there, which for BDF is ~100× tol on this oscillatory problem).
    let check = |dense: Solution, ends: Solution, what: &str| {
        assert!(dense.is_success() && ends.is_success());
        let worst = ts
            .iter()
            .enumerate()
            .map(|(i, &t)| max_abs_diff(dense.y(i), &exact(t)))
            .fold(0.0, f64::max);
        let at_ends = ends.iter().map(|(t, y)| max_abs_diff(y, &exact(t))).fold(0.0, f64::max);
        eprintln!("{what}: dense {worst:e}, step ends {at_ends:e}");
        assert!(
            worst < 3.0 * at_ends + tol,
            "{what}: dense error {worst:e} vs step ends {at_ends:e}"
        );
    };
    let save = SaveAt::Times(ts.clone());
    let b = bdf(tol, tol);
    check(solve(&p, &b, &ctl, &save).unwrap(), solve(&p, &b, &ctl, &SaveAt::Steps).unwrap(), "BDF");
    let r = Rodas4::new();
    check(
        solve(&p, &r, &ctl, &save).unwrap(),
        solve(&p, &r, &ctl, &SaveAt::Steps).unwrap(),
        "Rodas4",
    );
    // Interpolation on the stiff Robertson problem stays consistent with the step ends.
    let rob = robertson();
    let pr = problem(&rob, 40.0);
    let sol = solve(
        &pr,
        &bdf(1e-8, 1e-14),
        &PiController::new(1e-8, 1e-14),
        &SaveAt::Times(vec![20.0, 40.0]),
    )
    .unwrap();
    let fine = adaptive(&problem(&rob, 20.0), &Rodas4::new(), 1e-10, 1e-16);
    assert!(mescd(sol.y(0), fine.last().unwrap(), 1e-8, 1e-14) > 6.0);
}

#[test]
fn sparse_backend_agrees_with_dense() {
    let rp = fisher_wave(40);
    let p = problem(&rp, rp.t_span.1);
    let tol = 1e-7;
    let run = |backend| {
        let w = WConfig { backend, ..bdf(tol, tol).w };
        let st = bdf(tol, tol).with_w_config(w).unwrap();
        adaptive(&p, &st, tol, tol)
    };
    let (d, s) = (run(LinearBackend::Dense), run(LinearBackend::Sparse));
    assert!(max_abs_diff(d.last().unwrap(), s.last().unwrap()) < 1e-9);
    assert_eq!(d.stats().accepted_steps, s.stats().accepted_steps);
    let w = WConfig { backend: LinearBackend::Sparse, ..WConfig::default() };
    let r = solve(
        &p,
        &Rodas4::new().with_w_config(w).unwrap(),
        &PiController::new(tol, tol),
        &SaveAt::Final,
    )
    .unwrap();
    assert!(max_abs_diff(r.last().unwrap(), rp.final_reference()) < 1e-2); // O(dx²) semi-discretization
}

#[test]
fn impulses_restart_the_history() {
    let rp = harmonic_oscillator();
    let tol = 1e-9;
    let p = problem(&rp, 10.0).with_impulse(5.0, Scale::all(0.5));
    for sol in [adaptive(&p, &bdf(tol, tol), tol, tol), adaptive(&p, &Rodas4::new(), tol, tol)] {
        let y = sol.last().unwrap();
        assert!(max_abs_diff(y, &[0.5 * 10f64.cos(), -0.5 * 10f64.sin()]) < 1e-6, "{y:?}");
        assert_eq!(sol.stats().impulses, 1);
    }
}

#[test]
fn backward_integration_works() {
    let rp = harmonic_oscillator();
    let y1 = [10f64.cos(), -10f64.sin()];
    let p = Problem::new(rp.system.clone(), y1, rp.p.clone(), (10.0, 0.0));
    for sol in
        [adaptive(&p, &bdf(1e-9, 1e-9), 1e-9, 1e-9), adaptive(&p, &Rodas4::new(), 1e-9, 1e-9)]
    {
        assert!(max_abs_diff(sol.last().unwrap(), &rp.y0) < 1e-6);
    }
}

/// `y' = λ y`, `J = λ`, plus switches to break it.
#[derive(Clone)]
struct Linear {
    lambda: f64,
    pattern: SparsityPattern,
    nan_jacobian: bool,
    nan_rhs_after: f64,
}
impl Linear {
    fn new(lambda: f64) -> Self {
        Self {
            lambda,
            pattern: dense_pattern(1),
            nan_jacobian: false,
            nan_rhs_after: f64::INFINITY,
        }
    }
}
impl OdeSystem for Linear {
    fn n_states(&self) -> usize {
        1
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs(&self, t: f64, y: &[f64], _p: &[f64], dy: &mut [f64]) {
        dy[0] = if t > self.nan_rhs_after { f64::NAN } else { self.lambda * y[0] };
    }
}
impl Jacobian for Linear {
    fn sparsity(&self) -> &SparsityPattern {
        &self.pattern
    }
    fn jacobian(&self, _t: f64, _y: &[f64], _p: &[f64], out: &mut CsrMatrix) {
        out.values_mut()[0] = if self.nan_jacobian { f64::NAN } else { self.lambda };
    }
}

#[test]
fn singular_w_shrinks_the_step() {
    // W = 1 − hγλ = 0 exactly at the first step h0 = 1/(γλ).
    let lambda = 4.0;
    let p = Problem::new(Linear::new(lambda), [1.0], [], (0.0, 1.0));
    let rodas_h0 = 1.0 / (0.25 * lambda);
    let sol = solve(
        &p,
        &Rodas4::new(),
        &PiController::new(1e-6, 1e-9).with_initial_step(rodas_h0),
        &SaveAt::Final,
    )
    .unwrap();
    assert!(sol.is_success(), "{:?}", sol.status());
    assert!(sol.stats().failed_steps >= 1, "{:?}", sol.stats());
    assert!((sol.last().unwrap()[0] - lambda.exp()).abs() < 1e-4 * lambda.exp());
    // BDF order 1 (NDF): c = h/α₁, singular when h = α₁/λ.
    let bdf_h0 = 1.185 / lambda;
    let sol = solve(
        &p,
        &bdf(1e-6, 1e-9),
        &PiController::new(1e-6, 1e-9).with_initial_step(bdf_h0),
        &SaveAt::Final,
    )
    .unwrap();
    assert!(sol.is_success(), "{:?}", sol.status());
    assert!(sol.stats().failed_steps >= 1, "{:?}", sol.stats());
}

#[test]
fn a_jacobian_that_is_never_factorizable_ends_with_singular_matrix() {
    let mut sys = Linear::new(-1.0);
    sys.nan_jacobian = true;
    let p = Problem::new(sys, [1.0], [], (0.0, 1.0));
    for status in [
        adaptive(&p, &Rodas4::new(), 1e-6, 1e-9).status(),
        adaptive(&p, &bdf(1e-6, 1e-9), 1e-6, 1e-9).status(),
    ] {
        assert!(matches!(status, Status::SingularMatrix { t } if t == 0.0), "{status:?}");
    }
}

#[test]
fn persistent_newton_failure_ends_with_newton_divergence() {
    let mut sys = Linear::new(-1.0);
    sys.nan_rhs_after = 0.5;
    let p = Problem::new(sys, [1.0], [], (0.0, 1.0));
    let sol = adaptive(&p, &bdf(1e-6, 1e-9), 1e-6, 1e-9);
    assert!(
        matches!(sol.status(), Status::NewtonDivergence { t } if t > 0.4 && t <= 0.5),
        "{:?}",
        sol.status()
    );
    assert!(sol.stats().failed_steps >= 10);
}

/// `y' = y²`, `y(0) = 1`: `y = 1/(1 − t)` blows up at `t = 1`.
#[derive(Clone)]
struct BlowUp(SparsityPattern);
impl OdeSystem for BlowUp {
    fn n_states(&self) -> usize {
        1
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs(&self, _t: f64, y: &[f64], _p: &[f64], dy: &mut [f64]) {
        dy[0] = y[0] * y[0];
    }
}
impl Jacobian for BlowUp {
    fn sparsity(&self) -> &SparsityPattern {
        &self.0
    }
    fn jacobian(&self, _t: f64, y: &[f64], _p: &[f64], out: &mut CsrMatrix) {
        out.values_mut()[0] = 2.0 * y[0];
    }
}

#[test]
fn finite_time_blow_up_ends_with_step_size_underflow() {
    let p = Problem::new(BlowUp(dense_pattern(1)), [1.0], [], (0.0, 2.0));
    let ctl = PiController::new(1e-6, 1e-9).with_max_steps(1_000_000);
    for sol in [
        solve(&p, &bdf(1e-6, 1e-9), &ctl, &SaveAt::Final).unwrap(),
        solve(&p, &Rodas4::new(), &ctl, &SaveAt::Final).unwrap(),
    ] {
        match sol.status() {
            Status::StepSizeTooSmall { t } => assert!((t - 1.0).abs() < 1e-3, "stopped at {t}"),
            other => panic!("expected StepSizeTooSmall near t = 1, got {other:?}"),
        }
    }
}
