//! Continuous adjoints (backsolve, interpolating with and without checkpoints, quadrature)
//! against central finite differences, against forward sensitivities and the discrete adjoint,
//! and against the matrix-exponential gradient of linear systems: Lotka–Volterra, Robertson
//! with implicit steppers, a `TapeSystem` with an MLP term, and a problem with impulses
//! (including the gradient w.r.t. an impulse parameter).

use neurohybrid_autodiff::Graph;
use neurohybrid_solve::sensitivity::{
    BacksolveAdjoint, DiscreteAdjoint, ForwardSensitivity, Gradient, InterpolatingAdjoint, Loss,
    QuadratureAdjoint, Sensitivity, SquaredMisfit, gradient,
};
use neurohybrid_solve::{
    Impulse, PiController, Problem, SaveAt, SolveError, StepSizeController, Stepper, solve,
};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_solve_implicit::{Bdf, Esdirk4, Rodas4, Tolerances};
use neurohybrid_system::{OdeSystem, TapeSystem, Vjp};
use neurohybrid_testkit::{LotkaVolterra, lotka_volterra, robertson};
use proptest::prelude::*;

const RTOL: f64 = 1e-10;

/// `max_k |a_k − b_k| / max_k |b_k|`: normwise relative error.
fn rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let d = a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    d / b.iter().fold(0.0f64, |m, y| m.max(y.abs())).max(1e-300)
}

/// Central finite differences of the loss w.r.t. `y0` and `p` (relative step `h`).
fn fd<S, St, C>(
    problem: &Problem<S>,
    stepper: &St,
    ctrl: &C,
    save: &SaveAt,
    loss: &dyn Loss,
    h: f64,
) -> (Vec<f64>, Vec<f64>)
where
    S: OdeSystem + Clone,
    St: Stepper<S>,
    C: StepSizeController,
{
    let eval = |pr: &Problem<S>| {
        let sol = solve(pr, stepper, ctrl, save).expect("valid problem");
        assert!(sol.is_success(), "{:?}", sol.status());
        let mut cot = vec![0.0; sol.ys().len()];
        loss.value_and_cotangents(sol.ts(), sol.ys(), &mut cot)
    };
    let mut dy0 = Vec::new();
    for i in 0..problem.y0().len() {
        let step = h * problem.y0()[i].abs().max(1.0);
        let mut pr = problem.clone();
        pr.y0_mut()[i] += step;
        let lp = eval(&pr);
        pr.y0_mut()[i] -= 2.0 * step;
        let lm = eval(&pr);
        dy0.push((lp - lm) / (2.0 * step));
    }
    let mut dp = Vec::new();
    for k in 0..problem.params().len() {
        let step = h * problem.params()[k].abs().max(1e-3);
        let mut pr = problem.clone();
        pr.params_mut()[k] += step;
        let lp = eval(&pr);
        pr.params_mut()[k] -= 2.0 * step;
        let lm = eval(&pr);
        dp.push((lp - lm) / (2.0 * step));
    }
    (dy0, dp)
}

fn check(label: &str, g: &Gradient, dy0: &[f64], dp: &[f64], tol: f64) {
    let (ey, ep) = (rel(&g.dl_dy0, dy0), rel(&g.dl_dp, dp));
    assert!(
        ey <= tol && ep <= tol,
        "{label}: rel. error dL/dy0 {ey:.2e}, dL/dp {ep:.2e} (tol {tol:.0e})\n got {:?} {:?}\nwant {dy0:?} {dp:?}",
        g.dl_dy0,
        g.dl_dp
    );
}

type Method = Box<dyn Sensitivity<LotkaVolterra, Tsit5, PiController>>;

fn lv_problem() -> (Problem<LotkaVolterra>, SaveAt, SquaredMisfit) {
    let rp = lotka_volterra();
    let problem = Problem::new(rp.system.clone(), rp.y0.clone(), rp.p.clone(), rp.t_span);
    let ts: Vec<f64> = (1..=10).map(|i| i as f64).collect();
    let targets: Vec<f64> = ts.iter().flat_map(|t| [1.0 + 0.1 * t, 0.8]).collect();
    (problem, SaveAt::Times(ts), SquaredMisfit::new(targets))
}

