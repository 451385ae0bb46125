//! Sparse regression (STLSQ over a polynomial library) on known sparse systems with noise,
//! model choice along the threshold path by AICc, and the recovered `PolynomialRhs` against
//! finite differences, its adjoint identity and a calibration of its coefficients.

use neurohybrid_hybrid::{
    Calibrator, HybridError, OdeResiduals, PolynomialLibrary, PolynomialRhs, Stlsq, aicc, bic,
    pareto_front,
};
use neurohybrid_nn::rng::SplitMix64;
use neurohybrid_solve::{PiController, Problem, SaveAt, solve};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_system::{Jvp, OdeSystem, Vjp};

/// The Lorenz system `x' = σ(y − x)`, `y' = x(ρ − z) − y`, `z' = xy − βz` (σ = 10, ρ = 28,
/// β = 8/3): 7 nonzero coefficients among 3 × 10 quadratic terms.
fn lorenz(u: &[f64]) -> [f64; 3] {
    let (x, y, z) = (u[0], u[1], u[2]);
    [10.0 * (y - x), x * (28.0 - z) - y, x * y - 8.0 / 3.0 * z]
}

/// States spread over the attractor's box, derivatives with Gaussian noise of `noise` × RMS.
fn lorenz_samples(n: usize, noise: f64, seed: u64) -> (Vec<f64>, [Vec<f64>; 3]) {
    let mut rng = SplitMix64::new(seed);
    let mut states = Vec::with_capacity(3 * n);
    for _ in 0..n {
        states.extend([rng.symmetric(20.0), rng.symmetric(25.0), 25.0 + rng.symmetric(20.0)]);
    }
    let mut clean: [Vec<f64>; 3] = Default::default();
    for u in states.chunks_exact(3) {
        for (c, d) in clean.iter_mut().zip(lorenz(u)) {
            c.push(d);
        }
    }
    let targets = clean.map(|c| {
        let rms = (c.iter().map(|v| v * v).sum::<f64>() / c.len() as f64).sqrt();
        c.iter().map(|v| v + noise * rms * rng.normal()).collect()
    });
    (states, targets)
}

#[test]
fn stlsq_recovers_lorenz_from_noisy_derivatives() {
    let lib = PolynomialLibrary::new(3, 2).unwrap();
    let names = lib.names(&["x", "y", "z"]).unwrap();
    let (states, targets) = lorenz_samples(400, 0.01, 7);
    let theta = lib.matrix(&states).unwrap();
    let t = lib.n_terms();
    let idx = |n: &str| names.iter().position(|m| m == n).unwrap();
    let truth: [Vec<(usize, f64)>; 3] = [
        vec![(idx("x"), -10.0), (idx("y"), 10.0)],
        vec![(idx("x"), 28.0), (idx("y"), -1.0), (idx("x*z"), -1.0)],
        vec![(idx("z"), -8.0 / 3.0), (idx("x*y"), 1.0)],
    ];
    let n = targets[0].len() as f64;
    let col_rms =
        |k: usize| (theta.iter().skip(k).step_by(t).map(|v| v * v).sum::<f64>() / n).sqrt();
    for (target, truth) in targets.iter().zip(&truth) {
        let fit = Stlsq::new(0.02).fit(&theta, t, target).unwrap();
        let mut want: Vec<usize> = truth.iter().map(|(k, _)| *k).collect();
        want.sort_unstable();
        assert_eq!(fit.support, want, "{:?}", fit.coefficients);
        // Least-squares standard error of ξ_k without collinearity: σ_e / (√N · rms(Θ_k)),
        // σ_e = 1% of the target's RMS; 10 of them allow for the correlation of x with x·z.
        let sd_e = 0.01 * (target.iter().map(|v| v * v).sum::<f64>() / n).sqrt();
        for &(k, c) in truth {
            let tol = 10.0 * sd_e / (n.sqrt() * col_rms(k));
            assert!((fit.coefficients[k] - c).abs() < tol, "{k}: {tol} {fit:?}");
        }
    }
}

#[test]
fn without_noise_the_fit_is_exact() {
    let lib = PolynomialLibrary::new(3, 2).unwrap();
    let (states, targets) = lorenz_samples(50, 0.0, 3);
    let theta = lib.matrix(&states).unwrap();
    let fit = Stlsq::new(0.05).fit(&theta, lib.n_terms(), &targets[1]).unwrap();
    assert_eq!(fit.support.len(), 3);
    assert!(fit.rss < 1e-16 * targets[1].iter().map(|v| v * v).sum::<f64>());
    // exact up to rounding and the solver's 1e-12 relative diagonal jitter
    assert!((fit.coefficients[1] - 28.0).abs() < 1e-7, "{fit:?}");
}

