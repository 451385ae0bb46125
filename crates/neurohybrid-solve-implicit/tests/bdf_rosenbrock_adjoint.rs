//! Discrete adjoints through BDF (variable order, variable step: the history is the reversed
//! state) and Rodas4 / Rodas5P (Rosenbrock, one engine: transpose solves plus second-order
//! terms) on Robertson's
//! stiff kinetics, with an impulse: against central finite differences of the same discrete
//! map (recorded steps and orders replayed), across checkpointing strategies, and against
//! forward sensitivities of tight solves.

use neurohybrid_linalg::Newton;
use neurohybrid_solve::sensitivity::{
    Checkpointing, DiscreteAdjoint, ForwardSensitivity, Gradient, SquaredMisfit, gradient,
    recorded_steps,
};
use neurohybrid_solve::{PiController, Problem, SaveAt, Scale};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_solve_implicit::{Bdf, Rodas4, Rodas5P, Tolerances, WConfig};
use neurohybrid_testkit::Robertson;

fn rel_err(a: &[f64], b: &[f64], p: &[f64]) -> f64 {
    let sa: Vec<f64> = a.iter().zip(p).map(|(g, p)| g * p).collect();
    let sb: Vec<f64> = b.iter().zip(p).map(|(g, p)| g * p).collect();
    let scale = sb.iter().fold(1e-300, |m: f64, v| m.max(v.abs()));
    sa.iter().zip(&sb).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

fn problem() -> Problem<Robertson> {
    Problem::new(Robertson::default(), [1.0, 0.0, 0.0], [0.04, 3e7, 1e4], (0.0, 2.0))
        // Halve y₁ at t = 1: the BDF history is rebuilt there (restart), and its VJP is tested.
        .with_impulse(1.0, Scale::components(0..1, 0.5))
}

fn loss() -> SquaredMisfit {
    SquaredMisfit::new([0.99, 3e-5, 0.01, 0.47, 3e-5, 0.03]).with_weight(1e4)
}

/// BDF with its corrector converged `kappa` times tighter than the error tolerance (default
/// 0.1), so the discrete map is (close to) the exact root the adjoint differentiates.
fn tight_bdf(rtol: f64, atol: f64, kappa: f64) -> Bdf {
    let tol = Tolerances::new(rtol, atol);
    let newton = Newton { max_iters: 20, kappa, tol: 1.0 };
    Bdf::new(tol).with_w_config(WConfig { newton, ..WConfig::default() }).unwrap()
}

/// `∂L/∂p` and `∂L/∂y0` by central differences of `value` (relative steps for `p`, additive
/// for `y0`).
fn fd(value: &dyn Fn(&[f64], &[f64]) -> f64, y0: &[f64], p: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let gp = (0..p.len())
        .map(|j| {
            let h = 1e-6 * p[j];
            let mut q = p.to_vec();
            q[j] += h;
            let a = value(y0, &q);
            q[j] -= 2.0 * h;
            (a - value(y0, &q)) / (2.0 * h)
        })
        .collect();
    let gy = (0..y0.len())
        .map(|i| {
            let mut y = y0.to_vec();
            y[i] += 1e-7;
            let a = value(&y, p);
            y[i] -= 2e-7;
            (a - value(&y, p)) / 2e-7
        })
        .collect();
    (gp, gy)
}

fn check_frozen<St>(name: &str, st: &St, ctrl: &PiController, ck: Checkpointing) -> Gradient
where
    St: neurohybrid_solve::sensitivity::StepVjp<Robertson> + Clone,
{
    let pr = problem();
    let save = SaveAt::Times(vec![0.5, 2.0]);
    let loss = loss();
    let rec = recorded_steps(&pr, st, ctrl, &save).unwrap();
    let g = gradient(&pr, st, ctrl, &save, &loss, &DiscreteAdjoint::new(ck)).unwrap();
    let replay = rec.replay(st.clone());
    let frozen = rec.controller();
    let value = |y0: &[f64], q: &[f64]| {
        let mut pq = pr.clone();
        pq.params_mut().copy_from_slice(q);
        pq.y0_mut().copy_from_slice(y0);
        gradient(&pq, &replay, &frozen, &save, &loss, &DiscreteAdjoint::default()).unwrap().value
    };
    // The replay reproduces the forward solve (to rounding: step sizes are re-derived from the
    // boundaries, BDF's rejected trial steps are not repeated).
    let v0 = value(pr.y0(), pr.params());
    assert!((v0 - g.value).abs() < 1e-9 * g.value, "{name}: replay {v0} vs forward {}", g.value);
    let (fd_p, fd_y) = fd(&value, pr.y0(), pr.params());
    let e = rel_err(&g.dl_dp, &fd_p, pr.params());
    let ey = rel_err(&g.dl_dy0, &fd_y, &[1.0; 3]);
    let mut orders = rec.controls.clone();
    orders.sort_unstable();
    orders.dedup();
    eprintln!(
        "{name} ({ck:?}): {} steps, controls {orders:?}: dL/dp {e:.2e}, dL/dy0 {ey:.2e}",
        g.memory.steps
    );
    assert!(e < 1e-7, "{name}: dL/dp {e:e}\n{:?}\n{fd_p:?}", g.dl_dp);
    assert!(ey < 1e-6, "{name}: dL/dy0 {ey:e}\n{:?}\n{fd_y:?}", g.dl_dy0);
    g
}

#[test]
fn bdf_discrete_adjoint_matches_frozen_finite_differences() {
    let ctrl = PiController::new(1e-7, 1e-11);
    let bdf = tight_bdf(1e-7, 1e-11, 1e-9);
    let g_all = check_frozen("BDF", &bdf, &ctrl, Checkpointing::All);
    assert!(g_all.reverse_stats.linear_solves > 0);
    // Checkpoints hold the whole history, so every strategy reverses the same map.
    for ck in [Checkpointing::Every(7), Checkpointing::Revolve { slots: 4 }] {
        let g = gradient(
            &problem(),
            &bdf,
            &ctrl,
            &SaveAt::Times(vec![0.5, 2.0]),
            &loss(),
            &DiscreteAdjoint::new(ck),
        )
        .unwrap();
        let p = problem().params().to_vec();
        assert!(rel_err(&g.dl_dp, &g_all.dl_dp, &p) < 1e-9, "{ck:?}");
        assert!(g.memory.peak_stored_states < g_all.memory.peak_stored_states);
    }
}

#[test]
fn rodas4_discrete_adjoint_matches_frozen_finite_differences() {
    let ctrl = PiController::new(1e-7, 1e-11);
    let g = check_frozen("Rodas4", &Rodas4::new(), &ctrl, Checkpointing::Revolve { slots: 6 });
    assert!(g.reverse_stats.linear_solves > 0 && g.reverse_stats.vjp_evals > 0);
    // Autonomous mode (no fₜ) gives the same map for this autonomous system.
    let ga =
        check_frozen("Rodas4 autonomous", &Rodas4::new().autonomous(), &ctrl, Checkpointing::All);
    assert!(rel_err(&ga.dl_dp, &g.dl_dp, problem().params()) < 1e-9);
}

#[test]
fn rodas5p_discrete_adjoint_matches_frozen_finite_differences() {
    // The step VJP is the Rodas4 one over Rodas5P's tableau (8 stages, 3 dense rows).
    let ctrl = PiController::new(1e-7, 1e-11);
    let g = check_frozen("Rodas5P", &Rodas5P::new(), &ctrl, Checkpointing::Revolve { slots: 6 });
    assert!(g.reverse_stats.linear_solves > 0 && g.reverse_stats.vjp_evals > 0);
    let ga =
        check_frozen("Rodas5P autonomous", &Rodas5P::new().autonomous(), &ctrl, Checkpointing::All);
    assert!(rel_err(&ga.dl_dp, &g.dl_dp, problem().params()) < 1e-9);
}

#[test]
fn bdf_and_rodas4_adjoints_agree_with_forward_sensitivities() {
    let pr = problem();
    let save = SaveAt::Times(vec![0.5, 2.0]);
    let loss = loss();
    let p = pr.params().to_vec();
    let ctrl = PiController::new(1e-10, 1e-14).with_max_steps(1_000_000);
    let fwd = gradient(&pr, &Tsit5, &ctrl, &save, &loss, &ForwardSensitivity::all()).unwrap();
    let tight = PiController::new(1e-10, 1e-14);
    let bdf = gradient(
        &pr,
        &tight_bdf(1e-10, 1e-14, 1e-3),
        &tight,
        &save,
        &loss,
        &DiscreteAdjoint::default(),
    )
    .unwrap();
    let ros =
        gradient(&pr, &Rodas4::new(), &tight, &save, &loss, &DiscreteAdjoint::default()).unwrap();
    let ros5 =
        gradient(&pr, &Rodas5P::new(), &tight, &save, &loss, &DiscreteAdjoint::default()).unwrap();
    for (name, g) in [("BDF", &bdf), ("Rodas4", &ros), ("Rodas5P", &ros5)] {
        let e = rel_err(&g.dl_dp, &fwd.dl_dp, &p);
        assert!(e < 1e-5, "{name} vs forward: {e:e}\n{:?}\n{:?}", g.dl_dp, fwd.dl_dp);
        let e = rel_err(&g.dl_dy0, &fwd.dl_dy0, &[1.0; 3]);
        assert!(e < 1e-5, "{name} dy0 vs forward: {e:e}\n{:?}\n{:?}", g.dl_dy0, fwd.dl_dy0);
    }
}
