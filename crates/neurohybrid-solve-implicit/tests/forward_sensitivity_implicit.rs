//! Forward sensitivities integrated by implicit steppers: the augmented system's Jacobian
//! (block lower triangular) lets BDF, an ESDIRK and Rodas4 solve the sensitivity equations of
//! Robertson's stiff kinetics; checked against central finite differences of tight solves.

use neurohybrid_solve::sensitivity::{
    Column, ForwardSensitivity, Loss, SensitivitySystem, SquaredMisfit, gradient,
};
use neurohybrid_solve::{PiController, Problem, SaveAt, Scale, solve};
use neurohybrid_solve_implicit::{Bdf, DirkConfig, Kvaerno5, Rodas4, Tolerances};
use neurohybrid_system::{Jacobian, OdeSystem};
use neurohybrid_testkit::Robertson;

fn rel_err(a: &[f64], b: &[f64], p: &[f64]) -> f64 {
    let sa: Vec<f64> = a.iter().zip(p).map(|(g, p)| g * p).collect();
    let sb: Vec<f64> = b.iter().zip(p).map(|(g, p)| g * p).collect();
    let scale = sb.iter().fold(1e-300, |m: f64, v| m.max(v.abs()));
    sa.iter().zip(&sb).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

fn problem() -> Problem<Robertson> {
    Problem::new(Robertson::default(), [1.0, 0.0, 0.0], [0.04, 3e7, 1e4], (0.0, 40.0))
        .with_impulse(10.0, Scale::components(0..1, 0.5))
}

fn loss() -> SquaredMisfit {
    SquaredMisfit::new([0.9, 3e-5, 0.1, 0.3, 1e-5, 0.2]).with_weight(1e4)
}

#[test]
fn augmented_jacobian_matches_finite_differences_of_the_augmented_rhs() {
    let sys = Robertson::default();
    let cols = vec![Column::Param(0), Column::Param(2), Column::InitialState(1)];
    let aug = SensitivitySystem::new(&sys, cols);
    let na = aug.n_states();
    let p = [0.04, 3e7, 1e4];
    let z: Vec<f64> = (0..na).map(|i| 0.3 + 0.1 * (i as f64).sin()).collect();
    let mut jac = aug.jacobian_matrix();
    aug.jacobian(0.0, &z, &p, &mut jac);
    // Dense FD of the augmented rhs, column by column.
    let mut f1 = vec![0.0; na];
    let mut f2 = vec![0.0; na];
    let mut max_err: f64 = 0.0;
    let mut max_val: f64 = 0.0;
    for j in 0..na {
        let h = 1e-6 * (1.0 + z[j].abs());
        let mut zp = z.clone();
        zp[j] += h;
        aug.rhs(0.0, &zp, &p, &mut f1);
        zp[j] -= 2.0 * h;
        aug.rhs(0.0, &zp, &p, &mut f2);
        for i in 0..na {
            let fd = (f1[i] - f2[i]) / (2.0 * h);
            let stored = neurohybrid_system::entry_index(aug.sparsity(), i, j)
                .map_or(0.0, |k| jac.values()[k]);
            max_err = max_err.max((fd - stored).abs());
            max_val = max_val.max(fd.abs());
        }
    }
    assert!(max_err < 1e-8 * max_val, "augmented Jacobian off by {max_err:e} (scale {max_val:e})");
    // Block structure: (2c + 1) copies of J's pattern.
    assert_eq!(aug.sparsity().nnz(), 7 * sys.sparsity().nnz());
}

#[test]
fn implicit_forward_sensitivities_match_finite_differences_on_robertson() {
    let pr = problem();
    let ts = vec![5.0, 40.0];
    let save = SaveAt::Times(ts.clone());
    let loss = loss();
    let p = pr.params().to_vec();
    let rtol = 1e-9;
    let ctrl = PiController::new(rtol, 1e-13);
    let tol = Tolerances::new(rtol, 1e-13);
    let fs = ForwardSensitivity::all();
    let bdf = gradient(&pr, &Bdf::new(tol.clone()), &ctrl, &save, &loss, &fs).unwrap();
    let kv_cfg = DirkConfig::default().with_tolerances(tol);
    let kv =
        gradient(&pr, &Kvaerno5::with_config(kv_cfg).unwrap(), &ctrl, &save, &loss, &fs).unwrap();
    let ros = gradient(&pr, &Rodas4::new(), &ctrl, &save, &loss, &fs).unwrap();
    // Central differences of tight Rodas4 solves.
    let tight = PiController::new(1e-12, 1e-16).with_max_steps(1_000_000);
    let value = |y0: &[f64], q: &[f64]| {
        let mut pq = pr.clone();
        pq.params_mut().copy_from_slice(q);
        pq.y0_mut().copy_from_slice(y0);
        let sol = solve(&pq, &Rodas4::new(), &tight, &SaveAt::Times(ts.clone())).unwrap();
        let mut cot = vec![0.0; 6];
        loss.value_and_cotangents(sol.ts(), sol.ys(), &mut cot)
    };
    let y0 = pr.y0().to_vec();
    let fd_p: Vec<f64> = (0..3)
        .map(|j| {
            let h = 1e-5 * p[j];
            let mut q = p.clone();
            q[j] += h;
            let a = value(&y0, &q);
            q[j] -= 2.0 * h;
            (a - value(&y0, &q)) / (2.0 * h)
        })
        .collect();
    let fd_y: Vec<f64> = (0..3)
        .map(|i| {
            let mut y = y0.clone();
            y[i] += 1e-6;
            let a = value(&y, &p);
            y[i] -= 2e-6;
            (a - value(&y, &p)) / 2e-6
        })
        .collect();
    for (name, g) in [("BDF", &bdf), ("Kvaerno5", &kv), ("Rodas4", &ros)] {
        let e = rel_err(&g.dl_dp, &fd_p, &p);
        let ey = rel_err(&g.dl_dy0, &fd_y, &[1.0; 3]);
        eprintln!(
            "{name}: dL/dp {e:.2e}, dL/dy0 {ey:.2e}, {} steps",
            g.solution.stats().accepted_steps
        );
        assert!(e < 1e-5, "{name} dL/dp vs FD {e:e}\n{:?}\n{fd_p:?}", g.dl_dp);
        assert!(ey < 1e-5, "{name} dL/dy0 vs FD {ey:e}\n{:?}\n{fd_y:?}", g.dl_dy0);
        assert!(g.solution.stats().jacobian_evals > 0);
    }
}