/// Collinear columns along a short arc: the continuation paths over a few ridge weights,
/// reduced to the best model per size, contain the true one-term model (a cold-started path
/// at one ridge weight skips it), and AICc keeps its term.
#[test]
fn path_and_aicc_choose_the_true_sparse_model_on_nearly_collinear_data() {
    let lib = PolynomialLibrary::new(2, 2).unwrap();
    let mut rng = SplitMix64::new(11);
    // a short arc x ∈ [0.5, 1], y ≈ 2 + x/2: 1, x, y, x², xy, y² are nearly collinear
    let states: Vec<f64> = (0..60)
        .flat_map(|k| {
            let x = 0.5 + 0.5 * k as f64 / 59.0;
            [x, 2.0 + 0.5 * x + 0.05 * (6.0 * x).sin()]
        })
        .collect();
    let target: Vec<f64> =
        states.chunks_exact(2).map(|u| -0.9 * u[0] * u[1] + 1e-3 * rng.normal()).collect();
    let theta = lib.matrix(&states).unwrap();
    let thresholds: Vec<f64> = (0..30).map(|k| 1e-3 * 1.3f64.powi(k)).collect();
    let mut all = Vec::new();
    for ridge in [0.0, 1e-3, 1e-2, 1e-1] {
        let stlsq = Stlsq::new(0.0).with_ridge(ridge);
        let path = stlsq.path(&theta, lib.n_terms(), &target, &thresholds).unwrap();
        // each support once, nested (a continuation)
        for (i, a) in path.iter().enumerate() {
            assert!(path[i + 1..].iter().all(|b| b.support != a.support));
            if let Some(b) = path.get(i + 1) {
                assert!(b.support.iter().all(|k| a.support.contains(k)), "{path:?}");
            }
        }
        all.extend(path);
    }
    let front = pareto_front(all);
    // one model per size, sorted by size
    assert!(front.windows(2).all(|w| w[0].support.len() < w[1].support.len()), "{front:?}");
    let truth = front.iter().find(|f| f.support == [4]).expect("{xy} on the front");
    assert!((truth.coefficients[4] + 0.9).abs() < 1e-3, "{truth:?}");
    // AICc keeps xy; every model without it is far worse. (Whether a spurious extra term is
    // admitted is a noise event — AIC's false-inclusion rate for one term is P(χ²₁ > 2) ≈ 16 %
    // — so that is not asserted; with this draw {x, xy} edges out {xy} by 1.7.)
    let best = front.iter().min_by(|a, b| a.aicc().total_cmp(&b.aicc())).unwrap();
    assert!(best.support.contains(&4) && best.support.len() <= 2, "{front:?}");
    for f in front.iter().filter(|f| !f.support.contains(&4)) {
        assert!(f.aicc() > best.aicc() + 10.0, "{f:?}");
    }
}

#[test]
fn information_criteria_penalize_parameters() {
    assert!(aicc(1.0, 50, 2) < aicc(1.0, 50, 3));
    assert!(aicc(1.0, 50, 3) < aicc(2.0, 50, 3));
    assert_eq!(aicc(1.0, 3, 2), f64::INFINITY);
    // BIC's penalty per term is ln N (> AIC's 2 from N = 8 on)
    assert!((bic(1.0, 62, 3) - bic(1.0, 62, 2) - 62f64.ln()).abs() < 1e-12);
    assert!(bic(1.0, 62, 3) - bic(1.0, 62, 2) > aicc(1.0, 62, 3) - aicc(1.0, 62, 2));
}

