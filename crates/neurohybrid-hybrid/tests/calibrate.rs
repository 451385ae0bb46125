//! Calibration: parameter recovery, Laplace covariance against linear regression, coverage,
//! the forward-sensitivity Jacobian against finite differences.
// Index loops over small matrices read like the formulas they check.
#![allow(clippy::needless_range_loop)]

use neurohybrid_hybrid::{
    Calibrator, HybridError, Noise, OdeResiduals, Prior, ResidualModel, Transform,
};
use neurohybrid_nn::rng::SplitMix64;
use neurohybrid_solve::{PiController, Problem, Scale};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_system::{Jvp, OdeSystem, Vjp};
use neurohybrid_testkit::{ExponentialDecay, Logistic};

/// r = (A θ − y)/σ: linear least squares, whose posterior covariance is exactly σ²(AᵀA)⁻¹.
struct Linear {
    a: Vec<f64>, // rows × p
    y: Vec<f64>,
    sigma: f64,
    p: usize,
}

impl ResidualModel for Linear {
    fn n_params(&self) -> usize {
        self.p
    }
    fn n_residuals(&self) -> usize {
        self.y.len()
    }
    fn residuals(&self, theta: &[f64], r: &mut [f64]) -> neurohybrid_hybrid::Result<()> {
        for (i, ri) in r.iter_mut().enumerate() {
            let row = &self.a[i * self.p..(i + 1) * self.p];
            let pred: f64 = row.iter().zip(theta).map(|(a, t)| a * t).sum();
            *ri = (pred - self.y[i]) / self.sigma;
        }
        Ok(())
    }
    fn jacobian(
        &self,
        theta: &[f64],
        r: &mut [f64],
        jac: &mut [f64],
    ) -> neurohybrid_hybrid::Result<()> {
        self.residuals(theta, r)?;
        for (j, a) in jac.iter_mut().zip(&self.a) {
            *j = a / self.sigma;
        }
        Ok(())
    }
}

/// (XᵀX)⁻¹ for p = 2 in closed form.
fn inv2(x: &[f64]) -> [f64; 4] {
    let (mut a, mut b, mut d) = (0.0, 0.0, 0.0);
    for row in x.chunks_exact(2) {
        a += row[0] * row[0];
        b += row[0] * row[1];
        d += row[1] * row[1];
    }
    let det = a * d - b * b;
    [d / det, -b / det, -b / det, a / det]
}

fn design(n: usize) -> Vec<f64> {
    (0..n).flat_map(|i| [i as f64 / (n - 1) as f64, 1.0]).collect()
}

fn noisy_line(x: &[f64], theta: [f64; 2], sigma: f64, rng: &mut SplitMix64) -> Vec<f64> {
    x.chunks_exact(2).map(|r| r[0] * theta[0] + r[1] * theta[1] + sigma * rng.normal()).collect()
}

#[test]
fn laplace_covariance_is_the_linear_regression_covariance() {
    let x = design(20);
    let sigma = 0.3;
    let mut rng = SplitMix64::new(7);
    let y = noisy_line(&x, [2.0, -1.0], sigma, &mut rng);
    let model = Linear { a: x.clone(), y: y.clone(), sigma, p: 2 };
    let cal = Calibrator::default().calibrate(&model, &[0.0, 0.0]).unwrap();
    assert!(cal.converged, "{:?}", cal.status);
    let inv = inv2(&x);
    // θ̂ = (XᵀX)⁻¹ Xᵀ y
    let xty = x
        .chunks_exact(2)
        .zip(&y)
        .fold([0.0; 2], |acc, (r, yi)| [acc[0] + r[0] * yi, acc[1] + r[1] * yi]);
    let ls = [inv[0] * xty[0] + inv[1] * xty[1], inv[2] * xty[0] + inv[3] * xty[1]];
    for i in 0..2 {
        assert!((cal.theta[i] - ls[i]).abs() < 1e-8, "{} vs {}", cal.theta[i], ls[i]);
    }
    for k in 0..4 {
        let exact = sigma * sigma * inv[k];
        assert!((cal.covariance[k] - exact).abs() <= 1e-8 * exact.abs().max(1e-3), "{k}");
    }
    assert!((cal.std[0] - (sigma * sigma * inv[0]).sqrt()).abs() < 1e-8);
    let half = 1.959_963_984_540_054 * cal.std[0];
    assert!((cal.ci95[0].0 - (cal.theta[0] - half)).abs() < 1e-12);

    // Estimated noise: the model believes σ = 1; the estimate s² = RSS/(N − p) rescales the
    // covariance exactly as in linear regression.
    let model1 = Linear { a: x.clone(), y: y.clone(), sigma: 1.0, p: 2 };
    let est =
        Calibrator::default().with_noise(Noise::Estimated).calibrate(&model1, &[0.0, 0.0]).unwrap();
    let rss: f64 =
        x.chunks_exact(2).zip(&y).map(|(r, yi)| (r[0] * ls[0] + r[1] * ls[1] - yi).powi(2)).sum();
    let s2 = rss / 18.0;
    assert!((est.noise_scale - s2.sqrt()).abs() < 1e-8);
    for k in 0..4 {
        let exact = s2 * inv[k];
        assert!((est.covariance[k] - exact).abs() <= 1e-8 * exact.abs().max(1e-3), "{k}");
    }
}