#[test]
fn lotka_volterra_every_continuous_adjoint_matches_fd_forward_and_discrete() {
    let (problem, save, loss) = lv_problem();
    let ctrl = PiController::new(RTOL, 1e-12);
    let fd_ctrl = PiController::new(1e-13, 1e-15);
    let (dy0, dp) = fd(&problem, &Tsit5, &fd_ctrl, &save, &loss, 1e-4);
    let methods: Vec<(&str, Method)> = vec![
        ("backsolve", Box::new(BacksolveAdjoint::new())),
        ("interpolating", Box::new(InterpolatingAdjoint::new())),
        ("interpolating/checkpoints", Box::new(InterpolatingAdjoint::with_checkpoints(4))),
        ("quadrature", Box::new(QuadratureAdjoint::new())),
    ];
    let fwd = gradient(&problem, &Tsit5, &ctrl, &save, &loss, &ForwardSensitivity::all()).unwrap();
    let disc =
        gradient(&problem, &Tsit5, &ctrl, &save, &loss, &DiscreteAdjoint::default()).unwrap();
    for (name, m) in &methods {
        let g = gradient(&problem, &Tsit5, &ctrl, &save, &loss, m.as_ref()).unwrap();
        check(name, &g, &dy0, &dp, 1e-5);
        check(&format!("{name} vs forward"), &g, &fwd.dl_dy0, &fwd.dl_dp, 1e-6);
        check(&format!("{name} vs discrete"), &g, &disc.dl_dy0, &disc.dl_dp, 1e-6);
        assert!((g.value - fwd.value).abs() <= 1e-8 * fwd.value.abs(), "{name}: loss value");
        assert!(g.reverse_stats.vjp_evals > 0);
    }
}

#[test]
fn checkpointing_bounds_memory_and_recomputes() {
    let (problem, save, loss) = lv_problem();
    let ctrl = PiController::new(RTOL, 1e-12);
    let full =
        gradient(&problem, &Tsit5, &ctrl, &save, &loss, &InterpolatingAdjoint::new()).unwrap();
    let ck = InterpolatingAdjoint::with_checkpoints(8);
    let part = gradient(&problem, &Tsit5, &ctrl, &save, &loss, &ck).unwrap();
    assert!(
        part.memory.peak_stored_states * 3 < full.memory.peak_stored_states,
        "{:?} vs {:?}",
        part.memory,
        full.memory
    );
    assert!(part.memory.recomputed_steps > 0 && full.memory.recomputed_steps == 0);
    check("checkpointed vs stored", &part, &full.dl_dy0, &full.dl_dp, 1e-7);
    let bs = gradient(&problem, &Tsit5, &ctrl, &save, &loss, &BacksolveAdjoint::new()).unwrap();
    assert!(bs.memory.peak_stored_states < part.memory.peak_stored_states);
}

