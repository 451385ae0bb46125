//! W1 (`../shared/peers/README.md`): the torchdiffeq `ode_demo` spiral as a neural ODE,
//! `dy/dt = MLP(y³)` (2 → 50 → 2, tanh) on a batch of 20 windows of 10 points, Dopri5 at rtol
//! 1e-7 / atol 1e-9, discrete adjoint, L1 loss, RMSprop — the exact replay of the peers'
//! fixture (`validate/fixtures/w1_fixture.json`, the `neural_ode/spiral_w1` validation case,
//! whose code this bench runs).
//!
//! One criterion sample is the whole 200-iteration replay (solve + gradient + optimizer step
//! per iteration, from the fixture's initial weights, so every sample does the same work);
//! the time per training iteration is its median / 200. Benchmarked: save times interpolated
//! (`SaveSteps::Interpolate` with `Checkpointing::All`, what the validation case uses; ADR
//! 0022) and the adjoint's default (save times as stops, `Revolve { slots: 64 }`).
//!
//! Prints `{"bench":"w1_spiral_iteration","ours_ms":…,"diffrax_ms":1.1,"ratio_vs_diffrax":…,
//! "torchdiffeq_ms":11.8,"ratio_vs_torchdiffeq":…,"steps_per_iter":…}` (`ratio = ours / peer`,
//! peers measured on the same kind of machine: diffrax jit f64 with checkpointed backprop,
//! torchdiffeq backprop) and the same for `w1_spiral_iteration_stop_mode`.
//!
//! `W1_PROFILE=interpolate|stop[:replays]` runs one mode only and prints its CPU time per
//! iteration (for perf on a loaded machine).

use criterion::Criterion;
use neurohybrid_benches::{criterion_median_ns, report_json};
use neurohybrid_solve::sensitivity::DiscreteAdjoint;
use neurohybrid_validate::suites::hybrid::spiral::{
    W1, adjoint, full_loss, load, stop_mode_adjoint, train,
};
use neurohybrid_validate::thread_cpu_s;
use std::hint::black_box;
use std::time::Duration;

const ITERATIONS: usize = 200;
const DIFFRAX_MS: f64 = 1.1;
const TORCHDIFFEQ_MS: f64 = 11.8;

fn steps_per_iter(w1: &W1, method: DiscreteAdjoint) -> f64 {
    let (_, t, _) = train(w1, ITERATIONS, method);
    t.work[0] as f64 / t.wall.len().max(1) as f64
}

fn main() {
    let w1 = load().expect("the W1 fixture parses");
    let modes = [
        ("interpolate", "w1_spiral_iteration", adjoint()),
        ("stop", "w1_spiral_iteration_stop_mode", stop_mode_adjoint()),
    ];
    if let Ok(spec) = std::env::var("W1_PROFILE") {
        let (what, reps) = spec.split_once(':').unwrap_or((spec.as_str(), "5"));
        let reps: usize = reps.parse().unwrap_or(5);
        let method = if what == "stop" { stop_mode_adjoint() } else { adjoint() };
        let cpu0 = thread_cpu_s().unwrap_or(f64::NAN);
        let wall0 = std::time::Instant::now();
        let mut last = None;
        for _ in 0..reps {
            last = Some(black_box(train(&w1, ITERATIONS, method)));
        }
        let per = |s: f64| s / (reps * ITERATIONS) as f64 * 1e3;
        eprintln!(
            "w1 profile {what}: {:.4} ms CPU, {:.4} ms wall per iteration",
            per(thread_cpu_s().unwrap_or(f64::NAN) - cpu0),
            per(wall0.elapsed().as_secs_f64())
        );
        if let Some((params, t, _)) = last {
            let it = t.wall.len().max(1) as f64;
            let w = t.work.map(|v| v as f64 / it);
            eprintln!(
                "w1 {what}: full-trajectory loss {:.6}; per iteration {:.2} steps, {:.1} forward \
                 rhs, {:.1} reverse rhs, {:.1} VJPs",
                full_loss(&w1, &params),
                w[0],
                w[1],
                w[2],
                w[3]
            );
        }
        return;
    }

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group("w1");
    for (id, _, method) in modes {
        group.bench_function(id, |b| b.iter(|| black_box(train(&w1, ITERATIONS, method))));
    }
    group.finish();

    for (id, name, method) in modes {
        let Some(ns) = criterion_median_ns("w1", id) else {
            // `cargo test --benches` runs each function once without writing estimates.
            eprintln!(
                "w1: no fresh criterion estimates for every function (a test or filtered run)"
            );
            return;
        };
        let ms = ns / ITERATIONS as f64 * 1e-6;
        report_json(
            name,
            &[
                ("ours_ms", ms),
                ("diffrax_ms", DIFFRAX_MS),
                ("ratio_vs_diffrax", ms / DIFFRAX_MS),
                ("torchdiffeq_ms", TORCHDIFFEQ_MS),
                ("ratio_vs_torchdiffeq", ms / TORCHDIFFEQ_MS),
                ("steps_per_iter", steps_per_iter(&w1, method)),
            ],
        );
    }
}
