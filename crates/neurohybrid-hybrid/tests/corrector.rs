//! `StencilCorrector`: exact values of the padding and the stencil, VJP against finite
//! differences, the dot identity `<w, J v> = <Jᵀ w, v>` (proptest), and a solver-in-the-loop
//! gradient through it.

use neurohybrid_hybrid::{
    DiffMap, Mse, SolverInTheLoop, StencilBoundary, StencilCorrector, TapeMap, TrajectoryLoss,
};
use neurohybrid_nn::rng::SplitMix64;
use neurohybrid_nn::{Activation, Layer};
use neurohybrid_solve_explicit::Heun;
use neurohybrid_testkit::FisherKpp;
use proptest::prelude::*;

fn uniform(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut r = SplitMix64::new(seed);
    (0..n).map(|_| r.symmetric(scale)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The configurations the tests cover: linear, polynomial, with hidden channels and biases,
/// zero boundary, 5×5, 3D.
fn configs() -> Vec<StencilCorrector> {
    vec![
        StencilCorrector::linear(&[4, 5]),
        StencilCorrector::linear(&[4, 5]).with_degree(3).with_scale(0.5),
        StencilCorrector::linear(&[4, 5])
            .with_degree(2)
            .with_hidden(3, Activation::Tanh)
            .with_bias(true)
            .with_scale(0.1),
        StencilCorrector::linear(&[4, 5]).with_boundary(StencilBoundary::Zero).with_degree(2),
        StencilCorrector::linear(&[5, 4]).with_kernel(5),
        StencilCorrector::linear(&[3, 4, 3]).with_degree(2).with_hidden(2, Activation::Softplus),
    ]
}

#[test]
fn replicate_boundary_is_a_no_flux_ghost_cell() {
    // The 5-point Laplacian stencil with replicated ghost cells is the no-flux finite-volume
    // Laplacian: zero on a constant field and equal to FisherKpp's operator (dx = 1) anywhere.
    let side = 5;
    let sc = StencilCorrector::linear(&[side, side]);
    let map = TapeMap::new(&sc, &[side * side]).unwrap();
    let lap = [0.0, 1.0, 0.0, 1.0, -4.0, 1.0, 0.0, 1.0, 0.0];
    let mut out = vec![0.0; side * side];
    map.eval(&vec![0.7; side * side], &lap, &mut out);
    assert!(out.iter().all(|v| v.abs() < 1e-15), "{out:?}");
    let u = uniform(side * side, 3, 1.0);
    map.eval(&u, &lap, &mut out);
    let fk = FisherKpp::new(side);
    let mut du = vec![0.0; side * side];
    neurohybrid_system::OdeSystem::rhs(&fk, 0.0, &u, &[1.0, 0.0], &mut du);
    for (a, b) in out.iter().zip(&du) {
        assert!((a - b).abs() < 1e-13, "{a} vs {b}");
    }
    // Zero padding reads outside cells as 0: the corner of a constant field sees 2 missing
    // neighbours.
    let zero =
        TapeMap::new(&sc.clone().with_boundary(StencilBoundary::Zero), &[side * side]).unwrap();
    zero.eval(&vec![1.0; side * side], &lap, &mut out);
    assert!((out[0] + 2.0).abs() < 1e-15 && (out[1] + 1.0).abs() < 1e-15 && out[6].abs() < 1e-15);
}

#[test]
fn polynomial_channels_and_layout() {
    // One cell's correction with a 1×1 stencil of degree 3 is a z + b z² + c z³; no bias
    // means c(0) = 0 exactly.
    let sc = StencilCorrector::linear(&[2, 3]).with_kernel(1).with_degree(3).with_scale(2.0);
    assert_eq!(sc.n_params(), 3);
    let map = TapeMap::new(&sc, &[6]).unwrap();
    let names: Vec<_> = map.layout().blocks().iter().map(|b| b.name().to_string()).collect();
    assert_eq!(names, ["stencil.weight"]);
    let w = [0.5, -1.0, 0.25];
    let z = [0.0, 0.1, 0.2, 0.5, 0.9, 1.0];
    let mut out = [0.0; 6];
    map.eval(&z, &w, &mut out);
    for (o, z) in out.iter().zip(z) {
        let want = 2.0 * (0.5 * z - z * z + 0.25 * z * z * z);
        assert!((o - want).abs() < 1e-15, "{o} vs {want}");
    }
    let hidden = StencilCorrector::linear(&[4, 4]).with_hidden(6, Activation::Tanh).with_bias(true);
    let map = TapeMap::new(&hidden, &[16]).unwrap();
    let names: Vec<_> = map.layout().blocks().iter().map(|b| b.name().to_string()).collect();
    assert_eq!(names, ["stencil.weight", "stencil.bias", "mix.weight", "mix.bias"]);
    assert_eq!(hidden.n_params(), 6 * 9 + 6 + 6 + 1);
}

#[test]
fn bad_configurations_are_errors() {
    let n = 16;
    assert!(TapeMap::new(&StencilCorrector::linear(&[4, 4]).with_kernel(2), &[n]).is_err());
    assert!(TapeMap::new(&StencilCorrector::linear(&[4, 4]).with_degree(0), &[n]).is_err());
    assert!(TapeMap::new(&StencilCorrector::linear(&[4]), &[4]).is_err());
    assert!(TapeMap::new(&StencilCorrector::linear(&[4, 4]), &[15]).is_err());
    assert!(TapeMap::new(&StencilCorrector::linear(&[4, 4]).with_scale(f64::NAN), &[n]).is_err());
}

#[test]
fn vjp_matches_finite_differences() {
    for (c, sc) in configs().into_iter().enumerate() {
        let n = sc.cells();
        let map = TapeMap::new(&sc, &[n]).unwrap();
        let m = sc.n_params();
        let x: Vec<f64> = uniform(n, 10 + c as u64, 0.4).iter().map(|v| 0.5 + v).collect();
        let w = uniform(m, 20 + c as u64, 0.5);
        let cot = uniform(n, 30 + c as u64, 1.0);
        let (mut xb, mut wb) = (vec![0.0; n], vec![0.0; m]);
        map.vjp(&x, &w, &cot, &mut xb, &mut wb);
        let f = |x: &[f64], w: &[f64]| {
            let mut o = vec![0.0; n];
            map.eval(x, w, &mut o);
            dot(&o, &cot)
        };
        let h = 1e-6;
        for i in 0..n {
            let (mut a, mut b) = (x.clone(), x.clone());
            a[i] += h;
            b[i] -= h;
            let fd = (f(&a, &w) - f(&b, &w)) / (2.0 * h);
            assert!((fd - xb[i]).abs() < 1e-6 * fd.abs().max(1.0), "config {c} x[{i}]");
        }
        for j in 0..m {
            let (mut a, mut b) = (w.clone(), w.clone());
            a[j] += h;
            b[j] -= h;
            let fd = (f(&x, &a) - f(&x, &b)) / (2.0 * h);
            assert!((fd - wb[j]).abs() < 1e-6 * fd.abs().max(1.0), "config {c} w[{j}]");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn dot_identity(seed in 0u64..1_000_000) {
        for sc in configs() {
            let n = sc.cells();
            let m = sc.n_params();
            let map = TapeMap::new(&sc, &[n]).unwrap();
            let x: Vec<f64> = uniform(n, seed, 0.5).iter().map(|v| 0.5 + v).collect();
            let w = uniform(m, seed + 1, 0.5);
            let (vx, vw) = (uniform(n, seed + 2, 1.0), uniform(m, seed + 3, 1.0));
            let cot = uniform(n, seed + 4, 1.0);
            let mut jv = vec![0.0; n];
            map.jvp(&x, &w, &vx, &vw, &mut jv);
            let (mut xb, mut wb) = (vec![0.0; n], vec![0.0; m]);
            map.vjp(&x, &w, &cot, &mut xb, &mut wb);
            let lhs = dot(&cot, &jv);
            let rhs = dot(&xb, &vx) + dot(&wb, &vw);
            prop_assert!((lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0), "{lhs} vs {rhs}");
        }
    }
}

#[test]
fn solver_in_the_loop_gradient_through_a_stencil() {
    let side = 4;
    let n = side * side;
    let sc = StencilCorrector::linear(&[side, side]).with_degree(2).with_scale(0.1);
    let map = TapeMap::new(&sc, &[n]).unwrap();
    let sitl = SolverInTheLoop::new(FisherKpp::new(side), Heun, map, 0.5).unwrap();
    let mut params = vec![0.2, 0.8];
    params.extend(uniform(sc.n_params(), 7, 0.3));
    let y0 = FisherKpp::seed(side);
    let k = 4;
    let targets: Vec<f64> = (0..k * n).map(|i| 0.3 + 0.01 * (i % 7) as f64).collect();
    let loss = |p: &[f64]| {
        let traj = sitl.rollout(&y0, p, k);
        let mut g = vec![0.0; k * n];
        Mse.evaluate(&traj[n..], &targets, None, &[], &mut g, &mut [])
    };
    let (value, _, dp) = sitl.rollout_gradient(&y0, &params, &targets, &Mse).unwrap();
    assert!((value - loss(&params)).abs() < 1e-15);
    let h = 1e-6;
    for j in 0..params.len() {
        let (mut a, mut b) = (params.clone(), params.clone());
        a[j] += h;
        b[j] -= h;
        let fd = (loss(&a) - loss(&b)) / (2.0 * h);
        assert!((fd - dp[j]).abs() < 1e-6 * fd.abs().max(1e-2), "{j}: {} vs {fd}", dp[j]);
    }
}
