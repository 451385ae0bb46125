//! Integration tests: exact solutions, conservation, gradient checks, parameter recovery.

use neurohybrid_alzheimer::fit::{FitConfig, fit_subject};
use neurohybrid_alzheimer::simulate::trajectory;
use neurohybrid_alzheimer::{Brain, CohortConfig, NetworkFkpp, generate};
use neurohybrid_mesh::LaplacianKind;
use neurohybrid_solve::{PiController, Problem, SaveAt, solve};
use neurohybrid_solve_explicit::Tsit5;

/// `exp(A)` of a dense `n × n` matrix by scaling and squaring with a degree-20 Taylor
/// polynomial (Moler & Van Loan 2003, "Nineteen dubious ways", method 3): after scaling
/// `‖A/2^s‖₁ ≤ 1/2`, the Taylor remainder is below `0.5^21/21! ≈ 1e-26`, so the result is
/// accurate to rounding (~1e-14 relative for this symmetric negative semi-definite `A`).
fn expm(n: usize, a: &[f64]) -> Vec<f64> {
    let norm = (0..n).map(|j| (0..n).map(|i| a[i * n + j].abs()).sum::<f64>()).fold(0.0, f64::max);
    let s = (norm / 0.5).log2().ceil().max(0.0) as i32;
    let scale = 0.5f64.powi(s);
    let a: Vec<f64> = a.iter().map(|v| v * scale).collect();
    let matmul = |x: &[f64], y: &[f64]| {
        let mut z = vec![0.0; n * n];
        for i in 0..n {
            for k in 0..n {
                let xik = x[i * n + k];
                for j in 0..n {
                    z[i * n + j] += xik * y[k * n + j];
                }
            }
        }
        z
    };
    let mut result = vec![0.0; n * n];
    let mut term = vec![0.0; n * n];
    for i in 0..n {
        result[i * n + i] = 1.0;
        term[i * n + i] = 1.0;
    }
    for k in 1..=20 {
        term = matmul(&term, &a).into_iter().map(|v| v / k as f64).collect();
        result.iter_mut().zip(&term).for_each(|(r, t)| *r += t);
    }
    for _ in 0..s {
        result = matmul(&result, &result);
    }
    result
}

#[test]
fn network_diffusion_matches_the_matrix_exponential_and_conserves_mass() {
    let brain = Brain::synthetic_dk68();
    let n = brain.n_regions();
    let (beta, t) = (0.5, 3.0);
    let l = brain.connectome().graph().laplacian_dense(LaplacianKind::Combinatorial);
    let a: Vec<f64> = l.iter().map(|v| -beta * t * v).collect();
    let e = expm(n, &a);
    let mut x0 = vec![0.0; n];
    let [le, re] = brain.entorhinal().unwrap();
    x0[le] = 0.7;
    x0[re] = 0.3;
    x0[5] = 0.1;
    let exact: Vec<f64> = (0..n).map(|i| (0..n).map(|j| e[i * n + j] * x0[j]).sum()).collect();
    let problem = Problem::new(brain.diffusion().clone(), x0.clone(), vec![beta], (0.0, t));
    let save = SaveAt::Times(vec![0.5 * t, t]);
    let sol = solve(&problem, &Tsit5, &PiController::new(1e-12, 1e-14), &save).unwrap();
    assert!(sol.is_success());
    let y = sol.y(1);
    let err = y.iter().zip(&exact).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(err < 1e-8, "max |x(t) − expm(−βLt)x0| = {err:e}");
    // 1ᵀL = 0: pure diffusion conserves the total load at every saved time.
    let m0: f64 = x0.iter().sum();
    for k in 0..2 {
        let mk: f64 = sol.y(k).iter().sum();
        assert!((mk - m0).abs() < 1e-12 * m0, "mass drift {:e}", mk - m0);
    }
    // And on the real connectome's Laplacian form as well: the synthetic graph is connected,
    // so diffusion tends to the uniform state m0/n.
    let late = solve(
        &Problem::new(brain.diffusion().clone(), x0, vec![beta], (0.0, 200.0)),
        &Tsit5,
        &PiController::new(1e-10, 1e-12),
        &SaveAt::Final,
    )
    .unwrap();
    let last = late.last().unwrap();
    assert!(last.iter().all(|v| (v - m0 / n as f64).abs() < 1e-6));
}

#[test]
fn one_subject_fit_recovers_its_truth_when_the_model_is_right() {
    // Data from the fitted model itself (no clearance, γ = 0): κ, α and the seed must be
    // recovered within the noise, inside the Laplace intervals.
    let brain = Brain::synthetic_dk68();
    let cfg = CohortConfig { n_subjects: 1, gamma: 0.0, seed: 11, ..CohortConfig::default() };
    let cohort = generate(&brain, &cfg).unwrap();
    let s = &cohort.subjects[0];
    let seeds: Vec<usize> = cfg.seeds.iter().map(|(l, _)| brain.region(l).unwrap()).collect();
    let fkpp = NetworkFkpp::new(brain.diffusion());
    let fit = fit_subject(&fkpp, &[], s, &cfg.observation, &FitConfig::new(seeds)).unwrap();
    assert_eq!(fit.seed_region, s.truth.seed_region);
    let truth = [s.truth.kappa, s.truth.alpha, s.truth.seed_amount];
    let est = [fit.params[0], fit.params[1], fit.seed_amount];
    let iv = fit.intervals.expect("identifiable");
    for i in 0..3 {
        let rel = (est[i] - truth[i]).abs() / truth[i];
        assert!(rel < 0.15, "parameter {i}: {} vs truth {} ({rel})", est[i], truth[i]);
        assert!(
            iv[i].ci95.0 < truth[i] && truth[i] < iv[i].ci95.1,
            "parameter {i}: {:?} vs {}",
            iv[i].ci95,
            truth[i]
        );
    }
    // The fitted trajectory reproduces the noise-free data to well below the noise.
    let n = brain.n_regions();
    let pred = trajectory(&fkpp, &fit.y0(n), &fit.params, 0.0, &s.times).unwrap();
    let rmse = (pred.iter().zip(&s.true_concentration).map(|(a, b)| (a - b).powi(2)).sum::<f64>()
        / pred.len() as f64)
        .sqrt();
    assert!(rmse < cfg.observation.concentration_sd(), "rmse {rmse}");
}

#[test]
fn real_connectome_loads_when_fetched() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/tvb/connectivity_68.zip");
    match Brain::from_tvb(&path) {
        Ok(b) => {
            assert_eq!(b.n_regions(), 68);
            assert!(b.entorhinal().is_ok());
            assert!(b.stage_groups().iter().all(Option::is_some));
        }
        Err(neurohybrid_alzheimer::AlzheimerError::DataMissing { .. }) => {
            eprintln!(
                "skipped: data/tvb/connectivity_68.zip not fetched (cargo xtask fetch-data tvb68)"
            );
        }
        Err(e) => panic!("{e}"),
    }
}
