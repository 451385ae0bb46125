//! Sensitivities with the explicit family: forward sensitivities and the discrete adjoint
//! against central finite differences (of the continuous problem, and of the same discrete map
//! under frozen steps), against each other, and against the matrix exponential; impulses with
//! parameters; a hybrid MLP right-hand side through `TapeSystem`; checkpoint memory bounds.
#![allow(clippy::needless_range_loop)] // the matrix test systems index like their formulas

mod common;

use common::loss_of_solve;
use neurohybrid_autodiff::Graph;
use neurohybrid_solve::sensitivity::{
    Checkpointing, DiscreteAdjoint, ForwardSensitivity, FrozenSteps, Gradient, Loss, SquaredMisfit,
    gradient, step_sequence,
};
use neurohybrid_solve::{ConstantStep, Impulse, PiController, Problem, SaveAt};
use neurohybrid_solve_explicit::{Dopri5, Euler, Rk4, Tsit5};
use neurohybrid_system::{Jvp, OdeSystem, TapeSystem, Vjp};
use neurohybrid_testkit::{LotkaVolterra, OscillatorBank, central_fd, rel_err};
use proptest::prelude::*;

/// Loss of a tight adaptive solve (`solve` with dense output at the save times).
fn solved_loss<S: OdeSystem + Clone>(
    pr: &Problem<S>,
    y0: &[f64],
    p: &[f64],
    rtol: f64,
    save: &[f64],
    loss: &dyn Loss,
) -> f64 {
    let ctrl = PiController::new(rtol, rtol * 1e-2);
    loss_of_solve(pr, &Tsit5, &ctrl, y0, p, &SaveAt::Times(save.to_vec()), loss).0
}

/// Loss of the discrete map with the step boundaries `ts` frozen.
fn frozen_loss<S: Vjp + Clone>(
    pr: &Problem<S>,
    y0: &[f64],
    p: &[f64],
    ts: &[f64],
    save: &SaveAt,
    loss: &dyn Loss,
) -> f64 {
    let (value, steps) = loss_of_solve(pr, &Tsit5, &FrozenSteps::new(ts), y0, p, save, loss);
    assert_eq!(steps, ts.len() - 1, "the frozen replay takes the same steps");
    value
}

/// The three checks every problem gets: forward vs FD of the continuous loss, discrete adjoint
/// vs FD of the frozen discrete map, and forward vs adjoint.
fn check_all<S: Vjp + Jvp + Clone>(pr: &Problem<S>, save: Vec<f64>, loss: &dyn Loss) -> Gradient {
    let save_at = SaveAt::Times(save.clone());
    let ctrl = PiController::new(1e-10, 1e-12);
    let fwd = gradient(pr, &Tsit5, &ctrl, &save_at, loss, &ForwardSensitivity::all()).unwrap();
    let adj = gradient(pr, &Tsit5, &ctrl, &save_at, loss, &DiscreteAdjoint::default()).unwrap();
    let (y0, p) = (pr.y0().to_vec(), pr.params().to_vec());

    // Forward sensitivity vs central FD of tight solves.
    let fd_p = central_fd(&|q| solved_loss(pr, &y0, q, 1e-13, &save, loss), &p, 1e-5);
    let fd_y0 = central_fd(&|y| solved_loss(pr, y, &p, 1e-13, &save, loss), &y0, 1e-5);
    let e = rel_err(&fwd.dl_dp, &fd_p, 1e-8);
    assert!(e < 1e-5, "forward dL/dp vs FD: {e:e}\n{:?}\n{:?}", fwd.dl_dp, fd_p);
    let e = rel_err(&fwd.dl_dy0, &fd_y0, 1e-8);
    assert!(e < 1e-5, "forward dL/dy0 vs FD: {e:e}");

    // Discrete adjoint vs FD of the same discrete map.
    let ts = step_sequence(pr, &Tsit5, &ctrl, &save_at).unwrap();
    let fd_p = central_fd(&|q| frozen_loss(pr, &y0, q, &ts, &save_at, loss), &p, 1e-5);
    let fd_y0 = central_fd(&|y| frozen_loss(pr, y, &p, &ts, &save_at, loss), &y0, 1e-5);
    let e = rel_err(&adj.dl_dp, &fd_p, 1e-8);
    assert!(e < 1e-7, "discrete adjoint dL/dp vs frozen FD: {e:e}\n{:?}\n{:?}", adj.dl_dp, fd_p);
    let e = rel_err(&adj.dl_dy0, &fd_y0, 1e-8);
    assert!(e < 1e-7, "discrete adjoint dL/dy0 vs frozen FD: {e:e}");

    // With each other.
    assert!(rel_err(&adj.dl_dp, &fwd.dl_dp, 1e-8) < 1e-5);
    assert!(rel_err(&adj.dl_dy0, &fwd.dl_dy0, 1e-8) < 1e-5);
    assert!((adj.value - fwd.value).abs() <= 1e-6 * fwd.value.abs().max(1e-8));
    adj
}