#[test]
fn robertson_interpolating_and_quadrature_with_bdf_esdirk_and_rodas() {
    let rp = robertson();
    let problem = Problem::new(rp.system.clone(), rp.y0.clone(), rp.p.clone(), (0.0, 10.0));
    let save = SaveAt::Times(vec![0.5, 2.0, 10.0]);
    // Observe y1 and y3 (O(1)) and y2 scaled up to the same order.
    let loss = |_: &[f64], ys: &[f64], cot: &mut [f64]| {
        let mut v = 0.0;
        for (k, y) in ys.chunks(3).enumerate() {
            let w = [1.0, 1e8, 1.0];
            for i in 0..3 {
                let r = y[i] - 0.3 * (k + 1) as f64 * if i == 1 { 1e-5 } else { 1.0 };
                v += w[i] * r * r;
                cot[3 * k + i] = 2.0 * w[i] * r;
            }
        }
        v
    };
    // atol 1e-12: at 1e-14 Bdf's backward solve stops at t1 with StepSizeTooSmall (λ starts
    // with zero components whose error weight is then atol alone).
    let (rtol, atol) = (RTOL, 1e-12);
    let ctrl = PiController::new(rtol, atol);
    let tol = Tolerances::new(rtol, atol);
    let fd_ctrl = PiController::new(1e-12, 1e-16);
    // The adjoint system depends on t through the interpolated y(t): Rodas4 must difference
    // ∂f/∂t (the default), not be declared autonomous.
    let rodas = Rodas4::new();
    let (dy0, dp) = fd(&problem, &Rodas4::new().autonomous(), &fd_ctrl, &save, &loss, 1e-5);
    // Forward sensitivities need an explicit stepper (their system has no Jacobian); Tsit5 is
    // slow on Robertson but n = 3.
    let fwd = gradient(&problem, &Tsit5, &ctrl, &save, &loss, &ForwardSensitivity::all()).unwrap();
    check("forward sensitivity (Tsit5) vs fd", &fwd, &dy0, &dp, 1e-5);

    let bdf = Bdf::new(tol.clone());
    let esdirk = Esdirk4::with_tolerances(rtol, atol);
    let g = gradient(&problem, &bdf, &ctrl, &save, &loss, &InterpolatingAdjoint::new()).unwrap();
    check("interpolating/BDF", &g, &dy0, &dp, 1e-5);
    check("interpolating/BDF vs forward", &g, &fwd.dl_dy0, &fwd.dl_dp, 1e-5);
    let g = gradient(&problem, &esdirk, &ctrl, &save, &loss, &InterpolatingAdjoint::new()).unwrap();
    check("interpolating/ESDIRK4", &g, &dy0, &dp, 1e-5);
    let g = gradient(&problem, &rodas, &ctrl, &save, &loss, &InterpolatingAdjoint::new()).unwrap();
    check("interpolating/Rodas4", &g, &dy0, &dp, 1e-5);
    assert!(
        g.reverse_stats.jacobian_evals > 0,
        "the implicit backward solve used the adjoint Jacobian"
    );
    let g = gradient(&problem, &rodas, &ctrl, &save, &loss, &QuadratureAdjoint::new()).unwrap();
    check("quadrature/Rodas4", &g, &dy0, &dp, 1e-5);
    let g = gradient(&problem, &bdf, &ctrl, &save, &loss, &QuadratureAdjoint::new()).unwrap();
    check("quadrature/BDF", &g, &dy0, &dp, 1e-5);
}

/// Lotka–Volterra plus a 2→8→2 tanh MLP residual, recorded as a graph (the quickstart model).
fn ude() -> (TapeSystem, Vec<f64>) {
    const H: usize = 8;
    let n_nn = 2 * H + H + H * 2 + 2;
    let n_p = 4 + n_nn;
    let mut g = Graph::new();
    let y = g.input("y", &[2]).unwrap();
    let p = g.input("p", &[n_p]).unwrap();
    let (x1, x2) = (g.slice(y, 0, 1).unwrap(), g.slice(y, 1, 1).unwrap());
    let pk: Vec<_> = (0..4).map(|k| g.slice(p, k, 1).unwrap()).collect();
    let xy = g.mul(x1, x2).unwrap();
    let ax = g.mul(pk[0], x1).unwrap();
    let bxy = g.mul(pk[1], xy).unwrap();
    let f1 = g.sub(ax, bxy).unwrap();
    let gy = g.mul(pk[2], x2).unwrap();
    let dxy = g.mul(pk[3], xy).unwrap();
    let f2 = g.sub(dxy, gy).unwrap();
    let mech = g.concat(&[f1, f2]).unwrap();
    let mut off = 4;
    let mut take = |g: &mut Graph, shape: &[usize]| {
        let len = shape.iter().product();
        let v = g.slice(p, off, len).unwrap();
        off += len;
        g.reshape(v, shape).unwrap()
    };
    let (w1, b1) = (take(&mut g, &[2, H]), take(&mut g, &[H]));
    let (w2, b2) = (take(&mut g, &[H, 2]), take(&mut g, &[2]));
    let row = g.reshape(y, &[1, 2]).unwrap();
    let h = g.matmul(row, w1).unwrap();
    let h = g.add(h, b1).unwrap();
    let h = g.tanh(h).unwrap();
    let out = g.matmul(h, w2).unwrap();
    let out = g.add(out, b2).unwrap();
    let nn = g.reshape(out, &[2]).unwrap();
    let f = g.add(mech, nn).unwrap();
    let sys = TapeSystem::new(g.compile(&[f]).unwrap()).unwrap();
    let mut params = vec![1.3, 0.9, 0.8, 1.8];
    params.extend((0..n_nn).map(|i| 0.05 * ((i as f64) * 0.7).sin()));
    (sys, params)
}

