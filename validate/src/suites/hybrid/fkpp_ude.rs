//! Case `ude/fisher_kpp_1d`: learn the reaction term of Fisher–KPP `u_t = D u_xx + r u(1 − u)`
//! (D = 0.01, r = 1) on 26 nodes of `[0, 1]` (no-flux finite volumes, written inline), T = 5,
//! from 11 snapshots (`t = 0, 0.5, …, 5`, noise-free), as a UDE: the known diffusion (D fixed)
//! in [`Parallel`] with a pointwise network `1 → 16 → 16 → 1` (tanh) applied to every node
//! ([`NetworkRhs::pointwise`]). Adam then L-BFGS on discrete-adjoint gradients (Tsit5).
//!
//! Pass: the learned reaction `g(u)` matches `r u(1 − u)` on `u ∈ [0, 1]` (101 points) to
//! ≤ 5% relative L2.

use crate::Case;
use neurohybrid_hybrid::{NetworkRhs, Parallel};
use neurohybrid_nn::optim::{Adam, Lbfgs, Optimizer};
use neurohybrid_nn::{Activation, Init, Layer, Mlp, initialize};
use neurohybrid_solve::sensitivity::{DiscreteAdjoint, SquaredMisfit, gradient};
use neurohybrid_solve::{PiController, Problem, SaveAt, solve};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_system::{Jvp, OdeSystem, Vjp};
use std::time::Instant;

const N: usize = 26;
const D: f64 = 0.01;
const R: f64 = 1.0;
const T: f64 = 5.0;

/// `D Δu` on `N` cell centres of `[0, 1]` with no-flux ends, `p = [D]`; the operator is
/// symmetric, so its VJP in `u` is itself.
#[derive(Debug, Clone)]
struct Diffusion1d;
fn lap(u: &[f64], out: &mut [f64]) {
    let h2 = (N as f64).powi(2); // dx = 1/N
    for i in 0..N {
        let l = if i > 0 { u[i - 1] - u[i] } else { 0.0 };
        let r = if i + 1 < N { u[i + 1] - u[i] } else { 0.0 };
        out[i] = h2 * (l + r);
    }
}
impl OdeSystem for Diffusion1d {
    fn n_states(&self) -> usize {
        N
    }
    fn n_params(&self) -> usize {
        1
    }
    fn rhs(&self, _t: f64, u: &[f64], p: &[f64], du: &mut [f64]) {
        lap(u, du);
        du.iter_mut().for_each(|d| *d *= p[0]);
    }
}
impl Vjp for Diffusion1d {
    fn vjp(&self, _t: f64, u: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        lap(w, w_y);
        if !w_p.is_empty() {
            // wᵀ Δu, computed as (Δw)ᵀ u (symmetric operator)
            w_p[0] = w_y.iter().zip(u).map(|(a, b)| a * b).sum();
        }
        w_y.iter_mut().for_each(|d| *d *= p[0]);
    }
}
impl Jvp for Diffusion1d {
    fn jvp(&self, _t: f64, u: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        lap(v_y, out);
        out.iter_mut().for_each(|d| *d *= p[0]);
        if let Some(&dp) = v_p.first() {
            let mut au = [0.0; N];
            lap(u, &mut au);
            out.iter_mut().zip(&au).for_each(|(o, a)| *o += dp * a);
        }
    }
}

