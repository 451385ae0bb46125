//! Stiff-solver benchmarks: the W3 workload of `shared/peers/` — Robertson to `t = 1e5` at
//! rtol = 1e-8, atol = 1e-10 (y0 = (1, 0, 0)) — with BDF and Rodas4 (dense LU, analytic
//! Jacobian from testkit's `Robertson`).
//!
//! Prints one JSON line per method:
//! `{"bench":"robertson_1e5_bdf","ours_ns":…,"steps":…,"rel_err_y1":…,"diffsol_bdf_ns":160000,"ratio":…}`
//! with `ratio = diffsol / ours` against diffsol 0.19's BDF median measured on this kind of
//! machine (peers/results/table-2026-12-01.md: 0.161 ms, 628 steps, rel err y1 1.4e-7).

use criterion::Criterion;
use neurohybrid_benches::{criterion_median_ns, report_json};
use neurohybrid_solve::{PiController, Problem, SaveAt, Solution, Stepper, solve};
use neurohybrid_solve_implicit::{Bdf, Rodas4, Tolerances};
use neurohybrid_testkit::{Robertson, robertson};
use std::hint::black_box;
use std::time::Duration;

/// scipy Radau (rtol 1e-12, atol 1e-16) reference at t = 1e5, from the peers' W3 scripts.
const REF_1E5: [f64; 3] = [0.017865921142322536, 7.274751468528758e-08, 0.9821340061101659];
/// diffsol 0.19 BDF (nalgebra dense LU) median on W3 t = 1e5, in ns.
const DIFFSOL_BDF_NS: f64 = 160_000.0;
const RTOL: f64 = 1e-8;
const ATOL: f64 = 1e-10;

fn run<St: Stepper<Robertson>>(problem: &Problem<Robertson>, stepper: &St) -> Solution {
    solve(problem, stepper, &PiController::new(RTOL, ATOL), &SaveAt::Final).expect("valid problem")
}

fn main() {
    let rp = robertson();
    let problem = Problem::new(rp.system.clone(), rp.y0.clone(), rp.p.clone(), (0.0, 1e5));
    let bdf = Bdf::new(Tolerances::new(RTOL, ATOL));
    // Robertson is autonomous: skip Rodas4's finite-difference ∂f/∂t.
    let rodas = Rodas4::new().autonomous();

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut group = c.benchmark_group("robertson_1e5");
    group.bench_function("bdf", |b| b.iter(|| black_box(run(black_box(&problem), &bdf))));
    group.bench_function("rodas4", |b| b.iter(|| black_box(run(black_box(&problem), &rodas))));
    group.finish();

    for (id, sol) in [("bdf", run(&problem, &bdf)), ("rodas4", run(&problem, &rodas))] {
        let y1 = sol.last().expect("final state saved")[0];
        let rel_err_y1 = ((y1 - REF_1E5[0]) / REF_1E5[0]).abs();
        match criterion_median_ns("robertson_1e5", id) {
            Some(ns) => report_json(
                &format!("robertson_1e5_{id}"),
                &[
                    ("ours_ns", ns),
                    ("steps", sol.stats().accepted_steps as f64),
                    ("rel_err_y1", rel_err_y1),
                    ("diffsol_bdf_ns", DIFFSOL_BDF_NS),
                    ("ratio", DIFFSOL_BDF_NS / ns),
                ],
            ),
            // `cargo test --benches` runs each function once without writing estimates.
            None => eprintln!(
                "robertson_1e5_{id}: no fresh criterion estimates (a test or filtered run)"
            ),
        }
    }
}