#[test]
fn lotka_volterra_forward_and_discrete_adjoint_match_finite_differences() {
    let pr = Problem::new(LotkaVolterra::default(), [1.0, 1.0], [1.5, 1.0, 3.0, 1.0], (0.0, 5.0));
    let save = vec![1.0, 2.5, 2.5, 4.0, 5.0];
    let loss = SquaredMisfit::new(vec![1.0; 10]).observed(vec![0, 1]);
    let adj = check_all(&pr, save, &loss);
    assert_eq!(adj.solution.ts(), &[1.0, 2.5, 2.5, 4.0, 5.0]);
    assert!(adj.reverse_stats.vjp_evals > 0);
}

#[test]
fn checkpointing_strategies_give_the_identical_gradient() {
    let pr = Problem::new(LotkaVolterra::default(), [1.0, 1.0], [1.5, 1.0, 3.0, 1.0], (0.0, 10.0));
    let save = SaveAt::Times(vec![3.0, 10.0]);
    let loss = SquaredMisfit::new(vec![0.5; 4]);
    let ctrl = PiController::new(1e-8, 1e-10);
    let run = |c| gradient(&pr, &Dopri5, &ctrl, &save, &loss, &DiscreteAdjoint::new(c)).unwrap();
    let all = run(Checkpointing::All);
    // Every boundary state, plus each computed step (y, y_new and Dopri5's 7 stages).
    let steps = all.memory.steps;
    assert_eq!(all.memory.peak_stored_states, all.memory.store_all_states + 9 * steps);
    assert_eq!(all.reverse_stats.rhs_evals, 0, "cached steps are not recomputed");
    assert_eq!(all.memory.recomputed_steps, 0);
    for c in [
        Checkpointing::Every(1),
        Checkpointing::Every(7),
        Checkpointing::Revolve { slots: 2 },
        Checkpointing::Revolve { slots: 5 },
        Checkpointing::Revolve { slots: 16 },
    ] {
        let g = run(c);
        // Recomputation repeats each step bit for bit (LV is autonomous, so an FSAL stage
        // recomputed after a checkpoint load is the same number too).
        assert_eq!(g.dl_dp, all.dl_dp, "{c:?}");
        assert_eq!(g.dl_dy0, all.dl_dy0, "{c:?}");
        if let Checkpointing::Revolve { slots } = c {
            assert!(g.memory.peak_stored_states <= slots, "{c:?}: {:?}", g.memory);
            assert!(g.memory.recomputed_steps > 0);
        }
    }
    let bad =
        gradient(&pr, &Dopri5, &ctrl, &save, &loss, &DiscreteAdjoint::new(Checkpointing::Every(0)));
    assert!(bad.is_err());
    let steps = gradient(&pr, &Dopri5, &ctrl, &SaveAt::Steps, &loss, &DiscreteAdjoint::default());
    assert!(steps.is_err(), "a loss needs save times");
}

