//! Discrete adjoints of the (E)SDIRK steppers on Robertson's stiff kinetics: against central
//! finite differences of the same discrete map (frozen steps), against forward sensitivities
//! (Tsit5 on the sensitivity equations) and against finite differences of tight solves.

use neurohybrid_solve::sensitivity::{
    Checkpointing, DiscreteAdjoint, ForwardSensitivity, FrozenSteps, Gradient, SquaredMisfit,
    gradient, step_sequence,
};
use neurohybrid_solve::{PiController, Problem, SaveAt, solve};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_solve_implicit::{DirkConfig, Esdirk4, Kvaerno5, Tolerances, TrBdf2};
use neurohybrid_testkit::Robertson;

/// Gradients compared as log-parameter sensitivities `p_j ∂L/∂p_j` (Robertson's rate
/// constants span 10 orders of magnitude), relative to the largest.
fn rel_err(a: &[f64], b: &[f64], p: &[f64]) -> f64 {
    let sa: Vec<f64> = a.iter().zip(p).map(|(g, p)| g * p).collect();
    let sb: Vec<f64> = b.iter().zip(p).map(|(g, p)| g * p).collect();
    let scale = sb.iter().fold(1e-300, |m: f64, v| m.max(v.abs()));
    sa.iter().zip(&sb).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

fn central_fd(f: &dyn Fn(&[f64]) -> f64, x: &[f64], eps: f64) -> Vec<f64> {
    (0..x.len())
        .map(|j| {
            let h = eps * x[j].abs();
            let mut xp = x.to_vec();
            xp[j] += h;
            let fp = f(&xp);
            xp[j] = x[j] - h;
            (fp - f(&xp)) / (2.0 * h)
        })
        .collect()
}

fn problem() -> Problem<Robertson> {
    Problem::new(Robertson::default(), [1.0, 0.0, 0.0], [0.04, 3e7, 1e4], (0.0, 2.0))
}

fn loss() -> SquaredMisfit {
    // Weighted so the small intermediate species counts (y2 ~ 3e-5).
    SquaredMisfit::new([0.99, 3e-5, 0.01, 0.97, 3e-5, 0.03]).with_weight(1e4)
}

fn tight_newton() -> DirkConfig {
    DirkConfig::default().with_tolerances(Tolerances::new(1e-13, 1e-17))
}

#[test]
fn esdirk_discrete_adjoints_match_frozen_finite_differences() {
    let pr = problem();
    let save = SaveAt::Times(vec![0.5, 2.0]);
    let ctrl = PiController::new(1e-7, 1e-11);
    let loss = loss();
    let kv = Kvaerno5::with_config(tight_newton()).unwrap();
    let es = Esdirk4::with_config(tight_newton()).unwrap();
    let tr = TrBdf2::with_config(tight_newton()).unwrap();
    let check = |name: &str, g: Gradient, value: &dyn Fn(&[f64], &[f64]) -> f64| {
        let p = pr.params().to_vec();
        let y0 = pr.y0().to_vec();
        let fd_p = central_fd(&|q| value(&y0, q), &p, 1e-6);
        let e = rel_err(&g.dl_dp, &fd_p, &p);
        assert!(e < 1e-7, "{name}: dL/dp {e:e}\n{:?}\n{:?}", g.dl_dp, fd_p);
        // y0 components: perturb additively around (1, 0, 0).
        let fd_y = (0..3)
            .map(|i| {
                let mut yp = y0.clone();
                yp[i] += 1e-7;
                let a = value(&yp, &p);
                yp[i] -= 2e-7;
                (a - value(&yp, &p)) / 2e-7
            })
            .collect::<Vec<_>>();
        let e = rel_err(&g.dl_dy0, &fd_y, &[1.0; 3]);
        assert!(e < 1e-6, "{name}: dL/dy0 {e:e}\n{:?}\n{:?}", g.dl_dy0, fd_y);
    };
    macro_rules! run {
        ($name:expr, $st:expr, $ck:expr) => {{
            let ts = step_sequence(&pr, &$st, &ctrl, &save).unwrap();
            let frozen = FrozenSteps::new(&ts);
            let g = gradient(&pr, &$st, &ctrl, &save, &loss, &DiscreteAdjoint::new($ck)).unwrap();
            assert!(g.reverse_stats.linear_solves > 0 && g.reverse_stats.jacobian_evals > 0);
            let value = |y0: &[f64], q: &[f64]| {
                let mut pq = pr.clone();
                pq.params_mut().copy_from_slice(q);
                pq.y0_mut().copy_from_slice(y0);
                gradient(&pq, &$st, &frozen, &save, &loss, &DiscreteAdjoint::default())
                    .unwrap()
                    .value
            };
            check($name, g.clone(), &value);
            g
        }};
    }
    let g_kv = run!("Kvaerno5", kv, Checkpointing::All);
    let g_es = run!("Esdirk4", es, Checkpointing::Revolve { slots: 4 });
    let g_tr = run!("TrBdf2", tr, Checkpointing::Every(5));
    // Different methods, same continuous gradient up to their accuracy at rtol 1e-7.
    let p = pr.params().to_vec();
    assert!(rel_err(&g_es.dl_dp, &g_kv.dl_dp, &p) < 1e-3);
    assert!(rel_err(&g_tr.dl_dp, &g_kv.dl_dp, &p) < 1e-2);
}

#[test]
fn robertson_forward_sensitivity_and_discrete_adjoint_agree_with_finite_differences() {
    let pr = problem();
    let ts = vec![0.5, 2.0];
    let save = SaveAt::Times(ts.clone());
    let loss = loss();
    let p = pr.params().to_vec();
    // Forward sensitivities with an explicit stepper at rtol 1e-10 (stiff, but a short span).
    let ctrl = PiController::new(1e-10, 1e-14).with_max_steps(1_000_000);
    let fwd = gradient(&pr, &Tsit5, &ctrl, &save, &loss, &ForwardSensitivity::all()).unwrap();
    let kv = Kvaerno5::with_config(tight_newton()).unwrap();
    let adj = gradient(
        &pr,
        &kv,
        &PiController::new(1e-10, 1e-14),
        &save,
        &loss,
        &DiscreteAdjoint::default(),
    )
    .unwrap();
    let tight = PiController::new(1e-13, 1e-17).with_max_steps(1_000_000);
    let value = |q: &[f64]| {
        let mut pq = pr.clone();
        pq.params_mut().copy_from_slice(q);
        let sol = solve(&pq, &kv, &tight, &SaveAt::Times(ts.clone())).unwrap();
        let mut cot = vec![0.0; 6];
        neurohybrid_solve::sensitivity::Loss::value_and_cotangents(
            &loss,
            sol.ts(),
            sol.ys(),
            &mut cot,
        )
    };
    let fd = central_fd(&value, &p, 1e-5);
    let e = rel_err(&fwd.dl_dp, &fd, &p);
    assert!(e < 1e-5, "forward vs FD {e:e}\n{:?}\n{fd:?}", fwd.dl_dp);
    let e = rel_err(&adj.dl_dp, &fd, &p);
    assert!(e < 1e-5, "Kvaerno5 discrete adjoint vs FD {e:e}\n{:?}\n{fd:?}", adj.dl_dp);
    assert!(rel_err(&adj.dl_dp, &fwd.dl_dp, &p) < 1e-5);
    assert!(rel_err(&adj.dl_dy0, &fwd.dl_dy0, &[1.0; 3]) < 1e-5);
}
