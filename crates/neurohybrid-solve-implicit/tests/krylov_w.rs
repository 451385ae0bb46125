//! The Krylov W backend (`LinearBackend::Krylov`: CG on a symmetric `W`, GMRES otherwise, with
//! inexact-Newton tolerances) and the linear-stage option of the IMEX steppers: solutions
//! equal to the direct backend's within the integration tolerance, on a symmetric
//! (reaction–diffusion) and a nonsymmetric (advection–diffusion) problem.

use neurohybrid_linalg::PreconditionerKind;
use neurohybrid_solve::{PiController, Problem, SaveAt, Solution, Stats, Stepper, solve};
use neurohybrid_solve_implicit::{
    Bdf, DirkConfig, FactorKind, KenCarp4, Kvaerno5, LinearBackend, Tolerances, WConfig,
};
use neurohybrid_system::{
    CsrMatrix, Jacobian, OdeSystem, SparsityPattern, Split, tridiagonal_pattern,
};
use neurohybrid_testkit::{FisherKpp, max_abs_diff};

/// `u' = c (u_{i−1} − 2u_i + u_{i+1}) − v (u_i − u_{i−1})` on `n` cells with zero Dirichlet
/// ghosts: diffusion plus first-order upwind advection (nonsymmetric `J` for `v ≠ 0`). Linear.
struct AdvectionDiffusion {
    c: f64,
    v: f64,
    pattern: SparsityPattern,
}

impl AdvectionDiffusion {
    fn new(n: usize, c: f64, v: f64) -> Self {
        Self { c, v, pattern: tridiagonal_pattern(n) }
    }
}

