//! 2D Fisher–KPP with stiff diffusion (issue 4): `u_t = D Δu + ρ u (1 − u)` on an unmasked
//! 256×256 grid, D = 1 mm²/day, dx = 0.5 mm (largest diffusion eigenvalue 8D/dx² = 32/day),
//! ρ = 0.05/day, a Gaussian seed (σ = 5 mm, peak 0.5) at the centre, 100 days.
//!
//! The diffusion is the mesh crate's assembled finite-volume operator (exact 5-point CSR
//! Jacobian); the reaction a pointwise system with a diagonal Jacobian. Methods:
//! - KenCarp4 IMEX on `Split { stiff: diffusion, nonstiff: reaction }`, `W = I − hγ DΔ` solved
//!   by CG (the Krylov W backend, ADR 0016), one linear solve per stage (the diffusion is
//!   linear), rtol = 1e-5, atol = 1e-7,
//! - BDF on the summed system, `W = I − hγ(DΔ + diag(ρ(1 − 2u)))` by CG, same tolerances,
//! - Tsit5 on the summed system at rtol = 1e-6 (held at its stability limit, ~900 steps).
//!
//! `FISHER_KPP_PC=amg` preconditions CG with a smoothed-aggregation AMG V-cycle (ADR 0018).
//! `FISHER_KPP_BACKEND=direct` runs both implicit methods on the sparse Cholesky backend
//! instead (ADR 0008's configuration), `=lu` on sparse LU. The JSON lines also carry steps,
//! linear solves and Krylov (CG) iterations of the implicit runs.
//!
//! The reference is Tsit5 at rtol = 1e-10 (computed once). Prints
//! `{"bench":"fisher_kpp_256_imex","ours_ns":…,"tsit5_ns":…,"speedup":…,"max_abs_err_vs_tight":…}`
//! and the same for `fisher_kpp_256_bdf`. `FISHER_KPP_M` overrides the grid size (e.g. 64 for a
//! quick run).
//!
//! Then one `fisher_kpp_256_bdf_<solver>_bound` line per sparse direct solver of `W` (LU and
//! Cholesky, faer's automatic and simplicial paths): its measured numeric refactorization and
//! solve times, and the largest speedup over Tsit5 any sparse-direct BDF could reach with the
//! Krylov BDF's step count — one solve per step and a single factorization (ADR 0025).

use criterion::Criterion;
use neurohybrid_benches::{criterion_median_ns, report_json};
use neurohybrid_linalg::{
    LinearSolver, PreconditionerKind, SparseCholesky, SparseLu, SparseMatrix, SparsePattern,
};
use neurohybrid_mesh::{AssembledDiffusion, Grid};
use neurohybrid_solve::{PiController, Problem, SaveAt, Solution, solve};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_solve_implicit::{Bdf, DirkConfig, KenCarp4, LinearBackend, Tolerances, WConfig};
use neurohybrid_system::{CsrMatrix, Jacobian, OdeSystem, SparsityPattern, Split};
use neurohybrid_testkit::max_abs_diff;
use neurohybrid_validate::thread_cpu_s;
use std::hint::black_box;
use std::time::Duration;

/// `ρ u (1 − u)` per cell, with its diagonal Jacobian (BDF needs the full Jacobian; IMEX never
/// asks for this one).
#[derive(Debug, Clone)]
struct Reaction {
    rho: f64,
    pattern: SparsityPattern,
}

impl Reaction {
    fn new(n: usize, rho: f64) -> Self {
        let pattern = SparsityPattern::try_from_offsets_and_indices(
            n,
            n,
            (0..=n).collect(),
            (0..n).collect(),
        )
        .expect("the diagonal is a valid pattern");
        Self { rho, pattern }
    }
}