#[test]
fn bad_inputs_are_named_errors() {
    let theta = vec![1.0, 2.0, 3.0, 4.0];
    assert!(matches!(
        Stlsq::default().fit(&theta, 2, &[1.0]),
        Err(HybridError::LengthMismatch { .. })
    ));
    assert!(matches!(
        Stlsq::default().fit(&theta, 2, &[1.0, f64::NAN]),
        Err(HybridError::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        Stlsq::new(-1.0).fit(&theta, 2, &[1.0, 2.0]),
        Err(HybridError::InvalidConfig { .. })
    ));
    assert!(PolynomialLibrary::new(0, 2).is_err());
    let lib = PolynomialLibrary::new(2, 1).unwrap();
    assert!(matches!(lib.matrix(&[1.0, 2.0, 3.0]), Err(HybridError::LengthMismatch { .. })));
}

#[test]
fn polynomial_rhs_derivatives_match_finite_differences_and_each_other() {
    let rhs = PolynomialRhs::new(PolynomialLibrary::new(2, 3).unwrap());
    let (n, m) = (rhs.n_states(), rhs.n_params());
    let mut rng = SplitMix64::new(5);
    let mut draw = |k: usize| -> Vec<f64> { (0..k).map(|_| rng.symmetric(1.0)).collect() };
    let (u, p, w, vy, vp) = (draw(n), draw(m), draw(n), draw(n), draw(m));
    let f = |u: &[f64], p: &[f64]| {
        let mut d = vec![0.0; n];
        rhs.rhs(0.0, u, p, &mut d);
        d
    };
    let mut jv = vec![0.0; n];
    rhs.jvp(0.0, &u, &p, &vy, &vp, &mut jv);
    let h = 1e-6;
    let shift = |a: &[f64], d: &[f64], s: f64| -> Vec<f64> {
        a.iter().zip(d).map(|(x, y)| x + s * y).collect()
    };
    let fd: Vec<f64> = f(&shift(&u, &vy, h), &shift(&p, &vp, h))
        .iter()
        .zip(f(&shift(&u, &vy, -h), &shift(&p, &vp, -h)))
        .map(|(a, b)| (a - b) / (2.0 * h))
        .collect();
    for (a, b) in jv.iter().zip(&fd) {
        assert!((a - b).abs() < 1e-7, "{jv:?} {fd:?}");
    }
    let (mut wy, mut wp) = (vec![0.0; n], vec![0.0; m]);
    rhs.vjp(0.0, &u, &p, &w, &mut wy, &mut wp);
    let lhs: f64 = w.iter().zip(&jv).map(|(a, b)| a * b).sum();
    let rhs_: f64 = wy.iter().zip(&vy).map(|(a, b)| a * b).sum::<f64>()
        + wp.iter().zip(&vp).map(|(a, b)| a * b).sum::<f64>();
    assert!((lhs - rhs_).abs() < 1e-12 * lhs.abs().max(1.0));
}

/// Lotka–Volterra written as a `PolynomialRhs`, its two interaction coefficients calibrated
/// from noisy observations through `OdeResiduals` (forward sensitivities of the polynomial
/// model), the truth inside the 95% intervals.
#[test]
fn polynomial_rhs_coefficients_calibrate_from_a_trajectory() {
    let lib = PolynomialLibrary::new(2, 2).unwrap();
    let rhs = PolynomialRhs::new(lib);
    let mut p = vec![0.0; rhs.n_params()];
    let (xy_x, xy_y) = (rhs.param_index(0, 4), rhs.param_index(1, 4));
    p[rhs.param_index(0, 1)] = 1.3;
    p[xy_x] = -0.9;
    p[xy_y] = 0.8;
    p[rhs.param_index(1, 2)] = -1.8;
    let times: Vec<f64> = (1..=30).map(|k| 0.1 * k as f64).collect();
    let ctrl = PiController::new(1e-10, 1e-10);
    let truth = Problem::new(rhs.clone(), [0.44249296, 4.6280594], p.clone(), (0.0, 3.0));
    let sol = solve(&truth, &Tsit5, &ctrl, &SaveAt::Times(times.clone())).unwrap();
    let mut rng = SplitMix64::new(2);
    let sigma = 0.01;
    let data: Vec<f64> = sol.ys().iter().map(|v| v + sigma * rng.normal()).collect();
    let mut p0 = p.clone();
    p0[xy_x] = -0.7;
    p0[xy_y] = 0.6;
    let problem = Problem::new(rhs, [0.44249296, 4.6280594], p0, (0.0, 3.0));
    let model = OdeResiduals::new(problem, Tsit5, ctrl, times, data)
        .unwrap()
        .sigma(sigma)
        .unwrap()
        .calibrate(vec![xy_x, xy_y], vec![])
        .unwrap();
    let fit = Calibrator::default().calibrate(&model, &[-0.7, 0.6]).unwrap();
    for (i, truth) in [-0.9, 0.8].into_iter().enumerate() {
        let (lo, hi) = fit.ci95[i];
        assert!(lo < truth && truth < hi, "{i}: {:?}", fit.ci95);
        assert!((fit.theta[i] - truth).abs() < 0.01);
    }
}