/// Logistic growth with radiotherapy fractions: `u' = ρ u (1 − u)`, `p = [ρ, α]`, each
/// fraction multiplies `u` by the surviving fraction `exp(−α d − β d²)` with `α` a parameter.
#[derive(Debug, Clone)]
struct Logistic;
impl OdeSystem for Logistic {
    fn n_states(&self) -> usize {
        1
    }
    fn n_params(&self) -> usize {
        2
    }
    fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        dy[0] = p[0] * y[0] * (1.0 - y[0]);
    }
}
impl Vjp for Logistic {
    fn vjp(&self, _t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        w_y[0] = p[0] * (1.0 - 2.0 * y[0]) * w[0];
        if !w_p.is_empty() {
            w_p[0] = y[0] * (1.0 - y[0]) * w[0];
            w_p[1] = 0.0;
        }
    }
}
impl Jvp for Logistic {
    fn jvp(&self, _t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        out[0] = p[0] * (1.0 - 2.0 * y[0]) * v_y[0];
        if !v_p.is_empty() {
            out[0] += y[0] * (1.0 - y[0]) * v_p[0];
        }
    }
}

/// `u ← u · exp(−α d − β d²)`, `α = p[1]`.
struct Fraction {
    dose: f64,
    beta: f64,
}
impl Fraction {
    fn sf(&self, p: &[f64]) -> f64 {
        (-p[1] * self.dose - self.beta * self.dose * self.dose).exp()
    }
}
impl Impulse for Fraction {
    fn apply(&self, _t: f64, y: &[f64], p: &[f64], out: &mut [f64]) {
        out[0] = y[0] * self.sf(p);
    }
    fn vjp(&self, _t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        let s = self.sf(p);
        w_y[0] = s * w[0];
        if !w_p.is_empty() {
            w_p[0] = 0.0;
            w_p[1] = -self.dose * s * y[0] * w[0];
        }
    }
    fn jvp(&self, _t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        let s = self.sf(p);
        out[0] = s * v_y[0];
        if !v_p.is_empty() {
            out[0] += -self.dose * s * y[0] * v_p[1];
        }
    }
}

#[test]
fn impulses_and_their_parameters_are_differentiated() {
    let frac = |d| Fraction { dose: d, beta: 0.03 };
    let pr = Problem::new(Logistic, [0.1], [0.8, 0.3], (0.0, 6.0))
        .with_impulse(1.0, frac(2.0))
        .with_impulse(2.0, frac(1.0))
        .with_impulse(2.0, frac(1.5)) // two at one time: applied in order
        .with_impulse(3.5, frac(2.0))
        .with_impulse(6.0, frac(1.0)); // at t1: the final saved value is post-impulse
    // Save at an impulse time (post-impulse value), inside a step, and at the end.
    let save = vec![1.0, 2.7, 6.0];
    let loss = SquaredMisfit::new([0.05, 0.2, 0.3]);
    let adj = check_all(&pr, save, &loss);
    assert!(adj.dl_dp[1].abs() > 1e-3, "the radiosensitivity matters: {:?}", adj.dl_dp);
    assert_eq!(adj.solution.stats().impulses, 5);
}

/// `f(y) = −0.3 y + W2ᵀ tanh(W1ᵀ y + b1) + b2` with a 2→8→2 tanh MLP, recorded as a graph.
fn hybrid_mlp() -> (TapeSystem, Vec<f64>) {
    const H: usize = 8;
    let n_p = 2 * H + H + H * 2 + 2;
    let mut g = Graph::new();
    let y = g.input("y", &[2]).unwrap();
    let p = g.input("p", &[n_p]).unwrap();
    let mut off = 0;
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
    let damp = g.scale(y, -0.3).unwrap();
    let f = g.add(damp, nn).unwrap();
    let sys = TapeSystem::new(g.compile(&[f]).unwrap()).unwrap();
    let params = (0..n_p).map(|i| 0.4 * ((i as f64) * 0.7 + 0.3).sin()).collect();
    (sys, params)
}

#[test]
fn hybrid_mlp_through_tape_system() {
    let (sys, p) = hybrid_mlp();
    let pr = Problem::new(sys, [0.8, -0.5], p, (0.0, 3.0));
    let loss = SquaredMisfit::new([0.1, 0.2, 0.0, 0.1]);
    let adj = check_all(&pr, vec![1.5, 3.0], &loss);
    assert_eq!(adj.dl_dp.len(), 42);
}