impl OdeSystem for AdvectionDiffusion {
    fn n_states(&self) -> usize {
        self.pattern.major_dim()
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs(&self, _t: f64, y: &[f64], _p: &[f64], dy: &mut [f64]) {
        let n = y.len();
        for i in 0..n {
            let l = if i > 0 { y[i - 1] } else { 0.0 };
            let r = if i + 1 < n { y[i + 1] } else { 0.0 };
            dy[i] = self.c * (l - 2.0 * y[i] + r) - self.v * (y[i] - l);
        }
    }
}

impl Jacobian for AdvectionDiffusion {
    fn sparsity(&self) -> &SparsityPattern {
        &self.pattern
    }
    fn jacobian(&self, _t: f64, _y: &[f64], _p: &[f64], out: &mut CsrMatrix) {
        for (i, j, v) in out.triplet_iter_mut() {
            *v = if i == j {
                -2.0 * self.c - self.v
            } else if j + 1 == i {
                self.c + self.v
            } else {
                self.c
            };
        }
    }
}

/// `ρ u (1 − u)`, pointwise, no Jacobian needed (explicit in IMEX).
struct Logistic(usize, f64);

impl OdeSystem for Logistic {
    fn n_states(&self) -> usize {
        self.0
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs(&self, _t: f64, y: &[f64], _p: &[f64], dy: &mut [f64]) {
        for (d, u) in dy.iter_mut().zip(y) {
            *d = self.1 * u * (1.0 - u);
        }
    }
}

fn w(backend: LinearBackend) -> WConfig {
    let mut w = WConfig { backend, ..WConfig::default() };
    w.krylov.preconditioner = PreconditionerKind::Jacobi;
    w
}

fn run<S: OdeSystem, St: Stepper<S>>(
    problem: &Problem<S>,
    stepper: &St,
    c: &PiController,
) -> Solution {
    let sol = solve(problem, stepper, c, &SaveAt::Final).unwrap();
    assert!(sol.is_success(), "{:?}", sol.status());
    sol
}

fn bump(n: usize) -> Vec<f64> {
    (0..n).map(|i| (-((i as f64 - n as f64 / 3.0) / 8.0).powi(2)).exp()).collect()
}

/// BDF on a `side × side` Fisher–KPP (1 mm cells, D = 4: largest eigenvalue 32/day, as in the
/// benchmark; ρ = 0.5) with the sparse direct W and with CG under `preconditioner`: the
/// largest final-state difference and the Krylov run's statistics.
fn bdf_krylov_vs_direct(side: usize, preconditioner: PreconditionerKind) -> (f64, Stats) {
    let problem =
        Problem::new(FisherKpp::new(side), FisherKpp::seed(side), [4.0, 0.5], (0.0, 10.0));
    let c = PiController::new(1e-6, 1e-8);
    let tol = Tolerances::from_controller(&c);
    let mut direct = Bdf::new(tol.clone());
    direct.w = w(LinearBackend::Sparse);
    let mut krylov = Bdf::new(tol);
    krylov.w = w(LinearBackend::Krylov);
    krylov.w.krylov.preconditioner = preconditioner;
    let (a, b) = (run(&problem, &direct, &c), run(&problem, &krylov, &c));
    (max_abs_diff(a.last().unwrap(), b.last().unwrap()), *b.stats())
}

#[test]
fn bdf_with_cg_matches_the_direct_backend_on_fisher_kpp() {
    let (diff, stats) = bdf_krylov_vs_direct(16, PreconditionerKind::Jacobi);
    assert!(diff < 1e-6, "BDF direct vs CG: {diff}");
    // W is rebuilt at every new hγ but never factorized: no failed steps from inexact solves.
    assert_eq!(stats.failed_steps, 0, "{stats:?}");
    // Every CG solve takes at least one iteration, and the solve's Stats carry them.
    assert!(stats.krylov_iterations >= stats.linear_solves, "{stats:?}");
}

#[test]
fn bdf_with_amg_preconditioned_cg_matches_the_direct_backend_on_fisher_kpp() {
    // 24 × 24 cells (576 unknowns > AmgConfig::max_coarse = 100: a real hierarchy).
    let (diff, stats) = bdf_krylov_vs_direct(24, PreconditionerKind::Amg);
    assert!(diff < 1e-6, "BDF direct vs CG + AMG: {diff}");
    assert_eq!(stats.failed_steps, 0, "{stats:?}");
}

#[test]
fn kvaerno5_with_gmres_matches_the_direct_backend_on_advection_diffusion() {
    let n = 60;
    let sys = AdvectionDiffusion::new(n, 400.0, 30.0);
    let problem = Problem::new(sys, bump(n), [], (0.0, 0.05));
    let c = PiController::new(1e-7, 1e-9);
    let cfg = |backend| {
        DirkConfig::default().with_tolerances(Tolerances::from_controller(&c)).with_w(w(backend))
    };
    let direct = Kvaerno5::with_config(cfg(LinearBackend::Sparse)).unwrap();
    let krylov = Kvaerno5::with_config(cfg(LinearBackend::Krylov)).unwrap();
    let (a, b) = (run(&problem, &direct, &c), run(&problem, &krylov, &c));
    let diff = max_abs_diff(a.last().unwrap(), b.last().unwrap());
    assert!(diff < 1e-7, "Kvaerno5 direct vs GMRES: {diff}");
}

#[test]
fn krylov_backend_solves_a_nonsymmetric_w_exactly() {
    use neurohybrid_solve::Stats;
    use neurohybrid_solve_implicit::WMatrix;
    let sys = AdvectionDiffusion::new(30, 100.0, 10.0);
    let mut wm = WMatrix::new(&sys, w(LinearBackend::Krylov)).unwrap();
    assert_eq!(wm.factor_kind(), FactorKind::Krylov);
    let mut stats = Stats::default();
    let y = vec![0.0; 30];
    wm.prepare(&sys, 0.0, &y, &[], 0.01, &mut stats).unwrap();
    let mut b = bump(30);
    let rhs = b.clone();
    wm.solve_in_place(&mut b, &mut stats).unwrap();
    // Check (I − hγJ) x = rhs through f (linear: f(x) = J x).
    let mut jx = vec![0.0; 30];
    sys.rhs(0.0, &b, &[], &mut jx);
    for i in 0..30 {
        assert!((b[i] - 0.01 * jx[i] - rhs[i]).abs() < 1e-9, "{i}");
    }
    let ks = wm.krylov_stats().unwrap();
    assert!(ks.krylov_iterations > 0 && ks.numeric_factorizations == 1, "{ks:?}");
    // The caller's Stats get exactly the solver's iterations, once.
    assert_eq!(stats.krylov_iterations, ks.krylov_iterations);
    wm.solve_in_place(&mut b, &mut stats).unwrap();
    assert_eq!(stats.krylov_iterations, wm.krylov_stats().unwrap().krylov_iterations);
}

#[test]
fn linear_imex_stages_match_newton_stages() {
    // Stiff linear diffusion (c = 2500: eigenvalues down to −1e4) + explicit logistic growth.
    let n = 80;
    let split = || Split::new(AdvectionDiffusion::new(n, 2500.0, 0.0), Logistic(n, 2.0)).unwrap();
    let y0: Vec<f64> = bump(n).iter().map(|u| 0.5 * u).collect();
    let problem = Problem::new(split(), y0, [], (0.0, 0.5));
    let c = PiController::new(1e-7, 1e-9);
    let base = DirkConfig::default().with_tolerances(Tolerances::from_controller(&c));
    let mut results = Vec::new();
    for backend in [LinearBackend::Sparse, LinearBackend::Krylov] {
        for linear in [false, true] {
            let cfg = base.clone().with_w(w(backend)).with_linear_implicit(linear);
            let sol = run(&problem, &KenCarp4::with_config(cfg).unwrap(), &c);
            results.push((backend, linear, sol));
        }
    }
    let reference = results[0].2.last().unwrap().to_vec();
    for (backend, linear, sol) in &results {
        let diff = max_abs_diff(sol.last().unwrap(), &reference);
        assert!(diff < 1e-6, "{backend:?} linear={linear}: {diff}");
        if *linear && *backend == LinearBackend::Krylov {
            // W is exact at every hγ: one solve per implicit stage (5 per step) plus the error
            // filter. (A direct W reused at another hγ falls back to Newton.)
            let st = sol.stats();
            let steps = st.accepted_steps + st.rejected_steps + st.failed_steps;
            assert!(st.linear_solves <= 6 * steps + 5, "{st:?}");
        }
    }
}
