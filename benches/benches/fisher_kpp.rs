//! 2D Fisher–KPP with stiff diffusion (issue 4): `u_t = D Δu + ρ u (1 − u)` on an unmasked
//! 256×256 grid, D = 1 mm²/day, dx = 0.5 mm (largest diffusion eigenvalue 8D/dx² = 32/day),
//! ρ = 0.05/day, a Gaussian seed (σ = 5 mm, peak 0.5) at the centre, 100 days.
//!
//! The diffusion is the mesh crate's assembled finite-volume operator (exact 5-point CSR
//! Jacobian); the reaction a pointwise system with a diagonal Jacobian. Methods, all at
//! rtol = 1e-6, atol = 1e-8:
//! - KenCarp4 IMEX on `Split { stiff: diffusion, nonstiff: reaction }` (sparse LU of `I − hγ DΔ`),
//! - the sparse-LU BDF on the summed system,
//! - Tsit5 on the summed system (held at its stability limit, ~900 steps).
//!
//! The reference is Tsit5 at rtol = 1e-10 (computed once). Prints
//! `{"bench":"fisher_kpp_256_imex","ours_ns":…,"tsit5_ns":…,"speedup":…,"max_abs_err_vs_tight":…}`
//! and the same for `fisher_kpp_256_bdf`. `FISHER_KPP_M` overrides the grid size (e.g. 64 for a
//! quick run).

use criterion::Criterion;
use neurohybrid_benches::{criterion_median_ns, report_json};
use neurohybrid_mesh::{AssembledDiffusion, Grid};
use neurohybrid_solve::{PiController, Problem, SaveAt, Solution, solve};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_solve_implicit::{Bdf, DirkConfig, KenCarp4, Tolerances};
use neurohybrid_system::{CsrMatrix, Jacobian, OdeSystem, SparsityPattern, Split};
use neurohybrid_testkit::max_abs_diff;
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
    // `FISHER_KPP_RTOL` loosens (or tightens) the implicit methods' rtol (atol = rtol/100);
    // Tsit5 is stability-bound here, so its cost does not depend on its tolerance.
    let rtol: f64 =
        std::env::var("FISHER_KPP_RTOL").ok().and_then(|s| s.parse().ok()).unwrap_or(1e-6);
    let c_ours = PiController::new(rtol, rtol / 100.0).with_max_steps(1_000_000);
    let tol = Tolerances::from_controller(&c_ours);
    // `FISHER_KPP_REFACTOR` sets WConfig::refactor_threshold (default 0.3) of both methods: how
    // far hγ may drift from the factorized value before W is refactored.
    let refactor: f64 =
        std::env::var("FISHER_KPP_REFACTOR").ok().and_then(|s| s.parse().ok()).unwrap_or(0.3);
    let mut dirk = DirkConfig::default().with_tolerances(tol.clone());
    dirk.w.refactor_threshold = refactor;
    let imex = KenCarp4::with_config(dirk).expect("valid tolerances");
    let mut bdf = Bdf::new(tol);
    bdf.w.refactor_threshold = refactor;
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
    let (s_imex, s_bdf, s_tsit5) = (run_imex(), run_bdf(), run_tsit5());
    let (e_imex, e_bdf) = (err(&s_imex), err(&s_bdf));
    for (name, s) in [("imex", &s_imex), ("bdf", &s_bdf), ("tsit5", &s_tsit5)] {
        eprintln!("fisher_kpp_{m} {name} (rtol {rtol:e}): {:?}", s.stats());
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
            for (name, ns, e) in [("imex", ours, e_imex), ("bdf", bdf_ns, e_bdf)] {
                report_json(
                    &format!("fisher_kpp_{m}_{name}"),
                    &[
                        ("ours_ns", ns),
                        ("tsit5_ns", tsit5_ns),
                        ("speedup", tsit5_ns / ns),
                        ("max_abs_err_vs_tight", e),
                    ],
                );
            }
        }
        // `cargo test --benches` runs each function once without writing estimates.
        _ => eprintln!("fisher_kpp: no criterion estimates found (not a measuring run)"),
    }
}