/// Matrix exponential by scaling and squaring of a Taylor polynomial (degree 24 after scaling
/// to ‖A‖₁ ≤ 1/2: truncation below 1e-30, far under the test tolerances).
fn expm(a: &[f64], n: usize) -> Vec<f64> {
    let norm = (0..n).map(|j| (0..n).map(|i| a[i * n + j].abs()).sum::<f64>()).fold(0.0, f64::max);
    let s = (norm / 0.5).log2().ceil().max(0.0) as i32;
    let scale = 0.5f64.powi(s);
    let a: Vec<f64> = a.iter().map(|v| v * scale).collect();
    let mul = |x: &[f64], y: &[f64]| {
        let mut z = vec![0.0; n * n];
        for i in 0..n {
            for k in 0..n {
                for j in 0..n {
                    z[i * n + j] += x[i * n + k] * y[k * n + j];
                }
            }
        }
        z
    };
    let mut e = vec![0.0; n * n];
    let mut term = vec![0.0; n * n];
    for i in 0..n {
        e[i * n + i] = 1.0;
        term[i * n + i] = 1.0;
    }
    for k in 1..=24 {
        term = mul(&term, &a).into_iter().map(|v| v / k as f64).collect();
        e.iter_mut().zip(&term).for_each(|(e, t)| *e += t);
    }
    for _ in 0..s {
        e = mul(&e, &e);
    }
    e
}

/// `y' = (A0 + p0 A1) y`.
#[derive(Debug, Clone)]
struct Linear {
    n: usize,
    a0: Vec<f64>,
    a1: Vec<f64>,
}
impl Linear {
    fn a(&self, p: &[f64]) -> Vec<f64> {
        self.a0.iter().zip(&self.a1).map(|(a, b)| a + p[0] * b).collect()
    }
}
impl OdeSystem for Linear {
    fn n_states(&self) -> usize {
        self.n
    }
    fn n_params(&self) -> usize {
        1
    }
    fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        let n = self.n;
        for i in 0..n {
            dy[i] = (0..n).map(|j| (self.a0[i * n + j] + p[0] * self.a1[i * n + j]) * y[j]).sum();
        }
    }
}
impl Vjp for Linear {
    fn vjp(&self, _t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        let n = self.n;
        for j in 0..n {
            w_y[j] = (0..n).map(|i| w[i] * (self.a0[i * n + j] + p[0] * self.a1[i * n + j])).sum();
        }
        if !w_p.is_empty() {
            w_p[0] =
                (0..n).map(|i| w[i] * (0..n).map(|j| self.a1[i * n + j] * y[j]).sum::<f64>()).sum();
        }
    }
}
impl Jvp for Linear {
    fn jvp(&self, _t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        let n = self.n;
        let dp = v_p.first().copied().unwrap_or(0.0);
        for i in 0..n {
            out[i] = (0..n)
                .map(|j| {
                    (self.a0[i * n + j] + p[0] * self.a1[i * n + j]) * v_y[j]
                        + dp * self.a1[i * n + j] * y[j]
                })
                .sum();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, .. ProptestConfig::default() })]

    #[test]
    fn linear_systems_match_the_matrix_exponential(
        a0 in proptest::collection::vec(-1.0f64..1.0, 9),
        a1 in proptest::collection::vec(-1.0f64..1.0, 9),
        p0 in -0.5f64..0.5,
        y0 in proptest::collection::vec(-1.0f64..1.0, 3),
        w in proptest::collection::vec(-1.0f64..1.0, 3),
    ) {
        let n = 3;
        let sys = Linear { n, a0, a1 };
        let t1 = 1.5;
        // Exact: [y(T); S(T)] = exp([[A, 0], [A1, A]] T) [y0; 0], S = ∂y/∂p0; ∂y(T)/∂y0 = exp(AT).
        let a = sys.a(&[p0]);
        let mut big = vec![0.0; 4 * n * n];
        for i in 0..n {
            for j in 0..n {
                big[i * 2 * n + j] = a[i * n + j] * t1;
                big[(n + i) * 2 * n + n + j] = a[i * n + j] * t1;
                big[(n + i) * 2 * n + j] = sys.a1[i * n + j] * t1;
            }
        }
        let e = expm(&big, 2 * n);
        let yt: Vec<f64> = (0..n).map(|i| (0..n).map(|j| e[i * 2 * n + j] * y0[j]).sum()).collect();
        let st: Vec<f64> = (0..n).map(|i| (0..n).map(|j| e[(n + i) * 2 * n + j] * y0[j]).sum()).collect();
        // L = Σ w_i y_i(T) + ½ Σ y_i(T)²: cotangent c = w + y(T).
        let c: Vec<f64> = (0..n).map(|i| w[i] + yt[i]).collect();
        let exact_p = [(0..n).map(|i| c[i] * st[i]).sum::<f64>()];
        let exact_y0: Vec<f64> = (0..n).map(|j| (0..n).map(|i| c[i] * e[i * 2 * n + j]).sum()).collect();
        let wv = w.clone();
        let loss = move |_ts: &[f64], ys: &[f64], cot: &mut [f64]| {
            let mut v = 0.0;
            for i in 0..ys.len() {
                v += wv[i] * ys[i] + 0.5 * ys[i] * ys[i];
                cot[i] = wv[i] + ys[i];
            }
            v
        };
        let pr = Problem::new(sys, y0, [p0], (0.0, t1));
        let ctrl = PiController::new(1e-11, 1e-13);
        let methods: [(&str, Gradient); 3] = [
            ("forward", gradient(&pr, &Tsit5, &ctrl, &SaveAt::Final, &loss, &ForwardSensitivity::all()).unwrap()),
            ("discrete", gradient(&pr, &Tsit5, &ctrl, &SaveAt::Final, &loss, &DiscreteAdjoint::default()).unwrap()),
            ("discrete rk4", gradient(&pr, &Rk4, &ConstantStep::with_steps((0.0, t1), 400), &SaveAt::Final, &loss,
                &DiscreteAdjoint::new(Checkpointing::Revolve { slots: 6 })).unwrap()),
        ];
        for (name, g) in &methods {
            let ep = rel_err(&g.dl_dp, &exact_p, 1e-3);
            let ey = rel_err(&g.dl_dy0, &exact_y0, 1e-3);
            prop_assert!(ep < 1e-7 && ey < 1e-7, "{name}: dL/dp {ep:e}, dL/dy0 {ey:e}");
        }
    }
}