impl OdeSystem for Reaction {
    fn n_states(&self) -> usize {
        self.pattern.major_dim()
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs(&self, _t: f64, y: &[f64], _p: &[f64], dy: &mut [f64]) {
        for (d, u) in dy.iter_mut().zip(y) {
            *d = self.rho * u * (1.0 - u);
        }
    }
}

impl Jacobian for Reaction {
    fn sparsity(&self) -> &SparsityPattern {
        &self.pattern
    }
    fn jacobian(&self, _t: f64, y: &[f64], _p: &[f64], out: &mut CsrMatrix) {
        for (v, u) in out.values_mut().iter_mut().zip(y) {
            *v = self.rho * (1.0 - 2.0 * u);
        }
    }
}

type System = Split<AssembledDiffusion, Reaction>;

/// Median wall time of `reps` calls of `f`, in ns.
fn median_ns(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let start = std::time::Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e9
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

/// Unit costs of a sparse direct `W = I − hγ DΔ` at this size: (numeric refactorization,
/// solve) medians in ns for `solver`. The symbolic analysis is done before timing (it is paid
/// once per solve and would only raise the bound below).
fn direct_costs(
    w: &SparseMatrix,
    mut solver: impl LinearSolver<Matrix = SparseMatrix>,
) -> (f64, f64) {
    solver.factorize(w).expect("W is nonsingular");
    let numeric = median_ns(5, || solver.factorize(w).expect("W is nonsingular"));
    let mut b: Vec<f64> = (0..w.nrows()).map(|i| (i as f64 * 0.01).sin()).collect();
    let solve = median_ns(11, || solver.solve_in_place(&mut b).expect("factorized"));
    (numeric, solve)
}

/// `W = I − hγ A` for the diffusion matrix `A` (the reaction's diagonal changes no cost).
fn w_of(diffusion: &AssembledDiffusion, hgamma: f64) -> SparseMatrix {
    let a = diffusion.matrix();
    let n = a.nrows();
    let pattern = SparsePattern::new(n, n, a.row_offsets().to_vec(), a.col_indices().to_vec())
        .and_then(|p| p.with_diagonal())
        .expect("a valid CSR pattern");
    let mut w = SparseMatrix::zeros(pattern);
    for i in 0..n {
        let (lo, hi) = (a.row_offsets()[i], a.row_offsets()[i + 1]);
        for (&j, &v) in a.col_indices()[lo..hi].iter().zip(&a.values()[lo..hi]) {
            let k = w.pattern().position(i, j).expect("W's pattern contains A's");
            w.values_mut()[k] -= hgamma * v;
        }
        let d = w.pattern().diagonal_position(i).expect("with_diagonal");
        w.values_mut()[d] += 1.0;
    }
    w
}

fn problem(m: usize) -> Problem<System> {
    let dx = 0.5;
    let grid = Grid::full_2d([m, m], [dx, dx]).expect("a valid grid");
    let n = grid.n_active();
    let diffusion = AssembledDiffusion::new(&grid, &vec![1.0; n]).expect("D >= 0");
    let system = Split::new(diffusion, Reaction::new(n, 0.05)).expect("same dimension");
    let centre = m as f64 * dx / 2.0;
    let y0: Vec<f64> = (0..n)
        .map(|i| {
            let x = ((i % m) as f64 + 0.5) * dx - centre;
            let y = ((i / m) as f64 + 0.5) * dx - centre;
            0.5 * (-(x * x + y * y) / (2.0 * 25.0)).exp()
        })
        .collect();
    Problem::new(system, y0, [], (0.0, 100.0))
}

fn main() {
    let m: usize = std::env::var("FISHER_KPP_M").ok().and_then(|s| s.parse().ok()).unwrap_or(256);
    let pr = problem(m);
    let c = PiController::new(1e-6, 1e-8).with_max_steps(1_000_000);
    // The implicit methods run at rtol = 1e-5 (atol = rtol/100): the loosest decade at which
    // both agree with the tight reference to 1e-5 (3.6e-6 / 4.9e-6 measured; at 3e-5 they
    // miss it, 1.5e-5 / 1.4e-5). `FISHER_KPP_RTOL` overrides it. Tsit5 is stability-bound
    // here, so its cost does not depend on its tolerance.
    let rtol: f64 =
        std::env::var("FISHER_KPP_RTOL").ok().and_then(|s| s.parse().ok()).unwrap_or(1e-5);
    let c_ours = PiController::new(rtol, rtol / 100.0).with_max_steps(1_000_000);
    let tol = Tolerances::from_controller(&c_ours);
    // `FISHER_KPP_REFACTOR` sets WConfig::refactor_threshold (default 0.3) of both methods: how
    // far hγ may drift from the factorized value before W is refactored.
    let refactor: f64 =
        std::env::var("FISHER_KPP_REFACTOR").ok().and_then(|s| s.parse().ok()).unwrap_or(0.3);
    // `FISHER_KPP_BACKEND` = `krylov` (default: preconditioned CG on W, ADR 0016) or `direct`
    // (sparse Cholesky, ADR 0008), `lu` (sparse LU); `FISHER_KPP_PC` = `none` (default) /
    // `amg` / `jacobi` / `ilu0` for Krylov.
    let backend = match std::env::var("FISHER_KPP_BACKEND").as_deref() {
        Ok("direct") => LinearBackend::Sparse,
        Ok("lu") => LinearBackend::SparseLu,
        _ => LinearBackend::Krylov,
    };
    // No preconditioner by default: W's diagonal is constant here, so Jacobi is a scalar
    // scaling that CG does not need, ILU(0) halves the iterations at twice their cost
    // (ADR 0016), and smoothed-aggregation AMG cuts them 4–6× at ~4 matrix–vector products
    // per V-cycle, which on this well-conditioned W (κ ≤ ~60) is slower overall (ADR 0018).
    let pc = match std::env::var("FISHER_KPP_PC").as_deref() {
        Ok("jacobi") => PreconditionerKind::Jacobi,
        Ok("ilu0") => PreconditionerKind::Ilu0,
        Ok("amg") => PreconditionerKind::Amg,
        _ => PreconditionerKind::None,
    };
    let env_f64 = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<f64>().ok());
    let configure = |w: &mut WConfig| {
        w.backend = backend;
        w.refactor_threshold = refactor;
        w.krylov.preconditioner = pc;
        if let Some(v) = env_f64("FISHER_KPP_FORCING") {
            w.krylov.forcing = v;
        }
        if let Some(v) = env_f64("FISHER_KPP_LINEAR_FACTOR") {
            w.krylov.linear_stage_factor = v;
        }
        if let Some(v) = env_f64("FISHER_KPP_NEWTON_FACTOR") {
            w.krylov.newton_factor = v;
        }
    };
    // The implicit part (diffusion) is linear: one solve per stage instead of Newton
    // (`FISHER_KPP_LINEAR=0` turns it off).
    let linear = std::env::var("FISHER_KPP_LINEAR").map_or(true, |v| v != "0");
    let mut dirk = DirkConfig::default().with_tolerances(tol.clone()).with_linear_implicit(linear);
    configure(&mut dirk.w);
    if std::env::var("FISHER_KPP_SMOOTH").is_ok_and(|v| v == "0") {
        dirk.smooth_error = false;
    }
    let imex = KenCarp4::with_config(dirk).expect("valid tolerances");
    let mut bdf = Bdf::new(tol);
    configure(&mut bdf.w);
    let tight = PiController::new(1e-10, 1e-12).with_max_steps(1_000_000);

    let run_imex = || solve(&pr, &imex, &c_ours, &SaveAt::Final).expect("valid problem");
    let run_bdf = || solve(&pr, &bdf, &c_ours, &SaveAt::Final).expect("valid problem");
    let run_tsit5 = || solve(&pr, &Tsit5, &c, &SaveAt::Final).expect("valid problem");
    let reference = solve(&pr, &Tsit5, &tight, &SaveAt::Final).expect("valid problem");
    let err = |s: &Solution| -> f64 {
        match (s.is_success(), s.last(), reference.last()) {
            (true, Some(a), Some(b)) => max_abs_diff(a, b),
            _ => f64::NAN,
        }
    };
    // One run each, timed by this thread's on-CPU time (Linux `schedstat`, ns) where
    // available: on a loaded machine it is far steadier than wall time. Criterion's wall-time
    // medians below are the reported numbers.
    let timed = |f: &dyn Fn() -> Solution| {
        let (start, cpu0) = (std::time::Instant::now(), thread_cpu_s());
        let s = f();
        let wall = start.elapsed().as_secs_f64();
        (s, thread_cpu_s().zip(cpu0).map_or(wall, |(b, a)| b - a))
    };
    let ((s_imex, w_imex), (s_bdf, w_bdf), (s_tsit5, w_tsit5)) =
        (timed(&run_imex), timed(&run_bdf), timed(&run_tsit5));
    let (e_imex, e_bdf) = (err(&s_imex), err(&s_bdf));
    let (k_imex, k_bdf) = (s_imex.stats().krylov_iterations, s_bdf.stats().krylov_iterations);
    for (name, s, wall, e, k) in [
        ("imex", &s_imex, w_imex, e_imex, k_imex),
        ("bdf", &s_bdf, w_bdf, e_bdf, k_bdf),
        ("tsit5", &s_tsit5, w_tsit5, 0.0, 0),
    ] {
        eprintln!(
            "fisher_kpp_{m} {name} (rtol {rtol:e}, {backend:?}/{pc:?}): one run {wall:.3} s CPU, \
             err vs tight {e:.2e}, {k} Krylov iterations, {:?}",
            s.stats()
        );
    }

    let mut cr = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    let group_name = format!("fisher_kpp_{m}");
    let mut group = cr.benchmark_group(&group_name);
    group.bench_function("imex", |b| b.iter(|| black_box(run_imex())));
    group.bench_function("bdf", |b| b.iter(|| black_box(run_bdf())));
    group.bench_function("tsit5", |b| b.iter(|| black_box(run_tsit5())));
    group.finish();

    let median = |id| criterion_median_ns(&group_name, id);
    match (median("imex"), median("bdf"), median("tsit5")) {
        (Some(ours), Some(bdf_ns), Some(tsit5_ns)) => {
            for (name, ns, e, s, k) in
                [("imex", ours, e_imex, &s_imex, k_imex), ("bdf", bdf_ns, e_bdf, &s_bdf, k_bdf)]
            {
                let st = s.stats();
                report_json(
                    &format!("fisher_kpp_{m}_{name}"),
                    &[
                        ("ours_ns", ns),
                        ("tsit5_ns", tsit5_ns),
                        ("speedup", tsit5_ns / ns),
                        ("max_abs_err_vs_tight", e),
                        ("steps", st.accepted_steps as f64),
                        ("linear_solves", st.linear_solves as f64),
                        ("krylov_iterations", k as f64),
                        (
                            "cpu_one_run_speedup",
                            w_tsit5 / if name == "imex" { w_imex } else { w_bdf },
                        ),
                    ],
                );
            }
        }
        // `cargo test --benches` runs each function once without writing estimates.
        _ => eprintln!(
            "fisher_kpp: no fresh criterion estimates for every function (a test or filtered run)"
        ),
    }

    // Why the benchmark's BDF is Krylov-backed (ADR 0018, 0025): the best a sparse direct BDF
    // could do at this size. A BDF step needs at least one solve with W, and W at least one
    // numeric factorization per solve (more as hγ changes: 10 in practice), so
    // `steps × solve + numeric` is a lower bound on its time, whatever the Newton policy.
    if let Some(tsit5_ns) = median("tsit5") {
        let w = w_of(pr.system().stiff(), 1.0);
        let steps = s_bdf.stats().accepted_steps as f64;
        for (name, (numeric, solve_ns)) in [
            ("sparse_lu", direct_costs(&w, SparseLu::new())),
            ("sparse_lu_simplicial", direct_costs(&w, SparseLu::new().force_simplicial(true))),
            ("cholesky", direct_costs(&w, SparseCholesky::new())),
            ("cholesky_simplicial", direct_costs(&w, SparseCholesky::new().force_simplicial(true))),
        ] {
            let bound = steps * solve_ns + numeric;
            report_json(
                &format!("fisher_kpp_{m}_bdf_{name}_bound"),
                &[
                    ("numeric_factorization_ns", numeric),
                    ("solve_ns", solve_ns),
                    ("bdf_steps", steps),
                    ("lower_bound_ns", bound),
                    ("tsit5_ns", tsit5_ns),
                    ("max_speedup", tsit5_ns / bound),
                ],
            );
        }
    }
}
