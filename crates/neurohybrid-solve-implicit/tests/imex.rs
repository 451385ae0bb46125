//! KenCarp4 (IMEX) on split systems with exact solutions: convergence order, tolerance
//! proportionality, stability on a stiff linear part, dense output, and that only the stiff
//! part's Jacobian is ever needed.

use neurohybrid_solve::{ConstantStep, PiController, Problem, SaveAt, solve};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_solve_implicit::{Ark, Esdirk4, KenCarp4, tableaus::KENCARP4};
use neurohybrid_system::{CsrMatrix, Jacobian, OdeSystem, SparsityPattern, Split, dense_pattern};
use neurohybrid_testkit::estimate_order;

/// The stiff part `λ y` (`p = [λ]`), with its Jacobian.
#[derive(Debug, Clone)]
struct Linear(SparsityPattern);
impl OdeSystem for Linear {
    fn n_states(&self) -> usize {
        1
    }
    fn n_params(&self) -> usize {
        1
    }
    fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        dy[0] = p[0] * y[0];
    }
}
impl Jacobian for Linear {
    fn sparsity(&self) -> &SparsityPattern {
        &self.0
    }
    fn jacobian(&self, _t: f64, _y: &[f64], p: &[f64], out: &mut CsrMatrix) {
        out.values_mut()[0] = p[0];
    }
}

/// A non-stiff forcing `cos t`. It implements no `Jacobian`: IMEX never asks for one.
#[derive(Debug, Clone)]
struct Cosine;
impl OdeSystem for Cosine {
    fn n_states(&self) -> usize {
        1
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs(&self, t: f64, _y: &[f64], _p: &[f64], dy: &mut [f64]) {
        dy[0] = t.cos();
    }
}

/// The non-stiff nonlinear part `−r y²` (`p = [r]`) of the logistic equation `y' = r y − r y²`.
#[derive(Debug, Clone)]
struct Crowding;
impl OdeSystem for Crowding {
    fn n_states(&self) -> usize {
        1
    }
    fn n_params(&self) -> usize {
        1
    }
    fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        dy[0] = -p[0] * y[0] * y[0];
    }
}

/// `y' = λ y + cos t`: `y = y_p(t) + e^{λt}(y0 − y_p(0))`, `y_p = (sin t − λ cos t)/(λ² + 1)`.
fn forced_exact(lambda: f64, y0: f64, t: f64) -> f64 {
    let yp = |t: f64| (t.sin() - lambda * t.cos()) / (lambda * lambda + 1.0);
    yp(t) + (lambda * t).exp() * (y0 - yp(0.0))
}

fn forced(lambda: f64, t1: f64) -> Problem<Split<Linear, Cosine>> {
    let sys = Split::new(Linear(dense_pattern(1)), Cosine).unwrap();
    Problem::new(sys, [1.0], [lambda], (0.0, t1))
}

/// `u' = u − u²` split as stiff `u`, non-stiff `−u²`; exact logistic `u0 eᵗ/(1 − u0 + u0 eᵗ)`.
fn logistic_split() -> Problem<Split<Linear, Crowding>> {
    let sys = Split::new(Linear(dense_pattern(1)), Crowding).unwrap();
    Problem::new(sys, [0.1], [1.0, 1.0], (0.0, 2.5))
}

fn logistic_exact(t: f64) -> f64 {
    let e = t.exp();
    0.1 * e / (0.9 + 0.1 * e)
}

fn tight() -> KenCarp4 {
    KenCarp4::with_tolerances(1e-13, 1e-13)
}

#[test]
fn kencarp4_converges_with_order_four() {
    let ns = [10, 20, 40, 80];
    let t1 = 2.5;
    let hs: Vec<f64> = ns.iter().map(|&n| t1 / n as f64).collect();
    let pf = forced(-1.0, t1);
    let pl = logistic_split();
    let mut forced_errs = Vec::new();
    let mut logistic_errs = Vec::new();
    for &n in &ns {
        let c = ConstantStep::with_steps((0.0, t1), n);
        let sol = solve(&pf, &tight(), &c, &SaveAt::Final).unwrap();
        forced_errs.push((sol.last().unwrap()[0] - forced_exact(-1.0, 1.0, t1)).abs());
        let sol = solve(&pl, &tight(), &c, &SaveAt::Final).unwrap();
        logistic_errs.push((sol.last().unwrap()[0] - logistic_exact(t1)).abs());
    }
    for (name, errs) in [("forced", &forced_errs), ("logistic", &logistic_errs)] {
        let fit = estimate_order(&hs, errs).unwrap();
        assert!((fit.slope - 4.0).abs() <= 0.2, "{name}: order {} ({errs:?})", fit.slope);
    }
    // The generic ARK stepper with the same tableau is the same method.
    let c = ConstantStep::with_steps((0.0, t1), 20);
    let a = solve(&pl, &Ark::new(&KENCARP4), &c, &SaveAt::Final).unwrap();
    let b = solve(&pl, &KenCarp4::new(), &c, &SaveAt::Final).unwrap();
    assert_eq!(a.last(), b.last());
}