#[test]
fn checkpointed_adjoint_of_20000_steps_stores_under_two_percent() {
    let n = 4096;
    let bank = OscillatorBank::new(n);
    let y0: Vec<f64> = (0..n).map(|i| if i % 2 == 0 { 1.0 } else { 0.0 }).collect();
    let pr = Problem::new(bank, y0, [0.5], (0.0, 2.0));
    let ctrl = ConstantStep::with_steps((0.0, 2.0), 20_000);
    let loss = SquaredMisfit::new(vec![0.0; n]).with_weight(0.5);
    let run =
        |c| gradient(&pr, &Euler, &ctrl, &SaveAt::Final, &loss, &DiscreteAdjoint::new(c)).unwrap();
    let rev = run(Checkpointing::Revolve { slots: 64 });
    let every = run(Checkpointing::Every(141));
    for g in [&rev, &every] {
        let m = g.memory;
        assert_eq!((m.steps, m.store_all_states, m.n_states), (20_000, 20_001, n));
        assert!(m.stored_fraction() <= 0.02, "{m:?}");
    }
    assert!(rev.memory.peak_stored_states <= 64, "{:?}", rev.memory);
    assert_eq!(rev.dl_dp, every.dl_dp, "the schedule does not change the gradient");
    assert_eq!(rev.dl_dy0, every.dl_dy0);
    // Euler's sensitivity equations are the derivative of Euler's map: forward agrees.
    let fwd =
        gradient(&pr, &Euler, &ctrl, &SaveAt::Final, &loss, &ForwardSensitivity::params()).unwrap();
    assert!(rel_err(&rev.dl_dp, &fwd.dl_dp, 1e-12) < 1e-10, "{:?} vs {:?}", rev.dl_dp, fwd.dl_dp);
}
