//! Solver-in-the-loop: the unrolled discrete adjoint against finite differences.

use neurohybrid_hybrid::{DiffMap, Mse, SolverInTheLoop, TapeMap, TrajectoryLoss};
use neurohybrid_nn::{Activation, Init, Mlp, Pointwise, initialize};
use neurohybrid_solve_explicit::{Heun, Tsit5};
use neurohybrid_testkit::FisherKpp;

fn corrector(n: usize) -> (TapeMap, Vec<f64>) {
    let net = Mlp::new(&[1, 5, 1], Activation::Tanh).unwrap();
    let map = TapeMap::new(&Pointwise::new(net.clone()), &[n]).unwrap();
    let w: Vec<f64> = initialize(&net, Init::GlorotUniform, 5).iter().map(|v| 0.3 * v).collect();
    (map, w)
}

fn loss_of<S, St>(
    sitl: &SolverInTheLoop<S, St, TapeMap>,
    y0: &[f64],
    params: &[f64],
    targets: &[f64],
) -> f64
where
    S: neurohybrid_system::Vjp,
    St: neurohybrid_solve::sensitivity::StepVjp<S>,
{
    let n = y0.len();
    let k = targets.len() / n;
    let traj = sitl.rollout(y0, params, k);
    let mut g = vec![0.0; k * n];
    Mse.evaluate(&traj[n..], targets, None, &[], &mut g, &mut [])
}

fn check_fd<St>(stepper: St)
where
    St: neurohybrid_solve::sensitivity::StepVjp<FisherKpp>,
{
    let side = 4;
    let n = side * side;
    let (map, w) = corrector(n);
    let sitl = SolverInTheLoop::new(FisherKpp::new(side), stepper, map, 0.5).unwrap();
    let mut params = vec![0.2, 0.8];
    params.extend(&w);
    assert_eq!(sitl.n_params(), params.len());
    let y0 = FisherKpp::seed(side);
    let k = 5;
    let targets: Vec<f64> = (0..k * n).map(|i| 0.3 + 0.01 * (i % 7) as f64).collect();
    let (value, dy0, dp) = sitl.rollout_gradient(&y0, &params, &targets, &Mse).unwrap();
    assert!((value - loss_of(&sitl, &y0, &params, &targets)).abs() < 1e-15);
    let h = 1e-6;
    for j in 0..params.len() {
        let (mut a, mut b) = (params.clone(), params.clone());
        a[j] += h;
        b[j] -= h;
        let fd =
            (loss_of(&sitl, &y0, &a, &targets) - loss_of(&sitl, &y0, &b, &targets)) / (2.0 * h);
        assert!(
            (fd - dp[j]).abs() < 1e-6 * fd.abs().max(1e-2),
            "dL/dparams[{j}]: {} vs {fd}",
            dp[j]
        );
    }
    for i in [0, 5, 10, 15] {
        let (mut a, mut b) = (y0.clone(), y0.clone());
        a[i] += h;
        b[i] -= h;
        let fd = (loss_of(&sitl, &a, &params, &targets) - loss_of(&sitl, &b, &params, &targets))
            / (2.0 * h);
        assert!((fd - dy0[i]).abs() < 1e-6 * fd.abs().max(1e-2), "dL/dy0[{i}]: {} vs {fd}", dy0[i]);
    }
}

#[test]
fn rollout_gradient_matches_finite_differences_heun() {
    check_fd(Heun);
}

#[test]
fn rollout_gradient_matches_finite_differences_tsit5() {
    check_fd(Tsit5);
}

#[test]
fn step_is_coarse_step_plus_correction() {
    let side = 3;
    let n = side * side;
    let (map, w) = corrector(n);
    let sitl = SolverInTheLoop::new(FisherKpp::new(side), Heun, map.clone(), 0.25).unwrap();
    let mut params = vec![0.1, 1.0];
    params.extend(&w);
    let y0 = FisherKpp::seed(side);
    let (mut z, mut c, mut out) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    sitl.coarse(0.0, &y0, &params[..2], &mut z);
    map.eval(&z, &w, &mut c);
    sitl.step(&y0, &params, &mut out);
    for i in 0..n {
        assert_eq!(out[i], z[i] + c[i]);
    }
    let traj = sitl.rollout(&y0, &params, 3);
    assert_eq!(traj.len(), 4 * n);
    assert_eq!(&traj[n..2 * n], &out[..]);
    // Bad inputs are errors, not panics.
    assert!(sitl.rollout_gradient(&y0, &params, &[0.0; 5], &Mse).is_err());
    assert!(sitl.rollout_gradient(&y0[..3], &params, &vec![0.0; n], &Mse).is_err());
    assert!(SolverInTheLoop::new(FisherKpp::new(side), Heun, map.clone(), 0.0).is_err());
    assert!(SolverInTheLoop::new(FisherKpp::new(2), Heun, map, 0.1).is_err());
}