#[test]
fn tape_system_with_mlp_term() {
    let (sys, params) = ude();
    let problem = Problem::new(sys, [0.44249296, 4.6280594], params, (0.0, 3.0));
    let ts: Vec<f64> = (1..=6).map(|i| 0.5 * i as f64).collect();
    let targets: Vec<f64> = ts.iter().flat_map(|t| [1.0 + 0.2 * t, 3.0 - 0.3 * t]).collect();
    let (save, loss) = (SaveAt::Times(ts), SquaredMisfit::new(targets));
    let ctrl = PiController::new(RTOL, 1e-12);
    let (dy0, dp) = fd(&problem, &Tsit5, &PiController::new(1e-13, 1e-15), &save, &loss, 1e-4);
    let fwd = gradient(&problem, &Tsit5, &ctrl, &save, &loss, &ForwardSensitivity::all()).unwrap();
    for (name, g) in [
        ("backsolve", gradient(&problem, &Tsit5, &ctrl, &save, &loss, &BacksolveAdjoint::new())),
        (
            "interpolating",
            gradient(&problem, &Tsit5, &ctrl, &save, &loss, &InterpolatingAdjoint::new()),
        ),
        ("quadrature", gradient(&problem, &Tsit5, &ctrl, &save, &loss, &QuadratureAdjoint::new())),
    ] {
        let g = g.unwrap();
        check(name, &g, &dy0, &dp, 1e-5);
        check(&format!("{name} vs forward"), &g, &fwd.dl_dy0, &fwd.dl_dp, 1e-6);
    }
}

/// Lotka–Volterra with a fifth parameter `a` used only by the impulse.
#[derive(Debug, Clone)]
struct Dosed(LotkaVolterra);
impl OdeSystem for Dosed {
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        5
    }
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        self.0.rhs(t, y, &p[..4], dy);
    }
}
impl Vjp for Dosed {
    fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        if w_p.is_empty() {
            self.0.vjp(t, y, &p[..4], w, w_y, &mut []);
        } else {
            self.0.vjp(t, y, &p[..4], w, w_y, &mut w_p[..4]);
            w_p[4] = 0.0;
        }
    }
}
impl neurohybrid_system::Jvp for Dosed {
    fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        let vp = if v_p.is_empty() { v_p } else { &v_p[..4] };
        self.0.jvp(t, y, &p[..4], v_y, vp, out);
    }
}

/// A "dose": prey `y0 ← y0·exp(−a·d − b·d²)` with `a = p[4]` and fixed `d`, `b`; predators
/// `y1 ← y1 + 0.1·y0` (a coupling, so `∂M/∂y` is not diagonal).
struct Dose {
    d: f64,
}
impl Dose {
    fn s(&self, p: &[f64]) -> f64 {
        (-p[4] * self.d - 0.02 * self.d * self.d).exp()
    }
}
impl Impulse for Dose {
    fn apply(&self, _t: f64, y: &[f64], p: &[f64], out: &mut [f64]) {
        out[0] = y[0] * self.s(p);
        out[1] = y[1] + 0.1 * y[0];
    }
    fn vjp(&self, _t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        let s = self.s(p);
        w_y[0] = w[0] * s + 0.1 * w[1];
        w_y[1] = w[1];
        if !w_p.is_empty() {
            w_p.fill(0.0);
            w_p[4] = -self.d * y[0] * s * w[0];
        }
    }
    fn jvp(&self, _t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        let s = self.s(p);
        out[0] = v_y[0] * s - v_p.get(4).map_or(0.0, |v| v * self.d * y[0] * s);
        out[1] = v_y[1] + 0.1 * v_y[0];
    }
}