/// The truth: diffusion + `r u (1 − u)`.
struct Truth;
impl OdeSystem for Truth {
    fn n_states(&self) -> usize {
        N
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs(&self, _t: f64, u: &[f64], _p: &[f64], du: &mut [f64]) {
        lap(u, du);
        for (d, &v) in du.iter_mut().zip(u) {
            *d = D * *d + R * v * (1.0 - v);
        }
    }
}

fn initial() -> Vec<f64> {
    (0..N)
        .map(|i| {
            let x = (i as f64 + 0.5) / N as f64;
            0.9 * (-0.5 * ((x - 0.5) / 0.1).powi(2)).exp()
        })
        .collect()
}

/// The case.
pub fn run(fast: bool) -> Vec<Case> {
    let start = Instant::now();
    let ts: Vec<f64> = (0..=10).map(|k| T * k as f64 / 10.0).collect();
    let u0 = initial();
    let Ok(truth) = solve(
        &Problem::new(Truth, u0.clone(), [], (0.0, T)),
        &Tsit5,
        &PiController::new(1e-11, 1e-11),
        &SaveAt::Times(ts.clone()),
    ) else {
        return vec![Case::new("hybrid", "ude/fisher_kpp_1d", false).with("error", "truth solve")];
    };
    let data = truth.ys().to_vec();

    let net = Mlp::new(&[1, 16, 16, 1], Activation::Tanh).expect("valid widths");
    let nn = NetworkRhs::pointwise(&net, N, 1).expect("one channel");
    let ude = Parallel::new(Diffusion1d, nn).expect("same state size");
    let mut params = vec![D];
    params.extend(initialize(&net, Init::GlorotUniform, 3));

    let mut problem = Problem::new(ude.clone(), u0, params.clone(), (0.0, T));
    let save = SaveAt::Times(ts);
    let loss = SquaredMisfit::new(data).with_weight(1.0 / (11 * N) as f64);
    let ctrl = PiController::new(1e-7, 1e-9).with_max_steps(50_000);
    let method = DiscreteAdjoint::default();
    let mut eval = |p: &[f64], g: &mut [f64]| -> f64 {
        problem.params_mut().copy_from_slice(p);
        match gradient(&problem, &Tsit5, &ctrl, &save, &loss, &method) {
            Ok(r) => {
                g.copy_from_slice(&r.dl_dp);
                r.value
            }
            Err(_) => {
                g.fill(0.0);
                f64::INFINITY
            }
        }
    };
    let (adam_iters, lbfgs_iters) = if fast { (300, 300) } else { (1000, 1000) };
    let adam = Adam::new(1e-2).freeze(std::iter::once(0..1));
    let mut st = adam.init(params.len()).expect("valid Adam settings");
    let mut grad = vec![0.0; params.len()];
    for _ in 0..adam_iters {
        let v = eval(&params, &mut grad);
        if !v.is_finite() {
            break;
        }
        adam.step(&mut st, &mut params, &grad).expect("lengths match");
    }
    let lbfgs = Lbfgs { max_iters: lbfgs_iters, grad_tol: 1e-12, ..Lbfgs::default() }
        .freeze(std::iter::once(0..1));
    let final_loss = match lbfgs.minimize(&mut params, &mut eval) {
        Ok(rep) => rep.value,
        Err(_) => f64::NAN,
    };

    // The learned reaction on a grid of u: evaluate the network (the NN block of the UDE) on a
    // constant field, where diffusion vanishes.
    let w = &params[1..];
    let (mut num, mut den) = (0.0, 0.0);
    let mut g = vec![0.0; N];
    for k in 0..=100 {
        let u = k as f64 / 100.0;
        ude.nn().rhs(0.0, &[u; N], w, &mut g);
        let exact = R * u * (1.0 - u);
        num += (g[0] - exact).powi(2);
        den += exact * exact;
    }
    let rel = (num / den).sqrt();
    vec![
        Case::new("hybrid", "ude/fisher_kpp_1d", rel <= 0.05)
            .with("nodes", N)
            .with("snapshots", 11)
            .with("adam_iters", adam_iters)
            .with("lbfgs_iters", lbfgs_iters)
            .with("nn_params", net.n_params())
            .with_f64("train_mse", final_loss)
            .with_f64("reaction_rel_l2", rel)
            .with_f64("tolerance", 0.05)
            .with_f64("wall_s", start.elapsed().as_secs_f64()),
    ]
}