#[test]
fn tolerance_proportionality() {
    // Order 4 propagated, order-3 estimate (local extrapolation): error ∝ tol (HW I, II.4).
    let pl = logistic_split();
    let tols = [1e-7, 1e-8, 1e-9, 1e-10, 1e-11];
    let mut errs = Vec::new();
    let mut steps = Vec::new();
    for &tol in &tols {
        let c = PiController::new(tol, tol);
        let sol = solve(&pl, &KenCarp4::with_tolerances(tol, tol), &c, &SaveAt::Final).unwrap();
        assert!(sol.is_success());
        errs.push((sol.last().unwrap()[0] - logistic_exact(2.5)).abs());
        steps.push(sol.stats().accepted_steps);
    }
    let fit = estimate_order(&tols, &errs).unwrap();
    assert!((fit.slope - 1.0).abs() <= 0.25, "slope {} ({errs:?})", fit.slope);
    // The order-3 estimate of a growing solution under-reports the global error by ~10×.
    assert!(errs.iter().zip(&tols).all(|(e, t)| *e < 50.0 * t), "{errs:?}");
    assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{steps:?}");
}

#[test]
fn stiff_linear_part_does_not_limit_the_step() {
    // λ = −1e4: Tsit5 is held at its stability limit (h ≈ 3.5e-4, ~28 500 steps on [0, 10]);
    // the L-stable implicit half lets KenCarp4 choose steps by accuracy alone. The accuracy is
    // that of an IMEX method in the intermediate stiff regime, where the explicitly treated
    // forcing reduces the order (Boscarino 2007; ADR 0008): compare at a loose tolerance.
    let lambda = -1e4;
    let p = forced(lambda, 10.0);
    let exact = forced_exact(lambda, 1.0, 10.0);
    let c = PiController::new(1e-3, 1e-7);
    let imex = solve(&p, &KenCarp4::with_tolerances(1e-3, 1e-7), &c, &SaveAt::Final).unwrap();
    let tsit5 = solve(&p, &Tsit5, &c, &SaveAt::Final).unwrap();
    assert!(imex.is_success() && tsit5.is_success());
    let (ei, et) =
        ((imex.last().unwrap()[0] - exact).abs(), (tsit5.last().unwrap()[0] - exact).abs());
    let (si, stt) = (imex.stats(), tsit5.stats());
    assert!(si.accepted_steps * 10 < stt.accepted_steps, "{si:?} vs {stt:?}");
    assert!(ei < 3.0 * et.max(1e-7), "IMEX error {ei} vs Tsit5 {et}");
    // Only the stiff part's (constant) Jacobian is evaluated, and rarely.
    assert!(si.jacobian_evals >= 1 && si.jacobian_evals * 20 <= si.accepted_steps, "{si:?}");
    assert!(si.factorizations < si.accepted_steps, "{si:?}");
}

#[test]
fn dense_output_is_third_order() {
    let pl = logistic_split();
    let err = |n: usize| {
        let c = ConstantStep::with_steps((0.0, 2.5), n);
        let sol = solve(&pl, &tight(), &c, &SaveAt::Dense).unwrap();
        let mut y = [0.0];
        (0..4 * n)
            .map(|k| {
                let t = (k as f64 + 0.41) * 2.5 / (4 * n) as f64;
                sol.interpolate(t, &mut y).unwrap();
                (y[0] - logistic_exact(t)).abs()
            })
            .fold(0.0, f64::max)
    };
    let (e1, e2) = (err(20), err(40));
    let order = (e1 / e2).log2();
    assert!(order > 2.7, "dense order {order} ({e1}, {e2})");
    assert!(e2 < 1e-5);
}

#[test]
fn imex_and_fully_implicit_agree() {
    // The same split system through Esdirk4 (KenCarp4's implicit half on f_stiff + f_nonstiff,
    // with the Split's summed Jacobian) — a different method with the same order.
    #[derive(Debug, Clone)]
    struct CrowdingJ(SparsityPattern);
    impl OdeSystem for CrowdingJ {
        fn n_states(&self) -> usize {
            1
        }
        fn n_params(&self) -> usize {
            1
        }
        fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
            Crowding.rhs(t, y, p, dy)
        }
    }
    impl Jacobian for CrowdingJ {
        fn sparsity(&self) -> &SparsityPattern {
            &self.0
        }
        fn jacobian(&self, _t: f64, y: &[f64], p: &[f64], out: &mut CsrMatrix) {
            out.values_mut()[0] = -2.0 * p[0] * y[0];
        }
    }
    let sys = Split::new(Linear(dense_pattern(1)), CrowdingJ(dense_pattern(1))).unwrap();
    let pr = Problem::new(sys, [0.1], [1.0, 1.0], (0.0, 2.5));
    let c = PiController::new(1e-9, 1e-9);
    let imex = solve(&pr, &KenCarp4::with_tolerances(1e-9, 1e-9), &c, &SaveAt::Final).unwrap();
    let dirk = solve(&pr, &Esdirk4::with_tolerances(1e-9, 1e-9), &c, &SaveAt::Final).unwrap();
    let exact = logistic_exact(2.5);
    let (ei, ed) =
        ((imex.last().unwrap()[0] - exact).abs(), (dirk.last().unwrap()[0] - exact).abs());
    assert!(ei < 5e-8 && ed < 5e-8, "IMEX {ei}, ESDIRK {ed}");
}