#[test]
fn gaussian_prior_adds_its_precision() {
    let x = design(10);
    let sigma = 0.5;
    let mut rng = SplitMix64::new(3);
    let y = noisy_line(&x, [1.0, 0.5], sigma, &mut rng);
    let model = Linear { a: x.clone(), y, sigma, p: 2 };
    let tau = 0.2;
    let cal = Calibrator::default()
        .with_priors(vec![Prior { mean: 1.0, std: tau }, Prior::flat()])
        .calibrate(&model, &[0.0, 0.0])
        .unwrap();
    // H = XᵀX/σ² + diag(1/τ², 0), inverted in closed form.
    let (mut a, mut b, mut d) = (0.0, 0.0, 0.0);
    for r in x.chunks_exact(2) {
        a += r[0] * r[0];
        b += r[0] * r[1];
        d += r[1] * r[1];
    }
    let (a, b, d) =
        (a / (sigma * sigma) + 1.0 / (tau * tau), b / (sigma * sigma), d / (sigma * sigma));
    let det = a * d - b * b;
    let exact = [d / det, -b / det, -b / det, a / det];
    for k in 0..4 {
        assert!((cal.covariance[k] - exact[k]).abs() <= 1e-8 * exact[k].abs(), "{k}");
    }
}

#[test]
fn unidentifiable_parameters_are_a_named_error() {
    // θ₀ and θ₁ enter only as their sum.
    let x: Vec<f64> = (0..5).flat_map(|_| [1.0, 1.0]).collect();
    let model = Linear { a: x, y: vec![1.0; 5], sigma: 1.0, p: 2 };
    let err = Calibrator::default().calibrate(&model, &[0.0, 0.0]).unwrap_err();
    assert!(matches!(err, HybridError::NotIdentifiable { parameter: 1 }), "{err}");
    // A Log transform refuses a non-positive start.
    let model = Linear { a: design(4), y: vec![1.0; 4], sigma: 1.0, p: 2 };
    let err = Calibrator::new(vec![Transform::Log, Transform::Identity])
        .calibrate(&model, &[-1.0, 0.0])
        .unwrap_err();
    assert!(matches!(err, HybridError::InvalidConfig { .. }), "{err}");
}

#[test]
fn transforms_round_trip_with_correct_derivatives() {
    for tr in [Transform::Identity, Transform::Log, Transform::Logit { lo: -1.0, hi: 3.0 }] {
        for theta in [0.1, 0.7, 2.5] {
            let z = tr.to_free(theta).unwrap();
            assert!((tr.to_param(z) - theta).abs() < 1e-14);
            let h = 1e-6;
            let fd = (tr.to_param(z + h) - tr.to_param(z - h)) / (2.0 * h);
            assert!((fd - tr.derivative(z)).abs() < 1e-8);
        }
    }
}

/// `y(t) = y0 + a t` as the ODE `y' = a`: linear in (a, y0), so its Laplace covariance must be
/// the regression covariance — a test of the forward-sensitivity Jacobian path end to end.
struct Drift;
impl OdeSystem for Drift {
    fn n_states(&self) -> usize {
        1
    }
    fn n_params(&self) -> usize {
        1
    }
    fn rhs(&self, _t: f64, _y: &[f64], p: &[f64], dy: &mut [f64]) {
        dy[0] = p[0];
    }
}
impl Jvp for Drift {
    fn jvp(&self, _t: f64, _y: &[f64], _p: &[f64], _vy: &[f64], vp: &[f64], out: &mut [f64]) {
        out[0] = vp.first().copied().unwrap_or(0.0);
    }
}
impl Vjp for Drift {
    fn vjp(&self, _t: f64, _y: &[f64], _p: &[f64], w: &[f64], wy: &mut [f64], wp: &mut [f64]) {
        wy[0] = 0.0;
        if let Some(g) = wp.first_mut() {
            *g = w[0];
        }
    }
}

