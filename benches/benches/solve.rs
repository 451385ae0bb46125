//! Solve-loop benchmarks on testkit reference problems.
//!
//! Headline: Dopri5 at rtol = atol = 1e-6 on Lotka–Volterra (the problem whose step count is
//! checked against scipy's RK45 in the solve-explicit tests). Prints
//! `{"bench":"lotka_volterra_dopri5","solve_ns":…,"steps":…,"ns_per_step":…}`.

use criterion::Criterion;
use neurohybrid_benches::{criterion_median_ns, report_json};
use neurohybrid_solve::{PiController, Problem, SaveAt, solve};
use neurohybrid_solve_explicit::{Dopri5, Tsit5};
use neurohybrid_testkit::lotka_volterra;
use std::hint::black_box;
use std::time::Duration;

fn main() {
    let rp = lotka_volterra();
    let problem = Problem::new(rp.system.clone(), rp.y0.clone(), rp.p.clone(), rp.t_span);
    let controller = PiController::new(1e-6, 1e-6);
    let steps = solve(&problem, &Dopri5, &controller, &SaveAt::Final)
        .expect("valid problem")
        .stats()
        .accepted_steps;

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut group = c.benchmark_group("lotka_volterra");
    group.bench_function("dopri5", |b| {
        b.iter(|| black_box(solve(black_box(&problem), &Dopri5, &controller, &SaveAt::Final)))
    });
    group.bench_function("tsit5", |b| {
        b.iter(|| black_box(solve(black_box(&problem), &Tsit5, &controller, &SaveAt::Final)))
    });
    group.finish();

    match criterion_median_ns("lotka_volterra", "dopri5") {
        Some(ns) => report_json(
            "lotka_volterra_dopri5",
            &[("solve_ns", ns), ("steps", steps as f64), ("ns_per_step", ns / steps as f64)],
        ),
        // `cargo test --benches` runs each function once without writing estimates.
        None => {
            eprintln!(
                "lotka_volterra_dopri5: no fresh criterion estimates for every function (a test or filtered run)"
            )
        }
    }
}
