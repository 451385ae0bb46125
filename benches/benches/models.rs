//! Disease-model fitting benchmarks (issue 10): fitting one Alzheimer's subject (68 regions,
//! network Fisher–KPP, 3 visits, L-BFGS with discrete-adjoint gradients; with and without the
//! Laplace step), and fitting a 100-subject cohort in rayon pools of 1 and 2 threads, reported
//! as times and their ratio (the cohort fit is parallel over subjects).
//!
//! Under `cargo test --benches` (no `--bench` argument) the cohort is 4 subjects and each fit
//! runs once, so the target is exercised without measuring.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use neurohybrid_alzheimer::fit::{FitConfig, fit_subject};
use neurohybrid_alzheimer::protocol::fit_mechanistic;
use neurohybrid_alzheimer::{Brain, CohortConfig, NetworkFkpp, generate};
use neurohybrid_benches::{criterion_median_ns, report_json};

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let brain = Brain::synthetic_dk68();
    let n_cohort = if measuring { 100 } else { 4 };
    let cohort =
        generate(&brain, &CohortConfig { n_subjects: n_cohort, ..CohortConfig::default() })
            .expect("valid cohort");
    let seeds: Vec<usize> =
        cohort.config.seeds.iter().map(|(l, _)| brain.region(l).expect("DK label")).collect();
    let fkpp = NetworkFkpp::new(brain.diffusion());
    let obs = cohort.config.observation;
    let subject = &cohort.subjects[0];
    let plain = FitConfig { intervals: false, ..FitConfig::new(seeds.clone()) };
    let with_laplace = FitConfig::new(seeds.clone());

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut group = c.benchmark_group("alzheimer_fit_subject");
    group.sample_size(10);
    group.bench_function("lbfgs_adjoint", |b| {
        b.iter(|| fit_subject(&fkpp, &[], black_box(subject), &obs, &plain).expect("fit"))
    });
    group.bench_function("lbfgs_adjoint_laplace", |b| {
        b.iter(|| fit_subject(&fkpp, &[], black_box(subject), &obs, &with_laplace).expect("fit"))
    });
    group.finish();

    let fit = fit_subject(&fkpp, &[], subject, &obs, &plain).expect("fit");
    let cohort_time = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
        let t = Instant::now();
        let fits = pool.install(|| fit_mechanistic(&cohort, &plain)).expect("cohort fit");
        black_box(fits);
        t.elapsed().as_secs_f64()
    };
    let t1 = cohort_time(1);
    let t2 = cohort_time(2);
    c.final_summary();

    let get = |id| criterion_median_ns("alzheimer_fit_subject", id);
    let (one, laplace) = match (get("lbfgs_adjoint"), get("lbfgs_adjoint_laplace")) {
        (Some(a), Some(b)) if measuring => (a * 1e-9, b * 1e-9),
        _ => (f64::NAN, f64::NAN),
    };
    report_json(
        "alzheimer_fit",
        &[
            ("regions", brain.n_regions() as f64),
            ("visits", subject.n_early as f64),
            ("lbfgs_iterations", fit.iterations as f64),
            ("gradient_evaluations", fit.evaluations as f64),
            ("fit_one_subject_s", one),
            ("fit_one_subject_with_laplace_s", laplace),
            ("cohort_subjects", n_cohort as f64),
            ("cohort_1_thread_s", t1),
            ("cohort_2_threads_s", t2),
            ("speedup_2_vs_1", t1 / t2),
        ],
    );
}