#[test]
fn ode_residuals_of_a_linear_model_give_the_regression_covariance() {
    let times: Vec<f64> = (1..=12).map(|k| k as f64 / 4.0).collect();
    let sigma = 0.05;
    let mut rng = SplitMix64::new(11);
    let data: Vec<f64> = times.iter().map(|t| 0.4 + 1.5 * t + sigma * rng.normal()).collect();
    let problem = Problem::new(Drift, [0.0], [0.0], (0.0, 3.0));
    let model =
        OdeResiduals::new(problem, Tsit5, PiController::new(1e-10, 1e-12), times.clone(), data)
            .unwrap()
            .sigma(sigma)
            .unwrap()
            .calibrate(vec![0], vec![0])
            .unwrap();
    let cal = Calibrator::default().calibrate(&model, &[1.0, 0.0]).unwrap();
    assert!(cal.converged, "{:?}", cal.status);
    let x: Vec<f64> = times.iter().flat_map(|&t| [t, 1.0]).collect();
    let inv = inv2(&x);
    for k in 0..4 {
        let exact = sigma * sigma * inv[k];
        assert!(
            (cal.covariance[k] - exact).abs() <= 1e-8 * exact.abs(),
            "{k}: {} vs {exact}",
            cal.covariance[k]
        );
    }
}

fn fd_jacobian(model: &dyn ResidualModel, theta: &[f64]) -> Vec<f64> {
    let (p, nr) = (model.n_params(), model.n_residuals());
    let mut jac = vec![0.0; nr * p];
    let (mut rp, mut rm) = (vec![0.0; nr], vec![0.0; nr]);
    for j in 0..p {
        let h = 1e-6 * theta[j].abs().max(1.0);
        let mut tp = theta.to_vec();
        tp[j] += h;
        model.residuals(&tp, &mut rp).unwrap();
        tp[j] -= 2.0 * h;
        model.residuals(&tp, &mut rm).unwrap();
        for i in 0..nr {
            jac[i * p + j] = (rp[i] - rm[i]) / (2.0 * h);
        }
    }
    jac
}

#[test]
fn forward_sensitivity_jacobian_matches_finite_differences_through_an_impulse() {
    // Decay with a radiotherapy-like Scale impulse at t = 1 and a mask with one gap.
    let problem = Problem::new(ExponentialDecay::default(), [2.0], [0.7], (0.0, 2.0))
        .with_impulse(1.0, Scale::all(0.5));
    let times = vec![0.5, 1.0, 1.5, 2.0];
    let model = OdeResiduals::new(
        problem,
        Tsit5,
        PiController::new(1e-11, 1e-13),
        times,
        vec![1.0, 0.5, 0.3, 0.2],
    )
    .unwrap()
    .sigma(0.1)
    .unwrap()
    .mask(vec![true, true, false, true])
    .unwrap()
    .calibrate(vec![0], vec![0])
    .unwrap();
    assert_eq!(model.n_residuals(), 3);
    let theta = [0.7, 2.0];
    let mut r = vec![0.0; 3];
    let mut jac = vec![0.0; 6];
    model.jacobian(&theta, &mut r, &mut jac).unwrap();
    // Exact: y(t) = y0 e^{-λt} · (0.5 after t = 1)
    let exact = |t: f64| 2.0 * (-0.7 * t).exp() * if t >= 1.0 { 0.5 } else { 1.0 };
    for (ri, (t, d)) in r.iter().zip([(0.5, 1.0), (1.0, 0.5), (2.0, 0.2)]) {
        assert!((ri - (exact(t) - d) / 0.1).abs() < 1e-7);
    }
    let fd = fd_jacobian(&model, &theta);
    for (a, b) in jac.iter().zip(&fd) {
        assert!((a - b).abs() < 1e-6 * b.abs().max(1.0), "{a} vs {b}");
    }
    // Analytic: ∂y/∂λ = −t y, ∂y/∂y0 = y / y0.
    assert!((jac[4] - (-2.0 * exact(2.0)) / 0.1).abs() < 1e-7);
    assert!((jac[5] - exact(2.0) / 2.0 / 0.1).abs() < 1e-7);
}