#[test]
fn impulses_including_the_impulse_parameter() {
    let rp = lotka_volterra();
    let mut p = rp.p.clone();
    p.push(0.4);
    let problem = Problem::new(Dosed(rp.system.clone()), rp.y0.clone(), p, (0.0, 8.0))
        .with_impulse(2.5, Dose { d: 1.0 })
        .with_impulse(5.0, Dose { d: 0.5 })
        .with_impulse(5.0, Dose { d: 0.3 }) // two at the same time, applied in order
        .with_impulse(8.0, Dose { d: 1.0 }); // at t1: the saved final value is post-impulse
    // Save times on impulse times (post-impulse values) and between them.
    let ts = vec![1.0, 2.5, 4.0, 5.0, 6.5, 8.0];
    let targets: Vec<f64> = ts.iter().flat_map(|t| [1.0 + 0.05 * t, 0.9]).collect();
    let (save, loss) = (SaveAt::Times(ts), SquaredMisfit::new(targets));
    let ctrl = PiController::new(RTOL, 1e-12);
    let (dy0, dp) = fd(&problem, &Tsit5, &PiController::new(1e-13, 1e-15), &save, &loss, 1e-4);
    assert!(dp[4].abs() > 1e-2, "the impulse parameter matters: {}", dp[4]);
    let fwd = gradient(&problem, &Tsit5, &ctrl, &save, &loss, &ForwardSensitivity::all()).unwrap();
    let disc =
        gradient(&problem, &Tsit5, &ctrl, &save, &loss, &DiscreteAdjoint::default()).unwrap();
    for (name, g) in [
        ("backsolve", gradient(&problem, &Tsit5, &ctrl, &save, &loss, &BacksolveAdjoint::new())),
        (
            "interpolating",
            gradient(&problem, &Tsit5, &ctrl, &save, &loss, &InterpolatingAdjoint::new()),
        ),
        (
            "interpolating/checkpoints",
            gradient(
                &problem,
                &Tsit5,
                &ctrl,
                &save,
                &loss,
                &InterpolatingAdjoint::with_checkpoints(3),
            ),
        ),
        ("quadrature", gradient(&problem, &Tsit5, &ctrl, &save, &loss, &QuadratureAdjoint::new())),
    ] {
        let g = g.unwrap();
        check(name, &g, &dy0, &dp, 1e-5);
        check(&format!("{name} vs forward"), &g, &fwd.dl_dy0, &fwd.dl_dp, 1e-6);
        check(&format!("{name} vs discrete"), &g, &disc.dl_dy0, &disc.dl_dp, 1e-6);
    }
}

#[test]
fn backsolve_refuses_a_drifting_reconstruction() {
    // With a reconstruction tolerance far below what rtol 1e-6 achieves, the check must fire
    // (and name the time) instead of returning a gradient.
    let (problem, save, loss) = lv_problem();
    let ctrl = PiController::new(1e-6, 1e-8);
    let strict = BacksolveAdjoint::new().with_reconstruction_tolerance(1e-12);
    match gradient(&problem, &Tsit5, &ctrl, &save, &loss, &strict) {
        Err(SolveError::BacksolveUnstable { t, reconstruction_error }) => {
            assert!(t < 10.0 && reconstruction_error > 1e-12);
        }
        other => panic!("expected BacksolveUnstable, got {other:?}"),
    }
}

/// `A(p)` with `p` the entries of `A`, row-major: `y' = A y`.
#[derive(Debug, Clone)]
struct Linear(usize);
impl OdeSystem for Linear {
    fn n_states(&self) -> usize {
        self.0
    }
    fn n_params(&self) -> usize {
        self.0 * self.0
    }
    fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        let n = self.0;
        for i in 0..n {
            dy[i] = (0..n).map(|j| p[i * n + j] * y[j]).sum();
        }
    }
}
impl Vjp for Linear {
    fn vjp(&self, _t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        let n = self.0;
        for j in 0..n {
            w_y[j] = (0..n).map(|i| w[i] * p[i * n + j]).sum();
        }
        if !w_p.is_empty() {
            for i in 0..n {
                for j in 0..n {
                    w_p[i * n + j] = w[i] * y[j];
                }
            }
        }
    }
}

/// `exp(M)` of a small dense `k × k` matrix: scaling and squaring with a degree-18 Taylor
/// polynomial (ample for ‖M‖ ≤ 1 after scaling, to rounding).
fn expm(m: &[f64], k: usize) -> Vec<f64> {
    let norm = m.iter().fold(0.0f64, |a, v| a.max(v.abs())) * k as f64;
    let s = if norm > 0.5 { (norm / 0.5).log2().ceil() as i32 } else { 0 };
    let scale = 0.5f64.powi(s);
    let a: Vec<f64> = m.iter().map(|v| v * scale).collect();
    let mul = |x: &[f64], y: &[f64]| {
        let mut z = vec![0.0; k * k];
        for i in 0..k {
            for l in 0..k {
                for j in 0..k {
                    z[i * k + j] += x[i * k + l] * y[l * k + j];
                }
            }
        }
        z
    };
    let mut result: Vec<f64> =
        (0..k * k).map(|i| if i % (k + 1) == 0 { 1.0 } else { 0.0 }).collect();
    let mut term = result.clone();
    for q in 1..=18 {
        term = mul(&term, &a).into_iter().map(|v| v / q as f64).collect();
        result.iter_mut().zip(&term).for_each(|(r, t)| *r += t);
    }
    for _ in 0..s {
        result = mul(&result, &result);
    }
    result
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// `L = cᵀ y(T)` for `y' = A y`: `dL/dy0 = e^{AᵀT} c`, and `dL/dA_ij = cᵀ ∫₀ᵀ e^{A(T−s)} E_ij
    /// e^{As} y0 ds`, the upper-right block of `exp([[A, E_ij], [0, A]] T)` (Van Loan 1978).
    #[test]
    fn linear_systems_match_the_matrix_exponential_gradient(
        n in 2usize..4,
        entries in proptest::collection::vec(-1.0f64..1.0, 9),
        y0 in proptest::collection::vec(-1.0f64..1.0, 3),
        c in proptest::collection::vec(-1.0f64..1.0, 3),
    ) {
        let t1 = 1.5;
        let a: Vec<f64> = entries[..n * n].to_vec();
        let (y0, c) = (y0[..n].to_vec(), c[..n].to_vec());
        let problem = Problem::new(Linear(n), y0.clone(), a.clone(), (0.0, t1));
        let cc = c.clone();
        let loss = move |_: &[f64], ys: &[f64], cot: &mut [f64]| {
            cot.copy_from_slice(&cc);
            ys.iter().zip(&cc).map(|(y, c)| y * c).sum::<f64>()
        };
        // Analytic gradient.
        let k = 2 * n;
        let mut want_p = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                let mut big = vec![0.0; k * k];
                for r in 0..n {
                    for s in 0..n {
                        big[r * k + s] = a[r * n + s] * t1;
                        big[(n + r) * k + n + s] = a[r * n + s] * t1;
                    }
                }
                big[i * k + n + j] = t1;
                let e = expm(&big, k);
                // upper-right block times y0, dotted with c
                want_p[i * n + j] = (0..n)
                    .map(|r| c[r] * (0..n).map(|s| e[r * k + n + s] * y0[s]).sum::<f64>())
                    .sum();
            }
        }
        let at: Vec<f64> = (0..n * n).map(|q| a[(q % n) * n + q / n] * t1).collect();
        let eat = expm(&at, n);
        let want_y0: Vec<f64> = (0..n).map(|r| (0..n).map(|s| eat[r * n + s] * c[s]).sum()).collect();

        let ctrl = PiController::new(RTOL, 1e-12);
        let save = SaveAt::Final;
        for (name, g) in [
            ("backsolve", gradient(&problem, &Tsit5, &ctrl, &save, &loss, &BacksolveAdjoint::new())),
            ("interpolating", gradient(&problem, &Tsit5, &ctrl, &save, &loss, &InterpolatingAdjoint::new())),
            ("quadrature", gradient(&problem, &Tsit5, &ctrl, &save, &loss, &QuadratureAdjoint::new())),
        ] {
            let g = g.unwrap();
            prop_assert!(rel(&g.dl_dp, &want_p) <= 1e-7, "{name}: {:?} vs {:?}", g.dl_dp, want_p);
            prop_assert!(rel(&g.dl_dy0, &want_y0) <= 1e-7, "{name}: {:?} vs {:?}", g.dl_dy0, want_y0);
        }
    }
}