#[test]
fn logistic_growth_rate_and_seed_are_recovered() {
    let (r_true, u0_true) = (1.3, 0.05);
    let times: Vec<f64> = (1..=16).map(|k| k as f64 * 0.5).collect();
    let sigma = 0.01;
    let mut rng = SplitMix64::new(5);
    let data: Vec<f64> = times
        .iter()
        .map(|&t| {
            let e = (r_true * t).exp();
            u0_true * e / (1.0 - u0_true + u0_true * e) + sigma * rng.normal()
        })
        .collect();
    let problem = Problem::new(Logistic::default(), [0.2], [0.5], (0.0, 8.0));
    let model = OdeResiduals::new(problem, Tsit5, PiController::new(1e-9, 1e-11), times, data)
        .unwrap()
        .sigma(sigma)
        .unwrap()
        .calibrate(vec![0], vec![0])
        .unwrap();
    let cal = Calibrator::new(vec![Transform::Log, Transform::Logit { lo: 0.0, hi: 1.0 }])
        .calibrate(&model, &[0.5, 0.2])
        .unwrap();
    assert!(cal.converged, "{:?} after {}: {:?}", cal.status, cal.iterations, cal.theta);
    for (i, truth) in [r_true, u0_true].into_iter().enumerate() {
        assert!(
            (cal.theta[i] - truth).abs() < 4.0 * cal.std[i],
            "{i}: {} ± {}",
            cal.theta[i],
            cal.std[i]
        );
        assert!(
            cal.ci95[i].0 > 0.0 && cal.ci95[i].0 < cal.theta[i] && cal.theta[i] < cal.ci95[i].1
        );
    }
    assert!((cal.theta[0] - r_true).abs() / r_true < 0.02);
}

/// y = a e^{−b t} in closed form (no ODE, so many replicates are cheap).
struct ExpModel {
    t: Vec<f64>,
    y: Vec<f64>,
    sigma: f64,
}
impl ResidualModel for ExpModel {
    fn n_params(&self) -> usize {
        2
    }
    fn n_residuals(&self) -> usize {
        self.t.len()
    }
    fn residuals(&self, th: &[f64], r: &mut [f64]) -> neurohybrid_hybrid::Result<()> {
        for ((ri, t), y) in r.iter_mut().zip(&self.t).zip(&self.y) {
            *ri = (th[0] * (-th[1] * t).exp() - y) / self.sigma;
        }
        Ok(())
    }
    fn jacobian(
        &self,
        th: &[f64],
        r: &mut [f64],
        jac: &mut [f64],
    ) -> neurohybrid_hybrid::Result<()> {
        self.residuals(th, r)?;
        for (row, t) in jac.chunks_exact_mut(2).zip(&self.t) {
            let e = (-th[1] * t).exp();
            row[0] = e / self.sigma;
            row[1] = -th[0] * t * e / self.sigma;
        }
        Ok(())
    }
}

#[test]
fn laplace_intervals_cover_the_truth_about_95_percent_of_the_time() {
    let truth = [2.0, 0.8];
    let t: Vec<f64> = (0..15).map(|k| k as f64 * 0.25).collect();
    let sigma = 0.05;
    let mut rng = SplitMix64::new(2026);
    let cal = Calibrator::new(vec![Transform::Log, Transform::Log]);
    let reps = 400;
    let mut covered = [0usize; 2];
    for _ in 0..reps {
        let y =
            t.iter().map(|&ti| truth[0] * (-truth[1] * ti).exp() + sigma * rng.normal()).collect();
        let fit = cal.calibrate(&ExpModel { t: t.clone(), y, sigma }, &[1.0, 1.0]).unwrap();
        assert!(fit.converged);
        for i in 0..2 {
            if fit.ci95[i].0 <= truth[i] && truth[i] <= fit.ci95[i].1 {
                covered[i] += 1;
            }
        }
    }
    // Binomial(400, 0.95) has std ≈ 1.1 %; the Laplace approximation of this mildly nonlinear
    // model is close to exact, so coverage must land within [0.91, 0.985].
    for c in covered {
        let frac = c as f64 / reps as f64;
        assert!((0.91..=0.985).contains(&frac), "coverage {frac}");
    }
}

#[test]
fn partially_observed_system_jacobian_matches_finite_differences() {
    use neurohybrid_testkit::LotkaVolterra;
    // Only the prey is observed; two parameters and the predator's initial state calibrated.
    let problem =
        Problem::new(LotkaVolterra::default(), [1.0, 1.0], [1.5, 1.0, 3.0, 1.0], (0.0, 3.0));
    let times = vec![0.5, 1.0, 2.0, 3.0];
    let model =
        OdeResiduals::new(problem, Tsit5, PiController::new(1e-11, 1e-13), times, vec![0.0; 8])
            .unwrap()
            .observed(vec![0], vec![1.0, 0.8, 0.6, 1.1])
            .unwrap()
            .sigma_per_component(vec![0.05])
            .unwrap()
            .calibrate(vec![0, 3], vec![1])
            .unwrap();
    assert_eq!((model.n_params(), model.n_residuals()), (3, 4));
    assert_eq!(model.theta(), vec![1.5, 1.0, 1.0]);
    let theta = [1.4, 1.1, 0.9];
    let (mut r, mut jac) = (vec![0.0; 4], vec![0.0; 12]);
    model.jacobian(&theta, &mut r, &mut jac).unwrap();
    let mut r2 = vec![0.0; 4];
    model.residuals(&theta, &mut r2).unwrap();
    for (a, b) in r.iter().zip(&r2) {
        assert!((a - b).abs() < 1e-7, "{a} vs {b}");
    }
    let fd = fd_jacobian(&model, &theta);
    for (a, b) in jac.iter().zip(&fd) {
        assert!((a - b).abs() < 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }
    // Bad indices and lengths are named errors.
    let problem =
        Problem::new(LotkaVolterra::default(), [1.0, 1.0], [1.5, 1.0, 3.0, 1.0], (0.0, 3.0));
    let base =
        OdeResiduals::new(problem, Tsit5, PiController::new(1e-8, 1e-10), vec![1.0], vec![0.0; 2])
            .unwrap();
    assert!(matches!(base.calibrate(vec![4], vec![]), Err(HybridError::InvalidConfig { .. })));
    let problem =
        Problem::new(LotkaVolterra::default(), [1.0, 1.0], [1.5, 1.0, 3.0, 1.0], (0.0, 3.0));
    let short =
        OdeResiduals::new(problem, Tsit5, PiController::new(1e-8, 1e-10), vec![1.0], vec![0.0]);
    assert!(matches!(short, Err(HybridError::LengthMismatch { .. })));
}

/// Robertson's kinetics (rate constants 0.04, 3·10⁷, 10⁴: stiffness ratio ~10¹¹ at t = 40)
/// with the augmented sensitivity system integrated by an implicit stepper, which needs the
/// augmented system's Jacobian (solve's `SensitivitySystem`: block lower triangular).
fn robertson_residuals<St>(
    stepper: St,
    data: Vec<f64>,
) -> OdeResiduals<neurohybrid_testkit::Robertson, St, PiController> {
    let problem = Problem::new(
        neurohybrid_testkit::Robertson::default(),
        [1.0, 0.0, 0.0],
        [0.04, 3e7, 1e4],
        (0.0, 40.0),
    );
    let times = vec![0.4, 4.0, 10.0, 20.0, 40.0];
    OdeResiduals::new(problem, stepper, PiController::new(1e-9, 1e-12), times, vec![0.0; 15])
        .unwrap()
        .observed(vec![0, 2], data)
        .unwrap()
        .sigma(1e-3)
        .unwrap()
        .calibrate(vec![0, 2], vec![])
        .unwrap()
}

#[test]
fn stiff_calibration_with_an_implicit_stepper_jacobian_and_recovery() {
    use neurohybrid_solve_implicit::{Bdf, Rodas4, Tolerances};
    let truth = [0.04, 1e4];
    // Synthetic data: the model at the truth (solved tightly) plus σ = 10⁻³ noise.
    let clean = robertson_residuals(Rodas4::new().autonomous(), vec![0.0; 10]);
    let mut y = vec![0.0; 10];
    clean.residuals(&truth, &mut y).unwrap();
    let mut rng = SplitMix64::new(41);
    let data: Vec<f64> = y.iter().map(|r| r * 1e-3 + 1e-3 * rng.normal()).collect();

    let model = robertson_residuals(Rodas4::new().autonomous(), data.clone());
    // Jacobian vs central differences with relative steps (k1 and k3 differ by 10⁵);
    // measured: 1.6e-7 of the column's largest entry.
    let theta = [0.05, 8e3];
    let (mut r, mut jac) = (vec![0.0; 10], vec![0.0; 20]);
    model.jacobian(&theta, &mut r, &mut jac).unwrap();
    let (mut rp, mut rm) = (vec![0.0; 10], vec![0.0; 10]);
    for j in 0..2 {
        let h = 1e-4 * theta[j];
        let (mut tp, mut tm) = (theta, theta);
        tp[j] += h;
        tm[j] -= h;
        model.residuals(&tp, &mut rp).unwrap();
        model.residuals(&tm, &mut rm).unwrap();
        for i in 0..10 {
            let fd = (rp[i] - rm[i]) / (2.0 * h);
            let scale = jac.iter().skip(j).step_by(2).fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(
                (jac[i * 2 + j] - fd).abs() <= 1e-5 * scale,
                "({i}, {j}): {} vs {fd}",
                jac[i * 2 + j]
            );
        }
    }
    // The residuals of the augmented solve are those of the plain solve.
    model.residuals(&theta, &mut rp).unwrap();
    for (a, b) in r.iter().zip(&rp) {
        assert!((a - b).abs() < 1e-3, "{a} vs {b}");
    }
    // BDF (its Newton tolerances = the controller's) gives the same Jacobian (measured 3e-9).
    let bdf = robertson_residuals(Bdf::new(Tolerances::new(1e-9, 1e-12)), data.clone());
    let mut jac_bdf = vec![0.0; 20];
    bdf.jacobian(&theta, &mut rp, &mut jac_bdf).unwrap();
    for j in 0..2 {
        let scale = jac.iter().skip(j).step_by(2).fold(0.0f64, |m, v| m.max(v.abs()));
        for i in 0..10 {
            assert!((jac[i * 2 + j] - jac_bdf[i * 2 + j]).abs() <= 1e-6 * scale);
        }
    }
    // Recovery from 25 % / 20 % off, in log space.
    let cal =
        Calibrator::new(vec![Transform::Log, Transform::Log]).calibrate(&model, &theta).unwrap();
    assert!(cal.converged, "{:?} after {}: {:?}", cal.status, cal.iterations, cal.theta);
    for i in 0..2 {
        let z = (cal.theta[i] - truth[i]) / cal.std[i];
        assert!(z.abs() < 4.0, "{i}: {} ± {} (truth {})", cal.theta[i], cal.std[i], truth[i]);
        assert!(cal.std[i] < 0.05 * truth[i]);
    }
}

#[test]
fn estimated_noise_with_priors_is_the_self_consistent_fixed_point() {
    // A nonlinear model, a guessed σ₀ = 1 (true 0.05) and an informative prior on one
    // parameter: the returned θ̂ must be the MAP for the returned s (s² = RSS/(N − p) at θ̂),
    // i.e. refitting with known noise s from θ̂ stays there and reproduces the covariance.
    let t: Vec<f64> = (0..15).map(|k| k as f64 * 0.25).collect();
    let mut rng = SplitMix64::new(77);
    let y: Vec<f64> = t.iter().map(|&ti| 2.0 * (-0.8 * ti).exp() + 0.05 * rng.normal()).collect();
    let priors = vec![Prior { mean: 0.5f64.ln(), std: 0.1 }, Prior::flat()];
    let cal = Calibrator::new(vec![Transform::Log, Transform::Log])
        .with_priors(priors.clone())
        .with_noise(Noise::Estimated);
    let est =
        cal.calibrate(&ExpModel { t: t.clone(), y: y.clone(), sigma: 1.0 }, &[1.0, 1.0]).unwrap();
    assert!(est.converged, "{:?}", est.status);
    let mut r = vec![0.0; 15];
    ExpModel { t: t.clone(), y: y.clone(), sigma: 1.0 }.residuals(&est.theta, &mut r).unwrap();
    let s = (r.iter().map(|v| v * v).sum::<f64>() / 13.0).sqrt();
    assert!((est.noise_scale - s).abs() < 1e-12 * s);
    let known = Calibrator { noise: Noise::Known, ..cal }
        .calibrate(&ExpModel { t, y, sigma: s }, &est.theta)
        .unwrap();
    for i in 0..2 {
        assert!((known.theta[i] - est.theta[i]).abs() < 1e-6 * est.theta[i], "{i}");
    }
    for k in 0..4 {
        let c = est.covariance[k];
        assert!((known.covariance[k] - c).abs() < 1e-5 * c.abs().max(1e-12), "{k}");
    }
    // The prior pulls the amplitude away from its likelihood optimum (≈ 2) towards 0.5.
    assert!(est.theta[0] < 1.9);
}
